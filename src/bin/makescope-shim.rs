//! `makescope-shim`: what make runs instead of the makefile's shell.
//!
//! The plugin sets every target's SHELL to a link to the shim whose path spells the
//! makefile's SHELL (`<dir>/abs/bin/bash`), so make runs `<dir>/abs/bin/bash -c 'CMD'`
//! for each recipe line and the shim knows the real shell from its argv\[0\]. It checks
//! that this is a recipe line of the make that is its parent (MAKESCOPE_CTX names it;
//! `$(shell …)` and a recipe's own `$(SHELL) script` do not qualify and are passed
//! straight through), tells the recorder, runs the real shell with its output on pipes,
//! and reports output, status and resources. The shell gets the same arguments,
//! environment (less our own SHELL prefix) and file descriptors it would get from make,
//! so the jobserver and everything else keep working.
//!
//! In its child, before exec, the shim installs the seccomp filter and hands the
//! listener to the recorder ([`makescope::trace::install_filter`]).
//!
//! It must stay cheap: it runs once per recipe line. It never reads the record.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

use makescope::protocol::{self, JobContext, Kind, Writer};

static CHILD: AtomicI32 = AtomicI32::new(0);

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let shell_dir = std::env::var_os(protocol::ENV_SHELL_DIR).unwrap_or_default();
    let real = protocol::real_shell(shell_dir.as_bytes(), args[0].as_bytes())
        .map(|r| OsStr::from_bytes(r).to_owned());
    match real {
        Some(real) => args[0] = real,
        None => {
            args.remove(0);
            if args.first().is_some_and(|a| a == "--makescope-tail") {
                tail(&args[1..]);
            }
        }
    }
    if args.is_empty() {
        eprintln!("makescope-shim: run by make in place of SHELL; nothing to run");
        std::process::exit(127);
    }
    let context = std::env::var_os(protocol::ENV_CTX).and_then(|v| JobContext::parse(v.as_bytes()));
    let ours = context
        .as_ref()
        .is_some_and(|c| c.make_pid == unsafe { libc::getppid() });
    let recorder = match (ours, std::env::var_os(protocol::ENV_SOCK)) {
        (true, Some(path)) => connect(&path),
        _ => None,
    };
    match (context, recorder) {
        (Some(context), Some(recorder)) => run(&args, &context, recorder),
        _ => exec(&args),
    }
}

/// Replace this process with the real shell, as if we had never been here.
fn exec(args: &[OsString]) -> ! {
    restore_shell_variable();
    let error = exec_error(args);
    eprintln!("make: {}: {}", args[0].to_string_lossy(), error);
    std::process::exit(127);
}

fn exec_error(args: &[OsString]) -> io::Error {
    let c_args: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    io::Error::last_os_error()
}

/// If the makefile exports SHELL, make put our link in the environment: give the
/// command the makefile's shell instead.
fn restore_shell_variable() {
    let (Some(shell), Some(dir)) = (
        std::env::var_os("SHELL"),
        std::env::var_os(protocol::ENV_SHELL_DIR),
    ) else {
        return;
    };
    if let Some(real) = protocol::real_shell(dir.as_bytes(), shell.as_bytes()) {
        let real = OsStr::from_bytes(real).to_owned();
        std::env::set_var("SHELL", real);
    }
}

fn connect(path: &OsStr) -> Option<UnixStream> {
    // std has no SOCK_SEQPACKET: build it by hand.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return None;
    }
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let ok = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            len,
        )
    } == 0;
    ok.then(|| UnixStream::from(fd))
}

