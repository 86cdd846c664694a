//! `makescope report`: write the build's one-page HTML report (default `report.html`)
//! and say where it is.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::Config;
use crate::views::{report, BuildChoice};

pub fn run(config: &Config, options: &BuildChoice, output: &PathBuf) -> Result<u8> {
    let page = report::report(config, options)?;
    super::export::write_output(Some(output), page.as_bytes())?;
    eprintln!(
        "wrote {} ({} KB): open it in a browser",
        output.display(),
        page.len().div_ceil(1024)
    );
    Ok(0)
}
