//! `makescope export compdb` and `makescope export ninja` against real make builds.

use std::process::Command;

use crate::harness::Test;

/// A recursive build whose compiles happen in a recipe, in a sub-make and in a script.
fn compiles() -> Test {
    Test::new()
        .makefile(
            "all: top.o\n\t$(MAKE) -C sub\n\tsh build.sh\n\
             top.o: top.c inc/top.h\n\tgcc -Iinc -DTOP=1 -c top.c -o top.o\n",
        )
        .file(
            "top.c",
            "#include \"top.h\"\nint top(void) { return TOP + X; }\n",
        )
        .file("inc/top.h", "#define X 2\n")
        .file(
            "sub/Makefile",
            "sub.o: sub.c\n\tcd .. && gcc -c sub/sub.c -o sub/sub.o\n",
        )
        .file("sub/sub.c", "int sub(void) { return 1; }\n")
        .file(
            "build.sh",
            "#!/bin/sh\nexec gcc -O1 -c script.c -o script.o\n",
        )
        .file("script.c", "int script(void) { return 2; }\n")
}

fn entries(t: &Test, args: &[&str]) -> Vec<serde_json::Value> {
    let out = t.then(args);
    out.success();
    out.json().as_array().expect("an array").clone()
}

fn field(entry: &serde_json::Value, name: &str) -> String {
    entry[name].as_str().unwrap_or_default().to_string()
}

/// Every compile is there, the one a script runs too, with its arguments as executed,
/// its directory, its absolute file and output; and each entry, run again with
/// `-fsyntax-only` from its directory, compiles.
#[test]
fn compdb_has_every_compile_with_its_arguments() {
    let t = compiles().args(["make"]);
    t.run().success();
    let dir = t.path().canonicalize().unwrap();
    let dir = dir.to_str().unwrap();
    let db = entries(&t, &["export", "compdb"]);
    let mut files: Vec<String> = db.iter().map(|e| field(e, "file")).collect();
    files.sort();
    assert_eq!(
        files,
        [
            format!("{dir}/script.c"),
            format!("{dir}/sub/sub.c"),
            format!("{dir}/top.c")
        ],
        "{db:#?}"
    );
    let top = db
        .iter()
        .find(|e| field(e, "file").ends_with("top.c"))
        .unwrap();
    assert_eq!(
        top["arguments"],
        serde_json::json!(["gcc", "-Iinc", "-DTOP=1", "-c", "top.c", "-o", "top.o"])
    );
    assert_eq!(field(top, "directory"), dir);
    assert_eq!(field(top, "output"), format!("{dir}/top.o"));
    // `cd ..` in the sub-make's recipe: the process's own directory.
    let sub = db
        .iter()
        .find(|e| field(e, "file").ends_with("sub.c"))
        .unwrap();
    assert_eq!(field(sub, "directory"), dir);
    assert_eq!(field(sub, "output"), format!("{dir}/sub/sub.o"));
    for entry in &db {
        let args: Vec<&str> = entry["arguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let status = Command::new(args[0])
            .args(&args[1..])
            .arg("-fsyntax-only")
            .current_dir(field(entry, "directory"))
            .status()
            .unwrap();
        assert!(status.success(), "{entry}");
    }
    // --filter keeps the sources under a directory; -o writes the file.
    let out = t.then(["export", "compdb", "--filter", "sub", "-o", "cc.json"]);
    out.success();
    assert!(
        out.stderr.contains("1 compile of build 1"),
        "{}",
        out.stderr
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("cc.json")).unwrap()).unwrap();
    assert_eq!(written.as_array().unwrap().len(), 1, "{written}");
}

/// Without tracing there are no processes: the compiles a recipe's text spells are
/// still found (through `cd`), the one inside a script is not, and the summary says how
/// many came from recipe text.
#[test]
fn compdb_of_an_untraced_build_reads_recipe_text() {
    let t = compiles().args(["make", "--no-trace"]);
    t.run().success();
    let db = entries(&t, &["export", "compdb"]);
    let mut files: Vec<String> = db
        .iter()
        .map(|e| field(e, "file").rsplit('/').next().unwrap().to_string())
        .collect();
    files.sort();
    assert_eq!(files, ["sub.c", "top.c"], "{db:#?}");
    let out = t.then(["export", "compdb", "-o", "cc.json"]);
    out.success();
    assert!(
        out.stderr
            .contains("(2 commands not traced: read from the recipe text)"),
        "{}",
        out.stderr
    );
}

