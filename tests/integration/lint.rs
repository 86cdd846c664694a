//! `makescope lint` on small real builds: one fixture per kind of finding, a clean one
//! that must report nothing, and the records lint refuses.

use crate::harness::{rows, Test};

/// Two sub-makes: `a` writes gen.h, `b` compiles a file that includes it, and the top
/// makefile does not order `b` after `a` (or does, with `b_prereqs = a`).
fn two_submakes(b_prereqs: &str) -> Test {
    Test::new()
        .makefile(&format!(
            "all: a b\na:\n\t$(MAKE) -C a\nb: {b_prereqs}\n\t$(MAKE) -C b\n.PHONY: all a b\n"
        ))
        .file(
            "a/Makefile",
            "all: ../gen.h\n../gen.h:\n\techo '#define V 1' > ../gen.h\n",
        )
        .file(
            "b/Makefile",
            "all: use.o\nuse.o: use.c\n\tgcc -I.. -c use.c -o use.o\n",
        )
        .file("b/use.c", "#include \"gen.h\"\nint v = V;\n")
        .args(["make"])
}

#[test]
fn a_missing_prerequisite_across_sub_makes_is_named_with_both_makefile_lines() {
    let t = two_submakes("");
    t.run().success();
    let out = t.then(["lint"]);
    out.code(1);
    assert_eq!(
        out.stdout,
        "Makefile\n  missing prerequisite: use.o (b/Makefile:3) reads gen.h, written by ../gen.h (a/Makefile:3); nothing make knew orders them\n      add: b: a (Makefile:5)\n",
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("1 missing-prerequisite"),
        "{}",
        out.stderr
    );
    let json = t.then(["lint", "--json"]);
    json.code(1);
    let v = json.json();
    let f = &v["findings"][0];
    assert_eq!(f["kind"], "missing-prerequisite");
    assert!(f["file"].as_str().unwrap().ends_with("/gen.h"), "{f}");
    assert_eq!(f["subject"]["line"], 3);
    assert!(f["subject"]["makefile"]
        .as_str()
        .unwrap()
        .ends_with("/b/Makefile"));
    assert!(f["other"]["makefile"]
        .as_str()
        .unwrap()
        .ends_with("/a/Makefile"));
    assert_eq!(f["add"]["target"], "b");
    assert_eq!(f["add"]["prerequisite"], "a");
    assert_eq!(v["declared_graph"], "record");
}

#[test]
fn adding_the_named_prerequisite_makes_the_finding_go() {
    let t = two_submakes("a");
    t.run().success();
    // make's own answer is in the record: `b` needs `a`.
    let known = rows(
        &t.db(),
        "SELECT target, prerequisite FROM prerequisites WHERE directory NOT LIKE '%/a' AND directory NOT LIKE '%/b' AND target = 'b'",
    );
    assert_eq!(known, vec![vec!["b".to_string(), "a".to_string()]]);
    let out = t.then(["lint"]);
    out.success();
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("no findings"), "{}", out.stderr);
}

#[test]
fn the_report_lists_the_findings_and_says_when_lint_cannot_judge() {
    let racy = two_submakes("");
    racy.run().success();
    racy.then(["report", "-o", "report.html"]).success();
    let page = std::fs::read_to_string(racy.path().join("report.html")).unwrap();
    assert!(
        page.contains("<section id=\"lint\"><p>1 missing-prerequisite"),
        "{page}"
    );
    assert!(
        page.contains("missing prerequisite: use.o (b/Makefile:3) reads gen.h, written by ../gen.h (a/Makefile:3)"),
        "{page}"
    );
    assert!(
        page.contains("<code>add: b: a (Makefile:5)</code>"),
        "{page}"
    );

    let clean = two_submakes("a");
    clean.run().success();
    clean.then(["report", "-o", "report.html"]).success();
    let page = std::fs::read_to_string(clean.path().join("report.html")).unwrap();
    assert!(!page.contains("id=\"lint\""), "{page}");

    let untraced = two_submakes("").args(["make", "--no-trace"]);
    untraced.run().success();
    untraced.then(["report", "-o", "report.html"]).success();
    let page = std::fs::read_to_string(untraced.path().join("report.html")).unwrap();
    assert!(
        page.contains("<section id=\"lint\"><p>Not judged: build 1 was recorded without tracing"),
        "{page}"
    );
}

