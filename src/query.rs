//! The questions `log` and `show` ask of the record, answered as data: the commands of
//! a build, the commands a reference names and everything recorded about them, and the
//! JSON shape of both (documented in the README). `commands::log` and `commands::show`
//! print these.
//!
//! What it must never do: print, or write the record.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::access::AccessKind;
use crate::config::Config;
use crate::graph::CommandGraph;
use crate::paths::absolute;
use crate::store::{
    BuildRow, CommandFilter, CommandOutput, CommandRow, MakeRow, ProcessRow, Store,
};
use crate::util::json_bytes;

/// Which commands of which build `log` lists.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// The build (default: the last one).
    pub build: Option<i64>,
    /// Only commands that failed.
    pub failed_only: bool,
    /// Only commands whose target contains these bytes.
    pub target_contains: Option<Vec<u8>>,
}

/// The commands of one build, in the order they started, read as they are listed.
pub struct Log {
    pub store: Store,
    pub build: BuildRow,
    filter: CommandFilter,
}

/// The build and the filter `options` picks.
pub fn log(config: &Config, options: &LogOptions) -> Result<Log> {
    let (store, build) = config.open_build_snapshot(options.build)?;
    let filter = CommandFilter {
        failed_only: options.failed_only,
        target_contains: options.target_contains.clone(),
    };
    Ok(Log {
        store,
        build,
        filter,
    })
}

impl Log {
    /// Each command, in order, one at a time (without its environment).
    pub fn each(&self, each: impl FnMut(CommandRow) -> Result<()>) -> Result<()> {
        self.store.each_command(self.build.id, &self.filter, each)
    }

    /// `makescope log --json`: the build, and its commands with their tags, written
    /// as they are read (as `serde_json`'s pretty printer writes the whole document):
    /// memory stays flat however many commands the build has.
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> Result<()> {
        out.write_all(b"{\n  \"build\": ")?;
        write_indented(out, &build_json(&self.build), 2)?;
        out.write_all(b",\n  \"commands\": [")?;
        let mut first = true;
        self.each(|c| {
            let mut item = command_json(&c);
            item["tags"] = tags_json(&self.store.tags(c.id)?);
            out.write_all(if first { b"\n    " } else { b",\n    " })?;
            write_indented(out, &item, 4)?;
            first = false;
            Ok(())
        })?;
        out.write_all(if first { b"]\n}\n" } else { b"\n  ]\n}\n" })?;
        Ok(())
    }
}

/// `value` pretty-printed, its lines after the first indented by `indent` spaces (a
/// JSON string holds no raw newline: every newline is the printer's).
fn write_indented(out: &mut dyn std::io::Write, value: &Value, indent: usize) -> Result<()> {
    let text = serde_json::to_vec_pretty(value)?;
    let pad = " ".repeat(indent);
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
            out.write_all(pad.as_bytes())?;
        }
        out.write_all(line)?;
    }
    Ok(())
}

/// What `show` is asked about.
#[derive(Debug, Clone, Default)]
pub struct ShowOptions {
    /// A command id, a target name, or a path a command wrote.
    pub reference: Vec<u8>,
    /// The build a target or path is looked up in (default: the last one).
    pub build: Option<i64>,
}

/// The commands a reference names: one recipe's lines (or one command).
pub struct Shown {
    pub store: Store,
    pub commands: Vec<CommandRow>,
}

/// Everything recorded about one command beyond its row.
pub struct Details {
    /// The make that ran it.
    pub make: Option<MakeRow>,
    pub tags: Vec<(String, Option<String>)>,
    /// The paths it touched, by access kind's name; both in byte order.
    pub files: BTreeMap<String, Vec<Vec<u8>>>,
    pub processes: Vec<ProcessRow>,
    /// Processes still running when it ended (`pid exe`), when it left any.
    pub left_behind: Option<Vec<Vec<u8>>>,
    pub output: CommandOutput,
    /// The recorded command this one re-ran, when it is a replay's run.
    pub replay_of: Option<i64>,
    /// The replays of this command (`makescope replay`), oldest first.
    pub replays: Vec<CommandRow>,
}

/// What two runs of one command read and wrote differently (a replay against the
/// recorded build): paths read (read or executed) or written (content, directories,
/// links) by only one of them, each list in byte order. Temporaries (a path the run
/// removed that is not there now, as a compiler's `/tmp/cc*.s`) and `/proc` are left out:
/// their names differ from run to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDiff {
    pub read_only_here: Vec<Vec<u8>>,
    pub read_only_there: Vec<Vec<u8>>,
    pub written_only_here: Vec<Vec<u8>>,
    pub written_only_there: Vec<Vec<u8>>,
}

impl FileDiff {
    pub fn is_empty(&self) -> bool {
        self.read_only_here.is_empty()
            && self.read_only_there.is_empty()
            && self.written_only_here.is_empty()
            && self.written_only_there.is_empty()
    }
}

