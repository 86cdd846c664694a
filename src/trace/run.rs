//! Running one command under the tracer without the recorder (tests, benchmarks, and a
//! model of what the shim and recorder do together), and keeping filtered processes
//! alive once nobody records them.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::sys::{self, notif_continue, notif_recv, SeccompNotif};
use super::{
    Event, Filter, FilterOptions, Handled, PathTable, Ring, Supervisor, TraceError, FAST_PATH_PAGE,
};
use std::path::Path;

/// What [`run_traced`] saw.
#[derive(Debug)]
pub struct Traced {
    /// The command's exit status.
    pub status: ExitStatus,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// The paths the events number.
    pub paths: PathTable,
    /// Notifications per system call.
    pub counts: Vec<(&'static str, u64)>,
    /// The deadline passed: the command's process group was killed.
    pub timed_out: bool,
}

/// Run `cmd` under `filter` and a [`Supervisor`] until the command and every process
/// it started have ended, or `timeout` passes (then its process group is killed).
///
/// The command runs in a new process group. The child installs the filter in
/// `pre_exec` and passes the listener over a socketpair with `SCM_RIGHTS`, as the
/// shim's child does; a thread supervises (spawning blocks until the exec is answered).
pub fn run_traced(cmd: &mut Command, filter: &Filter, timeout: Duration) -> io::Result<Traced> {
    run(cmd, filter, None, timeout)
}

/// [`run_traced`] with the in-process fast path: the preload helper built
/// from `src/trace/preload.c` at `preload` serves read-only opens, stats and accesses
/// through the trusted page [`FAST_PATH_PAGE`] and a [`Ring`]; everything else is
/// trapped as usual. Sets `LD_PRELOAD`, `MAKESCOPE_TRACE_PAGE`, `MAKESCOPE_TRACE_RING`.
pub fn run_traced_fast(cmd: &mut Command, preload: &Path, timeout: Duration) -> io::Result<Traced> {
    run_traced_with_ring(cmd, preload, Ring::new(1 << 16)?, timeout)
}

/// [`run_traced_fast`] with a given ring (tests use a small one to make it wrap and fill).
pub fn run_traced_with_ring(
    cmd: &mut Command,
    preload: &Path,
    ring: Ring,
    timeout: Duration,
) -> io::Result<Traced> {
    let ring_fd = ring.fd().as_raw_fd();
    cmd.env("LD_PRELOAD", preload)
        .env(
            crate::protocol::ENV_TRACE_PAGE,
            format!("{FAST_PATH_PAGE:x}"),
        )
        .env(crate::protocol::ENV_TRACE_RING, ring_fd.to_string());
    // SAFETY: the closure makes one fcntl, async-signal-safe and allocation-free, as
    // code between fork and exec must be.
    unsafe {
        // The memfd is close-on-exec in the recorder; the command must inherit it.
        cmd.pre_exec(move || sys::set_inheritable(ring_fd));
    }
    let filter = Filter::new(FilterOptions {
        trusted_page: Some(FAST_PATH_PAGE),
        ..FilterOptions::default()
    });
    run(cmd, &filter, Some(ring), timeout)
}

fn run(
    cmd: &mut Command,
    filter: &Filter,
    ring: Option<Ring>,
    timeout: Duration,
) -> io::Result<Traced> {
    run_with(
        cmd,
        filter,
        ring,
        RunHooks {
            new_group: true,
            deadline: Some(Instant::now() + timeout),
            spawned: &mut |_| {},
            exited: &mut || {},
            through_root: false,
        },
    )
}

/// How [`run_traced_with`] runs the command, and what its caller does at two moments.
pub struct RunHooks<'a> {
    /// Run the command in a process group of its own (killed whole at the deadline);
    /// otherwise it stays in ours, so a terminal's Ctrl-C reaches it.
    pub new_group: bool,
    /// When to give up: the command (its group, or itself) is killed.
    pub deadline: Option<Instant>,
    /// Called with the child's pid once it runs (to pass signals on to it).
    pub spawned: &'a mut dyn FnMut(u32),
    /// Called once the child has been waited for and before the tracer is: the tracer
    /// ends when every process under the filter has, so processes the command left
    /// running must be killed here (or the tracer waits for them until the deadline).
    pub exited: &'a mut dyn FnMut(),
    /// The command runs in a mount namespace of its own (a sandbox): whether a path
    /// exists is looked at through its `/proc/<pid>/root`
    /// ([`Supervisor::look_through_roots`]).
    pub through_root: bool,
}

