//! The run record (`_runs/run_date=D/{run_id}.json`): what a run read, what it published
//! (each table's Delta version and files), and how long each stage took. Written once, after
//! the tables are committed.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The record of one committed run (`_runs/run_date=.../{run_id}.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunManifest {
    /// Unique id of the run.
    pub run_id: String,
    /// Job name.
    pub job: String,
    /// What the run did: `run` (every source of the day), `sources` (some sources), `shard`
    /// (one shard's share, not committed alone), `shards` (every shard's share, committed
    /// together), `reconcile`, `extract` (raw captures only).
    #[serde(default)]
    pub kind: String,
    /// The run date (`as_of`), the partition of every table.
    pub run_date: Option<NaiveDate>,
    /// The day's claim the run committed under (1 for the day's first commit; 0: none).
    pub commit: u64,
    /// When the run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it committed.
    pub committed_at: Option<DateTime<Utc>>,
    /// opslake version and build.
    pub code_version: String,
    /// Where the inputs came from.
    pub input: String,
    /// Where the lake is.
    pub output: String,
    /// Inputs read, per source.
    pub sources: Vec<SourceManifest>,
    /// Tables published.
    pub tables: BTreeMap<String, TableManifest>,
    /// Rejected records.
    pub rejects: u64,
    /// Duplicates collapsed.
    pub duplicates: u64,
    /// Things worth a look that did not fail the run.
    pub warnings: Vec<String>,
    /// Stages in order, with their durations and rows.
    pub stages: Vec<StageManifest>,
    /// Personal-data policy (never the key).
    pub pii: PiiManifest,
    /// Settings that shape the output.
    pub settings: BTreeMap<String, String>,
    /// What an API extraction fetched: responses per source, requests and retries per API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<crate::extract::http::ExtractReport>,
    /// The shard of the day the run read (`i/n`), if sharded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// For `shards`: the runs whose shares were committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<String>,
}

/// One source's inputs and counts.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SourceManifest {
    /// Source name.
    pub name: String,
    /// Files read, with sizes and checksums.
    pub files: Vec<FileManifest>,
    /// Records read.
    pub records_read: u64,
    /// Main-table rows written.
    pub rows_written: u64,
    /// Records rejected.
    pub rejects: u64,
    /// Duplicates collapsed.
    pub duplicates: u64,
    /// Keys exported more than once with different contents.
    pub conflicting_duplicates: u64,
    /// Whether `read = written + rejects + duplicates` held (checked before publishing).
    pub balanced: bool,
}

/// One input file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FileManifest {
    /// Path relative to the input root.
    pub name: String,
    /// Size as stored.
    pub bytes: u64,
    /// Checksum of the stored bytes.
    pub checksum: String,
    /// Records in it.
    pub records: u64,
}

/// One published table.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TableManifest {
    /// Rows of the day.
    pub rows: u64,
    /// The Delta version the run committed (read the day as of this run with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The day's files at that version, as paths from the lake's root.
    pub files: Vec<String>,
    /// Files the commit added.
    #[serde(default)]
    pub added: usize,
    /// Files of the day the commit replaced (kept until `opslake vacuum`).
    #[serde(default)]
    pub removed: usize,
}

/// One stage.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StageManifest {
    /// `extract`, `normalize`, `reconcile`, `publish`.
    pub name: String,
    /// Wall seconds.
    pub seconds: f64,
    /// Rows it produced.
    pub rows: u64,
}

/// The policy a run applied.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PiiManifest {
    /// `hash` or `drop`.
    pub mode: String,
    /// Which key (a fingerprint or "development"), never the key.
    pub key: String,
}

/// The version recorded in manifests.
pub fn code_version() -> String {
    match option_env!("OPSLAKE_GIT_SHA") {
        Some(sha) if !sha.is_empty() => format!("{} ({sha})", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}
