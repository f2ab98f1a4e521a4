//! The run: one [`Run`] built at the start of a command, and the commands as lists of stages.
//!
//! ```text
//!  JobArgs ──resolve──▶ Job ──Run::start──▶ Run { id, job, lake, sources, apis, runtime }
//!                                              │
//!   run:        extract? ─▶ normalize ─▶ reconcile? ─▶ [captures ─▶ raw_output] ─▶ publish ─▶ record
//!   run --shard: (extract?) normalize ─▶ upload share ─▶ (the last shard) publish every share ─▶ reconcile
//!   extract:    extract ─▶ captures ─▶ raw_output ─▶ record
//!   reconcile:  the day's committed tables ─▶ reconcile ─▶ publish (recon_* only) ─▶ record
//!   replay:     raw_output ─▶ normalize ─▶ reconcile ─▶ publish ─▶ record
//! ```
//! Raw captures never enter the lake: they are written to a local scratch folder, normalized
//! from there, and kept at `raw_output` (its own URL and credentials) when the job sets one;
//! the run record names them (`extract.raw`), so replays and the next night find them
//! ([`captures`]). Ids that no item names come from [`ids`].
//! Everything that can be checked before work is checked in [`Run::start`] (settings, names,
//! API sections, the lake's URL), so a bad setting exits 2 before any file is read. Each stage
//! is a method of the run that returns its report, under one tracing span; the run record is
//! built once from the reports ([`record`]) and written once, after the tables are committed.

pub mod captures;
pub mod ids;
pub mod manifest;
pub mod record;
mod shards;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use rand::Rng;
use tracing::info;

use crate::error::Result;
use crate::extract::http::{ApiSpec, ExtractReport};
use crate::job::{self, Job};
use crate::normalize::{self, NormalizeReport, TableReport};
use crate::publish::{self, ClaimKind, Lake, Package, TableUpload, Uploaded, layout};
use crate::reconcile::{self, ReconcileReport};
use crate::source::{Api, Source};
pub use manifest::RunManifest;
pub use shards::ShardOutcome;

/// One run of a command: what every stage needs, built once at the start.
pub struct Run {
    /// The run's id: its UTC start time and a random suffix (`20261129T105600Z-3f9a`).
    pub id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The resolved job (settings, run date, time zone, personal-data policy).
    pub job: Job,
    /// The lake, opened once.
    pub lake: Lake,
    /// The sources the run reads, in registry order.
    pub sources: Vec<&'static dyn Source>,
    /// Every registered source (a per-id source may take its ids from one the run skips).
    pub registry: &'static [&'static dyn Source],
    /// The APIs to extract from; `None`: the run reads export files.
    pub apis: Option<BTreeMap<Api, ApiSpec>>,
    /// Where raw API captures are kept (`raw_output`), opened once; `None`: not kept.
    pub raw_output: Option<Lake>,
    /// The async runtime of the object store and HTTP calls.
    pub runtime: tokio::runtime::Runtime,
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// The run record (written to the lake unless the run only staged a shard's share).
    pub manifest: RunManifest,
    /// The normalize stage's report (with the rejects).
    pub normalize: NormalizeReport,
    /// The reconcile stage's report (with the summary).
    pub reconcile: ReconcileReport,
    /// For a shard: what became of its share.
    pub shard: Option<ShardOutcome>,
}

/// A new run id: the UTC start time and a random suffix (`20261129T105600Z-3f9a`).
pub fn new_run_id() -> String {
    format!(
        "{}-{:04x}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        rand::rng().random::<u16>()
    )
}

