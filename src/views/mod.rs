//! Read-only views of one recorded build: where the time went (`stats`), its timeline
//! as a Chrome trace (`export trace`), its graph in Graphviz (`export dot`), one HTML
//! page with all of it (`report`), and which installed packages it used
//! (`coverage`). Each is an engine in the sense of `src/commands`: it takes
//! `(&Config, &Options)` and answers with data; `commands/` prints.
//!
//! What they share is here: [`Recorded`], a build's commands with their times, and what
//! the time analysis of [`timeline`] computes from them (job slots, parallelism, the
//! critical path).
//!
//! What it must never do: write the record, or reach the network (the report is one
//! file that opens from the file system).

pub mod coverage;
pub mod dot;
pub mod report;
pub mod stats;
pub mod timeline;
pub mod trace;

use std::collections::HashSet;

use anyhow::Result;

use crate::config::Config;
use crate::paths;
use crate::store::{BuildRow, CommandHead, MakeRow, Store};
use crate::util::lossy;

/// How many jobs make was allowed to run at once (`-j`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    Limited(u32),
    /// `-j` without a number.
    Unlimited,
}

impl Jobs {
    /// The `-j` of make's arguments (1 when there is none; the last one wins).
    pub fn from_make_args(args: &[Vec<u8>]) -> Jobs {
        let mut jobs = Jobs::Limited(1);
        let number =
            |bytes: &[u8]| -> Option<u32> { std::str::from_utf8(bytes).ok()?.parse().ok() };
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let next = args.get(i + 1).and_then(|a| number(a));
            if arg.as_slice() == b"--" {
                break;
            } else if let Some(value) = arg.strip_prefix(b"--jobs=") {
                jobs = number(value).map_or(Jobs::Unlimited, Jobs::Limited);
            } else if arg.as_slice() == b"--jobs" {
                jobs = next.map_or(Jobs::Unlimited, Jobs::Limited);
                i += usize::from(next.is_some());
            } else if arg.len() > 1 && arg[0] == b'-' && arg[1] != b'-' {
                // A cluster of short options: `-j8`, `-kj`, `-j 8`. Options that take a
                // value end the cluster.
                for (k, &c) in arg.iter().enumerate().skip(1) {
                    if c == b'j' {
                        let rest = &arg[k + 1..];
                        if !rest.is_empty() {
                            jobs = number(rest).map_or(Jobs::Unlimited, Jobs::Limited);
                        } else {
                            jobs = next.map_or(Jobs::Unlimited, Jobs::Limited);
                            i += usize::from(next.is_some());
                        }
                        break;
                    }
                    if b"CfIoWlOE".contains(&c) {
                        break;
                    }
                }
            }
            i += 1;
        }
        jobs
    }

    /// `-j8`, `-j` (unlimited).
    pub fn flag(self) -> String {
        match self {
            Jobs::Limited(n) => format!("-j{n}"),
            Jobs::Unlimited => "-j".to_string(),
        }
    }

    /// The number of slots, if limited.
    pub fn limit(self) -> Option<u32> {
        match self {
            Jobs::Limited(n) => Some(n),
            Jobs::Unlimited => None,
        }
    }
}

/// Which build a view is about.
#[derive(Debug, Clone, Default)]
pub struct BuildChoice {
    /// The build (default: the last one).
    pub build: Option<i64>,
}

/// One build's commands and makes, with their times.
pub struct Recorded {
    pub store: Store,
    pub build: BuildRow,
    pub makes: Vec<MakeRow>,
    /// Every command, by id.
    pub commands: Vec<CommandHead>,
    pub jobs: Jobs,
    /// The commands that only run a sub-make: their time is their sub-make's commands'.
    runners: HashSet<i64>,
    /// When the build ended, or its last known moment when it did not.
    pub ended_ns: i64,
}

/// Load a build for a view.
pub fn load(config: &Config, build: Option<i64>) -> Result<Recorded> {
    let (store, build) = config.open_build(build)?;
    let makes = store.makes(build.id)?;
    let commands = store.command_heads(build.id)?;
    let mut runners: HashSet<i64> = makes.iter().filter_map(|m| m.parent_command_id).collect();
    runners.extend(commands.iter().filter(|c| c.traced == 2).map(|c| c.id));
    let last = commands
        .iter()
        .map(|c| c.ended_ns.unwrap_or(c.started_ns))
        .chain(makes.iter().filter_map(|m| m.ended_ns))
        .max()
        .unwrap_or(build.started_ns);
    let ended_ns = build.ended_ns.unwrap_or(last).max(build.started_ns);
    let jobs = Jobs::from_make_args(&build.argv);
    Ok(Recorded {
        store,
        build,
        makes,
        commands,
        jobs,
        runners,
        ended_ns,
    })
}

