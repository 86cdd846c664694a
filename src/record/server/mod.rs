//! The event loop: one thread reading the plugin's and the shims' messages and the
//! seccomp listeners, attributing every event to a command or a make.
//!
//! Its parts each own their state: [`socket`] the socket and its connections,
//! [`listeners`] the seccomp listeners and the supervisor, [`attribution`] which make,
//! command or process an event belongs to (make's own ring included), [`accesses`]
//! what each owner touched, [`jobs`] the makes' and commands' rows from their messages,
//! [`rows`] the batches for the writer. This module runs the loop and routes messages
//! and trace events between them.
//!
//! Traced processes are blocked until their notification is answered, so this thread
//! does nothing slow: rows go to the writer, output to the UI, both over channels.
//!
//! The ordering rule: messages on one connection are handled in the order they were
//! sent, and a message that depends on what other connections sent before it is handled
//! only after everything already sent has been read. Those are a make's start (its
//! parent's command must be known) and a make's end or its connection's close (all its
//! commands' messages must be in before the make is forgotten): make waits for its
//! commands, so every message they sent is in a socket by the time make says it ends,
//! but the loop may see make's socket before theirs (a connection accepted in a round is
//! read in the next). Such a message is set aside as a [`Deferred`] and handled once a
//! sweep of every connection has taken in what came before it ([`Server::settle`]).

mod accesses;
mod attribution;
mod jobs;
mod listeners;
mod rows;
mod socket;

use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::Result;

use self::accesses::Accesses;
use self::attribution::{Attribution, MakeRing};
use self::jobs::Commands;
use self::listeners::Listeners;
use self::rows::Rows;
pub(crate) use self::socket::Stopper;
use self::socket::{Reassembled, Role, Sockets};
use super::ui::Event as UiEvent;
use super::writer::Write;
use super::Setup;
use crate::protocol::{Message, ENV_TRACE_STATS};
use crate::record::ids::Ids;
use crate::store::{IdKind, NewProcess, Owner, ProcessExec};
use crate::trace::{self, Handled};

const RECEIVE_BUFFER: usize = 512 * 1024;
/// How often fast-path rings are drained when their commands are not trapping.
const RING_SWEEP: Duration = Duration::from_millis(50);
/// Records drained from one ring before the sweep looks for trapped calls to answer.
const SWEEP_SLICE: usize = 512;
/// How long to wait for stragglers once make has exited.
const DRAIN: Duration = Duration::from_secs(5);
/// How often the makes with jobs waiting to be known over are checked, at least
/// (jobs::jobs_over): the longest a job's line waits for its make's next line.
const JOBS_CHECK: Duration = Duration::from_millis(60);
/// The event loop's time slice: the kernel's minimum (its default is 3 ms).
const EVENT_LOOP_SLICE: Duration = Duration::from_micros(100);

/// Warnings given once a build.
#[derive(Default)]
struct Warned {
    trace_refused: bool,
    lost: bool,
}

pub(crate) struct Server {
    setup: Setup,
    ids: Ids,
    sockets: Sockets,
    /// Where messages are received; each is decoded in place, borrowed from it.
    buffer: Vec<u8>,
    listeners: Listeners,
    /// The supervisor's events, reused from call to call.
    trace_events: Vec<trace::Event>,
    make_ring: MakeRing,
    attribution: Attribution,
    accesses: Accesses,
    commands: Commands,
    rows: Rows,
    to_ui: Sender<UiEvent>,
    warned: Warned,
    /// Messages waiting for everything sent before them, in the order they came.
    deferred: Vec<Deferred>,
    /// When fast-path rings were last swept.
    swept: Instant,
}

/// A message handled only after every connection has been read up to the moment it
/// came (the module's ordering rule). Its connection is not read past it meanwhile.
enum Deferred {
    /// A make's start or end, copied out of the receive buffer.
    Message { fd: RawFd, bytes: Vec<u8> },
    /// A make's connection closed.
    Closed { fd: RawFd },
}

impl Deferred {
    fn fd(&self) -> RawFd {
        match *self {
            Deferred::Message { fd, .. } | Deferred::Closed { fd } => fd,
        }
    }
}

