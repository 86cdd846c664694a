//! `makescope test NAME…`: which recorded tests a user's names pick, and the plans
//! that run their recorded commands again without make.
//!
//! A NAME is a test's name as `tests` lists it, or a glob of it (`*`, `?`:
//! `string/test-str*`); `--failed` picks the tests that did not pass. Tests one command
//! ran together (DejaGnu's) are run once. Each command's recipe is planned as `replay`
//! plans it (`replay::Plan`) and run by the one executor (`replay::Executor`). What the
//! test needs is made again only when it is missing ([`missing_inputs`]: a file the test
//! read is gone, as make deletes an intermediate test program): out-of-date inputs are
//! `rebuild`'s question, not answered here.
//! What it owns: picking tests and matching names. What it must never do: print, or
//! write the record.

use std::path::Path;

use anyhow::{bail, Result};

use super::{TestCase, TestList};
use crate::access::AccessKind;
use crate::graph::CommandGraph;
use crate::paths::as_path;
use crate::store::Store;

/// Which tests `test` re-runs.
#[derive(Debug, Clone, Default)]
pub struct RerunOptions {
    /// The build whose tests are picked from (default: the last one).
    pub build: Option<i64>,
    /// Names or globs.
    pub names: Vec<String>,
    /// Also every test that did not pass.
    pub failed: bool,
}

/// The picked tests grouped by the command that runs them, in the listed order.
pub fn pick(list: &TestList, options: &RerunOptions) -> Result<Vec<(i64, Vec<TestCase>)>> {
    if options.names.is_empty() && !options.failed {
        bail!("name the tests to run (`makescope tests` lists them), or give --failed");
    }
    let mut unmatched: Vec<&str> = Vec::new();
    for name in &options.names {
        if !list.tests.iter().any(|t| matches(name, &t.name)) {
            unmatched.push(name);
        }
    }
    if !unmatched.is_empty() {
        let quoted: Vec<String> = unmatched.iter().map(|n| format!("`{n}`")).collect();
        bail!(
            "no test of build {} is named {} (`makescope tests` lists them)",
            list.build.id,
            quoted.join(", ")
        );
    }
    let mut groups: Vec<(i64, Vec<TestCase>)> = Vec::new();
    for test in &list.tests {
        let picked = (options.failed && test.failed())
            || options.names.iter().any(|n| matches(n, &test.name));
        if !picked {
            continue;
        }
        match groups.iter_mut().find(|(id, _)| *id == test.command_id) {
            Some((_, tests)) => tests.push(test.clone()),
            None => groups.push((test.command_id, vec![test.clone()])),
        }
    }
    if groups.is_empty() {
        bail!("build {} has no failed test to run", list.build.id);
    }
    Ok(groups)
}

/// The recorded commands to run again, in order, before command `id` so that every
/// file it read exists again: for each file `id` read that is missing now, the command
/// of the graph that wrote it, after what that one needs in turn. Files that exist are
/// taken as they are.
pub fn missing_inputs(store: &Store, graph: &CommandGraph, id: i64) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    let mut visiting = Vec::new();
    needs(store, graph, id, &mut out, &mut visiting)?;
    Ok(out)
}

fn needs(
    store: &Store,
    graph: &CommandGraph,
    id: i64,
    out: &mut Vec<i64>,
    visiting: &mut Vec<i64>,
) -> Result<()> {
    visiting.push(id);
    let missing: Vec<Vec<u8>> = store
        .accesses(id)?
        .into_iter()
        .filter(|a| AccessKind::from_name(&a.kind).is_some_and(|k| k.is_read()))
        .map(|a| a.path)
        .filter(|p| !Path::exists(as_path(p)))
        .collect();
    if !missing.is_empty() {
        for writer in graph.dependencies(id) {
            if out.contains(&writer) || visiting.contains(&writer) {
                continue;
            }
            let wrote_one = store.accesses(writer)?.iter().any(|a| {
                AccessKind::from_name(&a.kind).is_some_and(|k| k.is_write())
                    && missing.contains(&a.path)
            });
            if wrote_one {
                needs(store, graph, writer, out, visiting)?;
                out.push(writer);
            }
        }
    }
    visiting.pop();
    Ok(())
}

/// Whether `name` matches `pattern`: equal, or a glob with `*` (any run of characters,
/// `/` included) and `?` (one character).
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn names_match_exactly_or_by_glob() {
        assert!(matches("string/test-strlen", "string/test-strlen"));
        assert!(!matches("string/test-str", "string/test-strlen"));
        assert!(matches("string/test-str*", "string/test-strlen"));
        assert!(matches("*strlen", "string/test-strlen"));
        assert!(matches("t-?lpha", "t-alpha"));
        assert!(!matches("t-?", "t-alpha"));
    }
}
