//! make's own database (`make -p`, or the plugin's dump of it), parsed with nom into a
//! typed model; the listing of targets built on it ([`targets`]), which
//! `commands::targets` prints.
//!
//! What it owns: reading databases ([`parse`]), running make so that it prints one
//! without changing the tree ([`run`]), turning databases into a listing with locations
//! and doc comments read from the makefiles ([`list`], [`source`]), and the
//! `--recursive` caches ([`cache`]).
//!
//! What it must never do: let make run a recipe or remake a makefile while listing (see
//! [`run`] for how), write into the tree (the `--recursive` cache lives beside the
//! record, in its `cache/`), or print. It reads the record, never writes it; the
//! recorder's writer calls [`dump_section`] and [`cache::store_entry`] to keep each
//! make's listing as that make ends.

pub mod cache;
pub mod declared;
pub mod dump;
pub mod list;
pub mod model;
pub mod parse;
pub mod record;
pub mod run;
pub mod source;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::Config;
use list::Section;
use source::Makefiles;

/// What `makescope targets` lists.
#[derive(Debug, Clone)]
pub struct TargetsOptions {
    /// Run in this directory (default: the current one); paths are then shown relative
    /// to it.
    pub directory: Option<PathBuf>,
    /// Only phony targets (and no pattern rules).
    pub phony_only: bool,
    /// Every recorded make's targets, from the recorded build, instead of this
    /// directory's.
    pub recursive: bool,
    /// Follow a `.DEFAULT` rule that forwards every goal to another make.
    pub follow_default: bool,
    /// With `recursive`: which recorded build (default: the last one).
    pub build: Option<i64>,
    /// The make program to run.
    pub make_program: PathBuf,
    /// Options and variable assignments for make (`-f FILE`, `VAR=value`).
    pub make_args: Vec<OsString>,
}

/// What `targets` found.
pub enum Listing {
    /// Sections made now.
    Listed(Listed),
    /// The printed bytes of an identical `--recursive` listing (its warnings given
    /// again): nothing it was made from has changed since.
    Replayed(Vec<u8>),
}

/// Sections made now, with what they need to be shown and remembered.
pub struct Listed {
    /// One per directory (with `phony_only`, already filtered).
    pub sections: Vec<Section>,
    /// Where paths are shown relative to.
    pub base: PathBuf,
    /// Where `--recursive` keeps the printed listing for next time.
    output: Option<PendingOutput>,
}

struct PendingOutput {
    db: PathBuf,
    view: String,
    output: cache::Output,
}

impl Listed {
    /// Keep `printed` (these sections as shown) for the next identical `--recursive`
    /// listing; nothing for a listing of one directory.
    pub fn remember(self, printed: Vec<u8>) {
        if let Some(mut pending) = self.output {
            pending.output.bytes = printed;
            pending.output.save(&pending.db, &pending.view);
        }
    }
}

/// List the targets `options` asks for; problems met on the way (dump lines not
/// understood, make's complaints) go to `warn` as they are met. `view` names everything
/// else that decides the printed bytes (how the caller prints), so that a `--recursive`
/// listing printed the same way before can be replayed.
pub fn targets(
    config: &Config,
    options: &TargetsOptions,
    view: &str,
    warn: &mut dyn FnMut(&str),
) -> Result<Listing> {
    let cwd = std::env::current_dir().context("cannot tell the current directory")?;
    let directory = match &options.directory {
        Some(d) => std::fs::canonicalize(cwd.join(d))
            .with_context(|| format!("no directory {}", d.display()))?,
        None => cwd.clone(),
    };
    let base = if options.directory.is_some() {
        directory.clone()
    } else {
        cwd
    };
    let (sections, output) = if options.recursive {
        let view = format!(
            "{}\0{}\0{view}\0{}",
            base.display(),
            options.phony_only,
            options.make_program.display()
        );
        match recursive(config, options, view, warn)? {
            Recursive::Replayed(output) => {
                output.warnings.iter().for_each(|w| warn(w));
                return Ok(Listing::Replayed(output.bytes));
            }
            Recursive::Listed(sections, output) => (sections, Some(output)),
        }
    } else {
        let section = listing_section(options, &directory)?;
        section.warnings.iter().for_each(|w| warn(w));
        (vec![section], None)
    };
    let sections = sections
        .into_iter()
        .map(|mut s| {
            if options.phony_only {
                s.targets.retain(|t| t.phony);
                s.pattern_rules.clear();
            }
            s
        })
        .collect();
    Ok(Listing::Listed(Listed {
        sections,
        base,
        output,
    }))
}

