//! `makescope lint`: the difference between the graph make was told (its declared
//! prerequisites) and the one the build really had (who wrote each file, who read it).
//!
//! Findings, per recorded build:
//! - **missing prerequisite**: a command read, executed or stat'ed a file another
//!   command wrote before it, and nothing make knew orders the two. Ordered means: the
//!   two commands, followed up the sub-make tree to the deepest make that runs both
//!   (each as itself or as the recipe line that started its sub-make), are lines of one
//!   recipe in that order; or that make has `.NOTPARALLEL` (make 4.3 then runs its
//!   recipes one at a time); or the reader's target reaches the writer's target through
//!   that make's declared prerequisites, normal or order-only (a stamp file, a phony
//!   target without a recipe and an order-only prerequisite are all on such paths).
//!   Under `-j` an unordered pair is a race.
//! - **two writers**: two commands (not lines of one recipe) wrote one file; an
//!   archive (`.a`) updated in place by several commands is its own, quieter kind.
//! - **stale read**: a command read a file that another command wrote only after it
//!   started, and no declared path puts the reader first.
//! - **target not written**: a recipe that ran and ended well never wrote, read or
//!   stat'ed its target (`$@`) and make did not know it as phony: a missing `.PHONY`
//!   or a wrong `$@`.
//!
//! The declared graph is the record's `prereq` table; a record made before it existed
//! takes it from the make databases the plugin dumped (`make.makedb_path`), when they
//! are still on disk. A pair whose deepest common make left no database (killed, or
//! still running) is not judged, only counted. Commands whose files were not traced (sub-make lines, `--no-trace`)
//! neither read nor write here.
//!
//! What it must never do: write the record, run anything, or report what make's own
//! rules order (the clean fixture in the tests is the proof).

use std::collections::{HashMap, HashSet, VecDeque};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::access::AccessKind;
use crate::config::Config;
use crate::paths;
use crate::store::{BuildRow, CommandHead, MakeRow, NewPrereq, Store};

/// What `makescope lint` is asked.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    pub build: Option<i64>,
}

/// The kinds of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    MissingPrerequisite,
    TwoWriters,
    StaleRead,
    TargetNotWritten,
    ArchiveUpdatedInPlace,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::MissingPrerequisite => "missing-prerequisite",
            Kind::TwoWriters => "two-writers",
            Kind::StaleRead => "stale-read",
            Kind::TargetNotWritten => "target-not-written",
            Kind::ArchiveUpdatedInPlace => "archive-updated-in-place",
        }
    }

    /// A race under `-j`: `lint` exits 1 when there is one.
    pub fn is_race(self) -> bool {
        matches!(
            self,
            Kind::MissingPrerequisite | Kind::TwoWriters | Kind::StaleRead
        )
    }
}

/// A command as a finding names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub command_id: i64,
    /// `$@`, as make spelled it.
    pub target: String,
    /// The recipe's makefile, absolute (when make said).
    pub makefile: Option<Vec<u8>>,
    pub line: Option<i64>,
}

/// The rule to change: `target: prerequisite` in `makefile` (the target's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub makefile: Option<Vec<u8>>,
    pub line: Option<i64>,
    pub target: String,
    pub prerequisite: String,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// The file it is about (absolute).
    pub file: Vec<u8>,
    /// The reader (missing prerequisite, stale read), the later writer (two writers),
    /// or the target's command (target not written).
    pub subject: Side,
    /// The writer (missing prerequisite, stale read), the earlier writer (two writers).
    pub other: Option<Side>,
    /// The prerequisite to add (missing prerequisite, stale read).
    pub fix: Option<Fix>,
}

impl Finding {
    /// The makefile to edit: where the prerequisite goes, or the subject's.
    pub fn makefile(&self) -> Option<&[u8]> {
        self.fix
            .as_ref()
            .and_then(|f| f.makefile.as_deref())
            .or(self.subject.makefile.as_deref())
    }
}

