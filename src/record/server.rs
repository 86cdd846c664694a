//! The event loop: one thread reading the plugin's and the shims' messages and the
//! seccomp listeners, attributing every event to a command or a make process.
//!
//! Attribution is by process ancestry, kept in a map keyed by pid: a shim's pid belongs
//! to its command (registered by its `CommandStart`), a make's pid to that make
//! (`MakeStart`), and any other process to the owner of its nearest known ancestor.
//! Shims are child subreapers, so orphans still lead back to their command. A pid is
//! forgotten when its process exits, so a reused pid starts afresh.
//!
//! Traced processes are blocked until their notification is answered, so this thread
//! does nothing slow: rows go to the writer, output to the UI, both over channels.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::ui::Event as UiEvent;
use super::writer::Write;
use super::Setup;
use crate::output::{CommandInfo, Outcome, Stream};
use crate::protocol::{self, DecodeError, JobContext, Kind, Message};
use crate::store::{
    CommandEnd, MakeEnd, NewAccess, NewCommand, NewMake, NewProcess, NextIds, Owner, ProcessExec,
};
use crate::trace::{self, Handled, Supervisor};
use crate::util::{now_ns, redact_environment};

/// `command.traced` for a line that runs a sub-make: not filtered itself, its sub-make's
/// commands are.
pub(crate) const TRACED_SUB_MAKE: i64 = 2;

const RECEIVE_BUFFER: usize = 512 * 1024;
/// How often fast-path rings are drained when their commands are not trapping.
const RING_SWEEP: Duration = Duration::from_millis(50);

/// Records drained from one ring before the sweep looks for trapped calls to answer.
const SWEEP_SLICE: usize = 512;
/// How long to wait for stragglers once make has exited.
const DRAIN: Duration = Duration::from_secs(5);
/// The event loop's time slice: the kernel's minimum (its default is 3 ms).
const EVENT_LOOP_SLICE: Duration = Duration::from_micros(100);

/// How long a record in make's ring waits for its process to be announced as a make
/// before it goes to the nearest announced ancestor.
const MAKE_WAIT: Duration = Duration::from_secs(1);

/// A record from make's ring.
#[derive(Debug)]
struct MakeRecord {
    pid: i32,
    ppid: i32,
    path: trace::PathId,
    kind: trace::AccessKind,
    time_ns: i64,
    read: Instant,
}

/// Rows are given to the writer in batches at least this often, or of this many.
const BATCH_TIME: Duration = Duration::from_millis(20);
const BATCH_ROWS: usize = 1024;

/// Asks the event loop to finish once make has exited.
pub(crate) struct Stopper(RawFd);

impl Stopper {
    pub fn stop(&self) {
        let one: u64 = 1;
        unsafe { libc::write(self.0, (&one as *const u64).cast(), 8) };
    }
}

enum Role {
    Unknown,
    Make { id: i64, pid: i32 },
    Command(i64),
}

struct Connection {
    fd: OwnedFd,
    role: Role,
}

struct Running {
    info: CommandInfo,
    chunks: Vec<(Stream, Vec<u8>)>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    traced: bool,
    started_ns: i64,
    pid: i32,
}

struct Aggregate {
    count: i64,
    first_ns: i64,
    process_id: Option<i64>,
}

/// What one owner (a command or a make) touched so far.
#[derive(Default)]
struct Touched {
    /// By (path number, kind), except probes.
    accesses: HashMap<(u32, u8), Aggregate>,
    /// Paths probed and found missing, repeats included (include-path searches are most
    /// of a compile's file calls: a push each, sorted and deduplicated by the writer).
    probes: Vec<u32>,
}

/// Deduplicate a command's probes in place once they take this many entries.
const PROBES_COMPACT: usize = 1 << 20;

/// Whether a path is under makescope's private directory, once looked at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Private {
    Unknown,
    No,
    Yes,
}

pub(crate) struct Server {
    setup: Setup,
    /// What the loop waits on: the seccomp listeners and `epoll` (everything else). The
    /// wait is poll(2) on the listeners themselves rather than epoll_wait on all: the
    /// shims set `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`, which asks the kernel to wake the
    /// supervisor on the trapping task's CPU, and on glibc's `string/` workload the poll
    /// loop was faster in 3 of 3 alternating rounds (15.65 s against 16.28 s, everything
    /// else equal; BENCHMARKS.md, "Fourth session"). (In isolation both waits get the
    /// hint: ~5 µs a round trip with the other CPU idle, ~55 µs without the flag.) The
    /// sockets stay in an epoll whose descriptor is polled, so each poll, made once per
    /// notification, looks at a handful of descriptors.
    pollfds: Vec<libc::pollfd>,
    epoll: OwnedFd,
    listen: OwnedFd,
    wake: OwnedFd,
    connections: HashMap<RawFd, Connection>,
    listeners: HashMap<RawFd, (OwnedFd, i64)>,
    ids: NextIds,
    makes: HashMap<i32, i64>,
    commands: HashMap<i64, Running>,
    job_lines: HashMap<(i32, u64), i64>,
    owners: HashMap<i32, Owner>,
    roots: HashSet<i32>,
    processes: HashMap<i32, i64>,
    /// Accesses by owner until the owner ends, by the supervisor's path numbers
    /// (millions of accesses, ~100,000 paths on glibc); the writer maps numbers to ids.
    accesses: HashMap<Owner, Touched>,
    /// By path number: is it makescope's own file (never recorded)?
    private: Vec<Private>,
    /// How many of the supervisor's paths the writer has been given.
    paths_sent: usize,
    supervisor: Supervisor,
    /// The supervisor's events, reused from call to call.
    trace_events: Vec<trace::Event>,
    to_writer: Sender<Write>,
    /// Rows not yet given to the writer: sent as one [`Write::Batch`] every few
    /// milliseconds (a send to the idle writer wakes it: three rows a process, ~50,000
    /// processes in a glibc build), and before the UI hears of a command (hooks may
    /// send notes about its row as soon as it hears of its start or end).
    batch: Vec<Write>,
    batch_since: Instant,
    /// Process rows in `batch`: their ids and positions.
    unsent_processes: HashMap<i64, usize>,
    /// make's own ring ([`Server::drain_make_ring`]), its records waiting for their make to
    /// announce itself, the first make's id, and how many records no make could own.
    make_ring: Option<trace::Ring>,
    make_ring_cursor: trace::Cursor,
    make_waiting: Vec<MakeRecord>,
    top_make: Option<i64>,
    make_unowned: u64,
    to_ui: Sender<UiEvent>,
    buffer: Vec<u8>,
    warned_trace: bool,
    warned_lost: bool,
    incomplete: HashSet<i64>,
    sub_makes: HashSet<i64>,
}

