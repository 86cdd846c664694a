//! Concise build output: one short label per command, progress on a terminal, whole
//! output for what printed something, a `FAILED:` block for what failed.
//!
//! The recorder calls a [`Printer`] from one thread, in the order commands start and
//! finish. It never reads the record and never blocks the build: the recorder buffers.
//!
//! (Interface fixed by the recorder; implementation in progress.)

use std::io::Write;

/// Which output stream bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What the label rules (and a user's hook) see of a command.
#[derive(Debug, Clone)]
pub struct CommandInfo {
    pub id: i64,
    pub target: Vec<u8>,
    /// The command's directory.
    pub directory: Vec<u8>,
    /// The directory `makescope make` ran in: labels are relative to it.
    pub top_directory: Vec<u8>,
    /// The expanded command text (the shell's `-c` argument).
    pub command: Vec<u8>,
    pub recipe_file: Vec<u8>,
    pub recipe_line: u32,
    pub make_level: u32,
}

/// A verb and the thing made: `CC elf/dl-load.os`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub verb: String,
    pub object: String,
}

/// The rule-based label for a command.
pub fn default_label(info: &CommandInfo) -> Label {
    Label {
        verb: "RUN".into(),
        object: String::from_utf8_lossy(&info.target).into_owned(),
    }
}

/// How the build is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Concise,
    Verbose,
    Quiet,
    Plain,
}

/// How a command ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ns: i64,
}

/// Prints the build.
pub struct Printer {
    mode: Mode,
}

impl Printer {
    /// A printer; `expected_total` is the command count of the last similar build.
    pub fn new(mode: Mode, _expected_total: Option<u64>) -> Printer {
        Printer { mode }
    }
    pub fn started(&mut self, _info: &CommandInfo, _label: &Label) {}
    pub fn finished(
        &mut self,
        info: &CommandInfo,
        label: &Label,
        output: &[(Stream, Vec<u8>)],
        outcome: &Outcome,
    ) {
        if self.mode == Mode::Plain {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "  {:<5} {}", label.verb, label.object);
        for (_, bytes) in output {
            let _ = out.write_all(bytes);
        }
        if outcome.exit_code != Some(0) {
            let _ = writeln!(out, "FAILED: {}", String::from_utf8_lossy(&info.target));
        }
    }
    /// make's own output (errors, `$(info)`, …).
    pub fn make_output(&mut self, stream: Stream, bytes: &[u8]) {
        let _ = match stream {
            Stream::Stdout => std::io::stdout().write_all(bytes),
            Stream::Stderr => std::io::stderr().write_all(bytes),
        };
    }
    /// The build is over.
    pub fn finish(&mut self, _summary: &str) {}
}
