//! The readers' side: typed rows and the queries every command shares.

use rusqlite::{params, Row};

use super::{get_bytes, Bytes, NewPrereq, Store, StoreError};
use crate::access::AccessKind;

/// A recorded build.
#[derive(Debug, Clone)]
pub struct BuildRow {
    pub id: i64,
    pub argv: Vec<Vec<u8>>,
    pub directory: Vec<u8>,
    pub started_ns: i64,
    pub ended_ns: Option<i64>,
    pub state: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub traced: bool,
    pub hooks_failed: bool,
}

/// A make process of a build.
#[derive(Debug, Clone)]
pub struct MakeRow {
    pub id: i64,
    pub build_id: i64,
    pub pid: i32,
    pub parent_make_id: Option<i64>,
    pub parent_command_id: Option<i64>,
    pub level: i64,
    pub directory: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub started_ns: i64,
    pub ended_ns: Option<i64>,
    pub default_goal: Option<Vec<u8>>,
    pub makefiles: Option<Vec<u8>>,
    pub makedb_path: Option<Vec<u8>>,
}

/// A recorded command.
#[derive(Debug, Clone)]
pub struct CommandRow {
    pub id: i64,
    pub build_id: i64,
    pub make_id: Option<i64>,
    pub make_level: Option<i64>,
    pub job: i64,
    pub line_index: i64,
    pub target: Vec<u8>,
    pub recipe_file: Option<Vec<u8>>,
    pub recipe_line: Option<i64>,
    pub newer: Option<Vec<u8>>,
    pub target_existed: Option<bool>,
    pub directory: Vec<u8>,
    /// The shell's words (`/bin/bash`, `-e`), as make ran it; `None` when unknown.
    pub shell: Option<Vec<Vec<u8>>>,
    /// The shell's flags before the command (`-c`); `None` when unknown.
    pub shell_flags: Option<Vec<Vec<u8>>>,
    pub command: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    pub pid: Option<i32>,
    pub started_ns: i64,
    pub ended_ns: Option<i64>,
    pub state: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub user_us: Option<i64>,
    pub system_us: Option<i64>,
    pub max_rss_kib: Option<i64>,
    pub label: Option<String>,
    pub test_name: Option<String>,
    pub test_result: Option<String>,
    /// 1: its files are complete; 0: not traced; 2: it runs a sub-make, whose own
    /// commands are traced.
    pub traced: i64,
    /// The processes the command left running when it ended, each `pid argv…`;
    /// `None` when there were none.
    pub left_behind: Option<Vec<Vec<u8>>>,
}

impl CommandRow {
    /// Why make ran it, in words.
    pub fn why(&self) -> String {
        match (self.target_existed, self.newer.as_deref()) {
            (Some(false), _) => "target did not exist".into(),
            (_, Some(newer)) if !newer.is_empty() => {
                format!("newer: {}", String::from_utf8_lossy(newer))
            }
            _ => "always remade (phony or forced)".into(),
        }
    }

    /// Duration in seconds, if it ended.
    pub fn seconds(&self) -> Option<f64> {
        self.ended_ns
            .map(|end| (end - self.started_ns) as f64 / 1e9)
    }
}

/// One (owner, path, kind) access.
#[derive(Debug, Clone)]
pub struct AccessRow {
    pub command_id: Option<i64>,
    pub make_id: Option<i64>,
    pub path: Vec<u8>,
    pub kind: String,
    pub count: i64,
    pub process_id: Option<i64>,
}

/// A process.
#[derive(Debug, Clone)]
pub struct ProcessRow {
    pub id: i64,
    pub command_id: Option<i64>,
    pub make_id: Option<i64>,
    pub pid: i32,
    pub parent_pid: Option<i32>,
    pub exe: Option<Vec<u8>>,
    pub argv: Vec<Vec<u8>>,
    pub cwd: Option<Vec<u8>>,
    pub started_ns: Option<i64>,
    pub ended_ns: Option<i64>,
    pub exit_code: Option<i32>,
}

/// A command's output.
#[derive(Debug, Clone, Default)]
pub struct CommandOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Filters for [`Store::commands`].
#[derive(Debug, Clone, Default)]
pub struct CommandFilter {
    pub failed_only: bool,
    pub target_contains: Option<Vec<u8>>,
}

