//! Shards of a day commit together: each shard (`--shard i/n`) uploads its files and writes
//! its share (`_runs/run_date=D/_shards/{n}/{i}.json`); the shard that completes the set
//! claims the day and commits every share in one transaction per table, then reconciles the
//! day. So the day's tables are always one complete set of shares, or the previous commit.
//!
//! A share is stale when a run of the whole day (or of some sources) committed the day after
//! the shard started: it is never committed over that run. A shard whose own share is stale
//! loses (exit 6); a shard that finds another shard's share stale waits for that shard to run
//! again. A shard run again alone is committed with the other shards' latest shares.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::manifest::{RunManifest, SourceManifest};
use super::{Run, RunReport, record, uploads};
use crate::error::Result;
use crate::extract::http::ExtractReport;
use crate::job::Shard;
use crate::normalize::NormalizeReport;
use crate::publish::{self, Claim, ClaimKind, Package, Uploaded, layout};
use crate::reconcile::ReconcileReport;

/// One shard's staged output.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Share {
    /// The shard's run.
    run_id: String,
    /// The day's last claim when the shard started.
    base: u64,
    /// When it was staged.
    at: DateTime<Utc>,
    /// Its files in the lake, per table.
    uploaded: Vec<Uploaded>,
    /// Its own record (inputs, counts, stages).
    record: RunManifest,
}

/// What became of a shard's share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardOutcome {
    /// Staged; the day is committed once these shards have staged a share (`missing`) or
    /// staged one again (`stale`: theirs predate a run of the whole day).
    Waiting {
        /// Shards with no share.
        missing: Vec<u32>,
        /// Shards whose share predates the day's last whole-day commit.
        stale: Vec<u32>,
    },
    /// Committed with every shard's share, under claim `commit`, by run `by`.
    Committed {
        /// The claim.
        commit: u64,
        /// The run that committed the set.
        by: String,
    },
}

/// Uploads a shard's tables, writes its share, and commits the day if the set is complete.
pub fn stage_share(
    run: &Run,
    package: &Package,
    shard: Shard,
    normalized: NormalizeReport,
    extracted: Option<ExtractReport>,
    stages: Vec<super::manifest::StageManifest>,
) -> Result<RunReport> {
    let t = Instant::now();
    let uploaded = run.or_discard(run.upload(package, &uploads(package, &normalized.tables)), package)?;
    let mut manifest = record::build(run, &normalized, stages);
    manifest.kind = "shard".into();
    manifest.extract = extracted;
    for u in &uploaded {
        manifest.tables.insert(
            u.table.clone(),
            super::manifest::TableManifest {
                rows: u.rows(),
                files: u.paths(),
                ..Default::default()
            },
        );
    }
    let share = Share {
        run_id: run.id.clone(),
        base: package.base,
        at: Utc::now(),
        uploaded,
        record: manifest.clone(),
    };
    let path = layout::shard_path(run.as_of(), shard.count, shard.index);
    run.or_discard(
        run.runtime
            .block_on(publish::write_json(&run.lake, &path, &share, false)),
        package,
    )?;
    let _ = run.runtime.block_on(publish::discard(package));
    manifest.stages.push(record::stage(
        "stage share",
        t,
        manifest.tables.values().map(|t| t.rows).sum(),
    ));

    let mut outcome = try_commit(run, shard)?;
    // Two shards may complete the set at once: the one that loses the claim looks again.
    for _ in 0..3 {
        if outcome.is_some() {
            break;
        }
        outcome = try_commit(run, shard)?;
    }
    let outcome = outcome.ok_or_else(|| publish::Error::RunAlreadyCommitted {
        run_date: run.as_of(),
        other: "another shard, repeatedly".into(),
    })?;
    let mut reconciled = ReconcileReport::default();
    match &outcome {
        ShardOutcome::Committed { commit, by } if *by == run.id => {
            manifest.commit = *commit;
            let (_, r) = super::reconcile_committed(run, &format!("{}-reconcile", run.id))?;
            reconciled = r;
        }
        ShardOutcome::Committed { commit, .. } => manifest.commit = *commit,
        ShardOutcome::Waiting { missing, stale } => {
            if !stale.is_empty() {
                manifest.warnings.push(format!(
                    "the shares of shards {stale:?} predate the day's last whole-day commit: run them again \
                     to commit the day from shards"
                ));
            }
            tracing::info!(
                ?missing,
                ?stale,
                "share staged; the day is committed when every shard has staged one"
            );
        }
    }
    Ok(RunReport {
        manifest,
        normalize: normalized,
        reconcile: reconciled,
        shard: Some(outcome),
    })
}