/// A recursive build with a generated header, a `cmp || mv` recipe and headers enough
/// to share an input set.
fn recursive() -> Test {
    Test::new()
        .makefile(
            "all: prog sub\n\
             prog: main.o util.o\n\tgcc -o $@ $^\n\
             main.o: main.c gen.h inc/a.h inc/b.h inc/c.h\n\tgcc -Iinc -c main.c -o $@\n\
             util.o: util.c inc/a.h inc/b.h inc/c.h\n\tgcc -Iinc -c util.c -o $@\n\
             gen.h: gen.in\n\tcp gen.in gen.hT\n\tcmp -s gen.hT gen.h || mv gen.hT gen.h; rm -f gen.hT\n\
             sub: prog\n\t$(MAKE) -C sub\n\
             .PHONY: all sub\n",
        )
        .file("sub/Makefile", "copy: ../prog\n\tcp ../prog copy\n")
        .file("main.c", "#include \"gen.h\"\n#include \"a.h\"\nint main(void) { return G - 1 + A; }\n")
        .file("util.c", "#include \"a.h\"\n#include \"b.h\"\n#include \"c.h\"\nint util(void) { return A + B + C; }\n")
        .file("inc/a.h", "#define A 0\n")
        .file("inc/b.h", "#define B 0\n")
        .file("inc/c.h", "#define C 0\n")
        .file("gen.in", "#define G 1\n")
        .args(["make"])
}

/// What a ninja run did: its edges' descriptions, in order ("" for nothing).
fn ninja(t: &Test) -> Vec<String> {
    let out = t.run_command({
        let mut c = t.program("ninja");
        c.args(["-f", "build.ninja"]);
        c
    });
    out.success();
    if out.stdout.contains("no work to do") {
        return Vec::new();
    }
    out.stdout
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, d)| d.to_string()))
        .collect()
}

fn touch(t: &Test, file: &str) {
    // The kernel's clock, the one every later write is stamped with (`touch` asks for
    // UTIME_NOW): a time read in user space is finer, and can lie after the stamps the
    // re-run gives its outputs, which ninja would then find older than this input. The
    // pause puts the stamp past the last writes' clock tick (a few ms).
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut touch = t.program("touch");
    touch.arg(file);
    t.run_command(touch).success();
}

/// The exported file finds the build done; a touched source re-runs exactly what reads
/// it and what reads their outputs; a header in a shared input set too; a recipe that
/// leaves its output as it was stops there (`restat`); a second run does nothing.
#[test]
fn ninja_reruns_exactly_what_a_change_reaches() {
    if !crate::harness::installed("ninja") {
        eprintln!("ninja is not installed (scripts/test.sh installs ninja-build): skipped");
        return;
    }
    let t = recursive();
    t.run().success();
    let out = t.then(["export", "ninja", "-o", "build.ninja"]);
    out.success();
    assert!(out.stderr.contains("6 edges of build 1"), "{}", out.stderr);
    let text = std::fs::read_to_string(t.path().join("build.ninja")).unwrap();
    assert!(text.contains("  desc = CC main.o\n"), "{text}");
    assert!(text.contains("run_restat"), "{text}");
    assert!(
        ninja(&t).is_empty(),
        "the export's log says the build is done"
    );

    touch(&t, "util.c");
    assert_eq!(ninja(&t), ["CC util.o", "LD prog", "CP sub/copy"]);
    assert_eq!(ninja(&t), Vec::<String>::new());

    touch(&t, "inc/c.h");
    assert_eq!(ninja(&t), ["CC util.o", "LD prog", "CP sub/copy"]);
    assert_eq!(ninja(&t), Vec::<String>::new());

    // gen.h's recipe leaves it as it was: nothing after it runs.
    touch(&t, "gen.in");
    assert_eq!(ninja(&t), ["CP gen.h", "MV gen.h"]);
    assert_eq!(ninja(&t), Vec::<String>::new());

    std::fs::write(t.path().join("gen.in"), "#define G 2\n").unwrap();
    touch(&t, "gen.in");
    assert_eq!(
        ninja(&t),
        [
            "CP gen.h",
            "MV gen.h",
            "CC main.o",
            "LD prog",
            "CP sub/copy"
        ]
    );
    assert_eq!(ninja(&t), Vec::<String>::new());
}

