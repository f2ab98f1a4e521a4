//! The sample generator: a consistent universe of exports in the layout of `samples/`.

use std::path::Path;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Universe {
    /// Number of orders.
    pub orders: usize,
    /// Random seed.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Default)]
pub struct Stats {
    /// Files.
    pub files: usize,
    /// Bytes.
    pub bytes: u64,
}

/// Writes the universe under `out`.
pub fn generate(_u: &Universe, _out: &Path) -> std::io::Result<Stats> {
    Ok(Stats::default())
}
