//! The wire format between the processes of a recorded build and the recorder.
//!
//! Three kinds of client talk to the recorder over one `SOCK_SEQPACKET` Unix socket
//! (path in [`ENV_SOCK`]): the make plugin (one connection per make process), the
//! shim (one connection per recipe command) and the shim's child, which passes the
//! seccomp listener with `SCM_RIGHTS` on its parent's connection. SEQPACKET keeps
//! message boundaries and order within a connection, so a command's story is simply
//! the sequence of messages on its connection; a connection that closes before its end
//! means the client died.
//!
//! A message is one kind byte followed by fields; a field is a little-endian `u32`
//! length and that many bytes. Numbers travel as decimal text. A message longer than a
//! packet ([`MAX_MESSAGE`]) travels in parts ([`Kind::Part`]), put back together by the
//! recorder's socket before it is decoded. Each kind decodes into
//! its own struct here ([`Message::decode`]): the one place on the Rust side that knows
//! field positions. `src/protocol.h` is the one place on the C side (one encoder per
//! kind, the environment's names, the job context's codec); the `c_side` tests compile
//! a driver against it and decode what it encodes.
//!
//! This module must never allocate while decoding (messages borrow from the receive
//! buffer) nor decide anything: the recorder's event loop does that.

/// Every variable makescope's processes set for each other starts with this.
pub const ENV_PREFIX: &str = "MAKESCOPE_";
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
/// The makefile that loads the plugin, which `MAKEFILES` names
/// ([`crate::plugin::load_makefile`]); the shim puts it back in `MAKEFILES` when a
/// makefile took it out. Unset: the plugin came with `--eval`.
pub const ENV_MAKEFILE: &str = "MAKESCOPE_MAKEFILE";
/// For the fast path's helper: the descriptor of its ring.
pub const ENV_TRACE_RING: &str = "MAKESCOPE_TRACE_RING";
/// For the fast path's helper: the address (hex) of its trusted page.
pub const ENV_TRACE_PAGE: &str = "MAKESCOPE_TRACE_PAGE";
/// For the fast path's helper: no filter under this process (make's own ring).
pub const ENV_TRACE_UNFILTERED: &str = "MAKESCOPE_TRACE_UNFILTERED";
/// For the fast path's helper: leave glibc's internal opens alone.
pub const ENV_TRACE_NO_REDIRECT: &str = "MAKESCOPE_TRACE_NO_REDIRECT";
/// Set by a test: the shim stops itself (`SIGSTOP`) just before it forks the command,
/// its signals' forwarding in place, for the test to signal it there.
pub const ENV_SHIM_STOP: &str = "MAKESCOPE_SHIM_STOP";
/// Set by whoever measures: print the tracer's counts and the threads' CPU times.
pub const ENV_TRACE_STATS: &str = "MAKESCOPE_TRACE_STATS";
/// The setting the shim appends to `ASAN_OPTIONS` along with the fast path's helper.
pub const ASAN_LINK_ORDER: &str = "verify_asan_link_order=0";

/// The largest packet a client sends; output is cut into chunks below this, and a
/// longer message (a command's arguments and environment: up to what execve takes) is
/// sent in parts ([`Kind::Part`]).
pub const MAX_MESSAGE: usize = 60 * 1024;