impl Run {
    /// Checks what can be checked before any work (names of sources, tables and
    /// reconciliations, the API sections, the lake's URL), opens the lake once and starts the
    /// runtime. `registry` is every source ([`crate::sources::SOURCES`]).
    pub fn start(job: Job, registry: &'static [&'static dyn Source]) -> Result<Run> {
        check_development_key(&job)?;
        let s = &job.settings;
        let names: Vec<&str> = registry.iter().map(|s| s.name()).collect();
        job::check_names("source", s.sources.as_deref(), &names)?;
        let tables: Vec<&str> = registry
            .iter()
            .flat_map(|s| s.tables().into_iter().map(|t| t.name))
            .collect();
        job::check_names("table", s.tables.as_deref(), &tables)?;
        let recons: Vec<&str> = reconcile::RECONCILIATIONS.iter().map(|r| r.name).collect();
        job::check_names("reconciliation", s.reconciliations.as_deref(), &recons)?;
        let sources = match &s.sources {
            None => registry.to_vec(),
            Some(list) => registry
                .iter()
                .copied()
                .filter(|src| list.iter().any(|n| n == src.name()))
                .collect(),
        };
        let apis = match s.api.is_empty() {
            true => None,
            false => Some(
                crate::extract::http::resolve_apis(&job, registry, &|k| std::env::var(k).ok())
                    .map_err(|e| crate::Error::Extract(e.into()))?,
            ),
        };
        let lake = open_lake(&s.output)?;
        let raw_output = match &s.raw_output {
            None => None,
            Some(url) => Some(open_raw_output(url, &lake)?),
        };
        limit_threads(job.threads);
        let runtime = runtime(job.threads)?;
        Ok(Run {
            id: new_run_id(),
            started_at: Utc::now(),
            job,
            lake,
            sources,
            registry,
            apis,
            raw_output,
            runtime,
        })
    }

    /// The local folder for scratch files (`work_dir`, else the system's temporary folder).
    fn scratch(&self, what: &str) -> PathBuf {
        self.job
            .settings
            .work_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("opslake-{what}-{}", self.id))
    }

    /// The run date.
    pub fn as_of(&self) -> NaiveDate {
        self.job.as_of
    }

    /// Whether the run reads every source and writes every table: a run of some sources, or
    /// of some tables (`--tables`), replaces only the tables it writes.
    pub fn whole_day(&self) -> bool {
        self.sources.len() == self.registry.len()
            && self.sources.iter().all(|s| {
                let tables = s.tables();
                tables.iter().all(|t| self.job.writes(t.name, tables[0].name))
            })
    }

    /// Starts the run's package, recording the claim it is based on.
    fn package(&self) -> Result<Package> {
        Ok(self.runtime.block_on(publish::create_package(
            &self.lake,
            &self.id,
            self.as_of(),
            self.job.settings.work_dir.as_deref(),
        ))?)
    }

    /// `result`, having discarded `package` when it failed: a failed run leaves nothing staged.
    fn or_discard<T, E: Into<crate::Error>>(&self, result: std::result::Result<T, E>, package: &Package) -> Result<T> {
        result.map_err(|e| {
            let _ = self.runtime.block_on(publish::discard(package));
            e.into()
        })
    }

    /// Extract stage: pulls the run's sources from the APIs into a local scratch folder
    /// (never the package: raw captures do not go into the lake), carrying forward what the
    /// base run's captures hold and cannot have changed.
    fn extract(&self, apis: &BTreeMap<Api, ApiSpec>) -> Result<(ExtractReport, captures::Scratch)> {
        let raw = captures::Scratch(self.scratch("raw"));
        let base = match &self.raw_output {
            Some(_) => captures::find_base(self, self.as_of())?,
            None => None,
        };
        let reason = captures::full_reason(self, base.as_ref());
        // The base's captures of the per-id sources and of the sources that name their ids.
        let base_dir = captures::Scratch(self.scratch("base"));
        let mut have_base = false;
        if let (Some(store), Some(capture)) = (
            &self.raw_output,
            base.as_ref()
                .and_then(|b| b.extract.as_ref())
                .and_then(|e| e.raw.as_ref()),
        ) {
            let mut needed: Vec<&str> = Vec::new();
            for s in &self.sources {
                if let crate::source::Paging::PerId(ids) = s.endpoint().paging {
                    needed.extend([s.name(), ids.from]);
                }
            }
            captures::download(self, store, capture, &needed, &base_dir.0)?;
            have_base = true;
        }
        let extra = ids::extra_ids(self, apis, have_base)?;
        let target = crate::extract::http::Target {
            raw_root: &raw.0,
            run_date: self.as_of(),
            shard: self.job.settings.shard,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            base: have_base.then_some(base_dir.0.as_path()),
            full: reason.is_some(),
            extra: &extra,
            max_failed_ratio: self.job.settings.max_reject_ratio,
        };
        let extracted = tracing::info_span!("extract").in_scope(|| {
            self.runtime.block_on(crate::extract::http::extract(
                apis,
                &self.sources,
                self.registry,
                &target,
            ))
        });
        let mut report = extracted.map_err(crate::extract::Error::from)?;
        if self.raw_output.is_none() {
            tracing::warn!("raw_output is not set: no raw captures are kept, and every night is a full pull");
        }
        info!(
            refresh = if reason.is_some() { "full" } else { "incremental" },
            reason = reason.as_deref().unwrap_or(""),
            per_id_calls = report.per_id_calls(),
            carried = report.sources.iter().map(|s| s.carried).sum::<u64>(),
            "extracted"
        );
        captures::record_refresh(&mut report, self, base.as_ref(), reason);
        Ok((report, raw))
    }

    /// Keeps the captures in `dir` at `raw_output` (`None`: the job keeps none).
    fn keep_captures(&self, dir: &Path) -> Result<Option<crate::extract::http::RawCapture>> {
        match &self.raw_output {
            Some(store) => Ok(Some(captures::upload(self, store, dir)?)),
            None => Ok(None),
        }
    }

    /// `result`, having removed the run's captures (`kept`) from `raw_output` when it failed:
    /// a run that commits nothing leaves no captures that no record names.
    fn or_discard_captures<T>(&self, result: Result<T>, kept: Option<&crate::extract::http::RawCapture>) -> Result<T> {
        if let (Err(_), Some(store), Some(capture)) = (&result, &self.raw_output, kept) {
            captures::discard(self, store, capture);
        }
        result
    }

    /// Normalize stage: the export files under `input` into `dir`.
    fn normalize(&self, input: &Path, dir: &Path) -> Result<NormalizeReport> {
        let t = Instant::now();
        let report =
            tracing::info_span!("normalize").in_scope(|| normalize::normalize(&self.job, &self.sources, input, dir))?;
        let rows: u64 = report.sources.iter().map(|s| s.rows_written).sum();
        info!(
            stage = "normalize",
            rows,
            rejects = report.sources.iter().map(|s| s.rejects).sum::<u64>(),
            seconds = t.elapsed().as_secs_f64(),
            "stage done"
        );
        Ok(report)
    }

    /// Reconcile stage: the day's `inputs` into `out`.
    fn reconcile(&self, inputs: &reconcile::Inputs, out: &Path) -> Result<ReconcileReport> {
        let t = Instant::now();
        let report = tracing::info_span!("reconcile").in_scope(|| reconcile::reconcile(&self.job, inputs, out))?;
        let rows: u64 = report.rows.values().sum();
        info!(
            stage = "reconcile",
            rows,
            seconds = t.elapsed().as_secs_f64(),
            "stage done"
        );
        Ok(report)
    }

    /// Puts the package's `tables` into the lake (not yet committed); on failure, removes what
    /// it put.
    fn upload(&self, package: &Package, tables: &[TableUpload]) -> Result<Vec<Uploaded>> {
        Ok(self
            .runtime
            .block_on(publish::upload_all(&self.lake, package, tables))?)
    }

    /// Publish stage: claims the day (`kind`) and replaces each uploaded table's day; fills
    /// the record's commit and tables.
    fn publish(
        &self,
        package: &Package,
        kind: ClaimKind,
        uploaded: Vec<Uploaded>,
        manifest: &mut RunManifest,
    ) -> Result<()> {
        let published = tracing::info_span!("publish").in_scope(|| {
            self.runtime.block_on(async {
                let claim = publish::claim_day(&self.lake, package, kind, &uploaded).await?;
                let versions = publish::commit(&self.lake, self.as_of(), &claim, &uploaded).await?;
                Ok::<_, publish::Error>((claim, versions))
            })
        });
        let (claim, versions) = self.or_discard(published, package)?;
        manifest.commit = claim.number;
        record::set_versions(manifest, &uploaded, &versions);
        Ok(())
    }

    /// Writes the run record, once (at its `run_id`'s path: a record is never replaced).
    fn write_record(&self, manifest: &mut RunManifest) -> Result<()> {
        manifest.committed_at = Some(Utc::now());
        let path = layout::record_path(self.as_of(), &manifest.run_id);
        if !self
            .runtime
            .block_on(publish::write_json(&self.lake, &path, manifest, true))?
        {
            return Err(publish::Error::BadRecord {
                path,
                why: "a record of this run already exists".into(),
            }
            .into());
        }
        Ok(())
    }

    /// The `recon_exceptions` of the previous committed day (the latest day before the run
    /// date whose run records name that table), local (fetched under `dir`); nothing on the
    /// first day. Found through the records and the table's log, never by listing folders,
    /// and only that one day is read: the ageing carries forward, no history is scanned.
    fn previous_exceptions(&self, dir: &Path) -> Result<reconcile::Inputs> {
        self.runtime.block_on(async {
            let mut inputs = reconcile::Inputs::new();
            let days = publish::days(&self.lake).await?;
            for day in days.into_iter().rev().filter(|d| *d < self.as_of()) {
                let records = record::day(&self.lake, day).await?;
                if !records.iter().any(|r| r.tables.contains_key(reconcile::EXCEPTIONS)) {
                    continue;
                }
                if let Some((_, files)) = publish::table_files(&self.lake, reconcile::EXCEPTIONS, day, None).await? {
                    if !files.is_empty() {
                        let local = publish::fetch(&self.lake, &files, dir).await?;
                        inputs.insert(reconcile::PREVIOUS_EXCEPTIONS.to_string(), local);
                    }
                }
                break;
            }
            Ok(inputs)
        })
    }

    /// The day's latest committed files of `tables`, local (fetched under `dir` from a remote
    /// lake); a table with no files for the day is left out.
    fn committed_inputs(&self, tables: &[&str], dir: &Path) -> Result<(reconcile::Inputs, BTreeMap<String, u64>)> {
        self.runtime.block_on(async {
            let mut inputs = reconcile::Inputs::new();
            let mut versions = BTreeMap::new();
            for table in tables {
                if let Some((version, files)) = publish::table_files(&self.lake, table, self.as_of(), None).await? {
                    if !files.is_empty() {
                        inputs.insert(table.to_string(), publish::fetch(&self.lake, &files, dir).await?);
                        versions.insert(table.to_string(), version);
                    }
                }
            }
            Ok((inputs, versions))
        })
    }
}

