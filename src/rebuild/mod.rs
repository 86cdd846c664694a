//! Rebuild: what is out of date, from the record alone, and re-running it without make.
//!
//! The record keeps each file's state as the build left it ([`take_states`], called by
//! the recorder after make exits; `store::FileState`). [`out_of_date`] compares the tree
//! with those states (a scan of stats; only files whose stat changed are hashed) and
//! decides, per recipe (the lines one make job ran), whether it must run again and the
//! first reason why: a file it read or executed has different content, a file it wrote
//! is missing or was changed by someone else, a path it probed and found missing now
//! exists, or it never finished (an interrupted build) or failed. A touched file with
//! the same content changes nothing. Recipes downstream of those (the record's DAG,
//! writer → reader) may have to follow: [`run`] decides that as it goes, from what the
//! re-runs really wrote (early cutoff: a recipe whose inputs came out byte-identical is
//! skipped). Sub-make lines are containers: their leaf commands are what re-runs.
//!
//! This module never starts make and never prints; it writes only the record's file
//! states and re-run rows (after a run), never the build's own rows.

mod run;
pub mod states;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::Instant;

use anyhow::{bail, Result};

pub use run::{run, RunEvent, RunSummary};
use states::Look;

use crate::config::Config;
use crate::paths::as_path;
use crate::store::{BuildRow, CommandFiles, FileState, PathState, StatesTaken, Store, StoreError};
use crate::util::lossy;

/// What to rebuild and how, in plain values (the command line builds this).
#[derive(Debug, Clone, Default)]
pub struct RebuildOptions {
    /// Targets (as `show` takes a REF: a target, a path a command wrote, an id); empty:
    /// the whole build.
    pub targets: Vec<Vec<u8>>,
    /// Recipes run at once (at least 1).
    pub jobs: usize,
    /// List what would run; run nothing, write nothing.
    pub dry_run: bool,
    /// Go on after a failure with whatever does not depend on it.
    pub keep_going: bool,
    /// Take the build's file states now (a build recorded without them); run nothing.
    pub take_states: bool,
    /// The build to bring up to date; `None`: the last one.
    pub build: Option<i64>,
    /// Trace each re-run and record it as a replay of its command (what it read and
    /// wrote then is what the next query uses); else the build's accesses stay.
    pub trace: bool,
}

/// How close to the taking of a state a file's mtime makes the state "racily clean":
/// a file system's timestamp tick (a second on the coarsest in use for builds), plus
/// the lag of the kernel's coarse clock that stamps writes.
pub const RACY_TICK_NS: i64 = 1_000_000_000;