/// What a message is about: its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// plugin: [`MakeStart`].
    MakeStart = 1,
    /// plugin: [`MakeEnd`].
    MakeEnd = 2,
    /// shim: [`CommandStart`].
    CommandStart = 10,
    /// shim: [`Output`].
    Output = 11,
    /// shim: [`CommandEnd`].
    CommandEnd = 12,
    /// shim's child: [`Listener`].
    Listener = 13,
    /// shim's child: [`TraceRefused`].
    TraceRefused = 14,
    /// shim's child: the line runs a sub-make, so it is not filtered itself; the
    /// sub-make's commands are, each with its own filter. No fields.
    SubMake = 15,
    /// A piece of a message longer than [`MAX_MESSAGE`]: the kind byte, then the next
    /// bytes of the message (not a field). The pieces of one message come in order on
    /// its connection, the last one as [`Kind::PartEnd`]; together they are the message.
    Part = 16,
    /// The last piece of a message sent in parts.
    PartEnd = 17,
    /// recorder → client: go on. No fields.
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
            16 => Kind::Part,
            17 => Kind::PartEnd,
            20 => Kind::Ack,
            _ => return None,
        })
    }
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
    #[error("a {kind:?} message with a truncated field")]
    Truncated {
        /// The message's kind.
        kind: Kind,
    },
    /// A field is missing.
    #[error("a {kind:?} message without its {field}")]
    Missing {
        /// The message's kind.
        kind: Kind,
        /// The field's name.
        field: &'static str,
    },
    /// A field that should hold a number does not.
    #[error("a {kind:?} message whose {field} is not a number")]
    NotANumber {
        /// The message's kind.
        kind: Kind,
        /// The field's name.
        field: &'static str,
    },
}

/// A message's fields, read in order. Reading a field that is not there is an error;
/// fields after the last one a kind reads are allowed (but must be well formed).
struct Fields<'a> {
    kind: Kind,
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let kind = self.kind;
        if self.rest.is_empty() {
            return Err(DecodeError::Missing { kind, field });
        }
        let Some((len, rest)) = self.rest.split_first_chunk::<4>() else {
            return Err(DecodeError::Truncated { kind });
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(DecodeError::Truncated { kind });
        }
        let (bytes, rest) = rest.split_at(len);
        self.rest = rest;
        Ok(bytes)
    }

    fn number(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        let bytes = self.bytes(field)?;
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(DecodeError::NotANumber {
                kind: self.kind,
                field,
            })
    }

    /// A pid (sent as a number).
    fn pid(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(self.number(field)? as i32)
    }

    /// Check that whatever follows is well formed fields.
    fn finish(mut self) -> Result<(), DecodeError> {
        while !self.rest.is_empty() {
            self.bytes("")?;
        }
        Ok(())
    }
}

