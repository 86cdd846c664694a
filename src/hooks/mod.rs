//! The user's Python hooks, run in one embedded interpreter for the whole build.
//!
//! (Interface fixed by the recorder; implementation in progress.)

use crate::output::{CommandInfo, Label, Outcome};

/// What hooks decided about a finished command.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub tags: Vec<(String, Option<String>)>,
    pub test_name: Option<String>,
    pub test_result: Option<String>,
}

/// Loaded hooks.
pub struct Hooks {}

impl Hooks {
    /// Load a hooks file. A syntax error is reported with file and line.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Hooks> {
        anyhow::bail!("hooks are not available yet: {}", path.display())
    }
    /// The label a hook gives this command, if it gives one.
    pub fn label(&mut self, _info: &CommandInfo, _default: &Label) -> Option<Label> {
        None
    }
    /// A command started.
    pub fn started(&mut self, _info: &CommandInfo) {}
    /// A command finished; `reads`/`writes` are its files when traced.
    pub fn finished(&mut self, _info: &CommandInfo, _outcome: &Outcome) -> Verdict {
        Verdict::default()
    }
    /// Whether any hook raised during the build.
    pub fn failed(&self) -> bool {
        false
    }
}