/// What one turn of the event loop saw.
enum Turn {
    /// Events, or none before the timeout.
    Served,
    /// The main thread asked the loop to finish (make has exited).
    StopAsked,
}

impl Server {
    pub fn bind(
        socket: &Path,
        setup: Setup,
        ids: Ids,
        to_writer: Sender<Write>,
        to_ui: Sender<UiEvent>,
    ) -> Result<Server> {
        let sockets = Sockets::bind(socket)?;
        let accesses = Accesses::new(setup.private_dir.clone(), setup.makedb_dir.clone());
        Ok(Server {
            setup,
            ids,
            sockets,
            buffer: vec![0; RECEIVE_BUFFER],
            listeners: Listeners::new(),
            trace_events: Vec::new(),
            make_ring: MakeRing::default(),
            attribution: Attribution::default(),
            accesses,
            commands: Commands::default(),
            rows: Rows::new(to_writer),
            to_ui,
            warned: Warned::default(),
            deferred: Vec::new(),
            swept: Instant::now(),
        })
    }

    /// make's own ring: what the fast path's helper records in make processes.
    pub fn set_make_ring(&mut self, ring: trace::Ring) {
        self.make_ring.set(ring);
    }

    pub fn stopper(&self) -> Stopper {
        self.sockets.stopper()
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
        let mut stopping: Option<Instant> = None;
        let mut jobs_checked = Instant::now();
        loop {
            let timeout = if stopping.is_some() || !self.listeners.is_empty() {
                50
            } else if self.commands.jobs_waiting() {
                JOBS_CHECK.as_millis() as i32
            } else {
                1000
            };
            match self.turn(timeout, &mut ready) {
                Ok(Turn::Served) => {}
                Ok(Turn::StopAsked) => {
                    stopping.get_or_insert_with(Instant::now);
                }
                Err(error) => {
                    self.warn(format!("event loop: {error}"));
                    break;
                }
            }
            if jobs_checked.elapsed() >= JOBS_CHECK {
                self.check_jobs();
                jobs_checked = Instant::now();
            }
            if let Some(since) = stopping {
                if self.drained() || since.elapsed() > DRAIN {
                    break;
                }
            }
        }
        if std::env::var_os(ENV_TRACE_STATS).is_some() {
            // For measurements (BENCHMARKS.md): what the tracer answered, by call.
            let counts: Vec<String> = self
                .listeners
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

    /// Wait up to `timeout_ms` for events and serve them: trapped calls first, then the
    /// fast-path rings when due, then the sockets; then whatever was deferred.
    fn turn(&mut self, timeout_ms: i32, ready: &mut Vec<(RawFd, i16)>) -> std::io::Result<Turn> {
        let mut turn = Turn::Served;
        if let Err(error) = self.sockets.wait(timeout_ms, ready) {
            if error.raw_os_error() == Some(libc::EINTR) {
                return Ok(turn);
            }
            return Err(error);
        }
        // Answer traced processes first: they are waiting. One notification per
        // listener and round: poll is level-triggered, so a listener with more comes
        // back at once, and no extra poll is made to find out.
        for &(fd, revents) in ready.iter() {
            if self.listeners.contains(fd) {
                self.on_notification(fd, revents);
            }
        }
        if self.swept.elapsed() >= RING_SWEEP {
            // Commands that make few trapped calls: their fast-path records would
            // otherwise wait in the ring until their next one (or fill it). Most
            // records come this way (a sweep takes ~a millisecond on glibc), so it
            // goes in slices, answering whoever trapped meanwhile in between.
            self.swept = Instant::now();
            self.drain_make_ring(false);
            let listeners = self.listeners.fds();
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
        for &(fd, _) in ready.iter() {
            if self.sockets.is_listen(fd) {
                self.sockets.accept();
            } else if self.sockets.is_wake(fd) {
                self.sockets.drain_wake();
                turn = Turn::StopAsked;
            } else if self.sockets.is_connection(fd) {
                self.on_readable(fd);
            }
        }
        self.settle();
        self.serial_jobs_over();
        self.rows.send_if_due();
        Ok(turn)
    }

    /// Every client has gone: no connection open, none waiting to be accepted, nothing
    /// deferred. (Clients connect before they send, and all of them are make's
    /// descendants: once make has exited, a connection still open is a straggler.)
    fn drained(&mut self) -> bool {
        self.sockets.accept();
        !self.sockets.has_connections() && self.deferred.is_empty()
    }

    /// Handle the deferred messages (the module's ordering rule): first take in every
    /// connection waiting to be accepted and every message already sent on the others,
    /// then handle the messages deferred before that sweep, in the order they came. A
    /// sweep may defer more; they wait for the next sweep.
    fn settle(&mut self) {
        while !self.deferred.is_empty() {
            let due = self.deferred.len();
            self.sockets.accept();
            for fd in self.sockets.connection_fds() {
                self.on_readable(fd);
            }
            let due: Vec<Deferred> = self.deferred.drain(..due).collect();
            for deferred in due {
                match deferred {
                    Deferred::Message { fd, bytes } => match Message::decode(&bytes) {
                        Ok(message) => self.on_message(fd, message, Vec::new()),
                        Err(error) => self.warn(format!("an unreadable message: {error}")),
                    },
                    Deferred::Closed { fd } => self.on_closed(fd),
                }
            }
        }
    }

    /// Is connection `fd` held at a deferred message (and so not to be read further)?
    fn is_held(&self, fd: RawFd) -> bool {
        self.deferred.iter().any(|d| d.fd() == fd)
    }

    /// Read every message waiting on connection `fd`.
    fn on_readable(&mut self, fd: RawFd) {
        let mut buffer = std::mem::take(&mut self.buffer);
        self.receive_all(fd, &mut buffer);
        self.buffer = buffer;
    }

    fn receive_all(&mut self, fd: RawFd, buffer: &mut [u8]) {
        if self.is_held(fd) {
            return;
        }
        loop {
            let received = match Sockets::receive(fd, buffer) {
                Ok(received) => received,
                Err(error) => match error.raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    // The client closed with something of ours unread (an ack): the
                    // kernel says so once, before the messages it had sent.
                    Some(libc::EINTR | libc::ECONNRESET) => continue,
                    _ => return self.on_hangup(fd),
                },
            };
            if received.len == 0 {
                return self.on_hangup(fd);
            }
            if received.truncated {
                self.warn("a message from make or a shim was too large and was cut; some facts are missing".into());
            }
            let mut bytes = &buffer[..received.len];
            let whole: Vec<u8>;
            let mut message = Message::decode(bytes);
            if let Ok(Message::Part { piece, last }) = message {
                match self.sockets.reassemble(fd, piece, last) {
                    Reassembled::Waiting => continue,
                    Reassembled::TooLarge => {
                        self.warn(format!(
                            "a message from make or a shim was larger than {} MiB and was dropped; some facts are missing",
                            socket::LARGEST_MESSAGE >> 20
                        ));
                        continue;
                    }
                    Reassembled::Whole(put_together) => {
                        whole = put_together;
                        bytes = &whole;
                        message = Message::decode(bytes);
                    }
                }
            }
            match message {
                Ok(Message::MakeStart(_) | Message::MakeEnd(_)) => {
                    self.deferred.push(Deferred::Message {
                        fd,
                        bytes: bytes.to_vec(),
                    });
                    return;
                }
                Ok(message) => self.on_message(fd, message, received.fds),
                Err(error) => self.warn(format!("an unreadable message: {error}")),
            }
        }
    }

    /// The command whose shim is on connection `fd`.
    fn command_on(&self, fd: RawFd) -> Option<i64> {
        match self.sockets.role(fd) {
            Some(&Role::Command(id)) => Some(id),
            _ => None,
        }
    }

    fn on_message(&mut self, fd: RawFd, message: Message<'_>, passed: Vec<OwnedFd>) {
        match message {
            Message::MakeStart(m) => self.on_make_start(fd, &m),
            Message::MakeEnd(m) => {
                if let Some(&Role::Make { id, pid }) = self.sockets.role(fd) {
                    self.on_make_end(id, pid, &m);
                }
            }
            Message::CommandStart(m) => self.on_command_start(fd, &m),
            Message::Output(m) => {
                if let Some(id) = self.command_on(fd) {
                    self.on_output(id, &m);
                }
            }
            Message::CommandEnd(m) => {
                if let Some(id) = self.command_on(fd) {
                    self.on_command_end(id, &m);
                }
            }
            Message::Listener(_) => {
                let mut passed = passed.into_iter();
                let Some(listener) = passed.next() else {
                    return;
                };
                let ring = passed.next();
                if let Some(id) = self.command_on(fd) {
                    self.on_listener(id, listener, ring);
                }
            }
            Message::SubMake => {
                if let Some(id) = self.command_on(fd) {
                    self.on_sub_make(id);
                }
            }
            Message::TraceRefused(m) => {
                if !self.warned.trace_refused {
                    self.warned.trace_refused = true;
                    let reason = String::from_utf8_lossy(m.reason);
                    self.warn(format!(
                        "a command could not be traced ({reason}); the record marks it untraced"
                    ));
                }
            }
            Message::Part { .. } | Message::Ack => {}
        }
    }

    /// The client on `fd` has gone (everything it sent has been read): a make's
    /// connection is closed by the ordering rule, any other at once.
    fn on_hangup(&mut self, fd: RawFd) {
        match self.sockets.role(fd) {
            Some(Role::Make { .. }) => self.deferred.push(Deferred::Closed { fd }),
            _ => self.on_closed(fd),
        }
    }

    fn on_closed(&mut self, fd: RawFd) {
        let Some(connection) = self.sockets.close(fd) else {
            return;
        };
        match connection.role {
            Role::Make { id, pid } => self.attribution.make_gone(pid, id),
            Role::Command(id) => self.command_lost(id),
            Role::Unknown => {}
        }
        connection.close();
    }

    /// Serve listener `fd` as the event loop found it (`revents` in poll(2) terms; 0:
    /// only drain its ring): at most one notification answered.
    fn on_notification(&mut self, fd: RawFd, revents: i16) {
        let mut events = std::mem::take(&mut self.trace_events);
        let handled = self.listeners.handle_ready(fd, revents, &mut events);
        if let Some((top, _)) = handled {
            for event in events.drain(..) {
                self.on_trace(event, top);
            }
        }
        self.trace_events = events;
        match handled {
            None | Some((_, Ok(Handled::Answered | Handled::Idle))) => {}
            Some((_, Ok(Handled::Hangup))) => self.drop_listener(fd),
            Some((_, Err(error))) => {
                self.warn(format!("tracing stopped for a command: {error}"));
                self.drop_listener(fd);
            }
        }
    }

    fn drop_listener(&mut self, fd: RawFd) {
        self.sockets.unwatch_listener(fd);
        self.listeners.remove(fd);
    }

    /// Drain a slice of `fd`'s fast-path ring without waiting for a notification;
    /// returns whether more may be ready.
    fn on_ring(&mut self, fd: RawFd) -> bool {
        let mut events = std::mem::take(&mut self.trace_events);
        let drained = self.listeners.drain_some(fd, SWEEP_SLICE, &mut events);
        if let Some((top, _)) = drained {
            for event in events.drain(..) {
                self.on_trace(event, top);
            }
        }
        self.trace_events = events;
        drained.is_some_and(|(_, more)| more)
    }

    /// Answer the notifications already waiting, without sleeping (one per listener).
    fn answer_waiting(&mut self) {
        for (fd, revents) in self.sockets.waiting_listeners() {
            self.on_notification(fd, revents);
        }
    }

    /// Attribute one of the supervisor's events (`top`: the command of the listener it
    /// came through).
    fn on_trace(&mut self, event: trace::Event, top: i64) {
        match event {
            trace::Event::Process { pid, ppid, time_ns } => {
                let id = self.ids.next(IdKind::Process);
                let owner = self.attribution.process_started(pid, ppid, top, id);
                let (command_id, make_id) = split_owner(owner);
                self.rows.write_process(NewProcess {
                    id,
                    build_id: self.setup.build_id,
                    command_id,
                    make_id,
                    pid,
                    parent_pid: Some(ppid),
                    started_ns: time_ns,
                    exec: None,
                    end: None,
                });
            }
            trace::Event::Access {
                pid,
                path,
                kind,
                time_ns,
            } => {
                if self.accesses.is_private(self.listeners.paths(), path) {
                    return; // makescope's own files (the fast path's helper, the socket)
                }
                let owner = self
                    .attribution
                    .owner_of(pid)
                    .unwrap_or(Owner::Command(top));
                let attribution = &self.attribution;
                self.accesses
                    .touch(owner, || attribution.process_id(pid), path, kind, time_ns);
            }
            trace::Event::Exec {
                pid,
                path,
                argv,
                cwd,
                ..
            } => {
                if let Some(id) = self.attribution.process_id(pid) {
                    let exec = ProcessExec {
                        exe: path,
                        argv: crate::util::join_nul(&argv),
                        cwd,
                    };
                    match self.rows.unsent_process(id) {
                        Some(p) => p.exec = Some(exec),
                        None => self.rows.write(Write::ProcessExec { id, exec }),
                    }
                }
            }
            trace::Event::Exit { pid, code, time_ns } => {
                self.process_gone(pid, time_ns, Some(code))
            }
            trace::Event::Gone { pid, time_ns } => self.process_gone(pid, time_ns, None),
            trace::Event::Lost { pid, syscall, .. } => {
                // We saw the call but could not read it: the command's files are incomplete.
                if let Some(Owner::Command(id)) = self.attribution.owner_of(pid) {
                    self.commands.mark_incomplete(id);
                }
                if !self.warned.lost {
                    self.warned.lost = true;
                    self.warn(format!("could not read the arguments of a {syscall} call; that command is marked untraced"));
                }
            }
        }
    }

    fn process_gone(&mut self, pid: i32, time_ns: i64, exit_code: Option<i32>) {
        if let Some(id) = self.attribution.process_gone(pid) {
            match self.rows.unsent_process(id) {
                Some(p) => p.end = Some((time_ns, exit_code)),
                None => self.rows.write(Write::ProcessEnd {
                    id,
                    ended_ns: time_ns,
                    exit_code,
                }),
            }
        }
    }

    /// Take make's own file activity from its ring (see [`MakeRing::drain`]).
    fn drain_make_ring(&mut self, last: bool) {
        if let Some(warning) = self.make_ring.drain(
            last,
            self.listeners.paths_mut(),
            &mut self.attribution,
            &mut self.accesses,
        ) {
            self.warn(warning);
        }
    }

    /// Send an owner's accesses to the writer; with hooks loaded, also return what it
    /// read and wrote, for them.
    fn flush_accesses(&mut self, owner: Owner) -> Option<crate::hooks::Files> {
        self.accesses.flush(
            owner,
            self.listeners.paths(),
            self.setup.build_id,
            self.setup.hooks.is_some(),
            &mut self.rows,
        )
    }

    fn finish(mut self) -> Vec<OwnedFd> {
        self.drain_make_ring(true);
        // Stragglers (see `DRAIN`): what they already sent is theirs; then they are lost.
        self.sockets.accept();
        for fd in self.sockets.connection_fds() {
            self.on_readable(fd);
        }
        self.settle();
        for fd in self.sockets.connection_fds() {
            self.on_closed(fd);
        }
        for owner in self.accesses.owners() {
            self.flush_accesses(owner);
        }
        self.rows.write(Write::IdsUsed(self.ids.used()));
        self.rows.send();
        self.listeners.into_fds()
    }

    fn warn(&self, text: String) {
        let _ = self.to_ui.send(UiEvent::Warning(text));
    }
}

fn split_owner(owner: Owner) -> (Option<i64>, Option<i64>) {
    match owner {
        Owner::Command(id) => (Some(id), None),
        Owner::Make(id) => (None, Some(id)),
    }
}

/// Listeners whose processes outlived the build (daemons a recipe started) must keep
/// being answered, or their system calls would fail once we exit: a detached process
/// answers them (recording nothing) until the last one is gone.
pub(crate) fn keep_answering(listeners: Vec<OwnedFd>) {
    let _ = trace::detach(listeners);
}
