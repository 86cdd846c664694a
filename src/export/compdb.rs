//! `compile_commands.json` (Clang's JSON compilation database) from a recorded build:
//! one entry per source file of every compiler run.
//!
//! A traced command's compiler runs are its recorded processes: every exec of a C or C++
//! compiler driver (`gcc`, `cc`, `clang`, `g++`, cross and versioned names, as the
//! labels name them), in scripts and sub-makes too, with `arguments` exactly as
//! executed and `directory` the process's own working directory. A command that was
//! not traced (`makescope make --no-trace`, or a record from a build without tracing)
//! has no processes: its recipe text, as make expanded it, is split as the labels split
//! it (`cd`, `VAR=x` prefixes and wrappers looked through); a compiler that only a
//! script or `sh -c` runs is then missed, and shell variables stay unexpanded.
//!
//! An entry is a compile: `-c` or `-S`, or a compile-and-link (`gcc x.c -o prog`) with
//! source operands. Preprocessor runs (`-E`, `-M`, `-MM` alone) are not compiles.
//! `file` and `output` are absolute (joined to `directory`), as Bear writes them.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::{json, Value};

use crate::config::Config;
use crate::output::{compiler_run, compilers_in, shell::basename};
use crate::paths;
use crate::store::BuildRow;

/// What `makescope export compdb` is asked.
#[derive(Debug, Clone, Default)]
pub struct CompdbOptions {
    pub build: Option<i64>,
    /// Only sources under this directory (absolute, or relative to the current one).
    pub filter: Option<PathBuf>,
}

/// One entry: a source file of one compiler run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub command_id: i64,
    pub directory: Vec<u8>,
    pub file: Vec<u8>,
    pub arguments: Vec<Vec<u8>>,
    pub output: Option<Vec<u8>>,
}

/// The database of a build.
#[derive(Debug)]
pub struct Compdb {
    pub build: BuildRow,
    pub entries: Vec<Entry>,
    /// Commands whose compiler runs were read from their recipe text (not traced).
    pub from_text: usize,
}

const SOURCE_SUFFIXES: &[&str] = &[
    ".c", ".i", ".ii", ".cc", ".cp", ".cxx", ".cpp", ".CPP", ".c++", ".C", ".m", ".mi", ".mm",
    ".M", ".mii", ".s", ".S", ".sx",
];

fn is_source(word: &str, language: Option<&str>) -> bool {
    word != "-"
        && (SOURCE_SUFFIXES.iter().any(|s| word.ends_with(s))
            || language.is_some_and(|l| l != "none" && !l.ends_with("-header")))
}

/// The entries of one compiler run (`argv` as executed in `directory`), if it compiles.
fn entries_of(command_id: i64, directory: &[u8], argv: &[Vec<u8>], out: &mut Vec<Entry>) {
    let words: Vec<String> = argv
        .iter()
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let Some(run) = compiler_run(&words) else {
        return;
    };
    if matches!(run.mode.as_deref(), Some("-E")) {
        return;
    }
    let sources: Vec<&String> = run
        .inputs
        .iter()
        .filter(|w| is_source(w, run.language.as_deref()))
        .collect();
    for source in &sources {
        let output = match (&run.output, run.mode.as_deref()) {
            (Some(o), _) => Some(o.clone()),
            // `gcc -c x.c` writes x.o here; `-S`, x.s.
            (None, Some(mode)) => {
                let name = basename(source);
                let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
                Some(format!("{stem}.{}", if mode == "-S" { "s" } else { "o" }))
            }
            (None, None) => Some("a.out".into()),
        };
        out.push(Entry {
            command_id,
            directory: directory.to_vec(),
            file: paths::absolute(directory, source.as_bytes()),
            arguments: argv.to_vec(),
            output: output.map(|o| paths::absolute(directory, o.as_bytes())),
        });
    }
}

fn is_compiler_name(program: &[u8]) -> bool {
    let name = String::from_utf8_lossy(program);
    compiler_run(&[name.into_owned()]).is_some()
}