/// Take the file states of a finished build: every path its commands read, executed,
/// wrote or probed, stat'ed, and hashed unless the newest earlier build's state of it
/// has the same stat. Nothing for an untraced build. Called by the recorder after make
/// exited (the tree is then as the build left it).
pub fn take_states(store: &mut Store, build_id: i64) -> Result<Option<StatesTaken>, StoreError> {
    let traced = store.build(build_id)?.is_some_and(|b| b.traced);
    if !traced {
        return Ok(None);
    }
    let start = Instant::now();
    let record = states::RecordFiles::of(store.path());
    let paths = store.touched_paths(build_id)?;
    let known = store.previous_states(build_id)?;
    let paths: Vec<(i64, &[u8], bool)> = paths
        .iter()
        .filter(|(_, p, _)| !states::stateless(p, &record))
        .map(|(id, p, probed)| (*id, p.as_slice(), *probed))
        .collect();
    let looked: Vec<(i64, &[u8])> = paths.iter().map(|(id, p, _)| (*id, *p)).collect();
    let looks = states::look_all(&looked, &known, states::threads());
    let mut rows: Vec<PathState> = Vec::with_capacity(paths.len());
    let (mut files, mut hashed) = (0, 0);
    for ((id, _, probed), (look, read)) in paths.iter().zip(looks) {
        match look {
            Look::File(state) => {
                files += 1;
                hashed += i64::from(read);
                rows.push((*id, Some(state)));
            }
            // A missing path matters only if it appears where a command looked for it;
            // a temporary file written and removed (gcc's /tmp/cc*.s) never does.
            Look::Missing if *probed => rows.push((*id, None)),
            Look::Missing | Look::Other => {}
        }
    }
    let taken = StatesTaken {
        taken_ns: now_ns(),
        files,
        hashed,
        seconds: start.elapsed().as_secs_f64(),
    };
    store.write_file_states(build_id, &rows, Some(taken), None)?;
    Ok(Some(taken))
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Why a recipe must run again (its first reason), in the user's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A file it read or executed has other content now.
    Changed(String),
    /// A file it read or executed is gone.
    InputMissing(String),
    /// A file it wrote is gone.
    OutputMissing(String),
    /// A file it wrote has other content than the build left (someone else wrote it).
    OutputChanged(String),
    /// A path it looked for and did not find exists now; `shadows`: the file of the
    /// same name it read instead.
    Appeared {
        path: String,
        shadows: Option<String>,
    },
    /// The recorded build never saw it finish (interrupted).
    NeverFinished,
    /// It failed, in the build or in the last rebuild.
    Failed(String),
    /// Not out of date itself: it reads what an out-of-date recipe writes, and runs if
    /// that recipe's re-run changes it.
    After(String),
    /// Downstream, and an upstream re-run changed a file it reads.
    Remade(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Changed(p) => write!(f, "{p} changed"),
            Reason::InputMissing(p) | Reason::OutputMissing(p) => write!(f, "{p} missing"),
            Reason::OutputChanged(p) => write!(f, "{p} changed since the build wrote it"),
            Reason::Appeared {
                path,
                shadows: Some(old),
            } => {
                write!(f, "new file {path} shadows {old}")
            }
            Reason::Appeared {
                path,
                shadows: None,
            } => {
                write!(f, "new file {path} (it was looked for and missing)")
            }
            Reason::NeverFinished => write!(f, "never finished (the build was interrupted)"),
            Reason::Failed(how) => write!(f, "{how}"),
            Reason::After(label) => write!(
                f,
                "after {label} (skipped if that leaves its outputs byte-identical)"
            ),
            Reason::Remade(p) => write!(f, "{p} changed (remade)"),
        }
    }
}

/// A recorded command of the build, as the query needs it.
pub use crate::store::CommandHead as Leaf;

/// What re-runs as one: a recipe's lines (or, in a recipe that also runs a sub-make,
/// one line alone, since the sub-make is not re-run).
#[derive(Debug, Clone)]
pub struct Unit {
    /// Its commands (recipe lines), in order, with their line numbers (from 1).
    pub lines: Vec<(Leaf, usize)>,
    /// Whether the unit is the whole recipe (else one line, run with `--line`).
    pub whole: bool,
    /// Why it must run: its own first reason, or [`Reason::After`] an upstream unit.
    pub reason: Reason,
    /// Whether it is out of date by itself (else only downstream of such units).
    pub direct: bool,
    /// Candidate units it runs after (indices into [`OutOfDate::units`]).
    pub after: Vec<usize>,
    /// Files it reads, executes or probes; files it writes (path ids).
    pub reads: Vec<i64>,
    pub writes: Vec<i64>,
}

impl Unit {
    /// Its first command.
    pub fn first(&self) -> &Leaf {
        &self.lines[0].0
    }
}