/// Run `cmd` under `filter` and a [`Supervisor`], with the caller's [`RunHooks`]:
/// the one way to trace a single command (tests, benchmarks, replay). The filter is
/// installed by the last `pre_exec` step, so steps the caller registered before (a
/// sandbox's namespaces and forks) run untraced, and only the process that execs the
/// command sends a listener.
pub fn run_traced_with(
    cmd: &mut Command,
    filter: &Filter,
    hooks: RunHooks<'_>,
) -> io::Result<Traced> {
    run_with(cmd, filter, None, hooks)
}

fn run_with(
    cmd: &mut Command,
    filter: &Filter,
    ring: Option<Ring>,
    hooks: RunHooks<'_>,
) -> io::Result<Traced> {
    // Far enough to never come: Instant has no "never".
    let deadline = hooks
        .deadline
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
    let (ours, theirs) = seqpacket_pair()?;
    let child_sock = theirs.as_raw_fd();
    let filter = filter.clone();
    if hooks.new_group {
        cmd.process_group(0);
    }
    // SAFETY: between fork and exec the closure only installs the filter
    // (`Filter::install`: async-signal-safe, no allocation) and sends the listener
    // (`send_fd`: allocation-free); the filter's program was cloned before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let listener = filter.install().map_err(|e| match e {
                TraceError::Refused(err) | TraceError::Listener(err) => err,
                TraceError::AlreadyFiltered => io::Error::from_raw_os_error(libc::EBUSY),
            })?;
            send_fd(child_sock, listener.as_raw_fd())?;
            Ok(())
        });
    }
    let through_root = hooks.through_root;
    let supervisor = std::thread::spawn(move || supervise(ours, ring, deadline, through_root));
    let spawned = cmd.spawn();
    drop(theirs);
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            let _ = supervisor.join();
            return Err(err);
        }
    };
    (hooks.spawned)(child.id());
    let target = if hooks.new_group {
        -(child.id() as i32)
    } else {
        child.id() as i32
    };
    let (done, watchdog_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) =
            watchdog_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let _ = sys::kill(target, libc::SIGKILL);
            return true;
        }
        false
    });
    let status = loop {
        match child.wait() {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    (hooks.exited)();
    let (events, counts, paths, supervisor_timed_out) = match supervisor.join() {
        Ok(result) => result?,
        Err(_) => return Err(io::Error::other("supervisor thread panicked")),
    };
    let _ = done.send(());
    let killed = watchdog.join().unwrap_or(false);
    if supervisor_timed_out {
        let _ = sys::kill(target, libc::SIGKILL);
    }
    Ok(Traced {
        status,
        events,
        paths,
        counts,
        timed_out: killed || supervisor_timed_out,
    })
}

type Supervised = (Vec<Event>, Vec<(&'static str, u64)>, PathTable, bool);

fn supervise(
    sock: OwnedFd,
    ring: Option<Ring>,
    deadline: Instant,
    through_root: bool,
) -> io::Result<Supervised> {
    let Some(listener) = recv_fd(sock.as_fd(), deadline)? else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the child sent no listener",
        ));
    };
    let mut supervisor = Supervisor::new();
    if through_root {
        supervisor.look_through_roots();
    }
    if let Some(ring) = ring {
        supervisor.attach_ring(listener.as_fd(), ring);
    }
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok((events, supervisor.counts(), supervisor.into_paths(), true));
        }
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = left.as_millis().min(i32::MAX as u128) as i32;
        match sys::poll(std::slice::from_mut(&mut pfd), timeout) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
            Err(err) => return Err(err),
        }
        match supervisor.handle_ready(listener.as_fd(), pfd.revents, &mut events) {
            Ok(Handled::Hangup) => {
                return Ok((events, supervisor.counts(), supervisor.into_paths(), false))
            }
            Ok(_) => {}
            Err(TraceError::Listener(err)) | Err(TraceError::Refused(err)) => return Err(err),
            Err(TraceError::AlreadyFiltered) => {
                return Err(io::Error::from_raw_os_error(libc::EBUSY))
            }
        }
    }
}

