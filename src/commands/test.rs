//! `makescope test NAME…`: re-run recorded tests without make. For each command that
//! ran a picked test: the recorded commands that make what it read and is missing now
//! (each said on stderr, then run), its replay notes on stderr, the command itself (its output
//! streams), then one line per test with its new result as the project reports it (read
//! again from the `.test-result`/`.trs` file the convention writes), what it was
//! before (as `tests` listed it), and where the test's own output is. Exit status: the recipe's when it failed
//! as make would have stopped; else 1 when a test did not pass, 0 when all did.

use std::io::Write;

use anyhow::Result;

use crate::config::Config;
use crate::replay::{CurrentEnvironment, Executor, Mode, Plan, Recipe};
use crate::testcases::rerun::{self, RerunOptions};
use crate::testcases::{self, TestsOptions};

pub fn run(config: &Config, options: &RerunOptions) -> Result<u8> {
    let list = testcases::list(
        config,
        &TestsOptions {
            build: options.build,
            ..TestsOptions::default()
        },
    )?;
    let groups = rerun::pick(&list, options)?;
    let executor = Executor::for_this_process();
    let graph = crate::graph::CommandGraph::load(&list.store, list.build.id)?;
    let mut made: Vec<i64> = Vec::new();
    let mut status = 0u8;
    let mut any_failed = false;
    let mut lines = Vec::new();
    for (command_id, was) in groups {
        for needed in rerun::missing_inputs(&list.store, &graph, command_id)? {
            let recipe = Recipe::load(&list.store, &[needed])?;
            if recipe.lines.iter().any(|c| made.contains(&c.id)) {
                continue;
            }
            made.extend(recipe.lines.iter().map(|c| c.id));
            eprintln!(
                "makescope: test: first making what it needs and is missing: command {needed} ({})",
                crate::util::lossy(&recipe.lines[0].target)
            );
            let plan = Plan::new(&recipe, None, Mode::Run, &CurrentEnvironment)?;
            plan.check_directory()?;
            let outcome = executor.run(&plan)?;
            if outcome.exit_status() != 0 {
                anyhow::bail!(
                    "making {} again failed (exit {}); the test was not run",
                    crate::util::lossy(&recipe.lines[0].target),
                    outcome.exit_status()
                );
            }
        }
        let recipe = Recipe::load(&list.store, &[command_id])?;
        let plan = Plan::new(&recipe, None, Mode::Run, &CurrentEnvironment)?;
        for note in &plan.notes {
            eprintln!("makescope: test: {note}");
        }
        plan.check_directory()?;
        let outcome = executor.run(&plan)?;
        if !outcome.killed.is_empty() {
            eprintln!(
                "makescope: test: killed {} process(es) the test left running: {}",
                outcome.killed.len(),
                outcome.killed.join(", ")
            );
        }
        let seconds: f64 = outcome.lines.iter().map(|l| l.duration.as_secs_f64()).sum();
        let command = recipe
            .lines
            .iter()
            .find(|c| c.id == command_id)
            .cloned()
            .unwrap_or_else(|| recipe.lines[0].clone());
        let now = list.recognise_again(&command, &was[0]);
        for test in &was {
            let again = now
                .as_ref()
                .and_then(|found| found.iter().find(|t| t.name == test.name).cloned());
            let (result, note, output) = match (&now, again) {
                (_, Some(t)) => (t.result.clone(), t.note.clone(), t.output_file.clone()),
                (None, None) => (
                    match outcome.exit_status() {
                        0 => "PASS",
                        77 => "SKIP",
                        _ => "FAIL",
                    }
                    .to_string(),
                    Some("guessed from the exit status".to_string()),
                    None,
                ),
                (Some(_), None) => (
                    "UNRESOLVED".to_string(),
                    Some("the re-run left no result for it".to_string()),
                    None,
                ),
            };
            any_failed |= matches!(
                result.as_str(),
                "FAIL" | "XPASS" | "ERROR" | "UNRESOLVED" | "KPASS"
            );
            let mut line = format!(
                "{result}: {}  ({seconds:.2}s; before: {})",
                test.name, test.result
            );
            if let Some(output) = output {
                line.push_str(&format!("; output in {}", output.display()));
            }
            if let Some(note) = note {
                line.push_str(&format!("; {note}"));
            }
            lines.push(line);
        }
        if status == 0 {
            status = outcome.exit_status();
        }
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(match status {
        0 if any_failed => 1,
        code => code,
    })
}