/// The answer: what is out of date in a build, in dependency order.
#[derive(Debug)]
pub struct OutOfDate {
    pub build: BuildRow,
    /// Units to consider, in an order where every unit comes after those it reads from.
    pub units: Vec<Unit>,
    /// Paths whose stat changed but whose content did not (a `touch`): nothing re-runs
    /// for them; after a run their new stats are written.
    pub touched: Vec<(i64, String, FileState)>,
    /// Racily clean states found unchanged and no longer racy: rewritten (taken now)
    /// after a run, so that the next check trusts their stat again.
    pub refreshed: Vec<PathState>,
    /// Paths whose content or existence changed since the build: id → name.
    pub changed: HashMap<i64, String>,
    /// Files and probed paths checked.
    pub checked: usize,
    /// The recorded states, by path id.
    pub recorded: HashMap<i64, Option<FileState>>,
    /// Every leaf unit reading (or probing) each path, and writing it: for deciding which
    /// states a run may write.
    pub readers: HashMap<i64, Vec<usize>>,
    pub writers: HashMap<i64, Vec<usize>>,
    /// How long the check took.
    pub seconds: f64,
    /// The top directory, for path names.
    pub top: Vec<u8>,
    /// Every path with a recorded state, by id.
    pub names: HashMap<i64, Vec<u8>>,
    /// Paths units read that are symbolic links now, to the path of the file they lead
    /// to (`libc.so.6` → `libc.so`): whoever writes the file is upstream of their
    /// readers, and its re-making changes what they read.
    pub aliases: HashMap<i64, i64>,
}

impl OutOfDate {
    /// A path's name as the user reads it (relative to the top directory when under it).
    pub fn show(&self, path: i64) -> String {
        self.names
            .get(&path)
            .map_or_else(|| format!("path {path}"), |p| show_path(&self.top, p))
    }

    /// Units out of date by themselves.
    pub fn direct(&self) -> usize {
        self.units.iter().filter(|u| u.direct).count()
    }
}

/// Why rebuild cannot start. Each is one line; nothing has run.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("build {0} was not traced: rebuild needs a traced build (run `makescope make` without --no-trace)")]
    Untraced(i64),
    #[error("build {0} has no file states (recorded by an older makescope): record it again with `makescope make`")]
    NoStates(i64),
    #[error("build {0} is still being recorded; wait for it to end")]
    Running(i64),
    #[error("the build's directory {0} no longer exists (was the tree moved?); rebuild runs commands where they were recorded")]
    Moved(String),
}

/// The out-of-date query for the build `options` name (the last one by default).
pub fn out_of_date(config: &Config, options: &RebuildOptions) -> Result<OutOfDate> {
    let (store, build) = config.open_build(options.build)?;
    query(&store, build, &options.targets)
}

