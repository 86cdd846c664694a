//! File tracing through the real binary: the files each command touched, its
//! processes, the DAG, and what happens when tracing is refused.

use crate::harness::{self, rows, Test};

fn makescope() -> String {
    harness::makescope_bin().display().to_string()
}

/// A statically linked program is traced like any other.
#[test]
fn a_statically_linked_program_is_traced() {
    let source = r#"
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
int main(void) {
    int fd = open("static-in.txt", O_RDONLY); char b[8]; if (fd >= 0) { read(fd, b, 8); close(fd); }
    fd = open("static-out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644); write(fd, "x", 1); close(fd);
    struct stat st; stat("static-missing.txt", &st);
    execl("/bin/true", "true", (char *)0);
    return 1;
}
"#;
    let t = Test::new()
        .file("prog.c", source)
        .file("static-in.txt", "in")
        .makefile("all: prog\n\t./prog\nprog: prog.c\n\tgcc -static -O1 -o $@ $<\n")
        .args(["make"]);
    t.run().success();
    let db = t.db();
    let files = rows(
        &db,
        "SELECT replace(path, (SELECT directory FROM builds), '.'), kind FROM file_accesses
         WHERE target = 'all' AND path NOT LIKE '/proc/%' ORDER BY kind, path",
    );
    let has = |path: &str, kind: &str| files.iter().any(|r| r[0] == path && r[1] == kind);
    assert!(has("./static-in.txt", "read"), "{files:?}");
    assert!(has("./static-out.txt", "create"), "{files:?}");
    assert!(has("./prog", "exec"), "{files:?}");
    assert!(
        has("/bin/true", "exec") || has("/usr/bin/true", "exec"),
        "{files:?}"
    );
    let probes = t.then(["show", "all", "--json"]).json();
    let probed: Vec<String> = probes["files"]["probe"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(
        probed.iter().any(|p| p.ends_with("/static-missing.txt")),
        "{probed:?}"
    );
    // The compile's own process tree is recorded.
    let processes = rows(&db, "SELECT exe FROM processes p JOIN commands c ON c.id = p.command_id WHERE c.target = 'prog'");
    assert!(
        processes
            .iter()
            .any(|r| r[0].ends_with("/gcc") || r[0].ends_with("cc1")),
        "{processes:?}"
    );
}

/// A recipe may run its own ptrace (strace), and its files are still recorded.
#[test]
fn strace_inside_a_recipe() {
    if !harness::installed("strace") {
        eprintln!("strace is not installed; scripts/test.sh installs it");
        return;
    }
    let t = Test::new()
        .file("in.txt", "hello")
        .makefile(
            "all:\n\tstrace -f -o strace.log cat in.txt > out.txt\n\tgrep -q 'in.txt' strace.log\n",
        )
        .args(["make"]);
    t.run().success();
    assert_eq!(
        std::fs::read_to_string(t.path().join("out.txt")).unwrap(),
        "hello"
    );
    let db = t.db();
    let reads = rows(
        &db,
        "SELECT count(*) FROM file_accesses WHERE path LIKE '%/in.txt' AND kind = 'read'",
    );
    assert_eq!(
        reads,
        vec![vec!["1"]],
        "cat's read is recorded even under strace"
    );
}

/// A process that outlives its command is reported, and the build does not wait for it.
#[test]
fn a_daemon_is_reported_and_not_waited_for() {
    let t = Test::new()
        .makefile("all:\n\tsleep 4 > /dev/null 2>&1 &\n\techo next\n")
        .args(["make"]);
    let out = t.run();
    out.success();
    assert!(
        out.elapsed < std::time::Duration::from_secs(4),
        "the build waited for the daemon: {:?}",
        out.elapsed
    );
    let left = rows(
        &t.db(),
        "SELECT CAST(left_behind AS TEXT) FROM command WHERE command LIKE 'sleep%'",
    );
    assert!(left[0][0].contains("sleep"), "{left:?}");
}

/// A `$(MAKE)` line is not filtered itself (`traced` = 2); its sub-make's commands are,
/// one by one, and the DAG links a writer to its readers across them.
#[test]
fn sub_make_lines_and_the_dag() {
    let t = Test::new()
        .makefile("all:\n\t$(MAKE) -C sub\n")
        .file(
            "sub/Makefile",
            "b.txt: a.txt\n\tcat a.txt > b.txt\na.txt:\n\techo a > a.txt\n",
        )
        .args(["make"]);
    t.run().success();
    let db = t.db();
    let traced = rows(&db, "SELECT target, traced FROM commands ORDER BY id");
    assert_eq!(
        traced,
        vec![vec!["all", "2"], vec!["a.txt", "1"], vec!["b.txt", "1"]],
        "{traced:?}"
    );
    let edges = rows(&db, "SELECT from_target, to_target, replace(path, (SELECT directory FROM builds), '.') FROM edges");
    assert!(
        edges.contains(&vec!["a.txt".into(), "b.txt".into(), "./sub/a.txt".into()]),
        "{edges:?}"
    );
    let show = t.then(["show", "a.txt"]);
    show.success();
    assert!(
        show.stdout.contains("1 read what it wrote"),
        "{}",
        show.stdout
    );
}

/// A sub-make the shim cannot see coming (run by a script) runs under its command's
/// filter: its commands are still attributed to themselves, and make's own file
/// activity (reading its makefile) belongs to the make, not to a command.
#[test]
fn hidden_sub_make_is_attributed() {
    let t = Test::new()
        .makefile("all:\n\t./build.sh\n")
        .file("build.sh", "#!/bin/sh\nexec \"${MAKE:-make}\" -C sub\n")
        .file(
            "sub/Makefile",
            "b.txt: a.txt\n\tcat a.txt > b.txt\na.txt:\n\techo a > a.txt\n",
        )
        .args(["make"]);
    std::fs::set_permissions(
        t.path().join("build.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    t.run().success();
    let db = t.db();
    let make_reads = rows(
        &db,
        "SELECT count(*) FROM file_accesses f JOIN makes m ON m.id = f.make_id
         WHERE f.command_id IS NULL AND m.level = 1 AND f.path LIKE '%/sub/Makefile' AND f.kind = 'read'",
    );
    assert_eq!(
        make_reads,
        vec![vec!["1"]],
        "the sub-make reading its makefile is the make's"
    );
    let reads = rows(
        &db,
        "SELECT target FROM file_accesses WHERE path LIKE '%/sub/a.txt' AND kind = 'read'",
    );
    assert_eq!(
        reads,
        vec![vec!["b.txt"]],
        "cat's read belongs to b.txt's command"
    );
    let traced = rows(&db, "SELECT target, traced FROM commands ORDER BY id");
    assert!(traced.iter().all(|r| r[1] == "1"), "{traced:?}");
}

/// make's own file activity (its makefiles read, prerequisites looked at, includes
/// searched for) belongs to each make, the top one and a `$(MAKE)` one, through the
/// helper preloaded into make with a ring of its own; a recipe's files stay the recipe's,
/// and the record's own directory is nobody's.
#[test]
fn makes_own_file_activity_is_recorded() {
    let t = Test::new()
        .makefile(
            "include inc.mk\n-include missing.mk\nall: out.txt\n\t$(MAKE) -C sub\nout.txt: in.txt\n\tcp in.txt out.txt\n",
        )
        .file("inc.mk", "X = 1\n")
        .file("in.txt", "hi\n")
        .file("sub/Makefile", "all: b.txt\nb.txt: a.txt\n\tcat a.txt > b.txt\n")
        .file("sub/a.txt", "a\n")
        .args(["make"]);
    let out = t.run();
    out.success();
    assert!(!out.stderr.contains("incomplete"), "{}", out.stderr);
    let db = t.db();
    let of_make = |level: u32| -> Vec<Vec<String>> {
        rows(
            &db,
            &format!(
                "SELECT f.kind, replace(f.path, (SELECT directory FROM builds), '.') FROM file_accesses f
                 JOIN makes m ON m.id = f.make_id
                 WHERE f.command_id IS NULL AND m.level = {level} AND f.path LIKE (SELECT directory FROM builds) || '/%'"
            ),
        )
    };
    let has = |files: &[Vec<String>], kind: &str, path: &str| {
        files.iter().any(|r| r[0] == kind && r[1] == path)
    };
    let top = of_make(0);
    for (kind, path) in [
        ("read", "./Makefile"),
        ("read", "./inc.mk"),
        ("stat", "./in.txt"),
    ] {
        assert!(
            has(&top, kind, path),
            "top make: no {kind} {path} in {top:?}"
        );
    }
    let sub = of_make(1);
    for (kind, path) in [("read", "./sub/Makefile"), ("stat", "./sub/a.txt")] {
        assert!(
            has(&sub, kind, path),
            "sub-make: no {kind} {path} in {sub:?}"
        );
    }
    assert!(
        top.iter().chain(&sub).all(|r| !r[1].contains(".makescope")),
        "the record's own files are nobody's: {top:?} {sub:?}"
    );
    // The include searched for and not found: the top make's probe.
    let probes = rows(
        &db,
        "SELECT count(*) FROM probe_set s JOIN makes m ON m.id = s.make_id WHERE m.level = 0",
    );
    assert_eq!(probes, vec![vec!["1"]]);
    let probed = probed_paths(&db, 0);
    assert!(
        probed.iter().any(|p| p.ends_with("/missing.mk")),
        "{probed:?}"
    );
    // The recipe's own files are its command's, make's are not.
    let cp = rows(
        &db,
        "SELECT kind, replace(path, (SELECT directory FROM builds), '.') FROM file_accesses WHERE target = 'out.txt'",
    );
    assert!(has(&cp, "read", "./in.txt"), "{cp:?}");
    assert!(!cp.iter().any(|r| r[1] == "./inc.mk"), "{cp:?}");
    // Without the fast path nothing can see make: its activity is simply not there.
    let t2 = Test::new()
        .makefile("all:\n\ttrue\n")
        .args(["make", "--trap-only"]);
    t2.run().success();
    let none = rows(
        &t2.db(),
        "SELECT count(*) FROM file_accesses WHERE make_id IS NOT NULL",
    );
    assert_eq!(none, vec![vec!["0"]]);
}

/// Every process's exit status is recorded: a dynamic program's through the helper (its
/// exit record in the ring, no trapped call), a static one's through the trapped
/// `exit_group`, a shell's child whose exec failed (a vfork child: no fork handler ran
/// in it) too.
#[test]
fn exit_statuses_are_recorded() {
    let t = Test::new()
        .file("prog.c", "int main(void) { return 5; }\n")
        .file("not-executable", "")
        .makefile(
            "all: prog\n\t-/bin/false\n\t-sh -c 'exit 7'\n\t-./prog\n\t-sh -c './not-executable; exit 0'\n\
             prog: prog.c\n\tgcc -static -O1 -o $@ $<\n",
        )
        .env("MAKESCOPE_TRACE_STATS", "1")
        .args(["make"]);
    let out = t.run();
    out.success();
    let db = t.db();
    let code_of = |exe: &str| {
        rows(
            &db,
            &format!("SELECT exit_code FROM process WHERE exe LIKE '%/{exe}'"),
        )
    };
    assert_eq!(code_of("false"), vec![vec!["1"]]);
    assert_eq!(code_of("prog"), vec![vec!["5"]]);
    // The shell the shim started and the one it ran.
    let sevens = rows(&db, "SELECT count(*) FROM process WHERE exit_code = 7");
    assert_eq!(sevens, vec![vec!["2"]]);
    // The shell's child that could not exec the file.
    let refused = rows(&db, "SELECT count(*) FROM process WHERE exit_code = 126");
    assert_eq!(refused, vec![vec!["1"]], "{}", out.stderr);
    let unended = rows(
        &db,
        "SELECT count(*) FROM process WHERE ended_ns IS NULL OR exit_code IS NULL",
    );
    assert_eq!(unended, vec![vec!["0"]]);
    // Only the static program's exit was trapped.
    assert!(out.stderr.contains(" exit_group=1 "), "{}", out.stderr);
}

/// A process's exit record can sit behind a record another process of its command has
/// reserved but not yet written (a `cat` blocked opening a FIFO): the process must still
/// end with its exit code, and its exit record, read later, must not pass for a new
/// process.
#[test]
fn an_exit_behind_an_unfinished_record_keeps_its_code() {
    let t = Test::new()
        .makefile(
            "all:\n\t@rm -f fifo; mkfifo fifo; (cat fifo > /dev/null &); sleep 0.3; \
             sh -c 'exit 3'; sleep 0.3; echo x > fifo; sleep 0.1\n",
        )
        .args(["make"]);
    t.run().success();
    let db = t.db();
    let threes = rows(&db, "SELECT count(*) FROM process WHERE exit_code = 3");
    assert_eq!(threes, vec![vec!["1"]]);
    let unended = rows(
        &db,
        "SELECT pid FROM process WHERE ended_ns IS NULL OR exit_code IS NULL",
    );
    assert!(unended.is_empty(), "{unended:?}");
    let twice = rows(
        &db,
        "SELECT pid FROM process GROUP BY pid HAVING count(*) > 1",
    );
    assert!(twice.is_empty(), "{twice:?}");
}

/// Calls the helper serves, not the trap: one made by a library's constructor, which
/// runs before the preloaded helper's (libselinux's look for its config, in mv and sed),
/// and glibc's realpath, which checks a name ending in '/' through its internal
/// faccessat (cc1 and as do, for their directories).
#[test]
fn early_and_internal_calls_are_served_by_the_helper() {
    let t = Test::new()
        .file(
            "early.c",
            "#include <unistd.h>\n__attribute__((constructor)) static void early(void) { access(\"early-probe\", F_OK); }\n",
        )
        .file(
            "main.c",
            "#include <stdlib.h>\nint main(void) { char b[4096]; return realpath(\"sub/\", b) ? 0 : 1; }\n",
        )
        .file("sub/keep", "")
        .makefile("all:\n\t./prog\n")
        .env("MAKESCOPE_TRACE_STATS", "1")
        .args(["make"]);
    for args in [
        &["-shared", "-fPIC", "-o", "libearly.so", "early.c"][..],
        &[
            "-o",
            "prog",
            "main.c",
            "-L.",
            // Debian's gcc links --as-needed: main uses nothing of the library.
            "-Wl,--no-as-needed",
            "-learly",
            "-Wl,-rpath,$ORIGIN",
        ],
    ] {
        gcc(&t, args);
    }
    let out = t.run();
    out.success();
    let stats = out
        .stderr
        .lines()
        .find(|l| l.contains("trace stats"))
        .unwrap_or_else(|| panic!("no trace stats: {}", out.stderr));
    assert!(!stats.contains("faccessat2="), "{}", out.stderr);
    // The other measurement lines: each thread's CPU, and the recorder's against make's.
    for line in [
        "event loop: ran",
        "writer: ran",
        "output: ran",
        "CPU: makescope user",
    ] {
        assert!(out.stderr.contains(line), "no {line:?}: {}", out.stderr);
    }
    let show = t.then(["show", "1", "--files"]);
    show.success();
    assert!(show.stdout.contains("/early-probe"), "{}", show.stdout);
    assert!(show.stdout.contains("/sub"), "{}", show.stdout);
}

/// A program that stays behind (started from make's `$(shell …)`): it writes its pid to
/// `pid`, waits for a file `go`, then stats a long path 100,000 times, more than make's
/// ring holds (64 MiB of 64-byte units: ~15 units a record here), and writes `done`.
const DAEMON: &str = r#"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    struct stat st;
    FILE *p = fopen("pid", "w");
    fprintf(p, "%d\n", (int)getpid());
    fclose(p);
    while (access("go", F_OK) != 0) usleep(10000);
    char path[1000] = "";
    for (int i = 0; i < 300; i++) strcat(path, "./");
    strcat(path, "go");
    for (int i = 0; i < 100000; i++) stat(path, &st);
    FILE *f = fopen("done", "w");
    fputs("done\n", f);
    fclose(f);
    return 0;
}
"#;

/// A build whose makefile starts the [`DAEMON`] and whose one recipe is `recipe`.
fn daemon_test(recipe: &str) -> Test {
    let t = Test::new()
        .file("daemon.c", DAEMON)
        .makefile(&format!(
            "X := $(shell ./daemon > /dev/null 2>&1 &)\nall:\n\t{recipe}\n"
        ))
        .args(["make"]);
    gcc(&t, &["-O1", "-o", "daemon", "daemon.c"]);
    t
}

/// Let the [`DAEMON`] go and wait up to 60 s for it to finish (else kill it and fail).
fn daemon_finishes(t: &Test, after: &str) {
    std::fs::write(t.path().join("go"), "").unwrap();
    let done = t.path().join("done");
    let start = std::time::Instant::now();
    while !done.exists() && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if !done.exists() {
        // Not left behind to crawl on for hours.
        if let Ok(pid) = std::fs::read_to_string(t.path().join("pid")) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
        panic!("the daemon did not finish within 60 s of {after}");
    }
}

/// A daemon started from make's `$(shell …)` writes into make's ring, which nothing reads
/// once the build is over: it must not then wait for room (up to ~10 s a call) when the
/// ring is full.
#[test]
fn a_daemon_from_shell_is_not_slowed_once_the_build_is_over() {
    let t = daemon_test("@true");
    t.run().success();
    daemon_finishes(&t, "the build's end");
}

/// The same when makescope is killed (SIGKILL: it cannot close the ring): the daemon
/// finds make's ring full and its reader gone, and must not wait ~10 s a call.
#[test]
fn a_daemon_from_shell_is_not_slowed_when_makescope_is_killed() {
    let t = daemon_test("sleep 2");
    let makescope = t.spawn(t.command());
    let start = std::time::Instant::now();
    while !t.path().join("pid").exists() && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    makescope.kill();
    daemon_finishes(&t, "makescope's end");
}

/// Run gcc in the test's directory (a test's own helper programs, built before the
/// traced build).
fn gcc(t: &Test, args: &[&str]) {
    let mut gcc = t.program("gcc");
    gcc.args(args);
    t.run_command(gcc).success();
}

/// The paths of a make's probe set (decoded: LEB128 differences of sorted ids).
fn probed_paths(db: &rusqlite::Connection, level: u32) -> Vec<String> {
    let blob: Vec<u8> = db
        .query_row(
            &format!("SELECT s.path_ids FROM probe_set s JOIN makes m ON m.id = s.make_id WHERE m.level = {level}"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (mut ids, mut id, mut value, mut shift) = (Vec::new(), 0i64, 0i64, 0);
    for byte in blob {
        value |= i64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            id += value;
            ids.push(id);
            value = 0;
            shift = 0;
        }
    }
    ids.iter()
        .map(|id| {
            db.query_row(
                "SELECT CAST(path AS TEXT) FROM path WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
        })
        .collect()
}

/// When tracing is refused (here: a makescope of its own inside a traced command, whose
/// filter already has a listener), one line says what to do; --no-trace works.
#[test]
fn refused_tracing_is_one_line() {
    // Through a script, so that the shim does not take the line for a sub-make, and
    // without the job's context, so that makescope does not join the outer build.
    let t = Test::new()
        .makefile("nested:\n\tsh run-inner.sh\n")
        .file(
            "run-inner.sh",
            format!(
                "exec env -u MAKESCOPE_CTX {} --db inner.sqlite make -C inner\n",
                makescope()
            ),
        )
        .file("inner/Makefile", "x:\n\t@echo inner ran\n")
        .args(["make", "-k"]);
    let out = t.run();
    out.code(2);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("cannot trace files") && all.contains("--no-trace"),
        "{all}"
    );
    let t2 = Test::new()
        .makefile(&format!(
            "nested:\n\t{} --db inner.sqlite make --no-trace -C inner\n",
            makescope()
        ))
        .file("inner/Makefile", "x:\n\t@echo inner ran\n")
        .args(["make"]);
    let out = t2.run();
    out.success();
    assert!(out.stdout.contains("inner ran"), "{}", out.stdout);
}

/// Non-UTF-8 paths survive into the accesses and out of `show --json`.
#[test]
fn non_utf8_paths_in_accesses() {
    let t = Test::new()
        .file("Makefile", b"all:\n\ttouch caf\xe9.dat\n".as_slice())
        .args(["make"]);
    t.run().success();
    let json = t.then(["show", "all", "--json"]).json();
    let created = json["files"]["create"].as_array().unwrap();
    let exact: Vec<&serde_json::Value> = created
        .iter()
        .filter(|v| v.get("base64").is_some())
        .collect();
    assert_eq!(exact.len(), 1, "{created:?}");
    let text = exact[0]["text"].as_str().unwrap();
    assert!(text.ends_with("caf\u{fffd}.dat"), "{text}");
}

/// A pid is reused (glibc's build forks far more than pid_max): a process that gets a
/// finished command's shim pid must belong to its own command. Forces the reuse with
/// /proc/sys/kernel/ns_last_pid, so it needs root; skipped otherwise.
#[test]
fn reused_pids_belong_to_their_new_command() {
    if std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/kernel/ns_last_pid")
        .is_err()
    {
        eprintln!("cannot write /proc/sys/kernel/ns_last_pid (not root): skipped");
        return;
    }
    let makefile = "SHELL := /bin/bash\n\
        all: b.out\n\
        a.pid:\n\techo $$PPID > a.pid\n\
        b.out: a.pid\n\
        \tfor i in 1 2 3 4 5 6 7 8; do p=$$(( $$(cat a.pid) - 1 )); echo $$p > /proc/sys/kernel/ns_last_pid; \
        (echo $$BASHPID > b.pid; touch b.out.$$i); [ \"$$(cat b.pid)\" = \"$$(cat a.pid)\" ] && break; done; touch b.out\n";
    let t = Test::new().makefile(makefile).args(["make"]);
    t.run().success();
    let a = std::fs::read_to_string(t.path().join("a.pid")).unwrap();
    let b = std::fs::read_to_string(t.path().join("b.pid")).unwrap();
    if a != b {
        eprintln!("the pid was not reused this time (another process took it): nothing shown");
        return;
    }
    let owners = rows(
        &t.db(),
        "SELECT DISTINCT target FROM file_accesses WHERE path LIKE '%/b.out.%' AND kind = 'create'",
    );
    assert_eq!(
        owners,
        vec![vec!["b.out"]],
        "the reused pid's files went to {owners:?}"
    );
}

/// The files of `target` in the last build, kind by kind, as `show --json` lists them,
/// without the compiler's randomly named temporary files.
fn files_of(t: &Test, target: &str) -> Vec<(String, String)> {
    let shown = t.then(["show", target, "--json"]).json();
    let mut files = Vec::new();
    for (kind, paths) in shown["files"].as_object().expect("files") {
        for path in paths.as_array().unwrap() {
            let path = path.as_str().unwrap().to_string();
            let name = path.rsplit('/').next().unwrap_or("");
            if path.starts_with("/tmp/") && name.starts_with("cc") {
                continue;
            }
            files.push((kind.clone(), path));
        }
    }
    files.sort();
    files
}

/// Does `files` (from [`files_of`]) hold an access of `kind` to a path ending in `end`?
fn has(files: &[(String, String)], kind: &str, end: &str) -> bool {
    files.iter().any(|(k, p)| k == kind && p.ends_with(end))
}

/// One count from `MAKESCOPE_TRACE_STATS=1`'s line (`openat=12 … ring=345`); 0 if absent.
fn trace_count(stats: &str, name: &str) -> u64 {
    stats
        .split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The in-process fast path records what trapping every call records: a compile with
/// include-path searches and a shell pipeline, once each way, give the same files with
/// the same kinds; and the fast path really served most of the calls.
#[test]
fn fast_path_records_what_trapping_records() {
    let t = Test::new();
    // A PATH whose first directory has nothing: each program's search misses there
    // first (the shim's own search for gcc, gcc's for `as`, the shell's for cat).
    let path = format!(
        "{}:{}",
        t.path().join("nothing-here").display(),
        std::env::var("PATH").unwrap()
    );
    let t = t
        .env("PATH", &path)
        .file("inc/a/one.h", "#define ONE 1\n")
        .file("inc/b/two.h", "#include \"three.h\"\n#define TWO 2\n")
        .file("inc/b/three.h", "#define THREE 3\n")
        .file("main.c", "#include <one.h>\n#include <two.h>\n#include <stdio.h>\nint main(void) { return ONE + TWO + THREE; }\n")
        .file("in.txt", "hello\n")
        .makefile(
            "all: main.o out.txt\n\
             main.o: main.c\n\tgcc -Iinc/x -Iinc/a -Iinc/b -c main.c -o main.o\n\
             out.txt: in.txt\n\tcat in.txt | tr a-z A-Z > out.txt; test -e missing.txt || ls inc > /dev/null\n",
        )
        .env("MAKESCOPE_TRACE_STATS", "1")
        // gcc, cc1, as, tr … load the locale's files and look for their message
        // catalogs (glibc's own opens, which the helper redirects to itself).
        .env("LC_ALL", "C.UTF-8")
        // cargo's test environment lists several library directories: the dynamic
        // loader's searches through them are trapped (it runs before any helper) and
        // would swamp these numbers.
        .env("LD_LIBRARY_PATH", "")
        .args(["make"]);
    let fast = t.run();
    fast.success();
    let stats = fast.stderr.clone();
    let count = |name: &str| trace_count(&stats, name);
    let (served, trapped_opens) = (count("ring"), count("openat"));
    assert!(
        served > trapped_opens,
        "the fast path served too little: {stats}"
    );
    let fast_compile = files_of(&t, "main.o");
    let fast_pipe = files_of(&t, "out.txt");

    std::fs::remove_file(t.path().join("main.o")).unwrap();
    std::fs::remove_file(t.path().join("out.txt")).unwrap();
    let mut again = t.command();
    again.arg("--trap-only");
    let trapped = t.run_command(again);
    trapped.success();
    let stats = trapped.stderr.clone();
    assert!(
        !stats.contains("ring="),
        "--trap-only used the fast path: {stats}"
    );
    assert_eq!(fast_compile, files_of(&t, "main.o"));
    assert_eq!(fast_pipe, files_of(&t, "out.txt"));
    // The PATH searches' misses are recorded either way; with the fast path they are not
    // trapped (the shim searches before its filter is in place, the helper serves execvp
    // and the shell's execve).
    // Trapped with the fast path: only the 7 programs that ran (gcc, cc1, as; sh, cat,
    // tr, ls), none of the misses.
    let (fast_execs, trapped_execs) = (count("execve"), trace_count(&stats, "execve"));
    assert!(
        fast_execs == 7 && trapped_execs > 7 + 5,
        "execve trapped {fast_execs} times with the fast path, {trapped_execs} without"
    );
    assert!(
        has(&fast_compile, "probe", "/inc/a/two.h"),
        "{fast_compile:?}"
    );
    for program in ["gcc", "as"] {
        let miss = format!("/nothing-here/{program}");
        assert!(has(&fast_compile, "probe", &miss), "{fast_compile:?}");
    }
    assert!(
        has(&fast_pipe, "probe", "/nothing-here/cat"),
        "{fast_pipe:?}"
    );
    assert!(
        has(&fast_compile, "read", "/inc/a/one.h"),
        "{fast_compile:?}"
    );
    assert!(
        has(&fast_compile, "read", "/inc/b/three.h"),
        "{fast_compile:?}"
    );
    assert!(has(&fast_pipe, "read", "/in.txt"), "{fast_pipe:?}");
    assert!(has(&fast_pipe, "probe", "/missing.txt"), "{fast_pipe:?}");
    assert!(
        !fast_compile
            .iter()
            .any(|(_, p)| p.contains("makescope-preload")),
        "the helper itself is not the command's file: {fast_compile:?}"
    );
}

/// glibc opens files for itself through internal functions that no LD_PRELOAD library
/// interposes (setlocale's locale files, fopen); the helper redirects them to itself. A
/// program that loads the C.UTF-8 locale and fopen's files 400 times: with the fast
/// path those opens are not trapped (with the redirection off, they are), and the
/// record is the same as when every call is trapped, write opens of every kind included.
#[test]
fn fast_path_serves_glibc_internal_opens() {
    let ctype = "/usr/lib/locale/C.utf8/LC_CTYPE";
    assert!(
        std::path::Path::new(ctype).exists(),
        "this test needs Debian's C.UTF-8 locale ({ctype}, package libc-bin)"
    );
    let source = r#"
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    if (!setlocale(LC_ALL, "")) return 3;
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen("in.txt", "r");
        if (!f) return 4;
        fclose(f);
        if (fopen("missing.txt", "re")) return 5;
    }
    FILE *out = fopen("out.txt", "w");
    if (!out) return 6;
    fputs("done\n", out);
    if (fclose(out) != 0) return 7;
    /* Each kind a write open can have, through the helper's own open. */
    int fd = open("append.txt", O_WRONLY | O_APPEND);
    if (fd < 0) return 8;
    close(fd);
    if (open("append.txt", O_WRONLY | O_CREAT | O_EXCL, 0644) >= 0) return 9;
    if (open("no-such-dir/new.txt", O_WRONLY | O_CREAT, 0644) >= 0) return 10;
    if (open("nowhere.txt", O_WRONLY) >= 0) return 11;
    if ((fd = open("rdwr.txt", O_RDWR)) < 0) return 12;
    close(fd);
    if ((fd = open("trunc.txt", O_WRONLY | O_TRUNC)) < 0) return 13;
    close(fd);
    return 0;
}
"#;
    let t = Test::new()
        .file("internal.c", source)
        .file("in.txt", "hello\n")
        .file("append.txt", "")
        .file("rdwr.txt", "")
        .file("trunc.txt", "")
        .makefile("all: internal\n\t./internal\ninternal: internal.c\n\tgcc -O1 -o $@ $<\n")
        .env("LC_ALL", "C.UTF-8")
        .env("MAKESCOPE_TRACE_STATS", "1")
        .env("LD_LIBRARY_PATH", "")
        .args(["make"]);
    t.run().success();
    let run = |extra: &[(&str, &str)], trap_only: bool| {
        let _ = std::fs::remove_file(t.path().join("out.txt"));
        let mut c = t.command();
        if trap_only {
            c.arg("--trap-only");
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        let out = t.run_command(c);
        out.success();
        (trace_count(&out.stderr, "openat"), files_of(&t, "all"))
    };
    // Only `./internal` runs now: with the fast path only its dynamic loader's opens
    // are trapped (everything the program and glibc open go through the helper).
    let (fast_opens, fast) = run(&[], false);
    let (unredirected_opens, unredirected) = run(&[("MAKESCOPE_TRACE_NO_REDIRECT", "1")], false);
    let (_, trapped) = run(&[], true);
    assert!(
        fast_opens < 50 && unredirected_opens >= 400,
        "trapped openat: {fast_opens} redirected, {unredirected_opens} not"
    );
    assert_eq!(fast, trapped);
    assert_eq!(unredirected, trapped);
    assert!(has(&fast, "read", "/in.txt"), "{fast:?}");
    assert!(has(&fast, "probe", "/missing.txt"), "{fast:?}");
    assert!(has(&fast, "read", ctype), "{fast:?}");
    assert!(has(&fast, "create", "/out.txt"), "{fast:?}");
    for (kind, path) in [
        ("append", "/append.txt"),
        ("stat", "/append.txt"), // O_CREAT|O_EXCL on an existing file fails
        ("create", "/no-such-dir/new.txt"), // as the supervisor says of a trapped one
        ("probe", "/nowhere.txt"),
        ("write", "/rdwr.txt"),
        ("truncate", "/trunc.txt"),
    ] {
        assert!(has(&fast, kind, path), "{kind} {path}: {fast:?}");
    }
    assert_eq!(
        std::fs::read_to_string(t.path().join("out.txt")).unwrap(),
        "done\n"
    );
}

/// The helper caches the working directory (one getcwd per relative path otherwise):
/// every way a process changes directory must still show in its relative paths. A raw
/// chdir and fchdir (which the helper never sees), a vfork child that changes directory
/// in the parent's memory, and a second thread: each relative probe lands in the
/// directory it was made from, as trapping every call says.
#[test]
fn relative_paths_follow_every_change_of_directory() {
    let source = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
static int probe(const char *name) { return open(name, O_RDONLY) >= 0; }
static void *in_thread(void *arg) { (void)arg; probe("thread.txt"); return 0; }
int main(void) {
    probe("top.txt");
    if (syscall(SYS_chdir, "d1") != 0) return 2;    /* not through libc */
    probe("after-raw-chdir.txt");
    pid_t child = vfork();
    if (child == 0) {
        if (chdir("d2") != 0) syscall(SYS_exit_group, 3);
        probe("vfork-child.txt");
        syscall(SYS_exit_group, 0);
    }
    if (child < 0) return 4;
    probe("after-vfork.txt");
    int up = open("..", O_RDONLY | O_DIRECTORY);
    if (up < 0 || syscall(SYS_fchdir, up) != 0) return 5;
    probe("after-raw-fchdir.txt");
    pthread_t t;
    if (pthread_create(&t, 0, in_thread, 0) != 0 || pthread_join(t, 0) != 0) return 6;
    if (chdir("d1/d2") != 0) return 7;
    probe("threaded.txt");
    return 0;
}
"#;
    let t = Test::new()
        .file("dirs.c", source)
        .file("d1/d2/.keep", "")
        .makefile("all: dirs\n\t./dirs\ndirs: dirs.c\n\tgcc -O1 -pthread -o $@ $<\n")
        .args(["make"]);
    t.run().success();
    let rebuild = |trap_only: bool| {
        let mut c = t.command();
        if trap_only {
            c.arg("--trap-only");
        }
        c.args(["-B", "all"]);
        t.run_command(c).success();
        files_of(&t, "all")
    };
    let fast = rebuild(false);
    let top = t.path().canonicalize().unwrap();
    let top = top.to_str().unwrap();
    for path in [
        "top.txt",
        "d1/after-raw-chdir.txt",
        "d1/d2/vfork-child.txt",
        "d1/after-vfork.txt",
        "after-raw-fchdir.txt",
        "thread.txt",
        "d1/d2/threaded.txt",
    ] {
        let want = format!("{top}/{path}");
        assert!(
            fast.iter().any(|(k, p)| k == "probe" && *p == want),
            "no probe of {want}: {fast:?}"
        );
    }
    assert_eq!(fast, rebuild(true));
}

/// The helper goes after a command's own LD_PRELOAD, and the recorded environment does
/// not show it.
#[test]
fn fast_path_keeps_the_commands_own_preload() {
    let t = Test::new()
        .makefile("export LD_PRELOAD = libc.so.6\nseen.txt:\n\tprintenv LD_PRELOAD > seen.txt\n")
        .args(["make"]);
    t.run().success();
    let seen = std::fs::read_to_string(t.path().join("seen.txt")).unwrap();
    assert!(
        seen.starts_with("libc.so.6 ") && seen.trim_end().ends_with("/makescope-preload.so"),
        "{seen}"
    );
    assert_eq!(environments_containing(&t, "makescope-preload"), 0);
    assert_eq!(environments_containing(&t, "LD_PRELOAD=libc.so.6"), 1);
}

/// How many recorded environments contain `text` (entries are NUL-separated bytes).
fn environments_containing(t: &Test, text: &str) -> u64 {
    t.db()
        .query_row(
            "SELECT count(*) FROM environment WHERE instr(entries, CAST(?1 AS BLOB)) > 0",
            [text],
            |r| r.get(0),
        )
        .unwrap()
}

/// A process that closed the ring and got its descriptor number back for a file of its
/// own: the helper in the programs it runs must leave that file alone (and tracing falls
/// back to trapping, so nothing is lost).
#[test]
fn fast_path_never_writes_into_a_reused_descriptor() {
    let source = r#"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    const char *ring = getenv("MAKESCOPE_TRACE_RING");
    if (!ring) return 3;
    int n = atoi(ring);
    close(n);
    int fd = open("victim.bin", O_RDWR);
    if (fd < 0 || dup2(fd, n) != n) return 4;
    if (fd != n) close(fd);
    execl("/bin/cat", "cat", "in.txt", (char *)0);
    return 5;
}
"#;
    let t = Test::new()
        .file("reuse.c", source)
        .file("in.txt", "hello\n")
        .file("victim.bin", vec![b'A'; 1 << 20])
        .makefile(
            "all: reuse\n\t./reuse > out.txt\n\
             reuse: reuse.c\n\tgcc -O1 -o $@ $<\n",
        )
        .args(["make"]);
    t.run().success();
    let victim = std::fs::read(t.path().join("victim.bin")).unwrap();
    assert!(victim.len() == 1 << 20 && victim.iter().all(|&b| b == b'A'));
    assert_eq!(
        std::fs::read_to_string(t.path().join("out.txt")).unwrap(),
        "hello\n"
    );
    let files = files_of(&t, "all");
    assert!(has(&files, "read", "/in.txt"), "{files:?}");
}

/// A program built with AddressSanitizer insists that its runtime be the first library
/// loaded; the helper must not stop it from starting (and its files are still recorded:
/// ASan's shadow memory covers the helper's page, so its calls are trapped).
#[test]
fn asan_program_runs_under_the_fast_path() {
    let probe = Test::new().file("probe.c", "int main(void){return 0;}\n");
    let mut link = probe.program("gcc");
    link.args(["-fsanitize=address", "-o", "/dev/null", "probe.c"]);
    if probe.run_command(link).code != Some(0) {
        eprintln!("gcc cannot link with -fsanitize=address here (libasan missing); skipped");
        return;
    }
    let source = r#"
#include <stdio.h>
int main(void) {
    FILE *f = fopen("in.txt", "r");
    char b[8];
    if (f) { fread(b, 1, 1, f); fclose(f); }
    puts("asan ok");
    return 0;
}
"#;
    let t = Test::new()
        .file("asan.c", source)
        .file("in.txt", "hello\n")
        .makefile(
            "all: asan\n\t./asan > out.txt\nasan: asan.c\n\tgcc -fsanitize=address -o $@ $<\n",
        )
        .args(["make"]);
    t.run().success();
    assert_eq!(
        std::fs::read_to_string(t.path().join("out.txt")).unwrap(),
        "asan ok\n"
    );
    let files = files_of(&t, "all");
    assert!(has(&files, "read", "/in.txt"), "{files:?}");
    assert_eq!(environments_containing(&t, "verify_asan_link_order"), 0);
}
