//! `makescope stats` as data: where a build's time went. Wall and CPU time, commands by
//! kind of label, the slowest, time per directory and per make level, parallelism
//! against `-j`, make's serialisation, and the critical path. Every time sum is over
//! the same commands (those that do work: a command that only runs a sub-make is
//! counted through its sub-make's commands), so the per-directory, per-level and
//! per-kind times each add up to [`Stats::command_ns`].
//!
//! What it must never do: print.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{json, Value};

use super::timeline::{Analysis, CriticalPath, Occupancy};
use super::{ending, kind, load, name, BuildChoice, Jobs, Recorded};
use crate::config::Config;

/// One group of commands and their summed time.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub commands: usize,
    pub ns: i64,
}

/// One command as the lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub id: i64,
    pub name: String,
    pub directory: String,
    pub ns: i64,
    pub ending: String,
}

/// Where a build's time went.
#[derive(Debug, Clone)]
pub struct Stats {
    pub build_id: i64,
    pub state: String,
    pub wall_ns: i64,
    pub user_us: i64,
    pub system_us: i64,
    /// Every command recorded, sub-make runners included.
    pub commands: usize,
    /// The commands that did work (the ones every time below sums over).
    pub work_commands: usize,
    pub makes: usize,
    pub failed: usize,
    pub command_ns: i64,
    pub jobs: Jobs,
    pub occupancy: Occupancy,
    pub by_kind: Vec<Group>,
    pub by_directory: Vec<Group>,
    pub by_level: Vec<Group>,
    pub slowest: Vec<Line>,
    pub critical: Vec<Line>,
    pub critical_ns: i64,
}

/// How many slowest commands are listed.
pub const SLOWEST: usize = 10;

/// The stats of the chosen build.
pub fn stats(config: &Config, options: &BuildChoice) -> Result<Stats> {
    let recorded = load(config, options.build)?;
    let analysis = recorded.analyse()?;
    Ok(Stats::of(&recorded, &analysis))
}

fn grouped(groups: BTreeMap<String, (usize, i64)>) -> Vec<Group> {
    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|(name, (commands, ns))| Group { name, commands, ns })
        .collect();
    out.sort_by(|a, b| b.ns.cmp(&a.ns).then_with(|| a.name.cmp(&b.name)));
    out
}

impl Stats {
    /// The stats of a loaded, analysed build.
    pub fn of(recorded: &Recorded, analysis: &Analysis) -> Stats {
        let mut by_kind = BTreeMap::new();
        let mut by_directory = BTreeMap::new();
        let mut by_level = BTreeMap::new();
        let mut lines = Vec::new();
        let (mut user_us, mut system_us, mut failed) = (0, 0, 0);
        for c in &recorded.commands {
            // CPU time is what the command's processes used: a runner's includes its
            // sub-make's commands, so it is left out here too.
            if recorded.runs_submake(c) {
                continue;
            }
            user_us += c.user_us.unwrap_or(0);
            system_us += c.system_us.unwrap_or(0);
            failed += usize::from(c.state != "ok" && c.state != "running");
            let ns = recorded.duration(c);
            let directory = recorded.directory(&c.directory);
            for (map, key) in [
                (&mut by_kind, kind(c)),
                (&mut by_directory, directory.clone()),
                (
                    &mut by_level,
                    c.make_level.map_or("?".into(), |l| l.to_string()),
                ),
            ] {
                let entry = map.entry(key).or_insert((0usize, 0i64));
                entry.0 += 1;
                entry.1 += ns;
            }
            lines.push(Line {
                id: c.id,
                name: name(c),
                directory,
                ns,
                ending: ending(c),
            });
        }
        let mut by_level = grouped(by_level);
        by_level.sort_by(|a, b| a.name.cmp(&b.name));
        let critical = critical_lines(&lines, &analysis.critical);
        let work_commands = lines.len();
        lines.sort_by(|a, b| b.ns.cmp(&a.ns).then(a.id.cmp(&b.id)));
        lines.truncate(SLOWEST);
        Stats {
            build_id: recorded.build.id,
            state: recorded.build.state.clone(),
            wall_ns: recorded.wall_ns(),
            user_us,
            system_us,
            commands: recorded.commands.len(),
            work_commands,
            makes: recorded.makes.len(),
            failed,
            command_ns: analysis.occupancy.command_ns,
            jobs: recorded.jobs,
            occupancy: analysis.occupancy.clone(),
            by_kind: grouped(by_kind),
            by_directory: grouped(by_directory),
            by_level,
            slowest: lines,
            critical,
            critical_ns: analysis.critical.length_ns,
        }
    }

    /// `makescope stats --json`.
    pub fn to_json(&self) -> Value {
        let groups = |groups: &[Group]| -> Value {
            json!(groups
                .iter()
                .map(|g| json!({"name": g.name, "commands": g.commands, "seconds": g.ns as f64 / 1e9}))
                .collect::<Vec<_>>())
        };
        let lines = |lines: &[Line]| -> Value {
            json!(lines
                .iter()
                .map(
                    |l| json!({"id": l.id, "name": l.name, "directory": l.directory,
                                "seconds": l.ns as f64 / 1e9, "ending": l.ending})
                )
                .collect::<Vec<_>>())
        };
        let o = &self.occupancy;
        json!({
            "build": self.build_id,
            "state": self.state,
            "wall_seconds": self.wall_ns as f64 / 1e9,
            "cpu_seconds": {"user": self.user_us as f64 / 1e6, "system": self.system_us as f64 / 1e6},
            "commands": self.commands,
            "work_commands": self.work_commands,
            "makes": self.makes,
            "failed": self.failed,
            "command_seconds": self.command_ns as f64 / 1e9,
            "jobs": self.jobs.limit(),
            "parallelism": {
                "average": o.parallelism(),
                "peak": o.peak,
                "busy_window_seconds": o.busy_window_ns as f64 / 1e9,
                "outside_commands_seconds": o.outside_commands_ns as f64 / 1e9,
                "below_jobs_seconds": o.below_jobs_ns as f64 / 1e9,
                "idle_seconds": o.idle_ns as f64 / 1e9,
                "serialised_seconds": o.serialised_ns as f64 / 1e9,
            },
            "critical_path": {"seconds": self.critical_ns as f64 / 1e9, "commands": lines(&self.critical)},
            "by_kind": groups(&self.by_kind),
            "by_directory": groups(&self.by_directory),
            "by_make_level": groups(&self.by_level),
            "slowest": lines(&self.slowest),
        })
    }
}

fn critical_lines(lines: &[Line], path: &CriticalPath) -> Vec<Line> {
    let by_id: std::collections::HashMap<i64, &Line> = lines.iter().map(|l| (l.id, l)).collect();
    path.commands
        .iter()
        .filter_map(|id| by_id.get(id).map(|l| (*l).clone()))
        .collect()
}