impl Finding {
    /// The finding in one sentence, and the line to add to a makefile when there is one
    /// (`target: prerequisite (makefile:line)`); `show` writes a path for the reader.
    pub fn describe(&self, show: &dyn Fn(&[u8]) -> String) -> (String, Option<String>) {
        let place = |s: &Side| match (&s.makefile, s.line) {
            (Some(f), Some(l)) => format!("{}:{l}", show(f)),
            (Some(f), None) => show(f),
            _ => "recipe location unknown".into(),
        };
        let file = show(&self.file);
        let s = &self.subject;
        let sentence = match (self.kind, self.other.as_ref()) {
            (Kind::MissingPrerequisite, Some(w)) => format!(
                "missing prerequisite: {} ({}) reads {file}, written by {} ({}); nothing make knew orders them",
                s.target, place(s), w.target, place(w)
            ),
            (Kind::StaleRead, Some(w)) => format!(
                "stale read: {} ({}) read {file} before {} ({}) wrote it",
                s.target, place(s), w.target, place(w)
            ),
            (Kind::TwoWriters, Some(w)) => format!(
                "two writers: {file} written by {} ({}) and by {} ({})",
                w.target, place(w), s.target, place(s)
            ),
            (Kind::ArchiveUpdatedInPlace, Some(w)) => format!(
                "archive updated in place: {file} by {} ({}) and {} ({})",
                w.target, place(w), s.target, place(s)
            ),
            _ => format!(
                "target not written: the recipe of {} ({}) never wrote it (a missing .PHONY, or a wrong $@)",
                s.target, place(s)
            ),
        };
        let fix = self.fix.as_ref().map(|fix| {
            let at = match (&fix.makefile, fix.line) {
                (Some(m), Some(l)) => format!(" ({}:{l})", show(m)),
                _ => String::new(),
            };
            format!("{}: {}{at}", fix.target, fix.prerequisite)
        });
        (sentence, fix)
    }
}

/// Where the declared graph came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// The record's `prereq` table.
    Record,
    /// The make databases on disk (a record from before the table).
    Dumps,
    /// Neither: every pair in different recipes is unordered.
    None,
}

/// What `lint` found in a build.
#[derive(Debug)]
pub struct Lint {
    pub build: BuildRow,
    pub findings: Vec<Finding>,
    pub declared: Declared,
    /// (reader, writer) pairs not judged: the make that runs both left no database.
    pub unjudged: usize,
}

impl Lint {
    /// Findings of the race kinds.
    pub fn races(&self) -> usize {
        self.findings.iter().filter(|f| f.kind.is_race()).count()
    }

