//! The recorder's socket: listening, the connections of make processes and shims (and
//! what each one turned out to be), receiving their messages with any descriptors
//! passed along, and the one wait the event loop makes on them and on the seccomp
//! listeners.
//!
//! It owns descriptors and makes system calls, and puts back together a message sent in
//! parts; it never reads a message's fields.

use rustc_hash::FxHashMap as HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Result};

use crate::protocol::Kind;
use crate::trace::sys;

/// Asks the event loop to finish once make has exited.
pub(crate) struct Stopper(RawFd);

impl Stopper {
    pub fn stop(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to the wake-up eventfd, which the server
        // keeps open until the event loop has ended (and the event loop ends only after
        // reading this).
        unsafe { libc::write(self.0, (&one as *const u64).cast(), 8) };
    }
}

/// Who is on the other end of a connection, once its first message said.
pub(super) enum Role {
    Unknown,
    Make { id: i64, pid: i32 },
    Command(i64),
}

pub(super) struct Connection {
    fd: OwnedFd,
    pub role: Role,
    /// The pieces so far of a message sent in parts ([`Kind::Part`]).
    parts: Vec<u8>,
    /// The message being put together went past [`LARGEST_MESSAGE`]: its pieces are
    /// dropped up to its last.
    too_large: bool,
}

/// The most a message sent in parts may hold: what execve takes (a quarter of an 8 MiB
/// stack limit, at most 6 MiB) with room to spare.
pub(super) const LARGEST_MESSAGE: usize = 16 << 20;

/// What a piece of a message sent in parts completed.
pub(super) enum Reassembled {
    /// More pieces are to come.
    Waiting,
    /// The whole message.
    Whole(Vec<u8>),
    /// The last piece of a message longer than [`LARGEST_MESSAGE`], which was dropped.
    TooLarge,
}

/// The listening socket, the connections, and the poll set.
pub(super) struct Sockets {
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
    /// epoll_wait's output, reused.
    epoll_events: Vec<libc::epoll_event>,
}

fn check(result: libc::c_int, what: &str) -> Result<libc::c_int> {
    if result < 0 {
        bail!("{what}: {}", io::Error::last_os_error());
    }
    Ok(result)
}

