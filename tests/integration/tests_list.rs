//! `makescope tests` through the real binary: for each built-in convention (glibc,
//! automake's parallel harness, DejaGnu) a fixture in tests/fixtures/tests/ with two
//! directories, six tests, one failing and one unsupported or skipped, recorded with
//! `makescope make check`; the listed names and results equal what the convention's own
//! summary files say (glibc's `subdir-tests.sum`, the `test-suite.log`s, the `.sum`
//! files), none missing, none extra. Also: the plain fallback's guesses say so; hooks'
//! test names win; `--failed`; `--junit` parses back with matching counts; a record
//! with no tests says so; a missing or empty result file is UNRESOLVED with why.
//! `--list-only` on a clean copy of each fixture: the same names a real run reports,
//! nothing run, no file of the tree changed; where make's view cannot name the tests
//! (DejaGnu, no convention) it says so. `makescope test NAME`: the failing test fails
//! again, a glob picks, an unknown name is one clear error; what the test needs that is
//! out of date (and only that) is made again first through rebuild; the new results are
//! kept in the record and `tests` lists the newest with what it was before. Hooks: a tag takes a command
//! from the built-in recognisers, a hook's name and result win, a raising hook leaves
//! the built-in list whole.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::{installed, Test};

/// The fixture `tests/NAME`, with `makescope make check` run in it.
fn recorded(name: &str) -> Test {
    let build = Test::new().fixture(&format!("tests/{name}"));
    let out = build.then(["make", "check"]);
    assert!(
        out.code == Some(0) || out.code == Some(2),
        "make check: {:?}\n{}",
        out.code,
        out.stderr
    );
    build
}

/// `makescope tests --json ARGS`'s tests as "RESULT: NAME" lines per directory, in the
/// listed order.
fn listed(build: &Test, args: &[&str]) -> BTreeMap<String, Vec<String>> {
    let out = build.then(["tests", "--json"].iter().chain(args));
    out.success();
    let mut by_directory: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in out.json()["tests"].as_array().expect("a tests array") {
        let directory = t["directory"].as_str().unwrap().to_string();
        by_directory.entry(directory).or_default().push(format!(
            "{}: {}",
            t["result"].as_str().unwrap(),
            t["name"].as_str().unwrap()
        ));
    }
    by_directory
}

/// The `RESULT: NAME` lines of a summary file, sorted, RESULT one of `results`.
fn summary_lines(build: &Test, path: &str, results: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(build.path().join(path)).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| {
            l.split_once(": ")
                .is_some_and(|(r, _)| results.contains(&r))
        })
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

const GLIBC_RESULTS: [&str; 6] = [
    "PASS",
    "FAIL",
    "XFAIL",
    "XPASS",
    "UNSUPPORTED",
    "UNRESOLVED",
];

#[test]
fn glibc_tests_equal_each_subdir_tests_sum_without_the_locale_steps() {
    let build = recorded("glibc");
    let listed = listed(&build, &[]);
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["alpha", "beta"]);
    for dir in ["alpha", "beta"] {
        let sum = summary_lines(
            &build,
            &format!("build/{dir}/subdir-tests.sum"),
            &GLIBC_RESULTS,
        );
        assert_eq!(sorted(listed[dir].clone()), sum, "{dir}");
    }
    // The locale generation step went through evaluate-test.sh too, and is no test.
    assert!(build
        .path()
        .join("build/localedata/de_DE.UTF-8/LC_CTYPE.test-result")
        .exists());
    let text = build.then(["tests"]);
    text.success();
    assert!(!text.stdout.contains("localedata"), "{}", text.stdout);
    assert!(
        text.stdout
            .ends_with("6 tests: 4 PASS, 1 FAIL, 1 UNSUPPORTED\n"),
        "{}",
        text.stdout
    );
}