/// The package's tables of a report, to upload.
fn uploads(package: &Package, tables: &BTreeMap<String, TableReport>) -> Vec<TableUpload> {
    tables
        .iter()
        .map(|(name, t)| {
            let dir = package.dir.join(layout::table_partition(name, package.run_date));
            TableUpload {
                table: name.clone(),
                files: t.files.iter().map(|f| dir.join(&f.name)).collect(),
            }
        })
        .collect()
}

/// The package's tables as reconciliation inputs.
fn package_inputs(package: &Package, tables: &BTreeMap<String, TableReport>) -> reconcile::Inputs {
    uploads(package, tables)
        .into_iter()
        .map(|u| (u.table, u.files))
        .collect()
}

/// The public development key hashes invented data only: the embedded samples (an API job
/// reads no export file), or what a job file declares as test data (`allow_development_key`).
/// Any other input without a key is refused before any work.
pub fn check_development_key(job: &Job) -> std::result::Result<(), job::Error> {
    let s = &job.settings;
    let samples = || s.api.is_empty() && crate::extract::files::is_samples(&s.input);
    if job.development_key && !s.allow_development_key && !samples() {
        return Err(job::Error::MissingPiiKey);
    }
    Ok(())
}

/// Opens `raw_output` with its own credentials; it may not be the lake or inside it (raw
/// captures hold personal data), a configuration error like an unusable URL.
fn open_raw_output(url: &str, lake: &Lake) -> Result<Lake> {
    let bad = |why: String| job::Error::Value {
        setting: "raw_output".into(),
        value: crate::extract::http::client::redact_text(url),
        why,
    };
    // Checked before the store is opened: opening a local folder creates it.
    let local = |u: &str| -> Option<PathBuf> {
        let path = match u.split_once("://") {
            None => PathBuf::from(u),
            Some(("file", _)) => url::Url::parse(u).ok()?.to_file_path().ok()?,
            Some(_) => return None,
        };
        let abs = std::env::current_dir().ok()?.join(path);
        // Lexically: the folder may not exist yet.
        let mut clean = PathBuf::new();
        for c in abs.components() {
            match c {
                std::path::Component::ParentDir => {
                    clean.pop();
                }
                std::path::Component::CurDir => {}
                other => clean.push(other),
            }
        }
        Some(clean)
    };
    let inside = match (local(url), &lake.local_root) {
        (Some(r), Some(l)) => r.starts_with(l) || l.canonicalize().is_ok_and(|l| r.starts_with(l)),
        (Some(_), None) | (None, Some(_)) => false,
        (None, None) => {
            let norm = |u: &str| u.trim_end_matches('/').to_string();
            let (r, l) = (norm(url), norm(&lake.url));
            r == l || r.starts_with(&format!("{l}/"))
        }
    };
    if inside {
        return Err(bad(format!(
            "it is inside the lake ({}): raw captures hold personal data and never go into the analysts' lake; \
             give them a location of their own",
            lake.url
        ))
        .into());
    }
    let vars: Vec<(String, String)> = std::env::vars().collect();
    crate::extract::raw::store::open(url, &vars).map_err(|e| match e {
        publish::Error::BadUrl { why, .. } => bad(why).into(),
        other => crate::Error::from(other),
    })
}

