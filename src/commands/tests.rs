//! `makescope tests`: the test cases of a recorded build (name, directory, result,
//! duration, command id, and why when makescope decided the result), a summary line,
//! or JSON; `--junit FILE` also writes JUnit XML. A build with no tests says so.
//! `--list-only` ([`list_only`]): the tests make's view of the check goal names, nothing
//! run, and plainly where that view cannot name them.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{write_json, Format, Table};
use crate::config::Config;
use crate::testcases::listing::{self, ListOnlyOptions};
use crate::testcases::{self, junit, TestsOptions};

/// How the list is printed, and where JUnit XML goes.
#[derive(Debug, Clone)]
pub struct View {
    pub format: Format,
    pub junit: Option<PathBuf>,
}

pub fn run(config: &Config, options: &TestsOptions, view: &View) -> Result<u8> {
    let list = testcases::list(config, options)?;
    if let Some(path) = &view.junit {
        std::fs::write(path, junit::render(&list)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if view.format == Format::Json {
        write_json(&mut out, &list.to_json())?;
        return Ok(0);
    }
    if list.tests.is_empty() {
        let what = match (options.affected, options.failed_only) {
            (true, _) => {
                println!(
                    "no test of build {} is affected: nothing it ran read a file that changed since",
                    list.build.id
                );
                return Ok(0);
            }
            (false, true) => "no failed tests",
            (false, false) => "no tests",
        };
        println!(
            "build {} has {what}: no command ran a test that makescope recognises",
            list.build.id
        );
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .tests
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                list.directory(t),
                t.result.clone(),
                t.seconds.map(|s| format!("{s:.2}s")).unwrap_or_default(),
                t.command_id.to_string(),
                t.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Table::new()
        .right(3)
        .right(4)
        .skip_empty_tail()
        .write(&mut out, &rows)?;
    println!("{}", list.summary());
    Ok(0)
}

/// `tests --list-only`: name, directory and convention per test, then a summary line;
/// directories make's view cannot name tests in are said after it.
pub fn list_only(options: &ListOnlyOptions, format: Format) -> Result<u8> {
    let planned = listing::list_only(options)?;
    for warning in &planned.warnings {
        eprintln!("makescope: {warning}");
    }
    let shown = |dir: &std::path::Path| -> String {
        match dir.strip_prefix(&planned.directory) {
            Ok(below) if below.as_os_str().is_empty() => ".".into(),
            Ok(below) => below.display().to_string(),
            Err(_) => dir.display().to_string(),
        }
    };
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        let tests: Vec<serde_json::Value> = planned
            .tests
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "directory": shown(&t.directory),
                    "convention": t.convention,
                })
            })
            .collect();
        let unknown: Vec<serde_json::Value> = planned
            .unknown
            .iter()
            .map(|u| serde_json::json!({"directory": shown(&u.directory), "why": u.why}))
            .collect();
        write_json(
            &mut out,
            &serde_json::json!({
                "goals": planned.goals,
                "tests": tests,
                "total": planned.tests.len(),
                "unknown": unknown,
            }),
        )?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = planned
        .tests
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                shown(&t.directory),
                t.convention.to_string(),
            ]
        })
        .collect();
    Table::new().write(&mut out, &rows)?;
    let n = planned.tests.len();
    println!(
        "{n} test{} in make's view of `{}` (listed, none run)",
        if n == 1 { "" } else { "s" },
        planned.goals.join(" ")
    );
    for unknown in &planned.unknown {
        println!("cannot list {}: {}", shown(&unknown.directory), unknown.why);
    }
    Ok(0)
}
