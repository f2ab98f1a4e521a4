//! opslake: batch ETL and reconciliation for a telecom's back office.
//!
//! ```text
//! extract (HTTP APIs | export files) -> normalize (polars) -> reconcile (sql/ on polars SQL) -> publish (Parquet on object_store)
//! ```
//! * [`extract`] finds records: export files, streamed and cut at record boundaries.
//! * [`normalize`] turns items into typed tables (role pivots, UTC instants, the personal-data
//!   policy, duplicates collapsed, rejects kept) and writes them as Parquet parts of a package.
//! * [`reconcile`] runs the reconciliation rules on the package.
//! * [`publish`] commits the package to the lake atomically.
//!
//! [`sources`] holds what differs per source; [`pipeline`] runs the stages in order; [`job`]
//! resolves the job file, environment and flags into a [`job::Job`].

pub mod allocator;
pub mod cli;
pub mod error;
pub mod extract;
pub mod fixtures;
pub mod job;
pub mod normalize;
pub mod pipeline;
pub mod publish;
pub mod reconcile;
pub mod samples;
pub mod schema;
pub mod source;
pub mod sources;

pub use error::{Error, Result};
