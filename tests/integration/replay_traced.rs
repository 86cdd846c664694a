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
