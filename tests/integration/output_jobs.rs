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
fn a_multi_line_expansion_is_one_job() {
    // glibc's stamp rule: one recipe line whose expansion make runs as three shells.
    let out = Test::new()
        .makefile(
            "define do-stamp
             mkdir -p objs
             echo 'a.o b.o' > $@T
             mv -f $@T $@
             endef
             all: stamp.o stamp.os
             stamp.o stamp.os: ; $(do-stamp)
",
        )
        .args(["make", "--no-trace", "-j2"])
        .run();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(
        sorted_lines(&out.stdout),
        ["  GEN   stamp.o", "  GEN   stamp.os"],
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

/// What the printer prints for a recorded build, replayed job by job (a job: the
/// lines sharing a make and a job number, its count the lines that ran).
struct Replayed {
    commands: usize,
    jobs: usize,
    output: Vec<u8>,
    /// Job labels by verb.
    verbs: std::collections::BTreeMap<String, usize>,
}

fn replay_through_the_printer(db: &rusqlite::Connection) -> Replayed {
    use makescope::output::{CommandInfo, Mode, Outcome, Place, Printer, Stream};
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let out = Shared::default();
    let mut printer = Printer::with_writers(
        Mode::Concise,
        None,
        Box::new(out.clone()),
        Box::new(std::io::sink()),
    );
    let mut statement = db
        .prepare(
            "SELECT c.id, c.make_id, c.job, c.line_index, CAST(c.target AS BLOB),
                    CAST(c.directory AS BLOB), CAST(b.directory AS BLOB),
                    CAST(c.command AS BLOB), CAST(coalesce(c.recipe_file, x'') AS BLOB),
                    coalesce(c.recipe_line, 0), coalesce(m.level, 0), c.exit_code, c.signal,
                    CAST(coalesce(c.stdout, x'') AS BLOB), CAST(coalesce(c.stderr, x'') AS BLOB),
                    count(*) OVER (PARTITION BY c.make_id, c.job)
             FROM command c JOIN build b ON b.id = c.build_id LEFT JOIN make m ON m.id = c.make_id
             WHERE c.build_id = (SELECT max(id) FROM build)
             ORDER BY c.make_id, c.job, c.line_index",
        )
        .unwrap();
    let mut rows = statement.query([]).unwrap();
    let mut makefiles = std::collections::HashMap::new();
    let mut commands = 0;
    let mut jobs = std::collections::HashSet::new();
    while let Some(row) = rows.next().unwrap() {
        let make_id: i64 = row.get(1).unwrap();
        let job: i64 = row.get(2).unwrap();
        let index: i64 = row.get(3).unwrap();
        let info = CommandInfo {
            id: row.get(0).unwrap(),
            target: row.get(4).unwrap(),
            directory: row.get(5).unwrap(),
            top_directory: row.get(6).unwrap(),
            command: row.get(7).unwrap(),
            recipe_file: row.get(8).unwrap(),
            recipe_line: row.get::<_, i64>(9).unwrap() as u32 + index as u32,
            make_level: row.get::<_, i64>(10).unwrap() as u32,
        };
        let outcome = Outcome {
            exit_code: row.get(11).unwrap(),
            signal: row.get(12).unwrap(),
            duration_ns: 1,
        };
        let output = vec![
            (Stream::Stdout, row.get::<_, Vec<u8>>(13).unwrap()),
            (Stream::Stderr, row.get::<_, Vec<u8>>(14).unwrap()),
        ];
        let place = Place {
            make_pid: make_id as i32 + 1,
            job: job as u64,
            index: index as u32,
            lines: row.get::<_, i64>(15).unwrap() as u32,
            silent: written_silent(&mut makefiles, &info),
        };
        let label = makescope::output::default_label(&info);
        printer.line_started(&info, &label, place);
        printer.line_finished(&info, &label, false, place, &output, &outcome);
        commands += 1;
        jobs.insert((make_id, job));
    }
    // The build is over: every job ends.
    printer.finish(&makescope::output::Summary::default());
    let output = out.0.lock().unwrap().clone();
    let mut verbs = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&output).lines() {
        if let Some(label) = line.strip_prefix("  ") {
            if let Some(verb) = label.split_whitespace().next() {
                *verbs.entry(verb.to_string()).or_default() += 1;
            }
        }
    }
    Replayed {
        commands,
        jobs: jobs.len(),
        output,
        verbs,
    }
}

/// Whether the recipe line `info` ran starts with `@` in its makefile as written (the
/// record does not say whether make ran it silently; the plugin tells the printer of a
/// live build). Recipe lines continued over several lines of the makefile can make
/// this miss: an estimate.
fn written_silent(
    makefiles: &mut std::collections::HashMap<std::path::PathBuf, Vec<String>>,
    info: &makescope::output::CommandInfo,
) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let file = std::path::Path::new(std::ffi::OsStr::from_bytes(&info.recipe_file));
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&info.directory)).join(file);
    let lines = makefiles.entry(path.clone()).or_insert_with(|| {
        std::fs::read_to_string(&path)
            .map(|text| text.lines().map(str::to_string).collect())
            .unwrap_or_default()
    });
    info.recipe_line > 0
        && lines
            .get(info.recipe_line as usize - 1)
            .is_some_and(|line| {
                line.trim_start_matches(['\t', ' ', '-', '+'])
                    .starts_with('@')
            })
}

