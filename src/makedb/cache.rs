//! The cache of `--recursive` listings: one file per record, outside the source tree
//! (listing must never change the tree), holding each recorded make's listing with the
//! identity (size, mtime, inode) of every file it came from: the dump and the makefiles.
//! An entry is used only while all of them are unchanged; anything else is recomputed.
//! A cache that cannot be read is ignored, one that cannot be written is skipped: the
//! cache only ever saves time.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::list::Section;

const VERSION: u32 = 1;

/// What identifies a file's content cheaply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub path: PathBuf,
    /// `None`: the file did not exist.
    pub stamp: Option<(u64, i64, i64, u64)>,
}

impl Identity {
    pub fn of(path: &Path) -> Identity {
        let stamp = std::fs::metadata(path)
            .ok()
            .map(|m| (m.len(), m.mtime(), m.mtime_nsec(), m.ino()));
        Identity {
            path: path.to_path_buf(),
            stamp,
        }
    }

    fn unchanged(&self) -> bool {
        Identity::of(&self.path) == *self
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    inputs: Vec<Identity>,
    section: Section,
}

#[derive(Serialize, Deserialize, Default)]
struct File {
    version: u32,
    entries: HashMap<String, Entry>,
}

pub struct Cache {
    path: Option<PathBuf>,
    file: File,
    dirty: bool,
}

/// `$MAKESCOPE_CACHE_DIR`, else `$XDG_CACHE_HOME/makescope`, else `~/.cache/makescope`.
pub fn directory() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("MAKESCOPE_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("makescope")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("makescope")))
}

impl Cache {
    /// The cache for listings of the record at `record`.
    pub fn open(record: &Path) -> Cache {
        let record = std::fs::canonicalize(record).unwrap_or_else(|_| record.to_path_buf());
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        record.hash(&mut hasher);
        let path = directory().map(|d| d.join(format!("targets-{:016x}.json", hasher.finish())));
        let file = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice::<File>(&bytes).ok())
            .filter(|f| f.version == VERSION)
            .unwrap_or(File {
                version: VERSION,
                entries: HashMap::new(),
            });
        Cache {
            path,
            file,
            dirty: false,
        }
    }

    /// The cached listing for `key`, if none of its inputs changed.
    pub fn get(&self, key: &str) -> Option<Section> {
        let entry = self.file.entries.get(key)?;
        entry
            .inputs
            .iter()
            .all(Identity::unchanged)
            .then(|| entry.section.clone())
    }

    pub fn put(&mut self, key: String, inputs: Vec<Identity>, section: Section) {
        self.file.entries.insert(key, Entry { inputs, section });
        self.dirty = true;
    }

    /// Forget entries not used by this listing, and write the cache if it changed.
    pub fn save(mut self, used: &[String]) {
        let before = self.file.entries.len();
        self.file.entries.retain(|k, _| used.contains(k));
        if !self.dirty && before == self.file.entries.len() {
            return;
        }
        let Some(path) = self.path else { return };
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let Ok(bytes) = serde_json::to_vec(&self.file) else {
            return;
        };
        if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}
