//! The seccomp listeners the shims' children passed, each with its command, and the
//! supervisor that serves them (with the fast path's rings that came along).
//!
//! It answers trapped calls and turns rings into events; it never attributes an event:
//! the caller does, with the command each call here names.

use rustc_hash::FxHashMap as HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use crate::trace::{self, Handled, PathTable, Supervisor, TraceError};

pub(super) struct Listeners {
    /// Each listener, by descriptor, and the command whose child passed it.
    by_fd: HashMap<RawFd, (OwnedFd, i64)>,
    supervisor: Supervisor,
}

impl Listeners {
    pub fn new() -> Listeners {
        Listeners {
            by_fd: HashMap::default(),
            supervisor: Supervisor::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_fd.is_empty()
    }

    pub fn fds(&self) -> Vec<RawFd> {
        self.by_fd.keys().copied().collect()
    }

    pub fn contains(&self, fd: RawFd) -> bool {
        self.by_fd.contains_key(&fd)
    }

    /// Serve `command`'s listener from now on, with its fast path's ring if it sent one.
    /// An error says the ring is unusable (the listener is served all the same).
    pub fn add(
        &mut self,
        listener: OwnedFd,
        ring: Option<OwnedFd>,
        command: i64,
    ) -> io::Result<()> {
        let attached = match ring.map(trace::Ring::from_fd) {
            Some(Ok(ring)) => {
                self.supervisor.attach_ring(listener.as_fd(), ring);
                Ok(())
            }
            Some(Err(error)) => Err(error),
            None => Ok(()),
        };
        self.by_fd.insert(listener.as_raw_fd(), (listener, command));
        attached
    }

    /// Stop serving a listener (it closes).
    pub fn remove(&mut self, fd: RawFd) {
        self.by_fd.remove(&fd);
    }

    /// Serve listener `fd` as the event loop found it (`revents` in poll(2) terms; 0:
    /// only drain its ring): at most one notification answered. Its command, and how it
    /// went; `None` if `fd` is not a listener.
    pub fn handle_ready(
        &mut self,
        fd: RawFd,
        revents: i16,
        events: &mut Vec<trace::Event>,
    ) -> Option<(i64, Result<Handled, TraceError>)> {
        let (listener, command) = self.by_fd.get(&fd)?;
        let handled = self
            .supervisor
            .handle_ready(listener.as_fd(), revents, events);
        Some((*command, handled))
    }

    /// Drain up to `limit` records of listener `fd`'s ring without waiting for a
    /// notification. Its command, and whether more may be ready.
    pub fn drain_some(
        &mut self,
        fd: RawFd,
        limit: usize,
        events: &mut Vec<trace::Event>,
    ) -> Option<(i64, bool)> {
        let (listener, command) = self.by_fd.get(&fd)?;
        let more = self.supervisor.drain_some(listener.as_fd(), limit, events);
        Some((*command, more))
    }

    pub fn paths(&self) -> &PathTable {
        self.supervisor.paths()
    }

    pub fn paths_mut(&mut self) -> &mut PathTable {
        self.supervisor.paths_mut()
    }

    /// What the supervisor answered, by call.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        self.supervisor.counts()
    }

    /// The listeners still open.
    pub fn into_fds(self) -> Vec<OwnedFd> {
        self.by_fd.into_values().map(|(fd, _)| fd).collect()
    }
}
