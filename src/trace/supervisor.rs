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
//! Every notification is answered, whatever fails: a tracee is never left blocked.

use rustc_hash::FxHashMap as HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::filter::{decode, Abi, Sys};
use super::path::{join, normalize, Cursor, PathTable};
use super::ring::{Ring, RingKind};
use super::sys::*;
use super::{AccessKind, Event, Handled, TraceError};

/// A process (thread group) we have seen.
struct Proc {
    listener: RawFd,
    /// Readable when the whole thread group has exited.
    _pidfd: OwnedFd,
    /// `/proc/<pid>/cwd`, while known not to have changed (chdir/fchdir clear it).
    cwd: Option<Vec<u8>>,
    /// `/proc/<pid>/root` when it is not `/` (a chroot).
    root: Option<Vec<u8>>,
    /// exit_group seen (trapped, or the helper's exit record): its end is already reported.
    exited: bool,
    /// The last directory the leader thread listed (repeated getdents on one directory
    /// is one listing).
    last_list: Vec<u8>,
}

/// A thread that is not its group's leader.
struct Thread {
    tgid: i32,
    /// Readable when this thread has exited (`PIDFD_THREAD`).
    _pidfd: OwnedFd,
    /// The last directory this thread listed (repeated getdents on one directory is one
    /// listing).
    last_list: Vec<u8>,
}

const EPOLL_THREAD: u64 = 1 << 32;

/// Reused buffers: nothing on the per-notification path allocates except the events.
#[derive(Default)]
struct Scratch {
    raw: [Vec<u8>; 2],
    abs: [Vec<u8>; 2],
    norm: Vec<u8>,
    base: Vec<u8>,
    mem: Vec<u8>,
}

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
}

const SYS_COUNT: usize = Sys::IoUringSetup as usize + 1;

/// A command's fast-path ring, as the supervisor reads it.
#[derive(Debug)]
struct Attached {
    ring: Ring,
    /// The pids seen only through the ring (they ended before the supervisor could
    /// look at them).
    dead: rustc_hash::FxHashSet<i32>,
    /// Where its records' spellings were among the remembered ones.
    cursor: Cursor,
}

