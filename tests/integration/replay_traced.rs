//! Traced replays, the sandbox and leftovers: a replay is traced and recorded as a new
//! run of its command (`show` lists it and compares its files with the build's; `log`
//! skips it); `--sandbox` runs it where only its recorded files exist and names what it
//! touched outside them; no replay and no `make --kill-leftovers` leaves a process
//! running.

use std::collections::BTreeSet;

use crate::harness::{makescope_bin, rows, Output, Test};

const COMPILE: &str = "\
main.o: main.c defs.h
\tcc -c main.c -o main.o
";

fn compile_project() -> Test {
    let test = Test::new()
        .file("defs.h", "#define ANSWER 42\n")
        .file(
            "main.c",
            "#include \"defs.h\"\nint answer(void) { return ANSWER; }\n",
        )
        .makefile(COMPILE)
        .args(["make"]);
    test.run().success();
    test
}

/// The paths command `id` read (or executed) and wrote, from the record's view, without
/// temporaries (created and removed again: the compiler's `/tmp/cc*.s`).
fn files(test: &Test, id: i64) -> (BTreeSet<String>, BTreeSet<String>) {
    let all = rows(
        &test.db(),
        &format!("SELECT path, kind FROM file_accesses WHERE command_id = {id}"),
    );
    let removed: BTreeSet<&String> = all
        .iter()
        .filter(|r| r[1] == "remove")
        .map(|r| &r[0])
        .collect();
    let (mut read, mut written) = (BTreeSet::new(), BTreeSet::new());
    for r in &all {
        if removed.contains(&r[0]) || r[0].starts_with("/proc/") {
            continue;
        }
        match r[1].as_str() {
            "read" | "exec" => {
                read.insert(r[0].clone());
            }
            "write" | "create" | "truncate" | "append" | "rename_to" | "mkdir" => {
                written.insert(r[0].clone());
            }
            _ => {}
        }
    }
    (read, written)
}

#[test]
fn a_replay_is_recorded_as_a_run_of_its_command_and_show_lists_it() {
    let test = compile_project();
    let built = std::fs::read(test.path().join("main.o")).unwrap();
    std::fs::remove_file(test.path().join("main.o")).unwrap();
    test.then(["replay", "main.o"]).success();
    assert_eq!(std::fs::read(test.path().join("main.o")).unwrap(), built);

    let replays = rows(
        &test.db(),
        "SELECT c.id, c.replay_of, b.kind, c.exit_code FROM command c JOIN build b ON b.id = c.build_id WHERE c.replay_of IS NOT NULL",
    );
    assert_eq!(replays, vec![vec!["2", "1", "replay", "0"]]);
    // What it read and wrote is what the build's compile did (make exec'd this simple
    // line without a shell, and so does the replay).
    let (read, written) = files(&test, 2);
    assert_eq!((&read, &written), (&files(&test, 1).0, &files(&test, 1).1));
    assert!(read.iter().any(|p| p.ends_with("/defs.h")), "{read:?}");
    assert!(
        written.iter().any(|p| p.ends_with("/main.o")),
        "{written:?}"
    );

    let show = test.then(["show", "main.o"]);
    show.success();
    assert!(show.stdout.contains("replays    #2"), "{}", show.stdout);
    assert!(
        show.stdout.contains("read and wrote what the build did"),
        "{}",
        show.stdout
    );
    let json = test.then(["show", "1", "--json"]).json();
    assert_eq!(json["replays"][0]["id"], 2);
    assert_eq!(json["replays"][0]["exit_code"], 0);
    let replay = test.then(["show", "2"]);
    assert!(
        replay.stdout.contains("a replay of command #1"),
        "{}",
        replay.stdout
    );
    // A replay is not a build of the project: `log` and the last build skip it.
    let log = test.then(["log", "--json"]).json();
    assert_eq!(log["build"]["id"], 1, "{log}");
    test.then(["replay", "main.o"]).success();
}

#[test]
fn show_names_the_paths_a_replay_read_that_the_build_did_not() {
    let test = Test::new()
        .makefile("out.txt:\n\tcat $${INPUT_SECRET} > $@\n")
        .file("a.txt", "a\n")
        .file("b.txt", "b\n")
        .env("INPUT_SECRET", "a.txt")
        .args(["make"]);
    test.run().success();
    let mut replay = test.program(makescope_bin());
    replay
        .args(["replay", "out.txt"])
        .env("INPUT_SECRET", "b.txt");
    test.run_command(replay).success();
    let show = test.then(["show", "2"]);
    let b = test.path().join("b.txt");
    let a = test.path().join("a.txt");
    let line = |what: &str, path: &std::path::Path| {
        show.stdout
            .lines()
            .any(|l| l.contains(what) && l.ends_with(&format!(" {}", path.display())))
    };
    assert!(line("read only by the replay", &b), "{}", show.stdout);
    assert!(line("read only by the build", &a), "{}", show.stdout);
}

#[test]
fn no_trace_neither_traces_nor_records() {
    let test = compile_project();
    test.then(["replay", "main.o", "--no-trace"]).success();
    let count = rows(&test.db(), "SELECT count(*) FROM command");
    assert_eq!(count, vec![vec!["1"]]);
}