/// [`out_of_date`] on an open record.
pub fn query(store: &Store, build: BuildRow, targets: &[Vec<u8>]) -> Result<OutOfDate> {
    let start = Instant::now();
    if !build.traced {
        bail!(RebuildError::Untraced(build.id));
    }
    if build.state == "running" && !store.cut_off(&build) {
        bail!(RebuildError::Running(build.id));
    }
    if !as_path(&build.directory).is_dir() {
        bail!(RebuildError::Moved(lossy(&build.directory).into_owned()));
    }
    let Some(recorded) = store.file_states(build.id, true)? else {
        bail!(RebuildError::NoStates(build.id));
    };
    let top = build.directory.clone();
    // Resolve targets first: a bad one is refused before anything is looked at.
    let mut wanted = Vec::new();
    for target in targets {
        wanted.extend(crate::query::resolve(store, &build, target)?);
        // A sub-make line's target (`lib/libfoo.a: ; $(MAKE) -C lib`) is a container:
        // what wrote the file is what it needs.
        let cwd = std::env::current_dir().map(|d| {
            use std::os::unix::ffi::OsStrExt;
            d.as_os_str().as_bytes().to_vec()
        });
        for base in [cwd.unwrap_or_default(), build.directory.clone()] {
            wanted.extend(store.writers_of(build.id, &crate::paths::absolute(&base, target))?);
        }
    }
    // Racily clean states are hashed again: their stat cannot vouch for their content.
    let racy = store.racy_states(build.id, RACY_TICK_NS)?;
    let known: HashMap<i64, FileState> = recorded
        .iter()
        .filter(|(id, _, _)| !racy.contains(id))
        .filter_map(|(id, _, s)| Some((*id, (*s)?)))
        .collect();
    let paths: Vec<(i64, &[u8])> = recorded
        .iter()
        .map(|(id, p, _)| (*id, p.as_slice()))
        .collect();
    let looks = states::look_all(&paths, &known, states::threads());
    let mut changed = HashMap::new();
    let mut touched = Vec::new();
    let mut refreshed = Vec::new();
    let mut now: HashMap<i64, Look> = HashMap::new();
    let checked_ns = now_ns();
    for ((id, path, before), (look, _)) in recorded.iter().zip(looks) {
        let differs = match (before, look) {
            (Some(b), Look::File(n)) => {
                if b.hash == n.hash {
                    if !b.same_stat(&n) {
                        touched.push((*id, show_path(&top, path), n));
                    } else if racy.contains(id) && checked_ns - n.mtime_ns > RACY_TICK_NS {
                        // Hashed, the same, and no longer racy: a state taken now
                        // vouches for it again.
                        refreshed.push((*id, Some(n)));
                    }
                    false
                } else {
                    true
                }
            }
            (Some(_), _) => true,
            (None, Look::File(_)) => true,
            (None, _) => false,
        };
        if differs {
            changed.insert(*id, show_path(&top, path));
            now.insert(*id, look);
        }
    }
    let unfinished = store.unsettled_commands(build.id)? > 0;
    let mut recorded_map: HashMap<i64, Option<FileState>> = HashMap::with_capacity(recorded.len());
    let mut names = HashMap::with_capacity(recorded.len());
    for (id, name, state) in recorded {
        recorded_map.insert(id, state);
        names.insert(id, name);
    }
    let mut answer = OutOfDate {
        build,
        units: Vec::new(),
        touched,
        refreshed,
        changed,
        checked: recorded_map.len(),
        recorded: recorded_map,
        readers: HashMap::new(),
        writers: HashMap::new(),
        seconds: 0.0,
        top,
        names,
        aliases: HashMap::new(),
    };
    if answer.changed.is_empty() && !unfinished {
        // The no-op case: a scan of stats, nothing else loaded.
        answer.seconds = start.elapsed().as_secs_f64();
        return Ok(answer);
    }
    let reruns = store.reruns(answer.build.id)?;
    let leaves = leaves(store, answer.build.id)?;
    let mut files = store.command_files(answer.build.id)?;
    // A line rebuild re-ran traced: what it did then is what it does.
    let followed = store.rerun_files(answer.build.id)?;
    let followed_ids: HashSet<i64> = followed.keys().copied().collect();
    files.extend(followed);
    plan_units(
        store,
        &mut answer,
        leaves,
        &files,
        &followed_ids,
        &reruns,
        &now,
        &wanted,
    )?;
    answer.seconds = start.elapsed().as_secs_f64();
    Ok(answer)
}

/// `a/b.c` relative to the top directory when under it, else absolute.
fn show_path(top: &[u8], path: &[u8]) -> String {
    let top = if top.ends_with(b"/") {
        &top[..top.len() - 1]
    } else {
        top
    };
    if path.len() > top.len() + 1 && path.starts_with(top) && path[top.len()] == b'/' {
        lossy(&path[top.len() + 1..]).into_owned()
    } else {
        lossy(path).into_owned()
    }
}

/// The build's commands that run no sub-make.
fn leaves(store: &Store, build_id: i64) -> Result<Vec<Leaf>, StoreError> {
    let mut commands = store.command_heads(build_id)?;
    commands.retain(|c| c.traced != 2);
    Ok(commands)
}

/// A recipe: its make and job number.
type RecipeKey = (Option<i64>, i64);

