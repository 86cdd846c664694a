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
/// compile of a directory, in much the same order (each compile searches the same
/// include path for much the same headers). See [`Spellings`]. That memory is bounded
/// ([`PathTable::SPELLINGS`]); the table of names is not (it holds each distinct path
/// once).
#[derive(Debug, Default)]
pub struct PathTable {
    names: Vec<Arc<[u8]>>,
    ids: HashMap<Arc<[u8]>, PathId>,
    spellings: Spellings,
    scratch: Vec<u8>,
}

/// Where a stream of records (one ring) last was among the remembered spellings: the
/// next record is first compared with the spelling that followed that one last time.
#[derive(Debug, Clone, Copy)]
pub struct Cursor(u32);

impl Default for Cursor {
    fn default() -> Cursor {
        Cursor(u32::MAX)
    }
}

/// Spellings seen, each with its path's number and the spelling that came after it the
/// last time it was seen (in its stream). Successive compiles of a directory search the
/// same include path for the same headers in much the same order, so most records are
/// the predicted spelling: one comparison with bytes stored next to the previous ones,
/// no hashing, and no probe of a table far bigger than the CPU's caches (which is what
/// a hash lookup per record cost: two cache misses, ~20% of the event loop on glibc's
/// `string/`). The rest are found through a table of 4-byte indexes into those bytes.
#[derive(Debug, Default)]
struct Spellings {
    bytes: Vec<u8>,
    entries: Vec<Spelling>,
    index: hashbrown::HashTable<u32>,
    /// Records whose spelling was the predicted one.
    predicted: u64,
}

#[derive(Debug, Clone, Copy)]
struct Spelling {
    start: u32,
    len: u32,
    id: PathId,
    next: u32,
}

impl Spelling {
    fn in_arena<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.start as usize..(self.start + self.len) as usize]
    }
}

impl Spellings {
    fn bytes_of(&self, e: &Spelling) -> &[u8] {
        e.in_arena(&self.bytes)
    }

    /// The entry spelled `path`: the one after `cursor` when that is it, else a lookup.
    fn find(&mut self, path: &[u8], cursor: &mut Cursor) -> Option<PathId> {
        if let Some(next) = self.entries.get(cursor.0 as usize).map(|e| e.next) {
            if let Some(predicted) = self.entries.get(next as usize) {
                if self.bytes_of(predicted) == path {
                    self.predicted += 1;
                    cursor.0 = next;
                    return Some(predicted.id);
                }
            }
        }
        let found = *self.index.find(hash(path), |&i| {
            self.bytes_of(&self.entries[i as usize]) == path
        })?;
        self.follow(cursor, found);
        Some(self.entries[found as usize].id)
    }

    /// Remember `path` as a spelling of `id`, after `cursor`.
    fn insert(&mut self, path: &[u8], id: PathId, cursor: &mut Cursor) {
        if self.entries.len() >= PathTable::SPELLINGS
            || self.bytes.len() + path.len() > u32::MAX as usize
        {
            self.entries.clear();
            self.bytes.clear();
            self.index.clear();
            *cursor = Cursor::default();
        }
        let i = self.entries.len() as u32;
        self.entries.push(Spelling {
            start: self.bytes.len() as u32,
            len: path.len() as u32,
            id,
            next: u32::MAX,
        });
        self.bytes.extend_from_slice(path);
        let Spellings {
            bytes,
            entries,
            index,
            ..
        } = self;
        index.insert_unique(hash(path), i, |&j| {
            hash(entries[j as usize].in_arena(bytes))
        });
        self.follow(cursor, i);
    }

    /// Move `cursor` to entry `i`, remembering that `i` came after where it was.
    fn follow(&mut self, cursor: &mut Cursor, i: u32) {
        if let Some(previous) = self.entries.get_mut(cursor.0 as usize) {
            previous.next = i;
        }
        cursor.0 = i;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

fn hash(path: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(path);
    h.finish()
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

    /// The number of the absolute, not yet normalised path `path`, the next record of
    /// the stream at `cursor`.
    pub fn intern_absolute(&mut self, path: &[u8], cursor: &mut Cursor) -> PathId {
        if let Some(id) = self.spellings.find(path, cursor) {
            return id;
        }
        let mut norm = std::mem::take(&mut self.scratch);
        crate::paths::normalize_into(path, &mut norm);
        let id = self.intern(&norm);
        self.scratch = norm;
        self.spellings.insert(path, id, cursor);
        id
    }

    /// How many spellings were found where predicted (for measurements).
    pub fn predicted(&self) -> u64 {
        self.spellings.predicted
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_each_path_once_however_spelled() {
        let mut t = PathTable::default();
        let c = &mut Cursor::default();
        let a = t.intern_absolute(b"/src/string/../include/x.h", c);
        assert_eq!(t.intern_absolute(b"/src/include/x.h", c), a);
        assert_eq!(t.intern(b"/src/include/x.h"), a);
        assert_eq!(t.intern_absolute(b"/src/string/../include/x.h", c), a);
        let b = t.intern_absolute(b"/src//string/./y.h", c);
        assert_ne!(a, b);
        assert_eq!((a, b), (PathId(0), PathId(1)));
        assert_eq!(t.name(b), b"/src/string/y.h");
        assert_eq!(t.names_from(1).len(), 1);
        assert_eq!(t.names_from(5).len(), 0);
    }

    /// Streams that repeat, diverge and interleave (predictions right and wrong) get the
    /// numbers their normalised paths have.
    #[test]
    fn predicted_spellings_get_their_own_numbers() {
        let mut t = PathTable::default();
        let (mut a, mut b) = (Cursor::default(), Cursor::default());
        let spell = |i: u64| format!("/inc/{}/../h{}.h", i % 7, (i * 2_654_435_761) % 23);
        let mut x = 1u64;
        for round in 0..40u64 {
            for i in 0..60u64 {
                // Mostly the same sequence; now and then another spelling in between.
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let k = if x >> 60 == 0 { x % 97 } else { i };
                let cursor = if (round + i) % 3 == 0 { &mut b } else { &mut a };
                let path = spell(k);
                let id = t.intern_absolute(path.as_bytes(), cursor);
                let mut norm = Vec::new();
                crate::paths::normalize_into(path.as_bytes(), &mut norm);
                assert_eq!(t.name(id), &norm[..], "{path}");
            }
        }
    }

    #[test]
    fn forgetting_spellings_keeps_numbers() {
        let mut t = PathTable::default();
        let c = &mut Cursor::default();
        let first = t.intern_absolute(b"/a/../b", c);
        for i in 0..PathTable::SPELLINGS + 10 {
            t.intern_absolute(format!("/d/./{i}").as_bytes(), c);
        }
        assert!(t.spellings.len() <= PathTable::SPELLINGS);
        assert_eq!(t.intern_absolute(b"/a/../b", c), first);
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
