//! `makescope coverage`: which installed packages and path prefixes a build used, with
//! the files it opened of each, and which it could have used and never touched; or JSON.

use std::io::Write;

use anyhow::Result;

use super::{write_json, Format, Table};
use crate::config::Config;
use crate::views::coverage::{self, CoverageOptions, Prefix};

/// How many opened files are listed under each package or prefix in text.
const FILES_SHOWN: usize = 8;
/// How many untouched packages text lists by name.
const UNTOUCHED_SHOWN: usize = 40;

pub fn run(config: &Config, options: &CoverageOptions, format: Format) -> Result<u8> {
    let coverage = coverage::coverage(config, options)?;
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        write_json(&mut out, &coverage.to_json())?;
        return Ok(0);
    }
    match &coverage.database {
        Some(dir) => writeln!(
            out,
            "build {}: {} paths opened; {} of {} installed packages used, {} searched or named and untouched (dpkg lists in {})",
            coverage.build_id,
            coverage.opened,
            coverage.used.len(),
            coverage.packages_installed,
            coverage.untouched.len(),
            dir.display()
        )?,
        None => writeln!(
            out,
            "build {}: {} paths opened; no package database here (no dpkg file lists): paths are grouped by prefix only",
            coverage.build_id, coverage.opened
        )?,
    }
    if !coverage.used.is_empty() {
        writeln!(out, "\nused packages (files opened / files it has)")?;
        for used in &coverage.used {
            writeln!(
                out,
                "  {}  {}/{}",
                used.package,
                used.opened.len(),
                used.files
            )?;
            files(&mut out, &used.opened)?;
        }
    }
    if !coverage.untouched.is_empty() {
        writeln!(out, "\nuntouched packages (could have been used: named, or with files where the build searched)")?;
        let rows: Vec<Vec<String>> = coverage
            .untouched
            .iter()
            .take(UNTOUCHED_SHOWN)
            .map(|u| vec![format!("  {}", u.name), u.why.clone()])
            .collect();
        Table::new().write(&mut out, &rows)?;
        if coverage.untouched.len() > UNTOUCHED_SHOWN {
            writeln!(
                out,
                "  … and {} more (--json lists all)",
                coverage.untouched.len() - UNTOUCHED_SHOWN
            )?;
        }
    }
    if !coverage.prefixes.is_empty() {
        writeln!(out, "\nprefixes")?;
        prefixes(&mut out, &coverage.prefixes)?;
    }
    if !coverage.unowned.is_empty() {
        writeln!(out, "\nopened outside any package, by prefix")?;
        prefixes(&mut out, &coverage.unowned)?;
    }
    Ok(0)
}

fn files(out: &mut impl Write, files: &[String]) -> Result<()> {
    for file in files.iter().take(FILES_SHOWN) {
        writeln!(out, "      {file}")?;
    }
    if files.len() > FILES_SHOWN {
        writeln!(out, "      … and {} more", files.len() - FILES_SHOWN)?;
    }
    Ok(())
}

fn prefixes(out: &mut impl Write, list: &[Prefix]) -> Result<()> {
    for p in list {
        if p.opened.is_empty() {
            writeln!(out, "  {}  untouched", p.prefix)?;
        } else {
            writeln!(out, "  {}  {} opened", p.prefix, p.opened.len())?;
            files(out, &p.opened)?;
        }
    }
    Ok(())
}
