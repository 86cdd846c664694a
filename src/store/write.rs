//! The writer's side: rows as the recorder produces them. Ids are assigned by the
//! recorder, so rows that refer to each other can be written in any order and in
//! batches.
//!
//! Several recorders may write one record at once (two `makescope make` in one
//! directory, or a recipe that runs `makescope make` itself): each takes its ids from
//! blocks it reserved ([`Store::reserve_ids`]), never from what the tables hold. The
//! `next_id` table says, per kind, the first id nobody has reserved; a reservation moves
//! it on inside a `BEGIN IMMEDIATE` transaction, so no two writers get one id. Blocks
//! rather than ids assigned by SQLite: the ids are what users type (`makescope show
//! 4711`), and a block keeps a build's ids contiguous however many recorders write,
//! where SQLite's would interleave them; and the event loop never asks SQLite for an id.
//! A recorder gives back the unused end of its last block when it ends
//! ([`Store::release_ids`]) if nobody reserved after it, so one build after another
//! numbers on without gaps, as a single writer always did.

use std::ops::Range;

use rusqlite::params;
use rustc_hash::FxHashMap as HashMap;

use super::{Bytes, Store, StoreError};
use crate::access::AccessKind;

/// A build about to start.
#[derive(Debug, Clone)]
pub struct NewBuild {
    pub id: i64,
    /// make's arguments, NUL-separated.
    pub argv: Vec<u8>,
    pub directory: Vec<u8>,
    pub started_ns: i64,
    pub traced: bool,
}

/// How a build ended.
#[derive(Debug, Clone)]
pub struct BuildEnd {
    pub ended_ns: i64,
    /// `complete`, `failed` or `interrupted`.
    pub state: &'static str,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub hooks_failed: bool,
}

/// A make process.
#[derive(Debug, Clone)]
pub struct NewMake {
    pub id: i64,
    pub build_id: i64,
    pub pid: i32,
    pub parent_make_id: Option<i64>,
    pub parent_command_id: Option<i64>,
    pub level: i64,
    pub directory: Vec<u8>,
    pub argv: Vec<u8>,
    pub started_ns: i64,
}

/// How a make process ended.
#[derive(Debug, Clone)]
pub struct MakeEnd {
    pub ended_ns: i64,
    pub default_goal: Vec<u8>,
    pub makefiles: Vec<u8>,
    pub makedb_path: Option<Vec<u8>>,
}

/// A recipe command that started.
#[derive(Debug, Clone)]
pub struct NewCommand {
    pub id: i64,
    pub build_id: i64,
    pub make_id: Option<i64>,
    pub job: i64,
    pub line_index: i64,
    pub target: Vec<u8>,
    pub recipe_file: Vec<u8>,
    pub recipe_line: i64,
    pub newer: Vec<u8>,
    pub target_existed: bool,
    pub directory: Vec<u8>,
    pub shell: Vec<u8>,
    pub shell_flags: Vec<u8>,
    pub command: Vec<u8>,
    /// NAME=VALUE entries, NUL-separated (stored once per distinct content).
    pub env: Vec<u8>,
    pub pid: i32,
    pub started_ns: i64,
    pub traced: bool,
    pub label: String,
}

/// How a command ended.
#[derive(Debug, Clone, Default)]
pub struct CommandEnd {
    pub ended_ns: i64,
    /// `ok`, `failed`, `killed` or `lost`.
    pub state: &'static str,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub user_us: Option<i64>,
    pub system_us: Option<i64>,
    pub max_rss_kib: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// 1: its files are complete; 0: not traced; 2: it runs a sub-make, whose own
    /// commands are traced.
    pub traced: i64,
    pub left_behind: Vec<u8>,
}

/// What hooks (or built-in rules) decided about a command.
#[derive(Debug, Clone, Default)]
pub struct CommandNotes {
    pub label: Option<String>,
    pub test_name: Option<String>,
    pub test_result: Option<String>,
    pub tags: Vec<(String, Option<String>)>,
}

/// A process of a traced command or of a make.
#[derive(Debug, Clone)]
pub struct NewProcess {
    pub id: i64,
    pub build_id: i64,
    pub command_id: Option<i64>,
    pub make_id: Option<i64>,
    pub pid: i32,
    pub parent_pid: Option<i32>,
    pub started_ns: i64,
    /// Its (last) exec, when known before the row is written.
    pub exec: Option<ProcessExec>,
    /// Its end (time, exit code), when known before the row is written.
    pub end: Option<(i64, Option<i32>)>,
}