/// The compilation database of the last build (or `options.build`).
pub fn compdb(config: &Config, options: &CompdbOptions) -> Result<Compdb> {
    let (store, build) = config.open_build(options.build)?;
    let mut entries = Vec::new();
    for p in store.command_processes(build.id, is_compiler_name)? {
        let directory = p.cwd.clone().unwrap_or_default();
        entries_of(p.command_id.unwrap_or(0), &directory, &p.argv, &mut entries);
    }
    let mut from_text = 0;
    for c in store.command_heads(build.id)? {
        if c.traced != 0 {
            continue;
        }
        let text = String::from_utf8_lossy(&c.command);
        let before = entries.len();
        for (cd, words) in compilers_in(&text) {
            let directory = match cd {
                Some(dir) => paths::absolute(&c.directory, dir.as_bytes()),
                None => c.directory.clone(),
            };
            let argv: Vec<Vec<u8>> = words.into_iter().map(String::into_bytes).collect();
            entries_of(c.id, &directory, &argv, &mut entries);
        }
        from_text += usize::from(entries.len() > before);
    }
    if let Some(filter) = &options.filter {
        let cwd = std::env::current_dir()?;
        let dir = paths::absolute(paths::as_bytes(&cwd), paths::as_bytes(filter));
        entries.retain(|e| {
            e.file.starts_with(&dir)
                && (e.file.len() == dir.len() || e.file[dir.len()] == b'/' || dir.ends_with(b"/"))
        });
    }
    // The same compile twice (a `ccache` masquerading as `gcc` runs the real one):
    // once, the first seen.
    let mut seen = HashSet::new();
    entries.retain(|e| {
        seen.insert((
            e.directory.clone(),
            e.file.clone(),
            e.arguments[1..].to_vec(),
            e.output.clone(),
        ))
    });
    Ok(Compdb {
        build,
        entries,
        from_text,
    })
}

fn text(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

impl Compdb {
    /// The database as Clang reads it: an array of
    /// `{directory, file, arguments, output}`.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.entries
                .iter()
                .map(|e| {
                    let mut entry = json!({
                        "directory": text(&e.directory),
                        "file": text(&e.file),
                        "arguments": e.arguments.iter().map(|a| text(a)).collect::<Vec<_>>(),
                    });
                    if let Some(output) = &e.output {
                        entry["output"] = text(output);
                    }
                    entry
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &str, argv: &[&str]) -> Vec<(String, Option<String>)> {
        let argv: Vec<Vec<u8>> = argv.iter().map(|a| a.as_bytes().to_vec()).collect();
        let mut out = Vec::new();
        entries_of(1, dir.as_bytes(), &argv, &mut out);
        out.into_iter()
            .map(|e| {
                (
                    String::from_utf8(e.file).unwrap(),
                    e.output.map(|o| String::from_utf8(o).unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn compiles_are_entries_and_other_runs_are_not() {
        assert_eq!(
            entries("/b", &["gcc", "-c", "-I", "inc.c", "../s/x.c", "-o", "x.o"]),
            vec![("/s/x.c".into(), Some("/b/x.o".into()))]
        );
        assert_eq!(
            entries("/b", &["cc", "-c", "a.c", "b.cpp"]),
            vec![
                ("/b/a.c".into(), Some("/b/a.o".into())),
                ("/b/b.cpp".into(), Some("/b/b.o".into()))
            ]
        );
        assert_eq!(
            entries("/b", &["gcc", "-x", "c", "-c", "gen.inc", "-o", "g.o"]),
            vec![("/b/gen.inc".into(), Some("/b/g.o".into()))]
        );
        assert!(entries("/b", &["gcc", "-E", "x.c"]).is_empty());
        assert!(entries("/b", &["gcc", "-M", "x.c"]).is_empty());
        assert!(entries("/b", &["gcc", "-o", "prog", "a.o"]).is_empty());
        assert!(entries("/b", &["gcc", "-c", "-x", "c", "-"]).is_empty());
        assert!(entries("/b", &["cat", "x.c"]).is_empty());
        assert!(entries(
            "/b",
            &["/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "x.c", "-o", "x.s"]
        )
        .is_empty());
    }
}
