//! The command line: every clap type, and how each becomes the plain options of its
//! subcommand. clap parses once into [`Arguments`]; [`Arguments::resolve`] turns that
//! into the [`Config`] the subcommands share and one [`Subcommand`] with its options,
//! or into a [`Generated`] text made from the command line itself (shell completions,
//! the man page), which only this module can write since it needs the clap types.
//! Nothing else looks at the raw arguments.
//!
//! This module belongs to the binary, not the library: arrows point out of it. The
//! library's engines take their own options structs and never see a clap type, so that
//! anything (a test, another subcommand) can start a build or ask a query without
//! building clap structs. A test below checks that no module of the library names it.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser};
use clap_complete::Shell;

use makescope::commands::export::Export;
use makescope::commands::{show, targets, Format, Subcommand};
use makescope::config::Config;
use makescope::export::{CompdbOptions, NinjaOptions};
use makescope::gc::GcOptions;
use makescope::makedb::TargetsOptions;
use makescope::output::Mode;
use makescope::plugin::PluginOptions;
use makescope::query::{LogOptions, ShowOptions};
use makescope::rebuild::RebuildOptions;
use makescope::record::{MakeOptions, Tracing};
use makescope::replay::{Mode as ReplayMode, ReplayOptions};
use makescope::testcases::listing::ListOnlyOptions;
use makescope::testcases::rerun::RerunOptions;
use makescope::testcases::TestsOptions;
use makescope::views::coverage::CoverageOptions;
use makescope::views::dot::DotOptions;
use makescope::views::BuildChoice;

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

/// Every subcommand: those of the library, then those that print a text made from this
/// command line (which only this module can make).
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    #[command(flatten)]
    Run(RunCommand),
    /// Print a completion script for SHELL on stdout.
    #[command(
        after_help = "bash: `source <(makescope completions bash)`, or save it as \
                            ~/.local/share/bash-completion/completions/makescope. \
                            zsh: save it as _makescope in a directory of $fpath. \
                            fish: save it as ~/.config/fish/completions/makescope.fish."
    )]
    Completions(CompletionsArgs),
    /// Print makescope's man page (roff, every subcommand) on stdout: `makescope man | man -l -`.
    Man,
}

/// The subcommands the library runs.
#[derive(clap::Subcommand, Debug)]
pub enum RunCommand {
    /// Run GNU make with these arguments and record the build. makescope's own options
    /// go before `make`; everything after it goes to make unchanged.
    #[command(name = "make")]
    Make(MakeArgs),
    /// List the recorded commands of the last build.
    Log(LogArgs),
    /// Show one recorded command in full: REF is a command id, a target, or a path it wrote.
    Show(ShowArgs),
    /// List the targets make knows here, with where each is defined.
    Targets(TargetsArgs),
    /// Run a recorded recipe again as make ran it, without make: REF is a command id,
    /// a target, or a path it wrote. Exits with the command's status.
    Replay(ReplayArgs),
    /// Bring the recorded build up to date without make: re-run, from the record alone,
    /// what a changed file makes out of date, in dependency order.
    Rebuild(RebuildArgs),
    /// List the test cases of the last build, as its test convention reports them
    /// (glibc, automake, DejaGnu, a hook, or a guess); or, with --list-only, the tests
    /// make's view of a goal names, without running any.
    Tests(TestsArgs),
    /// Run recorded tests again without make: NAME is a test's name as `tests` lists it,
    /// or a glob (`string/test-str*`). First re-runs what each test needs that is out of
    /// date or missing (nothing else), then the test; prints each new result as the
    /// project reports it and keeps it in the record.
    Test(TestArgs),
    /// Print the path of a copy of the make plugin that stays (written once per
    /// makescope version under the user's data directory), for any makefile to
    /// `load $(shell makescope plugin)`; or copy it into DIR.
    Plugin(PluginArgs),
    /// Keep the newest builds of the record and remove the rest (their rows and make
    /// database dumps), giving the space back. Never removes the newest build; refuses
    /// while a build is being recorded.
    Gc(GcArgs),
    /// Compare what make was told with what the build did: missing prerequisites
    /// (races under -j), files two commands wrote, reads before the write, targets a
    /// recipe never wrote. Exits 1 when there is a race.
    Lint(LintArgs),
    /// Where a build's time went: wall and CPU time, commands by kind, the slowest,
    /// time per directory and make level, parallelism against -j, make's serialisation,
    /// and the critical path.
    Stats(StatsArgs),
    /// Write the recorded build in another tool's format: `trace` (Chrome trace-event
    /// JSON for Perfetto or chrome://tracing), `dot` (Graphviz), `compdb`
    /// (compile_commands.json), `ninja` (build.ninja).
    #[command(subcommand)]
    Export(ExportCommand),
    /// Write one self-contained HTML page about a build (timeline, critical path,
    /// slowest commands, failures, tests) that opens from the file system.
    Report(ReportArgs),
    /// Dependency coverage: which installed packages (dpkg's file lists) and path
    /// prefixes the build opened files of, and which it could have used and never did.
    Coverage(CoverageArgs),
}

