//! The supervisor: answers notifications and turns them into [`Event`]s.
//!
//! Per notification, in this order (the tracee is blocked until step 5):
//! 1. receive it; reap tasks whose pidfds say they ended (so a recycled pid is never
//!    mistaken for the process that used it before);
//! 2. find the process (tid → tgid, first sight: `/proc/<tid>/status`, pidfds);
//! 3. read the path(s) (and argv for exec) with `process_vm_readv`, and what a relative
//!    path is relative to (`/proc/<tid>/cwd`, cached per process until it changes
//!    directory; `/proc/<tid>/fd/<dirfd>`; `/proc/<tid>/root` once per process);
//! 4. for calls that change whether their path exists (`O_CREAT`, unlink, rename, mkdir,
//!    symlink, link), check existence first and then answer CONTINUE; for all others
//!    answer CONTINUE first and check existence while the tracee runs;
//! 5. a successful answer proves that what was read is the tracee's (it was still
//!    waiting in the call, so its pid was not reused): when the answer finds the task
//!    gone, the events of the call are dropped. (No separate
//!    `SECCOMP_IOCTL_NOTIF_ID_VALID` round trip.)
//! 6. push events (paths numbered in the [`PathTable`], not copied);
//! 7. drain the command's fast-path ring while the tracee runs on; its records go
//!    before the call's own events (they happened first).
//!
//! Every notification is answered, whatever fails: a tracee is never left blocked. The
//! answer is [`Call::answer`], once per call; everything read before it succeeds is
//! known to be the tracee's.
//!
//! The parts: `pids` keeps the per-process state and reaps ended tasks, `rings` drains
//! the fast path's rings, `classify` decides what each typed call
//! ([`Syscall`](super::syscall::Syscall)) did, `exe` reads exec arguments and the
//! interpreters a program names. None of them opens the record or attributes a process
//! to a command: that is the recorder's.

use rustc_hash::FxHashMap as HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

mod classify;
mod exe;
mod pids;
mod rings;

use self::classify::Scratch;
use self::pids::{Proc, Thread};
use self::rings::{Attached, Ending};
use super::filter::{decode, Sys};
use super::path::PathTable;
use super::ring::Ring;
use super::sys::{notif_continue, notif_id_valid, notif_recv, now_ns, SeccompNotif};
use super::syscall::Syscall;
use super::{Event, Handled, TraceError};

/// What went wrong while looking at a notification's task.
enum Miss {
    /// The task is gone (ID no longer valid): nothing happened.
    Gone,
    /// The call itself is invalid (bad pointer, empty path): it will fail, nothing to record.
    Invalid,
    /// We could not read what the task did (e.g. it made itself non-dumpable).
    Unreadable,
}

fn miss_of(err: std::io::Error) -> Miss {
    match err.raw_os_error() {
        Some(libc::EFAULT) | Some(libc::EBADF) | Some(libc::ENOENT) => Miss::Invalid,
        Some(libc::ESRCH) => Miss::Gone,
        _ => Miss::Unreadable,
    }
}

/// Answers notifications and keeps per-process state (cwd cache, tgid), keyed by pid.
///
/// One supervisor can serve any number of listeners (one per traced command). The events
/// pushed by a call to [`Supervisor::handle_ready`] for a listener always belong to that
/// listener's processes.
pub struct Supervisor {
    procs: HashMap<i32, Proc>,
    threads: HashMap<i32, Thread>,
    epoll: Option<OwnedFd>,
    /// `PIDFD_GET_INFO` works (until it fails as unknown to the kernel).
    pidfd_info: bool,
    /// Ends found while serving another listener, delivered on this listener's next call.
    pending: HashMap<RawFd, Vec<Event>>,
    pending_count: usize,
    scratch: Scratch,
    counts: [u64; SYS_COUNT],
    /// Fast-path rings by listener.
    rings: HashMap<RawFd, Attached>,
    /// Processes that ended while their command's ring held a record ahead of theirs
    /// still being written (another process's, e.g. an open blocked on a FIFO): their
    /// exit record may be behind it. Their end waits until the ring has been read up to
    /// where it was reserved when they ended (or their exit record comes).
    ending: Vec<Ending>,
    ring_records: u64,
    paths: PathTable,
    /// Look whether paths exist through `/proc/<tid>/root` (see
    /// [`Supervisor::look_through_roots`]).
    through_root: bool,
}

const SYS_COUNT: usize = Sys::ALL.len();

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("processes", &self.procs.len())
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl Default for Supervisor {
    fn default() -> Supervisor {
        Supervisor::new()
    }
}

