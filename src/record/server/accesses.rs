//! What each owner (a command or a make) touched, aggregated until the owner ends.
//!
//! Accesses are kept by the supervisor's path numbers (millions of accesses, ~100,000
//! paths on glibc) and counted by (path, kind); the writer maps numbers to ids, so the
//! paths it has not been given yet go with an owner's accesses. Paths under makescope's
//! own directories are never recorded. This never decides who owns an access: the
//! caller says.

use rustc_hash::FxHashMap as HashMap;

use super::rows::Rows;
use crate::record::writer::Write;
use crate::store::{NewAccess, Owner};
use crate::trace::{self, PathTable};

struct Aggregate {
    count: i64,
    first_ns: i64,
    process_id: Option<i64>,
}

/// What one owner touched so far.
#[derive(Default)]
struct Touched {
    /// By (path number, kind), except probes.
    accesses: HashMap<(u32, u8), Aggregate>,
    /// Paths probed and found missing, repeats included (include-path searches are most
    /// of a compile's file calls: a push each, sorted and deduplicated by the writer).
    probes: Vec<u32>,
}

/// Deduplicate a command's probes in place once they take this many entries.
const PROBES_COMPACT: usize = 1 << 20;

/// Whether a path is under makescope's private directory, once looked at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Private {
    Unknown,
    No,
    Yes,
}

pub(super) struct Accesses {
    /// By owner, until the owner ends.
    by_owner: HashMap<Owner, Touched>,
    /// By path number: is it makescope's own file?
    private: Vec<Private>,
    /// makescope's directories (each with a trailing slash).
    private_dirs: [Vec<u8>; 2],
    /// How many of the supervisor's paths the writer has been given.
    paths_sent: usize,
}

impl Accesses {
    /// Paths under `private_dir` or `makedb_dir` (each with a trailing slash) are ours.
    pub fn new(private_dir: Vec<u8>, makedb_dir: Vec<u8>) -> Accesses {
        Accesses {
            by_owner: HashMap::default(),
            private: Vec::new(),
            private_dirs: [private_dir, makedb_dir],
            paths_sent: 0,
        }
    }

    /// Count an access of `owner`'s (`process_id`: the process that made it, asked
    /// only when it is needed).
    pub fn touch(
        &mut self,
        owner: Owner,
        process_id: impl FnOnce() -> Option<i64>,
        path: trace::PathId,
        kind: trace::AccessKind,
        time_ns: i64,
    ) {
        let touched = self.by_owner.entry(owner).or_default();
        if kind == trace::AccessKind::Probe {
            touched.probes.push(path.0);
            if touched.probes.len() >= PROBES_COMPACT {
                touched.probes.sort_unstable();
                touched.probes.dedup();
            }
            return;
        }
        let process_id = process_id();
        touched
            .accesses
            .entry((path.0, kind as u8))
            .and_modify(|a| a.count += 1)
            .or_insert(Aggregate {
                count: 1,
                first_ns: time_ns,
                process_id,
            });
    }

    /// Whether `path` is makescope's own (the fast path's helper, the socket, make's
    /// database dumps): never recorded.
    pub fn is_private(&mut self, paths: &PathTable, path: trace::PathId) -> bool {
        let i = path.0 as usize;
        if i >= self.private.len() {
            self.private.resize(i + 1, Private::Unknown);
        }
        if self.private[i] == Private::Unknown {
            let name = paths.name(path);
            self.private[i] = if self.private_dirs.iter().any(|dir| name.starts_with(dir)) {
                Private::Yes
            } else {
                Private::No
            };
        }
        self.private[i] == Private::Yes
    }

    /// The owners with accesses not yet flushed.
    pub fn owners(&self) -> Vec<Owner> {
        self.by_owner.keys().copied().collect()
    }

    /// Send an owner's accesses to the writer (and the paths it has not been given yet);
    /// with `hooks`, also return what it read and wrote, for them.
    pub fn flush(
        &mut self,
        owner: Owner,
        paths: &PathTable,
        build_id: i64,
        hooks: bool,
        rows: &mut Rows,
    ) -> Option<crate::hooks::Files> {
        let touched = self.by_owner.remove(&owner)?;
        if touched.accesses.is_empty() && touched.probes.is_empty() {
            return None;
        }
        let files = hooks.then(|| {
            let path = |number: u32| paths.name(trace::PathId(number));
            let accessed = touched.accesses.keys().filter_map(|&(number, kind)| {
                Some((trace::AccessKind::from_id(kind)?, path(number)))
            });
            let probed = touched
                .probes
                .iter()
                .map(|&n| (trace::AccessKind::Probe, path(n)));
            crate::hooks::Files::from_accesses(accessed.chain(probed))
        });
        if paths.len() > self.paths_sent {
            let names = paths.names_from(self.paths_sent).to_vec();
            self.paths_sent = paths.len();
            rows.write(Write::Paths(names));
        }
        let accesses = touched
            .accesses
            .into_iter()
            .map(|((number, kind), a)| NewAccess {
                key: number,
                kind,
                process_id: a.process_id,
                first_ns: a.first_ns,
                count: a.count,
            })
            .collect();
        rows.write(Write::Accesses {
            build_id,
            owner,
            accesses,
            probes: touched.probes,
        });
        files
    }
}
