//! `build.ninja` from a traced build: the recorded commands re-run by ninja, without
//! make.
//!
//! One edge per leaf command (a recipe line that was traced and ended well; the lines
//! that run sub-makes are not edges: their sub-makes' commands are). Its command is what
//! `makescope replay` runs for that line: the recorded shell, its flags and the line, in
//! the directory make ran it, with only the recorded environment (`env -i`, as replay's
//! plan makes it: makescope's own variables and make's jobserver out; a redacted secret
//! read from ninja's environment when the edge runs, which stops with a message when it
//! is not set; a command whose shell the record does not say runs its recorded argv in
//! ninja's environment, and the export counts those). Each distinct environment is one
//! file-level variable (`env_N`) that the edges name, so that glibc's 13,000 edges spell
//! its ~70 environments once. Its outputs are the files it
//! wrote that exist now (temporaries it removed or renamed away are not), each given to
//! the last command that wrote it; a command left without one (`mkdir`, a test run, an
//! earlier writer of an archive) gets a stamp file it touches. Its inputs (implicit
//! dependencies, so that a changed header is seen) are the files it read or executed
//! that are another edge's output or a file on disk now (not `/etc/ld.so.cache`),
//! and, for ordering, the outputs of the recipe's line before it, of an earlier
//! writer of one of its outputs, and of the last writer of a file it read that is gone
//! now (an intermediate it or a later command removed).
//! `restat = 1` when the command looked at one of its own outputs before writing
//! (`move-if-change`, `cmp -s … || mv …`): it may leave them as they were. Commands of
//! a make that has `.NOTPARALLEL` share the pool `serial` (depth 1). Descriptions are
//! the labels. Beside the stamps, in ninja's `builddir`, goes the log ninja would have
//! written had it run the build (each output's mtime now, each command's hash), so
//! that a first `ninja` after the export does nothing when the tree is as the build
//! left it.
//!
//! What it must never do: export from a build without file tracing (there are no inputs
//! or outputs to say), or write anywhere but the file it is asked to write and its
//! `builddir`.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::access::AccessKind;
use crate::config::Config;
use crate::paths;
use crate::replay::script::sh_quote;
use crate::replay::{Mode, Plan, Recipe, Variable};
use crate::store::{BuildRow, CommandFilter};

/// What `makescope export ninja` is asked.
#[derive(Debug, Clone, Default)]
pub struct NinjaOptions {
    pub build: Option<i64>,
    /// ninja's `builddir` (absolute): its log (written here, as if ninja had run the
    /// build) and the stamp files; `.makescope/ninja` beside the record.
    pub stamps: std::path::PathBuf,
}

/// The ninja file of a build.
#[derive(Debug)]
pub struct Ninja {
    pub build: BuildRow,
    pub text: String,
    pub edges: usize,
    /// The distinct recorded environments the edges run with.
    pub environments: usize,
    /// Commands whose shell the record does not say: their edges run the recorded argv
    /// in ninja's environment.
    pub unreplayable: usize,
}

/// The inverse of [`escape_path`].
fn unescape_path(escaped: &str) -> String {
    escaped
        .replace("$ ", " ")
        .replace("$:", ":")
        .replace("$$", "$")
}

/// A path as ninja reads it in a `build` line.
fn escape_path(path: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(path).ok()?;
    if text.contains('\n') {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        match c {
            '$' => out.push_str("$$"),
            ' ' => out.push_str("$ "),
            ':' => out.push_str("$:"),
            _ => out.push(c),
        }
    }
    Some(out)
}

/// Words as one shell line, each quoted; a newline (a recipe line continued with a
/// backslash keeps it) cannot be written in a ninja variable, so such words go through
/// `printf`.
fn shell_words<'a>(words: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut line = String::new();
    for (i, w) in words.into_iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        if w.contains(&b'\n') {
            let mut fmt = Vec::new();
            for &b in w {
                match b {
                    b'\n' => fmt.extend_from_slice(b"\\n"),
                    b'\\' => fmt.extend_from_slice(b"\\\\"),
                    b'%' => fmt.extend_from_slice(b"%%"),
                    _ => fmt.push(b),
                }
            }
            line.push_str("\"$(printf '");
            line.push_str(&String::from_utf8_lossy(&sh_quote(&fmt)).replace('\'', "'\"'\"'"));
            line.push_str("')\"");
        } else {
            line.push_str(&String::from_utf8_lossy(&sh_quote(w)));
        }
    }
    line
}

