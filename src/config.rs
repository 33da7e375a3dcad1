//! Configuration (in progress).
/// The validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {}
