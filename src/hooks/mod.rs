//! The user's Python hooks, run in one embedded interpreter for the whole build.
//!
//! A hooks file (`--hooks FILE`, `MAKESCOPE_HOOKS`, or `.makescope/hooks.py`) may define
//! any of `label(cmd)`, `started(cmd)` and `finished(cmd)`; the recorder calls them for
//! every command, from one thread, in order. `cmd` is a `makescope.Command` with the same
//! field names as the package's (`python/makescope`); the same object is passed to all
//! three calls for one command, so `started` can stash state that `finished` reads.
//!
//! What this module must never do: break the build or lose a command. A hook that raises
//! is reported once per hook function with its Python traceback, the command keeps its
//! default label and verdict, and [`Hooks::failed`] turns true so the recorder can exit 3
//! after a successful make. A hooks file that does not compile or raises while loading
//! is reported the same way (file, line, caret) and leaves hooks inert for the build.
//! Hooks never run inside the traced command: they run in the recorder.
//!
//! Without the `python` feature (the `python/` extension crate builds the library that
//! way) [`Hooks::load`] reports that hooks are unavailable.

use std::path::{Path, PathBuf};

use crate::access::AccessKind;
use crate::output::{CommandInfo, Label, Outcome};

#[cfg(feature = "python")]
mod python;

/// What hooks decided about a finished command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// `(name, value)` pairs for the `tag` table, in the order the hook set them.
    pub tags: Vec<(String, Option<String>)>,
    /// Set when the command runs a test case.
    pub test_name: Option<String>,
    /// `PASS`, `FAIL`, … as the hook said; when a hook names a test but gives no result,
    /// `PASS` if the command exited 0 and `FAIL` otherwise.
    pub test_result: Option<String>,
}

/// The files a traced command touched, for `cmd.reads` / `cmd.writes`. Absolute paths as
/// the store keeps them, sorted, each once. The recorder passes `None` when the command
/// was not traced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files {
    /// Read, executed, stat'ed, listed or probed ([`AccessKind::is_read`]: what the DAG's
    /// edges lead into, the Python package's `READ_KINDS`).
    pub reads: Vec<Vec<u8>>,
    /// Written, created, truncated, appended, renamed into place, made a directory,
    /// symlink or hard link ([`AccessKind::is_write`]: where the DAG's edges start, the
    /// Python package's `WRITE_KINDS`).
    pub writes: Vec<Vec<u8>>,
}

impl Files {
    /// Sort a command's accesses (probes included) into reads and writes; kinds that
    /// are neither (remove, rename_from, chdir) are left out.
    pub fn from_accesses<'a>(accesses: impl IntoIterator<Item = (AccessKind, &'a [u8])>) -> Files {
        let mut files = Files::default();
        for (kind, path) in accesses {
            if kind.is_read() {
                files.reads.push(path.to_vec());
            } else if kind.is_write() {
                files.writes.push(path.to_vec());
            }
        }
        for list in [&mut files.reads, &mut files.writes] {
            list.sort();
            list.dedup();
        }
        files
    }
}

/// Why a hooks file could not be used at all (nothing of the user's Python ran).
#[derive(Debug, thiserror::Error)]
pub enum HooksError {
    #[error("cannot read hooks file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("hooks file {0}: makescope was built without Python (feature `python`)")]
    NoPython(PathBuf),
}

/// Where diagnostics about hooks go (tracebacks, syntax errors). Default: stderr.
pub type Reporter = Box<dyn FnMut(&str) + Send>;

/// Which hooks file applies: `explicit` (`--hooks`, or `MAKESCOPE_HOOKS` through clap),
/// else `.makescope/hooks.py` under `top` if it exists.
pub fn find(explicit: Option<&Path>, top: &Path) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    let default = top.join(".makescope").join("hooks.py");
    default.is_file().then_some(default)
}