#[derive(Args, Debug)]
pub struct NinjaArgs {
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

/// `makescope stats` arguments.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

/// `makescope export` formats.
#[derive(clap::Subcommand, Debug)]
pub enum ExportCommand {
    /// Chrome trace-event JSON: a track per job slot, commands as slices named by label,
    /// sub-makes on their own tracks, the critical path marked.
    Trace(TraceArgs),
    /// Graphviz: the command graph (writer -> reader), or with --files the file graph.
    Dot(DotArgs),
    /// compile_commands.json (Clang's JSON compilation database): every compiler run of
    /// the build, in scripts and sub-makes too, with its arguments as executed.
    Compdb(CompdbArgs),
    /// build.ninja: one edge per recorded command, with the files it read as implicit
    /// dependencies, to re-run the build without make (needs a traced build).
    Ninja(NinjaArgs),
}

/// `makescope export trace` arguments.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

#[derive(Args, Debug)]
pub struct CompdbArgs {
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only source files under DIR.
    #[arg(long, value_name = "DIR")]
    pub filter: Option<PathBuf>,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

/// `makescope export dot` arguments.
#[derive(Args, Debug)]
pub struct DotArgs {
    /// Only the commands around REF (a command id, a target, or a path it wrote).
    #[arg(long, value_name = "REF")]
    pub focus: Option<OsString>,
    /// With --focus: how many edges away from it, each way (default 2).
    #[arg(long, value_name = "N", requires = "focus")]
    pub depth: Option<usize>,
    /// Draw the files written between commands as nodes too.
    #[arg(long)]
    pub files: bool,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

/// `makescope report` arguments.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Where to write the page.
    #[arg(short, long, value_name = "FILE", default_value = "report.html")]
    pub output: PathBuf,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

/// `makescope coverage` arguments.
#[derive(Args, Debug)]
pub struct CoverageArgs {
    /// Also report on this path prefix, used or not (repeatable).
    #[arg(long, value_name = "PATH")]
    pub prefix: Vec<PathBuf>,
    /// Also report on this installed package, used or not (repeatable).
    #[arg(long, value_name = "NAME")]
    pub package: Vec<String>,
    /// dpkg's info directory, holding its *.list files.
    #[arg(long, value_name = "DIR", default_value = makescope::views::coverage::DPKG_INFO)]
    pub dpkg_info: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

/// `makescope gc` arguments.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// How many of the newest builds to keep.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub keep: usize,
    /// Say what would be removed, remove nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

/// `makescope plugin` arguments.
#[derive(Args, Debug)]
pub struct PluginArgs {
    /// Copy the plugin into DIR (which must exist) as makescope.so, and print that path.
    #[arg(long, value_name = "DIR")]
    pub install: Option<PathBuf>,
}

/// `makescope completions` arguments.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
    /// Complete `make` itself instead of makescope: its targets as `makescope targets`
    /// knows them, phony ones first (bash and fish; fish shows their doc comments).
    #[arg(long)]
    pub make: bool,
}

/// How `makescope make` records and prints.
#[derive(Args, Debug, Clone, Default)]
pub struct BuildArgs {
    /// Record commands but not the files they touch (no seccomp tracing).
    #[arg(long)]
    pub no_trace: bool,
    /// Trace by trapping every file system call, without the in-process helper that
    /// serves the common ones (LD_PRELOAD): slower; for programs that refuse preloading.
    #[arg(long, conflicts_with = "no_trace")]
    pub trap_only: bool,
    /// Pass make's own output through unchanged (still recorded); with --quiet, without
    /// makescope's summary line too.
    #[arg(long, conflicts_with = "verbose")]
    pub plain: bool,
    /// Print every full command, as plain make would.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print only failures and warnings; with --plain, make's output alone (no summary).
    #[arg(short, long)]
    pub quiet: bool,
    /// Python hooks file (default: $MAKESCOPE_HOOKS, then .makescope/hooks.py).
    #[arg(long, env = "MAKESCOPE_HOOKS", value_name = "FILE")]
    pub hooks: Option<PathBuf>,
    /// Keep secret-looking environment variables instead of redacting them.
    #[arg(long)]
    pub keep_secrets: bool,
    /// Kill the processes the build's commands left running (a daemon a recipe
    /// started) when the build ends, and name them; without it they are only named.
    #[arg(long)]
    pub kill_leftovers: bool,
    /// The make program to run.
    #[arg(
        long,
        env = "MAKESCOPE_MAKE",
        default_value = "make",
        value_name = "PROGRAM"
    )]
    pub make_program: PathBuf,
    /// The name make is run under (its argv[0], which `$(MAKE)` and make's messages
    /// show; default: PROGRAM as given). A script standing in for make passes its own
    /// name: `--make-name "$0"`.
    #[arg(long, env = "MAKESCOPE_MAKE_NAME", value_name = "NAME")]
    pub make_name: Option<OsString>,
}

#[derive(Args, Debug)]
#[command(
    trailing_var_arg = true,
    override_usage = "makescope make [OPTIONS] [MAKE ARGS]...\n       (makescope's options come before any make argument; `--` ends them)"
)]
pub struct MakeArgs {
    #[command(flatten)]
    pub options: BuildArgs,
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
pub struct TestsArgs {
    /// Print JSON instead of aligned text.
    #[arg(long)]
    pub json: bool,
    /// Only the tests that did not pass (FAIL, XPASS, ERROR, UNRESOLVED).
    #[arg(long)]
    pub failed: bool,
    /// Only the tests a change since the build affects: their command, or one upstream
    /// of it, read a file that changed (what `rebuild --dry-run` would re-run), each
    /// with the reason. Needs a traced build.
    #[arg(long, conflicts_with = "list_only")]
    pub affected: bool,
    /// Also write the list as JUnit XML to FILE (one testsuite per directory).
    #[arg(long, value_name = "FILE", conflicts_with = "list_only")]
    pub junit: Option<PathBuf>,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID", conflicts_with = "list_only")]
    pub build: Option<i64>,
    /// List the tests make's view of GOAL (default `check`) names, from the makefiles,
    /// without running any test or changing the tree; no record needed.
    #[arg(long, conflicts_with = "failed")]
    pub list_only: bool,
    /// With --list-only: run make in this directory.
    #[arg(
        short = 'C',
        long = "directory",
        value_name = "DIR",
        requires = "list_only"
    )]
    pub directory: Option<PathBuf>,
    /// With --list-only: the make program to run.
    #[arg(
        long,
        env = "MAKESCOPE_MAKE",
        default_value = "make",
        value_name = "PROGRAM"
    )]
    pub make_program: PathBuf,
    /// With --list-only: goals (default `check`) and variable assignments for make
    /// (`objdir=/b`); make options after `--`.
    #[arg(value_name = "GOAL|VAR=VALUE", requires = "list_only")]
    pub args: Vec<OsString>,
    /// With --list-only: make options (`-f FILE`), after `--`.
    #[arg(last = true, value_name = "MAKE ARGS", requires = "list_only")]
    pub make_args: Vec<OsString>,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Test names or globs.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Also every test that did not pass.
    #[arg(long)]
    pub failed: bool,
    /// Every test a change since the build affects (as `tests --affected` lists them);
    /// with NAMEs or --failed, only those of them.
    #[arg(long)]
    pub affected: bool,
    /// Which build's tests (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
    /// Re-run N recipes at once when what the tests need is out of date.
    #[arg(short, long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
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