/// A record's build replayed through the printer gives one line per job. With
/// `MAKESCOPE_JOBS_RECORD=db.sqlite` (a copy of a real record: glibc's), it replays that
/// one and prints the figures BENCHMARKS.md reports (and writes the output to
/// `MAKESCOPE_JOBS_OUTPUT`, if set).
#[test]
fn a_recorded_build_replayed_through_the_printer_prints_one_line_per_job() {
    if let Some(path) = std::env::var_os("MAKESCOPE_JOBS_RECORD") {
        let db = rusqlite::Connection::open(path).unwrap();
        let r = replay_through_the_printer(&db);
        let text = String::from_utf8_lossy(&r.output);
        if let Some(file) = std::env::var_os("MAKESCOPE_JOBS_OUTPUT") {
            std::fs::write(file, &r.output).unwrap();
        }
        eprintln!(
            "commands {}, jobs {}, output {} lines {} bytes, label lines {}, by verb {:?}",
            r.commands,
            r.jobs,
            text.lines().count(),
            r.output.len(),
            r.verbs.values().sum::<usize>(),
            r.verbs
        );
        return;
    }
    let build = Test::new()
        .makefile(ZLIB_LIKE)
        .file("adler32.c", "int adler32(void) { return 1; }\n")
        .file("crc32.c", "int crc32(void) { return 2; }\n")
        .args(["make", "--no-trace", "-j2"]);
    build.run().success();
    let r = replay_through_the_printer(&build.db());
    assert_eq!((r.commands, r.jobs), (6, 2));
    assert_eq!(
        sorted_lines(&String::from_utf8_lossy(&r.output)),
        ["  CC    adler32.lo", "  CC    crc32.lo"]
    );
}

/// Jobs make runs silently: a literal `@`, a `@` from a leading variable (kbuild's
/// `$(Q)`, automake's `$(AM_V_at)`), `.SILENT:` for a target; and two that are not.
const SILENT_JOBS: &str = "all: x.d y.d expanded named loud quiet-echo\n\
    %.d:\n\t@echo dep > $@\n\
    Q = @\n\
    V_at = $(V_at_$(V))\n\
    V_at_ = @\n\
    expanded:\n\t$(Q)touch $@\n\t$(V_at)touch $@\n\
    .SILENT: named\n\
    named:\n\ttouch $@\n\
    loud:\n\t@touch $@\n\ttouch $@\n\
    quiet-echo:\n\t@echo hello\n\
    fails:\n\t@exit 3\n";

#[test]
fn a_silent_job_that_printed_nothing_gets_no_line_when_piped() {
    let t = Test::new().makefile(SILENT_JOBS);
    let out = t.then(["make", "--no-trace", "-j1"]);
    out.success();
    // Plain make shows nothing of x.d, y.d, expanded, named: neither does makescope.
    assert_eq!(
        out.stdout, "  TOUCH loud\n  ECHO  quiet-echo\nhello\n",
        "{out:?}"
    );
    // The jobs still count: the next build knows there are six, and numbers the lines
    // it prints among all of them.
    std::fs::remove_file(t.path().join("loud")).unwrap();
    for file in ["x.d", "y.d", "expanded", "named"] {
        std::fs::remove_file(t.path().join(file)).unwrap();
    }
    let out = t.then(["make", "--no-trace", "-j1"]);
    assert_eq!(
        out.stdout, "[5/6] TOUCH loud\n[6/6] ECHO  quiet-echo\nhello\n",
        "{out:?}"
    );
    // -v shows every command, and a silent job that fails gets its FAILED block.
    std::fs::remove_file(t.path().join("x.d")).unwrap();
    let out = t.then(["make", "--no-trace", "-v", "-j1", "x.d"]);
    assert!(out.stdout.contains("echo dep > x.d"), "{out:?}");
    let out = t.then(["make", "--no-trace", "-j1", "fails"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stdout.contains("FAILED"), "{out:?}");
}

#[test]
fn a_leading_variable_that_calls_a_function_is_not_expanded_again() {
    // make expands the line once, and prints `once` once; the plugin, asking whether the
    // line is silent, must not expand `$(W)` a second time: the job keeps its line.
    let out = Test::new()
        .makefile("W = $(info once)@\nall:\n\t$(W)touch $@\n")
        .args(["make", "--no-trace"])
        .run();
    out.success();
    assert_eq!(out.stdout.matches("once").count(), 1, "{out:?}");
    assert!(out.stdout.contains("TOUCH all"), "{out:?}");
}
