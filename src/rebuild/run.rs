//! Re-running what [`super::out_of_date`] found, in dependency order, `jobs` at once.
//!
//! Each unit runs as `makescope replay ID --for-rebuild` (the replay executor, each in
//! its own process: that process is the subreaper of its command and kills what the
//! command leaves running, so jobs in parallel never kill each other's processes), its
//! stdout and stderr captured together and handed over when it ends. The replay is
//! traced and records itself as a run of the command (`--no-trace`: neither). A unit
//! that is not out of date by itself runs only if a re-run before it changed a file it
//! reads (early cutoff otherwise). When the run ends, each successful traced re-run is
//! named in the `rerun` rows (its files are what the next query uses for the line) and
//! the file states of what the run settled are written, those of paths only the re-runs
//! touched included, so that the next query finds nothing to do for them. Never prints:
//! what happens is [`RunEvent`]s for the caller.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::states::{self, Look};
use super::{OutOfDate, Reason, RebuildOptions, Unit};
use crate::config::Config;
use crate::store::{FileState, PathState, Rerun, Store};

/// What happens during a run, in order.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// Unit `unit` started, for this reason.
    Started { unit: usize, reason: Reason },
    /// It ended: what it printed (stdout and stderr as they came), its status.
    Finished {
        unit: usize,
        output: Vec<u8>,
        exit_code: Option<i32>,
        signal: Option<i32>,
        duration: Duration,
    },
    /// It was not run: what it reads came out byte-identical (early cutoff).
    CutOff { unit: usize },
    /// It was not run: a unit it depends on failed, or the run stopped at a failure.
    NotRun { unit: usize },
}

/// How a run went.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub ran: usize,
    pub failed: usize,
    /// Units skipped by early cutoff.
    pub cut_off: Vec<usize>,
    pub not_run: usize,
    /// File states written to the record.
    pub states_written: usize,
    pub seconds: f64,
}

/// A unit's process ended: the unit, its output and exit code or signal, how long.
type Ended = (
    usize,
    std::io::Result<(Vec<u8>, Option<i32>, Option<i32>)>,
    Duration,
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Ok,
    CutOff,
    Failed,
    NotRun,
}

