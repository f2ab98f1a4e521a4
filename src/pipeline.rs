//! The run: extract → normalize → reconcile → publish, one tracing span per stage.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use rand::Rng;
use tracing::info;

use crate::error::Result;
use crate::job::Job;
use crate::normalize::{self, NormalizeReport, TableReport};
use crate::publish::manifest::{FileManifest, PartManifest, PiiManifest, SourceManifest, StageManifest, TableManifest};
use crate::publish::{self, Lake, RunManifest, layout};
use crate::reconcile::{self, ReconcileReport};
use crate::sources::{self, Source};

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// The committed manifest.
    pub manifest: RunManifest,
    /// The normalize stage's report (with the rejects).
    pub normalize: NormalizeReport,
    /// The reconcile stage's report (with the summary).
    pub reconcile: ReconcileReport,
}

/// A new run id: the UTC start time and a random suffix (`20261129T105600Z-3f9a`).
pub fn new_run_id() -> String {
    format!(
        "{}-{:04x}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        rand::rng().random::<u16>()
    )
}

fn selected(job: &Job) -> Vec<&'static dyn Source> {
    job.sources.iter().filter_map(|n| sources::find(n)).collect()
}

fn normalize_options<'s>(job: &Job, input: &Path, package: &Path) -> normalize::Options<'s> {
    normalize::Options {
        sources: selected(job),
        input: input.to_path_buf(),
        package: package.to_path_buf(),
        run_date: job.as_of,
        threads: job.threads,
        batch_bytes: job.batch_bytes,
        time: job.time,
        pii: job.pii.clone(),
        rejects_raw: job.rejects_raw,
        max_reject_ratio: job.max_reject_ratio,
        shard: job.shard,
        tables: job.tables.clone(),
    }
}

/// Runs every stage and commits the day.
pub fn run(job: &Job, runtime: &tokio::runtime::Runtime) -> Result<RunReport> {
    run_with_input(job, runtime, None)
}

