//! `makescope export dot`: the build's graph in Graphviz. By default the command graph
//! (a node per command that did work, an edge from a command that wrote a file to each
//! command that read it); with `files`, the file graph (the written files between them as nodes of
//! their own). `focus` keeps the commands a reference names and those within `depth`
//! edges of them, up and down, which is what makes glibc's 14,000 commands readable.
//! The critical path's commands are drawn red.
//!
//! What it must never do: print (it returns the text).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write;

use anyhow::Result;

use super::{load, name, seconds, Recorded};
use crate::config::Config;
use crate::graph::CommandGraph;
use crate::paths;
use crate::util::lossy;

/// What `export dot` draws.
#[derive(Debug, Clone, Default)]
pub struct DotOptions {
    /// The build (default: the last one).
    pub build: Option<i64>,
    /// A command id, a target, or a path a command wrote: draw only around it.
    pub focus: Option<Vec<u8>>,
    /// How many edges from the focus, each way (default 2).
    pub depth: Option<usize>,
    /// Draw the written files as nodes of their own.
    pub files: bool,
}

/// The default `depth` around a focus.
pub const DEFAULT_DEPTH: usize = 2;

/// The chosen build's graph as Graphviz text.
pub fn dot(config: &Config, options: &DotOptions) -> Result<String> {
    let recorded = load(config, options.build)?;
    let analysis = recorded.analyse()?;
    let edges = recorded.store.edges_with_paths(recorded.build.id)?;
    let graph = CommandGraph::from_edges(edges.iter().map(|&(f, t, _)| (f, t)));
    let keep: Option<HashSet<i64>> = match &options.focus {
        None => None,
        Some(reference) => {
            let focus = crate::query::resolve(&recorded.store, &recorded.build, reference)?;
            Some(around(
                &graph,
                &focus,
                options.depth.unwrap_or(DEFAULT_DEPTH),
            ))
        }
    };
    let critical: HashSet<i64> = analysis.critical.commands.iter().copied().collect();
    Ok(render(
        &recorded,
        &edges,
        keep.as_ref(),
        &critical,
        options.files,
    )?)
}

/// `focus` and every command within `depth` edges of it, each way.
fn around(graph: &CommandGraph, focus: &[i64], depth: usize) -> HashSet<i64> {
    let mut keep: HashSet<i64> = focus.iter().copied().collect();
    for up in [true, false] {
        let mut frontier: Vec<i64> = focus.to_vec();
        for _ in 0..depth {
            let mut next = Vec::new();
            for id in frontier {
                let neighbours = if up {
                    graph.dependencies(id)
                } else {
                    graph.dependents(id)
                };
                next.extend(neighbours.into_iter().filter(|n| keep.insert(*n)));
            }
            frontier = next;
        }
    }
    keep
}

/// A Graphviz string literal.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn render(
    recorded: &Recorded,
    edges: &[(i64, i64, i64)],
    keep: Option<&HashSet<i64>>,
    critical: &HashSet<i64>,
    files: bool,
) -> std::io::Result<String> {
    let kept = |id: i64| keep.map_or(true, |k| k.contains(&id));
    let edges: Vec<&(i64, i64, i64)> = edges
        .iter()
        .filter(|(f, t, _)| kept(*f) && kept(*t))
        .collect();
    let mut used: BTreeSet<i64> = edges.iter().flat_map(|(f, t, _)| [*f, *t]).collect();
    match keep {
        Some(keep) => used.extend(keep.iter().copied()),
        None => used.extend(recorded.work().map(|c| c.id)),
    }
    let by_id: HashMap<i64, &crate::store::CommandHead> =
        recorded.commands.iter().map(|c| (c.id, c)).collect();
    let mut out = String::new();
    let title = format!("makescope build {}", recorded.build.id);
    let _ = writeln!(out, "digraph {} {{", quoted(&title));
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(
        out,
        "  node [shape=box, fontname=\"sans-serif\", fontsize=10];"
    );
    let _ = writeln!(out, "  edge [color=\"#888888\"];");
    for id in &used {
        let Some(c) = by_id.get(id) else { continue };
        let label = format!("{}\n{} · #{id}", name(c), seconds(recorded.duration(c)));
        let mut style = String::new();
        if critical.contains(id) {
            style.push_str(", color=\"#c0392b\", penwidth=2");
        }
        if c.state != "ok" && c.state != "running" {
            style.push_str(", style=filled, fillcolor=\"#f5b7b1\"");
        }
        let _ = writeln!(out, "  c{id} [label={}{style}];", quoted(&label));
    }
    if files {
        let ids: BTreeSet<i64> = edges.iter().map(|(_, _, p)| *p).collect();
        let ids: Vec<i64> = ids.into_iter().collect();
        let names = recorded
            .store
            .paths_in_order(&ids)
            .map_err(std::io::Error::other)?;
        let mut pairs: BTreeMap<(i64, i64), ()> = BTreeMap::new();
        for (id, path) in ids.iter().zip(&names) {
            let shown =
                paths::relative(path, &recorded.build.directory, 0).unwrap_or_else(|| path.clone());
            let _ = writeln!(
                out,
                "  p{id} [label={}, shape=note, color=\"#2e86c1\"];",
                quoted(&lossy(&shown))
            );
        }
        for (f, t, p) in &edges {
            if pairs.insert((*f, -*p), ()).is_none() {
                let _ = writeln!(out, "  c{f} -> p{p};");
            }
            if pairs.insert((-*p, *t), ()).is_none() {
                let _ = writeln!(out, "  p{p} -> c{t};");
            }
        }
    } else {
        let pairs: BTreeSet<(i64, i64)> = edges.iter().map(|(f, t, _)| (*f, *t)).collect();
        for (f, t) in pairs {
            let red = critical.contains(&f) && critical.contains(&t);
            let style = if red {
                " [color=\"#c0392b\", penwidth=2]"
            } else {
                ""
            };
            let _ = writeln!(out, "  c{f} -> c{t}{style};");
        }
    }
    out.push_str("}\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_escapes_what_graphviz_reads_specially() {
        assert_eq!(quoted("CC \"a\\b\"\nx"), "\"CC \\\"a\\\\b\\\"\\nx\"");
    }

    #[test]
    fn around_goes_depth_edges_each_way() {
        let g = CommandGraph::from_edges([(1, 2), (2, 3), (3, 4), (4, 5), (9, 3)]);
        let mut kept: Vec<i64> = around(&g, &[3], 1).into_iter().collect();
        kept.sort();
        assert_eq!(kept, vec![2, 3, 4, 9]);
        assert_eq!(around(&g, &[3], 2).len(), 6);
    }
}