/// Report a dump's unparsed lines once, shortly.
fn dump_warnings(what: &str, errors: &[parse::ParseError]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(first) = errors.first() {
        let more = if errors.len() > 1 {
            format!(" (and {} more such lines)", errors.len() - 1)
        } else {
            String::new()
        };
        out.push(format!(
            "{what}:{}: {} `{}`{more}; those entries are left out (is this GNU make 4.3's format?)",
            first.line, first.message, first.text
        ));
    }
    out
}

/// Run make in `directory` and make the section of its listing.
fn make_section(
    program: &Path,
    directory: &Path,
    make_args: &[OsString],
    env: Option<&[(OsString, OsString)]>,
    follow: bool,
) -> Result<Section> {
    let output = run::print_database(program, directory, make_args, env, follow)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut warnings = Vec::new();
    for line in stderr.lines() {
        let noise =
            line.contains("'.DEFAULT'") || line.contains("] Error ") || line.trim().is_empty();
        if line.ends_with("Stop.") && !noise {
            anyhow::bail!(
                "make cannot read the makefiles in {}: {line}",
                directory.display()
            );
        }
        if !noise && !line.contains("jobserver") {
            warnings.push(format!("make in {}: {line}", directory.display()));
        }
    }
    let dump = parse::parse_bytes(&output.stdout).map_err(|e| {
        anyhow::anyhow!(
            "{e}: `{} -p` in {} printed none ({})",
            program.display(),
            directory.display(),
            output.status
        )
    })?;
    warnings.extend(dump_warnings(
        &format!("`make -p` output in {}", directory.display()),
        &dump.errors,
    ));
    let mut sources = Makefiles::default();
    let mut section = list::section_from_run(&dump.databases, directory, &mut sources);
    section.warnings.extend(warnings);
    Ok(section)
}

fn listing_section(options: &TargetsOptions, directory: &Path) -> Result<Section> {
    for arg in &options.make_args {
        let a = arg.to_string_lossy();
        if !a.starts_with('-')
            && !a.contains('=')
            && !options.make_args.iter().any(|x| x == "-f" || x == "-C")
        {
            anyhow::bail!("`{a}` looks like a goal: `makescope targets -- ARGS` takes make options and VAR=value only");
        }
    }
    let section = make_section(
        &options.make_program,
        directory,
        &options.make_args,
        None,
        options.follow_default,
    )?;
    if section.makefiles.is_empty() {
        anyhow::bail!(
            "no makefile in {} (make found none to read)",
            directory.display()
        );
    }
    Ok(section)
}

/// Merge one make's listing into its directory's section.
fn merge(into: &mut Section, part: Section) {
    if into.targets.is_empty() && into.argv.is_empty() {
        let argv = std::mem::take(&mut into.argv);
        *into = part;
        into.argv.splice(0..0, argv);
        return;
    }
    into.argv.extend(part.argv);
    if into.source != part.source && !into.source.contains('+') {
        into.source = format!("{}+{}", into.source, part.source);
    }
    if into.default_goal.is_none() {
        into.default_goal = part.default_goal;
    }
    for m in part.makefiles {
        if !into.makefiles.contains(&m) {
            into.makefiles.push(m);
        }
    }
    let known: std::collections::HashSet<String> =
        into.targets.iter().map(|t| t.name.clone()).collect();
    into.targets.extend(
        part.targets
            .into_iter()
            .filter(|t| !known.contains(&t.name)),
    );
    for p in part.pattern_rules {
        if !into.pattern_rules.contains(&p) {
            into.pattern_rules.push(p);
        }
    }
    into.warnings.extend(part.warnings);
}

