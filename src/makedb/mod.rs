//! make's own database (`make -p`, or the plugin's dump of it), parsed with nom into a
//! typed model; the `targets` subcommand built on it.
//!
//! What it owns: reading databases ([`parse`]), running make so that it prints one
//! without changing the tree ([`run`]), and turning databases into a listing with
//! locations and doc comments read from the makefiles ([`list`], [`source`]).
//!
//! What it must never do: let make run a recipe or remake a makefile while listing (see
//! [`run`] for how), or write into the tree (the `--recursive` cache lives in the user's
//! cache directory). It reads the record, never writes it.

pub mod cache;
pub mod list;
pub mod model;
pub mod parse;
pub mod record;
pub mod run;
pub mod source;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use list::{Section, Target};
use source::{relative, Makefiles};

/// `makescope targets` arguments.
#[derive(clap::Args, Debug)]
pub struct TargetsArgs {
    /// Run in this directory.
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Only phony targets.
    #[arg(long)]
    pub phony: bool,
    /// Also every sub-make's targets, from the recorded build.
    #[arg(long)]
    pub recursive: bool,
    /// Show prerequisites.
    #[arg(long)]
    pub prereqs: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not follow a `.DEFAULT` rule that forwards every goal to another make.
    #[arg(long)]
    pub no_follow: bool,
    /// With --recursive: which recorded build (default: the last one).
    #[arg(long, value_name = "ID", requires = "recursive")]
    pub build: Option<i64>,
    /// The make program to run.
    #[arg(
        long,
        env = "MAKESCOPE_MAKE",
        default_value = "make",
        value_name = "PROGRAM"
    )]
    pub make_program: PathBuf,
    /// Options and variable assignments for make (`-f FILE`, `VAR=value`), after `--`.
    #[arg(last = true, value_name = "MAKE ARGS")]
    pub make_args: Vec<OsString>,
}

/// Run `makescope targets`.
pub fn targets(config: &crate::cli::Config, args: &TargetsArgs) -> Result<u8> {
    let cwd = std::env::current_dir().context("cannot tell the current directory")?;
    let directory = match &args.directory {
        Some(d) => std::fs::canonicalize(cwd.join(d))
            .with_context(|| format!("no directory {}", d.display()))?,
        None => cwd.clone(),
    };
    let base = if args.directory.is_some() {
        directory.clone()
    } else {
        cwd
    };
    if args.recursive {
        return recursive(config, args, &base);
    }
    let sections = vec![listing_section(args, &directory)?];
    print(&sections, args, &base)?;
    Ok(0)
}