/// Opens the lake at `url`; a URL that cannot be a lake is a configuration error.
pub fn open_lake(url: &str) -> Result<Lake> {
    Lake::open(url).map_err(|e| match e {
        publish::Error::BadUrl { url, why } => job::Error::Value {
            setting: "output".into(),
            value: url,
            why,
        }
        .into(),
        other => other.into(),
    })
}

/// `run`: every stage, committing the day (or the run's sources' tables, or a shard's share).
/// With `raw` (a replay), the export files are the raw captures there and no API is called.
pub fn run(run: &Run, raw: Option<&Path>) -> Result<RunReport> {
    run_stages(run, raw, None)
}

/// [`run`], with the extract report of the captures a replay reads (`replayed`).
fn run_stages(run: &Run, raw: Option<&Path>, replayed: Option<ExtractReport>) -> Result<RunReport> {
    let apis = run.apis.as_ref().filter(|_| raw.is_none());
    let files = raw.unwrap_or(&run.job.settings.input).to_path_buf();
    info!(run_id = run.id, as_of = %run.as_of(), input = %files.display(), apis = apis.is_some(), output = %run.lake.url, "run started");
    if apis.is_none() && !files.is_dir() {
        return Err(crate::extract::Error::MissingInput { path: files }.into());
    }
    let package = run.package()?;
    let mut stages = Vec::new();

    // Extract: an API run fetches into a scratch folder; export files are read as they are.
    let t = Instant::now();
    let (input, mut extracted, scratch) = match apis {
        Some(apis) => {
            let (report, scratch) = run.or_discard(run.extract(apis), &package)?;
            (scratch.0.clone(), Some(report), Some(scratch))
        }
        None => (files, replayed, None),
    };
    stages.push(record::stage(
        "extract",
        t,
        extracted
            .as_ref()
            .map_or(0, |r| r.sources.iter().map(|s| s.responses).sum()),
    ));

    let t = Instant::now();
    let mut normalized = run.or_discard(run.normalize(&input, &package.dir), &package)?;
    stages.push(record::stage(
        "normalize",
        t,
        normalized.sources.iter().map(|s| s.rows_written).sum(),
    ));

    // The captures are kept (and the fee figure taken) before anything is published, so the
    // record that commits the day names them; a run that then fails removes them again.
    let mut kept = None;
    if let Some(report) = extracted.as_mut() {
        report.journey_devices_without_fees = ids::journey_devices_without_fees(&package.dir, run.as_of(), &normalized);
        if let Some(s) = &scratch {
            report.raw = run.or_discard(run.keep_captures(&s.0), &package)?;
            kept = report.raw.clone();
        }
    }
    drop(scratch);

    if let Some(shard) = run.job.settings.shard {
        let staged = shards::stage_share(run, &package, shard, normalized, extracted, stages);
        return run.or_discard_captures(staged, kept.as_ref());
    }

    // A run of some sources or tables replaces only those tables (and its sources' rejects):
    // the reconciliations, which need every table, wait for a complete day (`opslake reconcile`).
    let t = Instant::now();
    let every = run.whole_day();
    let reconciled = if every {
        let mut inputs = package_inputs(&package, &normalized.tables);
        let previous = package.dir.join("_previous");
        inputs.extend(run.or_discard(run.previous_exceptions(&previous), &package)?);
        let reconciled = run.or_discard(run.reconcile(&inputs, &package.dir), &package)?;
        let _ = std::fs::remove_dir_all(&previous);
        reconciled
    } else {
        let merged = run.or_discard(merge_rejects(run, &package, &normalized), &package)?;
        normalized.tables.insert("_rejects".into(), merged);
        ReconcileReport {
            warnings: vec![
                "reconciliations skipped: this run reads some sources or writes some tables only (the day's other tables are kept); \
                 run `opslake reconcile` once the day is complete"
                    .into(),
            ],
            ..Default::default()
        }
    };
    stages.push(record::stage("reconcile", t, reconciled.rows.values().sum()));

    let t = Instant::now();
    let mut tables = normalized.tables.clone();
    tables.extend(record::recon_tables(&package.dir, run.as_of(), &reconciled));
    let mut manifest = record::build(run, &normalized, stages);
    manifest.kind = if every { "run" } else { "sources" }.into();
    manifest.input = input.display().to_string();
    manifest.warnings.extend(reconciled.warnings.iter().cloned());
    if let Some(report) = &extracted {
        // How many journey devices have no fee record: finance's NO_FEES_RECORD, in the record.
        if let Some(n) = report.journey_devices_without_fees.filter(|n| *n > 0) {
            manifest.warnings.push(format!(
                "{n} journey devices have no fee record in customer_devices: their fees_outstanding is unknown \
                 (name their customers in an id source: ids, ids_file or ids_table of [api.customer_care])"
            ));
        }
        manifest.warnings.extend(report.warnings.iter().cloned());
    }
    manifest.extract = extracted;
    let published = (|| {
        let uploaded = run.or_discard(run.upload(&package, &uploads(&package, &tables)), &package)?;
        let kind = if every { ClaimKind::Day } else { ClaimKind::Sources };
        run.publish(&package, kind, uploaded, &mut manifest)?;
        manifest.stages.push(record::stage(
            "publish",
            t,
            manifest.tables.values().map(|t| t.rows).sum(),
        ));
        run.write_record(&mut manifest)
    })();
    run.or_discard_captures(published, kept.as_ref())?;
    let _ = run.runtime.block_on(publish::discard(&package));
    info!(
        stage = "publish",
        commit = manifest.commit,
        seconds = t.elapsed().as_secs_f64(),
        "run committed"
    );
    Ok(RunReport {
        manifest,
        normalize: normalized,
        reconcile: reconciled,
        shard: None,
    })
}

