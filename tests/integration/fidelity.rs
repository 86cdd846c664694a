//! makescope standing in for make: for what make's own test suite checks (issue 25),
//! `makescope make` answers as `make` does on the same makefile — exit status and
//! make's messages.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::harness::{makescope_bin, Output, Test};

/// `program ARGS` with its stdout on `/dev/full`, where every write fails (ENOSPC).
fn to_full_disk<S: AsRef<OsStr>>(t: &Test, program: impl AsRef<OsStr>, args: &[S]) -> Output {
    let mut command = t.program("sh");
    command
        .args(["-c", "exec \"$0\" \"$@\" > /dev/full"])
        .arg(program)
        .args(args);
    t.run_command(command)
}

/// make's and makescope's runs of `make_args`, stdout on a full disk, in each of
/// makescope's output modes.
fn both_to_full_disk(t: &Test, make_args: &[&str]) -> (Output, Vec<Output>) {
    let make = to_full_disk(t, "make", make_args);
    let makescope = [
        &["make", "--plain", "--"][..],
        &["make", "--"],
        &["make", "-v", "--"],
    ]
    .iter()
    .map(|mode| {
        let args: Vec<&str> = mode.iter().chain(make_args).copied().collect();
        to_full_disk(t, makescope_bin(), &args)
    })
    .collect();
    (make, makescope)
}

#[test]
fn a_write_error_on_stdout_fails_the_build_with_makes_message() {
    let t = Test::new().makefile("all:\n\t@:\n");
    let (make, makescope) = both_to_full_disk(&t, &["-v"]);
    assert_eq!(make.code, Some(1), "{make:?}");
    assert!(
        make.stderr.contains("make: write error: stdout"),
        "{make:?}"
    );
    for run in makescope {
        assert_eq!(run.code, make.code, "{run:?}");
        assert_eq!(
            run.stderr.matches("make: write error: stdout").count(),
            1,
            "{run:?}"
        );
    }
}

#[test]
fn a_commands_output_lost_to_a_full_disk_fails_its_line_as_under_make() {
    let t = Test::new().makefile("all:\n\t@echo hello\n");
    let (make, makescope) = both_to_full_disk(&t, &[]);
    assert_eq!(make.code, Some(2), "{make:?}");
    let [plain, concise, verbose] = <[Output; 3]>::try_from(makescope).unwrap();
    // --plain: the shim tees the line's output to make's stdout and fails the line.
    assert_eq!(plain.code, make.code, "{plain:?}");
    assert!(
        plain.stderr.contains("No space left on device"),
        "{plain:?}"
    );
    // The printer writes it: make succeeded, the output is lost, make's status for that.
    for run in [concise, verbose] {
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.stderr.contains("make: write error: stdout"), "{run:?}");
    }
}

/// `program ARGS` with its stdout on a pipe whose reader has gone: every write fails
/// with EPIPE (or SIGPIPE, for a program that does not ignore it).
fn to_closed_pipe<S: AsRef<OsStr>>(t: &Test, program: impl AsRef<OsStr>, args: &[S]) -> Output {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints for pipe(2) to fill in.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe(2) just opened both, and nothing else owns them.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    let mut command = t.program("sh");
    command
        .args(["-c", "fd=$1; shift; exec \"$0\" \"$@\" >&$fd"])
        .arg(program)
        .arg(writer.as_raw_fd().to_string())
        .args(args);
    // The write end is inherited (it is not close-on-exec) until the run ends.
    let out = t.run_command(command);
    drop(writer);
    out
}

#[test]
fn a_closed_pipe_on_stdout_is_what_it_is_to_make() {
    let t = Test::new().makefile("all:\n\t@echo hello\n");
    // make writes to it itself, and dies of SIGPIPE; so does makescope with --plain,
    // where make's stdout is makescope's.
    let make = to_closed_pipe(&t, "make", &["-v"]);
    assert_eq!(make.signal, Some(libc::SIGPIPE), "{make:?}");
    let plain = to_closed_pipe(&t, makescope_bin(), &["make", "--plain", "--", "-v"]);
    assert_eq!(plain.signal, make.signal, "{plain:?}");
    // makescope's printer writes it: a reader that has seen enough is no error, the
    // build goes on and its status is make's (README).
    for mode in ["--quiet", "-v"] {
        let run = to_closed_pipe(&t, makescope_bin(), &["make", mode]);
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(!run.stderr.contains("write error"), "{run:?}");
    }
}