/// No process runs `sleep MARKER` any more.
fn nothing_left(test: &Test, marker: &str) {
    let mut pgrep = test.program("pgrep");
    pgrep.args(["-f", &format!("sleep {marker}")]);
    let left: Output = test.run_command(pgrep);
    assert_eq!(left.stdout, "", "left running");
}

fn daemon_project(marker: &str) -> Test {
    let test = Test::new()
        .makefile(&format!(
            "daemon:\n\ttest ! -e go || setsid sh -c 'sleep {marker} &'\n"
        ))
        .args(["make"]);
    test.run().success();
    std::fs::write(test.path().join("go"), "").unwrap();
    test
}

#[test]
fn a_traced_replay_kills_and_names_a_setsid_daemon() {
    let marker = format!("1000.{}{}", std::process::id(), line!());
    let test = daemon_project(&marker);
    let out = test.then(["replay", "daemon"]);
    out.success();
    assert!(
        out.stderr.contains("the command left running"),
        "{}",
        out.stderr
    );
    nothing_left(&test, &marker);
}

#[test]
fn make_kill_leftovers_kills_and_names_what_the_build_left_running() {
    let marker = format!("1000.{}{}", std::process::id(), line!());
    let test = Test::new()
        .makefile(&format!("daemon:\n\tsetsid sh -c 'sleep {marker} &'\n"))
        .args(["make", "--kill-leftovers"]);
    let out = test.run();
    out.success();
    assert!(
        out.stderr.contains("left running: ") && out.stderr.contains(&marker),
        "{}",
        out.stderr
    );
    nothing_left(&test, &marker);
}

#[test]
fn a_daemon_dies_with_the_sandboxs_pid_namespace() {
    let marker = format!("1000.{}{}", std::process::id(), line!());
    // Recorded starting it (so the sandbox holds setsid and sleep), and killed then.
    let test = Test::new()
        .makefile(&format!("daemon:\n\tsetsid sh -c 'sleep {marker} &'\n"))
        .args(["make", "--kill-leftovers"]);
    test.run().success();
    nothing_left(&test, &marker);
    let out = test.then(["replay", "daemon", "--sandbox"]);
    out.success();
    assert!(
        out.stderr.contains("the command left running") && out.stderr.contains("(in the sandbox)"),
        "{}",
        out.stderr
    );
    nothing_left(&test, &marker);
}

/// A command whose input is a path from a (redacted, so taken from the replay's own
/// environment) variable: recorded reading `a.txt`, replayed reading `b.txt`.
fn input_project(recipe: &str) -> Test {
    let test = Test::new()
        .makefile(&format!("out/out.txt:\n\t{recipe}\n"))
        .file("out/.keep", "")
        .file("a.txt", "a\n")
        .file("b.txt", "b\n")
        .env("INPUT_SECRET", "a.txt")
        .args(["make"]);
    test.run().success();
    test
}

fn replay_reading(test: &Test, input: &str, sandbox: bool) -> Output {
    let mut replay = test.program(makescope_bin());
    replay
        .args(["replay", "out/out.txt"])
        .env("INPUT_SECRET", input);
    if sandbox {
        replay.arg("--sandbox");
    }
    test.run_command(replay)
}

#[test]
fn a_file_outside_the_record_is_absent_in_the_sandbox_and_named() {
    let test = input_project("cat $${INPUT_SECRET} > $@");
    let b = test.path().join("b.txt");
    let out = replay_reading(&test, "b.txt", true);
    // cat fails with its own status.
    out.code(1);
    assert!(
        out.stderr
            .contains(&format!("outside its record: probe {}", b.display())),
        "{}",
        out.stderr
    );
    // Without the sandbox it replays fine; in it, with the recorded input, too.
    replay_reading(&test, "b.txt", false).success();
    assert_eq!(
        std::fs::read(test.path().join("out/out.txt")).unwrap(),
        b"b\n"
    );
    replay_reading(&test, "a.txt", true).success();
    assert_eq!(
        std::fs::read(test.path().join("out/out.txt")).unwrap(),
        b"a\n"
    );
}

#[test]
fn a_miss_the_program_swallows_is_named_and_fails_the_replay() {
    let test = input_project("(cat $${INPUT_SECRET} || true) 2>/dev/null > $@");
    let out = replay_reading(&test, "b.txt", true);
    out.code(4);
    let b = test.path().join("b.txt");
    assert!(
        out.stderr.contains(&format!("probe {}", b.display())),
        "{}",
        out.stderr
    );
    // And the new run's record has it.
    let json = test.then(["show", "2", "--json"]).json();
    let probed = json["files"]["probe"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        probed.iter().any(|p| p == b.to_str().unwrap()),
        "{probed:?}"
    );
}

#[test]
fn a_compile_replays_in_the_sandbox_byte_for_byte() {
    let test = compile_project();
    let built = std::fs::read(test.path().join("main.o")).unwrap();
    std::fs::remove_file(test.path().join("main.o")).unwrap();
    let out = test.then(["replay", "main.o", "--sandbox"]);
    out.success();
    assert!(!out.stderr.contains("outside its record"), "{}", out.stderr);
    assert_eq!(std::fs::read(test.path().join("main.o")).unwrap(), built);
    let show = test.then(["show", "1"]);
    assert!(
        show.stdout.contains("read and wrote what the build did"),
        "{}",
        show.stdout
    );
}
