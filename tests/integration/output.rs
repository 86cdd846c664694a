//! The real `makescope make` on small fixture makefiles, as a user sees it: labels, the
//! failure block, unbroken output of noisy parallel jobs, no escape bytes when piped,
//! the modes, and (under tmux) the progress line on a terminal.
//!
//! These tests print; they do not trace (`--no-trace`), so they run on any kernel.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{self, Test, TIMEOUT};

/// A test of what a build prints: `NO_COLOR` is left unset unless the test sets it.
fn printing() -> Test {
    Test::new().env_remove("NO_COLOR")
}

#[test]
fn each_rule_labels_its_command() {
    let out = printing()
        .makefile(
            "all: prog lib.a gen.h sub result.out inst/x.h dir/.stamp\n\
             prog: main.o\n\tgcc -o prog main.o\n\
             main.o: main.c gen.h\n\tgcc -c main.c -o main.o\n\
             lib.a: util.o\n\tar cr lib.a util.o\n\
             util.o: util.S\n\tgcc -c util.S -o util.o\n\
             gen.h:\n\tprintf '#define X 1\\n' > gen.hT\n\tmv -f gen.hT gen.h\n\
             sub:\n\t$(MAKE) -C sub\n\
             result.out: prog\n\t./prog > result.out; sh ./evaluate-test.sh result $$?\n\
             inst/x.h: gen.h\n\tmkdir -p inst\n\tinstall -m 644 gen.h inst/x.h\n\
             dir/.stamp:\n\tmkdir -p dir\n\ttouch dir/.stamp\n\
             .PHONY: all sub\n",
        )
        .file(
            "main.c",
            "#include \"gen.h\"\nint main(void) { return X - 1; }\n",
        )
        .file("util.S", ".text\n")
        .file("evaluate-test.sh", "exit 0\n")
        .file("sub/Makefile", "all: ; true\n")
        .args(["make", "--no-trace", "-j1"])
        .run();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    // One line per job: `printf > gen.hT; mv` is its generator, `mkdir; install` its
    // install, `mkdir; touch` its touch. At -j1 make starts a job only when the one
    // before is over, so each job's line comes, in make's order, as the next job starts
    // (the sub-make's job as its make ends, before the line that ran it).
    let lines: Vec<&str> = out.stdout.lines().collect();
    let expected = vec![
        "  GEN   gen.h",
        "  CC    main.o",
        "  LD    prog",
        "  AS    util.o",
        "  AR    lib.a",
        "  SH    sub/all",
        "  MAKE  sub",
        "  TEST  result",
        "  INSTALL inst/x.h",
        "  TOUCH dir/.stamp",
    ];
    assert_eq!(lines, expected, "{}", out.stdout);
    assert!(!out.stdout.contains("Entering directory"), "{}", out.stdout);
    assert!(out.stderr.starts_with("makescope: 1"), "{}", out.stderr);
}

