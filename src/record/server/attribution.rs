//! Which make or command each process (and so each event) belongs to.
//!
//! Attribution is by process ancestry, kept in a map keyed by pid: a shim's pid belongs
//! to its command (registered by its `CommandStart`), a make's pid to that make
//! (`MakeStart`), and any other process to the owner of its nearest known ancestor.
//! Shims are child subreapers, so orphans still lead back to their command. A pid is
//! forgotten when its process exits, so a reused pid starts afresh.
//!
//! make's own ring is attributed here too: its records name pids that may not have
//! announced themselves yet. Nothing here writes rows or talks to anyone.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::time::{Duration, Instant};

use super::accesses::Accesses;
use crate::store::Owner;
use crate::trace::{self, PathTable};

/// How a process's owner is found, and what the announced processes are.
#[derive(Default)]
pub(super) struct Attribution {
    /// Each known pid's owner: the announced ones and their descendants seen so far.
    owners: HashMap<i32, Owner>,
    /// Pids registered by an announcement (a shim's, a make's): theirs until the owner
    /// ends, whatever the tracer says of them meanwhile.
    roots: HashSet<i32>,
    /// make processes by pid: their make ids.
    makes: HashMap<i32, i64>,
    /// Traced processes by pid: their process ids.
    processes: HashMap<i32, i64>,
    /// Lines run so far by each (make pid, job).
    job_lines: HashMap<(i32, u64), i64>,
    /// The first make's id.
    top_make: Option<i64>,
}

impl Attribution {
    /// The owner of a process: its own registration or its nearest known ancestor's.
    pub fn owner_of(&mut self, pid: i32) -> Option<Owner> {
        let mut chain = Vec::new();
        let mut current = pid;
        let owner = loop {
            if let Some(&owner) = self.owners.get(&current) {
                break Some(owner);
            }
            if current <= 1 || chain.len() > 64 {
                break None;
            }
            chain.push(current);
            match trace::parent_of(current) {
                Some(parent) => current = parent,
                None => break None,
            }
        };
        if let Some(owner) = owner {
            for pid in chain {
                self.owners.insert(pid, owner);
            }
        }
        owner
    }

    /// The owner registered for this very pid, if any.
    pub fn registered(&self, pid: i32) -> Option<Owner> {
        self.owners.get(&pid).copied()
    }

    /// The make id of a make process.
    pub fn make(&self, pid: i32) -> Option<i64> {
        self.makes.get(&pid).copied()
    }

    pub fn top_make(&self) -> Option<i64> {
        self.top_make
    }

    /// A make announced itself.
    pub fn make_started(&mut self, pid: i32, id: i64) {
        self.makes.insert(pid, id);
        self.top_make.get_or_insert(id);
        self.owners.insert(pid, Owner::Make(id));
        self.roots.insert(pid);
    }

    /// Make `id` (process `pid`) is gone: its pid and its jobs' line counts are
    /// forgotten, unless the pid is another make's by now (a make that re-executes
    /// itself announces its new image before its old connection's close may be read).
    pub fn make_gone(&mut self, pid: i32, id: i64) {
        if self.makes.get(&pid) != Some(&id) {
            return;
        }
        self.makes.remove(&pid);
        self.release_root(pid, Owner::Make(id));
        self.job_lines.retain(|&(make, _), _| make != pid);
    }

    /// A recipe line's shim announced itself.
    pub fn command_started(&mut self, shim_pid: i32, id: i64) {
        self.owners.insert(shim_pid, Owner::Command(id));
        self.roots.insert(shim_pid);
    }

    /// The position of the next line of a make's job in its recipe (0 for the first).
    pub fn next_line(&mut self, make_pid: i32, job: u64) -> i64 {
        let line = self.job_lines.entry((make_pid, job)).or_insert(0);
        *line += 1;
        *line - 1
    }

    /// A pid registered by a command's or a make's announcement is that owner's only
    /// until it ends: pids are reused (glibc's build forks far more than `pid_max`).
    pub fn release_root(&mut self, pid: i32, owner: Owner) {
        if self.owners.get(&pid) == Some(&owner) {
            self.owners.remove(&pid);
            self.roots.remove(&pid);
        }
    }

    /// A traced process seen for the first time (under the listener of command `top`)
    /// gets process id `id`; its owner.
    pub fn process_started(&mut self, pid: i32, ppid: i32, top: i64, id: i64) -> Owner {
        if !self.roots.contains(&pid) {
            let owner = self.owner_of(ppid).unwrap_or(Owner::Command(top));
            self.owners.insert(pid, owner);
        }
        self.processes.insert(pid, id);
        self.owners[&pid]
    }

