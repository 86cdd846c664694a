//! The signals that end a build: SIGINT, SIGQUIT, SIGTERM and SIGHUP reach make as they
//! would reach a plain `make` in makescope's place, and the first one makescope received
//! is kept for the record.
//!
//! - A disposition makescope inherited as ignored (a background job, `nohup`) stays
//!   ignored, and make inherits it ignored: plain make keeps an ignored SIGINT ignored.
//! - SIGINT and SIGQUIT are the terminal's: a Ctrl-C reaches makescope, make and its jobs
//!   (one process group) at once, and nothing is passed on. Sent to makescope alone (an
//!   IDE, a test runner, `Popen.send_signal`), they are passed on as the terminal would
//!   have sent them: to make and every process of the build in make's process group.
//! - SIGTERM and SIGHUP are passed on to make alone, as `kill PID` of plain make would
//!   (make's own handler passes SIGTERM on to its jobs).
//!
//! The handler only stores the signal and writes it to a pipe (async-signal-safe); the
//! `signals` thread decides and sends. It must never send anything once make has been
//! reaped ([`forget_make`]): the pid may be another process's by then.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

/// make's pid while it has not been reaped (0: none); held while a signal is sent to it.
static MAKE_PID: Mutex<i32> = Mutex::new(0);
/// The first signal makescope received during the build (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// The handler's end of the pipe to the `signals` thread (-1: none).
static PIPE: AtomicI32 = AtomicI32::new(-1);
/// Bit `signal` is set for each signal makescope handles (not inherited as ignored).
static HANDLED: AtomicU32 = AtomicU32::new(0);

/// How long a signal sent to makescope's whole process group takes to reach make too,
/// at most: the kernel queues it for each member in turn.
const GROUP_DELIVERY: Duration = Duration::from_millis(20);

/// Take SIGINT, SIGQUIT, SIGTERM and SIGHUP from now on (except those inherited as
/// ignored), and start the thread that passes them on.
pub(crate) fn install() -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints for pipe2 to fill in.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned this descriptor; nothing else owns it.
    let reader = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    PIPE.store(fds[1], Ordering::Relaxed);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || pass_on(reader))?;
    for signal in SIGNALS {
        // SAFETY: a zeroed sigaction is valid (an empty mask, no flags) for sigaction to
        // fill in with the current disposition.
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: `current` is a live sigaction; a null new action only reads.
        unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) };
        if current.sa_sigaction == libc::SIG_IGN {
            continue;
        }
        HANDLED.fetch_or(1 << signal, Ordering::Relaxed);
        // SAFETY: a zeroed sigaction is valid (an empty mask, no flags); `on_signal` only
        // stores to atomics and calls write(2), both async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    Ok(())
}

/// In make's child before exec: the signals makescope handles back to their defaults
/// (the ignored ones stay ignored). Async-signal-safe.
pub(crate) fn reset_in_child() {
    let handled = HANDLED.load(Ordering::Relaxed);
    for signal in SIGNALS {
        if handled & (1 << signal) != 0 {
            // SAFETY: signal(2) takes no pointers and is async-signal-safe.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
}

/// make runs as `pid`: signals are passed on to it from now on.
pub(crate) fn set_make(pid: i32) {
    *make_pid() = pid;
}

/// make has ended and is about to be reaped: nothing is passed on any more (once this
/// returns, nothing is being sent either).
pub(crate) fn forget_make() {
    *make_pid() = 0;
}

fn make_pid() -> std::sync::MutexGuard<'static, i32> {
    MAKE_PID.lock().unwrap_or_else(|e| e.into_inner())
}

/// The first of the four signals makescope received (0: none).
pub(crate) fn received() -> i32 {
    RECEIVED.load(Ordering::Relaxed)
}

extern "C" fn on_signal(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let _ = RECEIVED.compare_exchange(0, signal, Ordering::Relaxed, Ordering::Relaxed);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let from_terminal = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    let message = [signal as u8, u8::from(from_terminal)];
    let pipe = PIPE.load(Ordering::Relaxed);
    if pipe >= 0 {
        // SAFETY: write(2) is async-signal-safe; `message` is a live local.
        unsafe { libc::write(pipe, message.as_ptr().cast(), message.len()) };
    }
}

fn pass_on(mut reader: std::fs::File) {
    let mut message = [0u8; 2];
    while reader.read_exact(&mut message).is_ok() {
        let (signal, from_terminal) = (i32::from(message[0]), message[1] != 0);
        if signal == libc::SIGTERM || signal == libc::SIGHUP {
            let make = make_pid();
            if *make > 0 {
                // SAFETY: kill takes no pointers.
                unsafe { libc::kill(*make, signal) };
            }
            continue;
        }
        // The terminal sent it to the whole foreground group, make included.
        if from_terminal {
            continue;
        }
        // Sent to makescope's group (as a shell or a terminal emulator does), make has
        // it too; sent to makescope alone, make has not.
        std::thread::sleep(GROUP_DELIVERY);
        let make = make_pid();
        if *make > 0 && still_to_receive(*make, signal) {
            send_to_build(*make, signal);
        }
    }
}

/// Whether `pid` is alive and has neither received `signal` (pending, or blocked while
/// its handler runs) nor ignores it.
fn still_to_receive(pid: i32, signal: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let zombie = status
        .lines()
        .any(|l| l.starts_with("State:") && l.contains('Z'));
    let bit = 1u64 << (signal - 1);
    let has_it = (field("SigPnd:") | field("ShdPnd:") | field("SigBlk:") | field("SigIgn:")) & bit;
    !zombie && has_it == 0
}

/// Send `signal` as a terminal would: to make and every process of the build (the
/// descendants of makescope) in make's process group, make first.
fn send_to_build(make: i32, signal: i32) {
    // SAFETY: kill and getpgid take no pointers.
    unsafe { libc::kill(make, signal) };
    // SAFETY: getpgid takes no pointers.
    let group = unsafe { libc::getpgid(make) };
    let processes = processes();
    let mut build = vec![std::process::id() as i32];
    let mut i = 0;
    while i < build.len() {
        let parent = build[i];
        build.extend(processes.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    let build: std::collections::HashSet<i32> = build[1..].iter().copied().collect();
    for &(pid, _, pgrp) in &processes {
        if pid != make && pgrp == group && build.contains(&pid) {
            // SAFETY: kill takes no pointers.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

/// Every process: (pid, parent pid, process group), from /proc.
fn processes() -> Vec<(i32, i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command name (which may hold anything): state, ppid, pgrp.
            let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ').skip(1);
            let ppid = fields.next()?.parse().ok()?;
            let pgrp = fields.next()?.parse().ok()?;
            Some((pid, ppid, pgrp))
        })
        .collect()
}
