//! The typed model of one make database: what `make -p` (or the plugin's dump) says
//! about variables, pattern rules and files. Names and values are kept as make
//! printed them; paths in locations are as make saw them (relative to `directory`).

use serde::{Deserialize, Serialize};

/// A place in a makefile, as make reports it (`from 'Makefile', line 12`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The makefile, as make named it (relative to the make's directory unless absolute).
    pub file: String,
    /// 1-based line.
    pub line: u32,
}

/// Where a variable's value came from (make's `origin` function).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Automatic,
    Default,
    Environment,
    EnvironmentOverride,
    Makefile,
    CommandLine,
    Override,
}

/// How a variable is expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// `=` or `define`: expanded when used.
    Recursive,
    /// `+=` on a recursive variable.
    Append,
    /// `:=`: expanded when defined.
    Simple,
}

/// One variable, global or target-specific.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    pub origin: Origin,
    pub private: bool,
    pub flavor: Flavor,
    /// Where it was (last) set, when make knows.
    pub location: Option<Location>,
    /// The value as make printed it (`$` doubled for simple variables is undone).
    pub value: String,
}

/// One entry of make's `# Files` section: a file make knows about. A double-colon
/// target has one entry per rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    /// False for make's `# Not a target:` entries (files only mentioned as prerequisites).
    pub is_target: bool,
    pub double_colon: bool,
    pub phony: bool,
    pub precious: bool,
    pub intermediate: bool,
    /// make considered it while it ran (`#  File has been updated.`): it is on the way
    /// from a goal, whether or not its recipe ran.
    #[serde(default)]
    pub updated: bool,
    /// Normal prerequisites, in make's order.
    pub prerequisites: Vec<String>,
    /// Order-only prerequisites (after `|`).
    pub order_only: Vec<String>,
    /// Where the recipe starts; `None` without a recipe or for a built-in one.
    pub recipe: Option<Location>,
    /// The recipe's logical lines, without the recipe prefix.
    pub recipe_lines: Vec<String>,
    /// Target-specific variables.
    pub variables: Vec<Variable>,
    /// Line of the dump where this entry starts (1-based).
    pub dump_line: usize,
}

/// One pattern (implicit) rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternRule {
    pub targets: Vec<String>,
    /// `%:: …`: a terminal match-anything rule.
    pub terminal: bool,
    pub prerequisites: Vec<String>,
    pub order_only: Vec<String>,
    pub recipe: Option<Location>,
    /// make's built-in rule (recipe `(built-in)`).
    pub builtin: bool,
    pub dump_line: usize,
}

/// One make process's database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    /// The directory from a preceding `Entering directory` line, if any.
    pub entered: Option<String>,
    pub variables: Vec<Variable>,
    pub pattern_rules: Vec<PatternRule>,
    pub rules: Vec<Rule>,
    /// First line of the database in the dump (1-based).
    pub first_line: usize,
}

impl Database {
    /// A global variable by name.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().rev().find(|v| v.name == name)
    }

    /// The make's working directory (`CURDIR`).
    pub fn curdir(&self) -> Option<&str> {
        self.variable("CURDIR")
            .map(|v| v.value.as_str())
            .or(self.entered.as_deref())
    }

    /// `MAKELEVEL`: 0 for the top make.
    pub fn level(&self) -> Option<u32> {
        self.variable("MAKELEVEL")
            .and_then(|v| v.value.trim().parse().ok())
    }

    /// `.DEFAULT_GOAL`, when set and non-empty.
    pub fn default_goal(&self) -> Option<&str> {
        self.variable(".DEFAULT_GOAL")
            .map(|v| v.value.trim())
            .filter(|v| !v.is_empty())
    }

    /// The makefiles make read (`MAKEFILE_LIST`), in order, without duplicates.
    pub fn makefiles(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(v) = self.variable("MAKEFILE_LIST") {
            for word in v.value.split_whitespace() {
                if !out.iter().any(|w| w == word) {
                    out.push(word.to_string());
                }
            }
        }
        out
    }
}

/// make's special targets: never listed as something to build.
pub const SPECIAL_TARGETS: &[&str] = &[
    ".PHONY",
    ".SUFFIXES",
    ".DEFAULT",
    ".PRECIOUS",
    ".INTERMEDIATE",
    ".SECONDARY",
    ".SECONDEXPANSION",
    ".DELETE_ON_ERROR",
    ".IGNORE",
    ".LOW_RESOLUTION_TIME",
    ".SILENT",
    ".EXPORT_ALL_VARIABLES",
    ".NOTPARALLEL",
    ".ONESHELL",
    ".POSIX",
    ".NOEXPORT",
    ".MAKE",
];
