//! The `ringcast` binary.
fn main() -> anyhow::Result<()> {
    ringcast::run(ringcast::Config::default())
}
