//! `makescope rebuild`: what the record says is out of date re-runs without make, and
//! agrees with make. Each comparison records the recursive fixture (`rebuild/`: two
//! sub-makes, a generated header, a library) in two copies, makes the same edit in
//! both, runs `rebuild` in one and `makescope make` in the other, and compares the
//! commands each ran and every file they made.

use std::collections::BTreeSet;
use std::path::Path;

use crate::harness::{rows, Output, Test};

/// The files the build makes.
const OUTPUTS: &[&str] = &[
    "app",
    "main.o",
    "gen/version.h",
    "lib/a.o",
    "lib/b.o",
    "lib/libfoo.a",
];

fn built() -> Test {
    let test = Test::new().fixture("rebuild").args(["make"]);
    test.run().success();
    test
}

fn edit(test: &Test, path: &str, from: &str, to: &str) {
    let path = test.path().join(path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// The labels of the commands a piped `rebuild` ran (one line each).
fn ran(out: &Output) -> BTreeSet<String> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The recipes the summary names as skipped by early cutoff.
fn cut_off(out: &Output) -> BTreeSet<String> {
    out.stderr
        .lines()
        .filter_map(|l| l.split_once("byte-identical: ").map(|(_, names)| names))
        .flat_map(|names| names.split(", ").map(str::to_string))
        .collect()
}

/// The leaf commands (not sub-makes) the last recorded build ran.
fn make_ran(test: &Test) -> BTreeSet<String> {
    rows(
        &test.db(),
        "SELECT label FROM command WHERE build_id = (SELECT max(id) FROM build) AND traced != 2",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

fn set(labels: &[&str]) -> BTreeSet<String> {
    labels.iter().map(|s| s.to_string()).collect()
}

fn assert_same_outputs(a: &Path, b: &Path) {
    for file in OUTPUTS {
        let (x, y) = (std::fs::read(a.join(file)), std::fs::read(b.join(file)));
        assert_eq!(x.ok(), y.ok(), "{file} differs between rebuild and make");
    }
}

fn assert_up_to_date(test: &Test) {
    let out = test.then(["rebuild", "--dry-run"]);
    out.success();
    assert_eq!(out.stdout, "", "a second rebuild would run something");
    assert!(out.stderr.contains("nothing to do"), "{}", out.stderr);
}

/// Make `change` in two built copies; `rebuild` one, `makescope make` the other.
/// Returns what rebuild ran, what it cut off, what make ran.
fn compare(change: impl Fn(&Test)) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let (rebuilt, made) = (built(), built());
    change(&rebuilt);
    change(&made);
    let out = rebuilt.then(["rebuild", "-j2"]);
    out.success();
    assert!(
        !out.stdout.contains("MAKE"),
        "a sub-make re-ran:\n{}",
        out.stdout
    );
    made.then(["make"]).success();
    let (ran, cut) = (ran(&out), cut_off(&out));
    assert!(ran.is_disjoint(&cut));
    assert_same_outputs(rebuilt.path(), made.path());
    assert_up_to_date(&rebuilt);
    (ran, cut, make_ran(&made))
}

#[test]
fn editing_one_c_file_reruns_what_make_reruns() {
    let (ran, cut, make) = compare(|t| edit(t, "lib/a.c", "x * SCALE", "x * SCALE + 1"));
    assert_eq!(ran, set(&["CC lib/a.o", "AR lib/libfoo.a", "LD app"]));
    assert!(cut.is_empty());
    assert_eq!(ran, make);
}

#[test]
fn a_record_given_with_db_inside_the_tree_still_sees_an_edit() {
    // The record's directory is the build tree here: only the record's own files are
    // left without a state, not everything beside it.
    let t = Test::new()
        .fixture("rebuild")
        .env("MAKESCOPE_DB", "tree.sqlite")
        .args(["make"]);
    t.run().success();
    assert!(t.path().join("tree.sqlite").is_file());
    edit(&t, "lib/a.c", "x * SCALE", "x * SCALE + 1");
    let dry = t.then(["rebuild", "--dry-run"]);
    dry.success();
    assert!(dry.stdout.contains("CC lib/a.o"), "{}", dry.stdout);
    assert!(dry.stdout.contains("lib/a.c changed"), "{}", dry.stdout);
}

#[test]
fn editing_a_header_included_by_many_reruns_what_make_reruns() {
    let (ran, cut, make) = compare(|t| edit(t, "include/util.h", "SCALE 2", "SCALE 3"));
    assert_eq!(
        ran,
        set(&[
            "CC main.o",
            "CC lib/a.o",
            "CC lib/b.o",
            "AR lib/libfoo.a",
            "LD app"
        ])
    );
    assert!(cut.is_empty());
    assert_eq!(ran, make);
}

#[test]
fn editing_the_generated_headers_source_reruns_what_make_reruns() {
    let (ran, cut, make) = compare(|t| edit(t, "gen/version.in", "VERSION @", "VERSION 1+@"));
    assert_eq!(
        ran,
        set(&[
            "GEN gen/version.h",
            "CC main.o",
            "CC lib/b.o",
            "AR lib/libfoo.a",
            "LD app"
        ])
    );
    assert!(cut.is_empty());
    assert_eq!(ran, make);
}

#[test]
fn deleting_one_object_reruns_it_and_cuts_off_what_comes_out_identical() {
    let (ran, cut, make) = compare(|t| std::fs::remove_file(t.path().join("lib/a.o")).unwrap());
    assert_eq!(ran, set(&["CC lib/a.o"]));
    // make relinks the library and the program; they come out byte-identical.
    assert_eq!(cut, set(&["AR lib/libfoo.a", "LD app"]));
    assert_eq!(&ran | &cut, make);
}

#[test]
fn a_new_header_earlier_on_the_include_path_reruns_the_compiles_that_looked_for_it() {
    let shadow = |t: &Test| {
        std::fs::write(t.path().join("include/version.h"), "#define VERSION 7\n").unwrap()
    };
    let (rebuilt, made) = (built(), built());
    shadow(&rebuilt);
    shadow(&made);
    let dry = rebuilt.then(["rebuild", "--dry-run"]);
    dry.success();
    assert!(
        dry.stdout
            .contains("new file include/version.h shadows gen/version.h"),
        "{}",
        dry.stdout
    );
    let out = rebuilt.then(["rebuild"]);
    out.success();
    assert_eq!(
        ran(&out),
        set(&["CC main.o", "CC lib/b.o", "AR lib/libfoo.a", "LD app"])
    );
    // make's prerequisites do not name the new header: it remakes nothing, so compare
    // with everything made again.
    made.run_command({
        let mut make = made.program("make");
        make.arg("-B");
        make
    })
    .success();
    assert_same_outputs(rebuilt.path(), made.path());
    assert_up_to_date(&rebuilt);
}

#[test]
fn a_touch_alone_reruns_nothing_and_says_so() {
    let test = built();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(10);
    for file in ["lib/a.c", "include/util.h"] {
        std::fs::File::options()
            .write(true)
            .open(test.path().join(file))
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    let out = test.then(["rebuild", "--dry-run"]);
    out.success();
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("2 files touched, content unchanged: nothing re-runs for them"),
        "{}",
        out.stderr
    );
    let out = test.then(["rebuild"]);
    out.success();
    assert_eq!(out.stdout, "");
    // Their new stats are in the record now: no longer reported.
    let again = test.then(["rebuild", "--dry-run"]);
    assert!(!again.stderr.contains("touched"), "{}", again.stderr);
}

#[test]
fn a_target_rebuilds_only_what_it_needs() {
    let test = built();
    edit(&test, "lib/a.c", "x * SCALE", "x * SCALE + 1");
    edit(&test, "main.c", "b(1)", "b(2)");
    let out = test.then(["rebuild", "lib/libfoo.a"]);
    out.success();
    assert_eq!(ran(&out), set(&["CC lib/a.o", "AR lib/libfoo.a"]));
    let rest = test.then(["rebuild", "--dry-run"]);
    assert!(rest.stdout.contains("main.c changed"), "{}", rest.stdout);
}

#[test]
fn a_failing_rerun_stops_what_depends_on_it_and_stays_out_of_date() {
    let test = built();
    edit(&test, "lib/a.c", "x * SCALE", "x * SCALE +");
    let out = test.then(["rebuild"]);
    out.code(1);
    assert!(out.stdout.contains("FAILED: lib/a.o"), "{}", out.stdout);
    assert!(!ran(&out).contains("LD app"), "{}", out.stdout);
    let again = test.then(["rebuild", "--dry-run"]);
    assert!(again.stdout.contains("CC    lib/a.o"), "{}", again.stdout);
    edit(&test, "lib/a.c", "x * SCALE +", "x * SCALE");
    let fixed = test.then(["rebuild"]);
    fixed.success();
    assert_up_to_date(&test);
}

#[test]
fn commands_an_interrupted_build_never_finished_are_out_of_date() {
    let test = built();
    test.db()
        .execute_batch(
            "UPDATE build SET state = 'interrupted', ended_ns = NULL;
             UPDATE command SET state = 'lost', exit_code = NULL WHERE label = 'LD app';",
        )
        .unwrap();
    let dry = test.then(["rebuild", "--dry-run"]);
    dry.success();
    assert!(
        dry.stdout
            .contains("never finished (the build was interrupted)"),
        "{}",
        dry.stdout
    );
    let out = test.then(["rebuild"]);
    out.success();
    assert_eq!(ran(&out), set(&["LD app"]));
    assert_up_to_date(&test);
}

fn refused(test: &Test, args: &[&str], says: &str) {
    let before = std::fs::read(test.path().join(".makescope/db.sqlite")).ok();
    let out = test.then(args.iter().copied());
    out.code(2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("makescope: error: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(says), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    if let Some(before) = before {
        assert_eq!(
            std::fs::read(test.path().join(".makescope/db.sqlite")).ok(),
            Some(before)
        );
    }
}

#[test]
fn bad_input_is_one_line_and_exit_2_with_nothing_run() {
    let test = built();
    std::fs::remove_file(test.path().join("lib/a.o")).unwrap();
    refused(
        &test,
        &["rebuild", "no/such/target"],
        "nothing in build 1 matches `no/such/target`",
    );
    assert!(!test.path().join("lib/a.o").exists());

    let untraced = Test::new().fixture("rebuild").args(["make", "--no-trace"]);
    untraced.run().success();
    refused(&untraced, &["rebuild"], "rebuild needs a traced build");

    let newer = built();
    newer
        .db()
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    refused(&newer, &["rebuild"], "newer makescope");
}

#[test]
fn a_moved_tree_is_refused() {
    let test = built();
    let moved = Test::new();
    let to = moved.path().join("moved");
    std::fs::rename(test.path(), &to).unwrap();
    let mut command = moved.program(crate::harness::makescope_bin());
    command.current_dir(&to).arg("rebuild");
    let out = moved.run_command(command);
    std::fs::rename(&to, test.path()).unwrap();
    out.code(2);
    assert!(out.stderr.contains("was the tree moved?"), "{}", out.stderr);
}

#[test]
fn keep_going_runs_what_does_not_depend_on_a_failure() {
    let test = built();
    edit(&test, "main.c", "b(1)", "b(1"); // main.o fails (it runs first)
    edit(&test, "lib/b.c", "x + VERSION", "x - VERSION");
    let stopped = test.then(["rebuild"]);
    stopped.code(1);
    assert!(
        stopped.stdout.starts_with("FAILED: main.o"),
        "{}",
        stopped.stdout
    );
    assert_eq!(ran(&stopped), set(&[]), "{}", stopped.stdout);
    let going = test.then(["rebuild", "--keep-going"]);
    going.code(1);
    assert!(going.stdout.contains("FAILED: main.o"), "{}", going.stdout);
    assert_eq!(
        ran(&going),
        set(&["CC lib/b.o", "AR lib/libfoo.a"]),
        "{}",
        going.stdout
    );
    assert!(going.stderr.contains("1 not run"), "{}", going.stderr);
}

/// The labels of the recorded runs rebuild made of the command that wrote `target`.
fn rebuild_runs(test: &Test, target: &str) -> Vec<String> {
    rows(
        &test.db(),
        &format!(
            "SELECT r.id FROM command r JOIN command c ON c.id = r.replay_of
             JOIN build b ON b.id = r.build_id
             WHERE CAST(c.target AS TEXT) = '{target}' AND b.kind = 'replay'
               AND hex(substr(CAST(b.argv AS BLOB), 1, 7)) = hex('rebuild')"
        ),
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

#[test]
fn a_rerun_is_traced_and_recorded_and_what_it_read_is_what_the_next_rebuild_follows() {
    let add_header = |t: &Test| {
        std::fs::write(t.path().join("lib/extra.h"), "#define EXTRA 1\n").unwrap();
        edit(
            t,
            "lib/a.c",
            "#include \"util.h\"",
            "#include \"util.h\"\n#include \"extra.h\"",
        );
        edit(t, "lib/a.c", "x * SCALE", "x * SCALE + EXTRA");
    };
    let (traced, untraced) = (built(), built());
    add_header(&traced);
    add_header(&untraced);
    let out = traced.then(["rebuild"]);
    out.success();
    assert_eq!(ran(&out), set(&["CC lib/a.o", "AR lib/libfoo.a", "LD app"]));
    assert_up_to_date(&traced);
    // Each re-run is a recorded run of its command, made by rebuild.
    assert_eq!(rebuild_runs(&traced, "a.o").len(), 1);
    let show = traced.then(["show", "lib/a.o"]);
    show.success();
    assert!(show.stdout.contains("by rebuild"), "{}", show.stdout);
    untraced.then(["rebuild", "--no-trace"]).success();
    assert!(rebuild_runs(&untraced, "a.o").is_empty());

    // The new header is known only from the re-run: the build never read it.
    for t in [&traced, &untraced] {
        edit(t, "lib/extra.h", "EXTRA 1", "EXTRA 2");
    }
    let dry = traced.then(["rebuild", "--dry-run"]);
    assert!(dry.stdout.contains("lib/extra.h changed"), "{}", dry.stdout);
    let out = traced.then(["rebuild"]);
    out.success();
    assert_eq!(ran(&out), set(&["CC lib/a.o", "AR lib/libfoo.a", "LD app"]));
    assert_up_to_date(&traced);
    // Untraced, the record still holds what the build read: the edit goes unseen.
    assert_up_to_date(&untraced);
}

#[test]
fn an_edit_within_the_timestamp_tick_of_the_state_taking_is_not_missed() {
    use std::os::unix::fs::MetadataExt;
    // An edit the stat cannot see: the recorded stat is the edited file's own (as when
    // the states were taken in the same tick as the edit, on a coarse clock).
    let missed_edit = |taken_after_mtime_ns: i64| {
        let test = built();
        edit(&test, "lib/a.c", "x * SCALE", "x * SCALE + 1");
        let meta = std::fs::metadata(test.path().join("lib/a.c")).unwrap();
        let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        let ctime_ns = meta.ctime() * 1_000_000_000 + meta.ctime_nsec();
        let path = test.path().join("lib/a.c");
        let changed = test
            .db()
            .execute(
                "UPDATE file_state SET size = ?1, mtime_ns = ?2, ctime_ns = ?3, inode = ?4
                 WHERE path_id = (SELECT id FROM path WHERE path = ?5)",
                rusqlite::params![
                    meta.size() as i64,
                    mtime_ns,
                    ctime_ns,
                    meta.ino() as i64,
                    path.to_str().unwrap()
                ],
            )
            .unwrap();
        assert_eq!(changed, 1);
        test.db()
            .execute(
                "UPDATE file_state_taken SET taken_ns = ?1",
                [mtime_ns + taken_after_mtime_ns],
            )
            .unwrap();
        test
    };
    // Taken in the same tick: the state is racily clean, the file is hashed again.
    let racy = missed_edit(1_000_000);
    let dry = racy.then(["rebuild", "--dry-run"]);
    dry.success();
    assert!(dry.stdout.contains("lib/a.c changed"), "{}", dry.stdout);
    let out = racy.then(["rebuild"]);
    out.success();
    assert_eq!(ran(&out), set(&["CC lib/a.o", "AR lib/libfoo.a", "LD app"]));
    assert_up_to_date(&racy);
    // Taken well after the edit, the stat is trusted (git's rule): nothing is hashed.
    let trusted = missed_edit(5_000_000_000);
    assert_up_to_date(&trusted);
}

#[test]
fn a_file_read_through_a_symlink_follows_its_writer() {
    // `out.txt` reads `link.txt`, a symlink to `data.txt` (as a program links against
    // `libc.so.6` → `libc.so`): the record joins the reader to the symlink's name only.
    let test = Test::new()
        .makefile(
            "out.txt: link.txt\n\tcat link.txt > out.txt\n\
             link.txt: data.txt\n\tln -sf data.txt link.txt\n\
             data.txt: src.txt\n\tcp src.txt data.txt\n",
        )
        .file("src.txt", "one\n")
        .args(["make"]);
    test.run().success();
    std::fs::write(test.path().join("src.txt"), "two\n").unwrap();
    let out = test.then(["rebuild"]);
    out.success();
    let ran = ran(&out);
    assert!(ran.iter().any(|l| l.ends_with("out.txt")), "{}", out.stdout);
    assert_eq!(
        std::fs::read_to_string(test.path().join("out.txt")).unwrap(),
        "two\n"
    );
    assert_up_to_date(&test);
}
