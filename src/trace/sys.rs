//! The kernel ABI the tracer needs and libc 0.2 does not carry for glibc targets:
//! seccomp user-notification structs and ioctls, pidfds, and small allocation-free
//! wrappers (reading another process's memory, `readlink` into a reused buffer).
//!
//! Everything here is a thin, typed shim over one system call; policy lives elsewhere.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `struct seccomp_data` (the filter's input and the notification's payload).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SeccompNotif {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub data: SeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SeccompNotifResp {
    pub id: u64,
    pub val: i64,
    pub error: i32,
    pub flags: u32,
}

/// `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
pub struct SockFprog {
    pub len: u16,
    pub filter: *const SockFilter,
}

/// `struct open_how` (openat2).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenHow {
    pub flags: u64,
    pub mode: u64,
    pub resolve: u64,
}

pub const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
pub const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = 1 << 2;
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
pub const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 1 << 5;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;
pub const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

// _IOWR('!', 0, struct seccomp_notif) etc.; checked against <linux/seccomp.h>.
const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const SECCOMP_IOCTL_NOTIF_ID_VALID: libc::c_ulong = 0x4008_2102;
const SECCOMP_IOCTL_NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;
pub const RESOLVE_IN_ROOT: u64 = 0x10;
pub const AT_EMPTY_PATH: u64 = libc::AT_EMPTY_PATH as u64;
pub const AT_SYMLINK_NOFOLLOW: u64 = libc::AT_SYMLINK_NOFOLLOW as u64;
pub const AT_SYMLINK_FOLLOW: u64 = libc::AT_SYMLINK_FOLLOW as u64;
pub const RENAME_EXCHANGE: u64 = 2;

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// `SECCOMP_IOCTL_NOTIF_RECV`. Retries EINTR.
pub fn notif_recv(listener: RawFd, notif: &mut SeccompNotif) -> io::Result<()> {
    loop {
        // The kernel insists the buffer is zeroed.
        *notif = SeccompNotif::default();
        // SAFETY: `notif` is a live, writable `seccomp_notif`, the size the request
        // encodes.
        let rc = unsafe {
            libc::ioctl(
                listener,
                SECCOMP_IOCTL_NOTIF_RECV,
                notif as *mut SeccompNotif,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = last_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Let the notified system call run as if no filter were there.
pub fn notif_continue(listener: RawFd, id: u64) -> io::Result<()> {
    let resp = SeccompNotifResp {
        id,
        val: 0,
        error: 0,
        flags: SECCOMP_USER_NOTIF_FLAG_CONTINUE,
    };
    loop {
        // SAFETY: `resp` is a live `seccomp_notif_resp`, the size the request encodes.
        let rc = unsafe {
            libc::ioctl(
                listener,
                SECCOMP_IOCTL_NOTIF_SEND,
                &resp as *const SeccompNotifResp,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = last_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Is the notification still pending (its task alive and waiting)? Anything read from
/// the task before this returned true is known to come from that task.
pub fn notif_id_valid(listener: RawFd, id: u64) -> bool {
    // SAFETY: `id` is a live u64, the size the request encodes.
    unsafe { libc::ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id as *const u64) == 0 }
}

/// `SECCOMP_IOCTL_NOTIF_SET_FLAGS` (6.6+).
pub fn notif_set_flags(listener: RawFd, flags: u64) -> io::Result<()> {
    // SAFETY: the request takes its flags by value; no memory is passed.
    let rc = unsafe { libc::ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

/// `struct sched_attr` as first published (`SCHED_ATTR_SIZE_VER0`).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// Ask the scheduler for a short time slice for the calling thread (`sched_setattr(2)`
/// with `sched_runtime` in the fair class: Linux 6.12+, no privilege needed; older
/// kernels ignore it). A thread with a shorter slice than the tasks around it gets the
/// CPU sooner when it wakes, and may preempt them. Policy and nice value are kept; a
/// thread under a real-time or idle policy (`chrt`) is left as it is.
pub fn set_time_slice(slice: std::time::Duration) -> io::Result<()> {
    // SAFETY: no memory arguments. (Neither can fail for the calling thread.)
    let (policy, nice) = unsafe {
        (
            libc::sched_getscheduler(0),
            libc::getpriority(libc::PRIO_PROCESS, 0),
        )
    };
    if policy != libc::SCHED_OTHER && policy != libc::SCHED_BATCH {
        return Ok(());
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy as u32,
        flags: 0,
        nice,
        priority: 0,
        runtime: slice.as_nanos() as u64,
        deadline: 0,
        period: 0,
    };
    // SAFETY: `attr` is a live struct of the size it declares (SCHED_ATTR_SIZE_VER0).
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if rc < 0 {
        Err(last_error())
    } else {
        Ok(())
    }
}

/// Move the calling thread to `SCHED_BATCH`: same share of the CPU, but its wake-ups
/// never preempt the thread running (no privilege needed). Only from `SCHED_OTHER`: a
/// thread under a policy someone chose (`chrt`) keeps it.
pub fn set_batch() -> io::Result<()> {
    // SAFETY: no memory arguments.
    if unsafe { libc::sched_getscheduler(0) } != libc::SCHED_OTHER {
        return Ok(());
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a live sched_param; 0 names the calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc < 0 {
        Err(last_error())
    } else {
        Ok(())
    }
}

/// For measurements (`MAKESCOPE_TRACE_STATS=1`): print how long the calling thread has
/// run and how long it was ready to run but waited for a CPU
/// (`/proc/thread-self/schedstat`), as `makescope: NAME: ran X ms, waited for a CPU Y ms`.
pub fn report_thread_cpu(name: &str) {
    if std::env::var_os(crate::protocol::ENV_TRACE_STATS).is_none() {
        return;
    }
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/schedstat") else {
        return;
    };
    let ms: Vec<f64> = stat
        .split_whitespace()
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .map(|ns| ns / 1e6)
        .collect();
    if let [run, wait] = ms[..] {
        eprintln!("makescope: {name}: ran {run:.0} ms, waited for a CPU {wait:.0} ms");
    }
}

/// `pidfd_open(2)`.
pub fn pidfd_open(pid: i32, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if rc < 0 {
        Err(last_error())
    } else {
        // SAFETY: a new descriptor, ours alone.
        Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
    }
}

/// `struct pidfd_info` as first published (`PIDFD_INFO_SIZE_VER0`, Linux 6.13).
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ids: [u32; 8],
    exit_code: i32,
}

// _IOWR(PIDFS_IOCTL_MAGIC = 0xFF, 11, 64 bytes); checked against <linux/pidfd.h>.
const PIDFD_GET_INFO: libc::c_ulong = 0xc040_ff0b;
const PIDFD_INFO_PID: u64 = 1;

/// The task's thread-group id and its parent's pid, from `PIDFD_GET_INFO` (Linux 6.13+).
/// `Err(ENOTTY)` or `Err(EINVAL)`: the kernel has no such request; `Err(ESRCH)`: the
/// task is gone.
pub fn pidfd_ids(pidfd: RawFd) -> io::Result<(i32, i32)> {
    const _: () = assert!(std::mem::size_of::<PidfdInfo>() == 64);
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_PID,
        ..Default::default()
    };
    // SAFETY: `info` is a live, writable struct of the size the request encodes.
    let rc = unsafe { libc::ioctl(pidfd, PIDFD_GET_INFO, &mut info as *mut PidfdInfo) };
    if rc < 0 {
        return Err(last_error());
    }
    if info.mask & PIDFD_INFO_PID == 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok((info.tgid as i32, info.ppid as i32))
}

/// Read `len` bytes at `addr` in `pid` into `out` (appended). Returns how many bytes were
/// copied: fewer than asked when the range runs into unmapped memory.
pub fn read_mem(pid: i32, addr: u64, len: usize, out: &mut Vec<u8>) -> io::Result<usize> {
    out.reserve(len);
    let start = out.len();
    let local = libc::iovec {
        // SAFETY: `start` is `out`'s length, within (one past the end of) its allocation.
        iov_base: unsafe { out.as_mut_ptr().add(start) } as *mut libc::c_void,
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: `local` is `len` bytes of spare capacity in `out` (reserved above); the
    // remote side is the other process's and cannot touch our memory.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(last_error());
    }
    // SAFETY: the kernel initialised the `n <= len` bytes after `start`.
    unsafe { out.set_len(start + n as usize) };
    Ok(n as usize)
}

/// Read a plain-old-data value from `pid`'s memory.
pub fn read_pod<T: Copy + Default>(pid: i32, addr: u64) -> io::Result<T> {
    let mut value = T::default();
    let size = std::mem::size_of::<T>();
    let local = libc::iovec {
        iov_base: &mut value as *mut T as *mut libc::c_void,
        iov_len: size,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: size,
    };
    // SAFETY: `local` is `value`, `size` writable bytes; any bytes are a valid `T` for
    // the plain-old-data types this reads (`Copy + Default` structs of integers).
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(last_error());
    }
    if n as usize != size {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(value)
}

const PAGE: u64 = 4096;

/// Read the NUL-terminated string at `addr` in `pid`, replacing `out`'s contents (without
/// the NUL). One system call for the common case: the read stops at the page boundary,
/// so it never faults on a string that ends just before unmapped memory.
pub fn read_cstr(pid: i32, addr: u64, out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    if addr == 0 {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    let mut at = addr;
    loop {
        let chunk = (PAGE - (at % PAGE)) as usize;
        let before = out.len();
        let n = read_mem(pid, at, chunk, out)?;
        if let Some(nul) = memchr(&out[before..]) {
            out.truncate(before + nul);
            return Ok(());
        }
        if n < chunk || out.len() >= libc::PATH_MAX as usize * 32 {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        at += n as u64;
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

/// `readlink(path)` into `out` (replacing it). `path` must end with a NUL.
pub fn readlink_into(path: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    debug_assert_eq!(path.last(), Some(&0));
    out.clear();
    let mut cap = 256usize;
    loop {
        out.reserve(cap);
        // SAFETY: `path` is NUL-terminated (the caller's promise, checked in debug
        // builds); `out` has room for `cap` bytes, at most what the kernel writes.
        let n = unsafe {
            libc::readlink(
                path.as_ptr() as *const libc::c_char,
                out.as_mut_ptr() as *mut libc::c_char,
                cap,
            )
        };
        if n < 0 {
            return Err(last_error());
        }
        let n = n as usize;
        if n < cap {
            // SAFETY: the kernel initialised the first `n` bytes.
            unsafe { out.set_len(n) };
            return Ok(());
        }
        cap *= 4;
        if cap > 1 << 20 {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
    }
}

/// Does `path` (NUL-terminated, absolute) exist? `follow`: follow a final symlink (a
/// dangling one then does not exist, as for open and stat).
pub fn exists(path: &[u8], follow: bool) -> bool {
    debug_assert_eq!(path.last(), Some(&0));
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: `path` is NUL-terminated (the caller's promise, checked in debug builds).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            libc::AT_FDCWD,
            path.as_ptr() as *const libc::c_char,
            libc::F_OK,
            flags,
        )
    };
    if rc == 0 {
        return true;
    }
    // EACCES on a path component, ELOOP, ENOTDIR …: not "missing" in the probe sense only
    // for EACCES, where the file may well exist; treat that as existing.
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EACCES)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: required before an unprivileged seccomp filter.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)` with `SECCOMP_FILTER_FLAG_NEW_LISTENER`
/// among `flags`: installs `prog` on the calling thread and returns the listener.
/// Allocation-free. `Err(EINVAL)`: a flag unknown to the kernel; `Err(EBUSY)`: a listener
/// exists already in the thread's filter stack.
pub fn seccomp_set_filter(flags: libc::c_ulong, prog: &SockFprog) -> io::Result<OwnedFd> {
    // SAFETY: `prog` is a live `sock_fprog` whose `filter` points at `len` instructions
    // (its constructor's borrow keeps them alive for this call).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            prog as *const SockFprog,
        )
    };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: with NEW_LISTENER the result is a new descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: integer argument only.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: a new descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Watch `fd` for readability in `epoll`, reported with `data`.
pub fn epoll_add(epoll: RawFd, fd: RawFd, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: data,
    };
    // SAFETY: `ev` is a live epoll_event for the duration of the call.
    if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// The events ready in `epoll` now (no waiting), written to the front of `ready`;
/// returns how many.
pub fn epoll_ready(epoll: RawFd, ready: &mut [libc::epoll_event]) -> io::Result<usize> {
    let max = ready.len().min(i32::MAX as usize) as i32;
    // SAFETY: the kernel writes at most `max` events into `ready`, which holds that many.
    let n = unsafe { libc::epoll_wait(epoll, ready.as_mut_ptr(), max, 0) };
    if n < 0 {
        return Err(last_error());
    }
    Ok(n as usize)
}

/// `open(path, flags | O_CLOEXEC)`; `path` must end with a NUL.
pub fn open(path: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    assert_eq!(path.last(), Some(&0), "path without its NUL");
    // SAFETY: `path` is NUL-terminated (checked above) and outlives the call.
    let fd = unsafe { libc::open(path.as_ptr().cast(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: a new descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `read(2)` into `buf`, retrying EINTR; returns how many bytes came (0: end of file).
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = last_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// `pread(2)` of up to `buf.len()` bytes at `offset`; returns how many came.
pub fn pread(fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::pread(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            offset as libc::off_t,
        )
    };
    if n < 0 {
        return Err(last_error());
    }
    Ok(n as usize)
}

/// `pread(2)` of up to `len` bytes at `offset` into `buf`, replacing its contents
/// (its allocation is reused).
pub fn pread_into(fd: RawFd, buf: &mut Vec<u8>, offset: u64, len: usize) -> io::Result<()> {
    buf.clear();
    buf.reserve(len);
    // SAFETY: `buf` has room for `len` bytes after `reserve`; the kernel writes at most
    // that many.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), len, offset as libc::off_t) };
    if n < 0 {
        return Err(last_error());
    }
    // SAFETY: the kernel initialised the first `n <= len` bytes.
    unsafe { buf.set_len(n as usize) };
    Ok(())
}

/// `pwrite(2)` of `buf` at `offset`; returns how many bytes were written.
pub fn pwrite(fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize> {
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`.
    let n = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), offset as libc::off_t) };
    if n < 0 {
        return Err(last_error());
    }
    Ok(n as usize)
}

/// `memfd_create(name, flags)`.
pub fn memfd_create(name: &std::ffi::CStr, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: a new descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ftruncate(2)`.
pub fn ftruncate(fd: RawFd, size: u64) -> io::Result<()> {
    // SAFETY: integer arguments only.
    if unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// Add `seals` to a memfd (`F_ADD_SEALS`).
pub fn add_seals(fd: RawFd, seals: libc::c_int) -> io::Result<()> {
    // SAFETY: integer arguments only.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// A memfd's seals (`F_GET_SEALS`; `Err(EINVAL)` for other files).
pub fn seals(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: integer arguments only.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if seals < 0 {
        return Err(last_error());
    }
    Ok(seals)
}

/// Let `fd` survive exec (clear `FD_CLOEXEC`). Async-signal-safe.
pub fn set_inheritable(fd: RawFd) -> io::Result<()> {
    // SAFETY: integer arguments only.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// The size of the file open at `fd` (`fstat`).
pub fn file_size(fd: RawFd) -> io::Result<u64> {
    // SAFETY: `stat` is plain old data, valid when zeroed.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, writable `struct stat`.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(last_error());
    }
    Ok(st.st_size as u64)
}

/// Map `len` bytes of `fd` shared, readable and writable. The mapping is the caller's
/// to [`munmap`].
pub fn mmap_shared(fd: RawFd, len: usize) -> io::Result<std::ptr::NonNull<u8>> {
    // SAFETY: a new mapping at an address of the kernel's choosing overlaps nothing of
    // ours.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return Err(last_error());
    }
    std::ptr::NonNull::new(map.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Unmap what [`mmap_shared`] mapped.
///
/// # Safety
/// `map` and `len` are a mapping's, and nothing refers into it any more.
pub unsafe fn munmap(map: std::ptr::NonNull<u8>, len: usize) {
    // SAFETY: the caller's promise: a whole mapping that nothing refers into.
    unsafe { libc::munmap(map.as_ptr().cast(), len) };
}

/// `poll(2)` on `fds` for at most `timeout_ms` (-1: no limit); returns how many have
/// events. EINTR is the caller's to retry.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a live, writable array of `fds.len()` pollfds.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        return Err(last_error());
    }
    Ok(rc as usize)
}

/// A connected pair of `AF_UNIX` sockets of `kind` (`SOCK_SEQPACKET` …, flags such as
/// `SOCK_CLOEXEC` included).
pub fn socketpair(kind: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors the kernel writes.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) } != 0 {
        return Err(last_error());
    }
    // SAFETY: two new descriptors, ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors the kernel writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(last_error());
    }
    // SAFETY: two new descriptors, ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Send `signal` to `pid` (a negative `pid`: its process group).
pub fn kill(pid: libc::pid_t, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: integer arguments only.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// `fork(2)`: the child's pid in the parent, 0 in the child.
///
/// # Safety
/// In a multi-threaded process the child may only call async-signal-safe functions (no
/// allocation, no locks) until it execs or exits.
pub unsafe fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: the caller's promise about what the child does.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(last_error());
    }
    Ok(pid)
}

/// Wait for the child `pid` to end; returns its wait status.
pub fn waitpid(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    // SAFETY: `status` is a live, writable int.
    if unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        return Err(last_error());
    }
    Ok(status)
}

/// `setsid(2)`. Async-signal-safe.
pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    if unsafe { libc::setsid() } < 0 {
        return Err(last_error());
    }
    Ok(())
}

/// `dup2(2)`. Async-signal-safe.
pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: integer arguments only; `to` is the caller's to replace.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(last_error());
    }
    Ok(())
}

/// Close every descriptor in `first..=last` (`close_range(2)`). Async-signal-safe.
/// Descriptors owned elsewhere in the process must not be in the range.
pub fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: integer arguments only (the caller keeps owned descriptors out of the
    // range).
    if unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// End the calling process at once with `code` (no atexit handlers, no flushing).
/// Async-signal-safe.
pub fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: `_exit` is always safe to call; nothing after it runs.
    unsafe { libc::_exit(code) }
}

/// `/proc/<pid>/<what>` followed by a NUL, written into `buf` without allocating.
pub fn proc_path<'a>(buf: &'a mut [u8; 64], pid: i32, what: &[u8]) -> &'a [u8] {
    let mut len = 0;
    let mut push = |bytes: &[u8], len: &mut usize| {
        buf[*len..*len + bytes.len()].copy_from_slice(bytes);
        *len += bytes.len();
    };
    push(b"/proc/", &mut len);
    let mut digits = [0u8; 12];
    let mut n = pid.unsigned_abs();
    let mut d = digits.len();
    loop {
        d -= 1;
        digits[d] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push(&digits[d..], &mut len);
    push(b"/", &mut len);
    push(what, &mut len);
    push(b"\0", &mut len);
    &buf[..len]
}

/// `/proc/<pid>/fd/<fd>` followed by a NUL.
pub fn proc_fd_path(buf: &mut [u8; 64], pid: i32, fd: i32) -> &[u8] {
    let mut what = [0u8; 16];
    let mut len = 0;
    what[..3].copy_from_slice(b"fd/");
    len += 3;
    let mut digits = [0u8; 12];
    let mut n = fd.unsigned_abs();
    let mut d = digits.len();
    loop {
        d -= 1;
        digits[d] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    what[len..len + digits.len() - d].copy_from_slice(&digits[d..]);
    len += digits.len() - d;
    let what_copy = what;
    proc_path(buf, pid, &what_copy[..len])
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// The most descriptors one message may pass to [`recv_with_fds`] (the shim's child
/// passes its listener and its ring); the kernel closes any beyond.
pub const MAX_PASSED_FDS: usize = 2;

/// The bytes of control data [`MAX_PASSED_FDS`] descriptors take.
// SAFETY: CMSG_SPACE only computes a size.
const CONTROL_LEN: usize =
    unsafe { libc::CMSG_SPACE((MAX_PASSED_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;

/// recvmsg(2)'s control buffer, aligned as `struct cmsghdr` must be.
#[repr(C)]
union Control {
    _header: libc::cmsghdr,
    bytes: [u8; CONTROL_LEN],
}

/// What [`recv_with_fds`] received.
#[derive(Debug)]
pub struct Received {
    /// The message's length, at the start of the buffer.
    pub len: usize,
    /// The message was longer than the buffer, and cut (`MSG_TRUNC`).
    pub truncated: bool,
    /// The descriptors passed with it (`SCM_RIGHTS`), in order, close-on-exec.
    pub fds: Vec<OwnedFd>,
}

/// Receive one message on `sock` into `buffer`, with the descriptors passed with it
/// (recvmsg(2) with `MSG_CMSG_CLOEXEC` and `flags`). `len` 0 on a stream or sequential
/// packet socket: the peer closed. Errors are recvmsg's (`EAGAIN` with `MSG_DONTWAIT`
/// and nothing to read, `EINTR`). Allocates only when descriptors come.
pub fn recv_with_fds(sock: RawFd, buffer: &mut [u8], flags: libc::c_int) -> io::Result<Received> {
    let mut control = Control {
        bytes: [0; CONTROL_LEN],
    };
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is an empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut control as *mut Control).cast();
    msg.msg_controllen = CONTROL_LEN;
    // SAFETY: `msg` points at `iov` (which covers `buffer`) and at `control`, all live
    // and as large as said for the call.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC | flags) };
    if n < 0 {
        return Err(last_error());
    }
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `control` (aligned for cmsghdr) up to msg_controllen;
    // CMSG_FIRSTHDR/CMSG_NXTHDR stay within it and return null at its end, and each
    // header's cmsg_len covers its data.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    // The descriptor is new in this process and nobody else's.
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Received {
        len: n as usize,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        fds,
    })
}

/// Send `bytes` as one message on `sock` with the descriptor `fd` passed along
/// (sendmsg(2) with `SCM_RIGHTS` and `MSG_NOSIGNAL`), retried on `EINTR`; the peer
/// takes it with [`recv_with_fds`].
pub fn send_with_fd(sock: RawFd, bytes: &[u8], fd: RawFd) -> io::Result<()> {
    let mut control = Control {
        bytes: [0; CONTROL_LEN],
    };
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is an empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut control as *mut Control).cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    // SAFETY: `control` is aligned for cmsghdr and at least CMSG_SPACE(one fd) long
    // (CONTROL_LEN covers MAX_PASSED_FDS), so the first header and its data fit in it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
    }
    loop {
        // SAFETY: `msg` points at `iov` (which covers `bytes`; sendmsg only reads it) and
        // at `control`, both live for the call.
        if unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } >= 0 {
            return Ok(());
        }
        let err = last_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_paths() {
        let mut buf = [0u8; 64];
        assert_eq!(proc_path(&mut buf, 1234, b"cwd"), b"/proc/1234/cwd\0");
        assert_eq!(proc_fd_path(&mut buf, 7, 12), b"/proc/7/fd/12\0");
        assert_eq!(proc_fd_path(&mut buf, 0, 0), b"/proc/0/fd/0\0");
    }

    #[test]
    fn struct_sizes_match_the_kernel() {
        assert_eq!(std::mem::size_of::<SeccompNotif>(), 80);
        assert_eq!(std::mem::size_of::<SeccompNotifResp>(), 24);
        assert_eq!(std::mem::size_of::<SeccompData>(), 64);
        assert_eq!(std::mem::size_of::<OpenHow>(), 24);
        assert_eq!(std::mem::size_of::<SchedAttr>(), 48);
    }

    /// The kernel keeps the slice asked for (6.12+; this machine's kind runs 6.18).
    #[test]
    fn time_slice_is_set() {
        std::thread::spawn(|| {
            set_time_slice(std::time::Duration::from_micros(100)).unwrap();
            let mut attr = SchedAttr::default();
            // SAFETY: `attr` is live and as large as the size passed.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_sched_getattr,
                    0,
                    &mut attr as *mut SchedAttr,
                    48,
                    0,
                )
            };
            assert_eq!(rc, 0, "{}", io::Error::last_os_error());
            assert_eq!(attr.policy, libc::SCHED_OTHER as u32);
            assert_eq!(attr.runtime, 100_000);
            set_batch().unwrap();
            // SAFETY: no memory arguments.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_BATCH);
        })
        .join()
        .unwrap();
    }
}
