//! Reconcile: the rules operations and finance act on, as SQL files in `sql/` run on polars
//! SQL over the normalized tables (DESIGN.md section 4).
//!
//! ```text
//!  package tables ──▶ recon_order_fulfilment ──▶ recon_stock_coverage
//!  (scanned lazily)        │                 └─▶ recon_installation_readiness
//!                          └─ recon_remaining_payments ──▶ recon_summary
//!                             recon_device_terms ──────────┘
//!  previous committed day's recon_exceptions ──▶ recon_exceptions (with today's four)
//! ```
//! Each reconciliation is one `sql/recon_<name>.sql` plus one line in [`RECONCILIATIONS`], run
//! in that order; every result is registered as a table for the ones after it and written
//! into the package, so the `recon_*` tables are committed with the tables they come from.
//! Parameters are spliced in as literals (polars SQL has no bind parameters): `:as_of` is the
//! end of the `as_of` day in the source time zone as a UTC timestamp, `:stuck_after_days` a
//! whole number, `:run_date` the run date as a `DATE` and `:run_day` its days since
//! 1970-01-01. Each reconciliation runs in a fresh `SQLContext`; its file may stage steps
//! (`CREATE TABLE t AS ...;` before the final query: written to a temporary Parquet file and
//! read back as `t`, so the steps' memory does not add up). An input a day may lack
//! ([`OPTIONAL_INPUTS`]: a source not every deployment has, the first day's missing
//! yesterday) is registered empty with the columns the SQL reads.

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
    /// The input its rows come from (a row per row of it, or fewer), if one: on a day when
    /// that input has no rows the SQL runs on empty inputs and reads nothing else.
    pub rows_from: Option<&'static str>,
}

/// Every reconciliation, in the order they run (a later one may read an earlier one).
pub const RECONCILIATIONS: &[Reconciliation] = &[
    Reconciliation {
        name: "recon_order_fulfilment",
        sql: include_str!("../../sql/recon_order_fulfilment.sql"),
        reads: &[],
        rows_from: None,
    },
    Reconciliation {
        name: "recon_stock_coverage",
        sql: include_str!("../../sql/recon_stock_coverage.sql"),
        reads: &["recon_order_fulfilment"],
        rows_from: None,
    },
    Reconciliation {
        name: "recon_remaining_payments",
        sql: include_str!("../../sql/recon_remaining_payments.sql"),
        reads: &[],
        rows_from: None,
    },
    Reconciliation {
        name: "recon_installation_readiness",
        sql: include_str!("../../sql/recon_installation_readiness.sql"),
        reads: &["recon_order_fulfilment"],
        // A day of appointments without orders (an appointments-only job) has nothing to
        // reconcile: scanning its appointments was most of the stage's time.
        rows_from: Some("orders"),
    },
    Reconciliation {
        name: "recon_device_terms",
        sql: include_str!("../../sql/recon_device_terms.sql"),
        reads: &[],
        rows_from: None,
    },
    Reconciliation {
        name: "recon_exceptions",
        sql: include_str!("../../sql/recon_exceptions.sql"),
        reads: &[
            "recon_order_fulfilment",
            "recon_stock_coverage",
            "recon_remaining_payments",
            "recon_installation_readiness",
        ],
        rows_from: None,
    },
    Reconciliation {
        name: "recon_summary",
        sql: include_str!("../../sql/recon_summary.sql"),
        reads: &[
            "recon_order_fulfilment",
            "recon_stock_coverage",
            "recon_remaining_payments",
            "recon_installation_readiness",
            "recon_device_terms",
        ],
        rows_from: None,
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
    "products_with_expedition",
];

/// The table `recon_exceptions` ages from one committed day to the next.
pub const EXCEPTIONS: &str = "recon_exceptions";

/// The input name under which the previous committed day's `recon_exceptions` is read.
pub const PREVIOUS_EXCEPTIONS: &str = "previous_exceptions";

/// Column types of the optional inputs' empty stand-ins.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Date,
    Money,
}

/// Inputs a day may lack, with the columns the SQL reads from them: a lake that never had
/// products-with-expedition still reconciles (its comparison column is then null), and the
/// first day has no previous exceptions.
pub const OPTIONAL_INPUTS: &[&str] = &["products_with_expedition", PREVIOUS_EXCEPTIONS];

