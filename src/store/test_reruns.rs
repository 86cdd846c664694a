//! Tests' results when `makescope test` ran them again (`schema_test_rerun.sql`): one
//! row per test and re-run, hanging off the replay's command (whose `replay_of` names
//! the build's command). This side only reads and writes rows.

use std::collections::HashMap;

use rusqlite::params;

use super::{Store, StoreError};

/// One test's result in one re-run.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRerun {
    /// The replay's command that ran it.
    pub command_id: i64,
    /// The build's command it re-ran.
    pub replay_of: i64,
    pub name: String,
    pub result: String,
    /// What `tests` listed for it before this run.
    pub before: String,
    pub note: Option<String>,
    pub seconds: Option<f64>,
}

impl Store {
    /// The newest re-run of each test of a build's commands, by (the build's command,
    /// test name).
    pub fn test_reruns(
        &self,
        build_id: i64,
    ) -> Result<HashMap<(i64, String), TestRerun>, StoreError> {
        let rows = self.rows(
            "SELECT t.command_id, c.replay_of, t.name, t.result, t.before, t.note, t.seconds
             FROM test_rerun t JOIN command c ON c.id = t.command_id
             JOIN command o ON o.id = c.replay_of
             WHERE o.build_id = ?1 ORDER BY t.command_id",
            [build_id],
            |r| {
                Ok(TestRerun {
                    command_id: r.get(0)?,
                    replay_of: r.get(1)?,
                    name: r.get(2)?,
                    result: r.get(3)?,
                    before: r.get(4)?,
                    note: r.get(5)?,
                    seconds: r.get(6)?,
                })
            },
        )?;
        // Oldest first: the newest of each test is the one left.
        Ok(rows
            .into_iter()
            .map(|t| ((t.replay_of, t.name.clone()), t))
            .collect())
    }

    /// Keep these results of a re-run (the rows' `replay_of` is not written: the
    /// replay's command already names what it re-ran).
    pub fn write_test_reruns(&mut self, rows: &[TestRerun]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| super::write_error(&path, e))?;
        for t in rows {
            tx.execute(
                "INSERT OR REPLACE INTO test_rerun (command_id, name, result, before, note, seconds)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.command_id, t.name, t.result, t.before, t.note, t.seconds],
            )
            .map_err(|e| super::write_error(&path, e))?;
        }
        tx.commit().map_err(|e| super::write_error(&path, e))
    }
}
