//! Sources: one file per export folder / API resource, each stating what differs per source.
//!
//! A source names its folder (which is also its main table), the tables it fills with their
//! keys, the envelopes its items come in, its role pivots, how the API pages it, and how one
//! item becomes rows. The stage engines (`extract`, `normalize`, `publish`) name no source;
//! adding one is a new file here plus one line in [`SOURCES`].

use std::borrow::Cow;

use crate::extract::shape::{Context, Envelope};
use crate::normalize::Rows;
use crate::normalize::columns::TableSpec;
use crate::normalize::roles::RolePivot;

pub mod appointments;
pub mod customer_devices;
pub mod expeditions;
pub mod external_orders;
pub mod logistics;
pub mod memos;
pub mod orders;
pub mod pickups;
pub mod stock;
pub mod time_slots;
pub mod typifications;

/// Every source, in the order they are read.
pub const SOURCES: &[&dyn Source] = &[
    &appointments::Appointments,
    &time_slots::TimeSlots,
    &memos::Memos,
    &typifications::Typifications,
    &customer_devices::CustomerDevices,
    &orders::Orders,
    &expeditions::Expeditions,
    &stock::Stock,
    &pickups::Pickups,
    &external_orders::ExternalOrders,
];

/// The source called `name`.
pub fn find(name: &str) -> Option<&'static dyn Source> {
    SOURCES.iter().copied().find(|s| s.name() == name)
}

/// Which API serves a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Api {
    /// Field-service appointments (seed 000).
    Appointments,
    /// Customer care (seed 003).
    CustomerCare,
    /// Logistics (seed 004).
    Logistics,
}

/// How the API hands out a source's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// `page`/`page_size` query parameters; the response carries `current_page`, `total_pages`.
    PageNumber,
    /// Follow the response's `next_request` link until there is none.
    NextLink,
    /// One call per id, the ids taken from the items of another source (at a JSON pointer)
    /// plus the job's id list; a 404 means "none".
    PerId {
        /// The source whose items give the ids.
        ids_from: &'static str,
        /// Where the id is in each of its items.
        pointer: &'static str,
    },
    /// One call returns everything.
    Single,
}

/// How the API serves a source (the default paths are in `extract::http::DEFAULT_PATHS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The API.
    pub api: Api,
    /// How it pages.
    pub paging: Paging,
    /// How a response is kept in the raw files.
    pub raw: crate::extract::raw::RawContext,
}

/// One item of a source, with where it came from. Its bytes live for `'a`.
pub struct Item<'c, 'a> {
    /// The item's JSON bytes.
    pub bytes: &'a [u8],
    /// Values inherited from its envelope.
    pub context: &'c Context<'a>,
    /// The file's name without extensions (an id, when the export names files by id).
    pub file_stem: &'c str,
}

/// What the engine needs to collapse duplicates: the key and the update instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemKey<'a> {
    /// The main table's key, its parts joined by U+001F when composite.
    pub key: Cow<'a, str>,
    /// The source's update timestamp (UTC µs), where it has one; the latest wins.
    pub updated_at: Option<i64>,
}

impl<'a> ItemKey<'a> {
    /// A key without an update timestamp (the last read wins).
    pub fn new(key: impl Into<Cow<'a, str>>) -> Self {
        ItemKey {
            key: key.into(),
            updated_at: None,
        }
    }

    /// A key whose duplicates are decided by `updated_at`.
    pub fn updated(key: impl Into<Cow<'a, str>>, updated_at: Option<i64>) -> Self {
        ItemKey {
            key: key.into(),
            updated_at,
        }
    }
}

/// The text of an optional field.
pub fn text<'a>(t: Option<crate::normalize::lenient::Text<'a>>) -> Option<Cow<'a, str>> {
    t.map(|t| t.0)
}

/// Joins the parts of a composite key.
pub fn composite_key<'a>(parts: &[&str]) -> Cow<'a, str> {
    Cow::Owned(parts.join("\u{1f}"))
}

/// A source of records: an export folder and an API resource.
pub trait Source: Sync {
    /// Folder name, API resource and main table.
    fn name(&self) -> &'static str;
    /// How the API serves it.
    fn endpoint(&self) -> Endpoint;
    /// The tables it fills; the first is the main table, whose key collapses duplicates, and
    /// every other table carries the main table's key columns.
    fn tables(&self) -> Vec<TableSpec>;
    /// The pages and envelopes its items may come in.
    fn envelopes(&self) -> &'static [Envelope] {
        &[]
    }
    /// Its role pivots (bound to the run's policy once per batch).
    fn pivots(&self) -> &'static [&'static RolePivot] {
        &[]
    }
    /// Turns one item into rows, or says why it cannot. Rows are pushed only once the whole
    /// item converted, so a rejected item leaves no partial rows.
    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String>;
}

/// Deserializes an item; a wrong value's message names the field that holds it.
pub fn read_item<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    // One SIMD pass validates the UTF-8 of the whole item; serde then borrows its strings
    // without checking each again. Invalid UTF-8 falls through to serde's own error.
    let parsed = match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    match parsed {
        Ok(v) => Ok(v),
        Err(e) if e.is_syntax() || e.is_eof() => Err(format!("invalid JSON: {e}")),
        Err(e) => {
            // Only on failure: a second, path-tracking pass names the field.
            let mut de = serde_json::Deserializer::from_slice(bytes);
            match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(pe) if pe.path().iter().next().is_some() => {
                    Err(format!("invalid value at {}: {}", pe.path(), pe.inner()))
                }
                _ => Err(format!("invalid record: {e}")),
            }
        }
    }
}

/// The customer an item belongs to: inherited from its envelope, or the file's name when the
/// export names files by customer number (all digits).
pub fn customer_of<'a>(item: &Item<'_, 'a>) -> Option<Cow<'a, str>> {
    if let Some(c) = item.context.get("customer_num") {
        return Some(Cow::Owned(c.to_string()));
    }
    let stem = item.file_stem;
    (!stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit())).then(|| Cow::Owned(stem.to_string()))
}

/// Requires a key field.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing required key {field}"))
}

/// Requires a key field, non-empty text.
pub fn required_text<'a>(
    value: Option<crate::normalize::lenient::Text<'a>>,
    field: &str,
) -> Result<Cow<'a, str>, String> {
    match value {
        Some(t) if !t.0.trim().is_empty() => Ok(t.0),
        _ => Err(format!("missing required key {field}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_unique_and_tables_carry_the_main_key() {
        let mut names: Vec<_> = SOURCES.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SOURCES.len());
        for s in SOURCES {
            let tables = s.tables();
            assert_eq!(tables[0].name, s.name(), "main table is named after the source");
            for t in &tables {
                for k in tables[0].key {
                    assert!(t.columns.iter().any(|c| c.name == *k), "{} lacks {}", t.name, k);
                }
                for k in t.key {
                    assert!(
                        t.columns.iter().any(|c| c.name == *k),
                        "{} key {} is not a column",
                        t.name,
                        k
                    );
                }
            }
        }
    }
}
