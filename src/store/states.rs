//! File states (`schema_file_state.sql`): what a build left each file it touched like,
//! and `makescope rebuild`'s re-runs. This side only reads and writes rows; taking a
//! state (stat, hash) is `rebuild::states`.

use std::collections::HashMap;

use rusqlite::params;

use super::{decode_access_set, decode_ids, get_bytes, Store, StoreError};
use crate::access::AccessKind;

/// A file as a stat and a hash see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    pub size: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: i64,
    /// BLAKE3 of the content, its first 16 bytes.
    pub hash: [u8; 16],
}

impl FileState {
    /// Whether a stat says the file is as it was (git's index rule): size, mtime,
    /// ctime and inode all equal. A `touch` or a rewrite with the same bytes changes
    /// the times; the hash then tells.
    pub fn same_stat(&self, other: &FileState) -> bool {
        self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns == other.ctime_ns
            && self.inode == other.inode
    }
}

/// One path's state in a build: `None`, it did not exist when the build ended.
pub type PathState = (i64, Option<FileState>);

/// What taking a build's states cost ([`Store::write_file_states`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct StatesTaken {
    pub taken_ns: i64,
    /// Paths that existed (rows with a state).
    pub files: i64,
    /// Files read and hashed; the others reused an earlier build's hash.
    pub hashed: i64,
    pub seconds: f64,
}

/// Path kinds whose state a build keeps: the read set, and the rows of execs and writes.
fn state_kinds(kind: AccessKind) -> bool {
    kind == AccessKind::Exec || (kind.is_write() && kind != AccessKind::Mkdir)
}

