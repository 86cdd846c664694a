//! The sandbox: a replayed line runs where only the command's recorded files exist.
//!
//! Made from the record ([`Sandbox::new`]): every path the recorded command read,
//! executed, stat'ed, listed or changed into is there, read-only (a file bound in
//! alone, a listed directory bound whole); the directories it wrote into (created,
//! truncated, appended, removed, renamed, linked in) are bound writable, whole; every
//! other path is absent (ENOENT), because the root is an empty tmpfs that holds only
//! those. Symbolic links on the way are made again as links, so `/lib64/ld-linux…`
//! and merged-/usr `/lib` resolve as they do outside. Always there, whatever the
//! record says: a fresh `/proc` (of the sandbox's PID namespace), a `/dev` holding
//! `null zero full random urandom tty` (bound from the host) and `fd stdin stdout
//! stderr` links and a `shm` tmpfs, and an empty writable `/tmp`. The root is
//! read-only. No network namespace: the network is the host's.
//!
//! Enforcement is the kernel's: user, mount and PID namespaces made by the line's own
//! process (no root, no setuid helper), never the tracer (its path checks race with
//! the tracee). The process [`Command`] starts (A) unshares the namespaces, maps our
//! uid and gid to themselves and forks the namespace's init (B, pid 1), which builds
//! the root, pivots into it and forks the line's shell (C), which the tracer's own
//! `pre_exec` step then filters and execs. B reaps whatever is orphaned to it, and
//! when C ends B exits with C's status (a signal N as 128+N), which ends the PID
//! namespace: the kernel kills every process left in it, a double-forked daemon
//! included. A passes B's status on. Everything the child side runs is prepared
//! here first (paths as C strings, flags): between fork and exec it only makes system
//! calls, allocation-free.
//!
//! The tracer keeps running under C: [`Sandbox::misses`] names each path the line
//! touched that the sandbox does not hold (the access the tracer saw, from outside),
//! even when the program swallowed the error.
//!
//! What it must never do: write outside the sandbox's own tmpfs (a bind's mount point
//! is made in that tmpfs, never in the host's tree), or run anything but the line.

use std::collections::{BTreeMap, HashSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use crate::access::AccessKind;
use crate::paths::{self, as_path};
use crate::store::Store;
use crate::trace::Event;

use super::exec::LineTrace;

/// Where the staging tmpfs is mounted (inside our own mount namespace; the host's
/// `/tmp` is untouched and, once pivoted away from, visible again below `/old`).
const STAGE: &[u8] = b"/tmp";
/// The new root, inside the staging tmpfs after the first pivot.
const NEW: &[u8] = b"/new";
/// The host's root, after the first pivot.
const OLD: &[u8] = b"/old";

/// Device files bound in from the host (a user namespace cannot make device nodes).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// One step of building the root, all paths absolute in the staging namespace.
#[derive(Debug)]
enum Op {
    Mkdir(CString),
    /// An empty file to bind a file onto.
    Touch(CString),
    Symlink {
        target: CString,
        at: CString,
    },
    /// Bind `from` on `at`; `remount`: then make it read-only with these flags (the
    /// source's own nosuid/nodev/noexec/atime flags, which a user namespace may not
    /// drop).
    Bind {
        from: CString,
        at: CString,
        recursive: bool,
        remount: Option<libc::c_ulong>,
    },
    Tmpfs(CString),
    Proc(CString),
}

/// What a failed step names.
fn op_path(op: &Op) -> &CString {
    match op {
        Op::Mkdir(p) | Op::Touch(p) | Op::Tmpfs(p) | Op::Proc(p) => p,
        Op::Symlink { at, .. } | Op::Bind { at, .. } => at,
    }
}

/// How a path was made in the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    /// A directory of the tmpfs (only what is made in it is there).
    Dir,
    File,
    Link,
    /// A directory bound whole: what is below it is there too.
    Bound {
        writable: bool,
    },
}

/// What a recorded path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    /// Its metadata or its content (read, exec, stat): a file bound, a directory made.
    Exist,
    /// Its entries (list): a directory bound read-only.
    Entries,
    /// Writable (a written path's directory): bound writable.
    Writable,
}