/// The day's `_rejects` for a run of some sources: the committed rejects of the other sources
/// and this run's, in one new file (the table keeps one file a day).
fn merge_rejects(run: &Run, package: &Package, normalized: &NormalizeReport) -> Result<TableReport> {
    let mine: Vec<String> = run.sources.iter().map(|s| s.name().to_string()).collect();
    let fetched = package.dir.join("_committed");
    let (committed, _) = run.committed_inputs(&["_rejects"], &fetched)?;
    let dir = package.dir.join(layout::table_partition("_rejects", run.as_of()));
    let local: Vec<PathBuf> = normalized
        .tables
        .get("_rejects")
        .map(|t| t.files.iter().map(|f| dir.join(&f.name)).collect())
        .unwrap_or_default();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| publish::Error::Local { path, source }
    };
    let mut frames = Vec::new();
    for file in committed.get("_rejects").into_iter().flatten() {
        let frame = publish::parquet::read(file).map_err(io(file))?;
        let others = frame
            .column("source")
            .and_then(|c| c.str().cloned())
            .map(|sources| {
                sources
                    .iter()
                    .map(|s| !s.is_some_and(|s| mine.iter().any(|m| m == s)))
                    .collect()
            })
            .and_then(|mask: polars::prelude::BooleanChunked| frame.filter(&mask))
            .map_err(|e| io(file)(std::io::Error::other(e)))?;
        frames.push(others);
    }
    for file in &local {
        frames.push(publish::parquet::read(file).map_err(io(file))?);
        std::fs::remove_file(file).map_err(io(file))?;
    }
    let mut merged = match frames.split_first() {
        None => return Ok(TableReport::default()),
        Some((first, rest)) => {
            let mut all = first.clone();
            for f in rest {
                all.vstack_mut(f).map_err(|e| io(&dir)(std::io::Error::other(e)))?;
            }
            all
        }
    };
    let path = dir.join(layout::part_name(0));
    let bytes = publish::parquet::write(&path, &mut merged).map_err(io(&path))?;
    let _ = std::fs::remove_dir_all(&fetched);
    Ok(TableReport {
        rows: merged.height() as u64,
        files: vec![normalize::WrittenFile {
            name: layout::part_name(0),
            rows: merged.height() as u64,
            bytes,
        }],
    })
}

