//! Publish: a run's package into the lake as Delta Lake tables, a day at a time.
//!
//! ```text
//!  staged ──upload──▶ uploaded ──claim──▶ claimed ──replace each table──▶ committed ──▶ recorded
//!    │                  │                   │                                │
//!    │ local files:     │ data files under  │ _claims/{n} created with      │ _runs/{run_id}.json
//!    │ nothing in the   │ new names in the  │ PutMode::Create, n = the      │ written once: the
//!    │ lake changed     │ table folders; no │ day's last claim when the run │ tables' versions
//!    ▼                  ▼ version names them▼ started + 1                   ▼
//! ```
//! * A **claim** fences runs of a day: a run whose claim number is taken (another run of the
//!   day claimed since this one started) loses ([`Error::RunAlreadyCommitted`], exit 6) before
//!   touching any table, and deletes only the files it uploaded itself.
//! * Each table's day is replaced in **one Delta transaction** carrying the claim number; a
//!   table whose day carries a newer claim was replaced by a later run, and this run loses
//!   rather than publish over it ([`delta`]). Every table is always at a committed version;
//!   the transactions are independent, so a run commits several tables at once.
//! * A run killed anywhere leaves files no version names (removed by `opslake vacuum` after
//!   the retention) and maybe some tables replaced: its re-run claims the next number and
//!   replaces them all. Nothing needs recovering, and no run deletes a file it did not write.
//! * Replaced files stay until `opslake vacuum` (retention 7 days by default), so readers of
//!   an older version keep working ("the lake as of yesterday's run").

pub mod delta;
pub mod layout;
pub mod parquet;
pub mod stats;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use delta::{PartitionFile, Replaced};
pub use store::Lake;

/// Publishing failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The output URL is not usable.
    #[error("bad output {url:?}: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// An object store operation failed.
    #[error("cannot {op} {path} in the lake: {source}; the previous committed run stays visible")]
    Store {
        /// The operation.
        op: &'static str,
        /// The object path.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A local file of the package could not be read or written.
    #[error("cannot read or write {path}: {source}")]
    Local {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another run committed the same day after this run started.
    #[error(
        "another run ({other}) committed {run_date} after this run started, so this run published \
         nothing; re-run to replace it"
    )]
    RunAlreadyCommitted {
        /// The day.
        run_date: NaiveDate,
        /// The run that won, if known.
        other: String,
    },
    /// A record, claim or share in the lake is not what opslake writes.
    #[error("unreadable {path}: {why}")]
    BadRecord {
        /// Its path.
        path: String,
        /// Why.
        why: String,
    },
    /// A Parquet file of the package has no readable footer.
    #[error(transparent)]
    Stats(#[from] stats::StatsError),
    /// A table operation failed.
    #[error(transparent)]
    Table(Box<delta::Error>),
}

impl From<delta::Error> for Error {
    fn from(e: delta::Error) -> Self {
        match e {
            delta::Error::Superseded { run_date, found, .. } => Error::RunAlreadyCommitted {
                run_date,
                other: format!("claim {found}"),
            },
            other => Error::Table(Box::new(other)),
        }
    }
}

impl Error {
    fn store(op: &'static str, path: &str, source: object_store::Error) -> Self {
        Error::Store {
            op,
            path: path.to_string(),
            source,
        }
    }
}

/// A run's output before it is published: local files laid out like the lake.
#[derive(Clone, Debug)]
pub struct Package {
    /// The run.
    pub run_id: String,
    /// The day.
    pub run_date: NaiveDate,
    /// The local folder.
    pub dir: PathBuf,
    /// Whether `dir` is inside a local lake (files are moved, not copied, into place).
    pub in_place: bool,
    /// The day's last claim when the run started.
    pub base: u64,
}