/// The timings a sandboxed run reports when `MAKESCOPE_SANDBOX_TIMES` is set: set up
/// by the child side in a shared page (ns since the epoch).
#[repr(C)]
struct Times {
    started: i64,
    namespaces: i64,
    mounts: i64,
    /// What the namespace's init found still running when the line ended, as
    /// `pid argv…` lines (pids in the sandbox), `left_len` bytes of it.
    left_len: usize,
    left: [u8; LEFT_BYTES],
}

const LEFT_BYTES: usize = 3072;

/// A sandbox for one recipe's lines, ready to enter.
#[derive(Debug, Clone)]
pub struct Sandbox {
    inner: Arc<Prepared>,
}

#[derive(Debug)]
struct Prepared {
    ops: Vec<Op>,
    directory: CString,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    /// Paths made, by their spelling in the sandbox.
    made: BTreeMap<Vec<u8>, Made>,
    /// The paths the recorded commands looked for and did not find.
    probed: HashSet<Vec<u8>>,
    /// The shared page the child side writes [`Times`] to.
    times: usize,
}

// SAFETY: `times` is the address of a shared anonymous mapping that lives as long as
// the process (never unmapped); it is only read and written as plain integers.
unsafe impl Send for Prepared {}
// SAFETY: as above.
unsafe impl Sync for Prepared {}

/// Why a sandbox cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The kernel refuses unprivileged user namespaces.
    #[error("the kernel refuses unprivileged user namespaces ({0}); allow them (as root: {1}) or replay without --sandbox")]
    NoUserNamespaces(String, String),
    /// The record has no file accesses for a line.
    #[error("command {0} was not traced when it was recorded: the record does not say what it needs, so it cannot be sandboxed")]
    NotTraced(i64),
    #[error("cannot prepare the sandbox: {0}")]
    Io(#[from] std::io::Error),
}

impl Sandbox {
    /// The sandbox holding what the recorded commands `ids` touched, entered in
    /// `directory`.
    pub fn new(store: &Store, ids: &[i64], directory: &[u8]) -> Result<Sandbox, SandboxError> {
        check_user_namespaces()?;
        let mut needs: BTreeMap<Vec<u8>, Need> = BTreeMap::new();
        let mut probed = HashSet::new();
        for &id in ids {
            if let Some(c) = store.command(id)? {
                if c.traced != 1 {
                    return Err(SandboxError::NotTraced(id));
                }
            }
            for a in store.accesses(id)? {
                let Some(kind) = AccessKind::from_name(&a.kind) else {
                    continue;
                };
                let (path, need) = match kind {
                    AccessKind::Probe => {
                        probed.insert(a.path);
                        continue;
                    }
                    AccessKind::List => (a.path, Need::Entries),
                    AccessKind::Read | AccessKind::Exec | AccessKind::Stat | AccessKind::Chdir => {
                        (a.path, Need::Exist)
                    }
                    // Written, removed, renamed: its directory is writable.
                    _ => (parent(&a.path).to_vec(), Need::Writable),
                };
                let entry = needs.entry(path).or_insert(need);
                *entry = (*entry).max(need);
            }
        }
        needs.entry(directory.to_vec()).or_insert(Need::Exist);
        let mut builder = Builder::default();
        builder.always();
        for (path, need) in &needs {
            if always_there(path) {
                continue;
            }
            builder.want(path, *need, 0);
        }
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let times = shared_page()?;
        Ok(Sandbox {
            inner: Arc::new(Prepared {
                ops: builder.ops,
                directory: cstring(directory),
                uid_map: format!("{uid} {uid} 1\n").into_bytes(),
                gid_map: format!("{gid} {gid} 1\n").into_bytes(),
                made: builder.made,
                probed,
                times,
            }),
        })
    }

    /// How many bind mounts the sandbox makes (for the figures).
    pub fn mounts(&self) -> usize {
        self.inner
            .ops
            .iter()
            .filter(|op| matches!(op, Op::Bind { .. } | Op::Tmpfs(_) | Op::Proc(_)))
            .count()
    }

