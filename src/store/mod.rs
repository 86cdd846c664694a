//! The SQLite record: one file per project, holding every build.
//!
//! One writer (the recorder's writer thread) batches inserts into transactions; readers
//! (`log`, `show`, `targets`, the Python package) open the same file. WAL mode lets them
//! read while a build is being recorded, and a build cut short is still readable: rows
//! are committed as they come, and the build row says `running` until the recorder
//! marks it `complete`, `failed` or `interrupted`. A recorder holds a lock for its build
//! while it runs ([`Store::hold_recorder_lock`]); a build left `running` without one was
//! cut off (its recorder killed) and the next recorder marks it `interrupted`, its end
//! unknown.
//!
//! Schema changes are an append-only list of migrations keyed by `PRAGMA user_version`
//! and applied in one exclusive transaction (as cargo's `util/sqlite.rs` does): never
//! edit a released migration. A file that is not a makescope record, is corrupt, or was
//! written by a newer makescope is refused before anything touches it.

mod prune;
mod read;
mod states;
mod test_reruns;
mod views;
mod write;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::access::AccessKind;

pub use read::*;
pub use states::*;
pub use test_reruns::*;
pub use views::*;
pub use write::*;

/// Bytes as SQLite stores them: TEXT when they are UTF-8 (so `WHERE target = 'all'`
/// works in the sqlite3 shell), BLOB only when they are not, so nothing is lost.
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'a>(pub &'a [u8]);

impl rusqlite::ToSql for Bytes<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match std::str::from_utf8(self.0) {
            Ok(text) => ValueRef::Text(text.as_bytes()),
            Err(_) => ValueRef::Blob(self.0),
        }))
    }
}

/// Encode sorted, distinct ids as LEB128 varints of their differences.
pub fn encode_ids(ids: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 2);
    let mut previous = 0i64;
    for &id in ids {
        let mut delta = (id - previous) as u64;
        previous = id;
        loop {
            let byte = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// The inverse of [`encode_ids`].
pub fn decode_ids(bytes: &[u8]) -> Vec<i64> {
    let mut ids = Vec::with_capacity(bytes.len());
    let (mut value, mut shift, mut previous) = (0u64, 0u32, 0i64);
    for &byte in bytes {
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            previous += value as i64;
            ids.push(previous);
            value = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    ids
}

/// Access kinds stored as one `access_set` row per owner and kind (schema v2): read and
/// stat. Probes are one `probe_set` row per owner; every other kind is one `access` row
/// each.
pub const SET_KINDS: [AccessKind; 2] = [AccessKind::Read, AccessKind::Stat];

/// One path of an `access_set`: its id, how many times, the first process (its id).
pub type SetEntry = (i64, i64, Option<i64>);

/// An `access_set`'s JSON, `[[path_id, count, process_id], ...]`, by path id.
pub fn encode_access_set(entries: &mut [SetEntry]) -> String {
    use std::fmt::Write;
    entries.sort_unstable_by_key(|e| e.0);
    let mut out = String::with_capacity(entries.len() * 16 + 2);
    out.push('[');
    for (i, (path, count, process)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = match process {
            Some(process) => write!(out, "[{path},{count},{process}]"),
            None => write!(out, "[{path},{count},null]"),
        };
    }
    out.push(']');
    out
}

/// The inverse of [`encode_access_set`] (also reads what SQLite's `json_group_array`
/// wrote when it migrated a version 1 record).
pub fn decode_access_set(json: &str) -> Result<Vec<SetEntry>, String> {
    serde_json::from_str(json).map_err(|e| format!("an access set that is not valid JSON: {e}"))
}

/// The path ids of an `access_set`, without the rest: a scan of the compact JSON the
/// writer writes (`[[1,2,3],[4,5,null]]`), several times faster than [`decode_access_set`]
/// on a big build's ~2 million entries; anything else (spaces, as SQLite's
/// `json_group_array` writes when migrating) goes through [`decode_access_set`].
pub fn access_set_path_ids(json: &str) -> Result<Vec<i64>, String> {
    let bytes = json.as_bytes();
    if bytes.contains(&b' ') {
        return Ok(decode_access_set(json)?.into_iter().map(|e| e.0).collect());
    }
    let mut ids = Vec::with_capacity(bytes.len() / 12);
    let mut i = 1; // after the outer '['
    while i < bytes.len() {
        if bytes[i] == b'[' {
            let mut id: i64 = 0;
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                id = id * 10 + i64::from(bytes[i] - b'0');
                i += 1;
            }
            ids.push(id);
            while i < bytes.len() && bytes[i] != b']' {
                i += 1;
            }
        }
        i += 1;
    }
    Ok(ids)
}

/// Read a TEXT-or-BLOB column as bytes.
pub(crate) fn get_bytes(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<Vec<u8>>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
        ValueRef::Integer(n) => Some(n.to_string().into_bytes()),
        ValueRef::Real(n) => Some(n.to_string().into_bytes()),
    })
}