#[test]
fn automake_tests_equal_each_test_suite_log() {
    let build = recorded("automake");
    let listed = listed(&build, &[]);
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["one", "two"]);
    let results = ["PASS", "FAIL", "XFAIL", "XPASS", "SKIP", "ERROR"];
    for dir in ["one", "two"] {
        let log = format!("{dir}/test-suite.log");
        let lines = summary_lines(&build, &log, &results);
        assert_eq!(sorted(listed[dir].clone()), lines, "{dir}");
        // And the counts block agrees.
        let text = std::fs::read_to_string(build.path().join(&log)).unwrap();
        let total = format!("# TOTAL: {}", listed[dir].len());
        assert!(text.contains(&total), "{text}");
    }
    assert!(listed["one"].contains(&"PASS: check-script.sh".to_string()));
    assert!(listed["two"].contains(&"SKIP: t-skip".to_string()));
}

#[test]
fn dejagnu_tests_equal_each_sum_file() {
    let build = recorded("dejagnu");
    let listed = listed(&build, &[]);
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["one", "two"]);
    for dir in ["one", "two"] {
        let sum = format!("{dir}/calc.sum");
        let lines = summary_lines(&build, &sum, &["PASS", "FAIL", "UNSUPPORTED"]);
        assert_eq!(sorted(listed[dir].clone()), lines, "{dir}");
        let text = std::fs::read_to_string(build.path().join(&sum)).unwrap();
        let passes = listed[dir]
            .iter()
            .filter(|l| l.starts_with("PASS:"))
            .count();
        assert!(
            text.contains(&format!("# of expected passes\t\t{passes}\n")),
            "{text}"
        );
    }
    assert_eq!(listed["one"].len() + listed["two"].len(), 6);
}

#[test]
fn the_plain_fallback_uses_exit_statuses_and_says_it_guessed() {
    let build = recorded("plain");
    let listed = listed(&build, &[]);
    assert_eq!(listed["one"], ["PASS: t-alpha", "FAIL: t-fails"]);
    assert_eq!(
        listed["two"],
        ["PASS: t-beta", "PASS: t-gamma", "SKIP: t-skip"]
    );
    let json = build.then(["tests", "--json"]).json();
    assert!(json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["guessed"] == Value::Bool(true) && t["convention"] == "guessed"));
    let text = build.then(["tests"]);
    assert!(
        text.stdout.contains("guessed from the exit status"),
        "{}",
        text.stdout
    );
    // Building the programs is not a test: only the runs are.
    assert!(!text.stdout.contains(".in"), "{}", text.stdout);
}

#[test]
fn affected_lists_the_tests_a_change_reaches_with_why() {
    let build = recorded("plain");
    let none = build.then(["tests", "--affected"]);
    none.success();
    assert!(
        none.stdout.contains("is affected: nothing"),
        "{}",
        none.stdout
    );
    // A touch with the same content changes nothing; a real edit of one test's source
    // reaches that test (its program is rebuilt from it) and no other.
    let source = build.path().join("two/t-gamma.in");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, &text).unwrap();
    assert!(listed(&build, &["--affected"]).is_empty());
    std::fs::write(&source, format!("{text}\n# edited\n")).unwrap();
    assert_eq!(
        listed(&build, &["--affected"])
            .into_values()
            .flatten()
            .collect::<Vec<_>>(),
        ["PASS: t-gamma"]
    );
    let text = build.then(["tests", "--affected"]);
    assert!(
        text.stdout.contains("affected: two/t-gamma.in changed"),
        "the note names the change, not the step between: {}",
        text.stdout
    );
}

#[test]
fn test_affected_runs_the_tests_a_change_reaches_and_no_other() {
    let build = recorded("plain");
    let out = build.then(["test", "--affected"]);
    out.success();
    assert_eq!(out.stdout, "", "nothing changed, nothing runs");
    assert!(
        out.stderr.contains("is affected: nothing"),
        "{}",
        out.stderr
    );
    let source = build.path().join("two/t-gamma.in");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, format!("{text}\n# edited\n")).unwrap();
    let out = build.then(["test", "--affected"]);
    out.success();
    // The test's own output, then one result line.
    let results: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("; before: "))
        .collect();
    assert_eq!(results.len(), 1, "{}", out.stdout);
    assert!(results[0].starts_with("PASS: "), "{}", out.stdout);
    assert!(results[0].contains("t-gamma"), "{}", out.stdout);
    assert!(
        out.stderr.contains("makescope: test: first: ")
            && out.stderr.contains("(two/t-gamma.in changed)"),
        "its program is made again first: {}",
        out.stderr
    );
}

