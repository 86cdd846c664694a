//! Recording any GNU make build: each test drives the real binary against real make on
//! a small fixture project, with `--no-trace` (what commands touch is the `files` module's).

use crate::harness::{self, rows, Test};

/// The repository holds the crate, the make plugin, the Python package, tests and
/// examples at its top.
#[test]
fn the_top_level_layout_is_in_place() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in [
        "Cargo.toml",
        "make-plugin",
        "src",
        "python",
        "tests",
        "examples",
    ] {
        assert!(root.join(entry).exists(), "{entry} is missing");
    }
}

/// The README opens with two commands, recording a bundled example and testing, and
/// .ci/run runs the second.
#[test]
fn the_readme_opens_with_an_example_and_the_ci_command() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let commands: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .filter(|l| !l.starts_with("```") && !l.trim().is_empty())
        .take(2)
        .collect();
    assert_eq!(commands.len(), 2, "the README must open with two commands");
    assert!(
        commands[0].contains("examples/"),
        "the first command records a bundled example: {}",
        commands[0]
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.contains(commands[1].trim()),
        ".ci/run must run `{}`",
        commands[1]
    );
}

/// Recursive make three levels deep, both styles (`-C dir` and `cd dir &&`): every
/// command with its make level, and the tree of makes.
#[test]
fn recursive_make_three_levels_deep_is_recorded_as_a_tree() {
    let t = Test::new()
        .makefile("all:\n\t$(MAKE) -C one\n\techo top > top.txt\n")
        .file(
            "one/Makefile",
            "all:\n\tcd two && $(MAKE)\n\techo one > one.txt\n",
        )
        .file(
            "one/two/Makefile",
            "all: leaf.txt\nleaf.txt:\n\techo leaf > $@\n",
        )
        .args(["make", "--no-trace"]);
    t.run().success();
    let db = t.db();
    let commands = rows(
        &db,
        "SELECT c.target, replace(c.directory, (SELECT directory FROM build), '.'), m.level, CAST(c.command AS TEXT)
         FROM command c JOIN make m ON m.id = c.make_id ORDER BY c.id",
    );
    let expected: Vec<Vec<String>> = [
        ["all", ".", "0", "make -C one"],
        ["leaf.txt", "./one/two", "2", "echo leaf > leaf.txt"],
        ["all", "./one", "1", "cd two && make"],
        ["all", "./one", "1", "echo one > one.txt"],
        ["all", ".", "0", "echo top > top.txt"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| s.to_string()).collect())
    .collect();
    let mut got = commands.clone();
    // The sub-make's command starts before its child's; order by start is what we check.
    got.sort_by_key(|r| r[2].clone());
    let mut want = expected.clone();
    want.sort_by_key(|r| r[2].clone());
    assert_eq!(got.len(), want.len(), "{commands:?}");
    for row in &want {
        assert!(commands.contains(row), "missing {row:?} in {commands:?}");
    }
    // The sub-make tree: each make names the command that started it.
    let tree = rows(
        &db,
        "SELECT m.level, coalesce(CAST(p.command AS TEXT), '-'), coalesce(pm.level, '-')
         FROM make m LEFT JOIN command p ON p.id = m.parent_command_id LEFT JOIN make pm ON pm.id = m.parent_make_id
         ORDER BY m.level",
    );
    assert_eq!(
        tree,
        vec![
            vec!["0".to_string(), "-".into(), "-".into()],
            vec!["1".into(), "make -C one".into(), "0".into()],
            vec!["2".into(), "cd two && make".into(), "1".into()],
        ]
    );
}

