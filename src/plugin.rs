//! The make plugin outside a recorded build: a copy of `makescope.so` at a path that
//! stays, so that any makefile can `load $(shell makescope plugin)` and use `$(python …)`.
//!
//! It owns where that copy lives (`$XDG_DATA_HOME/makescope/VERSION/makescope.so`, else
//! `~/.local/share/makescope/VERSION/makescope.so`) and how a copy is written: to a
//! temporary file beside it, then renamed over it, so that a reader (another make, a
//! concurrent `makescope plugin`) sees the old file or the whole new one, never a part.
//!
//! It also owns how `makescope make` loads the plugin into every make of a build: the
//! makefile it names in MAKEFILES ([`load_makefile`]), or the `--eval` argument
//! ([`load_argument`]), and how each is recognised again (for the record and replay).
//!
//! What it must never do: write anything when the copy already holds this binary's
//! plugin (a makefile runs `makescope plugin` on every parse), or carry its own copy of
//! the plugin's bytes (they are [`crate::record::plugin`]'s).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use std::os::unix::ffi::OsStrExt;

use anyhow::{bail, Context, Result};

/// The plugin's file name: in a build's private directory, in the data directory and in
/// an install directory.
pub const FILE_NAME: &str = "makescope.so";

/// The argument `makescope make` gives make to load the plugin at `path`
/// (`--eval=load PATH`) when the command line sets MAKEFILES (otherwise it names
/// [`load_makefile`] in MAKEFILES): it travels to every sub-make in `MAKEFLAGS`.
pub fn load_argument(path: &Path) -> std::ffi::OsString {
    let mut eval = std::ffi::OsString::from(LOAD);
    eval.push(path);
    eval
}

/// Whether `word` (of make's argv or of `MAKEFLAGS`) is the argument
/// [`load_argument`] makes, which the user did not give.
pub fn is_load_argument(word: &[u8]) -> bool {
    word.starts_with(LOAD.as_bytes())
        && word
            .strip_suffix(FILE_NAME.as_bytes())
            .is_some_and(|dir| dir.ends_with(b"/"))
}

const LOAD: &str = "--eval=load ";

/// The name of the makefile every make of a recorded build reads first
/// ([`load_makefile`]).
pub const MAKEFILE_NAME: &str = "makescope.mk";

/// The makefile that loads the plugin into every make of the build, named in the
/// MAKEFILES environment variable, which make reads before any other makefile and
/// passes on to every sub-make in its environment. Unlike `--eval`, it leaves
/// `$(MAKEFLAGS)` as make would have it. What it leaves behind, it clears:
/// `$(MAKEFILE_LIST)` is made again as make starts it (empty, simple, from the
/// makefile), and a `::` rule without prerequisites keeps make from trying to remake it
/// (main.c: such a makefile "might loop"). make takes no default goal from it.
pub fn load_makefile(plugin: &Path, makefile: &Path) -> Result<Vec<u8>> {
    fn word(path: &Path) -> Result<&[u8]> {
        let bytes = path.as_os_str().as_bytes();
        if bytes.iter().any(|b| b" \t\n\\$#:;=%()".contains(b)) {
            bail!(
                "the temporary directory must not contain spaces or make's special characters: {}",
                path.display()
            );
        }
        Ok(bytes)
    }
    let mut text = Vec::new();
    text.extend_from_slice(b"load ");
    text.extend_from_slice(word(plugin)?);
    text.extend_from_slice(b"(makescope_build_setup)\nMAKEFILE_LIST :=\n");
    text.extend_from_slice(word(makefile)?);
    text.extend_from_slice(b":: ;\n");
    Ok(text)
}

/// Whether `word` (of a `MAKEFILES` value) names the makefile [`load_makefile`] made.
pub fn is_load_makefile(word: &[u8]) -> bool {
    word.strip_suffix(MAKEFILE_NAME.as_bytes())
        .is_some_and(|dir| dir.ends_with(b"/"))
}

/// Where `makescope plugin` puts the plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginOptions {
    /// Copy it into this directory (which must exist) instead of the data directory.
    pub install: Option<PathBuf>,
}

/// The directory of this makescope version's stable copy:
/// `$XDG_DATA_HOME/makescope/VERSION`, else `$HOME/.local/share/makescope/VERSION`.
pub fn data_directory() -> Result<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = var("XDG_DATA_HOME")
        .filter(|d| d.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".local/share")));
    let Some(base) = base else {
        bail!("neither XDG_DATA_HOME nor HOME is set: use `makescope plugin --install DIR`");
    };
    Ok(base.join("makescope").join(env!("CARGO_PKG_VERSION")))
}

/// Put the plugin where `options` says and return its path: the stable copy in the
/// data directory (written only when missing or different), or `DIR/makescope.so`.
pub fn install(options: &PluginOptions) -> Result<PathBuf> {
    let directory = match &options.install {
        Some(directory) => {
            if !directory.is_dir() {
                bail!("{} is not a directory", directory.display());
            }
            directory.clone()
        }
        None => {
            let directory = data_directory()?;
            std::fs::create_dir_all(&directory)
                .with_context(|| format!("cannot create {}", directory.display()))?;
            directory
        }
    };
    let path = directory.join(FILE_NAME);
    let bytes = crate::record::plugin();
    // A development build keeps the version but not the bytes: compare, not just look.
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(path);
    }
    write_atomically(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Write `bytes` to a new file beside `path`, then rename it to `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let mut attempt = 0u32;
    let (temporary, mut file) = loop {
        let temporary =
            directory.join(format!(".{FILE_NAME}.{}.{attempt}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&temporary)
        {
            Ok(file) => break (temporary, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_install_replaces_a_different_file_whole_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"an older plugin").unwrap();
        let options = PluginOptions {
            install: Some(dir.path().to_path_buf()),
        };
        let path = install(&options).unwrap();
        assert_eq!(path, dir.path().join(FILE_NAME));
        assert_eq!(std::fs::read(&path).unwrap(), crate::record::plugin());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
    }

    #[test]
    fn installing_into_a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let options = PluginOptions {
            install: Some(dir.path().join("missing")),
        };
        let error = install(&options).unwrap_err();
        assert!(
            format!("{error:#}").contains("is not a directory"),
            "{error:#}"
        );
    }
}
