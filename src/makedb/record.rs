//! The record's make processes, as `--recursive` needs them. Until `store::open_read`
//! lands this is the one place that reads the `make` table directly (read-only).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

/// One recorded make process.
#[derive(Debug, Clone)]
pub struct RecordedMake {
    pub id: i64,
    pub level: i64,
    pub directory: PathBuf,
    /// argv including argv[0].
    pub argv: Vec<OsString>,
    pub makedb_path: Option<PathBuf>,
    /// The environment of the recipe command that started it (none for the top make).
    pub env: Option<Vec<(OsString, OsString)>>,
}

fn split_nul(bytes: &[u8]) -> Vec<OsString> {
    bytes
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| OsString::from_vec(w.to_vec()))
        .collect()
}

fn path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes))
}

/// The make processes of the last build (or `build`) in the record at `db`.
pub fn makes(db: &Path, build: Option<i64>) -> Result<(i64, Vec<RecordedMake>)> {
    if !db.exists() {
        anyhow::bail!(
            "no record at {}: `--recursive` lists the sub-makes of a recorded build; run `makescope make` first",
            db.display()
        );
    }
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the record {}", db.display()))?;
    let build = match build {
        Some(b) => b,
        None => conn
            .query_row("SELECT max(id) FROM build", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .with_context(|| format!("{} is not a makescope record", db.display()))?
            .with_context(|| format!("the record {} holds no build", db.display()))?,
    };
    let mut statement = conn.prepare(
        "SELECT m.id, m.level, m.directory, m.argv, m.makedb_path, c.env \
         FROM make m LEFT JOIN command c ON c.id = m.parent_command_id \
         WHERE m.build_id = ?1 ORDER BY m.id",
    )?;
    let rows = statement.query_map([build], |r| {
        let env: Option<Vec<u8>> = r.get(5)?;
        Ok(RecordedMake {
            id: r.get(0)?,
            level: r.get(1)?,
            directory: path(r.get(2)?),
            argv: split_nul(&r.get::<_, Vec<u8>>(3)?),
            makedb_path: r
                .get::<_, Option<Vec<u8>>>(4)?
                .filter(|p| !p.is_empty())
                .map(path),
            env: env.map(|e| {
                split_nul(&e)
                    .into_iter()
                    .filter_map(|kv| {
                        let kv = kv.into_vec();
                        let eq = kv.iter().position(|&b| b == b'=')?;
                        Some((
                            OsString::from_vec(kv[..eq].to_vec()),
                            OsString::from_vec(kv[eq + 1..].to_vec()),
                        ))
                    })
                    .collect()
            }),
        })
    })?;
    let makes = rows
        .collect::<Result<Vec<_>, _>>()
        .context("cannot read the record's make processes")?;
    Ok((build, makes))
}
