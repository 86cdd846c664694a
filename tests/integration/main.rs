//! The integration tests: one test crate, so the library and the binary's dependencies
//! are linked into one test executable rather than one per subject. Each module is one
//! subject; [`harness`] is the one way they run programs (a temporary directory, a clean
//! environment and a timeout). Fixture projects live in `tests/fixtures`, insta
//! snapshots in `tests/integration/snapshots`.
//!
//! Run one subject with `cargo test --test integration MODULE::` (e.g. `targets::`).

mod harness;

mod devtools;
mod exports;
mod faults;
mod fidelity;
mod files;
mod footprint;
mod habits;
mod hooks;
mod hooks_cli;
mod hooks_writes;
mod lint;
mod output;
mod output_jobs;
mod output_labels;
mod output_printer;
mod python_plugin;
mod rebuild;
mod record;
mod record_compat;
mod replay;
mod replay_traced;
mod targets;
mod targets_parse;
mod tests_list;
mod trace;
mod trace_bench;
mod trials;
mod views;
mod writers;