fn send(sock: &UnixStream, message: &Writer) -> bool {
    let bytes = message.bytes();
    let sent = unsafe {
        libc::send(
            sock.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    sent >= 0
}

fn now_ns() -> i64 {
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn environment() -> Vec<u8> {
    protocol::join_nul(std::env::vars_os().map(|(k, v)| {
        let mut entry = k.into_vec();
        entry.push(b'=');
        entry.extend_from_slice(v.as_bytes());
        entry
    }))
}

fn run(args: &[OsString], context: &JobContext, recorder: UnixStream) -> ! {
    let tracing = std::env::var_os(protocol::ENV_TRACE).is_some_and(|v| v == "1");
    let nested = std::env::var_os(protocol::ENV_TRACED).is_some();
    let tee = std::env::var_os(protocol::ENV_TEE).is_some_and(|v| v == "1");
    restore_shell_variable();

    let cwd = std::env::current_dir()
        .map(|d| d.into_os_string().into_vec())
        .unwrap_or_default();
    let target_existed = target_exists(&context.target);
    let mut start = Writer::new(Kind::CommandStart);
    start
        .number(std::process::id() as i64)
        .field(
            std::env::var_os(protocol::ENV_CTX)
                .unwrap_or_default()
                .as_bytes(),
        )
        .field(&protocol::join_nul(args.iter().map(|a| a.as_bytes())))
        .field(&cwd)
        .field(&environment())
        .number(now_ns())
        .number(target_existed as i64)
        .field(if nested { b"a" } else { b"" });
    if !send(&recorder, &start) {
        exec(args);
    }
    if nested {
        // Our child's file accesses reach the recorder through an outer command's
        // filter; it must know us before the first of them arrives.
        let mut ack = [0u8; 16];
        unsafe { libc::recv(recorder.as_raw_fd(), ack.as_mut_ptr().cast(), ack.len(), 0) };
    }

    let (Ok((out_r, out_w)), Ok((err_r, err_w))) = (pipe(), pipe()) else {
        exec(args)
    };
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let child = unsafe { libc::fork() };
    if child < 0 {
        exec(args);
    }
    if child == 0 {
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            libc::dup2(out_w.as_raw_fd(), 1);
            libc::dup2(err_w.as_raw_fd(), 2);
        }
        if tracing && !nested {
            if protocol::runs_make(
                args.last().map(|a| a.as_bytes()).unwrap_or_default(),
                &context.make,
            ) {
                // Leave the sub-make untraced: its own commands get their own filters,
                // and make's stat traffic stays out of the notification path.
                send(&recorder, &Writer::new(Kind::SubMake));
            } else {
                start_tracing(&recorder);
            }
        }
        drop(recorder);
        let direct = simple_command(args);
        let error = exec_error(direct.as_deref().unwrap_or(args));
        eprintln!("make: {}: {}", args[0].to_string_lossy(), error);
        unsafe { libc::_exit(127) };
    }
    CHILD.store(child, Ordering::Relaxed);
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        unsafe { libc::signal(signal, forward as *const () as libc::sighandler_t) };
    }
    drop(out_w);
    drop(err_w);

    pump_output(&recorder, child, out_r, err_r, tee);
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    while unsafe { libc::wait4(child, &mut status, 0, &mut usage) } < 0 {
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    let left_behind = left_behind();
    let micros = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    let mut end = Writer::new(Kind::CommandEnd);
    end.number(status as i64)
        .number(now_ns())
        .number(micros(usage.ru_utime))
        .number(micros(usage.ru_stime))
        .number(usage.ru_maxrss)
        .field(&left_behind);
    send(&recorder, &end);
    drop(recorder);

    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::kill(libc::getpid(), signal);
        }
    }
    std::process::exit(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        127
    })
}

/// make runs a recipe line without a shell when SHELL is /bin/sh and the line needs
/// none (job.c's `construct_command_argv_internal`): we do the same, so recording costs
/// no extra exec and the command runs exactly as under plain make. This is a
/// conservative subset of make's test: anything with a quote, a backslash, an `=`, a
/// shell metacharacter or a shell builtin first goes to the shell, which make would
/// either also do or which runs it the same way.
fn simple_command(args: &[OsString]) -> Option<Vec<OsString>> {
    const SPECIAL: &[u8] = b"#;\"*?[]&|<>(){}$`^~!'\\=%\n\r";
    const BUILTINS: &[&str] = &[
        ".", ":", "alias", "bg", "break", "case", "cd", "command", "continue", "eval", "exec",
        "exit", "export", "fc", "fg", "for", "getopts", "hash", "if", "jobs", "login", "logout",
        "read", "readonly", "return", "set", "shift", "test", "trap", "type", "ulimit", "umask",
        "unalias", "unset", "wait", "while",
    ];
    let [shell, flags, command] = args else {
        return None;
    };
    if shell != "/bin/sh" || !(flags == "-c" || flags == "-ec") {
        return None;
    }
    let command = command.as_bytes();
    if command.iter().any(|b| SPECIAL.contains(b)) {
        return None;
    }
    let words: Vec<OsString> = command
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty())
        .map(|w| OsStr::from_bytes(w).to_owned())
        .collect();
    let first = words.first()?.to_str()?;
    (!BUILTINS.contains(&first)).then_some(words)
}

