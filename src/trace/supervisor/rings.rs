//! Draining the fast path's rings: the records a command's processes wrote in-process
//! become events, with a `Process` event for a pid first seen there and an end for a
//! process whose exit record may still be behind another's.
//!
//! It never answers a notification; records are read in place and never copied.

use std::os::fd::RawFd;

use super::Supervisor;
use crate::trace::path::Cursor;
use crate::trace::ring::{Ring, RingKind};
use crate::trace::Event;

/// A command's fast-path ring, as the supervisor reads it.
#[derive(Debug)]
pub(super) struct Attached {
    pub(super) ring: Ring,
    /// The pids seen only through the ring (they ended before the supervisor could
    /// look at them).
    pub(super) dead: rustc_hash::FxHashSet<i32>,
    /// Where its records' spellings were among the remembered ones.
    pub(super) cursor: Cursor,
}

/// See [`Supervisor::ending`].
#[derive(Debug)]
pub(super) struct Ending {
    pub(super) listener: RawFd,
    pub(super) pid: i32,
    /// The ring's reserved units when the process was found ended.
    pub(super) until: u64,
    pub(super) time_ns: i64,
}

impl Supervisor {
    /// Turn `fd`'s ring's complete records into events (at most `limit`; returns
    /// whether more may be ready). `final_drain`: every producer is gone, so records
    /// whose writer died are stepped over, and every end still waiting is delivered.
    pub(super) fn drain_ring(
        &mut self,
        fd: RawFd,
        final_drain: bool,
        limit: usize,
        events: &mut Vec<Event>,
    ) -> bool {
        let Some(Attached {
            mut ring,
            mut dead,
            mut cursor,
        }) = self.rings.remove(&fd)
        else {
            return false;
        };
        // Records come in runs from one process: look each run's process up once.
        let mut known = 0;
        let more = ring.drain(final_drain, limit, |r| {
            self.ring_records += 1;
            if r.pid != known && !self.procs.contains_key(&r.pid) && !dead.contains(&r.pid) {
                match self.task(fd, r.pid) {
                    Some((pid, Some(ppid))) => events.push(Event::Process {
                        pid,
                        ppid,
                        time_ns: r.time_ns,
                    }),
                    Some(_) => {}
                    None => {
                        // Ended already: what the record says is all we know.
                        dead.insert(r.pid);
                        events.push(Event::Process {
                            pid: r.pid,
                            ppid: r.ppid,
                            time_ns: r.time_ns,
                        });
                    }
                }
            }
            known = r.pid;
            match r.kind {
                RingKind::Access(kind) => events.push(Event::Access {
                    pid: r.pid,
                    path: self.paths.intern_absolute(r.path, &mut cursor),
                    kind,
                    time_ns: r.time_ns,
                }),
                // exit_group through the helper: what a trapped one does (classify).
                RingKind::Exit(status) => {
                    if let Some(p) = self.procs.get_mut(&r.pid) {
                        p.exited = true;
                    }
                    if !self.ending.is_empty() {
                        self.ending.retain(|e| e.listener != fd || e.pid != r.pid);
                    }
                    events.push(Event::Exit {
                        pid: r.pid,
                        code: status & 0xff,
                        time_ns: r.time_ns,
                    });
                }
            }
        });
        if !self.ending.is_empty() {
            // Read past where the ring stood when they ended: no exit record came.
            let consumed = ring.consumed();
            self.ending.retain(|e| {
                let done = e.listener == fd && (e.until <= consumed || final_drain);
                if done {
                    events.push(Event::Gone {
                        pid: e.pid,
                        time_ns: e.time_ns,
                    });
                }
                !done
            });
        }
        self.rings.insert(fd, Attached { ring, dead, cursor });
        more
    }

    /// Drain `listener`'s ring into its pending events (delivered, in order, before
    /// anything else of that listener's).
    pub(super) fn drain_to_pending(&mut self, listener: RawFd) {
        let mut pending = self.pending.remove(&listener).unwrap_or_default();
        let before = pending.len();
        self.drain_ring(listener, false, usize::MAX, &mut pending);
        self.pending_count += pending.len() - before;
        if !pending.is_empty() {
            self.pending.insert(listener, pending);
        }
    }
}
