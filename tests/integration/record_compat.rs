//! Records written by an earlier makescope: today's binary reads them exactly as the
//! binary that wrote them did, and writes records of the same schema.
//!
//! `tests/fixtures/records/before.sqlite` is a traced `-j2` build of
//! `tests/fixtures/records/project` (recursive, a symlink, a compile and link, an
//! ignored failure) recorded by an earlier makescope; `before.expected` is what that
//! makescope printed for the listings below.

use std::path::Path;

use crate::harness::{fixture_path, rows, Test};

/// The listings `before.expected` holds, in its order.
const LISTINGS: &[&str] = &[
    "log",
    "log --json",
    "log --failed",
    "show 1 --files",
    "show 2 --json",
    "show 3 --json --files",
    "show 4",
    "show 5 --files",
    "show hello --json",
    "show sub/out.txt",
];

fn schema(db: &rusqlite::Connection) -> Vec<Vec<String>> {
    let mut schema = rows(
        db,
        "SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name",
    );
    schema.extend(rows(db, "PRAGMA user_version"));
    schema
}

#[test]
fn a_record_written_before_lists_as_it_did() {
    let t = Test::new().file(
        "before.sqlite",
        std::fs::read(fixture_path("records/before.sqlite")).unwrap(),
    );
    let db = t.path().join("before.sqlite");
    let mut printed = String::new();
    for listing in LISTINGS {
        let mut command = t.command();
        command.arg("--db").arg(&db).args(listing.split(' '));
        let output = t.run_command(command);
        let code = output.code.expect("exited");
        printed += &format!(
            "$ makescope {listing}\n{}{}[exit {code}]\n",
            output.stdout, output.stderr
        );
    }
    let expected = std::fs::read_to_string(fixture_path("records/before.expected")).unwrap();
    // Line by line, so that a difference names its place.
    for (i, (got, want)) in printed.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "line {} of before.expected", i + 1);
    }
    assert_eq!(printed.lines().count(), expected.lines().count());
}

/// A new record has the schema of one written before, once today's makescope has
/// migrated that one (migrations after it add tables and views, never change one).
#[test]
fn a_new_record_has_the_schema_of_one_written_before() {
    let t = Test::new()
        .fixture("records/project")
        .file(
            "before.sqlite",
            std::fs::read(fixture_path("records/before.sqlite")).unwrap(),
        )
        .args(["make", "-j2", "all"]);
    t.run().success();
    let mut migrate = t.program(crate::harness::makescope_bin());
    migrate.arg("--db").arg(t.path().join("before.sqlite")).arg("log");
    t.run_command(migrate).success();
    let before = rusqlite::Connection::open_with_flags(
        t.path().join("before.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    assert_eq!(schema(&t.db()), schema(&before));
    // And the same kinds of rows for the same build.
    let count = |db: &rusqlite::Connection, table: &str| {
        rows(db, &format!("SELECT count(*) FROM {table}"))[0][0].clone()
    };
    for table in ["command", "make", "access_kind"] {
        assert_eq!(count(&t.db(), table), count(&before, table), "{table}");
    }
    assert!(Path::new(&t.path().join("hello")).exists());
}
