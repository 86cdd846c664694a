//! make's own database (`make -p`), parsed with nom into a typed model; the `targets`
//! subcommand.
//!
//! (Implementation in progress.)

use std::path::PathBuf;

/// `makescope targets` arguments.
#[derive(clap::Args, Debug)]
pub struct TargetsArgs {
    /// Run in this directory.
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Only phony targets.
    #[arg(long)]
    pub phony: bool,
    /// Also every sub-make's targets, from the recorded build.
    #[arg(long)]
    pub recursive: bool,
    /// Show prerequisites.
    #[arg(long)]
    pub prereqs: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `makescope targets`.
pub fn targets(_config: &crate::cli::Config, _args: &TargetsArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`makescope targets` is not implemented yet")
}
