//! The writer thread: the only code that writes the record during a build.
//!
//! Rows arrive on a channel and are written in transactions of up to a second, so a
//! build's rows are on disk within moments and the event loop never waits for SQLite.
//! Not shorter: each commit writes every index page dirtied since the last, and on a
//! traced glibc build commits every fifth of a second took over a quarter of the
//! writer's CPU; a page dirtied again within the second is written once. When the
//! channel closes everything left is committed and the build's DAG is computed. A write
//! that fails (a full disk) ends the recording, never the build: the rest is taken from
//! the channel and dropped, and the failure is reported when the build has ended.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::dumps::Dumps;
use super::ids::Blocks;
use crate::store::{
    BuildEnd, CommandEnd, CommandNotes, IdKind, MakeEnd, NewAccess, NewCommand, NewMake,
    NewProcess, Owner, ProcessExec, Store,
};

/// One thing to write.
#[derive(Debug)]
pub(crate) enum Write {
    Make(NewMake),
    MakeEnd(i64, MakeEnd),
    Command(NewCommand),
    CommandEnd(i64, CommandEnd),
    Notes(i64, CommandNotes),
    Process(NewProcess),
    ProcessExec {
        id: i64,
        exec: ProcessExec,
    },
    ProcessEnd {
        id: i64,
        ended_ns: i64,
        exit_code: Option<i32>,
    },
    /// The paths the recorder numbered since the last `Paths`, in order (the first has
    /// the number after the last one sent).
    Paths(Vec<std::sync::Arc<[u8]>>),
    /// An owner's accesses, and the paths it probed (numbers, repeats allowed: the store
    /// sorts and deduplicates them, off the event loop).
    Accesses {
        build_id: i64,
        owner: Owner,
        accesses: Vec<NewAccess>,
        probes: Vec<u32>,
    },
    BuildEnd(i64, BuildEnd),
    /// Reserve a block of ids and answer the event loop with it ([`super::ids`]).
    ReserveIds(IdKind, i64),
    /// The event loop has ended: the first id of each kind it did not use.
    IdsUsed(Vec<(IdKind, i64)>),
    /// Several of the above, in order (the event loop sends its rows in batches).
    Batch(Vec<Write>),
}

const BATCH_TIME: Duration = Duration::from_secs(1);
const BATCH_ROWS: usize = 20_000;

/// What the writer keeps besides the record: the id blocks it reserved, the make
/// database dumps it kept (redacted unless secrets are kept, compressed) with their
/// listings, and where each running make runs (its dump's listing needs it).
pub(crate) struct State {
    blocks: Blocks,
    dumps: Dumps,
    directories: std::collections::HashMap<i64, Vec<u8>>,
}

pub(crate) fn spawn(
    store: Store,
    blocks: Blocks,
    dumps: Dumps,
    rx: Receiver<Write>,
) -> std::thread::JoinHandle<Result<()>> {
    let state = State {
        blocks,
        dumps,
        directories: std::collections::HashMap::new(),
    };
    std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || write_all(store, state, rx))
        .expect("spawning the writer thread")
}

/// The writer's end: `Err` is what could not be recorded (the first failure; what came
/// after it was dropped), for one line at the end of the build. The build never waits
/// for or fails with the record.
fn write_all(mut store: Store, mut state: State, rx: Receiver<Write>) -> Result<()> {
    // Background work: never preempt the event loop (which trapped calls wait for) or
    // the build's jobs when woken.
    let _ = crate::trace::sys::set_batch();
    let mut end = None;
    let Err(error) = write_until_failure(&mut store, &mut state, &rx, &mut end) else {
        crate::trace::sys::report_thread_cpu("writer");
        state.dumps.report_cpu();
        return Ok(());
    };
    // The senders must never find the channel closed (make's output and the build's
    // events keep flowing): take the rest and drop it, but for how the build ended,
    // which a row that small may still find room for.
    store.rollback();
    let mut dropped = 0;
    for write in rx.iter() {
        dropped += write.rows();
        match write {
            Write::BuildEnd(id, build_end) => end = Some((id, build_end)),
            Write::ReserveIds(kind, _) => state.blocks.refuse(kind),
            _ => {}
        }
    }
    let ended = end.is_some_and(|(id, end)| store.finish_build(id, &end).is_ok());
    Err(anyhow::anyhow!(
        "{error:#}; nothing after it was recorded ({dropped} more rows){}",
        if ended {
            " but how the build ended"
        } else {
            ", not even how the build ended"
        }
    ))
}

