//! Replay: run a recorded recipe again as make ran it, without make.
//!
//! A recipe is the lines one make job ran (`command` rows sharing `make_id` and `job`,
//! ordered by `line_index`). [`Recipe::load`] reads them from the record; [`Plan::new`]
//! turns them into what will run: the recorded directory, the recorded shell and
//! `.SHELLFLAGS`, each expanded line, and the recorded environment made whole again
//! (a redacted secret taken from the current environment), with makescope's own traces
//! taken out (its `MAKESCOPE_*` variables, its plugin in `MAKEFLAGS`, its tracer helper
//! in `LD_PRELOAD`) and make's jobserver descriptors dropped. Whatever differs from the
//! recorded run is a [`Note`], one line each, said before anything runs; what cannot be
//! made whole is a [`ReplayError`] and nothing runs. [`exec`] is the executor that
//! runs a plan's lines (the seam `rebuild` and `test` use too); [`script`] renders a
//! plan as text: a dry run's listing or a standalone POSIX sh script.
//!
//! [`plan`] is the engine's entry: a [`Config`] and plain [`ReplayOptions`] in, the
//! [`Plan`] out; `commands::replay` prints it or has the [`Executor`] run it.
//!
//! This module reads the record and never writes it; it never prints (the notes are
//! data) and never sees the command line's types.

pub mod exec;
mod plan;
pub mod record;
pub mod sandbox;
pub mod script;

use std::path::PathBuf;

pub use exec::{Executor, LineOutcome, Outcome, SandboxRun};
pub use plan::{CurrentEnvironment, Line, Note, Plan, Secrets, Variable};
pub use sandbox::{Sandbox, SandboxError};

use crate::config::Config;
use crate::store::{CommandRow, Store, StoreError};
use crate::util::lossy;

/// What `makescope replay` does with a recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Run it.
    #[default]
    Run,
    /// List what would run; run nothing.
    DryRun,
    /// Write a standalone POSIX sh script that runs it (secrets stay out of it); run
    /// nothing.
    Script,
}

/// What to replay and how, in plain values (the command line builds this).
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// A command id, a target, or a path a command wrote (as `show` takes it).
    pub reference: Vec<u8>,
    /// The build to look in; `None`: the last one.
    pub build: Option<i64>,
    /// One line of the recipe (1-based, as `show` numbers them); `None`: every line.
    pub line: Option<usize>,
    /// Run, list, or write a script.
    pub mode: Mode,
    /// Trace the run and record it as a new run of the command (the default).
    pub trace: bool,
    /// Run it where only its recorded files exist (implies tracing).
    pub sandbox: bool,
    /// Run for `makescope rebuild` (its recorded run's arguments start `rebuild`).
    pub for_rebuild: bool,
}

/// The plan for replaying what `options` name: the record opened read-only, the
/// reference resolved as `show` resolves it, the recipe loaded and planned. Redacted
/// secrets come from `secrets` (the current environment, for the binary).
pub fn plan(
    config: &Config,
    options: &ReplayOptions,
    secrets: &dyn Secrets,
) -> anyhow::Result<Plan> {
    let (store, build) = config.open_build(options.build)?;
    let ids = crate::query::resolve(&store, &build, &options.reference)?;
    let recipe = Recipe::load(&store, &ids)?;
    Ok(Plan::new(&recipe, options.line, options.mode, secrets)?)
}

/// The sandbox for `plan`'s lines: what their recorded commands touched.
pub fn sandbox(config: &Config, plan: &Plan) -> anyhow::Result<Sandbox> {
    let store = config.open_record()?;
    let ids: Vec<i64> = plan.lines.iter().map(|l| l.command_id).collect();
    Ok(Sandbox::new(&store, &ids, &plan.directory)?)
}

/// Record a traced run of `plan` (what `options` asked for) as a new run of its
/// command: see [`record`].
pub fn record_run(
    config: &Config,
    options: &ReplayOptions,
    plan: &Plan,
    outcome: &Outcome,
) -> Result<record::Recorded, StoreError> {
    let first: &[u8] = if options.for_rebuild {
        b"rebuild"
    } else {
        b"replay"
    };
    let mut argv: Vec<Vec<u8>> = vec![first.to_vec(), options.reference.clone()];
    if let Some(line) = options.line {
        argv.push(format!("--line={line}").into_bytes());
    }
    if options.sandbox {
        argv.push(b"--sandbox".to_vec());
    }
    let mut store = Store::open_write(&config.db)?;
    record::record(&mut store, plan, outcome, &crate::util::join_nul(&argv))
}

/// Why a replay cannot start. Each is one line for the user; nothing has run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A REF matched nothing replayable (the caller resolved it to no command).
    #[error("there is no command {0} in the record")]
    NoSuchCommand(i64),
    /// The ids name lines of more than one recipe.
    #[error("{0}")]
    SeveralRecipes(String),
    /// `--line N` outside the recipe.
    #[error("the recipe of `{target}` has {lines} recorded line(s); there is no line {line}")]
    NoSuchLine {
        target: String,
        lines: usize,
        line: usize,
    },
    /// The record does not say which shell ran the command.
    #[error("the record does not say which shell ran command {0}; it cannot be replayed")]
    NoShell(i64),
    /// The command's directory is gone.
    #[error("the command's directory {} no longer exists; nothing was run", .0.display())]
    DirectoryGone(PathBuf),
    /// Redacted secrets that the current environment does not provide.
    #[error("{} redacted in the record and not set in this environment: set {} to replay", names(.0), if .0.len() == 1 { "it" } else { "them" })]
    SecretsMissing(Vec<String>),
    /// The command could not be started at all.
    #[error("cannot run {shell}: {error}")]
    Spawn {
        shell: String,
        error: std::io::Error,
    },
}

fn names(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    if quoted.len() == 1 {
        format!("{} is", quoted[0])
    } else {
        format!("{} are", quoted.join(", "))
    }
}

/// The recorded lines of one recipe, in the order make ran them.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub lines: Vec<CommandRow>,
}

impl Recipe {
    /// The recipe the commands `ids` belong to (the output of resolving a REF): all
    /// of them must be lines of one make job; the recipe is every line of that job.
    pub fn load(store: &Store, ids: &[i64]) -> Result<Recipe, ReplayError> {
        let mut rows = Vec::with_capacity(ids.len());
        for &id in ids {
            rows.push(store.command(id)?.ok_or(ReplayError::NoSuchCommand(id))?);
        }
        let Some(first) = rows.first() else {
            return Err(ReplayError::SeveralRecipes(
                "nothing to replay: no command given".into(),
            ));
        };
        let one_recipe = rows.iter().all(|c| {
            c.build_id == first.build_id && c.make_id == first.make_id && c.job == first.job
        });
        if !one_recipe {
            let mut text = format!(
                "that matches {} commands of different recipes; pick one by id:",
                rows.len()
            );
            for c in rows.iter().take(20) {
                text.push_str(&format!(
                    "\n  {:>6}  {}  ({})",
                    c.id,
                    lossy(&c.target),
                    lossy(&c.directory)
                ));
            }
            return Err(ReplayError::SeveralRecipes(text));
        }
        let lines = store.recipe(first.build_id, first.make_id, first.job)?;
        Ok(Recipe {
            lines: if lines.is_empty() { rows } else { lines },
        })
    }
}