/// `makescope targets` arguments.
#[derive(Args, Debug)]
pub struct TargetsArgs {
    /// Run in this directory.
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Only phony targets.
    #[arg(long)]
    pub phony: bool,
    /// Also every sub-make's targets, from the recorded build.
    #[arg(long)]
    pub recursive: bool,
    /// Show prerequisites.
    #[arg(long)]
    pub prereqs: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print `NAME<TAB>DOC` lines, phony targets first, for shell completion
    /// (`makescope completions --make bash`).
    #[arg(long, conflicts_with_all = ["json", "prereqs"])]
    pub complete: bool,
    /// Do not follow a `.DEFAULT` rule that forwards every goal to another make.
    #[arg(long)]
    pub no_follow: bool,
    /// With --recursive: which recorded build (default: the last one).
    #[arg(long, value_name = "ID", requires = "recursive")]
    pub build: Option<i64>,
    /// The make program to run.
    #[arg(
        long,
        env = "MAKESCOPE_MAKE",
        default_value = "make",
        value_name = "PROGRAM"
    )]
    pub make_program: PathBuf,
    /// Options and variable assignments for make (`-f FILE`, `VAR=value`), after `--`.
    #[arg(last = true, value_name = "MAKE ARGS")]
    pub make_args: Vec<OsString>,
}