/// See [`Supervisor::ending`].
#[derive(Debug)]
struct Ending {
    listener: RawFd,
    pid: i32,
    /// The ring's reserved units when the process was found ended.
    until: u64,
    time_ns: i64,
}

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
        }
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
        let mut counts: Vec<_> = ALL_SYS
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

    fn drain_ring(
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

    fn flush(&mut self, fd: RawFd, events: &mut Vec<Event>) {
        if self.pending_count == 0 {
            return;
        }
        if let Some(mut v) = self.pending.remove(&fd) {
            self.pending_count -= v.len();
            events.append(&mut v);
        }
    }

    /// Forget tasks that ended (their pidfds are readable). Must run after receiving a
    /// notification and before looking its pid up: a pid is only recycled after the
    /// task that had it was reaped, by which time its pidfd is readable.
    fn reap(&mut self) {
        let Some(epoll) = self.epoll.as_ref().map(|e| e.as_raw_fd()) else {
            return;
        };
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 32];
        loop {
            let n = unsafe { libc::epoll_wait(epoll, ready.as_mut_ptr(), ready.len() as i32, 0) };
            if n <= 0 {
                return;
            }
            let mut time_ns = 0;
            for ev in &ready[..n as usize] {
                let data = ev.u64;
                let pid = data as u32 as i32;
                if data & EPOLL_THREAD != 0 {
                    self.threads.remove(&pid);
                } else if let Some(&Proc {
                    listener, exited, ..
                }) = self.procs.get(&pid)
                {
                    // Its last records, an exit through the helper among them, may still
                    // be in its command's ring: they come before its end.
                    if !exited {
                        self.drain_to_pending(listener);
                    }
                    let Some(p) = self.procs.remove(&pid) else {
                        continue;
                    };
                    if !p.exited {
                        if time_ns == 0 {
                            time_ns = now_ns();
                        }
                        // The drain above may have stopped short of its exit record
                        // (at another process's record still being written).
                        let behind = self.rings.get_mut(&p.listener).and_then(
                            |Attached { ring, dead, .. }| {
                                let until = ring.reserved();
                                (ring.consumed() < until).then(|| {
                                    // Its later records must not pass for a new process's.
                                    dead.insert(pid);
                                    until
                                })
                            },
                        );
                        match behind {
                            Some(until) => self.ending.push(Ending {
                                listener: p.listener,
                                pid,
                                until,
                                time_ns,
                            }),
                            None => {
                                self.pending
                                    .entry(p.listener)
                                    .or_default()
                                    .push(Event::Gone { pid, time_ns });
                                self.pending_count += 1;
                            }
                        }
                    }
                }
            }
            if (n as usize) < ready.len() {
                return;
            }
        }
    }

    /// Drain `listener`'s ring into its pending events (delivered, in order, before
    /// anything else of that listener's).
    fn drain_to_pending(&mut self, listener: RawFd) {
        let mut pending = self.pending.remove(&listener).unwrap_or_default();
        let before = pending.len();
        self.drain_ring(listener, false, usize::MAX, &mut pending);
        self.pending_count += pending.len() - before;
        if !pending.is_empty() {
            self.pending.insert(listener, pending);
        }
    }

    fn watch(&mut self, pidfd: RawFd, data: u64) -> bool {
        if self.epoll.is_none() {
            let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if ep < 0 {
                return false;
            }
            self.epoll = Some(unsafe { OwnedFd::from_raw_fd(ep) });
        }
        let ep = self.epoll.as_ref().map(|e| e.as_raw_fd()).unwrap_or(-1);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: data,
        };
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, pidfd, &mut ev) == 0 }
    }

    /// The process `tid` belongs to, creating its state on first sight. Returns the tgid
    /// and, when it is new, its parent.
    fn task(&mut self, listener: RawFd, tid: i32) -> Option<(i32, Option<i32>)> {
        if self.procs.contains_key(&tid) {
            return Some((tid, None));
        }
        if let Some(t) = self.threads.get(&tid) {
            return Some((t.tgid, None));
        }
        // pidfd_open without PIDFD_THREAD succeeds only for a thread-group leader (for
        // another thread it fails: EINVAL on older kernels, ENOENT on 6.18).
        let (tgid, mut leader, thread) = match pidfd_open(tid, 0) {
            Ok(fd) => (tid, Some(fd), None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => {
                let fd = pidfd_open(tid, PIDFD_THREAD).ok()?;
                let (tgid, _) = self.ids(fd.as_raw_fd(), tid)?;
                (tgid, None, Some(fd))
            }
            Err(_) => return None,
        };
        let mut new_parent = None;
        if !self.procs.contains_key(&tgid) {
            let pidfd = match leader.take() {
                Some(fd) => fd,
                None => pidfd_open(tgid, 0).ok()?,
            };
            let (_, ppid) = self.ids(pidfd.as_raw_fd(), tgid)?;
            if !self.watch(pidfd.as_raw_fd(), tgid as u32 as u64) {
                return None;
            }
            let root = read_root(tid);
            self.procs.insert(
                tgid,
                Proc {
                    listener,
                    _pidfd: pidfd,
                    cwd: None,
                    root,
                    exited: false,
                    last_list: Vec::new(),
                },
            );
            new_parent = Some(ppid);
        }
        if let Some(pidfd) = thread {
            if !self.watch(pidfd.as_raw_fd(), EPOLL_THREAD | tid as u32 as u64) {
                return None;
            }
            self.threads.insert(
                tid,
                Thread {
                    tgid,
                    _pidfd: pidfd,
                    last_list: Vec::new(),
                },
            );
        }
        Some((tgid, new_parent))
    }

    /// A task's thread-group id and parent: one `PIDFD_GET_INFO` on its pidfd (Linux
    /// 6.13+), else `/proc/<tid>/status` (an open, a read of ~1.5 KiB of text and a
    /// parse: ~14% of the event loop's CPU when every process runs one short program).
    fn ids(&mut self, pidfd: RawFd, tid: i32) -> Option<(i32, i32)> {
        if self.pidfd_info {
            match pidfd_ids(pidfd) {
                Ok(ids) => return Some(ids),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTTY | libc::EINVAL)) => {
                    self.pidfd_info = false;
                }
                Err(_) => return None,
            }
        }
        read_status(tid)
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
        if matches!(sys, Sys::Chdir | Sys::Fchdir) {
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
        match self.classify(call, abi, sys, &notif.data.args, time_ns, events) {
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

    fn classify(
        &mut self,
        call: &mut Call,
        abi: Abi,
        sys: Sys,
        a: &[u64; 6],
        time_ns: i64,
        events: &mut Vec<Event>,
    ) -> Result<(), Miss> {
        const FDCWD: u64 = libc::AT_FDCWD as u64;
        match sys {
            Sys::ExitGroup => {
                if let Some(p) = self.procs.get_mut(&call.tgid) {
                    p.exited = true;
                }
                events.push(Event::Exit {
                    pid: call.tgid,
                    code: (a[0] & 0xff) as i32,
                    time_ns,
                });
                Ok(())
            }
            Sys::Open | Sys::Creat | Sys::Openat | Sys::Openat2 => {
                let (dirfd, addr, flags, resolve) = match sys {
                    Sys::Open => (FDCWD, a[0], a[1], 0),
                    Sys::Creat => (
                        FDCWD,
                        a[0],
                        (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
                        0,
                    ),
                    Sys::Openat => (a[0], a[1], a[2], 0),
                    _ => {
                        if a[3] < std::mem::size_of::<OpenHow>() as u64 {
                            return Err(Miss::Invalid);
                        }
                        let how: OpenHow = read_pod(call.tid, a[2]).map_err(miss_of)?;
                        (a[0], a[1], how.flags, how.resolve)
                    }
                };
                let flags = flags as i32;
                self.operand(call, 0, dirfd, addr, false, resolve & RESOLVE_IN_ROOT != 0)?;
                let follow = flags & libc::O_NOFOLLOW == 0;
                let creat =
                    flags & libc::O_CREAT != 0 && flags & libc::O_TMPFILE & !libc::O_DIRECTORY == 0;
                let writes =
                    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
                let exists = if creat {
                    self.exists_then_answer(call, 0, follow)?
                } else {
                    self.answer_then_exists(call, 0, follow)?
                };
                let kind = if flags & libc::O_PATH != 0
                    || flags & libc::O_TMPFILE & !libc::O_DIRECTORY != 0
                {
                    if exists {
                        AccessKind::Stat
                    } else {
                        AccessKind::Probe
                    }
                } else if !exists {
                    if creat {
                        AccessKind::Create
                    } else {
                        AccessKind::Probe
                    }
                } else if creat && flags & libc::O_EXCL != 0 {
                    AccessKind::Stat // fails with EEXIST
                } else if !writes {
                    AccessKind::Read
                } else if flags & libc::O_TRUNC != 0 {
                    AccessKind::Truncate
                } else if flags & libc::O_APPEND != 0 {
                    AccessKind::Append
                } else {
                    AccessKind::Write
                };
                self.emit(call, 0, kind, time_ns, events);
                Ok(())
            }
            Sys::Execve | Sys::Execveat => {
                let (dirfd, addr, argv, flags) = match sys {
                    Sys::Execve => (FDCWD, a[0], a[1], 0),
                    _ => (a[0], a[1], a[2], a[4]),
                };
                self.operand(call, 0, dirfd, addr, flags & AT_EMPTY_PATH != 0, false)?;
                let argv = read_argv(
                    call.tid,
                    abi,
                    argv,
                    &mut self.scratch.mem,
                    &mut self.scratch.base,
                )?;
                let cwd = self.cwd(call)?;
                let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
                let exists = self.answer_then_exists(call, 0, follow)?;
                if exists {
                    self.emit(call, 0, AccessKind::Exec, time_ns, events);
                    let path = self.scratch.norm.clone();
                    events.push(Event::Exec {
                        pid: call.tgid,
                        path,
                        argv,
                        cwd,
                        time_ns,
                    });
                    // The kernel itself opens `#!` interpreters and the ELF interpreter
                    // (ld.so): no system call shows them, so read them from the file.
                    let mut program = std::mem::take(&mut self.scratch.abs[0]);
                    for _ in 0..4 {
                        match interpreter(&program, &mut self.scratch.mem) {
                            Some(interp) => {
                                normalize(&interp, &mut self.scratch.norm);
                                events.push(Event::Access {
                                    pid: call.tgid,
                                    path: self.paths.intern(&self.scratch.norm),
                                    kind: AccessKind::Exec,
                                    time_ns,
                                });
                                program = interp;
                            }
                            None => break,
                        }
                    }
                    self.scratch.abs[0] = program;
                } else {
                    self.emit(call, 0, AccessKind::Probe, time_ns, events);
                }
                Ok(())
            }
            Sys::Stat
            | Sys::Lstat
            | Sys::Newfstatat
            | Sys::Statx
            | Sys::Access
            | Sys::Faccessat
            | Sys::Faccessat2 => {
                let (dirfd, addr, follow) = match sys {
                    Sys::Stat | Sys::Access => (FDCWD, a[0], true),
                    Sys::Lstat => (FDCWD, a[0], false),
                    Sys::Newfstatat | Sys::Faccessat2 => {
                        (a[0], a[1], a[3] & AT_SYMLINK_NOFOLLOW == 0)
                    }
                    Sys::Statx => (a[0], a[1], a[2] & AT_SYMLINK_NOFOLLOW == 0),
                    _ => (a[0], a[1], true),
                };
                let empty_ok = matches!(sys, Sys::Faccessat2) && a[3] & AT_EMPTY_PATH != 0;
                self.operand(call, 0, dirfd, addr, empty_ok, false)?;
                let exists = self.answer_then_exists(call, 0, follow)?;
                self.emit(
                    call,
                    0,
                    if exists {
                        AccessKind::Stat
                    } else {
                        AccessKind::Probe
                    },
                    time_ns,
                    events,
                );
                Ok(())
            }
            Sys::Readlink | Sys::Readlinkat => {
                let (dirfd, addr) = if sys == Sys::Readlink {
                    (FDCWD, a[0])
                } else {
                    (a[0], a[1])
                };
                self.operand(call, 0, dirfd, addr, sys == Sys::Readlinkat, false)?;
                let exists = self.answer_then_exists(call, 0, false)?;
                self.emit(
                    call,
                    0,
                    if exists {
                        AccessKind::Stat
                    } else {
                        AccessKind::Probe
                    },
                    time_ns,
                    events,
                );
                Ok(())
            }
            Sys::Truncate => {
                self.operand(call, 0, FDCWD, a[0], false, false)?;
                let exists = self.answer_then_exists(call, 0, true)?;
                self.emit(
                    call,
                    0,
                    if exists {
                        AccessKind::Truncate
                    } else {
                        AccessKind::Probe
                    },
                    time_ns,
                    events,
                );
                Ok(())
            }
            Sys::Unlink | Sys::Unlinkat | Sys::Rmdir => {
                let (dirfd, addr) = if sys == Sys::Unlinkat {
                    (a[0], a[1])
                } else {
                    (FDCWD, a[0])
                };
                self.operand(call, 0, dirfd, addr, false, false)?;
                let exists = self.exists_then_answer(call, 0, false)?;
                self.emit(
                    call,
                    0,
                    if exists {
                        AccessKind::Remove
                    } else {
                        AccessKind::Probe
                    },
                    time_ns,
                    events,
                );
                Ok(())
            }
            Sys::Mkdir | Sys::Mkdirat | Sys::Symlink | Sys::Symlinkat => {
                let (dirfd, addr) = match sys {
                    Sys::Mkdir => (FDCWD, a[0]),
                    Sys::Mkdirat => (a[0], a[1]),
                    Sys::Symlink => (FDCWD, a[1]),
                    _ => (a[1], a[2]),
                };
                self.operand(call, 0, dirfd, addr, false, false)?;
                let exists = self.exists_then_answer(call, 0, false)?;
                let made = if matches!(sys, Sys::Mkdir | Sys::Mkdirat) {
                    AccessKind::Mkdir
                } else {
                    AccessKind::Symlink
                };
                self.emit(
                    call,
                    0,
                    if exists { AccessKind::Stat } else { made },
                    time_ns,
                    events,
                );
                Ok(())
            }
            Sys::Rename | Sys::Renameat | Sys::Renameat2 | Sys::Link | Sys::Linkat => {
                let (od, op, nd, np, flags) = match sys {
                    Sys::Rename | Sys::Link => (FDCWD, a[0], FDCWD, a[1], 0),
                    Sys::Renameat => (a[0], a[1], a[2], a[3], 0),
                    _ => (a[0], a[1], a[2], a[3], a[4]),
                };
                let link = matches!(sys, Sys::Link | Sys::Linkat);
                self.operand(call, 0, od, op, link && flags & AT_EMPTY_PATH != 0, false)?;
                self.operand(call, 1, nd, np, false, false)?;
                let old_exists = exists_at(
                    &mut self.scratch.abs[0],
                    link && flags & AT_SYMLINK_FOLLOW != 0,
                );
                let new_exists = exists_at(&mut self.scratch.abs[1], false);
                call.answer()?;
                if !old_exists {
                    self.emit(call, 0, AccessKind::Probe, time_ns, events);
                } else if link {
                    self.emit(call, 0, AccessKind::Stat, time_ns, events);
                    self.emit(
                        call,
                        1,
                        if new_exists {
                            AccessKind::Stat
                        } else {
                            AccessKind::Link
                        },
                        time_ns,
                        events,
                    );
                } else {
                    self.emit(call, 0, AccessKind::RenameFrom, time_ns, events);
                    if flags & RENAME_EXCHANGE != 0 {
                        self.emit(call, 1, AccessKind::RenameFrom, time_ns, events);
                        self.emit(call, 0, AccessKind::RenameTo, time_ns, events);
                    }
                    self.emit(call, 1, AccessKind::RenameTo, time_ns, events);
                }
                Ok(())
            }
            Sys::Chdir => {
                self.operand(call, 0, FDCWD, a[0], false, false)?;
                if let Some(p) = self.procs.get_mut(&call.tgid) {
                    p.cwd = None;
                }
                let exists = self.answer_then_exists(call, 0, true)?;
                self.emit(
                    call,
                    0,
                    if exists {
                        AccessKind::Chdir
                    } else {
                        AccessKind::Probe
                    },
                    time_ns,
                    events,
                );
                Ok(())
            }
            Sys::Fchdir | Sys::Getdents | Sys::Getdents64 => {
                let fd = a[0] as i32;
                let mut buf = [0u8; 64];
                readlink_into(
                    proc_fd_path(&mut buf, call.tid, fd),
                    &mut self.scratch.abs[0],
                )
                .map_err(miss_of)?;
                call.answer()?;
                if !self.scratch.abs[0].starts_with(b"/") {
                    return Ok(()); // not a directory in the file system (a pipe, a socket)
                }
                if sys == Sys::Fchdir {
                    if let Some(p) = self.procs.get_mut(&call.tgid) {
                        p.cwd = None;
                    }
                    self.emit(call, 0, AccessKind::Chdir, time_ns, events);
                } else {
                    if let Some(t) = self.threads.get_mut(&call.tid) {
                        if t.last_list == self.scratch.abs[0] {
                            return Ok(());
                        }
                        t.last_list.clone_from(&self.scratch.abs[0]);
                    } else if let Some(p) = self.procs.get_mut(&call.tgid) {
                        if p.last_list == self.scratch.abs[0] {
                            return Ok(());
                        }
                        p.last_list.clone_from(&self.scratch.abs[0]);
                    }
                    self.emit(call, 0, AccessKind::List, time_ns, events);
                }
                Ok(())
            }
            Sys::IoUringSetup => Ok(()), // the filter refuses it; never notified
        }
    }

    /// Read path operand `slot` and make it absolute in `scratch.abs[slot]` (joined, not
    /// normalised). `empty_ok`: an empty path means the dirfd itself (AT_EMPTY_PATH).
    /// `in_root`: absolute paths are relative to the dirfd (openat2 RESOLVE_IN_ROOT).
    fn operand(
        &mut self,
        call: &Call,
        slot: usize,
        dirfd: u64,
        addr: u64,
        empty_ok: bool,
        in_root: bool,
    ) -> Result<(), Miss> {
        let s = &mut self.scratch;
        read_cstr(call.tid, addr, &mut s.raw[slot]).map_err(miss_of)?;
        let raw = &s.raw[slot];
        if raw.is_empty() && !empty_ok {
            return Err(Miss::Invalid); // ENOENT
        }
        let dirfd = dirfd as i32;
        if raw.first() == Some(&b'/') && !in_root {
            match self.procs.get(&call.tgid).and_then(|p| p.root.as_ref()) {
                Some(root) => join(root, raw, &mut s.abs[slot]),
                None => {
                    s.abs[slot].clear();
                    s.abs[slot].extend_from_slice(raw);
                }
            }
            return Ok(());
        }
        if dirfd == libc::AT_FDCWD {
            let proc = self.procs.get_mut(&call.tgid);
            match proc {
                Some(Proc { cwd: Some(cwd), .. }) => join(cwd, raw, &mut s.abs[slot]),
                Some(p) => {
                    let mut buf = [0u8; 64];
                    readlink_into(proc_path(&mut buf, call.tid, b"cwd"), &mut s.base)
                        .map_err(miss_of)?;
                    join(&s.base, raw, &mut s.abs[slot]);
                    p.cwd = Some(s.base.clone());
                }
                None => return Err(Miss::Gone),
            }
        } else {
            let mut buf = [0u8; 64];
            readlink_into(proc_fd_path(&mut buf, call.tid, dirfd), &mut s.base).map_err(miss_of)?;
            if raw.is_empty() {
                s.abs[slot].clone_from(&s.base);
            } else {
                join(&s.base, raw, &mut s.abs[slot]);
            }
        }
        Ok(())
    }

    fn cwd(&mut self, call: &Call) -> Result<Vec<u8>, Miss> {
        let p = self.procs.get_mut(&call.tgid).ok_or(Miss::Gone)?;
        if let Some(cwd) = &p.cwd {
            return Ok(cwd.clone());
        }
        let mut buf = [0u8; 64];
        let mut cwd = Vec::new();
        readlink_into(proc_path(&mut buf, call.tid, b"cwd"), &mut cwd).map_err(miss_of)?;
        p.cwd = Some(cwd.clone());
        Ok(cwd)
    }

    /// For calls that do not change whether the path exists: let the tracee go, then look.
    fn answer_then_exists(
        &mut self,
        call: &mut Call,
        slot: usize,
        follow: bool,
    ) -> Result<bool, Miss> {
        call.answer()?;
        Ok(exists_at(&mut self.scratch.abs[slot], follow))
    }

    /// For calls that may create or remove the path: look while the tracee waits.
    fn exists_then_answer(
        &mut self,
        call: &mut Call,
        slot: usize,
        follow: bool,
    ) -> Result<bool, Miss> {
        let exists = exists_at(&mut self.scratch.abs[slot], follow);
        call.answer()?;
        Ok(exists)
    }

    /// Push an access for operand `slot`, normalised (left in `scratch.norm`).
    fn emit(
        &mut self,
        call: &Call,
        slot: usize,
        kind: AccessKind,
        time_ns: i64,
        events: &mut Vec<Event>,
    ) {
        normalize(&self.scratch.abs[slot], &mut self.scratch.norm);
        events.push(Event::Access {
            pid: call.tgid,
            path: self.paths.intern(&self.scratch.norm),
            kind,
            time_ns,
        });
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

/// Does the absolute path in `path` exist? (Adds and removes a NUL in place.)
fn exists_at(path: &mut Vec<u8>, follow: bool) -> bool {
    path.push(0);
    let found = exists(path, follow);
    path.pop();
    found
}

/// `Tgid` and `PPid` from `/proc/<tid>/status`.
fn read_status(tid: i32) -> Option<(i32, i32)> {
    let mut name = [0u8; 64];
    let path = proc_path(&mut name, tid, b"status");
    let mut buf = [0u8; 4096];
    let n = read_small_file(path, &mut buf)?;
    let text = &buf[..n];
    let field = |key: &[u8]| -> Option<i32> {
        let at = text.windows(key.len()).position(|w| w == key)?;
        let rest = &text[at + key.len()..];
        let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
        let end = rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
    };
    Some((field(b"\nTgid:")?, field(b"\nPPid:")?))
}

/// `/proc/<tid>/root` when it is not `/`.
fn read_root(tid: i32) -> Option<Vec<u8>> {
    let mut name = [0u8; 64];
    let mut root = Vec::new();
    readlink_into(proc_path(&mut name, tid, b"root"), &mut root).ok()?;
    if root == b"/" {
        None
    } else {
        Some(root)
    }
}

/// Read a small file (NUL-terminated path) into `buf`; returns its length.
fn read_small_file(path: &[u8], buf: &mut [u8]) -> Option<usize> {
    let fd = unsafe {
        libc::open(
            path.as_ptr() as *const libc::c_char,
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut len = 0;
    while len < buf.len() {
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf[len..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - len,
            )
        };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return None;
        }
        if n == 0 {
            break;
        }
        len += n as usize;
    }
    Some(len)
}

/// The program the kernel runs for `path` besides `path` itself: the `#!` interpreter
/// of a script or the `PT_INTERP` of an ELF file (absolute paths only).
fn interpreter(path: &[u8], buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut cpath = Vec::with_capacity(path.len() + 1);
    cpath.extend_from_slice(path);
    cpath.push(0);
    let fd = unsafe {
        libc::open(
            cpath.as_ptr() as *const libc::c_char,
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let pread = |buf: &mut Vec<u8>, offset: u64, len: usize| -> Option<()> {
        buf.clear();
        buf.reserve(len);
        let n = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                len,
                offset as libc::off_t,
            )
        };
        if n < 0 {
            return None;
        }
        unsafe { buf.set_len(n as usize) };
        Some(())
    };
    pread(buf, 0, 4096)?;
    if buf.starts_with(b"#!") {
        let line = &buf[2..buf.iter().position(|&b| b == b'\n')?];
        let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
        let word = &line[start..];
        let end = word
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(word.len());
        return word.starts_with(b"/").then(|| word[..end].to_vec());
    }
    if buf.len() < 64 || !buf.starts_with(b"\x7fELF") || buf[5] != 1 {
        return None; // not a little-endian ELF file
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u32_at =
        |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as u64;
    let u64_at = |b: &[u8], o: usize| u32_at(b, o) | (u32_at(b, o + 4) << 32);
    let wide = buf[4] == 2;
    let (phoff, phentsize, phnum) = if wide {
        (u64_at(buf, 32), u16_at(buf, 54), u16_at(buf, 56))
    } else {
        (u32_at(buf, 28), u16_at(buf, 42), u16_at(buf, 44))
    };
    if phentsize < 32 || phnum > 256 {
        return None;
    }
    let table = (phentsize * phnum) as usize;
    if phoff as usize + table > buf.len() {
        pread(buf, phoff, table)?;
    } else {
        buf.drain(..phoff as usize);
    }
    for i in 0..phnum as usize {
        let ph = &buf[i * phentsize as usize..];
        if ph.len() < phentsize as usize || u32_at(ph, 0) != 3 {
            continue; // PT_INTERP is 3
        }
        let (offset, size) = if wide {
            (u64_at(ph, 8), u64_at(ph, 32))
        } else {
            (u32_at(ph, 4), u32_at(ph, 16))
        };
        if size == 0 || size > 4096 {
            return None;
        }
        pread(buf, offset, size as usize)?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        return buf[..end].starts_with(b"/").then(|| buf[..end].to_vec());
    }
    None
}

/// Most arguments an exec may have that we record (the kernel's own limit is higher).
const MAX_ARGS: usize = 1 << 17;

/// Read an exec's argv: the pointer array, then the strings, in one read when they lie
/// close together (they usually do), one read per string otherwise.
fn read_argv(
    tid: i32,
    abi: Abi,
    addr: u64,
    mem: &mut Vec<u8>,
    one: &mut Vec<u8>,
) -> Result<Vec<Vec<u8>>, Miss> {
    let width = abi.pointer_size();
    let mut pointers: Vec<u64> = Vec::new();
    if addr != 0 {
        let mut at = addr;
        'outer: loop {
            mem.clear();
            let chunk = (PAGE_SIZE - (at % PAGE_SIZE)) as usize;
            let n = read_mem(tid, at, chunk, mem).map_err(miss_of)?;
            if n < width {
                return Err(Miss::Invalid);
            }
            for word in mem[..n - n % width].chunks_exact(width) {
                let p = if width == 8 {
                    u64::from_le_bytes(word.try_into().unwrap_or([0; 8]))
                } else {
                    u32::from_le_bytes(word.try_into().unwrap_or([0; 4])) as u64
                };
                if p == 0 {
                    break 'outer;
                }
                pointers.push(p);
                if pointers.len() >= MAX_ARGS {
                    break 'outer;
                }
            }
            at += (n - n % width) as u64;
        }
    }
    let mut argv = Vec::with_capacity(pointers.len());
    let (lo, hi) = match (pointers.iter().min(), pointers.iter().max()) {
        (Some(&lo), Some(&hi)) => (lo, hi),
        _ => return Ok(argv),
    };
    // One bulk read covering all the strings when they are within 256 KiB.
    mem.clear();
    let mut got = 0;
    if hi - lo < 256 * 1024 {
        let end = (hi / PAGE_SIZE + 1) * PAGE_SIZE;
        got = read_mem(tid, lo, (end - lo) as usize, mem).unwrap_or(0);
    }
    for &p in &pointers {
        let off = (p - lo) as usize;
        if off < got {
            if let Some(len) = mem[off..got].iter().position(|&b| b == 0) {
                argv.push(mem[off..off + len].to_vec());
                continue;
            }
        }
        read_cstr(tid, p, one).map_err(miss_of)?;
        argv.push(one.clone());
    }
    Ok(argv)
}

const PAGE_SIZE: u64 = 4096;

const ALL_SYS: &[Sys] = &[
    Sys::Open,
    Sys::Creat,
    Sys::Openat,
    Sys::Openat2,
    Sys::Execve,
    Sys::Execveat,
    Sys::Stat,
    Sys::Lstat,
    Sys::Newfstatat,
    Sys::Statx,
    Sys::Access,
    Sys::Faccessat,
    Sys::Faccessat2,
    Sys::Unlink,
    Sys::Unlinkat,
    Sys::Rmdir,
    Sys::Rename,
    Sys::Renameat,
    Sys::Renameat2,
    Sys::Mkdir,
    Sys::Mkdirat,
    Sys::Symlink,
    Sys::Symlinkat,
    Sys::Link,
    Sys::Linkat,
    Sys::Chdir,
    Sys::Fchdir,
    Sys::Getdents,
    Sys::Getdents64,
    Sys::Truncate,
    Sys::ExitGroup,
    Sys::Readlink,
    Sys::Readlinkat,
    Sys::IoUringSetup,
];
