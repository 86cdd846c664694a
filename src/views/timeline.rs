//! The time analysis every view shares: which job slot each command ran in (tracks on
//! which no two commands overlap), how many ran at once and for how long fewer than
//! `-j` did while a command whose inputs were ready waited (make's serialisation), and
//! the critical path: the longest chain of commands, weighted by how long each ran,
//! through the record's DAG (writer → reader edges, and each recipe line after the one
//! before it).
//!
//! What it must never do: read the record itself (it is given [`Recorded`]).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use anyhow::Result;

use super::Recorded;
use crate::graph::CommandGraph;
use crate::store::CommandHead;

/// Give each interval a track so that no two on one track overlap (an interval may
/// start exactly when the one before it ended), using as few tracks as there were at
/// most at once, the lowest free one first. `intervals` are (start, end); the answer is
/// in the same order.
pub fn tracks(intervals: &[(i64, i64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..intervals.len()).collect();
    order.sort_by_key(|&i| (intervals[i].0, intervals[i].1, i));
    let mut busy: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut free: BTreeSet<usize> = BTreeSet::new();
    let mut next = 0;
    let mut out = vec![0; intervals.len()];
    for i in order {
        let (start, end) = intervals[i];
        while let Some(&Reverse((until, track))) = busy.peek() {
            if until > start {
                break;
            }
            busy.pop();
            free.insert(track);
        }
        let track = match free.pop_first() {
            Some(track) => track,
            None => {
                next += 1;
                next - 1
            }
        };
        out[i] = track;
        busy.push(Reverse((end.max(start), track)));
    }
    out
}

/// The longest chain of commands through the DAG.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CriticalPath {
    /// Its commands, first to last.
    pub commands: Vec<i64>,
    /// The sum of their durations.
    pub length_ns: i64,
}

/// How the build's wall time was used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Occupancy {
    /// From the first command's start to the last one's end.
    pub busy_window_ns: i64,
    /// Make's own time before the first command and after the last one.
    pub outside_commands_ns: i64,
    /// The sum of the commands' durations (those that only run a sub-make excluded).
    pub command_ns: i64,
    /// The most commands that ran at once.
    pub peak: usize,
    /// Time in the window with fewer commands running than `-j` allows.
    pub below_jobs_ns: i64,
    /// Time in the window with nothing running.
    pub idle_ns: i64,
    /// Time with a free slot while a command whose inputs were all written (every
    /// command it depends on had ended) had not started yet: what make's ordering
    /// (`.NOTPARALLEL`, recursion one directory at a time, prerequisite order) cost.
    pub serialised_ns: i64,
}

impl Occupancy {
    /// Average commands running at once over the window.
    pub fn parallelism(&self) -> f64 {
        if self.busy_window_ns > 0 {
            self.command_ns as f64 / self.busy_window_ns as f64
        } else {
            0.0
        }
    }
}

/// The time analysis of one build.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub critical: CriticalPath,
    pub occupancy: Occupancy,
    /// Each work command's job slot, by command id.
    pub slots: HashMap<i64, usize>,
}

impl Recorded {
    /// Analyse the build's time.
    pub fn analyse(&self) -> Result<Analysis> {
        let work: Vec<&CommandHead> = self.work().collect();
        let graph = self.dependency_graph()?;
        let durations: HashMap<i64, i64> = work.iter().map(|c| (c.id, self.duration(c))).collect();
        let critical = critical_path(&graph, &durations);
        let intervals: Vec<(i64, i64)> = work
            .iter()
            .map(|c| (c.started_ns, self.end_of(c)))
            .collect();
        let slots = tracks(&intervals)
            .into_iter()
            .zip(&work)
            .map(|(slot, c)| (c.id, slot))
            .collect();
        let occupancy = self.occupancy(&work, &graph);
        Ok(Analysis {
            critical,
            occupancy,
            slots,
        })
    }

    /// The DAG's edges and, within each recipe, every line after the one before it.
    pub fn dependency_graph(&self) -> Result<CommandGraph> {
        let mut edges = self.store.edges(self.build.id)?;
        let mut previous: HashMap<(Option<i64>, i64), (i64, i64)> = HashMap::new();
        for c in &self.commands {
            let key = (c.make_id, c.job);
            if let Some(&(line, id)) = previous.get(&key) {
                if line < c.line_index {
                    edges.push((id, c.id));
                }
            }
            previous.insert(key, (c.line_index, c.id));
        }
        edges.retain(|(from, to)| from != to);
        Ok(CommandGraph::from_edges(edges))
    }