/// `reconcile`: re-runs the reconcile stage on the day's committed tables and commits its
/// tables (the day's other tables stay as they are).
pub fn reconcile_day(run: &Run) -> Result<(RunManifest, ReconcileReport)> {
    reconcile_committed(run, &run.id)
}

/// The reconcile stage on the day's committed tables, recorded as `record_id`.
fn reconcile_committed(run: &Run, record_id: &str) -> Result<(RunManifest, ReconcileReport)> {
    let package = run.package()?;
    let t = Instant::now();
    let fetched = package.dir.join("_committed");
    let (mut inputs, versions) = run.or_discard(run.committed_inputs(reconcile::INPUTS, &fetched), &package)?;
    if inputs.is_empty() {
        let _ = run.runtime.block_on(publish::discard(&package));
        return Err(job::Error::NothingCommitted {
            run_date: run.as_of(),
            url: run.lake.url.clone(),
            what: "",
        }
        .into());
    }
    inputs.extend(run.or_discard(run.previous_exceptions(&fetched), &package)?);
    let reconciled = run.or_discard(run.reconcile(&inputs, &package.dir), &package)?;
    let _ = std::fs::remove_dir_all(&fetched);
    let mut manifest = record::build(
        run,
        &NormalizeReport::default(),
        vec![record::stage("reconcile", t, reconciled.rows.values().sum())],
    );
    manifest.kind = "reconcile".into();
    manifest.run_id = record_id.to_string();
    manifest.input = format!("the committed tables of {} (versions {versions:?})", run.as_of());
    manifest.warnings = reconciled.warnings.clone();
    let tables = record::recon_tables(&package.dir, run.as_of(), &reconciled);
    let uploaded = run.or_discard(run.upload(&package, &uploads(&package, &tables)), &package)?;
    let t = Instant::now();
    run.publish(&package, ClaimKind::Reconcile, uploaded, &mut manifest)?;
    manifest.stages.push(record::stage(
        "publish",
        t,
        manifest.tables.values().map(|t| t.rows).sum(),
    ));
    run.write_record(&mut manifest)?;
    let _ = run.runtime.block_on(publish::discard(&package));
    Ok((manifest, reconciled))
}

