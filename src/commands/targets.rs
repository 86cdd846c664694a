//! `makescope targets`: the targets make knows, one line each (name, where it is
//! written, phony/default marks, prerequisites, `# doc`), grouped by directory with
//! `--recursive`, or JSON; warnings and, on a terminal, a count on stderr.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{write_json, Format, Table};
use crate::config::Config;
use crate::makedb::list::{Place, Section, Target};
use crate::makedb::source::relative;
use crate::makedb::{self, Listing, TargetsOptions};

/// How `targets` prints.
#[derive(Debug, Clone)]
pub struct View {
    pub format: Format,
    /// Show each target's prerequisites.
    pub prereqs: bool,
    /// `NAME<TAB>DOC` lines, phony targets first, for shell completion.
    pub complete: bool,
}

/// Columns never wider than this: one long name must not push every line out.
const WIDEST_COLUMN: usize = 40;

pub fn run(config: &Config, options: &TargetsOptions, view: &View) -> Result<u8> {
    // Everything besides the options that decides the bytes printed below.
    let key = format!(
        "{}\0{}\0{}",
        view.prereqs,
        view.format == Format::Json,
        view.complete
    );
    let listed = match makedb::targets(config, options, &key, &mut warn)? {
        Listing::Replayed(bytes) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
            return Ok(0);
        }
        Listing::Listed(listed) => listed,
    };
    let mut bytes = Vec::new();
    render(&listed.sections, options, view, &listed.base, &mut bytes)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&bytes)?;
    stdout.flush()?;
    summary(&listed.sections, options, view);
    listed.remember(bytes);
    Ok(0)
}

fn warn(message: &str) {
    eprintln!("makescope: warning: {message}");
}

/// On a terminal, how much was listed.
fn summary(sections: &[Section], options: &TargetsOptions, view: &View) {
    if view.format == Format::Json || !std::io::stderr().is_terminal() {
        return;
    }
    let targets: usize = sections.iter().map(|s| s.targets.len()).sum();
    let phony: usize = sections
        .iter()
        .map(|s| s.targets.iter().filter(|t| t.phony).count())
        .sum();
    let patterns: usize = sections.iter().map(|s| s.pattern_rules.len()).sum();
    let makefiles: std::collections::HashSet<&PathBuf> =
        sections.iter().flat_map(|s| &s.makefiles).collect();
    eprintln!(
        "{targets} targets ({phony} phony), {patterns} pattern rules, from {} makefiles{}",
        makefiles.len(),
        if options.recursive {
            format!(" in {} directories", sections.len())
        } else {
            String::new()
        }
    );
}

/// The listing as text or JSON.
fn render(
    sections: &[Section],
    options: &TargetsOptions,
    view: &View,
    base: &Path,
    out: &mut impl Write,
) -> Result<()> {
    if view.complete {
        return complete(sections, out);
    }
    if view.format == Format::Json {
        return write_json(
            out,
            &serde_json::json!({ "version": 1, "sections": sections }),
        );
    }
    let table = Table::new().cap(WIDEST_COLUMN).skip_empty_tail();
    for (n, section) in sections.iter().enumerate() {
        if options.recursive {
            if n > 0 {
                writeln!(out)?;
            }
            let level = section
                .level
                .map(|l| format!("make level {l}, "))
                .unwrap_or_default();
            let makes = section.argv.len().max(1);
            writeln!(
                out,
                "# {} ({level}{makes} make{}, from {})",
                relative(&section.directory, base).display(),
                if makes == 1 { "" } else { "s" },
                section.source
            )?;
        }
        let rows: Vec<Vec<String>> = section
            .targets
            .iter()
            .map(|t| {
                let mut row = vec![
                    t.name.clone(),
                    show_place(t.location.as_ref(), base),
                    marks(t),
                ];
                if view.prereqs {
                    row.push(prereq_text(&t.prerequisites, &t.order_only));
                }
                row.push(t.doc.as_ref().map(|d| format!("# {d}")).unwrap_or_default());
                row
            })
            .collect();
        table.write(out, &rows)?;
        if !section.pattern_rules.is_empty() {
            writeln!(out, "\n# pattern rules")?;
            let rows: Vec<Vec<String>> = section
                .pattern_rules
                .iter()
                .map(|p| {
                    let colon = if p.terminal { "::" } else { ":" };
                    vec![
                        format!(
                            "{}{colon} {}",
                            p.targets.join(" "),
                            prereq_text(&p.prerequisites, &p.order_only)
                        )
                        .trim_end()
                        .to_string(),
                        show_place(p.recipe.as_ref(), base),
                    ]
                })
                .collect();
            table.write(out, &rows)?;
        }
    }
    Ok(())
}

/// One `NAME<TAB>DOC` line per target, phony ones (what people type) first, each name
/// once: what a shell completes `make`'s goals from.
fn complete(sections: &[Section], out: &mut impl Write) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for phony in [true, false] {
        for t in sections.iter().flat_map(|s| &s.targets) {
            if t.phony == phony && seen.insert(&t.name) {
                let doc = t
                    .doc
                    .as_deref()
                    .unwrap_or_default()
                    .replace(['\t', '\n'], " ");
                writeln!(out, "{}\t{doc}", t.name)?;
            }
        }
    }
    Ok(())
}

/// `phony,default,double-colon`, as they apply.
fn marks(t: &Target) -> String {
    let mut m = Vec::new();
    if t.phony {
        m.push("phony");
    }
    if t.default_goal {
        m.push("default");
    }
    if t.double_colon {
        m.push("double-colon");
    }
    m.join(",")
}

/// `file:line` relative to `base`, or `-` when unknown.
fn show_place(p: Option<&Place>, base: &Path) -> String {
    match p {
        Some(p) => format!("{}:{}", relative(&p.file, base).display(), p.line),
        None => "-".into(),
    }
}

/// Prerequisites as make writes them: normal ones, then `|` and the order-only ones.
fn prereq_text(pre: &[String], order_only: &[String]) -> String {
    let mut s = pre.join(" ");
    if !order_only.is_empty() {
        s.push_str(if s.is_empty() { "| " } else { " | " });
        s.push_str(&order_only.join(" "));
    }
    s
}