    /// Make `command` run in the sandbox: register the child side's steps (before
    /// the tracer's, which then run in the line's own process only).
    pub fn enter(&self, command: &mut Command) {
        let prepared = Arc::clone(&self.inner);
        // SAFETY: the closure runs between fork and exec; `child_side` only makes
        // system calls on memory prepared before the fork (see the module doc).
        unsafe {
            command.pre_exec(move || child_side(&prepared));
        }
    }

    /// What the namespace's init found still running when the last run's line ended
    /// (and the kernel then killed): `pid argv…` each, pids as the sandbox numbers
    /// them.
    pub fn last_left(&self) -> Vec<String> {
        // SAFETY: `times` is the live shared page (see `Prepared`); plain bytes.
        let t = unsafe { &*(self.inner.times as *const Times) };
        let len = t.left_len.min(LEFT_BYTES);
        String::from_utf8_lossy(&t.left[..len])
            .lines()
            .map(|l| format!("{l} (in the sandbox)"))
            .collect()
    }

    /// The set-up's timings of the last run, ns: (namespaces, mounts), when the child
    /// side reached them.
    pub fn last_times(&self) -> Option<(i64, i64, i64)> {
        // SAFETY: `times` is the live shared page (see `Prepared`); plain integers.
        let t = unsafe { &*(self.inner.times as *const Times) };
        (t.mounts > 0).then_some((t.started, t.namespaces, t.mounts))
    }

    /// The paths a traced line touched that the sandbox does not hold, with the access
    /// the tracer saw (as the program saw it: a file missing in the sandbox is a
    /// probe), even when the program swallowed the error. A probe is a miss when the
    /// path is there outside and the recorded command did not look for it too (a path
    /// the build looked for and did not find is absent in the sandbox by design).
    pub fn misses(&self, trace: &LineTrace) -> Vec<(Vec<u8>, AccessKind)> {
        let mut seen = HashSet::new();
        let mut misses = Vec::new();
        for event in &trace.events {
            let Event::Access { path, kind, .. } = event else {
                continue;
            };
            if !seen.insert((path.0, *kind)) {
                continue;
            }
            let name = trace.paths.name(*path);
            let miss = if *kind == AccessKind::Probe {
                !self.inner.probed.contains(name)
                    && std::fs::symlink_metadata(as_path(name)).is_ok()
                    && !self.holds(name, AccessKind::Read)
            } else {
                !self.holds(name, *kind)
            };
            if miss {
                misses.push((name.to_vec(), *kind));
            }
        }
        misses
    }

    /// Whether the sandbox lets `kind` happen at `path`.
    fn holds(&self, path: &[u8], kind: AccessKind) -> bool {
        if always_there(path) {
            return true;
        }
        let writes = kind.is_write() || matches!(kind, AccessKind::Remove | AccessKind::RenameFrom);
        if writes {
            return self.writable(parent(path));
        }
        // Outside, the tracer saw it exist: is it there inside? Made, or below a
        // directory bound whole, or made by the line itself in a writable one.
        let real = std::fs::canonicalize(as_path(path));
        let Ok(real) = real else {
            return true; // gone since (a temporary): the tracer could not tell
        };
        let real = real.as_os_str().as_bytes();
        self.inner.made.contains_key(path)
            || self.inner.made.contains_key(real)
            || self.under_bound(real, false)
            || self.under_bound(path, false)
    }

    fn writable(&self, dir: &[u8]) -> bool {
        // The sandbox's own /tmp is a writable tmpfs, but for directories bound in.
        if dir == STAGE || dir.starts_with(b"/tmp/") && !self.under_bound(dir, false) {
            return true;
        }
        let real = std::fs::canonicalize(as_path(dir))
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .unwrap_or_else(|_| dir.to_vec());
        self.under_bound(&real, true) || self.under_bound(dir, true)
    }

    /// `path` is (below) a directory bound whole (and writable, if asked).
    fn under_bound(&self, path: &[u8], writable: bool) -> bool {
        ancestors(path).any(|a| match self.inner.made.get(a) {
            Some(Made::Bound { writable: w }) => *w || !writable,
            _ => false,
        })
    }
}