/// `extract`: pulls every source from the job's APIs and keeps only the raw captures of the
/// day, with a record (normalize them later with `opslake normalize --from-raw`).
pub fn extract_day(run: &Run) -> Result<RunManifest> {
    let apis = run.apis.as_ref().ok_or(job::Error::NoApis)?;
    if run.raw_output.is_none() {
        return Err(job::Error::Value {
            setting: "raw_output".into(),
            value: String::new(),
            why: "`opslake extract` keeps only the raw captures: set raw_output (OPSLAKE_RAW_OUTPUT) to where they go"
                .into(),
        }
        .into());
    }
    let package = run.package()?;
    let t = Instant::now();
    let (mut report, scratch) = run.or_discard(run.extract(apis), &package)?;
    report.raw = run.or_discard(run.keep_captures(&scratch.0), &package)?;
    drop(scratch);
    let kept = report.raw.clone();
    let mut manifest = record::build(
        run,
        &NormalizeReport::default(),
        vec![record::stage(
            "extract",
            t,
            report.sources.iter().map(|s| s.responses).sum(),
        )],
    );
    manifest.kind = "extract".into();
    manifest.warnings.extend(report.warnings.iter().cloned());
    manifest.extract = Some(report);
    let written = run.write_record(&mut manifest);
    run.or_discard_captures(written, kept.as_ref())?;
    let _ = run.runtime.block_on(publish::discard(&package));
    Ok(manifest)
}

