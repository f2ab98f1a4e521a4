//! The ids of per-id sources that no item of the night names, and the fee figure.
//!
//! * The job's id sources, per API: `ids` (a list), `ids_file` (CSV or Parquet, any object
//!   store URL, read-only) and `ids_table` (a column of a committed lake table, a CRM export).
//!   They go to the API's first-level per-id sources (whose ids come from a listing: work
//!   orders, customers), not to the searches of the appointments found.
//! * The ids known from earlier days: on a night with a base run, its captures name them,
//!   per tenant (see `extract::http::per_id`); without one, the committed tables the source
//!   names (`IdSource::known`) through [`CommittedIds`], asked in every tenant.
//!
//! [`CommittedIds`] is the one boundary through which extraction reads committed tables.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use super::Run;
use crate::error::Result;
use crate::extract::http::{ApiSpec, ExtraId, ExtraIds, IdOrigin};
use crate::job::{self, IdsFile};
use crate::normalize::NormalizeReport;
use crate::publish::{self, layout};
use crate::source::{Api, Paging};

/// Reads ids out of committed lake tables: an `ids_table`, the customers known from earlier
/// days.
pub trait CommittedIds {
    /// The distinct non-null values (as text) of `column` in the latest committed version of
    /// `table`'s latest day on or before `day` that has files; empty when the table was never
    /// committed.
    fn committed_ids(&self, table: &str, column: &str, day: NaiveDate) -> Result<Vec<String>>;
}

impl CommittedIds for Run {
    /// Through the days of the run records and each day's files at the table's latest version
    /// (never a listing of the partition folder: it holds replaced files until a vacuum).
    fn committed_ids(&self, table: &str, column: &str, day: NaiveDate) -> Result<Vec<String>> {
        let lake = &self.lake;
        let mut days = self.runtime.block_on(publish::days(lake))?;
        days.retain(|d| *d <= day);
        for d in days.into_iter().rev() {
            let files = match self.runtime.block_on(publish::table_files(lake, table, d, None))? {
                None => return Ok(Vec::new()),
                Some((_, files)) if files.is_empty() => continue,
                Some((_, files)) => files,
            };
            let scratch = super::captures::Scratch(self.scratch(&format!("ids-{table}")));
            let local = self.runtime.block_on(publish::fetch(lake, &files, &scratch.0))?;
            let mut ids = BTreeSet::new();
            for file in &local {
                for v in parquet_column(file, column).map_err(|why| job::Error::Value {
                    setting: "ids_table".into(),
                    value: format!("{table}.{column}"),
                    why,
                })? {
                    ids.insert(v);
                }
            }
            return Ok(ids.into_iter().collect());
        }
        Ok(Vec::new())
    }
}

/// The text values of `column` in a Parquet file.
fn parquet_column(file: &Path, column: &str) -> std::result::Result<Vec<String>, String> {
    let f = std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let df = ParquetReader::new(f)
        .with_columns(Some(vec![column.into()]))
        .finish()
        .map_err(|e| format!("no column {column:?} in {}: {e}", file.display()))?;
    texts(&df, column)
}

