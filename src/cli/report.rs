//! What the commands print: the run summary, the reconciliation summary, the runs list.

use std::fmt::Write as _;
use std::path::Path;

use crate::job::Job;
use crate::normalize::NormalizeReport;
use crate::pipeline::RunManifest;
use crate::pipeline::manifest::{SourceManifest, TableManifest};
use crate::pipeline::{RunReport, ShardOutcome};
use crate::reconcile::ReconcileReport;

fn write_recon_summary(o: &mut String, r: &ReconcileReport) {
    let _ = writeln!(
        o,
        "\n{:<26} {:<18} {:>10} {:>16} {:>10}",
        "reconciliation", "state", "count", "amount (EUR)", "quantity"
    );
    for s in &r.summary {
        let _ = writeln!(
            o,
            "{:<26} {:<18} {:>10} {:>16} {:>10}",
            s.reconciliation,
            s.state,
            s.count,
            s.amount.as_deref().map(money).unwrap_or_default(),
            s.quantity.map(|q| q.to_string()).unwrap_or_default()
        );
    }
    write_exceptions(o, r);
}

/// The top of `recon_exceptions`: what is new today, what has been open longest, and the money
/// at stake per state (what finance opens the day with).
fn write_exceptions(o: &mut String, r: &ReconcileReport) {
    let Some(e) = &r.exceptions else { return };
    let counts: Vec<String> = e
        .by_change
        .iter()
        .map(|(c, n)| format!("{n} {}", c.to_lowercase()))
        .collect();
    let counts = if counts.is_empty() {
        "none".to_string()
    } else {
        counts.join(", ")
    };
    let _ = writeln!(o, "\nexceptions: {counts}");
    if !e.oldest.is_empty() {
        let _ = writeln!(o, "oldest open:");
        for (recon, key, state, days) in &e.oldest {
            let _ = writeln!(o, "  {recon:<26} {state:<18} {days:>4} days  {key}");
        }
    }
    if !e.at_stake.is_empty() {
        let _ = writeln!(
            o,
            "{:<26} {:<18} {:>10} {:>16}",
            "open by state", "state", "count", "at stake (EUR)"
        );
        for (recon, state, n, amount) in &e.at_stake {
            let amount = amount.as_deref().map(money).unwrap_or_default();
            let _ = writeln!(o, "{recon:<26} {state:<18} {n:>10} {amount:>16}");
        }
    }
}

