//! Classification: what a trapped call did to which path, decided from the typed call
//! ([`Syscall`]) in one small function per family, each answering the notification at the
//! point the header of `supervisor/mod.rs` prescribes (before the existence check for
//! calls that may create or remove their path, after it for all others).
//!
//! It never reads raw registers (the decode did) and never keeps a path beyond the
//! call: operands live in the reused [`Scratch`] buffers and events carry numbers from
//! the [`PathTable`](super::PathTable).

use super::exe::{interpreter, read_argv};
use super::{miss_of, Call, Miss, Proc, Supervisor};
use crate::paths::normalize_into as normalize;
use crate::trace::filter::Abi;
use crate::trace::path::join;
use crate::trace::sys::{
    exists, proc_fd_path, proc_path, read_cstr, read_pod, readlink_into, OpenHow, RESOLVE_IN_ROOT,
};
use crate::trace::syscall::{PathArg, Syscall};
use crate::trace::{AccessKind, Event};

/// Reused buffers: nothing on the per-notification path allocates except the events.
#[derive(Default)]
pub(super) struct Scratch {
    raw: [Vec<u8>; 2],
    abs: [Vec<u8>; 2],
    norm: Vec<u8>,
    base: Vec<u8>,
    mem: Vec<u8>,
    /// `/proc/<tid>/root` and a path, for [`Supervisor::look_through_roots`].
    through: Vec<u8>,
}

/// `found` when the path existed, else `missing`.
fn kind_if(exists: bool, found: AccessKind, missing: AccessKind) -> AccessKind {
    if exists {
        found
    } else {
        missing
    }
}

impl Supervisor {
    /// Record what `call` did and answer it.
    pub(super) fn classify(
        &mut self,
        call: &mut Call,
        abi: Abi,
        syscall: Syscall,
        time_ns: i64,
        events: &mut Vec<Event>,
    ) -> Result<(), Miss> {
        match syscall {
            Syscall::ExitGroup { code } => {
                self.exit_group(call, code, time_ns, events);
                Ok(())
            }
            Syscall::Open { path, flags } => self.open(call, path, flags, false, time_ns, events),
            Syscall::Openat2 { path, how, size } => {
                if size < std::mem::size_of::<OpenHow>() as u64 {
                    return Err(Miss::Invalid);
                }
                let how: OpenHow = read_pod(call.tid, how).map_err(miss_of)?;
                let in_root = how.resolve & RESOLVE_IN_ROOT != 0;
                self.open(call, path, how.flags as i32, in_root, time_ns, events)
            }
            Syscall::Exec {
                path,
                argv,
                empty_path,
                follow,
            } => self.exec(call, abi, path, argv, empty_path, follow, time_ns, events),
            Syscall::Stat {
                path,
                follow,
                empty_path,
            } => {
                self.operand(call, 0, path, empty_path, false)?;
                let exists = self.answer_then_exists(call, 0, follow)?;
                let kind = kind_if(exists, AccessKind::Stat, AccessKind::Probe);
                self.emit(call, 0, kind, time_ns, events);
                Ok(())
            }
            Syscall::Truncate { path } => {
                self.operand(call, 0, path, false, false)?;
                let exists = self.answer_then_exists(call, 0, true)?;
                let kind = kind_if(exists, AccessKind::Truncate, AccessKind::Probe);
                self.emit(call, 0, kind, time_ns, events);
                Ok(())
            }
            Syscall::Remove { path } => {
                self.operand(call, 0, path, false, false)?;
                let exists = self.exists_then_answer(call, 0, false)?;
                let kind = kind_if(exists, AccessKind::Remove, AccessKind::Probe);
                self.emit(call, 0, kind, time_ns, events);
                Ok(())
            }
            Syscall::Mkdir { path } => self.make(call, path, AccessKind::Mkdir, time_ns, events),
            Syscall::Symlink { path } => {
                self.make(call, path, AccessKind::Symlink, time_ns, events)
            }
            Syscall::Rename { old, new, exchange } => {
                self.rename(call, old, new, exchange, time_ns, events)
            }
            Syscall::Link {
                old,
                new,
                empty_path,
                follow,
            } => self.link(call, old, new, empty_path, follow, time_ns, events),
            Syscall::Chdir { path } => self.chdir(call, path, time_ns, events),
            Syscall::Fchdir { fd } => {
                if !self.fd_directory(call, fd)? {
                    return Ok(());
                }
                if let Some(p) = self.procs.get_mut(&call.tgid) {
                    p.cwd = None;
                }
                self.emit(call, 0, AccessKind::Chdir, time_ns, events);
                Ok(())
            }
            Syscall::Getdents { fd } => self.getdents(call, fd, time_ns, events),
            Syscall::IoUringSetup => Ok(()), // the filter refuses it; never notified
        }
    }