impl Sockets {
    /// Listen at `socket`.
    pub fn bind(socket: &Path) -> Result<Sockets> {
        // SAFETY: socket(2) takes no pointers; the descriptor it returns is new and ours.
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
        // SAFETY: sockaddr_un is plain data; all zeroes is a valid (empty) address.
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
            // SAFETY: `addr` is a live sockaddr_un of the length passed.
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
            // SAFETY: no pointers.
            unsafe { libc::listen(listen.as_raw_fd(), 1024) },
            "listening on the recorder's socket",
        )?;
        // SAFETY: no pointers; the descriptor returned is new and ours.
        let epoll = unsafe {
            OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC), "epoll")?)
        };
        // SAFETY: no pointers; the descriptor returned is new and ours.
        let wake = unsafe {
            OwnedFd::from_raw_fd(check(
                libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK),
                "eventfd",
            )?)
        };
        let sockets = Sockets {
            pollfds: vec![libc::pollfd {
                fd: epoll.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }],
            epoll,
            listen,
            wake,
            connections: HashMap::default(),
            epoll_events: vec![libc::epoll_event { events: 0, u64: 0 }; 128],
        };
        sockets.watch(sockets.listen.as_raw_fd())?;
        sockets.watch(sockets.wake.as_raw_fd())?;
        Ok(sockets)
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
            // SAFETY: `event` is live for the call; `fd` is open (the caller owns it).
            unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) },
            "epoll_ctl",
        )?;
        Ok(())
    }

    fn unwatch(&self, fd: RawFd) {
        // SAFETY: EPOLL_CTL_DEL takes no event; a descriptor that is not watched is an
        // error we need not hear about.
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    /// Wait on a seccomp listener as well.
    pub fn watch_listener(&mut self, fd: RawFd) {
        self.pollfds.push(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
    }

    pub fn unwatch_listener(&mut self, fd: RawFd) {
        self.pollfds.retain(|p| p.fd != fd);
    }

    /// Wait up to `timeout_ms` for anything, then fill `ready` with what is ready (in
    /// poll(2)'s terms): listeners first, as poll found them, then the sockets epoll
    /// holds. Fails with `EINTR` when a signal came first.
    pub fn wait(&mut self, timeout_ms: i32, ready: &mut Vec<(RawFd, i16)>) -> io::Result<()> {
        // SAFETY: `pollfds` is a live array of as many pollfd as passed.
        let n = unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                timeout_ms,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
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
            // SAFETY: `epoll_events` is a live array of as many events as passed.
            let n = unsafe {
                libc::epoll_wait(
                    epoll,
                    self.epoll_events.as_mut_ptr(),
                    self.epoll_events.len() as i32,
                    0,
                )
            };
            for e in &self.epoll_events[..n.max(0) as usize] {
                // EPOLLIN/HUP/ERR have poll(2)'s values.
                ready.push((e.u64 as RawFd, e.events as i16));
            }
        }
        Ok(())
    }

    /// The listeners with a notification waiting now, without sleeping.
    pub fn waiting_listeners(&mut self) -> Vec<(RawFd, i16)> {
        // SAFETY: `pollfds` is a live array of as many pollfd as passed.
        let n = unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                0,
            )
        };
        if n <= 0 {
            return Vec::new();
        }
        let epoll = self.epoll.as_raw_fd();
        self.pollfds
            .iter()
            .filter(|p| p.revents & libc::POLLIN != 0 && p.fd != epoll)
            .map(|p| (p.fd, p.revents))
            .collect()
    }

    pub fn is_listen(&self, fd: RawFd) -> bool {
        fd == self.listen.as_raw_fd()
    }

    pub fn is_wake(&self, fd: RawFd) -> bool {
        fd == self.wake.as_raw_fd()
    }

    /// Take the wake-up eventfd's count (it is only a signal).
    pub fn drain_wake(&self) {
        let mut count = 0u64;
        // SAFETY: reads at most 8 bytes into a live u64.
        unsafe { libc::read(self.wake.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }

    /// Accept every waiting connection.
    pub fn accept(&mut self) {
        loop {
            // SAFETY: no address is asked for (null pointers); the descriptor returned is
            // new and ours.
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
            // SAFETY: accept4 just returned it: open, and nobody else's.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            if self.watch(fd.as_raw_fd()).is_ok() {
                self.connections.insert(
                    fd.as_raw_fd(),
                    Connection {
                        fd,
                        role: Role::Unknown,
                        parts: Vec::new(),
                        too_large: false,
                    },
                );
            }
        }
    }

    pub fn is_connection(&self, fd: RawFd) -> bool {
        self.connections.contains_key(&fd)
    }

    pub fn has_connections(&self) -> bool {
        !self.connections.is_empty()
    }

    pub fn connection_fds(&self) -> Vec<RawFd> {
        self.connections.keys().copied().collect()
    }

    pub fn role(&self, fd: RawFd) -> Option<&Role> {
        self.connections.get(&fd).map(|c| &c.role)
    }

    pub fn set_role(&mut self, fd: RawFd, role: Role) {
        if let Some(connection) = self.connections.get_mut(&fd) {
            connection.role = role;
        }
    }

    /// Add a piece of a message sent in parts on connection `fd` (`last`: its last).
    pub fn reassemble(&mut self, fd: RawFd, piece: &[u8], last: bool) -> Reassembled {
        let Some(c) = self.connections.get_mut(&fd) else {
            return Reassembled::Waiting;
        };
        if !c.too_large && c.parts.len() + piece.len() > LARGEST_MESSAGE {
            c.too_large = true;
            c.parts = Vec::new();
        }
        if !c.too_large {
            c.parts.extend_from_slice(piece);
        }
        match (last, c.too_large) {
            (false, _) => Reassembled::Waiting,
            (true, false) => Reassembled::Whole(std::mem::take(&mut c.parts)),
            (true, true) => {
                c.too_large = false;
                Reassembled::TooLarge
            }
        }
    }

    /// Stop watching a connection and take it (its descriptor closes when it is dropped).
    pub fn close(&mut self, fd: RawFd) -> Option<Connection> {
        self.unwatch(fd);
        self.connections.remove(&fd)
    }

    /// Receive one message from connection `fd` without waiting.
    pub fn receive(fd: RawFd, buffer: &mut [u8]) -> io::Result<sys::Received> {
        sys::recv_with_fds(fd, buffer, libc::MSG_DONTWAIT)
    }

    /// Tell a client to go on.
    pub fn ack(fd: RawFd) {
        let byte = [Kind::Ack as u8];
        // SAFETY: sends one byte from a live array; a client that is gone is not an error
        // we act on.
        unsafe {
            libc::send(
                fd,
                byte.as_ptr().cast(),
                1,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
    }
}

impl Connection {
    /// Close the connection.
    pub fn close(self) {
        drop(self.fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// Close our copy of a client's end and wait until the kernel has let go of it. Another
    /// test's child, between its fork and its exec, may hold a copy a little longer.
    fn hang_up(theirs: OwnedFd, ours: &OwnedFd) {
        drop(theirs);
        let mut hangup = libc::pollfd {
            fd: ours.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: `hangup` is one live pollfd, as passed.
        let ready = unsafe { libc::poll(&mut hangup, 1, 60_000) };
        assert_eq!(ready, 1, "the client's end was not released");
    }

    #[test]
    fn messages_arrive_with_their_descriptors_and_cut_ones_say_so() {
        let (ours, theirs) = crate::trace::seqpacket_pair().unwrap();
        let passed = std::fs::File::open("/dev/null").unwrap();
        crate::trace::send_fd(theirs.as_raw_fd(), passed.as_raw_fd()).unwrap();
        let mut buffer = [0u8; 16];
        let received = Sockets::receive(ours.as_raw_fd(), &mut buffer).unwrap();
        assert_eq!((received.len, received.truncated), (1, false));
        assert_eq!(received.fds.len(), 1);
        assert_ne!(received.fds[0].as_raw_fd(), passed.as_raw_fd());

        // SAFETY: sends 32 bytes from a live array on an open socket.
        let sent = unsafe { libc::send(theirs.as_raw_fd(), [7u8; 32].as_ptr().cast(), 32, 0) };
        assert_eq!(sent, 32);
        let received = Sockets::receive(ours.as_raw_fd(), &mut buffer).unwrap();
        assert!(received.truncated);
        assert!(received.fds.is_empty());

        let error = Sockets::receive(ours.as_raw_fd(), &mut buffer).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EAGAIN));
        hang_up(theirs, &ours);
        let received = Sockets::receive(ours.as_raw_fd(), &mut buffer).unwrap();
        assert_eq!(received.len, 0);
    }

    /// A client that exits with our ack unread: the kernel reports `ECONNRESET` once,
    /// before the messages it sent, which are all still there (the event loop reads on).
    #[test]
    fn a_client_gone_with_an_ack_unread_still_has_its_messages_read() {
        let (ours, theirs) = crate::trace::seqpacket_pair().unwrap();
        Sockets::ack(ours.as_raw_fd());
        // SAFETY: sends 3 bytes from a live array on an open socket.
        let sent = unsafe { libc::send(theirs.as_raw_fd(), b"end".as_ptr().cast(), 3, 0) };
        assert_eq!(sent, 3);
        hang_up(theirs, &ours);
        let mut buffer = [0u8; 16];
        let error = Sockets::receive(ours.as_raw_fd(), &mut buffer).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ECONNRESET));
        let received = Sockets::receive(ours.as_raw_fd(), &mut buffer).unwrap();
        assert_eq!(&buffer[..received.len], b"end");
        let received = Sockets::receive(ours.as_raw_fd(), &mut buffer).unwrap();
        assert_eq!(received.len, 0);
    }
}
