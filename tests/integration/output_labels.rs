//! Every command of a real glibc build gets a label from a rule; only the programs the
//! README's Labels section names as fallbacks may fall back to their own name. libtool's
//! modes and the wrappers compilers sit behind are labelled by what they run, on a real
//! make.
//!
//! The commands come from `tests/fixtures/output/glibc-commands.jsonl`, a sample of a
//! plain `make -j2` log of glibc 2.36 (extracted with `extract-commands.py` there).
//! `MAKESCOPE_LABEL_COMMANDS=/path/to/all.jsonl cargo test --test integration output_labels -- --nocapture`
//! runs the same check on a whole log and prints the coverage.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use makescope::output::{classify, CommandInfo, Rule};

use crate::harness::Test;

/// Programs that fall back to their first word in glibc's build (listed in the README's
/// Labels section).
const DOCUMENTED_FALLBACKS: &[&str] = &[];

#[test]
fn glibc_commands_are_labelled_by_rules() {
    let path = std::env::var("MAKESCOPE_LABEL_COMMANDS").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/output/glibc-commands.jsonl"
        )
        .into()
    });
    let text = std::fs::read_to_string(&path).expect("command sample");
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    let mut verbs: BTreeMap<String, usize> = BTreeMap::new();
    let mut undocumented = Vec::new();
    let mut empty_objects = Vec::new();
    let mut total = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).expect("json line");
        let info = CommandInfo {
            id: total as i64,
            target: Vec::new(),
            directory: value["directory"].as_str().unwrap().into(),
            top_directory: b"/work/glibc/build".to_vec(),
            command: value["command"].as_str().unwrap().into(),
            recipe_file: Vec::new(),
            recipe_line: 0,
            make_level: 0,
        };
        total += 1;
        let c = classify(&info);
        if std::env::var_os("MAKESCOPE_LABEL_PRINT").is_some() {
            println!(
                "{:<8} {:<40} <= {}",
                c.label.verb,
                c.label.object,
                first_line(&value["command"])
            );
        }
        *rules.entry(format!("{:?}", c.rule)).or_default() += 1;
        *verbs.entry(c.label.verb.clone()).or_default() += 1;
        if c.rule == Rule::Fallback && !DOCUMENTED_FALLBACKS.contains(&c.label.verb.as_str()) {
            undocumented.push(format!(
                "{} {}  <=  {}",
                c.label.verb,
                c.label.object,
                first_line(&value["command"])
            ));
        }
        if c.label.object.is_empty() {
            empty_objects.push(format!(
                "{}  <=  {}",
                c.label.verb,
                first_line(&value["command"])
            ));
        }
    }
    println!("{total} commands; by rule: {rules:?}");
    println!("by verb: {verbs:?}");
    assert!(total > 100, "sample too small: {total}");
    assert!(
        undocumented.is_empty(),
        "commands falling back to their first word:\n{}",
        undocumented.join("\n")
    );
    assert!(
        empty_objects.is_empty(),
        "labels without an object:\n{}",
        empty_objects.join("\n")
    );
}

fn first_line(value: &serde_json::Value) -> String {
    value
        .as_str()
        .unwrap()
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(120)
        .collect()
}

/// A stand-in for libtool: drops its options and mode (`--mode compile`, `--tag=CC`,
/// the shorthand `link`) and runs the command. The labels come from the command text.
const FAKE_LIBTOOL: &str = "#!/bin/sh\n\
    case $1 in compile|link|execute|install) shift;; esac\n\
    while :; do case $1 in\n\
    --mode|--tag|-dlopen) shift 2;;\n\
    -*) shift;;\n\
    *) break;;\n\
    esac; done\n\
    exec \"$@\"\n";

/// A stand-in for ccache, distcc and icecc: runs the compiler it is given.
const FAKE_WRAPPER: &str = "#!/bin/sh\nexec \"$@\"\n";

#[test]
fn libtool_modes_and_compiler_wrappers_are_labelled_by_what_they_run() {
    let test = Test::new()
        .makefile(
            "LIBTOOL = $(SHELL) ./libtool\n\
             all: prog libw.la check inst/libw.la wrapped\n\
             main.lo: main.c\n\
             \t$(LIBTOOL) --silent --tag=CC --mode=compile gcc -fsigned-char -I../include -c -o main.lo main.c\n\
             w.o: w.c\n\
             \t./libtool --mode compile gcc -c w.c\n\
             prog: main.lo\n\
             \t./libtool link gcc -o prog main.lo\n\
             libw.la: w.o\n\
             \t/bin/sh ./libtool --tag=CC --mode=link gcc -nostdlib -r -o libw.la w.o\n\
             check: prog\n\
             \t$(LIBTOOL) --mode=execute ./prog\n\
             inst/libw.la: libw.la\n\
             \tmkdir -p inst\n\
             \t$(LIBTOOL) --mode=install install -m 644 libw.la inst/libw.la\n\
             wrapped: w1.o w2.o w3.o w4.o w5.o w6.o\n\
             w1.o: w.c\n\tbin/ccache gcc -c w.c -o w1.o\n\
             w2.o: w.c\n\tbin/distcc gcc -c w.c -o w2.o\n\
             w3.o: w.c\n\tbin/icecc gcc -c w.c -o w3.o\n\
             w4.o: w.c\n\tenv -u LANG gcc -c w.c -o w4.o\n\
             w5.o: w.c\n\tenv CCACHE_DISABLE=1 nice -n 5 bin/ccache gcc -c w.c -o w5.o\n\
             w6.o: w.c\n\ttime gcc -c w.c -o w6.o\n\
             .PHONY: all check wrapped\n",
        )
        .file("main.c", "int main(void) { return 0; }\n")
        .file("w.c", "int w(void) { return 1; }\n")
        .file("libtool", FAKE_LIBTOOL)
        .file("bin/ccache", FAKE_WRAPPER)
        .file("bin/distcc", FAKE_WRAPPER)
        .file("bin/icecc", FAKE_WRAPPER)
        .args(["make", "--no-trace", "-j1"]);
    for script in ["libtool", "bin/ccache", "bin/distcc", "bin/icecc"] {
        let path = test.path().join(script);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod fixture script");
    }
    let out = test.run();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    for expected in [
        "  CC    main.lo",
        "  CC    w.o",
        "  CCLD  prog",
        "  CCLD  libw.la",
        "  TEST  prog",
        "  INSTALL inst/libw.la",
        "  CC    w1.o",
        "  CC    w2.o",
        "  CC    w3.o",
        "  CC    w4.o",
        "  CC    w5.o",
        "  CC    w6.o",
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in:\n{}",
            out.stdout
        );
    }
}