fn texts(df: &DataFrame, column: &str) -> std::result::Result<Vec<String>, String> {
    let c = df
        .column(column)
        .map_err(|e| format!("no column {column:?}: {e}"))?
        .cast(&DataType::String)
        .map_err(|e| e.to_string())?;
    let s = c.str().map_err(|e| e.to_string())?;
    Ok(s.iter()
        .flatten()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

/// The ids of an `ids_file`, each with its tenant when the file has a tenant column.
pub fn read_ids_file(run: &Run, spec: &IdsFile) -> Result<Vec<(String, Option<String>)>> {
    let bad = |why: String| job::Error::Value {
        setting: "ids_file".into(),
        value: crate::extract::http::client::redact_text(&spec.url),
        why,
    };
    let lower = spec.url.to_ascii_lowercase();
    let parquet = lower.ends_with(".parquet");
    if !parquet && !lower.ends_with(".csv") {
        return Err(bad("not a .csv or .parquet file".into()).into());
    }
    let local: PathBuf;
    let _scratch;
    match spec.url.split_once("://") {
        None => {
            local = PathBuf::from(&spec.url);
            _scratch = None;
        }
        Some(("file", _)) => {
            local = url::Url::parse(&spec.url)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| bad("not a valid file:// URL".into()))?;
            _scratch = None;
        }
        Some(_) => {
            // The folder as a store (read-only use), then the file in it.
            let (folder, name) = spec.url.rsplit_once('/').ok_or_else(|| bad("no file name".into()))?;
            let store = publish::Lake::open(folder).map_err(|e| bad(e.to_string()))?;
            local = std::env::temp_dir().join(format!("opslake-ids-file-{}-{name}", run.id));
            run.runtime
                .block_on(store.download(name, &local))
                .map_err(|e| crate::extract::Error::IdsFile {
                    url: crate::extract::http::client::redact_text(&spec.url),
                    why: e.to_string(),
                })?;
            _scratch = Some(super::captures::Scratch(local.clone()));
        }
    }
    let unreadable = |why: String| crate::extract::Error::IdsFile {
        url: crate::extract::http::client::redact_text(&spec.url),
        why,
    };
    if !local.is_file() {
        return Err(unreadable(format!("{} does not exist", local.display())).into());
    }
    let df = if parquet {
        let f = std::fs::File::open(&local).map_err(|e| unreadable(e.to_string()))?;
        ParquetReader::new(f).finish().map_err(|e| unreadable(e.to_string()))?
    } else {
        let mut reader = csv::Reader::from_path(&local).map_err(|e| unreadable(e.to_string()))?;
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| unreadable(e.to_string()))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); headers.len()];
        for record in reader.records() {
            let record = record.map_err(|e| unreadable(e.to_string()))?;
            for (i, col) in columns.iter_mut().enumerate() {
                col.push(record.get(i).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()));
            }
        }
        let cols: Vec<Column> = headers
            .iter()
            .zip(columns)
            .map(|(h, values)| Column::new(h.as_str().into(), values))
            .collect();
        DataFrame::new_infer_height(cols).map_err(|e| unreadable(e.to_string()))?
    };
    let names: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
    let column = match &spec.column {
        Some(c) if names.contains(c) => c.clone(),
        Some(c) => return Err(bad(format!("no column {c:?}; its columns: {}", names.join(", "))).into()),
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(bad(format!(
                "it has several columns ({}): name the ids' one with column = \"...\"",
                names.join(", ")
            ))
            .into());
        }
    };
    let column_texts = |name: &str| -> std::result::Result<Vec<Option<String>>, String> {
        let c = df
            .column(name)
            .map_err(|_| format!("no column {name:?}; its columns: {}", names.join(", ")))?
            .cast(&DataType::String)
            .map_err(|e| e.to_string())?;
        let s = c.str().map_err(|e| e.to_string())?;
        Ok(s.iter()
            .map(|v| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()))
            .collect())
    };
    let ids = column_texts(&column).map_err(bad)?;
    let tenants = match &spec.tenant_column {
        Some(t) => column_texts(t).map_err(bad)?,
        None => vec![None; ids.len()],
    };
    Ok(ids
        .into_iter()
        .zip(tenants)
        .filter_map(|(id, tenant)| id.map(|id| (id, tenant)))
        .collect())
}

