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

use crate::job::Shard;

/// The folder of runs' manifests.
pub const RUNS: &str = "_runs";
/// The folder of staged, uncommitted runs.
pub const STAGING: &str = "_staging";
/// The folder of raw API captures.
pub const RAW: &str = "raw";

/// `run_date=YYYY-MM-DD`.
pub fn partition(run_date: NaiveDate) -> String {
    format!("run_date={}", run_date.format("%Y-%m-%d"))
}

/// `{table}/run_date=YYYY-MM-DD`: a table's partition for a day.
pub fn table_partition(table: &str, run_date: NaiveDate) -> String {
    format!("{table}/{}", partition(run_date))
}

/// `part-{n}.parquet`.
pub fn part_name(n: u64) -> String {
    format!("part-{n}.parquet")
}

/// The part number of a part file name, if it is one.
pub fn part_number(name: &str) -> Option<u64> {
    name.strip_prefix("part-")?.strip_suffix(".parquet")?.parse().ok()
}

/// Part numbers of a shard start at `(count * 1000 + index) * PART_RANGE`; an unsharded run
/// numbers its parts from 0. Every shard of a day writes into the day's partition without
/// touching the others' parts.
pub const PART_RANGE: u64 = 1_000_000;

/// The first part number of a shard's parts.
pub fn shard_part_base(shard: Shard) -> u64 {
    (shard.count as u64 * 1000 + shard.index as u64) * PART_RANGE
}

/// The shard a part number belongs to (`None`: an unsharded run's part).
pub fn shard_of_part(n: u64) -> Option<Shard> {
    let s = n / PART_RANGE;
    (s >= 1000).then_some(Shard {
        count: (s / 1000) as u32,
        index: (s % 1000) as u32,
    })
}

/// `shard-{i}-of-{n}`: the shard's commit scope.
fn shard_scope(shard: Shard) -> String {
    format!("shard-{}-of-{}", shard.index, shard.count)
}

/// `{table}/run_date=YYYY-MM-DD/part-{n}.parquet`.
pub fn part_path(table: &str, run_date: NaiveDate, n: u64) -> String {
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

/// `_runs/run_date=YYYY-MM-DD/_commits`: the claims of every scope of the day.
pub fn all_commits_prefix(run_date: NaiveDate) -> String {
    format!("{}/_commits", runs_partition(run_date))
}

/// The claims of one scope: the whole day, or `.../_commits/shard-{i}-of-{n}`.
pub fn commits_prefix(run_date: NaiveDate, shard: Option<Shard>) -> String {
    match shard {
        None => all_commits_prefix(run_date),
        Some(s) => format!("{}/{}", all_commits_prefix(run_date), shard_scope(s)),
    }
}

/// `.../_commits[/shard-i-of-n]/{seq:08}.json`: the claim of the scope's commit `seq`.
pub fn commit_path(run_date: NaiveDate, shard: Option<Shard>, seq: u64) -> String {
    format!("{}/{seq:08}.json", commits_prefix(run_date, shard))
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
    format!("{RAW}/{source}/{}", partition(run_date))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_design() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(part_path("orders", d, 3), "orders/run_date=2026-11-29/part-3.parquet");
        assert_eq!(manifest_path(d, "r1"), "_runs/run_date=2026-11-29/r1.json");
        assert_eq!(
            commit_path(d, None, 7),
            "_runs/run_date=2026-11-29/_commits/00000007.json"
        );
        let s: Shard = "2/4".parse().unwrap();
        assert_eq!(
            commit_path(d, Some(s), 1),
            "_runs/run_date=2026-11-29/_commits/shard-2-of-4/00000001.json"
        );
        assert_eq!(shard_of_part(shard_part_base(s) + 17), Some(s));
        assert_eq!(shard_of_part(17), None);
        assert_eq!(part_number("part-12.parquet"), Some(12));
        assert_eq!(part_number("part-x.parquet"), None);
        assert_eq!(commit_number("00000007.json"), Some(7));
    }
}