#[test]
fn ninja_needs_a_traced_build() {
    let t = recursive().args(["make", "--no-trace"]);
    t.run().success();
    let out = t.then(["export", "ninja"]);
    out.code(2);
    assert_eq!(
        out.stderr,
        "makescope: error: build 1 was recorded without tracing: a ninja file needs the files each command read and wrote (record it with `makescope make`, without --no-trace)\n"
    );
}

/// The recursive fixture `rebuild` compares with make, built, its ninja file exported.
fn exported() -> Test {
    let t = Test::new().fixture("rebuild").args(["make"]);
    t.run().success();
    t.then(["export", "ninja", "-o", "build.ninja"]).success();
    t
}

/// Replace `from` by `to` in `path`, past the clock tick of the export's log (see
/// [`touch`]).
fn edit(t: &Test, path: &str, from: &str, to: &str) {
    std::thread::sleep(std::time::Duration::from_millis(20));
    let path = t.path().join(path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// The labels a `rebuild` ran (its lines on stdout, one per command).
fn rebuild_ran(out: &crate::harness::Output) -> Vec<String> {
    let mut ran: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    ran.sort();
    ran
}

/// Must-hold 4 on a recursive build (two sub-makes, a generated header, an archive):
/// after the same edit, ninja re-runs exactly the commands `makescope rebuild` re-runs,
/// both leave the same files, and a second ninja run does nothing.
#[test]
fn ninja_reruns_what_rebuild_reruns_for_the_same_edit() {
    if !crate::harness::installed("ninja") {
        eprintln!("ninja is not installed (scripts/test.sh installs ninja-build): skipped");
        return;
    }
    let edits = [
        ("lib/a.c", "x * SCALE", "x * SCALE + 1"),
        ("include/util.h", "SCALE 2", "SCALE 3"),
        ("gen/version.in", "VERSION @", "VERSION 1+@"),
    ];
    for (file, from, to) in edits {
        let (with_ninja, with_rebuild) = (exported(), exported());
        assert!(ninja(&with_ninja).is_empty(), "the export finds it done");
        edit(&with_ninja, file, from, to);
        edit(&with_rebuild, file, from, to);
        let mut by_ninja = ninja(&with_ninja);
        by_ninja.sort();
        let out = with_rebuild.then(["rebuild"]);
        out.success();
        assert_eq!(by_ninja, rebuild_ran(&out), "after editing {file}");
        assert!(!by_ninja.is_empty());
        for output in ["app", "main.o", "gen/version.h", "lib/a.o", "lib/b.o"] {
            let read = |t: &Test| std::fs::read(t.path().join(output)).unwrap();
            assert!(
                read(&with_ninja) == read(&with_rebuild),
                "{output} differs after editing {file}"
            );
        }
        assert_eq!(ninja(&with_ninja), Vec::<String>::new(), "after {file}");
    }
}

/// Each edge runs as `replay` runs its line: the recorded environment only (not
/// ninja's), without makescope's tracer in it; a redacted secret comes from ninja's
/// environment, and an edge that needs one that is not set stops and says so.
#[test]
fn ninja_runs_each_edge_with_the_recorded_environment() {
    if !crate::harness::installed("ninja") {
        eprintln!("ninja is not installed (scripts/test.sh installs ninja-build): skipped");
        return;
    }
    let t = Test::new()
        .makefile(
            "out.txt: in.txt\n\
             \techo \"$$GREETING [$$LD_PRELOAD] $$API_TOKEN $$(cat in.txt)\" > $@\n",
        )
        .file("in.txt", "one\n")
        .env("GREETING", "recorded")
        .env("API_TOKEN", "s3cret")
        .args(["make"]);
    // (The recorded run had the tracer's helper in LD_PRELOAD.)
    t.run().success();
    let out = t.then(["export", "ninja", "-o", "build.ninja"]);
    out.success();
    assert!(
        out.stderr.contains("(1 recorded environment)"),
        "{}",
        out.stderr
    );
    let text = std::fs::read_to_string(t.path().join("build.ninja")).unwrap();
    assert!(
        !text.contains("s3cret"),
        "a secret in the ninja file:\n{text}"
    );

    edit(&t, "in.txt", "one", "two");
    let run = |token: Option<&str>| {
        let mut c = t.program("ninja");
        c.args(["-f", "build.ninja"]).env("GREETING", "ninja's");
        match token {
            Some(value) => c.env("API_TOKEN", value),
            None => c.env_remove("API_TOKEN"),
        };
        t.run_command(c)
    };
    let failed = run(None);
    failed.code(1);
    assert!(
        failed
            .stdout
            .contains("API_TOKEN: is redacted in the record: set it to run this edge"),
        "{}",
        failed.stdout
    );
    run(Some("given")).success();
    assert_eq!(
        std::fs::read_to_string(t.path().join("out.txt")).unwrap(),
        "recorded [] given two\n"
    );
}

/// The recipes of a make with `.NOTPARALLEL` share the `serial` pool; the others not.
/// The same from a record without a declared graph (one made before the table), which
/// looks for the rule in the make databases still on disk.
#[test]
fn ninja_serialises_the_recipes_of_a_notparallel_make() {
    let t = Test::new()
        .makefile("all: one two sub\none:\n\ttouch one\ntwo:\n\ttouch two\nsub:\n\t$(MAKE) -C sub\n.NOTPARALLEL:\n.PHONY: all sub\n")
        .file("sub/Makefile", "all: three four\nthree:\n\ttouch three\nfour:\n\ttouch four\n")
        .args(["make", "-j2"]);
    t.run().success();
    let serial = |t: &Test| -> Vec<String> {
        let out = t.then(["export", "ninja"]);
        out.success();
        let mut serial: Vec<String> = out
            .stdout
            .split("\n# command ")
            .filter(|edge| edge.contains("  pool = serial\n"))
            .filter_map(|edge| edge.lines().find_map(|l| l.strip_prefix("  desc = ")))
            .map(str::to_string)
            .collect();
        serial.sort();
        serial
    };
    assert_eq!(serial(&t), ["TOUCH one", "TOUCH two"]);
    let db = t.db();
    let dumps = crate::harness::rows(&db, "SELECT count(*) FROM make WHERE makedb_path != ''");
    assert_eq!(dumps, [["2"]]);
    db.execute("DELETE FROM prereq", []).unwrap();
    assert_eq!(serial(&t), ["TOUCH one", "TOUCH two"]);
}

/// glibc's `%.d: %.dt`: a compile writes an intermediate that a later recipe reads and
/// removes. The intermediate is gone when the ninja file is written; its consumer still
/// re-runs when its writer does, as with `rebuild` (here the intermediate changes: were
/// it byte-identical, `rebuild` would cut off and ninja, going by times, would not).
#[test]
fn ninja_reruns_the_consumer_of_an_intermediate_that_is_gone() {
    if !crate::harness::installed("ninja") {
        eprintln!("ninja is not installed (scripts/test.sh installs ninja-build): skipped");
        return;
    }
    let built = || {
        let t = Test::new()
            .makefile(
                "all: a.d\n\
                 a.o: a.c\n\tcp a.c a.o && cp a.c a.o.dt\n\
                 a.d: a.o\n\tsed s/a.o/A.O/ a.o.dt > a.d && rm -f a.o.dt\n",
            )
            .file("a.c", "one\n")
            .args(["make"]);
        t.run().success();
        t.then(["export", "ninja", "-o", "build.ninja"]).success();
        assert!(!t.path().join("a.o.dt").exists());
        t
    };
    let (with_ninja, with_rebuild) = (built(), built());
    edit(&with_ninja, "a.c", "one", "two");
    edit(&with_rebuild, "a.c", "one", "two");
    let out = with_rebuild.then(["rebuild"]);
    out.success();
    let mut by_ninja = ninja(&with_ninja);
    by_ninja.sort();
    assert_eq!(by_ninja, rebuild_ran(&out));
    assert_eq!(by_ninja.len(), 2, "{by_ninja:?}");
    assert_eq!(ninja(&with_ninja), Vec::<String>::new());
}