/// `makescope replay` arguments.
#[derive(Args, Debug)]
#[command(
    after_help = "What differs from the recorded run (a redacted secret taken from this \
                  environment, make's jobserver dropped) is said in one line before it runs. \
                  Processes the command leaves running are killed when it ends, and named. \
                  A replay is traced and recorded as a new run of the command (`show REF` \
                  lists it and compares its files with the recorded ones); `log` and the \
                  last build skip it."
)]
pub struct ReplayArgs {
    /// A command id, a target name, or a path the command wrote.
    #[arg(value_name = "REF")]
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
    /// Do not trace the replay, and do not record it.
    #[arg(long, conflicts_with = "sandbox")]
    pub no_trace: bool,
    /// Run it where only its recorded inputs exist (read-only) and only its outputs'
    /// directories are writable; a path it touches outside its record is named.
    #[arg(long)]
    pub sandbox: bool,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
    /// Run for `makescope rebuild`: the recorded run says so.
    #[arg(long, hide = true)]
    pub for_rebuild: bool,
}

/// `makescope rebuild` arguments.
#[derive(Args, Debug)]
#[command(
    after_help = "A command is out of date when a file it read or executed has other content \
                  than the build left (a `touch` alone changes nothing), a file it wrote is \
                  missing or was changed since, a path it looked for and did not find exists \
                  now, or it failed or never finished. What reads its outputs follows, unless \
                  its re-run leaves them byte-identical (early cutoff). Needs a traced build."
)]
pub struct RebuildArgs {
    /// Bring only these up to date (a target, a path a command wrote, or a command id),
    /// with what they need; default: the whole recorded build.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<OsString>,
    /// Run N recipes at once.
    #[arg(short, long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// List what would run and the first reason for each; run nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Go on after a failure with whatever does not depend on it.
    #[arg(short, long)]
    pub keep_going: bool,
    /// Take the file states of a build recorded without them (by an older makescope)
    /// from the tree as it is now, which must be as the build left it; run nothing.
    #[arg(long, conflicts_with_all = ["dry_run", "targets"])]
    pub take_states: bool,
    /// Re-run untraced: the record keeps what the build read and wrote (each re-run is
    /// otherwise traced and recorded as a replay of its command).
    #[arg(long)]
    pub no_trace: bool,
    /// Which build (default: the last one).
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Run a subcommand, with what the subcommands share.
    Run(Config, Subcommand),
    /// Print a text made from the command line's own definition.
    Print(Generated),
}

/// A text made from [`Arguments`]' definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    /// `makescope completions SHELL`.
    Completions(Shell),
    /// `makescope completions --make SHELL`.
    MakeCompletions(Shell),
    /// `makescope man`.
    Man,
}

impl Arguments {
    /// The subcommand to run and what the subcommands share, or the text to print.
    pub fn resolve(self) -> Invocation {
        match self.command {
            Command::Run(command) => {
                Invocation::Run(Config::new(self.db), command.into_subcommand())
            }
            Command::Completions(args) if args.make => {
                Invocation::Print(Generated::MakeCompletions(args.shell))
            }
            Command::Completions(args) => Invocation::Print(Generated::Completions(args.shell)),
            Command::Man => Invocation::Print(Generated::Man),
        }
    }
}

