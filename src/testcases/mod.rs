//! The test cases of a recorded build: which commands ran tests, under which names, with
//! which results, as the build's own test convention reports them.
//!
//! Each convention is one small recogniser (a submodule) that reads the record (a
//! command's directory, text, exit status and the files it wrote) and the result files
//! the convention writes, read from disk at the path the record says the command wrote
//! them, as they are now. A result file that is missing or cut short makes its test
//! UNRESOLVED, with why. The recognisers, in the order they are asked:
//!
//! 1. a hook's `test_name`/`test_result` in the record (the `tests` view) wins for its
//!    command: a hook adds a recogniser by naming the tests the built-in ones miss, and
//!    overrides one by naming (or renaming, re-judging) the commands it claims; the tag
//!    [`NOT_A_TEST`] (`cmd.tag("not-a-test")`) says the command runs no test, and no
//!    recogniser may claim it (asked only of the commands a built-in one claims);
//! 2. [`glibc`]: `scripts/evaluate-test.sh NAME …` and the `.test-result` file;
//! 3. [`automake`]: the parallel harness's `.trs` files (`:test-result:` lines);
//! 4. [`dejagnu`]: a `.sum` file (`Running x.exp ...`, `PASS: name` lines);
//! 5. [`fallback`], only when none of those found a test in the build: under a goal named `check`/`test`/`tests`, a command that runs a
//!    program the build produced, its exit status the result: marked as guessed.
//!
//! A test `makescope test` ran again ([`rerun`]) is listed with its newest re-run's
//! result, which the record keeps (`Store::test_reruns`), and the one before it.
//!
//! Results stay as the project spells them. What it owns: recognising and reading
//! results, and the JUnit rendering ([`junit`]). What it must never do: print, or change
//! a file of the tree (it only reads).

pub mod automake;
pub mod dejagnu;
pub mod fallback;
pub mod glibc;
pub mod junit;
pub mod listing;
pub mod rerun;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::{json, Value};

use crate::config::Config;
use crate::output::shell::SimpleCommand;
use crate::paths;
use crate::store::{BuildRow, CommandFilter, CommandRow, Store};
use crate::util::lossy;

/// Which build `tests` lists, and which of its tests.
#[derive(Debug, Clone, Default)]
pub struct TestsOptions {
    /// The build (default: the last one).
    pub build: Option<i64>,
    /// Only the tests that did not pass ([`TestCase::failed`]).
    pub failed_only: bool,
    /// Only the tests whose command is out of date ([`crate::rebuild::query`]): a file
    /// it, or a command upstream of it, read has changed since the build; each says why.
    pub affected: bool,
}

/// Which rule found a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// A Python hook named the command's test (the record's `test_name`).
    Hook,
    Glibc,
    Automake,
    DejaGnu,
    /// No convention: a built program run under a check goal, its exit status the result.
    Fallback,
}

impl Convention {
    pub fn name(self) -> &'static str {
        match self {
            Convention::Hook => "hook",
            Convention::Glibc => "glibc",
            Convention::Automake => "automake",
            Convention::DejaGnu => "dejagnu",
            Convention::Fallback => "guessed",
        }
    }
}

/// One test case of a build.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The name as the convention reports it (`string/test-strlen`, `sub/t1`).
    pub name: String,
    /// The directory of the command that ran it.
    pub directory: Vec<u8>,
    /// As the project spells it: PASS, FAIL, XFAIL, XPASS, UNSUPPORTED, SKIP, ERROR,
    /// UNRESOLVED (makescope's, when a result file is missing or cut short) …
    pub result: String,
    /// The running command's duration; `None` when the convention runs many tests in
    /// one command (DejaGnu) or the command did not end.
    pub seconds: Option<f64>,
    /// The command that ran it.
    pub command_id: i64,
    pub convention: Convention,
    /// Why the result is what it is when makescope, not the project, decided it
    /// (UNRESOLVED: the missing file; a guess: "guessed from the exit status").
    pub note: Option<String>,
    /// Where the convention keeps the test's own output, when not on the command's
    /// stdout (glibc's `TEST.out`, automake's `TEST.log`).
    pub output_file: Option<PathBuf>,
    /// When the result is that of a `makescope test` re-run (the newest, kept in the
    /// record): the result listed before that run.
    pub before: Option<String>,
}