/// `path` and its ancestors, longest first (`/a/b/c`, `/a/b`, `/a`).
fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.iter().rposition(|&b| b == b'/') {
            Some(0) | None => None,
            Some(i) => Some(&current[..i]),
        };
        Some(current)
    })
}

/// The directory holding `path` (`/` for a path right below it).
fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/",
        Some(i) => &path[..i],
        None => path,
    }
}

/// What the sandbox provides whatever the record says.
fn always_there(path: &[u8]) -> bool {
    [&b"/proc"[..], b"/dev"]
        .iter()
        .any(|dir| path == *dir || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/')))
        || path == b"/"
        || path == STAGE
}

fn cstring(bytes: &[u8]) -> CString {
    CString::new(bytes.to_vec()).unwrap_or_default()
}

/// `[prefix][path]` as a C string.
fn under(prefix: &[u8], path: &[u8]) -> CString {
    cstring(&[prefix, path].concat())
}

/// The steps that make the root, and what they made.
#[derive(Default)]
struct Builder {
    ops: Vec<Op>,
    made: BTreeMap<Vec<u8>, Made>,
}

impl Builder {
    /// What every sandbox has: the root's own tmpfs, `/tmp`, `/proc`, `/dev`.
    fn always(&mut self) {
        self.ops.push(Op::Mkdir(cstring(NEW)));
        self.ops.push(Op::Tmpfs(cstring(NEW)));
        for dir in ["/tmp", "/proc", "/dev"] {
            self.ops.push(Op::Mkdir(under(NEW, dir.as_bytes())));
        }
        self.ops.push(Op::Tmpfs(under(NEW, b"/tmp")));
        self.ops.push(Op::Proc(under(NEW, b"/proc")));
        self.ops.push(Op::Tmpfs(under(NEW, b"/dev")));
        for device in DEVICES {
            let path = format!("/dev/{device}");
            if !Path::new(&path).exists() {
                continue;
            }
            self.ops.push(Op::Touch(under(NEW, path.as_bytes())));
            self.ops.push(Op::Bind {
                from: under(OLD, path.as_bytes()),
                at: under(NEW, path.as_bytes()),
                recursive: false,
                remount: None,
            });
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            self.ops.push(Op::Symlink {
                target: cstring(target.as_bytes()),
                at: under(NEW, format!("/dev/{name}").as_bytes()),
            });
        }
        self.ops.push(Op::Mkdir(under(NEW, b"/dev/shm")));
        self.ops.push(Op::Tmpfs(under(NEW, b"/dev/shm")));
        self.made.insert(STAGE.to_vec(), Made::Dir);
    }

    /// Make `path` there as `need` says, its directories and the links on the way
    /// made as they are outside. A path missing outside is left missing.
    fn want(&mut self, path: &[u8], need: Need, depth: usize) {
        if depth > 40 {
            return; // a loop of links: absent, as outside (ELOOP)
        }
        let components: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let mut at = Vec::with_capacity(path.len());
        for (i, component) in components.iter().enumerate() {
            at.push(b'/');
            at.extend_from_slice(component);
            let last = i + 1 == components.len();
            if let Some(made) = self.made.get(&at).copied() {
                match made {
                    Made::Bound { writable: true } => return,
                    Made::Bound { writable: false } => {
                        // Below a directory bound read-only: there already; a
                        // writable one below it is bound again, writable.
                        let whole = paths::normalize(path);
                        if need == Need::Writable && as_path(&whole).is_dir() {
                            self.bind(&whole, true, true);
                        }
                        return;
                    }
                    Made::Link => {
                        let rest = components[i + 1..].join(&b'/');
                        self.follow(&at, &rest, need, depth);
                        return;
                    }
                    Made::File => return,
                    Made::Dir => {
                        if !last {
                            continue;
                        }
                    }
                }
            }
            let Ok(meta) = std::fs::symlink_metadata(as_path(&at)) else {
                return;
            };
            let kind = meta.file_type();
            if kind.is_symlink() {
                let Ok(target) = std::fs::read_link(as_path(&at)) else {
                    return;
                };
                self.ops.push(Op::Symlink {
                    target: cstring(target.as_os_str().as_bytes()),
                    at: under(NEW, &at),
                });
                self.made.insert(at.clone(), Made::Link);
                let rest = components[i + 1..].join(&b'/');
                self.follow(&at, &rest, need, depth);
                return;
            }
            if kind.is_dir() {
                if last && need != Need::Exist {
                    self.bind(&at, need == Need::Writable, false);
                } else if !self.made.contains_key(&at) {
                    self.ops.push(Op::Mkdir(under(NEW, &at)));
                    self.made.insert(at.clone(), Made::Dir);
                }
                continue;
            }
            if !last {
                return; // not a directory: ENOTDIR outside too
            }
            if kind.is_file()
                || kind.is_char_device()
                || kind.is_block_device()
                || kind.is_fifo()
                || kind.is_socket()
            {
                if need == Need::Writable {
                    return;
                }
                self.ops.push(Op::Touch(under(NEW, &at)));
                self.bind_at(&at, false, false);
                self.made.insert(at.clone(), Made::File);
            }
        }
    }

    /// Go on at the target of the link made at `at`, then `rest`.
    fn follow(&mut self, at: &[u8], rest: &[u8], need: Need, depth: usize) {
        let Ok(target) = std::fs::read_link(as_path(at)) else {
            return;
        };
        let target = target.as_os_str().as_bytes();
        let mut next = if target.starts_with(b"/") {
            target.to_vec()
        } else {
            paths::absolute(parent(at), target)
        };
        if !rest.is_empty() {
            next.push(b'/');
            next.extend_from_slice(rest);
        }
        let next = paths::normalize(&next);
        self.want(&next, need, depth + 1);
    }

    /// Bind the directory `at` whole (it is made here if it was not).
    fn bind(&mut self, at: &[u8], writable: bool, exists: bool) {
        if !exists && !self.made.contains_key(at) {
            self.ops.push(Op::Mkdir(under(NEW, at)));
        }
        self.bind_at(at, writable, true);
        self.made.insert(at.to_vec(), Made::Bound { writable });
    }

    fn bind_at(&mut self, at: &[u8], writable: bool, recursive: bool) {
        // The source by its real path: after the pivot, an absolute link on the way
        // would resolve in the new root, not in the host's.
        let real = std::fs::canonicalize(as_path(at))
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .unwrap_or_else(|_| at.to_vec());
        let remount = (!writable).then(|| locked_flags(&real) | libc::MS_RDONLY);
        self.ops.push(Op::Bind {
            from: under(OLD, &real),
            at: under(NEW, at),
            recursive,
            remount,
        });
    }
}

/// The mount flags of the file system holding `path` that a user namespace may not
/// clear on a bind of it (nosuid, nodev, noexec, the atime ones), as `MS_*` flags.
fn locked_flags(path: &[u8]) -> libc::c_ulong {
    let c = cstring(path);
    // SAFETY: a zeroed statvfs is valid; statvfs fills it for the NUL-terminated path.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` and `s` are live for the call.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return 0;
    }
    let mut flags = 0;
    for (st, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if s.f_flag & st != 0 {
            flags |= ms;
        }
    }
    flags
}

