//! The vocabulary sources are written in: typed tables and columns, role pivots, lenient
//! values, timestamps and the personal-data policy.
//!
//! Nothing here reads files, calls APIs or knows a source: [`crate::sources`] describes its
//! tables with these types, and the stage engines fill and write them.

pub mod columns;
pub mod lenient;
pub mod pii;
pub mod roles;
pub mod rows;
pub mod time;

pub use rows::Rows;
