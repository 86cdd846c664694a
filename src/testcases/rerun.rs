//! `makescope test NAME…`: which recorded tests a user's names pick, what they need
//! made again first, running them again without make, and keeping the new results.
//!
//! A NAME is a test's name as `tests` lists it, or a glob of it (`*`, `?`:
//! `string/test-str*`); `--failed` picks the tests that did not pass; `--affected`, the
//! tests a change since the build reaches (`tests --affected`), or those of them the
//! names and `--failed` pick. Tests one command ran together (DejaGnu's) are run
//! once. [`run`], in order:
//! 1. what the tests need that is out of date: `rebuild`'s query ([`crate::rebuild::query`])
//!    and its runner ([`crate::rebuild::run`]), given only the recipes upstream of the
//!    tests' commands ([`needed_first`]): nothing else of the build runs, and the file
//!    states of what they settle are written as `rebuild` writes them;
//! 2. what the tests read and is missing now ([`missing_inputs`]: make deletes an
//!    intermediate test program), made again by the recorded commands that wrote it;
//! 3. each test's command, planned as `replay` plans it (`replay::Plan`) and run by the
//!    one executor (`replay::Executor`), its output passed on as it comes; then its
//!    results read again as the convention writes them;
//! 4. the run recorded as a replay of the command (`replay::record`) with each test's
//!    result and what `tests` listed before (`Store::write_test_reruns`): `tests` lists
//!    the newest.
//!
//! What it owns: picking tests, matching names, the order above. What it must never do:
//! print (what happens is [`Event`]s for the caller), or change a row of the build.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{TestCase, TestList, TestsOptions};
use crate::access::AccessKind;
use crate::config::Config;
use crate::graph::CommandGraph;
use crate::paths::as_path;
use crate::rebuild::{self, OutOfDate, RebuildError, RebuildOptions, RunEvent};
use crate::replay::{self, CurrentEnvironment, Executor, Mode, Note, Plan, Recipe};
use crate::store::{Store, TestRerun};
use crate::util::lossy;

/// Which tests `test` re-runs.
#[derive(Debug, Clone, Default)]
pub struct RerunOptions {
    /// The build whose tests are picked from (default: the last one).
    pub build: Option<i64>,
    /// Names or globs.
    pub names: Vec<String>,
    /// Also every test that did not pass.
    pub failed: bool,
    /// Only the tests a change since the build affects (`tests --affected`): all of
    /// them, or those of them the names and `failed` pick.
    pub affected: bool,
    /// Recipes re-run at once when what the tests need is out of date (at least 1).
    pub jobs: usize,
}