#[test]
fn failed_lists_only_what_did_not_pass() {
    let build = recorded("glibc");
    let failed = listed(&build, &["--failed"]);
    assert_eq!(
        failed.into_values().flatten().collect::<Vec<_>>(),
        ["FAIL: alpha/tst-fails"]
    );
}

#[test]
fn junit_parses_back_with_counts_that_match() {
    if !installed("python3") {
        eprintln!("skipped: no python3 to parse the XML");
        return;
    }
    let build = recorded("glibc");
    build.then(["tests", "--junit", "junit.xml"]).success();
    let check = r#"
import sys, xml.etree.ElementTree as E
root = E.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
for s in root.findall("testsuite"):
    cases = s.findall("testcase")
    assert int(s.get("tests")) == len(cases)
    assert int(s.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
    assert int(s.get("skipped")) == sum(1 for c in cases if c.find("skipped") is not None)
    for c in cases:
        f = c.find("failure")
        print(s.get("name"), c.get("classname"), c.get("name"),
              "failure" if f is not None else "skipped" if c.find("skipped") is not None else "pass",
              (f.text or "").strip() if f is not None else "")
"#;
    let mut python = build.program("python3");
    python.args(["-c", check, "junit.xml"]);
    let out = build.run_command(python);
    out.success();
    assert_eq!(
        out.stdout,
        "alpha alpha alpha/tst-fails failure expected 2, got <3> & more\n\
         alpha alpha alpha/tst-one pass \n\
         alpha alpha alpha/tst-script pass \n\
         alpha alpha alpha/tst-two pass \n\
         beta beta beta/tst-three pass \n\
         beta beta beta/tst-unsupported skipped \n"
    );
}

#[test]
fn a_missing_or_empty_result_file_is_unresolved_with_why() {
    let build = recorded("glibc");
    std::fs::remove_file(build.path().join("build/beta/tst-three.test-result")).unwrap();
    std::fs::write(build.path().join("build/alpha/tst-one.test-result"), "").unwrap();
    // Cut short: the first line has no name yet.
    std::fs::write(build.path().join("build/alpha/tst-two.test-result"), "PAS").unwrap();
    let out = build.then(["tests"]);
    out.success();
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}:\n{}", out.stdout))
            .to_string()
    };
    assert!(
        line("beta/tst-three ").contains("UNRESOLVED"),
        "{}",
        out.stdout
    );
    assert!(line("beta/tst-three ").contains("tst-three.test-result is missing"));
    assert!(line("alpha/tst-one ").contains("tst-one.test-result is empty"));
    assert!(line("alpha/tst-two ").contains("UNRESOLVED"));
    assert!(line("alpha/tst-two ").contains("tst-two.test-result has no `RESULT: NAME` first line"));
    assert!(
        out.stdout
            .ends_with("6 tests: 1 PASS, 1 FAIL, 1 UNSUPPORTED, 3 UNRESOLVED\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_record_with_no_tests_says_so_and_succeeds() {
    let build = Test::new().makefile("all:\n\techo hello > out.txt\n");
    build.then(["make"]).success();
    let out = build.then(["tests"]);
    out.success();
    assert_eq!(
        out.stdout,
        "build 1 has no tests: no command ran a test that makescope recognises\n"
    );
    // Nothing to re-run: one clear error line each, exit 2.
    let out = build.then(["test", "t-*"]);
    out.code(2);
    assert_eq!(
        out.stderr,
        "makescope: error: no test of build 1 is named `t-*` (`makescope tests` lists them)\n"
    );
    let out = build.then(["test", "--failed"]);
    out.code(2);
    assert_eq!(
        out.stderr,
        "makescope: error: build 1 has no failed test to run\n"
    );
}

#[test]
fn a_hooks_test_names_and_results_win() {
    let build = Test::new().fixture("python/package");
    build.then(["make", "--hooks", "hooks.py"]).success();
    let listed = listed(&build, &[]);
    assert_eq!(listed["."], ["PASS: t1", "FAIL: t2"]);
    let json = build.then(["tests", "--json"]).json();
    assert_eq!(json["tests"][0]["convention"], "hook");
}

/// Every file below `root` with its size and modification time, sorted.
fn tree(root: &std::path::Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            let name = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .display()
                .to_string();
            out.push((name, meta.len(), meta.modified().unwrap()));
        }
    }
    out.sort();
    out
}

