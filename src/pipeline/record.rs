//! The run record (`_runs`), built once from the stages' reports.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;

use super::Run;
pub use super::RunManifest;
use super::manifest::{FileManifest, PiiManifest, SourceManifest, StageManifest, TableManifest, code_version};
use crate::normalize::{NormalizeReport, TableReport, WrittenFile};
use crate::publish::{self, Lake, Replaced, Uploaded, layout};
use crate::reconcile::ReconcileReport;

/// A stage's line of the record: its name, the time since `started` and its rows.
pub fn stage(name: &str, started: Instant, rows: u64) -> StageManifest {
    StageManifest {
        name: name.into(),
        seconds: started.elapsed().as_secs_f64(),
        rows,
    }
}

/// The reconciliation tables written into a package, as table reports.
pub fn recon_tables(dir: &Path, run_date: NaiveDate, r: &ReconcileReport) -> BTreeMap<String, TableReport> {
    r.rows
        .iter()
        .map(|(name, rows)| {
            let path = layout::part_path(name, run_date, 0);
            let bytes = std::fs::metadata(dir.join(&path)).map_or(0, |m| m.len());
            let file = WrittenFile {
                name: layout::part_name(0),
                rows: *rows,
                bytes,
            };
            let t = TableReport {
                rows: *rows,
                files: vec![file],
            };
            (name.clone(), t)
        })
        .collect()
}

/// Fills the record's tables from what was committed: each table's version, files and rows.
pub fn set_versions(manifest: &mut RunManifest, uploaded: &[Uploaded], versions: &BTreeMap<String, Replaced>) {
    for u in uploaded {
        let Some(v) = versions.get(&u.table) else { continue };
        manifest.tables.insert(
            u.table.clone(),
            TableManifest {
                rows: u.rows(),
                version: Some(v.version),
                files: u.paths(),
                added: v.added,
                removed: v.removed,
            },
        );
    }
}

/// The run records of a day, in the order they were committed.
pub async fn day(lake: &Lake, run_date: NaiveDate) -> Result<Vec<RunManifest>, publish::Error> {
    let mut runs = Vec::new();
    for (path, bytes) in publish::day_records(lake, run_date).await? {
        let record: RunManifest = serde_json::from_slice(&bytes).map_err(|e| publish::Error::BadRecord {
            path,
            why: e.to_string(),
        })?;
        runs.push(record);
    }
    runs.sort_by_key(|r| (r.committed_at, r.commit));
    Ok(runs)
}

/// Every run record of the lake, by day then commit.
pub async fn all(lake: &Lake) -> Result<Vec<RunManifest>, publish::Error> {
    let mut runs = Vec::new();
    for day in publish::days(lake).await? {
        runs.extend(self::day(lake, day).await?);
    }
    Ok(runs)
}

/// The record of `run` from its normalize report and its stages (the tables are filled when
/// they are committed: [`set_versions`]).
pub fn build(run: &Run, n: &NormalizeReport, stages: Vec<StageManifest>) -> RunManifest {
    let job = &run.job;
    let s = &job.settings;
    let mut settings = BTreeMap::new();
    settings.insert("source_timezone".into(), job.time.zone().name().to_string());
    settings.insert("max_reject_ratio".into(), s.max_reject_ratio.to_string());
    settings.insert("stuck_after_days".into(), s.stuck_after_days.to_string());
    settings.insert("threads".into(), job.threads.to_string());
    settings.insert("batch_bytes".into(), s.batch_bytes.to_string());
    RunManifest {
        run_id: run.id.clone(),
        job: s.name.clone(),
        kind: String::new(),
        run_date: Some(job.as_of),
        commit: 0,
        started_at: Some(run.started_at),
        committed_at: None,
        code_version: code_version(),
        input: s.input.display().to_string(),
        output: run.lake.url.clone(),
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
        tables: BTreeMap::new(),
        rejects: n.sources.iter().map(|s| s.rejects).sum(),
        duplicates: n.sources.iter().map(|s| s.duplicates).sum(),
        warnings: n.warnings.clone(),
        stages,
        pii: PiiManifest {
            mode: format!("{:?}", job.pii.mode()).to_lowercase(),
            key: job.pii.key_label().to_string(),
        },
        settings,
        shard: s.shard.map(|s| s.to_string()),
        extract: None,
        shares: Vec::new(),
    }
}
