//! What the read-only views (`stats`, `export`, `report`, `coverage`: `src/views`) read
//! in bulk: every command's timing without its environment or output, and which paths
//! a whole build opened, searched or listed, as path ids, without expanding a row per
//! access. A full glibc record has ~14,000 commands and ~2 million read entries, and
//! each view must answer in under two seconds.
//!
//! What it must never do: write the record.

use rusqlite::params;

use super::{get_bytes, Store, StoreError};
use crate::access::AccessKind;

/// The path ids a build used: opened to read or executed; and the ones it looked for
/// without finding (probes).
#[derive(Debug, Clone, Default)]
pub struct PathUse {
    pub opened: Vec<i64>,
    pub searched: Vec<i64>,
}

impl Store {
    /// The (writer, reader, path id) edges of a build's DAG.
    pub fn edges_with_paths(&self, build_id: i64) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        self.rows(
            "SELECT from_command_id, to_command_id, path_id FROM edge WHERE build_id = ?1",
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// The paths with these ids, in the order asked (empty for an unknown id). Many ids
    /// are read in one scan of the table rather than a look-up each.
    pub fn paths_in_order(&self, ids: &[i64]) -> Result<Vec<Vec<u8>>, StoreError> {
        if ids.len() > 5_000 {
            let mut sorted: Vec<i64> = ids.to_vec();
            sorted.sort_unstable();
            let mut found: std::collections::HashMap<i64, Vec<u8>> =
                std::collections::HashMap::with_capacity(ids.len());
            let mut st = self
                .conn
                .prepare_cached("SELECT id, path FROM path")
                .map_err(|e| self.sqlite(e))?;
            let mut rows = st.query([]).map_err(|e| self.sqlite(e))?;
            while let Some(row) = rows.next().map_err(|e| self.sqlite(e))? {
                let id: i64 = row.get(0).map_err(|e| self.sqlite(e))?;
                if sorted.binary_search(&id).is_ok() {
                    found.insert(
                        id,
                        get_bytes(row, 1)
                            .map_err(|e| self.sqlite(e))?
                            .unwrap_or_default(),
                    );
                }
            }
            return Ok(ids
                .iter()
                .map(|id| found.get(id).cloned().unwrap_or_default())
                .collect());
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT path FROM path WHERE id = ?1")
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let path: Option<Vec<u8>> = st
                .query_row([id], |r| get_bytes(r, 0))
                .map_err(|e| self.sqlite(e))?;
            out.push(path.unwrap_or_default());
        }
        Ok(out)
    }

    /// Every path id a build's commands and makes opened to read or executed, and every
    /// one they probed; each list sorted and distinct. (A full glibc build probes ~24
    /// million times, ~150,000 distinct paths: ids are marked in a bit set as they are
    /// decoded, never collected.)
    pub fn path_use(&self, build_id: i64) -> Result<PathUse, StoreError> {
        let most: Option<i64> = self
            .rows("SELECT max(id) FROM path", [], |r| r.get(0))?
            .pop()
            .flatten();
        let mut opened = IdSet::new(most.unwrap_or(0));
        let mut searched = IdSet::new(most.unwrap_or(0));
        let direct: Vec<i64> = self.rows(
            "SELECT DISTINCT path_id FROM access WHERE build_id = ?1 AND kind IN (?2, ?3)",
            params![build_id, AccessKind::Read as i64, AccessKind::Exec as i64],
            |r| r.get(0),
        )?;
        direct.into_iter().for_each(|id| opened.insert(id));
        let mut st = self
            .conn
            .prepare_cached("SELECT accesses FROM access_set WHERE build_id = ?1 AND kind = ?2")
            .map_err(|e| self.sqlite(e))?;
        let mut rows = st
            .query(params![build_id, AccessKind::Read as i64])
            .map_err(|e| self.sqlite(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sqlite(e))? {
            let set = row.get_ref(0).map_err(|e| self.sqlite(e))?;
            set_path_ids(set.as_bytes().unwrap_or_default(), |id| opened.insert(id));
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT path_ids FROM probe_set WHERE build_id = ?1")
            .map_err(|e| self.sqlite(e))?;
        let mut rows = st.query([build_id]).map_err(|e| self.sqlite(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sqlite(e))? {
            let set = row.get_ref(0).map_err(|e| self.sqlite(e))?;
            let bytes = set.as_blob_or_null().ok().flatten().unwrap_or_default();
            super::decode_ids(bytes)
                .into_iter()
                .for_each(|id| searched.insert(id));
        }
        Ok(PathUse {
            opened: opened.ids(),
            searched: searched.ids(),
        })
    }
}

/// A set of path ids, one bit each.
struct IdSet(Vec<u64>);

impl IdSet {
    fn new(most: i64) -> IdSet {
        IdSet(vec![0; (most.max(0) as usize) / 64 + 1])
    }

    fn insert(&mut self, id: i64) {
        let Ok(id) = usize::try_from(id) else { return };
        if id / 64 >= self.0.len() {
            self.0.resize(id / 64 + 1, 0);
        }
        self.0[id / 64] |= 1 << (id % 64);
    }

    /// The ids, in order.
    fn ids(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for (i, &word) in self.0.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let bit = word.trailing_zeros() as usize;
                out.push((i * 64 + bit) as i64);
                word &= word - 1;
            }
        }
        out
    }
}

/// The path ids of an `access_set`'s compact JSON, `[[id,count,process],...]`: the
/// number after each `[` that opens an entry. (Parsing it as JSON costs a second on
/// glibc's two million entries; this is the writer's own compact form.)
fn set_path_ids(json: &[u8], mut each: impl FnMut(i64)) {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'[' && json.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let mut value = 0i64;
            i += 1;
            while let Some(d) = json.get(i).filter(|d| d.is_ascii_digit()) {
                value = value * 10 + i64::from(d - b'0');
                i += 1;
            }
            each(value);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_path_ids_reads_each_entrys_first_number() {
        let mut ids = Vec::new();
        set_path_ids(b"[[3,1,null],[17,2,5],[120,1,9]]", |id| ids.push(id));
        assert_eq!(ids, vec![3, 17, 120]);
        let mut entries = vec![(4, 1, None), (9, 3, Some(2))];
        let mut again = Vec::new();
        let json = crate::store::encode_access_set(&mut entries);
        set_path_ids(json.as_bytes(), |id| again.push(id));
        assert_eq!(again, vec![4, 9]);
    }

    #[test]
    fn id_sets_give_their_ids_back_in_order_once() {
        let mut set = IdSet::new(10);
        for id in [70, 3, 3, 64, 0, 200, -1] {
            set.insert(id);
        }
        assert_eq!(set.ids(), vec![0, 3, 64, 70, 200]);
    }
}