/// A page shared with the child side (it survives fork as shared memory).
fn shared_page() -> std::io::Result<usize> {
    // SAFETY: an anonymous shared mapping of one page; the result is checked.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(page as usize)
}

/// Fail early, in one line with what to do, when the kernel's settings refuse
/// unprivileged user namespaces.
fn check_user_namespaces() -> Result<(), SandboxError> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Err(SandboxError::NoUserNamespaces(
            "kernel.unprivileged_userns_clone = 0".into(),
            "sysctl -w kernel.unprivileged_userns_clone=1".into(),
        ));
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Err(SandboxError::NoUserNamespaces(
            "kernel.apparmor_restrict_unprivileged_userns = 1".into(),
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for makescope".into(),
        ));
    }
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err(SandboxError::NoUserNamespaces(
            "user.max_user_namespaces = 0".into(),
            "sysctl -w user.max_user_namespaces=10000".into(),
        ));
    }
    Ok(())
}

// ---- the child side: system calls only ------------------------------------------------

fn now() -> i64 {
    // SAFETY: a zeroed timespec is valid; clock_gettime fills it in.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is live for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut t) };
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}

/// Write `parts` to stderr (no allocation).
fn say(parts: &[&[u8]]) {
    for part in parts {
        // SAFETY: writes `part`'s bytes, live for the call.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
}

/// The decimal digits of `n` in `buf`.
fn digits(mut n: i32, buf: &mut [u8; 12]) -> &[u8] {
    let mut i = buf.len();
    if n == 0 {
        i -= 1;
        buf[i] = b'0';
    }
    while n > 0 && i > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    &buf[i..]
}

/// Say that `what` failed on `path` with errno, and end this process with status 125.
fn fail(what: &[u8], path: &[u8]) -> ! {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let mut buf = [0u8; 12];
    say(&[
        b"makescope: sandbox: ",
        what,
        b" ",
        path,
        b" failed: errno ",
        digits(errno, &mut buf),
        b"\n",
    ]);
    // SAFETY: _exit ends this forked process without running the parent's exit code.
    unsafe { libc::_exit(125) }
}

fn write_file(path: &[u8], content: &[u8]) -> bool {
    // SAFETY: `path` is NUL-terminated (a literal below); the fd is closed after.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let ok = libc::write(fd, content.as_ptr().cast(), content.len()) == content.len() as isize;
        libc::close(fd);
        ok
    }
}