impl Store {
    /// Every path a command of the build read, executed, wrote or probed, with its
    /// name and whether a command probed it (looked for it and found it missing), by id.
    #[allow(clippy::type_complexity)]
    pub fn touched_paths(&self, build_id: i64) -> Result<Vec<(i64, Vec<u8>, bool)>, StoreError> {
        let mut ids: rustc_hash::FxHashSet<i64> = Default::default();
        ids.extend(self.rows(
            &format!(
                "SELECT DISTINCT path_id FROM access WHERE build_id = ?1 AND command_id IS NOT NULL AND kind IN ({})",
                AccessKind::sql_ids(state_kinds)
            ),
            [build_id],
            |r| r.get::<_, i64>(0),
        )?);
        for json in self.rows(
            "SELECT accesses FROM access_set WHERE build_id = ?1 AND command_id IS NOT NULL AND kind = ?2",
            params![build_id, AccessKind::Read.id()],
            |r| r.get::<_, String>(0),
        )? {
            let entries = decode_access_set(&json).map_err(|e| self.corrupt(e))?;
            ids.extend(entries.into_iter().map(|e| e.0));
        }
        let mut probed: rustc_hash::FxHashSet<i64> = Default::default();
        for blob in self.rows(
            "SELECT path_ids FROM probe_set WHERE build_id = ?1 AND command_id IS NOT NULL",
            [build_id],
            |r| r.get::<_, Vec<u8>>(0),
        )? {
            probed.extend(decode_ids(&blob));
        }
        let mut paths = Vec::with_capacity(ids.len());
        let mut st = self
            .conn
            .prepare("SELECT id, path FROM path")
            .map_err(|e| self.sqlite(e))?;
        let mut rows = st.query([]).map_err(|e| self.sqlite(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sqlite(e))? {
            let id: i64 = row.get(0).map_err(|e| self.sqlite(e))?;
            let probe = probed.contains(&id);
            if probe || ids.contains(&id) {
                paths.push((
                    id,
                    get_bytes(row, 1)
                        .map_err(|e| self.sqlite(e))?
                        .unwrap_or_default(),
                    probe,
                ));
            }
        }
        paths.sort_unstable();
        Ok(paths)
    }

    /// The newest build before `build_id` whose states were taken, and those states
    /// of existing files, by path id: what a new build's states may reuse hashes from.
    pub fn previous_states(&self, build_id: i64) -> Result<HashMap<i64, FileState>, StoreError> {
        let previous: Option<i64> = self
            .conn
            .query_row(
                "SELECT max(build_id) FROM file_state_taken WHERE build_id < ?1",
                [build_id],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        let Some(previous) = previous else {
            return Ok(HashMap::new());
        };
        Ok(self
            .states_rows(previous, false)?
            .into_iter()
            .filter_map(|(id, _, state)| Some((id, state?)))
            .collect())
    }

    /// A build's file states: `None` when none were taken (an untraced build, or one
    /// an older makescope recorded). With `names`, each path's name too (else empty).
    #[allow(clippy::type_complexity)]
    pub fn file_states(
        &self,
        build_id: i64,
        names: bool,
    ) -> Result<Option<Vec<(i64, Vec<u8>, Option<FileState>)>>, StoreError> {
        let taken: Option<i64> = self
            .conn
            .query_row(
                "SELECT count(*) FROM file_state_taken WHERE build_id = ?1",
                [build_id],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        if taken.unwrap_or(0) == 0 {
            return Ok(None);
        }
        self.states_rows(build_id, names).map(Some)
    }

    #[allow(clippy::type_complexity)]
    fn states_rows(
        &self,
        build_id: i64,
        names: bool,
    ) -> Result<Vec<(i64, Vec<u8>, Option<FileState>)>, StoreError> {
        let sql = if names {
            "SELECT f.path_id, f.size, f.mtime_ns, f.ctime_ns, f.inode, f.hash, p.path
             FROM file_state f JOIN path p ON p.id = f.path_id WHERE f.build_id = ?1"
        } else {
            "SELECT path_id, size, mtime_ns, ctime_ns, inode, hash FROM file_state WHERE build_id = ?1"
        };
        self.rows(sql, [build_id], |r| {
            let size: Option<i64> = r.get(1)?;
            let state = match size {
                None => None,
                Some(size) => {
                    let hash: Vec<u8> = r.get(5)?;
                    let mut bytes = [0u8; 16];
                    let n = hash.len().min(16);
                    bytes[..n].copy_from_slice(&hash[..n]);
                    Some(FileState {
                        size,
                        mtime_ns: r.get(2)?,
                        ctime_ns: r.get(3)?,
                        inode: r.get(4)?,
                        hash: bytes,
                    })
                }
            };
            let name = if names {
                get_bytes(r, 6)?.unwrap_or_default()
            } else {
                Vec::new()
            };
            Ok((r.get(0)?, name, state))
        })
    }

    /// Write (or rewrite) states of a build's paths, in one transaction; with `taken`,
    /// also say that the build's states were taken and what it cost. `row_taken_ns`:
    /// when these rows were taken, if not when the build's were (a rebuild's rewrite).
    pub fn write_file_states(
        &mut self,
        build_id: i64,
        states: &[PathState],
        taken: Option<StatesTaken>,
        row_taken_ns: Option<i64>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| super::write_error(&path, e))?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO file_state (build_id, path_id, size, mtime_ns, ctime_ns, inode, hash, taken_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(|e| super::write_error(&path, e))?;
            for (id, state) in states {
                let result = match state {
                    Some(s) => st.execute(params![
                        build_id,
                        id,
                        s.size,
                        s.mtime_ns,
                        s.ctime_ns,
                        s.inode,
                        &s.hash[..],
                        row_taken_ns
                    ]),
                    None => st.execute(params![
                        build_id,
                        id,
                        None::<i64>,
                        None::<i64>,
                        None::<i64>,
                        None::<i64>,
                        None::<Vec<u8>>,
                        row_taken_ns
                    ]),
                };
                result.map_err(|e| super::write_error(&path, e))?;
            }
            if let Some(t) = taken {
                tx.execute(
                    "INSERT OR REPLACE INTO file_state_taken (build_id, taken_ns, files, hashed, seconds) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![build_id, t.taken_ns, t.files, t.hashed, t.seconds],
                )
                .map_err(|e| super::write_error(&path, e))?;
            }
        }
        tx.commit().map_err(|e| super::write_error(&path, e))
    }

    /// The last re-run of each command of a build that `rebuild` re-ran: its exit code
    /// (`None`: killed by a signal), by command id.
    pub fn reruns(&self, build_id: i64) -> Result<HashMap<i64, Option<i32>>, StoreError> {
        Ok(self
            .rows(
                "SELECT command_id, exit_code FROM rerun WHERE build_id = ?1",
                [build_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .collect())
    }

    /// Say that `rebuild` re-ran these commands of a build and how each ended, and
    /// which recorded run (a replay's command) was a successful traced re-run of it;
    /// `None` keeps the one named before.
    pub fn write_reruns(
        &mut self,
        build_id: i64,
        ended_ns: i64,
        reruns: &[Rerun],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| super::write_error(&path, e))?;
        for rerun in reruns {
            tx.execute(
                "INSERT INTO rerun (command_id, build_id, ended_ns, exit_code, run_command_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (command_id) DO UPDATE SET ended_ns = excluded.ended_ns,
                   exit_code = excluded.exit_code,
                   run_command_id = coalesce(excluded.run_command_id, run_command_id)",
                params![
                    rerun.command_id,
                    build_id,
                    ended_ns,
                    rerun.exit_code,
                    rerun.run
                ],
            )
            .map_err(|e| super::write_error(&path, e))?;
        }
        tx.commit().map_err(|e| super::write_error(&path, e))
    }

    /// Each leaf command's file accesses as the out-of-date query needs them: what it
    /// read or executed, what it wrote, what it probed and found missing (path ids).
    pub fn command_files(&self, build_id: i64) -> Result<HashMap<i64, CommandFiles>, StoreError> {
        self.files_where("build_id = ?1 AND command_id IS NOT NULL", build_id)
    }

    /// [`Store::command_files`] of one command.
    pub fn files_of_command(&self, command_id: i64) -> Result<CommandFiles, StoreError> {
        Ok(self
            .files_where("command_id = ?1", command_id)?
            .remove(&command_id)
            .unwrap_or_default())
    }

    /// The commands of a build that `rebuild` re-ran traced and successfully, each with
    /// the files of its newest such run (what the next query uses instead of the
    /// build's), by the recorded command's id.
    pub fn rerun_files(&self, build_id: i64) -> Result<HashMap<i64, CommandFiles>, StoreError> {
        let runs: Vec<(i64, i64)> = self.rows(
            "SELECT command_id, run_command_id FROM rerun WHERE build_id = ?1 AND run_command_id IS NOT NULL",
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut files = HashMap::with_capacity(runs.len());
        for (command, run) in runs {
            files.insert(command, self.files_of_command(run)?);
        }
        Ok(files)
    }

    /// The newest run of each of `commands` recorded as a replay of it that started at
    /// or after `since_ns`, by the recorded command's id.
    pub fn replays_since(
        &self,
        commands: &[i64],
        since_ns: i64,
    ) -> Result<HashMap<i64, i64>, StoreError> {
        let mut runs = HashMap::new();
        let mut st = self
            .conn
            .prepare_cached("SELECT max(id) FROM command WHERE replay_of = ?1 AND started_ns >= ?2")
            .map_err(|e| self.sqlite(e))?;
        for &command in commands {
            let run: Option<i64> = st
                .query_row(params![command, since_ns], |r| r.get(0))
                .map_err(|e| self.sqlite(e))?;
            if let Some(run) = run {
                runs.insert(command, run);
            }
        }
        Ok(runs)
    }

    /// The paths of a build whose state is "racily clean": the file's mtime is not older
    /// than `tick_ns` before the state was taken, so an edit in the same timestamp tick
    /// could have left its stat as recorded. Their hashes must not be reused.
    pub fn racy_states(
        &self,
        build_id: i64,
        tick_ns: i64,
    ) -> Result<rustc_hash::FxHashSet<i64>, StoreError> {
        Ok(self
            .rows(
                "SELECT f.path_id FROM file_state f JOIN file_state_taken t ON t.build_id = f.build_id
                 WHERE f.build_id = ?1 AND f.mtime_ns >= coalesce(f.taken_ns, t.taken_ns) - ?2",
                params![build_id, tick_ns],
                |r| r.get::<_, i64>(0),
            )?
            .into_iter()
            .collect())
    }

    /// Accesses of the commands `filter` (an SQL condition on `build_id` and
    /// `command_id`, `?1` bound to `value`) selects, by command.
    fn files_where(
        &self,
        filter: &str,
        value: i64,
    ) -> Result<HashMap<i64, CommandFiles>, StoreError> {
        let mut files: HashMap<i64, CommandFiles> = HashMap::new();
        for (command, path, kind) in self.rows(
            &format!(
                "SELECT command_id, path_id, kind FROM access WHERE {filter} AND kind IN ({})",
                AccessKind::sql_ids(state_kinds)
            ),
            [value],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, u8>(2)?)),
        )? {
            let entry = files.entry(command).or_default();
            if kind == AccessKind::Exec.id() {
                entry.reads.push(path);
            } else {
                entry.writes.push(path);
            }
        }
        for (command, json) in self.rows(
            &format!("SELECT command_id, accesses FROM access_set WHERE {filter} AND kind = ?2"),
            params![value, AccessKind::Read.id()],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )? {
            let entries = decode_access_set(&json).map_err(|e| self.corrupt(e))?;
            files
                .entry(command)
                .or_default()
                .reads
                .extend(entries.into_iter().map(|e| e.0));
        }
        for (command, blob) in self.rows(
            &format!("SELECT command_id, path_ids FROM probe_set WHERE {filter}"),
            [value],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )? {
            files
                .entry(command)
                .or_default()
                .probes
                .extend(decode_ids(&blob));
        }
        for entry in files.values_mut() {
            for list in [&mut entry.reads, &mut entry.writes, &mut entry.probes] {
                list.sort_unstable();
                list.dedup();
            }
        }
        Ok(files)
    }

    /// Path names by id, for the ids given.
    pub fn path_names(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<u8>>, StoreError> {
        let mut names = HashMap::with_capacity(ids.len());
        let mut st = self
            .conn
            .prepare_cached("SELECT path FROM path WHERE id = ?1")
            .map_err(|e| self.sqlite(e))?;
        for &id in ids {
            let name = st
                .query_row([id], |r| get_bytes(r, 0))
                .map_err(|e| self.sqlite(e))?
                .unwrap_or_default();
            names.insert(id, name);
        }
        Ok(names)
    }
}

/// A re-run of a recorded command ([`Store::write_reruns`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rerun {
    pub command_id: i64,
    /// Its exit code; `None`: killed by a signal.
    pub exit_code: Option<i32>,
    /// The recorded run (a replay's command) when it was traced and succeeded.
    pub run: Option<i64>,
}

/// One command's files, as path ids, sorted ([`Store::command_files`]).
#[derive(Debug, Clone, Default)]
pub struct CommandFiles {
    /// Read or executed.
    pub reads: Vec<i64>,
    /// Written, created, truncated, appended to, renamed into place, linked.
    pub writes: Vec<i64>,
    /// Looked for and found missing.
    pub probes: Vec<i64>,
}

impl Store {
    /// How many leaf commands of a build did not end well and were not re-run well
    /// since, or were re-run and failed: each is out of date by itself.
    pub fn unsettled_commands(&self, build_id: i64) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM command c LEFT JOIN rerun r ON r.command_id = c.id
                 WHERE c.build_id = ?1 AND c.traced != 2
                   AND (CASE WHEN r.command_id IS NULL THEN c.state != 'ok' ELSE r.exit_code IS NOT 0 END)",
                [build_id],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))
    }

    /// The (make, job) recipes of a build that run a sub-make on some line.
    pub fn submake_jobs(&self, build_id: i64) -> Result<Vec<(Option<i64>, i64)>, StoreError> {
        self.rows(
            "SELECT DISTINCT make_id, job FROM command WHERE build_id = ?1 AND traced = 2",
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }
}