/// A decoded message, borrowed from the buffer it was received in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// [`Kind::MakeStart`].
    MakeStart(MakeStart<'a>),
    /// [`Kind::MakeEnd`].
    MakeEnd(MakeEnd<'a>),
    /// [`Kind::CommandStart`].
    CommandStart(CommandStart<'a>),
    /// [`Kind::Output`].
    Output(Output<'a>),
    /// [`Kind::CommandEnd`].
    CommandEnd(CommandEnd<'a>),
    /// [`Kind::Listener`].
    Listener(Listener),
    /// [`Kind::TraceRefused`].
    TraceRefused(TraceRefused<'a>),
    /// [`Kind::SubMake`].
    SubMake,
    /// [`Kind::Part`] (`last`: [`Kind::PartEnd`]): a piece of a longer message.
    Part { piece: &'a [u8], last: bool },
    /// [`Kind::Ack`].
    Ack,
}

impl<'a> Message<'a> {
    /// Decode one message.
    pub fn decode(bytes: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let (&byte, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let kind = Kind::from_u8(byte).ok_or(DecodeError::UnknownKind(byte))?;
        let mut f = Fields { kind, rest };
        let message = match kind {
            // Bytes, not fields: put together, they are a message.
            Kind::Part | Kind::PartEnd => {
                return Ok(Message::Part {
                    piece: rest,
                    last: kind == Kind::PartEnd,
                })
            }
            Kind::MakeStart => Message::MakeStart(MakeStart {
                pid: f.pid("pid")?,
                ppid: f.pid("ppid")?,
                level: f.number("makelevel")?,
                directory: f.bytes("cwd")?,
                argv: f.bytes("argv")?,
                context: JobContext::parse(f.bytes("context")?),
                time_ns: f.number("time")?,
            }),
            Kind::MakeEnd => Message::MakeEnd(MakeEnd {
                pid: f.pid("pid")?,
                time_ns: f.number("time")?,
                default_goal: f.bytes("default goal")?,
                makefiles: f.bytes("makefile list")?,
                database: f
                    .bytes("database dump")
                    .map(|d| (!d.is_empty()).then_some(d))?,
            }),
            Kind::CommandStart => Message::CommandStart(CommandStart {
                shim_pid: f.pid("shim pid")?,
                context: JobContext::parse(f.bytes("context")?),
                argv: f.bytes("argv")?,
                directory: f.bytes("cwd")?,
                environment: f.bytes("environment")?,
                time_ns: f.number("time")?,
                target_existed: f.number("target existed")? == 1,
                wants_ack: f.bytes("flags")?.contains(&b'a'),
            }),
            Kind::Output => Message::Output(Output {
                stream: match f.bytes("stream")? {
                    b"2" => Stream::Stderr,
                    _ => Stream::Stdout,
                },
                bytes: f.bytes("bytes")?,
            }),
            Kind::CommandEnd => Message::CommandEnd(CommandEnd {
                status: f.number("wait status")? as i32,
                time_ns: f.number("time")?,
                user_us: f.number("user time")?,
                system_us: f.number("system time")?,
                max_rss_kib: f.number("max RSS")?,
                left_behind: f.bytes("processes left behind")?,
            }),
            Kind::Listener => Message::Listener(Listener {
                child_pid: f.pid("child pid")?,
            }),
            Kind::TraceRefused => Message::TraceRefused(TraceRefused {
                reason: f.bytes("reason")?,
            }),
            Kind::SubMake => Message::SubMake,
            Kind::Ack => Message::Ack,
        };
        f.finish()?;
        Ok(message)
    }

    /// What the message is about.
    pub fn kind(&self) -> Kind {
        match self {
            Message::MakeStart(_) => Kind::MakeStart,
            Message::MakeEnd(_) => Kind::MakeEnd,
            Message::CommandStart(_) => Kind::CommandStart,
            Message::Output(_) => Kind::Output,
            Message::CommandEnd(_) => Kind::CommandEnd,
            Message::Listener(_) => Kind::Listener,
            Message::TraceRefused(_) => Kind::TraceRefused,
            Message::SubMake => Kind::SubMake,
            Message::Part { last: false, .. } => Kind::Part,
            Message::Part { last: true, .. } => Kind::PartEnd,
            Message::Ack => Kind::Ack,
        }
    }
}

/// plugin: a make process started (it waits for [`Kind::Ack`] before it runs anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MakeStart<'a> {
    /// The make process.
    pub pid: i32,
    /// Its parent.
    pub ppid: i32,
    /// Its `MAKELEVEL`.
    pub level: i64,
    /// Its working directory.
    pub directory: &'a [u8],
    /// Its command line, NUL-separated.
    pub argv: &'a [u8],
    /// The context it inherited: the recipe line that ran it (`None` for the top make).
    pub context: Option<JobContext<'a>>,
    /// When (ns since the epoch).
    pub time_ns: i64,
}

/// plugin: a make process is exiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MakeEnd<'a> {
    /// The make process.
    pub pid: i32,
    /// When (ns since the epoch).
    pub time_ns: i64,
    /// `.DEFAULT_GOAL`.
    pub default_goal: &'a [u8],
    /// `MAKEFILE_LIST`.
    pub makefiles: &'a [u8],
    /// Where it dumped its database, if it did.
    pub database: Option<&'a [u8]>,
}

/// shim: a recipe line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandStart<'a> {
    /// The shim's pid: the root of the command's processes.
    pub shim_pid: i32,
    /// The job's context (`None` if it could not be read).
    pub context: Option<JobContext<'a>>,
    /// NUL-separated: the makefile's SHELL words, the `.SHELLFLAGS` words, the line.
    pub argv: &'a [u8],
    /// The working directory.
    pub directory: &'a [u8],
    /// The environment, NUL-separated; empty when it did not fit in one message.
    pub environment: &'a [u8],
    /// When (ns since the epoch).
    pub time_ns: i64,
    /// Whether `$@` existed before the line ran.
    pub target_existed: bool,
    /// Whether the shim waits for [`Kind::Ack`] (it runs inside a traced command, whose
    /// filter may report its child's calls before this message is handled otherwise).
    pub wants_ack: bool,
}

/// Which of the command's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (`1` on the wire).
    Stdout,
    /// Standard error (`2`).
    Stderr,
}

/// shim: some of the command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output<'a> {
    /// Where it was written.
    pub stream: Stream,
    /// What.
    pub bytes: &'a [u8],
}

/// shim: the command finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandEnd<'a> {
    /// The raw wait(2) status.
    pub status: i32,
    /// When (ns since the epoch).
    pub time_ns: i64,
    /// CPU time in user mode (µs).
    pub user_us: i64,
    /// CPU time in the kernel (µs).
    pub system_us: i64,
    /// Peak resident set (KiB).
    pub max_rss_kib: i64,
    /// Processes still running: NUL-separated `pid argv0` entries.
    pub left_behind: &'a [u8],
}

/// shim's child: its seccomp listener (and the fast path's ring) come with this message
/// as `SCM_RIGHTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The child's pid.
    pub child_pid: i32,
}