impl TestCase {
    /// The results that are not a success, expected failure or skip.
    pub fn failed(&self) -> bool {
        matches!(
            self.result.as_str(),
            "FAIL" | "XPASS" | "ERROR" | "UNRESOLVED" | "KPASS"
        )
    }

    /// A result makescope guessed (no convention recognised).
    pub fn guessed(&self) -> bool {
        self.convention == Convention::Fallback
    }
}

/// What a recogniser says about one command.
#[derive(Debug)]
pub enum Claim {
    /// Not this convention's: ask the next recogniser.
    NotMine,
    /// The convention's, and not a test (glibc's locale generation steps).
    NotATest,
    /// The tests it ran.
    Tests(Vec<TestCase>),
}

/// What every recogniser may read: the build, its commands, the result files they wrote.
pub struct Context<'a> {
    pub store: &'a Store,
    pub build: &'a BuildRow,
    pub commands: &'a [CommandRow],
    /// Per command id, the result files ([`RESULT_SUFFIXES`]) the record says it wrote.
    pub written: BTreeMap<i64, Vec<Vec<u8>>>,
}

/// The suffixes of the result files the conventions write.
pub const RESULT_SUFFIXES: [&str; 3] = [".test-result", ".trs", ".sum"];

impl Context<'_> {
    /// The files with `suffix` that `command` wrote, by the record.
    pub fn written_by(&self, command: &CommandRow, suffix: &str) -> Vec<Vec<u8>> {
        self.written
            .get(&command.id)
            .into_iter()
            .flatten()
            .filter(|p| p.ends_with(suffix.as_bytes()))
            .cloned()
            .collect()
    }
}

/// The test cases of one build.
pub struct TestList {
    pub store: Store,
    pub build: BuildRow,
    /// The top make's directory (`make -C DIR`'s DIR), that directories are shown
    /// relative to; the build's when unknown.
    pub top: Vec<u8>,
    /// By directory, then name (in the order found for equal names).
    pub tests: Vec<TestCase>,
    /// Per command id, the result files the record says it wrote.
    written: BTreeMap<i64, Vec<Vec<u8>>>,
}

/// The tests of the build `options` picks.
pub fn list(config: &Config, options: &TestsOptions) -> Result<TestList> {
    let (store, build) = config.open_build(options.build)?;
    let commands = store.commands(build.id, &CommandFilter::default())?;
    let mut written: BTreeMap<i64, Vec<Vec<u8>>> = BTreeMap::new();
    for (id, path) in store.written_with_suffix(build.id, &RESULT_SUFFIXES)? {
        written.entry(id).or_default().push(path);
    }
    let context = Context {
        store: &store,
        build: &build,
        commands: &commands,
        written: written.clone(),
    };
    let mut tests = Vec::new();
    let mut unclaimed = Vec::new();
    for command in &commands {
        match recognise(&context, command) {
            Claim::NotMine => unclaimed.push(command),
            Claim::NotATest => {}
            Claim::Tests(found) => tests.extend(found),
        }
    }
    if tests.is_empty() {
        let under_check = fallback::UnderCheck::new(&store, build.id)?;
        for command in unclaimed {
            if hook_says_not_a_test(&context, command) {
                continue;
            }
            if let Claim::Tests(found) = fallback::recognise(&context, &under_check, command)? {
                tests.extend(found);
            }
        }
        fallback::number_repeats(&mut tests);
    }
    // A test `makescope test` ran again: its newest re-run's result, and what was
    // listed before that run.
    let reruns = store.test_reruns(build.id)?;
    if !reruns.is_empty() {
        for t in &mut tests {
            if let Some(again) = reruns.get(&(t.command_id, t.name.clone())) {
                t.result = again.result.clone();
                t.seconds = again.seconds.or(t.seconds);
                t.before = Some(again.before.clone());
                let said = format!("re-run by `makescope test`; before: {}", again.before);
                t.note = Some(match &again.note {
                    Some(note) => format!("{said}; {note}"),
                    None => said,
                });
            }
        }
    }
    if options.failed_only {
        tests.retain(TestCase::failed);
    }
    if options.affected {
        // Out of date because something changed since the build (not because it failed
        // or never finished there, which rebuild also re-runs), directly or downstream.
        let answer = crate::rebuild::query(&store, build.clone(), &[])?;
        let changed = |r: &crate::rebuild::Reason| {
            !matches!(
                r,
                crate::rebuild::Reason::Failed(_) | crate::rebuild::Reason::NeverFinished
            )
        };
        // Each unit reached, with the change that reaches it (the root's own reason, not
        // "after …": a test's note names the file that changed).
        let mut reached: Vec<Option<String>> = answer
            .units
            .iter()
            .map(|u| (u.direct && changed(&u.reason)).then(|| u.reason.to_string()))
            .collect();
        loop {
            let mut grew = false;
            for (i, unit) in answer.units.iter().enumerate() {
                if reached[i].is_none() {
                    if let Some(&a) = unit.after.iter().find(|&&a| reached[a].is_some()) {
                        reached[i] = reached[a].clone();
                        grew = true;
                    }
                }
            }
            if !grew {
                break;
            }
        }
        let mut why: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
        for (unit, reason) in answer.units.iter().zip(&reached) {
            if let Some(reason) = reason {
                for (leaf, _) in &unit.lines {
                    why.entry(leaf.id).or_insert_with(|| reason.clone());
                }
            }
        }
        tests.retain(|t| why.contains_key(&t.command_id));
        for t in &mut tests {
            let reason = format!("affected: {}", why[&t.command_id]);
            t.note = Some(match t.note.take() {
                Some(note) => format!("{reason}; {note}"),
                None => reason,
            });
        }
    }
    tests.sort_by(|a, b| (&a.directory, &a.name).cmp(&(&b.directory, &b.name)));
    let top = store
        .makes(build.id)?
        .into_iter()
        .find(|m| m.parent_make_id.is_none())
        .map_or_else(|| build.directory.clone(), |m| m.directory);
    Ok(TestList {
        store,
        build,
        top,
        tests,
        written,
    })
}