/// Two decimals for the terminal, rounded half-even (the tables keep ten).
fn money(text: &str) -> String {
    let Ok(crate::schema::columns::Money(units)) = crate::schema::lenient::parse_money(text) else {
        return text.to_string();
    };
    // Units are 10^-10: a cent is 10^8 units.
    let step = 10i128.pow(crate::schema::columns::MONEY_SCALE as u32 - 2);
    let (quotient, remainder) = (units.div_euclid(step), units.rem_euclid(step));
    let cents = match (2 * remainder).cmp(&step) {
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal if quotient % 2 != 0 => quotient + 1,
        _ => quotient,
    };
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

fn write_extract(o: &mut String, r: Option<&crate::extract::http::ExtractReport>) {
    let Some(r) = r else { return };
    let _ = writeln!(
        o,
        "\n{:<20} {:<14} {:>10} {:>8} {:>8} {:>10} {:>7} {:>8}",
        "extracted", "api", "responses", "called", "carried", "not found", "failed", "tenants"
    );
    for s in &r.sources {
        let _ = writeln!(
            o,
            "{:<20} {:<14} {:>10} {:>8} {:>8} {:>10} {:>7} {:>8}",
            s.source,
            s.api,
            s.responses,
            s.called,
            s.carried,
            s.not_found,
            s.failed,
            s.tenants.len()
        );
    }
    for (api, s) in &r.apis {
        let _ = writeln!(
            o,
            "{api}: {} requests, {} retried (429: {}, 5xx: {}, network: {}, bad body: {})",
            s.requests, s.retries, s.retried_429, s.retried_5xx, s.retried_network, s.retried_invalid_body
        );
    }
    let base = r
        .base
        .as_ref()
        .map(|b| format!(", carried forward from run {}", b.run_id))
        .unwrap_or_default();
    let why = r
        .full_refresh_reason
        .as_ref()
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    let _ = writeln!(o, "per-id calls: {} refresh{why}{base}", r.refresh);
    match &r.raw {
        Some(c) => {
            let _ = writeln!(o, "raw captures: {} files kept at {}/{}", c.files, c.url, c.prefix);
        }
        None => {
            let _ = writeln!(o, "raw captures: none kept (raw_output is not set)");
        }
    }
    if let Some(n) = r.journey_devices_without_fees {
        let _ = writeln!(o, "journey devices without a fee record: {n}");
    }
}

/// The summary of a committed run.
pub fn summary(o: &mut String, report: &RunReport, job: &Job) {
    let m = &report.manifest;
    let total = |f: fn(&crate::normalize::SourceReport) -> u64| report.normalize.sources.iter().map(f).sum::<u64>();
    let read = total(|s| s.records_read);
    let rejects = total(|s| s.rejects);
    match &report.shard {
        Some(ShardOutcome::Waiting { missing, stale }) => {
            let _ = writeln!(
                o,
                "opslake run {} — {} {} shard {}: share staged; the day is committed when shards {:?} have staged theirs",
                m.run_id,
                m.job,
                job.as_of,
                m.shard.as_deref().unwrap_or_default(),
                missing.iter().chain(stale).collect::<Vec<_>>()
            );
        }
        Some(ShardOutcome::Committed { commit, by }) => {
            let _ = writeln!(
                o,
                "opslake run {} — {} {} shard {}: every shard's share committed by {by} (commit #{commit} of the day)",
                m.run_id,
                m.job,
                job.as_of,
                m.shard.as_deref().unwrap_or_default(),
            );
        }
        None => {
            let _ = writeln!(
                o,
                "opslake run {} — {} {} committed (commit #{} of the day)",
                m.run_id, m.job, job.as_of, m.commit
            );
        }
    }
    write_extract(o, m.extract.as_ref());
    write_sources(o, &m.sources);
    write_tables(o, &m.tables);
    write_recon_summary(o, &report.reconcile);
    let ratio = if read > 0 {
        100.0 * rejects as f64 / read as f64
    } else {
        0.0
    };
    let _ = writeln!(
        o,
        "\nrejects: {rejects} of {read} records ({ratio:.2}%, allowed {:.2}%) — see the _rejects table",
        100.0 * job.settings.max_reject_ratio
    );
    for w in &m.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    let seconds: f64 = m.stages.iter().map(|s| s.seconds).sum();
    let _ = writeln!(
        o,
        "published to {} (run_date={}) in {seconds:.1}s; personal data: {}",
        m.output, job.as_of, m.pii.key
    );
}

/// Per source: files, records read and written, rejects, duplicates collapsed.
fn write_sources(o: &mut String, sources: &[SourceManifest]) {
    let _ = writeln!(
        o,
        "\n{:<20} {:>6} {:>10} {:>10} {:>8} {:>6}",
        "source", "files", "read", "written", "rejects", "dups"
    );
    for s in sources {
        let _ = writeln!(
            o,
            "{:<20} {:>6} {:>10} {:>10} {:>8} {:>6}",
            s.name,
            s.files.len(),
            s.records_read,
            s.rows_written,
            s.rejects,
            s.duplicates
        );
    }
}

/// Per table: rows and parts.
fn write_tables(o: &mut String, tables: &std::collections::BTreeMap<String, TableManifest>) {
    let _ = writeln!(o, "\n{:<38} {:>10} {:>6} {:>8}", "table", "rows", "files", "version");
    for (name, t) in tables {
        let version = t.version.map(|v| v.to_string()).unwrap_or_default();
        let _ = writeln!(o, "{:<38} {:>10} {:>6} {:>8}", name, t.rows, t.files.len(), version);
    }
}

/// Every committed run, one line each.
pub fn runs(o: &mut String, list: &[RunManifest]) {
    let _ = writeln!(
        o,
        "{:<11} {:>6}  {:<22} {:<10} {:<20} {:>9} {:>11} {:>8} {:>7} {:>8}",
        "run_date", "commit", "run_id", "job", "committed (UTC)", "seconds", "rows", "rejects", "dups", "warnings"
    );
    for r in list {
        let rows: u64 = r.tables.values().map(|t| t.rows).sum();
        let seconds: f64 = r.stages.iter().map(|s| s.seconds).sum();
        let _ = writeln!(
            o,
            "{:<11} {:>6}  {:<22} {:<10} {:<20} {:>9.1} {:>11} {:>8} {:>7} {:>8}",
            r.run_date.map(|d| d.to_string()).unwrap_or_default(),
            r.commit,
            r.run_id,
            match &r.shard {
                Some(s) => format!("{} {s}", r.job),
                None => r.job.clone(),
            },
            r.committed_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
            seconds,
            rows,
            r.rejects,
            r.duplicates,
            r.warnings.len()
        );
    }
    if list.is_empty() {
        o.push_str("(no committed runs)\n");
    }
}

/// One run in full.
pub fn run_details(o: &mut String, r: &RunManifest) {
    let _ = writeln!(
        o,
        "run {}  job {}  run_date {}  commit #{}",
        r.run_id,
        r.job,
        r.run_date.map(|d| d.to_string()).unwrap_or_default(),
        r.commit
    );
    let _ = writeln!(
        o,
        "started {}  committed {}  code {}",
        r.started_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        r.committed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        r.code_version
    );
    let _ = writeln!(
        o,
        "input {}\noutput {}\npersonal data: {} ({})",
        r.input, r.output, r.pii.mode, r.pii.key
    );
    let _ = writeln!(o, "\n{:<12} {:>10} {:>8}", "stage", "seconds", "rows");
    for s in &r.stages {
        let _ = writeln!(o, "{:<12} {:>10.2} {:>8}", s.name, s.seconds, s.rows);
    }
    write_sources(o, &r.sources);
    let _ = writeln!(o, "\ninputs:");
    for s in &r.sources {
        for f in &s.files {
            let _ = writeln!(
                o,
                "  {:<60} {:>12} bytes {:>9} records  {}",
                f.name, f.bytes, f.records, f.checksum
            );
        }
    }
    write_tables(o, &r.tables);
    let _ = writeln!(o, "\nrejects {}  duplicates {}", r.rejects, r.duplicates);
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
}

/// A committed reconciliation of a day.
pub fn reconciled(o: &mut String, manifest: &RunManifest, r: &ReconcileReport) {
    let _ = writeln!(
        o,
        "opslake reconcile {} — {} committed (commit #{} of the day)",
        manifest.run_id,
        manifest.run_date.map(|d| d.to_string()).unwrap_or_default(),
        manifest.commit
    );
    write_recon_summary(o, r);
}

/// Raw captures of a day kept at `raw_output`.
pub fn extracted(o: &mut String, manifest: &RunManifest) {
    let files = manifest
        .extract
        .as_ref()
        .and_then(|e| e.raw.as_ref())
        .map_or(0, |r| r.files);
    let _ = writeln!(
        o,
        "opslake extract {} — {}: {files} raw captures kept",
        manifest.run_id,
        manifest.run_date.map(|d| d.to_string()).unwrap_or_default(),
    );
    write_extract(o, manifest.extract.as_ref());
}

/// Tables normalized into a folder.
pub fn normalized(o: &mut String, report: &NormalizeReport, dir: &Path) {
    for s in &report.sources {
        let _ = writeln!(
            o,
            "{:<20} read {:>9}  written {:>9}  rejects {:>6}  duplicates {:>6}",
            s.name, s.records_read, s.rows_written, s.rejects, s.duplicates
        );
    }
    let _ = writeln!(o, "tables written under {}", dir.display());
}

/// What a vacuum deleted (or would delete), per table.
pub fn vacuumed(o: &mut String, deleted: &std::collections::BTreeMap<String, Vec<String>>, dry_run: bool) {
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut total = 0;
    for (table, files) in deleted {
        if files.is_empty() {
            continue;
        }
        total += files.len();
        let _ = writeln!(o, "{table}: {verb} {} files", files.len());
        for f in files {
            let _ = writeln!(o, "  {f}");
        }
    }
    let _ = writeln!(o, "{verb} {total} files in {} tables", deleted.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_amounts_round_half_even_to_the_cent() {
        assert_eq!(money("16.6666670000"), "16.67");
        assert_eq!(money("20.5000000000"), "20.50");
        assert_eq!(money("0.0050000000"), "0.00");
        assert_eq!(money("0.0150000000"), "0.02");
        assert_eq!(money("-7.2550000001"), "-7.26");
        assert_eq!(money("-0.0040000000"), "0.00");
        assert_eq!(money("12"), "12.00");
    }
}
