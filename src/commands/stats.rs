//! `makescope stats`: where a build's time went, as aligned text or JSON.

use std::io::Write;

use anyhow::Result;

use super::{write_json, Format, Table};
use crate::config::Config;
use crate::views::stats::{self, Group, Line, Stats};
use crate::views::{seconds, BuildChoice};

pub fn run(config: &Config, options: &BuildChoice, format: Format) -> Result<u8> {
    let stats = stats::stats(config, options)?;
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        write_json(&mut out, &stats.to_json())?;
        return Ok(0);
    }
    print(&mut out, &stats)?;
    Ok(0)
}

fn commands(n: usize) -> String {
    if n == 1 {
        "1 command".into()
    } else {
        format!("{n} commands")
    }
}

fn percent(part: i64, whole: i64) -> String {
    format!("{:.0}%", 100.0 * part as f64 / whole.max(1) as f64)
}

fn groups(
    out: &mut impl Write,
    title: &str,
    groups: &[Group],
    total: i64,
    limit: usize,
) -> Result<()> {
    writeln!(out, "\n{title}")?;
    let mut rows: Vec<Vec<String>> = groups
        .iter()
        .take(limit)
        .map(|g| {
            vec![
                format!("  {}", seconds(g.ns)),
                percent(g.ns, total),
                commands(g.commands),
                g.name.clone(),
            ]
        })
        .collect();
    if groups.len() > limit {
        let rest = &groups[limit..];
        let ns: i64 = rest.iter().map(|g| g.ns).sum();
        rows.push(vec![
            format!("  {}", seconds(ns)),
            percent(ns, total),
            format!(
                "{} commands",
                rest.iter().map(|g| g.commands).sum::<usize>()
            ),
            format!("({} more; --json lists all)", rest.len()),
        ]);
    }
    Table::new().right(0).right(1).right(2).write(out, &rows)?;
    Ok(())
}

fn lines(out: &mut impl Write, lines: &[Line]) -> Result<()> {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                format!("  {}", seconds(l.ns)),
                l.id.to_string(),
                l.ending.clone(),
                l.name.clone(),
                l.directory.clone(),
            ]
        })
        .collect();
    Table::new().right(0).right(1).cap(60).write(out, &rows)?;
    Ok(())
}

fn print(out: &mut impl Write, s: &Stats) -> Result<()> {
    let o = &s.occupancy;
    let jobs = s.jobs.flag();
    writeln!(
        out,
        "build {} ({}): wall {}, {} commands in {} makes, {} failed",
        s.build_id,
        s.state,
        seconds(s.wall_ns),
        s.work_commands,
        s.makes,
        s.failed
    )?;
    writeln!(
        out,
        "CPU {} user + {} system; commands ran {} in all",
        seconds(s.user_us * 1000),
        seconds(s.system_us * 1000),
        seconds(s.command_ns)
    )?;
    writeln!(
        out,
        "parallelism {:.2} on average (peak {}, {jobs}) over {} from the first command to the last; make alone: {}",
        o.parallelism(),
        o.peak,
        seconds(o.busy_window_ns),
        seconds(o.outside_commands_ns)
    )?;
    if s.work_commands == 0 {
        writeln!(out, "no command ran")?;
        return Ok(());
    }
    if s.jobs.limit().is_some() {
        writeln!(
            out,
            "fewer than {jobs} running for {} ({} of the wall time), nothing running for {}",
            seconds(o.below_jobs_ns),
            percent(o.below_jobs_ns, s.wall_ns),
            seconds(o.idle_ns)
        )?;
    }
    writeln!(
        out,
        "serialised {} ({}): a job slot free while a command whose inputs were all written waited on make's order",
        seconds(o.serialised_ns),
        percent(o.serialised_ns, s.wall_ns)
    )?;
    writeln!(
        out,
        "\ncritical path {} ({} of the wall time: the build's length with unlimited cores), {}:",
        seconds(s.critical_ns),
        percent(s.critical_ns, s.wall_ns),
        commands(s.critical.len())
    )?;
    const SHOWN: usize = 12;
    if s.critical.len() > SHOWN {
        lines(out, &s.critical[..SHOWN / 2])?;
        writeln!(out, "  … {} more …", s.critical.len() - SHOWN)?;
        lines(out, &s.critical[s.critical.len() - SHOWN / 2..])?;
    } else {
        lines(out, &s.critical)?;
    }
    writeln!(out, "\nslowest commands")?;
    lines(out, &s.slowest)?;
    groups(out, "time by kind", &s.by_kind, s.command_ns, 12)?;
    groups(out, "time by directory", &s.by_directory, s.command_ns, 15)?;
    groups(out, "time by make level", &s.by_level, s.command_ns, 10)?;
    Ok(())
}
