//! The fast trials of issue 23 (the slow, seeded ones are `scripts/trials.sh`, their
//! figures in BENCHMARKS.md): secrets never reach the record in clear, broken records
//! are refused in one line and kept, hostile names and sizes are recorded exactly, a
//! command's output is kept bounded, and `log --json` stays one document.

use std::path::{Path, PathBuf};

use crate::harness::{installed, makescope_bin, rows, Output, Test};

/// Every file under `dir` (the record, its WAL files, make's database dumps).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The secrets of `secrets_never_reach_the_record_or_its_wal_in_clear`: each value is
/// unique, so a grep finds it wherever it went.
const SECRETS: &[(&str, &str)] = &[
    ("API_TOKEN", "leak-token-1"),
    ("AWS_SECRET_ACCESS_KEY", "leak-aws-2"),
    ("GITHUB_PAT", "leak-pat-3"),
    ("GOOGLE_APPLICATION_CREDENTIALS", "leak-credentials-4"),
    ("NPM_AUTH", "leak-auth-5"),
    ("DB_PASSWORD", "leak-password-6"),
    ("HTTPS_PROXY", "http://bob:leak-url-7@proxy:3128"),
];

/// Variables that look secret never reach the record, its WAL or make's database
/// dumps in clear: from the environment, or from make's command line (in the
/// arguments and in `MAKEFLAGS`). The WAL is looked at while the build runs (a
/// command waits until its own row, with its environment, is in the files).
#[test]
fn secrets_never_reach_the_record_or_its_wal_in_clear() {
    let mut t = Test::new()
        .makefile(
            "all: first second\n\
             first:\n\t@echo visible-marker-$$SEEN; while [ ! -e go ]; do sleep 0.01; done\n\
             second:\n\t@echo $$GITHUB_PAT | wc -c\n",
        )
        .env("SEEN", "plain-value")
        .env("GIT_AUTHOR_NAME", "kept-author");
    for (name, value) in SECRETS {
        t = t.env(name, value);
    }
    let t = t.args([
        "make",
        "CLI_TOKEN=leak-cli-8",
        "CLI_URL=ftp://u:leak-cli-9@h/",
    ]);
    let running = t.spawn(t.command());
    let dir = t.path().join(".makescope");
    // The first command's environment is written within a second of its start.
    let started = std::time::Instant::now();
    let grep = |needle: &[u8]| -> Vec<PathBuf> {
        files_under(&dir)
            .into_iter()
            .filter(|f| std::fs::read(f).is_ok_and(|b| contains(&b, needle)))
            .collect()
    };
    while grep(b"SEEN=plain-value").is_empty() {
        assert!(
            started.elapsed() < crate::harness::TIMEOUT,
            "never recorded"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let leaks = |when: &str| {
        for needle in
            SECRETS
                .iter()
                .map(|(_, v)| *v)
                .chain(["leak-cli-8", "leak-cli-9", "leak-url-7"])
        {
            assert_eq!(
                grep(needle.as_bytes()),
                Vec::<PathBuf>::new(),
                "{needle} {when}"
            );
        }
    };
    assert!(grep(b"SEEN=plain-value")
        .iter()
        .any(|f| f.ends_with("db.sqlite-wal")));
    leaks("while the build runs");
    std::fs::write(t.path().join("go"), "").unwrap();
    let out = running.wait();
    out.success();
    // The build itself had the real value (11 bytes and a newline).
    assert!(out.stdout.contains("11"), "{}", out.stdout);
    leaks("after the build");
    assert!(
        !grep(b"GIT_AUTHOR_NAME=kept-author").is_empty(),
        "over-redacted"
    );
    assert!(!grep(b"GITHUB_PAT=<redacted>").is_empty());
    // `--keep-secrets` keeps them.
    let mut keep = t.program(makescope_bin());
    keep.args(["make", "--keep-secrets", "second"]);
    t.run_command(keep).success();
    assert!(!grep(b"leak-pat-3").is_empty());
}

/// What `makescope ARGS` does with a record that is not one it can use: one
/// `makescope: error:` line, exit 2, the record's bytes as they were, make not run.
#[track_caller]
fn refused(t: &Test, db: &Path, args: &[&str], says: &str) {
    let before = std::fs::read(db).unwrap();
    let mut command = std::process::Command::new(makescope_bin());
    command.current_dir(t.path()).arg("--db").arg(db).args(args);
    let out = t.run_command(command);
    out.code(2);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
    assert!(
        lines[0].starts_with("makescope: error: ") && lines[0].contains(says),
        "{args:?}: {}",
        out.stderr
    );
    assert_eq!(std::fs::read(db).unwrap(), before, "{args:?} changed it");
    assert!(!t.path().join("out").exists(), "{args:?}: make ran");
}

/// A truncated record, random bytes, another program's database, a record from a
/// newer makescope: each refused in one line by `make` and by the readers, and kept.
/// An empty file (what `touch` leaves) becomes a record.
#[test]
fn broken_records_are_refused_in_one_line_and_kept() {
    let t = Test::new()
        .makefile("all:\n\t@echo built > out\n")
        .args(["make"]);
    t.run().success();
    std::fs::remove_file(t.path().join("out")).unwrap();
    let good = std::fs::read(t.path().join(".makescope/db.sqlite")).unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let path = t.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let mut random = vec![0u8; 100_000];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for b in &mut random {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    let newer = put("newer.sqlite", &good);
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    let other = t.path().join("other.sqlite");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    let cases = [
        (put("truncated.sqlite", &good[..good.len() / 3]), "corrupt"),
        (put("random.sqlite", &random), "corrupt or not a database"),
        (newer, "newer makescope"),
        (other, "is not a makescope record"),
    ];
    for (db, says) in &cases {
        for args in [
            &["make"][..],
            &["log"],
            &["log", "--json"],
            &["show", "1"],
            &["targets", "--recursive"],
        ] {
            refused(&t, db, args, says);
        }
    }
    let empty = put("empty.sqlite", b"");
    let mut command = std::process::Command::new(makescope_bin());
    command
        .current_dir(t.path())
        .arg("--db")
        .arg(&empty)
        .arg("make");
    t.run_command(command).success();
    assert!(t.path().join("out").exists());
}

/// A record the user may read but not write (as another user: root may write
/// anything): readers read it, `make` refuses in one line, nothing changes.
#[test]
fn a_record_that_cannot_be_written_is_read_and_make_refuses() {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root && !installed("setpriv") {
        eprintln!("skipped: running as root without setpriv");
        return;
    }
    let t = Test::new().makefile("all:\n\t@echo built\n").args(["make"]);
    t.run().success();
    use std::os::unix::fs::PermissionsExt;
    let dir = t.path().join(".makescope");
    let db = dir.join("db.sqlite");
    let before = std::fs::read(&db).unwrap();
    for (path, mode) in [(t.path(), 0o755), (&dir, 0o555), (&db, 0o444)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let as_other = |args: &[&str]| -> Output {
        let mut command = if root {
            let mut command = std::process::Command::new("setpriv");
            command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            command.arg(makescope_bin());
            command
        } else {
            std::process::Command::new(makescope_bin())
        };
        command.current_dir(t.path()).args(args);
        t.run_command(command)
    };
    let log = as_other(&["log"]);
    log.success();
    assert!(
        log.stderr.contains("1 commands in build 1"),
        "{}",
        log.stderr
    );
    let make = as_other(&["make"]);
    make.code(2);
    assert_eq!(make.stderr.lines().count(), 1, "{}", make.stderr);
    assert!(
        make.stderr
            .starts_with("makescope: error: cannot write the record"),
        "{}",
        make.stderr
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

/// Names with newlines, quotes, spaces and bytes that are not UTF-8, a path of ~4,000
/// bytes, a symlink loop, an environment value of 120 KB (an execve string's limit is
/// 128 KiB) and a recipe line of 120 KB: the build as make runs it, and each shown
/// exactly by `show --json`.
#[test]
fn hostile_names_and_sizes_are_recorded_exactly() {
    let long_dir: String = (0..19)
        .map(|i| format!("{}/", format!("{i:02}").repeat(100)))
        .collect();
    let t = Test::new()
        .file(
            "names.sh",
            "touch \"a b\" \"q'u\\\"ote\" \"$(printf 'new\\nline')\" \"$(printf 'bad\\377utf8')\"\n\
             ln -s loop1 loop2; ln -s loop2 loop1; cat loop1 2>/dev/null || true\n",
        )
        .makefile(&format!(
            "all: names long big\n\
             names:\n\tsh names.sh\n\
             long:\n\tmkdir -p {long_dir} && touch {long_dir}file\n\
             big:\n\t@echo {} | wc -c\n",
            "y".repeat(120_000)
        ))
        .env("HUGE", "h".repeat(120_000))
        .args(["make"]);
    t.run().success();
    let show = |target: &str| -> serde_json::Value {
        let out = t.then(["show", target, "--json", "--files"]);
        out.success();
        out.json()
    };
    let names = show("names");
    let created = names["files"]["create"].to_string();
    for name in ["a b", "q'u\\\"ote", "new\\nline"] {
        assert!(
            created.contains(&format!("/{name}\"")),
            "{name} in {created}"
        );
    }
    // Not UTF-8: shown as text and exactly as base64.
    let bad = names["files"]["create"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f.get("base64").is_some())
        .unwrap_or_else(|| panic!("no base64 path in {created}"));
    assert!(bad["text"].as_str().unwrap().ends_with("/bad\u{fffd}utf8"));
    let long = show("long");
    let file = format!("{}/{long_dir}file", t.path().display());
    assert!(file.len() > 3_800, "{}", file.len());
    assert!(
        long["files"]["create"].to_string().contains(&file),
        "{long}"
    );
    let big = show("big");
    assert_eq!(
        big["command"].as_str().unwrap().len(),
        "echo  | wc -c".len() + 120_000
    );
    assert_eq!(big["stdout"], "120001\n");
    // A 120 KB line with a 120 KB environment: more than one packet, sent in parts.
    let huge = format!("HUGE={}", "h".repeat(120_000));
    for shown in [&big, &show("names")] {
        assert!(
            shown["environment"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == &huge),
            "the 120 KB value"
        );
        assert_eq!(shown["tags"], serde_json::json!([]));
    }
}

/// An environment as large as execve takes (here 1.5 MB in 120 KB values: one string
/// may hold 128 KiB, all of them a quarter of the stack limit, 2 MiB by default) is
/// recorded exactly: the shim sends what does not fit in one packet in parts.
#[test]
fn an_environment_as_large_as_execve_takes_is_recorded_exactly() {
    let values: Vec<(String, String)> = (0..12)
        .map(|i| {
            let letter = (b'a' + i as u8) as char;
            (format!("BIG{i:02}"), letter.to_string().repeat(125_000))
        })
        .collect();
    let mut t = Test::new().makefile("all:\n\t@echo $${#BIG11}\n");
    for (name, value) in &values {
        t = t.env(name, value);
    }
    let t = t.args(["make"]);
    let out = t.run();
    out.success();
    let shown = t.then(["show", "all", "--json"]);
    shown.success();
    let shown = shown.json();
    assert_eq!(shown["stdout"], "125000\n");
    let environment = shown["environment"].as_array().unwrap();
    for (name, value) in &values {
        let expected = format!("{name}={value}");
        assert!(
            environment.iter().any(|e| e == &expected),
            "{name} is not recorded whole"
        );
    }
    let total: usize = environment
        .iter()
        .map(|e| e.as_str().unwrap().len() + 1)
        .sum();
    assert!(total > 1_500_000, "{total}");
    assert_eq!(shown["tags"], serde_json::json!([]));
}

/// A recipe line past the kernel's limit (1 MB): it fails as it does under plain
/// make (make cannot start the shell: exit 2, "Argument list too long").
#[test]
fn a_recipe_line_too_long_to_run_fails_as_under_make() {
    let t = Test::new()
        .makefile(&format!(
            "all:\n\t@echo {} | wc -c\n",
            "z".repeat(1_000_000)
        ))
        .args(["make"]);
    let plain = t.run_command(t.program("make"));
    let recorded = t.run();
    assert_eq!((plain.code, recorded.code), (Some(2), Some(2)));
    for out in [&plain, &recorded] {
        assert!(
            out.stderr.contains("Argument list too long"),
            "{}",
            out.stderr
        );
    }
}

/// A command that prints 20 MB: all of it reaches makescope's stdout, the record keeps
/// its first and last MiB and says how much it cut.
#[test]
fn a_command_that_prints_a_lot_is_printed_whole_and_recorded_bounded() {
    let t = Test::new()
        .makefile("all:\n\t@echo first-line; head -c 20000000 /dev/zero | tr '\\0' x; echo; echo last-line\n")
        .args(["make"]);
    let out = t.run();
    out.success();
    let xs = out.stdout_bytes.iter().filter(|&&b| b == b'x').count();
    assert_eq!(xs, 20_000_000);
    assert!(out.stdout.contains("first-line") && out.stdout.contains("last-line"));
    let kept = rows(&t.db(), "SELECT length(stdout), stdout FROM command");
    let length: usize = kept[0][0].parse().unwrap();
    assert!(length < (2 << 20) + 200, "{length}");
    let stdout = &kept[0][1];
    assert!(stdout.starts_with("first-line\n") && stdout.ends_with("last-line\n"));
    let cut = 20_000_000 + "first-line\n\nlast-line\n".len() - (2 << 20);
    assert!(
        stdout.contains(&format!("[makescope: {cut} bytes of output cut here")),
        "cut"
    );
}

/// `log --json` streams its document: with no command selected it is still one
/// document, and its commands are the build's.
#[test]
fn log_json_is_one_document_with_or_without_commands() {
    let t = Test::new()
        .makefile("all: a b\na b:\n\t@echo $@\n")
        .args(["make"]);
    t.run().success();
    let none = t.then(["log", "--json", "--target", "nothing-like-it"]);
    none.success();
    assert_eq!(none.json()["commands"], serde_json::json!([]));
    assert!(
        none.stdout.ends_with("\"commands\": []\n}\n"),
        "{}",
        none.stdout
    );
    let all = t.then(["log", "--json"]);
    let targets: Vec<_> = all.json()["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["target"].clone())
        .collect();
    assert_eq!(targets, ["a", "b"]);
}

/// Recipes that fight the tracer: ptrace (strace), their own seccomp filter, a user
/// namespace, 1,000 threads reading files, 1,000 vfork+exec: their output and status
/// are what plain make gives. io_uring is refused (ENOSYS) under tracing, as the README
/// says, so that programs fall back to calls the tracer sees.
#[test]
fn programs_that_fight_the_tracer_work_as_under_make() {
    if !installed("cc") {
        eprintln!("skipped: no cc");
        return;
    }
    let mut t = Test::new().file(
        "fight.c",
        std::fs::read(crate::harness::fixture_path("fight.c")).unwrap(),
    );
    for i in 0..10 {
        t = t.file(format!("in/{i}"), format!("input {i}\n"));
    }
    let mut lines = vec!["./fight threads", "./fight vfork", "./fight seccomp"];
    if installed("strace") {
        lines.push("strace -f -o /dev/null ./fight seccomp");
    }
    // A user namespace, where the kernel allows one.
    let userns = t
        .run_command({
            let mut c = t.program("unshare");
            c.args(["-U", "true"]);
            c
        })
        .code
        == Some(0);
    if userns {
        lines.push("unshare -U ./fight threads");
    }
    let recipe: String = lines.iter().map(|l| format!("\t{l}\n")).collect();
    let t = t
        .makefile(&format!(
            "all: fight\n{recipe}\t./fight io_uring\nfight: fight.c\n\tcc -pthread -o $@ $<\n"
        ))
        .args(["make", "--plain", "-s"]);
    let plain = t.run_command({
        let mut c = t.program("make");
        c.arg("-s");
        c
    });
    plain.success();
    std::fs::remove_file(t.path().join("fight")).unwrap();
    let recorded = t.run();
    recorded.success();
    let without_io_uring = |out: &Output| -> Vec<String> {
        out.stdout
            .lines()
            .filter(|l| !l.starts_with("io_uring"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(without_io_uring(&recorded), without_io_uring(&plain));
    assert!(plain.stdout.contains("threads read 1000") && plain.stdout.contains("vforked 1000"));
    assert!(
        recorded
            .stdout
            .contains("io_uring Function not implemented"),
        "{}",
        recorded.stdout
    );
    // Every line recorded ok; the threads' reads are the command's.
    let states = rows(&t.db(), "SELECT count(*), sum(state = 'ok') FROM command");
    assert_eq!(states[0][0], states[0][1]);
    let threads = t.then(["show", "--json", "--files", "all"]);
    let reads = threads.json().to_string();
    assert!(reads.contains("/in/9"), "the threads' reads");
}