/// What a process executed: the program, its arguments (NUL-separated) and where.
#[derive(Debug, Clone)]
pub struct ProcessExec {
    pub exe: Vec<u8>,
    pub argv: Vec<u8>,
    pub cwd: Vec<u8>,
}

/// The argv blob to store: only when not UTF-8 (the text column is exact otherwise).
fn exact_argv(argv: &[u8]) -> Option<&[u8]> {
    std::str::from_utf8(argv).is_err().then_some(argv)
}

/// Whose file access it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    Command(i64),
    Make(i64),
}

/// One deduplicated access.
#[derive(Debug, Clone)]
pub struct NewAccess {
    /// The recorder's number for the path in this build (dense, from 0; the path itself
    /// was given to [`Store::number_paths`]): the store finds the path's id by it
    /// without hashing the path again.
    pub key: u32,
    /// An [`AccessKind`] id.
    pub kind: u8,
    pub process_id: Option<i64>,
    pub first_ns: i64,
    pub count: i64,
}

/// One target of make's declared graph (table `prereq`): a target a make considered,
/// with its prerequisites as make resolved them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPrereq {
    pub target: String,
    pub phony: bool,
    pub recipe: Option<(String, u32)>,
    pub prerequisites: Vec<String>,
    pub order_only: Vec<String>,
}

/// The tables whose ids a recorder assigns itself, from blocks it reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    Build,
    Make,
    Command,
    Process,
}

impl IdKind {
    /// Its table, also its name in `next_id`.
    pub fn table(self) -> &'static str {
        match self {
            IdKind::Build => "build",
            IdKind::Make => "make",
            IdKind::Command => "command",
            IdKind::Process => "process",
        }
    }
}

