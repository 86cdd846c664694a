//! `makescope export compdb|ninja`: the record in another tool's format, written to
//! `-o FILE` (one summary line on stderr) or to stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::write_json;
use crate::config::Config;
use crate::export::{self, CompdbOptions, NinjaOptions};

/// What to export, and where to.
#[derive(Debug)]
pub enum Export {
    Compdb(CompdbOptions, Option<PathBuf>),
    Ninja(NinjaOptions, Option<PathBuf>),
}

/// Write `bytes` to `path`, or to stdout without one.
fn emit(path: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match path {
        Some(path) => std::fs::write(path, bytes)
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(bytes).and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }
    }
}

pub fn run(config: &Config, what: &Export) -> Result<u8> {
    match what {
        Export::Compdb(options, path) => {
            let db = export::compdb(config, options)?;
            let mut bytes = Vec::new();
            write_json(&mut bytes, &db.to_json())?;
            emit(path.as_deref(), &bytes)?;
            if let Some(path) = path {
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
            Ok(0)
        }
        Export::Ninja(options, path) => {
            let mut options = options.clone();
            if options.stamps.as_os_str().is_empty() {
                options.stamps = config
                    .db
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("ninja");
            }
            let ninja = export::ninja(config, &options)?;
            emit(path.as_deref(), ninja.text.as_bytes())?;
            if let Some(path) = path {
                eprintln!(
                    "makescope: {} edges of build {} in {}",
                    ninja.edges,
                    ninja.build.id,
                    path.display()
                );
            }
            Ok(0)
        }
    }
}
