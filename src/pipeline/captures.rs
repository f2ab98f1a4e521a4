//! The raw captures of API runs at `raw_output`: which committed run a night builds on,
//! whether the night is a full pull, and moving captures between `raw_output` and the local
//! folder the extract and normalize stages work in.
//!
//! A night's base is the latest committed run, on or before its day and of the same shard,
//! whose record names kept captures (`extract.raw`); for a shard, the record of its share
//! that the day's `shards` commit took. The base is found through the run
//! records, and its captures are read from `raw_output`, never from the lake's tables: what is
//! carried forward does not depend on how tables are stored.

use std::path::Path;

use chrono::NaiveDate;

use super::{Run, RunManifest, record};
use crate::error::Result;
use crate::extract::http::{ExtractReport, RawCapture};
use crate::extract::raw::layout;
use crate::publish::{self, Lake};

/// The latest committed run on or before the run's day, of the same shard, that kept raw
/// captures (on the run's own day: its latest such commit), found through the run records.
pub fn find_base(run: &Run, on_or_before: NaiveDate) -> Result<Option<RunManifest>> {
    let lake = &run.lake;
    let shard = run.job.settings.shard.map(|s| s.to_string());
    let mut days = run.runtime.block_on(publish::days(lake))?;
    days.retain(|d| *d <= on_or_before);
    for day in days.into_iter().rev() {
        for m in run.runtime.block_on(record::day(lake, day))?.into_iter().rev() {
            // A sharded day is committed by one `shards` record; each shard's own record,
            // with its captures, is the share that commit took.
            let m = match run.job.settings.shard {
                Some(s) if m.kind == "shards" => match super::shards::committed_share(run, &m, s)? {
                    Some(share) => share,
                    None => continue,
                },
                _ => m,
            };
            if m.shard == shard && m.extract.as_ref().is_some_and(|e| e.raw.is_some()) {
                return Ok(Some(m));
            }
        }
    }
    Ok(None)
}

/// Why tonight asks every per-id call again (`None`: an incremental night).
pub fn full_reason(run: &Run, base: Option<&RunManifest>) -> Option<String> {
    let s = &run.job.settings;
    if s.raw_output.is_none() {
        return Some("raw_output is not set: no captures to carry forward".into());
    }
    let Some(base) = base else {
        return Some("no earlier committed run kept raw captures".into());
    };
    if s.full_refresh {
        return Some("--full-refresh".into());
    }
    if s.full_refresh_days == 0 {
        return Some("full_refresh_days = 0".into());
    }
    match base.extract.as_ref().and_then(|e| e.last_full_refresh) {
        None => Some("the base run records no full refresh".into()),
        Some(last) => {
            let days = (run.as_of() - last).num_days();
            (days >= i64::from(s.full_refresh_days)).then(|| {
                format!(
                    "{days} days since the last full refresh ({last}), full_refresh_days = {}",
                    s.full_refresh_days
                )
            })
        }
    }
}

/// Fills the extract report's refresh fields for a night based on `base`.
pub fn record_refresh(report: &mut ExtractReport, run: &Run, base: Option<&RunManifest>, reason: Option<String>) {
    report.refresh = if reason.is_some() { "full" } else { "incremental" }.into();
    report.base = base.map(|b| crate::extract::http::BaseRun {
        run_id: b.run_id.clone(),
        run_date: b.run_date,
    });
    report.last_full_refresh = match reason {
        Some(_) => Some(run.as_of()),
        None => base.and_then(|b| b.extract.as_ref()).and_then(|e| e.last_full_refresh),
    };
    report.full_refresh_reason = reason;
}

/// Downloads the captures of `sources` (all when empty) under `capture.prefix` into `dir`;
/// returns how many files.
pub fn download(run: &Run, store: &Lake, capture: &RawCapture, sources: &[&str], dir: &Path) -> Result<usize> {
    let objects = run.runtime.block_on(store.list(&capture.prefix))?;
    let mut n = 0;
    for meta in objects {
        let object = meta.location.as_ref();
        if !sources.is_empty() && !layout::of_source(&capture.prefix, object, sources) {
            continue;
        }
        let rel = object
            .strip_prefix(&capture.prefix)
            .unwrap_or(object)
            .trim_start_matches('/');
        run.runtime.block_on(store.download(object, &dir.join(rel)))?;
        n += 1;
    }
    Ok(n)
}

/// Uploads the captures under `dir` to `raw_output`, under the run's own prefix.
pub fn upload(run: &Run, store: &Lake, dir: &Path) -> Result<RawCapture> {
    let prefix = layout::capture_prefix(run.as_of(), &run.id);
    let mut capture = RawCapture {
        url: store.url.clone(),
        prefix: prefix.clone(),
        files: 0,
        bytes: 0,
    };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Some(rel) = layout::relative(dir, &path) else {
                continue;
            };
            capture.bytes += run
                .runtime
                .block_on(store.upload(&path, &layout::object(&prefix, &rel)))?;
            capture.files += 1;
        }
    }
    Ok(capture)
}

/// Removes captures a failed run uploaded (best effort: the run's failure is what is reported).
pub fn discard(run: &Run, store: &Lake, capture: &RawCapture) {
    if let Err(e) = run.runtime.block_on(store.delete_prefix(&capture.prefix)) {
        tracing::warn!(error = %e, prefix = %capture.prefix, "could not remove the failed run's raw captures");
    }
}

/// A local folder removed when dropped (a run's scratch captures).
pub struct Scratch(pub std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
