//! The run: extract → normalize → reconcile → publish, one tracing span per stage.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use rand::Rng;
use tracing::info;

use crate::error::Result;
use crate::job::Job;
use crate::normalize::{self, NormalizeReport};
use crate::publish::manifest::{
    FileManifest, PartManifest, PiiManifest, SourceManifest, StageManifest, TableManifest,
};
use crate::publish::{self, Lake, RunManifest, layout};
use crate::sources::{self, Source};

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// The committed manifest.
    pub manifest: RunManifest,
    /// The normalize stage's report (with the rejects).
    pub normalize: NormalizeReport,
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
    job.sources
        .iter()
        .filter_map(|n| sources::find(n))
        .collect()
}

fn normalize_options<'s>(job: &Job, package: &Path) -> normalize::Options<'s> {
    normalize::Options {
        sources: selected(job),
        input: job.input.clone(),
        package: package.to_path_buf(),
        run_date: job.as_of,
        threads: job.threads,
        batch_bytes: job.batch_bytes,
        time: job.time,
        pii: job.pii.clone(),
        rejects_raw: job.rejects_raw,
        max_reject_ratio: job.max_reject_ratio,
    }
}

/// Runs every stage and commits the day.
pub fn run(job: &Job, runtime: &tokio::runtime::Runtime) -> Result<RunReport> {
    let started_at = Utc::now();
    let run_id = new_run_id();
    let lake = Lake::open(&job.output)?;
    info!(run_id, as_of = %job.as_of, input = %job.input.display(), output = %lake.url, "run started");
    if !job.input.is_dir() {
        return Err(crate::extract::Error::MissingInput {
            path: job.input.clone(),
        }
        .into());
    }
    let package = runtime.block_on(publish::create_package(
        &lake,
        &run_id,
        job.as_of,
        job.work_dir.as_deref(),
    ))?;
    let mut stages = Vec::new();

    // Extract: export files are read as they are normalized; an API run fetches here.
    stages.push(StageManifest {
        name: "extract".into(),
        seconds: 0.0,
        rows: 0,
    });

    let t = Instant::now();
    let normalized = tracing::info_span!("normalize")
        .in_scope(|| normalize::normalize(&normalize_options(job, &package.dir)));
    let normalized = match normalized {
        Ok(r) => r,
        Err(e) => {
            let _ = runtime.block_on(publish::discard(&lake, &package));
            return Err(e.into());
        }
    };
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

    stages.push(StageManifest {
        name: "reconcile".into(),
        seconds: 0.0,
        rows: 0,
    });

    let t = Instant::now();
    let mut manifest = build_manifest(job, &run_id, &lake, started_at, &normalized, stages);
    let published = tracing::info_span!("publish")
        .in_scope(|| runtime.block_on(publish::publish(&lake, &package, &mut manifest, true)));
    if let Err(e) = published {
        let _ = runtime.block_on(publish::discard(&lake, &package));
        return Err(e.into());
    }
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
    info!(
        stage = "publish",
        commit = manifest.commit,
        seconds,
        "run committed"
    );
    Ok(RunReport {
        manifest,
        normalize: normalized,
    })
}

fn build_manifest(
    job: &Job,
    run_id: &str,
    lake: &Lake,
    started_at: chrono::DateTime<Utc>,
    n: &NormalizeReport,
    stages: Vec<StageManifest>,
) -> RunManifest {
    let tables: BTreeMap<String, TableManifest> = n
        .tables
        .iter()
        .map(|(name, t)| {
            let parts = t
                .parts
                .iter()
                .map(|(num, p)| PartManifest {
                    path: layout::part_path(name, job.as_of, *num),
                    rows: p.rows,
                    bytes: p.bytes,
                })
                .collect();
            (
                name.clone(),
                TableManifest {
                    rows: t.rows,
                    parts,
                },
            )
        })
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
    }
}

/// Runs the normalize stage alone into `dir` (laid out like the lake), without publishing.
pub fn normalize_into(job: &Job, dir: &Path) -> Result<NormalizeReport> {
    Ok(normalize::normalize(&normalize_options(job, dir))?)
}
