//! `makescope lint`: findings grouped by the makefile to edit, or JSON; exit status 1
//! when there is a finding of a race kind (missing prerequisite, two writers, stale
//! read), so that CI can gate on it.

use std::io::Write;

use anyhow::Result;

use super::{write_json, Format};
use crate::config::Config;
use crate::lint::{self, Declared, LintOptions};
use crate::paths;

pub fn run(config: &Config, options: &LintOptions, format: Format) -> Result<u8> {
    let report = lint::lint(config, options)?;
    let status = u8::from(report.races() > 0);
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        write_json(&mut out, &report.to_json())?;
        return Ok(status);
    }
    let top = report.build.directory.clone();
    let show = |path: &[u8]| -> String {
        let shown = paths::relative(path, &top, 3).unwrap_or_else(|| path.to_vec());
        String::from_utf8_lossy(&shown).into_owned()
    };
    let mut last: Option<Option<Vec<u8>>> = None;
    for f in &report.findings {
        let group = f.makefile().map(<[u8]>::to_vec);
        if last.as_ref() != Some(&group) {
            let name = group.as_deref().map_or("(makefile unknown)".into(), show);
            writeln!(out, "{name}")?;
            last = Some(group);
        }
        let (sentence, fix) = f.describe(&show);
        writeln!(out, "  {sentence}")?;
        if let Some(fix) = fix {
            writeln!(out, "      add: {fix}")?;
        }
    }
    if report.declared == Declared::None {
        eprintln!("makescope: the record has no declared graph for build {} and its make databases are gone: every pair of recipes counts as unordered", report.build.id);
    }
    if report.unjudged > 0 {
        eprintln!(
            "makescope: {} reader-writer pairs not judged: the make that runs both left no database of its rules",
            report.unjudged
        );
    }
    let counts: Vec<String> = report
        .counts()
        .into_iter()
        .map(|(k, n)| format!("{n} {}", k.name()))
        .collect();
    if counts.is_empty() {
        eprintln!("makescope: build {}: no findings", report.build.id);
    } else {
        eprintln!(
            "makescope: build {}: {}",
            report.build.id,
            counts.join(", ")
        );
    }
    Ok(status)
}
