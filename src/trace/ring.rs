//! The fast path's shared-memory ring: a memfd that the preload helper
//! (`preload.c`) in every process of one command appends records to, and the supervisor
//! drains. Layout mirrored in `src/trace/ring.h` (the C sides): change both or neither.
//!
//! One header page (`head`: the next unit, reserved by producers with compare-and-swap;
//! `nunits`; `tail`: the next unit the supervisor reads, which it advances; `magic`;
//! for make's ring, `lost`: calls not recorded, `closed`: set when the build is over, and
//! `stalled`: set by a producer that waited 2 s for room without the tail moving;
//! `cwd_epoch`: bumped by the supervisor before it lets any process of the command change
//! directory, so that the helper knows when a cached working directory may be stale),
//! then `nunits` units of 64 bytes, unit `n` at `n % nunits`. A record takes whole units:
//! `ready` (u32, set last with release by the producer; the consumer zeroes the first word
//! of every unit it consumes), `kind` (u16, an [`AccessKind`] id, or `PAD`), `len` (u16,
//! written first), `pid`, `ppid` (i32), `time_ns` (i64), then the path (absolute, not
//! normalised; `len` bytes). A record never straddles the end: a producer that would
//! wrap reserves the rest of the area as one `PAD` record (its `len` counts units). A
//! producer that finds no room makes its call the trapped way: a full ring costs speed,
//! never records. The memfd is sealed against shrinking (a process that truncated it
//! would otherwise crash the recorder reading it) and carries `MAGIC`, so the helper
//! never mistakes another file that took its descriptor number for it.
//!
//! The shim creates the ring in C (`make_ring` in `src/trace/fastpath.h`, which the shim
//! includes) the same way [`Ring::new`] does, and the recorder maps it with
//! [`Ring::from_fd`].

use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::sys;
use super::AccessKind;

/// The ring's allocation unit: a record takes one or more.
pub const UNIT: usize = 64;
const HEADER: usize = 4096;
const PATH_AT: usize = 24;
const PAD: u16 = 0xffff;
/// The header's fourth word: "KMSRING2" read as a little-endian u64.
pub const MAGIC: u64 = 0x3247_4e49_5253_4d4b;

/// The start of the header page: `struct ring_header` of `ring.h`, word for word. Every
/// field is atomic because the producers (other processes) share the page.
#[repr(C)]
struct Header {
    /// The next unit to reserve (producers, compare-and-swap), counting from 0 forever.
    head: AtomicU64,
    /// Units after the header page (written once, before any producer runs).
    nunits: AtomicU64,
    /// The next unit the supervisor reads (only it advances it).
    tail: AtomicU64,
    /// [`MAGIC`].
    magic: AtomicU64,
    /// Calls not recorded where nothing traps them (make's ring).
    lost: AtomicU64,
    /// 1 once nothing reads the ring any more.
    closed: AtomicU64,
    /// Make's ring: set by a producer that waited 2 s for room.
    stalled: AtomicU64,
    /// Bumped before any process of the command may change directory.
    cwd_epoch: AtomicU64,
}

// The layout `ring.h` declares: eight u64 words from the start of the page.
const _: () = {
    assert!(size_of::<Header>() == 64 && size_of::<Header>() <= HEADER);
    assert!(offset_of!(Header, head) == 0);
    assert!(offset_of!(Header, nunits) == 8);
    assert!(offset_of!(Header, tail) == 16);
    assert!(offset_of!(Header, magic) == 24);
    assert!(offset_of!(Header, lost) == 32);
    assert!(offset_of!(Header, closed) == 40);
    assert!(offset_of!(Header, stalled) == 48);
    assert!(offset_of!(Header, cwd_epoch) == 56);
};

/// A record's header: `struct ring_record` of `ring.h`; its path follows. Records are
/// decoded from their bytes at these offsets (only `ready` is read atomically).
#[repr(C)]
#[allow(dead_code)] // a layout: fields are read through `offset_of!`
struct RecordHeader {
    ready: AtomicU32,
    kind: u16,
    len: u16,
    pid: i32,
    ppid: i32,
    time_ns: i64,
}

const _: () = {
    assert!(size_of::<RecordHeader>() == PATH_AT);
    assert!(offset_of!(RecordHeader, ready) == 0);
    assert!(offset_of!(RecordHeader, kind) == 4);
    assert!(offset_of!(RecordHeader, len) == 6);
    assert!(offset_of!(RecordHeader, pid) == 8);
    assert!(offset_of!(RecordHeader, ppid) == 12);
    assert!(offset_of!(RecordHeader, time_ns) == 16);
};

/// The part of the header [`Ring::new`] writes and [`Ring::from_fd`] checks.
const HEADER_CHECKED: usize = offset_of!(Header, magic) + 8;

/// The address of the fast path's trusted code page, agreed between the filter
/// ([`super::FilterOptions::trusted_page`]) and the helper (`MAKESCOPE_TRACE_PAGE`).
pub const FAST_PATH_PAGE: u64 = 0x100_0000_0000;