fn optional_columns(table: &str) -> &'static [(&'static str, Kind)] {
    match table {
        "products_with_expedition" => &[
            ("subscription_device_id", Kind::Text),
            ("expedition_id", Kind::Text),
            ("current_status", Kind::Text),
        ],
        PREVIOUS_EXCEPTIONS => &[
            ("reconciliation", Kind::Text),
            ("key", Kind::Text),
            ("state", Kind::Text),
            ("change", Kind::Text),
            ("first_seen", Kind::Date),
            ("amount", Kind::Money),
        ],
        _ => &[],
    }
}

/// An empty stand-in for an optional input.
fn empty(table: &str) -> PolarsResult<LazyFrame> {
    let columns = optional_columns(table)
        .iter()
        .map(|(name, kind)| {
            let dtype = match kind {
                Kind::Text => DataType::String,
                Kind::Date => DataType::Date,
                Kind::Money => DataType::Decimal(
                    crate::schema::columns::MONEY_PRECISION,
                    crate::schema::columns::MONEY_SCALE,
                ),
            };
            Column::full_null((*name).into(), 0, &dtype)
        })
        .collect();
    Ok(DataFrame::new(0, columns)?.lazy())
}

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

/// Days from 1970-01-01 to `day` (polars' physical `Date`).
fn epoch_day(day: NaiveDate) -> i64 {
    (day - NaiveDate::default()).num_days()
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
        // DATE() parses the text; a CAST of text to a date makes polars print a deprecation
        // notice on stderr, which would break a JSON log stream.
        let run_date = format!("DATE('{}', '%Y-%m-%d')", self.as_of.format("%Y-%m-%d"));
        sql.replace(":as_of", &as_of)
            .replace(":stuck_after_days", &self.stuck_after_days.to_string())
            .replace(":run_date", &run_date)
            .replace(":run_day", &epoch_day(self.as_of).to_string())
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
    /// The top of `recon_exceptions`, when it ran.
    pub exceptions: Option<ExceptionsTop>,
}

/// What the terminal shows of `recon_exceptions`: the morning's work list at a glance.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExceptionsTop {
    /// Rows per change: NEW, OPEN, CHANGED, RESOLVED.
    pub by_change: Vec<(String, u64)>,
    /// The oldest open exceptions (most days open first, then by reconciliation and key):
    /// reconciliation, key, state, days open.
    pub oldest: Vec<(String, String, String, i64)>,
    /// Open exceptions per reconciliation and state, with the money at stake (exact text).
    pub at_stake: Vec<(String, String, u64, Option<String>)>,
}

/// How many of the oldest open exceptions the terminal lists.
pub const OLDEST_SHOWN: usize = 5;

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
    for t in INPUTS.iter().chain([&PREVIOUS_EXCEPTIONS]) {
        let present = inputs.get(*t).is_some_and(|f| !f.is_empty());
        let frame = match present || !OPTIONAL_INPUTS.contains(t) {
            true => scan(t, inputs.get(*t))?,
            false => empty(t).map_err(|source| Error::Query { name: "scan", source })?,
        };
        tables.insert(t.to_string(), frame);
    }
    let categories = status_categories().map_err(|source| Error::Query {
        name: "status_categories",
        source,
    })?;
    let mut report = ReconcileReport::default();
    report.warnings.extend(unknown_statuses(&tables, &categories)?);
    tables.insert("status_categories".into(), categories.lazy());

    for r in plan(selected) {
        let started = std::time::Instant::now();
        // Each rule starts from what the ones before it freed, not on top of it.
        crate::allocator::release_freed();
        let query = |source| Error::Query { name: r.name, source };
        let nothing_to_do = match r.rows_from.and_then(|t| tables.get(t)) {
            Some(from) => collect(from.clone().select([len()]))
                .and_then(|n| n.column("len")?.get(0).map(|v| v.extract::<u64>() == Some(0)))
                .map_err(query)?,
            None => false,
        };
        let mut ctx = SQLContext::new();
        for (name, lf) in &tables {
            // A filter no row passes gives the result's columns and reads no row group (empty
            // in-memory frames instead made polars' streaming engine panic on a null type).
            let lf = if nothing_to_do {
                lf.clone().filter(lit(false))
            } else {
                lf.clone()
            };
            ctx.register(name, lf);
        }
        let steps = tempfile::tempdir_in(out).map_err(|source| Error::Write {
            path: out.to_path_buf(),
            source,
        })?;
        let plan = execute(r.name, &mut ctx, &params.bind(r.sql), steps.path())?;
        // The streaming engine runs joins and group-bys in morsels on every core and holds
        // far less than the in-memory engine; a published result streams into its file.
        let result = if selected.is_none_or(|s| s.iter().any(|n| n == r.name)) {
            let path = out.join(layout::part_path(r.name, run_date, 0));
            let rows = parquet::sink(&path, plan).map_err(query)?;
            report.rows.insert(r.name.to_string(), rows);
            scan(r.name, Some(&vec![path]))?
        } else {
            collect(plan).map(DataFrame::lazy).map_err(query)?
        };
        if r.name == "recon_summary" {
            let frame = collect(result.clone()).map_err(query)?;
            report.summary = summary_rows(&frame).map_err(query)?;
        }
        if r.name == EXCEPTIONS {
            report.exceptions = Some(exceptions_top(&result).map_err(query)?);
        }
        tables.insert(r.name.to_string(), result);
        tracing::debug!(
            reconciliation = r.name,
            rows = report.rows.get(r.name),
            seconds = started.elapsed().as_secs_f64(),
            "reconciliation done"
        );
    }
    Ok(report)
}