    fn occupancy(&self, work: &[&CommandHead], graph: &CommandGraph) -> Occupancy {
        let Some(first) = work.iter().map(|c| c.started_ns).min() else {
            return Occupancy {
                outside_commands_ns: self.wall_ns(),
                ..Occupancy::default()
            };
        };
        let last = work.iter().map(|c| self.end_of(c)).max().unwrap_or(first);
        let ends: HashMap<i64, i64> = self
            .commands
            .iter()
            .map(|c| (c.id, self.end_of(c)))
            .collect();
        // (time, running change, waiting change): ends sort before starts at one time.
        let mut events: Vec<(i64, i32, i32)> = Vec::with_capacity(work.len() * 4);
        for c in work {
            events.push((c.started_ns, 1, 0));
            events.push((self.end_of(c), -1, 0));
            let ready = graph
                .dependencies(c.id)
                .iter()
                .filter_map(|d| ends.get(d))
                .copied()
                .max()
                .unwrap_or(first)
                .max(first);
            if ready < c.started_ns {
                events.push((ready, 0, 1));
                events.push((c.started_ns, 0, -1));
            }
        }
        events.sort_by_key(|&(t, running, waiting)| (t, running, waiting));
        let limit = self.jobs.limit().map(|n| n as i64);
        let mut occupancy = Occupancy {
            busy_window_ns: last - first,
            outside_commands_ns: self.wall_ns() - (last - first),
            command_ns: work.iter().map(|c| self.duration(c)).sum(),
            ..Occupancy::default()
        };
        let (mut running, mut waiting, mut at) = (0i64, 0i64, first);
        for (t, dr, dw) in events {
            let span = t - at;
            if span > 0 {
                let below = limit.map_or(true, |n| running < n);
                if limit.is_some_and(|n| running < n) {
                    occupancy.below_jobs_ns += span;
                }
                if running == 0 {
                    occupancy.idle_ns += span;
                }
                if below && waiting > 0 {
                    occupancy.serialised_ns += span;
                }
            }
            at = t;
            running += i64::from(dr);
            waiting += i64::from(dw);
            // A command that took no time ends, in this order, before it starts: the
            // count dips below zero for no time at all.
            occupancy.peak = occupancy.peak.max(running.max(0) as usize);
        }
        occupancy
    }
}

/// The critical path: the graph's longest chain, or the single longest command when no
/// chain is longer.
pub fn critical_path(graph: &CommandGraph, durations: &HashMap<i64, i64>) -> CriticalPath {
    let weights: HashMap<i64, i64> = durations.clone();
    let (length_ns, commands) = graph.critical_path(&weights);
    // Commands outside the work (sub-make runners) weigh nothing: drop them from the
    // chain shown.
    let commands: Vec<i64> = commands
        .into_iter()
        .filter(|id| durations.contains_key(id))
        .collect();
    let longest = durations
        .iter()
        .max_by_key(|&(id, d)| (*d, Reverse(*id)))
        .map(|(&id, &d)| (id, d));
    match longest {
        Some((id, d)) if d > length_ns || commands.is_empty() => CriticalPath {
            commands: vec![id],
            length_ns: d,
        },
        _ => CriticalPath {
            commands,
            length_ns,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_never_overlap_and_reuse_the_lowest_free_one() {
        let intervals = [(0, 10), (0, 5), (5, 8), (6, 20), (10, 12), (3, 4)];
        let t = tracks(&intervals);
        assert_eq!(t, vec![1, 0, 0, 2, 0, 2]);
        for i in 0..intervals.len() {
            for j in 0..intervals.len() {
                if i != j && t[i] == t[j] {
                    let (a, b) = (intervals[i], intervals[j]);
                    assert!(a.1 <= b.0 || b.1 <= a.0, "{a:?} and {b:?} overlap");
                }
            }
        }
    }

    #[test]
    fn a_lone_long_command_beats_a_short_chain() {
        let graph = CommandGraph::from_edges([(1, 2)]);
        let durations = HashMap::from([(1, 5), (2, 5), (3, 30)]);
        assert_eq!(
            critical_path(&graph, &durations),
            CriticalPath {
                commands: vec![3],
                length_ns: 30
            }
        );
        let durations = HashMap::from([(1, 50), (2, 5), (3, 30)]);
        assert_eq!(critical_path(&graph, &durations).commands, vec![1, 2]);
    }
}
