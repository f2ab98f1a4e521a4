//! Publish: a run's package into the lake, atomically, a day at a time.
//!
//! ```text
//!   staged ──claim──▶ claimed ──promote──▶ promoted ──manifest──▶ committed
//!     │                 │                                            │
//!     │ crash: debris   │ crash: the next opslake run rolls the      │ visible to every
//!     │ under _staging, │ commit forward from its staging (its       │ reader; the next
//!     │ deleted once    │ claim holds the whole manifest)            │ run of the day
//!     │ another run     │                                            │ replaces it
//!     ▼ commits the day ▼                                            ▼
//! ```
//! * **staged**: every file is under `_staging/run_date=D/{run_id}/`, mirroring the layout.
//!   Nothing a reader sees has changed.
//! * **claimed**: `_runs/run_date=D/_commits/{n}.json` is created with a conditional create,
//!   where `n` is one more than the day's last commit *when the run started*. If another run
//!   committed the day meanwhile, the create fails and this run loses
//!   ([`Error::RunAlreadyCommitted`]): two runs of a day can never both commit.
//! * **promoted**: staged parts are moved into `{table}/run_date=D/` (a rename on a local
//!   disk, a server-side copy on object stores) and parts of the previous run that this run
//!   did not write are deleted, so a re-run replaces the day's partition, never duplicates it.
//! * **committed**: the manifest `_runs/run_date=D/{run_id}.json` is written last.

pub mod layout;
pub mod manifest;
pub mod parquet;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use manifest::RunManifest;
pub use store::Lake;

use crate::job::Shard;

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
    /// Another run committed the same day after this one started.
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
    /// No run of the day was committed yet.
    #[error("no committed run for {run_date} in {url}: run `opslake run --as-of {run_date}` first")]
    NothingCommitted {
        /// The day.
        run_date: NaiveDate,
        /// The lake.
        url: String,
    },
    /// A manifest or claim in the lake is not valid JSON.
    #[error("unreadable {path}: {why}")]
    BadManifest {
        /// Its path.
        path: String,
        /// Why.
        why: String,
    },
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

/// A run's output before it is committed: local files laid out like the lake.
#[derive(Clone, Debug)]
pub struct Package {
    /// The run.
    pub run_id: String,
    /// The day.
    pub run_date: NaiveDate,
    /// The local folder.
    pub dir: PathBuf,
    /// Whether `dir` already is the run's staging folder in a local lake (no upload needed).
    pub in_place: bool,
    /// The commit scope's last commit when the run started.
    pub base: u64,
    /// The shard of the day the run publishes, if any (its own commit scope).
    pub shard: Option<Shard>,
}

/// Marks a staging folder with the commit its run is based on, so that other runs know when
/// it can no longer commit (and its files are debris).
#[derive(Debug, Serialize, Deserialize)]
struct StagingMarker {
    run_id: String,
    base: u64,
    started_at: chrono::DateTime<Utc>,
    #[serde(default)]
    shard: Option<Shard>,
}

const MARKER: &str = "_run.json";

/// A claim: the commit entry of the day, holding everything needed to finish the commit.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    commit: u64,
    run_id: String,
    /// The shard committed (`None`: the whole day).
    #[serde(default)]
    shard: Option<Shard>,
    /// Raw API captures, relative to the lake root (`raw/{source}/run_date=D/...`).
    #[serde(default)]
    raw: Vec<String>,
    /// Part file names per table, as staged.
    tables: BTreeMap<String, Vec<String>>,
    /// Tables of the previous commit that this one removes.
    drop_tables: Vec<String>,
    manifest: RunManifest,
}

/// A point of the commit protocol where tests can crash or stall the process, through
/// `OPSLAKE_TEST_HOOK=point=crash` or `point=sleep:MILLIS` (comma-separated). Points:
/// `staged` (before the claim), `claimed` (before promoting), `promoting` (after the first
/// table is promoted), `promoted` (before the manifest). Unset in production: no effect.
fn test_hook(point: &str) {
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
            }
            _ => {}
        }
    }
}

