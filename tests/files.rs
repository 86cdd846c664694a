//! Issue 3 through the real binary: the files each command touched, its processes,
//! the DAG, and what happens when tracing is refused.

mod common;

use common::{rows, Test};

fn makescope() -> String {
    common::makescope_bin().display().to_string()
}

/// Must-hold 1: a statically linked program is traced like any other.
#[test]
fn statically_linked_program() {
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

/// Must-hold 3: a recipe may run its own ptrace (strace).
#[test]
fn strace_inside_a_recipe() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
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

/// Must-hold 4: a process that outlives its command is reported, and the build does
/// not wait for it.
#[test]
fn daemon_is_reported() {
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

/// Must-hold 6: when tracing is refused (here: makescope inside a traced command, whose
/// filter already has a listener), one line says what to do; --no-trace works.
#[test]
fn refused_tracing_is_one_line() {
    // Through a script, so that the shim does not take the line for a sub-make.
    let t = Test::new()
        .makefile("nested:\n\tsh run-inner.sh\n")
        .file(
            "run-inner.sh",
            format!("exec {} --db inner.sqlite make -C inner\n", makescope()),
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
