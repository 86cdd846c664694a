//! From make databases to the listing: one entry per target name, with the rule's
//! location and doc comment read from the makefiles. This is also the shape of
//! `makescope targets --json` (documented in the README; change it only by adding
//! fields).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::{Database, Location, SPECIAL_TARGETS};
use super::source::{absolute, Makefiles};

/// A place in a makefile, with an absolute path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub file: PathBuf,
    pub line: u32,
}

/// One target of the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    pub phony: bool,
    /// The default goal of the make that defines it.
    pub default_goal: bool,
    pub double_colon: bool,
    /// Where the target's rule is written; `null` when it cannot be told.
    pub location: Option<Place>,
    /// Where its recipe starts (make's own `recipe to execute (from …)`).
    pub recipe: Option<Place>,
    pub doc: Option<String>,
    pub prerequisites: Vec<String>,
    pub order_only: Vec<String>,
    /// The directory of the make that defines it (differs from the section's when a
    /// `.DEFAULT` rule forwards to another make).
    pub directory: PathBuf,
}

/// One pattern rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pattern {
    pub targets: Vec<String>,
    pub prerequisites: Vec<String>,
    pub order_only: Vec<String>,
    pub terminal: bool,
    pub recipe: Option<Place>,
    pub directory: PathBuf,
}

/// What one make (or several in one directory) knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// The directory make ran in.
    pub directory: PathBuf,
    /// The recorded make argv of each make merged here (empty when makescope ran make).
    pub argv: Vec<Vec<String>>,
    pub level: Option<u32>,
    /// `dump` (the plugin's, from the record) or `make` (makescope ran `make -p`).
    pub source: String,
    pub default_goal: Option<String>,
    /// The makefiles read (MAKEFILE_LIST), absolute.
    pub makefiles: Vec<PathBuf>,
    pub targets: Vec<Target>,
    pub pattern_rules: Vec<Pattern>,
    /// Problems met on the way (dump lines not understood, …).
    pub warnings: Vec<String>,
}

fn place(curdir: &Path, location: &Location) -> Place {
    Place {
        file: absolute(curdir, &location.file),
        line: location.line,
    }
}

/// Add what `db` knows to `section`: targets it already has keep their first entry.
pub fn add_database(
    section: &mut Section,
    db: &Database,
    fallback_dir: &Path,
    sources: &mut Makefiles,
) {
    let curdir = db
        .curdir()
        .map(PathBuf::from)
        .unwrap_or_else(|| fallback_dir.to_path_buf());
    let makefiles: Vec<PathBuf> = db
        .makefiles()
        .iter()
        .map(|m| absolute(&curdir, m))
        .collect();
    let default_goal = db.default_goal().map(str::to_string);
    if section.default_goal.is_none() {
        section.default_goal.clone_from(&default_goal);
    }
    if section.level.is_none() {
        section.level = db.level();
    }
    let section_goal = section.default_goal.clone();
    for m in &makefiles {
        if !section.makefiles.contains(m) {
            section.makefiles.push(m.clone());
        }
    }

    let mut index: HashMap<String, usize> = section
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut fresh: Vec<usize> = Vec::new();
    for rule in &db.rules {
        if !rule.is_target || SPECIAL_TARGETS.contains(&rule.name.as_str()) {
            continue;
        }
        if let Some(&i) = index.get(&rule.name) {
            if !fresh.contains(&i) {
                continue; // defined by an earlier make of this section
            }
            let target = &mut section.targets[i];
            target.phony |= rule.phony;
            for p in &rule.prerequisites {
                if !target.prerequisites.contains(p) {
                    target.prerequisites.push(p.clone());
                }
            }
            for p in &rule.order_only {
                if !target.order_only.contains(p) {
                    target.order_only.push(p.clone());
                }
            }
            if target.recipe.is_none() {
                target.recipe = rule.recipe.as_ref().map(|l| place(&curdir, l));
            }
            continue;
        }
        index.insert(rule.name.clone(), section.targets.len());
        fresh.push(section.targets.len());
        section.targets.push(Target {
            name: rule.name.clone(),
            phony: rule.phony,
            default_goal: section_goal.as_deref() == Some(rule.name.as_str()),
            double_colon: rule.double_colon,
            location: None,
            recipe: rule.recipe.as_ref().map(|l| place(&curdir, l)),
            doc: None,
            prerequisites: rule.prerequisites.clone(),
            order_only: rule.order_only.clone(),
            directory: curdir.clone(),
        });
    }
    for &i in &fresh {
        let target = &mut section.targets[i];
        target.location = match &target.recipe {
            Some(recipe) => Some(Place {
                line: sources.rule_line(&recipe.file, recipe.line),
                file: recipe.file.clone(),
            }),
            None => sources
                .find_rule(&makefiles, &target.name)
                .map(|(file, line)| Place { file, line }),
        };
        if let Some(location) = &target.location {
            target.doc = sources.doc(&location.file, location.line);
        }
    }

    for rule in &db.pattern_rules {
        // Built-in rules and make's recipe-less placeholders (`%.out:`) are not the
        // makefile's; a pattern rule a makefile writes has a recipe location.
        if rule.builtin || rule.recipe.is_none() {
            continue;
        }
        section.pattern_rules.push(Pattern {
            targets: rule.targets.clone(),
            prerequisites: rule.prerequisites.clone(),
            order_only: rule.order_only.clone(),
            terminal: rule.terminal,
            recipe: rule.recipe.as_ref().map(|l| place(&curdir, l)),
            directory: curdir.clone(),
        });
    }
}

/// Sort a section's targets by name (make prints its hash-table order).
pub fn sort(section: &mut Section) {
    section.targets.sort_by(|a, b| a.name.cmp(&b.name));
}

/// The section for one `make -p` run in `directory`: the top make's database first
/// (level 0, printed last), then what the makes it forwarded to know.
pub fn section_from_run(dbs: &[Database], directory: &Path, sources: &mut Makefiles) -> Section {
    let mut section = Section {
        directory: directory.to_path_buf(),
        source: "make".into(),
        ..Section::default()
    };
    let top = dbs
        .iter()
        .rposition(|db| db.level() == Some(0))
        .unwrap_or(dbs.len().saturating_sub(1));
    if let Some(db) = dbs.get(top) {
        add_database(&mut section, db, directory, sources);
    }
    for (i, db) in dbs.iter().enumerate() {
        if i != top {
            add_database(&mut section, db, directory, sources);
        }
    }
    sort(&mut section);
    section
}