/// shim's child: the filter could not be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRefused<'a> {
    /// Why (strerror's words).
    pub reason: &'a [u8],
}

/// The job context the plugin exports into each recipe's environment ([`ENV_CTX`]),
/// borrowed from the message it came in. Fields are separated by `\x1f`, in this order,
/// after the format's version (`1`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobContext<'a> {
    /// The make process that runs the job.
    pub make_pid: i32,
    /// make's job number within that make process: the lines of one recipe share it.
    pub job: u64,
    /// `$@`.
    pub target: &'a [u8],
    /// The makefile that holds the recipe (empty unless make is 4.3, whose internals
    /// the plugin reads for it).
    pub recipe_file: &'a [u8],
    /// The recipe's first line in that makefile (0 when make does not know).
    pub recipe_line: u32,
    /// `$?`: the prerequisites newer than the target (may be cut short).
    pub newer: &'a [u8],
    /// The makefile's own SHELL, as make would have run it.
    pub shell: &'a [u8],
    /// `.SHELLFLAGS` for this target.
    pub shell_flags: &'a [u8],
    /// MAKELEVEL of the make process.
    pub make_level: u32,
    /// `$(MAKE)`: how a recipe line runs a sub-make (may be missing: then empty).
    pub make: &'a [u8],
    /// How many lines the recipe has as make wrote it, 1 under `.ONESHELL` (0 when make
    /// does not say). make skips a line that expands to nothing and runs each line of
    /// a multi-line expansion in its own shell, so the lines that run may differ.
    pub lines: u32,
    /// [`JobContext::SERIAL`] and [`JobContext::SILENT`] (may be missing: then 0).
    pub flags: u32,
}

impl<'a> JobContext<'a> {
    /// The separator between fields.
    pub const SEPARATOR: u8 = 0x1f;
    /// The format's version, its first field.
    pub const VERSION: &'static [u8] = b"1";
    /// In `flags`: the job's make runs one job at a time (`-j1`, no jobserver), so a
    /// new job of that make means the one before is over.
    pub const SERIAL: u32 = 1;
    /// In `flags`: make runs every line of the recipe silently (`@`, also from a
    /// leading variable reference, `-s`, `.SILENT`), as the plugin reads the recipe.
    pub const SILENT: u32 = 2;

    /// Whether the job's make runs one job at a time.
    pub fn serial(&self) -> bool {
        self.flags & Self::SERIAL != 0
    }

    /// Whether make runs every line of the job silently.
    pub fn silent(&self) -> bool {
        self.flags & Self::SILENT != 0
    }

    /// Parse an [`ENV_CTX`] value; `None` if it is not one.
    pub fn parse(value: &'a [u8]) -> Option<JobContext<'a>> {
        fn number<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
            std::str::from_utf8(b).ok()?.parse().ok()
        }
        let mut parts = value.split(|&b| b == Self::SEPARATOR);
        if parts.next()? != Self::VERSION {
            return None;
        }
        let mut next = || parts.next();
        Some(JobContext {
            make_pid: number(next()?)?,
            job: number(next()?)?,
            target: next()?,
            recipe_file: next()?,
            recipe_line: number(next()?)?,
            newer: next()?,
            shell: next()?,
            shell_flags: next()?,
            make_level: number(next()?)?,
            make: next().unwrap_or_default(),
            lines: next().and_then(number).unwrap_or(0),
            flags: next().and_then(number).unwrap_or(0),
        })
    }
}

