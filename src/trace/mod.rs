//! The file tracer: seccomp user notification under every recipe command.
//!
//! The shim's child installs a seccomp filter ([`install_filter`], or a prepared
//! [`Filter`]) just before it execs the recipe's shell; the filter sends file and process
//! system calls to a listener fd that travels to the recorder, whose [`Supervisor`] reads
//! each notification, works out the absolute path and what kind of access it is, and
//! lets the call continue (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). No ptrace: a recipe may
//! run strace or gdb. The filter is inherited across fork, clone and exec, so every
//! process of the command is covered, statically linked ones included.
//!
//! We never see a call's result. Whether an access found its file ("read") or not
//! ("probe") is decided by looking at the path from the supervisor while the tracee is
//! stopped at the call, which is exact for the tracee's own view unless another process
//! changes the same path at the same moment.
//!
//! The tracer never opens the record and never decides which command a process belongs
//! to: it reports what processes did, the recorder attributes (by listener).
//!
//! What it traps and how each call is classified is documented in `docs/tracer.md`.

use std::os::fd::OwnedFd;

mod fastpath;
mod filter;
pub mod path;
mod ring;
mod run;
mod supervisor;
pub(crate) mod sys;
mod syscall;

// The record's access kinds live in `crate::access`, which the store shares.
pub use crate::access::AccessKind;
pub use fastpath::{without_fast_path, HELPER_FILE};
pub use filter::FilterOptions;
pub use path::{Cursor, PathId, PathTable};
pub use ring::{Ring, RingKind, RingRecord, FAST_PATH_PAGE};
pub use run::{
    continue_all, detach, recv_fd, run_traced, run_traced_fast, run_traced_with,
    run_traced_with_ring, send_fd, seqpacket_pair, RunHooks, Traced,
};
pub use supervisor::Supervisor;

/// What a traced process did. `pid` is always the thread group id (the process).
/// Paths of accesses are numbers in the supervisor's [`PathTable`] (`P = PathId`);
/// [`Event::spelled`] gives the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<P = PathId> {
    /// A process seen for the first time (its first trapped call). Always comes before
    /// the process's other events.
    Process { pid: i32, ppid: i32, time_ns: i64 },
    /// A path was touched. `path` numbers it in the supervisor's [`PathTable`]
    /// ([`Supervisor::paths`]): absolute and normalised (no `.`, `..` or `//`), symlinks
    /// not resolved.
    Access {
        pid: i32,
        path: P,
        kind: AccessKind,
        time_ns: i64,
    },
    /// A successful-looking execve/execveat: the program (absolute, normalised) and its
    /// arguments, and the process's cwd. Comes right after the `Access` of kind `Exec`.
    Exec {
        pid: i32,
        path: Vec<u8>,
        argv: Vec<Vec<u8>>,
        cwd: Vec<u8>,
        time_ns: i64,
    },
    /// exit_group: the process is ending with this code (0–255).
    Exit { pid: i32, code: i32, time_ns: i64 },
    /// The process ended without calling exit_group (killed by a signal, or its last
    /// thread called `exit`). Reported when the tracer notices: at the latest when its
    /// listener hangs up.
    Gone { pid: i32, time_ns: i64 },
    /// The process made this call but we could not read its arguments (it made itself
    /// non-dumpable, for instance): the record is incomplete here.
    Lost {
        pid: i32,
        syscall: &'static str,
        time_ns: i64,
    },
}

impl Event {
    /// The event with its path spelled out (for tests and tools; the recorder keeps
    /// numbers).
    pub fn spelled(self, paths: &PathTable) -> Event<Vec<u8>> {
        match self {
            Event::Process { pid, ppid, time_ns } => Event::Process { pid, ppid, time_ns },
            Event::Access {
                pid,
                path,
                kind,
                time_ns,
            } => Event::Access {
                pid,
                path: paths.name(path).to_vec(),
                kind,
                time_ns,
            },
            Event::Exec {
                pid,
                path,
                argv,
                cwd,
                time_ns,
            } => Event::Exec {
                pid,
                path,
                argv,
                cwd,
                time_ns,
            },
            Event::Exit { pid, code, time_ns } => Event::Exit { pid, code, time_ns },
            Event::Gone { pid, time_ns } => Event::Gone { pid, time_ns },
            Event::Lost {
                pid,
                syscall,
                time_ns,
            } => Event::Lost {
                pid,
                syscall,
                time_ns,
            },
        }
    }
}

