//! The wire format between the processes of a recorded build and the recorder.
//!
//! Three kinds of client talk to the recorder over one `SOCK_SEQPACKET` Unix socket
//! (path in `MAKESCOPE_SOCK`): the make plugin (one connection per make process), the
//! shim (one connection per recipe command) and the shim's child, which passes the
//! seccomp listener with `SCM_RIGHTS` on its parent's connection. SEQPACKET keeps
//! message boundaries and order within a connection, so a command's story is simply
//! the sequence of messages on its connection; a connection that closes before `End`
//! means the client died.
//!
//! A message is one kind byte followed by fields; a field is a little-endian `u32`
//! length and that many bytes. Numbers travel as decimal text. The format is mirrored
//! for the C sides (the make plugin and the shim) in `src/protocol.h`: change both or
//! neither.
//!
//! This module must never allocate per byte or block: the shim's cost is per command.

/// Environment variable naming the recorder's socket.
pub const ENV_SOCK: &str = "MAKESCOPE_SOCK";
/// Environment variable the plugin exports into every recipe: the job's context.
pub const ENV_CTX: &str = "MAKESCOPE_CTX";
/// Set in a traced command's environment: its descendants are already under our filter.
pub const ENV_TRACED: &str = "MAKESCOPE_TRACED";
/// Set by the recorder: `1` when commands' files are to be traced.
pub const ENV_TRACE: &str = "MAKESCOPE_TRACE";
/// Set by the recorder: `1` when the shim should pass output through as well (`--plain`).
pub const ENV_TEE: &str = "MAKESCOPE_TEE";
/// Set by the recorder: `1` when make should not echo commands (concise output).
pub const ENV_SILENT: &str = "MAKESCOPE_SILENT";
/// Set by the recorder: directory where the plugin leaves make's database dumps.
pub const ENV_MAKEDB_DIR: &str = "MAKESCOPE_MAKEDB_DIR";
/// The shim binary's path, for the plugin's links to point at.
pub const ENV_SHIM: &str = "MAKESCOPE_SHIM";
/// The seccomp program the shim's child installs (`struct sock_filter` array).
pub const ENV_FILTER: &str = "MAKESCOPE_FILTER";
/// The tracer's in-process helper (`src/trace/preload.c`) the shim preloads into traced
/// commands; unset or empty: every traced call is trapped.
pub const ENV_PRELOAD: &str = "MAKESCOPE_PRELOAD";
/// The directory of links to the shim: `<dir>/abs/bin/bash` runs `/bin/bash` through the
/// shim, `<dir>/rel/bash` runs `bash` (found on PATH).
pub const ENV_SHELL_DIR: &str = "MAKESCOPE_SHELL_DIR";

/// The real shell behind a shim link, given the link directory and the path the shim
/// was run as (its argv\[0\]); `None` if it was not run through a link.
pub fn real_shell<'a>(shell_dir: &[u8], argv0: &'a [u8]) -> Option<&'a [u8]> {
    let rest = argv0.strip_prefix(shell_dir)?;
    if let Some(absolute) = rest.strip_prefix(b"/abs") {
        absolute.starts_with(b"/").then_some(absolute)
    } else {
        rest.strip_prefix(b"/rel/").filter(|r| !r.is_empty())
    }
}

/// The largest message a client sends; output is cut into chunks below this.
pub const MAX_MESSAGE: usize = 60 * 1024;

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// plugin: a make process started. Fields: pid, ppid, makelevel, cwd, argv
    /// (NUL-separated), inherited context (the recipe that started it, may be empty),
    /// time (ns since the epoch).
    MakeStart = 1,
    /// plugin: a make process is exiting. Fields: pid, time, default goal,
    /// MAKEFILE_LIST, database dump path (may be empty).
    MakeEnd = 2,
    /// shim: a recipe command starts. Fields: shim pid, context, argv (NUL-separated:
    /// shell words, shell flags, command), cwd, environment (NUL-separated), time,
    /// target existed before (`1`/`0`), flags (`a` = wants an ack).
    CommandStart = 10,
    /// shim: output. Fields: stream (`1` stdout, `2` stderr), bytes.
    Output = 11,
    /// shim: the command finished. Fields: wait status (raw), time, user µs, system µs,
    /// max RSS KiB, processes left behind (NUL-separated `pid argv0` entries).
    CommandEnd = 12,
    /// shim's child: the seccomp listener travels as SCM_RIGHTS. Fields: child pid.
    Listener = 13,
    /// shim: the filter could not be installed. Fields: reason.
    TraceRefused = 14,
    /// shim: the line runs a sub-make, so it is not filtered itself; the sub-make's
    /// commands are, each with its own filter. No fields.
    SubMake = 15,
    /// recorder → client: go on.
    Ack = 20,
}