/// Runs reconciliation `name`'s SQL: every `CREATE TABLE t AS <query>;` before the last
/// statement is run into a Parquet file under `steps` and read back as `t`, and the memory it
/// freed is handed back, before the next starts (one plan would hold the joins and cached
/// CTEs of all of them at once); the last statement is the result.
fn execute(name: &'static str, ctx: &mut SQLContext, sql: &str, steps: &Path) -> Result<LazyFrame, Error> {
    let query = |source| Error::Query { name, source };
    let statements = statements(sql);
    let Some((last, staged)) = statements.split_last() else {
        return Err(query(PolarsError::ComputeError("the SQL has no statement".into())));
    };
    for statement in staged {
        let Some((table, step)) = staged_table(statement) else {
            let message =
                format!("only the last statement may be a query, the others CREATE TABLE t AS ...: {statement}");
            return Err(query(PolarsError::ComputeError(message.into())));
        };
        let path = steps.join(format!("{table}.parquet"));
        parquet::sink(&path, ctx.execute(step).map_err(query)?).map_err(query)?;
        crate::allocator::release_freed();
        ctx.register(table, scan(table, Some(&vec![path]))?);
    }
    ctx.execute(last).map_err(query)
}

/// The statements of `sql`, split at the semicolons outside comments and quoted text, without
/// the comments; empty statements are dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for line in sql.lines() {
        for (i, c) in line.char_indices() {
            match c {
                '\'' => quoted = !quoted,
                '-' if !quoted && line[i..].starts_with("--") => break,
                ';' if !quoted => {
                    statements.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        current.push('\n');
    }
    statements.push(current);
    statements
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `CREATE TABLE name AS query` split into its name and query.
fn staged_table(statement: &str) -> Option<(&str, &str)> {
    let rest = after_word(statement, "create")?;
    let rest = after_word(rest, "table")?;
    let (name, rest) = rest.split_once(char::is_whitespace)?;
    let query = after_word(rest.trim_start(), "as")?;
    Some((name, query))
}

/// `text` after its first word if that word is `word` (any case).
fn after_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    let rest = &text[word.len()..];
    (head.eq_ignore_ascii_case(word) && rest.starts_with(char::is_whitespace)).then(|| rest.trim_start())
}

/// Runs `plan` on the streaming engine into one frame: the in-memory engine decodes every
/// column it reads whole before it starts (a 1 M-order day's status history: ~150 MB more).
fn collect(plan: LazyFrame) -> PolarsResult<DataFrame> {
    plan.collect_with_engine(Engine::Streaming)
        // One plan, one in-memory sink: always a single frame.
        .map(|result| result.unwrap_single())
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
        .agg([len().alias("n")]);
    let statuses = collect(statuses).map_err(query)?;
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

/// The terminal's view of `recon_exceptions` (three small queries over the table).
fn exceptions_top(exceptions: &LazyFrame) -> PolarsResult<ExceptionsTop> {
    let run = |sql: &str| -> PolarsResult<DataFrame> {
        let mut ctx = SQLContext::new();
        ctx.register("e", exceptions.clone());
        collect(ctx.execute(sql)?)
    };
    let text = |df: &DataFrame, c: &str| -> PolarsResult<Vec<String>> {
        Ok(df
            .column(c)?
            .cast(&DataType::String)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let int = |df: &DataFrame, c: &str| -> PolarsResult<Vec<i64>> {
        Ok(df
            .column(c)?
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect())
    };
    let changes = run("SELECT change, COUNT(*) AS n FROM e GROUP BY change ORDER BY change")?;
    let order = ["NEW", "OPEN", "CHANGED", "RESOLVED"];
    let mut by_change: Vec<(String, u64)> = text(&changes, "change")?
        .into_iter()
        .zip(int(&changes, "n")?)
        .map(|(c, n)| (c, n.max(0) as u64))
        .collect();
    by_change.sort_by_key(|(c, _)| order.iter().position(|o| o == c).unwrap_or(order.len()));
    let oldest = run(&format!(
        "SELECT reconciliation, key, state, days_open FROM e WHERE change <> 'RESOLVED' \
         ORDER BY days_open DESC, reconciliation, key LIMIT {OLDEST_SHOWN}"
    ))?;
    let oldest = rows4(
        text(&oldest, "reconciliation")?,
        text(&oldest, "key")?,
        text(&oldest, "state")?,
        int(&oldest, "days_open")?,
    );
    let stake = run(
        "SELECT reconciliation, state, COUNT(*) AS n, SUM(amount) AS amount FROM e \
         WHERE change <> 'RESOLVED' GROUP BY reconciliation, state ORDER BY reconciliation, state",
    )?;
    let amounts: Vec<Option<String>> = stake
        .column("amount")?
        .cast(&DataType::String)?
        .str()?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect();
    let at_stake = rows4(
        text(&stake, "reconciliation")?,
        text(&stake, "state")?,
        int(&stake, "n")?.into_iter().map(|n| n.max(0) as u64).collect(),
        amounts,
    );
    Ok(ExceptionsTop {
        by_change,
        oldest,
        at_stake,
    })
}

/// Four columns as rows.
fn rows4<A, B, C, D>(a: Vec<A>, b: Vec<B>, c: Vec<C>, d: Vec<D>) -> Vec<(A, B, C, D)> {
    a.into_iter()
        .zip(b)
        .zip(c)
        .zip(d)
        .map(|(((a, b), c), d)| (a, b, c, d))
        .collect()
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
    fn statements_split_at_semicolons_outside_comments_and_quotes() {
        let sql =
            "-- a rule; its comment\nCREATE TABLE t AS\nSELECT ';' AS s -- why; here\nFROM x;\n\nSELECT * FROM t;\n";
        assert_eq!(
            statements(sql),
            vec![
                "CREATE TABLE t AS\nSELECT ';' AS s \nFROM x".to_string(),
                "SELECT * FROM t".to_string()
            ]
        );
        assert_eq!(statements("-- only a comment; nothing else\n"), Vec::<String>::new());
    }

    #[test]
    fn a_staged_table_is_a_create_table_as_with_its_name_and_query() {
        assert_eq!(
            staged_table("create  TABLE chosen\n  As\nWITH a AS (SELECT 1) SELECT * FROM a"),
            Some(("chosen", "WITH a AS (SELECT 1) SELECT * FROM a"))
        );
        assert_eq!(staged_table("SELECT * FROM created"), None);
        assert_eq!(staged_table("CREATE TABLES t AS SELECT 1"), None);
        assert_eq!(staged_table("CREATE TABLE t SELECT 1"), None);
    }

    #[test]
    fn staged_steps_are_read_back_by_the_statements_after_them() -> Result<(), Box<dyn std::error::Error>> {
        let steps = tempfile::tempdir()?;
        let mut ctx = SQLContext::new();
        let x = DataFrame::new(3, vec![Column::new("v".into(), vec![1i64, 2, 3])])?;
        ctx.register("x", x.lazy());
        let sql = "CREATE TABLE doubled AS SELECT v * 2 AS v FROM x;\nSELECT SUM(v) AS total FROM doubled";

        let result = collect(execute("test", &mut ctx, sql, steps.path())?)?;

        assert_eq!(result.column("total")?.i64()?.get(0), Some(12));
        assert!(steps.path().join("doubled.parquet").exists());
        let bad = execute("test", &mut ctx, "SELECT 1; SELECT 2", steps.path());
        assert!(matches!(bad, Err(Error::Query { name: "test", .. })));
        Ok(())
    }

    #[test]
    fn a_rule_reads_its_rows_from_one_of_its_inputs() {
        // A misspelt name would never find its input, and the rule would always run in full.
        for r in RECONCILIATIONS {
            if let Some(from) = r.rows_from {
                assert!(INPUTS.contains(&from), "{}: rows_from {from} is not an input", r.name);
                assert!(r.sql.contains(from), "{}: its SQL does not read {from}", r.name);
            }
        }
        assert!(RECONCILIATIONS.iter().any(|r| r.rows_from.is_some()));
    }

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
