//! `makescope plugin`: print the path of the make plugin's stable copy (or of the copy
//! `--install DIR` made), for `load $(shell makescope plugin)`.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use anyhow::Result;

use crate::plugin::PluginOptions;

/// Install the plugin as `options` says and print its path on one line.
pub fn run(options: &PluginOptions) -> Result<u8> {
    let path = crate::plugin::install(options)?;
    let mut out = std::io::stdout().lock();
    out.write_all(path.as_os_str().as_bytes())?;
    writeln!(out)?;
    Ok(0)
}
