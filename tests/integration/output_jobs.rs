//! One line per job: the real `makescope make`, piped, on recipes of several lines
//! (zlib's mkdir+compile+mv, a link and its strip, glibc's rm+generate+mv), each a
//! small makefile. The job's line is its principal command's verb and the target make
//! built; every line's output stays under it; a failing line is named in the job's
//! `FAILED:` block; a hook's `label()` overrides the rule.
//!
//! These tests do not trace (`--no-trace`), so they run on any kernel.

use crate::harness::Test;

/// The lines of a piped build's stdout, sorted (parallel jobs end in any order).
fn sorted_lines(stdout: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    lines
}

/// zlib's `Makefile.in` compiles each shared object into objs/ and moves it.
const ZLIB_LIKE: &str = "all: adler32.lo crc32.lo\n\
    %.lo: %.c\n\
    \t-@mkdir objs 2>/dev/null || test -d objs\n\
    \tcc -fPIC -c -o objs/$*.o $<\n\
    \t-@mv objs/$*.o $@\n";

#[test]
fn a_zlib_like_mkdir_compile_mv_recipe_prints_one_line_naming_the_target() {
    let out = Test::new()
        .makefile(ZLIB_LIKE)
        .file("adler32.c", "int adler32(void) { return 1; }\n")
        .file("crc32.c", "int crc32(void) { return 2; }\n")
        .args(["make", "--no-trace", "-j2"])
        .run();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(
        sorted_lines(&out.stdout),
        ["  CC    adler32.lo", "  CC    crc32.lo"],
        "{}",
        out.stdout
    );
    // The record keeps every line, each with its own label.
    assert!(
        out.stderr.starts_with("makescope: 6 commands"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_link_then_strip_is_the_link_and_rm_generate_mv_is_the_generator() {
    let out = Test::new()
        .makefile(
            "all: prog sysd-rules\n\
             prog: main.c\n\tcc -o $@ main.c\n\tstrip $@\n\
             sysd-rules:\n\t-@rm -f $@T\n\t(echo 'a := 1'; echo 'b := 2') > $@T\n\tmv -f $@T $@\n",
        )
        .file("main.c", "int main(void) { return 0; }\n")
        .args(["make", "--no-trace", "-j2"])
        .run();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(
        sorted_lines(&out.stdout),
        ["  GEN   sysd-rules", "  LD    prog"],
        "{}",
        out.stdout
    );
}

#[test]
fn housekeeping_names_a_job_only_when_it_is_the_whole_recipe() {
    let out = Test::new()
        .makefile(
            "all: d/x.h stamp\n\
             d/x.h:\n\tmkdir -p d\n\
             stamp:\n\t@echo making the stamp\n\ttouch $@\n",
        )
        .args(["make", "--no-trace", "-j1"])
        .run();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout, "  MKDIR d\n  TOUCH stamp\nmaking the stamp\n",
        "the echo's output stays under its job's line"
    );
}

#[test]
fn two_compiles_in_one_recipe_name_both() {
    let out = Test::new()
        .makefile("both:\n\tcc -c a.c -o a.o\n\tcc -c b.c -o b.o\n")
        .file("a.c", "int a;\n")
        .file("b.c", "int b;\n")
        .args(["make", "--no-trace"])
        .run();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "  CC    a.o b.o\n");
}

#[test]
fn a_line_that_expands_to_nothing_leaves_one_line_per_job() {
    // make skips the empty lines: the jobs never reach their recipes' line counts.
    let out = Test::new()
        .makefile(
            "NOTHING :=\n\
             all: a b c\n\
             a b c:\n\t@mkdir -p objs\n\t$(NOTHING)\n\tcc -c -x c /dev/null -o objs/$@.o\n\t$(NOTHING)\n",
        )
        .args(["make", "--no-trace", "-j3"])
        .run();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(
        sorted_lines(&out.stdout),
        ["  CC    a", "  CC    b", "  CC    c"],
        "{}",
        out.stdout
    );
}

#[test]
fn a_failing_middle_line_is_named_in_the_jobs_failed_block() {
    let out = Test::new()
        .makefile(
            "x.lo: x.c\n\
             \t@echo 'x.c:1: warning: from the first line' >&2; mkdir -p objs\n\
             \techo 'x.c:2: error: boom' >&2; exit 1\n\
             \tmv objs/x.o $@\n",
        )
        .file("x.c", "\n")
        .args(["make", "--no-trace"])
        .run();
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    // What ran before the failure is a job's line with its output (the `mv` that names
    // x.lo never ran); then the block names the failed line, its text and output.
    assert_eq!(
        out.stdout,
        "  MKDIR objs\n\
         x.c:1: warning: from the first line\n\
         FAILED: x.lo   (./, make level 0, recipe at Makefile:3, line 2 of 3)\n\
         echo 'x.c:2: error: boom' >&2; exit 1\n\
         x.c:2: error: boom\n"
    );
    assert!(out.stderr.contains("1 command failed"), "{}", out.stderr);
}

#[test]
fn a_hooks_label_overrides_the_jobs_rule() {
    let out = Test::new()
        .makefile(ZLIB_LIKE)
        .file("adler32.c", "int adler32(void) { return 1; }\n")
        .file("crc32.c", "int crc32(void) { return 2; }\n")
        .file(
            "hooks.py",
            "def label(cmd):\n\
             \x20   if cmd.command.startswith('mv '):\n\
             \x20       return ('PACK', cmd.target)\n",
        )
        .args(["make", "--no-trace", "--hooks", "hooks.py", "-j1"])
        .run();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "  PACK  adler32.lo\n  PACK  crc32.lo\n");
}
