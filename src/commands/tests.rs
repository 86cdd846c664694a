//! `makescope tests`: the test cases of a recorded build (name, directory, result,
//! duration, command id, and why when makescope decided the result), a summary line,
//! or JSON; `--junit FILE` also writes JUnit XML. A build with no tests says so.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{write_json, Format, Table};
use crate::config::Config;
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
        let what = if options.failed_only {
            "no failed tests"
        } else {
            "no tests"
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
