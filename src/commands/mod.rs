//! The subcommands as the user sees them. Each file here takes its subcommand's options,
//! asks the library module that does the work (its engine: `record`, `query`, `makedb`,
//! `replay`, `rebuild`, `testcases`, `lint`, `export`, `views`)
//! and prints the answer: data to stdout, aligned for people or as JSON; diagnostics to
//! stderr. It returns the process's exit status.
//!
//! A new subcommand is three pieces: its clap arguments in `cli.rs`, which turns them
//! into the engine's plain options struct; a [`Subcommand`] variant; and one file here
//! that prints. What they share is here: [`Format`] and [`Table`]; opening the record
//! and choosing the build is [`Config::open_build`], which the engines call.
//!
//! What it must never do: parse the command line (`cli.rs` does that, once, and nothing
//! here sees its types) or answer a question itself (that is the engine's job, so that
//! everything a command prints can also be had as data).

pub mod coverage;
pub mod export;
pub mod gc;
pub mod lint;
pub mod log;
pub mod make;
pub mod plugin;
pub mod rebuild;
pub mod replay;
pub mod report;
pub mod show;
pub mod stats;
pub mod targets;
pub mod test;
pub mod tests;

use std::io::Write;

use anyhow::Result;

use crate::config::Config;
use crate::gc::GcOptions;
use crate::makedb::TargetsOptions;
use crate::plugin::PluginOptions;
use crate::query::{LogOptions, ShowOptions};
use crate::rebuild::RebuildOptions;
use crate::record::MakeOptions;
use crate::replay::ReplayOptions;
use crate::testcases::TestsOptions;
use crate::views::coverage::CoverageOptions;
use crate::views::BuildChoice;

/// A subcommand with everything it needs, resolved from the command line.
#[derive(Debug)]
pub enum Subcommand {
    /// `makescope make`: run make and record the build.
    Make(MakeOptions),
    /// `makescope log`: the recorded commands of a build.
    Log(LogOptions, Format),
    /// `makescope show`: one recorded command in full.
    Show(ShowOptions, show::View),
    /// `makescope targets`: the targets make knows.
    Targets(TargetsOptions, targets::View),
    /// `makescope replay`: a recorded recipe run again without make.
    Replay(ReplayOptions),
    /// `makescope rebuild`: what is out of date, re-run without make.
    Rebuild(RebuildOptions),
    /// `makescope tests`: the test cases of a build.
    Tests(TestsOptions, tests::View),
    /// `makescope tests --list-only`: the tests make's view of a goal names.
    TestsListOnly(crate::testcases::listing::ListOnlyOptions, Format),
    /// `makescope test`: recorded tests run again without make.
    Test(crate::testcases::rerun::RerunOptions),
    /// `makescope plugin`: the make plugin at a path that stays.
    Plugin(PluginOptions),
    /// `makescope gc`: prune old builds.
    Gc(GcOptions),
    /// `makescope lint`: declared against real dependencies.
    Lint(crate::lint::LintOptions, Format),
    /// `makescope stats`: where a build's time went.
    Stats(BuildChoice, Format),
    /// `makescope export trace|dot|compdb|ninja`: the build for other tools, to a file or stdout.
    Export(export::Export, Option<std::path::PathBuf>),
    /// `makescope report`: one HTML page about a build, written to a file.
    Report(BuildChoice, std::path::PathBuf),
    /// `makescope coverage`: the packages and prefixes a build used.
    Coverage(CoverageOptions, Format),
}