/// Wait for `pid`; its wait status (reaping every other child that ends meanwhile).
fn wait_for(pid: libc::pid_t) -> libc::c_int {
    loop {
        let mut status = 0;
        // SAFETY: `status` is live for the call.
        let reaped = unsafe { libc::waitpid(-1, &mut status, 0) };
        if reaped == pid {
            return status;
        }
        if reaped < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return status;
        }
    }
}

/// A wait status as an exit code (a signal N as 128+N).
fn code_of(status: libc::c_int) -> libc::c_int {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        125
    }
}

/// A (the process `Command` started): the namespaces, then B; returns only in C.
fn child_side(p: &Prepared) -> std::io::Result<()> {
    // SAFETY: `times` is the live shared page; plain integers.
    let times = unsafe { &mut *(p.times as *mut Times) };
    times.started = now();
    times.mounts = 0;
    times.left_len = 0;
    // SAFETY: unshare takes flags and touches no memory.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID) } != 0 {
        say(&[b"makescope: sandbox: the kernel refuses to make a user namespace (unshare: permission denied); allow unprivileged user namespaces or replay without --sandbox\n"]);
        // SAFETY: as in `fail`.
        unsafe { libc::_exit(125) }
    }
    if !write_file(b"/proc/self/setgroups\0", b"deny")
        || !write_file(b"/proc/self/uid_map\0", &p.uid_map)
        || !write_file(b"/proc/self/gid_map\0", &p.gid_map)
    {
        fail(b"mapping our user in", b"/proc/self/uid_map");
    }
    times.namespaces = now();
    // SAFETY: fork in the child of a fork: B makes system calls only (below).
    let init = unsafe { libc::fork() };
    if init < 0 {
        fail(b"fork", b"init");
    }
    if init > 0 {
        // A: wait for B, pass its status on. Close what we hold (the spawn's
        // status pipe among them) so the parent learns of C's exec from C alone.
        // SAFETY: close_range takes integers.
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
        let status = wait_for(init);
        // SAFETY: as in `fail`.
        unsafe { libc::_exit(code_of(status)) }
    }
    // B: pid 1 of the new PID namespace. Die with A.
    // SAFETY: prctl takes integers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    build_root(p);
    times.mounts = now();
    // SAFETY: as above.
    let shell = unsafe { libc::fork() };
    if shell < 0 {
        fail(b"fork", b"the command");
    }
    if shell > 0 {
        // SAFETY: close_range takes integers.
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
        let status = wait_for(shell);
        list_left(times);
        // Ending pid 1 ends the namespace: the kernel kills what is left in it.
        // SAFETY: as in `fail`.
        unsafe { libc::_exit(code_of(status)) }
    }
    // C: the line's shell; the tracer's step comes next, then exec.
    Ok(())
}

