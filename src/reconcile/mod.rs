//! Reconcile: the rules operations and finance act on, as SQL files in `sql/` run on polars
//! SQL over the normalized tables (DESIGN.md section 4).
//!
//! ```text
//!  package tables ──▶ recon_order_fulfilment ──▶ recon_stock_coverage
//!  (scanned lazily)        │                 └─▶ recon_installation_readiness
//!                          └─ recon_remaining_payments ──▶ recon_summary
//! ```
//! Each reconciliation is one `sql/recon_<name>.sql` plus one line in [`RECONCILIATIONS`], run
//! in that order; every result is registered as a table for the ones after it and written
//! into the package, so the `recon_*` tables are committed with the tables they come from.
//! Parameters are spliced in as literals (polars SQL has no bind parameters): `:as_of` is the
//! end of the `as_of` day in the source time zone as a UTC timestamp, `:stuck_after_days` a
//! whole number. Each statement runs in a fresh `SQLContext`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveTime};
use polars::prelude::*;
use polars::sql::SQLContext;

use crate::job::Job;
use crate::publish::{layout, parquet};
use crate::schema::time::TimeParser;

/// Reconciliation failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reconciliation query failed.
    #[error("reconciliation {name} failed: {source}")]
    Query {
        /// The reconciliation.
        name: &'static str,
        /// The polars error.
        source: PolarsError,
    },
    /// An input table has no files for the day.
    #[error("reconciliation needs table {table}, which has no files for the day; normalize first")]
    MissingTable {
        /// The table.
        table: String,
    },
    /// A result could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One reconciliation: its table name, its SQL, and the reconciliations it reads.
#[derive(Debug, Clone, Copy)]
pub struct Reconciliation {
    /// The output table, `recon_<name>`.
    pub name: &'static str,
    /// The SQL (one statement).
    pub sql: &'static str,
    /// Earlier reconciliations its SQL reads.
    pub reads: &'static [&'static str],
}

/// Every reconciliation, in the order they run (a later one may read an earlier one).
pub const RECONCILIATIONS: &[Reconciliation] = &[
    Reconciliation {
        name: "recon_order_fulfilment",
        sql: include_str!("../../sql/recon_order_fulfilment.sql"),
        reads: &[],
    },
    Reconciliation {
        name: "recon_stock_coverage",
        sql: include_str!("../../sql/recon_stock_coverage.sql"),
        reads: &["recon_order_fulfilment"],
    },
    Reconciliation {
        name: "recon_remaining_payments",
        sql: include_str!("../../sql/recon_remaining_payments.sql"),
        reads: &[],
    },
    Reconciliation {
        name: "recon_installation_readiness",
        sql: include_str!("../../sql/recon_installation_readiness.sql"),
        reads: &["recon_order_fulfilment"],
    },
    Reconciliation {
        name: "recon_summary",
        sql: include_str!("../../sql/recon_summary.sql"),
        reads: &[
            "recon_order_fulfilment",
            "recon_stock_coverage",
            "recon_remaining_payments",
            "recon_installation_readiness",
        ],
    },
];

/// The status-category mapping of seed 004's `StatusValue`, loaded as the `status_categories`
/// table.
pub const STATUS_CATEGORIES: &str = include_str!("../../sql/status_categories.csv");

/// The normalized tables the reconciliations read.
pub const INPUTS: &[&str] = &[
    "order_products",
    "orders",
    "expedition_status_history",
    "expedition_products",
    "stock",
    "external_orders",
    "external_order_journeys",
    "external_order_devices",
    "customer_devices",
    "appointments",
];

/// The parameters bound into the SQL.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// The day reconciled.
    pub as_of: NaiveDate,
    /// The end of that day in the source time zone, UTC microseconds.
    pub as_of_end: i64,
    /// Days without a status change before an in-progress expedition is stuck.
    pub stuck_after_days: u32,
}

impl Params {
    /// The parameters for `as_of` in `time`'s zone.
    pub fn new(as_of: NaiveDate, time: &TimeParser, stuck_after_days: u32) -> Self {
        let next = as_of.succ_opt().unwrap_or(as_of).and_time(NaiveTime::MIN);
        Params {
            as_of,
            as_of_end: time.local_to_utc(next),
            stuck_after_days,
        }
    }

    /// `sql` with the parameters spliced in as literals.
    pub fn bind(&self, sql: &str) -> String {
        let instant = chrono::DateTime::from_timestamp_micros(self.as_of_end)
            .unwrap_or_default()
            .format("%Y-%m-%d %H:%M:%S%.6f+0000");
        let as_of = format!("TIMESTAMP('{instant}', '%Y-%m-%d %H:%M:%S%.6f%z')");
        sql.replace(":as_of", &as_of)
            .replace(":stuck_after_days", &self.stuck_after_days.to_string())
    }
}