/// What runs one recorded command as `replay` runs it: the shell line after `cd DIR
/// && ` and the environment's `env -i …` prefix, both unescaped. `None` when the record
/// does not say the command's shell (the edge then runs its argv as recorded, in
/// ninja's environment).
fn replayed(row: crate::store::CommandRow) -> Option<(String, String)> {
    let recipe = Recipe { lines: vec![row] };
    // Mode::Script: a redacted secret is not looked up now; the edge reads it.
    let plan = Plan::new(&recipe, Some(1), Mode::Script, &|_: &[u8]| None).ok()?;
    let line = plan.lines.first()?;
    let argv = shell_words(plan.argv(line));
    let mut env = String::from("env -i");
    for variable in &plan.environment {
        env.push(' ');
        match variable {
            Variable::Set(entry) => env.push_str(&shell_words([entry.as_slice()])),
            Variable::Secret(name) => {
                let name = String::from_utf8_lossy(name);
                let _ = write!(
                    env,
                    "\"{name}=${{{name}?is redacted in the record: set it to run this edge}}\""
                );
            }
        }
    }
    Some((argv, env))
}

/// ninja's hash of a command line (`MurmurHash64A`, as its build log keeps it).
fn murmur_hash_64a(key: &[u8]) -> u64 {
    const SEED: u64 = 0xDECA_FBAD_DECA_FBAD;
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = SEED ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// A file's modification time as ninja's log keeps it (nanoseconds).
fn mtime_ns(path: &std::path::Path) -> Option<i64> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(m.mtime() * 1_000_000_000 + m.mtime_nsec())
}

/// Every file name the ninja file writes (escaped), each once: edges list their
/// inputs and outputs as indexes here, so that a glibc export's 2.7 million (command,
/// input) pairs are sorted, grouped and compared as integers, not strings.
#[derive(Default)]
struct Files {
    names: Vec<String>,
    /// Each name's directory, as an index into `dir_ids`' values.
    dirs: Vec<u32>,
    dir_ids: FxHashMap<String, u32>,
    /// Each name's place in the names' sorted order (filled by [`Files::sort`]).
    rank: Vec<u32>,
}

impl Files {
    fn add(&mut self, name: String) -> u32 {
        let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
        let next = self.dir_ids.len() as u32;
        let dir = match self.dir_ids.get(dir) {
            Some(&d) => d,
            None => {
                self.dir_ids.insert(dir.to_string(), next);
                next
            }
        };
        self.names.push(name);
        self.dirs.push(dir);
        (self.names.len() - 1) as u32
    }

    /// Rank every name by its text (called once all are added).
    fn sort(&mut self) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        self.rank = vec![0; order.len()];
        for (i, &f) in order.iter().enumerate() {
            self.rank[f as usize] = i as u32;
        }
    }

    fn join(&self, files: &[u32]) -> String {
        let mut out = String::new();
        for (i, &f) in files.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&self.names[f as usize]);
        }
        out
    }
}

/// Inputs in the same directory, as sets shared between edges: each distinct set is
/// one phony edge (`build _in_N: phony a b c`, whose mtime ninja takes from its newest
/// input), so that a big build's thousand compiles reading the same headers name each
/// set once. A glibc compile reads ~200 files in ~20 directories.
#[derive(Default)]
struct Groups {
    ids: FxHashMap<Vec<u32>, usize>,
}