impl Store {
    /// Start a batch.
    pub fn begin(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.write_error(e))
    }

    /// End a batch.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| self.write_error(e))
    }

    /// Give up a batch that failed (what it held is not recorded).
    pub fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Reserve `count` consecutive ids of `kind` that no other writer of this record
    /// will use: inside the open batch when there is one (the reservation commits with
    /// it, and no other writer can reserve while it is open), else in a transaction of
    /// its own. Past every id the table holds, too (a record written by hand).
    pub fn reserve_ids(&mut self, kind: IdKind, count: i64) -> Result<Range<i64>, StoreError> {
        let own = self.conn.is_autocommit();
        if own {
            self.begin()?;
        }
        let sql = format!(
            "INSERT INTO next_id (name, next) VALUES (?1, (SELECT coalesce(max(id), 0) + 1 FROM {t}) + ?2)
             ON CONFLICT (name) DO UPDATE SET next = max(next, (SELECT coalesce(max(id), 0) + 1 FROM {t})) + ?2
             RETURNING next",
            t = kind.table()
        );
        let reserved = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut st| st.query_row(params![kind.table(), count], |r| r.get::<_, i64>(0)))
            .map_err(|e| self.write_error(e));
        match reserved {
            Ok(end) => {
                if own {
                    self.commit()?;
                }
                Ok(end - count..end)
            }
            Err(error) => {
                if own {
                    self.rollback();
                }
                Err(error)
            }
        }
    }

    /// Give back `unused`, the end of what this writer reserved of `kind`, when nobody
    /// has reserved after it; whether it was given back.
    pub fn release_ids(&mut self, kind: IdKind, unused: Range<i64>) -> Result<bool, StoreError> {
        if unused.is_empty() {
            return Ok(false);
        }
        self.conn
            .prepare_cached("UPDATE next_id SET next = ?2 WHERE name = ?1 AND next = ?3")
            .and_then(|mut st| st.execute(params![kind.table(), unused.start, unused.end]))
            .map(|changed| changed == 1)
            .map_err(|e| self.write_error(e))
    }

    pub fn insert_build(&mut self, b: &NewBuild) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO build (id, argv, args_text, directory, started_ns, state, traced, makescope_version)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    b.id,
                    Bytes(&b.argv),
                    args_text(&b.argv),
                    Bytes(&b.directory),
                    b.started_ns,
                    b.traced,
                    env!("CARGO_PKG_VERSION")
                ])
            })
            .map(drop)
            .map_err(|e| self.write_error(e))
    }

    /// Mark build `id` a replay's run (`makescope replay`), not a build of the project.
    pub fn mark_replay_build(&mut self, id: i64) -> Result<(), StoreError> {
        self.exec(
            "UPDATE build SET kind = 'replay' WHERE id = ?1",
            params![id],
        )
    }

    /// Say that command `id` re-ran the recorded command `original`.
    pub fn mark_replay_of(&mut self, id: i64, original: i64) -> Result<(), StoreError> {
        self.exec(
            "UPDATE command SET replay_of = ?2 WHERE id = ?1",
            params![id, original],
        )
    }

    pub fn finish_build(&mut self, id: i64, end: &BuildEnd) -> Result<(), StoreError> {
        self.exec(
            "UPDATE build SET ended_ns = ?2, state = ?3, exit_code = ?4, signal = ?5, hooks_failed = ?6 WHERE id = ?1",
            params![id, end.ended_ns, end.state, end.exit_code, end.signal, end.hooks_failed],
        )
    }

    /// A make's declared graph.
    pub fn insert_prereqs(
        &mut self,
        make_id: i64,
        targets: &[NewPrereq],
    ) -> Result<(), StoreError> {
        for t in targets {
            let json =
                |names: &[String]| serde_json::to_string(names).unwrap_or_else(|_| "[]".into());
            self.exec(
                "INSERT INTO prereq (build_id, make_id, target, phony, recipe_file, recipe_line, prerequisites, order_only)
                 VALUES ((SELECT build_id FROM make WHERE id = ?1), ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    make_id,
                    t.target,
                    t.phony,
                    t.recipe.as_ref().map(|r| &r.0),
                    t.recipe.as_ref().map(|r| r.1),
                    json(&t.prerequisites),
                    json(&t.order_only)
                ],
            )?;
        }
        Ok(())
    }

    pub fn insert_make(&mut self, m: &NewMake) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO make (id, build_id, pid, parent_make_id, parent_command_id, level, directory, argv, started_ns, args_text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                m.id,
                m.build_id,
                m.pid,
                m.parent_make_id,
                m.parent_command_id,
                m.level,
                Bytes(&m.directory),
                Bytes(&m.argv),
                m.started_ns,
                args_text(&m.argv)
            ],
        )
    }

    pub fn finish_make(&mut self, id: i64, end: &MakeEnd) -> Result<(), StoreError> {
        self.exec(
            "UPDATE make SET ended_ns = ?2, default_goal = ?3, makefiles = ?4, makedb_path = ?5 WHERE id = ?1",
            params![id, end.ended_ns, Bytes(&end.default_goal), Bytes(&end.makefiles), end.makedb_path],
        )
    }

    pub fn insert_command(&mut self, c: &NewCommand) -> Result<(), StoreError> {
        let environment_id = self.environment_id(&c.env)?;
        self.exec(
            "INSERT INTO command (id, build_id, make_id, job, line_index, target, recipe_file, recipe_line, newer,
                                  target_existed, directory, shell, shell_flags, command, environment_id, pid,
                                  started_ns, state, traced, label)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, 'running', ?18, ?19)",
            params![
                c.id,
                c.build_id,
                c.make_id,
                c.job,
                c.line_index,
                Bytes(&c.target),
                Bytes(&c.recipe_file),
                c.recipe_line,
                Bytes(&c.newer),
                c.target_existed,
                Bytes(&c.directory),
                Bytes(&c.shell),
                Bytes(&c.shell_flags),
                Bytes(&c.command),
                environment_id,
                c.pid,
                c.started_ns,
                c.traced,
                c.label
            ],
        )
    }

    /// The id of an environment, storing it once.
    fn environment_id(&mut self, entries: &[u8]) -> Result<i64, StoreError> {
        use std::hash::{BuildHasher, Hasher};
        if let Some(&id) = self.environments.get(entries) {
            return Ok(id);
        }
        // 128 bits from two differently seeded SipHashes: collisions are not a concern.
        let mut hash = Vec::with_capacity(16);
        for seed in [0x6d61_6b65u64, 0x7363_6f70u64] {
            let mut hasher = std::hash::BuildHasherDefault::<
                std::collections::hash_map::DefaultHasher,
            >::default()
            .build_hasher();
            hasher.write_u64(seed);
            hasher.write(entries);
            hash.extend_from_slice(&hasher.finish().to_le_bytes());
        }
        let id = self
            .conn
            .prepare_cached("INSERT INTO environment (hash, entries) VALUES (?1, ?2) ON CONFLICT (hash) DO UPDATE SET hash = hash RETURNING id")
            .and_then(|mut st| st.query_row(params![hash, Bytes(entries)], |r| r.get(0)))
            .map_err(|e| self.write_error(e))?;
        self.environments.insert(entries.to_vec(), id);
        Ok(id)
    }

    pub fn finish_command(&mut self, id: i64, end: &CommandEnd) -> Result<(), StoreError> {
        self.exec(
            "UPDATE command SET ended_ns = ?2, state = ?3, exit_code = ?4, signal = ?5, user_us = ?6, system_us = ?7,
                                max_rss_kib = ?8, stdout = ?9, stderr = ?10, traced = ?11, left_behind = ?12
             WHERE id = ?1",
            params![
                id,
                end.ended_ns,
                end.state,
                end.exit_code,
                end.signal,
                end.user_us,
                end.system_us,
                end.max_rss_kib,
                Bytes(&end.stdout),
                Bytes(&end.stderr),
                end.traced,
                if end.left_behind.is_empty() { None } else { Some(Bytes(&end.left_behind)) }
            ],
        )
    }

    pub fn note_command(&mut self, id: i64, notes: &CommandNotes) -> Result<(), StoreError> {
        if let Some(label) = &notes.label {
            self.exec(
                "UPDATE command SET label = ?2 WHERE id = ?1",
                params![id, label],
            )?;
        }
        if notes.test_name.is_some() || notes.test_result.is_some() {
            self.exec(
                "UPDATE command SET test_name = coalesce(?2, test_name), test_result = coalesce(?3, test_result) WHERE id = ?1",
                params![id, notes.test_name, notes.test_result],
            )?;
        }
        for (name, value) in &notes.tags {
            self.exec(
                "INSERT INTO tag (command_id, name, value) VALUES (?1, ?2, ?3)",
                params![id, name, value],
            )?;
        }
        Ok(())
    }

    pub fn insert_process(&mut self, p: &NewProcess) -> Result<(), StoreError> {
        let (exe, argv, cwd, text) = match &p.exec {
            Some(e) => (
                Some(Bytes(&e.exe)),
                exact_argv(&e.argv),
                Some(Bytes(&e.cwd)),
                Some(args_text(&e.argv)),
            ),
            None => (None, None, None, None),
        };
        let (ended_ns, exit_code) = match p.end {
            Some((ended, code)) => (Some(ended), code),
            None => (None, None),
        };
        self.exec(
            "INSERT INTO process (id, build_id, command_id, make_id, pid, parent_pid, started_ns,
                                  exe, argv, cwd, args_text, ended_ns, exit_code)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                p.id,
                p.build_id,
                p.command_id,
                p.make_id,
                p.pid,
                p.parent_pid,
                p.started_ns,
                exe,
                argv,
                cwd,
                text,
                ended_ns,
                exit_code
            ],
        )
    }

    pub fn exec_process(&mut self, id: i64, exec: &ProcessExec) -> Result<(), StoreError> {
        self.exec(
            "UPDATE process SET exe = ?2, argv = ?3, cwd = ?4, args_text = ?5 WHERE id = ?1",
            params![
                id,
                Bytes(&exec.exe),
                exact_argv(&exec.argv),
                Bytes(&exec.cwd),
                args_text(&exec.argv)
            ],
        )
    }

    pub fn finish_process(
        &mut self,
        id: i64,
        ended_ns: i64,
        exit_code: Option<i32>,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE process SET ended_ns = ?2, exit_code = ?3 WHERE id = ?1",
            params![id, ended_ns, exit_code],
        )
    }

    /// The id of a path, interning it.
    pub fn path_id(&mut self, path: &[u8]) -> Result<i64, StoreError> {
        if let Some(&id) = self.paths.get(path) {
            return Ok(id);
        }
        let id = self
            .conn
            .prepare_cached("INSERT INTO path (path) VALUES (?1) ON CONFLICT (path) DO UPDATE SET path = path RETURNING id")
            .and_then(|mut st| st.query_row(params![Bytes(path)], |r| r.get(0)))
            .map_err(|e| self.write_error(e))?;
        self.paths.insert(path.to_vec(), id);
        Ok(id)
    }

    /// Paths numbered by the recorder, in order, continuing the numbers given before:
    /// accesses name them by number ([`NewAccess::key`]).
    pub fn number_paths(&mut self, names: Vec<std::sync::Arc<[u8]>>) {
        self.numbered.extend(names);
    }

    /// The id of the path the recorder numbered `key`.
    fn keyed_path_id(&mut self, key: u32) -> Result<i64, StoreError> {
        let key = key as usize;
        if let Some(&id) = self.keyed_paths.get(key) {
            if id > 0 {
                return Ok(id);
            }
        }
        let Some(name) = self.numbered.get(key).cloned() else {
            return Err(StoreError::Internal(format!(
                "an access names path number {key}, which the recorder never sent"
            )));
        };
        let id = self.path_id(&name)?;
        if self.keyed_paths.len() <= key {
            self.keyed_paths.resize(key + 1, 0);
        }
        self.keyed_paths[key] = id;
        Ok(id)
    }

    /// An owner's accesses, and the paths it probed and found missing (the recorder's
    /// numbers, in any order, repeats allowed).
    pub fn insert_accesses(
        &mut self,
        build_id: i64,
        owner: Owner,
        accesses: &[NewAccess],
        probes: &[u32],
    ) -> Result<(), StoreError> {
        let (command_id, make_id) = match owner {
            Owner::Command(id) => (Some(id), None),
            Owner::Make(id) => (None, Some(id)),
        };
        let mut probe_ids = Vec::with_capacity(probes.len());
        let mut previous = None;
        for &key in probes {
            // Runs of one path are common (a loop probing the same name).
            if previous != Some(key) {
                probe_ids.push(self.keyed_path_id(key)?);
                previous = Some(key);
            }
        }
        let mut rows = Vec::with_capacity(accesses.len());
        let mut sets: [Vec<super::SetEntry>; super::SET_KINDS.len()] = Default::default();
        for a in accesses {
            let path_id = self.keyed_path_id(a.key)?;
            if a.kind == AccessKind::Probe.id() {
                probe_ids.push(path_id);
            } else if let Some(i) = super::SET_KINDS.iter().position(|k| k.id() == a.kind) {
                sets[i].push((path_id, a.count, a.process_id));
            } else {
                rows.push((path_id, a));
            }
        }
        for (kind, entries) in super::SET_KINDS.iter().zip(&mut sets) {
            if !entries.is_empty() {
                let json = super::encode_access_set(entries);
                self.exec(
                    "INSERT INTO access_set (build_id, command_id, make_id, kind, count, accesses) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![build_id, command_id, make_id, kind.id(), entries.len() as i64, json],
                )?;
            }
        }
        if !rows.is_empty() {
            // Writes, execs and the other rare kinds: one row each.
            let mut st = self
                .conn
                .prepare_cached(
                    "INSERT INTO access (build_id, command_id, make_id, path_id, kind, process_id, first_ns, count)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(|e| super::write_error(&self.path, e))?;
            for (path_id, a) in rows {
                st.execute(params![
                    build_id,
                    command_id,
                    make_id,
                    path_id,
                    a.kind,
                    a.process_id,
                    a.first_ns,
                    a.count
                ])
                .map_err(|e| super::write_error(&self.path, e))?;
            }
        }
        if !probe_ids.is_empty() {
            probe_ids.sort_unstable();
            probe_ids.dedup();
            self.exec(
                "INSERT INTO probe_set (build_id, command_id, make_id, count, path_ids) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![build_id, command_id, make_id, probe_ids.len() as i64, super::encode_ids(&probe_ids)],
            )?;
        }
        Ok(())
    }

    /// Compute the command DAG of a build: an edge from the command that wrote a path
    /// ([`AccessKind::is_write`]) to every command that started after it and read,
    /// executed, stat'ed, listed or probed that path ([`AccessKind::is_read`]), each
    /// (writer, reader, path) once.
    pub fn compute_edges(&mut self, build_id: i64) -> Result<usize, StoreError> {
        // Writes are the rare kinds, one row each; everything else is joined to them
        // here rather than in SQL, since reads, stats and probes are stored as sets.
        let mut writers: HashMap<i64, Vec<(i64, i64)>> = HashMap::default();
        for (path, command, started) in self.rows(
            &format!(
                "SELECT a.path_id, a.command_id, c.started_ns FROM access a JOIN command c ON c.id = a.command_id
                 WHERE a.build_id = ?1 AND a.kind IN ({})",
                AccessKind::sql_ids(AccessKind::is_write)
            ),
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )? {
            writers.entry(path).or_default().push((command, started));
        }
        if writers.is_empty() {
            return Ok(0);
        }
        let mut edges = Vec::new();
        let mut reach = |reader: i64, started: i64, path: i64| {
            for &(writer, written) in writers.get(&path).into_iter().flatten() {
                if writer != reader && started >= written {
                    edges.push((writer, reader, path));
                }
            }
        };
        // Readers stored as rows: execs and listings (reads and stats are sets and
        // probes a probe_set, both read below; a record that has them as rows counts
        // them here).
        for (path, reader, started) in self.rows(
            &format!(
                "SELECT a.path_id, a.command_id, c.started_ns FROM access a JOIN command c ON c.id = a.command_id
                 WHERE a.build_id = ?1 AND a.kind IN ({})",
                AccessKind::sql_ids(AccessKind::is_read)
            ),
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )? {
            reach(reader, started, path);
        }
        for (reader, started, json) in self.rows(
            "SELECT s.command_id, c.started_ns, s.accesses FROM access_set s JOIN command c ON c.id = s.command_id
             WHERE s.build_id = ?1",
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)),
        )? {
            let entries = super::decode_access_set(&json).map_err(|e| self.corrupt(e))?;
            for (path, _, _) in entries {
                reach(reader, started, path);
            }
        }
        // Paths probed after another command wrote them (then removed or renamed them).
        for (reader, started, ids) in self.rows(
            "SELECT p.command_id, c.started_ns, p.path_ids FROM probe_set p JOIN command c ON c.id = p.command_id
             WHERE p.build_id = ?1",
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Vec<u8>>(2)?)),
        )? {
            for path in super::decode_ids(&ids) {
                reach(reader, started, path);
            }
        }
        edges.sort_unstable();
        edges.dedup();
        for (from, to, path) in &edges {
            self.exec(
                "INSERT INTO edge (build_id, from_command_id, to_command_id, path_id) VALUES (?1, ?2, ?3, ?4)",
                params![build_id, from, to, path],
            )?;
        }
        Ok(edges.len())
    }

    fn exec(&mut self, sql: &str, params: impl rusqlite::Params) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute(params))
            .map(drop)
            .map_err(|e| self.write_error(e))
    }
}