/// B, once the line ended: every process of the namespace but itself, from its
/// `/proc`, as `pid argv…` lines into `times.left` (what fits).
fn list_left(times: &mut Times) {
    let mut entries = [0u8; 4096];
    // SAFETY: a literal path; the fd is closed below.
    let dir = unsafe {
        libc::open(
            c"/proc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return;
    }
    loop {
        // SAFETY: getdents64 fills `entries`, live for the call.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir,
                entries.as_mut_ptr(),
                entries.len(),
            )
        };
        if n <= 0 {
            break;
        }
        let mut at = 0usize;
        while at + 19 < n as usize {
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
            let reclen = u16::from_ne_bytes([entries[at + 16], entries[at + 17]]) as usize;
            let name = &entries[at + 19..at + reclen.max(19)];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            at += reclen.max(1);
            if name.is_empty() || !name.iter().all(u8::is_ascii_digit) || name == b"1" {
                continue;
            }
            append_process(times, name);
        }
    }
    // SAFETY: `dir` is ours.
    unsafe { libc::close(dir) };
}

/// Append `pid argv…` for the process `pid` (its decimal name in `/proc`).
fn append_process(times: &mut Times, pid: &[u8]) {
    let mut path = [0u8; 64];
    let prefix = b"/proc/";
    let suffix = b"/cmdline\0";
    if prefix.len() + pid.len() + suffix.len() > path.len() {
        return;
    }
    path[..prefix.len()].copy_from_slice(prefix);
    path[prefix.len()..prefix.len() + pid.len()].copy_from_slice(pid);
    path[prefix.len() + pid.len()..prefix.len() + pid.len() + suffix.len()].copy_from_slice(suffix);
    let mut argv = [0u8; 512];
    let mut len = 0usize;
    // SAFETY: `path` is NUL-terminated; `argv` is live for the read; the fd is closed.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            let n = libc::read(fd, argv.as_mut_ptr().cast(), argv.len());
            len = n.max(0) as usize;
            libc::close(fd);
        }
    }
    let argv = &mut argv[..len];
    for b in argv.iter_mut() {
        if *b == 0 {
            *b = b' ';
        }
    }
    let line_len = pid.len() + 1 + argv.len() + 1;
    let at = times.left_len;
    if at + line_len > LEFT_BYTES {
        return;
    }
    let out = &mut times.left[at..at + line_len];
    out[..pid.len()].copy_from_slice(pid);
    out[pid.len()] = b' ';
    out[pid.len() + 1..pid.len() + 1 + argv.len()].copy_from_slice(argv);
    out[line_len - 1] = b'\n';
    times.left_len += line_len;
}

