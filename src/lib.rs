//! makescope: record GNU make builds and answer questions about them.
//!
//! Data flows one way: make → plugin and shim events, tracer events → recorder → store
//! → every query. The library holds every piece: the engines (`record`, `query`,
//! `makedb`) take a [`config::Config`] and their own options, and [`commands`] prints
//! what they answer. The binary's `main.rs` and `cli.rs` only turn the command line into
//! those options; nothing here sees a clap type.

/// makescope's version (the crate's): the Python package's too.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod access;
pub mod commands;
pub mod config;
pub mod exit;
pub mod export;
pub mod gc;
pub mod graph;
pub mod hooks;
pub mod lint;
pub mod makedb;
pub mod output;
pub mod paths;
pub mod plugin;
pub mod protocol;
pub mod query;
pub mod rebuild;
pub mod record;
pub mod replay;
pub mod store;
pub mod testcases;
pub mod trace;
pub mod util;
pub mod views;