/// `tests --list-only --json ARGS`'s tests as (directory, name), sorted.
fn listed_only(test: &Test, args: &[&str]) -> (Vec<(String, String)>, Value) {
    let out = test.then(["tests", "--list-only", "--json"].iter().chain(args));
    out.success();
    let json = out.json();
    let mut names: Vec<(String, String)> = json["tests"]
        .as_array()
        .expect("a tests array")
        .iter()
        .map(|t| {
            (
                t["directory"].as_str().unwrap().to_string(),
                t["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    names.sort();
    (names, json)
}

/// The (directory, name) pairs a recorded run lists.
fn run_names(name: &str) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = recorded(name).then(["tests", "--json"]).json()["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["directory"].as_str().unwrap().to_string(),
                t["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    names.sort();
    names
}

#[test]
fn list_only_names_what_a_real_check_reports_and_runs_nothing() {
    for fixture in ["glibc", "automake"] {
        let clean = Test::new().fixture(&format!("tests/{fixture}"));
        let before = tree(clean.path());
        let (names, json) = listed_only(&clean, &[]);
        assert_eq!(tree(clean.path()), before, "{fixture}: the tree changed");
        assert_eq!(names, run_names(fixture), "{fixture}");
        assert_eq!(json["unknown"], Value::Array(vec![]), "{fixture}");
        assert_eq!(json["tests"][0]["convention"], fixture);
    }
}

#[test]
fn list_only_text_has_a_summary_and_takes_a_directory_and_a_goal() {
    let clean = Test::new().fixture("tests/glibc");
    let out = clean.then([
        "tests",
        "--list-only",
        "-C",
        "alpha",
        "objdir=../build",
        "check",
    ]);
    out.success();
    assert!(out.stdout.starts_with("alpha/tst-fails "), "{}", out.stdout);
    assert!(
        out.stdout
            .ends_with("\n4 tests in make's view of `check` (listed, none run)\n"),
        "{}",
        out.stdout
    );
    assert!(!clean.path().join("build").exists());
}

#[test]
fn list_only_says_plainly_where_it_cannot_know() {
    let dejagnu = Test::new().fixture("tests/dejagnu");
    let before = tree(dejagnu.path());
    let (names, json) = listed_only(&dejagnu, &[]);
    assert_eq!(tree(dejagnu.path()), before);
    assert!(names.is_empty());
    let unknown: Vec<&str> = json["unknown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["directory"].as_str().unwrap())
        .collect();
    assert_eq!(unknown, ["one", "two"]);
    assert!(json["unknown"][0]["why"]
        .as_str()
        .unwrap()
        .contains("DejaGnu"));

    let plain = Test::new().fixture("tests/plain");
    let out = plain.then(["tests", "--list-only"]);
    out.success();
    assert!(
        out.stdout
            .contains("cannot list .: no test convention makescope knows"),
        "{}",
        out.stdout
    );
}

#[test]
fn list_only_without_a_makefile_is_one_clear_error() {
    let empty = Test::new();
    let out = empty.then(["tests", "--list-only"]);
    out.code(2);
    assert!(
        out.stderr
            .starts_with("makescope: error: make cannot list the tests of `check`"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

/// The line `test` prints for NAME (the test's own output comes before it).
fn result_line<'a>(out: &'a crate::harness::Output, name: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.contains(&format!(": {name}  (")))
        .unwrap_or_else(|| panic!("no result line for {name}:\n{}", out.stdout))
}

#[test]
fn test_reruns_the_failing_test_and_reports_it_as_the_convention_does() {
    let build = recorded("glibc");
    let result = build.path().join("build/alpha/tst-fails.test-result");
    std::fs::remove_file(&result).unwrap();
    let out = build.then(["test", "alpha/tst-fails"]);
    out.code(1);
    let line = result_line(&out, "alpha/tst-fails");
    assert!(line.starts_with("FAIL: alpha/tst-fails  ("), "{line}");
    assert!(line.contains("before: UNRESOLVED"), "{line}");
    assert!(line.contains("output in "), "{line}");
    // The convention's own file was written again.
    assert!(std::fs::read_to_string(&result)
        .unwrap()
        .starts_with("FAIL: alpha/tst-fails"));

    // make deleted the test programs (intermediate files): they are made again first.
    assert!(!build.path().join("build/beta/tst-three").exists());
    let out = build.then(["test", "beta/*"]);
    out.success();
    assert!(
        out.stderr.contains("makescope: test: first: command ")
            && out
                .stderr
                .contains("(it writes a file the test reads, which is missing)"),
        "{}",
        out.stderr
    );
    assert!(build.path().join("build/beta/tst-three").exists());
    assert!(result_line(&out, "beta/tst-three").starts_with("PASS: "));
    assert!(result_line(&out, "beta/tst-unsupported").starts_with("UNSUPPORTED: "));
    assert!(!out.stdout.contains("alpha/"), "{}", out.stdout);
}

#[test]
fn test_reruns_an_automake_test_through_its_driver() {
    let build = recorded("automake");
    let out = build.then(["test", "t-fails"]);
    out.code(1);
    assert!(result_line(&out, "t-fails").starts_with("FAIL: "));
    // Its source made to pass: the program is made again from it first, then it passes.
    std::fs::write(build.path().join("one/t-fails.in"), "#!/bin/sh\nexit 0\n").unwrap();
    let out = build.then(["test", "t-fails"]);
    out.success();
    assert!(
        out.stderr
            .contains("first: CP one/t-fails  (one/t-fails.in changed)"),
        "{}",
        out.stderr
    );
    let line = result_line(&out, "t-fails");
    assert!(line.starts_with("PASS: t-fails  ("), "{line}");
    assert!(line.contains("before: FAIL"), "{line}");
}

#[test]
fn test_first_remakes_only_the_stale_inputs_of_the_test_it_runs() {
    let build = recorded("glibc");
    // Nothing changed: nothing is made again but the missing program (make deleted it).
    let out = build.then(["test", "alpha/tst-one"]);
    out.success();
    let firsts: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("makescope: test: first: "))
        .collect();
    assert_eq!(firsts.len(), 1, "{}", out.stderr);
    assert!(firsts[0]
        .ends_with("build/alpha/tst-one)  (it writes a file the test reads, which is missing)"));
    // The program's source edited to fail, and another test's too: only this test's
    // program is made again (from the record, by rebuild), then the test fails.
    std::fs::write(
        build.path().join("alpha/tst-one.sh"),
        "#!/bin/sh\necho one fails now\nexit 1\n",
    )
    .unwrap();
    std::fs::write(build.path().join("alpha/tst-two.sh"), "#!/bin/sh\nexit 1\n").unwrap();
    let out = build.then(["test", "alpha/tst-one"]);
    out.code(1);
    let firsts: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("makescope: test: first: "))
        .collect();
    // The recipe's label is its first line's (`mkdir -p build/alpha`).
    assert_eq!(firsts.len(), 1, "{}", out.stderr);
    assert!(
        firsts[0].ends_with("  (alpha/tst-one.sh changed)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("made 1 recipe again first"),
        "{}",
        out.stderr
    );
    let line = result_line(&out, "alpha/tst-one");
    assert!(line.starts_with("FAIL: alpha/tst-one  ("), "{line}");
    assert!(line.contains("before: PASS"), "{line}");
    // The other test's program was not made again.
    assert!(!build.path().join("build/alpha/tst-two").exists());
}

#[test]
fn test_keeps_its_results_in_the_record_and_tests_lists_the_newest() {
    let build = recorded("glibc");
    std::fs::write(
        build.path().join("beta/tst-three.sh"),
        "#!/bin/sh\nexit 1\n",
    )
    .unwrap();
    build.then(["test", "beta/tst-three"]).code(1);
    // The result file says PASS again, as a later edit might leave it: the record's
    // re-run, not the file, is what `tests` lists.
    std::fs::write(
        build.path().join("build/beta/tst-three.test-result"),
        "PASS: beta/tst-three\n",
    )
    .unwrap();
    let out = build.then(["tests", "--json"]);
    out.success();
    let json = out.json();
    let three = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "beta/tst-three")
        .unwrap()
        .clone();
    assert_eq!(three["result"], "FAIL", "{three}");
    assert_eq!(three["before"], "PASS", "{three}");
    let one = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "alpha/tst-one")
        .unwrap()
        .clone();
    assert!(one.get("before").is_none(), "not re-run: {one}");
    let text = build.then(["tests", "--failed"]);
    text.success();
    let line = text
        .stdout
        .lines()
        .find(|l| l.starts_with("beta/tst-three "))
        .unwrap_or_else(|| panic!("{}", text.stdout));
    assert!(
        line.contains("FAIL") && line.contains("re-run by `makescope test`; before: PASS"),
        "{line}"
    );
    // The re-run is a replay of the test's command: `show` lists it.
    let id = three["command"].as_i64().unwrap().to_string();
    let show = build.then(["show", &id, "--json"]);
    show.success();
    assert_eq!(
        show.json()["replays"].as_array().map(Vec::len),
        Some(1),
        "{}",
        show.stdout
    );
}

#[test]
fn test_with_a_name_that_matches_none_is_one_clear_error() {
    let build = recorded("glibc");
    let out = build.then(["test", "alpha/no-such-test"]);
    out.code(2);
    assert_eq!(
        out.stderr,
        "makescope: error: no test of build 1 is named `alpha/no-such-test` (`makescope tests` lists them)\n"
    );
}

#[test]
fn a_hook_takes_a_command_from_the_built_in_recognisers_or_renames_its_test() {
    let build = Test::new().fixture("tests/glibc").file(
        "hooks.py",
        "def finished(cmd):\n\
         \x20   if cmd.target.endswith('alpha/tst-two.out'):\n\
         \x20       cmd.tag('not-a-test')\n\
         \x20   if cmd.target.endswith('alpha/tst-one.out'):\n\
         \x20       cmd.test_name = 'alpha/one-by-hook'\n\
         \x20       cmd.test_result = 'XFAIL'\n",
    );
    let out = build.then(["make", "--hooks", "hooks.py", "check"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let listed = listed(&build, &[]);
    assert_eq!(
        listed["alpha"],
        [
            "XFAIL: alpha/one-by-hook",
            "FAIL: alpha/tst-fails",
            "PASS: alpha/tst-script"
        ]
    );
    assert_eq!(listed["beta"].len(), 2);
}

#[test]
fn a_hook_that_raises_leaves_the_built_in_list_whole() {
    let build = Test::new().fixture("tests/glibc").file(
        "hooks.py",
        "def finished(cmd):\n    raise ValueError('boom')\n",
    );
    let out = build.then(["make", "--hooks", "hooks.py", "check"]);
    out.code(3);
    assert!(out.stderr.contains("ValueError: boom"), "{}", out.stderr);
    let text = build.then(["tests"]);
    text.success();
    assert!(
        text.stdout
            .ends_with("6 tests: 4 PASS, 1 FAIL, 1 UNSUPPORTED\n"),
        "{}",
        text.stdout
    );
}
