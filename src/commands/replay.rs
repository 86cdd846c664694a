//! `makescope replay`: plan the replay, say each note in one line on stderr, then list
//! it (`--dry-run`), write its script (`--script`), or run it and say what its run
//! adds (failures make went past, processes killed), then record the traced run (quietly:
//! `show REF` lists it). The exit status is the command's.

use std::io::Write;

use anyhow::Result;

use crate::config::Config;
use crate::replay::{self, script, CurrentEnvironment, Executor, Mode, ReplayOptions};

pub fn run(config: &Config, options: &ReplayOptions) -> Result<u8> {
    let plan = replay::plan(config, options, &CurrentEnvironment)?;
    let mut err = std::io::stderr().lock();
    for note in &plan.notes {
        writeln!(err, "makescope: replay: {note}")?;
    }
    drop(err);
    let mut out = std::io::stdout().lock();
    match options.mode {
        Mode::DryRun => {
            out.write_all(script::listing(&plan).as_bytes())?;
            Ok(0)
        }
        Mode::Script => {
            out.write_all(&script::posix_sh(&plan))?;
            Ok(0)
        }
        Mode::Run => {
            drop(out);
            plan.check_directory()?;
            let mut executor = Executor::for_this_process();
            if options.sandbox {
                executor = executor.sandboxed(replay::sandbox(config, &plan)?);
            } else if options.trace {
                executor = executor.traced();
            }
            let outcome = executor.run(&plan)?;
            let mut err = std::io::stderr().lock();
            let mut missed = false;
            for line in &outcome.lines {
                let Some(run) = &line.sandbox else { continue };
                for (path, kind) in &run.misses {
                    missed = true;
                    writeln!(
                        err,
                        "makescope: replay: outside its record: {} {}",
                        kind.name(),
                        crate::util::lossy(path)
                    )?;
                }
                if std::env::var_os("MAKESCOPE_SANDBOX_TIMES").is_some() {
                    writeln!(
                        err,
                        "makescope: sandbox: namespaces {:.2} ms, mounts {:.2} ms, teardown {:.2} ms",
                        run.namespaces_ns as f64 / 1e6,
                        run.mounts_ns as f64 / 1e6,
                        run.teardown_ns as f64 / 1e6
                    )?;
                }
            }
            for line in outcome.lines.iter().filter(|l| l.ignored) {
                writeln!(
                    err,
                    "makescope: replay: line {} {} (ignored, as make did)",
                    line.line,
                    line.status_text()
                )?;
            }
            if !outcome.killed.is_empty() {
                writeln!(
                    err,
                    "makescope: replay: killed {} process(es) the command left running: {}",
                    outcome.killed.len(),
                    outcome.killed.join(", ")
                )?;
            }
            if options.trace {
                // The record is a by-product: the command's status stands without it.
                // Quietly: `show REF` lists the replays.
                if let Err(error) = replay::record_run(config, options, &plan, &outcome) {
                    writeln!(err, "makescope: replay: the run was not recorded: {error}")?;
                }
            }
            // A sandboxed command that touched something outside its record fails,
            // even when it swallowed the error itself.
            Ok(match outcome.exit_status() {
                0 if missed => crate::exit::SANDBOX_MISSED,
                status => status,
            })
        }
    }
}