impl Subcommand {
    /// Run the subcommand; the returned code is the process's exit status.
    pub fn execute(self, config: &Config) -> Result<u8> {
        match self {
            Subcommand::Make(options) => make::run(config, &options),
            Subcommand::Log(options, format) => log::run(config, &options, format),
            Subcommand::Show(options, view) => show::run(config, &options, &view),
            Subcommand::Targets(options, view) => targets::run(config, &options, &view),
            Subcommand::Replay(options) => replay::run(config, &options),
            Subcommand::Rebuild(options) => rebuild::run(config, &options),
            Subcommand::Tests(options, view) => tests::run(config, &options, &view),
            Subcommand::TestsListOnly(options, format) => tests::list_only(&options, format),
            Subcommand::Test(options) => test::run(config, &options),
            Subcommand::Plugin(options) => plugin::run(&options),
            Subcommand::Gc(options) => gc::run(config, &options),
            Subcommand::Lint(options, format) => lint::run(config, &options, format),
            Subcommand::Stats(options, format) => stats::run(config, &options, format),
            Subcommand::Export(export, output) => export::run(config, &export, output.as_ref()),
            Subcommand::Report(options, output) => report::run(config, &options, &output),
            Subcommand::Coverage(options, format) => coverage::run(config, &options, format),
        }
    }
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for people.
    Text,
    /// JSON, in the shape the README documents.
    Json,
}

/// Write `value` as pretty JSON and a newline: every subcommand's `--json`.
pub fn write_json(out: &mut impl Write, value: &serde_json::Value) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Which way a column's cells are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Rows of cells lined up in columns, like `just --list`: each column as wide as its
/// widest cell (up to a cap, so that one long name does not push every line out), two
/// spaces between columns, and the last cell of a line never padded on its right.
#[derive(Debug, Clone)]
pub struct Table {
    align: Vec<Align>,
    cap: usize,
    skip_empty_tail: bool,
}

impl Default for Table {
    fn default() -> Table {
        Table::new()
    }
}

impl Table {
    /// Every column left-aligned, no cap, every cell printed.
    pub fn new() -> Table {
        Table {
            align: Vec::new(),
            cap: usize::MAX,
            skip_empty_tail: false,
        }
    }

    /// Right-align column `column`.
    pub fn right(mut self, column: usize) -> Table {
        if self.align.len() <= column {
            self.align.resize(column + 1, Align::Left);
        }
        self.align[column] = Align::Right;
        self
    }

    /// No column wider than `cap` characters (longer cells still print whole).
    pub fn cap(mut self, cap: usize) -> Table {
        self.cap = cap;
        self
    }

    /// End each line at its last non-empty cell.
    pub fn skip_empty_tail(mut self) -> Table {
        self.skip_empty_tail = true;
        self
    }

    /// Write `rows`, one line each.
    pub fn write(&self, out: &mut impl Write, rows: &[Vec<String>]) -> std::io::Result<()> {
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count().min(self.cap));
            }
        }
        let mut line = String::new();
        for row in rows {
            let last = if self.skip_empty_tail {
                row.iter().rposition(|c| !c.is_empty()).unwrap_or(0)
            } else {
                row.len().saturating_sub(1)
            };
            line.clear();
            for (i, cell) in row.iter().enumerate().take(last + 1) {
                let pad = widths[i].saturating_sub(cell.chars().count());
                let right = self.align.get(i) == Some(&Align::Right);
                if right {
                    line.extend(std::iter::repeat(' ').take(pad));
                }
                line.push_str(cell);
                if i < last {
                    let pad = if right { 0 } else { pad };
                    line.extend(std::iter::repeat(' ').take(pad + 2));
                }
            }
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    fn text(table: &Table, rows: &[&[&str]]) -> String {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        let mut out = Vec::new();
        table.write(&mut out, &rows).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_pads_every_cell_but_the_last() {
        let table = Table::new().right(0);
        assert_eq!(
            text(&table, &[&["1", "ok", "a"], &["10", "exit 1", ""]]),
            " 1  ok      a\n10  exit 1  \n"
        );
    }

    #[test]
    fn table_counts_characters_not_bytes() {
        assert_eq!(
            text(&Table::new(), &[&["é", "x"], &["ab", "y"]]),
            "é   x\nab  y\n"
        );
    }

    #[test]
    fn table_caps_widths_and_skips_empty_tails() {
        let table = Table::new().cap(3).skip_empty_tail();
        assert_eq!(
            text(
                &table,
                &[&["abcdef", "x", ""], &["a", "", "# doc"], &["", "", ""]]
            ),
            "abcdef  x\na       # doc\n\n"
        );
    }
}