/// What command `here` read and wrote, against command `there` (see [`FileDiff`]).
pub fn compare_files(store: &Store, here: i64, there: i64) -> Result<FileDiff> {
    use std::collections::BTreeSet;
    type Paths = BTreeSet<Vec<u8>>;
    let sets = |id: i64| -> Result<(Paths, Paths)> {
        let accesses = store.accesses(id)?;
        let kind_of = |a: &crate::store::AccessRow| AccessKind::from_name(&a.kind);
        // Removed and not there now: a temporary.
        let removed: BTreeSet<&[u8]> = accesses
            .iter()
            .filter(|a| kind_of(a) == Some(AccessKind::Remove))
            .map(|a| a.path.as_slice())
            .filter(|p| std::fs::symlink_metadata(crate::paths::as_path(p)).is_err())
            .collect();
        let (mut read, mut written) = (BTreeSet::new(), BTreeSet::new());
        for a in &accesses {
            if a.path.starts_with(b"/proc/") || removed.contains(a.path.as_slice()) {
                continue;
            }
            match kind_of(a) {
                Some(AccessKind::Read | AccessKind::Exec) => {
                    read.insert(a.path.clone());
                }
                Some(k) if k.is_write() => {
                    written.insert(a.path.clone());
                }
                _ => {}
            }
        }
        Ok((read, written))
    };
    let (read_here, written_here) = sets(here)?;
    let (read_there, written_there) = sets(there)?;
    let only = |a: &Paths, b: &Paths| a.difference(b).cloned().collect();
    Ok(FileDiff {
        read_only_here: only(&read_here, &read_there),
        read_only_there: only(&read_there, &read_here),
        written_only_here: only(&written_here, &written_there),
        written_only_there: only(&written_there, &written_here),
    })
}

/// A command's place in its build's graph: who wrote what it read, who read what it
/// wrote, and how many commands depend on it at all.
pub struct Neighbours {
    pub dependencies: Vec<i64>,
    pub dependents: Vec<i64>,
    pub downstream: usize,
}

/// The commands `options.reference` names. Several commands are an error unless they
/// are the lines of one recipe.
pub fn show(config: &Config, options: &ShowOptions) -> Result<Shown> {
    let (store, build) = config.open_build_snapshot(options.build)?;
    let ids = resolve(&store, &build, &options.reference)?;
    let commands: Vec<CommandRow> = ids
        .iter()
        .filter_map(|&id| store.command(id).transpose())
        .collect::<Result<_, _>>()?;
    let first = commands.first().with_context(|| {
        format!(
            "the commands `{}` names are not in {}",
            String::from_utf8_lossy(&options.reference),
            store.path().display()
        )
    })?;
    let one_recipe = commands
        .iter()
        .all(|c| c.make_id == first.make_id && c.job == first.job);
    if !one_recipe {
        let mut text = format!(
            "`{}` matches {} commands of different recipes; pick one by id:\n",
            String::from_utf8_lossy(&options.reference),
            commands.len()
        );
        for c in commands.iter().take(20) {
            text.push_str(&format!(
                "  {:>6}  {}  ({})\n",
                c.id,
                String::from_utf8_lossy(&c.target),
                String::from_utf8_lossy(&c.directory)
            ));
        }
        bail!("{}", text.trim_end());
    }
    Ok(Shown { store, commands })
}

impl Shown {
    /// Everything recorded about `c` beyond its row.
    pub fn details(&self, c: &CommandRow) -> Result<Details> {
        let store = &self.store;
        let mut files: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for a in store.accesses(c.id)? {
            files.entry(a.kind).or_default().push(a.path);
        }
        Ok(Details {
            make: c.make_id.map(|id| store.make(id)).transpose()?.flatten(),
            tags: store.tags(c.id)?,
            files,
            processes: store.processes(c.id)?,
            left_behind: c.left_behind.clone(),
            output: store.output(c.id)?,
            replay_of: store.replay_of(c.id)?,
            replays: store.replays_of(c.id)?,
        })
    }

    /// `c`'s place in its build's graph.
    pub fn neighbours(&self, c: &CommandRow) -> Result<Neighbours> {
        let graph = CommandGraph::load(&self.store, c.build_id)?;
        Ok(Neighbours {
            dependencies: graph.dependencies(c.id),
            dependents: graph.dependents(c.id),
            downstream: graph.downstream(&[c.id]).len(),
        })
    }

    /// `makescope show --json`: one command in full, or an array of a recipe's lines.
    pub fn to_json(&self) -> Result<Value> {
        let mut items = Vec::with_capacity(self.commands.len());
        for c in &self.commands {
            items.push(full_json(c, &self.details(c)?));
        }
        Ok(if items.len() == 1 {
            items.into_iter().next().unwrap_or_default()
        } else {
            Value::Array(items)
        })
    }
}