/// `PRAGMA application_id` of a makescope record ("MkSc").
pub const APPLICATION_ID: i32 = 0x4d6b_5363;

/// Migrations, oldest first; the schema version is their count.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_ids.sql"),
    include_str!("schema_file_state.sql"),
    include_str!("schema_replay.sql"),
    include_str!("schema_prereq.sql"),
    include_str!("schema_test_rerun.sql"),
    include_str!("schema_rerun_run.sql"),
];

/// The schema version this makescope writes and reads.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// What can go wrong with a record, in the user's terms.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// There is no record at that path.
    #[error("no record at {path} (run `makescope make` first, or pass --db)")]
    Missing { path: PathBuf },
    /// The file could not be opened or created.
    #[error("cannot open the record {path}: {error}")]
    Open {
        path: PathBuf,
        error: rusqlite::Error,
    },
    /// The record's directory could not be created.
    #[error("cannot create the record's directory {path}: {error}")]
    CreateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    /// An empty file (what `touch` leaves): a record no build was recorded into yet.
    #[error("{path} holds no build yet")]
    Empty { path: PathBuf },
    /// A SQLite database, but not one makescope wrote.
    #[error("{path} is not a makescope record (application_id {found:#x})")]
    NotARecord { path: PathBuf, found: i32 },
    /// Written by a newer makescope.
    #[error("{path} was written by a newer makescope (schema {found}; this one reads up to {supported}); upgrade makescope or use another --db")]
    SchemaTooNew {
        path: PathBuf,
        found: i32,
        supported: i32,
    },
    /// Not a database at all, or damaged.
    #[error("{path} is corrupt or not a database: {detail}; move it away or use another --db")]
    Corrupt { path: PathBuf, detail: String },
    /// The record cannot be written (read-only file or directory).
    #[error("cannot write the record {path}: {detail}")]
    ReadOnly { path: PathBuf, detail: String },
    /// The recorder handed the store something inconsistent (a bug, not the user's).
    #[error("internal error while writing the record: {0}")]
    Internal(String),
    /// Any other SQLite failure.
    #[error("record {path}: {error}")]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
}