#[allow(clippy::too_many_arguments)]
fn plan_units(
    store: &Store,
    answer: &mut OutOfDate,
    leaves: Vec<Leaf>,
    files: &HashMap<i64, CommandFiles>,
    followed: &HashSet<i64>,
    reruns: &HashMap<i64, Option<i32>>,
    now: &HashMap<i64, Look>,
    wanted: &[i64],
) -> Result<()> {
    let containers: HashSet<RecipeKey> = store.submake_jobs(answer.build.id)?.into_iter().collect();
    // Group lines into recipes, in start order of their first line.
    let mut recipes: Vec<(RecipeKey, Vec<Leaf>)> = Vec::new();
    let mut index: HashMap<RecipeKey, usize> = HashMap::new();
    for leaf in leaves {
        let key = (leaf.make_id, leaf.job);
        let i = *index.entry(key).or_insert_with(|| {
            recipes.push((key, Vec::new()));
            recipes.len() - 1
        });
        recipes[i].1.push(leaf);
    }
    let mut units: Vec<Unit> = Vec::new();
    for (key, mut lines) in recipes {
        lines.sort_by_key(|l| (l.line_index, l.id));
        let numbered: Vec<(Leaf, usize)> = lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| (l, i + 1))
            .collect();
        let whole = !containers.contains(&key);
        let groups: Vec<Vec<(Leaf, usize)>> = if whole {
            vec![numbered]
        } else {
            numbered.into_iter().map(|l| vec![l]).collect()
        };
        for lines in groups {
            let mut reads = Vec::new();
            let mut writes = Vec::new();
            for (leaf, _) in &lines {
                if let Some(f) = files.get(&leaf.id) {
                    reads.extend(&f.reads);
                    reads.extend(&f.probes);
                    writes.extend(&f.writes);
                }
            }
            reads.sort_unstable();
            reads.dedup();
            writes.sort_unstable();
            writes.dedup();
            units.push(Unit {
                lines,
                whole,
                reason: Reason::NeverFinished,
                direct: false,
                after: Vec::new(),
                reads,
                writes,
            });
        }
    }
    units.sort_by_key(|u| (u.first().started_ns, u.first().id));
    // Own reasons. A new file's "shadows": the file of the same name the unit read
    // instead, the one sharing the longest tail with it.
    let shadow = |unit: &Unit, probe: i64| -> Option<String> {
        let mut ids: Vec<i64> = unit.reads.clone();
        ids.push(probe);
        let names = store.path_names(&ids).ok()?;
        let path = names.get(&probe)?.clone();
        let name = path.rsplit(|&b| b == b'/').next()?;
        let mut best: Option<(usize, &Vec<u8>)> = None;
        for id in &unit.reads {
            if answer.changed.contains_key(id) {
                continue;
            }
            let Some(full) = names.get(id) else { continue };
            if full.rsplit(|&b| b == b'/').next() == Some(name) && *full != path {
                let common = full
                    .iter()
                    .rev()
                    .zip(path.iter().rev())
                    .take_while(|(a, b)| a == b)
                    .count();
                if best.map_or(true, |(c, _)| common > c) {
                    best = Some((common, full));
                }
            }
        }
        best.map(|(_, full)| show_path(&answer.top, full))
    };
    for unit in &mut units {
        let mut reason = None;
        for (leaf, _) in &unit.lines {
            let how = match reruns.get(&leaf.id) {
                Some(Some(0)) => None,
                Some(Some(code)) => Some(Reason::Failed(format!(
                    "failed when rebuild last re-ran it (exit {code})"
                ))),
                Some(None) => Some(Reason::Failed(
                    "was killed when rebuild last re-ran it".into(),
                )),
                None => match leaf.state.as_str() {
                    "ok" => None,
                    "running" | "lost" => Some(Reason::NeverFinished),
                    _ => Some(Reason::Failed(match (leaf.exit_code, leaf.signal) {
                        (_, Some(signal)) => format!("was killed by signal {signal} in the build"),
                        (Some(code), _) => format!("failed in the build (exit {code})"),
                        _ => "did not finish in the build".into(),
                    })),
                },
            };
            if how.is_some() {
                reason = how;
                break;
            }
        }
        if reason.is_none() {
            for (leaf, _) in &unit.lines {
                let Some(f) = files.get(&leaf.id) else {
                    continue;
                };
                let found = f
                    .reads
                    .iter()
                    .find_map(|id| {
                        let name = answer.changed.get(id)?;
                        Some(match now.get(id) {
                            Some(Look::File(_)) => Reason::Changed(name.clone()),
                            _ => Reason::InputMissing(name.clone()),
                        })
                    })
                    .or_else(|| {
                        f.writes.iter().find_map(|id| {
                            let name = answer.changed.get(id)?;
                            // A path the build left missing that exists now is no
                            // reason to re-run what once wrote it.
                            answer.recorded.get(id)?.as_ref()?;
                            Some(match now.get(id) {
                                Some(Look::File(_)) => Reason::OutputChanged(name.clone()),
                                _ => Reason::OutputMissing(name.clone()),
                            })
                        })
                    })
                    .or_else(|| {
                        f.probes.iter().find_map(|id| {
                            let name = answer.changed.get(id)?;
                            matches!(now.get(id), Some(Look::File(_))).then(|| Reason::Appeared {
                                path: name.clone(),
                                shadows: shadow(unit, *id),
                            })
                        })
                    });
                if found.is_some() {
                    reason = found;
                    break;
                }
            }
        }
        if let Some(reason) = reason {
            unit.reason = reason;
            unit.direct = true;
        }
    }
    // Who reads and writes each path.
    let mut readers: HashMap<i64, Vec<usize>> = HashMap::new();
    let mut writers: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, unit) in units.iter().enumerate() {
        for &p in &unit.reads {
            readers.entry(p).or_default().push(i);
        }
        for &p in &unit.writes {
            writers.entry(p).or_default().push(i);
        }
    }
    // Edges between units (writer → later reader), from the record's DAG.
    let mut unit_of: HashMap<i64, usize> = HashMap::new();
    for (i, unit) in units.iter().enumerate() {
        for (leaf, _) in &unit.lines {
            unit_of.insert(leaf.id, i);
        }
    }
    let mut next: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); units.len()];
    for (from, to) in store.edges(answer.build.id)? {
        if let (Some(&a), Some(&b)) = (unit_of.get(&from), unit_of.get(&to)) {
            if a < b {
                next[a].insert(b);
            }
        }
    }
    // A file read through a symbolic link: its writer is upstream of the reader (the
    // record joins them only by the name each used).
    let by_name: HashMap<&[u8], i64> = answer
        .names
        .iter()
        .map(|(id, name)| (name.as_slice(), *id))
        .collect();
    let mut aliases = HashMap::new();
    for &p in readers.keys() {
        let Some(name) = answer.names.get(&p) else {
            continue;
        };
        let link = std::fs::symlink_metadata(as_path(name)).is_ok_and(|m| m.is_symlink());
        if !link {
            continue;
        }
        let Ok(target) = std::fs::canonicalize(as_path(name)) else {
            continue;
        };
        use std::os::unix::ffi::OsStrExt;
        if let Some(&t) = by_name.get(target.as_os_str().as_bytes()) {
            if t != p {
                aliases.insert(p, t);
            }
        }
    }
    for (&p, &t) in &aliases {
        for &w in writers.get(&t).into_iter().flatten() {
            for &r in readers.get(&p).into_iter().flatten() {
                if w < r {
                    next[w].insert(r);
                }
            }
        }
    }
    answer.aliases = aliases;
    // A line whose files are those of its last re-run may read or write what the
    // build's DAG does not join it by: its edges come from the files themselves.
    for (i, unit) in units.iter().enumerate() {
        if !unit.lines.iter().any(|(l, _)| followed.contains(&l.id)) {
            continue;
        }
        for p in &unit.reads {
            for &w in writers.get(p).into_iter().flatten() {
                if w < i {
                    next[w].insert(i);
                }
            }
        }
        for p in &unit.writes {
            for &r in readers.get(p).into_iter().flatten() {
                if i < r {
                    next[i].insert(r);
                }
            }
        }
    }
    // Everything downstream of an out-of-date unit is a candidate.
    let mut candidate: Vec<bool> = units.iter().map(|u| u.direct).collect();
    let mut first_cause: Vec<Option<usize>> = vec![None; units.len()];
    for a in 0..units.len() {
        if !candidate[a] {
            continue;
        }
        for &b in &next[a] {
            if !candidate[b] {
                candidate[b] = true;
                first_cause[b] = Some(a);
            }
        }
    }
    // With targets: only what they need (the units they name, and those upstream).
    if !wanted.is_empty() {
        let mut needed = vec![false; units.len()];
        let mut stack: Vec<usize> = wanted
            .iter()
            .filter_map(|id| unit_of.get(id).copied())
            .collect();
        let mut prev: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
        for (a, set) in next.iter().enumerate() {
            for &b in set {
                prev[b].push(a);
            }
        }
        while let Some(u) = stack.pop() {
            if !needed[u] {
                needed[u] = true;
                stack.extend(&prev[u]);
            }
        }
        for (c, n) in candidate.iter_mut().zip(needed) {
            *c &= n;
        }
    }
    // Keep the candidates, renumbered.
    let mut new_index = vec![usize::MAX; units.len()];
    let mut kept = Vec::new();
    for (i, unit) in units.into_iter().enumerate() {
        if candidate[i] {
            new_index[i] = kept.len();
            kept.push((i, unit));
        }
    }
    let labels: Vec<String> = kept
        .iter()
        .map(|(_, u)| unit_label(u, &answer.top))
        .collect();
    let mut before: Vec<Vec<usize>> = vec![Vec::new(); next.len()];
    for (a, set) in next.iter().enumerate() {
        if new_index[a] != usize::MAX {
            for &b in set {
                before[b].push(new_index[a]);
            }
        }
    }
    for (i, unit) in kept.iter_mut() {
        unit.after = std::mem::take(&mut before[*i]);
        if !unit.direct {
            let cause = first_cause[*i]
                .map(|c| new_index[c])
                .filter(|&c| c != usize::MAX);
            let cause = cause.or_else(|| unit.after.first().copied());
            unit.reason = Reason::After(cause.map_or_else(String::new, |c| labels[c].clone()));
        }
    }
    let remap = |list: HashMap<i64, Vec<usize>>| -> HashMap<i64, Vec<usize>> {
        list.into_iter()
            .map(|(p, us)| {
                // An index past the candidates stands for a unit that is not re-run.
                (
                    p,
                    us.into_iter()
                        .map(|u| {
                            if new_index[u] == usize::MAX {
                                usize::MAX
                            } else {
                                new_index[u]
                            }
                        })
                        .collect(),
                )
            })
            .collect()
    };
    answer.readers = remap(readers);
    answer.writers = remap(writers);
    answer.units = kept.into_iter().map(|(_, u)| u).collect();
    Ok(())
}

/// `CC string/strlen.o`: the recorded label, else the default rules' label.
pub fn unit_label(unit: &Unit, top: &[u8]) -> String {
    let label = label_of(unit.first(), top);
    format!("{} {}", label.verb, label.object)
}

/// A command's label: the recorded one (a user's hook may have made it), else the
/// default rules'.
pub fn label_of(leaf: &Leaf, top: &[u8]) -> crate::output::Label {
    if let Some((verb, object)) = leaf.label.as_deref().and_then(|l| l.split_once(' ')) {
        return crate::output::Label {
            verb: verb.to_string(),
            object: object.to_string(),
        };
    }
    crate::output::default_label(&info_of(leaf, top))
}

/// What the output rules see of a command.
pub fn info_of(leaf: &Leaf, top: &[u8]) -> crate::output::CommandInfo {
    crate::output::CommandInfo {
        id: leaf.id,
        target: leaf.target.clone(),
        directory: leaf.directory.clone(),
        top_directory: top.to_vec(),
        command: leaf.command.clone(),
        recipe_file: leaf.recipe_file.clone().unwrap_or_default(),
        recipe_line: leaf.recipe_line.unwrap_or(0) as u32,
        make_level: leaf.make_level.unwrap_or(0) as u32,
    }
}
