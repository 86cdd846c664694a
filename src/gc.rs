//! `makescope gc`: keep the newest builds of a record, remove the rest, and give their
//! space back: their rows ([`Store::delete_builds`]), the make database dumps no kept
//! build names, and the record file's free pages (`VACUUM`).
//!
//! What it must never do: remove the build `log` and `show` show by default (the newest:
//! `--keep` is at least 1), run while a build is being recorded into the record (it
//! refuses, naming the build), or remove a dump a build started after it began could be
//! writing (only dumps older than the start of `gc` are candidates).

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Result};

use crate::config::Config;
use crate::store::Store;

/// What `gc` keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    /// How many of the newest builds to keep (at least 1).
    pub keep: usize,
    /// Say what would go, remove nothing.
    pub dry_run: bool,
}

/// What `gc` removed (or, with `dry_run`, would remove).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub removed_builds: Vec<i64>,
    pub kept_builds: Vec<i64>,
    pub removed_dumps: usize,
    /// Bytes of makescope's files (record, its log, dumps) before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Prune the record `config.db` as `options` say.
pub fn run(config: &Config, options: &GcOptions) -> Result<GcReport> {
    if options.keep == 0 {
        bail!("--keep must be at least 1: the newest build is the one `log` and `show` read");
    }
    let started = SystemTime::now();
    // Opening the record checks it is one (and refuses a newer one) before anything.
    let store = config.open_record()?;
    let builds = store.build_ids()?;
    if let Some((id, _, _)) = builds
        .iter()
        .find(|(id, state, _)| state == "running" && store.recorder_alive(*id))
    {
        bail!(
            "build {id} is being recorded into {}: run gc when it has ended",
            config.db.display()
        );
    }
    // The newest builds of the project, and the one `log` reads by default; a replay's
    // run goes with the build of the command it re-ran.
    let default = store.last_build()?.map(|b| b.id);
    let mut kept: Vec<i64> = builds
        .iter()
        .filter(|(_, _, replayed)| replayed.is_none())
        .map(|(id, _, _)| *id)
        .take(options.keep)
        .collect();
    if let Some(default) = default.filter(|d| !kept.contains(d)) {
        kept.push(default);
    }
    let keep = |(id, _, replayed): &(i64, String, Option<i64>)| match replayed {
        Some(build) => kept.contains(build),
        None => kept.contains(id),
    };
    let (kept, removed): (Vec<i64>, Vec<i64>) = (
        builds.iter().filter(|b| keep(b)).map(|b| b.0).collect(),
        builds.iter().filter(|b| !keep(b)).map(|b| b.0).collect(),
    );
    let makedb = makedb_dir(&config.db);
    let bytes_before = footprint(&config.db);
    if options.dry_run {
        return Ok(GcReport {
            removed_dumps: 0,
            removed_builds: removed,
            kept_builds: kept,
            bytes_before,
            bytes_after: bytes_before,
        });
    }
    drop(store);
    let mut store = Store::open_write(&config.db)?;
    store.delete_builds(&removed)?;
    let named: HashSet<Vec<u8>> = store.dump_paths()?.into_iter().collect();
    let removed_dumps = remove_unnamed_dumps(&makedb, &named, started);
    if !removed.is_empty() {
        store.vacuum()?;
    }
    drop(store);
    Ok(GcReport {
        removed_builds: removed,
        kept_builds: kept,
        removed_dumps,
        bytes_before,
        bytes_after: footprint(&config.db),
    })
}

/// Where the recorder puts make's database dumps for the record `db`.
pub fn makedb_dir(db: &Path) -> PathBuf {
    db.parent()
        .map(|d| d.join("makedb"))
        .unwrap_or_else(|| PathBuf::from("makedb"))
}

/// Remove the dumps in `dir` (raw or compressed) that no make of the record names and
/// that are older than `before`; how many.
fn remove_unnamed_dumps(dir: &Path, named: &HashSet<Vec<u8>>, before: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let raw = match path.as_os_str().as_bytes() {
            p if p.ends_with(b".mkdb") => p.to_vec(),
            p if p.ends_with(b".mkdb.zst") => p[..p.len() - 4].to_vec(),
            _ => continue,
        };
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|m| m < before);
        if old && !named.contains(&raw) && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Bytes of a file, 0 when it is not there.
fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Bytes of the files in `dir` (not below).
/// The bytes of the files in `dir` and its subdirectories (the cache keeps each
/// record's listings in one).
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => dir_size(&e.path()),
                Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
                _ => 0,
            })
            .sum()
    })
}

/// Bytes makescope keeps for the record `db`: the record and its write-ahead log, make's
/// database dumps, and the listing cache beside it.
pub fn footprint(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_os_string();
    wal.push("-wal");
    size(db)
        + size(Path::new(&wal))
        + dir_size(&makedb_dir(db))
        + crate::makedb::cache::directory(db).map_or(0, |d| dir_size(&d))
}

/// The size, past which `makescope make` first says how big the record is; the notice
/// comes again each time the size doubles.
pub const NOTICE_FROM: u64 = 1 << 30;

/// The threshold (`from`, `2 × from`, `4 × from`, …) that a footprint growing from
/// `before` to `after` bytes passed, if any: the notice is given once per threshold.
pub fn threshold_passed(before: u64, after: u64, from: u64) -> Option<u64> {
    let mut threshold = from.max(1);
    let mut passed = None;
    while threshold <= after {
        if before < threshold {
            passed = Some(threshold);
        }
        threshold = threshold.checked_mul(2)?;
    }
    passed
}

/// Bytes for people: `740 MB`, `1.2 GB`.
pub fn human_bytes(bytes: u64) -> String {
    const MB: f64 = 1e6;
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 10.0 * MB {
        format!("{:.0} MB", b / MB)
    } else if b >= MB {
        format!("{:.1} MB", b / MB)
    } else {
        format!("{:.0} kB", (b / 1e3).ceil())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_comes_once_per_doubling() {
        let g = 1 << 30;
        assert_eq!(threshold_passed(0, g - 1, g), None);
        assert_eq!(threshold_passed(0, g, g), Some(g));
        assert_eq!(threshold_passed(g, g + 5, g), None);
        assert_eq!(threshold_passed(g + 5, 2 * g, g), Some(2 * g));
        // Two thresholds at once: the larger is said.
        assert_eq!(threshold_passed(g - 1, 5 * g, g), Some(4 * g));
        assert_eq!(threshold_passed(3 * g, 3 * g, g), None);
    }

    #[test]
    fn bytes_read_as_people_say_them() {
        assert_eq!(human_bytes(740_000_000), "740 MB");
        assert_eq!(human_bytes(1_234_000_000), "1.2 GB");
        assert_eq!(human_bytes(3_400_000), "3.4 MB");
        assert_eq!(human_bytes(1_500), "2 kB");
    }
}
