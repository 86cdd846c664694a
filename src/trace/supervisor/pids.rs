//! Per-process state, keyed by pid: which processes and threads the supervisor has
//! seen (first sight opens a pidfd and reads tgid and parent), and reaping, which drops
//! the state of ended tasks before a recycled pid can be looked up.
//!
//! It never answers a notification and never classifies a call.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::{Attached, Ending, Supervisor};
use crate::trace::sys::{
    epoll_add, epoll_create, epoll_ready, now_ns, open, pidfd_ids, pidfd_open, proc_path, read,
    readlink_into, PIDFD_THREAD,
};
use crate::trace::Event;

/// A process (thread group) we have seen.
pub(super) struct Proc {
    pub(super) listener: RawFd,
    /// Readable when the whole thread group has exited.
    _pidfd: OwnedFd,
    /// `/proc/<pid>/cwd`, while known not to have changed (chdir/fchdir clear it).
    pub(super) cwd: Option<Vec<u8>>,
    /// `/proc/<pid>/root` when it is not `/` (a chroot).
    pub(super) root: Option<Vec<u8>>,
    /// exit_group seen (trapped, or the helper's exit record): its end is already reported.
    pub(super) exited: bool,
    /// The last directory the leader thread listed (repeated getdents on one directory
    /// is one listing).
    pub(super) last_list: Vec<u8>,
}

/// A thread that is not its group's leader.
pub(super) struct Thread {
    pub(super) tgid: i32,
    /// Readable when this thread has exited (`PIDFD_THREAD`).
    _pidfd: OwnedFd,
    /// The last directory this thread listed (repeated getdents on one directory is one
    /// listing).
    pub(super) last_list: Vec<u8>,
}

const EPOLL_THREAD: u64 = 1 << 32;

impl Supervisor {
    /// Forget tasks that ended (their pidfds are readable). Must run after receiving a
    /// notification and before looking its pid up: a pid is only recycled after the
    /// task that had it was reaped, by which time its pidfd is readable.
    pub(super) fn reap(&mut self) {
        let Some(epoll) = self.epoll.as_ref().map(|e| e.as_raw_fd()) else {
            return;
        };
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 32];
        loop {
            let n = match epoll_ready(epoll, &mut ready) {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            let mut time_ns = 0;
            for ev in &ready[..n] {
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
            if n < ready.len() {
                return;
            }
        }
    }

    fn watch(&mut self, pidfd: RawFd, data: u64) -> bool {
        if self.epoll.is_none() {
            match epoll_create() {
                Ok(ep) => self.epoll = Some(ep),
                Err(_) => return false,
            }
        }
        let ep = self.epoll.as_ref().map(|e| e.as_raw_fd()).unwrap_or(-1);
        epoll_add(ep, pidfd, data).is_ok()
    }

    /// The process `tid` belongs to, creating its state on first sight. Returns the tgid
    /// and, when it is new, its parent.
    pub(super) fn task(&mut self, listener: RawFd, tid: i32) -> Option<(i32, Option<i32>)> {
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
    let fd = open(path, libc::O_RDONLY).ok()?;
    let mut len = 0;
    while len < buf.len() {
        match read(fd.as_raw_fd(), &mut buf[len..]).ok()? {
            0 => break,
            n => len += n,
        }
    }
    Some(len)
}
