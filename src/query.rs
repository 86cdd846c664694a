//! `log` and `show`: read the record, print it. Data goes to stdout, aligned for people
//! or as JSON (whose shape the README documents); nothing here writes the record.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::cli::{Config, LogArgs, ShowArgs};
use crate::paths::absolute;
use crate::store::{AccessRow, BuildRow, CommandFilter, CommandRow, Store};
use crate::util::{json_bytes, lossy};

fn open(config: &Config) -> Result<Store> {
    Ok(Store::open_read(&config.db)?)
}

fn pick_build(store: &Store, id: Option<i64>) -> Result<BuildRow> {
    match id {
        Some(id) => store
            .build(id)?
            .with_context(|| format!("there is no build {id} in {}", store.path().display())),
        None => store
            .last_build()?
            .with_context(|| format!("{} holds no build yet", store.path().display())),
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
        "argv": c.argv.iter().map(|a| json_bytes(a)).collect::<Vec<_>>(),
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

/// `makescope log`.
pub fn log(config: &Config, args: &LogArgs) -> Result<()> {
    let store = open(config)?;
    let build = pick_build(&store, args.build)?;
    let filter = CommandFilter {
        failed_only: args.failed,
        target_contains: args.target.as_ref().map(|t| t.as_bytes().to_vec()),
    };
    let commands = store.commands(build.id, &filter)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut items = Vec::with_capacity(commands.len());
        for c in &commands {
            let mut item = command_json(c);
            let tags = store.tags(c.id)?;
            item["tags"] = json!(tags
                .iter()
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect::<Vec<_>>());
            items.push(item);
        }
        serde_json::to_writer_pretty(
            &mut out,
            &json!({ "build": build_json(&build), "commands": items }),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let top = build.directory.clone();
    let rows: Vec<[String; 5]> = commands
        .iter()
        .map(|c| {
            let label = c
                .label
                .clone()
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| lossy(&c.target).into_owned());
            let place = match (&c.recipe_file, c.recipe_line) {
                (Some(file), Some(line)) if !file.is_empty() => format!("{}:{line}", lossy(file)),
                _ => String::new(),
            };
            [
                c.id.to_string(),
                state_mark(c),
                c.seconds().map(|s| format!("{s:.2}s")).unwrap_or_default(),
                label,
                format!("{}{}", relative_dir(&top, &c.directory), place),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        writeln!(
            out,
            "{:>w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )?;
    }
    let failed = commands
        .iter()
        .filter(|c| c.state != "ok" && c.state != "running")
        .count();
    eprintln!(
        "{} commands in build {} ({}), {failed} not ok",
        commands.len(),
        build.id,
        build.state
    );
    Ok(())
}

fn json_list(items: &[Vec<u8>]) -> Vec<Value> {
    items.iter().map(|item| json_bytes(item)).collect()
}

fn state_mark(c: &CommandRow) -> String {
    match (c.state.as_str(), c.exit_code, c.signal) {
        ("ok", ..) => "ok".into(),
        (_, Some(code), _) => format!("exit {code}"),
        (_, _, Some(signal)) => format!("signal {signal}"),
        (state, ..) => state.into(),
    }
}

fn relative_dir(top: &[u8], dir: &[u8]) -> String {
    if dir == top {
        return String::new();
    }
    match dir.strip_prefix(top).and_then(|r| r.strip_prefix(b"/")) {
        Some(rest) => format!("{}/: ", lossy(rest)),
        None => format!("{}: ", lossy(dir)),
    }
}

fn build_json(b: &BuildRow) -> Value {
    json!({
        "id": b.id,
        "argv": b.argv.iter().map(|a| json_bytes(a)).collect::<Vec<_>>(),
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
    for (id, target, directory) in store.targets_of(build.id)? {
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
        lossy(reference)
    )
}

/// `makescope show`.
pub fn show(config: &Config, args: &ShowArgs) -> Result<()> {
    let store = open(config)?;
    let build = pick_build(&store, args.build)?;
    let ids = resolve(&store, &build, args.reference.as_bytes())?;
    let commands: Vec<CommandRow> = ids
        .iter()
        .filter_map(|&id| store.command(id).transpose())
        .collect::<Result<_, _>>()?;
    let first = &commands[0];
    let one_recipe = commands
        .iter()
        .all(|c| c.make_id == first.make_id && c.job == first.job);
    if !one_recipe {
        let mut text = format!(
            "`{}` matches {} commands of different recipes; pick one by id:\n",
            lossy(args.reference.as_bytes()),
            commands.len()
        );
        for c in commands.iter().take(20) {
            text.push_str(&format!(
                "  {:>6}  {}  ({})\n",
                c.id,
                lossy(&c.target),
                lossy(&c.directory)
            ));
        }
        bail!("{}", text.trim_end());
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let items: Vec<Value> = commands
            .iter()
            .map(|c| full_json(&store, c))
            .collect::<Result<_>>()?;
        let value = if items.len() == 1 {
            items.into_iter().next().unwrap_or_default()
        } else {
            Value::Array(items)
        };
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
        return Ok(());
    }
    for (i, c) in commands.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        show_text(&mut out, &store, c, args.files)?;
    }
    Ok(())
}

fn full_json(store: &Store, c: &CommandRow) -> Result<Value> {
    let mut value = command_json(c);
    let output = store.output(c.id)?;
    value["stdout"] = json_bytes(&output.stdout);
    value["stderr"] = json_bytes(&output.stderr);
    value["environment"] = json!(c.env.iter().map(|e| json_bytes(e)).collect::<Vec<_>>());
    value["left_behind"] = json!(c.left_behind.as_deref().map(|l| crate::util::split_nul(l)
        .into_iter()
        .map(json_bytes)
        .collect::<Vec<_>>()));
    let mut files: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for a in store.accesses(c.id)? {
        files
            .entry(a.kind.clone())
            .or_default()
            .push(json_bytes(&a.path));
    }
    value["files"] = json!(files);
    value["processes"] = json!(store
        .processes(c.id)?
        .iter()
        .map(|p| json!({
            "id": p.id, "pid": p.pid, "parent_pid": p.parent_pid,
            "exe": p.exe.as_deref().map(json_bytes),
            "argv": p.argv.iter().map(|a| json_bytes(a)).collect::<Vec<_>>(),
            "cwd": p.cwd.as_deref().map(json_bytes),
            "started_ns": p.started_ns, "ended_ns": p.ended_ns, "exit_code": p.exit_code,
        }))
        .collect::<Vec<_>>());
    value["tags"] = json!(store
        .tags(c.id)?
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect::<Vec<_>>());
    if let Some(make) = c.make_id.map(|id| store.make(id)).transpose()?.flatten() {
        value["make"] = json!({
            "id": make.id, "pid": make.pid, "level": make.level,
            "directory": json_bytes(&make.directory),
            "argv": make.argv.iter().map(|a| json_bytes(a)).collect::<Vec<_>>(),
            "parent_command_id": make.parent_command_id,
            "parent_make_id": make.parent_make_id,
        });
    }
    Ok(value)
}

fn show_text(out: &mut impl Write, store: &Store, c: &CommandRow, all_files: bool) -> Result<()> {
    let field = |out: &mut dyn Write, name: &str, value: &str| writeln!(out, "{name:<10} {value}");
    field(
        out,
        "command",
        &format!("#{}  {}", c.id, c.label.as_deref().unwrap_or("")),
    )?;
    field(
        out,
        "target",
        &format!("{}   (why: {})", lossy(&c.target), c.why()),
    )?;
    let recipe = match (&c.recipe_file, c.recipe_line) {
        (Some(file), Some(line)) if !file.is_empty() => format!("{}:{line}", lossy(file)),
        _ => "unknown".into(),
    };
    let mut make_text = format!("make level {}", c.make_level.unwrap_or(0));
    if let Some(make) = c.make_id.map(|id| store.make(id)).transpose()?.flatten() {
        if let Some(parent) = make.parent_command_id {
            make_text.push_str(&format!(", started by command #{parent}"));
        }
        make_text.push_str(&format!(
            " (`{}`)",
            make.argv
                .iter()
                .map(|a| lossy(a))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    field(
        out,
        "recipe",
        &format!(
            "{recipe}   line {} of the recipe, {make_text}",
            c.line_index + 1
        ),
    )?;
    field(out, "directory", &lossy(&c.directory))?;
    let words = |words: &[Vec<u8>]| words.iter().map(|w| lossy(w)).collect::<Vec<_>>().join(" ");
    let shell = c.shell.as_deref().map(words);
    let flags = c.shell_flags.as_deref().map(words);
    field(
        out,
        "shell",
        &format!(
            "{} {}",
            shell.unwrap_or_default(),
            flags.unwrap_or_default()
        )
        .trim()
        .to_string(),
    )?;
    field(out, "command", &lossy(&c.command))?;
    let when = chrono_like(c.started_ns);
    let status = match (c.exit_code, c.signal) {
        (Some(code), _) => format!("exit {code}"),
        (_, Some(signal)) => format!("killed by signal {signal}"),
        _ => c.state.clone(),
    };
    let duration = c
        .seconds()
        .map(|s| format!("{s:.2} s"))
        .unwrap_or_else(|| "still running or lost".into());
    let mut ran = format!("{when}, {duration}, {status}");
    if let (Some(user), Some(system)) = (c.user_us, c.system_us) {
        ran.push_str(&format!(
            " (user {:.2} s, system {:.2} s",
            user as f64 / 1e6,
            system as f64 / 1e6
        ));
        if let Some(rss) = c.max_rss_kib {
            ran.push_str(&format!(", max RSS {} MiB", rss / 1024));
        }
        ran.push(')');
    }
    field(out, "ran", &ran)?;
    if let Some(test) = &c.test_name {
        field(
            out,
            "test",
            &format!(
                "{test}: {}",
                c.test_result.as_deref().unwrap_or("no result")
            ),
        )?;
    }
    let tags = store.tags(c.id)?;
    if !tags.is_empty() {
        let text: Vec<String> = tags
            .iter()
            .map(|(n, v)| v.as_ref().map_or(n.clone(), |v| format!("{n}={v}")))
            .collect();
        field(out, "tags", &text.join(" "))?;
    }
    if c.traced == 2 {
        field(
            out,
            "files",
            "not traced here: it runs a sub-make, whose commands are traced one by one",
        )?;
    } else if c.traced == 0 {
        field(
            out,
            "files",
            "not traced (--no-trace, or the kernel refused)",
        )?;
    } else {
        let accesses = store.accesses(c.id)?;
        let mut by_kind: BTreeMap<&str, Vec<&AccessRow>> = BTreeMap::new();
        for a in &accesses {
            by_kind.entry(a.kind.as_str()).or_default().push(a);
        }
        for (kind, items) in &by_kind {
            let name = match *kind {
                "read" => "reads",
                "probe" => "probed",
                "exec" => "executes",
                "stat" => "stats",
                other => other,
            };
            if all_files || items.len() <= 5 {
                for (i, a) in items.iter().enumerate() {
                    field(out, if i == 0 { name } else { "" }, &lossy(&a.path))?;
                }
            } else {
                let sample: Vec<String> = items
                    .iter()
                    .take(3)
                    .map(|a| lossy(&a.path).into_owned())
                    .collect();
                field(
                    out,
                    name,
                    &format!(
                        "{} paths ({}, …)   --files to list",
                        items.len(),
                        sample.join(", ")
                    ),
                )?;
            }
        }
        let processes = store.processes(c.id)?;
        if !processes.is_empty() {
            let names: Vec<String> = processes
                .iter()
                .filter_map(|p| p.exe.as_deref())
                .map(|e| {
                    lossy(
                        crate::paths::as_path(e)
                            .file_name()
                            .map(|f| f.as_bytes())
                            .unwrap_or(e),
                    )
                    .into_owned()
                })
                .collect();
            field(
                out,
                "processes",
                &format!("{}: {}", processes.len(), names.join(" → ")),
            )?;
        }
    }
    let graph = crate::graph::CommandGraph::load(store, c.build_id)?;
    let (before, after) = (graph.dependencies(c.id), graph.dependents(c.id));
    if !before.is_empty() || !after.is_empty() {
        let list = |ids: &[i64]| {
            ids.iter()
                .take(8)
                .map(|id| format!("#{id}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let reach = graph.downstream(&[c.id]).len();
        field(
            out,
            "graph",
            &format!(
                "reads what {} commands wrote ({}); {} read what it wrote ({}), {reach} downstream in all",
                before.len(),
                list(&before),
                after.len(),
                list(&after)
            ),
        )?;
    }
    if let Some(left) = c.left_behind.as_deref().filter(|l| !l.is_empty()) {
        let items: Vec<String> = crate::util::split_nul(left)
            .iter()
            .map(|l| lossy(l).into_owned())
            .collect();
        field(
            out,
            "left",
            &format!("still running when it ended: {}", items.join(", ")),
        )?;
    }
    let output = store.output(c.id)?;
    if !output.stdout.is_empty() || !output.stderr.is_empty() {
        writeln!(out, "output")?;
        out.write_all(&output.stdout)?;
        out.write_all(&output.stderr)?;
        if !output.stderr.ends_with(b"\n")
            && !(output.stderr.is_empty() && output.stdout.ends_with(b"\n"))
        {
            writeln!(out)?;
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) without a date library.
fn chrono_like(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::chrono_like(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            super::chrono_like(1_795_940_000_000_000_000),
            "2026-11-29 08:13:20 UTC"
        );
    }
}
