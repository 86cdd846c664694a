//! What makescope must survive without losing the build or its record: the record's
//! permissions, signals sent to makescope alone, an inherited ignored SIGINT, a recorder
//! killed mid-build.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use crate::harness::{rows, Test};

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