/// `five` is options/dash-q's: a recipe line that expands to a backslash-newline alone,
/// which make drops (nothing to do) with its default shell.
const DASH_Q: &str = "\
five: ; \\
 $(.XY)

fresh:
\ttouch fresh

stale: fresh
\ttouch stale

recursive:
\t$(MAKE) stale
";

#[test]
fn make_q_answers_as_make_does() {
    let t = Test::new()
        .makefile(DASH_Q)
        .file("stale", "")
        .file("fresh", "");
    // `stale` older than `fresh`, whatever the file system's time granularity.
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    std::fs::File::options()
        .write(true)
        .open(t.path().join("stale"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let expected = [("five", 0), ("fresh", 0), ("stale", 1), ("recursive", 1)];
    for (goal, code) in expected {
        let mut make = t.program("make");
        make.args(["-q", goal]);
        let make = t.run_command(make);
        assert_eq!(make.code, Some(code), "make -q {goal}: {make:?}");
        for mode in [&["--plain"][..], &[], &["--no-trace"]] {
            let args: Vec<&str> = ["make"]
                .iter()
                .chain(mode)
                .chain(&["--", "-q", goal])
                .copied()
                .collect();
            let run = t.then(args.clone());
            assert_eq!(run.code, make.code, "makescope {args:?}: {run:?}");
        }
    }
    // -q ran nothing and touched nothing.
    assert!(
        t.path()
            .join("stale")
            .metadata()
            .unwrap()
            .modified()
            .unwrap()
            == old
    );
}

#[test]
fn a_program_that_cannot_run_is_reported_as_make_reports_it() {
    // A recipe line and a `$(shell)` in a recipe, each needing no shell: make execs
    // them itself and says why it could not.
    let t = Test::new().makefile("line: ; ./missing\nshell: ; @echo $(shell ./missing)\n");
    for goal in ["line", "shell"] {
        let mut make = t.program("make");
        make.arg(goal);
        let make = t.run_command(make);
        assert!(
            make.stderr
                .contains("make: ./missing: No such file or directory"),
            "{make:?}"
        );
        for mode in [&["--plain"][..], &["--plain", "--no-trace"]] {
            let args: Vec<&str> = ["make"]
                .iter()
                .chain(mode)
                .chain(&["--", goal])
                .copied()
                .collect();
            let run = t.then(args);
            assert_eq!(run.code, make.code, "{goal} {mode:?}: {run:?}");
            // make's lines, in make's order; then makescope's summary.
            let lines: Vec<&str> = run
                .stderr
                .lines()
                .filter(|l| !l.starts_with("makescope: "))
                .collect();
            assert_eq!(
                lines,
                make.stderr.lines().collect::<Vec<_>>(),
                "{goal} {mode:?}"
            );
            assert_eq!(run.stdout, make.stdout, "{goal} {mode:?}");
        }
    }
}

#[test]
fn plain_quiet_prints_exactly_what_make_prints() {
    // make's own messages on both streams, a command's output on both, a sub-make, and
    // (for `fail`) make's error lines and status.
    let t = Test::new().makefile(
        "$(info parsing)\n\
         all: sub\n\t@echo out; echo err >&2\n\t@:\n\
         sub:\n\t@$(MAKE) --no-print-directory -f Makefile leaf\n\
         leaf:\n\t$(warning in leaf)@echo leaf\n\
         fail: all\n\t@exit 3\n",
    );
    for goal in ["all", "fail"] {
        let mut make = t.program("make");
        make.arg(goal);
        let make = t.run_command(make);
        for mode in [
            &["--plain", "--quiet"][..],
            &["--plain", "-q", "--no-trace"],
        ] {
            let args: Vec<&str> = ["make"]
                .iter()
                .chain(mode)
                .chain(&["--", goal])
                .copied()
                .collect();
            let run = t.then(&args);
            assert_eq!(run.code, make.code, "{args:?}: {run:?}");
            assert_eq!(run.stdout_bytes, make.stdout_bytes, "{args:?}: {run:?}");
            assert_eq!(run.stderr_bytes, make.stderr_bytes, "{args:?}: {run:?}");
        }
        // Without --quiet, the summary line is the one difference.
        let run = t.then(["make", "--plain", "--", goal]);
        assert_eq!(run.stdout_bytes, make.stdout_bytes, "{run:?}");
        let summary = run.stderr.strip_prefix(&make.stderr);
        assert!(
            summary.is_some_and(|s| s.starts_with("makescope: ") && s.lines().count() == 1),
            "{run:?}"
        );
    }
}

/// Prints what make tells a makefile about itself, at parse time, in a recipe's
/// environment and in a sub-make.
const MAKEFLAGS_SHOWN: &str = "\
$(info $(MAKELEVEL) parse: MAKEFLAGS=[$(MAKEFLAGS)] MFLAGS=[$(MFLAGS)] MAKEFILE_LIST=[$(MAKEFILE_LIST)] $(flavor MAKEFILE_LIST) .LOADED=[$(.LOADED)])
all:
\t@echo \"$(MAKELEVEL) recipe: MAKEFLAGS=[$$MAKEFLAGS]\"
\t@$(MAKE) -f Makefile sub
sub:
\t@echo \"$(MAKELEVEL) sub: MAKEFLAGS=[$(MAKEFLAGS)]\"
";

#[test]
fn makeflags_are_what_make_makes_them_at_every_level() {
    let t = Test::new().makefile(MAKEFLAGS_SHOWN);
    let flag_sets: [&[&str]; 5] = [
        &[],
        &["-s"],
        &["-k", "-i", "X=1"],
        &["-n"],
        &["--no-print-directory", "--eval=Y:=2", "-r"],
    ];
    for flags in flag_sets {
        let mut make = t.program("make");
        make.args(flags);
        let make = t.run_command(make);
        assert!(make.stdout.contains("1 sub: MAKEFLAGS=["), "{make:?}");
        for mode in [
            &["--plain", "--quiet"][..],
            &["--plain", "--quiet", "--no-trace"],
        ] {
            let args: Vec<&str> = ["make"]
                .iter()
                .chain(mode)
                .chain(&["--"])
                .chain(flags)
                .copied()
                .collect();
            let run = t.then(&args);
            assert_eq!(run.stdout, make.stdout, "{args:?}: {run:?}");
            assert_eq!(run.code, make.code, "{args:?}: {run:?}");
        }
    }
    // Every make was recorded: the sub-make and its command too.
    let run = t.then(["make", "--no-trace"]);
    run.success();
    let log = t.then(["log"]);
    assert!(log.stdout.contains("sub"), "{log:?}");
}

#[test]
fn sub_makes_are_recorded_when_the_makefile_or_the_command_line_sets_makefiles() {
    // The makefile sets MAKEFILES for its sub-makes: the shim keeps makescope's in front.
    // The command line sets it: every make loads the plugin from --eval instead.
    let t = Test::new()
        .makefile(
            "export MAKEFILES := common.mk\n\
             all:\n\t@$(MAKE) -f Makefile sub\n\
             sub:\n\t@echo $(COMMON)\n",
        )
        .file("common.mk", "COMMON = from-common\n");
    for args in [
        &["make", "--no-trace"][..],
        &["make", "--no-trace", "--", "MAKEFILES=common.mk"],
    ] {
        let run = t.then(args);
        run.success();
        assert!(run.stdout.contains("from-common"), "{args:?}: {run:?}");
        let log = t.then(["log", "--json"]);
        let targets: Vec<String> = log.json()["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["target"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(targets, ["all", "sub"], "{args:?}: {log:?}");
    }
}

#[test]
fn makescope_standing_in_for_make_inside_a_recorded_build_joins_it() {
    // A script named make that runs makescope, called by path from a recipe (the shim
    // cannot tell it is a sub-make: it runs under the line's filter when traced).
    let t = Test::new().makefile("all:\n\t@ ./make -f Makefile sub\nsub:\n\t@echo in-sub\n");
    let wrapper = format!(
        "#!/bin/sh\nexec '{}' make --plain --quiet --make-program make -- \"$@\"\n",
        makescope_bin().display()
    );
    let t = t.file("make", wrapper);
    std::fs::set_permissions(
        t.path().join("make"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for mode in [&["make", "--plain"][..], &["make", "--plain", "--no-trace"]] {
        let run = t.then(mode);
        run.success();
        assert!(run.stdout.contains("in-sub"), "{mode:?}: {run:?}");
        let log = t.then(["log", "--json"]);
        let targets: Vec<String> = log.json()["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["target"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(targets, ["all", "sub"], "{mode:?}: {log:?}");
    }
}

/// `program ARGS` with stdout and stderr both on the file `out` in the test's directory,
/// which is returned: the jobs below watch it to take turns.
fn to_shared_file<S: AsRef<OsStr>>(t: &Test, program: impl AsRef<OsStr>, args: &[S]) -> String {
    let mut command = t.program("sh");
    command
        .args(["-c", "exec \"$0\" \"$@\" > out 2>&1"])
        .arg(program)
        .args(args);
    t.run_command(command).success();
    std::fs::read_to_string(t.path().join("out")).unwrap()
}

/// Two jobs that take turns writing: each waits (10 s at most) until the other's line is
/// in `out`, so make's interleaving is one order only. With -O, `b` writes both lines
/// (one to stderr) and `a` waits for them to be in `out`: for make to have finished `b`
/// and copied its output.
const TAKING_TURNS: &str = "\
wait = n=0; until grep -q $1 out || [ $$n -ge 1000 ]; do sleep 0.01; n=$$((n+1)); done
all: a b
a:
\t@echo a1; $(call wait,b1); echo a2
b:
\t@$(call wait,a1); echo b1; $(call wait,a2); echo b2
sync: sa sb
sa:
\t@echo a1; $(call wait,b2); echo a2
sb:
\t@echo b1; echo b2 >&2
";

#[test]
fn parallel_jobs_interleave_as_under_make_in_plain_mode() {
    let t = Test::new().makefile(TAKING_TURNS);
    let make = to_shared_file(&t, "make", &["-j2"]);
    assert_eq!(make, "a1\nb1\na2\nb2\n");
    for mode in [
        &["--plain", "--quiet"][..],
        &["--plain", "--quiet", "--no-trace"],
    ] {
        let args: Vec<&str> = ["make"]
            .iter()
            .chain(mode)
            .chain(&["--", "-j2"])
            .copied()
            .collect();
        assert_eq!(to_shared_file(&t, makescope_bin(), &args), make, "{args:?}");
    }
}

#[test]
fn output_sync_groups_each_jobs_output_as_under_make() {
    let t = Test::new().makefile(TAKING_TURNS);
    // (-Oline is left out: a's first line and b's race there, under make too.)
    for sync in ["-O", "-Otarget"] {
        let make = to_shared_file(&t, "make", &["-j2", sync, "sync"]);
        assert_eq!(make, "b1\nb2\na1\na2\n", "{sync}");
        for mode in [
            &["--plain", "--quiet"][..],
            &["--plain", "--quiet", "--no-trace"],
        ] {
            let args: Vec<&str> = ["make"]
                .iter()
                .chain(mode)
                .chain(&["--", "-j2", sync, "sync"])
                .copied()
                .collect();
            assert_eq!(to_shared_file(&t, makescope_bin(), &args), make, "{args:?}");
        }
    }
}

#[test]
fn a_commands_stdout_and_stderr_keep_their_order_on_one_file_in_plain_mode() {
    // Alternating lines on the two streams, both to the same file: the order is the
    // command's (make -O hands a job one file for both streams too).
    let t = Test::new().makefile(
        "all:\n\t@i=0; while [ $$i -lt 200 ]; do echo out$$i; echo err$$i >&2; i=$$((i+1)); done\n",
    );
    for sync in [&[][..], &["-j2", "-O"]] {
        let make = to_shared_file(&t, "make", sync);
        assert!(make.starts_with("out0\nerr0\nout1\nerr1\n"), "{make}");
        for mode in [
            &["--plain", "--quiet"][..],
            &["--plain", "--quiet", "--no-trace"],
        ] {
            let args: Vec<&str> = ["make"]
                .iter()
                .chain(mode)
                .chain(&["--"])
                .chain(sync)
                .copied()
                .collect();
            assert_eq!(to_shared_file(&t, makescope_bin(), &args), make, "{args:?}");
        }
    }
}

/// A script `mk` in `t`'s directory that stands in for make, naming itself to makescope
/// as the test-suite harness's script must (`--make-name "$0"`).
fn stand_in_script(t: Test) -> Test {
    let script = format!(
        "#!/bin/sh\nexec '{}' make --plain --quiet --make-name \"$0\" --make-program make -- \"$@\"\n",
        makescope_bin().display()
    );
    let t = t.file("mk", script);
    std::fs::set_permissions(
        t.path().join("mk"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    t
}

#[test]
fn dollar_make_is_the_name_make_was_run_under() {
    // $(MAKE) and make's messages come from its argv[0]: under a script standing in for
    // make they name the script, at the top and in a sub-make the script runs again.
    let t = stand_in_script(Test::new().makefile(
        "all:\n\t@echo \"MAKE=$(MAKE)\"\n\t@$(MAKE) --no-print-directory -f Makefile sub\n\
         sub:\n\t@echo \"sub MAKE=$(MAKE)\"\n",
    ));
    let script = t.path().join("mk");
    for goal in ["all", "nosuch"] {
        let mut make = t.program("bash");
        make.args(["-c", "exec -a \"$0\" make \"$@\""])
            .arg(&script)
            .arg(goal);
        let make = t.run_command(make);
        let mut run = t.program(&script);
        run.arg(goal);
        let run = t.run_command(run);
        assert_eq!(run.stdout, make.stdout, "{goal}: {run:?}");
        assert_eq!(run.stderr, make.stderr, "{goal}: {run:?}");
        assert_eq!(run.code, make.code, "{goal}: {run:?}");
    }
    let shown = format!("MAKE={}\nsub MAKE={}\n", script.display(), script.display());
    let mut run = t.program(&script);
    run.arg("all");
    assert_eq!(t.run_command(run).stdout, shown);
    // Without --make-name make's name is the program as makescope was asked to run it.
    let run = t.then([
        "make",
        "--plain",
        "--quiet",
        "--make-program",
        "/usr/bin/make",
    ]);
    assert!(run.stdout.starts_with("MAKE=/usr/bin/make\n"), "{run:?}");
    let run = t.then(["make", "--plain", "--quiet"]);
    assert!(run.stdout.starts_with("MAKE=make\n"), "{run:?}");
    let run = t.then(["make", "--make-name", ""]);
    run.code(2);
    assert!(
        run.stderr
            .starts_with("makescope: error: --make-name must not be empty"),
        "{run:?}"
    );
}

#[test]
fn dollar_shell_in_a_recipe_is_the_makefiles_shell() {
    // make runs every line through makescope's shim, yet a recipe that shows or runs
    // $(SHELL), or the SHELL it exports, sees the makefile's shell, as under make.
    let t = Test::new()
        .makefile("all:\n\t@echo \"$(SHELL)\"\n\t@$(SHELL) -c 'echo ran $$0'\n")
        .file(
            "bash.mk",
            "export SHELL := /bin/bash\n\
             all:\n\t@echo \"$(SHELL) [$$SHELL] $${BASH_VERSION:+bash}\"\n\t@$(SHELL) -c 'echo ran $$0'\n",
        );
    for makefile in ["Makefile", "bash.mk"] {
        let mut make = t.program("make");
        make.args(["-f", makefile]);
        let make = t.run_command(make);
        make.success();
        let shell = if makefile == "bash.mk" {
            "/bin/bash [/bin/bash] bash"
        } else {
            "/bin/sh"
        };
        assert!(make.stdout.starts_with(shell), "{make:?}");
        for mode in [
            &["--plain", "--quiet"][..],
            &["--plain", "--quiet", "--no-trace"],
        ] {
            let args: Vec<&str> = ["make"]
                .iter()
                .chain(mode)
                .chain(&["--", "-f", makefile])
                .copied()
                .collect();
            let run = t.then(&args);
            assert_eq!(run.stdout, make.stdout, "{args:?}: {run:?}");
            // Both lines still ran through the shim: both were recorded.
            let log = t.then(["log", "--json"]);
            assert_eq!(
                log.json()["commands"].as_array().unwrap().len(),
                2,
                "{log:?}"
            );
        }
    }
}
