//! The record in the formats other tools read: a Clang compilation database
//! ([`compdb`]) and a ninja file ([`ninja`]).
//!
//! It owns the translation from recorded facts (processes and their argv, files read
//! and written, labels) to those formats. What it must never do: run the build or any
//! command of it, write the record, or guess what the record does not say (a compile
//! whose process was not traced is read from its recipe text, and says so).

pub mod compdb;
pub mod ninja;

pub use compdb::{compdb, Compdb, CompdbOptions};
pub use ninja::{ninja, Ninja, NinjaOptions};
