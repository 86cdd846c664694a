//! makescope: record GNU make builds and answer questions about them.
//!
//! Data flows one way: make → plugin and shim events, tracer events → recorder → store
//! → every query. The library holds every piece; `main.rs` only parses arguments.

pub mod cli;
pub mod graph;
pub mod hooks;
pub mod makedb;
pub mod output;
pub mod paths;
pub mod protocol;
pub mod query;
pub mod record;
pub mod store;
pub mod trace;
pub mod util;
