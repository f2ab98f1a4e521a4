//! What a source is: the [`Source`] trait, and the data it states about itself.
//!
//! A source names its export folder (which is also its main table), the tables it fills with
//! their keys, the envelopes its items come in, its role pivots, its API endpoint, and how one
//! item becomes rows. The stage engines (`extract`, `normalize`, `reconcile`, `publish`) know
//! sources only through this trait; the sources themselves live in [`crate::sources`], one file
//! each, registered in [`crate::sources::SOURCES`].
//!
//! This module depends on nothing of the crate but [`crate::schema`], so the engines can
//! depend on it without depending on each other or on any source.

use std::borrow::Cow;

use crate::schema::Rows;
use crate::schema::columns::TableSpec;
use crate::schema::roles::RolePivot;

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
    /// The columns the header of a CSV export must have; each row of a file whose header
    /// lacks one is a reject naming it.
    fn csv_columns(&self) -> &'static [&'static str] {
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

/// The source called `name` among `sources`.
pub fn find<'s>(sources: &[&'s dyn Source], name: &str) -> Option<&'s dyn Source> {
    sources.iter().copied().find(|s| s.name() == name)
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

impl Api {
    /// Every API.
    pub const ALL: [Api; 3] = [Api::Appointments, Api::CustomerCare, Api::Logistics];

    /// Its name in job files (`[api.customer_care]`).
    pub fn name(self) -> &'static str {
        match self {
            Api::Appointments => "appointments",
            Api::CustomerCare => "customer_care",
            Api::Logistics => "logistics",
        }
    }

    /// The variable that sets its base URL.
    pub fn url_env(self) -> &'static str {
        match self {
            Api::Appointments => "OPSLAKE_APPOINTMENTS_URL",
            Api::CustomerCare => "OPSLAKE_CUSTOMER_CARE_URL",
            Api::Logistics => "OPSLAKE_LOGISTICS_URL",
        }
    }
}

/// The HTTP method of a source's calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST` (the body names the id of a per-id call).
    Post,
}

/// How the API hands out a source's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// `page`/`page_size` query parameters; the response carries `current_page`, `total_pages`
    /// and `total_elements`.
    PageNumber,
    /// Follow the link at `link` (a JSON pointer into the page) until there is none or a page
    /// holds no item of the source's envelopes; a link that comes back is a loop (an error).
    NextLink {
        /// Where the next page's URL is in a page.
        link: &'static str,
    },
    /// One call per id, the ids taken from the items of another source plus the job's ids; a
    /// 404 means "none".
    PerId(IdSource),
    /// One call returns everything.
    Single,
}

/// Builds a per-id call's request body from its id and the item (of the id source) that
/// named it.
pub type BodyBuilder = fn(&str, &serde_json::Value) -> Result<serde_json::Value, String>;

/// Where the ids of a per-id source come from, and how its answers age.
#[derive(Clone, Copy, Debug)]
pub struct IdSource {
    /// The source whose items give the ids.
    pub from: &'static str,
    /// Where the id is in each of its items (a JSON pointer).
    pub pointer: &'static str,
    /// Ids known from earlier days are asked for even when no item of `from` names them
    /// today: those the base run answered (per tenant), or, on a night without one, those in
    /// these committed tables' columns (`(table, column)`). Empty: only today's items count.
    pub known: &'static [(&'static str, &'static str)],
    /// The request body of a call (a `POST`), built from the item that named the id; `None`:
    /// no body.
    pub body: Option<BodyBuilder>,
    /// When an answer fetched on an earlier day may be carried forward instead of asked again.
    pub settled: Settled,
}

// Function addresses are not comparable: two id sources are equal when they state the same
// data and both build a body or neither does.
impl PartialEq for IdSource {
    fn eq(&self, other: &Self) -> bool {
        self.from == other.from
            && self.pointer == other.pointer
            && self.known == other.known
            && self.settled == other.settled
            && self.body.is_some() == other.body.is_some()
    }
}

impl Eq for IdSource {}

/// When a per-id answer of an earlier day cannot have changed, so that an incremental night
/// carries it forward instead of asking again. Whatever the rule, an id is asked again when it
/// is new, when the items that named it changed since that day, and on a full refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Never: asked every night.
    Never,
    /// Always (changes come through the items that name the id, or the full refresh).
    Always,
    /// When the answer's value at `pointer` is one of `values` (ASCII case-insensitive): a
    /// final state. A 404 ("none") is never settled under this rule.
    Answer {
        /// A JSON pointer into the answer.
        pointer: &'static str,
        /// The final values.
        values: &'static [&'static str],
    },
    /// When the item that named the id has, at `pointer`, one of `values` (the search of an
    /// appointment in a final state).
    Item {
        /// A JSON pointer into the item.
        pointer: &'static str,
        /// The final values.
        values: &'static [&'static str],
    },
}

impl Settled {
    /// Whether `value` (at the rule's pointer) is one of the rule's final values.
    pub fn is_final(values: &[&str], value: Option<&serde_json::Value>) -> bool {
        match value {
            Some(serde_json::Value::String(s)) => values.iter().any(|v| v.eq_ignore_ascii_case(s.trim())),
            _ => false,
        }
    }
}

/// How the API serves a source. The path is the default; a job may override it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The API.
    pub api: Api,
    /// The method.
    pub method: Method,
    /// The default path: `{tenant}` is the org, `{id}` the id of a per-id call.
    pub path: &'static str,
    /// How it pages.
    pub paging: Paging,
    /// How a response is kept in the raw files.
    pub raw: RawContext,
}

/// How a response is written as a raw line, so that a replay knows what it answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawContext {
    /// The body as it is (pages, single calls).
    Body,
    /// A per-id answer: `{"_id": id, "_fetched_on": "YYYY-MM-DD", "request": {"id": id},
    /// "response": body}`, and `"response": []` for a 404 ("none"), so that a later night
    /// knows what was asked, when, and what came back. The source's envelopes unwrap it.
    Answer,
}

/// The context name under which a per-id answer's fetch day reaches its items.
pub const FETCHED_ON: &str = "_fetched_on";

/// Where a source's items sit inside a page or envelope.
#[derive(Clone, Copy, Debug)]
pub struct Envelope {
    /// Path of object keys to the item array (or single item object).
    pub items: &'static [&'static str],
    /// Values the items inherit: a name and the path of object keys to it.
    pub context: &'static [(&'static str, &'static [&'static str])],
}

/// Values an item inherits from its envelope (and the page number, where the page has one).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context<'a> {
    /// The page's `current_page`, if the envelope is a numbered page.
    pub page: Option<i64>,
    values: Vec<(&'static str, Cow<'a, str>)>,
}

impl<'a> Context<'a> {
    /// The inherited value called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_ref())
    }

    /// Sets the inherited value called `name` (an inner envelope's value wins).
    pub fn set(&mut self, name: &'static str, value: Cow<'a, str>) {
        self.values.retain(|(n, _)| *n != name);
        self.values.push((name, value));
    }
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

/// The separator of a composite key's parts.
pub const KEY_SEPARATOR: char = '\u{1f}';

/// Joins the parts of a composite key.
pub fn composite_key<'a>(parts: &[&str]) -> Cow<'a, str> {
    Cow::Owned(parts.join(&KEY_SEPARATOR.to_string()))
}
