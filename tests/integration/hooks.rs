//! The user's Python hooks, driven through the library as the recorder drives
//! them (label → started → finished, one thread, every command).
#![cfg(feature = "python")]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use makescope::hooks::{Files, Hooks, Verdict};
use makescope::output::{default_label, CommandInfo, Label, Outcome};

fn info(id: i64, target: &[u8]) -> CommandInfo {
    CommandInfo {
        id,
        target: target.to_vec(),
        directory: b"/src/string".to_vec(),
        top_directory: b"/build".to_vec(),
        command: b"cc -c x.c".to_vec(),
        recipe_file: b"Makefile".to_vec(),
        recipe_line: 12,
        make_level: 1,
    }
}

fn ok() -> Outcome {
    Outcome {
        exit_code: Some(0),
        signal: None,
        duration_ns: 1_500_000_000,
    }
}

fn failed() -> Outcome {
    Outcome {
        exit_code: Some(1),
        signal: None,
        duration_ns: 1_000,
    }
}

/// A hooks file in a temporary directory, loaded with a reporter we can read.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    messages: Arc<Mutex<String>>,
}

impl Fixture {
    fn new(source: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hooks.py");
        std::fs::write(&path, source).unwrap();
        Fixture {
            _dir: dir,
            path,
            messages: Arc::default(),
        }
    }
    fn load(&self) -> Hooks {
        let messages = self.messages.clone();
        Hooks::load_with_reporter(
            &self.path,
            Box::new(move |m: &str| messages.lock().unwrap().push_str(m)),
        )
        .unwrap()
    }
    fn messages(&self) -> String {
        self.messages.lock().unwrap().clone()
    }
}

/// What the recorder does for one command.
fn run(
    hooks: &mut Hooks,
    info: &CommandInfo,
    outcome: &Outcome,
    files: Option<&Files>,
) -> (Label, Verdict) {
    let default = default_label(info);
    let label = hooks.label(info, &default).unwrap_or(default);
    hooks.started(info);
    (label, hooks.finished_with_files(info, outcome, files))
}

const HOOKS: &str = r#"
import os

def label(cmd):
    if cmd.target.endswith(".out"):
        rel = os.path.relpath(cmd.target, cmd.build_directory)
        return "TEST " + rel[:-len(".out")]
    if cmd.target == "tuple":
        return ("LINK", "libc.so")
    return None

def started(cmd):
    cmd.tags["seen_label"] = cmd.label
    if cmd.target.endswith(".out"):
        cmd.test_name = cmd.label.split(" ", 1)[1]

def finished(cmd):
    assert cmd.state in ("ok", "failed"), cmd.state
    cmd.tag("duration", round(cmd.duration, 1))
    cmd.tag("slow")
    if cmd.target.endswith("/explicit.out"):
        cmd.test_result = "UNSUPPORTED"
    if cmd.writes is not None:
        cmd.tags["writes"] = ",".join(cmd.writes)
"#;

