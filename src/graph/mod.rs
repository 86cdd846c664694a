//! The command DAG in petgraph, loaded from the record's `edge` table.
//!
//! Nodes are command ids; an edge runs from a command that wrote a path to a command
//! that later read, executed, stat'ed, listed or probed it. Queries walk this one graph
//! (what a change reaches, what a command stands on, the critical path), so every
//! makescope command and the Python package agree on it. It never writes the record.

use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::graphmap::DiGraphMap;
use petgraph::Direction;

use crate::store::{Store, StoreError};

/// The commands of one build and the file edges between them.
#[derive(Debug, Clone, Default)]
pub struct CommandGraph {
    graph: DiGraphMap<i64, ()>,
}

impl CommandGraph {
    /// Load a build's graph.
    pub fn load(store: &Store, build_id: i64) -> Result<CommandGraph, StoreError> {
        Ok(CommandGraph::from_edges(store.edges(build_id)?))
    }

    /// A graph from (from, to) pairs.
    pub fn from_edges(edges: impl IntoIterator<Item = (i64, i64)>) -> CommandGraph {
        let mut graph = DiGraphMap::new();
        for (from, to) in edges {
            graph.add_edge(from, to, ());
        }
        CommandGraph { graph }
    }

    /// How many commands have an edge.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// How many edges there are.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The commands that read what `id` wrote.
    pub fn dependents(&self, id: i64) -> Vec<i64> {
        self.sorted(self.graph.neighbors_directed(id, Direction::Outgoing))
    }

    /// The commands that wrote what `id` read.
    pub fn dependencies(&self, id: i64) -> Vec<i64> {
        self.sorted(self.graph.neighbors_directed(id, Direction::Incoming))
    }

    /// Every command a change to the outputs of `ids` reaches, transitively (not `ids`).
    pub fn downstream(&self, ids: &[i64]) -> Vec<i64> {
        self.reach(ids, Direction::Outgoing)
    }

    /// Every command `ids` stand on, transitively (not `ids`).
    pub fn upstream(&self, ids: &[i64]) -> Vec<i64> {
        self.reach(ids, Direction::Incoming)
    }

    fn reach(&self, ids: &[i64], direction: Direction) -> Vec<i64> {
        let start: HashSet<i64> = ids.iter().copied().collect();
        let mut seen = HashSet::new();
        let mut queue: VecDeque<i64> = ids
            .iter()
            .copied()
            .filter(|id| self.graph.contains_node(*id))
            .collect();
        while let Some(node) = queue.pop_front() {
            for next in self.graph.neighbors_directed(node, direction) {
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        self.sorted(seen.into_iter().filter(|id| !start.contains(id)))
    }

    /// The longest chain of commands by duration, each waiting on the previous one's
    /// output: what bounds the build however many jobs run. Edges that close a cycle
    /// (a command reading what a later one rewrote) are ignored.
    pub fn critical_path(&self, durations: &HashMap<i64, i64>) -> (i64, Vec<i64>) {
        let order = match petgraph::algo::toposort(&self.graph, None) {
            Ok(order) => order,
            Err(_) => {
                let mut nodes: Vec<i64> = self.graph.nodes().collect();
                nodes.sort_unstable();
                nodes
            }
        };
        let position: HashMap<i64, usize> =
            order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let mut best: HashMap<i64, (i64, Option<i64>)> = HashMap::new();
        for &node in &order {
            let own = durations.get(&node).copied().unwrap_or(0);
            let from = self
                .graph
                .neighbors_directed(node, Direction::Incoming)
                .filter(|p| position[p] < position[&node])
                .filter_map(|p| best.get(&p).map(|&(total, _)| (total, p)))
                .max();
            best.insert(
                node,
                (own + from.map_or(0, |(t, _)| t), from.map(|(_, p)| p)),
            );
        }
        let Some((&end, &(total, _))) = best.iter().max_by_key(|(_, &(total, _))| total) else {
            return (0, Vec::new());
        };
        let mut path = vec![end];
        while let Some(&(_, Some(previous))) = best.get(path.last().unwrap_or(&end)) {
            path.push(previous);
        }
        path.reverse();
        (total, path)
    }

    fn sorted(&self, ids: impl Iterator<Item = i64>) -> Vec<i64> {
        let mut ids: Vec<i64> = ids.collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> CommandGraph {
        // 1 → 2 → 4, 1 → 3 → 4, 5 alone upstream of 3
        CommandGraph::from_edges([(1, 2), (2, 4), (1, 3), (3, 4), (5, 3)])
    }

    #[test]
    fn reach() {
        let g = chain();
        assert_eq!(g.downstream(&[1]), vec![2, 3, 4]);
        assert_eq!(g.upstream(&[4]), vec![1, 2, 3, 5]);
        assert_eq!(g.dependents(1), vec![2, 3]);
        assert_eq!(g.dependencies(3), vec![1, 5]);
        assert!(g.downstream(&[99]).is_empty());
    }

    #[test]
    fn critical_path_follows_the_slowest_chain() {
        let g = chain();
        let durations = HashMap::from([(1, 10), (2, 1), (3, 50), (4, 5), (5, 100)]);
        assert_eq!(g.critical_path(&durations), (155, vec![5, 3, 4]));
    }
}