fn check(result: libc::c_int, what: &str) -> Result<libc::c_int> {
    if result < 0 {
        bail!("{what}: {}", std::io::Error::last_os_error());
    }
    Ok(result)
}

impl Server {
    pub fn bind(
        socket: &Path,
        setup: Setup,
        ids: NextIds,
        to_writer: Sender<Write>,
        to_ui: Sender<UiEvent>,
    ) -> Result<Server> {
        let listen = unsafe {
            OwnedFd::from_raw_fd(check(
                libc::socket(
                    libc::AF_UNIX,
                    libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    0,
                ),
                "creating the recorder's socket",
            )?)
        };
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let path = socket.as_os_str().as_bytes();
        if path.len() >= addr.sun_path.len() {
            bail!(
                "the socket path {} is too long (set TMPDIR to a shorter directory)",
                socket.display()
            );
        }
        for (dst, &src) in addr.sun_path.iter_mut().zip(path) {
            *dst = src as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        check(
            unsafe {
                libc::bind(
                    listen.as_raw_fd(),
                    &addr as *const _ as *const libc::sockaddr,
                    len,
                )
            },
            "binding the recorder's socket",
        )?;
        check(
            unsafe { libc::listen(listen.as_raw_fd(), 1024) },
            "listening on the recorder's socket",
        )?;
        let epoll = unsafe {
            OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC), "epoll")?)
        };
        let wake = unsafe {
            OwnedFd::from_raw_fd(check(
                libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK),
                "eventfd",
            )?)
        };
        let server = Server {
            setup,
            pollfds: vec![libc::pollfd {
                fd: epoll.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }],
            epoll,
            listen,
            wake,
            connections: HashMap::default(),
            listeners: HashMap::default(),
            ids,
            makes: HashMap::default(),
            commands: HashMap::default(),
            job_lines: HashMap::default(),
            owners: HashMap::default(),
            roots: HashSet::default(),
            processes: HashMap::default(),
            accesses: HashMap::default(),
            private: Vec::new(),
            paths_sent: 0,
            supervisor: Supervisor::new(),
            trace_events: Vec::new(),
            to_writer,
            batch: Vec::new(),
            batch_since: Instant::now(),
            unsent_processes: HashMap::default(),
            make_ring: None,
            make_ring_cursor: Default::default(),
            make_waiting: Vec::new(),
            top_make: None,
            make_unowned: 0,
            to_ui,
            buffer: vec![0; RECEIVE_BUFFER],
            warned_trace: false,
            warned_lost: false,
            incomplete: HashSet::default(),
            sub_makes: HashSet::default(),
        };
        server.watch(server.listen.as_raw_fd())?;
        server.watch(server.wake.as_raw_fd())?;
        Ok(server)
    }

    /// make's own ring: what the fast path's helper records in make processes.
    pub fn set_make_ring(&mut self, ring: trace::Ring) {
        self.make_ring = Some(ring);
    }

    pub fn stopper(&self) -> Stopper {
        Stopper(self.wake.as_raw_fd())
    }

    /// Watch a socket (or the wake-up eventfd).
    fn watch(&self, fd: RawFd) -> Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        check(
            unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) },
            "epoll_ctl",
        )?;
        Ok(())
    }

    fn unwatch(&self, fd: RawFd) {
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    fn watch_listener(&mut self, fd: RawFd) {
        self.pollfds.push(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
    }

    fn unwatch_listener(&mut self, fd: RawFd) {
        self.pollfds.retain(|p| p.fd != fd);
    }

    /// Run until stopped and drained; returns the listeners that still have processes.
    pub fn run(mut self) -> Vec<OwnedFd> {
        // Every trapped call waits for this thread, which competes for two CPUs with the
        // build's jobs: a short time slice gets it a CPU sooner when it wakes (on a
        // traced string/ build, the time it spent ready but waiting for a CPU fell from
        // ~1.4 s to ~1.1 s; BENCHMARKS.md, sixth session). Only a speed-up: kernels
        // before 6.12 ignore the request.
        let _ = crate::trace::sys::set_time_slice(EVENT_LOOP_SLICE);
        let mut ready: Vec<(RawFd, i16)> = Vec::new();
        let mut sockets = vec![libc::epoll_event { events: 0, u64: 0 }; 128];
        let mut stopping: Option<Instant> = None;
        let mut swept = Instant::now();
        loop {
            let timeout = if stopping.is_some() || !self.listeners.is_empty() {
                50
            } else {
                1000
            };
            let n = unsafe {
                libc::poll(
                    self.pollfds.as_mut_ptr(),
                    self.pollfds.len() as libc::nfds_t,
                    timeout,
                )
            };
            if n < 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                self.warn(format!("event loop: {}", std::io::Error::last_os_error()));
                break;
            }
            // Answer traced processes first: they are waiting. One notification per
            // listener and round: poll is level-triggered, so a listener with more comes
            // back at once, and no extra poll is made to find out.
            ready.clear();
            let epoll = self.epoll.as_raw_fd();
            for p in &self.pollfds {
                if p.revents == 0 {
                    continue;
                }
                if p.fd != epoll {
                    ready.push((p.fd, p.revents));
                    continue;
                }
                let n = unsafe {
                    libc::epoll_wait(epoll, sockets.as_mut_ptr(), sockets.len() as i32, 0)
                };
                for e in &sockets[..n.max(0) as usize] {
                    // EPOLLIN/HUP/ERR have poll(2)'s values.
                    ready.push((e.u64 as RawFd, e.events as i16));
                }
            }
            for &(fd, revents) in &ready {
                if self.listeners.contains_key(&fd) {
                    self.on_notification(fd, revents);
                }
            }
            if swept.elapsed() >= RING_SWEEP {
                // Commands that make few trapped calls: their fast-path records would
                // otherwise wait in the ring until their next one (or fill it). Most
                // records come this way (a sweep takes ~a millisecond on glibc), so it
                // goes in slices, answering whoever trapped meanwhile in between.
                swept = Instant::now();
                self.drain_make_ring(false);
                let listeners: Vec<RawFd> = self.listeners.keys().copied().collect();
                loop {
                    let mut more = false;
                    for &fd in &listeners {
                        more |= self.on_ring(fd);
                    }
                    if !more {
                        break;
                    }
                    self.answer_waiting();
                }
            }
            for &(fd, _) in &ready {
                if fd == self.listen.as_raw_fd() {
                    self.accept();
                } else if fd == self.wake.as_raw_fd() {
                    let mut count = 0u64;
                    unsafe { libc::read(fd, (&mut count as *mut u64).cast(), 8) };
                    stopping.get_or_insert_with(Instant::now);
                } else if self.connections.contains_key(&fd) {
                    self.on_readable(fd);
                }
            }
            if self.batch_since.elapsed() >= BATCH_TIME {
                self.send_batch();
            }
            if let Some(since) = stopping {
                if self.connections.is_empty() || since.elapsed() > DRAIN {
                    break;
                }
            }
        }
        if std::env::var_os("MAKESCOPE_TRACE_STATS").is_some() {
            // For measurements (BENCHMARKS.md): what the tracer answered, by call.
            let counts: Vec<String> = self
                .supervisor
                .counts()
                .iter()
                .map(|(name, n)| format!("{name}={n}"))
                .collect();
            eprintln!("makescope: trace stats: {}", counts.join(" "));
        }
        let leftovers = self.finish();
        // The event loop's own CPU time and the time it was ready to run but waited for
        // a CPU (while trapped calls waited for it).
        trace::sys::report_thread_cpu("event loop");
        leftovers
    }

    fn accept(&mut self) {
        loop {
            let fd = unsafe {
                libc::accept4(
                    self.listen.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd < 0 {
                return;
            }
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            if self.watch(fd.as_raw_fd()).is_ok() {
                self.connections.insert(
                    fd.as_raw_fd(),
                    Connection {
                        fd,
                        role: Role::Unknown,
                    },
                );
            }
        }
    }

    fn on_readable(&mut self, fd: RawFd) {
        loop {
            let mut iov = libc::iovec {
                iov_base: self.buffer.as_mut_ptr().cast(),
                iov_len: self.buffer.len(),
            };
            let space =
                unsafe { libc::CMSG_SPACE(2 * std::mem::size_of::<RawFd>() as u32) } as usize;
            let mut control = [0u8; 64];
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space;
            let n =
                unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT) };
            if n < 0 {
                match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    Some(libc::EINTR) => continue,
                    _ => return self.on_closed(fd),
                }
            }
            if n == 0 {
                return self.on_closed(fd);
            }
            let passed = unsafe { received_fds(&msg) };
            let bytes = self.buffer[..n as usize].to_vec();
            if msg.msg_flags & libc::MSG_TRUNC != 0 {
                self.warn("a message from make or a shim was too large and was cut; some facts are missing".into());
            }
            match Message::decode(&bytes) {
                Ok(message) => {
                    if let Err(error) = self.on_message(fd, &message, passed) {
                        self.warn(format!("a malformed {:?} message: {error}", message.kind));
                    }
                }
                Err(error) => self.warn(format!("an unreadable message: {error}")),
            }
        }
    }

    fn ack(fd: RawFd) {
        let byte = [Kind::Ack as u8];
        unsafe {
            libc::send(
                fd,
                byte.as_ptr().cast(),
                1,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
    }

    fn on_message(
        &mut self,
        fd: RawFd,
        m: &Message<'_>,
        passed: Vec<OwnedFd>,
    ) -> Result<(), DecodeError> {
        match m.kind {
            Kind::MakeStart => {
                // What a make that re-executes itself did before is its earlier image's.
                self.drain_make_ring(false);
                let id = self.make_started(m)?;
                let pid = m.number(0)? as i32;
                if let Some(connection) = self.connections.get_mut(&fd) {
                    connection.role = Role::Make { id, pid };
                }
                Self::ack(fd);
            }
            Kind::MakeEnd => {
                if let Some(&Role::Make { id, pid }) = self.connections.get(&fd).map(|c| &c.role) {
                    let dump = m.bytes(4)?;
                    let end = MakeEnd {
                        ended_ns: m.number(1)?,
                        default_goal: m.bytes(2)?.to_vec(),
                        makefiles: m.bytes(3)?.to_vec(),
                        makedb_path: (!dump.is_empty()).then(|| dump.to_vec()),
                    };
                    self.drain_make_ring(false);
                    self.flush_accesses(Owner::Make(id));
                    self.write(Write::MakeEnd(id, end));
                    self.make_gone(pid);
                }
            }
            Kind::CommandStart => {
                let id = self.command_started(m)?;
                if let Some(connection) = self.connections.get_mut(&fd) {
                    connection.role = Role::Command(id);
                }
                if m.bytes(7)?.contains(&b'a') {
                    Self::ack(fd);
                }
            }
            Kind::Output => {
                if let Some(Role::Command(id)) = self.connections.get(&fd).map(|c| &c.role) {
                    let stream = if m.bytes(0)? == b"2" {
                        Stream::Stderr
                    } else {
                        Stream::Stdout
                    };
                    let bytes = m.bytes(1)?;
                    if let Some(running) = self.commands.get_mut(id) {
                        match stream {
                            Stream::Stdout => running.stdout.extend_from_slice(bytes),
                            Stream::Stderr => running.stderr.extend_from_slice(bytes),
                        }
                        match running.chunks.last_mut() {
                            Some((last, chunk)) if *last == stream => {
                                chunk.extend_from_slice(bytes)
                            }
                            _ => running.chunks.push((stream, bytes.to_vec())),
                        }
                    }
                }
            }
            Kind::CommandEnd => {
                if let Some(Role::Command(id)) = self.connections.get(&fd).map(|c| &c.role) {
                    let id = *id;
                    let status = m.number(0)? as i32;
                    let exited = libc::WIFEXITED(status);
                    let signaled = libc::WIFSIGNALED(status);
                    let left_behind = m.bytes(5)?.to_vec();
                    let end = CommandEnd {
                        ended_ns: m.number(1)?,
                        state: if exited && libc::WEXITSTATUS(status) == 0 {
                            "ok"
                        } else if signaled {
                            "killed"
                        } else {
                            "failed"
                        },
                        exit_code: exited.then(|| libc::WEXITSTATUS(status)),
                        signal: signaled.then(|| libc::WTERMSIG(status)),
                        user_us: Some(m.number(2)?),
                        system_us: Some(m.number(3)?),
                        max_rss_kib: Some(m.number(4)?),
                        left_behind,
                        ..Default::default()
                    };
                    self.command_ended(id, end);
                }
            }
            Kind::Listener => {
                let mut passed = passed.into_iter();
                let Some(listener) = passed.next() else {
                    return Ok(());
                };
                let ring = passed.next();
                if let Some(Role::Command(id)) = self.connections.get(&fd).map(|c| &c.role) {
                    let id = *id;
                    if let Some(running) = self.commands.get_mut(&id) {
                        running.traced = true;
                    }
                    let raw = listener.as_raw_fd();
                    self.watch_listener(raw);
                    if let Some(ring) = ring {
                        match trace::Ring::from_fd(ring) {
                            Ok(ring) => self
                                .supervisor
                                .attach_ring(std::os::fd::AsFd::as_fd(&listener), ring),
                            Err(error) => {
                                // The helper may already be writing into a ring nobody
                                // reads: this command's files cannot be complete.
                                self.incomplete.insert(id);
                                self.warn(format!(
                                    "a command's fast-path ring is unusable: {error}"
                                ))
                            }
                        }
                    }
                    self.listeners.insert(raw, (listener, id));
                }
            }
            Kind::SubMake => {
                if let Some(Role::Command(id)) = self.connections.get(&fd).map(|c| &c.role) {
                    self.sub_makes.insert(*id);
                }
            }
            Kind::TraceRefused => {
                let reason = String::from_utf8_lossy(m.bytes(0)?).into_owned();
                if !self.warned_trace {
                    self.warned_trace = true;
                    self.warn(format!(
                        "a command could not be traced ({reason}); the record marks it untraced"
                    ));
                }
            }
            Kind::Ack => {}
        }
        Ok(())
    }

    fn make_started(&mut self, m: &Message<'_>) -> Result<i64, DecodeError> {
        let pid = m.number(0)? as i32;
        let ppid = m.number(1)? as i32;
        let context = JobContext::parse(m.bytes(5)?);
        // make re-executes itself after remaking its makefiles (glibc does, often): the
        // same pid announces itself again, and the earlier image never said goodbye.
        if let Some(previous) = self.makes.get(&pid).copied() {
            self.flush_accesses(Owner::Make(previous));
            let end = MakeEnd {
                ended_ns: m.number(6)?,
                default_goal: Vec::new(),
                makefiles: Vec::new(),
                makedb_path: None,
            };
            self.write(Write::MakeEnd(previous, end));
        }
        let id = self.ids.make;
        self.ids.make += 1;
        // The recipe that ran this make: the nearest ancestor that is a command.
        let parent_command_id = match self.owner_of(ppid) {
            Some(Owner::Command(command)) => Some(command),
            _ => None,
        };
        let parent_make_id = context
            .as_ref()
            .and_then(|c| self.makes.get(&c.make_pid).copied());
        self.makes.insert(pid, id);
        self.top_make.get_or_insert(id);
        self.owners.insert(pid, Owner::Make(id));
        self.roots.insert(pid);
        self.write(Write::Make(NewMake {
            id,
            build_id: self.setup.build_id,
            pid,
            parent_make_id,
            parent_command_id,
            level: m.number(2)?,
            directory: m.bytes(3)?.to_vec(),
            argv: without_our_plugin(m.bytes(4)?),
            started_ns: m.number(6)?,
        }));
        Ok(id)
    }

    fn command_started(&mut self, m: &Message<'_>) -> Result<i64, DecodeError> {
        let shim_pid = m.number(0)? as i32;
        let context = JobContext::parse(m.bytes(1)?).unwrap_or_default();
        let argv = m.list(2)?;
        let directory = m.bytes(3)?.to_vec();
        let environment = m.list(4)?;
        let id = self.ids.command;
        self.ids.command += 1;
        let line = self
            .job_lines
            .entry((context.make_pid, context.job))
            .or_insert(0);
        let line_index = *line;
        *line += 1;

        // argv is the makefile's SHELL words, then .SHELLFLAGS words, then the command.
        let shell_words = context
            .shell
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .count()
            .max(1);
        let command = if argv.len() > shell_words {
            argv[argv.len() - 1].to_vec()
        } else {
            Vec::new()
        };
        let shell = crate::util::join_nul(argv.iter().take(shell_words.min(argv.len())));
        let flags = crate::util::join_nul(
            argv.iter()
                .take(argv.len().saturating_sub(1))
                .skip(shell_words),
        );
        // Our per-job variables are in the command's own columns; without them most
        // commands of a make share one environment, which the record stores once.
        // A command inside a traced one inherited the fast path's variables: not its own.
        let cleaned = self
            .setup
            .preload
            .as_deref()
            .and_then(|helper| protocol::without_fast_path(&environment, helper));
        let environment: Vec<&[u8]> = match &cleaned {
            Some(entries) => entries.iter().map(Vec::as_slice).collect(),
            None => environment,
        };
        let environment: Vec<&[u8]> = environment
            .into_iter()
            .filter(|e| !e.starts_with(b"MAKESCOPE_"))
            .collect();
        let env = if self.setup.keep_secrets {
            crate::util::join_nul(&environment)
        } else {
            redact_environment(&environment)
        };

        self.owners.insert(shim_pid, Owner::Command(id));
        self.roots.insert(shim_pid);
        let make_id = self.makes.get(&context.make_pid).copied();
        let target_existed = m.number(6)? == 1;
        let nested = m.bytes(7)?.contains(&b'a');
        let info = CommandInfo {
            id,
            target: context.target.clone(),
            directory: directory.clone(),
            top_directory: self.setup.top_directory.clone(),
            command: command.clone(),
            recipe_file: context.recipe_file.clone(),
            // make names the line that ran the way its own error messages do: the
            // recipe's first line plus the line's position in the recipe.
            recipe_line: if context.recipe_line > 0 {
                context.recipe_line + line_index as u32
            } else {
                0
            },
            make_level: context.make_level,
        };
        self.write(Write::Command(NewCommand {
            id,
            build_id: self.setup.build_id,
            make_id,
            job: context.job as i64,
            line_index,
            target: context.target,
            recipe_file: context.recipe_file,
            recipe_line: context.recipe_line as i64,
            // For a target that did not exist `$?` is every prerequisite (hundreds of
            // headers for a glibc object) and says nothing the flag does not.
            newer: if target_existed {
                context.newer
            } else {
                Vec::new()
            },
            target_existed,
            directory,
            shell,
            shell_flags: flags,
            command,
            env,
            pid: shim_pid,
            started_ns: m.number(5)?,
            traced: false,
            label: String::new(),
        }));
        self.send_batch(); // the UI's notes on this command update its row
        let _ = self.to_ui.send(UiEvent::Started(info.clone()));
        let traced = self.setup.tracing && nested;
        let started_ns = m.number(5)?;
        self.commands.insert(
            id,
            Running {
                info,
                chunks: Vec::new(),
                stdout: Vec::new(),
                stderr: Vec::new(),
                traced,
                started_ns,
                pid: shim_pid,
            },
        );
        Ok(id)
    }

    fn command_ended(&mut self, id: i64, mut end: CommandEnd) {
        let Some(running) = self.commands.remove(&id) else {
            return;
        };
        let files = self.flush_accesses(Owner::Command(id));
        self.release_root(running.pid, Owner::Command(id));
        let outcome = Outcome {
            exit_code: end.exit_code,
            signal: end.signal,
            duration_ns: end.ended_ns - running.started_ns,
        };
        end.traced = if self.sub_makes.remove(&id) {
            TRACED_SUB_MAKE
        } else {
            i64::from(running.traced && !self.incomplete.remove(&id))
        };
        end.stdout = running.stdout;
        end.stderr = running.stderr;
        self.write(Write::CommandEnd(id, end));
        self.send_batch();
        let _ = self.to_ui.send(UiEvent::Finished {
            info: running.info,
            output: running.chunks,
            outcome,
            files,
        });
    }

    fn on_closed(&mut self, fd: RawFd) {
        self.unwatch(fd);
        let Some(connection) = self.connections.remove(&fd) else {
            return;
        };
        if let Role::Make { pid, .. } = connection.role {
            self.make_gone(pid);
        }
        if let Role::Command(id) = connection.role {
            if self.commands.contains_key(&id) {
                // The shim died without reporting: make saw it fail.
                self.command_ended(
                    id,
                    CommandEnd {
                        ended_ns: now_ns(),
                        state: "lost",
                        ..Default::default()
                    },
                );
            }
        }
        drop(connection.fd);
    }

    /// Drain a slice of `fd`'s fast-path ring without waiting for a notification;
    /// returns whether more may be ready.
    fn on_ring(&mut self, fd: RawFd) -> bool {
        let Some(&(_, top)) = self.listeners.get(&fd) else {
            return false;
        };
        let listener = unsafe { BorrowedFd::borrow_raw(fd) };
        self.traced(top, |s, events| {
            s.supervisor.drain_some(listener, SWEEP_SLICE, events)
        })
    }

    /// Let `serve` push the supervisor's events into the reused buffer, then attribute
    /// them (`top`: the command of the listener they came through).
    fn traced<R>(
        &mut self,
        top: i64,
        serve: impl FnOnce(&mut Self, &mut Vec<trace::Event>) -> R,
    ) -> R {
        let mut events = std::mem::take(&mut self.trace_events);
        let result = serve(self, &mut events);
        for event in events.drain(..) {
            self.on_trace(event, top);
        }
        self.trace_events = events;
        result
    }

    /// Answer the notifications already waiting, without sleeping (one per listener).
    fn answer_waiting(&mut self) {
        let n = unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                0,
            )
        };
        if n <= 0 {
            return;
        }
        let epoll = self.epoll.as_raw_fd();
        let waiting: Vec<(RawFd, i16)> = self
            .pollfds
            .iter()
            .filter(|p| p.revents & libc::POLLIN != 0 && p.fd != epoll)
            .map(|p| (p.fd, p.revents))
            .collect();
        for (fd, revents) in waiting {
            self.on_notification(fd, revents);
        }
    }

    /// Serve `fd` as the event loop found it (`revents` in poll(2) terms; 0: only drain
    /// its ring): at most one notification answered.
    fn on_notification(&mut self, fd: RawFd, revents: i16) {
        let Some(&(_, top)) = self.listeners.get(&fd) else {
            return;
        };
        // Open while it is in `self.listeners`.
        let listener = unsafe { BorrowedFd::borrow_raw(fd) };
        let handled = self.traced(top, |s, events| {
            s.supervisor.handle_ready(listener, revents, events)
        });
        match handled {
            Ok(Handled::Answered | Handled::Idle) => {}
            Ok(Handled::Hangup) => {
                self.unwatch_listener(fd);
                self.listeners.remove(&fd);
            }
            Err(error) => {
                self.warn(format!("tracing stopped for a command: {error}"));
                self.unwatch_listener(fd);
                self.listeners.remove(&fd);
            }
        }
    }

    fn on_trace(&mut self, event: trace::Event, top: i64) {
        match event {
            trace::Event::Process { pid, ppid, time_ns } => {
                if !self.roots.contains(&pid) {
                    let owner = self.owner_of(ppid).unwrap_or(Owner::Command(top));
                    self.owners.insert(pid, owner);
                }
                let owner = self.owners[&pid];
                let id = self.ids.process;
                self.ids.process += 1;
                self.processes.insert(pid, id);
                let (command_id, make_id) = split_owner(owner);
                self.unsent_processes.insert(id, self.batch.len());
                self.write(Write::Process(NewProcess {
                    id,
                    build_id: self.setup.build_id,
                    command_id,
                    make_id,
                    pid,
                    parent_pid: Some(ppid),
                    started_ns: time_ns,
                    exec: None,
                    end: None,
                }));
            }
            trace::Event::Access {
                pid,
                path,
                kind,
                time_ns,
            } => {
                if self.is_private(path) {
                    return; // makescope's own files (the fast path's helper, the socket)
                }
                let owner = self.owner_of(pid).unwrap_or(Owner::Command(top));
                self.touch(owner, pid, path, kind, time_ns);
            }
            trace::Event::Exec {
                pid,
                path,
                argv,
                cwd,
                ..
            } => {
                if let Some(&id) = self.processes.get(&pid) {
                    let exec = ProcessExec {
                        exe: path,
                        argv: crate::util::join_nul(&argv),
                        cwd,
                    };
                    match self.unsent_process(id) {
                        Some(p) => p.exec = Some(exec),
                        None => self.write(Write::ProcessExec { id, exec }),
                    }
                }
            }
            trace::Event::Exit { pid, code, time_ns } => {
                self.process_gone(pid, time_ns, Some(code))
            }
            trace::Event::Gone { pid, time_ns } => self.process_gone(pid, time_ns, None),
            trace::Event::Lost { pid, syscall, .. } => {
                // We saw the call but could not read it: the command's files are incomplete.
                if let Some(Owner::Command(id)) = self.owner_of(pid) {
                    self.incomplete.insert(id);
                }
                if !self.warned_lost {
                    self.warned_lost = true;
                    self.warn(format!("could not read the arguments of a {syscall} call; that command is marked untraced"));
                }
            }
        }
    }

    /// Count an access of `owner`'s.
    fn touch(
        &mut self,
        owner: Owner,
        pid: i32,
        path: trace::PathId,
        kind: trace::AccessKind,
        time_ns: i64,
    ) {
        let touched = self.accesses.entry(owner).or_default();
        if kind == trace::AccessKind::Probe {
            touched.probes.push(path.0);
            if touched.probes.len() >= PROBES_COMPACT {
                touched.probes.sort_unstable();
                touched.probes.dedup();
            }
            return;
        }
        let process_id = self.processes.get(&pid).copied();
        touched
            .accesses
            .entry((path.0, kind as u8))
            .and_modify(|a| a.count += 1)
            .or_insert(Aggregate {
                count: 1,
                first_ns: time_ns,
                process_id,
            });
    }

    /// Take make's own file activity from its ring (see `record::run_make`): every make
    /// of the build, and whatever runs under make without a recipe line's filter
    /// (`$(shell …)`, a sub-make's line), writes there through the fast path's helper.
    /// A record belongs to the make whose pid wrote it; a process that is not a make
    /// belongs to its nearest announced ancestor. A make announces itself only once it
    /// has loaded our plugin, so records of a pid nobody announced wait up to
    /// [`MAKE_WAIT`] for that (or until `last`).
    fn drain_make_ring(&mut self, last: bool) {
        let Some(mut ring) = self.make_ring.take() else {
            return;
        };
        let read = Instant::now();
        let paths = self.supervisor.paths_mut();
        let cursor = &mut self.make_ring_cursor;
        let mut waiting = std::mem::take(&mut self.make_waiting);
        ring.drain(last, usize::MAX, |r| {
            // Only accesses: the helper does not take over exits under make.
            if let trace::RingKind::Access(kind) = r.kind {
                waiting.push(MakeRecord {
                    pid: r.pid,
                    ppid: r.ppid,
                    path: paths.intern_absolute(r.path, cursor),
                    kind,
                    time_ns: r.time_ns,
                    read,
                })
            }
        });
        for r in waiting {
            let owner = match self.owners.get(&r.pid) {
                Some(&owner) => owner,
                None if !last && r.read.elapsed() < MAKE_WAIT => {
                    self.make_waiting.push(r);
                    continue;
                }
                None => match self
                    .owner_of(r.pid)
                    .or_else(|| self.owner_of(r.ppid))
                    .or(self.top_make.map(Owner::Make))
                {
                    Some(owner) => owner,
                    None => {
                        self.make_unowned += 1;
                        continue;
                    }
                },
            };
            if !self.is_private(r.path) {
                self.touch(owner, r.pid, r.path, r.kind, r.time_ns);
            }
        }
        if last {
            ring.close();
            let lost = ring.lost();
            if lost > 0 || self.make_unowned > 0 {
                self.warn(format!(
                    "make's own file activity is incomplete: {} calls not recorded, {} of no known make",
                    lost, self.make_unowned
                ));
            }
        } else {
            self.make_ring = Some(ring);
        }
    }

    /// A pid registered by a command's or a make's announcement is that owner's only
    /// until it ends: pids are reused (glibc's build forks far more than `pid_max`).
    fn release_root(&mut self, pid: i32, owner: Owner) {
        if self.owners.get(&pid) == Some(&owner) {
            self.owners.remove(&pid);
            self.roots.remove(&pid);
        }
    }

    fn make_gone(&mut self, pid: i32) {
        if let Some(id) = self.makes.remove(&pid) {
            self.release_root(pid, Owner::Make(id));
        }
        self.job_lines.retain(|&(make, _), _| make != pid);
    }

    fn process_gone(&mut self, pid: i32, time_ns: i64, exit_code: Option<i32>) {
        if let Some(id) = self.processes.remove(&pid) {
            match self.unsent_process(id) {
                Some(p) => p.end = Some((time_ns, exit_code)),
                None => self.write(Write::ProcessEnd {
                    id,
                    ended_ns: time_ns,
                    exit_code,
                }),
            }
        }
        if !self.roots.contains(&pid) {
            self.owners.remove(&pid);
        }
    }

    /// The owner of a process: its own registration or its nearest known ancestor's.
    fn owner_of(&mut self, pid: i32) -> Option<Owner> {
        let mut chain = Vec::new();
        let mut current = pid;
        let owner = loop {
            if let Some(&owner) = self.owners.get(&current) {
                break Some(owner);
            }
            if current <= 1 || chain.len() > 64 {
                break None;
            }
            chain.push(current);
            match trace::parent_of(current) {
                Some(parent) => current = parent,
                None => break None,
            }
        };
        if let Some(owner) = owner {
            for pid in chain {
                self.owners.insert(pid, owner);
            }
        }
        owner
    }

    fn is_private(&mut self, path: trace::PathId) -> bool {
        let i = path.0 as usize;
        if i >= self.private.len() {
            self.private.resize(i + 1, Private::Unknown);
        }
        if self.private[i] == Private::Unknown {
            let name = self.supervisor.paths().name(path);
            self.private[i] = if name.starts_with(&self.setup.private_dir)
                || name.starts_with(&self.setup.makedb_dir)
            {
                Private::Yes
            } else {
                Private::No
            };
        }
        self.private[i] == Private::Yes
    }

    /// Send an owner's accesses to the writer (and the paths it has not been given yet);
    /// with hooks loaded, also return what it read and wrote, for them.
    fn flush_accesses(&mut self, owner: Owner) -> Option<crate::hooks::Files> {
        let touched = self.accesses.remove(&owner)?;
        if touched.accesses.is_empty() && touched.probes.is_empty() {
            return None;
        }
        let paths = self.supervisor.paths();
        let files = self.setup.hooks.is_some().then(|| {
            let mut files = crate::hooks::Files::default();
            let path = |number: u32| paths.name(trace::PathId(number)).to_vec();
            for &(number, kind) in touched.accesses.keys() {
                match kind {
                    1 | 6 | 7 | 9 => files.reads.push(path(number)),
                    2 | 3 | 4 | 5 | 12 => files.writes.push(path(number)),
                    _ => {}
                }
            }
            files.reads.extend(touched.probes.iter().map(|&n| path(n)));
            files.reads.sort();
            files.reads.dedup();
            files.writes.sort();
            files
        });
        if paths.len() > self.paths_sent {
            let names = paths.names_from(self.paths_sent).to_vec();
            self.paths_sent = paths.len();
            self.write(Write::Paths(names));
        }
        let accesses = touched
            .accesses
            .into_iter()
            .map(|((number, kind), a)| NewAccess {
                key: number,
                kind,
                process_id: a.process_id,
                first_ns: a.first_ns,
                count: a.count,
            })
            .collect();
        self.write(Write::Accesses {
            build_id: self.setup.build_id,
            owner,
            accesses,
            probes: touched.probes,
        });
        files
    }

    fn finish(mut self) -> Vec<OwnedFd> {
        self.drain_make_ring(true);
        let fds: Vec<RawFd> = self.connections.keys().copied().collect();
        for fd in fds {
            self.on_closed(fd);
        }
        let owners: Vec<Owner> = self.accesses.keys().copied().collect();
        for owner in owners {
            self.flush_accesses(owner);
        }
        self.send_batch();
        self.listeners.drain().map(|(_, (fd, _))| fd).collect()
    }

    fn write(&mut self, write: Write) {
        if self.batch.is_empty() {
            self.batch_since = Instant::now();
        }
        self.batch.push(write);
        if self.batch.len() >= BATCH_ROWS {
            self.send_batch();
        }
    }

    /// A process's row while it is still in the unsent batch: its exec and end are
    /// written with it, one statement instead of three (most processes run one short
    /// program: ~51,000 a glibc build).
    fn unsent_process(&mut self, id: i64) -> Option<&mut NewProcess> {
        let &at = self.unsent_processes.get(&id)?;
        match self.batch.get_mut(at) {
            Some(Write::Process(p)) if p.id == id => Some(p),
            _ => None,
        }
    }

    fn send_batch(&mut self) {
        self.unsent_processes.clear();
        if !self.batch.is_empty() {
            let _ = self
                .to_writer
                .send(Write::Batch(std::mem::take(&mut self.batch)));
        }
    }

    fn warn(&self, text: String) {
        let _ = self.to_ui.send(UiEvent::Warning(text));
    }
}