impl Supervisor {
    /// A supervisor with no processes known.
    pub fn new() -> Supervisor {
        Supervisor {
            procs: HashMap::default(),
            threads: HashMap::default(),
            epoll: None,
            pidfd_info: true,
            pending: HashMap::default(),
            pending_count: 0,
            scratch: Scratch::default(),
            counts: [0; SYS_COUNT],
            rings: HashMap::default(),
            ending: Vec::new(),
            ring_records: 0,
            paths: PathTable::default(),
            through_root: false,
        }
    }

    /// Decide whether an accessed path existed as the tracee sees it, through its
    /// `/proc/<tid>/root`, not as this process does: for tracees in a mount namespace
    /// of their own (a sandbox), where a path can be missing inside and there outside.
    pub fn look_through_roots(&mut self) {
        self.through_root = true;
    }

    /// Receive and answer at most one notification from `listener`, pushing what it
    /// meant, given the listener's poll/epoll `revents` (POLLIN, POLLHUP …) as the event
    /// loop saw them (current: a level-triggered report from this loop iteration; 0
    /// only drains the ring and reaps).
    pub fn handle_ready(
        &mut self,
        listener: BorrowedFd<'_>,
        revents: i16,
        events: &mut Vec<Event>,
    ) -> Result<Handled, TraceError> {
        let fd = listener.as_raw_fd();
        if revents & libc::POLLIN == 0 {
            let hangup = revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0;
            self.catch_up(fd, hangup, usize::MAX, events);
            if hangup {
                self.forget(listener, events);
                return Ok(Handled::Hangup);
            }
            return Ok(Handled::Idle);
        }
        let mut notif = SeccompNotif::default();
        if let Err(err) = notif_recv(fd, &mut notif) {
            // ENOENT: the task was killed between poll and receive: ordinary.
            if err.raw_os_error() == Some(libc::ENOENT) {
                self.reap();
                self.flush(fd, events);
                return Ok(Handled::Idle);
            }
            return Err(TraceError::Listener(err));
        }
        self.reap();
        self.flush(fd, events);
        self.dispatch(fd, &notif, events);
        Ok(Handled::Answered)
    }

    /// Drop everything known about `listener`'s processes (call when closing it without
    /// having seen [`Handled::Hangup`]). Processes whose end was not seen get
    /// [`Event::Gone`].
    pub fn forget(&mut self, listener: BorrowedFd<'_>, events: &mut Vec<Event>) {
        let fd = listener.as_raw_fd();
        self.flush(fd, events);
        self.drain_ring(fd, true, usize::MAX, events);
        self.rings.remove(&fd);
        self.pending.remove(&fd);
        // (The final drain ended every process waiting for it: see `ending`.)
        let time_ns = now_ns();
        let mut gone: Vec<i32> = self
            .procs
            .iter()
            .filter(|(_, p)| p.listener == fd)
            .map(|(&pid, _)| pid)
            .collect();
        gone.sort_unstable();
        for pid in gone {
            if let Some(p) = self.procs.remove(&pid) {
                if !p.exited {
                    events.push(Event::Gone { pid, time_ns });
                }
            }
        }
        let procs = &self.procs;
        self.threads.retain(|_, t| procs.contains_key(&t.tgid));
    }

