//! `makescope export trace|dot`: the build for other tools: Chrome trace-event JSON
//! (Perfetto, `chrome://tracing`) and Graphviz, to stdout or to a file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::views::dot::{self, DotOptions};
use crate::views::{trace, BuildChoice};

/// What `export` writes.
#[derive(Debug, Clone)]
pub enum Export {
    /// Chrome trace-event JSON.
    Trace(BuildChoice),
    /// Graphviz.
    Dot(DotOptions),
}

/// Write `bytes` to `output`, or to stdout.
pub fn write_output(output: Option<&PathBuf>, bytes: &[u8]) -> Result<()> {
    match output {
        Some(path) => std::fs::write(path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
        }
    }
    Ok(())
}

pub fn run(config: &Config, export: &Export, output: Option<&PathBuf>) -> Result<u8> {
    let bytes = match export {
        Export::Trace(choice) => {
            let mut bytes = serde_json::to_vec(&trace::trace(config, choice)?)?;
            bytes.push(b'\n');
            bytes
        }
        Export::Dot(options) => dot::dot(config, options)?.into_bytes(),
    };
    write_output(output, &bytes)?;
    Ok(0)
}
