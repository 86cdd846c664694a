//! A hook's `cmd.writes` through the real binary: every path the command made, a
//! directory and links included, the same paths the record counts as written
//! (`AccessKind::is_write`) and the DAG takes its writers from (`Store::writers_of`).
#![cfg(feature = "python")]

use crate::harness::{rows, Test};
use makescope::access::AccessKind;
use makescope::store::Store;

/// Tags each traced command with the paths of `cmd.writes`, relative to the build.
const HOOKS: &str = r#"
import json, os

def finished(cmd):
    if cmd.writes is not None:
        cmd.tags["writes"] = json.dumps([os.path.relpath(p, cmd.build_directory) for p in cmd.writes])
"#;

#[test]
fn hook_writes_are_the_paths_the_dag_counts_as_written() {
    let t = Test::new()
        .file("hooks.py", HOOKS)
        .makefile("all:\n\tmkdir d && ln -s d sym && echo x > f && ln f hard\n")
        .args(["make", "--hooks", "hooks.py"]);
    t.run().success();

    let db = t.db();
    let tagged = rows(
        &db,
        "SELECT t.command_id, t.value, c.build_id FROM tags t JOIN command c ON c.id = t.command_id
         WHERE t.name = 'writes'",
    );
    assert_eq!(tagged.len(), 1, "one traced command: {tagged:?}");
    let (command, build): (i64, i64) =
        (tagged[0][0].parse().unwrap(), tagged[0][2].parse().unwrap());
    let writes: Vec<String> = serde_json::from_str(&tagged[0][1]).unwrap();
    assert_eq!(writes, ["d", "f", "hard", "sym"]);

    let recorded = rows(
        &db,
        &format!(
            "SELECT DISTINCT substr(path, length((SELECT directory FROM builds WHERE id = {build})) + 2), kind
             FROM file_accesses WHERE command_id = {command}"
        ),
    );
    let mut written: Vec<&str> = recorded
        .iter()
        .filter(|r| AccessKind::from_name(&r[1]).is_some_and(AccessKind::is_write))
        .map(|r| r[0].as_str())
        .collect();
    written.sort_unstable();
    written.dedup();
    assert_eq!(written, writes, "the record's writes: {recorded:?}");

    let store = Store::open_read(&t.path().join(".makescope/db.sqlite")).unwrap();
    let directory: String = db
        .query_row("SELECT directory FROM builds WHERE id = ?1", [build], |r| {
            r.get(0)
        })
        .unwrap();
    for path in &writes {
        let absolute = format!("{directory}/{path}");
        assert_eq!(
            store.writers_of(build, absolute.as_bytes()).unwrap(),
            [command],
            "{absolute}"
        );
    }
}