    /// The process id of a traced process.
    pub fn process_id(&self, pid: i32) -> Option<i64> {
        self.processes.get(&pid).copied()
    }

    /// A process ended: forget it (an announced one stays its owner's until that
    /// ends); its process id, if it was traced.
    pub fn process_gone(&mut self, pid: i32) -> Option<i64> {
        let id = self.processes.remove(&pid);
        if !self.roots.contains(&pid) {
            self.owners.remove(&pid);
        }
        id
    }
}

/// How long a record in make's ring waits for its process to be announced as a make
/// before it goes to the nearest announced ancestor.
const MAKE_WAIT: Duration = Duration::from_secs(1);

/// A record from make's ring.
#[derive(Debug)]
struct MakeRecord {
    pid: i32,
    ppid: i32,
    path: trace::PathId,
    kind: trace::AccessKind,
    time_ns: i64,
    read: Instant,
}

/// make's own ring (see `record::run_make`): every make of the build, and whatever runs
/// under make without a recipe line's filter (`$(shell …)`, a sub-make's line), writes
/// there through the fast path's helper.
#[derive(Default)]
pub(super) struct MakeRing {
    ring: Option<trace::Ring>,
    cursor: trace::Cursor,
    /// Records waiting for their make to announce itself.
    waiting: Vec<MakeRecord>,
    /// Records no make could own.
    unowned: u64,
}

impl MakeRing {
    pub fn set(&mut self, ring: trace::Ring) {
        self.ring = Some(ring);
    }

    /// Take what is in the ring. A record belongs to the make whose pid wrote it; a
    /// process that is not a make belongs to its nearest announced ancestor. A make
    /// announces itself only once it has loaded our plugin, so records of a pid nobody
    /// announced wait up to [`MAKE_WAIT`] for that (or until `last`). With `last`, a
    /// warning when make's activity is incomplete.
    pub fn drain(
        &mut self,
        last: bool,
        paths: &mut PathTable,
        attribution: &mut Attribution,
        accesses: &mut Accesses,
    ) -> Option<String> {
        let mut ring = self.ring.take()?;
        let read = Instant::now();
        let cursor = &mut self.cursor;
        let mut waiting = std::mem::take(&mut self.waiting);
        ring.drain(last, usize::MAX, |r| {
            // Only accesses: the helper does not take over exits under make.
            if let trace::RingKind::Access(kind) = r.kind {
                waiting.push(MakeRecord {
                    pid: r.pid,
                    ppid: r.ppid,
                    path: paths.intern_absolute(r.path, cursor),
                    kind,
                    time_ns: r.time_ns,
                    read,
                })
            }
        });
        for r in waiting {
            let owner = match attribution.registered(r.pid) {
                Some(owner) => owner,
                None if !last && r.read.elapsed() < MAKE_WAIT => {
                    self.waiting.push(r);
                    continue;
                }
                None => match attribution
                    .owner_of(r.pid)
                    .or_else(|| attribution.owner_of(r.ppid))
                    .or(attribution.top_make().map(Owner::Make))
                {
                    Some(owner) => owner,
                    None => {
                        self.unowned += 1;
                        continue;
                    }
                },
            };
            if !accesses.is_private(paths, r.path) {
                accesses.touch(
                    owner,
                    || attribution.process_id(r.pid),
                    r.path,
                    r.kind,
                    r.time_ns,
                );
            }
        }
        if !last {
            self.ring = Some(ring);
            return None;
        }
        ring.close();
        let lost = ring.lost();
        (lost > 0 || self.unowned > 0).then(|| {
            format!(
                "make's own file activity is incomplete: {} calls not recorded, {} of no known make",
                lost, self.unowned
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// make re-executes itself: the new image announces itself under the same pid, and
    /// the old image's connection may close after that; the pid stays the new make's.
    #[test]
    fn a_makes_old_image_going_leaves_its_new_image_known() {
        let mut attribution = Attribution::default();
        attribution.make_started(700, 1);
        attribution.make_started(700, 2);
        assert_eq!(attribution.next_line(700, 1), 0);
        attribution.make_gone(700, 1);
        assert_eq!(attribution.make(700), Some(2));
        assert_eq!(attribution.registered(700), Some(Owner::Make(2)));
        assert_eq!(attribution.next_line(700, 1), 1);
        attribution.make_gone(700, 2);
        assert_eq!(attribution.make(700), None);
        assert_eq!(attribution.registered(700), None);
    }
}