/// Loaded hooks: one interpreter, one module, for the whole build.
pub struct Hooks {
    #[cfg(feature = "python")]
    inner: python::PyHooks,
}

impl Hooks {
    /// Load a hooks file, reporting to stderr. An unreadable file is an error (nothing
    /// ran); a syntax error or an exception while loading is reported with file, line
    /// and traceback and gives inert hooks whose [`Hooks::failed`] is already true.
    pub fn load(path: &Path) -> Result<Hooks, HooksError> {
        Hooks::load_with_reporter(path, Box::new(|text: &str| eprint!("{text}")))
    }

    /// [`Hooks::load`], sending diagnostics to `reporter` (e.g. the printer, so they do
    /// not tear a progress line). Each diagnostic ends with a newline.
    pub fn load_with_reporter(path: &Path, reporter: Reporter) -> Result<Hooks, HooksError> {
        let source = std::fs::read(path).map_err(|source| HooksError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        #[cfg(feature = "python")]
        {
            Ok(Hooks {
                inner: python::PyHooks::load(path, &source, reporter),
            })
        }
        #[cfg(not(feature = "python"))]
        {
            let _ = (source, reporter);
            Err(HooksError::NoPython(path.to_path_buf()))
        }
    }

    /// The label a hook gives this command, if it gives one. Call before [`Hooks::started`].
    pub fn label(&mut self, info: &CommandInfo, default: &Label) -> Option<Label> {
        #[cfg(feature = "python")]
        return self.inner.label(info, default);
        #[cfg(not(feature = "python"))]
        {
            let _ = (info, default);
            None
        }
    }

    /// A command started.
    pub fn started(&mut self, info: &CommandInfo) {
        #[cfg(feature = "python")]
        self.inner.started(info);
        #[cfg(not(feature = "python"))]
        let _ = info;
    }

    /// A command finished (untraced: `cmd.reads`/`cmd.writes` are None). Every command
    /// that started must finish (failed and killed ones too), or its Python object is
    /// kept until the build ends.
    pub fn finished(&mut self, info: &CommandInfo, outcome: &Outcome) -> Verdict {
        self.finished_with_files(info, outcome, None)
    }

    /// [`Hooks::finished`], with the files a traced command touched.
    pub fn finished_with_files(
        &mut self,
        info: &CommandInfo,
        outcome: &Outcome,
        files: Option<&Files>,
    ) -> Verdict {
        #[cfg(feature = "python")]
        return self.inner.finished(info, outcome, files);
        #[cfg(not(feature = "python"))]
        {
            let _ = (info, outcome, files);
            Verdict::default()
        }
    }

    /// Whether any hook raised during the build, or the file failed to load.
    pub fn failed(&self) -> bool {
        #[cfg(feature = "python")]
        return self.inner.failed();
        #[cfg(not(feature = "python"))]
        false
    }

    /// One line for the end of the build when hooks raised, e.g.
    /// `hooks raised 12 times (label 10, finished 2); the first traceback of each is above`.
    pub fn summary(&self) -> Option<String> {
        #[cfg(feature = "python")]
        return self.inner.summary();
        #[cfg(not(feature = "python"))]
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_sort_accesses_into_the_readers_and_writers_kinds() {
        let accesses: Vec<(AccessKind, &[u8])> = AccessKind::ALL
            .into_iter()
            .map(|kind| (kind, kind.name().as_bytes()))
            .chain([
                (AccessKind::Append, &b"create"[..]),
                (AccessKind::Stat, &b"read"[..]),
            ])
            .collect();
        let files = Files::from_accesses(accesses);
        let names = |paths: &[Vec<u8>]| -> Vec<String> {
            paths
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        };
        assert_eq!(
            names(&files.reads),
            ["exec", "list", "probe", "read", "stat"]
        );
        assert_eq!(
            names(&files.writes),
            [
                "append",
                "create",
                "link",
                "mkdir",
                "rename_to",
                "symlink",
                "truncate",
                "write"
            ]
        );
    }
}