impl Kind {
    /// The kind for a byte, if it is one.
    pub fn from_u8(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::MakeStart,
            2 => Kind::MakeEnd,
            10 => Kind::CommandStart,
            11 => Kind::Output,
            12 => Kind::CommandEnd,
            13 => Kind::Listener,
            14 => Kind::TraceRefused,
            15 => Kind::SubMake,
            20 => Kind::Ack,
            _ => return None,
        })
    }
}

/// Builds one message.
#[derive(Debug)]
pub struct Writer {
    buffer: Vec<u8>,
}

impl Writer {
    /// Start a message of this kind.
    pub fn new(kind: Kind) -> Writer {
        let mut buffer = Vec::with_capacity(512);
        buffer.push(kind as u8);
        Writer { buffer }
    }

    /// Append a field.
    pub fn field(&mut self, bytes: &[u8]) -> &mut Writer {
        self.buffer
            .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.buffer.extend_from_slice(bytes);
        self
    }

    /// Append a number as decimal text.
    pub fn number(&mut self, n: i64) -> &mut Writer {
        let mut text = [0u8; 24];
        let len = format_i64(n, &mut text);
        self.field(&text[..len])
    }

    /// The encoded message.
    pub fn bytes(&self) -> &[u8] {
        &self.buffer
    }
}

fn format_i64(n: i64, out: &mut [u8; 24]) -> usize {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut out[..]);
    let _ = write!(cursor, "{n}");
    cursor.position() as usize
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The message was empty.
    #[error("empty message")]
    Empty,
    /// The kind byte is not one we know.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// A field's length runs past the end.
    #[error("truncated field")]
    Truncated,
    /// A field that should hold a number does not.
    #[error("field {0} is not a number")]
    NotANumber(usize),
    /// A field is missing.
    #[error("missing field {0}")]
    Missing(usize),
}

/// A decoded message: its kind and its fields, borrowed from the buffer.
#[derive(Debug)]
pub struct Message<'a> {
    /// What it is about.
    pub kind: Kind,
    fields: Vec<&'a [u8]>,
}

impl<'a> Message<'a> {
    /// Decode one message.
    pub fn decode(bytes: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let (&kind, mut rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let kind = Kind::from_u8(kind).ok_or(DecodeError::UnknownKind(kind))?;
        let mut fields = Vec::with_capacity(8);
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(DecodeError::Truncated);
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            rest = &rest[4..];
            if rest.len() < len {
                return Err(DecodeError::Truncated);
            }
            fields.push(&rest[..len]);
            rest = &rest[len..];
        }
        Ok(Message { kind, fields })
    }

    /// Field `i`'s bytes.
    pub fn bytes(&self, i: usize) -> Result<&'a [u8], DecodeError> {
        self.fields.get(i).copied().ok_or(DecodeError::Missing(i))
    }

    /// Field `i` as a number.
    pub fn number(&self, i: usize) -> Result<i64, DecodeError> {
        let bytes = self.bytes(i)?;
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(DecodeError::NotANumber(i))
    }

    /// Field `i` split at NUL bytes (an argv or an environment).
    pub fn list(&self, i: usize) -> Result<Vec<&'a [u8]>, DecodeError> {
        Ok(crate::util::split_nul(self.bytes(i)?))
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// The setting the shim appends to `ASAN_OPTIONS` along with the fast path's helper.
const ASAN_LINK_ORDER: &[u8] = b"verify_asan_link_order=0";