impl TestList {
    /// The tests `command` ran as its convention reports them now (its result files read
    /// again, after a re-run): the same recogniser that found `was` asked again. `None`
    /// for a guessed test, whose result is the exit status only the caller knows.
    pub fn recognise_again(&self, command: &CommandRow, was: &TestCase) -> Option<Vec<TestCase>> {
        let context = Context {
            store: &self.store,
            build: &self.build,
            commands: std::slice::from_ref(command),
            written: self
                .written
                .get(&command.id)
                .map(|w| BTreeMap::from([(command.id, w.clone())]))
                .unwrap_or_default(),
        };
        match (was.convention, recognise(&context, command)) {
            (Convention::Fallback, _) => None,
            (_, Claim::Tests(found)) => Some(found),
            (_, _) => Some(Vec::new()),
        }
    }
}

/// What the first recogniser that claims `command` says of it: a hook's test name,
/// then glibc, automake, DejaGnu (the fallback is [`list`]'s second pass).
fn recognise(context: &Context<'_>, command: &CommandRow) -> Claim {
    if let Some(name) = &command.test_name {
        let result = command.test_result.clone().unwrap_or_else(|| {
            match command.exit_code {
                Some(0) => "PASS",
                _ => "FAIL",
            }
            .into()
        });
        return Claim::Tests(vec![TestCase {
            name: name.clone(),
            directory: command.directory.clone(),
            result,
            seconds: command.seconds(),
            command_id: command.id,
            convention: Convention::Hook,
            note: None,
            output_file: None,
            before: None,
        }]);
    }
    for recogniser in [glibc::recognise, automake::recognise, dejagnu::recognise] {
        match recogniser(context, command) {
            Claim::NotMine => continue,
            Claim::Tests(_) if hook_says_not_a_test(context, command) => return Claim::NotATest,
            claim => return claim,
        }
    }
    Claim::NotMine
}

/// The tag a hook gives a command that runs no test (`cmd.tag("not-a-test")`).
pub const NOT_A_TEST: &str = "not-a-test";

/// Whether a hook tagged `command` [`NOT_A_TEST`] (an unreadable tag list: no).
fn hook_says_not_a_test(context: &Context<'_>, command: &CommandRow) -> bool {
    context
        .store
        .tags(command.id)
        .is_ok_and(|tags| tags.iter().any(|(name, _)| name == NOT_A_TEST))
}