#[test]
fn relabels_tags_and_names_tests() {
    let fixture = Fixture::new(HOOKS);
    let mut hooks = fixture.load();

    let (label, verdict) = run(
        &mut hooks,
        &info(1, b"/build/string/test-strlen.out"),
        &ok(),
        None,
    );
    assert_eq!(
        label,
        Label {
            verb: "TEST".into(),
            object: "string/test-strlen".into()
        }
    );
    assert_eq!(verdict.test_name.as_deref(), Some("string/test-strlen"));
    assert_eq!(
        verdict.test_result.as_deref(),
        Some("PASS"),
        "a named test without a result: from the exit status"
    );
    assert_eq!(
        verdict.tags,
        vec![
            ("seen_label".into(), Some("TEST string/test-strlen".into())),
            ("duration".into(), Some("1.5".into())),
            ("slow".into(), None),
        ]
    );

    let (_, verdict) = run(
        &mut hooks,
        &info(2, b"/build/string/test-memcpy.out"),
        &failed(),
        None,
    );
    assert_eq!(verdict.test_result.as_deref(), Some("FAIL"));
    let (_, verdict) = run(
        &mut hooks,
        &info(3, b"/build/explicit.out"),
        &failed(),
        None,
    );
    assert_eq!(verdict.test_result.as_deref(), Some("UNSUPPORTED"));

    let (label, verdict) = run(&mut hooks, &info(4, b"tuple"), &ok(), None);
    assert_eq!(
        label,
        Label {
            verb: "LINK".into(),
            object: "libc.so".into()
        }
    );
    assert_eq!(verdict.test_name, None);

    let files = Files {
        reads: vec![b"/src/a.c".to_vec()],
        writes: vec![b"/build/a.o".to_vec()],
    };
    let (label, verdict) = run(&mut hooks, &info(5, b"a.o"), &ok(), Some(&files));
    assert_eq!(
        label,
        default_label(&info(5, b"a.o")),
        "None keeps the default label"
    );
    assert!(verdict
        .tags
        .contains(&("writes".into(), Some("/build/a.o".into()))));

    assert!(!hooks.failed());
    assert_eq!(hooks.summary(), None);
    assert_eq!(fixture.messages(), "");
}

#[test]
fn interleaved_commands_keep_their_own_object() {
    let fixture = Fixture::new(
        "def started(cmd):\n    cmd.tags['id'] = cmd.id\n\ndef finished(cmd):\n    cmd.tags['id_at_end'] = cmd.id\n",
    );
    let mut hooks = fixture.load();
    let (a, b) = (info(10, b"a"), info(11, b"b"));
    hooks.started(&a);
    hooks.started(&b);
    let vb = hooks.finished(&b, &ok());
    let va = hooks.finished(&a, &ok());
    assert_eq!(
        va.tags,
        vec![
            ("id".into(), Some("10".into())),
            ("id_at_end".into(), Some("10".into()))
        ]
    );
    assert_eq!(
        vb.tags,
        vec![
            ("id".into(), Some("11".into())),
            ("id_at_end".into(), Some("11".into()))
        ]
    );
}

#[test]
fn non_utf8_target_reaches_python_as_fsdecode_would() {
    let fixture = Fixture::new(concat!(
        "import os\n",
        "def label(cmd):\n",
        "    assert os.fsencode(cmd.target) == b'caf\\xe9.o', repr(cmd.target)\n",
        "    return 'CC ' + cmd.target\n",
        "def finished(cmd):\n",
        "    cmd.test_name = cmd.target\n",
        "    cmd.tags[cmd.target] = cmd.target\n",
    ));
    let mut hooks = fixture.load();
    let (label, verdict) = run(&mut hooks, &info(1, b"caf\xe9.o"), &ok(), None);
    assert_eq!(fixture.messages(), "");
    // Labels, test names and tags are text: bytes that were not UTF-8 become U+FFFD.
    assert_eq!(
        label,
        Label {
            verb: "CC".into(),
            object: "caf\u{fffd}.o".into()
        }
    );
    assert_eq!(verdict.test_name.as_deref(), Some("caf\u{fffd}.o"));
    assert_eq!(
        verdict.tags,
        vec![("caf\u{fffd}.o".into(), Some("caf\u{fffd}.o".into()))]
    );
}

#[test]
fn a_hook_that_raises_is_shown_once_and_the_build_goes_on() {
    let fixture = Fixture::new("def label(cmd):\n    return helper(cmd)\n\ndef helper(cmd):\n    raise ValueError('no label for ' + cmd.target)\n");
    let mut hooks = fixture.load();
    for id in 0..5 {
        let command = info(id, format!("t{id}").as_bytes());
        let (label, _) = run(&mut hooks, &command, &ok(), None);
        assert_eq!(
            label,
            default_label(&command),
            "the default label when the hook raises"
        );
    }
    let messages = fixture.messages();
    let file = fixture.path.display().to_string();
    assert_eq!(
        messages.matches("Traceback").count(),
        1,
        "shown once:\n{messages}"
    );
    assert!(
        messages.contains("hook label() raised for target t0"),
        "{messages}"
    );
    assert!(
        messages.contains(&format!("File \"{file}\", line 2, in label")),
        "{messages}"
    );
    assert!(
        messages.contains(&format!("File \"{file}\", line 5, in helper")),
        "{messages}"
    );
    assert!(
        messages.contains("ValueError: no label for t0"),
        "{messages}"
    );
    assert!(hooks.failed());
    assert_eq!(
        hooks.summary().as_deref(),
        Some("hooks raised 5 times (label 5); the first traceback of each is above")
    );
}