/// Write what comes until the channel closes; `end`: how the build ended, once it came.
fn write_until_failure(
    store: &mut Store,
    state: &mut State,
    rx: &Receiver<Write>,
    end: &mut Option<(i64, BuildEnd)>,
) -> Result<()> {
    let mut open = false;
    let mut rows = 0;
    let mut since = Instant::now();
    let mut ended_build = None;
    loop {
        let timeout = if open {
            BATCH_TIME.saturating_sub(since.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        match rx.recv_timeout(timeout) {
            Ok(write) => {
                if !open {
                    store.begin()?;
                    open = true;
                    rows = 0;
                    since = Instant::now();
                }
                if let Write::BuildEnd(id, build_end) = &write {
                    ended_build = Some(*id);
                    *end = Some((*id, build_end.clone()));
                }
                rows += match &write {
                    Write::Batch(writes) => writes.len(),
                    _ => 1,
                };
                apply(store, state, write)?;
                if rows >= BATCH_ROWS || since.elapsed() >= BATCH_TIME {
                    store.commit()?;
                    open = false;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if open {
                    store.commit()?;
                    open = false;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if open {
        store.commit()?;
    }
    if let Some(build) = ended_build {
        store.begin()?;
        store
            .compute_edges(build)
            .context("computing the command graph")?;
        store.commit()?;
        // The tree is as the build left it (make has exited): what `rebuild` compares
        // with later.
        crate::rebuild::take_states(store, build).context("taking the files' states")?;
    }
    Ok(())
}

impl Write {
    fn rows(&self) -> usize {
        match self {
            Write::Batch(writes) => writes.iter().map(Write::rows).sum(),
            _ => 1,
        }
    }
}

fn apply(store: &mut Store, state: &mut State, write: Write) -> Result<()> {
    match write {
        Write::Make(m) => {
            store.insert_make(&m)?;
            state.directories.insert(m.id, m.directory);
        }
        Write::MakeEnd(id, end) => {
            // make's declared graph, from the database it dumped as it exited; then the
            // dump is kept (redacted, compressed).
            if let Some(path) = end.makedb_path.as_deref().filter(|p| !p.is_empty()) {
                let path = crate::paths::as_path(path);
                let directory = state.directories.remove(&id);
                let directory = directory.as_deref().map(crate::paths::as_path);
                if let Some(targets) = state.dumps.end_make(path, directory) {
                    store.insert_prereqs(id, &targets)?;
                }
            }
            store.finish_make(id, &end)?;
        }
        Write::Command(c) => store.insert_command(&c)?,
        Write::CommandEnd(id, end) => store.finish_command(id, &end)?,
        Write::Notes(id, notes) => store.note_command(id, &notes)?,
        Write::Process(p) => store.insert_process(&p)?,
        Write::ProcessExec { id, exec } => store.exec_process(id, &exec)?,
        Write::ProcessEnd {
            id,
            ended_ns,
            exit_code,
        } => store.finish_process(id, ended_ns, exit_code)?,
        Write::Paths(names) => store.number_paths(names),
        Write::Accesses {
            build_id,
            owner,
            accesses,
            probes,
        } => store.insert_accesses(build_id, owner, &accesses, &probes)?,
        Write::BuildEnd(id, end) => store.finish_build(id, &end)?,
        Write::ReserveIds(kind, count) => state.blocks.reserve(store, kind, count)?,
        Write::IdsUsed(used) => state.blocks.release(store, &used)?,
        Write::Batch(writes) => {
            for write in writes {
                apply(store, state, write)?;
            }
        }
    }
    Ok(())
}