/// The order results are counted in: the usual ones first, then any other by name.
fn rank(result: &str) -> (usize, &str) {
    const ORDER: [&str; 9] = [
        "PASS",
        "FAIL",
        "XFAIL",
        "XPASS",
        "UNSUPPORTED",
        "SKIP",
        "UNTESTED",
        "UNRESOLVED",
        "ERROR",
    ];
    (
        ORDER
            .iter()
            .position(|r| *r == result)
            .unwrap_or(ORDER.len()),
        result,
    )
}

impl TestList {
    /// How many tests have each result, in [`rank`] order.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<(usize, &str), usize> = BTreeMap::new();
        for t in &self.tests {
            *counts.entry(rank(&t.result)).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|((_, r), n)| (r.to_string(), n))
            .collect()
    }

    /// `91 tests: 74 PASS, 2 FAIL, 15 UNSUPPORTED`.
    pub fn summary(&self) -> String {
        let n = self.tests.len();
        let counts: Vec<String> = self
            .counts()
            .into_iter()
            .map(|(r, c)| format!("{c} {r}"))
            .collect();
        format!(
            "{n} test{}: {}",
            if n == 1 { "" } else { "s" },
            counts.join(", ")
        )
    }

    /// A test's directory as printed: relative to the top make's (`.` for it), whole
    /// when outside it.
    pub fn directory(&self, test: &TestCase) -> String {
        match paths::relative(&test.directory, &self.top, 0) {
            Some(below) => lossy(&below).into_owned(),
            None => lossy(&test.directory).into_owned(),
        }
    }

    /// The README's `tests --json` shape.
    pub fn to_json(&self) -> Value {
        let tests: Vec<Value> = self
            .tests
            .iter()
            .map(|t| {
                let mut test = json!({
                    "name": t.name,
                    "directory": self.directory(t),
                    "result": t.result,
                    "seconds": t.seconds,
                    "command": t.command_id,
                    "convention": t.convention.name(),
                    "guessed": t.guessed(),
                    "note": t.note,
                });
                if let Some(before) = &t.before {
                    test["before"] = Value::from(before.as_str());
                }
                test
            })
            .collect();
        let counts: serde_json::Map<String, Value> = self
            .counts()
            .into_iter()
            .map(|(r, n)| (r, Value::from(n)))
            .collect();
        json!({
            "build": self.build.id,
            "tests": tests,
            "total": self.tests.len(),
            "counts": counts,
        })
    }
}

/// `path` (as a command wrote or named it) joined onto `directory`, as the kernel
/// resolves it for the command (no lexical `..`: a result file is read from there).
pub(crate) fn absolute(directory: &[u8], path: &[u8]) -> PathBuf {
    paths::as_path(directory).join(paths::as_path(path))
}

/// The simple commands of a command's text, as the labels read them (quotes removed,
/// `&&`, `;` and `|` separating, redirections apart).
pub(crate) fn simple_commands(command: &[u8]) -> Vec<SimpleCommand> {
    crate::output::shell::simple_commands(&lossy(command))
}

/// Every word of a command's text, its simple commands' one after another.
pub(crate) fn words(command: &[u8]) -> Vec<String> {
    simple_commands(command)
        .into_iter()
        .flat_map(|c| c.words)
        .collect()
}

/// A result file's text, or why it cannot be read as one.
pub(crate) fn read_result(path: &std::path::Path) -> std::result::Result<String, String> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => Err(format!("{} is empty", path.display())),
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{} is missing", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// An UNRESOLVED test of `command`, with why.
pub(crate) fn unresolved(
    command: &CommandRow,
    convention: Convention,
    name: String,
    why: String,
) -> TestCase {
    TestCase {
        name,
        directory: command.directory.clone(),
        result: "UNRESOLVED".into(),
        seconds: command.seconds(),
        command_id: command.id,
        convention,
        note: Some(why),
        output_file: None,
        before: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_drop_quotes_separators_and_redirections() {
        assert_eq!(
            words(b"a 'b c' \"d\";e > f"),
            ["a", "b c", "d", "e"].map(String::from)
        );
    }

    #[test]
    fn results_rank_usual_first_then_by_name() {
        assert!(rank("PASS") < rank("FAIL"));
        assert!(rank("FAIL") < rank("UNSUPPORTED"));
        assert!(rank("ERROR") < rank("KFAIL"));
        assert!(rank("KFAIL") < rank("KPASS"));
    }
}
