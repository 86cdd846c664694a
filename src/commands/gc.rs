//! `makescope gc`: prune the record and say what went and what it freed.

use std::io::Write;

use anyhow::Result;

use crate::config::Config;
use crate::gc::{human_bytes, GcOptions};

pub fn run(config: &Config, options: &GcOptions) -> Result<u8> {
    let report = crate::gc::run(config, options)?;
    let mut out = std::io::stdout().lock();
    let list = |ids: &[i64]| {
        ids.iter()
            .rev()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if report.removed_builds.is_empty() {
        writeln!(
            out,
            "nothing to remove: {} build{} kept ({}), {}",
            report.kept_builds.len(),
            if report.kept_builds.len() == 1 {
                ""
            } else {
                "s"
            },
            list(&report.kept_builds),
            human_bytes(report.bytes_after)
        )?;
        if report.removed_dumps > 0 {
            writeln!(
                out,
                "removed {} unused make database dumps",
                report.removed_dumps
            )?;
        }
        return Ok(0);
    }
    if options.dry_run {
        writeln!(
            out,
            "would remove build{} {} and keep {} ({} now)",
            if report.removed_builds.len() == 1 {
                ""
            } else {
                "s"
            },
            list(&report.removed_builds),
            list(&report.kept_builds),
            human_bytes(report.bytes_before)
        )?;
        return Ok(0);
    }
    writeln!(
        out,
        "removed build{} {} ({} make database dumps); kept {}; {} → {}",
        if report.removed_builds.len() == 1 {
            ""
        } else {
            "s"
        },
        list(&report.removed_builds),
        report.removed_dumps,
        list(&report.kept_builds),
        human_bytes(report.bytes_before),
        human_bytes(report.bytes_after)
    )?;
    Ok(0)
}
