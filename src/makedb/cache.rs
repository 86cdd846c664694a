//! The cache of `--recursive` listings: one directory per record, next to it (in
//! `cache/` beside the record, never elsewhere in the tree: listing must not change the
//! tree), holding one file per recorded make's listing with the identity (size, mtime,
//! inode) of every file it came from: the dump and the makefiles. An entry is used only
//! while all of them are unchanged; anything else is recomputed. The recorder writes
//! each make's entry as that make ends ([`store_entry`]), so the first `--recursive`
//! after a build reads listings and parses no dump. The files are zstd-compressed JSON
//! (glibc's listings are ~230 MB of JSON, ~5 MB compressed), one per make so that they
//! are written one at a time and read on every core; deleting them (or the record)
//! loses nothing but time. An entry that cannot be read is recomputed, one that cannot
//! be written is skipped: the cache only ever saves time.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::list::Section;

/// The entries' format; an entry of another version is recomputed.
const VERSION: u32 = 3;

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

/// One make's listing, in its own file.
#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    /// The whole key: the file's name is only its hash.
    key: String,
    inputs: Vec<Identity>,
    section: Section,
}

/// The listings of one record's makes.
pub struct Cache {
    /// `None`: no place for a cache (a record at the root).
    dir: Option<PathBuf>,
    /// The inputs of every entry read or put, by key.
    inputs: HashMap<String, Vec<Identity>>,
    /// Entries made now, written by [`Cache::save`].
    made: Vec<(String, Vec<Identity>, Section)>,
    /// The record's cache file of the format before this one, removed by `save`.
    old: Option<PathBuf>,
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
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
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

/// The directory of the record's entries.
fn entries_dir(record: &Path) -> Option<PathBuf> {
    directory(record).map(|d| d.join(format!("targets-{:016x}", record_hash(record))))
}

/// An entry's file name: the key's hash (keys hold paths and argv).
fn entry_name(key: &str) -> String {
    let hash = blake3::hash(key.as_bytes()).to_hex();
    format!("{}.json.zst", &hash[..32])
}

fn write_entry(dir: &Path, key: &str, inputs: &[Identity], section: &Section) {
    #[derive(Serialize)]
    struct EntryRef<'a> {
        version: u32,
        key: &'a str,
        inputs: &'a [Identity],
        section: &'a Section,
    }
    let entry = EntryRef {
        version: VERSION,
        key,
        inputs,
        section,
    };
    if let Ok(bytes) = serde_json::to_vec(&entry) {
        write_compressed(&dir.join(entry_name(key)), &bytes);
    }
}

/// Keep the listing of one make (under `key`, made from `inputs`) for the record at
/// `record`: what the recorder does as each make ends.
pub fn store_entry(record: &Path, key: &str, inputs: &[Identity], section: &Section) {
    if let Some(dir) = entries_dir(record) {
        write_entry(&dir, key, inputs, section);
    }
}

/// The entry for `key` in `dir`, if it is there and none of its inputs changed.
fn read_entry(dir: &Path, key: &str) -> Option<Entry> {
    let bytes = read_compressed(&dir.join(entry_name(key)))?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    (entry.version == VERSION && entry.key == key && entry.inputs.iter().all(Identity::unchanged))
        .then_some(entry)
}

impl Cache {
    /// The cache for listings of the record at `record`.
    pub fn open(record: &Path) -> Cache {
        let old = directory(record)
            .map(|d| d.join(format!("targets-{:016x}.json.zst", record_hash(record))));
        Cache {
            dir: entries_dir(record),
            inputs: HashMap::new(),
            made: Vec::new(),
            old,
        }
    }

    /// The cached listing of each key, `None` where there is none or one of its inputs
    /// changed; read on every core (decompressing and parsing the JSON is all CPU).
    pub fn get_all(&mut self, keys: &[String]) -> Vec<Option<Section>> {
        let Some(dir) = self.dir.as_deref() else {
            return keys.iter().map(|_| None).collect();
        };
        let mut found: Vec<Option<Entry>> = keys.iter().map(|_| None).collect();
        {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let results = std::sync::Mutex::new(&mut found);
            let threads = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(keys.len().max(1));
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(key) = keys.get(i) else { break };
                        let entry = read_entry(dir, key);
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = entry;
                    });
                }
            });
        }
        found
            .into_iter()
            .map(|entry| {
                let entry = entry?;
                self.inputs.insert(entry.key, entry.inputs);
                Some(entry.section)
            })
            .collect()
    }

    pub fn put(&mut self, key: String, inputs: Vec<Identity>, section: Section) {
        self.inputs.insert(key.clone(), inputs.clone());
        self.made.push((key, inputs, section));
    }

    /// Every input of these entries, once each.
    pub fn inputs(&self, keys: &[String]) -> Vec<Identity> {
        let mut out: Vec<Identity> = Vec::new();
        let mut seen = HashSet::new();
        for key in keys {
            for input in self.inputs.get(key).map(Vec::as_slice).unwrap_or(&[]) {
                if seen.insert(input.path.clone()) {
                    out.push(input.clone());
                }
            }
        }
        out
    }

    /// Write the entries made now, and forget those this listing did not use (those of
    /// other builds of the record, or of dumps `gc` removed).
    pub fn save(self, used: &[String]) {
        let Some(dir) = self.dir else { return };
        for (key, inputs, section) in &self.made {
            write_entry(&dir, key, inputs, section);
        }
        let used: HashSet<String> = used.iter().map(|k| entry_name(k)).collect();
        if let Ok(files) = std::fs::read_dir(&dir) {
            for file in files.filter_map(|f| f.ok()) {
                let name = file.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".json.zst") && !used.contains(name.as_ref()) {
                    let _ = std::fs::remove_file(file.path());
                }
            }
        }
        if let Some(old) = self.old {
            let _ = std::fs::remove_file(old);
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
