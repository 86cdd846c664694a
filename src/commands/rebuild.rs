//! `makescope rebuild`: ask the rebuild engine what is out of date; with `--dry-run`
//! list it (a label and the first reason each, early cutoffs said in the summary);
//! else have it re-run that and print the run as `makescope make` prints a build
//! (labels, progress, `FAILED:` blocks), then one summary line on stderr. The exit
//! status is 0, or 1 when a re-run failed.

use std::io::Write;

use anyhow::Result;

use crate::config::Config;
use crate::output::{Mode, Outcome, Printer, Stream};
use crate::rebuild::{self, info_of, label_of, unit_label, OutOfDate, RebuildOptions, RunEvent};

/// What a replay says of make's jobserver; rebuild says it once, not for every job.
const JOBSERVER_NOTE: &[u8] = b"makescope: replay: make's jobserver";

pub fn run(config: &Config, options: &RebuildOptions) -> Result<u8> {
    if options.take_states {
        let (mut store, build) = config.open_build(options.build)?;
        let Some(taken) = rebuild::take_states(&mut store, build.id)? else {
            anyhow::bail!(rebuild::RebuildError::Untraced(build.id));
        };
        eprintln!(
            "makescope: rebuild: took the states of {} files of build {} ({} hashed) in {:.2} s",
            taken.files, build.id, taken.hashed, taken.seconds
        );
        return Ok(0);
    }
    let plan = rebuild::out_of_date(config, options)?;
    if options.dry_run {
        dry_run(&plan)?;
        return Ok(0);
    }
    if plan.units.is_empty() {
        let mut err = std::io::stderr().lock();
        touched_line(&mut err, &plan)?;
        if !plan.touched.is_empty() || !plan.refreshed.is_empty() {
            // Nothing to run; the touched files' new stats are written, so that the
            // next check is a scan of stats again.
            rebuild::run(config, &plan, options, &mut |_| {})?;
        }
        writeln!(
            err,
            "makescope: rebuild: nothing to do: {} paths as build {} left them (checked in {:.2} s)",
            plan.checked, plan.build.id, plan.seconds
        )?;
        return Ok(0);
    }
    let mut printer = Printer::new(Mode::Concise, Some(plan.units.len() as u64));
    let mut jobserver = false;
    let top = plan.build.directory.clone();
    let summary = rebuild::run(config, &plan, options, &mut |event| match event {
        RunEvent::Started { unit, .. } => {
            let leaf = plan.units[*unit].first();
            printer.started(&info_of(leaf, &top), &label_of(leaf, &top));
        }
        RunEvent::Finished {
            unit,
            output,
            exit_code,
            signal,
            duration,
        } => {
            let leaf = plan.units[*unit].first();
            let mut body = Vec::with_capacity(output.len());
            for line in output.split_inclusive(|&b| b == b'\n') {
                if line.starts_with(JOBSERVER_NOTE) {
                    jobserver = true;
                } else {
                    body.extend_from_slice(line);
                }
            }
            printer.finished(
                &info_of(leaf, &top),
                &label_of(leaf, &top),
                &[(Stream::Stdout, body)],
                &Outcome {
                    exit_code: *exit_code,
                    signal: *signal,
                    duration_ns: duration.as_nanos() as i64,
                },
            );
        }
        RunEvent::CutOff { .. } | RunEvent::NotRun { .. } => {}
    })?;
    printer.end();
    let mut err = std::io::stderr().lock();
    if jobserver {
        writeln!(
            err,
            "makescope: rebuild: make's jobserver is dropped from the recorded MAKEFLAGS: re-runs share no job slots with anything"
        )?;
    }
    touched_line(&mut err, &plan)?;
    if !summary.cut_off.is_empty() {
        let names: Vec<String> = summary
            .cut_off
            .iter()
            .take(5)
            .map(|&u| unit_label(&plan.units[u], &top))
            .collect();
        writeln!(
            err,
            "makescope: rebuild: early cutoff: {} not re-run, their inputs came out byte-identical: {}{}",
            plural(summary.cut_off.len(), "recipe"),
            names.join(", "),
            if summary.cut_off.len() > 5 { ", …" } else { "" }
        )?;
    }
    if summary.failed > 0 {
        writeln!(
            err,
            "makescope: rebuild failed after {:.1} s; {} failed, {} not run, {} ran",
            summary.seconds,
            plural(summary.failed, "recipe"),
            summary.not_run,
            summary.ran
        )?;
        return Ok(1);
    }
    writeln!(
        err,
        "makescope: rebuild: ran {} in {:.1} s; the record's file states are updated",
        plural(summary.ran, "recipe"),
        summary.seconds
    )?;
    Ok(0)
}

fn dry_run(plan: &OutOfDate) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let top = &plan.build.directory;
    for unit in &plan.units {
        let label = label_of(unit.first(), top);
        writeln!(
            out,
            "  {:<5} {:<40} {}",
            label.verb, label.object, unit.reason
        )?;
    }
    drop(out);
    let mut err = std::io::stderr().lock();
    touched_line(&mut err, plan)?;
    let direct = plan.direct();
    let downstream = plan.units.len() - direct;
    if plan.units.is_empty() {
        writeln!(
            err,
            "makescope: rebuild: nothing to do: {} paths as build {} left them (checked in {:.2} s)",
            plan.checked, plan.build.id, plan.seconds
        )?;
    } else {
        writeln!(
            err,
            "makescope: rebuild: {} out of date, {} downstream of them{} (checked {} paths in {:.2} s); nothing was run",
            plural(direct, "recipe"),
            downstream,
            if downstream > 0 {
                " (each skipped if what it reads comes out byte-identical: early cutoff)"
            } else {
                ""
            },
            plan.checked,
            plan.seconds
        )?;
    }
    Ok(())
}

/// Files touched with their content unchanged: said, and nothing re-runs for them.
fn touched_line(err: &mut impl Write, plan: &OutOfDate) -> Result<()> {
    if plan.touched.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = plan
        .touched
        .iter()
        .take(3)
        .map(|(_, n, _)| n.as_str())
        .collect();
    writeln!(
        err,
        "makescope: rebuild: {} touched, content unchanged: nothing re-runs for {} ({}{})",
        plural(plan.touched.len(), "file"),
        if plan.touched.len() == 1 {
            "it"
        } else {
            "them"
        },
        names.join(", "),
        if plan.touched.len() > 3 { ", …" } else { "" }
    )?;
    Ok(())
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