impl Generated {
    /// Write the text to `out`.
    pub fn write(self, out: &mut dyn Write) -> io::Result<()> {
        let mut command = Arguments::command();
        match self {
            Generated::Completions(shell) => {
                clap_complete::generate(shell, &mut command, "makescope", out);
                Ok(())
            }
            Generated::MakeCompletions(shell) => write_make_completion(shell, out),
            Generated::Man => write_man_page(command, out),
        }
    }
}

/// Completion of `make`'s goals from `makescope targets --complete`, for bash (names
/// only: bash cannot show a description) and fish (names and doc comments). Options,
/// and words after `-f`/`-C`/`-I`/`-o`/`-W`, stay with the completion the shell already
/// had for make (bash-completion's `_make`, fish's own make completion).
fn write_make_completion(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    match shell {
        Shell::Bash => out.write_all(MAKE_COMPLETION_BASH.as_bytes()),
        Shell::Fish => out.write_all(MAKE_COMPLETION_FISH.as_bytes()),
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("`completions --make` is written for bash and fish, not {other}"),
        )),
    }
}

const MAKE_COMPLETION_BASH: &str = r#"# make's goals from `makescope targets` (phony ones first). Source it after
# bash-completion: `source <(makescope completions --make bash)`.
_makescope_make_previous=$(complete -p make 2>/dev/null)
_makescope_make() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    if [[ $cur == -* || $prev == @(-f|--file|--makefile|-C|--directory|-I|--include-dir|-o|--old-file|-W|--what-if|--assume-new|--assume-old|--new-file) ]]; then
        if declare -F _make >/dev/null; then _make "$@"; else COMPREPLY=($(compgen -f -- "$cur")); fi
        return
    fi
    local dir=. i word
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
            -C|--directory) dir=${COMP_WORDS[i+1]} ;;
            -C?*) dir=${word#-C} ;;
            --directory=*) dir=${word#--directory=} ;;
        esac
    done
    COMPREPLY=()
    local name
    while IFS=$'	' read -r name _; do
        [[ $name == "$cur"* ]] && COMPREPLY+=("$name")
    done < <(makescope targets -C "$dir" --complete 2>/dev/null)
}
complete -o nosort -o bashdefault -o default -F _makescope_make make
"#;

const MAKE_COMPLETION_FISH: &str = r#"# make's goals from `makescope targets` (phony ones first, with their doc comments).
# Save as ~/.config/fish/completions/make.fish, or `makescope completions --make fish | source`.
function __makescope_make_goals
    set -l dir .
    set -l words (commandline -opc)
    for i in (seq (count $words))
        switch $words[$i]
            case -C --directory
                set -l next (math $i + 1)
                test $next -le (count $words); and set dir $words[$next]
            case '-C?*'
                set dir (string sub -s 3 -- $words[$i])
            case '--directory=*'
                set dir (string replace -- --directory= '' $words[$i])
        end
    end
    makescope targets -C $dir --complete 2>/dev/null
end
complete -c make -f -n 'not string match -q -- "-*" (commandline -ct)' -a '(__makescope_make_goals)'
"#;

/// makescope's man page: the top-level page (NAME, SYNOPSIS, DESCRIPTION, OPTIONS, the
/// list of SUBCOMMANDS), then a section per subcommand with its own synopsis,
/// description and options as subsections.
fn write_man_page(mut command: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    // Building gives every subcommand its full name (`makescope make`) and the global
    // options.
    command.build();
    clap_mangen::Man::new(command.clone()).render(out)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_bin_name().unwrap_or(sub.get_name()).to_string();
        let page = clap_mangen::Man::new(sub.clone());
        let mut sections = Vec::new();
        page.render_synopsis_section(&mut sections)?;
        page.render_description_section(&mut sections)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            page.render_options_section(&mut sections)?;
        }
        page.render_extra_section(&mut sections)?;
        writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
        // The subcommand's own sections become subsections of its section.
        for line in String::from_utf8_lossy(&sections).lines() {
            match line.strip_prefix(".SH ") {
                Some(title) => writeln!(out, ".SS {title}")?,
                None => writeln!(out, "{line}")?,
            }
        }
    }
    Ok(())
}