/// Run the out-of-date units of `plan`, then write the file states they settled.
pub fn run(
    config: &Config,
    plan: &OutOfDate,
    options: &RebuildOptions,
    on_event: &mut dyn FnMut(&RunEvent),
) -> Result<RunSummary> {
    let start = Instant::now();
    let start_ns = super::now_ns();
    let units = &plan.units;
    let exe = std::env::current_exe().context("cannot find makescope's own executable")?;
    let mut summary = RunSummary::default();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
    let mut waiting: Vec<usize> = vec![0; units.len()];
    for (i, unit) in units.iter().enumerate() {
        for &a in &unit.after {
            succ[a].push(i);
            waiting[i] += 1;
        }
    }
    let mut ready: BTreeSet<usize> = (0..units.len()).filter(|&i| waiting[i] == 0).collect();
    let mut done: Vec<Option<Done>> = vec![None; units.len()];
    // Paths whose content differs from the record's state now: the tree's changes,
    // then what re-runs wrote differently (and less what they re-made identically).
    let mut dirty: HashSet<i64> = plan.changed.keys().copied().collect();
    let mut remade: HashSet<i64> = HashSet::new();
    let mut looks: HashMap<i64, Look> = HashMap::new();
    let (tx, rx) = mpsc::channel::<Ended>();
    let mut codes: HashMap<usize, Option<i32>> = HashMap::new();
    let mut running = 0;
    let mut stop = false;
    let jobs = options.jobs.max(1);
    loop {
        while running < jobs {
            let Some(u) = ready.pop_first() else { break };
            let unit = &units[u];
            let blocked = stop
                || unit
                    .after
                    .iter()
                    .any(|&a| matches!(done[a], Some(Done::Failed | Done::NotRun)));
            let outcome = if blocked {
                Some(Done::NotRun)
            } else {
                match why_now(plan, unit, &dirty, &remade) {
                    None => Some(Done::CutOff),
                    Some(reason) => {
                        on_event(&RunEvent::Started { unit: u, reason });
                        spawn(&exe, config, options, plan, unit, u, tx.clone())?;
                        running += 1;
                        None
                    }
                }
            };
            if let Some(outcome) = outcome {
                match outcome {
                    Done::NotRun => {
                        summary.not_run += 1;
                        on_event(&RunEvent::NotRun { unit: u });
                    }
                    _ => {
                        summary.cut_off.push(u);
                        on_event(&RunEvent::CutOff { unit: u });
                    }
                }
                finish(u, outcome, &mut done, &succ, &mut waiting, &mut ready);
            }
        }
        if running == 0 {
            if ready.is_empty() {
                break;
            }
            continue;
        }
        let (u, result, duration) = rx.recv().context("a re-run's thread went away")?;
        running -= 1;
        let (output, exit_code, signal) = match result {
            Ok(r) => r,
            Err(e) => (
                format!("makescope: error: cannot run makescope replay: {e}\n").into_bytes(),
                Some(127),
                None,
            ),
        };
        let ok = exit_code == Some(0) && signal.is_none();
        codes.insert(
            u,
            if signal.is_some() {
                None
            } else {
                exit_code.or(Some(127))
            },
        );
        on_event(&RunEvent::Finished {
            unit: u,
            output,
            exit_code,
            signal,
            duration,
        });
        summary.ran += 1;
        let outcome = if ok {
            // What it wrote now: changed against the record, or back as it was.
            for &w in &units[u].writes {
                let look = look_now(plan, &HashMap::new(), w);
                let same = same_as_recorded(plan, w, &look);
                if same {
                    dirty.remove(&w);
                } else if !matches!(look, Look::Other) {
                    dirty.insert(w);
                    remade.insert(w);
                }
                looks.insert(w, look);
            }
            Done::Ok
        } else {
            summary.failed += 1;
            stop |= !options.keep_going;
            Done::Failed
        };
        finish(u, outcome, &mut done, &succ, &mut waiting, &mut ready);
    }
    drop(tx);
    let store_path = &config.db;
    let mut store = Store::open_read(store_path)?;
    let runs = if options.trace {
        let lines: Vec<i64> = (0..units.len())
            .filter(|&u| done[u] == Some(Done::Ok))
            .flat_map(|u| units[u].lines.iter().map(|(l, _)| l.id))
            .collect();
        store.replays_since(&lines, start_ns)?
    } else {
        HashMap::new()
    };
    summary.states_written = write_states(&mut store, plan, &done, &mut looks, &codes, &runs)?;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

fn finish(
    u: usize,
    outcome: Done,
    done: &mut [Option<Done>],
    succ: &[Vec<usize>],
    waiting: &mut [usize],
    ready: &mut BTreeSet<usize>,
) {
    done[u] = Some(outcome);
    for &s in &succ[u] {
        waiting[s] -= 1;
        if waiting[s] == 0 {
            ready.insert(s);
        }
    }
}

/// Why `unit` must run now, or `None` (early cutoff): its own failure, else the first
/// file it reads, executes or probes that differs from the record, else the first file
/// it writes that does.
fn why_now(
    plan: &OutOfDate,
    unit: &Unit,
    dirty: &HashSet<i64>,
    remade: &HashSet<i64>,
) -> Option<Reason> {
    if matches!(unit.reason, Reason::Failed(_) | Reason::NeverFinished) {
        return Some(unit.reason.clone());
    }
    let dirty_now =
        |p: &i64| dirty.contains(p) || plan.aliases.get(p).is_some_and(|t| dirty.contains(t));
    let remade_now =
        |p: &i64| remade.contains(p) || plan.aliases.get(p).is_some_and(|t| remade.contains(t));
    if let Some(&p) = unit.reads.iter().find(|p| dirty_now(p)) {
        if remade_now(&p) {
            return Some(Reason::Remade(plan.show(p)));
        }
        if unit.direct {
            return Some(unit.reason.clone());
        }
        return Some(Reason::Changed(plan.show(p)));
    }
    if unit
        .writes
        .iter()
        .any(|p| dirty.contains(p) && !remade.contains(p))
        && unit.direct
    {
        return Some(unit.reason.clone());
    }
    None
}

/// `p` now; its name from the plan, else from `more` (paths only a re-run touched).
fn look_now(plan: &OutOfDate, more: &HashMap<i64, Vec<u8>>, p: i64) -> Look {
    let Some(name) = plan.names.get(&p).or_else(|| more.get(&p)) else {
        return Look::Other;
    };
    // A changed path's recorded hash is not its content's, whatever its stat says (a
    // racily clean state's stat can be the edited file's).
    let known = plan
        .recorded
        .get(&p)
        .copied()
        .flatten()
        .filter(|_| !plan.changed.contains_key(&p));
    states::look(name, known.as_ref()).0
}

fn same_as_recorded(plan: &OutOfDate, p: i64, look: &Look) -> bool {
    match (plan.recorded.get(&p).copied().flatten(), look) {
        (Some(before), Look::File(now)) => before.hash == now.hash,
        (None, Look::Missing) => true,
        _ => false,
    }
}

/// Start one unit as a `makescope replay` process; its thread sends the result.
fn spawn(
    exe: &std::path::Path,
    config: &Config,
    options: &RebuildOptions,
    plan: &OutOfDate,
    unit: &Unit,
    u: usize,
    tx: mpsc::Sender<Ended>,
) -> Result<()> {
    let (reader, writer) = crate::trace::sys::pipe().context("cannot make a pipe")?;
    let mut command = Command::new(exe);
    command
        .arg("--db")
        .arg(&config.db)
        .arg("replay")
        .arg(unit.first().id.to_string())
        .arg("--build")
        .arg(plan.build.id.to_string())
        .arg(if options.trace {
            "--for-rebuild"
        } else {
            "--no-trace"
        })
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer));
    if !unit.whole {
        command.arg("--line").arg(unit.lines[0].1.to_string());
    }
    let started = Instant::now();
    let child = command.spawn();
    // The parent's copies of the write end are gone with `command`.
    drop(command);
    let mut child = child.context("cannot start makescope replay")?;
    std::thread::spawn(move || {
        let mut output = Vec::new();
        let mut file = std::fs::File::from(reader);
        let read = file.read_to_end(&mut output);
        let waited = child.wait();
        let result = match (read, waited) {
            (_, Err(e)) | (Err(e), _) => Err(e),
            (Ok(_), Ok(status)) => {
                use std::os::unix::process::ExitStatusExt;
                Ok((output, status.code(), status.signal()))
            }
        };
        let _ = tx.send((u, result, started.elapsed()));
    });
    Ok(())
}