/// The ids of the run's per-id sources that no item names: the job's id sources (first-level
/// sources only) and, on a night with no base run, the ids known from committed tables.
pub fn extra_ids(run: &Run, apis: &BTreeMap<Api, ApiSpec>, have_base: bool) -> Result<ExtraIds> {
    let mut extra = ExtraIds::default();
    let mut files: BTreeMap<Api, Vec<(String, Option<String>)>> = BTreeMap::new();
    let mut tables: BTreeMap<Api, Vec<String>> = BTreeMap::new();
    for source in &run.sources {
        let endpoint = source.endpoint();
        let Paging::PerId(ids_from) = endpoint.paging else {
            continue;
        };
        let Some(spec) = apis.get(&endpoint.api) else {
            continue;
        };
        let first_level = crate::source::find(run.registry, ids_from.from)
            .is_some_and(|from| !matches!(from.endpoint().paging, Paging::PerId(_)));
        let list = extra.by_source.entry(source.name().to_string()).or_default();
        if first_level {
            list.extend(spec.ids.iter().map(|id| ExtraId {
                id: id.clone(),
                tenant: None,
                origin: IdOrigin::List,
            }));
            if let Some(f) = &spec.ids_file {
                let read = match files.entry(endpoint.api) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => e.insert(read_ids_file(run, f)?),
                };
                list.extend(read.iter().map(|(id, tenant)| ExtraId {
                    id: id.clone(),
                    tenant: tenant.clone(),
                    origin: IdOrigin::File,
                }));
            }
            if let Some((table, column)) = &spec.ids_table {
                let read = match tables.entry(endpoint.api) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        let ids = run.committed_ids(table, column, run.as_of())?;
                        if ids.is_empty() {
                            tracing::warn!(table = %table, column = %column, "ids_table: no committed rows");
                        }
                        e.insert(ids)
                    }
                };
                list.extend(read.iter().map(|id| ExtraId {
                    id: id.clone(),
                    tenant: None,
                    origin: IdOrigin::Table,
                }));
            }
        }
        if !have_base {
            let mut known = BTreeSet::new();
            for (table, column) in ids_from.known {
                known.extend(run.committed_ids(table, column, run.as_of())?);
            }
            list.extend(known.into_iter().map(|id| ExtraId {
                id,
                tenant: None,
                origin: IdOrigin::Known,
            }));
        }
    }
    Ok(extra)
}

/// How many journey devices (distinct per journey) are products of an order (not DISCARDED)
/// and have no `customer_devices` record, so that their fees are unknown; `None` when the
/// package lacks one of the tables. The figure the finance reconciliation's NO_FEES_RECORD
/// rests on, read from the package's tables before they are published.
pub fn journey_devices_without_fees(dir: &Path, run_date: NaiveDate, normalized: &NormalizeReport) -> Option<u64> {
    // The files normalize wrote for `table` (its report names them), only `columns` read.
    let read = |table: &str, columns: &[&str]| -> Option<DataFrame> {
        let folder = dir.join(layout::table_partition(table, run_date));
        let mut all: Option<DataFrame> = None;
        for file in &normalized.tables.get(table)?.files {
            let f = std::fs::File::open(folder.join(&file.name)).ok()?;
            let df = ParquetReader::new(f)
                .with_columns(Some(columns.iter().map(|c| (*c).into()).collect()))
                .finish()
                .ok()?;
            match &mut all {
                None => all = Some(df),
                Some(a) => {
                    a.vstack_mut(&df).ok()?;
                }
            }
        }
        all
    };
    let strings = |df: &DataFrame, c: &str| -> Option<Vec<Option<String>>> {
        let col = df.column(c).ok()?.cast(&DataType::String).ok()?;
        Some(col.str().ok()?.iter().map(|v| v.map(str::to_string)).collect())
    };
    let devices = read(
        "external_order_devices",
        &["order_id_external", "journey_index", "subscription_device_id"],
    )?;
    let products = read("order_products", &["subscription_device_id", "status"])?;
    let fees = read("customer_devices", &["subscription_terminal_id"])?;
    let ordered: HashSet<String> = strings(&products, "subscription_device_id")?
        .into_iter()
        .zip(strings(&products, "status")?)
        .filter_map(|(d, s)| d.filter(|_| s.as_deref() != Some("DISCARDED")))
        .collect();
    let with_fees: HashSet<String> = strings(&fees, "subscription_terminal_id")?
        .into_iter()
        .flatten()
        .collect();
    let journeys = strings(&devices, "order_id_external")?;
    let indexes = strings(&devices, "journey_index")?;
    let mut missing = BTreeSet::new();
    for ((o, j), d) in journeys
        .into_iter()
        .zip(indexes)
        .zip(strings(&devices, "subscription_device_id")?)
    {
        if let Some(d) = d {
            if ordered.contains(&d) && !with_fees.contains(&d) {
                missing.insert((o, j, d));
            }
        }
    }
    Some(missing.len() as u64)
}