/// The staging prefix of a run.
fn staging(run_date: NaiveDate, run_id: &str) -> String {
    format!("{}/{}/{run_id}", layout::STAGING, layout::partition(run_date))
}

/// The last claimed commit number of a day's scope (the whole day, or a shard); 0 when none.
pub async fn latest_commit(lake: &Lake, run_date: NaiveDate, shard: Option<Shard>) -> Result<u64, Error> {
    let prefix = layout::commits_prefix(run_date, shard);
    let claims = lake.list(&prefix).await?;
    Ok(claims
        .iter()
        // Only the scope's own claims, not those of the shards below it.
        .filter(|m| {
            m.location
                .as_ref()
                .strip_prefix(&prefix)
                .is_some_and(|r| r.matches('/').count() == 1)
        })
        .filter_map(|m| m.location.filename().and_then(layout::commit_number))
        .max()
        .unwrap_or(0))
}

/// Creates a run's package: in the lake's staging folder when the lake is local, else in
/// `work_dir`. Call before normalizing: it records the commit the run is based on.
pub async fn create_package(
    lake: &Lake,
    run_id: &str,
    run_date: NaiveDate,
    work_dir: Option<&Path>,
    shard: Option<Shard>,
) -> Result<Package, Error> {
    recover(lake, run_date).await?;
    clean_all_staging(lake).await?;
    let base = latest_commit(lake, run_date, shard).await?;
    let prefix = staging(run_date, run_id);
    let (dir, in_place) = match (&lake.local_root, work_dir) {
        (_, Some(w)) => (w.join(run_id), false),
        (Some(root), None) => (root.join(&prefix), true),
        (None, None) => (std::env::temp_dir().join("opslake").join(run_id), false),
    };
    std::fs::create_dir_all(&dir).map_err(|source| Error::Local {
        path: dir.clone(),
        source,
    })?;
    let marker = StagingMarker {
        run_id: run_id.to_string(),
        base,
        started_at: Utc::now(),
        shard,
    };
    lake.write(&format!("{prefix}/{MARKER}"), json(&marker)).await?;
    Ok(Package {
        run_id: run_id.to_string(),
        run_date,
        dir,
        in_place,
        base,
        shard,
    })
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

/// The tables of a package and their part file names.
fn package_tables(package: &Package) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let mut tables = BTreeMap::new();
    let io = |path: &Path, source| Error::Local {
        path: path.to_path_buf(),
        source,
    };
    let partition = layout::partition(package.run_date);
    for entry in std::fs::read_dir(&package.dir).map_err(|e| io(&package.dir, e))? {
        let entry = entry.map_err(|e| io(&package.dir, e))?;
        let table = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path().join(&partition);
        if !dir.is_dir() {
            continue;
        }
        let mut parts: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| io(&dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| layout::part_number(n).is_some())
            .collect();
        parts.sort_by_key(|n| layout::part_number(n));
        tables.insert(table, parts);
    }
    Ok(tables)
}