/// make's argv as the user gave it: without the `--eval=load …/makescope.so` we add.
fn without_our_plugin(argv: &[u8]) -> Vec<u8> {
    crate::util::join_nul(
        crate::util::split_nul(argv)
            .into_iter()
            .filter(|a| !(a.starts_with(b"--eval=load ") && a.ends_with(b"/makescope.so"))),
    )
}

fn split_owner(owner: Owner) -> (Option<i64>, Option<i64>) {
    match owner {
        Owner::Command(id) => (Some(id), None),
        Owner::Make(id) => (None, Some(id)),
    }
}

/// The file descriptors passed with SCM_RIGHTS, in order (none, the listener, or the
/// listener and the fast path's ring).
unsafe fn received_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    let mut cmsg = libc::CMSG_FIRSTHDR(msg);
    while !cmsg.is_null() {
        if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
            let data = libc::CMSG_DATA(cmsg);
            let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
            for i in 0..len / std::mem::size_of::<RawFd>() {
                let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                fds.push(OwnedFd::from_raw_fd(fd));
            }
        }
        cmsg = libc::CMSG_NXTHDR(msg, cmsg);
    }
    fds
}

/// Listeners whose processes outlived the build (daemons a recipe started) must keep
/// being answered, or their system calls would fail once we exit: a detached process
/// answers them (recording nothing) until the last one is gone.
pub(crate) fn keep_answering(listeners: Vec<OwnedFd>) {
    let _ = trace::detach(listeners);
}