/// An environment as the command would have had it without the tracer's fast path (the
/// shim appends `helper` to `LD_PRELOAD` and [`ASAN_LINK_ORDER`] to `ASAN_OPTIONS`), or
/// `None` when the helper is not in it.
pub fn without_fast_path(environment: &[&[u8]], helper: &[u8]) -> Option<Vec<Vec<u8>>> {
    let preload = environment.iter().find(|e| e.starts_with(b"LD_PRELOAD="))?;
    let mut cleaned = without_preload(preload, helper);
    if cleaned.as_deref() == Some(*preload) {
        return None;
    }
    let mut out = Vec::with_capacity(environment.len());
    for &entry in environment {
        if entry.starts_with(b"LD_PRELOAD=") {
            out.extend(cleaned.take());
        } else if let Some(options) = entry.strip_prefix(b"ASAN_OPTIONS=") {
            let kept = options
                .strip_suffix(ASAN_LINK_ORDER)
                .map(|rest| rest.strip_suffix(b":").unwrap_or(rest))
                .unwrap_or(options);
            if !kept.is_empty() {
                out.push([b"ASAN_OPTIONS=".as_slice(), kept].concat());
            }
        } else {
            out.push(entry.to_vec());
        }
    }
    Some(out)
}

/// An `LD_PRELOAD=…` environment entry without the tracer's `helper` (which the shim
/// appended): `None` when nothing else is left, so the entry is dropped.
pub fn without_preload(entry: &[u8], helper: &[u8]) -> Option<Vec<u8>> {
    let value = entry.strip_prefix(b"LD_PRELOAD=").unwrap_or(entry);
    let words: Vec<&[u8]> = value
        .split(|&b| b == b' ' || b == b':')
        .filter(|w| !w.is_empty())
        .collect();
    let kept: Vec<&[u8]> = words.iter().copied().filter(|w| *w != helper).collect();
    if kept.len() == words.len() {
        return Some(entry.to_vec());
    }
    if kept.is_empty() {
        return None;
    }
    let mut out = b"LD_PRELOAD=".to_vec();
    out.extend_from_slice(&kept.join(&b' '));
    Some(out)
}

/// The job context the plugin exports into each recipe's environment
/// (`MAKESCOPE_CTX`). Fields are separated by `\x1f`, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobContext {
    /// Format version (`1`).
    pub version: u32,
    /// The make process that runs the job.
    pub make_pid: i32,
    /// make's job number within that make process: the lines of one recipe share it.
    pub job: u64,
    /// `$@`.
    pub target: Vec<u8>,
    /// The makefile that holds the recipe (empty unless make is 4.3, whose internals
    /// the plugin reads for it).
    pub recipe_file: Vec<u8>,
    /// The recipe's first line in that makefile (0 when make does not know).
    pub recipe_line: u32,
    /// `$?`: the prerequisites newer than the target (may be cut short).
    pub newer: Vec<u8>,
    /// The makefile's own SHELL, as make would have run it.
    pub shell: Vec<u8>,
    /// `.SHELLFLAGS` for this target.
    pub shell_flags: Vec<u8>,
    /// MAKELEVEL of the make process.
    pub make_level: u32,
    /// `$(MAKE)`: how a recipe line runs a sub-make.
    pub make: Vec<u8>,
}

