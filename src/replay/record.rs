//! A traced replay, written to the record as a new run of the command it re-ran: a
//! build of kind `replay` (which `log` and "the last build" skip), one command per
//! line that ran (a copy of the recorded line's row, `replay_of` naming it, its
//! status and times this run's), and the processes and file accesses the tracer saw,
//! stored as the recorder stores a build's. Written in one transaction once the run
//! is over: a replay cut short leaves nothing half-written.
//!
//! What it must never do: run anything, or change a recorded row.

use rustc_hash::FxHashMap as HashMap;

use super::exec::{LineTrace, Outcome, Status};
use super::plan::Plan;
use crate::access::AccessKind;
use crate::store::{
    BuildEnd, CommandEnd, IdKind, NewAccess, NewBuild, NewCommand, NewProcess, Owner, ProcessExec,
    Store, StoreError,
};
use crate::trace::Event;
use crate::util::join_nul;

/// What was written.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub build_id: i64,
    /// The new commands, one per line that ran, in order.
    pub command_ids: Vec<i64>,
}

/// The first ids of the replay's rows.
struct Ids {
    build: i64,
    command: i64,
    process: i64,
}

/// Write `outcome`'s traced lines as a new run of `plan`'s recipe. `argv`: how the
/// replay was asked for (NUL-separated), kept as the build's arguments.
pub fn record(
    store: &mut Store,
    plan: &Plan,
    outcome: &Outcome,
    argv: &[u8],
) -> Result<Recorded, StoreError> {
    let mut originals = Vec::with_capacity(outcome.lines.len());
    for line in &outcome.lines {
        let row = store.command(line.command_id)?.ok_or_else(|| {
            StoreError::Internal(format!("command {} left the record", line.command_id))
        })?;
        originals.push(row);
    }
    // Ids reserved in the transaction that uses them: a build being recorded into the
    // same record at the same time numbers from blocks of its own.
    let processes = outcome
        .lines
        .iter()
        .filter_map(|l| l.trace.as_ref())
        .flat_map(|t| &t.events)
        .filter(|e| matches!(e, Event::Process { .. }))
        .count() as i64;
    store.begin()?;
    let result = (|| {
        let ids = Ids {
            build: store.reserve_ids(IdKind::Build, 1)?.start,
            command: store
                .reserve_ids(IdKind::Command, outcome.lines.len().max(1) as i64)?
                .start,
            process: store.reserve_ids(IdKind::Process, processes.max(1))?.start,
        };
        write(store, plan, outcome, argv, &originals, ids)
    })();
    match result {
        Ok(recorded) => {
            store.commit()?;
            Ok(recorded)
        }
        Err(error) => {
            store.rollback();
            Err(error)
        }
    }
}

fn write(
    store: &mut Store,
    plan: &Plan,
    outcome: &Outcome,
    argv: &[u8],
    originals: &[crate::store::CommandRow],
    ids: Ids,
) -> Result<Recorded, StoreError> {
    let build_id = ids.build;
    let started_ns = outcome.lines.first().map_or(0, |l| l.started_ns);
    store.insert_build(&NewBuild {
        id: build_id,
        argv: argv.to_vec(),
        directory: plan.directory.clone(),
        started_ns,
        traced: true,
    })?;
    store.mark_replay_build(build_id)?;
    let mut next_process = ids.process;
    let mut keys_given = 0u32;
    let mut command_ids = Vec::new();
    for (i, (line, original)) in outcome.lines.iter().zip(originals).enumerate() {
        let id = ids.command + i as i64;
        command_ids.push(id);
        let shell_pid = line.trace.as_ref().and_then(|t| {
            t.events.iter().find_map(|e| match e {
                Event::Process { pid, .. } => Some(*pid),
                _ => None,
            })
        });
        store.insert_command(&NewCommand {
            id,
            build_id,
            make_id: None,
            job: original.job,
            line_index: original.line_index,
            target: original.target.clone(),
            recipe_file: original.recipe_file.clone().unwrap_or_default(),
            recipe_line: original.recipe_line.unwrap_or(0),
            newer: original.newer.clone().unwrap_or_default(),
            target_existed: original.target_existed.unwrap_or(false),
            directory: original.directory.clone(),
            shell: join_nul(original.shell.iter().flatten()),
            shell_flags: join_nul(original.shell_flags.iter().flatten()),
            command: original.command.clone(),
            // As recorded (secrets redacted), not as this run filled it in.
            env: join_nul(&original.env),
            pid: shell_pid.unwrap_or(0),
            started_ns: line.started_ns,
            traced: line.trace.is_some(),
            label: original.label.clone().unwrap_or_default(),
        })?;
        store.mark_replay_of(id, original.id)?;
        if let Some(trace) = &line.trace {
            next_process = write_trace(store, build_id, id, trace, next_process, keys_given)?;
            keys_given += trace.paths.len() as u32;
        }
        let (exit_code, signal) = match line.status {
            Status::Exited(code) => (Some(code), None),
            Status::Signaled(signal) => (None, Some(signal)),
        };
        let last = i + 1 == outcome.lines.len();
        store.finish_command(
            id,
            &CommandEnd {
                ended_ns: line.ended_ns,
                state: match line.status {
                    Status::Exited(0) => "ok",
                    Status::Exited(_) => "failed",
                    Status::Signaled(_) => "killed",
                },
                exit_code,
                signal,
                traced: i64::from(line.trace.is_some()),
                // The replay's leftovers are named once, on the line that ran last.
                left_behind: if last {
                    join_nul(&outcome.killed)
                } else {
                    Vec::new()
                },
                ..CommandEnd::default()
            },
        )?;
    }
    let ended_ns = outcome.lines.last().map_or(started_ns, |l| l.ended_ns);
    let status = outcome.exit_status();
    store.finish_build(
        build_id,
        &BuildEnd {
            ended_ns,
            state: if status == 0 { "complete" } else { "failed" },
            exit_code: Some(i32::from(status)),
            signal: None,
            hooks_failed: false,
        },
    )?;
    Ok(Recorded {
        build_id,
        command_ids,
    })
}