/// A `SOCK_SEQPACKET` socketpair, both ends close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    sys::socketpair(libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC)
}

/// Send one fd with `SCM_RIGHTS` (and one byte). Allocation-free.
pub fn send_fd(sock: RawFd, fd: RawFd) -> io::Result<()> {
    sys::send_with_fd(sock, b"\0", fd)
}

/// Receive one fd sent by [`send_fd`]; `None` when the peer closed without sending.
pub fn recv_fd(sock: BorrowedFd<'_>, deadline: Instant) -> io::Result<Option<OwnedFd>> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = [libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        match sys::poll(&mut pfd, left.as_millis().min(i32::MAX as u128) as i32) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no listener before the deadline",
                ))
            }
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
            Err(err) => return Err(err),
        }
        break;
    }
    let mut byte = [0u8; 1];
    let received = sys::recv_with_fds(sock.as_raw_fd(), &mut byte, 0)?;
    Ok(received.fds.into_iter().next())
}

/// Answer every notification on `listeners` with CONTINUE, recording nothing, until
/// each has hung up (every process using it has ended). For processes that outlive
/// the recorder (a daemon started by a recipe): once a listener is closed, the
/// filtered calls of the processes still under it fail with ENOSYS.
pub fn continue_all(listeners: &[BorrowedFd<'_>]) -> Result<(), TraceError> {
    let mut fds: Vec<libc::pollfd> = listeners
        .iter()
        .map(|l| libc::pollfd {
            fd: l.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    continue_loop(&mut fds).map_err(TraceError::Listener)
}

/// The allocation-free loop behind [`continue_all`] and [`detach`].
fn continue_loop(fds: &mut [libc::pollfd]) -> io::Result<()> {
    let mut live = fds.iter().filter(|p| p.fd >= 0).count();
    let mut notif = SeccompNotif::default();
    while live > 0 {
        match sys::poll(fds, -1) {
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
            Err(err) => return Err(err),
        }
        for p in fds.iter_mut() {
            if p.fd < 0 || p.revents == 0 {
                continue;
            }
            if p.revents & libc::POLLIN != 0 {
                match notif_recv(p.fd, &mut notif) {
                    Ok(()) => {
                        let _ = notif_continue(p.fd, notif.id);
                    }
                    Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(_) => {
                        p.fd = -1;
                        live -= 1;
                    }
                }
            } else {
                // POLLHUP: nobody uses the filter any more.
                p.fd = -1;
                live -= 1;
            }
        }
    }
    Ok(())
}

/// Hand `listeners` to a detached process (double fork, new session, stdio on
/// /dev/null, every other fd closed) that runs [`continue_all`] on them, so that
/// processes still under them keep running normally after the recorder exits.
/// Safe to call from a multi-threaded process: the child allocates nothing.
pub fn detach(listeners: Vec<OwnedFd>) -> io::Result<()> {
    if listeners.is_empty() {
        return Ok(());
    }
    let mut fds: Vec<libc::pollfd> = listeners
        .iter()
        .map(|l| libc::pollfd {
            fd: l.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    fds.sort_by_key(|p| p.fd);
    // SAFETY: the child (and its child) only make async-signal-safe calls through
    // `sys` and run `continue_loop`, which allocates nothing, then `_exit`.
    let pid = unsafe { sys::fork() }?;
    if pid == 0 {
        let _ = sys::setsid();
        // SAFETY: as above.
        if !matches!(unsafe { sys::fork() }, Ok(0)) {
            sys::exit_now(0);
        }
        if let Ok(null) = sys::open(b"/dev/null\0", libc::O_RDWR) {
            for std_fd in 0..3 {
                let _ = sys::dup2(null.as_raw_fd(), std_fd);
            }
            // Not closed: the range below does (it stays out of stdio).
            let _ = null.into_raw_fd();
        }
        // Close everything but stdio and the listeners.
        let mut from = 3u32;
        for p in fds.iter() {
            let fd = p.fd as u32;
            if fd > from {
                let _ = sys::close_range(from, fd - 1);
            }
            from = fd + 1;
        }
        let _ = sys::close_range(from, u32::MAX);
        let _ = continue_loop(&mut fds);
        sys::exit_now(0);
    }
    let _ = sys::waitpid(pid);
    drop(listeners);
    Ok(())
}
