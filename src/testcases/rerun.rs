//! `makescope test NAME…`: which recorded tests a user's names pick, and the plans
//! that run their recorded commands again without make.
//!
//! A NAME is a test's name as `tests` lists it, or a glob of it (`*`, `?`:
//! `string/test-str*`); `--failed` picks the tests that did not pass. Tests one command
//! ran together (DejaGnu's) are run once. Each command's recipe is planned as `replay`
//! plans it (`replay::Plan`) and run by the one executor (`replay::Executor`); what the
//! test needs built first is not brought up to date here (that is `rebuild`'s
//! out-of-date query, not on this branch): the test runs against the tree as it is.
//! What it owns: picking tests and matching names. What it must never do: print, or
//! write the record.

use anyhow::{bail, Result};

use super::{TestCase, TestList};

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
