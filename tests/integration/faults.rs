//! What makescope must survive without losing the build or its record: the record's
//! permissions, signals sent to makescope alone, an inherited ignored SIGINT, a recorder
//! killed mid-build, a full disk under the record.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use std::time::{Duration, Instant};

use crate::harness::{self, rows, Test};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Run `command` with `umask`.
fn with_umask(mut command: std::process::Command, umask: libc::mode_t) -> std::process::Command {
    // SAFETY: the hook runs in the forked child before exec and only calls umask(2),
    // which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
    command
}

/// The record holds every command's environment and output: its directory is created
/// 0700, the record and its WAL files 0600, make's database dumps' directory 0700,
/// whatever the (usual) umask; a stricter umask takes more away.
#[test]
fn the_record_and_its_directory_are_the_owners_alone() {
    for umask in [0o022, 0o027, 0o077] {
        let (dir_mode, file_mode) = (0o700, 0o600);
        let t = Test::new()
            .makefile("all:\n\t@echo SECRET_VALUE=$$HOME\n")
            .args(["make", "--no-trace"]);
        t.run_command(with_umask(t.command(), umask)).success();
        let dir = t.path().join(".makescope");
        assert_eq!(mode(&dir), dir_mode, "umask {umask:o}: .makescope");
        assert_eq!(
            mode(&dir.join("db.sqlite")),
            file_mode,
            "umask {umask:o}: the record"
        );
        assert_eq!(
            mode(&dir.join("makedb")),
            dir_mode,
            "umask {umask:o}: makedb"
        );
        // A reader keeps the WAL files while it has the record open.
        let db = t.db();
        let _ = rows(&db, "SELECT count(*) FROM build");
        for wal in ["db.sqlite-wal", "db.sqlite-shm"] {
            let path = dir.join(wal);
            if path.exists() {
                assert_eq!(mode(&path), file_mode, "umask {umask:o}: {wal}");
            }
        }
    }
    // A stricter umask for the group: nothing more than it allows.
    let t = Test::new()
        .makefile("all:\n\ttrue\n")
        .args(["make", "--no-trace"]);
    t.run_command(with_umask(t.command(), 0o277)).success();
    assert_eq!(mode(&t.path().join(".makescope/db.sqlite")), 0o400);
}

/// A directory the user made keeps the mode they gave it.
#[test]
fn an_existing_record_directory_keeps_its_mode() {
    let t = Test::new()
        .makefile("all:\n\ttrue\n")
        .file(".makescope/.keep", "")
        .args(["make", "--no-trace"]);
    let dir = t.path().join(".makescope");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    t.run().success();
    assert_eq!(mode(&dir), 0o750);
    assert_eq!(mode(&dir.join("db.sqlite")), 0o600);
}

/// Run `command` in a process group of its own (as a shell runs a job), with SIGINT
/// `disposition` (`SIG_DFL` or `SIG_IGN`, whatever the test suite itself inherited).
fn job(
    mut command: std::process::Command,
    disposition: libc::sighandler_t,
) -> std::process::Command {
    // SAFETY: the hook runs in the forked child before exec and only calls setpgid(2)
    // and signal(2), which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            libc::setpgid(0, 0);
            libc::signal(libc::SIGINT, disposition);
            Ok(())
        });
    }
    command
}