impl JobContext {
    /// Parse a `MAKESCOPE_CTX` value; `None` if it is not one.
    pub fn parse(value: &[u8]) -> Option<JobContext> {
        fn number<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
            std::str::from_utf8(b).ok()?.parse().ok()
        }
        let mut parts = value.split(|&b| b == 0x1f);
        let mut next = || parts.next();
        let version: u32 = number(next()?)?;
        if version != 1 {
            return None;
        }
        Some(JobContext {
            version,
            make_pid: number(next()?)?,
            job: number(next()?)?,
            target: next()?.to_vec(),
            recipe_file: next()?.to_vec(),
            recipe_line: number(next()?)?,
            newer: next()?.to_vec(),
            shell: next()?.to_vec(),
            shell_flags: next()?.to_vec(),
            make_level: number(next()?)?,
            make: next().unwrap_or_default().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_helper_leaves_recorded_preloads() {
        let helper = b"/tmp/makescope-x/makescope-preload.so";
        assert_eq!(
            without_preload(b"LD_PRELOAD=/tmp/makescope-x/makescope-preload.so", helper),
            None
        );
        assert_eq!(
            without_preload(
                b"LD_PRELOAD=libasan.so.8 /tmp/makescope-x/makescope-preload.so",
                helper
            ),
            Some(b"LD_PRELOAD=libasan.so.8".to_vec())
        );
        assert_eq!(
            without_preload(b"LD_PRELOAD=a.so:b.so", helper),
            Some(b"LD_PRELOAD=a.so:b.so".to_vec())
        );
        let inside: [&[u8]; 3] = [
            b"PATH=/bin",
            b"ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0",
            b"LD_PRELOAD=/tmp/makescope-x/makescope-preload.so",
        ];
        assert_eq!(
            without_fast_path(&inside, helper),
            Some(vec![
                b"PATH=/bin".to_vec(),
                b"ASAN_OPTIONS=detect_leaks=0".to_vec()
            ])
        );
        let outside: [&[u8]; 2] = [b"PATH=/bin", b"ASAN_OPTIONS=verify_asan_link_order=0"];
        assert_eq!(without_fast_path(&outside, helper), None);
    }

    use super::*;

    #[test]
    fn round_trip() {
        let mut w = Writer::new(Kind::CommandStart);
        w.number(-42).field(b"a\0b").field(b"");
        let m = Message::decode(w.bytes()).unwrap();
        assert_eq!(m.kind, Kind::CommandStart);
        assert_eq!(m.number(0).unwrap(), -42);
        assert_eq!(m.list(1).unwrap(), vec![&b"a"[..], &b"b"[..]]);
        assert_eq!(m.bytes(2).unwrap(), b"");
        assert_eq!(m.bytes(3), Err(DecodeError::Missing(3)));
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Message::decode(&[10, 5, 0, 0, 0, b'a']).unwrap_err(),
            DecodeError::Truncated
        );
        assert_eq!(
            Message::decode(&[99]).unwrap_err(),
            DecodeError::UnknownKind(99)
        );
    }

    #[test]
    fn shells_behind_links() {
        assert_eq!(
            real_shell(b"/t/sh", b"/t/sh/abs/bin/bash"),
            Some(&b"/bin/bash"[..])
        );
        assert_eq!(real_shell(b"/t/sh", b"/t/sh/rel/bash"), Some(&b"bash"[..]));
        assert_eq!(real_shell(b"/t/sh", b"/bin/bash"), None);
        assert_eq!(real_shell(b"/t/sh", b"/t/sh/rel/"), None);
    }

    #[test]
    fn sub_make_lines() {
        assert!(runs_make(b"make -C sub", b"make"));
        assert!(runs_make(b"cd sub && make", b"make"));
        assert!(runs_make(b"/usr/bin/make -C x", b"make"));
        assert!(runs_make(b"$(MAKE)", b"$(MAKE)"));
        assert!(!runs_make(b"makeinfo x.texi", b"make"));
        assert!(!runs_make(b"cmake ..", b"make"));
        assert!(!runs_make(b"gcc -c x.c", b"make"));
        assert!(!runs_make(b"echo hi", b""));
    }

    #[test]
    fn context() {
        let ctx = JobContext::parse(
            b"1\x1f77\x1f3\x1fall\x1fMakefile\x1f12\x1fa b\x1f/bin/bash\x1f-c\x1f0",
        )
        .unwrap();
        assert_eq!(ctx.make_pid, 77);
        assert_eq!(ctx.target, b"all");
        assert_eq!(ctx.recipe_line, 12);
        assert_eq!(ctx.shell, b"/bin/bash");
        assert!(JobContext::parse(b"2\x1f").is_none());
    }
}

/// Whether a recipe line runs `make` (the value of `$(MAKE)`) as a command word.
pub fn runs_make(command: &[u8], make: &[u8]) -> bool {
    if make.is_empty() {
        return false;
    }
    let boundary = |b: Option<&u8>| b.is_none_or(|b| b" \t\n;&|()`'\"=".contains(b));
    let mut from = 0;
    while let Some(at) = command[from..].windows(make.len()).position(|w| w == make) {
        let start = from + at;
        let end = start + make.len();
        let before = if start == 0 {
            None
        } else {
            command.get(start - 1)
        };
        let before_ok = boundary(before) || (before == Some(&b'/') && !make.contains(&b'/'));
        if before_ok && boundary(command.get(end)) {
            return true;
        }
        from = start + 1;
    }
    false
}