impl RunCommand {
    fn into_subcommand(self) -> Subcommand {
        match self {
            RunCommand::Make(args) => Subcommand::Make(args.into_options()),
            RunCommand::Log(args) => {
                let format = format(args.json);
                Subcommand::Log(
                    LogOptions {
                        build: args.build,
                        failed_only: args.failed,
                        target_contains: args.target.map(String::into_bytes),
                    },
                    format,
                )
            }
            RunCommand::Tests(args) if args.list_only => {
                let (assignments, goals): (Vec<OsString>, Vec<OsString>) = args
                    .args
                    .into_iter()
                    .partition(|a| a.as_bytes().contains(&b'='));
                Subcommand::TestsListOnly(
                    ListOnlyOptions {
                        directory: args.directory,
                        goals,
                        make_args: args.make_args.into_iter().chain(assignments).collect(),
                        make_program: args.make_program,
                    },
                    format(args.json),
                )
            }
            RunCommand::Tests(args) => Subcommand::Tests(
                TestsOptions {
                    build: args.build,
                    failed_only: args.failed,
                    affected: args.affected,
                },
                makescope::commands::tests::View {
                    format: format(args.json),
                    junit: args.junit,
                },
            ),
            RunCommand::Show(args) => Subcommand::Show(
                ShowOptions {
                    reference: args.reference.into_vec(),
                    build: args.build,
                },
                show::View {
                    format: format(args.json),
                    all_files: args.files,
                },
            ),
            RunCommand::Targets(args) => Subcommand::Targets(
                TargetsOptions {
                    directory: args.directory,
                    phony_only: args.phony,
                    recursive: args.recursive,
                    follow_default: !args.no_follow,
                    build: args.build,
                    make_program: args.make_program,
                    make_args: args.make_args,
                },
                targets::View {
                    format: format(args.json),
                    prereqs: args.prereqs,
                    complete: args.complete,
                },
            ),
            RunCommand::Replay(args) => Subcommand::Replay(ReplayOptions {
                reference: args.reference.into_vec(),
                build: args.build,
                line: args.line,
                mode: if args.script {
                    ReplayMode::Script
                } else if args.dry_run {
                    ReplayMode::DryRun
                } else {
                    ReplayMode::Run
                },
                trace: !args.no_trace,
                sandbox: args.sandbox,
                for_rebuild: args.for_rebuild,
            }),
            RunCommand::Test(args) => Subcommand::Test(RerunOptions {
                build: args.build,
                names: args.names,
                failed: args.failed,
                affected: args.affected,
                jobs: usize::from(args.jobs),
            }),
            RunCommand::Rebuild(args) => Subcommand::Rebuild(RebuildOptions {
                targets: args.targets.into_iter().map(OsString::into_vec).collect(),
                jobs: usize::from(args.jobs),
                dry_run: args.dry_run,
                keep_going: args.keep_going,
                take_states: args.take_states,
                build: args.build,
                trace: !args.no_trace,
            }),
            RunCommand::Plugin(args) => Subcommand::Plugin(PluginOptions {
                install: args.install,
            }),
            RunCommand::Gc(args) => Subcommand::Gc(GcOptions {
                keep: args.keep,
                dry_run: args.dry_run,
            }),
            RunCommand::Lint(args) => Subcommand::Lint(
                makescope::lint::LintOptions { build: args.build },
                format(args.json),
            ),
            RunCommand::Export(ExportCommand::Ninja(args)) => Subcommand::Export(
                Export::Ninja(NinjaOptions {
                    build: args.build,
                    stamps: PathBuf::new(),
                }),
                args.output,
            ),
            RunCommand::Export(ExportCommand::Compdb(args)) => Subcommand::Export(
                Export::Compdb(CompdbOptions {
                    build: args.build,
                    filter: args.filter,
                }),
                args.output,
            ),
            RunCommand::Stats(args) => {
                Subcommand::Stats(BuildChoice { build: args.build }, format(args.json))
            }
            RunCommand::Export(ExportCommand::Trace(args)) => Subcommand::Export(
                Export::Trace(BuildChoice { build: args.build }),
                args.output,
            ),
            RunCommand::Export(ExportCommand::Dot(args)) => Subcommand::Export(
                Export::Dot(DotOptions {
                    build: args.build,
                    focus: args.focus.map(OsString::into_vec),
                    depth: args.depth,
                    files: args.files,
                }),
                args.output,
            ),
            RunCommand::Report(args) => {
                Subcommand::Report(BuildChoice { build: args.build }, args.output)
            }
            RunCommand::Coverage(args) => Subcommand::Coverage(
                CoverageOptions {
                    build: args.build,
                    prefixes: args.prefix,
                    packages: args.package,
                    database: Some(args.dpkg_info),
                },
                format(args.json),
            ),
        }
    }
}

