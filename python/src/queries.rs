//! Queries the package needs that `Store`'s read API does not have (yet). They use only
//! the store's connection and the schema, so each can move into `src/store/read.rs`
//! as is. Byte strings are stored as TEXT when they are UTF-8 and as BLOB otherwise
//! (the writer's `Bytes`), so parameters go through `Bytes` and columns through
//! [`bytes`].

use std::collections::{BTreeSet, VecDeque};

use makescope::access::AccessKind;
use makescope::store::{decode_ids, AccessRow, Bytes, ProcessRow, Store, StoreError, IN_SET};
use rusqlite::{params, Row};

pub trait Queries {
    /// Every file access of the build's commands (probes included), by command then
    /// kind then path.
    fn build_accesses(&self, build_id: i64) -> Result<Vec<AccessRow>, StoreError>;
    /// Every process of the build's commands, in the order seen.
    fn build_processes(&self, build_id: i64) -> Result<Vec<ProcessRow>, StoreError>;
    /// Every tag of a build: `(command_id, name, value)`.
    fn build_tags(&self, build_id: i64) -> Result<Vec<(i64, String, Option<String>)>, StoreError>;
    /// The commands of a build that ran a test case.
    fn test_commands(&self, build_id: i64) -> Result<Vec<i64>, StoreError>;
    /// The commands of a build that read, executed, stat'ed, listed or probed a path.
    fn readers_of(&self, build_id: i64, path: &[u8]) -> Result<Vec<i64>, StoreError>;
    /// What a change to `path` reaches: its readers, then everything downstream of them
    /// in the command DAG (the `edge` table), each once, by id.
    fn affected(&self, build_id: i64, path: &[u8]) -> Result<Vec<i64>, StoreError>;
}

fn rows<T>(
    store: &Store,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let wrap = |error| StoreError::Sqlite {
        path: store.path().to_owned(),
        error,
    };
    let mut st = store.connection().prepare_cached(sql).map_err(wrap)?;
    let mapped = st.query_map(params, f).map_err(wrap)?;
    mapped.collect::<rusqlite::Result<Vec<T>>>().map_err(wrap)
}

impl Queries for Store {
    fn build_accesses(&self, build_id: i64) -> Result<Vec<AccessRow>, StoreError> {
        let owners: Vec<i64> = rows(
            self,
            "SELECT command_id FROM access WHERE build_id = ?1 AND command_id IS NOT NULL
             UNION SELECT command_id FROM access_set WHERE build_id = ?1 AND command_id IS NOT NULL
             UNION SELECT command_id FROM probe_set WHERE build_id = ?1 AND command_id IS NOT NULL
             ORDER BY 1",
            [build_id],
            |r| r.get(0),
        )?;
        let mut all = Vec::new();
        for id in owners {
            all.extend(self.accesses(id)?);
        }
        Ok(all)
    }

    fn build_processes(&self, build_id: i64) -> Result<Vec<ProcessRow>, StoreError> {
        let owners: Vec<i64> = rows(
            self,
            "SELECT DISTINCT command_id FROM process WHERE build_id = ?1 AND command_id IS NOT NULL ORDER BY 1",
            [build_id],
            |r| r.get(0),
        )?;
        let mut all = Vec::new();
        for id in owners {
            all.extend(self.processes(id)?);
        }
        all.sort_by_key(|p| p.id);
        Ok(all)
    }

    fn build_tags(&self, build_id: i64) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        rows(
            self,
            "SELECT t.command_id, t.name, t.value FROM tag t JOIN command c ON c.id = t.command_id
             WHERE c.build_id = ?1 ORDER BY t.command_id, t.rowid",
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    fn test_commands(&self, build_id: i64) -> Result<Vec<i64>, StoreError> {
        rows(
            self,
            "SELECT id FROM command WHERE build_id = ?1 AND test_name IS NOT NULL ORDER BY id",
            [build_id],
            |r| r.get(0),
        )
    }

    fn readers_of(&self, build_id: i64, path: &[u8]) -> Result<Vec<i64>, StoreError> {
        // The kinds `Store::compute_edges` draws edges into (`AccessKind::is_read`),
        // wherever the store keeps them: execs and listings are rows, reads and stats
        // are in `access_set`, probes in `probe_set`.
        let mut readers: BTreeSet<i64> = rows(
            self,
            &format!(
                "SELECT a.command_id FROM access a JOIN path p ON p.id = a.path_id
                 WHERE a.build_id = ?1 AND p.path = ?2 AND a.command_id IS NOT NULL
                   AND a.kind IN ({})
                 UNION
                 SELECT s.command_id FROM path p CROSS JOIN access_set s CROSS JOIN json_each(s.accesses) e
                 WHERE p.path = ?2 AND s.build_id = ?1 AND s.command_id IS NOT NULL AND {IN_SET}",
                AccessKind::sql_ids(AccessKind::is_read)
            ),
            params![build_id, Bytes(path)],
            |r| r.get(0),
        )?
        .into_iter()
        .collect();
        let path_id: Option<i64> = rows(
            self,
            "SELECT id FROM path WHERE path = ?1",
            params![Bytes(path)],
            |r| r.get(0),
        )?
        .pop();
        if let Some(path_id) = path_id {
            let sets: Vec<(i64, Vec<u8>)> = rows(
                self,
                "SELECT command_id, path_ids FROM probe_set WHERE build_id = ?1 AND command_id IS NOT NULL",
                [build_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            readers.extend(
                sets.into_iter()
                    .filter(|(_, ids)| decode_ids(ids).contains(&path_id))
                    .map(|(c, _)| c),
            );
        }
        Ok(readers.into_iter().collect())
    }

    fn affected(&self, build_id: i64, path: &[u8]) -> Result<Vec<i64>, StoreError> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<i64> = self.readers_of(build_id, path)?.into();
        while let Some(id) = queue.pop_front() {
            if seen.insert(id) {
                queue.extend(
                    self.dependents(id)?
                        .into_iter()
                        .map(|(to, _)| to)
                        .filter(|to| !seen.contains(to)),
                );
            }
        }
        Ok(seen.into_iter().collect())
    }
}