/// Commits the day from every shard's latest share if they are all there and none is stale;
/// `None` when another shard took the claim meanwhile (look again).
fn try_commit(run: &Run, shard: Shard) -> Result<Option<ShardOutcome>> {
    let lake = &run.lake;
    let day = run.as_of();
    run.runtime
        .block_on(async {
            let claims = publish::claims(lake, day).await?;
            let latest = claims.last().map_or(0, |c| c.number);
            let whole = claims
                .iter()
                .filter(|c| matches!(c.kind, ClaimKind::Day | ClaimKind::Sources))
                .max_by_key(|c| c.number);
            let mut shares = BTreeMap::new();
            let (mut missing, mut stale) = (Vec::new(), Vec::new());
            for index in 0..shard.count {
                match publish::read_json::<Share>(lake, &layout::shard_path(day, shard.count, index)).await? {
                    None => missing.push(index),
                    Some(s) if whole.is_some_and(|w| w.number > s.base) => {
                        if index == shard.index {
                            return Err(publish::Error::RunAlreadyCommitted {
                                run_date: day,
                                other: whole.map_or_else(String::new, |w| w.run_id.clone()),
                            });
                        }
                        stale.push(index);
                    }
                    Some(s) => {
                        shares.insert(index, s);
                    }
                }
            }
            if !missing.is_empty() || !stale.is_empty() {
                return Ok(Some(ShardOutcome::Waiting { missing, stale }));
            }
            let ids: Vec<String> = shares.values().map(|s| s.run_id.clone()).collect();
            if let Some(done) = claims
                .iter()
                .rev()
                .find(|c| c.kind == ClaimKind::Shards && c.shares == ids)
            {
                return Ok(Some(ShardOutcome::Committed {
                    commit: done.number,
                    by: done.run_id.clone(),
                }));
            }
            let claim = Claim {
                number: latest + 1,
                run_id: run.id.clone(),
                kind: ClaimKind::Shards,
                at: Utc::now(),
                shares: ids.clone(),
            };
            publish::test_hook("uploaded");
            if !publish::take_claim(lake, day, &claim).await? {
                return Ok(None);
            }
            let union = union(shares.values());
            let versions = publish::commit(lake, day, &claim, &union).await?;
            let mut manifest = merged_record(run, shares.values(), &claim);
            record::set_versions(&mut manifest, &union, &versions);
            manifest.committed_at = Some(Utc::now());
            publish::write_json(lake, &layout::record_path(day, &run.id), &manifest, true).await?;
            Ok(Some(ShardOutcome::Committed {
                commit: claim.number,
                by: run.id.clone(),
            }))
        })
        .map_err(Into::into)
}

/// The record of `shard`'s share that the `shards` commit `committed` took, if that share is
/// still the shard's latest (a shard run again later replaces its share file). A shard's own
/// record lives only in its share: the next night of that shard reads its captures from here.
pub(super) fn committed_share(
    run: &Run,
    committed: &RunManifest,
    shard: Shard,
) -> std::result::Result<Option<RunManifest>, publish::Error> {
    let Some(day) = committed.run_date else {
        return Ok(None);
    };
    if committed.kind != "shards" {
        return Ok(None);
    }
    let path = layout::shard_path(day, shard.count, shard.index);
    let share = run.runtime.block_on(publish::read_json::<Share>(&run.lake, &path))?;
    Ok(share.filter(|s| committed.shares.contains(&s.run_id)).map(|s| s.record))
}

/// Every share's files of each table, as one upload per table.
fn union<'a>(shares: impl Iterator<Item = &'a Share>) -> Vec<Uploaded> {
    let mut tables: BTreeMap<String, Uploaded> = BTreeMap::new();
    for share in shares {
        for u in &share.uploaded {
            match tables.get_mut(&u.table) {
                Some(t) => {
                    t.adds.extend(u.adds.iter().cloned());
                    if u.fields.len() > t.fields.len() {
                        t.fields = u.fields.clone();
                    }
                }
                None => {
                    tables.insert(u.table.clone(), u.clone());
                }
            }
        }
    }
    tables.into_values().collect()
}

/// The record of a commit of every share: their inputs and counts added up.
fn merged_record<'a>(run: &Run, shares: impl Iterator<Item = &'a Share>, claim: &Claim) -> RunManifest {
    let mut merged = record::build(run, &NormalizeReport::default(), Vec::new());
    merged.kind = "shards".into();
    merged.commit = claim.number;
    merged.shares = claim.shares.clone();
    merged.shard = None;
    let mut sources: BTreeMap<String, SourceManifest> = BTreeMap::new();
    let mut warnings = BTreeSet::new();
    for share in shares {
        let r = &share.record;
        merged.rejects += r.rejects;
        merged.duplicates += r.duplicates;
        warnings.extend(r.warnings.iter().cloned());
        merged.stages.extend(r.stages.iter().map(|s| {
            let mut s = s.clone();
            s.name = format!("{} (shard {})", s.name, r.shard.as_deref().unwrap_or("?"));
            s
        }));
        for s in &r.sources {
            let m = sources.entry(s.name.clone()).or_insert_with(|| SourceManifest {
                name: s.name.clone(),
                balanced: true,
                ..Default::default()
            });
            m.files.extend(s.files.iter().cloned());
            m.records_read += s.records_read;
            m.rows_written += s.rows_written;
            m.rejects += s.rejects;
            m.duplicates += s.duplicates;
            m.conflicting_duplicates += s.conflicting_duplicates;
            m.balanced &= s.balanced;
        }
    }
    merged.sources = sources.into_values().collect();
    merged.warnings = warnings.into_iter().collect();
    merged
}