impl MakeArgs {
    fn into_options(self) -> MakeOptions {
        let options = self.options;
        MakeOptions {
            tracing: if options.no_trace {
                Tracing::Off
            } else if options.trap_only {
                Tracing::TrapOnly
            } else {
                Tracing::FastPath
            },
            mode: if options.plain {
                Mode::Plain {
                    summary: !options.quiet,
                }
            } else if options.verbose {
                Mode::Verbose
            } else if options.quiet {
                Mode::Quiet
            } else {
                Mode::Concise
            },
            hooks: options.hooks,
            keep_secrets: options.keep_secrets,
            kill_leftovers: options.kill_leftovers,
            make_program: options.make_program,
            make_name: options.make_name,
            make_args: self.make_args,
        }
    }
}

fn format(json: bool) -> Format {
    if json {
        Format::Json
    } else {
        Format::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every `.rs` file under `dir`, recursively.
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("src/ is readable").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn only_main_and_the_commands_import_the_command_line() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        assert!(
            files.len() > 10,
            "found only {files:?} under {}",
            src.display()
        );
        let allowed = |path: &Path| {
            let relative = path.strip_prefix(&src).unwrap_or(path);
            relative == Path::new("main.rs")
                || relative == Path::new("cli.rs")
                || relative.starts_with("commands")
        };
        let offenders: Vec<String> = files
            .iter()
            .filter(|path| !allowed(path))
            .filter(|path| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                ["crate::cli", "makescope::cli", "super::cli"]
                    .iter()
                    .any(|import| text.contains(import))
            })
            .map(|path| path.display().to_string())
            .collect();
        assert!(
            offenders.is_empty(),
            "these modules import from cli.rs (arrows must point out of it): {offenders:?}"
        );
    }

    #[test]
    fn make_arguments_become_options() {
        let arguments =
            Arguments::parse_from(["makescope", "make", "--trap-only", "-q", "-j4", "all"]);
        let Invocation::Run(_, subcommand) = arguments.resolve() else {
            panic!("not a subcommand");
        };
        let Subcommand::Make(options) = subcommand else {
            panic!("not make: {subcommand:?}");
        };
        assert_eq!(options.tracing, Tracing::TrapOnly);
        assert_eq!(options.mode, Mode::Quiet);
        assert_eq!(
            options.make_args,
            [OsString::from("-j4"), OsString::from("all")]
        );
    }

    #[test]
    fn replay_arguments_become_options() {
        let arguments = Arguments::parse_from([
            "makescope",
            "replay",
            "out.o",
            "--line",
            "2",
            "--script",
            "--build",
            "3",
        ]);
        let Invocation::Run(_, subcommand) = arguments.resolve() else {
            panic!("not a subcommand");
        };
        let Subcommand::Replay(options) = subcommand else {
            panic!("not replay: {subcommand:?}");
        };
        assert_eq!(options.reference, b"out.o");
        assert_eq!((options.line, options.build), (Some(2), Some(3)));
        assert_eq!(options.mode, ReplayMode::Script);
        assert!(
            Arguments::try_parse_from(["makescope", "replay", "x", "--script", "--dry-run"])
                .is_err()
        );
    }

    #[test]
    fn completions_and_man_are_printed_not_run() {
        let arguments = Arguments::parse_from(["makescope", "completions", "zsh"]);
        assert!(matches!(
            arguments.resolve(),
            Invocation::Print(Generated::Completions(Shell::Zsh))
        ));
        let arguments = Arguments::parse_from(["makescope", "man"]);
        assert!(matches!(
            arguments.resolve(),
            Invocation::Print(Generated::Man)
        ));
        let arguments = Arguments::parse_from(["makescope", "plugin", "--install", "lib"]);
        let Invocation::Run(_, Subcommand::Plugin(options)) = arguments.resolve() else {
            panic!("not plugin");
        };
        assert_eq!(options.install, Some(PathBuf::from("lib")));
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Arguments::command().debug_assert();
    }
}