/// A point of the commit protocol where tests can crash or stall the process, through
/// `OPSLAKE_TEST_HOOK=point=crash`, `point=sleep:MILLIS` or `point=wait:PATH` (until the file
/// exists, at most ten minutes; comma-separated). Points:
/// `uploaded` (before the claim), `claimed` (before the first table), `committing` (after the
/// first table committed, others under way), `committed` (before the record). Unset in
/// production: no effect.
pub fn test_hook(point: &str) {
    let Ok(spec) = std::env::var("OPSLAKE_TEST_HOOK") else {
        return;
    };
    for item in spec.split(',') {
        match item.split_once('=') {
            Some((p, "crash")) if p == point => {
                tracing::error!(point, "OPSLAKE_TEST_HOOK: crashing");
                std::process::abort();
            }
            Some((p, action)) if p == point => {
                if let Some(ms) = action.strip_prefix("sleep:").and_then(|m| m.parse().ok()) {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                if let Some(path) = action.strip_prefix("wait:") {
                    for _ in 0..6000 {
                        if Path::new(path).exists() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Packages older than this are a dead run's debris (local lakes keep them under `_staging`).
const STAGING_DEBRIS_HOURS: i64 = 24;

/// The day's last claim number (0: none).
pub async fn latest_claim(lake: &Lake, run_date: NaiveDate) -> Result<u64, Error> {
    Ok(lake
        .list(&layout::claims_prefix(run_date))
        .await?
        .iter()
        .filter_map(|m| m.location.filename().and_then(layout::claim_number))
        .max()
        .unwrap_or(0))
}

/// Creates a run's package: in the lake's `_staging/` when the lake is local, else in
/// `work_dir` (default: the system's temporary folder). Call before normalizing: it records
/// the claim the run is based on.
pub async fn create_package(
    lake: &Lake,
    run_id: &str,
    run_date: NaiveDate,
    work_dir: Option<&Path>,
) -> Result<Package, Error> {
    clean_staging(lake).await?;
    let base = latest_claim(lake, run_date).await?;
    let (dir, in_place) = match (&lake.local_root, work_dir) {
        (_, Some(w)) => (w.join(run_id), false),
        (Some(root), None) => (root.join(layout::staging_prefix(run_id)), true),
        (None, None) => (std::env::temp_dir().join("opslake").join(run_id), false),
    };
    std::fs::create_dir_all(&dir).map_err(|source| Error::Local {
        path: dir.clone(),
        source,
    })?;
    Ok(Package {
        run_id: run_id.to_string(),
        run_date,
        dir,
        in_place,
        base,
    })
}

/// Deletes packages of a local lake left by runs that died more than a day ago.
async fn clean_staging(lake: &Lake) -> Result<(), Error> {
    let Some(root) = &lake.local_root else {
        return Ok(());
    };
    let Ok(entries) = std::fs::read_dir(root.join(layout::STAGING)) else {
        return Ok(());
    };
    let limit = std::time::Duration::from_secs(STAGING_DEBRIS_HOURS as u64 * 3600);
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > limit);
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Discards a package that will not be published (a failed run): its local files.
pub async fn discard(package: &Package) -> Result<(), Error> {
    if package.dir.exists() {
        std::fs::remove_dir_all(&package.dir).map_err(|source| Error::Local {
            path: package.dir.clone(),
            source,
        })?;
    }
    Ok(())
}

/// One table of a package to publish: its local files.
#[derive(Clone, Debug)]
pub struct TableUpload {
    /// The table.
    pub table: String,
    /// Its files in the package.
    pub files: Vec<PathBuf>,
}

/// A table's files in the lake, not yet committed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Uploaded {
    /// The table.
    pub table: String,
    /// The files' Add actions (paths relative to the table's folder, with statistics).
    pub adds: Vec<deltalake::kernel::Add>,
    /// The files' columns.
    pub fields: Vec<deltalake::kernel::StructField>,
}

impl Uploaded {
    /// The files' paths from the lake's root.
    pub fn paths(&self) -> Vec<String> {
        self.adds
            .iter()
            .map(|a| layout::table_file(&self.table, &a.path))
            .collect()
    }

    /// Rows in the files, from their statistics.
    pub fn rows(&self) -> u64 {
        self.adds
            .iter()
            .filter_map(|a| a.stats.as_deref())
            .filter_map(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .filter_map(|v| v["numRecords"].as_u64())
            .sum()
    }
}

/// Puts a package's table files into the lake under new names (a move inside a local lake,
/// an upload elsewhere), each with its Add action; nothing is visible to Delta readers yet.
pub async fn upload(lake: &Lake, package: &Package, table: &TableUpload) -> Result<Uploaded, Error> {
    let mut done = Uploaded {
        table: table.table.clone(),
        adds: Vec::with_capacity(table.files.len()),
        fields: Vec::new(),
    };
    match put_files(lake, package, table, &mut done).await {
        Ok(()) => Ok(done),
        Err(e) => {
            // The table's files put before the one that failed.
            remove_uploaded(lake, std::slice::from_ref(&done)).await;
            Err(e)
        }
    }
}

/// Puts `table`'s files into the lake one after another, each added to `done` once put.
async fn put_files(lake: &Lake, package: &Package, table: &TableUpload, done: &mut Uploaded) -> Result<(), Error> {
    for (n, file) in table.files.iter().enumerate() {
        let metadata = stats::read_footer(file)?;
        if done.fields.is_empty() {
            done.fields = delta::fields_of(&metadata).map_err(|why| Error::BadRecord {
                path: file.display().to_string(),
                why,
            })?;
        }
        let size = std::fs::metadata(file)
            .map_err(|source| Error::Local {
                path: file.clone(),
                source,
            })?
            .len();
        let relative = layout::data_file(package.run_date, n, &package.run_id);
        let target = layout::table_file(&table.table, &relative);
        match (&lake.local_root, package.in_place) {
            (Some(root), true) => {
                let from = file.strip_prefix(root).map_err(|_| Error::BadRecord {
                    path: file.display().to_string(),
                    why: "a staged file outside the lake".into(),
                })?;
                lake.rename_new(&from.to_string_lossy(), &target).await?;
            }
            _ => {
                lake.upload(file, &target).await?;
            }
        }
        done.adds.push(stats::add_for_file(
            &relative,
            size,
            &metadata,
            delta::partition_values(package.run_date),
        ));
    }
    Ok(())
}

/// How many tables a run uploads at once: each file is at least one round trip to the store,
/// and a day has ~30 tables.
const UPLOADS_AT_ONCE: usize = 8;

/// Puts the package's `tables` into the lake, up to [`UPLOADS_AT_ONCE`] tables at a time
/// (nothing is visible to Delta readers yet), in the order of `tables`. On a failure the
/// uploads under way finish, no further one starts, every file put is removed and the first
/// error is returned.
pub async fn upload_all(lake: &Lake, package: &Package, tables: &[TableUpload]) -> Result<Vec<Uploaded>, Error> {
    let (done, failed) = at_most(UPLOADS_AT_ONCE, tables, |t| upload(lake, package, t)).await;
    match failed {
        Some(e) => {
            remove_uploaded(lake, &done).await;
            Err(e)
        }
        None => Ok(done),
    }
}

/// Runs `task` on each of `items`, up to `at_once` at a time, interleaved on the calling
/// task (each is mostly waiting on the store). After a failure the tasks under way finish and
/// no further one starts. Returns what succeeded, in the order of `items`, and the first error.
async fn at_most<'i, I, T, Fut>(at_once: usize, items: &'i [I], task: impl Fn(&'i I) -> Fut) -> (Vec<T>, Option<Error>)
where
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    use futures::stream::{FuturesUnordered, StreamExt};

    let mut waiting = items.iter().enumerate();
    let mut running = FuturesUnordered::new();
    let mut done = Vec::with_capacity(items.len());
    let mut failed = None;
    loop {
        while failed.is_none() && running.len() < at_once {
            let Some((i, item)) = waiting.next() else { break };
            let started = task(item);
            running.push(async move { (i, started.await) });
        }
        let Some((i, result)) = running.next().await else { break };
        match result {
            Ok(t) => done.push((i, t)),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    done.sort_by_key(|(i, _)| *i);
    (done.into_iter().map(|(_, t)| t).collect(), failed)
}

/// Deletes files this run uploaded and will not commit (it lost, or failed).
pub async fn remove_uploaded(lake: &Lake, uploaded: &[Uploaded]) {
    for u in uploaded {
        for path in u.paths() {
            if let Err(e) = lake.delete(&path).await {
                tracing::warn!(error = %e, path, "could not remove a file of this run that was not committed");
            }
        }
    }
}

/// What kind of commit a claim is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// A run of every source for the whole day.
    Day,
    /// A run of some sources (their tables only).
    Sources,
    /// The shares of every shard of a day, committed together.
    Shards,
    /// The reconciliations of a committed day.
    Reconcile,
}

/// A claim: the day's commit `number`, taken by a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The number (1 for the day's first commit).
    pub number: u64,
    /// The run.
    pub run_id: String,
    /// What it commits.
    pub kind: ClaimKind,
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// For shards: the runs whose shares it commits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<String>,
}

/// Takes the day's claim `claim.number`; `Ok(false)` when another run has it.
pub async fn take_claim(lake: &Lake, run_date: NaiveDate, claim: &Claim) -> Result<bool, Error> {
    let bytes = serde_json::to_vec_pretty(claim).unwrap_or_default();
    lake.create(&layout::claim_path(run_date, claim.number), bytes).await
}

/// The day's claims, by number.
pub async fn claims(lake: &Lake, run_date: NaiveDate) -> Result<Vec<Claim>, Error> {
    let mut out = Vec::new();
    for meta in lake.list(&layout::claims_prefix(run_date)).await? {
        let path = meta.location.to_string();
        if let Some(bytes) = lake.read(&path).await? {
            let claim: Claim = serde_json::from_slice(&bytes).map_err(|e| Error::BadRecord {
                path: path.clone(),
                why: e.to_string(),
            })?;
            out.push(claim);
        }
    }
    out.sort_by_key(|c| c.number);
    Ok(out)
}

/// Claims the day for `package`'s run: commit number `base + 1`. Another run that claimed
/// the day since this run started wins; this run then deletes its uploaded files and loses.
pub async fn claim_day(lake: &Lake, package: &Package, kind: ClaimKind, uploaded: &[Uploaded]) -> Result<Claim, Error> {
    test_hook("uploaded");
    let claim = Claim {
        number: package.base + 1,
        run_id: package.run_id.clone(),
        kind,
        at: Utc::now(),
        shares: Vec::new(),
    };
    if take_claim(lake, package.run_date, &claim).await? {
        return Ok(claim);
    }
    remove_uploaded(lake, uploaded).await;
    let other = claims(lake, package.run_date)
        .await
        .ok()
        .and_then(|c| c.into_iter().find(|c| c.number == claim.number))
        .map_or_else(|| "unknown".to_string(), |c| c.run_id);
    Err(Error::RunAlreadyCommitted {
        run_date: package.run_date,
        other,
    })
}

/// How many tables a run commits at once: each commit is a few sequential round trips to
/// the store, and a day's ~30 commits one after another were most of the publish stage.
const COMMITS_AT_ONCE: usize = 8;

/// Replaces each uploaded table's day under `claim`, up to [`COMMITS_AT_ONCE`] tables at a
/// time; returns the version of each table. A table replaced by a later claim fails the run
/// ([`Error::RunAlreadyCommitted`]): the commits under way finish, no further table is
/// started.
pub async fn commit(
    lake: &Lake,
    run_date: NaiveDate,
    claim: &Claim,
    tables: &[Uploaded],
) -> Result<BTreeMap<String, Replaced>, Error> {
    test_hook("claimed");
    let first = std::cell::Cell::new(true);
    let (done, failed) = at_most(COMMITS_AT_ONCE, tables, |uploaded| {
        let first = &first;
        async move {
            let replaced = commit_table(lake, run_date, claim, uploaded).await?;
            if first.replace(false) {
                test_hook("committing");
            }
            Ok(replaced)
        }
    })
    .await;
    if let Some(e) = failed {
        return Err(e);
    }
    test_hook("committed");
    Ok(done.into_iter().collect())
}

/// Replaces one uploaded table's day under `claim`.
async fn commit_table(
    lake: &Lake,
    run_date: NaiveDate,
    claim: &Claim,
    uploaded: &Uploaded,
) -> Result<(String, Replaced), Error> {
    let location = lake.table_location(&uploaded.table)?;
    let mut table = delta::open_or_create(&location, &uploaded.fields).await?;
    let replaced = delta::replace(
        &mut table,
        run_date,
        claim.number as i64,
        &uploaded.fields,
        uploaded.adds.clone(),
        &claim.run_id,
    )
    .await?;
    Ok((uploaded.table.clone(), replaced))
}

/// Writes a small JSON object; with `create`, only where none exists (`Ok(false)` then).
pub async fn write_json<T: Serialize>(lake: &Lake, path: &str, value: &T, create: bool) -> Result<bool, Error> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::BadRecord {
        path: path.to_string(),
        why: e.to_string(),
    })?;
    if create {
        lake.create(path, bytes).await
    } else {
        lake.write(path, bytes).await.map(|()| true)
    }
}

/// Reads a small JSON object; `None` when it does not exist.
pub async fn read_json<T: serde::de::DeserializeOwned>(lake: &Lake, path: &str) -> Result<Option<T>, Error> {
    match lake.read(path).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::BadRecord {
            path: path.to_string(),
            why: e.to_string(),
        }),
    }
}

/// The run records of a day (raw JSON objects), oldest path first.
pub async fn day_records(lake: &Lake, run_date: NaiveDate) -> Result<Vec<(String, bytes::Bytes)>, Error> {
    let mut out = Vec::new();
    for meta in lake.list(&layout::runs_partition(run_date)).await? {
        let path = meta.location.to_string();
        if !layout::is_record(&path) {
            continue;
        }
        if let Some(bytes) = lake.read(&path).await? {
            out.push((path, bytes));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Every day with run records, in order.
pub async fn days(lake: &Lake) -> Result<Vec<NaiveDate>, Error> {
    let mut days: Vec<NaiveDate> = lake
        .folders(layout::RUNS)
        .await?
        .iter()
        .filter_map(|d| layout::parse_partition(d))
        .collect();
    days.sort();
    Ok(days)
}

/// The files of `table`'s day at its latest version (or `version`), as paths from the lake's
/// root; `None` when the table does not exist.
pub async fn table_files(
    lake: &Lake,
    table: &str,
    run_date: NaiveDate,
    version: Option<u64>,
) -> Result<Option<(u64, Vec<String>)>, Error> {
    let location = lake.table_location(table)?;
    Ok(delta::partition_files(&location, run_date, version)
        .await?
        .map(|(v, files)| (v, files.iter().map(|f| layout::table_file(table, &f.path)).collect())))
}

/// Local paths of lake files: the files themselves in a local lake, else downloaded under
/// `dir` (laid out like the lake).
pub async fn fetch(lake: &Lake, paths: &[String], dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut local = Vec::with_capacity(paths.len());
    for path in paths {
        match &lake.local_root {
            Some(root) => local.push(root.join(path)),
            None => {
                let target = dir.join(path);
                lake.download(path, &target).await?;
                local.push(target);
            }
        }
    }
    Ok(local)
}

/// Every table of the lake (folders holding a Delta log).
pub async fn tables(lake: &Lake) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for folder in lake.folders("").await? {
        if [layout::RUNS, layout::STAGING].contains(&folder.as_str()) {
            continue;
        }
        if !lake.list(&layout::delta_log(&folder)).await?.is_empty() {
            out.push(folder);
        }
    }
    out.sort();
    Ok(out)
}

/// Vacuums every table: deletes files replaced, or never committed, more than `retention`
/// ago. Returns the files deleted (or that would be, with `dry_run`) per table.
pub async fn vacuum(
    lake: &Lake,
    retention: chrono::Duration,
    dry_run: bool,
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let mut out = BTreeMap::new();
    for table in tables(lake).await? {
        let location = lake.table_location(&table)?;
        let done = delta::vacuum(&location, retention, dry_run).await?;
        out.insert(table, done.files);
    }
    Ok(out)
}
