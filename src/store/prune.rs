//! Removing whole builds from the record (`makescope gc`).
//!
//! A build is every row that names it: any table with a `build_id` column, and rows of
//! tables that hang off its commands (a `command_id` column and no `build_id`, such as
//! `tag`). The tables are found in the schema itself, so a table a later migration adds
//! is pruned with the rest without this file knowing it. Shared rows (an `environment`
//! no command uses any more) go too; interned `path` rows stay (they are small, and the
//! access sets name them inside their JSON, which SQL cannot see).
//!
//! Everything is one transaction: a build is removed whole or not at all.

use rusqlite::params_from_iter;

use super::{Store, StoreError};

impl Store {
    /// Remove these builds and everything recorded for them.
    pub fn delete_builds(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| super::write_error(&path, e))?;
        let tables: Vec<(String, bool, bool)> = {
            let names: Vec<String> = tx
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                .map_err(|e| super::classify(&path, e))?;
            let mut tables = Vec::new();
            for name in names {
                let columns: Vec<String> = tx
                    .prepare(&format!("SELECT name FROM pragma_table_info('{name}')"))
                    .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                    .map_err(|e| super::classify(&path, e))?;
                let has = |c: &str| columns.iter().any(|x| x == c);
                tables.push((name.clone(), has("build_id"), has("command_id")));
            }
            tables
        };
        let marks = vec!["?"; ids.len()].join(",");
        let run = |sql: String| {
            tx.execute(&sql, params_from_iter(ids.iter()))
                .map(drop)
                .map_err(|e| super::write_error(&path, e))
        };
        // Rows hanging off the builds' commands first: they find them through `command`.
        for (name, build_id, command_id) in &tables {
            if *command_id && !*build_id && name != "command" {
                run(format!(
                    "DELETE FROM {name} WHERE command_id IN (SELECT id FROM command WHERE build_id IN ({marks}))"
                ))?;
            }
        }
        for (name, build_id, _) in &tables {
            if *build_id {
                run(format!("DELETE FROM {name} WHERE build_id IN ({marks})"))?;
            }
        }
        run(format!("DELETE FROM build WHERE id IN ({marks})"))?;
        tx.execute_batch(
            "DELETE FROM environment WHERE id NOT IN
                 (SELECT environment_id FROM command WHERE environment_id IS NOT NULL)",
        )
        .map_err(|e| super::write_error(&path, e))?;
        tx.commit().map_err(|e| super::write_error(&path, e))
    }

    /// Give the space of removed rows back to the file system.
    pub fn vacuum(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(
                "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .map_err(|e| self.write_error(e))
    }

    /// Every build's id, newest first, with its state, and for a replay's run the build
    /// of the command it re-ran (`None` for a build of the project).
    pub fn build_ids(&self) -> Result<Vec<(i64, String, Option<i64>)>, StoreError> {
        self.conn
            .prepare(
                "SELECT b.id, b.state,
                        CASE WHEN b.kind = 'replay' THEN
                            (SELECT o.build_id FROM command c JOIN command o ON o.id = c.replay_of
                             WHERE c.build_id = b.id LIMIT 1)
                        END
                 FROM build b ORDER BY b.id DESC",
            )
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(|e| self.sqlite(e))
    }

    /// The dumps the record's makes name (as the plugin named them: raw).
    pub fn dump_paths(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.conn
            .prepare("SELECT DISTINCT makedb_path FROM make WHERE makedb_path IS NOT NULL")
            .and_then(|mut st| {
                st.query_map([], |r| {
                    super::get_bytes(r, 0).map(Option::unwrap_or_default)
                })?
                .collect()
            })
            .map_err(|e| self.sqlite(e))
    }
}
