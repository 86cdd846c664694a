//! The recorder. (Being written.)
pub fn run(_config: &crate::cli::Config, _args: crate::cli::MakeArgs) -> anyhow::Result<u8> {
    anyhow::bail!("not yet")
}
