//! `makescope replay`: a recorded recipe runs again without make, as make ran it.
//! Each test records a small build with real make, changes the tree (deletes an
//! output, removes a directory), replays, and checks what the replay left.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::harness::{makescope_bin, Output, Test};

fn recorded(makefile: &str, make_args: &[&str]) -> Test {
    let mut args = vec!["make"];
    args.extend_from_slice(make_args);
    let test = Test::new().makefile(makefile).args(args);
    test.run().success();
    test
}

fn read(test: &Test, path: &str) -> Vec<u8> {
    std::fs::read(test.path().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn delete(test: &Test, path: &str) {
    std::fs::remove_file(test.path().join(path)).unwrap();
}

fn exists(test: &Test, path: &str) -> bool {
    test.path().join(path).exists()
}

const DATA: &str = "\
out/data.bin:
\tmkdir -p out && printf 'a\\001\\377b\\n' > $@ && printf side > out/side.txt
";

#[test]
fn replay_by_id_target_and_written_path_reproduces_the_output() {
    let test = recorded(DATA, &[]);
    let built = read(&test, "out/data.bin");
    assert_eq!(built, b"a\x01\xffb\n");
    let side = test.path().join("out/side.txt");
    let side = side.to_str().unwrap();
    for reference in ["1", "out/data.bin", side] {
        delete(&test, "out/data.bin");
        test.then(["replay", reference]).success();
        assert_eq!(read(&test, "out/data.bin"), built, "replay {reference}");
    }
}

#[test]
fn a_multi_line_recipe_replays_line_by_line_and_one_line_alone() {
    let test = recorded(
        "multi.txt:\n\techo one > $@\n\techo two >> $@\n\t-false\n\techo three >> $@\n",
        &[],
    );
    let built = read(&test, "multi.txt");
    assert_eq!(built, b"one\ntwo\nthree\n");
    delete(&test, "multi.txt");
    let out = test.then(["replay", "multi.txt"]);
    out.success();
    assert_eq!(read(&test, "multi.txt"), built);
    assert!(
        out.stderr.contains("line 3 exited 1 (ignored"),
        "{}",
        out.stderr
    );

    delete(&test, "multi.txt");
    test.then(["replay", "multi.txt", "--line", "2"]).success();
    assert_eq!(read(&test, "multi.txt"), b"two\n");
    // Alone, the `-` line ends with its own status.
    test.then(["replay", "multi.txt", "--line", "3"]).code(1);
    test.then(["replay", "multi.txt", "--line", "5"]).code(2);
}

#[test]
fn a_failure_stops_the_recipe_with_the_commands_status() {
    let test = Test::new()
        .makefile("fail:\n\techo before > fail.txt\n\texit 7\n\techo after >> fail.txt\nsig:\n\tkill -TERM $$$$\n")
        .args(["make", "-k", "fail", "sig"]);
    test.run().code(2);
    delete(&test, "fail.txt");
    test.then(["replay", "fail"]).code(7);
    assert_eq!(read(&test, "fail.txt"), b"before\n");
    test.then(["replay", "sig"]).code(128 + 15);
}

#[test]
fn the_script_replays_with_sh_byte_for_byte() {
    // An environment value no quoting shortcut survives: quotes, `$`, a newline, a
    // backslash and bytes that are not UTF-8.
    let weird = OsStr::from_bytes(b"it's \"q\" $HOME `x`\nnext\\ \xff\xfe");
    let test = Test::new()
        .makefile("SHELL := /bin/bash\nweird.txt:\n\tprintf '%s|%s' \"$$WEIRD\" \"$$0\" > $@\n\techo 'second line' >> $@\n")
        .args(["make"])
        .env("WEIRD", weird);
    test.run().success();
    let built = read(&test, "weird.txt");
    assert!(built.starts_with(weird.as_bytes()), "{built:?}");
    let out = test.then(["replay", "weird.txt", "--script"]);
    out.success();
    let script = test.path().join("replay.sh");
    std::fs::write(&script, &out.stdout_bytes).unwrap();
    delete(&test, "weird.txt");
    let mut sh = test.program("sh");
    sh.arg(&script).env_remove("WEIRD");
    test.run_command(sh).success();
    assert_eq!(read(&test, "weird.txt"), built);
}

#[test]
fn a_dry_run_lists_and_runs_nothing() {
    let test = recorded(DATA, &[]);
    delete(&test, "out/data.bin");
    let out = test.then(["replay", "out/data.bin", "--dry-run"]);
    out.success();
    assert!(!exists(&test, "out/data.bin"));
    let directory = format!("directory  {}", test.path().display());
    for expected in [
        directory.as_str(),
        "shell      /bin/sh",
        "flags      -c",
        "line 1     mkdir -p out",
    ] {
        assert!(out.stdout.contains(expected), "{expected}\n{}", out.stdout);
    }
}

#[test]
fn a_vanished_directory_is_one_line_and_exit_2() {
    let test = Test::new()
        .file("work/Makefile", "all:\n\ttouch ../ran\n")
        .args(["make", "-C", "work"]);
    test.run().success();
    std::fs::remove_file(test.path().join("ran")).unwrap();
    std::fs::remove_dir_all(test.path().join("work")).unwrap();
    let out = test.then(["replay", "1"]);
    out.code(2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("no longer exists"), "{}", out.stderr);
    assert!(!exists(&test, "ran"));
}

#[test]
fn a_redacted_secret_is_refused_by_name_or_taken_from_the_environment() {
    let test = Test::new()
        .makefile("token.txt:\n\tprintf '%s' \"$$API_TOKEN\" > $@\n")
        .args(["make"])
        .env("API_TOKEN", "recorded-secret");
    test.run().success();
    delete(&test, "token.txt");

    let mut without = test.program(makescope_bin());
    without
        .args(["replay", "token.txt"])
        .env_remove("API_TOKEN");
    let out = test.run_command(without);
    out.code(2);
    assert!(out.stderr.contains("`API_TOKEN`"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!exists(&test, "token.txt"));

    let mut with = test.program(makescope_bin());
    with.args(["replay", "token.txt"])
        .env("API_TOKEN", "today's");
    let out = test.run_command(with);
    out.success();
    assert_eq!(read(&test, "token.txt"), b"today's");
    assert!(
        out.stderr.contains("`API_TOKEN` is redacted in the record: its value is taken from the current environment"),
        "{}",
        out.stderr
    );
    // A script never holds the value.
    let out = test.then(["replay", "token.txt", "--script"]);
    assert!(!out.stdout.contains("recorded-secret") && !out.stdout.contains("today"));
    assert!(
        out.stdout.contains("\"API_TOKEN=$API_TOKEN\""),
        "{}",
        out.stdout
    );
}

#[test]
fn makes_jobserver_and_makescope_leave_makeflags() {
    let test = recorded(
        "all: a b\na:\n\techo \"$$MAKEFLAGS\" > flags.txt\nb:\n\ttrue\n",
        &["-j2"],
    );
    let built = String::from_utf8(read(&test, "flags.txt")).unwrap();
    assert!(built.contains("--jobserver-auth="), "{built}");
    let out = test.then(["replay", "a"]);
    out.success();
    let replayed = String::from_utf8(read(&test, "flags.txt")).unwrap();
    assert!(replayed.contains("-j2"), "{replayed}");
    assert!(!replayed.contains("jobserver"), "{replayed}");
    assert!(!replayed.contains("makescope"), "{replayed}");
    assert!(
        out.stderr.contains("make's jobserver (`--jobserver-auth="),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_daemon_the_command_starts_is_killed_when_it_ends() {
    // A marker in the daemon's argv no other process has.
    let marker = format!("1000.{}{}", std::process::id(), line!());
    let test = recorded(
        &format!("daemon:\n\ttest ! -e go || setsid sh -c 'sleep {marker} &'\n"),
        &[],
    );
    std::fs::write(test.path().join("go"), "").unwrap();
    let out = test.then(["replay", "daemon"]);
    out.success();
    assert!(
        out.stderr.contains(&format!("sleep {marker}")),
        "{}",
        out.stderr
    );
    let mut pgrep = test.program("pgrep");
    pgrep.args(["-f", &format!("sleep {marker}")]);
    let left: Output = test.run_command(pgrep);
    assert_eq!(left.stdout, "", "left running");
}

#[test]
fn an_unknown_reference_is_one_line_and_exit_2() {
    let test = recorded(DATA, &[]);
    let out = test.then(["replay", "no/such/target"]);
    out.code(2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(Path::new(&test.path().join("out/data.bin")).exists());
}

#[test]
fn a_missing_program_on_a_simple_line_fails_as_make_says_it() {
    let test = Test::new()
        .makefile("gone:\n\tnosuchprog-r5 -x out.txt\n")
        .args(["make", "gone"]);
    let built = test.run();
    built.code(2);
    let said = format!("{}{}", built.stdout, built.stderr);
    assert!(
        said.contains("make: nosuchprog-r5: No such file or directory"),
        "{said}"
    );
    for extra in [&[][..], &["--no-trace"][..]] {
        let mut args = vec!["replay", "gone"];
        args.extend_from_slice(extra);
        let out = test.then(args);
        // make's child exits 127 and says so; so does the replay, not makescope's 2.
        out.code(127);
        assert!(
            out.stderr
                .contains("make: nosuchprog-r5: No such file or directory"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("makescope: error"), "{}", out.stderr);
    }
}