/// The C side, compiled and run: `src/protocol_test.c` against `src/protocol.h` and the
/// shim's headers, built with the system `cc` into a temporary directory.
#[cfg(test)]
pub(crate) mod c_side {
    use std::path::PathBuf;
    use std::process::Command;

    /// The compiled driver; its directory goes when this does.
    pub(crate) struct Driver {
        _dir: tempfile::TempDir,
        exe: PathBuf,
    }

    impl Driver {
        /// Compile the driver with the C parts' warnings, as errors.
        pub(crate) fn build() -> Driver {
            let dir = tempfile::tempdir().unwrap();
            let exe = dir.path().join("protocol_test");
            let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
            let output = Command::new(cc)
                .args([
                    "-O1",
                    "-Wall",
                    "-Wextra",
                    "-Wno-unused-parameter",
                    "-Werror",
                ])
                .args(["-std=gnu11", "-o"])
                .arg(&exe)
                .arg(format!("{src}/protocol_test.c"))
                .output()
                .expect("running cc");
            assert!(
                output.status.success(),
                "compiling src/protocol_test.c failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            Driver { _dir: dir, exe }
        }

        /// The driver's command for `args`, with an empty environment.
        pub(crate) fn command(&self, args: &[&str]) -> Command {
            let mut command = Command::new(&self.exe);
            command.args(args).env_clear();
            command
        }

        /// Run the driver on `args` with an empty environment; its output.
        pub(crate) fn run(&self, args: &[&str]) -> Vec<u8> {
            Self::output(self.command(args))
        }

        /// Run a driver command; its output.
        pub(crate) fn output(mut command: Command) -> Vec<u8> {
            let output = command.output().expect("running the driver");
            assert!(
                output.status.success(),
                "{command:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            output.stdout
        }
    }
}

#[cfg(test)]
mod tests {
    use super::c_side::Driver;
    use super::*;

    /// The messages the driver writes: each a u32 length and its bytes.
    fn framed(mut bytes: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while let Some((len, rest)) = bytes.split_first_chunk::<4>() {
            let (message, rest) = rest.split_at(u32::from_ne_bytes(*len) as usize);
            out.push(message);
            bytes = rest;
        }
        out
    }

    fn context() -> JobContext<'static> {
        JobContext {
            make_pid: 77,
            job: 3,
            target: b"all",
            recipe_file: b"Makefile",
            recipe_line: 12,
            newer: b"a b",
            shell: b"/bin/bash",
            shell_flags: b"-e -c",
            make_level: 1,
            make: b"make",
            lines: 2,
            flags: JobContext::SILENT,
        }
    }