/// `normalize --from-raw`: replays a day from the raw captures of its latest record that kept
/// some, read from `raw_output`, running every stage but extraction.
pub fn replay(run: &Run) -> Result<RunReport> {
    let nothing = || job::Error::NothingCommitted {
        run_date: run.as_of(),
        url: run.lake.url.clone(),
        what: " (no raw captures)",
    };
    let records = run.runtime.block_on(record::day(&run.lake, run.as_of()))?;
    let Some(extracted) = records
        .into_iter()
        .rev()
        .filter_map(|r| r.extract)
        .find(|e| e.raw.is_some())
    else {
        return Err(nothing().into());
    };
    let Some(capture) = extracted.raw.clone() else {
        return Err(nothing().into());
    };
    let store = run.raw_output.as_ref().ok_or_else(|| job::Error::Value {
        setting: "raw_output".into(),
        value: String::new(),
        why: format!(
            "a replay reads the raw captures kept at raw_output ({}): set it (OPSLAKE_RAW_OUTPUT)",
            capture.url
        ),
    })?;
    let work = captures::Scratch(run.scratch("replay"));
    if captures::download(run, store, &capture, &[], &work.0)? == 0 {
        return Err(nothing().into());
    }
    run_stages(run, Some(&work.0), Some(extracted))
}

/// `normalize --out DIR`: the normalize stage alone into `dir` (laid out like the lake),
/// publishing nothing and needing no lake.
pub fn normalize_into(job: &Job, registry: &[&'static dyn Source], dir: &Path) -> Result<NormalizeReport> {
    check_development_key(job)?;
    let sources: Vec<&dyn Source> = registry
        .iter()
        .copied()
        .filter(|s| {
            job.settings
                .sources
                .as_ref()
                .is_none_or(|l| l.iter().any(|n| n == s.name()))
        })
        .collect();
    limit_threads(job.threads);
    Ok(normalize::normalize(job, &sources, &job.settings.input, dir)?)
}

/// Sizes polars' thread pool (read once, from this variable, on first use) and the allocator.
fn limit_threads(threads: usize) {
    if std::env::var_os("POLARS_MAX_THREADS").is_none() {
        // SAFETY: called before any thread is started: the runtime and polars' pool are
        // created after this, and the CLI runs no other thread.
        unsafe { std::env::set_var("POLARS_MAX_THREADS", threads.to_string()) };
    }
    crate::allocator::limit_arenas(threads);
}

/// The runtime of a run: object store and HTTP calls are async.
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.clamp(1, 4))
        .enable_all()
        .build()
        .map_err(|source| {
            publish::Error::Local {
                path: PathBuf::from("(the async runtime)"),
                source,
            }
            .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::tests::job_from_toml;

    fn check(toml: &str) -> std::result::Result<(), job::Error> {
        check_development_key(&job_from_toml(toml, &|_| None).unwrap())
    }

    #[test]
    fn without_a_key_the_run_refuses_unless_pii_is_dropped() {
        // Any input but the samples (the default input is the samples folder).
        let other = "input = \"src\"";
        assert!(matches!(check(other), Err(job::Error::MissingPiiKey)));
        assert!(check(&format!("{other}\npii = \"drop\"")).is_ok());
        assert!(check(&format!("{other}\nallow_development_key = true")).is_ok());
        assert!(
            check("input = \"samples\"").is_ok(),
            "the samples may use the development key"
        );
        let api = "[api.logistics]\nbase_url = \"http://127.0.0.1:1\"";
        assert!(
            matches!(check(api), Err(job::Error::MissingPiiKey)),
            "an API job reads no sample, whatever its input folder"
        );
    }
}