#[test]
fn a_bad_return_value_counts_as_a_failure() {
    let fixture = Fixture::new("def label(cmd):\n    return 42\n");
    let mut hooks = fixture.load();
    let (label, _) = run(&mut hooks, &info(1, b"x"), &ok(), None);
    assert_eq!(label, default_label(&info(1, b"x")));
    assert!(
        fixture.messages().contains("label() must return a str"),
        "{}",
        fixture.messages()
    );
    assert!(hooks.failed());
}

#[test]
fn a_syntax_error_names_file_line_and_column_and_turns_hooks_off() {
    let fixture = Fixture::new("def label(cmd):\n    return 'CC' +\n");
    let mut hooks = fixture.load();
    let messages = fixture.messages();
    let file = fixture.path.display().to_string();
    assert!(
        messages.starts_with(&format!(
            "error: hooks file {file}:2:18: SyntaxError: invalid syntax\n"
        )),
        "{messages}"
    );
    assert!(messages.contains("    return 'CC' +\n"), "{messages}");
    assert!(
        messages.contains("hooks are off for this build"),
        "{messages}"
    );
    assert!(
        hooks.failed(),
        "a broken hooks file makes the build's exit status say so"
    );
    let (label, verdict) = run(&mut hooks, &info(1, b"x"), &ok(), None);
    assert_eq!(label, default_label(&info(1, b"x")));
    assert_eq!(verdict, Verdict::default());
}

#[test]
fn an_exception_while_loading_is_shown_with_its_traceback() {
    let fixture = Fixture::new("import os\nraise RuntimeError('configure me')\n");
    let hooks = fixture.load();
    let messages = fixture.messages();
    assert!(
        messages.contains(&format!(
            "File \"{}\", line 2, in <module>",
            fixture.path.display()
        )),
        "{messages}"
    );
    assert!(
        messages.contains("RuntimeError: configure me"),
        "{messages}"
    );
    assert!(hooks.failed());
}

#[test]
fn an_unreadable_hooks_file_is_an_error_before_anything_runs() {
    let err = Hooks::load(Path::new("/nonexistent/hooks.py"))
        .err()
        .expect("an error");
    assert!(
        err.to_string()
            .starts_with("cannot read hooks file /nonexistent/hooks.py:"),
        "{err}"
    );
}

#[test]
fn find_prefers_the_explicit_file_then_dot_makescope() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(makescope::hooks::find(None, dir.path()), None);
    std::fs::create_dir(dir.path().join(".makescope")).unwrap();
    std::fs::write(dir.path().join(".makescope/hooks.py"), "").unwrap();
    assert_eq!(
        makescope::hooks::find(None, dir.path()),
        Some(dir.path().join(".makescope/hooks.py"))
    );
    assert_eq!(
        makescope::hooks::find(Some(Path::new("h.py")), dir.path()),
        Some(PathBuf::from("h.py"))
    );
}