/// A NUL-separated argv as one line a shell would accept (lossy where not UTF-8).
/// Written once per process into one string (the writer does this ~100,000 times on a
/// glibc build).
pub fn args_text(argv: &[u8]) -> String {
    let mut text = String::with_capacity(argv.len() + 16);
    for (i, arg) in crate::util::split_nul(argv).iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        push_shell_quoted(&mut text, &String::from_utf8_lossy(arg));
    }
    text
}

/// Append `word` to `out`, quoted for a POSIX shell only when it needs it.
fn push_shell_quoted(out: &mut String, word: &str) {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&b));
    if plain {
        out.push_str(word);
        return;
    }
    out.push('\'');
    for (i, part) in word.split('\'').enumerate() {
        if i > 0 {
            out.push_str("'\\''");
        }
        out.push_str(part);
    }
    out.push('\'');
}

/// Split what [`args_text`] wrote back into the arguments.
pub fn split_args_text(text: &str) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut word = Vec::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if quoted => quoted = false,
            '\'' => {
                quoted = true;
                in_word = true;
            }
            '\\' if !quoted && chars.peek() == Some(&'\'') => {
                chars.next();
                word.push(b'\'');
                in_word = true;
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            c => {
                let mut buffer = [0u8; 4];
                word.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_text_round_trips() {
        let argv: &[&[u8]] = &[b"gcc", b"-DX=\"a b\"", b"it's", b"", b"-I../x", b"$HOME"];
        let joined = crate::util::join_nul(argv);
        let text = args_text(&joined);
        assert_eq!(text, "gcc '-DX=\"a b\"' 'it'\\''s' '' -I../x '$HOME'");
        assert_eq!(
            split_args_text(&text),
            argv.iter().map(|a| a.to_vec()).collect::<Vec<_>>()
        );
    }
}
