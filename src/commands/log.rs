//! `makescope log`: a build's commands, one line each (id, how it ended, how long,
//! label, where its recipe is), or JSON; a count of them on stderr.

use anyhow::Result;

use std::io::Write;

use super::{Format, Table};
use crate::config::Config;
use crate::paths;
use crate::query::{self, LogOptions};
use crate::store::CommandRow;
use crate::util::lossy;

pub fn run(config: &Config, options: &LogOptions, format: Format) -> Result<u8> {
    let log = query::log(config, options)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if format == Format::Json {
        log.write_json(&mut out)?;
        out.flush()?;
        return Ok(0);
    }
    let top = &log.build.directory;
    let (mut rows, mut not_ok) = (Vec::new(), 0);
    log.each(|c| {
        if c.state != "ok" && c.state != "running" {
            not_ok += 1;
        }
        let label = c
            .label
            .clone()
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| lossy(&c.target).into_owned());
        let place = match (&c.recipe_file, c.recipe_line) {
            (Some(file), Some(line)) if !file.is_empty() => format!("{}:{line}", lossy(file)),
            _ => String::new(),
        };
        rows.push(vec![
            c.id.to_string(),
            state_mark(&c),
            c.seconds().map(|s| format!("{s:.2}s")).unwrap_or_default(),
            label,
            format!("{}{}", directory_prefix(top, &c.directory), place),
        ]);
        Ok(())
    })?;
    Table::new().right(0).right(2).write(&mut out, &rows)?;
    out.flush()?;
    let state = if log.store.cut_off(&log.build) {
        "cut off: its recorder was killed before the build ended"
    } else {
        &log.build.state
    };
    eprintln!(
        "{} commands in build {} ({state}), {} not ok",
        rows.len(),
        log.build.id,
        not_ok
    );
    Ok(0)
}

/// How a command ended, shortly: `ok`, `exit 2`, `signal 9`, or its state.
fn state_mark(c: &CommandRow) -> String {
    match (c.state.as_str(), c.exit_code, c.signal) {
        ("ok", ..) => "ok".into(),
        (_, Some(code), _) => format!("exit {code}"),
        (_, _, Some(signal)) => format!("signal {signal}"),
        (state, ..) => state.into(),
    }
}

/// Where a command ran, before its recipe's place: nothing in the build's top
/// directory, `sub/: ` below it, the whole directory elsewhere.
fn directory_prefix(top: &[u8], directory: &[u8]) -> String {
    match paths::relative(directory, top, 0) {
        Some(below) if below == b"." => String::new(),
        Some(below) => format!("{}/: ", lossy(&below)),
        None => format!("{}: ", lossy(directory)),
    }
}

#[cfg(test)]
mod tests {
    use super::directory_prefix;

    #[test]
    fn directories_below_the_top_are_relative() {
        assert_eq!(directory_prefix(b"/w", b"/w"), "");
        assert_eq!(directory_prefix(b"/w", b"/w/sub/dir"), "sub/dir/: ");
        assert_eq!(directory_prefix(b"/w", b"/other"), "/other: ");
        assert_eq!(directory_prefix(b"/w", b"/wx"), "/wx: ");
        assert_eq!(directory_prefix(b"/", b"/a"), "a/: ");
    }
}