/// One record read from the ring, borrowed from its slot for the time of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingRecord<'a> {
    /// The process (getpid in the helper).
    pub pid: i32,
    /// Its parent when it wrote the record.
    pub ppid: i32,
    /// What happened, from the call's actual result.
    pub kind: RingKind,
    /// Absolute, not normalised (empty for an exit).
    pub path: &'a [u8],
    /// When.
    pub time_ns: i64,
}

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingKind {
    /// An access of the record's path.
    Access(AccessKind),
    /// The process called `exit_group` with this status (its low 8 bits are the exit
    /// code); the helper writes it just before the call, made through the trusted page.
    Exit(i32),
}

/// `kind` of an exit record (not an [`AccessKind`] id); its 4 path bytes are the status.
const EXIT: u16 = 0x100;

/// A command's ring: create it before starting the command, give its fd to the command
/// (without close-on-exec, number in `MAKESCOPE_TRACE_RING`), attach it to the
/// supervisor with the command's listener.
pub struct Ring {
    fd: OwnedFd,
    /// The whole memfd, mapped shared; page-aligned.
    map: NonNull<u8>,
    size: usize,
    nunits: u64,
    tail: u64,
}

// SAFETY: the mapping is owned by the Ring (unmapped on drop) and only reached through
// it; what other processes write into it is read through atomics.
unsafe impl Send for Ring {}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("nunits", &self.nunits)
            .field("tail", &self.tail)
            .finish()
    }
}