    /// How many notifications of each system call were answered, for measurements
    /// (`ring` counts the fast path's records, `predicted` those whose path was the
    /// predicted spelling, see [`PathTable`]).
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        let mut counts: Vec<_> = Sys::ALL
            .iter()
            .map(|&s| (s.name(), self.counts[s as usize]))
            .filter(|&(_, n)| n > 0)
            .collect();
        if self.ring_records > 0 {
            counts.push(("ring", self.ring_records));
            counts.push(("predicted", self.paths.predicted()));
        }
        counts
    }

    /// The paths that [`Event::Access`] numbers.
    pub fn paths(&self) -> &PathTable {
        &self.paths
    }

    /// The path table, to number paths read elsewhere (make's own ring).
    pub fn paths_mut(&mut self) -> &mut PathTable {
        &mut self.paths
    }

    /// The paths, keeping nothing else.
    pub fn into_paths(self) -> PathTable {
        self.paths
    }

    /// Attach the fast path's ring of `listener`'s command (see
    /// docs/tracer.md): its records are delivered as events on that listener's calls
    /// (drained once the notification is answered, put before that call's own events)
    /// and when it hangs up.
    pub fn attach_ring(&mut self, listener: BorrowedFd<'_>, ring: Ring) {
        self.rings.insert(
            listener.as_raw_fd(),
            Attached {
                ring,
                dead: Default::default(),
                cursor: Default::default(),
            },
        );
    }

    /// Drain part of `listener`'s ring without waiting for a notification: at most
    /// `limit` records (returns whether more may be ready). For a recorder that drains
    /// rings now and then and wants to answer notifications in between.
    pub fn drain_some(
        &mut self,
        listener: BorrowedFd<'_>,
        limit: usize,
        events: &mut Vec<Event>,
    ) -> bool {
        self.catch_up(listener.as_raw_fd(), false, limit, events)
    }

    /// Reap, deliver the ends found while serving others, and drain the ring (at most
    /// `limit` records; returns whether more may be ready).
    fn catch_up(
        &mut self,
        fd: RawFd,
        final_drain: bool,
        limit: usize,
        events: &mut Vec<Event>,
    ) -> bool {
        self.reap();
        self.flush(fd, events);
        self.drain_ring(fd, final_drain, limit, events)
    }

    fn flush(&mut self, fd: RawFd, events: &mut Vec<Event>) {
        if self.pending_count == 0 {
            return;
        }
        if let Some(mut v) = self.pending.remove(&fd) {
            self.pending_count -= v.len();
            events.append(&mut v);
        }
    }

    /// Answer one notification, then drain the command's ring while the tracee runs on:
    /// the ring's records (made before this call) are put before the call's own events,
    /// after the process's first sighting.
    fn dispatch(&mut self, listener: RawFd, notif: &SeccompNotif, events: &mut Vec<Event>) {
        let mut call = Call {
            listener,
            id: notif.id,
            tid: notif.pid as i32,
            tgid: 0,
            answered: false,
        };
        let own = self.serve(&mut call, notif, events);
        // Calls served without looking at the task; an answer that finds it gone changes
        // nothing then.
        let _ = call.answer();
        if self.rings.contains_key(&listener) {
            let own = events.split_off(own);
            self.drain_ring(listener, false, usize::MAX, events);
            events.extend(own);
        }
    }

    /// Classify and answer the call; returns where its own events start.
    fn serve(&mut self, call: &mut Call, notif: &SeccompNotif, events: &mut Vec<Event>) -> usize {
        let listener = call.listener;
        let Some((abi, sys)) = decode(notif.data.arch, notif.data.nr) else {
            return events.len();
        };
        self.counts[sys as usize] += 1;
        let syscall = Syscall::decode(sys, &notif.data.args);
        if matches!(syscall, Syscall::Chdir { .. } | Syscall::Fchdir { .. }) {
            // Before the call may run, whatever else fails: the helpers' cached working
            // directories (preload.c, `cwd_of`) go stale with it.
            if let Some(attached) = self.rings.get(&listener) {
                attached.ring.bump_cwd_epoch();
            }
        }
        let Some((tgid, new_parent)) = self.task(listener, call.tid) else {
            return events.len();
        };
        call.tgid = tgid;
        let time_ns = now_ns();
        let mark = events.len();
        if let Some(ppid) = new_parent {
            events.push(Event::Process {
                pid: tgid,
                ppid,
                time_ns,
            });
        }
        let own = events.len();
        match self.classify(call, abi, syscall, time_ns, events) {
            Ok(()) => {}
            Err(Miss::Gone) => {
                // Nothing happened: undo what this notification added.
                events.truncate(mark);
                if new_parent.is_some() {
                    self.procs.remove(&tgid);
                }
                return mark;
            }
            Err(Miss::Invalid) => {}
            Err(Miss::Unreadable) => {
                if notif_id_valid(listener, call.id) {
                    events.push(Event::Lost {
                        pid: tgid,
                        syscall: sys.name(),
                        time_ns,
                    });
                }
            }
        }
        own
    }
}

/// One notification being answered.
struct Call {
    listener: RawFd,
    id: u64,
    tid: i32,
    tgid: i32,
    answered: bool,
}

impl Call {
    /// Let the call run (once). A successful answer also proves that everything read
    /// from the task before it was the task's own: it was still waiting in this call, so
    /// its pid cannot have been reused. `Gone` (ENOENT): it died meanwhile, and what was
    /// read must be dropped.
    fn answer(&mut self) -> Result<(), Miss> {
        if self.answered {
            return Ok(());
        }
        self.answered = true;
        match notif_continue(self.listener, self.id) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(Miss::Gone),
            _ => Ok(()),
        }
    }
}
