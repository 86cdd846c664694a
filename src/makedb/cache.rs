//! The cache of `--recursive` listings: one file per record, next to it (in `cache/`
//! beside the record, never elsewhere in the tree: listing must not change the tree),
//! holding each recorded make's listing with the identity (size, mtime, inode) of every
//! file it came from: the dump and the makefiles. An entry is used only while all of
//! them are unchanged; anything else is recomputed. The files are zstd-compressed JSON
//! (glibc's listings are ~230 MB of JSON, ~15 MB compressed), and deleting them (or the
//! record) loses nothing but time. A cache that cannot be read is ignored, one that
//! cannot be written is skipped: the cache only ever saves time.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::list::Section;

const VERSION: u32 = 2;

/// zstd's level for the cache's JSON: fast, and ~15× smaller.
const LEVEL: i32 = 3;

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

/// `$MAKESCOPE_CACHE_DIR` when set, else `cache/` beside the record.
pub fn directory(record: &Path) -> Option<PathBuf> {
    match std::env::var_os("MAKESCOPE_CACHE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => record.parent().map(|d| d.join("cache")),
    }
}

fn read_compressed(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    zstd::stream::decode_all(bytes.as_slice()).ok()
}

/// Write `bytes` compressed to `path` through a temporary file: a reader sees the old
/// file or the new one, never half of one.
fn write_compressed(path: &Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if crate::store::create_private_dir(dir).is_err() {
        return;
    }
    let Ok(packed) = zstd::stream::encode_all(bytes, LEVEL) else {
        return;
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, packed).is_err() || std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

fn record_hash(record: &Path) -> u64 {
    let record = std::fs::canonicalize(record).unwrap_or_else(|_| record.to_path_buf());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    record.hash(&mut hasher);
    hasher.finish()
}

impl Cache {
    /// The cache for listings of the record at `record`.
    pub fn open(record: &Path) -> Cache {
        let hash = record_hash(record);
        let path = directory(record).map(|d| d.join(format!("targets-{hash:016x}.json.zst")));
        let file = path
            .as_ref()
            .and_then(|p| read_compressed(p))
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

    /// Every input of these entries, once each.
    pub fn inputs(&self, keys: &[String]) -> Vec<Identity> {
        let mut out: Vec<Identity> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for key in keys {
            for input in self
                .file
                .entries
                .get(key)
                .map(|e| e.inputs.as_slice())
                .unwrap_or(&[])
            {
                if seen.insert(input.path.clone()) {
                    out.push(input.clone());
                }
            }
        }
        out
    }

    /// Forget entries not used by this listing, and write the cache if it changed.
    pub fn save(mut self, used: &[String]) {
        let used: std::collections::HashSet<&String> = used.iter().collect();
        let before = self.file.entries.len();
        self.file.entries.retain(|k, _| used.contains(k));
        if !self.dirty && before == self.file.entries.len() {
            return;
        }
        let Some(path) = self.path else { return };
        if let Ok(bytes) = serde_json::to_vec(&self.file) {
            write_compressed(&path, &bytes);
        }
    }
}

/// A whole listing's output, replayed while the record's makes and every input are
/// unchanged: `--recursive` over glibc then costs a few thousand `stat`s.
#[derive(Serialize, Deserialize)]
pub struct Output {
    pub keys: Vec<String>,
    pub inputs: Vec<Identity>,
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

fn output_path(record: &Path, view: &str) -> Option<PathBuf> {
    let r = record_hash(record);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    r.hash(&mut hasher);
    view.hash(&mut hasher);
    directory(record).map(|d| d.join(format!("targets-{r:016x}-{:016x}.out.zst", hasher.finish())))
}

impl Output {
    /// The cached output for this record, view (arguments) and makes, if still valid.
    pub fn load(record: &Path, view: &str, keys: &[String]) -> Option<Output> {
        let bytes = read_compressed(&output_path(record, view)?)?;
        let newline = bytes.iter().position(|&b| b == b'\n')?;
        let mut output: Output = serde_json::from_slice(&bytes[..newline]).ok()?;
        if output.keys != keys || !output.inputs.iter().all(Identity::unchanged) {
            return None;
        }
        output.bytes = bytes[newline + 1..].to_vec();
        Some(output)
    }

    pub fn save(&self, record: &Path, view: &str) {
        let Some(path) = output_path(record, view) else {
            return;
        };
        let Ok(mut data) = serde_json::to_vec(self) else {
            return;
        };
        data.push(b'\n');
        data.extend_from_slice(&self.bytes);
        write_compressed(&path, &data);
    }
}
