//! Queries the package needs that `Store`'s read API does not have (yet). They use only
//! the store's connection and the schema, so each can move into `src/store/read.rs`
//! as is. Byte strings are stored as TEXT when they are UTF-8 and as BLOB otherwise
//! (the writer's `Bytes`), so parameters go through `Bytes` and columns through
//! [`bytes`].

use std::collections::{BTreeSet, VecDeque};

use makescope::store::{AccessRow, Bytes, ProcessRow, Store, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{params, Row};

/// Access kinds through which a command depends on a path's content or existence: the
/// same ones `Store::compute_edges` draws edges for (read, exec, stat, list, probe).
const READ_KINDS: &str = "1, 6, 7, 8, 9";

pub trait Queries {
    /// Every file access of a build, by command then kind then path.
    fn build_accesses(&self, build_id: i64) -> Result<Vec<AccessRow>, StoreError>;
    /// Every process of a build, in the order seen.
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
    let wrap = |source| StoreError::Sqlite {
        path: store.path().to_owned(),
        source,
    };
    let mut st = store.connection().prepare_cached(sql).map_err(wrap)?;
    let mapped = st.query_map(params, f).map_err(wrap)?;
    mapped.collect::<rusqlite::Result<Vec<T>>>().map_err(wrap)
}

/// A TEXT-or-BLOB column as bytes (as the store's own `get_bytes`).
fn bytes(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Vec<u8>>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
        ValueRef::Integer(n) => Some(n.to_string().into_bytes()),
        ValueRef::Real(n) => Some(n.to_string().into_bytes()),
    })
}

fn split(bytes: Option<Vec<u8>>) -> Vec<Vec<u8>> {
    makescope::protocol::split_nul(&bytes.unwrap_or_default())
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

impl Queries for Store {
    fn build_accesses(&self, build_id: i64) -> Result<Vec<AccessRow>, StoreError> {
        rows(
            self,
            "SELECT a.command_id, a.make_id, p.path, k.name, a.count, a.process_id
             FROM access a JOIN path p ON p.id = a.path_id JOIN access_kind k ON k.id = a.kind
             WHERE a.build_id = ?1 ORDER BY a.command_id, a.kind, p.path",
            [build_id],
            |r| {
                Ok(AccessRow {
                    command_id: r.get(0)?,
                    make_id: r.get(1)?,
                    path: bytes(r, 2)?.unwrap_or_default(),
                    kind: r.get(3)?,
                    count: r.get(4)?,
                    process_id: r.get(5)?,
                })
            },
        )
    }

    fn build_processes(&self, build_id: i64) -> Result<Vec<ProcessRow>, StoreError> {
        rows(
            self,
            "SELECT id, command_id, make_id, pid, parent_pid, exe, argv, cwd, started_ns, ended_ns, exit_code
             FROM process WHERE build_id = ?1 ORDER BY id",
            [build_id],
            |r| {
                Ok(ProcessRow {
                    id: r.get(0)?,
                    command_id: r.get(1)?,
                    make_id: r.get(2)?,
                    pid: r.get(3)?,
                    parent_pid: r.get(4)?,
                    exe: bytes(r, 5)?,
                    argv: split(bytes(r, 6)?),
                    cwd: bytes(r, 7)?,
                    started_ns: r.get(8)?,
                    ended_ns: r.get(9)?,
                    exit_code: r.get(10)?,
                })
            },
        )
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
        rows(
            self,
            &format!(
                "SELECT DISTINCT a.command_id FROM access a JOIN path p ON p.id = a.path_id
                 WHERE a.build_id = ?1 AND p.path = ?2 AND a.command_id IS NOT NULL
                   AND a.kind IN ({READ_KINDS}) ORDER BY a.command_id"
            ),
            params![build_id, Bytes(path)],
            |r| r.get(0),
        )
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
