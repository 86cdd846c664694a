//! Arguments → configuration → subcommand.
//!
//! clap parses the command line once into [`Arguments`]; [`Config`] resolves what the
//! subcommands share (the record's path); [`Subcommand::execute`] dispatches. No
//! subcommand looks at the raw arguments again.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser};

/// Exit status for makescope's own errors (bad input, unreadable record, …).
pub const EXIT_ERROR: u8 = 2;
/// Exit status when make succeeded but a user hook raised.
pub const EXIT_HOOKS_FAILED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "makescope",
    version,
    about = "Record GNU make builds: every recipe command, the files it touched, the DAG between them",
    after_help = "The record is .makescope/db.sqlite in the directory where `makescope make` ran, \
                  unless --db or MAKESCOPE_DB says otherwise."
)]
pub struct Arguments {
    /// The record to write or read.
    #[arg(long, global = true, env = "MAKESCOPE_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Run GNU make with these arguments and record the build. makescope's own options
    /// go before `make`; everything after it goes to make unchanged.
    #[command(name = "make")]
    Make(MakeArgs),
    /// List the recorded commands of the last build.
    Log(LogArgs),
    /// Show one recorded command in full: REF is a command id, a target, or a path it wrote.
    Show(ShowArgs),
    /// List the targets make knows here, with where each is defined.
    Targets(crate::makedb::TargetsArgs),
    /// Run a recorded recipe again as make ran it, without make: REF is a command id,
    /// a target, or a path it wrote. Exits with the command's status.
    Replay(ReplayArgs),
}

/// How `makescope make` records and prints.
#[derive(Args, Debug, Clone, Default)]
pub struct BuildOptions {
    /// Record commands but not the files they touch (no seccomp tracing).
    #[arg(long)]
    pub no_trace: bool,
    /// Trace by trapping every file system call, without the in-process helper that
    /// serves the common ones (LD_PRELOAD): slower; for programs that refuse preloading.
    #[arg(long, conflicts_with = "no_trace")]
    pub trap_only: bool,
    /// Pass make's own output through unchanged (still recorded).
    #[arg(long, conflicts_with_all = ["verbose", "quiet"])]
    pub plain: bool,
    /// Print every full command, as plain make would.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print only failures and warnings.
    #[arg(short, long)]
    pub quiet: bool,
    /// Python hooks file (default: $MAKESCOPE_HOOKS, then .makescope/hooks.py).
    #[arg(long, env = "MAKESCOPE_HOOKS", value_name = "FILE")]
    pub hooks: Option<PathBuf>,
    /// Keep secret-looking environment variables instead of redacting them.
    #[arg(long)]
    pub keep_secrets: bool,
    /// The make program to run.
    #[arg(
        long,
        env = "MAKESCOPE_MAKE",
        default_value = "make",
        value_name = "PROGRAM"
    )]
    pub make_program: PathBuf,
}

#[derive(Args, Debug)]
#[command(
    trailing_var_arg = true,
    override_usage = "makescope make [OPTIONS] [MAKE ARGS]...\n       (makescope's options come before any make argument; `--` ends them)"
)]
pub struct MakeArgs {
    #[command(flatten)]
    pub options: BuildOptions,
    /// Arguments for make, passed through unchanged.
    #[arg(allow_hyphen_values = true, value_name = "MAKE ARGS")]
    pub make_args: Vec<OsString>,
}

#[derive(Args, Debug)]
pub struct LogArgs {
    /// Print JSON instead of aligned text.
    #[arg(long)]
    pub json: bool,
    /// Only commands that failed.
    #[arg(long)]
    pub failed: bool,
    /// Only commands whose target contains this text.
    #[arg(long, value_name = "TEXT")]
    pub target: Option<String>,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// A command id, a target name, or a path the command wrote.
    pub reference: OsString,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// List every file, not only a summary.
    #[arg(long)]
    pub files: bool,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Replays run untraced and are not recorded (--no-trace is the only mode so far). \
                  What differs from the recorded run (a redacted secret taken from this \
                  environment, make's jobserver dropped) is said in one line before it runs. \
                  Processes the command leaves running are killed when it ends."
)]
pub struct ReplayArgs {
    /// A command id, a target name, or a path the command wrote.
    pub reference: OsString,
    /// Replay only line N of the recipe (from 1, as `show` numbers them).
    #[arg(long, value_name = "N")]
    pub line: Option<usize>,
    /// Print what would run (directory, shell, flags, each line); run nothing.
    #[arg(long, conflicts_with = "script")]
    pub dry_run: bool,
    /// Print a standalone POSIX sh script that replays it; run nothing.
    #[arg(long)]
    pub script: bool,
    /// Do not trace the replay (replays are never traced yet: this is the default).
    #[arg(long)]
    pub no_trace: bool,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

/// What the subcommands share, resolved once.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the record lives.
    pub db: PathBuf,
    /// Whether `--db`/`MAKESCOPE_DB` chose it explicitly.
    pub db_explicit: bool,
}

impl Config {
    fn from_arguments(arguments: &Arguments) -> Result<Config> {
        let (db, db_explicit) = match &arguments.db {
            Some(db) => (db.clone(), true),
            None => (PathBuf::from(".makescope").join("db.sqlite"), false),
        };
        // Absolute, because sub-makes run elsewhere and are told where things are.
        let db = std::env::current_dir()
            .map(|cwd| cwd.join(&db))
            .unwrap_or(db);
        Ok(Config { db, db_explicit })
    }
}

impl Command {
    /// Run the subcommand; the returned code is the process's exit status.
    pub fn execute(self, config: &Config) -> Result<u8> {
        match self {
            Command::Make(args) => crate::record::run(config, args),
            Command::Log(args) => crate::query::log(config, &args).map(|()| 0),
            Command::Show(args) => crate::query::show(config, &args).map(|()| 0),
            Command::Targets(args) => crate::makedb::targets(config, &args),
            Command::Replay(args) => replay(config, &args),
        }
    }
}

/// `makescope replay`: open the record, resolve REF, replay.
fn replay(config: &Config, args: &ReplayArgs) -> Result<u8> {
    use std::os::unix::ffi::OsStrExt;
    let store = crate::store::Store::open_read(&config.db)?;
    let build = match args.build {
        Some(id) => store.build(id)?,
        None => store.last_build()?,
    };
    let Some(build) = build else {
        anyhow::bail!("{} holds no such build", store.path().display());
    };
    let ids = crate::query::resolve(&store, &build, args.reference.as_bytes())?;
    let recipe = crate::replay::Recipe::load(&store, &ids)?;
    drop(store);
    let options = crate::replay::ReplayOptions {
        line: args.line,
        mode: if args.script {
            crate::replay::Mode::Script
        } else if args.dry_run {
            crate::replay::Mode::DryRun
        } else {
            crate::replay::Mode::Run
        },
    };
    Ok(crate::replay::replay(
        &recipe,
        &options,
        &crate::replay::CurrentEnvironment,
    )?)
}

/// Parse, run, and turn errors into one `error:` line and exit status 2.
pub fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let result =
        Config::from_arguments(&arguments).and_then(|config| arguments.command.execute(&config));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("makescope: error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