/// One line's processes and accesses, as the recorder stores a command's; the paths
/// are numbered for the store after the `keys_given` of earlier lines. Returns the
/// next free process id.
fn write_trace(
    store: &mut Store,
    build_id: i64,
    command_id: i64,
    trace: &LineTrace,
    mut next_process: i64,
    keys_given: u32,
) -> Result<i64, StoreError> {
    store.number_paths(trace.paths.names_from(0).to_vec());
    let mut processes: Vec<NewProcess> = Vec::new();
    // By pid, the process running under it now (pids are reused).
    let mut live: HashMap<i32, usize> = HashMap::default();
    let mut accesses: HashMap<(u32, u8), NewAccess> = HashMap::default();
    let mut probes = Vec::new();
    for event in &trace.events {
        match event {
            Event::Process { pid, ppid, time_ns } => {
                live.insert(*pid, processes.len());
                processes.push(NewProcess {
                    id: next_process,
                    build_id,
                    command_id: Some(command_id),
                    make_id: None,
                    pid: *pid,
                    parent_pid: Some(*ppid),
                    started_ns: *time_ns,
                    exec: None,
                    end: None,
                });
                next_process += 1;
            }
            Event::Exec {
                pid,
                path,
                argv,
                cwd,
                ..
            } => {
                if let Some(&i) = live.get(pid) {
                    processes[i].exec = Some(ProcessExec {
                        exe: path.clone(),
                        argv: join_nul(argv),
                        cwd: cwd.clone(),
                    });
                }
            }
            Event::Exit { pid, code, time_ns } => {
                if let Some(i) = live.remove(pid) {
                    processes[i].end = Some((*time_ns, Some(*code)));
                }
            }
            Event::Gone { pid, time_ns } => {
                if let Some(i) = live.remove(pid) {
                    processes[i].end = Some((*time_ns, None));
                }
            }
            Event::Access {
                pid,
                path,
                kind,
                time_ns,
            } => {
                let key = keys_given + path.0;
                if *kind == AccessKind::Probe {
                    probes.push(key);
                    continue;
                }
                let process_id = live.get(pid).map(|&i| processes[i].id);
                accesses
                    .entry((key, kind.id()))
                    .and_modify(|a| a.count += 1)
                    .or_insert(NewAccess {
                        key,
                        kind: kind.id(),
                        process_id,
                        first_ns: *time_ns,
                        count: 1,
                    });
            }
            Event::Lost { .. } => {}
        }
    }
    for process in &processes {
        store.insert_process(process)?;
    }
    let accesses: Vec<NewAccess> = accesses.into_values().collect();
    store.insert_accesses(build_id, Owner::Command(command_id), &accesses, &probes)?;
    Ok(next_process)
}
