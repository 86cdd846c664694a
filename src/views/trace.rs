//! `makescope export trace`: the build as Chrome trace-event JSON (the "JSON object
//! format" that Perfetto and `chrome://tracing` open). Three processes: "jobs", one
//! thread per job slot, each command a complete ("X") slice named by its label; "makes",
//! each make and sub-make a slice on a track of its own level of nesting; "critical
//! path", the critical path's commands again on one track. Every slice's args hold the
//! command id, target, recipe (`makefile:line`), directory and how it ended; the
//! critical path's commands have `"critical": true` and category `critical`. Times are
//! whole microseconds from the build's start, rounded down, so that a slice that
//! started when another ended never overlaps it.
//!
//! What it must never do: print (it returns the JSON).

use std::collections::HashSet;

use anyhow::Result;
use serde_json::{json, Value};

use super::timeline::{tracks, Analysis};
use super::{ending, load, name, BuildChoice, Recorded};
use crate::util::lossy;

/// The process ids of the trace.
pub const JOBS_PID: u32 = 1;
pub const MAKES_PID: u32 = 2;
pub const CRITICAL_PID: u32 = 3;

/// The chosen build's trace.
pub fn trace(config: &crate::config::Config, options: &BuildChoice) -> Result<Value> {
    let recorded = load(config, options.build)?;
    let analysis = recorded.analyse()?;
    Ok(render(&recorded, &analysis))
}

/// The trace of a loaded, analysed build.
pub fn render(recorded: &Recorded, analysis: &Analysis) -> Value {
    let start = recorded.build.started_ns;
    let us = |ns: i64| (ns - start).max(0) / 1000;
    let critical: HashSet<i64> = analysis.critical.commands.iter().copied().collect();
    let mut events = Vec::new();
    let mut names = |pid: u32, tid: Option<usize>, name: String, sort: i64| {
        let (kind, args) = match tid {
            None => ("process_name", json!({"name": name})),
            Some(_) => ("thread_name", json!({"name": name})),
        };
        events.push(
            json!({"ph": "M", "pid": pid, "tid": tid.unwrap_or(0), "name": kind, "args": args}),
        );
        let sort_kind = if tid.is_some() {
            "thread_sort_index"
        } else {
            "process_sort_index"
        };
        events.push(
            json!({"ph": "M", "pid": pid, "tid": tid.unwrap_or(0), "name": sort_kind,
                           "args": {"sort_index": sort}}),
        );
    };
    names(
        JOBS_PID,
        None,
        format!("jobs ({})", recorded.jobs.flag()),
        1,
    );
    names(MAKES_PID, None, "makes".into(), 2);
    names(CRITICAL_PID, None, "critical path".into(), 0);
    names(CRITICAL_PID, Some(1), "critical path".into(), 0);
    let slots = analysis.slots.values().max().map_or(0, |m| m + 1);
    for slot in 0..slots {
        names(
            JOBS_PID,
            Some(slot + 1),
            format!("slot {}", slot + 1),
            slot as i64,
        );
    }
    let makes: Vec<(i64, i64)> = recorded
        .makes
        .iter()
        .map(|m| {
            (
                m.started_ns,
                m.ended_ns.unwrap_or(recorded.ended_ns).max(m.started_ns),
            )
        })
        .collect();
    let make_tracks = tracks(&makes);
    for track in 0..make_tracks.iter().max().map_or(0, |m| m + 1) {
        names(
            MAKES_PID,
            Some(track + 1),
            format!("makes {}", track + 1),
            track as i64,
        );
    }

    // The critical path's commands follow one another, but a reader may start before
    // its writer has quite ended: tracks keep its slices apart all the same.
    let path: Vec<(i64, i64)> = analysis
        .critical
        .commands
        .iter()
        .filter_map(|id| recorded.commands.iter().find(|c| c.id == *id))
        .map(|c| (c.started_ns, recorded.end_of(c)))
        .collect();
    let path_tracks: std::collections::HashMap<i64, usize> = analysis
        .critical
        .commands
        .iter()
        .copied()
        .zip(tracks(&path))
        .collect();
    for track in 1..path_tracks.values().max().map_or(1, |m| m + 1) {
        names(
            CRITICAL_PID,
            Some(track + 1),
            format!("critical path {}", track + 1),
            track as i64,
        );
    }
    let mut slices = Vec::new();
    for c in recorded.work() {
        let Some(&slot) = analysis.slots.get(&c.id) else {
            continue;
        };
        let (ts, end) = (us(c.started_ns), us(recorded.end_of(c)));
        let on_path = critical.contains(&c.id);
        let recipe = match (&c.recipe_file, c.recipe_line) {
            (Some(file), Some(line)) => format!("{}:{line}", lossy(file)),
            (Some(file), None) => lossy(file).into_owned(),
            _ => String::new(),
        };
        let args = json!({
            "id": c.id,
            "target": lossy(&c.target),
            "recipe": recipe,
            "directory": recorded.directory(&c.directory),
            "exit": ending(c),
            "exit_code": c.exit_code,
            "make_level": c.make_level,
            "critical": on_path,
        });
        let category = if on_path {
            "command,critical"
        } else {
            "command"
        };
        slices.push(
            json!({"ph": "X", "name": name(c), "cat": category, "ts": ts, "dur": end - ts,
                           "pid": JOBS_PID, "tid": slot + 1, "args": args.clone()}),
        );
        if on_path {
            slices.push(json!({"ph": "X", "name": name(c), "cat": "critical", "ts": ts,
                               "dur": end - ts, "pid": CRITICAL_PID,
                               "tid": path_tracks.get(&c.id).copied().unwrap_or(0) + 1, "args": args}));
        }
    }
    for (m, track) in recorded.makes.iter().zip(make_tracks) {
        let ts = us(m.started_ns);
        let end = us(m.ended_ns.unwrap_or(recorded.ended_ns).max(m.started_ns));
        let directory = recorded.directory(&m.directory);
        slices.push(json!({
            "ph": "X", "name": format!("make {directory}"), "cat": "make", "ts": ts, "dur": end - ts,
            "pid": MAKES_PID, "tid": track + 1,
            "args": {"make_id": m.id, "level": m.level, "directory": directory,
                     "parent_command": m.parent_command_id,
                     "argv": m.argv.iter().map(|a| lossy(a).into_owned()).collect::<Vec<_>>()},
        }));
    }
    events.extend(slices);
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "makescope_build": recorded.build.id,
            "directory": lossy(&recorded.build.directory),
            "jobs": recorded.jobs.flag(),
            "critical_path_us": analysis.critical.length_ns / 1000,
        },
    })
}