    /// Counts by kind, in kind order.
    pub fn counts(&self) -> Vec<(Kind, usize)> {
        let mut counts: HashMap<Kind, usize> = HashMap::new();
        for f in &self.findings {
            *counts.entry(f.kind).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort();
        counts
    }

    pub fn to_json(&self) -> Value {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let side = |s: &Side| {
            json!({
                "command_id": s.command_id,
                "target": s.target,
                "makefile": s.makefile.as_deref().map(text),
                "line": s.line,
            })
        };
        json!({
            "build": self.build.id,
            "unjudged_pairs": self.unjudged,
            "declared_graph": match self.declared {
                Declared::Record => "record",
                Declared::Dumps => "make databases",
                Declared::None => "none",
            },
            "counts": self.counts().into_iter().map(|(k, n)| (k.name().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "findings": self.findings.iter().map(|f| {
                let mut v = json!({
                    "kind": f.kind.name(),
                    "race": f.kind.is_race(),
                    "file": text(&f.file),
                    "subject": side(&f.subject),
                });
                if let Some(o) = &f.other {
                    v["other"] = side(o);
                }
                if let Some(fix) = &f.fix {
                    v["add"] = json!({
                        "makefile": fix.makefile.as_deref().map(text),
                        "line": fix.line,
                        "target": fix.target,
                        "prerequisite": fix.prerequisite,
                    });
                }
                v
            }).collect::<Vec<_>>(),
        })
    }
}

/// One make's declared graph: targets by absolute path, each with its prerequisites.
#[derive(Default)]
struct MakeGraph {
    not_parallel: bool,
    phony: HashSet<Vec<u8>>,
    edges: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    /// Reachable sets already computed, by the target they start from.
    reach: HashMap<Vec<u8>, HashSet<Vec<u8>>>,
}

impl MakeGraph {
    fn add(&mut self, directory: &[u8], t: &NewPrereq) {
        if t.target == ".NOTPARALLEL" {
            self.not_parallel = true;
            return;
        }
        let target = paths::absolute(directory, t.target.as_bytes());
        if t.phony {
            self.phony.insert(target.clone());
        }
        let entry = self.edges.entry(target).or_default();
        for p in t.prerequisites.iter().chain(&t.order_only) {
            entry.push(paths::absolute(directory, p.as_bytes()));
        }
    }

    /// Does `from` reach `to` through declared prerequisites?
    fn reaches(&mut self, from: &[u8], to: &[u8]) -> bool {
        if from == to {
            return true;
        }
        if !self.reach.contains_key(from) {
            let mut seen: HashSet<Vec<u8>> = HashSet::new();
            let mut queue: VecDeque<&Vec<u8>> = VecDeque::new();
            if let Some(next) = self.edges.get(from) {
                queue.extend(next);
            }
            while let Some(node) = queue.pop_front() {
                if seen.insert(node.clone()) {
                    if let Some(next) = self.edges.get(node) {
                        queue.extend(next);
                    }
                }
            }
            self.reach.insert(from.to_vec(), seen);
        }
        self.reach[from].contains(to)
    }
}

struct Context {
    /// Pairs whose deepest common make has no declared graph.
    unjudged: usize,
    commands: HashMap<i64, CommandHead>,
    makes: HashMap<i64, MakeRow>,
    graphs: HashMap<i64, MakeGraph>,
}

impl Context {
    /// A command's place in the sub-make tree, top first: (make, command in that make).
    fn chain(&self, command: i64) -> Vec<(Option<i64>, i64)> {
        let mut chain = Vec::new();
        let mut current = Some(command);
        let mut guard = 0;
        while let Some(id) = current {
            let Some(c) = self.commands.get(&id) else {
                break;
            };
            chain.push((c.make_id, id));
            current = c
                .make_id
                .and_then(|m| self.makes.get(&m))
                .and_then(|m| m.parent_command_id);
            guard += 1;
            if guard > 64 {
                break;
            }
        }
        chain.reverse();
        chain
    }

    fn target_path(&self, c: &CommandHead) -> Vec<u8> {
        paths::absolute(&c.directory, &c.target)
    }

    /// Does something make knew run `first` before `then`? When it does not, the pair
    /// (as the deepest make that runs both sees it) is returned.
    fn ordered(&mut self, first: i64, then: i64) -> Result<(), (i64, i64)> {
        let a = self.chain(first);
        let b = self.chain(then);
        let mut i = 0;
        loop {
            let (Some(&(ma, ca)), Some(&(mb, cb))) = (a.get(i), b.get(i)) else {
                // One runs the other's sub-make.
                return Ok(());
            };
            if ma != mb {
                // Two makes run by one command (a script, `make -C a && make -C b`).
                return Ok(());
            }
            if ca == cb {
                i += 1;
                continue;
            }
            let (x, y) = (&self.commands[&ca], &self.commands[&cb]);
            if x.job == y.job || x.target == y.target {
                // Lines of one recipe run in order.
                return if x.job != y.job || x.line_index <= y.line_index {
                    Ok(())
                } else {
                    Err((ca, cb))
                };
            }
            let (from, to) = (self.target_path(y), self.target_path(x));
            let (x_started, y_started) = (x.started_ns, y.started_ns);
            let Some(graph) = ma.and_then(|m| self.graphs.get_mut(&m)) else {
                // That make left no database (it was killed, or is still running):
                // nothing to judge by.
                self.unjudged += 1;
                return Ok(());
            };
            if (graph.not_parallel && x_started <= y_started) || graph.reaches(&from, &to) {
                return Ok(());
            }
            return Err((ca, cb));
        }
    }

    fn side(&self, id: i64) -> Side {
        let c = &self.commands[&id];
        Side {
            command_id: id,
            target: String::from_utf8_lossy(&c.target).into_owned(),
            makefile: c
                .recipe_file
                .as_ref()
                .filter(|f| !f.is_empty())
                .map(|f| paths::absolute(&c.directory, f)),
            line: c.recipe_line.filter(|&l| l > 0),
        }
    }

    /// The prerequisite that would order `first` before `then`, in the deepest make
    /// that runs both.
    fn fix(&self, pair: (i64, i64)) -> Fix {
        let (w, r) = (&self.commands[&pair.0], &self.commands[&pair.1]);
        let side = self.side(pair.1);
        Fix {
            makefile: side.makefile,
            line: side.line,
            target: String::from_utf8_lossy(&r.target).into_owned(),
            prerequisite: String::from_utf8_lossy(&w.target).into_owned(),
        }
    }
}

fn is_archive(path: &[u8]) -> bool {
    path.ends_with(b".a")
}

/// Paths no build orders: the system's own.
fn ignored(path: &[u8]) -> bool {
    [&b"/dev/"[..], b"/proc/", b"/sys/"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// make's declared graph of each make of a build: the record's, or (for a record made
/// before it had one) the make databases still on disk.
fn declared_graphs(
    store: &Store,
    build_id: i64,
    makes: &HashMap<i64, MakeRow>,
) -> Result<(HashMap<i64, MakeGraph>, Declared)> {
    let mut graphs: HashMap<i64, MakeGraph> = HashMap::new();
    let mut declared = Declared::Record;
    let rows = store.prereqs(build_id)?;
    if rows.is_empty() {
        declared = Declared::None;
        for m in makes.values() {
            let Some(dump) = m.makedb_path.as_deref().filter(|p| !p.is_empty()) else {
                continue;
            };
            if let Some(targets) = crate::makedb::declared::declared(paths::as_path(dump)) {
                declared = Declared::Dumps;
                let graph = graphs.entry(m.id).or_default();
                for t in &targets {
                    graph.add(&m.directory, t);
                }
            }
        }
    } else {
        for row in &rows {
            let Some(m) = makes.get(&row.make_id) else {
                continue;
            };
            graphs
                .entry(row.make_id)
                .or_default()
                .add(&m.directory, &row.target);
        }
    }
    Ok((graphs, declared))
}

/// The makes of a build that run their recipes one at a time (`.NOTPARALLEL`): the
/// record's declared graph says, or (a record made before it had one) a look for the
/// rule in each make's database dump, without parsing the rest of it.
pub fn serial_makes(store: &Store, build_id: i64) -> Result<HashSet<i64>> {
    if let Some(makes) = store.not_parallel_makes(build_id)? {
        return Ok(makes.into_iter().collect());
    }
    Ok(store
        .makes(build_id)?
        .into_iter()
        .filter(|m| {
            m.makedb_path
                .as_deref()
                .filter(|p| !p.is_empty())
                .is_some_and(|dump| {
                    crate::makedb::declared::not_parallel(paths::as_path(dump)) == Some(true)
                })
        })
        .map(|m| m.id)
        .collect())
}

/// Lint the last build (or `options.build`).
pub fn lint(config: &Config, options: &LintOptions) -> Result<Lint> {
    // One read transaction for the whole run: a consistent snapshot, and no lock taken
    // and dropped around each of its many small statements.
    let (store, build) = config.open_build_snapshot(options.build)?;
    if !build.traced {
        bail!(
            "build {} was recorded without tracing: lint needs the files each command read and wrote (record it with `makescope make`, without --no-trace)",
            build.id
        );
    }
    if build.state == "interrupted" || build.state == "running" {
        bail!(
            "build {} was {}: lint needs a whole build (its commands' files are incomplete); record it again",
            build.id,
            if build.state == "running" { "cut off (still marked running)" } else { "interrupted" }
        );
    }
    let heads = store.command_heads(build.id)?;
    if heads.is_empty() {
        bail!(
            "build {} ran no commands: there is nothing to lint",
            build.id
        );
    }
    let makes: HashMap<i64, MakeRow> = store
        .makes(build.id)?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let (graphs, declared) = declared_graphs(&store, build.id, &makes)?;
    let traced: HashSet<i64> = heads
        .iter()
        .filter(|c| c.traced == 1)
        .map(|c| c.id)
        .collect();
    let mut ctx = Context {
        unjudged: 0,
        commands: heads.into_iter().map(|c| (c.id, c)).collect(),
        makes,
        graphs,
    };

    // Who wrote what; who read what of that.
    let content_write = |k: AccessKind| k.is_write() && k != AccessKind::Mkdir;
    let mut writers: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut wrote: HashSet<(i64, i64)> = HashSet::new();
    let mut made: HashSet<(i64, i64)> = HashSet::new();
    for (command, path, kind) in store.command_accesses(build.id, AccessKind::is_write)? {
        if !traced.contains(&command) {
            continue;
        }
        made.insert((command, path));
        if content_write(kind) && wrote.insert((command, path)) {
            writers.entry(path).or_default().push(command);
        }
    }
    let names = store.paths_of(made.iter().map(|&(_, p)| p).collect::<HashSet<_>>())?;
    writers.retain(|p, _| !ignored(&names[p]));
    let readers = store.command_accesses(build.id, |k| {
        matches!(k, AccessKind::Read | AccessKind::Exec | AccessKind::Stat)
    })?;
    let mut findings = Vec::new();
    let mut reported: HashSet<(Kind, i64, i64, i64)> = HashSet::new();
    for (reader, path, _) in readers {
        if !traced.contains(&reader) {
            continue;
        }
        let Some(ws) = writers.get(&path) else {
            continue;
        };
        if wrote.contains(&(reader, path)) {
            continue; // a writer itself: two writers says it
        }
        let started = ctx.commands[&reader].started_ns;
        let latest_before = ws
            .iter()
            .filter(|w| ctx.commands[w].started_ns <= started)
            .max_by_key(|w| ctx.commands[w].started_ns)
            .copied();
        let (kind, writer, result) = match latest_before {
            Some(w) => (Kind::MissingPrerequisite, w, ctx.ordered(w, reader)),
            None => {
                let w = *ws
                    .iter()
                    .min_by_key(|w| ctx.commands[w].started_ns)
                    .expect("a writer");
                // The reader first is fine when make put it first.
                match ctx.ordered(reader, w) {
                    Ok(()) => (Kind::StaleRead, w, Ok(())),
                    Err((r, w2)) => (Kind::StaleRead, w, Err((w2, r))),
                }
            }
        };
        let Err(pair) = result else {
            continue;
        };
        if !reported.insert((kind, reader, writer, path)) {
            continue;
        }
        findings.push(Finding {
            kind,
            file: names[&path].clone(),
            subject: ctx.side(reader),
            other: Some(ctx.side(writer)),
            fix: Some(ctx.fix(pair)),
        });
    }
    // Two writers of one file, not lines of one recipe.
    for (&path, ws) in &writers {
        if ws.len() < 2 {
            continue;
        }
        let mut ws = ws.clone();
        ws.sort_by_key(|w| ctx.commands[w].started_ns);
        for pair in ws.windows(2) {
            let (a, b) = (&ctx.commands[&pair[0]], &ctx.commands[&pair[1]]);
            if a.make_id == b.make_id && a.job == b.job {
                continue;
            }
            let kind = if is_archive(&names[&path]) {
                Kind::ArchiveUpdatedInPlace
            } else {
                Kind::TwoWriters
            };
            findings.push(Finding {
                kind,
                file: names[&path].clone(),
                subject: ctx.side(pair[1]),
                other: Some(ctx.side(pair[0])),
                fix: None,
            });
        }
    }
    // Recipes that never wrote (nor looked at) their target.
    let mut by_recipe: HashMap<(Option<i64>, i64), Vec<i64>> = HashMap::new();
    for c in ctx.commands.values() {
        by_recipe.entry((c.make_id, c.job)).or_default().push(c.id);
    }
    let mut path_ids: HashMap<&[u8], i64> = HashMap::new();
    for (id, name) in &names {
        path_ids.insert(name, *id);
    }
    for ((make, _), ids) in &by_recipe {
        let first = &ctx.commands[ids.iter().min().expect("a line")];
        if first.target.is_empty()
            || ids.iter().any(|id| {
                let c = &ctx.commands[id];
                c.traced != 1 || c.state != "ok"
            })
        {
            continue;
        }
        let target = ctx.target_path(first);
        let phony = make
            .and_then(|m| ctx.graphs.get(&m))
            .is_some_and(|g| g.phony.contains(&target));
        if phony {
            continue;
        }
        let made_it = path_ids
            .get(target.as_slice())
            .is_some_and(|p| ids.iter().any(|id| made.contains(&(*id, *p))));
        if made_it {
            continue;
        }
        // Looked at it (`move-if-change` left it as it was, `test -f $@ || …`)?
        let mut looked = false;
        for id in ids {
            looked |= store.accesses(*id)?.iter().any(|a| a.path == target);
        }
        if looked {
            continue;
        }
        findings.push(Finding {
            kind: Kind::TargetNotWritten,
            file: target,
            subject: ctx.side(first.id),
            other: None,
            fix: None,
        });
    }
    findings.sort_by(|a, b| {
        (a.makefile(), a.kind, &a.file, a.subject.command_id).cmp(&(
            b.makefile(),
            b.kind,
            &b.file,
            b.subject.command_id,
        ))
    });
    Ok(Lint {
        build,
        findings,
        declared,
        unjudged: ctx.unjudged,
    })
}