    #[test]
    fn every_message_the_c_side_encodes_decodes_field_by_field() {
        let output = Driver::build().run(&["messages"]);
        let decoded: Vec<Message> = framed(&output)
            .into_iter()
            .map(|m| Message::decode(m).unwrap())
            .collect();
        let expected = vec![
            Message::MakeStart(MakeStart {
                pid: 101,
                ppid: 100,
                level: 2,
                directory: b"/src/dir",
                argv: b"make\0-C\0sub",
                context: Some(context()),
                time_ns: 1_700_000_000_123_456_789,
            }),
            Message::MakeStart(MakeStart {
                pid: 102,
                ppid: 1,
                level: 0,
                directory: b"/top",
                argv: b"make",
                context: None,
                time_ns: 5,
            }),
            Message::MakeEnd(MakeEnd {
                pid: 101,
                time_ns: 1_700_000_000_999_999_999,
                default_goal: b"all",
                makefiles: b" Makefile sub.mk",
                database: Some(b"/tmp/d/0123.mkdb"),
            }),
            Message::MakeEnd(MakeEnd {
                pid: 102,
                time_ns: 6,
                default_goal: b"",
                makefiles: b"",
                database: None,
            }),
            Message::CommandStart(CommandStart {
                shim_pid: 202,
                context: Some(context()),
                argv: b"/bin/bash\0-e\0-c\0echo hi",
                directory: b"/src",
                environment: b"PATH=/bin\0HOME=/h\0EMPTY=",
                time_ns: 1_700_000_001_000_000_000,
                target_existed: true,
                wants_ack: true,
            }),
            Message::CommandStart(CommandStart {
                shim_pid: 203,
                context: None,
                argv: b"/bin/bash\0-e\0-c",
                directory: b"",
                environment: b"",
                time_ns: 7,
                target_existed: false,
                wants_ack: false,
            }),
            Message::Output(Output {
                stream: Stream::Stderr,
                bytes: b"err\0bytes",
            }),
            Message::Output(Output {
                stream: Stream::Stdout,
                bytes: b"out",
            }),
            Message::CommandEnd(CommandEnd {
                status: 256,
                time_ns: 1_700_000_002_000_000_000,
                user_us: 1234,
                system_us: 567,
                max_rss_kib: 8910,
                left_behind: b"303 sleep 10\x00304 daemon",
            }),
            Message::CommandEnd(CommandEnd {
                status: -1,
                time_ns: 8,
                user_us: 0,
                system_us: 0,
                max_rss_kib: 0,
                left_behind: b"",
            }),
            Message::Listener(Listener { child_pid: 404 }),
            Message::TraceRefused(TraceRefused {
                reason: b"Operation not permitted",
            }),
            Message::SubMake,
        ];
        assert_eq!(decoded, expected);
        let kinds: Vec<Kind> = decoded.iter().map(Message::kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::MakeStart,
                Kind::MakeStart,
                Kind::MakeEnd,
                Kind::MakeEnd,
                Kind::CommandStart,
                Kind::CommandStart,
                Kind::Output,
                Kind::Output,
                Kind::CommandEnd,
                Kind::CommandEnd,
                Kind::Listener,
                Kind::TraceRefused,
                Kind::SubMake
            ]
        );
    }

    #[test]
    fn both_sides_name_the_environment_alike() {
        let output = Driver::build().run(&["env"]);
        let names: Vec<(String, String)> = String::from_utf8(output)
            .unwrap()
            .lines()
            .map(|l| {
                let (name, value) = l.split_once('=').unwrap();
                (name.to_string(), value.to_string())
            })
            .collect();
        let page = format!("{:x}", crate::trace::FAST_PATH_PAGE);
        let max = MAX_MESSAGE.to_string();
        let rust = [
            ("ENV_PREFIX", ENV_PREFIX),
            ("ENV_SOCK", ENV_SOCK),
            ("ENV_CTX", ENV_CTX),
            ("ENV_TRACED", ENV_TRACED),
            ("ENV_TRACE", ENV_TRACE),
            ("ENV_TEE", ENV_TEE),
            ("ENV_SILENT", ENV_SILENT),
            ("ENV_MAKEDB_DIR", ENV_MAKEDB_DIR),
            ("ENV_SHIM", ENV_SHIM),
            ("ENV_SHELL_DIR", ENV_SHELL_DIR),
            ("ENV_MAKEFILE", ENV_MAKEFILE),
            ("ENV_FILTER", ENV_FILTER),
            ("ENV_PRELOAD", ENV_PRELOAD),
            ("ENV_TRACE_RING", ENV_TRACE_RING),
            ("ENV_TRACE_PAGE", ENV_TRACE_PAGE),
            ("ENV_TRACE_UNFILTERED", ENV_TRACE_UNFILTERED),
            ("ENV_TRACE_NO_REDIRECT", ENV_TRACE_NO_REDIRECT),
            ("ENV_SHIM_STOP", ENV_SHIM_STOP),
            ("ASAN_LINK_ORDER", ASAN_LINK_ORDER),
            ("FAST_PATH_PAGE_HEX", &page),
            ("MAX_MESSAGE", &max),
        ];
        let rust: Vec<(String, String)> = rust
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(names, rust);
    }