/// An open record.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    paths: rustc_hash::FxHashMap<Vec<u8>, i64>,
    /// The recorder's numbered paths ([`NewAccess::key`] indexes it), as given to
    /// [`Store::number_paths`].
    numbered: Vec<std::sync::Arc<[u8]>>,
    /// Path ids by the recorder's number; 0: not known yet.
    keyed_paths: Vec<i64>,
    environments: rustc_hash::FxHashMap<Vec<u8>, i64>,
    /// The record's file, opened once to look at recorders' locks and kept open while
    /// the connection is: closing any descriptor of the file would drop every POSIX
    /// lock this process holds on it, SQLite's included (another process could then
    /// take this one for gone and checkpoint away its WAL).
    lock_probe: std::sync::OnceLock<Option<std::fs::File>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open a record for writing, creating it (and its directory) if needed.
    pub fn open_write(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|error| StoreError::CreateDir {
                path: dir.to_owned(),
                error,
            })?;
        }
        if !path.exists() {
            Store::create(path);
        }
        // Where `create` could not link (a file system without hard links), the record
        // is made in place, as the owner's alone. SQLite gives its -wal and -shm the
        // database file's mode.
        create_private_file(path).map_err(|error| StoreError::ReadOnly {
            path: path.to_owned(),
            detail: error.to_string(),
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|source| open_error(path, source))?;
        let mut store = Store::new(conn, path);
        store.prepare(true)?;
        Ok(store)
    }

    /// Make a new record at `path` whole before anyone can see it: its schema is written
    /// into a file of its own beside `path` (0600), which is then linked to `path`. A
    /// reader that comes in meanwhile finds no record, never an empty or half-made one
    /// (issue 23: a `log --json` in a build's first moments said "not a makescope
    /// record"). When another writer linked first, its record stays. Whatever fails here
    /// is met again, and reported, by `open_write` making the record in place.
    fn create(path: &Path) {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let fresh = path.with_file_name(format!(".{name}.new-{}", std::process::id()));
        let _ = std::fs::remove_file(&fresh);
        if create_private_file(&fresh).is_ok() {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            if let Ok(conn) = Connection::open_with_flags(&fresh, flags) {
                let mut store = Store::new(conn, &fresh);
                let made = store.prepare(true).is_ok();
                // Closed, the last connection folds its WAL into the file and removes it.
                drop(store);
                if made {
                    let _ = std::fs::hard_link(&fresh, path);
                }
            }
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut leftover = fresh.clone().into_os_string();
            leftover.push(suffix);
            let _ = std::fs::remove_file(leftover);
        }
    }

    fn new(conn: Connection, path: &Path) -> Store {
        Store {
            conn,
            path: path.to_owned(),
            paths: Default::default(),
            numbered: Vec::new(),
            keyed_paths: Vec::new(),
            environments: Default::default(),
            lock_probe: Default::default(),
        }
    }

    /// Open an existing record for reading (older schemas are migrated first when the
    /// file is writable).
    pub fn open_read(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .or_else(|_| Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY))
            .map_err(|source| open_error(path, source))?;
        match Store::reading(conn, path) {
            // A record the user may read but not write, in a directory where SQLite
            // cannot make its `-shm` file: read as it is on disk (no writer can be
            // adding to it: a writer could not make the `-shm` either).
            Err(StoreError::ReadOnly { .. }) => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(immutable_uri(path), flags)
                    .map_err(|source| open_error(path, source))?;
                Store::reading(conn, path)
            }
            store => store,
        }
    }

    fn reading(conn: Connection, path: &Path) -> Result<Store, StoreError> {
        let mut store = Store::new(conn, path);
        store.prepare(false)?;
        Ok(store)
    }

    /// Say, for as long as the returned file is open (however this process ends), that
    /// build `id`'s recorder runs: an open file description lock on byte `id` of the
    /// record (SQLite locks only bytes from 1 GiB on, and the `-shm` file).
    pub fn hold_recorder_lock(&self, id: i64) -> Result<std::fs::File, StoreError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .and_then(|file| {
                recorder_lock(&file, id, libc::F_OFD_SETLK)?;
                Ok(file)
            });
        file.map_err(|error| StoreError::ReadOnly {
            path: self.path.clone(),
            detail: format!("cannot lock build {id}: {error}"),
        })
    }

    /// Whether build `id` has a recorder: a process holds [`Store::hold_recorder_lock`]'s
    /// lock for it. (An unreadable lock counts as held: never call a live build dead.)
    pub fn recorder_alive(&self, id: i64) -> bool {
        let probe = self
            .lock_probe
            .get_or_init(|| std::fs::File::open(&self.path).ok());
        let Some(file) = probe else {
            return true;
        };
        recorder_lock(file, id, libc::F_OFD_GETLK).map_or(true, |held| held)
    }

    /// Mark every build still `running` whose recorder is gone (killed: it could not
    /// say how the build ended) `interrupted` and its running commands `lost`, its end
    /// left unknown (`ended_ns` NULL:
    /// how [`Store::cut_off`] tells it); the ids, oldest first.
    pub fn mark_cut_off(&mut self) -> Result<Vec<i64>, StoreError> {
        let running: Vec<i64> = self
            .conn
            .prepare("SELECT id FROM build WHERE state = 'running' ORDER BY id")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.sqlite(e))?;
        let cut: Vec<i64> = running
            .into_iter()
            .filter(|&id| !self.recorder_alive(id))
            .collect();
        for &id in &cut {
            self.conn
                .execute_batch(&format!(
                    "BEGIN IMMEDIATE;
                     UPDATE build SET state = 'interrupted' WHERE id = {id} AND state = 'running';
                     UPDATE command SET state = 'lost' WHERE build_id = {id} AND state = 'running';
                     COMMIT;"
                ))
                .map_err(|e| self.write_error(e))?;
        }
        Ok(cut)
    }

    /// Whether `build` was cut off: its recorder ended (was killed) before it could say
    /// how the build ended, whether or not a later recorder has marked it yet.
    pub fn cut_off(&self, build: &BuildRow) -> bool {
        match build.state.as_str() {
            "running" => !self.recorder_alive(build.id),
            "interrupted" => build.ended_ns.is_none(),
            _ => false,
        }
    }

    /// The record's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection, for queries the read API does not cover.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        classify(&self.path, source)
    }

    /// Content the schema does not allow (a damaged or hand-edited record).
    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    /// Check what the file is, then migrate it to [`SCHEMA_VERSION`].
    fn prepare(&mut self, writing: bool) -> Result<(), StoreError> {
        // A writer waits longer for another writer's transaction (another build into
        // the same record may hold it for seconds: a batch, its graph at its end, on a
        // loaded machine) than a reader, which a person is waiting for; the writer
        // waits on its own thread, never the build.
        let wait = if writing { 120 } else { 10 };
        self.conn
            .busy_timeout(std::time::Duration::from_secs(wait))
            .map_err(|e| self.sqlite(e))?;
        // Rows are written in any order (ids come from the recorder), and migrations
        // move rows: references are not checked (this SQLite checks them by default).
        self.conn
            .execute_batch("PRAGMA foreign_keys = OFF;")
            .map_err(|e| self.sqlite(e))?;
        if !writing {
            // A query that walks a large build (lint, tests) reads its pages more than
            // once: up to 64 MiB of them stay cached, as the writer's do (the cache only
            // grows as pages are read).
            self.conn
                .execute_batch("PRAGMA cache_size = -65536;")
                .map_err(|e| self.sqlite(e))?;
        }
        let (version, app_id, tables) = self.identify()?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
            return Err(StoreError::NotARecord {
                path: self.path.clone(),
                found: app_id,
            });
        }
        if version < SCHEMA_VERSION {
            if !writing && version == 0 && tables == 0 {
                return Err(StoreError::Empty {
                    path: self.path.clone(),
                });
            }
            if !writing && version == 0 {
                return Err(StoreError::NotARecord {
                    path: self.path.clone(),
                    found: app_id,
                });
            }
            self.migrate(version)?;
        }
        if writing {
            // A traced glibc build writes ~250 MB: a page cache that holds the indexes'
            // working set (SQLite's default, 2 MB, re-read pages from the file all the
            // time) and checkpoints every 32 MB of log instead of every 4 MB (a page
            // changed many times in between is copied once).
            self.conn
                .execute_batch(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                     PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 8192;",
                )
                .map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }

    /// The schema's version, the application id and the number of schema objects, read
    /// in one statement (one snapshot: read one by one, a record migrated in between
    /// showed version 0 with makescope's application id).
    fn identify(&self) -> Result<(i32, i32, i64), StoreError> {
        self.conn
            .query_row(
                "SELECT v.user_version, a.application_id,
                        (SELECT count(*) FROM sqlite_master)
                 FROM pragma_user_version v, pragma_application_id a",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.sqlite(e))
    }

    /// Apply the migrations after `from` in one exclusive transaction.
    fn migrate(&mut self, from: i32) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .map_err(|e| write_error(&path, e))?;
        // Another writer may have migrated while we waited for the lock.
        let current: i32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| classify(&path, e))?;
        for (i, migration) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(current.max(from) as usize)
        {
            tx.execute_batch(migration)
                .map_err(|e| write_error(&path, e))?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .map_err(|e| write_error(&path, e))?;
        }
        tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))
            .map_err(|e| write_error(&path, e))?;
        tx.commit().map_err(|e| write_error(&path, e))
    }

    fn write_error(&self, source: rusqlite::Error) -> StoreError {
        write_error(&self.path, source)
    }
}

