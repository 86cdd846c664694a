//! `makescope test NAME…`: re-run recorded tests without make ([`rerun::run`]). On
//! stderr, as it happens: each recipe the tests need that is run again first, with why
//! (`makescope: test: first: CC string/strlen.os (… changed)`), what it printed, and the
//! notes on a test's replay; the tests' own output streams. Then on stdout one line per
//! test: its new result as the project reports it, its run time, what it was before (as
//! `tests` listed it), and where the test's own output is. Exit status: the recipe's
//! when it failed as make would have stopped; else 1 when a test did not pass, 0 when
//! all did.

use std::io::Write;

use anyhow::Result;

use crate::config::Config;
use crate::testcases::rerun::{self, Event, RerunOptions};

pub fn run(config: &Config, options: &RerunOptions) -> Result<u8> {
    let summary = rerun::run(config, options, &mut |event| match event {
        Event::Remaking { label, why } => eprintln!("makescope: test: first: {label}  ({why})"),
        Event::Output(bytes) => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(bytes);
        }
        Event::Note(note) => eprintln!("makescope: test: {note}"),
    })?;
    if summary.remade > 0 {
        eprintln!(
            "makescope: test: made {} again first",
            if summary.remade == 1 {
                "1 recipe".to_string()
            } else {
                format!("{} recipes", summary.remade)
            }
        );
    }
    let mut out = std::io::stdout().lock();
    for test in &summary.tests {
        let mut line = format!(
            "{}: {}  ({:.2}s; before: {}",
            test.result, test.name, test.seconds, test.before
        );
        if let Some(output) = &test.output_file {
            line.push_str(&format!("; output in {}", output.display()));
        }
        if let Some(note) = &test.note {
            line.push_str(&format!("; {note}"));
        }
        line.push(')');
        writeln!(out, "{line}")?;
    }
    let any_failed = summary.tests.iter().any(rerun::Rerun::failed);
    Ok(match summary.status {
        0 if any_failed => 1,
        code => code,
    })
}
