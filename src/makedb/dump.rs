//! make's database dumps on disk: written raw by the plugin as each make exits, kept
//! compressed.
//!
//! The plugin writes `<key>.mkdb` (make's `-p` text, 1–5 MB each on glibc, 143 of them)
//! and the record names that path. When the build has ended the recorder compresses every
//! raw dump in the directory to `<key>.mkdb.zst` and removes the raw file (glibc: 304 MB
//! of text to about a tenth); readers go through [`read`], which takes whichever of the
//! two is there, so records written before compression existed read as they did. The
//! plugin reuses a dump of the same key in either form and never rewrites it.
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

/// What [`compress_all`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Compressed {
    pub files: usize,
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
}

/// Compress every raw dump in `dir` (on `threads` threads). A dump that cannot be
/// compressed (a full disk) stays raw: it is still read as it is.
pub fn compress_all(dir: &Path, threads: usize) -> io::Result<Compressed> {
    let mut raw: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "mkdb"))
        .collect();
    raw.sort();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let totals = std::sync::Mutex::new(Compressed::default());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(path) = raw.get(i) else { break };
                if let Ok((before, after)) = compress(path) {
                    let mut t = totals.lock().unwrap_or_else(|e| e.into_inner());
                    t.files += 1;
                    t.raw_bytes += before;
                    t.compressed_bytes += after;
                }
            });
        }
    });
    Ok(totals.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// Compress one dump; its sizes before and after.
fn compress(raw: &Path) -> io::Result<(u64, u64)> {
    let text = std::fs::read(raw)?;
    let packed = zstd::stream::encode_all(text.as_slice(), LEVEL)?;
    let target = compressed_name(raw);
    let mut tmp = target.as_os_str().to_os_string();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = write_private(&tmp, &packed).and_then(|()| std::fs::rename(&tmp, &target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::remove_file(raw)?;
    Ok((text.len() as u64, packed.len() as u64))
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
        let done = compress_all(dir.path(), 2).unwrap();
        assert_eq!(done.files, 1);
        assert_eq!(done.raw_bytes, text.len() as u64);
        assert!(done.compressed_bytes < done.raw_bytes / 10);
        assert!(!raw.exists());
        assert_eq!(locate(&raw), Some(compressed_name(&raw)));
        assert_eq!(read(&raw).unwrap(), text);
        // Nothing left to do the second time.
        assert_eq!(compress_all(dir.path(), 2).unwrap().files, 0);
    }

    #[test]
    fn a_missing_dump_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("none.mkdb");
        assert_eq!(locate(&raw), None);
        assert_eq!(read(&raw).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