fn warn(message: &str) {
    eprintln!("makescope: warning: {message}");
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

fn listing_section(args: &TargetsArgs, directory: &Path) -> Result<Section> {
    for arg in &args.make_args {
        let a = arg.to_string_lossy();
        if !a.starts_with('-')
            && !a.contains('=')
            && !args.make_args.iter().any(|x| x == "-f" || x == "-C")
        {
            anyhow::bail!("`{a}` looks like a goal: `makescope targets -- ARGS` takes make options and VAR=value only");
        }
    }
    let section = make_section(
        &args.make_program,
        directory,
        &args.make_args,
        None,
        !args.no_follow,
    )?;
    if section.makefiles.is_empty() {
        anyhow::bail!(
            "no makefile in {} (make found none to read)",
            directory.display()
        );
    }
    for w in &section.warnings {
        warn(w);
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

/// The files a section's listing was made from, for the cache.
fn inputs(section: &Section, dump: Option<&Path>) -> Vec<cache::Identity> {
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

fn recorded_section(
    args: &TargetsArgs,
    make: &record::RecordedMake,
) -> Result<(Section, Option<PathBuf>)> {
    let argv: Vec<String> = make
        .argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(dump_path) = make.makedb_path.as_ref().filter(|p| p.exists()) {
        let bytes = std::fs::read(dump_path)
            .with_context(|| format!("cannot read {}", dump_path.display()))?;
        match parse::parse_bytes(&bytes) {
            Ok(dump) => {
                let mut sources = Makefiles::default();
                let mut section = Section {
                    directory: make.directory.clone(),
                    source: "dump".into(),
                    ..Section::default()
                };
                for db in &dump.databases {
                    list::add_database(&mut section, db, &make.directory, &mut sources);
                }
                list::sort(&mut section);
                section.level = Some(make.level as u32);
                section.argv = vec![argv];
                section.warnings = dump_warnings(&dump_path.display().to_string(), &dump.errors);
                return Ok((section, Some(dump_path.clone())));
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
        &args.make_program,
        &make.directory,
        &make_args,
        env.as_deref(),
        false,
    )?;
    section.argv = vec![argv];
    section.level = Some(make.level as u32);
    Ok((section, None))
}

/// `--recursive`: the listing of every recorded make. When nothing changed since the
/// last identical listing, its output is replayed from the cache without reading the
/// per-make listings at all (glibc's are ~100 MB of JSON).
fn recursive(config: &crate::cli::Config, args: &TargetsArgs, base: &Path) -> Result<u8> {
    let (build, makes) = record::makes(&config.db, args.build)?;
    if makes.is_empty() {
        anyhow::bail!(
            "build {build} in {} recorded no make processes",
            config.db.display()
        );
    }
    let keys: Vec<String> = makes
        .iter()
        .map(
            |make| match make.makedb_path.as_ref().filter(|p| p.exists()) {
                Some(dump) => format!("dump\0{}", dump.display()),
                None => format!("make\0{}\0{:?}", make.directory.display(), make.argv),
            },
        )
        .collect();
    let view = format!(
        "{}\0{}\0{}\0{}\0{}",
        base.display(),
        args.phony,
        args.prereqs,
        args.json,
        args.make_program.display()
    );
    let mut stdout = std::io::stdout().lock();
    if let Some(output) = cache::Output::load(&config.db, &view, &keys) {
        for w in &output.warnings {
            warn(w);
        }
        stdout.write_all(&output.bytes)?;
        stdout.flush()?;
        return Ok(0);
    }
    let mut cache = cache::Cache::open(&config.db);
    let sections = recursive_sections(args, &makes, &keys, &mut cache)?;
    let mut bytes = Vec::new();
    render(&sections, args, base, &mut bytes)?;
    stdout.write_all(&bytes)?;
    stdout.flush()?;
    summary(&sections, args);
    let warnings: Vec<String> = sections.iter().flat_map(|s| s.warnings.clone()).collect();
    let inputs = cache.inputs(&keys);
    cache.save(&keys);
    cache::Output {
        keys,
        inputs,
        warnings,
        bytes,
    }
    .save(&config.db, &view);
    Ok(0)
}

fn recursive_sections(
    args: &TargetsArgs,
    makes: &[record::RecordedMake],
    keys: &[String],
    cache: &mut cache::Cache,
) -> Result<Vec<Section>> {
    let mut sections: Vec<Section> = Vec::new();
    for (make, key) in makes.iter().zip(keys) {
        let key = key.clone();
        let part = match cache.get(&key) {
            Some(part) => part,
            None => {
                let (part, dump) = recorded_section(args, make).with_context(|| {
                    format!(
                        "listing the make in {} (make id {})",
                        make.directory.display(),
                        make.id
                    )
                })?;
                cache.put(key.clone(), inputs(&part, dump.as_deref()), part.clone());
                part
            }
        };
        for w in &part.warnings {
            warn(w);
        }
        match sections.iter_mut().find(|s| s.directory == make.directory) {
            Some(section) => merge(section, part),
            None => sections.push(part),
        }
    }
    sections.iter_mut().for_each(list::sort);
    Ok(sections)
}

// ---------------------------------------------------------------------------------------
// Output.

fn marks(t: &Target) -> String {
    let mut m = Vec::new();
    if t.phony {
        m.push("phony");
    }
    if t.default_goal {
        m.push("default");
    }
    if t.double_colon {
        m.push("double-colon");
    }
    m.join(",")
}

fn show_place(p: Option<&list::Place>, base: &Path) -> String {
    match p {
        Some(p) => format!("{}:{}", relative(&p.file, base).display(), p.line),
        None => "-".into(),
    }
}

fn prereq_text(pre: &[String], order_only: &[String]) -> String {
    let mut s = pre.join(" ");
    if !order_only.is_empty() {
        s.push_str(if s.is_empty() { "| " } else { " | " });
        s.push_str(&order_only.join(" "));
    }
    s
}

/// Lines of columns, aligned; the last column is never padded. Widths are capped so one
/// long name does not push every line out.
fn write_table(out: &mut impl Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    const CAP: usize = 40;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count().min(CAP));
        }
    }
    for row in rows {
        let last = row.iter().rposition(|c| !c.is_empty()).unwrap_or(0);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(last + 1) {
            line.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                line.extend(std::iter::repeat(' ').take(pad));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn print(sections: &[Section], args: &TargetsArgs, base: &Path) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    render(sections, args, base, &mut out)?;
    out.flush()?;
    summary(sections, args);
    Ok(())
}

fn summary(sections: &[Section], args: &TargetsArgs) {
    if args.json || !std::io::stderr().is_terminal() {
        return;
    }
    let keep = |t: &&Target| !args.phony || t.phony;
    let targets: usize = sections
        .iter()
        .map(|s| s.targets.iter().filter(keep).count())
        .sum();
    let phony: usize = sections
        .iter()
        .map(|s| s.targets.iter().filter(|t| t.phony).count())
        .sum();
    let patterns: usize = if args.phony {
        0
    } else {
        sections.iter().map(|s| s.pattern_rules.len()).sum()
    };
    let makefiles: std::collections::HashSet<&PathBuf> =
        sections.iter().flat_map(|s| &s.makefiles).collect();
    eprintln!(
        "{targets} targets ({phony} phony), {patterns} pattern rules, from {} makefiles{}",
        makefiles.len(),
        if args.recursive {
            format!(" in {} directories", sections.len())
        } else {
            String::new()
        }
    );
}

/// The listing as text or JSON.
fn render(
    sections: &[Section],
    args: &TargetsArgs,
    base: &Path,
    out: &mut impl Write,
) -> Result<()> {
    let filtered: Vec<Section> = sections
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if args.phony {
                s.targets.retain(|t| t.phony);
                s.pattern_rules.clear();
            }
            s
        })
        .collect();
    if args.json {
        let doc = serde_json::json!({ "version": 1, "sections": filtered });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    for (n, section) in filtered.iter().enumerate() {
        if args.recursive {
            if n > 0 {
                writeln!(out)?;
            }
            let level = section
                .level
                .map(|l| format!("make level {l}, "))
                .unwrap_or_default();
            let makes = section.argv.len().max(1);
            writeln!(
                out,
                "# {} ({level}{makes} make{}, from {})",
                relative(&section.directory, base).display(),
                if makes == 1 { "" } else { "s" },
                section.source
            )?;
        }
        let rows: Vec<Vec<String>> = section
            .targets
            .iter()
            .map(|t| {
                let mut row = vec![
                    t.name.clone(),
                    show_place(t.location.as_ref(), base),
                    marks(t),
                ];
                if args.prereqs {
                    row.push(prereq_text(&t.prerequisites, &t.order_only));
                }
                row.push(t.doc.as_ref().map(|d| format!("# {d}")).unwrap_or_default());
                row
            })
            .collect();
        write_table(out, &rows)?;
        if !section.pattern_rules.is_empty() {
            writeln!(out, "\n# pattern rules")?;
            let rows: Vec<Vec<String>> = section
                .pattern_rules
                .iter()
                .map(|p| {
                    let colon = if p.terminal { "::" } else { ":" };
                    vec![
                        format!(
                            "{}{colon} {}",
                            p.targets.join(" "),
                            prereq_text(&p.prerequisites, &p.order_only)
                        )
                        .trim_end()
                        .to_string(),
                        show_place(p.recipe.as_ref(), base),
                    ]
                })
                .collect();
            write_table(out, &rows)?;
        }
    }
    Ok(())
}
