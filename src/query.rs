//! `log` and `show`: read the record, print it.
use crate::cli::{Config, LogArgs, ShowArgs};
pub fn log(_config: &Config, _args: &LogArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
pub fn show(_config: &Config, _args: &ShowArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