impl Recorded {
    /// Does `c` only run a sub-make?
    pub fn runs_submake(&self, c: &CommandHead) -> bool {
        self.runners.contains(&c.id)
    }

    /// The commands that did the build's work: all but those that only run a sub-make.
    pub fn work(&self) -> impl Iterator<Item = &CommandHead> {
        self.commands.iter().filter(|c| !self.runs_submake(c))
    }

    /// When `c` ended: its end, or the build's when it never ended.
    pub fn end_of(&self, c: &CommandHead) -> i64 {
        c.ended_ns.unwrap_or(self.ended_ns).max(c.started_ns)
    }

    /// How long `c` ran, in nanoseconds.
    pub fn duration(&self, c: &CommandHead) -> i64 {
        self.end_of(c) - c.started_ns
    }

    /// The build's wall time, in nanoseconds.
    pub fn wall_ns(&self) -> i64 {
        self.ended_ns - self.build.started_ns
    }

    /// `c`'s directory below the build's (`.` for the build's own, absolute outside it).
    pub fn directory(&self, directory: &[u8]) -> String {
        match paths::relative(directory, &self.build.directory, 0) {
            Some(below) => lossy(&below).into_owned(),
            None => lossy(directory).into_owned(),
        }
    }
}

/// What a command is called in every view: its label, or its target.
pub fn name(c: &CommandHead) -> String {
    c.label
        .clone()
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| lossy(&c.target).into_owned())
}

/// The kind of a command's label: its first word (`CC`, `LD`, `GEN`), or `other`.
pub fn kind(c: &CommandHead) -> String {
    c.label
        .as_deref()
        .and_then(|l| l.split_whitespace().next())
        .filter(|w| {
            w.chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
        })
        .unwrap_or("other")
        .to_string()
}

/// How a command ended, shortly: `ok`, `exit 2`, `signal 9`, or its state.
pub fn ending(c: &CommandHead) -> String {
    match (c.state.as_str(), c.exit_code, c.signal) {
        ("ok", ..) => "ok".into(),
        (_, Some(code), _) => format!("exit {code}"),
        (_, _, Some(signal)) => format!("signal {signal}"),
        (state, ..) => state.into(),
    }
}

/// Nanoseconds as seconds, for people: `12.3s`, `0.04s`, `2m05s`.
pub fn seconds(ns: i64) -> String {
    let s = ns as f64 / 1e9;
    if s >= 120.0 {
        let whole = s.round() as i64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else if s >= 10.0 {
        format!("{s:.1}s")
    } else {
        format!("{s:.2}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(args: &[&str]) -> Jobs {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        Jobs::from_make_args(&args)
    }

    #[test]
    fn jobs_come_from_every_spelling_of_j() {
        assert_eq!(jobs(&[]), Jobs::Limited(1));
        assert_eq!(jobs(&["-j8", "all"]), Jobs::Limited(8));
        assert_eq!(jobs(&["-j", "4"]), Jobs::Limited(4));
        assert_eq!(jobs(&["-j", "all"]), Jobs::Unlimited);
        assert_eq!(jobs(&["-kj3"]), Jobs::Limited(3));
        assert_eq!(jobs(&["--jobs=2"]), Jobs::Limited(2));
        assert_eq!(jobs(&["--jobs", "6"]), Jobs::Limited(6));
        assert_eq!(jobs(&["-C", "dir-j", "x"]), Jobs::Limited(1));
        assert_eq!(jobs(&["-Cj", "x"]), Jobs::Limited(1));
        assert_eq!(jobs(&["-j2", "--", "-j9"]), Jobs::Limited(2));
    }

    #[test]
    fn seconds_read_well() {
        assert_eq!(seconds(40_000_000), "0.04s");
        assert_eq!(seconds(12_345_000_000), "12.3s");
        assert_eq!(seconds(125_000_000_000), "2m05s");
    }
}
