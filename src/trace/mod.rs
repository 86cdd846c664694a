//! The file tracer: seccomp user notification under every recipe command.
//!
//! The shim's child installs a seccomp filter ([`install_filter`]) just before it execs
//! the recipe's shell; the filter sends file and process system calls to a listener fd
//! that travels to the recorder, whose [`Supervisor`] reads each notification, works out
//! the absolute path and what kind of access it is, and lets the call continue
//! (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). No ptrace: a recipe may run strace or gdb.
//! The filter is inherited across fork, clone and exec, so every process of the command
//! is covered, statically linked ones included.
//!
//! The tracer never opens the record and never decides which command a process belongs
//! to: it reports what processes did, the recorder attributes.
//!
//! (Interface fixed by the recorder; implementation in progress.)

use std::os::fd::{BorrowedFd, OwnedFd};

/// How a path was touched. The numbers are the record's `access_kind` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum AccessKind {
    Read = 1,
    Write = 2,
    Create = 3,
    Truncate = 4,
    Append = 5,
    Exec = 6,
    Stat = 7,
    Probe = 8,
    List = 9,
    Remove = 10,
    RenameFrom = 11,
    RenameTo = 12,
    Mkdir = 13,
    Symlink = 14,
    Link = 15,
    Chdir = 16,
}

/// What a traced process did. `pid` is always the thread group id (the process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A process seen for the first time.
    Process { pid: i32, ppid: i32, time_ns: i64 },
    /// A path was touched. `path` is absolute and normalised (no `.`, `..` or `//`);
    /// symlinks are not resolved.
    Access {
        pid: i32,
        path: Vec<u8>,
        kind: AccessKind,
        time_ns: i64,
    },
    /// A successful-looking execve/execveat: the program and its arguments.
    Exec {
        pid: i32,
        path: Vec<u8>,
        argv: Vec<Vec<u8>>,
        cwd: Vec<u8>,
        time_ns: i64,
    },
    /// exit_group: the process is ending with this code.
    Exit { pid: i32, code: i32, time_ns: i64 },
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

/// Install the filter in the calling process (the shim's child, just before exec).
/// Returns the listener. Sets `PR_SET_NO_NEW_PRIVS`.
pub fn install_filter() -> Result<OwnedFd, TraceError> {
    Err(TraceError::Refused(std::io::Error::from_raw_os_error(
        libc::ENOSYS,
    )))
}

/// What [`Supervisor::handle`] found on the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A notification was answered (events may have been pushed).
    Answered,
    /// Nothing to read right now.
    Idle,
    /// No process uses this filter any more: close the listener.
    Hangup,
}

/// Answers notifications and keeps per-process state (cwd cache, tgid), keyed by pid.
#[derive(Debug, Default)]
pub struct Supervisor {}

impl Supervisor {
    /// A supervisor with no processes known.
    pub fn new() -> Supervisor {
        Supervisor {}
    }

    /// Receive and answer one notification from `listener`, pushing what it meant.
    pub fn handle(
        &mut self,
        _listener: BorrowedFd<'_>,
        _events: &mut Vec<Event>,
    ) -> Result<Handled, TraceError> {
        Ok(Handled::Hangup)
    }
}

/// The parent of a process, from `/proc/<pid>/status`.
pub fn parent_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}