    /// `exit_group`: the process's end is reported here, not when its pidfd says so.
    fn exit_group(&mut self, call: &Call, code: i32, time_ns: i64, events: &mut Vec<Event>) {
        if let Some(p) = self.procs.get_mut(&call.tgid) {
            p.exited = true;
        }
        events.push(Event::Exit {
            pid: call.tgid,
            code,
            time_ns,
        });
    }

    /// The opens: the kind follows from the flags and whether the path existed.
    fn open(
        &mut self,
        call: &mut Call,
        path: PathArg,
        flags: i32,
        in_root: bool,
        time_ns: i64,
        events: &mut Vec<Event>,
    ) -> Result<(), Miss> {
        self.operand(call, 0, path, false, in_root)?;
        let follow = flags & libc::O_NOFOLLOW == 0;
        let tmpfile = flags & libc::O_TMPFILE & !libc::O_DIRECTORY != 0;
        let creat = flags & libc::O_CREAT != 0 && !tmpfile;
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        let exists = if creat {
            self.exists_then_answer(call, 0, follow)?
        } else {
            self.answer_then_exists(call, 0, follow)?
        };
        let kind = if flags & libc::O_PATH != 0 || tmpfile {
            kind_if(exists, AccessKind::Stat, AccessKind::Probe)
        } else if !exists {
            kind_if(creat, AccessKind::Create, AccessKind::Probe)
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

    /// The execs: an exec access and an [`Event::Exec`] (path, argv, cwd) when the file
    /// exists, plus the interpreters the kernel opens itself; a probe when it does not.
    #[allow(clippy::too_many_arguments)]
    fn exec(
        &mut self,
        call: &mut Call,
        abi: Abi,
        path: PathArg,
        argv: u64,
        empty_path: bool,
        follow: bool,
        time_ns: i64,
        events: &mut Vec<Event>,
    ) -> Result<(), Miss> {
        self.operand(call, 0, path, empty_path, false)?;
        let argv = read_argv(
            call.tid,
            abi,
            argv,
            &mut self.scratch.mem,
            &mut self.scratch.base,
        )?;
        let cwd = self.cwd(call)?;
        let exists = self.answer_then_exists(call, 0, follow)?;
        if !exists {
            self.emit(call, 0, AccessKind::Probe, time_ns, events);
            return Ok(());
        }
        self.emit(call, 0, AccessKind::Exec, time_ns, events);
        let path = self.scratch.norm.clone();
        events.push(Event::Exec {
            pid: call.tgid,
            path,
            argv,
            cwd,
            time_ns,
        });
        // The kernel itself opens `#!` interpreters and the ELF interpreter (ld.so): no
        // system call shows them, so read them from the file.
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
        Ok(())
    }

    /// mkdir and symlink: `made` on the new path, or a stat when it existed (EEXIST, as
    /// `mkdir -p` meets it).
    fn make(
        &mut self,
        call: &mut Call,
        path: PathArg,
        made: AccessKind,
        time_ns: i64,
        events: &mut Vec<Event>,
    ) -> Result<(), Miss> {
        self.operand(call, 0, path, false, false)?;
        let exists = self.exists_then_answer(call, 0, false)?;
        self.emit(
            call,
            0,
            kind_if(exists, AccessKind::Stat, made),
            time_ns,
            events,
        );
        Ok(())
    }

    /// Read both operands of a rename or link into slots 0 and 1 and check, before
    /// answering, whether each existed.
    fn two_paths(
        &mut self,
        call: &mut Call,
        old: PathArg,
        new: PathArg,
        old_empty_ok: bool,
        old_follow: bool,
    ) -> Result<(bool, bool), Miss> {
        self.operand(call, 0, old, old_empty_ok, false)?;
        self.operand(call, 1, new, false, false)?;
        let old_exists = self.exists(call.tid, 0, old_follow);
        let new_exists = self.exists(call.tid, 1, false);
        call.answer()?;
        Ok((old_exists, new_exists))
    }

    /// The renames: rename_from on the old path and rename_to on the new one (both on
    /// both with `RENAME_EXCHANGE`); a missing old path is only a probe.
    fn rename(
        &mut self,
        call: &mut Call,
        old: PathArg,
        new: PathArg,
        exchange: bool,
        time_ns: i64,
        events: &mut Vec<Event>,
    ) -> Result<(), Miss> {
        let (old_exists, _) = self.two_paths(call, old, new, false, false)?;
        if !old_exists {
            self.emit(call, 0, AccessKind::Probe, time_ns, events);
            return Ok(());
        }
        self.emit(call, 0, AccessKind::RenameFrom, time_ns, events);
        if exchange {
            self.emit(call, 1, AccessKind::RenameFrom, time_ns, events);
            self.emit(call, 0, AccessKind::RenameTo, time_ns, events);
        }
        self.emit(call, 1, AccessKind::RenameTo, time_ns, events);
        Ok(())
    }

    /// The hard links: a stat on the old path (a probe when missing), link on the new
    /// one (a stat when it existed).
    #[allow(clippy::too_many_arguments)]
    fn link(
        &mut self,
        call: &mut Call,
        old: PathArg,
        new: PathArg,
        empty_path: bool,
        follow: bool,
        time_ns: i64,
        events: &mut Vec<Event>,
    ) -> Result<(), Miss> {
        let (old_exists, new_exists) = self.two_paths(call, old, new, empty_path, follow)?;
        if !old_exists {
            self.emit(call, 0, AccessKind::Probe, time_ns, events);
            return Ok(());
        }
        self.emit(call, 0, AccessKind::Stat, time_ns, events);
        let kind = kind_if(new_exists, AccessKind::Stat, AccessKind::Link);
        self.emit(call, 1, kind, time_ns, events);
        Ok(())
    }

    /// chdir: the process's cached working directory is dropped before it may change.
    fn chdir(
        &mut self,
        call: &mut Call,
        path: PathArg,
        time_ns: i64,
        events: &mut Vec<Event>,
    ) -> Result<(), Miss> {
        self.operand(call, 0, path, false, false)?;
        if let Some(p) = self.procs.get_mut(&call.tgid) {
            p.cwd = None;
        }
        let exists = self.answer_then_exists(call, 0, true)?;
        let kind = kind_if(exists, AccessKind::Chdir, AccessKind::Probe);
        self.emit(call, 0, kind, time_ns, events);
        Ok(())
    }

    /// Read what `fd` names into `scratch.abs[0]` and answer; false when it is not a
    /// directory in the file system (a pipe, a socket).
    fn fd_directory(&mut self, call: &mut Call, fd: i32) -> Result<bool, Miss> {
        let mut buf = [0u8; 64];
        readlink_into(
            proc_fd_path(&mut buf, call.tid, fd),
            &mut self.scratch.abs[0],
        )
        .map_err(miss_of)?;
        call.answer()?;
        Ok(self.scratch.abs[0].starts_with(b"/"))
    }

    /// getdents: a listing of the directory, once per run of calls on it by one thread.
    fn getdents(
        &mut self,
        call: &mut Call,
        fd: i32,
        time_ns: i64,
        events: &mut Vec<Event>,
    ) -> Result<(), Miss> {
        if !self.fd_directory(call, fd)? {
            return Ok(());
        }
        let dir = &self.scratch.abs[0];
        let last = match self.threads.get_mut(&call.tid) {
            Some(t) => Some(&mut t.last_list),
            None => self.procs.get_mut(&call.tgid).map(|p| &mut p.last_list),
        };
        if let Some(last) = last {
            if last == dir {
                return Ok(());
            }
            last.clone_from(dir);
        }
        self.emit(call, 0, AccessKind::List, time_ns, events);
        Ok(())
    }

    /// Read path operand `slot` and make it absolute in `scratch.abs[slot]` (joined, not
    /// normalised). `empty_ok`: an empty path means the dirfd itself (AT_EMPTY_PATH).
    /// `in_root`: absolute paths are relative to the dirfd (openat2 RESOLVE_IN_ROOT).
    fn operand(
        &mut self,
        call: &Call,
        slot: usize,
        path: PathArg,
        empty_ok: bool,
        in_root: bool,
    ) -> Result<(), Miss> {
        let s = &mut self.scratch;
        read_cstr(call.tid, path.addr, &mut s.raw[slot]).map_err(miss_of)?;
        let raw = &s.raw[slot];
        if raw.is_empty() && !empty_ok {
            return Err(Miss::Invalid); // ENOENT
        }
        let dirfd = path.dirfd;
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

    /// The process's working directory (cached until it changes directory).
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
        Ok(self.exists(call.tid, slot, follow))
    }

    /// For calls that may create or remove the path: look while the tracee waits.
    fn exists_then_answer(
        &mut self,
        call: &mut Call,
        slot: usize,
        follow: bool,
    ) -> Result<bool, Miss> {
        let exists = self.exists(call.tid, slot, follow);
        call.answer()?;
        Ok(exists)
    }

    /// Does operand `slot`'s absolute path exist, as the tracee sees it? Looked at
    /// from here, or through `/proc/<tid>/root` when the tracee has a root of its own
    /// that its `/proc` link does not show (a sandbox's mount namespace).
    fn exists(&mut self, tid: i32, slot: usize, follow: bool) -> bool {
        if !self.through_root {
            return exists_at(&mut self.scratch.abs[slot], follow);
        }
        use std::io::Write;
        let through = &mut self.scratch.through;
        through.clear();
        let _ = write!(through, "/proc/{tid}/root");
        through.extend_from_slice(&self.scratch.abs[slot]);
        exists_at(through, follow)
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

/// Does the absolute path in `path` exist? (Adds and removes a NUL in place.)
fn exists_at(path: &mut Vec<u8>, follow: bool) -> bool {
    path.push(0);
    let found = exists(path, follow);
    path.pop();
    found
}