    /// The fast path's ring records name their kind by `AccessKind` id (ring.h's RING_*),
    /// which the supervisor decodes with `AccessKind::from_id`.
    #[test]
    fn the_rings_kinds_are_the_access_kinds_ids() {
        let output = String::from_utf8(Driver::build().run(&["ring-kinds"])).unwrap();
        let mut kinds = 0;
        for line in output.lines() {
            let (name, id) = line.split_once('=').unwrap();
            let id: u8 = id.parse().unwrap();
            assert_eq!(
                crate::access::AccessKind::from_id(id).map(|k| k.name()),
                Some(name),
                "ring.h's {name} = {id}"
            );
            kinds += 1;
        }
        assert_eq!(kinds, 7, "{output}");
    }

    #[test]
    fn the_plugins_context_parses_in_rust() {
        let encoded = Driver::build().run(&["context-encode"]);
        assert_eq!(
            JobContext::parse(&encoded),
            Some(JobContext {
                make_pid: 4242,
                job: 17,
                target: b"out/x.o",
                recipe_file: b"rules.mk",
                recipe_line: 33,
                newer: b"x.c y.h",
                shell: b"/bin/sh",
                shell_flags: b"-ec",
                make_level: 2,
                make: b"/usr/bin/make",
                lines: 3,
                flags: JobContext::SERIAL | JobContext::SILENT,
            })
        );
    }

    /// The shim's reading of a context, in the driver's one-field-a-line form.
    fn as_the_shim_reads_it(context: Option<&JobContext>) -> String {
        let Some(c) = context else {
            return "-1\n".into();
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            c.make_pid,
            c.job,
            text(c.target),
            text(c.recipe_file),
            c.recipe_line,
            text(c.newer),
            text(c.shell),
            text(c.shell_flags),
            c.make_level,
            text(c.make),
            c.lines,
            c.flags
        )
    }

    #[test]
    fn the_shim_reads_contexts_as_rust_does() {
        let driver = Driver::build();
        let plugin = String::from_utf8(driver.run(&["context-encode"])).unwrap();
        for value in [
            plugin.as_str(),
            "1\x1f77\x1f3\x1fall\x1fMakefile\x1f12\x1fa b\x1f/bin/bash\x1f-c\x1f0",
            "1\x1f77\x1f3\x1f\x1f\x1f0\x1f\x1f/bin/sh\x1f-c\x1f0\x1f$(MAKE)",
            "1\x1f77\x1f3\x1f\x1f\x1f0\x1f\x1f/bin/sh\x1f-c\x1f0\x1fmake\x1f4",
            "1\x1f77\x1f3\x1f\x1f\x1f0\x1f\x1f/bin/sh\x1f-c\x1f0\x1fmake\x1f4\x1f3",
            "2\x1f77\x1f3\x1fall\x1fMakefile\x1f12\x1fa b\x1f/bin/bash\x1f-c\x1f0",
            "1\x1f77\x1f3",
            "",
        ] {
            let shim = String::from_utf8(driver.run(&["context-parse", value])).unwrap();
            let context = JobContext::parse(value.as_bytes());
            assert_eq!(shim, as_the_shim_reads_it(context.as_ref()), "{value:?}");
        }
    }

    #[test]
    fn the_shim_finds_sub_makes_by_command_word() {
        let driver = Driver::build();
        let runs_make = |line: &str, make: &str| driver.run(&["runs-make", line, make]) == b"1";
        assert!(runs_make("make -C sub", "make"));
        assert!(runs_make("cd sub && make", "make"));
        assert!(runs_make("/usr/bin/make -C x", "make"));
        assert!(runs_make("$(MAKE)", "$(MAKE)"));
        assert!(runs_make("/usr/bin/make -C x", "/usr/bin/make"));
        assert!(!runs_make("/opt/usr/bin/makex", "/usr/bin/make"));
        assert!(!runs_make("makeinfo x.texi", "make"));
        assert!(!runs_make("cmake ..", "make"));
        assert!(!runs_make("gcc -c x.c", "make"));
        assert!(!runs_make("echo hi", ""));
    }

