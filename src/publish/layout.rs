//! Every object path opslake reads or writes, in one place.
//!
//! ```text
//! {root}/{table}/run_date=YYYY-MM-DD/part-{n}.parquet     published tables (Hive-partitioned)
//! {root}/_runs/run_date=YYYY-MM-DD/{run_id}.json          run manifests, written last
//! {root}/_runs/run_date=YYYY-MM-DD/_commits/{seq}.json    commit claims, one per commit of the day
//! {root}/_staging/{run_id}/...                            a run's files before they are committed
//! {root}/raw/{source}/run_date=YYYY-MM-DD/...             raw API responses, kept for replays
//! ```
//! A local package (the normalize stage's output) mirrors the root's table layout.

use chrono::NaiveDate;

/// The folder of runs' manifests.
pub const RUNS: &str = "_runs";
/// The folder of staged, uncommitted runs.
pub const STAGING: &str = "_staging";

/// `run_date=YYYY-MM-DD`.
pub fn partition(run_date: NaiveDate) -> String {
    format!("run_date={}", run_date.format("%Y-%m-%d"))
}

/// `{table}/run_date=YYYY-MM-DD`: a table's partition for a day.
pub fn table_partition(table: &str, run_date: NaiveDate) -> String {
    format!("{table}/{}", partition(run_date))
}

/// `part-{n}.parquet`.
pub fn part_name(n: u32) -> String {
    format!("part-{n}.parquet")
}

/// The part number of a part file name, if it is one.
pub fn part_number(name: &str) -> Option<u32> {
    name.strip_prefix("part-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// `{table}/run_date=YYYY-MM-DD/part-{n}.parquet`.
pub fn part_path(table: &str, run_date: NaiveDate, n: u32) -> String {
    format!("{}/{}", table_partition(table, run_date), part_name(n))
}

/// `_runs/run_date=YYYY-MM-DD`.
pub fn runs_partition(run_date: NaiveDate) -> String {
    format!("{RUNS}/{}", partition(run_date))
}

/// `_runs/run_date=YYYY-MM-DD/{run_id}.json`.
pub fn manifest_path(run_date: NaiveDate, run_id: &str) -> String {
    format!("{}/{run_id}.json", runs_partition(run_date))
}

/// `_runs/run_date=YYYY-MM-DD/_commits`.
pub fn commits_prefix(run_date: NaiveDate) -> String {
    format!("{}/_commits", runs_partition(run_date))
}

/// `_runs/run_date=YYYY-MM-DD/_commits/{seq:08}.json`: the claim of the day's commit `seq`.
pub fn commit_path(run_date: NaiveDate, seq: u64) -> String {
    format!("{}/{seq:08}.json", commits_prefix(run_date))
}

/// The commit number of a claim's file name.
pub fn commit_number(name: &str) -> Option<u64> {
    name.strip_suffix(".json")?.parse().ok()
}

/// `_staging/{run_id}`.
pub fn staging_prefix(run_id: &str) -> String {
    format!("{STAGING}/{run_id}")
}

/// `raw/{source}/run_date=YYYY-MM-DD`.
pub fn raw_prefix(source: &str, run_date: NaiveDate) -> String {
    format!("raw/{source}/{}", partition(run_date))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_design() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(
            part_path("orders", d, 3),
            "orders/run_date=2026-11-29/part-3.parquet"
        );
        assert_eq!(manifest_path(d, "r1"), "_runs/run_date=2026-11-29/r1.json");
        assert_eq!(
            commit_path(d, 7),
            "_runs/run_date=2026-11-29/_commits/00000007.json"
        );
        assert_eq!(part_number("part-12.parquet"), Some(12));
        assert_eq!(part_number("part-x.parquet"), None);
        assert_eq!(commit_number("00000007.json"), Some(7));
    }
}