/// One command as JSON (without output, environment and files).
pub fn command_json(c: &CommandRow) -> Value {
    json!({
        "id": c.id,
        "build_id": c.build_id,
        "make_id": c.make_id,
        "make_level": c.make_level,
        "job": c.job,
        "line_index": c.line_index,
        "target": json_bytes(&c.target),
        "label": c.label,
        "recipe": { "file": c.recipe_file.as_deref().map(json_bytes), "line": c.recipe_line },
        "why": c.why(),
        "directory": json_bytes(&c.directory),
        "shell": c.shell.as_deref().map(json_list),
        "shell_flags": c.shell_flags.as_deref().map(json_list),
        "command": json_bytes(&c.command),
        "argv": json_list(&c.argv),
        "state": c.state,
        "exit_code": c.exit_code,
        "signal": c.signal,
        "started_ns": c.started_ns,
        "ended_ns": c.ended_ns,
        "seconds": c.seconds(),
        "user_us": c.user_us,
        "system_us": c.system_us,
        "max_rss_kib": c.max_rss_kib,
        "test_name": c.test_name,
        "test_result": c.test_result,
        "traced": c.traced,
    })
}

fn build_json(b: &BuildRow) -> Value {
    json!({
        "id": b.id,
        "argv": json_list(&b.argv),
        "directory": json_bytes(&b.directory),
        "started_ns": b.started_ns,
        "ended_ns": b.ended_ns,
        "state": b.state,
        "exit_code": b.exit_code,
        "signal": b.signal,
        "traced": b.traced,
        "hooks_failed": b.hooks_failed,
    })
}

/// Find the commands a REF names: an id, a target, or a path a command wrote.
pub fn resolve(store: &Store, build: &BuildRow, reference: &[u8]) -> Result<Vec<i64>> {
    if let Some(id) = std::str::from_utf8(reference)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        if store.command(id)?.is_some() {
            return Ok(vec![id]);
        }
        bail!("there is no command {id} in {}", store.path().display());
    }
    let exact = store.commands_for_target(build.id, reference)?;
    if !exact.is_empty() {
        return Ok(exact);
    }
    let cwd = std::env::current_dir()
        .map(|d| d.as_os_str().as_bytes().to_vec())
        .unwrap_or_default();
    let wanted = absolute(&cwd, reference);
    let mut suffix = b"/".to_vec();
    suffix.extend_from_slice(reference);
    let mut by_path = Vec::new();
    let mut by_suffix = Vec::new();
    for crate::store::CommandTarget {
        id,
        target,
        directory,
    } in store.targets_of(build.id)?
    {
        let full = absolute(&directory, &target);
        if full == wanted {
            by_path.push(id);
        } else if full.ends_with(&suffix) {
            by_suffix.push(id);
        }
    }
    if !by_path.is_empty() {
        return Ok(by_path);
    }
    let writers = store.writers_of(build.id, &wanted)?;
    if !writers.is_empty() {
        return Ok(writers);
    }
    if !by_suffix.is_empty() {
        return Ok(by_suffix);
    }
    bail!(
        "nothing in build {} matches `{}`: not a command id, a target, or a path a command wrote",
        build.id,
        String::from_utf8_lossy(reference)
    )
}

/// One command in full: its row, output, environment, files, processes, tags, make.
fn full_json(c: &CommandRow, details: &Details) -> Value {
    let mut value = command_json(c);
    value["stdout"] = json_bytes(&details.output.stdout);
    value["stderr"] = json_bytes(&details.output.stderr);
    value["environment"] = json!(json_list(&c.env));
    value["left_behind"] = json!(details.left_behind.as_deref().map(json_list));
    let files: BTreeMap<&String, Vec<Value>> = details
        .files
        .iter()
        .map(|(kind, paths)| (kind, json_list(paths)))
        .collect();
    value["files"] = json!(files);
    value["processes"] = json!(details
        .processes
        .iter()
        .map(|p| json!({
            "id": p.id, "pid": p.pid, "parent_pid": p.parent_pid,
            "exe": p.exe.as_deref().map(json_bytes),
            "argv": json_list(&p.argv),
            "cwd": p.cwd.as_deref().map(json_bytes),
            "started_ns": p.started_ns, "ended_ns": p.ended_ns, "exit_code": p.exit_code,
        }))
        .collect::<Vec<_>>());
    value["tags"] = tags_json(&details.tags);
    // Only when there are some: a command never replayed shows as it always did.
    if let Some(original) = details.replay_of {
        value["replay_of"] = json!(original);
    }
    if !details.replays.is_empty() {
        value["replays"] = json!(details
            .replays
            .iter()
            .map(|r| json!({
                "id": r.id, "build_id": r.build_id, "started_ns": r.started_ns,
                "ended_ns": r.ended_ns, "state": r.state, "exit_code": r.exit_code,
                "signal": r.signal,
            }))
            .collect::<Vec<_>>());
    }
    if let Some(make) = &details.make {
        value["make"] = json!({
            "id": make.id, "pid": make.pid, "level": make.level,
            "directory": json_bytes(&make.directory),
            "argv": json_list(&make.argv),
            "parent_command_id": make.parent_command_id,
            "parent_make_id": make.parent_make_id,
        });
    }
    value
}

fn tags_json(tags: &[(String, Option<String>)]) -> Value {
    json!(tags
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect::<Vec<_>>())
}

fn json_list(items: &[Vec<u8>]) -> Vec<Value> {
    items.iter().map(|item| json_bytes(item)).collect()
}