    #[test]
    fn the_shim_finds_the_shell_behind_its_link() {
        let driver = Driver::build();
        let real = |dir: &str, path: &str| driver.run(&["real-shell", dir, path]);
        assert_eq!(real("/t/sh", "/t/sh/abs/bin/bash"), b"/bin/bash");
        assert_eq!(real("/t/sh", "/t/sh/rel/bash"), b"bash");
        assert_eq!(real("/t/sh", "/bin/bash"), b"");
        assert_eq!(real("/t/sh", "/t/sh/rel/"), b"");
        assert_eq!(real("/t/sh", "/t/sh/abs"), b"");
        assert_eq!(real("", "/bin/bash"), b"");
    }

    #[test]
    fn the_shim_takes_makes_ring_out_of_a_traced_line() {
        let helper = "/tmp/makescope-x/makescope-preload.so";
        let driver = Driver::build();
        let mut command = driver.command(&["leave-make-ring", helper]);
        command.envs([
            ("PATH", "/bin"),
            (ENV_TRACE_UNFILTERED, "1"),
            (ENV_TRACE_RING, "99"),
            (ENV_TRACE_PAGE, "10000000000"),
            ("LD_PRELOAD", &format!("libasan.so.8:{helper}")),
            ("ASAN_OPTIONS", &format!("detect_leaks=0:{ASAN_LINK_ORDER}")),
        ]);
        let mut environment = crate::util::split_nul(&Driver::output(command))
            .into_iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect::<Vec<_>>();
        environment.sort();
        assert_eq!(
            environment,
            [
                "ASAN_OPTIONS=detect_leaks=0",
                "LD_PRELOAD=libasan.so.8",
                "PATH=/bin"
            ]
        );
    }

    /// A part's bytes are not fields: whatever follows the kind byte is the piece.
    #[test]
    fn parts_carry_raw_pieces() {
        assert_eq!(
            Message::decode(&[Kind::Part as u8, 10, 0, 0]),
            Ok(Message::Part {
                piece: &[10, 0, 0],
                last: false
            })
        );
        let last = Message::decode(&[Kind::PartEnd as u8]).unwrap();
        assert_eq!(
            last,
            Message::Part {
                piece: &[],
                last: true
            }
        );
        assert_eq!(last.kind(), Kind::PartEnd);
    }

    #[test]
    fn acks_and_broken_messages() {
        assert_eq!(Message::decode(&[Kind::Ack as u8]), Ok(Message::Ack));
        assert_eq!(Message::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Message::decode(&[99]), Err(DecodeError::UnknownKind(99)));
        assert_eq!(
            Message::decode(&[10, 5, 0, 0, 0, b'a']),
            Err(DecodeError::Truncated {
                kind: Kind::CommandStart
            })
        );
        assert_eq!(
            Message::decode(&[13]),
            Err(DecodeError::Missing {
                kind: Kind::Listener,
                field: "child pid"
            })
        );
        assert_eq!(
            Message::decode(&[13, 1, 0, 0, 0, b'x']),
            Err(DecodeError::NotANumber {
                kind: Kind::Listener,
                field: "child pid"
            })
        );
        // Fields a kind does not read are allowed, if well formed.
        assert_eq!(
            Message::decode(&[13, 1, 0, 0, 0, b'7', 0, 0, 0, 0]),
            Ok(Message::Listener(Listener { child_pid: 7 }))
        );
        assert_eq!(
            Message::decode(&[13, 1, 0, 0, 0, b'7', 9, 0]),
            Err(DecodeError::Truncated {
                kind: Kind::Listener
            })
        );
    }

    #[test]
    fn contexts_of_another_version_are_not_read() {
        assert!(JobContext::parse(b"2\x1f77\x1f3\x1fall\x1fM\x1f1\x1f\x1fsh\x1f-c\x1f0").is_none());
        assert!(JobContext::parse(b"1\x1f77").is_none());
    }
}
