//! `makescope show`: one recorded command in full, as labelled lines (what ran, where,
//! why, how it ended, its files, its place in the graph, its output), or JSON.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use anyhow::Result;

use super::{write_json, Format};
use crate::config::Config;
use crate::paths;
use crate::query::{self, Details, Neighbours, ShowOptions};
use crate::store::CommandRow;
use crate::util::lossy;

/// How `show` prints.
#[derive(Debug, Clone)]
pub struct View {
    pub format: Format,
    /// List every file, not only a summary of long lists (text only: JSON has them all).
    pub all_files: bool,
}

pub fn run(config: &Config, options: &ShowOptions, view: &View) -> Result<u8> {
    let shown = query::show(config, options)?;
    let mut out = std::io::stdout().lock();
    if view.format == Format::Json {
        write_json(&mut out, &shown.to_json()?)?;
        return Ok(0);
    }
    for (i, c) in shown.commands.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let details = shown.details(c)?;
        let neighbours = shown.neighbours(c)?;
        text(&mut out, c, &details, &neighbours, view.all_files)?;
        replays(&mut out, &shown.store, c, &details)?;
    }
    Ok(0)
}

/// One labelled line: the label in a column of its own.
fn field(out: &mut dyn Write, name: &str, value: &str) -> std::io::Result<()> {
    writeln!(out, "{name:<10} {value}")
}

