//! Reconcile: the rules operations and finance act on, as SQL files in `sql/` run on polars
//! SQL over the normalized tables (DESIGN.md section 4).
//!
//! The stage sits between normalize and publish: it reads the run's package and adds the
//! `recon_*` tables to it, so they are committed with the tables they were computed from.

/// Reconciliation failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reconciliation query failed.
    #[error("reconciliation {name} failed: {why}")]
    Query {
        /// The reconciliation.
        name: String,
        /// Why.
        why: String,
    },
}