/// Wait for `path` to exist (a recipe's sign that it runs).
fn wait_for(path: &Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < harness::TIMEOUT,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes whose command line holds `marker`, as `pgrep -af` lists them.
fn processes_with(marker: &str) -> String {
    let out = std::process::Command::new("pgrep")
        .args(["-af", marker])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wait up to `limit` for no process to hold `marker`; what is left otherwise.
fn gone_within(marker: &str, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A recipe that says it started and then sleeps, as its shell's last command (the
/// shell replaced by it); the sleep's argument is the marker returned, unique to this
/// test (`which`) and this run.
fn sleeping_build(which: u32) -> (Test, String) {
    let marker = format!("sleep 30.{}{which}", std::process::id());
    let t = Test::new()
        .makefile(&format!("all:\n\t@touch started; exec {marker}\n"))
        .args(["make", "--no-trace"]);
    (t, marker)
}

/// `kill -INT` of makescope's pid alone (an IDE, a test runner, `Popen.send_signal`)
/// stops the build as Ctrl-C would: make and its jobs get it, makescope ends by it, and
/// the record says interrupted.
#[test]
fn sigint_to_makescope_alone_stops_the_build() {
    let (t, marker) = sleeping_build(1);
    let child = t.spawn(job(t.command(), libc::SIG_DFL));
    wait_for(&t.path().join("started"));
    let sent = Instant::now();
    // SAFETY: kill takes no pointers; the pid is makescope's, not its group.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait();
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "make did not stop: {out:?}"
    );
    assert_eq!(out.signal, Some(libc::SIGINT), "{out:?}");
    gone_within(&marker, Duration::from_secs(5))
        .unwrap_or_else(|left| panic!("the build's processes are left:\n{left}"));
    let db = t.db();
    assert_eq!(
        rows(&db, "SELECT state FROM build"),
        vec![vec!["interrupted"]]
    );
    assert_eq!(
        rows(&db, "SELECT state, signal FROM command"),
        vec![vec!["killed".to_string(), libc::SIGINT.to_string()]]
    );
}

/// Started with SIGINT ignored (a background job, `nohup`), makescope keeps it ignored
/// as plain make does, and make inherits it ignored: a Ctrl-C to the group changes
/// nothing, and the build completes.
#[test]
fn an_inherited_ignored_sigint_stays_ignored() {
    let t = Test::new()
        .makefile("all:\n\t@touch started; while [ ! -e go ]; do sleep 0.05; done; echo done\n")
        .args(["make", "--no-trace"]);
    let child = t.spawn(job(t.command(), libc::SIG_IGN));
    wait_for(&t.path().join("started"));
    // SAFETY: kill takes no pointers; the group is the one makescope leads.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    // SAFETY: kill takes no pointers; the pid is makescope's.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::fs::write(t.path().join("go"), "").unwrap();
    let out = child.wait();
    out.success();
    assert!(out.stdout.contains("done"), "{out:?}");
    assert_eq!(
        rows(&t.db(), "SELECT state FROM build"),
        vec![vec!["complete"]]
    );
}

/// `kill -9` of makescope mid-build: make and its jobs do not build on unrecorded (they
/// are gone within seconds), and the next `log` and `makescope make` say the build was
/// cut off; the record still opens and keeps what was written.
#[test]
fn a_killed_recorder_takes_the_build_with_it_and_the_next_run_says_so() {
    let (t, marker) = sleeping_build(2);
    let child = t.spawn(job(t.command(), libc::SIG_DFL));
    wait_for(&t.path().join("started"));
    // The command's row is in the record (committed within a second).
    let started = Instant::now();
    while rows(&t.db(), "SELECT count(*) FROM command") != vec![vec!["1"]] {
        assert!(
            started.elapsed() < harness::TIMEOUT,
            "the command was never recorded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill();
    gone_within(&marker, Duration::from_secs(5))
        .unwrap_or_else(|left| panic!("the build outlived its recorder:\n{left}"));

    let log = t.then(["log"]);
    log.success();
    assert!(log.stderr.contains("cut off"), "{log:?}");

    std::fs::write(t.path().join("Makefile"), "all:\n\t@true\n").unwrap();
    let next = t.then(["make", "--no-trace"]);
    next.success();
    assert!(next.stderr.contains("build 1 was cut off"), "{next:?}");
    assert_eq!(
        rows(
            &t.db(),
            "SELECT id, state, ended_ns IS NULL FROM build ORDER BY id"
        ),
        vec![vec!["1", "interrupted", "1"], vec!["2", "complete", "0"]]
    );
    assert_eq!(
        rows(&t.db(), "SELECT state FROM command WHERE build_id = 1"),
        vec![vec!["lost"]]
    );
    let log = t.then(["log", "--build", "1"]);
    assert!(log.stderr.contains("cut off"), "{log:?}");
    // A build whose recorder runs is not cut off.
    let (t, _) = sleeping_build(3);
    let child = t.spawn(job(t.command(), libc::SIG_DFL));
    wait_for(&t.path().join("started"));
    let log = t.then(["log"]);
    assert!(!log.stderr.contains("cut off"), "{log:?}");
    assert!(log.stderr.contains("running"), "{log:?}");
    child.kill();
}

/// A tmpfs of `size` mounted on a new directory, unmounted when dropped; `None` (the
/// test says why it skips) when this process may not mount (not root).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs (needs root)");
            return None;
        }
        Some(SmallDisk(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Bytes free.
    fn free(&self) -> u64 {
        // SAFETY: a zeroed statvfs is valid for statvfs to fill in.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        let path = std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `path` is NUL-terminated and `stat` a live statvfs.
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
        stat.f_bavail * stat.f_frsize
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.path())
            .status();
    }
}

/// A full disk under the record fails neither the build nor its output: make's status
/// and every byte it printed are as without makescope, and one line at the end says
/// what was not recorded.
#[test]
fn a_full_disk_for_the_record_leaves_the_build_alone() {
    let Some(disk) = SmallDisk::mount("512k") else {
        return;
    };
    let db = disk.path().join("db.sqlite");
    // 40 commands printing 60 kB each: more than the disk holds.
    let mut makefile = String::from("all:");
    for i in 0..40 {
        makefile += &format!(" t{i}");
    }
    makefile += "\n";
    for i in 0..40 {
        makefile += &format!("t{i}:\n\t@yes {i:02}-output-line | head -c 60000\n");
    }
    let t = Test::new().makefile(&makefile);
    let out = t.then([
        "--db".into(),
        db.clone().into_os_string(),
        std::ffi::OsString::from("make"),
        "--no-trace".into(),
        "--plain".into(),
    ]);
    out.success();
    assert_eq!(out.stdout.len(), 40 * 60000, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("makescope: the record is incomplete:") && last.contains("full"),
        "{}",
        out.stderr
    );

    // Room for the build's row but not for make's database dump, which make itself
    // writes on its way out.
    std::fs::write(
        disk.path().join("filler"),
        vec![0u8; (disk.free() - 64 * 1024) as usize],
    )
    .unwrap();
    let t = Test::new().makefile("all:\n\t@echo built\n");
    let out = t.then([
        "--db".into(),
        db.into_os_string(),
        std::ffi::OsString::from("make"),
        "--no-trace".into(),
        "--plain".into(),
    ]);
    out.success();
    assert_eq!(out.stdout, "built\n", "{}", out.stderr);
    assert!(!out.stderr.contains("write error"), "{}", out.stderr);
}

/// SIGTERM for a recipe's shim while it is about to start the command (stopped just
/// before its fork, `MAKESCOPE_SHIM_STOP`): the command gets it, the shim ends by it as
/// the shell would, and the record has the command killed by signal 15, not `lost`
/// (the shim's forwarding was once set only after its fork: a signal in between ended
/// the shim and left the command running, unrecorded).
#[test]
fn sigterm_for_a_shim_about_to_fork_reaches_its_command() {
    let (t, marker) = sleeping_build(4);
    let t = t.env("MAKESCOPE_SHIM_STOP", "1");
    let build = t.spawn(t.command());
    let started = Instant::now();
    let shim = loop {
        let stopped = processes_with(&marker).lines().find_map(|line| {
            let pid: i32 = line.split(' ').next()?.parse().ok()?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status.contains("State:\tT").then_some(pid)
        });
        if let Some(pid) = stopped {
            break pid;
        }
        assert!(
            started.elapsed() < harness::TIMEOUT,
            "the shim never stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: kill(2) takes no pointers; the pid is the stopped shim's, which cannot
    // exit (and be reused) until it is continued.
    unsafe {
        assert_eq!(libc::kill(shim, libc::SIGTERM), 0);
        assert_eq!(libc::kill(shim, libc::SIGCONT), 0);
    }
    let out = build.wait();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(
        rows(&t.db(), "SELECT state, signal FROM command"),
        vec![vec!["killed".to_string(), "15".into()]]
    );
    gone_within(&marker, Duration::from_secs(5)).unwrap();
}
