//! `makescope make`: run make and record the build. The recorder prints as the build
//! goes (its own printer, on its own thread), so there is nothing left to print here.

use anyhow::Result;

use crate::config::Config;
use crate::record::{self, MakeOptions};

/// make's exit status, or [`crate::exit::HOOKS_FAILED`].
pub fn run(config: &Config, options: &MakeOptions) -> Result<u8> {
    record::run(config, options)
}
