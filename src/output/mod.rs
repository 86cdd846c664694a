//! Concise build output: one short label per job (a target's recipe, all its lines),
//! progress on a terminal, whole output for what printed something, a `FAILED:` block
//! for what failed.
//!
//! The recorder calls a [`Printer`] from one thread, in the order commands start and
//! finish, with each line's [`Place`] in its job. It never reads the record and never blocks the build: the recorder buffers,
//! and a write that fails (a closed pipe) is dropped, never an error.
//!
//! Labels ([`default_label`]) are a pure function of [`CommandInfo`]: that is the seam
//! where a user's hook replaces them. A job's label ([`job_label`]) is chosen from its
//! lines' labels by a documented rule. Where each line goes is documented in
//! the README: build lines on stdout (like make and ninja), progress on stdout only
//! when it is a terminal, makescope's summary line on stderr.

mod label;
mod printer;
pub mod shell;

pub use label::{
    classify, compiler_run, compilers_in, default_label, job_label, relative_to, Classified,
    CompilerRun, JobLine, Rule,
};
pub use printer::{Printer, Summary};

/// The piped status before each job's line when the total is known, after ninja's
/// `NINJA_STATUS`; `MAKESCOPE_STATUS` replaces it (see [`Printer::set_status`]).
pub const DEFAULT_STATUS: &str = "[%f/%t] ";

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

/// Where a recipe line sits in its job (a target's recipe, all its lines, which one make
/// runs one after another): the printer prints one line per job from these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Place {
    /// The make process that runs the job (0: unknown, the line is a job of its own).
    pub make_pid: i32,
    /// make's job number in that process: the lines of one job share it.
    pub job: u64,
    /// The line's position in the recipe, 0 for the first.
    pub index: u32,
    /// The recipe's lines as make wrote them (0: unknown).
    pub lines: u32,
    /// make runs every line of the job silently (`@`, `-s`, `.SILENT`): a job that
    /// also succeeds without printing anything gets no line of its own when piped.
    pub silent: bool,
}

impl Place {
    /// A line that is a job of its own.
    pub fn alone() -> Place {
        Place {
            lines: 1,
            ..Place::default()
        }
    }

    /// The job the line belongs to, if it is known.
    pub(crate) fn job_key(&self) -> Option<(i32, u64)> {
        (self.make_pid != 0).then_some((self.make_pid, self.job))
    }
}

/// A verb and the thing made: `CC elf/dl-load.os`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub verb: String,
    pub object: String,
}

/// How the build is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One label per job (on a terminal: only those that printed something) and progress.
    Concise,
    /// `-v`: every full command, as plain make would echo it, with its output.
    Verbose,
    /// `-q`: only failures, commands that printed something (warnings) and make's stderr.
    Quiet,
    /// `--plain`: make's output passes through untouched; only the summary line is ours,
    /// and `--plain --quiet` (`summary: false`) drops that too.
    Plain { summary: bool },
}

impl Mode {
    /// Whether make's output passes through untouched.
    pub fn is_plain(self) -> bool {
        matches!(self, Mode::Plain { .. })
    }
}

/// How a command ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ns: i64,
}

impl Outcome {
    /// Whether the command failed (a non-zero exit, a signal, or no status at all).
    pub fn failed(&self) -> bool {
        self.signal.is_some() || self.exit_code != Some(0)
    }
}
