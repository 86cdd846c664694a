//! Taking file states: a stat, and a BLAKE3 hash only when the stat says the file may
//! have changed since the state it is compared with (git's index rule: equal size,
//! mtime, ctime and inode mean equal content). Work is spread over a few threads: the
//! stats are cheap, the hashes of a fresh build are not (every object and library).
//!
//! This module reads files and never writes them, nor the record.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::paths::as_path;
use crate::store::FileState;

/// What a look at one path found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// A regular file in this state.
    File(FileState),
    /// Nothing there.
    Missing,
    /// Something that has no state: a directory, a device, a path under /proc.
    Other,
}

/// makescope's own files for one record: the database (with SQLite's `-wal`, `-shm` and
/// `-journal` beside it) and the directories makescope keeps beside it (make's database
/// dumps, the listings cache); the whole directory when it is a `.makescope` directory.
/// Never the directory a record given with `--db` happens to sit in: that can be the
/// build tree itself.
#[derive(Debug, Clone, Default)]
pub struct RecordFiles {
    database: Vec<u8>,
    directories: Vec<Vec<u8>>,
}

impl RecordFiles {
    pub fn of(db: &std::path::Path) -> RecordFiles {
        // Lexically normalised, as the tracer's paths are (`--db ../r.sqlite`).
        let bytes = |p: &std::path::Path| crate::paths::normalize(crate::paths::as_bytes(p));
        let mut directories = Vec::new();
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            if parent.file_name() == Some(std::ffi::OsStr::new(".makescope")) {
                directories.push(bytes(parent));
            } else {
                directories.push(bytes(&crate::gc::makedb_dir(db)));
                if let Some(cache) = crate::makedb::cache::directory(db) {
                    directories.push(bytes(&cache));
                }
            }
        }
        RecordFiles {
            database: bytes(db),
            directories,
        }
    }

    fn contains(&self, path: &[u8]) -> bool {
        let database = path
            .strip_prefix(self.database.as_slice())
            .is_some_and(|rest| matches!(rest, b"" | b"-wal" | b"-shm" | b"-journal"));
        database || self.directories.iter().any(|d| under(path, d))
    }
}

fn under(path: &[u8], dir: &[u8]) -> bool {
    !dir.is_empty() && path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/')
}

/// Paths that never get a state: the kernel's and the record's own files.
pub fn stateless(path: &[u8], record: &RecordFiles) -> bool {
    under(path, b"/proc") || under(path, b"/dev") || under(path, b"/sys") || record.contains(path)
}

/// Stat `path`; hash it unless `known` has the same stat (then its hash is reused).
/// Returns the look and whether the file was read.
pub fn look(path: &[u8], known: Option<&FileState>) -> (Look, bool) {
    let meta = match std::fs::metadata(as_path(path)) {
        Ok(meta) => meta,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound) => {
            return (Look::Missing, false)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return (Look::Missing, false),
        Err(_) => return (Look::Other, false),
    };
    if !meta.is_file() {
        return (Look::Other, false);
    }
    let mut state = FileState {
        size: meta.size() as i64,
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        inode: meta.ino() as i64,
        hash: [0; 16],
    };
    if let Some(known) = known.filter(|k| k.same_stat(&state)) {
        state.hash = known.hash;
        return (Look::File(state), false);
    }
    match hash_file(path) {
        Some(hash) => {
            state.hash = hash;
            (Look::File(state), true)
        }
        None => (Look::Other, false),
    }
}

/// BLAKE3 of a file's content, first 16 bytes; `None` if it cannot be read.
pub fn hash_file(path: &[u8]) -> Option<[u8; 16]> {
    let mut file = std::fs::File::open(as_path(path)).ok()?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    Some(hash)
}

/// [`look`] at every path, on up to `threads` threads; results in the order given.
pub fn look_all(
    paths: &[(i64, &[u8])],
    known: &HashMap<i64, FileState>,
    threads: usize,
) -> Vec<(Look, bool)> {
    let threads = threads.clamp(1, 8).min(paths.len().max(1));
    let next = AtomicUsize::new(0);
    const CHUNK: usize = 256;
    let mut results: Vec<(Look, bool)> = vec![(Look::Other, false); paths.len()];
    let parts: Vec<Vec<(usize, (Look, bool))>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if start >= paths.len() {
                            break;
                        }
                        for (i, (id, path)) in paths.iter().enumerate().skip(start).take(CHUNK) {
                            done.push((i, look(path, known.get(id))));
                        }
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (i, result) in parts.into_iter().flatten() {
        results[i] = result;
    }
    results
}

/// How many threads state-taking uses: the CPUs, at most 4.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn a_same_stat_reuses_the_hash_and_a_touch_keeps_the_content_hash() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.c");
        std::fs::write(&file, "int a;\n").unwrap();
        let path = file.as_os_str().as_bytes();
        let (Look::File(first), true) = look(path, None) else {
            panic!("not hashed")
        };
        let fake = FileState {
            hash: [7; 16],
            ..first
        };
        assert_eq!(look(path, Some(&fake)), (Look::File(fake), false));
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        let (Look::File(touched), true) = look(path, Some(&first)) else {
            panic!("a touched file is hashed again")
        };
        assert_eq!(touched.hash, first.hash);
        assert!(!touched.same_stat(&first));
        assert_eq!(look(b"/nonexistent/x.h", None).0, Look::Missing);
        assert_eq!(look(dir.path().as_os_str().as_bytes(), None).0, Look::Other);
        let usual = RecordFiles::of(std::path::Path::new("/p/.makescope/db.sqlite"));
        assert!(stateless(b"/proc/self/maps", &usual));
        assert!(!stateless(b"/procs/x", &usual));
        assert!(stateless(b"/p/.makescope/db.sqlite", &usual));
        assert!(stateless(b"/p/.makescope/makedb/1.db.zst", &usual));
        assert!(!stateless(b"/p/main.c", &usual));
        // A record given with --db inside the tree: only its own files.
        let beside = RecordFiles::of(std::path::Path::new("/p/string.sqlite"));
        assert!(stateless(b"/p/string.sqlite-wal", &beside));
        assert!(stateless(b"/p/makedb/1.db.zst", &beside));
        assert!(!stateless(b"/p/string/strlen.c", &beside));
        assert!(!stateless(b"/p/string.sqlite.c", &beside));
    }
}