/// What happens during [`run`], in order, for the caller to say.
#[derive(Debug)]
pub enum Event<'a> {
    /// A recipe the tests need runs again first: its label and why.
    Remaking { label: &'a str, why: &'a str },
    /// What such a recipe printed (a test's own output is passed on as it comes).
    Output(&'a [u8]),
    /// One line about the run: what a test's replay does differently from the recorded
    /// run, recipes early cutoff spared, why staleness could not be checked.
    Note(&'a str),
}

/// One test's new result.
#[derive(Debug, Clone)]
pub struct Rerun {
    pub name: String,
    /// As the project reports it (read again from its result file), or guessed from
    /// the exit status (said in `note`).
    pub result: String,
    /// What `tests` listed before this run.
    pub before: String,
    /// The test command's run time.
    pub seconds: f64,
    /// Where the test's own output is, when not on the command's stdout.
    pub output_file: Option<PathBuf>,
    pub note: Option<String>,
}

impl Rerun {
    /// The results that are not a success, expected failure or skip.
    pub fn failed(&self) -> bool {
        matches!(
            self.result.as_str(),
            "FAIL" | "XPASS" | "ERROR" | "UNRESOLVED" | "KPASS"
        )
    }
}

/// How [`run`] went.
#[derive(Debug, Clone, Default)]
pub struct RerunSummary {
    /// Each picked test, in the listed order.
    pub tests: Vec<Rerun>,
    /// The first test command's exit status that stopped its recipe as make would have
    /// stopped (0: none did).
    pub status: u8,
    /// Recipes run again first (out of date, or writing a missing input).
    pub remade: usize,
}

/// What a replay says of make's jobserver (`rebuild`'s runner passes it on).
const JOBSERVER_NOTE: &[u8] = b"makescope: replay: make's jobserver";

/// Run the tests `options` pick again: see the module's order.
pub fn run(
    config: &Config,
    options: &RerunOptions,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<RerunSummary> {
    let list = super::list(
        config,
        &TestsOptions {
            build: options.build,
            affected: options.affected,
            ..TestsOptions::default()
        },
    )?;
    if options.affected && list.tests.is_empty() {
        on_event(Event::Note(&format!(
            "no test of build {} is affected: nothing it ran read a file that changed since",
            list.build.id
        )));
        return Ok(RerunSummary::default());
    }
    let groups = pick(&list, options)?;
    let mut summary = RerunSummary::default();
    let ids: Vec<i64> = groups.iter().map(|(id, _)| *id).collect();
    summary.remade += remake_stale(config, &list, &ids, options.jobs, on_event)?;
    let executor = Executor::for_this_process();
    let graph = CommandGraph::load(&list.store, list.build.id)?;
    let mut made: Vec<i64> = Vec::new();
    let mut writer: Option<Store> = None;
    let argv = {
        let mut argv = vec![b"test".to_vec()];
        argv.extend(options.names.iter().map(|n| n.as_bytes().to_vec()));
        if options.failed {
            argv.push(b"--failed".to_vec());
        }
        crate::util::join_nul(&argv)
    };
    for (command_id, was) in groups {
        for needed in missing_inputs(&list.store, &graph, command_id)? {
            let recipe = Recipe::load(&list.store, &[needed])?;
            if recipe.lines.iter().any(|c| made.contains(&c.id)) {
                continue;
            }
            made.extend(recipe.lines.iter().map(|c| c.id));
            let label = format!("command {needed} ({})", lossy(&recipe.lines[0].target));
            on_event(Event::Remaking {
                label: &label,
                why: "it writes a file the test reads, which is missing",
            });
            let plan = Plan::new(&recipe, None, Mode::Run, &CurrentEnvironment)?;
            plan.check_directory()?;
            let outcome = executor.run(&plan)?;
            summary.remade += 1;
            if outcome.exit_status() != 0 {
                bail!(
                    "making {} again failed (exit {}); the test was not run",
                    lossy(&recipe.lines[0].target),
                    outcome.exit_status()
                );
            }
        }
        let recipe = Recipe::load(&list.store, &[command_id])?;
        let plan = Plan::new(&recipe, None, Mode::Run, &CurrentEnvironment)?;
        let runs_make = recipe.lines.iter().any(|c| runs_make(&c.command));
        for note in &plan.notes {
            // Without the jobserver only a make the test starts is any different.
            if matches!(note, Note::JobserverDropped { .. }) && !runs_make {
                continue;
            }
            on_event(Event::Note(&note.to_string()));
        }
        plan.check_directory()?;
        let outcome = executor.run(&plan)?;
        if !outcome.killed.is_empty() {
            on_event(Event::Note(&format!(
                "killed {} process(es) the test left running: {}",
                outcome.killed.len(),
                outcome.killed.join(", ")
            )));
        }
        let seconds: f64 = outcome.lines.iter().map(|l| l.duration.as_secs_f64()).sum();
        let command = recipe
            .lines
            .iter()
            .find(|c| c.id == command_id)
            .cloned()
            .unwrap_or_else(|| recipe.lines[0].clone());
        let now = list.recognise_again(&command, &was[0]);
        let mut results = Vec::new();
        for test in &was {
            let again = now
                .as_ref()
                .and_then(|found| found.iter().find(|t| t.name == test.name).cloned());
            let (result, note, output_file) = match (&now, again) {
                (_, Some(t)) => (t.result, t.note, t.output_file),
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
            results.push(Rerun {
                name: test.name.clone(),
                result,
                before: test.result.clone(),
                seconds,
                output_file,
                note,
            });
        }
        if let Err(error) = keep(
            config,
            &mut writer,
            &plan,
            &outcome,
            &argv,
            command_id,
            &results,
        ) {
            on_event(Event::Note(&format!(
                "the results of {} are not kept in the record: {error:#}",
                lossy(&command.target)
            )));
        }
        summary.tests.extend(results);
        if summary.status == 0 {
            summary.status = outcome.exit_status();
        }
    }
    Ok(summary)
}

/// Record the run of `plan` as a replay of its command, and the tests' results in it.
fn keep(
    config: &Config,
    writer: &mut Option<Store>,
    plan: &Plan,
    outcome: &replay::Outcome,
    argv: &[u8],
    command_id: i64,
    results: &[Rerun],
) -> Result<()> {
    if writer.is_none() {
        *writer = Some(Store::open_write(&config.db)?);
    }
    let store = writer.as_mut().expect("opened above");
    let recorded = replay::record::record(store, plan, outcome, argv)?;
    // The replay's command that re-ran the test's (the recipe's last that ran, when
    // the test's own line never did).
    let replay_command = plan
        .lines
        .iter()
        .zip(&recorded.command_ids)
        .find(|(line, _)| line.command_id == command_id)
        .or_else(|| plan.lines.iter().zip(&recorded.command_ids).next_back())
        .map(|(_, id)| *id);
    let Some(replay_command) = replay_command else {
        return Ok(());
    };
    let rows: Vec<TestRerun> = results
        .iter()
        .map(|r| TestRerun {
            command_id: replay_command,
            replay_of: command_id,
            name: r.name.clone(),
            result: r.result.clone(),
            before: r.before.clone(),
            note: r.note.clone(),
            seconds: Some(r.seconds),
        })
        .collect();
    store.write_test_reruns(&rows)?;
    Ok(())
}

/// Whether a recipe line starts make (a sub-make would find no jobserver).
fn runs_make(command: &[u8]) -> bool {
    super::simple_commands(command).iter().any(|c| {
        c.words
            .first()
            .is_some_and(|w| matches!(w.rsplit('/').next(), Some("make" | "gmake")))
    })
}

/// Bring what the tests' commands (`ids`) need up to date through `rebuild`: the recipes
/// upstream of them that a change since the build reaches (not the tests' own: they
/// run after). How many ran. A build `rebuild` cannot check (untraced, no file states)
/// is said in a note and the tests run with the tree as it is.
fn remake_stale(
    config: &Config,
    list: &TestList,
    ids: &[i64],
    jobs: usize,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<usize> {
    let plan = match rebuild::query(&list.store, list.build.clone(), &[]) {
        Ok(plan) => plan,
        Err(error) => match error.downcast_ref::<RebuildError>() {
            Some(RebuildError::Untraced(_) | RebuildError::NoStates(_)) => {
                on_event(Event::Note(&format!(
                    "cannot tell whether what the tests need is out of date ({error}); they run with the tree as it is"
                )));
                return Ok(0);
            }
            _ => return Err(error),
        },
    };
    let plan = needed_first(plan, ids);
    if plan.units.is_empty() {
        return Ok(0);
    }
    let top = plan.build.directory.clone();
    let mut failed: Option<String> = None;
    let summary = rebuild::run(
        config,
        &plan,
        &RebuildOptions {
            jobs: jobs.max(1),
            build: Some(plan.build.id),
            ..RebuildOptions::default()
        },
        &mut |event| match event {
            RunEvent::Started { unit, reason } => {
                let label = rebuild::unit_label(&plan.units[*unit], &top);
                on_event(Event::Remaking {
                    label: &label,
                    why: &reason.to_string(),
                });
            }
            RunEvent::Finished {
                unit,
                output,
                exit_code,
                signal,
                ..
            } => {
                let body: Vec<u8> = output
                    .split_inclusive(|&b| b == b'\n')
                    .filter(|l| !l.starts_with(JOBSERVER_NOTE))
                    .flatten()
                    .copied()
                    .collect();
                if !body.is_empty() {
                    on_event(Event::Output(&body));
                }
                if (*exit_code != Some(0) || signal.is_some()) && failed.is_none() {
                    let how = match (exit_code, signal) {
                        (_, Some(s)) => format!("killed by signal {s}"),
                        (Some(c), _) => format!("exit {c}"),
                        _ => "did not finish".into(),
                    };
                    failed = Some(format!(
                        "{} ({how})",
                        rebuild::unit_label(&plan.units[*unit], &top)
                    ));
                }
            }
            RunEvent::CutOff { .. } | RunEvent::NotRun { .. } => {}
        },
    )?;
    if let Some(what) = failed {
        bail!("making what the tests need failed: {what}; the tests were not run");
    }
    if !summary.cut_off.is_empty() {
        on_event(Event::Note(&format!(
            "{} of what the tests need not re-run: {} inputs came out byte-identical (early cutoff)",
            summary.cut_off.len(),
            if summary.cut_off.len() == 1 { "its" } else { "their" }
        )));
    }
    Ok(summary.ran)
}

/// `plan` cut down to the units upstream of the commands `ids` (those units themselves
/// left out: the tests run after, as `test` runs them). A path a unit left out reads or
/// writes is not settled by this run (its state stays as recorded), as in a `rebuild`
/// of some targets.
pub fn needed_first(mut plan: OutOfDate, ids: &[i64]) -> OutOfDate {
    let is_test: Vec<bool> = plan
        .units
        .iter()
        .map(|u| u.lines.iter().any(|(leaf, _)| ids.contains(&leaf.id)))
        .collect();
    let mut needed = vec![false; plan.units.len()];
    let mut stack: Vec<usize> = plan
        .units
        .iter()
        .enumerate()
        .filter(|(i, _)| is_test[*i])
        .flat_map(|(_, u)| u.after.iter().copied())
        .collect();
    while let Some(u) = stack.pop() {
        if !needed[u] && !is_test[u] {
            needed[u] = true;
            stack.extend(plan.units[u].after.iter().copied());
        }
    }
    let mut new_index = vec![usize::MAX; plan.units.len()];
    let mut kept = Vec::new();
    for (i, unit) in std::mem::take(&mut plan.units).into_iter().enumerate() {
        if needed[i] {
            new_index[i] = kept.len();
            kept.push(unit);
        }
    }
    let renumber = |i: usize| new_index.get(i).copied().unwrap_or(usize::MAX);
    for unit in &mut kept {
        // Everything a needed unit runs after is needed too.
        unit.after = unit.after.iter().map(|&a| renumber(a)).collect();
    }
    for list in plan.readers.values_mut().chain(plan.writers.values_mut()) {
        for u in list.iter_mut() {
            *u = renumber(*u);
        }
    }
    plan.units = kept;
    plan
}

/// The picked tests grouped by the command that runs them, in the listed order.
pub fn pick(list: &TestList, options: &RerunOptions) -> Result<Vec<(i64, Vec<TestCase>)>> {
    if options.names.is_empty() && !options.failed && !options.affected {
        bail!(
            "name the tests to run (`makescope tests` lists them), or give --failed or --affected"
        );
    }
    let mut unmatched: Vec<&str> = Vec::new();
    for name in &options.names {
        if !list.tests.iter().any(|t| matches(name, &t.name)) {
            unmatched.push(name);
        }
    }
    if !unmatched.is_empty() {
        let quoted: Vec<String> = unmatched.iter().map(|n| format!("`{n}`")).collect();
        bail!(
            "no test of build {} is named {} (`makescope tests` lists them)",
            list.build.id,
            quoted.join(", ")
        );
    }
    let mut groups: Vec<(i64, Vec<TestCase>)> = Vec::new();
    for test in &list.tests {
        // The list is the affected tests only when `affected` is asked for.
        let picked = (options.affected && options.names.is_empty() && !options.failed)
            || (options.failed && test.failed())
            || options.names.iter().any(|n| matches(n, &test.name));
        if !picked {
            continue;
        }
        match groups.iter_mut().find(|(id, _)| *id == test.command_id) {
            Some((_, tests)) => tests.push(test.clone()),
            None => groups.push((test.command_id, vec![test.clone()])),
        }
    }
    if groups.is_empty() {
        bail!(
            "build {} has no failed{} test to run",
            list.build.id,
            if options.affected {
                " and affected"
            } else {
                ""
            }
        );
    }
    Ok(groups)
}

/// The recorded commands to run again, in order, before command `id` so that every
/// file it read exists again: for each file `id` read that is missing now, the command
/// of the graph that wrote it, after what that one needs in turn. Files that exist are
/// taken as they are.
pub fn missing_inputs(store: &Store, graph: &CommandGraph, id: i64) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    let mut visiting = Vec::new();
    needs(store, graph, id, &mut out, &mut visiting)?;
    Ok(out)
}

fn needs(
    store: &Store,
    graph: &CommandGraph,
    id: i64,
    out: &mut Vec<i64>,
    visiting: &mut Vec<i64>,
) -> Result<()> {
    visiting.push(id);
    let missing: Vec<Vec<u8>> = store
        .accesses(id)?
        .into_iter()
        .filter(|a| AccessKind::from_name(&a.kind).is_some_and(|k| k.is_read()))
        .map(|a| a.path)
        .filter(|p| !Path::exists(as_path(p)))
        .collect();
    if !missing.is_empty() {
        for writer in graph.dependencies(id) {
            if out.contains(&writer) || visiting.contains(&writer) {
                continue;
            }
            let wrote_one = store.accesses(writer)?.iter().any(|a| {
                AccessKind::from_name(&a.kind).is_some_and(|k| k.is_write())
                    && missing.contains(&a.path)
            });
            if wrote_one {
                needs(store, graph, writer, out, visiting)?;
                out.push(writer);
            }
        }
    }
    visiting.pop();
    Ok(())
}

/// Whether `name` matches `pattern`: equal, or a glob with `*` (any run of characters,
/// `/` included) and `?` (one character).
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn names_match_exactly_or_by_glob() {
        assert!(matches("string/test-strlen", "string/test-strlen"));
        assert!(!matches("string/test-str", "string/test-strlen"));
        assert!(matches("string/test-str*", "string/test-strlen"));
        assert!(matches("*strlen", "string/test-strlen"));
        assert!(matches("t-?lpha", "t-alpha"));
        assert!(!matches("t-?", "t-alpha"));
    }
}
