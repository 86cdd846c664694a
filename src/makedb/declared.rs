//! make's declared graph from the database a make process dumped when it exited (the
//! plugin's `.mkdb`): every target it considered, with its prerequisites as make had
//! resolved them (explicit ones, those of the pattern rule it chose, those of included
//! `.d` files), normal and order-only.
//!
//! Why the dump and not `$^`/`$|` taken as each recipe starts: the dump is written
//! anyway (for `targets --recursive`), so the build pays nothing more; it has the
//! targets whose recipe never ran too (a phony `all`, an up-to-date object, a target
//! with no recipe), and a declared path from one target to another often goes through
//! those; and records made before the table existed still have their dumps. What it
//! lacks: names are make's own spelling, not VPATH-resolved (`$^` would be).
//!
//! What it must never do: run make, or keep targets make did not consider (a database
//! lists every rule of every makefile read: most were never on the way from a goal).

use std::path::Path;

use super::parse::{parse_bytes, Dump};
use crate::store::NewPrereq;

/// The considered targets of the dump at `path` (and `.NOTPARALLEL`, which orders all
/// of a make's recipes, whether considered or not). `None` when it cannot be read or
/// holds no database.
pub fn declared(path: &Path) -> Option<Vec<NewPrereq>> {
    let bytes = super::dump::read(path).ok()?;
    Some(from_dump(&parse_bytes(&bytes).ok()?))
}

/// The considered targets of a parsed dump (see [`declared`]).
pub fn from_dump(dump: &Dump) -> Vec<NewPrereq> {
    let mut out = Vec::new();
    for db in &dump.databases {
        for rule in &db.rules {
            let considered = rule.updated
                && rule.is_target
                && (!rule.prerequisites.is_empty()
                    || !rule.order_only.is_empty()
                    || rule.recipe.is_some());
            if !considered && rule.name != ".NOTPARALLEL" {
                continue;
            }
            out.push(NewPrereq {
                target: rule.name.clone(),
                phony: rule.phony,
                recipe: rule.recipe.as_ref().map(|l| (l.file.clone(), l.line)),
                prerequisites: rule.prerequisites.clone(),
                order_only: rule.order_only.clone(),
            });
        }
    }
    out
}

/// Whether the dump at `path` has a `.NOTPARALLEL` rule (as [`declared`] keeps it:
/// whether considered or not), found without parsing the rest: a rule's line starts
/// with its name and a colon. `None` when it cannot be read.
pub fn not_parallel(path: &Path) -> Option<bool> {
    let bytes = super::dump::read(path).ok()?;
    const RULE: &[u8] = b".NOTPARALLEL:";
    Some(bytes.starts_with(RULE) || memchr::memmem::find(&bytes, &[b"\n", RULE].concat()).is_some())
}