/// Write the states the run settled: every path a finished unit touched (in the build,
/// or in its traced re-run: `runs`, the re-run of each line by its id), the
/// touched-only files and the refreshed racily clean ones. A path whose content
/// differs from its recorded state is written only when every unit that reads or
/// writes it re-ran successfully or was cut off (else the next query must still see
/// it changed).
fn write_states(
    store: &mut Store,
    plan: &OutOfDate,
    done: &[Option<Done>],
    looks: &mut HashMap<i64, Look>,
    codes: &HashMap<usize, Option<i32>>,
    runs: &HashMap<i64, i64>,
) -> Result<usize> {
    let settled = |list: Option<&Vec<usize>>| {
        list.into_iter().flatten().all(|&u| {
            u != usize::MAX
                && matches!(
                    done.get(u).copied().flatten(),
                    Some(Done::Ok | Done::CutOff)
                )
        })
    };
    let mut paths: BTreeSet<i64> = plan.changed.keys().copied().collect();
    // What the re-runs did: paths new to the build's states get one too (a probe's
    // missing row included, so that its appearing is seen).
    let mut probed: HashSet<i64> = HashSet::new();
    for (u, unit) in plan.units.iter().enumerate() {
        if done[u] == Some(Done::Ok) {
            paths.extend(&unit.reads);
            paths.extend(&unit.writes);
            for (line, _) in &unit.lines {
                let Some(&run) = runs.get(&line.id) else {
                    continue;
                };
                let files = store.files_of_command(run)?;
                paths.extend(&files.reads);
                paths.extend(&files.writes);
                paths.extend(&files.probes);
                probed.extend(&files.probes);
            }
        }
    }
    let unnamed: Vec<i64> = paths
        .iter()
        .filter(|p| !plan.names.contains_key(p))
        .copied()
        .collect();
    let record = states::RecordFiles::of(store.path());
    let mut more = store.path_names(&unnamed)?;
    more.retain(|_, name| !states::stateless(name, &record));
    paths.retain(|p| plan.names.contains_key(p) || more.contains_key(p));
    let mut rows: Vec<PathState> = Vec::new();
    for p in paths {
        let look = match looks.remove(&p) {
            Some(look) => look,
            None => look_now(plan, &more, p),
        };
        let recorded = plan.recorded.get(&p).copied().flatten();
        if !plan.recorded.contains_key(&p) && look == Look::Missing {
            if probed.contains(&p) {
                rows.push((p, None));
            }
            continue;
        }
        let same = same_as_recorded(plan, p, &look);
        let state: Option<FileState> = match look {
            Look::File(s) => Some(s),
            Look::Missing => None,
            Look::Other => continue,
        };
        if same {
            if state != recorded {
                rows.push((p, state));
            }
        } else if settled(plan.readers.get(&p))
            // A symlink's content is its target's: made by the target's writers.
            && settled(plan.writers.get(plan.aliases.get(&p).unwrap_or(&p)))
        {
            rows.push((p, state));
        }
    }
    for (p, _, state) in &plan.touched {
        rows.push((*p, Some(*state)));
    }
    // Racily clean files found unchanged before the run, and still as they were then
    // (a re-run's output is written above, as the run left it).
    let written: HashSet<i64> = rows.iter().map(|(p, _)| *p).collect();
    for &(p, state) in &plan.refreshed {
        let Some(state) = state.filter(|_| !written.contains(&p)) else {
            continue;
        };
        if let Look::File(now) = look_now(plan, &HashMap::new(), p) {
            if now.same_stat(&state) {
                rows.push((p, Some(state)));
            }
        }
    }
    let mut reruns = Vec::new();
    for (u, unit) in plan.units.iter().enumerate() {
        if matches!(done[u], Some(Done::Ok | Done::Failed)) {
            let code = if done[u] == Some(Done::Ok) {
                Some(0)
            } else {
                codes.get(&u).copied().flatten()
            };
            reruns.extend(unit.lines.iter().map(|(l, _)| Rerun {
                command_id: l.id,
                exit_code: code,
                run: runs.get(&l.id).copied(),
            }));
        }
    }
    store.write_file_states(plan.build.id, &rows, None, Some(super::now_ns()))?;
    store.write_reruns(plan.build.id, super::now_ns(), &reruns)?;
    Ok(rows.len())
}