/// The recorder falls behind (here: stopped) while make's last command reports and make
/// exits: make's end and the last command's messages are all waiting at once, and the
/// command is still recorded as make's. A watcher continues the recorder once make is
/// gone (pidfd: no polling).
#[test]
fn commands_read_after_their_make_exited_are_still_recorded_as_its() {
    let t = Test::new()
        .file(
            "continue.py",
            "import os, select, signal, sys\n\
             make, recorder = int(sys.argv[1]), int(sys.argv[2])\n\
             try:\n    select.select([os.pidfd_open(make)], [], [])\n\
             except ProcessLookupError:\n    pass\n\
             os.kill(recorder, signal.SIGCONT)\n",
        )
        .makefile(
            "MAKE_PID := $(shell echo $$PPID)\n\
             RECORDER := $(shell cut -d' ' -f4 /proc/$(MAKE_PID)/stat)\n\
             all:\n\
             \tpython3 continue.py $(MAKE_PID) $(RECORDER) </dev/null >/dev/null 2>&1 &\n\
             \tkill -STOP $(RECORDER)\n\
             \techo last > last.txt\n",
        )
        .args(["make", "--no-trace"]);
    t.run().success();
    let db = t.db();
    // Every line, the last included, with its make (the command text has the pids in it).
    assert_eq!(
        rows(
            &db,
            "SELECT c.line_index, c.state, coalesce(m.level, 'no make') FROM command c
             LEFT JOIN make m ON m.id = c.make_id ORDER BY c.id",
        ),
        vec![
            vec!["0", "ok", "0"],
            vec!["1", "ok", "0"],
            vec!["2", "ok", "0"],
        ]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT CAST(command AS TEXT) FROM command WHERE line_index = 2"
        ),
        vec![vec!["echo last > last.txt"]]
    );
}

