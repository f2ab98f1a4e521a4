//! The run record (`_runs`), built once from the stages' reports.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;

use super::Run;
use crate::normalize::{NormalizeReport, PartReport, TableReport};
use crate::publish::manifest::{
    FileManifest, PartManifest, PiiManifest, SourceManifest, StageManifest, TableManifest, code_version,
};
use crate::publish::{RunManifest, layout};
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
            let bytes = std::fs::metadata(dir.join(layout::part_path(name, run_date, 0))).map_or(0, |m| m.len());
            let mut t = TableReport {
                rows: *rows,
                ..Default::default()
            };
            t.parts.insert(0, PartReport { rows: *rows, bytes });
            (name.clone(), t)
        })
        .collect()
}

/// A table's line of the record.
pub fn table_manifest(name: &str, run_date: NaiveDate, t: &TableReport) -> TableManifest {
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

/// The record of `run` from its normalize report, the tables it publishes and its stages.
pub fn build(
    run: &Run,
    n: &NormalizeReport,
    tables: &BTreeMap<String, TableReport>,
    stages: Vec<StageManifest>,
) -> RunManifest {
    let job = &run.job;
    let s = &job.settings;
    let tables: BTreeMap<String, TableManifest> = tables
        .iter()
        .map(|(name, t)| (name.clone(), table_manifest(name, job.as_of, t)))
        .collect();
    let mut settings = BTreeMap::new();
    settings.insert("source_timezone".into(), job.time.zone().name().to_string());
    settings.insert("max_reject_ratio".into(), s.max_reject_ratio.to_string());
    settings.insert("stuck_after_days".into(), s.stuck_after_days.to_string());
    settings.insert("threads".into(), job.threads.to_string());
    settings.insert("batch_bytes".into(), s.batch_bytes.to_string());
    RunManifest {
        run_id: run.id.clone(),
        job: s.name.clone(),
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
        shard: s.shard.map(|s| s.to_string()),
        extract: None,
    }
}
