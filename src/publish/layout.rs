//! Every object path opslake reads or writes, made and parsed here only.
//!
//! ```text
//! {root}/{table}/_delta_log/...                              a Delta table, partitioned by run_date
//! {root}/{table}/run_date=YYYY-MM-DD/part-{n}-{run_id}-{uuid}.parquet   its data files
//! {root}/_runs/run_date=YYYY-MM-DD/{run_id}.json             run records, written once, last
//! {root}/_runs/run_date=YYYY-MM-DD/_claims/{n:08}.json       claims: one per commit of the day
//! {root}/_runs/run_date=YYYY-MM-DD/_shards/{n}/{i}.json      shard shares waiting for the others
//! {root}/_staging/{run_id}/...                               a local lake's package, before publishing
//! ```
//! Raw API captures are never in the lake: they go to `raw_output` (`extract::raw::layout`).
//! A package (a run's local output) is laid out like the root: `{table}/run_date=D/part-N.parquet`.
//! Data file names are never reused: each holds the run's id and a random uuid.

use chrono::NaiveDate;

/// The folder of run records.
pub const RUNS: &str = "_runs";
/// The folder of local lakes' packages.
pub const STAGING: &str = "_staging";
/// The partition column.
pub const RUN_DATE: &str = "run_date";

/// `run_date=YYYY-MM-DD`.
pub fn partition(run_date: NaiveDate) -> String {
    format!("{RUN_DATE}={}", run_date.format("%Y-%m-%d"))
}

/// The day of a `run_date=YYYY-MM-DD` folder name.
pub fn parse_partition(name: &str) -> Option<NaiveDate> {
    name.strip_prefix("run_date=")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

/// `{table}/run_date=YYYY-MM-DD`: a table's partition folder (in the lake or a package).
pub fn table_partition(table: &str, run_date: NaiveDate) -> String {
    format!("{table}/{}", partition(run_date))
}

/// `part-{n}.parquet`: a file of a package.
pub fn part_name(n: u64) -> String {
    format!("part-{n}.parquet")
}

/// `{table}/run_date=YYYY-MM-DD/part-{n}.parquet`: a file of a package.
pub fn part_path(table: &str, run_date: NaiveDate, n: u64) -> String {
    format!("{}/{}", table_partition(table, run_date), part_name(n))
}

/// A published data file's path relative to its table's folder:
/// `run_date=D/part-{n:05}-{run_id}-{uuid}.parquet`.
pub fn data_file(run_date: NaiveDate, n: usize, run_id: &str) -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!("{}/part-{n:05}-{run_id}-{uuid}.parquet", partition(run_date))
}

/// `{table}/_delta_log`: a table's Delta log.
pub fn delta_log(table: &str) -> String {
    format!("{table}/_delta_log")
}

/// `{table}/{relative}`: a data file's path from the lake's root.
pub fn table_file(table: &str, relative: &str) -> String {
    format!("{table}/{relative}")
}

/// `_runs/run_date=YYYY-MM-DD`.
pub fn runs_partition(run_date: NaiveDate) -> String {
    format!("{RUNS}/{}", partition(run_date))
}

/// `_runs/run_date=YYYY-MM-DD/{run_id}.json`: a run's record.
pub fn record_path(run_date: NaiveDate, run_id: &str) -> String {
    format!("{}/{run_id}.json", runs_partition(run_date))
}

/// Whether `path` (under `_runs/run_date=D/`) is a run record (not a claim or a share).
pub fn is_record(path: &str) -> bool {
    path.ends_with(".json") && !path.contains("/_claims/") && !path.contains("/_shards/")
}

/// `_runs/run_date=YYYY-MM-DD/_claims`.
pub fn claims_prefix(run_date: NaiveDate) -> String {
    format!("{}/_claims", runs_partition(run_date))
}

/// `_runs/run_date=YYYY-MM-DD/_claims/{n:08}.json`: the claim of the day's commit `n`.
pub fn claim_path(run_date: NaiveDate, n: u64) -> String {
    format!("{}/{n:08}.json", claims_prefix(run_date))
}

/// The number of a claim's file name.
pub fn claim_number(name: &str) -> Option<u64> {
    name.strip_suffix(".json")?.parse().ok()
}

/// `_runs/run_date=YYYY-MM-DD/_shards/{count}`: the shares of a day split in `count` shards.
pub fn shards_prefix(run_date: NaiveDate, count: u32) -> String {
    format!("{}/_shards/{count}", runs_partition(run_date))
}

/// `_runs/run_date=YYYY-MM-DD/_shards/{count}/{index}.json`: one shard's latest share.
pub fn shard_path(run_date: NaiveDate, count: u32, index: u32) -> String {
    format!("{}/{index}.json", shards_prefix(run_date, count))
}

/// `_staging/{run_id}`: a local lake's package.
pub fn staging_prefix(run_id: &str) -> String {
    format!("{STAGING}/{run_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_layout() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(part_path("orders", d, 3), "orders/run_date=2026-11-29/part-3.parquet");
        assert_eq!(record_path(d, "r1"), "_runs/run_date=2026-11-29/r1.json");
        assert_eq!(claim_path(d, 7), "_runs/run_date=2026-11-29/_claims/00000007.json");
        assert_eq!(shard_path(d, 4, 2), "_runs/run_date=2026-11-29/_shards/4/2.json");
        assert_eq!(claim_number("00000007.json"), Some(7));
        assert!(is_record("_runs/run_date=2026-11-29/r1.json"));
        assert!(!is_record("_runs/run_date=2026-11-29/_claims/00000007.json"));
        assert_eq!(parse_partition("run_date=2026-11-29"), Some(d));
        assert_eq!(parse_partition("run_date=tomorrow"), None);
    }

    #[test]
    fn data_files_are_never_named_twice() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let a = data_file(d, 0, "20261129T100000Z-ab12");
        let b = data_file(d, 0, "20261129T100000Z-ab12");
        assert_ne!(a, b);
        assert!(
            a.starts_with("run_date=2026-11-29/part-00000-20261129T100000Z-ab12-"),
            "{a}"
        );
    }
}