/// Extracts from the job's APIs into `{package}/raw` (which the normalizer then reads like
/// an export folder).
fn extract_apis(
    job: &Job,
    apis: &BTreeMap<crate::sources::Api, crate::extract::http::ApiSpec>,
    package: &publish::Package,
    runtime: &tokio::runtime::Runtime,
) -> Result<crate::extract::http::ExtractReport> {
    let raw_root = package.dir.join(layout::RAW);
    let target = crate::extract::http::Target {
        raw_root: &raw_root,
        run_date: job.as_of,
        shard: job.shard,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let sources = selected(job);
    let report = tracing::info_span!("extract")
        .in_scope(|| runtime.block_on(crate::extract::http::extract(apis, &sources, &target)))
        .map_err(crate::extract::Error::from)?;
    Ok(report)
}

/// Runs every stage, reading the export files under `input` instead of the job's inputs when
/// given (a replay of raw captures).
pub fn run_with_input(job: &Job, runtime: &tokio::runtime::Runtime, input: Option<&Path>) -> Result<RunReport> {
    let started_at = Utc::now();
    let run_id = new_run_id();
    let lake = Lake::open(&job.output)?;
    let apis = job.apis.as_ref().filter(|_| input.is_none());
    let files = input.unwrap_or(&job.input).to_path_buf();
    info!(run_id, as_of = %job.as_of, input = %files.display(), apis = apis.is_some(), output = %lake.url, "run started");
    if apis.is_none() && !files.is_dir() {
        return Err(crate::extract::Error::MissingInput { path: files }.into());
    }
    let package = runtime.block_on(publish::create_package(
        &lake,
        &run_id,
        job.as_of,
        job.work_dir.as_deref(),
        job.shard,
    ))?;
    let mut stages = Vec::new();

    // Extract: an API run fetches into raw files here; export files are read as they are
    // normalized.
    let t = Instant::now();
    let (input, extracted) = match apis {
        Some(apis) => {
            let report = or_discard(extract_apis(job, apis, &package, runtime), runtime, &lake, &package)?;
            (package.dir.join(layout::RAW), Some(report))
        }
        None => (files, None),
    };
    stages.push(StageManifest {
        name: "extract".into(),
        seconds: t.elapsed().as_secs_f64(),
        rows: extracted
            .as_ref()
            .map_or(0, |r| r.sources.iter().map(|s| s.responses).sum()),
    });

    let t = Instant::now();
    let normalized = tracing::info_span!("normalize")
        .in_scope(|| normalize::normalize(&normalize_options(job, &input, &package.dir)));
    let normalized = or_discard(normalized, runtime, &lake, &package)?;
    let rows: u64 = normalized.sources.iter().map(|s| s.rows_written).sum();
    info!(
        stage = "normalize",
        rows,
        rejects = normalized.rejects.len(),
        seconds = t.elapsed().as_secs_f64(),
        "stage done"
    );
    stages.push(StageManifest {
        name: "normalize".into(),
        seconds: t.elapsed().as_secs_f64(),
        rows,
    });

    // A run of some sources only replaces their tables and leaves the reconciliations, which
    // need every source, to a full run (or to `opslake reconcile`).
    // A shard reads some tenants only: its share of the day is committed alone, and the
    // reconciliations (which join across tenants: stock) wait for `opslake reconcile`.
    let full = job.shard.is_none()
        && sources::SOURCES
            .iter()
            .all(|s| job.sources.iter().any(|n| n == s.name()));
    let t = Instant::now();
    let reconciled = if full {
        let params = reconcile::Params::new(job.as_of, &job.time, job.stuck_after_days);
        let reconciled = tracing::info_span!("reconcile").in_scope(|| {
            reconcile::reconcile(
                &package.dir,
                &package.dir,
                job.as_of,
                &params,
                job.reconciliations.as_deref(),
            )
        });
        or_discard(reconciled, runtime, &lake, &package)?
    } else {
        ReconcileReport {
            warnings: vec![
                "reconciliations skipped: this run reads some sources or one shard only (the day's other tables are kept); \
                 run `opslake reconcile` once the day is complete"
                    .into(),
            ],
            ..Default::default()
        }
    };
    let rows = reconciled.rows.values().sum();
    info!(
        stage = "reconcile",
        rows,
        seconds = t.elapsed().as_secs_f64(),
        "stage done"
    );
    stages.push(StageManifest {
        name: "reconcile".into(),
        seconds: t.elapsed().as_secs_f64(),
        rows,
    });

    let t = Instant::now();
    let mut tables = normalized.tables.clone();
    tables.extend(recon_tables(&package.dir, job.as_of, &reconciled));
    let mut manifest = build_manifest(job, &run_id, &lake, started_at, &normalized, &tables, stages);
    manifest.input = input.display().to_string();
    manifest.extract = extracted;
    manifest.warnings.extend(reconciled.warnings.iter().cloned());
    let published = tracing::info_span!("publish")
        .in_scope(|| runtime.block_on(publish::publish(&lake, &package, &mut manifest, full)));
    or_discard(published, runtime, &lake, &package)?;
    let seconds = t.elapsed().as_secs_f64();
    manifest.stages.push(StageManifest {
        name: "publish".into(),
        seconds,
        rows: manifest.tables.values().map(|t| t.rows).sum(),
    });
    // The manifest was written at commit; rewrite it with the publish stage's own figures.
    runtime.block_on(lake.write(
        &layout::manifest_path(job.as_of, &run_id),
        serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
    ))?;
    info!(stage = "publish", commit = manifest.commit, seconds, "run committed");
    Ok(RunReport {
        manifest,
        normalize: normalized,
        reconcile: reconciled,
    })
}

/// `result`, having discarded `package` when it failed: a failed run leaves nothing staged.
fn or_discard<T, E: Into<crate::Error>>(
    result: std::result::Result<T, E>,
    runtime: &tokio::runtime::Runtime,
    lake: &Lake,
    package: &publish::Package,
) -> Result<T> {
    result.map_err(|e| {
        let _ = runtime.block_on(publish::discard(lake, package));
        e.into()
    })
}

/// The reconciliation tables written into a package, as table reports.
fn recon_tables(dir: &Path, run_date: chrono::NaiveDate, r: &ReconcileReport) -> BTreeMap<String, TableReport> {
    r.rows
        .iter()
        .map(|(name, rows)| {
            let bytes = std::fs::metadata(dir.join(layout::part_path(name, run_date, 0))).map_or(0, |m| m.len());
            let mut t = TableReport {
                rows: *rows,
                ..Default::default()
            };
            t.parts.insert(0, normalize::PartReport { rows: *rows, bytes });
            (name.clone(), t)
        })
        .collect()
}

/// Re-runs the reconcile stage on a committed day of a local lake and commits its tables
/// (the day's other tables stay as they are).
pub fn reconcile_day(job: &Job, runtime: &tokio::runtime::Runtime) -> Result<(RunManifest, ReconcileReport)> {
    let started_at = Utc::now();
    let run_id = new_run_id();
    let lake = Lake::open(&job.output)?;
    let previous = runtime
        .block_on(publish::committed(&lake, job.as_of))?
        .into_iter()
        .next_back()
        .ok_or_else(|| publish::Error::NothingCommitted {
            run_date: job.as_of,
            url: lake.url.clone(),
        })?;
    let package = runtime.block_on(publish::create_package(
        &lake,
        &run_id,
        job.as_of,
        job.work_dir.as_deref(),
        None,
    ))?;
    // A local lake is read in place; a remote one's committed inputs are fetched first.
    let root = match &lake.local_root {
        Some(root) => root.clone(),
        None => {
            let dir = package.dir.join("_inputs");
            let fetched = publish::fetch_tables(&lake, &previous, reconcile::INPUTS, &dir);
            or_discard(runtime.block_on(fetched), runtime, &lake, &package)?;
            dir
        }
    };
    let t = Instant::now();
    let params = reconcile::Params::new(job.as_of, &job.time, job.stuck_after_days);
    let reconciled = tracing::info_span!("reconcile")
        .in_scope(|| reconcile::reconcile(&root, &package.dir, job.as_of, &params, job.reconciliations.as_deref()));
    let reconciled = or_discard(reconciled, runtime, &lake, &package)?;
    let mut manifest = previous;
    manifest.run_id = run_id.clone();
    manifest.started_at = Some(started_at);
    manifest.code_version = publish::manifest::code_version();
    manifest.warnings = reconciled.warnings.clone();
    manifest.stages = vec![StageManifest {
        name: "reconcile".into(),
        seconds: t.elapsed().as_secs_f64(),
        rows: reconciled.rows.values().sum(),
    }];
    manifest
        .settings
        .insert("stuck_after_days".into(), job.stuck_after_days.to_string());
    for (name, t) in recon_tables(&package.dir, job.as_of, &reconciled) {
        manifest
            .tables
            .insert(name.clone(), table_manifest(&name, job.as_of, &t));
    }
    if lake.local_root.is_none() {
        let _ = std::fs::remove_dir_all(package.dir.join("_inputs"));
    }
    let published = runtime.block_on(publish::publish(&lake, &package, &mut manifest, false));
    or_discard(published, runtime, &lake, &package)?;
    Ok((manifest, reconciled))
}

fn table_manifest(name: &str, run_date: chrono::NaiveDate, t: &TableReport) -> TableManifest {
    TableManifest {
        rows: t.rows,
        parts: t
            .parts
            .iter()
            .map(|(num, p)| PartManifest {
                path: layout::part_path(name, run_date, *num),
                rows: p.rows,
                bytes: p.bytes,
            })
            .collect(),
    }
}

fn build_manifest(
    job: &Job,
    run_id: &str,
    lake: &Lake,
    started_at: chrono::DateTime<Utc>,
    n: &NormalizeReport,
    tables: &BTreeMap<String, TableReport>,
    stages: Vec<StageManifest>,
) -> RunManifest {
    let tables: BTreeMap<String, TableManifest> = tables
        .iter()
        .map(|(name, t)| (name.clone(), table_manifest(name, job.as_of, t)))
        .collect();
    let mut settings = BTreeMap::new();
    settings.insert("source_timezone".into(), job.time.zone().name().to_string());
    settings.insert("max_reject_ratio".into(), job.max_reject_ratio.to_string());
    settings.insert("stuck_after_days".into(), job.stuck_after_days.to_string());
    settings.insert("threads".into(), job.threads.to_string());
    settings.insert("batch_bytes".into(), job.batch_bytes.to_string());
    RunManifest {
        run_id: run_id.to_string(),
        job: job.name.clone(),
        run_date: Some(job.as_of),
        commit: 0,
        started_at: Some(started_at),
        committed_at: None,
        code_version: publish::manifest::code_version(),
        input: job.input.display().to_string(),
        output: lake.url.clone(),
        sources: n
            .sources
            .iter()
            .map(|s| SourceManifest {
                name: s.name.clone(),
                files: s
                    .files
                    .iter()
                    .map(|f| FileManifest {
                        name: f.name.clone(),
                        bytes: f.bytes,
                        checksum: f.checksum.clone(),
                        records: f.records,
                    })
                    .collect(),
                records_read: s.records_read,
                rows_written: s.rows_written,
                rejects: s.rejects,
                duplicates: s.duplicates,
                conflicting_duplicates: s.conflicting_duplicates,
                balanced: s.records_read == s.rows_written + s.rejects + s.duplicates,
            })
            .collect(),
        tables,
        rejects: n.sources.iter().map(|s| s.rejects).sum(),
        duplicates: n.sources.iter().map(|s| s.duplicates).sum(),
        warnings: n.warnings.clone(),
        stages,
        pii: PiiManifest {
            mode: format!("{:?}", job.pii.mode()).to_lowercase(),
            key: job.pii.key_label().to_string(),
        },
        settings,
        shard: job.shard.map(|s| s.to_string()),
        extract: None,
    }
}

/// Runs the normalize stage alone into `dir` (laid out like the lake), without publishing.
pub fn normalize_into(job: &Job, dir: &Path) -> Result<NormalizeReport> {
    Ok(normalize::normalize(&normalize_options(job, &job.input, dir))?)
}

/// Extracts from the job's APIs and commits only the raw captures of the day (normalize them
/// later with `opslake normalize --from-raw`).
pub fn extract_day(job: &Job, runtime: &tokio::runtime::Runtime) -> Result<RunManifest> {
    let apis = job.apis.as_ref().ok_or(crate::job::Error::NoApis)?;
    let started_at = Utc::now();
    let run_id = new_run_id();
    let lake = Lake::open(&job.output)?;
    let package = runtime.block_on(publish::create_package(
        &lake,
        &run_id,
        job.as_of,
        job.work_dir.as_deref(),
        job.shard,
    ))?;
    let t = Instant::now();
    let report = or_discard(extract_apis(job, apis, &package, runtime), runtime, &lake, &package)?;
    let mut manifest = runtime
        .block_on(publish::committed(&lake, job.as_of))?
        .into_iter()
        .next_back()
        .unwrap_or_default();
    manifest.run_id = run_id;
    manifest.job = job.name.clone();
    manifest.run_date = Some(job.as_of);
    manifest.started_at = Some(started_at);
    manifest.code_version = publish::manifest::code_version();
    manifest.output = lake.url.clone();
    manifest.stages = vec![StageManifest {
        name: "extract".into(),
        seconds: t.elapsed().as_secs_f64(),
        rows: report.sources.iter().map(|s| s.responses).sum(),
    }];
    manifest.extract = Some(report);
    manifest.shard = job.shard.map(|s| s.to_string());
    let published = runtime.block_on(publish::publish(&lake, &package, &mut manifest, false));
    or_discard(published, runtime, &lake, &package)?;
    Ok(manifest)
}

/// Replays a day from its raw captures in the lake: downloads them and runs every other stage.
pub fn run_from_raw(job: &Job, runtime: &tokio::runtime::Runtime) -> Result<RunReport> {
    let lake = Lake::open(&job.output)?;
    let work = tempfile_dir(job)?;
    let raw = work.join(layout::RAW);
    let fetched = runtime.block_on(publish::fetch_raw(&lake, job.as_of, &raw))?;
    if fetched == 0 {
        return Err(publish::Error::NothingCommitted {
            run_date: job.as_of,
            url: format!("{} (no raw captures)", lake.url),
        }
        .into());
    }
    let report = run_with_input(job, runtime, Some(&raw));
    let _ = std::fs::remove_dir_all(&work);
    report
}

fn tempfile_dir(job: &Job) -> Result<std::path::PathBuf> {
    let dir = job
        .work_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("opslake-replay-{}", new_run_id()));
    std::fs::create_dir_all(&dir).map_err(|source| publish::Error::Local {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}