/// Take (`F_OFD_SETLK`: `Ok(true)`) or look at (`F_OFD_GETLK`: whether another open
/// file description holds it) the write lock on byte `id` of `file`.
fn recorder_lock(file: &std::fs::File, id: i64, command: libc::c_int) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed flock is valid; the fields that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = id as libc::off_t;
    lock.l_len = 1;
    // SAFETY: `lock` is a live flock for fcntl to read (and, for GETLK, fill in).
    if unsafe { libc::fcntl(file.as_raw_fd(), command, &mut lock) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(command == libc::F_OFD_SETLK || lock.l_type != libc::F_UNLCK as libc::c_short)
}

/// Create `dir` and its missing parents 0700 (less what the umask takes away); an
/// existing directory keeps its mode.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Create `path`, empty, 0600 (less what the umask takes away) unless it exists; an
/// existing file keeps its mode. (SQLite would create it 0644.)
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    match &source {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::CannotOpen => {
            StoreError::Open {
                path: path.to_owned(),
                error: source,
            }
        }
        _ => classify(path, source),
    }
}

/// `file:` URI of `path` opened as immutable (SQLite neither locks nor looks for a WAL).
fn immutable_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut uri = String::from("file:");
    for &b in absolute.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

fn classify(path: &Path, source: rusqlite::Error) -> StoreError {
    match &source {
        rusqlite::Error::SqliteFailure(e, detail) if e.code == rusqlite::ErrorCode::ReadOnly => {
            StoreError::ReadOnly {
                path: path.to_owned(),
                detail: detail.clone().unwrap_or_else(|| e.to_string()),
            }
        }
        rusqlite::Error::SqliteFailure(e, detail)
            if matches!(
                e.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
        {
            StoreError::Corrupt {
                path: path.to_owned(),
                detail: detail.clone().unwrap_or_else(|| e.to_string()),
            }
        }
        _ => StoreError::Sqlite {
            path: path.to_owned(),
            error: source,
        },
    }
}

fn write_error(path: &Path, source: rusqlite::Error) -> StoreError {
    match &source {
        rusqlite::Error::SqliteFailure(e, detail)
            if matches!(
                e.code,
                rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::PermissionDenied
            ) =>
        {
            StoreError::ReadOnly {
                path: path.to_owned(),
                detail: detail.clone().unwrap_or_else(|| e.to_string()),
            }
        }
        _ => classify(path, source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record being made is whole whenever its path exists: a reader looking while
    /// it is made finds no file, never an empty one nor one without its schema.
    #[test]
    fn a_record_being_made_is_never_seen_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let done = std::sync::atomic::AtomicBool::new(false);
        let seen = std::thread::scope(|scope| {
            let watcher = scope.spawn(|| {
                let mut seen = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(meta) = std::fs::metadata(&path) {
                        seen.push(meta.len());
                        if let Ok(conn) =
                            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                        {
                            let version: i32 = conn
                                .query_row("PRAGMA user_version", [], |r| r.get(0))
                                .unwrap();
                            assert_eq!(version, SCHEMA_VERSION);
                        }
                    }
                }
                seen
            });
            Store::open_write(&path).unwrap();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            watcher.join().unwrap()
        });
        assert!(!seen.contains(&0), "seen empty: {seen:?}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".new-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    /// This process's POSIX locks on `path`, as /proc/locks lists them (reading them
    /// there opens no descriptor of the file, which would drop them).
    fn posix_locks(path: &Path) -> usize {
        use std::os::unix::fs::MetadataExt;
        let inode = format!(":{} ", std::fs::metadata(path).unwrap().ino());
        let pid = format!(" {} ", std::process::id());
        std::fs::read_to_string("/proc/locks")
            .unwrap()
            .lines()
            .filter(|l| l.contains("POSIX") && l.contains(&pid) && l.contains(&inode))
            .count()
    }

    /// Looking at a recorder's lock keeps SQLite's own locks on the record: closing any
    /// descriptor of the file drops every POSIX lock the process holds on it, and a
    /// record whose connection lost its shared lock looks unused to another build,
    /// which then checkpoints the WAL away under it (two builds at once lost one's
    /// last rows that way).
    #[test]
    fn looking_at_a_recorders_lock_keeps_sqlites_locks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let store = Store::open_write(&path).unwrap();
        store.last_build().unwrap();
        let held = posix_locks(&path);
        assert!(held > 0, "SQLite holds no lock on the record in WAL mode");
        assert!(!store.recorder_alive(7));
        assert!(!store.recorder_alive(8));
        assert_eq!(posix_locks(&path), held);
        // What the probe must never do: open and close a descriptor of its own.
        drop(std::fs::File::open(&path).unwrap());
        assert_eq!(posix_locks(&path), 0);
    }

    /// An empty file (what `touch` leaves) is read as a record with no build yet.
    #[test]
    fn an_empty_file_holds_no_build_yet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        std::fs::write(&path, b"").unwrap();
        let error = Store::open_read(&path).unwrap_err();
        assert!(matches!(error, StoreError::Empty { .. }), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn id_sets_round_trip() {
        let ids = vec![1, 2, 130, 131, 20_000, 1 << 40];
        assert_eq!(decode_ids(&encode_ids(&ids)), ids);
        assert_eq!(encode_ids(&[1, 2, 3]), vec![1, 1, 1]);
        assert!(decode_ids(&[]).is_empty());
    }

    #[test]
    fn access_sets_round_trip() {
        let mut entries = vec![(9, 1, Some(4)), (2, 3, None), (1 << 40, 1, Some(1))];
        let json = encode_access_set(&mut entries);
        assert_eq!(json, "[[2,3,null],[9,1,4],[1099511627776,1,1]]");
        assert_eq!(decode_access_set(&json).unwrap(), entries);
        assert_eq!(encode_access_set(&mut []), "[]");
        assert!(decode_access_set("[[1,2]]").is_err());
    }

    /// Version 2 moved reads and stats into sets: a version 1 record's rows move with
    /// it, and `file_accesses` shows the same rows before and after.
    #[test]
    fn a_version_1_record_keeps_its_accesses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch("PRAGMA foreign_keys = OFF;").unwrap();
        old.execute_batch(MIGRATIONS[0]).unwrap();
        old.execute_batch(&format!(
            "PRAGMA user_version = 1; PRAGMA application_id = {APPLICATION_ID};
             INSERT INTO path (id, path) VALUES (1, '/s/a.h'), (2, '/s/b.h'), (3, '/o/a.o');
             INSERT INTO access (build_id, command_id, path_id, kind, process_id, count) VALUES
                 (1, 5, 2, 1, 50, 3), (1, 5, 1, 1, 50, 1), (1, 5, 1, 7, NULL, 2),
                 (1, 5, 3, 3, 51, 1), (1, 6, 3, 1, 60, 1);"
        ))
        .unwrap();
        let view = |c: &Connection| -> Vec<String> {
            let mut st = c
                .prepare("SELECT command_id, path, kind, count, process_id FROM file_accesses")
                .unwrap();
            let mut rows: Vec<String> = st
                .query_map([], |r| {
                    Ok(format!(
                        "{} {} {} {} {:?}",
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?
                    ))
                })
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            rows.sort();
            rows
        };
        let before = view(&old);
        drop(old);
        let store = Store::open_write(&path).unwrap();
        assert_eq!(view(&store.conn), before);
        let left: i64 = store
            .conn
            .query_row("SELECT count(*) FROM access", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1, "only the create stays a row");
        let reads: String = store
            .conn
            .query_row(
                "SELECT accesses FROM access_set WHERE command_id = 5 AND kind = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            decode_access_set(&reads).unwrap(),
            vec![(1, 1, Some(50)), (2, 3, Some(50))]
        );
        let read = store.accesses_to(1, b"/s/a.h").unwrap();
        let kinds: Vec<_> = read
            .iter()
            .map(|a| (a.command_id, a.kind.as_str()))
            .collect();
        assert_eq!(kinds, vec![(Some(5), "read"), (Some(5), "stat")]);
    }

    /// The released migration spells the `access_kind` table out; it must say what
    /// `AccessKind` says.
    #[test]
    fn a_new_record_names_the_access_kinds_as_access_kind_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_write(&dir.path().join("db.sqlite")).unwrap();
        let mut st = store
            .conn
            .prepare("SELECT id, name FROM access_kind ORDER BY id")
            .unwrap();
        let rows: Vec<(u8, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let kinds: Vec<(u8, String)> = AccessKind::ALL
            .iter()
            .map(|k| (k.id(), k.name().to_string()))
            .collect();
        assert_eq!(rows, kinds);
    }

    /// Ids come from reserved blocks since `schema_ids`: an older record's numbering
    /// continues after the ids it holds.
    #[test]
    fn an_older_record_numbers_on_after_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch("PRAGMA foreign_keys = OFF;").unwrap();
        for migration in &MIGRATIONS[..2] {
            old.execute_batch(migration).unwrap();
        }
        old.execute_batch(&format!(
            "PRAGMA user_version = 2; PRAGMA application_id = {APPLICATION_ID};
             INSERT INTO build (id, argv, args_text, directory, started_ns, state, traced, makescope_version)
                 VALUES (3, '', '', '/', 0, 'complete', 0, '0');
             INSERT INTO command (id, build_id, job, line_index, target, directory, shell, command, started_ns, state, traced)
                 VALUES (41, 3, 0, 0, 'all', '/', '/bin/sh', 'true', 0, 'ok', 0);"
        ))
        .unwrap();
        drop(old);
        let mut store = Store::open_write(&path).unwrap();
        assert_eq!(store.reserve_ids(IdKind::Build, 1).unwrap(), 4..5);
        assert_eq!(store.reserve_ids(IdKind::Command, 10).unwrap(), 42..52);
        assert_eq!(store.reserve_ids(IdKind::Process, 2).unwrap(), 1..3);
        assert!(store.release_ids(IdKind::Command, 45..52).unwrap());
        assert_eq!(store.reserve_ids(IdKind::Command, 1).unwrap(), 45..46);
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(Store::open_write(&path).unwrap());
        let schema = |s: &Store| -> Vec<String> {
            let mut st = s
                .conn
                .prepare("SELECT sql FROM sqlite_master ORDER BY name")
                .unwrap();
            st.query_map([], |r| r.get::<_, Option<String>>(0))
                .unwrap()
                .map(|r| r.unwrap().unwrap_or_default())
                .collect()
        };
        let first = schema(&Store::open_write(&path).unwrap());
        let second = Store::open_write(&path).unwrap();
        assert_eq!(first, schema(&second));
        assert_eq!(second.identify().unwrap().0, SCHEMA_VERSION);
    }

    #[test]
    fn refuses_newer_schema_without_touching_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(Store::open_write(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        let error = Store::open_write(&path).unwrap_err();
        assert!(
            matches!(error, StoreError::SchemaTooNew { found: 99, .. }),
            "{error}"
        );
        assert_eq!(before, std::fs::read(&path).unwrap());
    }

    #[test]
    fn refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let error = Store::open_write(&path).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x42u8; 8192]);
    }

    #[test]
    fn refuses_other_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t(x)")
            .unwrap();
        assert!(matches!(
            Store::open_write(&path).unwrap_err(),
            StoreError::NotARecord { .. }
        ));
    }
}