/// The results of the stage.
#[derive(Debug, Default, Clone)]
pub struct ReconcileReport {
    /// Rows per reconciliation table.
    pub rows: BTreeMap<String, u64>,
    /// `recon_summary` rows: reconciliation, state, count, amount (EUR text), quantity.
    pub summary: Vec<SummaryRow>,
    /// Warnings (status values missing from the category file).
    pub warnings: Vec<String>,
}

/// One row of `recon_summary`.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// The reconciliation.
    pub reconciliation: String,
    /// The state.
    pub state: String,
    /// Rows in that state.
    pub count: u64,
    /// Amount in EUR, as exact decimal text.
    pub amount: Option<String>,
    /// Quantity (units, or devices).
    pub quantity: Option<i64>,
}

/// The files of each table a reconciliation reads.
pub type Inputs = BTreeMap<String, Vec<PathBuf>>;

/// Reads `files` of `table` lazily.
fn scan(table: &str, files: Option<&Vec<PathBuf>>) -> Result<LazyFrame, Error> {
    let files = files.filter(|f| !f.is_empty()).ok_or_else(|| Error::MissingTable {
        table: table.to_string(),
    })?;
    let paths = files
        .iter()
        .map(|p| PlRefPath::try_from_path(p))
        .collect::<PolarsResult<Vec<_>>>()
        .map_err(|source| Error::Query { name: "scan", source })?;
    // The partition is known: no Hive parsing of `run_date=` from the paths.
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    };
    LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)
        .map_err(|source| Error::Query { name: "scan", source })
}

/// The `status_categories` table.
pub fn status_categories() -> PolarsResult<DataFrame> {
    let (status, category): (Vec<&str>, Vec<&str>) = STATUS_CATEGORIES
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .map(|(s, c)| (s.trim(), c.trim()))
        .unzip();
    DataFrame::new(
        status.len(),
        vec![
            Column::new("status".into(), status),
            Column::new("category".into(), category),
        ],
    )
}

/// The reconciliations to run for `selected` (`None`: all): the selected ones and what they
/// read, in [`RECONCILIATIONS`] order.
fn plan(selected: Option<&[String]>) -> Vec<&'static Reconciliation> {
    let Some(selected) = selected else {
        return RECONCILIATIONS.iter().collect();
    };
    let mut needed: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
    for r in RECONCILIATIONS.iter().rev() {
        if needed.contains(r.name) {
            needed.extend(r.reads.iter().copied());
        }
    }
    RECONCILIATIONS.iter().filter(|r| needed.contains(r.name)).collect()
}

/// Runs the job's reconciliations (its `reconciliations`, or all) on the day's `inputs`,
/// writing each selected result into `out` (laid out like the lake).
pub fn reconcile(job: &Job, inputs: &Inputs, out: &Path) -> Result<ReconcileReport, Error> {
    let run_date = job.as_of;
    let params = Params::new(job.as_of, &job.time, job.settings.stuck_after_days);
    let params = &params;
    let selected = job.settings.reconciliations.as_deref();
    let mut tables: BTreeMap<String, LazyFrame> = BTreeMap::new();
    for t in INPUTS {
        tables.insert(t.to_string(), scan(t, inputs.get(*t))?);
    }
    let categories = status_categories().map_err(|source| Error::Query {
        name: "status_categories",
        source,
    })?;
    let mut report = ReconcileReport::default();
    report.warnings.extend(unknown_statuses(&tables, &categories)?);
    tables.insert("status_categories".into(), categories.lazy());

    for r in plan(selected) {
        let mut ctx = SQLContext::new();
        for (name, lf) in &tables {
            ctx.register(name, lf.clone());
        }
        let query = |source| Error::Query { name: r.name, source };
        let plan = ctx.execute(&params.bind(r.sql)).map_err(query)?;
        // The streaming engine runs joins and group-bys in morsels on every core and holds
        // far less than the in-memory engine; a published result streams into its file.
        let result = if selected.is_none_or(|s| s.iter().any(|n| n == r.name)) {
            let path = out.join(layout::part_path(r.name, run_date, 0));
            let rows = parquet::sink(&path, plan).map_err(query)?;
            report.rows.insert(r.name.to_string(), rows);
            scan(r.name, Some(&vec![path]))?
        } else {
            plan.collect_with_engine(Engine::Streaming)
                // One plan, one in-memory sink: always a single frame.
                .map(|result| result.unwrap_single().lazy())
                .map_err(query)?
        };
        if r.name == "recon_summary" {
            let frame = result.clone().collect().map_err(query)?;
            report.summary = summary_rows(&frame).map_err(query)?;
        }
        tables.insert(r.name.to_string(), result);
    }
    Ok(report)
}

