//! The record's make processes, as `--recursive` needs them, through the store's read API.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use anyhow::Result;

use crate::config::Config;

/// One recorded make process.
#[derive(Debug, Clone)]
pub struct RecordedMake {
    pub id: i64,
    pub level: i64,
    pub directory: PathBuf,
    /// argv including argv[0].
    pub argv: Vec<OsString>,
    pub makedb_path: Option<PathBuf>,
    /// The environment of the recipe command that started it (none for the top make).
    pub env: Option<Vec<(OsString, OsString)>>,
}

fn path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes))
}

/// The make processes of the last build (or `build`) in the record.
pub fn makes(config: &Config, build: Option<i64>) -> Result<(i64, Vec<RecordedMake>)> {
    if !config.db.exists() {
        anyhow::bail!(
            "no record at {}: `--recursive` lists the sub-makes of a recorded build; run `makescope make` first",
            config.db.display()
        );
    }
    let (store, build) = config.open_build_snapshot(build)?;
    let build = build.id;
    let all = store.makes(build)?;
    // make re-executes itself after remaking its makefiles: the later image (same pid,
    // directory and arguments) has the complete database, the earlier one none.
    let restarted = |i: usize| {
        all[i + 1..].iter().any(|later| {
            later.pid == all[i].pid
                && later.directory == all[i].directory
                && later.argv == all[i].argv
        })
    };
    let mut makes = Vec::new();
    for (i, make) in all.iter().cloned().enumerate() {
        if restarted(i) {
            continue;
        }
        let env = match make.parent_command_id {
            Some(id) => store.command(id)?.map(|c| c.env),
            None => None,
        };
        makes.push(RecordedMake {
            id: make.id,
            level: make.level,
            directory: path(make.directory),
            argv: make.argv.into_iter().map(OsString::from_vec).collect(),
            makedb_path: make.makedb_path.filter(|p| !p.is_empty()).map(path),
            env: env.map(|entries| {
                entries
                    .into_iter()
                    .filter_map(|kv| {
                        let eq = kv.iter().position(|&b| b == b'=')?;
                        Some((
                            OsString::from_vec(kv[..eq].to_vec()),
                            OsString::from_vec(kv[eq + 1..].to_vec()),
                        ))
                    })
                    .collect()
            }),
        });
    }
    Ok((build, makes))
}