fn text(
    out: &mut impl Write,
    c: &CommandRow,
    details: &Details,
    neighbours: &Neighbours,
    all_files: bool,
) -> Result<()> {
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
    if let Some(make) = &details.make {
        if let Some(parent) = make.parent_command_id {
            make_text.push_str(&format!(", started by command #{parent}"));
        }
        make_text.push_str(&format!(" (`{}`)", words(&make.argv)));
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
    let shell = c.shell.as_deref().map(words).unwrap_or_default();
    let flags = c.shell_flags.as_deref().map(words).unwrap_or_default();
    field(out, "shell", format!("{shell} {flags}").trim())?;
    field(out, "command", &lossy(&c.command))?;
    let status = match (c.exit_code, c.signal) {
        (Some(code), _) => format!("exit {code}"),
        (_, Some(signal)) => format!("killed by signal {signal}"),
        _ => c.state.clone(),
    };
    let duration = c
        .seconds()
        .map(|s| format!("{s:.2} s"))
        .unwrap_or_else(|| "still running or lost".into());
    let mut ran = format!("{}, {duration}, {status}", utc_time(c.started_ns));
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
    if !details.tags.is_empty() {
        let text: Vec<String> = details
            .tags
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
        files(out, details, all_files)?;
    }
    let (before, after) = (&neighbours.dependencies, &neighbours.dependents);
    if !before.is_empty() || !after.is_empty() {
        let list = |ids: &[i64]| {
            ids.iter()
                .take(8)
                .map(|id| format!("#{id}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        field(
            out,
            "graph",
            &format!(
                "reads what {} commands wrote ({}); {} read what it wrote ({}), {} downstream in all",
                before.len(),
                list(before),
                after.len(),
                list(after),
                neighbours.downstream
            ),
        )?;
    }
    if let Some(left) = details.left_behind.as_deref().filter(|l| !l.is_empty()) {
        let items: Vec<String> = left.iter().map(|l| lossy(l).into_owned()).collect();
        field(
            out,
            "left",
            &format!("still running when it ended: {}", items.join(", ")),
        )?;
    }
    let output = &details.output;
    if !output.stdout.is_empty() || !output.stderr.is_empty() {
        writeln!(out, "output")?;
        out.write_all(&output.stdout)?;
        out.write_all(&output.stderr)?;
        let last = if output.stderr.is_empty() {
            &output.stdout
        } else {
            &output.stderr
        };
        if !last.ends_with(b"\n") {
            writeln!(out)?;
        }
    }
    Ok(())
}

/// A replay's run: what it re-ran and how its files differ from that; a recorded
/// command: its replays, each with its status and how its files differ.
fn replays(
    out: &mut impl Write,
    store: &crate::store::Store,
    c: &CommandRow,
    details: &Details,
) -> Result<()> {
    if let Some(original) = details.replay_of {
        field(
            out,
            "replay",
            &format!("a replay of command #{original} (build {})", {
                store.command(original)?.map_or(0, |o| o.build_id)
            }),
        )?;
        if c.traced == 1 {
            diff(
                out,
                &query::compare_files(store, c.id, original)?,
                "the replay",
                "the build",
            )?;
        }
    }
    for (i, r) in details.replays.iter().enumerate() {
        let status = match (r.exit_code, r.signal) {
            (Some(code), _) => format!("exit {code}"),
            (_, Some(signal)) => format!("killed by signal {signal}"),
            _ => r.state.clone(),
        };
        let files = if r.traced == 1 {
            let d = query::compare_files(store, r.id, c.id)?;
            if d.is_empty() {
                "read and wrote what the build did".to_string()
            } else {
                format!(
                    "read {} and wrote {} path(s) the build did not; did not read {} nor write {} it did (`makescope show {}`)",
                    d.read_only_here.len(),
                    d.written_only_here.len(),
                    d.read_only_there.len(),
                    d.written_only_there.len(),
                    r.id
                )
            }
        } else {
            "not traced".to_string()
        };
        // `makescope rebuild` records its re-runs as replays; its runs say so.
        let by = match store.build(r.build_id)? {
            Some(b) if b.argv.first().is_some_and(|a| a == b"rebuild") => " by rebuild",
            _ => "",
        };
        field(
            out,
            if i == 0 { "replays" } else { "" },
            &format!(
                "#{}  {}{by}, {status}; {files}",
                r.id,
                utc_time(r.started_ns)
            ),
        )?;
    }
    Ok(())
}

/// The paths read or written by only one of two runs.
fn diff(out: &mut impl Write, d: &query::FileDiff, here: &str, there: &str) -> Result<()> {
    if d.is_empty() {
        field(out, "", &format!("{here} read and wrote what {there} did"))?;
        return Ok(());
    }
    let lists = [
        (&d.read_only_here, format!("read only by {here}")),
        (&d.read_only_there, format!("read only by {there}")),
        (&d.written_only_here, format!("written only by {here}")),
        (&d.written_only_there, format!("written only by {there}")),
    ];
    for (paths, what) in lists {
        for (i, path) in paths.iter().enumerate() {
            field(
                out,
                "",
                &format!(
                    "{:<26} {}",
                    if i == 0 { what.as_str() } else { "" },
                    lossy(path)
                ),
            )?;
        }
    }
    Ok(())
}

/// The files a traced command touched, by kind (long lists shortened unless
/// `all_files`), and the programs it ran.
fn files(out: &mut impl Write, details: &Details, all_files: bool) -> Result<()> {
    for (kind, items) in &details.files {
        let name = match kind.as_str() {
            "read" => "reads",
            "probe" => "probed",
            "exec" => "executes",
            "stat" => "stats",
            other => other,
        };
        if all_files || items.len() <= 5 {
            for (i, path) in items.iter().enumerate() {
                field(out, if i == 0 { name } else { "" }, &lossy(path))?;
            }
        } else {
            let sample: Vec<String> = items
                .iter()
                .take(3)
                .map(|path| lossy(path).into_owned())
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
    let processes = &details.processes;
    if !processes.is_empty() {
        let names: Vec<String> = processes
            .iter()
            .filter_map(|p| p.exe.as_deref())
            .map(|exe| {
                let name = paths::as_path(exe).file_name().map(|f| f.as_bytes());
                lossy(name.unwrap_or(exe)).into_owned()
            })
            .collect();
        field(
            out,
            "processes",
            &format!("{}: {}", processes.len(), names.join(" → ")),
        )?;
    }
    Ok(())
}

/// Words joined by spaces, for people.
fn words(words: &[Vec<u8>]) -> String {
    words.iter().map(|w| lossy(w)).collect::<Vec<_>>().join(" ")
}

/// `YYYY-MM-DD HH:MM:SS UTC` without a date library.
fn utc_time(ns: i64) -> String {
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
    fn utc_times() {
        assert_eq!(super::utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            super::utc_time(1_795_940_000_000_000_000),
            "2026-11-29 08:13:20 UTC"
        );
    }
}
