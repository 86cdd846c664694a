//! Rows on their way to the writer thread, in batches.
//!
//! A send to the idle writer wakes it (three rows a process, ~50,000 processes in a
//! glibc build), so rows go as one [`Write::Batch`] every few milliseconds, and before
//! the UI hears of a command (hooks may send notes about its row as soon as they hear of
//! its start or end). This never waits: the writer's channel is unbounded.

use rustc_hash::FxHashMap as HashMap;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crate::record::writer::Write;
use crate::store::NewProcess;

/// Rows are given to the writer in batches at least this often, or of this many.
const BATCH_TIME: Duration = Duration::from_millis(20);
const BATCH_ROWS: usize = 1024;

pub(super) struct Rows {
    to_writer: Sender<Write>,
    /// Rows not yet given to the writer.
    batch: Vec<Write>,
    since: Instant,
    /// Process rows in `batch`: their ids and positions.
    unsent_processes: HashMap<i64, usize>,
}

impl Rows {
    pub fn new(to_writer: Sender<Write>) -> Rows {
        Rows {
            to_writer,
            batch: Vec::new(),
            since: Instant::now(),
            unsent_processes: HashMap::default(),
        }
    }

    pub fn write(&mut self, write: Write) {
        if self.batch.is_empty() {
            self.since = Instant::now();
        }
        self.batch.push(write);
        if self.batch.len() >= BATCH_ROWS {
            self.send();
        }
    }

    /// A process's row, kept findable while it waits in the batch.
    pub fn write_process(&mut self, process: NewProcess) {
        self.unsent_processes.insert(process.id, self.batch.len());
        self.write(Write::Process(process));
    }

    /// A process's row while it is still in the unsent batch: its exec and end are
    /// written with it, one statement instead of three (most processes run one short
    /// program: ~51,000 a glibc build).
    pub fn unsent_process(&mut self, id: i64) -> Option<&mut NewProcess> {
        let &at = self.unsent_processes.get(&id)?;
        match self.batch.get_mut(at) {
            Some(Write::Process(p)) if p.id == id => Some(p),
            _ => None,
        }
    }

    /// Give the writer what there is.
    pub fn send(&mut self) {
        self.unsent_processes.clear();
        if !self.batch.is_empty() {
            let _ = self
                .to_writer
                .send(Write::Batch(std::mem::take(&mut self.batch)));
        }
    }

    /// Send the batch if it has waited long enough.
    pub fn send_if_due(&mut self) {
        if self.since.elapsed() >= BATCH_TIME {
            self.send();
        }
    }
}
