//! Two recorders writing one record at once (issue 23): two `makescope make` in one
//! directory, and a recipe that runs `makescope make` itself. Both builds are recorded
//! whole, as separate builds, and neither fails because of the other.

use crate::harness::{makescope_bin, rows, Output, Test};

/// One of two builds that meet: `meet` says this one (`W`) has started and waits until
/// the other (`O`) has too, then 30 commands run; so the two record at the same time.
const MEETING: &str = "N := $(shell seq 1 30)
all: $(foreach i,$(N),$(W)-$(i))
meet:
\t@touch $(W)-started; while [ ! -e $(O)-started ]; do sleep 0.01; done
$(W)-%: meet
\t@echo $@ > $@
";

/// What a build recorded: its state and its commands' ids, and how many were ok.
fn recorded(t: &Test, build: &str) -> (String, Vec<i64>, usize) {
    let db = t.db();
    let state = rows(&db, &format!("SELECT state FROM build WHERE id = {build}"));
    let commands = rows(
        &db,
        &format!("SELECT id, state FROM command WHERE build_id = {build} ORDER BY id"),
    );
    let ok = commands.iter().filter(|c| c[1] == "ok").count();
    let ids = commands.iter().map(|c| c[0].parse().unwrap()).collect();
    (state[0][0].clone(), ids, ok)
}

#[track_caller]
fn recorded_whole(out: &Output) {
    out.success();
    assert!(
        !out.stderr.contains("incomplete") && !out.stderr.contains("UNIQUE"),
        "{}",
        out.stderr
    );
}

#[test]
fn two_builds_at_once_in_one_directory_are_both_recorded() {
    let t = Test::new().makefile(MEETING);
    let start = |w: &str, o: &str| {
        let mut command = t.command();
        command.args(["make", "-j2", &format!("W={w}"), &format!("O={o}")]);
        t.spawn(command)
    };
    let (a, b) = (start("a", "b"), start("b", "a"));
    let (a, b) = (a.wait(), b.wait());
    recorded_whole(&a);
    recorded_whole(&b);
    let builds = rows(&t.db(), "SELECT id FROM build ORDER BY id");
    assert_eq!(builds.len(), 2, "{builds:?}");
    let mut all = Vec::new();
    for build in &builds {
        let (state, ids, ok) = recorded(&t, &build[0]);
        assert_eq!((state.as_str(), ids.len(), ok), ("complete", 31, 31));
        // A build's ids are its own run of numbers, as users type them.
        assert_eq!(
            ids.last().unwrap() - ids[0] + 1,
            ids.len() as i64,
            "{ids:?}"
        );
        let log = t.then(["log", "--json", "--build", &build[0]]);
        log.success();
        assert_eq!(log.json()["commands"].as_array().unwrap().len(), 31);
        all.extend(ids);
    }
    // Every process of both builds is one of theirs.
    let stray = rows(
        &t.db(),
        "SELECT count(*) FROM process p JOIN command c ON c.id = p.command_id WHERE c.build_id != p.build_id",
    );
    assert_eq!(stray[0][0], "0");
}

/// A recipe that runs `makescope make -C sub` (the nested case): the outer build's
/// recipe succeeds and the inner make joins the outer build as its sub-make (issue 25:
/// a makescope inside a recorded job runs make directly), so one build holds every
/// command, the inner make at level 1 under the recipe line that ran it.
#[test]
fn a_recipe_that_runs_makescope_joins_the_outer_build() {
    let t = Test::new()
        .makefile("all:\n\t@echo outer-before\n\t@$(MAKESCOPE) make -C sub\n\t@echo outer-after\n")
        .file("sub/Makefile", "all: one two\none two:\n\t@echo inner-$@\n")
        .env("MAKESCOPE", makescope_bin())
        .args(["make", "--plain"]);
    let out = t.run();
    recorded_whole(&out);
    assert!(out.stdout.contains("inner-two") && out.stdout.contains("outer-after"));
    let builds = rows(
        &t.db(),
        "SELECT b.id, b.state, count(c.id), sum(c.state = 'ok') FROM build b JOIN command c ON c.build_id = b.id
         GROUP BY b.id ORDER BY b.id",
    );
    assert_eq!(
        builds,
        vec![vec![
            "1".to_string(),
            "complete".into(),
            "5".into(),
            "5".into()
        ]]
    );
    let inner = rows(
        &t.db(),
        "SELECT c.target, m.level FROM command c JOIN make m ON m.id = c.make_id
         WHERE m.parent_command_id IS NOT NULL ORDER BY c.id",
    );
    assert_eq!(
        inner,
        vec![
            vec!["one".to_string(), "1".into()],
            vec!["two".to_string(), "1".into()]
        ]
    );
    // The next build numbers on where this one's ids end.
    t.run().success();
    let next = rows(&t.db(), "SELECT min(id) FROM command WHERE build_id = 2");
    assert!(next[0][0].parse::<i64>().unwrap() > 5);
}

/// Readers in a build's first moments, while its record is being made: every `log
/// --json` either says in one line that there is no record or no build yet, or prints
/// one whole document of that build (issue 23's trial 3 saw "is not a makescope
/// record" once in 91 reads: an empty record, or its version read before a migration
/// and its application id after). Three readers start with the build and read until
/// the build's waiting command is in what they read.
#[test]
fn readers_in_a_builds_first_moments_see_no_record_or_a_whole_one() {
    let t = Test::new().makefile("all:\n\t@while [ ! -e go ]; do sleep 0.01; done\n");
    let mut command = t.command();
    command.arg("make");
    let build = t.spawn(command);
    let reads = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| loop {
                let out = t.then(["log", "--json"]);
                reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if out.code == Some(0) {
                    let log = out.json();
                    assert_eq!(log["build"]["id"], 1, "{log}");
                    let commands = log["commands"].as_array().unwrap();
                    if commands.len() == 1 {
                        assert_eq!(commands[0]["state"], "running", "{log}");
                        return;
                    }
                    assert!(commands.is_empty(), "{log}");
                    continue;
                }
                assert_eq!(out.code, Some(2), "{}", out.stderr);
                let lines: Vec<&str> = out.stderr.lines().collect();
                assert!(
                    lines.len() == 1
                        && (lines[0].starts_with("makescope: error: no record at")
                            || lines[0].ends_with("holds no build yet")),
                    "{}",
                    out.stderr
                );
            });
        }
    });
    std::fs::write(t.path().join("go"), "").unwrap();
    build.wait().success();
    assert!(reads.into_inner() >= 3);
}
