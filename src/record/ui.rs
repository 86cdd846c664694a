//! The UI thread: labels each command (built-in rules, then the user's hooks), prints
//! the build, and passes what hooks decided on to the writer.
//!
//! Hooks run here, in one embedded interpreter for the whole build, never in the event
//! loop (traced processes wait on that) and never inside a traced command.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::writer::Write;
use super::Setup;
use crate::hooks::Hooks;
use crate::output::{
    default_label, CommandInfo, Label, Outcome, Place, Printer, Stream, Summary, DEFAULT_STATUS,
};
use crate::store::CommandNotes;

/// What the event loop and main thread tell the UI.
#[derive(Debug)]
pub(crate) enum Event {
    /// A recipe line started, at this place in its job.
    Started(CommandInfo, Place),
    Finished {
        info: CommandInfo,
        place: Place,
        output: Vec<(Stream, Vec<u8>)>,
        outcome: Outcome,
        /// What it read and wrote, when traced and hooks are loaded.
        files: Option<crate::hooks::Files>,
    },
    MakeOutput(Stream, Vec<u8>),
    /// The make process with this pid exited: its jobs are over.
    MakeEnded(i32),
    /// These jobs (make pid, job number) are over: their make runs no more of them.
    JobsOver(Vec<(i32, u64)>),
    Warning(String),
    Done {
        exit_code: Option<i32>,
        signal: Option<i32>,
        elapsed: Duration,
    },
}

/// How the UI thread ended.
#[derive(Debug, Default)]
pub(crate) struct UiResult {
    pub hooks_failed: bool,
    /// A write to makescope's stdout failed (not a closed pipe): make's and the
    /// commands' output was lost.
    pub stdout_failed: bool,
}

pub(crate) fn spawn(
    setup: Setup,
    rx: Receiver<Event>,
    to_writer: Sender<Write>,
) -> std::thread::JoinHandle<UiResult> {
    std::thread::Builder::new()
        .name("output".into())
        .spawn(move || run(setup, rx, to_writer))
        .expect("spawning the output thread")
}

fn run(setup: Setup, rx: Receiver<Event>, to_writer: Sender<Write>) -> UiResult {
    // Background work: never preempt the event loop (which trapped calls wait for) or
    // the build's jobs when woken.
    let _ = crate::trace::sys::set_batch();
    let mut printer = Printer::new(setup.mode, setup.expected_total);
    printer.set_status(
        setup.expected_jobs,
        std::env::var("MAKESCOPE_STATUS").unwrap_or_else(|_| DEFAULT_STATUS.to_owned()),
    );
    let mut hooks_failed = false;
    // Hook diagnostics (tracebacks) go through the printer, so they do not tear the
    // progress line: the reporter collects them, the loop prints them.
    let diagnostics: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&diagnostics);
    let reporter: crate::hooks::Reporter = Box::new(move |text: &str| {
        if let Ok(mut pending) = sink.lock() {
            pending.push(text.trim_end().to_owned());
        }
    });
    let flush = |printer: &mut Printer| {
        let pending = diagnostics
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for text in pending {
            printer.warning(&text);
        }
    };
    let mut hooks = match &setup.hooks {
        None => None,
        Some(path) => match Hooks::load_with_reporter(path, reporter) {
            Ok(hooks) => Some(hooks),
            Err(error) => {
                eprintln!("makescope: hooks: {error:#}");
                eprintln!("makescope: the build goes on without hooks");
                hooks_failed = true;
                None
            }
        },
    };
    // Each running line's label and whether a hook chose it.
    let mut labels: HashMap<i64, (Label, bool)> = HashMap::new();
    let mut failed = 0usize;
    let mut finished = 0usize;
    for event in rx {
        match event {
            Event::Started(info, place) => {
                let default = default_label(&info);
                let (label, by_hook) = match hooks.as_mut() {
                    Some(hooks) => {
                        let hooked = hooks.label(&info, &default);
                        hooks.started(&info);
                        match hooked {
                            Some(label) => (label, true),
                            None => (default, false),
                        }
                    }
                    None => (default, false),
                };
                flush(&mut printer);
                printer.line_started(&info, &label, place);
                let notes = CommandNotes {
                    label: Some(format!("{} {}", label.verb, label.object)),
                    ..Default::default()
                };
                let _ = to_writer.send(Write::Notes(info.id, notes));
                labels.insert(info.id, (label, by_hook));
            }
            Event::Finished {
                info,
                place,
                output,
                outcome,
                files,
            } => {
                let (label, by_hook) = labels
                    .remove(&info.id)
                    .unwrap_or_else(|| (default_label(&info), false));
                finished += 1;
                if outcome.failed() {
                    failed += 1;
                }
                if let Some(hooks) = hooks.as_mut() {
                    let verdict = hooks.finished_with_files(&info, &outcome, files.as_ref());
                    if !verdict.tags.is_empty()
                        || verdict.test_name.is_some()
                        || verdict.test_result.is_some()
                    {
                        let notes = CommandNotes {
                            label: None,
                            test_name: verdict.test_name,
                            test_result: verdict.test_result,
                            tags: verdict.tags,
                        };
                        let _ = to_writer.send(Write::Notes(info.id, notes));
                    }
                }
                flush(&mut printer);
                printer.line_finished(&info, &label, by_hook, place, &output, &outcome);
            }
            Event::MakeOutput(stream, bytes) => printer.make_output(stream, &bytes),
            Event::MakeEnded(pid) => printer.make_ended(pid),
            Event::JobsOver(jobs) => printer.jobs_over(jobs),
            Event::Warning(text) => printer.warning(&text),
            Event::Done {
                exit_code,
                signal,
                elapsed,
            } => {
                let summary = Summary {
                    commands: finished as u64,
                    failed: failed as u64,
                    elapsed,
                    exit_code,
                    signal,
                    record: Some(setup.db.clone()),
                };
                flush(&mut printer);
                if let Some(line) = hooks.as_ref().and_then(Hooks::summary) {
                    printer.warning(&line);
                }
                printer.finish(&summary);
            }
        }
    }
    if hooks.as_ref().is_some_and(Hooks::failed) {
        hooks_failed = true;
    }
    crate::trace::sys::report_thread_cpu("output");
    UiResult {
        hooks_failed,
        stdout_failed: printer.stdout_failed(),
    }
}
