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
        .file("top.c", "#include \"top.h\"\nint top(void) { return TOP + X; }\n")
        .file("inc/top.h", "#define X 2\n")
        .file("sub/Makefile", "sub.o: sub.c\n\tcd .. && gcc -c sub/sub.c -o sub/sub.o\n")
        .file("sub/sub.c", "int sub(void) { return 1; }\n")
        .file("build.sh", "#!/bin/sh\nexec gcc -O1 -c script.c -o script.o\n")
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
    let top = db.iter().find(|e| field(e, "file").ends_with("top.c")).unwrap();
    assert_eq!(
        top["arguments"],
        serde_json::json!(["gcc", "-Iinc", "-DTOP=1", "-c", "top.c", "-o", "top.o"])
    );
    assert_eq!(field(top, "directory"), dir);
    assert_eq!(field(top, "output"), format!("{dir}/top.o"));
    // `cd ..` in the sub-make's recipe: the process's own directory.
    let sub = db.iter().find(|e| field(e, "file").ends_with("sub.c")).unwrap();
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
    assert!(out.stderr.contains("1 compile of build 1"), "{}", out.stderr);
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
        out.stderr.contains("(2 commands not traced: read from the recipe text)"),
        "{}",
        out.stderr
    );
}
