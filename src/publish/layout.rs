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

/// A share of a day's run (`--shard i/n`): the tenants whose stable hash modulo `count` is
/// `index`; files outside any tenant folder belong to shard 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// 0-based index.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Shard {
    /// Parses `i/n` (0 <= i < n <= 999).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text.split_once('/').ok_or("expected i/n, such as 0/4")?;
        let index: u32 = i.trim().parse().map_err(|_| "the shard index is not a number")?;
        let count: u32 = n.trim().parse().map_err(|_| "the shard count is not a number")?;
        if count == 0 || count > 999 || index >= count {
            return Err("expected 0 <= i < n <= 999".into());
        }
        Ok(Shard { index, count })
    }

    /// Whether the shard reads the files of `tenant` (`None`: files of no tenant).
    pub fn owns(&self, tenant: Option<&str>) -> bool {
        match tenant {
            None => self.index == 0,
            Some(t) => xxhash_rust::xxh3::xxh3_64(t.as_bytes()) % self.count as u64 == self.index as u64,
        }
    }

    /// The first part number of the shard.
    pub fn part_base(&self) -> u64 {
        (self.count as u64 * 1000 + self.index as u64) * PART_RANGE
    }

    /// The shard a part number belongs to (`None`: an unsharded run's part).
    pub fn of_part(n: u64) -> Option<Shard> {
        let s = n / PART_RANGE;
        (s >= 1000).then_some(Shard {
            count: (s / 1000) as u32,
            index: (s % 1000) as u32,
        })
    }

    /// `shard-{i}-of-{n}`: the shard's commit scope.
    pub fn scope(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
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
        Some(s) => format!("{}/{}", all_commits_prefix(run_date), s.scope()),
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
        let s = Shard::parse("2/4").unwrap();
        assert_eq!(
            commit_path(d, Some(s), 1),
            "_runs/run_date=2026-11-29/_commits/shard-2-of-4/00000001.json"
        );
        assert_eq!(Shard::of_part(s.part_base() + 17), Some(s));
        assert_eq!(Shard::of_part(17), None);
        assert_eq!(part_number("part-12.parquet"), Some(12));
        assert_eq!(part_number("part-x.parquet"), None);
        assert_eq!(commit_number("00000007.json"), Some(7));
    }
}

#[cfg(test)]
mod shard_tests {
    use super::*;

    #[test]
    fn every_tenant_belongs_to_exactly_one_shard() {
        for n in 1..6 {
            for t in ["masmovil", "yoigo", "pepephone", "lebara", "x"] {
                let owners = (0..n).filter(|i| Shard { index: *i, count: n }.owns(Some(t))).count();
                assert_eq!(owners, 1, "{t} in {n}");
            }
            assert_eq!((0..n).filter(|i| Shard { index: *i, count: n }.owns(None)).count(), 1);
        }
    }

    #[test]
    fn bad_shards_are_refused() {
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