impl<P> Event<P> {
    /// The process the event is about.
    pub fn pid(&self) -> i32 {
        match *self {
            Event::Process { pid, .. }
            | Event::Access { pid, .. }
            | Event::Exec { pid, .. }
            | Event::Exit { pid, .. }
            | Event::Gone { pid, .. }
            | Event::Lost { pid, .. } => pid,
        }
    }
}

/// Why tracing could not be set up or went wrong.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The kernel refused the filter (no seccomp, no user notification, a sandbox).
    #[error("the kernel refused the seccomp filter: {0}")]
    Refused(std::io::Error),
    /// A seccomp listener is already installed above us (EBUSY).
    #[error("a seccomp user-notification filter is already installed")]
    AlreadyFiltered,
    /// Reading from the listener failed.
    #[error("seccomp listener: {0}")]
    Listener(std::io::Error),
}

/// A seccomp filter program, built ahead of time so that installing it allocates
/// nothing (safe between fork and exec in a multi-threaded process).
#[derive(Debug, Clone)]
pub struct Filter {
    program: Vec<sys::SockFilter>,
    options: FilterOptions,
}

impl Filter {
    /// Build the program for these options.
    pub fn new(options: FilterOptions) -> Filter {
        Filter {
            program: filter::program(&options),
            options,
        }
    }

    /// A filter that traps nothing (every call allowed, no notification ever): the
    /// baseline for measuring what the machinery around the tracer costs by itself.
    pub fn allow_all() -> Filter {
        Filter {
            program: filter::allow_all(),
            options: FilterOptions {
                sync_wakeup: false,
                ..FilterOptions::default()
            },
        }
    }

    /// The program as the kernel's `struct sock_filter` array, for a process that
    /// installs it without this crate (the C shim reads it from a file).
    pub fn program_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.program.len() * 8);
        for instruction in &self.program {
            bytes.extend_from_slice(&instruction.code.to_ne_bytes());
            bytes.push(instruction.jt);
            bytes.push(instruction.jf);
            bytes.extend_from_slice(&instruction.k.to_ne_bytes());
        }
        bytes
    }

    /// Install the filter in the calling thread (`PR_SET_NO_NEW_PRIVS` first) and return
    /// the listener (close-on-exec). Async-signal-safe: no allocation, no locks.
    ///
    /// Call it in the process that will exec the command, after everything else that
    /// process does (its own system calls after this point are trapped too), and send
    /// the listener away before exec: the first notification is that exec.
    pub fn install(&self) -> Result<OwnedFd, TraceError> {
        match filter::install(&self.program, &self.options) {
            Ok(fd) => Ok(fd),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) => Err(TraceError::AlreadyFiltered),
            Err(err) => Err(TraceError::Refused(err)),
        }
    }
}

impl Default for Filter {
    fn default() -> Filter {
        Filter::new(FilterOptions::default())
    }
}

/// Install the default filter in the calling process (the shim's child, just before
/// exec). Returns the listener. Sets `PR_SET_NO_NEW_PRIVS`. Allocates (it builds the
/// program): in a multi-threaded process, build a [`Filter`] before fork instead.
pub fn install_filter() -> Result<OwnedFd, TraceError> {
    Filter::default().install()
}

/// What [`Supervisor::handle_ready`] found on the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A notification was answered (events may have been pushed).
    Answered,
    /// Nothing to read right now (or the notifying task died first: ordinary).
    Idle,
    /// No process uses this filter any more: close the listener.
    Hangup,
}

/// The parent of a process, from `/proc/<pid>/status`.
pub fn parent_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}
