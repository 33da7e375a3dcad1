//! Workers (in progress).
/// Runs the server.
pub fn run(_config: crate::Config) -> anyhow::Result<()> {
    Ok(())
}
