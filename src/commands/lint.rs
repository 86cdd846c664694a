//! `makescope lint`: findings grouped by the makefile to edit, or JSON; exit status 1
//! when there is a finding of a race kind (missing prerequisite, two writers, stale
//! read), so that CI can gate on it.

use std::io::Write;

use anyhow::Result;

use super::{write_json, Format};
use crate::config::Config;
use crate::lint::{self, Declared, Finding, Kind, LintOptions, Side};
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
    let place = |s: &Side| match (&s.makefile, s.line) {
        (Some(f), Some(l)) => format!("{}:{l}", show(f)),
        (Some(f), None) => show(f),
        _ => "recipe location unknown".into(),
    };
    let mut last: Option<Option<Vec<u8>>> = None;
    for f in &report.findings {
        let group = f.makefile().map(<[u8]>::to_vec);
        if last.as_ref() != Some(&group) {
            let name = group.as_deref().map_or("(makefile unknown)".into(), show);
            writeln!(out, "{name}")?;
            last = Some(group);
        }
        writeln!(out, "  {}", describe(f, &show, &place))?;
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

fn describe(
    f: &Finding,
    show: &dyn Fn(&[u8]) -> String,
    place: &dyn Fn(&Side) -> String,
) -> String {
    let file = show(&f.file);
    let s = &f.subject;
    let other = f.other.as_ref();
    let fix = f.fix.as_ref().map_or(String::new(), |fix| {
        let at = match (&fix.makefile, fix.line) {
            (Some(m), Some(l)) => format!(" ({}:{l})", show(m)),
            _ => String::new(),
        };
        format!("\n      add: {}: {}{at}", fix.target, fix.prerequisite)
    });
    match (f.kind, other) {
        (Kind::MissingPrerequisite, Some(w)) => format!(
            "missing prerequisite: {} ({}) reads {file}, written by {} ({}); nothing make knew orders them{fix}",
            s.target, place(s), w.target, place(w)
        ),
        (Kind::StaleRead, Some(w)) => format!(
            "stale read: {} ({}) read {file} before {} ({}) wrote it{fix}",
            s.target, place(s), w.target, place(w)
        ),
        (Kind::TwoWriters, Some(w)) => format!(
            "two writers: {file} written by {} ({}) and by {} ({})",
            w.target, place(w), s.target, place(s)
        ),
        (Kind::ArchiveUpdatedInPlace, Some(w)) => format!(
            "archive updated in place: {file} by {} ({}) and {} ({})",
            w.target, place(w), s.target, place(s)
        ),
        _ => format!(
            "target not written: the recipe of {} ({}) never wrote it (a missing .PHONY, or a wrong $@)",
            s.target, place(s)
        ),
    }
}
