//! make's database dumps on disk: written raw by the plugin as each make exits, kept
//! compressed.
//!
//! The plugin writes `<key>.mkdb` (make's `-p` text, 1–5 MB each on glibc, 143 of them)
//! and the record names that path. The recorder keeps each as `<key>.mkdb.zst`
//! ([`store`], after redacting it: `crate::record`'s dumps) and removes the raw file
//! (glibc: 263 MB of text to 13 MB); readers go through [`read`], which takes whichever
//! of the two is there, so records written before compression existed read as they did.
//! The plugin reuses a dump of the same key in either form and never rewrites it.
//!
//! Compression never loses a dump: the compressed file is written under a temporary name,
//! renamed into place, and only then is the raw file removed.

use std::io;
use std::path::{Path, PathBuf};

/// What a compressed dump's name adds to the raw one.
pub const COMPRESSED_SUFFIX: &str = ".zst";

/// zstd's level: the default's speed (hundreds of MB/s) already gives glibc's dumps a
/// ratio near 10; higher levels cost seconds for a few percent.
const LEVEL: i32 = 3;

fn compressed_name(raw: &Path) -> PathBuf {
    let mut name = raw.as_os_str().to_os_string();
    name.push(COMPRESSED_SUFFIX);
    PathBuf::from(name)
}

/// The file that holds the dump the record names `raw`, raw or compressed.
pub fn locate(raw: &Path) -> Option<PathBuf> {
    if raw.exists() {
        return Some(raw.to_path_buf());
    }
    let compressed = compressed_name(raw);
    compressed.exists().then_some(compressed)
}

/// The dump's text, from whichever form is there (the compressed one when the raw file
/// disappears while we look: the recorder compressing it).
pub fn read(raw: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(raw) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let compressed = std::fs::read(compressed_name(raw))?;
            zstd::stream::decode_all(compressed.as_slice())
        }
        other => other,
    }
}

/// The raw dumps in `dir`, by name.
pub fn raw_dumps(dir: &Path) -> Vec<PathBuf> {
    let mut raw: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "mkdb"))
                .collect()
        })
        .unwrap_or_default();
    raw.sort();
    raw
}

/// Store `text` as the compressed form of the dump `raw` and remove the raw file; the
/// compressed size. The caller decides what the text is (the recorder redacts it).
pub fn store(raw: &Path, text: &[u8]) -> io::Result<u64> {
    let packed = zstd::stream::encode_all(text, LEVEL)?;
    let target = compressed_name(raw);
    let mut tmp = target.as_os_str().to_os_string();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = write_private(&tmp, &packed).and_then(|()| std::fs::rename(&tmp, &target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    match std::fs::remove_file(raw) {
        // Another recorder kept it at the same moment: the same dump.
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    Ok(packed.len() as u64)
}

/// Dumps hold make's variables, the environment among them: the owner's alone.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_dump_reads_as_the_raw_one_did() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("0123.mkdb");
        let text = b"# GNU Make 4.3\nall: a b\n".repeat(1000);
        std::fs::write(&raw, &text).unwrap();
        assert_eq!(read(&raw).unwrap(), text);
        assert_eq!(raw_dumps(dir.path()), std::slice::from_ref(&raw));
        let size = store(&raw, &text).unwrap();
        assert!(size < text.len() as u64 / 10);
        assert!(!raw.exists());
        assert_eq!(locate(&raw), Some(compressed_name(&raw)));
        assert_eq!(read(&raw).unwrap(), text);
        assert!(raw_dumps(dir.path()).is_empty());
    }

    #[test]
    fn a_missing_dump_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("none.mkdb");
        assert_eq!(locate(&raw), None);
        assert_eq!(read(&raw).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
