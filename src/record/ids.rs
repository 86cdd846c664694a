//! The recorder's ids for makes, commands and processes, taken from blocks reserved in
//! the record (see store/write.rs for why blocks), so that other recorders writing the
//! same record at the same time never collide with this one.
//!
//! The first blocks are reserved before make starts. The event loop ([`Ids`]) asks the
//! writer thread for the next block of a kind when half of the current one is used, and
//! takes the answer when the current one runs out; it waits only if the writer is more
//! than half a block behind. It never touches SQLite itself. The writer ([`Blocks`])
//! reserves, answers, and when the build ends gives back what was not used. A writer
//! that has failed answers with nothing: then the ids only need to differ from each
//! other, since nothing more is recorded, and the event loop counts on by itself.

use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender};

use crate::record::writer::Write;
use crate::store::{IdKind, Store, StoreError};

/// Ids reserved at a time (per kind).
pub(crate) const BLOCK: i64 = 4096;

/// The kinds the event loop numbers (a build's own id is reserved once, at its start).
const KINDS: [IdKind; 3] = [IdKind::Make, IdKind::Command, IdKind::Process];

fn slot(kind: IdKind) -> usize {
    match kind {
        IdKind::Make => 0,
        IdKind::Command => 1,
        IdKind::Process => 2,
        IdKind::Build => unreachable!("a build's id is reserved once, not numbered"),
    }
}

/// The writer's answer to a [`Write::ReserveIds`]: the block, or `None` when the writer
/// has failed.
pub(crate) type Answer = (IdKind, Option<Range<i64>>);

/// A build's id and the first blocks, reserved in one transaction before make starts.
pub(crate) fn reserve_first(store: &mut Store) -> Result<(i64, [Range<i64>; 3]), StoreError> {
    store.begin()?;
    let reserved = (|| {
        let build = store.reserve_ids(IdKind::Build, 1)?.start;
        let blocks = [
            store.reserve_ids(IdKind::Make, BLOCK)?,
            store.reserve_ids(IdKind::Command, BLOCK)?,
            store.reserve_ids(IdKind::Process, BLOCK)?,
        ];
        Ok((build, blocks))
    })();
    match reserved {
        Ok(reserved) => {
            store.commit()?;
            Ok(reserved)
        }
        Err(error) => {
            store.rollback();
            Err(error)
        }
    }
}

/// One kind's numbering in the event loop.
#[derive(Debug)]
struct Numbering {
    next: i64,
    end: i64,
    /// The next block, once the writer has answered.
    spare: Option<Range<i64>>,
    /// A block was asked for and not yet answered.
    asked: bool,
}

/// The event loop's ids.
#[derive(Debug)]
pub(crate) struct Ids {
    numbering: [Numbering; 3],
    to_writer: Sender<Write>,
    answers: Receiver<Answer>,
}

impl Ids {
    pub fn new(first: [Range<i64>; 3], to_writer: Sender<Write>, answers: Receiver<Answer>) -> Ids {
        Ids {
            numbering: first.map(|block| Numbering {
                next: block.start,
                end: block.end,
                spare: None,
                asked: false,
            }),
            to_writer,
            answers,
        }
    }

    /// The next id of `kind`.
    pub fn next(&mut self, kind: IdKind) -> i64 {
        self.take_answers();
        let i = slot(kind);
        if self.numbering[i].next == self.numbering[i].end {
            if self.numbering[i].spare.is_none() {
                self.ask(kind);
                self.wait_for(kind);
            }
            let n = &mut self.numbering[i];
            let block = n.spare.take().expect("wait_for leaves a block");
            n.next = block.start;
            n.end = block.end;
        }
        let n = &mut self.numbering[i];
        let id = n.next;
        n.next += 1;
        if !n.asked && n.spare.is_none() && n.end - n.next <= BLOCK / 2 {
            self.ask(kind);
        }
        id
    }

    /// The first id of each kind not used: what the writer gives back at the end.
    pub fn used(&self) -> Vec<(IdKind, i64)> {
        KINDS
            .iter()
            .map(|&kind| (kind, self.numbering[slot(kind)].next))
            .collect()
    }

    fn ask(&mut self, kind: IdKind) {
        let asked = self.to_writer.send(Write::ReserveIds(kind, BLOCK)).is_ok();
        let n = &mut self.numbering[slot(kind)];
        if asked {
            n.asked = true;
        } else {
            n.spare = Some(n.end..n.end + BLOCK);
        }
    }

    fn take_answers(&mut self) {
        while let Ok(answer) = self.answers.try_recv() {
            self.take(answer);
        }
    }

    /// Wait for the block of `kind` asked for.
    fn wait_for(&mut self, kind: IdKind) {
        while self.numbering[slot(kind)].spare.is_none() {
            match self.answers.recv() {
                Ok(answer) => self.take(answer),
                Err(_) => {
                    let n = &mut self.numbering[slot(kind)];
                    n.asked = false;
                    n.spare = Some(n.end..n.end + BLOCK);
                }
            }
        }
    }