/// Stamp files, order-only prerequisites, a generated header declared properly, a
/// sub-make after its prerequisite, a recipe of several lines, a `.PHONY` target with
/// no file and `move-if-change`-style recipes: nothing to report.
#[test]
fn a_clean_build_reports_nothing() {
    let t = Test::new()
        .makefile(
            "all: prog sub\n\
             prog: obj/main.o obj/util.o\n\tgcc -o $@ $^\n\
             obj/main.o: main.c gen.h | obj\n\tgcc -c main.c -o $@\n\
             obj/util.o: util.c stamp-h | obj\n\tgcc -c util.c -o $@\n\
             stamp-h: config.in\n\tcp config.in config.hT\n\tcmp -s config.hT config.h || mv config.hT config.h\n\ttouch stamp-h\n\
             gen.h:\n\techo '#define G 1' > gen.h\n\
             obj:\n\tmkdir -p obj\n\
             sub: prog\n\t$(MAKE) -C sub\n\
             check: prog\n\t./prog\n\
             .PHONY: all sub check\n",
        )
        .file("main.c", "#include \"gen.h\"\nint main(void) { return G - 1; }\n")
        .file("util.c", "#include \"config.h\"\nint util(void) { return C; }\n")
        .file("config.in", "#define C 2\n")
        .file("sub/Makefile", "all: copy\ncopy: ../prog\n\tcp ../prog copy\n")
        .args(["make", "all", "check"]);
    t.run().success();
    let out = t.then(["lint"]);
    out.success();
    assert_eq!(out.stdout, "", "{}", out.stderr);
}

#[test]
fn two_writers_and_an_archive_updated_in_place() {
    let t = Test::new()
        .makefile(
            "all: a b lib\n\
             a:\n\techo a > out.txt\n\
             b:\n\techo b > out.txt\n\
             lib: x.o y.o\n\
             x.o: ; @echo 'int x;' > x.c && gcc -c x.c && ar rc lib.a x.o\n\
             y.o: ; @echo 'int y;' > y.c && gcc -c y.c && ar rc lib.a y.o\n\
             .PHONY: all a b lib\n",
        )
        .args(["make"]);
    t.run().success();
    let out = t.then(["lint"]);
    out.code(1);
    assert!(
        out.stdout
            .contains("two writers: out.txt written by a (Makefile:3) and by b (Makefile:5)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("archive updated in place: lib.a by x.o (Makefile:7) and y.o (Makefile:8)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("1 two-writers, 1 archive-updated-in-place"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_archive_updated_in_place_alone_is_not_a_race() {
    let t = Test::new()
        .makefile(
            "all: x.o y.o\n\
             x.o: ; @echo 'int x;' > x.c && gcc -c x.c && ar rc lib.a x.o\n\
             y.o: ; @echo 'int y;' > y.c && gcc -c y.c && ar rc lib.a y.o\n\
             .PHONY: all\n",
        )
        .args(["make"]);
    t.run().success();
    let out = t.then(["lint"]);
    out.success();
    assert!(
        out.stdout.contains("archive updated in place"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_read_before_the_write_is_a_stale_read() {
    let t = Test::new()
        .makefile(
            "all: r.out w\n\
             r.out:\n\tcat data.txt > r.out\n\
             w:\n\techo new > data.txt\n\
             .PHONY: all w\n",
        )
        .file("data.txt", "old\n")
        .args(["make"]);
    t.run().success();
    let out = t.then(["lint"]);
    out.code(1);
    assert_eq!(
        out.stdout,
        "Makefile\n  stale read: r.out (Makefile:3) read data.txt before w (Makefile:5) wrote it\n      add: r.out: w (Makefile:3)\n",
        "{}",
        out.stderr
    );
}

#[test]
fn a_target_its_recipe_never_writes() {
    let t = Test::new()
        .makefile("all: report\nreport:\n\techo hello\n.PHONY: all\n")
        .args(["make"]);
    t.run().success();
    let out = t.then(["lint"]);
    // Not a race: reported, exit 0.
    out.success();
    assert_eq!(
        out.stdout,
        "Makefile\n  target not written: the recipe of report (Makefile:3) never wrote it (a missing .PHONY, or a wrong $@)\n"
    );
}

#[test]
fn untraced_empty_and_interrupted_records_are_one_line() {
    let t = Test::new()
        .makefile("all:\n\techo hi > x\n")
        .args(["make", "--no-trace"]);
    t.run().success();
    let out = t.then(["lint"]);
    out.code(2);
    assert_eq!(
        out.stderr,
        "makescope: error: build 1 was recorded without tracing: lint needs the files each command read and wrote (record it with `makescope make`, without --no-trace)\n"
    );
    // compdb still works on it.
    t.then(["export", "compdb"]).success();

    let t = Test::new().makefile("all: ;\n").args(["make"]);
    t.run().success();
    let out = t.then(["lint"]);
    out.code(2);
    assert_eq!(
        out.stderr,
        "makescope: error: build 1 ran no commands: there is nothing to lint\n"
    );

    let t = Test::new().makefile("all:\n\techo hi > x\n").args(["make"]);
    t.run().success();
    t.db()
        .execute_batch("UPDATE build SET state = 'interrupted'")
        .unwrap();
    let out = t.then(["lint"]);
    out.code(2);
    assert!(
        out.stderr
            .starts_with("makescope: error: build 1 was interrupted")
            && out.stderr.lines().count() == 1,
        "{}",
        out.stderr
    );

    let t = Test::new();
    let out = t.then(["lint"]);
    out.code(2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}