extern "C" fn forward(signal: libc::c_int) {
    let child = CHILD.load(Ordering::Relaxed);
    if child > 0 {
        unsafe { libc::kill(child, signal) };
    }
}

fn target_exists(target: &[u8]) -> bool {
    let Ok(path) = CString::new(target) else {
        return false;
    };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    !target.is_empty() && unsafe { libc::stat(path.as_ptr(), &mut st) } == 0
}

/// In the child: install the filter and send its listener to the recorder; if the
/// kernel refuses, say so and run untraced (the record marks the command).
fn start_tracing(recorder: &UnixStream) {
    match makescope::trace::install_filter() {
        Ok(listener) => {
            let mut message = Writer::new(Kind::Listener);
            message.number(std::process::id() as i64);
            send_fd(recorder, message.bytes(), listener.as_raw_fd());
            std::env::set_var(protocol::ENV_TRACED, "1");
        }
        Err(error) => {
            let mut message = Writer::new(Kind::TraceRefused);
            message.field(error.to_string().as_bytes());
            send(recorder, &message);
        }
    }
}

fn send_fd(sock: &UnixStream, bytes: &[u8], fd: RawFd) -> bool {
    unsafe {
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut _,
            iov_len: bytes.len(),
        };
        let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let mut control = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) >= 0
    }
}

/// Forward the command's output to the recorder (and to our own stdout/stderr when
/// teeing) until both pipes close, or shortly after the child exits if something it
/// left behind keeps them open.
fn pump_output(recorder: &UnixStream, child: libc::pid_t, out: OwnedFd, err: OwnedFd, tee: bool) {
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child, 0) } as RawFd;
    let mut fds = [
        libc::pollfd {
            fd: out.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: err.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let mut buffer = vec![0u8; protocol::MAX_MESSAGE - 64];
    let mut exited = pidfd < 0;
    let mut open = 2;
    while open > 0 {
        let timeout = if exited { 100 } else { -1 };
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout) };
        if ready < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        if ready == 0 {
            break; // the child is gone and nothing more came: someone else holds the pipe
        }
        if fds[2].revents != 0 {
            exited = true;
            fds[2].fd = -1;
        }
        for (i, stream) in [(0usize, 1u8), (1, 2)] {
            if fds[i].revents == 0 {
                continue;
            }
            let n = unsafe { libc::read(fds[i].fd, buffer.as_mut_ptr().cast(), buffer.len()) };
            if n <= 0 {
                if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                fds[i].fd = -1;
                open -= 1;
                continue;
            }
            let chunk = &buffer[..n as usize];
            if tee {
                write_all(stream as RawFd, chunk);
            }
            let mut message = Writer::new(Kind::Output);
            message.field(&[b'0' + stream]).field(chunk);
            send(recorder, &message);
        }
    }
    if pidfd >= 0 {
        unsafe { libc::close(pidfd) };
    }
}

fn write_all(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Processes the command left running (orphans reparented to us as subreaper):
/// NUL-separated `pid argv0` entries.
fn left_behind() -> Vec<u8> {
    let me = std::process::id();
    let Ok(children) = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")) else {
        return Vec::new();
    };
    let entries = children.split_whitespace().map(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        let mut entry = pid.as_bytes().to_vec();
        entry.push(b' ');
        entry.extend_from_slice(argv0);
        entry
    });
    protocol::join_nul(entries)
}

/// `--makescope-tail FD…`: the build is over but processes it started still run under
/// these listeners; answer their notifications (recording nothing) until they are gone.
fn tail(fds: &[OsString]) -> ! {
    let listeners: Vec<OwnedFd> = fds
        .iter()
        .filter_map(|fd| fd.to_str()?.parse::<RawFd>().ok())
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    let mut open: Vec<bool> = vec![true; listeners.len()];
    let mut supervisor = makescope::trace::Supervisor::new();
    let mut events = Vec::new();
    while open.iter().any(|&o| o) {
        let mut polls: Vec<libc::pollfd> = listeners
            .iter()
            .zip(&open)
            .map(|(fd, &o)| libc::pollfd {
                fd: if o { fd.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, -1) } < 0 {
            continue;
        }
        for (i, poll) in polls.iter().enumerate() {
            if poll.revents == 0 {
                continue;
            }
            use std::os::fd::AsFd;
            match supervisor.handle(listeners[i].as_fd(), &mut events) {
                Ok(makescope::trace::Handled::Hangup) | Err(_) => open[i] = false,
                _ => {}
            }
            events.clear();
        }
    }
    std::process::exit(0)
}