/// examples/hooks/glibc.py on a command as glibc's Rules and Makeconfig expand it.
#[test]
fn glibc_hooks_name_tests_and_read_their_result_files() {
    let hooks_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hooks/glibc.py");
    let messages: Arc<Mutex<String>> = Arc::default();
    let sink = messages.clone();
    let mut hooks = Hooks::load_with_reporter(
        &hooks_file,
        Box::new(move |m: &str| sink.lock().unwrap().push_str(m)),
    )
    .unwrap();
    let build = tempfile::tempdir().unwrap();
    let objdir = build.path().display().to_string();
    std::fs::create_dir(build.path().join("string")).unwrap();
    std::fs::write(
        build.path().join("string/test-strlen.test-result"),
        "FAIL: string/test-strlen\noriginal exit status 1\n",
    )
    .unwrap();
    std::fs::write(
        build.path().join("string/tst-xfail.test-result"),
        "XFAIL: string/tst-xfail\noriginal exit status 1\n",
    )
    .unwrap();
    let test = |id: i64, name: &str| {
        CommandInfo {
        id,
        target: format!("{objdir}/{name}.out").into_bytes(),
        directory: b"/usr/src/glibc/string".to_vec(),
        top_directory: objdir.clone().into_bytes(),
        command: format!(
            "env GCONV_PATH={objdir}/iconvdata LOCPATH={objdir}/localedata LC_ALL=C {objdir}/elf/ld-linux-x86-64.so.2 \
             --library-path {objdir}:{objdir}/math {objdir}/{name}  > {objdir}/{name}.out; \\\n\
             ../scripts/evaluate-test.sh {name} $? false false > {objdir}/{name}.test-result"
        )
        .into_bytes(),
        recipe_file: b"../Rules".to_vec(),
        recipe_line: 339,
        make_level: 2,
    }
    };

    let (label, verdict) = run(&mut hooks, &test(1, "string/test-strlen"), &ok(), None);
    assert_eq!(
        label,
        Label {
            verb: "TEST".into(),
            object: "string/test-strlen".into()
        }
    );
    assert_eq!(verdict.test_name.as_deref(), Some("string/test-strlen"));
    assert_eq!(
        verdict.test_result.as_deref(),
        Some("FAIL"),
        "the result file wins over exit status 0"
    );
    assert_eq!(verdict.tags, vec![("subdir".into(), Some("string".into()))]);

    let (_, verdict) = run(&mut hooks, &test(2, "string/tst-xfail"), &ok(), None);
    assert_eq!(verdict.test_result.as_deref(), Some("XFAIL"));

    let (_, verdict) = run(
        &mut hooks,
        &test(3, "string/tst-killed"),
        &Outcome {
            signal: Some(9),
            exit_code: None,
            duration_ns: 1,
        },
        None,
    );
    assert_eq!(
        verdict.test_result.as_deref(),
        Some("FAIL"),
        "no result file and no exit 0"
    );

    let compile = CommandInfo {
        command: b"gcc test-strlen.c -c -o /b/string/test-strlen.o".to_vec(),
        target: b"/b/string/test-strlen.o".to_vec(),
        ..test(4, "x")
    };
    let (label, verdict) = run(&mut hooks, &compile, &ok(), None);
    assert_eq!(label, default_label(&compile));
    assert_eq!(verdict, Verdict::default());
    assert_eq!(messages.lock().unwrap().as_str(), "");
    assert!(!hooks.failed());
}

/// The figure behind scripts/bench-hooks.sh, without the build's noise: what the label
/// hook of the benchmark costs per command inside the recorder.
/// `cargo test --release --test integration hooks::label_hook_cost -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn label_hook_cost() {
    let fixture = Fixture::new(concat!(
        "import os\n",
        "def label(cmd):\n",
        "    name = os.path.basename(cmd.target)\n",
        "    if name.endswith('.o') and 'echo' in cmd.command:\n",
        "        return 'GEN ' + name\n",
        "    return None\n",
    ));
    let mut hooks = fixture.load();
    let commands: Vec<CommandInfo> = (0..5000)
        .map(|i| CommandInfo {
            command: format!("echo obj/file{i}.o > obj/file{i}.o").into_bytes(),
            ..info(i, format!("obj/file{i}.o").as_bytes())
        })
        .collect();
    let start = std::time::Instant::now();
    for command in &commands {
        run(&mut hooks, command, &ok(), None);
    }
    let elapsed = start.elapsed();
    assert!(!hooks.failed(), "{}", fixture.messages());
    println!(
        "label hook: {} commands in {:?}, {:.1} µs per command",
        commands.len(),
        elapsed,
        elapsed.as_secs_f64() * 1e6 / 5000.0
    );
}