/// The listing of a recorded make's dump (`dump`, parsed from the file the record names
/// `name`) for a make that ran in `directory`; who ran it (argv, level) is left for the
/// caller. The recorder makes it as each make ends ([`cache::store_entry`]), with the
/// files under its per-run directory read as missing (`gone`: they are, once the build
/// has ended), and `--recursive` when its cache lacks it: both the same way, so either
/// gives the same listing.
pub fn dump_section(
    dump: &parse::Dump,
    directory: &Path,
    name: &Path,
    gone: Option<&Path>,
) -> Section {
    let mut sources = Makefiles::without(gone);
    let mut section = Section {
        directory: directory.to_path_buf(),
        source: "dump".into(),
        ..Section::default()
    };
    for db in &dump.databases {
        list::add_database(&mut section, db, directory, &mut sources);
    }
    list::sort(&mut section);
    section.warnings = dump_warnings(&name.display().to_string(), &dump.errors);
    section
}

/// The key under which `--recursive` caches the listing of the dump the record names
/// `name`.
pub fn dump_key(name: &Path) -> String {
    format!("dump\0{}", name.display())
}

/// The files a section's listing was made from, for the cache.
pub fn inputs(section: &Section, dump: Option<&Path>) -> Vec<cache::Identity> {
    let mut paths: Vec<&Path> = dump.into_iter().collect();
    paths.extend(section.makefiles.iter().map(PathBuf::as_path));
    for t in &section.targets {
        for p in [&t.location, &t.recipe].into_iter().flatten() {
            if !paths.contains(&p.file.as_path()) {
                paths.push(&p.file);
            }
        }
    }
    paths.into_iter().map(cache::Identity::of).collect()
}