    fn take(&mut self, (kind, block): Answer) {
        let n = &mut self.numbering[slot(kind)];
        n.asked = false;
        // Nothing is recorded any more: only distinct ids matter.
        n.spare = Some(block.unwrap_or(n.end..n.end + BLOCK));
    }
}

/// The writer's side: reserves blocks when asked, remembers the run of blocks it
/// reserved last (blocks that followed each other), gives back the run's unused end.
#[derive(Debug)]
pub(crate) struct Blocks {
    runs: [Range<i64>; 3],
    answers: Sender<Answer>,
}

impl Blocks {
    pub fn new(first: [Range<i64>; 3], answers: Sender<Answer>) -> Blocks {
        Blocks {
            runs: first,
            answers,
        }
    }

    /// Reserve a block of `count` ids of `kind` in the open batch and answer with it.
    pub fn reserve(
        &mut self,
        store: &mut Store,
        kind: IdKind,
        count: i64,
    ) -> Result<(), StoreError> {
        let block = store.reserve_ids(kind, count)?;
        let run = &mut self.runs[slot(kind)];
        if run.end == block.start {
            run.end = block.end;
        } else {
            *run = block.clone();
        }
        let _ = self.answers.send((kind, Some(block)));
        Ok(())
    }

    /// After a failure: answer without reserving.
    pub fn refuse(&self, kind: IdKind) {
        let _ = self.answers.send((kind, None));
    }

    /// Give back what was not used, from `used` on, of each kind.
    pub fn release(&self, store: &mut Store, used: &[(IdKind, i64)]) -> Result<(), StoreError> {
        for &(kind, first_unused) in used {
            // Later blocks hold larger ids: a run that starts past the first unused id
            // is unused (a block asked for and not yet needed).
            let run = &self.runs[slot(kind)];
            if first_unused < run.end {
                store.release_ids(kind, first_unused.max(run.start)..run.end)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A recorder as far as ids go: its event loop's [`Ids`] and a writer thread that
    /// answers from its own connection to the record.
    struct Recorder {
        ids: Ids,
        writer: std::thread::JoinHandle<()>,
        to_writer: Sender<Write>,
    }

    fn recorder(path: &std::path::Path) -> Recorder {
        let mut store = Store::open_write(path).unwrap();
        let (_, first) = reserve_first(&mut store).unwrap();
        let (to_writer, rx) = mpsc::channel::<Write>();
        let (answers, answers_rx) = mpsc::channel();
        let mut blocks = Blocks::new(first.clone(), answers);
        let writer = std::thread::spawn(move || {
            for write in rx {
                store.begin().unwrap();
                match write {
                    Write::ReserveIds(kind, count) => {
                        blocks.reserve(&mut store, kind, count).unwrap()
                    }
                    Write::IdsUsed(used) => blocks.release(&mut store, &used).unwrap(),
                    other => panic!("unexpected {other:?}"),
                }
                store.commit().unwrap();
            }
        });
        Recorder {
            ids: Ids::new(first, to_writer.clone(), answers_rx),
            writer,
            to_writer,
        }
    }

    impl Recorder {
        fn end(self) {
            let _ = self.to_writer.send(Write::IdsUsed(self.ids.used()));
            drop(self.to_writer);
            drop(self.ids);
            self.writer.join().unwrap();
        }
    }

    /// Runs of consecutive ids.
    fn runs(ids: &[i64]) -> usize {
        1 + ids.windows(2).filter(|w| w[1] != w[0] + 1).count()
    }

    #[test]
    fn two_recorders_of_one_record_never_share_an_id_and_number_in_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let (mut a, mut b) = (recorder(&path), recorder(&path));
        let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
        for _ in 0..3 * BLOCK {
            from_a.push(a.ids.next(IdKind::Command));
            from_b.push(b.ids.next(IdKind::Command));
        }
        let mut all: Vec<i64> = from_a.iter().chain(&from_b).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len() as i64, 6 * BLOCK, "an id given twice");
        // Whole blocks, one after another within each: three runs at most.
        assert!(runs(&from_a) <= 3 && runs(&from_b) <= 3);
        a.end();
        b.end();
        // The next recorder continues after the last id used (past at most the block
        // one of them reserved before the other's last); alone, what it did not use is
        // given back, and the one after it continues without a gap.
        let last = *all.last().unwrap();
        let mut c = recorder(&path);
        let first = c.ids.next(IdKind::Command);
        assert!(
            first > last && first <= last + 1 + BLOCK,
            "{first} after {last}"
        );
        c.ids.next(IdKind::Make);
        c.end();
        let mut d = recorder(&path);
        assert_eq!(d.ids.next(IdKind::Command), first + 1);
        d.end();
    }

    #[test]
    fn with_the_writer_gone_ids_stay_distinct() {
        let (to_writer, rx) = mpsc::channel();
        let (answers, answers_rx) = mpsc::channel();
        let mut ids = Ids::new([1..3, 1..3, 1..3], to_writer, answers_rx);
        drop(rx);
        drop(answers);
        let got: Vec<i64> = (0..10).map(|_| ids.next(IdKind::Process)).collect();
        assert_eq!(got, (1..11).collect::<Vec<_>>());
    }
}