impl Ring {
    /// A ring of `nunits` 64-byte units (a record takes one to sixteen; memory is only
    /// used as records arrive).
    pub fn new(nunits: u64) -> io::Result<Ring> {
        let fd = sys::memfd_create(
            c"makescope-ring",
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )?;
        let size = HEADER + nunits as usize * UNIT;
        let raw = fd.as_raw_fd();
        sys::ftruncate(raw, size as u64)?;
        let mut header = [0u8; HEADER_CHECKED];
        let word = |field: usize| field..field + 8;
        header[word(offset_of!(Header, nunits))].copy_from_slice(&nunits.to_le_bytes());
        header[word(offset_of!(Header, magic))].copy_from_slice(&MAGIC.to_le_bytes());
        if sys::pwrite(raw, &header, 0)? != HEADER_CHECKED {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        sys::add_seals(raw, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW)?;
        Self::map(fd, size, nunits)
    }

    /// Map a ring made by someone else (the shim): checks that it is a memfd sealed
    /// against shrinking, large enough for the units its header announces, with the magic.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Ring> {
        let raw = fd.as_raw_fd();
        let invalid = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a fast-path ring: {what}"),
            )
        };
        if !sys::seals(raw).is_ok_and(|seals| seals & libc::F_SEAL_SHRINK != 0) {
            return Err(invalid("not sealed against shrinking"));
        }
        let file_size = sys::file_size(raw)?;
        let mut header = [0u8; HEADER_CHECKED];
        if !sys::pread(raw, &mut header, 0).is_ok_and(|n| n == HEADER_CHECKED) {
            return Err(invalid("short header"));
        }
        let word = |field: usize| u64::from_le_bytes(header[field..field + 8].try_into().unwrap());
        let nunits = word(offset_of!(Header, nunits));
        if word(offset_of!(Header, magic)) != MAGIC
            || word(offset_of!(Header, tail)) != 0
            || nunits == 0
            || nunits > 1 << 24
        {
            return Err(invalid("bad header"));
        }
        let size = HEADER + nunits as usize * UNIT;
        if file_size < size as u64 {
            return Err(invalid("smaller than its units"));
        }
        Self::map(fd, size, nunits)
    }

    fn map(fd: OwnedFd, size: usize, nunits: u64) -> io::Result<Ring> {
        let map = sys::mmap_shared(fd.as_raw_fd(), size)?;
        Ok(Ring {
            fd,
            map,
            size,
            nunits,
            tail: 0,
        })
    }

    /// The header page's words.
    fn header(&self) -> &Header {
        // SAFETY: the mapping is page-aligned (so aligned for `Header`), at least
        // `HEADER` bytes long, and lives as long as `self`; `Header` is all atomics, so
        // the producers' concurrent writes are not data races.
        unsafe { self.map.cast::<Header>().as_ref() }
    }

    /// The memfd to hand to the command.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// How many calls the helper could not record where no filter traps them instead
    /// (make's ring: a path too long, a ring that stayed full).
    pub fn lost(&self) -> u64 {
        self.header().lost.load(Ordering::Relaxed)
    }

    /// Tell the producers that nothing reads the ring any more (the build is over): a
    /// process that outlives it (a daemon started from make's `$(shell …)`) then stops
    /// waiting for room in make's ring, where it would otherwise wait up to ~10 s a call
    /// once the ring is full.
    pub fn close(&self) {
        self.header().closed.store(1, Ordering::Release);
    }

    /// Tell the helpers that a process of the command is about to change directory: each
    /// caches its working directory (one `getcwd` fewer per relative path, ~5,800 of
    /// them in a glibc compile) only while this epoch stays what it was when it looked.
    /// Called before the trapped chdir/fchdir is let run, so the process that changes
    /// directory sees the new epoch as soon as its call returns.
    pub fn bump_cwd_epoch(&self) {
        self.header().cwd_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// How far the producers have reserved (in units, counting from 0 forever).
    pub fn reserved(&self) -> u64 {
        self.header().head.load(Ordering::Acquire)
    }

    /// How far [`Ring::drain`] has read (in the same units).
    pub fn consumed(&self) -> u64 {
        self.tail
    }

    /// Call `f` for each complete record not seen yet, in order, at most `limit` of
    /// them; returns whether it stopped at the limit (more may be ready). Stops at the
    /// first record still being written (a later call continues there), unless
    /// `final_drain`: then every producer is gone and such a record (its writer died) is
    /// stepped over. The producers are the traced programs: whatever they wrote, this
    /// never reads outside the mapping and never loops more than one lap.
    pub fn drain(
        &mut self,
        final_drain: bool,
        limit: usize,
        mut f: impl FnMut(RingRecord<'_>),
    ) -> bool {
        let head = self
            .header()
            .head
            .load(Ordering::Acquire)
            .min(self.tail.saturating_add(self.nunits));
        let mut records = 0;
        while self.tail < head {
            if records == limit {
                return true;
            }
            let at = (self.tail % self.nunits) as usize;
            let to_end = self.nunits as usize - at;
            // SAFETY: `at < nunits`, so the unit lies within the mapping
            // (HEADER + nunits * UNIT bytes).
            let unit = unsafe { self.map.as_ptr().add(HEADER + at * UNIT) };
            // SAFETY: a unit is 64-byte aligned and its first word is only ever accessed
            // atomically (producers set it with release, we zero it).
            let ready = unsafe { &*(unit as *const AtomicU32) }.load(Ordering::Acquire) != 0;
            if !ready && !final_drain {
                return false; // still being written: a later call continues here
            }
            // The units stay ours until `tail` moves past them: `f` reads them in place.
            // SAFETY: the `to_end` units from `unit` lie within the mapping; producers
            // write them only while reserved ahead of `tail`, and this record's writer
            // finished (`ready`, acquire) or died (final drain).
            let bytes = unsafe { std::slice::from_raw_parts(unit, to_end * UNIT) };
            let (kind, len) = (
                u16_at(bytes, offset_of!(RecordHeader, kind)),
                u16_at(bytes, offset_of!(RecordHeader, len)) as usize,
            );
            let units = if ready {
                if kind == PAD {
                    len
                } else {
                    if let Some(record) = Self::decode(bytes, kind, len) {
                        f(record);
                        records += 1;
                    }
                    (PATH_AT + len).div_ceil(UNIT)
                }
            } else {
                // Final drain: its writer died. `len` is written first, so it is 0 only
                // when nothing of the record was (and then its other units are free,
                // zeroed).
                (PATH_AT + len).div_ceil(UNIT)
            };
            let units = units.clamp(1, to_end);
            for i in 0..units {
                // No stale `ready` where a later record may start.
                // SAFETY: `i < units <= to_end`: a unit of the mapping, 64-byte aligned,
                // whose first word producers access only atomically.
                unsafe { &*(unit.add(i * UNIT) as *const AtomicU64) }.store(0, Ordering::Relaxed);
            }
            self.tail += units as u64;
            // Only now may a producer reuse the units.
            self.header().tail.store(self.tail, Ordering::Release);
        }
        false
    }

    fn decode(bytes: &[u8], kind: u16, len: usize) -> Option<RingRecord<'_>> {
        let i32_at =
            |o: usize| i32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let len = len.min(bytes.len() - PATH_AT);
        let access = |kind| (RingKind::Access(kind), len);
        // An exit's 4 path bytes are its status, not a path.
        // Access records carry the kind's `AccessKind` id (ring.h's RING_* names them; the
        // protocol's C-side tests check that they agree), only for the kinds the helper
        // serves.
        let (kind, len) = match kind {
            EXIT if len == 4 => (RingKind::Exit(i32_at(PATH_AT)), 0),
            id => match u8::try_from(id).ok().and_then(AccessKind::from_id)? {
                kind @ (AccessKind::Read
                | AccessKind::Write
                | AccessKind::Create
                | AccessKind::Truncate
                | AccessKind::Append
                | AccessKind::Stat
                | AccessKind::Probe) => access(kind),
                _ => return None,
            },
        };
        let mut time = [0u8; 8];
        let at = offset_of!(RecordHeader, time_ns);
        time.copy_from_slice(&bytes[at..at + 8]);
        Some(RingRecord {
            pid: i32_at(offset_of!(RecordHeader, pid)),
            ppid: i32_at(offset_of!(RecordHeader, ppid)),
            kind,
            path: &bytes[PATH_AT..PATH_AT + len],
            time_ns: i64::from_le_bytes(time),
        })
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `map` and `size` are the mapping's; records borrowed from it (the
        // `drain` callback's) cannot outlive `&mut self`.
        unsafe { sys::munmap(self.map, self.size) };
    }
}