/// One recorded make's section, and the dump it was read from (none when make had to
/// be run). A dump that cannot be read is a warning: make is run instead.
fn recorded_section(
    options: &TargetsOptions,
    make: &record::RecordedMake,
    warn: &mut dyn FnMut(&str),
) -> Result<(Section, Option<PathBuf>)> {
    let argv: Vec<String> = make
        .argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(dump_path) = make
        .makedb_path
        .as_ref()
        .filter(|p| dump::locate(p).is_some())
    {
        let bytes = dump::read(dump_path)
            .with_context(|| format!("cannot read {}", dump_path.display()))?;
        match parse::parse_bytes(&bytes) {
            Ok(dump) => {
                let mut section = dump_section(&dump, &make.directory, dump_path, None);
                section.level = Some(make.level as u32);
                section.argv = vec![argv];
                // The file the listing came from, as it is now: its identity keeps the
                // cached listing valid.
                let file = dump::locate(dump_path).unwrap_or_else(|| dump_path.clone());
                return Ok((section, Some(file)));
            }
            Err(e) => warn(&format!(
                "{}: {e}; running make in {} instead",
                dump_path.display(),
                make.directory.display()
            )),
        }
    }
    // No dump: run make the way the record says this sub-make ran, but listing only.
    let mut make_args: Vec<OsString> = run::listing_args(make.argv.get(1..).unwrap_or(&[]));
    // The recorded directory is where the make ran: a `-C` in its argv is already applied.
    let mut i = 0;
    while i < make_args.len() {
        let a = make_args[i].to_string_lossy().into_owned();
        if a == "-C" || a == "--directory" {
            make_args.drain(i..(i + 2).min(make_args.len()));
        } else if a.starts_with("-C") || a.starts_with("--directory=") {
            make_args.remove(i);
        } else {
            i += 1;
        }
    }
    let env = make.env.as_ref().map(|env| {
        env.iter()
            .map(|(k, v)| {
                if k == "MAKEFLAGS" {
                    (k.clone(), run::clean_makeflags(v))
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect::<Vec<_>>()
    });
    let mut section = make_section(
        &options.make_program,
        &make.directory,
        &make_args,
        env.as_deref(),
        false,
    )?;
    section.argv = vec![argv];
    section.level = Some(make.level as u32);
    Ok((section, None))
}

enum Recursive {
    Replayed(cache::Output),
    Listed(Vec<Section>, PendingOutput),
}

/// `--recursive`: the listing of every recorded make. When nothing changed since the
/// last identical listing (`view`), its output is replayed from the cache without
/// reading the per-make listings at all (glibc's are ~100 MB of JSON).
fn recursive(
    config: &Config,
    options: &TargetsOptions,
    view: String,
    warn: &mut dyn FnMut(&str),
) -> Result<Recursive> {
    let (build, makes) = record::makes(config, options.build)?;
    if makes.is_empty() {
        anyhow::bail!(
            "build {build} in {} recorded no make processes",
            config.db.display()
        );
    }
    let keys: Vec<String> = makes
        .iter()
        .map(|make| {
            match make
                .makedb_path
                .as_ref()
                .filter(|p| dump::locate(p).is_some())
            {
                Some(dump) => dump_key(dump),
                None => format!("make\0{}\0{:?}", make.directory.display(), make.argv),
            }
        })
        .collect();
    if let Some(output) = cache::Output::load(&config.db, &view, &keys) {
        return Ok(Recursive::Replayed(output));
    }
    let mut cache = cache::Cache::open(&config.db);
    let sections = recursive_sections(options, &makes, &keys, &mut cache, warn)?;
    let output = cache::Output {
        inputs: cache.inputs(&keys),
        warnings: sections.iter().flat_map(|s| s.warnings.clone()).collect(),
        keys,
        bytes: Vec::new(),
    };
    cache.save(&output.keys);
    let pending = PendingOutput {
        db: config.db.clone(),
        view,
        output,
    };
    Ok(Recursive::Listed(sections, pending))
}

fn recursive_sections(
    options: &TargetsOptions,
    makes: &[record::RecordedMake],
    keys: &[String],
    cache: &mut cache::Cache,
    warn: &mut dyn FnMut(&str),
) -> Result<Vec<Section>> {
    // The listings the cache does not hold, each read from its dump (or make) on its
    // own thread: glibc's 143 dumps are ~300 MB of text, parsing is all CPU.
    let mut parts: Vec<Option<Section>> = cache.get_all(keys);
    let missing: Vec<usize> = (0..makes.len()).filter(|&i| parts[i].is_none()).collect();
    type Listed = Result<(Section, Option<PathBuf>, Vec<String>)>;
    let mut listed: Vec<Option<Listed>> = (0..missing.len()).map(|_| None).collect();
    {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = std::sync::Mutex::new(&mut listed);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(missing.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&i) = missing.get(n) else { break };
                    let make = &makes[i];
                    let mut warnings = Vec::new();
                    let result =
                        recorded_section(options, make, &mut |w: &str| warnings.push(w.to_owned()))
                            .map(|(part, dump)| (part, dump, warnings))
                            .with_context(|| {
                                format!(
                                    "listing the make in {} (make id {})",
                                    make.directory.display(),
                                    make.id
                                )
                            });
                    results.lock().unwrap_or_else(|e| e.into_inner())[n] = Some(result);
                });
            }
        });
    }
    let mut listing_warnings: Vec<Vec<String>> = vec![Vec::new(); makes.len()];
    for (n, result) in listed.into_iter().enumerate() {
        let i = missing[n];
        let (part, dump, warnings) = result.expect("every missing listing was made")?;
        listing_warnings[i] = warnings;
        cache.put(
            keys[i].clone(),
            inputs(&part, dump.as_deref()),
            part.clone(),
        );
        parts[i] = Some(part);
    }
    let mut sections: Vec<Section> = Vec::new();
    for ((make, part), listing) in makes.iter().zip(parts).zip(listing_warnings) {
        let mut part = part.expect("every listing is cached or made");
        // A listing is shared by the makes with the same dump; who ran it is this make.
        part.argv = vec![make
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()];
        part.level = Some(make.level as u32);
        listing.iter().for_each(|w| warn(w));
        part.warnings.iter().for_each(|w| warn(w));
        match sections.iter_mut().find(|s| s.directory == make.directory) {
            Some(section) => merge(section, part),
            None => sections.push(part),
        }
    }
    sections.iter_mut().for_each(list::sort);
    Ok(sections)
}