/// Status values of the histories that the category file does not map (counted IN_PROGRESS).
fn unknown_statuses(tables: &BTreeMap<String, LazyFrame>, categories: &DataFrame) -> Result<Vec<String>, Error> {
    let query = |source| Error::Query {
        name: "status_categories",
        source,
    };
    let Some(history) = tables.get("expedition_status_history") else {
        return Ok(Vec::new());
    };
    let statuses = history
        .clone()
        .select([col("status")])
        .group_by([col("status")])
        .agg([len().alias("n")])
        .collect()
        .map_err(query)?;
    let known: BTreeSet<String> = categories
        .column("status")
        .and_then(|c| c.str().cloned())
        .map_err(query)?
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    let names = statuses
        .column("status")
        .and_then(|c| c.str().cloned())
        .map_err(query)?;
    let counts = statuses
        .column("n")
        .and_then(|c| c.cast(&DataType::UInt64))
        .and_then(|c| c.u64().cloned())
        .map_err(query)?;
    let mut unknown: Vec<(String, u64)> = names
        .iter()
        .zip(counts.iter())
        .filter_map(|(s, n)| match s {
            Some(s) if !known.contains(s) => Some((s.to_string(), n.unwrap_or(0))),
            _ => None,
        })
        .collect();
    unknown.sort();
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let total: u64 = unknown.iter().map(|(_, n)| n).sum();
    let list = unknown
        .iter()
        .map(|(s, n)| format!("{s} ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(vec![format!(
        "{} status values ({total} statuses) are not in sql/status_categories.csv and count as IN_PROGRESS: {list}",
        unknown.len()
    )])
}

fn summary_rows(frame: &DataFrame) -> PolarsResult<Vec<SummaryRow>> {
    let text = |c: &str| -> PolarsResult<Vec<Option<String>>> {
        Ok(frame
            .column(c)?
            .cast(&DataType::String)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let recon = text("reconciliation")?;
    let state = text("state")?;
    let amount = text("amount")?;
    let count = frame.column("count")?.cast(&DataType::UInt64)?;
    let quantity = frame.column("quantity")?.cast(&DataType::Int64)?;
    let count = count.u64()?;
    let quantity = quantity.i64()?;
    Ok((0..frame.height())
        .map(|i| SummaryRow {
            reconciliation: recon[i].clone().unwrap_or_default(),
            state: state[i].clone().unwrap_or_default(),
            count: count.get(i).unwrap_or(0),
            amount: amount[i].clone(),
            quantity: quantity.get(i),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_category_file_maps_all_89_status_values_as_the_design_says() {
        let df = status_categories().unwrap();
        assert_eq!(df.height(), 89);
        let cat = |s: &str| {
            let statuses = df.column("status").unwrap().str().unwrap().clone();
            let i = statuses.iter().position(|v| v == Some(s)).unwrap();
            df.column("category")
                .unwrap()
                .str()
                .unwrap()
                .get(i)
                .unwrap()
                .to_string()
        };
        assert_eq!(cat("DELIVERED_IN_DELIVERY_POINT"), "DELIVERED");
        assert_eq!(cat("NOT_DELIVERED"), "RETURNED");
        assert_eq!(cat("EXPIRED"), "CANCELLED");
        assert_eq!(cat("NOT_SENT"), "INCIDENCE");
        assert_eq!(cat("IN_TRANSIT"), "IN_PROGRESS");
        let by: BTreeMap<String, usize> =
            df.column("category")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .fold(BTreeMap::new(), |mut m, c| {
                    *m.entry(c.unwrap().to_string()).or_default() += 1;
                    m
                });
        assert_eq!(by["DELIVERED"], 3);
        assert_eq!(by["RETURNED"], 4);
        assert_eq!(by["CANCELLED"], 4);
        assert_eq!(by["INCIDENCE"], 11);
        assert_eq!(by["IN_PROGRESS"], 89 - 22);
    }

    #[test]
    fn as_of_is_the_end_of_the_day_in_the_source_zone() {
        let p = Params::new(NaiveDate::from_ymd_opt(2025, 6, 30).unwrap(), &TimeParser::default(), 7);
        // Madrid is UTC+2 in summer: the day ends at 22:00 UTC.
        assert!(
            p.bind(":as_of").contains("2025-06-30 22:00:00.000000+0000"),
            "{}",
            p.bind(":as_of")
        );
        assert_eq!(p.bind("INTERVAL ':stuck_after_days days'"), "INTERVAL '7 days'");
    }
}
