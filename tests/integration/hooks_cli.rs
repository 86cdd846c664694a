//! Hooks through the real binary: a hooks file relabels, tags and names tests, and
//! `makescope log --json` shows it; a raising hook and a broken hooks file are reported
//! with file and line, the build completes, and makescope exits 3 (make succeeded but
//! hooks failed); so does a hooks file that cannot be read.
//! `log --json`'s shape is the output module's: the tests read the fields by name
//! (`label`, `test_name`, `test_result`, `tags`) in each command object.

use serde_json::Value;

use crate::harness::Test;

/// The fixture project tests/fixtures/python/package (with its hooks.py).
fn package() -> Test {
    Test::new().fixture("python/package")
}

/// The commands of the last build, from `makescope log --json`.
fn log(build: &Test) -> Vec<Value> {
    let out = build.then(["log", "--json"]);
    out.success();
    match out.json() {
        Value::Array(items) => items,
        Value::Object(mut o) => match o.remove("commands") {
            Some(Value::Array(items)) => items,
            other => panic!("log --json: no command list: {other:?}"),
        },
        other => panic!("log --json: {other:?}"),
    }
}

fn field<'a>(command: &'a Value, name: &str) -> &'a Value {
    command.get(name).unwrap_or(&Value::Null)
}

fn by_target<'a>(log: &'a [Value], target: &str) -> &'a Value {
    log.iter()
        .find(|c| field(c, "target").as_str() == Some(target))
        .unwrap_or_else(|| panic!("no command for {target}: {log:?}"))
}

#[test]
fn hooks_relabel_tag_and_name_tests_in_the_record() {
    let build = package();
    let out = build.then(["make", "--hooks", "hooks.py"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let log = log(&build);
    assert_eq!(
        field(by_target(&log, "out/main.txt"), "label"),
        "UPPER out/main.txt"
    );
    let t1 = by_target(&log, "out/t1.result");
    assert_eq!(field(t1, "label"), "TEST t1");
    assert_eq!(field(t1, "test_name"), "t1");
    assert_eq!(field(t1, "test_result"), "PASS");
    let t2 = by_target(&log, "out/t2.result");
    assert_eq!(
        (field(t2, "test_name"), field(t2, "test_result")),
        (&Value::from("t2"), &Value::from("FAIL"))
    );
    let tags = field(by_target(&log, "out/app.txt"), "tags").to_string();
    assert!(
        tags.contains("kind") && tags.contains("link"),
        "tags: {tags}"
    );
}

#[test]
fn the_default_hooks_file_is_dot_makescope_hooks_py() {
    let build = package();
    std::fs::create_dir(build.path().join(".makescope")).unwrap();
    std::fs::copy(
        build.path().join("hooks.py"),
        build.path().join(".makescope/hooks.py"),
    )
    .unwrap();
    let out = build.then(["make"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        field(by_target(&log(&build), "out/t1.result"), "test_name"),
        "t1"
    );
}

#[test]
fn a_raising_hook_is_shown_once_the_build_completes_and_exits_3() {
    let build = package().file(
        "raising.py",
        "def label(cmd):\n    raise RuntimeError('no ' + cmd.target)\n",
    );
    let out = build.then(["make", "--hooks", "raising.py"]);
    let err = &out.stderr;
    assert_eq!(out.code, Some(3), "{err}");
    assert_eq!(err.matches("Traceback").count(), 1, "{err}");
    assert!(err.contains("raising.py\", line 2, in label"), "{err}");
    assert!(
        build.path().join("out/t2.result").exists(),
        "the build completed"
    );
    assert!(log(&build)
        .iter()
        .all(|c| !field(c, "label").as_str().unwrap_or("").starts_with("TEST")));
}

#[test]
fn a_hooks_file_with_a_syntax_error_is_named_the_build_completes_and_exits_3() {
    let build = package().file("broken.py", "def label(cmd):\n    return 'CC' +\n");
    let out = build.then(["make", "--hooks", "broken.py"]);
    let err = &out.stderr;
    assert_eq!(out.code, Some(3), "{err}");
    assert!(
        err.contains("broken.py:2:18: SyntaxError: invalid syntax"),
        "{err}"
    );
    assert!(
        build.path().join("out/t2.result").exists(),
        "the build completed"
    );
}

#[test]
fn a_failing_make_keeps_its_own_status_when_hooks_fail_too() {
    let build = package().file(
        "raising.py",
        "def label(cmd):\n    raise RuntimeError('x')\n",
    );
    let out = build.then(["make", "--hooks", "raising.py", "out/missing.txt"]);
    assert_eq!(out.code, Some(2), "make's own status wins: {}", out.stderr);
}

#[test]
fn a_missing_hooks_file_is_named_the_build_completes_and_exits_3() {
    let build = package();
    let out = build.then(["make", "--hooks", "nope.py"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot read hooks file nope.py"),
        "{}",
        out.stderr
    );
    assert!(
        build.path().join("out/t2.result").exists(),
        "the build completed"
    );
}