#[test]
fn failure_prints_the_block_then_makes_error() {
    let out = printing()
        .makefile(
            "all: ok bad\n\
             ok:\n\t@echo fine\n\
             bad:\n\t@echo preparing\n\techo 'bad.c:3:1: error: nope' >&2; echo more; exit 3\n\
             .PHONY: all ok bad\n",
        )
        .args(["make", "--no-trace", "-j1"])
        .run();
    assert_eq!(out.code, Some(2), "make's status is ours");
    // The header, the full command, then the whole output (its two streams may arrive
    // in either order).
    let header = "FAILED: bad   (./, make level 0, recipe at Makefile:";
    let start = out
        .stdout
        .find(header)
        .unwrap_or_else(|| panic!("no FAILED block:\n{}", out.stdout));
    let block: Vec<&str> = out.stdout[start..].lines().take(4).collect();
    assert_eq!(
        block[1], "echo 'bad.c:3:1: error: nope' >&2; echo more; exit 3",
        "{}",
        out.stdout
    );
    let mut rest = block[2..].to_vec();
    rest.sort();
    assert_eq!(rest, ["bad.c:3:1: error: nope", "more"], "{}", out.stdout);
    assert!(out.stdout.contains("  ECHO  ok\nfine\n"), "{}", out.stdout);
    assert!(
        out.stderr
            .starts_with("make: *** [Makefile:6: bad] Error 3\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("makescope: build failed (make exited 2)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("1 command failed"), "{}", out.stderr);
}

#[test]
fn a_failing_sub_make_shows_one_failed_block() {
    let out = printing()
        .makefile("all:\n\t$(MAKE) -C sub\n")
        .file("sub/Makefile", "all:\n\tfalse\n")
        .args(["make", "--no-trace"])
        .run();
    assert_eq!(out.code, Some(2));
    assert_eq!(out.stdout.matches("FAILED:").count(), 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("FAILED: sub/all   (sub/, make level 1, recipe at Makefile:2)\nfalse\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("make[1]: *** [Makefile:2: all] Error 1"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("1 command failed"), "{}", out.stderr);
}

#[test]
fn noisy_parallel_jobs_print_whole() {
    // Four jobs print 30 lines each, sleeping between lines, all at once.
    let mut makefile = String::from("all: j1 j2 j3 j4\n.PHONY: all j1 j2 j3 j4\n");
    for j in 1..=4 {
        makefile.push_str(&format!(
            "j{j}:\n\t@for i in $$(seq 1 30); do echo \"job{j} line $$i\"; echo \"job{j} err $$i\" >&2; sleep 0.01; done\n"
        ));
    }
    let out = printing()
        .makefile(&makefile)
        .args(["make", "--no-trace", "-j4"])
        .run();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    for j in 1..=4 {
        let start = out
            .stdout
            .find(&format!("j{j}\n"))
            .unwrap_or_else(|| panic!("no label for j{j}:\n{}", out.stdout));
        let block: Vec<&str> = out.stdout[start..].lines().skip(1).take(60).collect();
        let mut expected = Vec::new();
        for i in 1..=30 {
            expected.push(format!("job{j} line {i}"));
            expected.push(format!("job{j} err {i}"));
        }
        let mut got: Vec<String> = block.iter().map(|s| s.to_string()).collect();
        // stdout and stderr of one job arrive in order per stream; their relative
        // order may differ by a line: compare as sets, and check no other job is inside.
        got.sort();
        expected.sort();
        assert_eq!(
            got, expected,
            "job {j}'s output is not contiguous:\n{}",
            out.stdout
        );
    }
}

#[test]
fn piped_output_has_no_escape_byte() {
    for no_color in [false, true] {
        let mut test = printing()
            .makefile(
                "all: a b\n\
                 a:\n\t@printf '\\033[01;35mwarning:\\033[m colored\\n' >&2\n\
                 b:\n\tfalse\n",
            )
            .args(["make", "--no-trace"]);
        if no_color {
            test = test.env("NO_COLOR", "1");
        }
        let out = test.run();
        assert_eq!(out.code, Some(2));
        assert!(
            !out.stdout_bytes.contains(&0x1b),
            "escape on stdout: {:?}",
            out.stdout
        );
        assert!(
            !out.stderr_bytes.contains(&0x1b),
            "escape on stderr: {:?}",
            out.stderr
        );
        assert!(out.stdout.contains("warning: colored\n"), "{}", out.stdout);
        assert!(!out.stdout.contains('\r'), "no overprinting when piped");
    }
}

/// `-v` echoes every command with its output, `-q` prints only what printed, `--plain`
/// passes make's output through.
#[test]
fn each_mode_prints_what_it_promises() {
    let makefile = "all: a b\na:\n\t@echo hello\nb:\n\ttouch b\n.PHONY: all a\n";
    let verbose = printing()
        .makefile(makefile)
        .args(["make", "--no-trace", "-v", "-j1"])
        .run();
    assert_eq!(
        verbose.stdout, "echo hello\nhello\ntouch b\n",
        "{}",
        verbose.stderr
    );

    let quiet = printing()
        .makefile(makefile)
        .args(["make", "--no-trace", "-q", "-j1"])
        .run();
    assert_eq!(quiet.stdout, "  ECHO  a\nhello\n");
    assert_eq!(quiet.stderr, "", "quiet and successful: no summary");

    let test = printing()
        .makefile(makefile)
        .args(["make", "--no-trace", "--plain", "-j1"]);
    let plain = test.run();
    let mut make = test.program("make");
    make.args(["-j1", "-B"]);
    let make = test.run_command(make);
    assert_eq!(
        plain.stdout_bytes, make.stdout_bytes,
        "--plain passes make's output through"
    );
    assert!(
        plain.stderr.starts_with("makescope: 2 commands"),
        "{}",
        plain.stderr
    );
}

// ---------------------------------------------------------------------------------
// The terminal, as a person sees it: tmux runs makescope, we read the screen.

struct Tmux {
    socket: String,
}

impl Tmux {
    /// Start `command` in `test`'s directory and environment on a 100x12 screen.
    fn start(test: &Test, command: &str) -> Tmux {
        let socket = format!("makescope-test-{}", std::process::id());
        let mut tmux = test.program("tmux");
        tmux.args([
            "-L",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "100",
            "-y",
            "12",
        ])
        .arg(format!(
            "cd {} && {command}; sleep 60",
            test.path().display()
        ));
        test.run_command(tmux).success();
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str) -> String {
        self.wait_for_all(&[what])
    }

    /// The screen once it shows every one of `what` at the same time.
    fn wait_for_all(&self, what: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if what.iter().all(|w| screen.contains(w)) {
                return screen;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "{what:?} never appeared; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// Times and spinner frames change from run to run.
fn normalize(screen: &str) -> String {
    let mut out = String::new();
    for line in screen.lines() {
        let mut l = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            // `M:SS` → `M:SS`
            if chars[i].is_ascii_digit() {
                let mut j = i;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                if j + 2 < chars.len()
                    && chars[j] == ':'
                    && chars[j + 1].is_ascii_digit()
                    && chars[j + 2].is_ascii_digit()
                {
                    l.push_str("M:SS");
                    i = j + 3;
                    continue;
                }
            }
            if "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏".contains(chars[i]) {
                l.push('*');
            } else {
                l.push(chars[i]);
            }
            i += 1;
        }
        out.push_str(l.trim_end());
        out.push('\n');
    }
    out.trim_end().to_string() + "\n"
}

#[test]
fn terminal_shows_progress_and_labels() {
    if !harness::installed("tmux") {
        eprintln!("skipped: tmux is not installed (apt-get install -y tmux)");
        return;
    }
    // `a` is one job of three lines: its compile names it, its warning is under it.
    let test = printing().makefile(
        "all: a b c slow\n\
         a:\n\t@mkdir -p objs\n\t@echo 'a.c:1:2: warning: unused variable' >&2; cc -c -x c /dev/null -o objs/a.o\n\tmv objs/a.o a\n\
         b:\n\ttouch b\n\
         c:\n\ttouch c\n\
         slow: a b c\n\tsleep 2; touch slow\n",
    );
    // A first, piped build gives the second its expected total.
    let test = test.args(["make", "--no-trace", "-j2"]);
    let first = test.run();
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    for f in ["a", "b", "c", "slow"] {
        std::fs::remove_file(test.path().join(f)).unwrap();
    }
    let tmux = Tmux::start(
        &test,
        &format!("{} make --no-trace -j2", harness::makescope_bin().display()),
    );
    // `a`'s line comes once the recorder knows its job over, which can be just after
    // `slow` has started (its make starts it as soon as `a` ends): during `slow`'s two
    // seconds the screen holds both, and the count that includes `a` (the progress line
    // is redrawn just after `a`'s line).
    let during = normalize(&tmux.wait_for_all(&["TOUCH slow", "CC    a", "[5/6]"]));
    let after = normalize(&tmux.wait_for("makescope: 6 commands"));
    insta::assert_snapshot!("terminal_during_build", during);
    insta::assert_snapshot!("terminal_after_build", after);
}
