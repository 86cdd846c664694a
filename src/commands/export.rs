//! `makescope export trace|dot|compdb|ninja`: the recorded build in another tool's
//! format (Chrome trace-event JSON for Perfetto and `chrome://tracing`, Graphviz, Clang's
//! compilation database, a `build.ninja`), written to `-o FILE` or to stdout; for the
//! last two, one summary line on stderr when written to a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::write_json;
use crate::config::Config;
use crate::export::{self, CompdbOptions, NinjaOptions};
use crate::views::dot::{self, DotOptions};
use crate::views::{trace, BuildChoice};

/// What `export` writes.
#[derive(Debug, Clone)]
pub enum Export {
    /// Chrome trace-event JSON.
    Trace(BuildChoice),
    /// Graphviz.
    Dot(DotOptions),
    /// compile_commands.json.
    Compdb(CompdbOptions),
    /// build.ninja.
    Ninja(NinjaOptions),
}

/// Write `bytes` to `output`, or to stdout (a reader that closed the pipe is no error).
pub fn write_output(output: Option<&PathBuf>, bytes: &[u8]) -> Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(bytes).and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }
    }
}

pub fn run(config: &Config, what: &Export, output: Option<&PathBuf>) -> Result<u8> {
    match what {
        Export::Trace(choice) => {
            let mut bytes = serde_json::to_vec(&trace::trace(config, choice)?)?;
            bytes.push(b'\n');
            write_output(output, &bytes)?;
        }
        Export::Dot(options) => write_output(output, dot::dot(config, options)?.as_bytes())?,
        Export::Compdb(options) => {
            let db = export::compdb(config, options)?;
            let mut bytes = Vec::new();
            write_json(&mut bytes, &db.to_json())?;
            write_output(output, &bytes)?;
            if let Some(path) = output {
                let mut note = format!(
                    "makescope: {} compile{} of build {} in {}",
                    db.entries.len(),
                    if db.entries.len() == 1 { "" } else { "s" },
                    db.build.id,
                    path.display()
                );
                if db.from_text > 0 {
                    note.push_str(&format!(
                        " ({} command{} not traced: read from the recipe text)",
                        db.from_text,
                        if db.from_text == 1 { "" } else { "s" }
                    ));
                }
                eprintln!("{note}");
            }
        }
        Export::Ninja(options) => {
            let mut options = options.clone();
            if options.stamps.as_os_str().is_empty() {
                options.stamps = config.db.parent().unwrap_or(Path::new(".")).join("ninja");
            }
            let ninja = export::ninja(config, &options)?;
            write_output(output, ninja.text.as_bytes())?;
            if let Some(path) = output {
                let mut note = format!(
                    "makescope: {} edges of build {} in {} ({} recorded environment{})",
                    ninja.edges,
                    ninja.build.id,
                    path.display(),
                    ninja.environments,
                    if ninja.environments == 1 { "" } else { "s" }
                );
                if ninja.unreplayable > 0 {
                    note.push_str(&format!(
                        "; {} command{} without a recorded shell run{} as recorded, in ninja's environment",
                        ninja.unreplayable,
                        if ninja.unreplayable == 1 { "" } else { "s" },
                        if ninja.unreplayable == 1 { "s" } else { "" }
                    ));
                }
                eprintln!("{note}");
            }
        }
    }
    Ok(0)
}
