//! Lexical path work on bytes: joining a tracee's path onto its root, cwd or dirfd, and
//! normalising the result. Paths are bytes end to end; nothing here assumes UTF-8.
//!
//! Normalisation is lexical (`a/b/../c` → `a/c`) and never resolves symlinks: the record
//! holds the name the program used. Existence checks use the joined, un-normalised path,
//! so that the kernel's own resolution (symlinks before `..`) decides them.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

/// A path's number in a [`PathTable`]: dense from 0, in the order the paths were first
/// seen, stable for the table's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(pub u32);

/// Every path the tracer reported, normalised and numbered once: events carry a
/// [`PathId`], not bytes, so that the millions of accesses a large build makes cost no
/// allocation and no second hashing downstream.
///
/// Also remembers how paths were spelled before normalisation (`/src/string/../include/x.h`):
/// the fast path's records come unnormalised and the same spellings recur in every
/// compile of a directory, so most records are numbered with one lookup. That memory is
/// bounded ([`PathTable::SPELLINGS`]); the table of names is not (it holds each distinct
/// path once).
#[derive(Debug, Default)]
pub struct PathTable {
    names: Vec<Arc<[u8]>>,
    ids: HashMap<Arc<[u8]>, PathId>,
    spellings: HashMap<Box<[u8]>, PathId>,
    scratch: Vec<u8>,
}

impl PathTable {
    /// How many unnormalised spellings are remembered before the memory is cleared.
    pub const SPELLINGS: usize = 1 << 18;

    /// The number of the normalised path `path`.
    pub fn intern(&mut self, path: &[u8]) -> PathId {
        if let Some(&id) = self.ids.get(path) {
            return id;
        }
        let id = PathId(u32::try_from(self.names.len()).expect("fewer than 2^32 distinct paths"));
        let name: Arc<[u8]> = path.into();
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    /// The number of the absolute, not yet normalised path `path`.
    pub fn intern_absolute(&mut self, path: &[u8]) -> PathId {
        if let Some(&id) = self.spellings.get(path) {
            return id;
        }
        let mut norm = std::mem::take(&mut self.scratch);
        normalize(path, &mut norm);
        let id = self.intern(&norm);
        self.scratch = norm;
        if self.spellings.len() >= Self::SPELLINGS {
            self.spellings.clear();
        }
        self.spellings.insert(path.into(), id);
        id
    }

    /// The normalised path numbered `id`.
    pub fn name(&self, id: PathId) -> &[u8] {
        &self.names[id.0 as usize]
    }

    /// The paths numbered from `first` on, in order (shared, to hand to another thread).
    pub fn names_from(&self, first: usize) -> &[Arc<[u8]>] {
        &self.names[first.min(self.names.len())..]
    }

    /// How many paths are numbered.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// No path numbered yet.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Append `rel` to `base` (absolute) with a `/` between, into `out` (replaced).
pub fn join(base: &[u8], rel: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(base);
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(rel);
}

/// Normalise the absolute path `path` into `out` (replaced): no `.`, `..` or repeated
/// `/`, no trailing `/` (except the root itself). `..` at the root stays at the root.
pub fn normalize(path: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                let keep = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(keep);
            }
            _ => {
                out.push(b'/');
                out.extend_from_slice(part);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        normalize(p, &mut out);
        out
    }

    #[test]
    fn normalises_lexically() {
        assert_eq!(n(b"/"), b"/");
        assert_eq!(n(b"//a//b/"), b"/a/b");
        assert_eq!(n(b"/a/./b/../c"), b"/a/c");
        assert_eq!(n(b"/../.."), b"/");
        assert_eq!(n(b"/a/b/../../.."), b"/");
        assert_eq!(n(b"/caf\xe9/x"), b"/caf\xe9/x");
    }

    #[test]
    fn numbers_each_path_once_however_spelled() {
        let mut t = PathTable::default();
        let a = t.intern_absolute(b"/src/string/../include/x.h");
        assert_eq!(t.intern_absolute(b"/src/include/x.h"), a);
        assert_eq!(t.intern(b"/src/include/x.h"), a);
        assert_eq!(t.intern_absolute(b"/src/string/../include/x.h"), a);
        let b = t.intern_absolute(b"/src//string/./y.h");
        assert_ne!(a, b);
        assert_eq!((a, b), (PathId(0), PathId(1)));
        assert_eq!(t.name(b), b"/src/string/y.h");
        assert_eq!(t.names_from(1).len(), 1);
        assert_eq!(t.names_from(5).len(), 0);
    }

    #[test]
    fn forgetting_spellings_keeps_numbers() {
        let mut t = PathTable::default();
        let first = t.intern_absolute(b"/a/../b");
        for i in 0..PathTable::SPELLINGS + 10 {
            t.intern_absolute(format!("/d/./{i}").as_bytes());
        }
        assert!(t.spellings.len() <= PathTable::SPELLINGS);
        assert_eq!(t.intern_absolute(b"/a/../b"), first);
        assert_eq!(t.len(), PathTable::SPELLINGS + 11);
    }

    #[test]
    fn joins() {
        let mut out = Vec::new();
        join(b"/", b"a", &mut out);
        assert_eq!(out, b"/a");
        join(b"/x", b"a", &mut out);
        assert_eq!(out, b"/x/a");
    }
}