fn split(bytes: Option<Vec<u8>>) -> Vec<Vec<u8>> {
    crate::util::split_nul(&bytes.unwrap_or_default())
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

const BUILD_COLUMNS: &str =
    "id, argv, directory, started_ns, ended_ns, state, exit_code, signal, traced, hooks_failed";

fn build_row(r: &Row<'_>) -> rusqlite::Result<BuildRow> {
    Ok(BuildRow {
        id: r.get(0)?,
        argv: split(get_bytes(r, 1)?),
        directory: get_bytes(r, 2)?.unwrap_or_default(),
        started_ns: r.get(3)?,
        ended_ns: r.get(4)?,
        state: r.get(5)?,
        exit_code: r.get(6)?,
        signal: r.get(7)?,
        traced: r.get(8)?,
        hooks_failed: r.get(9)?,
    })
}

const MAKE_COLUMNS: &str =
    "id, build_id, pid, parent_make_id, parent_command_id, level, directory, argv, started_ns, \
                            ended_ns, default_goal, makefiles, makedb_path";

fn make_row(r: &Row<'_>) -> rusqlite::Result<MakeRow> {
    Ok(MakeRow {
        id: r.get(0)?,
        build_id: r.get(1)?,
        pid: r.get(2)?,
        parent_make_id: r.get(3)?,
        parent_command_id: r.get(4)?,
        level: r.get(5)?,
        directory: get_bytes(r, 6)?.unwrap_or_default(),
        argv: split(get_bytes(r, 7)?),
        started_ns: r.get(8)?,
        ended_ns: r.get(9)?,
        default_goal: get_bytes(r, 10)?,
        makefiles: get_bytes(r, 11)?,
        makedb_path: get_bytes(r, 12)?,
    })
}

const COMMAND_COLUMNS: &str = "c.id, c.build_id, c.make_id, m.level, c.job, c.line_index, c.target, c.recipe_file, \
    c.recipe_line, c.newer, c.target_existed, c.directory, c.shell, c.shell_flags, c.command, NULL, e.entries, c.pid, \
    c.started_ns, c.ended_ns, c.state, c.exit_code, c.signal, c.user_us, c.system_us, c.max_rss_kib, c.label, \
    c.test_name, c.test_result, c.traced, c.left_behind";

/// The query for a build's commands (`?1`) that `filter` picks (`?2`: the target's
/// text), with `env` for the environment's column and `env_join` to find it.
fn commands_sql(filter: &CommandFilter, env: &str, env_join: &str) -> String {
    let columns = COMMAND_COLUMNS.replace("e.entries", env);
    let mut sql = format!(
        "SELECT {columns} FROM command c LEFT JOIN make m ON m.id = c.make_id {env_join} WHERE c.build_id = ?1"
    );
    if filter.failed_only {
        sql.push_str(" AND c.state NOT IN ('ok', 'running')");
    }
    if filter.target_contains.is_some() {
        sql.push_str(" AND instr(c.target, ?2) > 0");
    }
    sql.push_str(" ORDER BY c.id");
    sql
}

fn command_row(r: &Row<'_>) -> rusqlite::Result<CommandRow> {
    let shell = get_bytes(r, 12)?.map(|b| split(Some(b)));
    let shell_flags = get_bytes(r, 13)?.map(|b| split(Some(b)));
    let command = get_bytes(r, 14)?.unwrap_or_default();
    Ok(CommandRow {
        id: r.get(0)?,
        build_id: r.get(1)?,
        make_id: r.get(2)?,
        make_level: r.get(3)?,
        job: r.get(4)?,
        line_index: r.get(5)?,
        target: get_bytes(r, 6)?.unwrap_or_default(),
        recipe_file: get_bytes(r, 7)?,
        recipe_line: r.get(8)?,
        newer: get_bytes(r, 9)?,
        target_existed: r.get(10)?,
        directory: get_bytes(r, 11)?.unwrap_or_default(),
        // What make executed: the shell's words, its flags, the command.
        argv: (shell.iter().flatten().chain(shell_flags.iter().flatten()))
            .cloned()
            .chain([command.clone()])
            .collect(),
        shell,
        shell_flags,
        command,
        env: split(get_bytes(r, 16)?),
        pid: r.get(17)?,
        started_ns: r.get(18)?,
        ended_ns: r.get(19)?,
        state: r.get(20)?,
        exit_code: r.get(21)?,
        signal: r.get(22)?,
        user_us: r.get(23)?,
        system_us: r.get(24)?,
        max_rss_kib: r.get(25)?,
        label: r.get(26)?,
        test_name: r.get(27)?,
        test_result: r.get(28)?,
        traced: r.get(29)?,
        left_behind: get_bytes(r, 30)?.map(|b| split(Some(b))),
    })
}

/// SQL: the `access_set` `s`, expanded as `e` (json_each), holds the path `p`. The
/// `instr` finds the sets that name it without parsing the others (an entry starts
/// `[id,` in the compact JSON the writer and the migration write); a full glibc build
/// has ~2 million entries in ~27,000 sets. Joined `path p CROSS JOIN access_set s CROSS
/// JOIN json_each(s.accesses) e`: SQLite keeps that order (the path by its index first).
pub const IN_SET: &str = "instr(s.accesses, '[' || p.id || ',') > 0 AND e.value ->> 0 = p.id";

fn access_row(r: &Row<'_>) -> rusqlite::Result<AccessRow> {
    Ok(AccessRow {
        command_id: r.get(0)?,
        make_id: r.get(1)?,
        path: get_bytes(r, 2)?.unwrap_or_default(),
        kind: r.get(3)?,
        count: r.get(4)?,
        process_id: r.get(5)?,
    })
}

fn process_row(r: &Row<'_>) -> rusqlite::Result<ProcessRow> {
    Ok(ProcessRow {
        id: r.get(0)?,
        command_id: r.get(1)?,
        make_id: r.get(2)?,
        pid: r.get(3)?,
        parent_pid: r.get(4)?,
        exe: get_bytes(r, 5)?,
        argv: match get_bytes(r, 6)? {
            Some(exact) => split(Some(exact)),
            None => r
                .get::<_, Option<String>>(11)?
                .map(|t| super::split_args_text(&t))
                .unwrap_or_default(),
        },
        cwd: get_bytes(r, 7)?,
        started_ns: r.get(8)?,
        ended_ns: r.get(9)?,
        exit_code: r.get(10)?,
    })
}

impl Store {
    /// Read everything from here on in one snapshot of the record (a read transaction,
    /// ended when the store is dropped): rows a build being recorded adds meanwhile are
    /// not seen, so a query's build row, commands and their details agree.
    pub fn begin_snapshot(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .and_then(|()| {
                self.conn
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                        r.get::<_, i64>(0)
                    })
            })
            .map(|_| ())
            .map_err(|e| self.sqlite(e))
    }

    pub(super) fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.sqlite(e))?;
        let rows = st.query_map(params, f).map_err(|e| self.sqlite(e))?;
        rows.collect::<rusqlite::Result<Vec<T>>>()
            .map_err(|e| self.sqlite(e))
    }

    /// Every build of the project (not the replays' runs), oldest first.
    pub fn builds(&self) -> Result<Vec<BuildRow>, StoreError> {
        self.rows(
            &format!("SELECT {BUILD_COLUMNS} FROM build WHERE kind <> 'replay' ORDER BY id"),
            [],
            build_row,
        )
    }

    /// One build.
    pub fn build(&self, id: i64) -> Result<Option<BuildRow>, StoreError> {
        Ok(self
            .rows(
                &format!("SELECT {BUILD_COLUMNS} FROM build WHERE id = ?1"),
                [id],
                build_row,
            )?
            .pop())
    }

    /// The last build of the project (a replay's run is not one): one still running (the newest of them), else the one that ended
    /// last. Builds one after another: the newest. A build that ran `makescope make`
    /// in a recipe (into the same record) ends after the build it started, so the
    /// user's build comes first, not its nested one.
    pub fn last_build(&self) -> Result<Option<BuildRow>, StoreError> {
        Ok(self
            .rows(
                &format!(
                    "SELECT {BUILD_COLUMNS} FROM build WHERE kind <> 'replay'
                     ORDER BY state = 'running' DESC, coalesce(ended_ns, started_ns) DESC, id DESC LIMIT 1"
                ),
                [],
                build_row,
            )?
            .pop())
    }

    /// How many commands (recipe lines) and jobs (recipes: a make's lines sharing a job
    /// number) the last finished build with these arguments in this directory ran: the
    /// progress bar's total and the piped status's.
    pub fn previous_counts(
        &self,
        directory: &[u8],
        argv: &[u8],
    ) -> Result<Option<(u64, u64)>, StoreError> {
        Ok(self
            .rows(
                "SELECT (SELECT count(*) FROM command c WHERE c.build_id = b.id),
                        (SELECT count(*) FROM (SELECT DISTINCT make_id, job FROM command c
                                               WHERE c.build_id = b.id))
                 FROM build b
                 WHERE b.directory = ?1 AND b.argv = ?2 AND b.state IN ('complete', 'failed')
                 ORDER BY b.id DESC LIMIT 1",
                params![Bytes(directory), Bytes(argv)],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )?
            .pop())
    }

    /// The recorded commands that re-ran `command_id` (`makescope replay`), oldest first.
    pub fn replays_of(&self, command_id: i64) -> Result<Vec<CommandRow>, StoreError> {
        self.rows(
            &format!("SELECT {COMMAND_COLUMNS} FROM command c LEFT JOIN make m ON m.id = c.make_id LEFT JOIN environment e ON e.id = c.environment_id WHERE c.replay_of = ?1 ORDER BY c.id"),
            [command_id],
            command_row,
        )
    }

    /// The recorded command that `command_id` re-ran, when it is a replay's.
    pub fn replay_of(&self, command_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .rows(
                "SELECT replay_of FROM command WHERE id = ?1",
                [command_id],
                |r| r.get::<_, Option<i64>>(0),
            )?
            .pop()
            .flatten())
    }

    /// The make processes of a build, in the order they started.
    pub fn makes(&self, build_id: i64) -> Result<Vec<MakeRow>, StoreError> {
        self.rows(
            &format!("SELECT {MAKE_COLUMNS} FROM make WHERE build_id = ?1 ORDER BY id"),
            [build_id],
            make_row,
        )
    }

    /// One make process.
    pub fn make(&self, id: i64) -> Result<Option<MakeRow>, StoreError> {
        Ok(self
            .rows(
                &format!("SELECT {MAKE_COLUMNS} FROM make WHERE id = ?1"),
                [id],
                make_row,
            )?
            .pop())
    }

    /// The commands of a build, in the order they started.
    pub fn commands(
        &self,
        build_id: i64,
        filter: &CommandFilter,
    ) -> Result<Vec<CommandRow>, StoreError> {
        let sql = commands_sql(
            filter,
            "e.entries",
            "LEFT JOIN environment e ON e.id = c.environment_id",
        );
        match &filter.target_contains {
            Some(text) => self.rows(&sql, params![build_id, Bytes(text)], command_row),
            None => self.rows(&sql, params![build_id], command_row),
        }
    }

    /// The commands of a build, in the order they started, given to `each` one at a
    /// time and without their environments (`env` empty): a listing of 100,000
    /// commands holds one of them at a time.
    pub fn each_command<E: From<StoreError>>(
        &self,
        build_id: i64,
        filter: &CommandFilter,
        mut each: impl FnMut(CommandRow) -> Result<(), E>,
    ) -> Result<(), E> {
        let sql = commands_sql(filter, "NULL", "");
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.sqlite(e))?;
        let mut rows = match &filter.target_contains {
            Some(text) => st.query(params![build_id, Bytes(text)]),
            None => st.query(params![build_id]),
        }
        .map_err(|e| self.sqlite(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sqlite(e))? {
            each(command_row(row).map_err(|e| self.sqlite(e))?)?;
        }
        Ok(())
    }

    /// One command.
    pub fn command(&self, id: i64) -> Result<Option<CommandRow>, StoreError> {
        Ok(self
            .rows(
                &format!("SELECT {COMMAND_COLUMNS} FROM command c LEFT JOIN make m ON m.id = c.make_id LEFT JOIN environment e ON e.id = c.environment_id WHERE c.id = ?1"),
                [id],
                command_row,
            )?
            .pop())
    }

    /// The lines make ran of one recipe (a make's job), in order.
    pub fn recipe(
        &self,
        build_id: i64,
        make_id: Option<i64>,
        job: i64,
    ) -> Result<Vec<CommandRow>, StoreError> {
        self.rows(
            &format!("SELECT {COMMAND_COLUMNS} FROM command c LEFT JOIN make m ON m.id = c.make_id LEFT JOIN environment e ON e.id = c.environment_id WHERE c.build_id = ?1 AND c.make_id IS ?2 AND c.job = ?3 ORDER BY c.line_index, c.id"),
            params![build_id, make_id, job],
            command_row,
        )
    }

    /// What a command printed.
    pub fn output(&self, command_id: i64) -> Result<CommandOutput, StoreError> {
        Ok(self
            .rows(
                "SELECT stdout, stderr FROM command WHERE id = ?1",
                [command_id],
                |r| {
                    Ok(CommandOutput {
                        stdout: get_bytes(r, 0)?.unwrap_or_default(),
                        stderr: get_bytes(r, 1)?.unwrap_or_default(),
                    })
                },
            )?
            .pop()
            .unwrap_or_default())
    }

    /// The paths a command probed (looked for and found missing).
    pub fn probes(&self, command_id: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        let sets: Vec<Vec<u8>> = self.rows(
            "SELECT path_ids FROM probe_set WHERE command_id = ?1",
            [command_id],
            |r| r.get(0),
        )?;
        let mut paths = Vec::new();
        let mut st = self
            .conn
            .prepare_cached("SELECT path FROM path WHERE id = ?1")
            .map_err(|e| self.sqlite(e))?;
        for set in sets {
            for id in super::decode_ids(&set) {
                let path = st
                    .query_row([id], |r| get_bytes(r, 0))
                    .map_err(|e| self.sqlite(e))?;
                paths.push(path.unwrap_or_default());
            }
        }
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// A command's file accesses, by kind then path (probes included).
    pub fn accesses(&self, command_id: i64) -> Result<Vec<AccessRow>, StoreError> {
        let mut rows = self.direct_accesses(command_id)?;
        let probes = self.probes(command_id)?;
        // Rows come by kind id: the probes go where their kind's id puts them.
        let at = rows
            .iter()
            .position(|a| AccessKind::from_name(&a.kind).map_or(true, |k| k > AccessKind::Probe))
            .unwrap_or(rows.len());
        let probe_rows = probes.into_iter().map(|path| AccessRow {
            command_id: Some(command_id),
            make_id: None,
            path,
            kind: "probe".into(),
            count: 1,
            process_id: None,
        });
        rows.splice(at..at, probe_rows);
        Ok(rows)
    }

    fn direct_accesses(&self, command_id: i64) -> Result<Vec<AccessRow>, StoreError> {
        self.rows(
            "SELECT a.command_id, a.make_id, p.path, k.name, a.count, a.process_id, a.kind
             FROM access a JOIN path p ON p.id = a.path_id JOIN access_kind k ON k.id = a.kind
             WHERE a.command_id = ?1
             UNION ALL
             SELECT s.command_id, s.make_id, p.path, k.name, e.value ->> 1, e.value ->> 2, s.kind
             FROM access_set s CROSS JOIN json_each(s.accesses) e CROSS JOIN path p ON p.id = e.value ->> 0
             JOIN access_kind k ON k.id = s.kind
             WHERE s.command_id = ?1
             ORDER BY 7, 3",
            [command_id],
            access_row,
        )
    }

    /// Every access to one path in a build: who wrote it, who read it.
    pub fn accesses_to(&self, build_id: i64, path: &[u8]) -> Result<Vec<AccessRow>, StoreError> {
        self.rows(
            &format!(
                "SELECT a.command_id, a.make_id, p.path, k.name, a.count, a.process_id, a.kind
                 FROM access a JOIN path p ON p.id = a.path_id JOIN access_kind k ON k.id = a.kind
                 WHERE a.build_id = ?1 AND p.path = ?2
                 UNION ALL
                 SELECT s.command_id, s.make_id, p.path, k.name, e.value ->> 1, e.value ->> 2, s.kind
                 FROM path p CROSS JOIN access_set s CROSS JOIN json_each(s.accesses) e
                 JOIN access_kind k ON k.id = s.kind
                 WHERE p.path = ?2 AND s.build_id = ?1 AND {IN_SET}
                 ORDER BY 1, 7"
            ),
            params![build_id, Bytes(path)],
            access_row,
        )
    }

    /// A command's processes, in the order they were seen.
    pub fn processes(&self, command_id: i64) -> Result<Vec<ProcessRow>, StoreError> {
        self.rows(
            "SELECT id, command_id, make_id, pid, parent_pid, exe, argv, cwd, started_ns, ended_ns, exit_code, args_text
             FROM process WHERE command_id = ?1 ORDER BY id",
            [command_id],
            process_row,
        )
    }

    /// The processes of a build's commands (not the makes' own), in the order they were
    /// seen, those whose program passes `keep` (its `exe`, then its argv\[0\]): a full
    /// glibc build has ~100,000, so most are passed over before their argv is split.
    pub fn command_processes(
        &self,
        build_id: i64,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<ProcessRow>, StoreError> {
        let kept = self.rows(
            "SELECT id, command_id, make_id, pid, parent_pid, exe, argv, cwd, started_ns, ended_ns, exit_code, args_text
             FROM process WHERE build_id = ?1 AND command_id IS NOT NULL ORDER BY id",
            [build_id],
            |r| {
                let exe = get_bytes(r, 5)?.unwrap_or_default();
                let first = match get_bytes(r, 6)? {
                    Some(argv) => argv.split(|&b| b == 0).next().unwrap_or_default().to_vec(),
                    None => get_bytes(r, 11)?
                        .unwrap_or_default()
                        .split(|&b| b == b' ')
                        .next()
                        .unwrap_or_default()
                        .to_vec(),
                };
                if keep(&exe) || keep(&first) {
                    process_row(r).map(Some)
                } else {
                    Ok(None)
                }
            },
        )?;
        Ok(kept.into_iter().flatten().collect())
    }

    /// A command's tags.
    pub fn tags(&self, command_id: i64) -> Result<Vec<(String, Option<String>)>, StoreError> {
        self.rows(
            "SELECT name, value FROM tag WHERE command_id = ?1 ORDER BY rowid",
            [command_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// The commands that wrote into a path during a build ([`AccessKind::is_write`]),
    /// newest last.
    pub fn writers_of(&self, build_id: i64, path: &[u8]) -> Result<Vec<i64>, StoreError> {
        self.rows(
            &format!(
                "SELECT DISTINCT a.command_id FROM access a JOIN path p ON p.id = a.path_id
                 WHERE a.build_id = ?1 AND p.path = ?2 AND a.command_id IS NOT NULL
                   AND a.kind IN ({}) ORDER BY a.command_id",
                AccessKind::sql_ids(AccessKind::is_write)
            ),
            params![build_id, Bytes(path)],
            |r| r.get(0),
        )
    }

    /// The commands that depend on a command through the files it wrote.
    pub fn dependents(&self, command_id: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        self.rows(
            "SELECT e.to_command_id, p.path FROM edge e JOIN path p ON p.id = e.path_id
             WHERE e.from_command_id = ?1 ORDER BY e.to_command_id",
            [command_id],
            |r| Ok((r.get(0)?, get_bytes(r, 1)?.unwrap_or_default())),
        )
    }

    /// The commands a command depends on through the files it read.
    pub fn dependencies(&self, command_id: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        self.rows(
            "SELECT e.from_command_id, p.path FROM edge e JOIN path p ON p.id = e.path_id
             WHERE e.to_command_id = ?1 ORDER BY e.from_command_id",
            [command_id],
            |r| Ok((r.get(0)?, get_bytes(r, 1)?.unwrap_or_default())),
        )
    }

    /// The DAG's edges of a build, as (from, to) command ids.
    pub fn edges(&self, build_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        self.rows(
            "SELECT DISTINCT from_command_id, to_command_id FROM edge WHERE build_id = ?1",
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Commands of a build whose target is exactly `target`.
    pub fn commands_for_target(
        &self,
        build_id: i64,
        target: &[u8],
    ) -> Result<Vec<i64>, StoreError> {
        self.rows(
            "SELECT id FROM command WHERE build_id = ?1 AND target = ?2 ORDER BY id",
            params![build_id, Bytes(target)],
            |r| r.get(0),
        )
    }

    /// Every command of a build with its target and directory (for matching names).
    pub fn targets_of(&self, build_id: i64) -> Result<Vec<CommandTarget>, StoreError> {
        self.rows(
            "SELECT id, target, directory FROM command WHERE build_id = ?1 ORDER BY id",
            [build_id],
            |r| {
                Ok(CommandTarget {
                    id: r.get(0)?,
                    target: get_bytes(r, 1)?.unwrap_or_default(),
                    directory: get_bytes(r, 2)?.unwrap_or_default(),
                })
            },
        )
    }
}

/// A command's target and the directory it ran in ([`Store::targets_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTarget {
    /// The command's id.
    pub id: i64,
    /// `$@` as make expanded it (empty when make did not say).
    pub target: Vec<u8>,
    /// The directory the command ran in.
    pub directory: Vec<u8>,
}

/// A command without its environment and output: what `lint`, the exports, the views
/// (timelines, stats) and the rebuild query read of every command of a build.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandHead {
    pub id: i64,
    pub make_id: Option<i64>,
    /// Its make's level (`None`: no make recorded for it).
    pub make_level: Option<i64>,
    pub job: i64,
    pub line_index: i64,
    pub target: Vec<u8>,
    pub directory: Vec<u8>,
    pub recipe_file: Option<Vec<u8>>,
    pub recipe_line: Option<i64>,
    pub started_ns: i64,
    pub ended_ns: Option<i64>,
    pub state: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub user_us: Option<i64>,
    pub system_us: Option<i64>,
    /// 1: files complete; 0: not traced; 2: runs a sub-make.
    pub traced: i64,
    pub label: Option<String>,
    pub command: Vec<u8>,
    pub test_name: Option<String>,
    pub test_result: Option<String>,
}

/// One target of a make's declared graph, as `prereq` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrereqRow {
    pub make_id: i64,
    pub target: NewPrereq,
}

impl Store {
    /// Every command of a build, by id, without its environment and output.
    pub fn command_heads(&self, build_id: i64) -> Result<Vec<CommandHead>, StoreError> {
        self.rows(
            "SELECT c.id, c.make_id, m.level, c.job, c.line_index, c.target, c.directory,
                    c.recipe_file, c.recipe_line, c.started_ns, c.ended_ns, c.state, c.exit_code,
                    c.signal, c.user_us, c.system_us, c.traced, c.label, c.command, c.test_name,
                    c.test_result
             FROM command c LEFT JOIN make m ON m.id = c.make_id
             WHERE c.build_id = ?1 ORDER BY c.id",
            [build_id],
            |r| {
                Ok(CommandHead {
                    id: r.get(0)?,
                    make_id: r.get(1)?,
                    make_level: r.get(2)?,
                    job: r.get(3)?,
                    line_index: r.get(4)?,
                    target: get_bytes(r, 5)?.unwrap_or_default(),
                    directory: get_bytes(r, 6)?.unwrap_or_default(),
                    recipe_file: get_bytes(r, 7)?,
                    recipe_line: r.get(8)?,
                    started_ns: r.get(9)?,
                    ended_ns: r.get(10)?,
                    state: r.get(11)?,
                    exit_code: r.get(12)?,
                    signal: r.get(13)?,
                    user_us: r.get(14)?,
                    system_us: r.get(15)?,
                    traced: r.get(16)?,
                    label: r.get(17)?,
                    command: get_bytes(r, 18)?.unwrap_or_default(),
                    test_name: r.get(19)?,
                    test_result: r.get(20)?,
                })
            },
        )
    }

    /// The commands' accesses of a build of the kinds `select` picks, as
    /// (command id, path id, kind), read and stat sets expanded.
    pub fn command_accesses(
        &self,
        build_id: i64,
        select: impl Fn(AccessKind) -> bool,
    ) -> Result<Vec<(i64, i64, AccessKind)>, StoreError> {
        let mut out = self
            .rows(
                &format!(
                    "SELECT command_id, path_id, kind FROM access
                 WHERE build_id = ?1 AND command_id IS NOT NULL AND kind IN ({})",
                    AccessKind::sql_ids(&select)
                ),
                [build_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, u8>(2)?)),
            )?
            .into_iter()
            .filter_map(|(c, p, k)| Some((c, p, AccessKind::from_id(k)?)))
            .collect::<Vec<_>>();
        let sets: Vec<(i64, u8, String)> = self.rows(
            &format!(
                "SELECT command_id, kind, accesses FROM access_set
                 WHERE build_id = ?1 AND command_id IS NOT NULL AND kind IN ({})",
                AccessKind::sql_ids(&select)
            ),
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        for (command, kind, json) in sets {
            let Some(kind) = AccessKind::from_id(kind) else {
                continue;
            };
            let ids = super::access_set_path_ids(&json).map_err(|e| self.corrupt(e))?;
            out.extend(ids.into_iter().map(|p| (command, p, kind)));
        }
        Ok(out)
    }

    /// The paths of these ids.
    pub fn paths_of(
        &self,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<std::collections::HashMap<i64, Vec<u8>>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT path FROM path WHERE id = ?1")
            .map_err(|e| self.sqlite(e))?;
        let mut out = std::collections::HashMap::new();
        for id in ids {
            let path = st
                .query_row([id], |r| get_bytes(r, 0))
                .map_err(|e| self.sqlite(e))?;
            out.insert(id, path.unwrap_or_default());
        }
        Ok(out)
    }

    /// The makes of a build whose declared graph has `.NOTPARALLEL`; `None` when the
    /// record has no declared graph for the build (it predates the table).
    pub fn not_parallel_makes(&self, build_id: i64) -> Result<Option<Vec<i64>>, StoreError> {
        let any = self.rows(
            "SELECT 1 FROM prereq WHERE build_id = ?1 LIMIT 1",
            [build_id],
            |r| r.get::<_, i64>(0),
        )?;
        if any.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.rows(
            "SELECT DISTINCT p.make_id FROM make m JOIN prereq p ON p.make_id = m.id
             WHERE m.build_id = ?1 AND CAST(p.target AS TEXT) = '.NOTPARALLEL'",
            [build_id],
            |r| r.get(0),
        )?))
    }

    /// make's declared graph of a build (empty when the record has none for it).
    pub fn prereqs(&self, build_id: i64) -> Result<Vec<PrereqRow>, StoreError> {
        let rows = self.rows(
            "SELECT make_id, CAST(target AS TEXT), phony, CAST(recipe_file AS TEXT), recipe_line, prerequisites, order_only
             FROM prereq WHERE build_id = ?1 ORDER BY rowid",
            [build_id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<u32>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            },
        )?;
        rows.into_iter()
            .map(|(make_id, target, phony, file, line, normal, order_only)| {
                let list = |json: &str| {
                    serde_json::from_str::<Vec<String>>(json).map_err(|e| {
                        self.corrupt(format!("a prerequisite list that is not valid JSON: {e}"))
                    })
                };
                Ok(PrereqRow {
                    make_id,
                    target: NewPrereq {
                        target,
                        phony,
                        recipe: file.zip(line),
                        prerequisites: list(&normal)?,
                        order_only: list(&order_only)?,
                    },
                })
            })
            .collect()
    }

    /// Every (command, path) of a build where the command wrote a path ending in one of
    /// `suffixes` ([`AccessKind::is_write`]), by command then path: the result files the
    /// test conventions write (`.test-result`, `.trs`, `.sum`).
    pub fn written_with_suffix(
        &self,
        build_id: i64,
        suffixes: &[&str],
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let mut found = Vec::new();
        for suffix in suffixes {
            let pattern = format!("*{}", suffix.replace(['*', '?', '['], ""));
            found.extend(self.rows(
                &format!(
                    "SELECT DISTINCT a.command_id, p.path FROM access a JOIN path p ON p.id = a.path_id
                     WHERE a.build_id = ?1 AND a.command_id IS NOT NULL
                       AND a.kind IN ({}) AND CAST(p.path AS TEXT) GLOB ?2",
                    AccessKind::sql_ids(AccessKind::is_write)
                ),
                params![build_id, pattern],
                |r| Ok((r.get(0)?, get_bytes(r, 1)?.unwrap_or_default())),
            )?);
        }
        found.sort();
        found.dedup();
        Ok(found)
    }
}
