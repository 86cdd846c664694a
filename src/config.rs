//! What every subcommand shares, resolved once from the command line: where the record
//! is. Opening that record for a query, and choosing the build a query is about
//! (`--build ID`, or the last one), happen here once for every subcommand.
//!
//! What it must never do: know how the command line spells things (that is `cli.rs`,
//! whose types nothing in the library sees), or write the record.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::store::{BuildRow, Store};

/// What the subcommands share.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the record lives, absolute: sub-makes run elsewhere and are told where
    /// things are.
    pub db: PathBuf,
}

impl Config {
    /// The record at `db` (relative to the current directory), or
    /// `.makescope/db.sqlite` here.
    pub fn new(db: Option<PathBuf>) -> Config {
        let db = db.unwrap_or_else(|| PathBuf::from(".makescope").join("db.sqlite"));
        let db = std::env::current_dir()
            .map(|cwd| cwd.join(&db))
            .unwrap_or(db);
        Config { db }
    }

    /// The record, opened for reading.
    pub fn open_record(&self) -> Result<Store> {
        Ok(Store::open_read(&self.db)?)
    }

    /// The record, opened for reading, and the build `build` names (the last one when
    /// `None`).
    pub fn open_build(&self, build: Option<i64>) -> Result<(Store, BuildRow)> {
        let store = self.open_record()?;
        let build = choose_build(&store, build)?;
        Ok((store, build))
    }

    /// As [`Config::open_build`], everything read through the store in one snapshot
    /// ([`Store::begin_snapshot`]): for queries that only read (`log`, `show`,
    /// `targets`), which a build being recorded meanwhile must not show half-changed.
    pub fn open_build_snapshot(&self, build: Option<i64>) -> Result<(Store, BuildRow)> {
        let store = self.open_record()?;
        store.begin_snapshot()?;
        let build = choose_build(&store, build)?;
        Ok((store, build))
    }
}

fn choose_build(store: &Store, build: Option<i64>) -> Result<BuildRow> {
    Ok(match build {
        Some(id) => store
            .build(id)?
            .with_context(|| format!("there is no build {id} in {}", store.path().display()))?,
        None => store
            .last_build()?
            .with_context(|| format!("{} holds no build yet", store.path().display()))?,
    })
}