/// B: make the root from the prepared steps, pivot into it, go to the directory.
fn build_root(p: &Prepared) {
    let none: *const libc::c_char = std::ptr::null();
    // SAFETY: every pointer below is a NUL-terminated string prepared before the fork
    // (or a literal), live for the calls; the calls touch no other memory of ours.
    unsafe {
        if libc::mount(
            none,
            c"/".as_ptr(),
            none,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            fail(b"making mounts private at", b"/");
        }
        if libc::mount(
            c"tmpfs".as_ptr(),
            c"/tmp".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=0755".as_ptr().cast(),
        ) != 0
        {
            fail(b"mounting the staging tmpfs on", b"/tmp");
        }
        if libc::mkdir(c"/tmp/old".as_ptr(), 0o755) != 0 || libc::chdir(c"/tmp".as_ptr()) != 0 {
            fail(b"making", b"/tmp/old");
        }
        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c"old".as_ptr()) != 0 {
            fail(b"pivot_root to", b"the staging tmpfs");
        }
        libc::chdir(c"/".as_ptr());
        for op in &p.ops {
            let ok = match op {
                Op::Mkdir(path) => {
                    libc::mkdir(path.as_ptr(), 0o755) == 0
                        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST)
                }
                Op::Touch(path) => {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    );
                    fd >= 0 && libc::close(fd) == 0
                }
                Op::Symlink { target, at } => {
                    libc::symlink(target.as_ptr(), at.as_ptr()) == 0
                        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST)
                }
                Op::Bind {
                    from,
                    at,
                    recursive,
                    remount,
                } => {
                    let flags = libc::MS_BIND | if *recursive { libc::MS_REC } else { 0 };
                    libc::mount(from.as_ptr(), at.as_ptr(), none, flags, std::ptr::null()) == 0
                        && match remount {
                            None => true,
                            Some(extra) => {
                                libc::mount(
                                    none,
                                    at.as_ptr(),
                                    none,
                                    libc::MS_REMOUNT | libc::MS_BIND | extra,
                                    std::ptr::null(),
                                ) == 0
                            }
                        }
                }
                Op::Tmpfs(path) => {
                    libc::mount(
                        c"tmpfs".as_ptr(),
                        path.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        c"mode=0755".as_ptr().cast(),
                    ) == 0
                }
                Op::Proc(path) => {
                    libc::mount(
                        c"proc".as_ptr(),
                        path.as_ptr(),
                        c"proc".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        std::ptr::null(),
                    ) == 0
                }
            };
            if !ok {
                let what: &[u8] = match op {
                    Op::Mkdir(_) => b"mkdir",
                    Op::Touch(_) => b"making the mount point",
                    Op::Symlink { .. } => b"symlink",
                    Op::Bind { .. } => b"bind mount on",
                    Op::Tmpfs(_) => b"tmpfs on",
                    Op::Proc(_) => b"proc on",
                };
                fail(what, op_path(op).as_bytes());
            }
        }
        // The root read-only: what the record did not put there cannot be made.
        if libc::mount(
            none,
            c"/new".as_ptr(),
            none,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            std::ptr::null(),
        ) != 0
        {
            fail(b"making read-only", b"the root");
        }
        if libc::chdir(c"/new".as_ptr()) != 0
            || libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0
            || libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0
        {
            fail(b"pivot_root to", b"the sandbox's root");
        }
        if libc::chdir(p.directory.as_ptr()) != 0 {
            fail(b"chdir to", p.directory.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_on_the_way_are_made_as_links_and_their_targets_bound() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/f"), "x").unwrap();
        std::os::unix::fs::symlink("real", root.join("a")).unwrap();
        let root = root.as_os_str().as_bytes();
        let mut builder = Builder::default();
        builder.want(&[root, b"/a/f"].concat(), Need::Exist, 0);
        builder.want(&[root, b"/missing/g"].concat(), Need::Exist, 0);
        assert_eq!(builder.made.get(&[root, b"/a"].concat()), Some(&Made::Link));
        assert_eq!(
            builder.made.get(&[root, b"/real/f"].concat()),
            Some(&Made::File)
        );
        assert!(!builder.made.contains_key(&[root, b"/missing"].concat()));
        let binds: Vec<&Op> = builder
            .ops
            .iter()
            .filter(|op| matches!(op, Op::Bind { .. }))
            .collect();
        assert_eq!(binds.len(), 1, "{:?}", builder.ops);
    }

    #[test]
    fn a_written_directory_is_bound_writable_and_holds_what_is_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("out")).unwrap();
        let root = root.as_os_str().as_bytes();
        let mut builder = Builder::default();
        builder.want(&[root, b"/out"].concat(), Need::Writable, 0);
        let sandbox = Sandbox {
            inner: Arc::new(Prepared {
                ops: Vec::new(),
                directory: cstring(b"/"),
                uid_map: Vec::new(),
                gid_map: Vec::new(),
                made: builder.made,
                probed: HashSet::new(),
                times: 0,
            }),
        };
        assert!(sandbox.writable(&[root, b"/out"].concat()));
        assert!(sandbox.writable(&[root, b"/out/sub"].concat()));
        assert!(!sandbox.writable(b"/usr/share"));
        assert!(sandbox.holds(b"/proc/self/status", AccessKind::Read));
    }
}
