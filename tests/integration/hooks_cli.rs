//! Issue 6, through the real binary: a hooks file relabels, tags and names tests, and
//! `makescope log --json` shows it; a raising hook and a broken hooks file are reported
//! with file and line, the build completes, and makescope exits 3 (make succeeded but
//! hooks failed); so does a hooks file that cannot be read.
//! `log --json`'s shape is the output module's: the tests read the fields by name
//! (`label`, `test_name`, `test_result`, `tags`) in each command object.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python/package")
}

struct Build {
    dir: tempfile::TempDir,
}

impl Build {
    fn new() -> Build {
        let dir = tempfile::tempdir().unwrap();
        let copy = |from: &Path, to: &Path| {
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_dir() {
                    std::fs::create_dir_all(to.join(entry.file_name())).unwrap();
                } else {
                    std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
                }
            }
        };
        copy(&fixture(), dir.path());
        copy(&fixture().join("src"), &dir.path().join("src"));
        Build { dir }
    }
    fn write(&self, name: &str, text: &str) -> &Build {
        std::fs::write(self.dir.path().join(name), text).unwrap();
        self
    }
    fn makescope(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_makescope"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("MAKEFLAGS")
            .env_remove("MAKESCOPE_HOOKS");
        command.output().unwrap()
    }
    fn log(&self) -> Vec<Value> {
        let out = self.makescope(&["log", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        match serde_json::from_slice::<Value>(&out.stdout).unwrap() {
            Value::Array(items) => items,
            Value::Object(mut o) => match o.remove("commands") {
                Some(Value::Array(items)) => items,
                other => panic!("log --json: no command list: {other:?}"),
            },
            other => panic!("log --json: {other:?}"),
        }
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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn hooks_relabel_tag_and_name_tests_in_the_record() {
    let build = Build::new();
    let out = build.makescope(&["make", "--hooks", "hooks.py"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = build.log();
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
    let build = Build::new();
    std::fs::create_dir(build.dir.path().join(".makescope")).unwrap();
    std::fs::copy(
        build.dir.path().join("hooks.py"),
        build.dir.path().join(".makescope/hooks.py"),
    )
    .unwrap();
    let out = build.makescope(&["make"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        field(by_target(&build.log(), "out/t1.result"), "test_name"),
        "t1"
    );
}

#[test]
fn a_raising_hook_is_shown_once_the_build_completes_and_exits_3() {
    let build = Build::new();
    build.write(
        "raising.py",
        "def label(cmd):\n    raise RuntimeError('no ' + cmd.target)\n",
    );
    let out = build.makescope(&["make", "--hooks", "raising.py"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.matches("Traceback").count(), 1, "{err}");
    assert!(err.contains("raising.py\", line 2, in label"), "{err}");
    assert!(
        build.dir.path().join("out/t2.result").exists(),
        "the build completed"
    );
    assert!(build
        .log()
        .iter()
        .all(|c| !field(c, "label").as_str().unwrap_or("").starts_with("TEST")));
}

#[test]
fn a_hooks_file_with_a_syntax_error_is_named_the_build_completes_and_exits_3() {
    let build = Build::new();
    build.write("broken.py", "def label(cmd):\n    return 'CC' +\n");
    let out = build.makescope(&["make", "--hooks", "broken.py"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("broken.py:2:18: SyntaxError: invalid syntax"),
        "{err}"
    );
    assert!(
        build.dir.path().join("out/t2.result").exists(),
        "the build completed"
    );
}

#[test]
fn a_failing_make_keeps_its_own_status_when_hooks_fail_too() {
    let build = Build::new();
    build.write(
        "raising.py",
        "def label(cmd):\n    raise RuntimeError('x')\n",
    );
    let out = build.makescope(&["make", "--hooks", "raising.py", "out/missing.txt"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "make's own status wins: {}",
        stderr(&out)
    );
}

#[test]
fn a_missing_hooks_file_is_named_the_build_completes_and_exits_3() {
    let build = Build::new();
    let out = build.makescope(&["make", "--hooks", "nope.py"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read hooks file nope.py"),
        "{}",
        stderr(&out)
    );
    assert!(
        build.dir.path().join("out/t2.result").exists(),
        "the build completed"
    );
}