/// -j4 over 50 independent jobs: every job recorded, and a sub-make keeps the jobserver.
#[test]
fn parallel_jobs_are_recorded_and_the_jobserver_stays_intact() {
    let targets: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    let makefile = format!(
        "all: {}\n\t@echo done\n%:\n\t@sleep 0.05; echo $@ > $@\nsub:\n\t+$(MAKE) -f Makefile t99\n",
        targets.join(" ")
    );
    let t = Test::new()
        .makefile(&makefile)
        .args(["make", "--no-trace", "-j4", "all", "sub"]);
    let out = t.run();
    out.success();
    assert!(
        !out.stderr.contains("jobserver unavailable"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("jobserver unavailable"),
        "{}",
        out.stdout
    );
    let db = t.db();
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM command WHERE target LIKE 't%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 51);
    // The sub-make got the jobserver: its MAKEFLAGS carries the auth fds.
    let env: Vec<u8> = db
        .query_row(
            "SELECT CAST(e.entries AS BLOB) FROM command c JOIN environment e ON e.id = c.environment_id WHERE c.target = 't99'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let makeflags = env
        .split(|&b| b == 0)
        .find(|e| e.starts_with(b"MAKEFLAGS="))
        .map(|e| String::from_utf8_lossy(e).into_owned());
    assert!(
        makeflags
            .as_deref()
            .unwrap_or("")
            .contains("jobserver-auth"),
        "{makeflags:?}"
    );
}

/// The makefile's own shell and make's recipe features (.ONESHELL, `-`/`+`/`@`,
/// pattern, static pattern and grouped targets, target-specific variables, large output).
#[test]
fn the_makefiles_shell_and_recipe_features_are_recorded() {
    let makefile = r#"SHELL := /bin/bash
all: bashism flags prefixes p.out s1.out s2.out g1 tsv big
bashism:
	@[[ "$$BASH_VERSION" != "" ]] && echo "bash $${BASH_VERSION%%.*}"
oneshell.mk:
	@true
flags:
	@$(MAKE) -s -f oneshell.mk run
prefixes:
	@echo silent
	-false
	+echo plus
%.out: %.in
	cp $< $@
s1.out s2.out: %.out: %.src
	cp $< $@
g1 g2 &:
	touch g1 g2
tsv: VAR = target-specific
tsv:
	echo $(VAR)
big:
	@head -c 10485760 /dev/zero | tr '\0' x
.PHONY: all bashism flags prefixes tsv big
"#;
    let oneshell = ".ONESHELL:\nSHELL := /bin/bash\n.SHELLFLAGS := -ec\nrun:\n\tx=1\n\techo \"oneshell x=$$x\"\n";
    let t = Test::new()
        .makefile(makefile)
        .file("oneshell.mk", oneshell)
        .file("p.in", "p")
        .file("s1.src", "1")
        .file("s2.src", "2")
        .args(["make", "--no-trace", "--plain"]);
    let out = t.run();
    out.success();
    assert!(out.stdout.contains("bash 5"), "{}", out.stdout);
    assert!(out.stdout.contains("oneshell x=1"), "{}", out.stdout);
    let db = t.db();
    let get = |sql: &str| rows(&db, sql);
    assert_eq!(
        get("SELECT CAST(shell AS TEXT) FROM command WHERE target = 'bashism'"),
        vec![vec!["/bin/bash"]]
    );
    // .ONESHELL: the whole recipe is one command, run with the makefile's .SHELLFLAGS.
    let oneshell = get("SELECT CAST(command AS TEXT), replace(CAST(shell_flags AS TEXT), char(0), ' ') FROM command WHERE target = 'run'");
    assert_eq!(oneshell.len(), 1, "{oneshell:?}");
    assert!(oneshell[0][0].contains("x=1\necho"), "{oneshell:?}");
    assert_eq!(oneshell[0][1], "-ec");
    // `-false` failed but make went on; `+` and `@` lines ran.
    assert_eq!(
        get("SELECT state, exit_code FROM command WHERE command = 'false'"),
        vec![vec!["failed", "1"]]
    );
    assert_eq!(
        get("SELECT count(*) FROM command WHERE target = 'prefixes'"),
        vec![vec!["3"]]
    );
    // Pattern, static pattern and grouped targets, target-specific variables.
    assert_eq!(
        get("SELECT CAST(command AS TEXT) FROM command WHERE target = 'p.out'"),
        vec![vec!["cp p.in p.out"]]
    );
    assert_eq!(
        get("SELECT count(*) FROM command WHERE target IN ('s1.out', 's2.out')"),
        vec![vec!["2"]]
    );
    assert_eq!(
        get("SELECT count(*) FROM command WHERE CAST(command AS TEXT) = 'touch g1 g2'"),
        vec![vec!["1"]]
    );
    assert_eq!(
        get("SELECT CAST(command AS TEXT) FROM command WHERE target = 'tsv'"),
        vec![vec!["echo target-specific"]]
    );
    // 10 MB of output: its first and last MiB kept, the cut said (trials.rs).
    assert_eq!(
        get(
            "SELECT length(stdout) > 2097152 AND length(stdout) < 2097152 + 200,
                    instr(stdout, '[makescope: 8388608 bytes of output cut here') > 0
             FROM command WHERE target = 'big'"
        ),
        vec![vec!["1", "1"]]
    );
}

/// A failing command, with and without -k: its state, exit code and output, and make's
/// status for the build.
#[test]
fn a_failing_command_is_recorded_with_and_without_keep_going() {
    let makefile = "all: bad good\nbad:\n\t@echo about to fail; exit 3\ngood:\n\t@echo fine\n";
    for keep_going in [false, true] {
        let mut args = vec!["make", "--no-trace"];
        if keep_going {
            args.push("-k");
        }
        let t = Test::new().makefile(makefile).args(args);
        let out = t.run();
        out.code(2);
        let db = t.db();
        assert_eq!(
            rows(
                &db,
                "SELECT state, exit_code, CAST(stdout AS TEXT) FROM command WHERE target = 'bad'"
            ),
            vec![vec!["failed", "3", "about to fail\n"]]
        );
        assert_eq!(
            rows(&db, "SELECT state, exit_code FROM build"),
            vec![vec!["failed", "2"]]
        );
        assert!(
            out.stdout.contains("FAILED") || out.stderr.contains("FAILED"),
            "{}{}",
            out.stdout,
            out.stderr
        );
    }
}

/// Ctrl-C stops the build as it would stop make, and the record says so.
#[test]
fn ctrl_c_stops_the_build_and_the_record_says_interrupted() {
    let t = Test::new()
        .makefile("all:\n\t@echo started; sleep 30\n")
        .args(["make", "--no-trace"]);
    let mut command = t.command();
    // A process group of its own, as a shell gives a foreground job, and SIGINT's
    // default disposition, as a terminal's job has (the suite may run with it ignored,
    // from nohup or a background job, which makescope would keep).
    // SAFETY: the hook runs in the forked child before exec and only calls setpgid and
    // signal, which are async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::setpgid(0, 0);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = t.spawn(command);
    let db = t.path().join(".makescope/db.sqlite");
    let started = std::time::Instant::now();
    loop {
        let running = db.exists()
            && rusqlite::Connection::open(&db)
                .and_then(|c| {
                    c.query_row("SELECT count(*) FROM command", [], |r| r.get::<_, i64>(0))
                })
                .unwrap_or(0)
                > 0;
        if running {
            break;
        }
        assert!(
            started.elapsed() < harness::TIMEOUT,
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // As the terminal does: SIGINT to the whole foreground process group.
    // SAFETY: kill takes no pointers; the group is the one makescope leads.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let out = child.wait();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "make did not stop"
    );
    assert_eq!(out.signal, Some(libc::SIGINT), "{out:?}");
    let db = t.db();
    assert_eq!(
        rows(&db, "SELECT state FROM build"),
        vec![vec!["interrupted"]]
    );
    let command = rows(&db, "SELECT state, signal FROM command");
    assert_eq!(
        command,
        vec![vec!["killed".to_string(), libc::SIGINT.to_string()]]
    );
}

/// A make that exits with a status after an interrupt it means to die of (GNU make 4.3
/// does when the signal reaches it as it reaps the interrupted command: "wait: No child
/// processes", from inside its handler, the signal blocked): makescope still ends by the
/// signal, and the record says interrupted.
#[test]
fn an_interrupted_build_ends_makescope_by_the_signal_even_when_make_exits_with_a_status() {
    let t = Test::new().file(
        "make-that-exits-2",
        "#!/usr/bin/env python3\n\
         import signal, sys\n\
         def interrupted(*_):\n\
         \x20   signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n\
         \x20   sys.exit(2)\n\
         signal.signal(signal.SIGINT, interrupted)\n\
         open('started', 'w').close()\n\
         signal.pause()\n",
    );
    let make = t.path().join("make-that-exits-2");
    std::fs::set_permissions(&make, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let t = t.args([
        "make".into(),
        "--no-trace".into(),
        "--make-program".into(),
        make.into_os_string(),
    ]);
    let mut command = t.command();
    // A job of its own with SIGINT's default disposition, as above.
    // SAFETY: the hook runs in the forked child before exec and only calls setpgid and
    // signal, which are async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::setpgid(0, 0);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = t.spawn(command);
    let started = std::time::Instant::now();
    while !t.path().join("started").exists() {
        assert!(started.elapsed() < harness::TIMEOUT, "make never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill takes no pointers; the group is the one makescope leads.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let out = child.wait();
    assert_eq!(out.signal, Some(libc::SIGINT), "{out:?}");
    assert_eq!(
        rows(&t.db(), "SELECT state, exit_code FROM build"),
        vec![vec!["interrupted", "2"]]
    );
}

/// `make -n` records nothing as executed, except what make runs even then (`+` lines).
#[test]
fn a_dry_run_records_only_what_make_runs_anyway() {
    let t = Test::new()
        .makefile("all:\n\techo would > out.txt\n\t+echo really-runs\n")
        .args(["make", "--no-trace", "-n"]);
    let out = t.run();
    out.success();
    assert!(!t.path().join("out.txt").exists());
    let db = t.db();
    assert_eq!(
        rows(&db, "SELECT CAST(command AS TEXT) FROM command"),
        vec![vec!["echo really-runs"]]
    );
}

/// No makefile: make's own error, exit 2, and a failed build in the record.
#[test]
fn no_makefile_is_makes_error_and_a_failed_build() {
    let t = Test::new().args(["make", "--no-trace"]);
    let out = t.run();
    out.code(2);
    assert!(
        out.stderr
            .contains("No targets specified and no makefile found"),
        "{}",
        out.stderr
    );
    assert_eq!(
        rows(&t.db(), "SELECT state, exit_code FROM build"),
        vec![vec!["failed", "2"]]
    );
}

/// A record that cannot be created: one line, exit 2.
#[test]
fn an_unwritable_record_is_one_error_line() {
    let t = Test::new().makefile("all:\n\ttrue\n").file("ro/.keep", "");
    let ro = t.path().join("ro");
    std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    // SAFETY: geteuid takes nothing and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    // root ignores permissions: use a path under a regular file instead.
    let db = if is_root {
        t.path().join("Makefile/db.sqlite")
    } else {
        ro.join("db.sqlite")
    };
    let out = t.then([
        std::ffi::OsString::from("--db"),
        db.into_os_string(),
        "make".into(),
        "--no-trace".into(),
    ]);
    out.code(2);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", out.stderr);
    assert!(lines[0].starts_with("makescope: error:"), "{}", out.stderr);
}

/// A corrupt record, or one from a newer makescope: one line, exit 2, the file untouched.
#[test]
fn corrupt_and_newer_records_are_left_alone() {
    let t = Test::new()
        .makefile("all:\n\ttrue\n")
        .file(".makescope/db.sqlite", vec![7u8; 4096]);
    let out = t.then(["make", "--no-trace"]);
    out.code(2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("corrupt"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(t.path().join(".makescope/db.sqlite")).unwrap(),
        vec![7u8; 4096]
    );

    let t = Test::new()
        .makefile("all:\n\ttrue\n")
        .args(["make", "--no-trace"]);
    t.run().success();
    t.db().execute_batch("PRAGMA user_version = 999").unwrap();
    let before = std::fs::read(t.path().join(".makescope/db.sqlite")).unwrap();
    for args in [&["make", "--no-trace"][..], &["log"][..]] {
        let out = t.then(args.iter().copied());
        out.code(2);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains("newer makescope"), "{}", out.stderr);
    }
    assert_eq!(
        before,
        std::fs::read(t.path().join(".makescope/db.sqlite")).unwrap()
    );
}

/// File names that are not UTF-8 survive into the record and out of `show --json`.
#[test]
fn non_utf8_file_names_survive() {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    let t = Test::new()
        .file(
            "Makefile",
            b"all: caf\xe9.txt\ncaf\xe9.txt:\n\ttouch $@\n".as_slice(),
        )
        .args(["make", "--no-trace"]);
    t.run().success();
    assert!(t.path().join(name).exists());
    let out = t.then([
        std::ffi::OsStr::new("show"),
        name,
        std::ffi::OsStr::new("--json"),
    ]);
    out.success();
    let json = out.json();
    let target = &json["target"];
    assert_eq!(target["base64"], "Y2Fm6S50eHQ=", "{json}");
    let command = &json["command"];
    assert_eq!(
        command["base64"],
        makescope::util::base64(b"touch caf\xe9.txt"),
        "{json}"
    );
}

/// Secrets in the environment are redacted unless asked.
#[test]
fn secrets_are_redacted() {
    let t = Test::new()
        .makefile("all:\n\t@echo $$MY_API_TOKEN\n")
        .env("MY_API_TOKEN", "hunter2")
        .args(["make", "--no-trace"]);
    let out = t.run();
    out.success();
    assert!(
        out.stdout.contains("hunter2"),
        "the build itself sees the value"
    );
    let env: Vec<u8> = t
        .db()
        .query_row("SELECT CAST(e.entries AS BLOB) FROM command c JOIN environment e ON e.id = c.environment_id", [], |r| r.get(0))
        .unwrap();
    let text = String::from_utf8_lossy(&env);
    assert!(text.contains("MY_API_TOKEN=<redacted>"), "{text}");
    assert!(!text.contains("hunter2"));
}

/// A make that cannot be started: one line, exit 2, and the build is still ended in the
/// record (failed), never left `running`.
#[test]
fn a_make_that_cannot_start_is_one_line_and_a_failed_build() {
    let t = Test::new().makefile("all:\n\ttrue\n").args([
        "make",
        "--no-trace",
        "--make-program",
        "/nonexistent/make",
    ]);
    let out = t.run();
    out.code(2);
    assert!(
        out.stderr
            .contains("makescope: error: cannot run /nonexistent/make"),
        "{}",
        out.stderr
    );
    assert_eq!(
        rows(&t.db(), "SELECT state, exit_code FROM build"),
        vec![vec!["failed", "NULL"]]
    );
}

/// Environments are stored once per distinct content, without makescope's own per-job
/// variables (which would make every command's environment unique).
#[test]
fn environments_are_shared() {
    let t = Test::new()
        .makefile("all: a b c\na b c:\n\t@echo $@\n")
        .args(["make", "--no-trace"]);
    t.run().success();
    let db = t.db();
    assert_eq!(rows(&db, "SELECT count(*) FROM command"), vec![vec!["3"]]);
    assert_eq!(
        rows(&db, "SELECT count(DISTINCT environment_id) FROM command"),
        vec![vec!["1"]]
    );
    let env: Vec<u8> = db
        .query_row("SELECT CAST(entries AS BLOB) FROM environment", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&env).contains("MAKESCOPE_"),
        "{}",
        String::from_utf8_lossy(&env)
    );
}