impl Groups {
    /// The names an edge lists for `inputs` (sorted by name, so each directory's are
    /// together), defining new sets in `text`.
    fn group(&mut self, files: &Files, inputs: &[u32], text: &mut String) -> String {
        let mut names = String::new();
        for same_dir in inputs.chunk_by(|&a, &b| files.dirs[a as usize] == files.dirs[b as usize]) {
            if !names.is_empty() {
                names.push(' ');
            }
            if same_dir.len() < 3 {
                names.push_str(&files.join(same_dir));
                continue;
            }
            let next = self.ids.len();
            let id = *self.ids.entry(same_dir.to_vec()).or_insert_with(|| {
                let _ = writeln!(text, "\nbuild _in_{next}: phony {}", files.join(same_dir));
                next
            });
            let _ = write!(names, "_in_{id}");
        }
        names
    }
}

/// The ninja file of the last build (or `options.build`).
pub fn ninja(config: &Config, options: &NinjaOptions) -> Result<Ninja> {
    let (store, build) = config.open_build(options.build)?;
    if !build.traced {
        bail!(
            "build {} was recorded without tracing: a ninja file needs the files each command read and wrote (record it with `makescope make`, without --no-trace)",
            build.id
        );
    }
    if build.state == "interrupted" || build.state == "running" {
        bail!(
            "build {} was interrupted: a ninja file needs a whole build; record it again",
            build.id
        );
    }
    let commands: Vec<_> = store
        .commands(build.id, &CommandFilter::default())?
        .into_iter()
        .filter(|c| c.traced == 1 && c.state == "ok")
        .collect();
    if commands.is_empty() {
        bail!(
            "build {} ran no traced command: there is nothing to export",
            build.id
        );
    }
    let ids: FxHashSet<i64> = commands.iter().map(|c| c.id).collect();
    let serial = crate::lint::serial_makes(&store, build.id)?;

    let content_write = |k: AccessKind| k.is_write() && k != AccessKind::Mkdir;
    let mut wrote: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
    let mut writers: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
    let mut wrote_pairs: FxHashSet<(i64, i64)> = FxHashSet::default();
    let mut renamed: FxHashSet<(i64, i64)> = FxHashSet::default();
    for (command, path, kind) in store.command_accesses(build.id, content_write)? {
        if kind == AccessKind::RenameTo {
            renamed.insert((command, path));
        }
        if ids.contains(&command) {
            wrote.entry(command).or_default().push(path);
            writers.entry(path).or_default().push(command);
            wrote_pairs.insert((command, path));
        }
    }
    let mut read: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
    // A file a command wrote and also looked at (read or stat'ed) first.
    let mut looked: FxHashSet<(i64, i64)> = FxHashSet::default();
    for (command, path, kind) in store.command_accesses(build.id, |k| {
        matches!(k, AccessKind::Read | AccessKind::Exec | AccessKind::Stat)
    })? {
        if wrote_pairs.contains(&(command, path)) {
            looked.insert((command, path));
            continue;
        }
        if kind != AccessKind::Stat && ids.contains(&command) {
            read.entry(command).or_default().push(path);
        }
    }
    let all_paths: FxHashSet<i64> = wrote
        .values()
        .chain(read.values())
        .flatten()
        .copied()
        .collect();
    let names = store.paths_of(all_paths.iter().copied())?;
    // The dynamic loader's cache says which libraries exist, not what they hold (those
    // are inputs themselves); every program reads it and every package install
    // rewrites it, which would make everything out of date.
    let is_file = |name: &[u8]| {
        name != b"/etc/ld.so.cache"
            && !name.starts_with(b"/proc/")
            && !name.starts_with(b"/dev/")
            && !name.starts_with(b"/sys/")
            && std::fs::metadata(paths::as_path(name)).is_ok_and(|m| m.is_file())
    };
    // The paths that are files now (one `stat` each), and those ninja can name.
    let mut files = Files::default();
    let mut exists: FxHashSet<i64> = FxHashSet::default();
    let mut file_of: FxHashMap<i64, u32> = FxHashMap::default();
    let mut sorted_paths: Vec<i64> = all_paths.into_iter().collect();
    sorted_paths.sort_unstable();
    for p in sorted_paths {
        if is_file(&names[&p]) {
            exists.insert(p);
            if let Some(name) = escape_path(&names[&p]) {
                file_of.insert(p, files.add(name));
            }
        }
    }
    let started: FxHashMap<i64, i64> = commands.iter().map(|c| (c.id, c.started_ns)).collect();
    // Each existing written file belongs to its last writer.
    let mut owner: FxHashMap<i64, i64> = FxHashMap::default();
    for (path, ws) in &writers {
        if exists.contains(path) {
            let last = ws.iter().max_by_key(|w| started[w]).expect("a writer");
            owner.insert(*path, *last);
        }
    }
    let stamp_dir = options.stamps.to_string_lossy().into_owned();
    let mut outputs: FxHashMap<i64, Vec<u32>> = FxHashMap::default();
    let mut stamped: FxHashSet<i64> = FxHashSet::default();
    for c in &commands {
        let mut outs: Vec<u32> = wrote
            .get(&c.id)
            .into_iter()
            .flatten()
            .filter(|p| owner.get(p) == Some(&c.id))
            .filter_map(|p| file_of.get(p).copied())
            .collect();
        outs.sort_unstable();
        outs.dedup();
        if outs.is_empty() {
            stamped.insert(c.id);
            let stamp = escape_path(format!("{stamp_dir}/{}", c.id).as_bytes()).unwrap_or_default();
            outs.push(files.add(stamp));
        }
        outputs.insert(c.id, outs);
    }
    files.sort();
    for outs in outputs.values_mut() {
        outs.sort_unstable_by_key(|&f| files.rank[f as usize]);
    }

    let mut text = String::new();
    let _ = writeln!(
        text,
        "# build.ninja made by `makescope export ninja` from build {} of {}\n\
         # (directory {}): one edge per recorded command.\n\
         ninja_required_version = 1.3\n\
         builddir = {}\n\n\
         pool serial\n  depth = 1\n\n\
         rule run\n  command = $cmd\n  description = $desc\n\n\
         rule run_restat\n  command = $cmd\n  description = $desc\n  restat = 1\n",
        build.id,
        config.db.display(),
        String::from_utf8_lossy(&build.directory),
        escape_path(stamp_dir.as_bytes()).unwrap_or_default()
    );
    let mut previous_line: FxHashMap<(Option<i64>, i64), i64> = FxHashMap::default();
    let mut groups = Groups::default();
    let mut environments: FxHashMap<String, usize> = FxHashMap::default();
    let mut unreplayable = 0;
    std::fs::create_dir_all(&options.stamps)?;
    let mut log = String::from("# ninja log v5\n");
    for c in &commands {
        let outs = &outputs[&c.id];
        let mut inputs: Vec<u32> = Vec::new();
        for p in read.get(&c.id).into_iter().flatten() {
            // A file written only after this command started (a stale read) does not
            // order it: that would turn the build around.
            match owner.get(p) {
                Some(w) if started[w] >= c.started_ns => continue,
                _ => {}
            }
            if let Some(&f) = file_of.get(p) {
                inputs.push(f);
            } else if !exists.contains(p) {
                // Gone now: an intermediate a command of the build consumed (glibc's
                // `%.d: %.dt` reads the compile's `.dt` and removes it). Its last writer
                // before this command orders it, through that writer's outputs, so that
                // a re-run of the writer re-runs this one (as `rebuild` does).
                let writer = writers.get(p).and_then(|ws| {
                    ws.iter()
                        .filter(|w| started[w] < c.started_ns)
                        .max_by_key(|w| started[w])
                });
                if let Some(w) = writer {
                    inputs.extend(&outputs[w]);
                }
            }
        }
        // The recipe's line before this one.
        if let Some(prev) = previous_line.insert((c.make_id, c.job), c.id) {
            inputs.extend(&outputs[&prev]);
        }
        // An earlier writer of a file this one writes (an archive updated in place).
        for p in wrote.get(&c.id).into_iter().flatten() {
            for w in writers.get(p).into_iter().flatten() {
                if *w != c.id && started[w] < c.started_ns {
                    inputs.extend(&outputs[w]);
                }
            }
        }
        inputs.retain(|i| !outs.contains(i));
        inputs.sort_unstable_by_key(|&f| files.rank[f as usize]);
        inputs.dedup();
        let inputs = groups.group(&files, &inputs, &mut text);
        let restat = wrote.get(&c.id).into_iter().flatten().any(|p| {
            owner.get(p) == Some(&c.id)
                && (looked.contains(&(c.id, *p)) || renamed.contains(&(c.id, *p)))
        });
        // `cmd` as ninja reads it, and as it runs (`$` single, `${env_N}` spelled out:
        // what ninja hashes for its log).
        let cd = format!("cd {} && ", shell_words([c.directory.as_slice()]));
        let (mut cmd, mut plain) = match replayed(c.clone()) {
            Some((argv, env)) => {
                let next = environments.len();
                let n = *environments.entry(env.clone()).or_insert_with(|| {
                    let _ = writeln!(text, "\nenv_{next} = {}", env.replace('$', "$$"));
                    next
                });
                (
                    format!(
                        "{}${{env_{n}}} {}",
                        cd.replace('$', "$$"),
                        argv.replace('$', "$$")
                    ),
                    format!("{cd}{env} {argv}"),
                )
            }
            None => {
                unreplayable += 1;
                let argv = shell_words(c.argv.iter().map(Vec::as_slice));
                (
                    format!("{cd}{argv}").replace('$', "$$"),
                    format!("{cd}{argv}"),
                )
            }
        };
        if stamped.contains(&c.id) {
            // Touched before the command, so that it is older than what the recipe's
            // next line writes; removed when the command fails.
            let stamp = shell_words([format!("{stamp_dir}/{}", c.id).as_bytes()]);
            let wrap = |inner: &str, stamp: &str| {
                format!("touch {stamp} && {inner} || {{ rm -f {stamp}; exit 1; }}")
            };
            cmd = wrap(&cmd, &stamp.replace('$', "$$"));
            plain = wrap(&plain, &stamp);
        }
        let desc = c
            .label
            .clone()
            .unwrap_or_else(|| String::from_utf8_lossy(&c.target).into_owned())
            .replace('$', "$$")
            .replace('\n', " ");
        let _ = write!(
            text,
            "\n# command {}\nbuild {}: {}",
            c.id,
            files.join(outs),
            if restat { "run_restat" } else { "run" }
        );
        if !inputs.is_empty() {
            let _ = write!(text, " | {inputs}");
        }
        let _ = write!(text, "\n  cmd = {cmd}\n  desc = {desc}\n");
        // The build log ninja would have written had it run this command: the outputs
        // as they are now, so that a first `ninja` finds the build done.
        let hash = murmur_hash_64a(plain.as_bytes());
        // A stamp is as old as its command's start (older than whatever the recipe's
        // next line writes); a restat edge's log entry as new as its end (it may have
        // left an older file in place).
        let ended = c.ended_ns.unwrap_or(c.started_ns);
        for &out in outs {
            let path = unescape_path(&files.names[out as usize]);
            if stamped.contains(&c.id) {
                let file = std::fs::File::create(&path).ok();
                let when = std::time::UNIX_EPOCH
                    + std::time::Duration::from_nanos(c.started_ns.max(0) as u64);
                if let Some(file) = file {
                    let _ = file.set_modified(when);
                }
            }
            if let Some(mtime) = mtime_ns(std::path::Path::new(&path)) {
                let mtime = if restat { mtime.max(ended) } else { mtime };
                let _ = writeln!(log, "0\t0\t{mtime}\t{path}\t{hash:x}");
            }
        }
        if c.make_id.is_some_and(|m| serial.contains(&m)) {
            text.push_str("  pool = serial\n");
        }
    }
    std::fs::write(options.stamps.join(".ninja_log"), log)?;
    Ok(Ninja {
        build,
        text,
        edges: commands.len(),
        environments: environments.len(),
        unreplayable,
    })
}