/// The raw API captures of a package: file paths relative to the package (`raw/...`).
fn package_raw(package: &Package) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![package.dir.join(layout::RAW)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry
                .map_err(|source| Error::Local {
                    path: dir.clone(),
                    source,
                })?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(&package.dir) {
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Publishes `package` and commits it. `replace_day`: the commit is the whole day (tables of
/// the previous commit that the package lacks are removed); otherwise it adds or replaces only
/// the package's tables (a re-run of one stage). Fills the manifest's commit and tables.
pub async fn publish(
    lake: &Lake,
    package: &Package,
    manifest: &mut RunManifest,
    replace_day: bool,
) -> Result<(), Error> {
    let run_date = package.run_date;
    let prefix = staging(run_date, &package.run_id);
    // Another run committed the day since this one started: it can no longer commit (and
    // its staging may already be gone as debris).
    let latest = latest_commit(lake, run_date, package.shard).await?;
    if latest > package.base {
        return Err(lose(lake, package, latest).await);
    }
    let tables = match package_tables(package) {
        Ok(t) => t,
        Err(Error::Local { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            let latest = latest_commit(lake, run_date, package.shard).await?;
            return Err(lose(lake, package, latest).await);
        }
        Err(e) => return Err(e),
    };
    let raw = package_raw(package)?;
    if !package.in_place {
        for (table, parts) in &tables {
            for part in parts {
                let rel = format!("{}/{part}", layout::table_partition(table, run_date));
                lake.upload(&package.dir.join(&rel), &format!("{prefix}/{rel}")).await?;
            }
        }
        for rel in &raw {
            lake.upload(&package.dir.join(rel), &format!("{prefix}/{rel}")).await?;
        }
    }

    let previous = committed(lake, run_date).await?.into_iter().next_back();
    let drop_tables = match (&previous, replace_day) {
        (Some(p), true) => p.tables.keys().filter(|t| !tables.contains_key(*t)).cloned().collect(),
        _ => Vec::new(),
    };
    if let (Some(p), false) = (&previous, replace_day) {
        for (name, t) in &p.tables {
            if !tables.contains_key(name) {
                manifest.tables.insert(name.clone(), t.clone());
            }
        }
    }
    // The manifest lists every table the commit publishes, so that the next commit of the day
    // knows what it replaces (callers usually fill rows and sizes; paths are enough).
    for (table, parts) in &tables {
        manifest
            .tables
            .entry(table.clone())
            .or_insert_with(|| manifest::TableManifest {
                rows: 0,
                parts: parts
                    .iter()
                    .map(|p| manifest::PartManifest {
                        path: format!("{}/{p}", layout::table_partition(table, run_date)),
                        ..Default::default()
                    })
                    .collect(),
            });
    }
    test_hook("staged");
    let commit = package.base + 1;
    manifest.commit = commit;
    manifest.committed_at = Some(Utc::now());
    let claim = Claim {
        commit,
        run_id: package.run_id.clone(),
        shard: package.shard,
        raw,
        tables,
        drop_tables,
        manifest: manifest.clone(),
    };
    if !lake
        .create(&layout::commit_path(run_date, package.shard, commit), json(&claim))
        .await?
    {
        return Err(lose(lake, package, commit).await);
    }
    finish(lake, run_date, &claim).await?;
    if !package.in_place && package.dir.exists() {
        std::fs::remove_dir_all(&package.dir).map_err(|source| Error::Local {
            path: package.dir.clone(),
            source,
        })?;
    }
    clean_staging(lake, run_date).await
}

/// The error of a run that lost the day to the run of commit `winner`, after removing its
/// staged files.
async fn lose(lake: &Lake, package: &Package, winner: u64) -> Error {
    let other = read_claim(lake, &layout::commit_path(package.run_date, package.shard, winner))
        .await
        .map(|c| c.run_id)
        .unwrap_or_else(|_| "unknown".into());
    if let Err(e) = discard(lake, package).await {
        tracing::warn!(error = %e, "could not remove the losing run's staged files");
    }
    Error::RunAlreadyCommitted {
        run_date: package.run_date,
        other,
    }
}

async fn read_claim(lake: &Lake, path: &str) -> Result<Claim, Error> {
    let path = path.to_string();
    let bytes = lake.read(&path).await?.ok_or_else(|| Error::BadManifest {
        path: path.clone(),
        why: "missing".into(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::BadManifest {
        path,
        why: e.to_string(),
    })
}

/// Moves a commit's raw captures into place; in each folder it wrote (a source's day, or a
/// tenant of it), earlier captures it did not write are removed.
async fn promote_raw(lake: &Lake, prefix: &str, claim: &Claim) -> Result<(), Error> {
    let mut folders = BTreeSet::new();
    for rel in &claim.raw {
        match lake.rename(&format!("{prefix}/{rel}"), rel).await {
            Ok(())
            | Err(Error::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        if let Some((folder, _)) = rel.rsplit_once('/') {
            folders.insert(folder.to_string());
        }
    }
    let written: BTreeSet<&str> = claim.raw.iter().map(String::as_str).collect();
    for folder in folders {
        for old in lake.list(&folder).await? {
            let path = old.location.as_ref();
            // Only this folder's own files, not those of tenant folders below it.
            let direct = path.strip_prefix(&folder).is_some_and(|r| r.matches('/').count() == 1);
            if direct && !written.contains(path) {
                lake.delete(path).await?;
            }
        }
    }
    Ok(())
}

/// Whether a part that a commit of `shard` did not write belongs to another shard of the same
/// sharding (and stays); a whole-day commit replaces everything, a shard commit also removes
/// parts of an unsharded run or of another number of shards.
fn other_shards_part(shard: Option<Shard>, name: &str) -> bool {
    match (shard, layout::part_number(name).and_then(layout::shard_of_part)) {
        (Some(mine), Some(theirs)) => theirs.count == mine.count && theirs.index != mine.index,
        _ => false,
    }
}

/// Promotes a claimed commit's staged parts and writes its manifest (idempotent: a commit
/// interrupted anywhere after its claim can be finished again).
async fn finish(lake: &Lake, run_date: NaiveDate, claim: &Claim) -> Result<(), Error> {
    test_hook("claimed");
    let prefix = staging(run_date, &claim.run_id);
    for (i, (table, parts)) in claim.tables.iter().enumerate() {
        if i == 1 {
            test_hook("promoting");
        }
        let partition = layout::table_partition(table, run_date);
        for part in parts {
            let staged = format!("{prefix}/{partition}/{part}");
            let target = format!("{partition}/{part}");
            match lake.rename(&staged, &target).await {
                Ok(()) => {}
                // Already promoted by an earlier attempt.
                Err(Error::Store {
                    source: object_store::Error::NotFound { .. },
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        for old in lake.list(&partition).await? {
            let name = old.location.filename().unwrap_or_default().to_string();
            if !parts.contains(&name) && !other_shards_part(claim.shard, &name) {
                lake.delete(old.location.as_ref()).await?;
            }
        }
    }
    for table in &claim.drop_tables {
        lake.delete_prefix(&layout::table_partition(table, run_date)).await?;
    }
    promote_raw(lake, &prefix, claim).await?;
    test_hook("promoted");
    lake.write(&layout::manifest_path(run_date, &claim.run_id), json(&claim.manifest))
        .await?;
    lake.delete_prefix(&prefix).await
}

/// Finishes every commit of the day that was claimed but not completed (a crashed run).
pub async fn recover(lake: &Lake, run_date: NaiveDate) -> Result<Vec<String>, Error> {
    let mut recovered = Vec::new();
    let mut claims: Vec<(String, u64)> = lake
        .list(&layout::all_commits_prefix(run_date))
        .await?
        .iter()
        .filter_map(|m| {
            let n = m.location.filename().and_then(layout::commit_number)?;
            Some((m.location.to_string(), n))
        })
        .collect();
    claims.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    for (path, n) in claims {
        let claim = read_claim(lake, &path).await?;
        if lake
            .read(&layout::manifest_path(run_date, &claim.run_id))
            .await?
            .is_none()
        {
            tracing::warn!(run_id = %claim.run_id, commit = n, "finishing a commit interrupted by a crash");
            finish(lake, run_date, &claim).await?;
            recovered.push(claim.run_id);
        }
    }
    Ok(recovered)
}

/// Deletes the staging folders of every day that are debris: runs based on an older commit
/// than the day's last (they can no longer commit), and any older than a day.
pub async fn clean_all_staging(lake: &Lake) -> Result<(), Error> {
    for day in lake.folders(layout::STAGING).await? {
        let Some(date) = day
            .strip_prefix("run_date=")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            continue;
        };
        clean_staging(lake, date).await?;
    }
    Ok(())
}

/// Deletes staging folders of the day whose runs can no longer commit (based on an older
/// commit of their scope than its last), and those of runs started more than a day ago.
async fn clean_staging(lake: &Lake, run_date: NaiveDate) -> Result<(), Error> {
    let day = format!("{}/{}", layout::STAGING, layout::partition(run_date));
    let old = |t: chrono::DateTime<Utc>| Utc::now() - t > chrono::Duration::hours(24);
    for run in lake.folders(&day).await? {
        let prefix = format!("{day}/{run}");
        let doomed = match lake.read(&format!("{prefix}/{MARKER}")).await? {
            Some(b) => match serde_json::from_slice::<StagingMarker>(&b) {
                Ok(m) => m.base < latest_commit(lake, run_date, m.shard).await? || old(m.started_at),
                Err(_) => true,
            },
            None => lake.list(&prefix).await?.iter().all(|o| old(o.last_modified)),
        };
        if doomed {
            lake.delete_prefix(&prefix).await?;
        }
    }
    Ok(())
}

/// The committed runs of a day, oldest first.
pub async fn committed(lake: &Lake, run_date: NaiveDate) -> Result<Vec<RunManifest>, Error> {
    let mut runs = Vec::new();
    for meta in lake.list(&layout::runs_partition(run_date)).await? {
        let path = meta.location.as_ref();
        if path.contains("/_commits/") || !path.ends_with(".json") {
            continue;
        }
        if let Some(bytes) = lake.read(path).await? {
            let m: RunManifest = serde_json::from_slice(&bytes).map_err(|e| Error::BadManifest {
                path: path.to_string(),
                why: e.to_string(),
            })?;
            runs.push(m);
        }
    }
    runs.sort_by_key(|m| m.commit);
    Ok(runs)
}

/// Every committed run of the lake, by day then commit.
pub async fn all_runs(lake: &Lake) -> Result<Vec<RunManifest>, Error> {
    let mut runs = Vec::new();
    let mut days: Vec<NaiveDate> = lake
        .folders(layout::RUNS)
        .await?
        .iter()
        .filter_map(|d| {
            d.strip_prefix("run_date=")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        })
        .collect();
    days.sort();
    for day in days {
        runs.extend(committed(lake, day).await?);
    }
    Ok(runs)
}

/// Downloads the committed parts of `tables` (as the manifest lists them) into `dir`, laid out
/// like the lake.
pub async fn fetch_tables(lake: &Lake, manifest: &RunManifest, tables: &[&str], dir: &Path) -> Result<(), Error> {
    for t in tables {
        if let Some(tm) = manifest.tables.get(*t) {
            for part in &tm.parts {
                lake.download(&part.path, &dir.join(&part.path)).await?;
            }
        }
    }
    Ok(())
}

/// Downloads the day's raw captures (`raw/{source}/run_date=D/...`) under `dir`, laid out as
/// an export folder the normalizer reads; returns how many files.
pub async fn fetch_raw(lake: &Lake, run_date: NaiveDate, dir: &Path) -> Result<usize, Error> {
    let mut n = 0;
    for source in lake.folders(layout::RAW).await? {
        let prefix = layout::raw_prefix(&source, run_date);
        for meta in lake.list(&prefix).await? {
            let rel = meta
                .location
                .as_ref()
                .strip_prefix(&format!("{}/", layout::RAW))
                .unwrap_or_default()
                .to_string();
            lake.download(meta.location.as_ref(), &dir.join(rel)).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Discards a package that will not be published (a failed run): local files and staging.
pub async fn discard(lake: &Lake, package: &Package) -> Result<(), Error> {
    lake.delete_prefix(&staging(package.run_date, &package.run_id)).await?;
    if !package.in_place && package.dir.exists() {
        std::fs::remove_dir_all(&package.dir).map_err(|source| Error::Local {
            path: package.dir.clone(),
            source,
        })?;
    }
    Ok(())
}
