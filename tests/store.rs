//! Publishing to object stores as Delta tables: one behaviour suite run on memory://, file://
//! and a local S3 server; the real binary against S3; kills at every commit point; racing runs.

mod common;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use common::*;
use opslake::publish::{self, ClaimKind, Lake, Package, TableUpload, Uploaded, layout};
use polars::prelude::*;

const DAY: &str = "2025-06-30";

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// A package of run `run_id` for `date` with `tables` (name, rows: `id` and `run` columns),
/// uploaded to `lake` (not committed).
fn stage(
    rt: &tokio::runtime::Runtime,
    lake: &Lake,
    run_id: &str,
    date: NaiveDate,
    work: &std::path::Path,
    tables: &[(&str, usize)],
) -> (Package, Vec<Uploaded>) {
    let p = rt
        .block_on(publish::create_package(
            lake,
            run_id,
            date,
            lake.local_root.is_none().then_some(work),
        ))
        .unwrap();
    let mut uploaded = Vec::new();
    for (table, rows) in tables {
        let path = p.dir.join(layout::part_path(table, date, 0));
        let mut df = df!("id" => (0..*rows as i64).collect::<Vec<_>>(), "run" => vec![run_id; *rows]).unwrap();
        publish::parquet::write(&path, &mut df).unwrap();
        let upload = TableUpload {
            table: table.to_string(),
            files: vec![path],
        };
        uploaded.push(rt.block_on(publish::upload(lake, &p, &upload)).unwrap());
    }
    (p, uploaded)
}

/// Claims the package's day and commits its tables.
fn commit(
    rt: &tokio::runtime::Runtime,
    lake: &Lake,
    p: &Package,
    uploaded: &[Uploaded],
) -> Result<u64, publish::Error> {
    rt.block_on(async {
        let claim = publish::claim_day(lake, p, ClaimKind::Day, uploaded).await?;
        publish::commit(lake, p.run_date, &claim, uploaded).await?;
        Ok(claim.number)
    })
}

/// The rows (`run:id`) of a table's day at its latest version (or `version`).
fn rows_at(
    rt: &tokio::runtime::Runtime,
    lake: &Lake,
    table: &str,
    date: NaiveDate,
    version: Option<u64>,
) -> Vec<String> {
    let work = tempfile::tempdir().unwrap();
    let Some((_, files)) = rt.block_on(publish::table_files(lake, table, date, version)).unwrap() else {
        return Vec::new();
    };
    let local = rt.block_on(publish::fetch(lake, &files, work.path())).unwrap();
    let mut out = Vec::new();
    for f in local {
        let df = ParquetReader::new(std::fs::File::open(&f).unwrap()).finish().unwrap();
        let run = df.column("run").unwrap().str().unwrap().clone();
        let id = df.column("id").unwrap().i64().unwrap().clone();
        out.extend(
            run.iter()
                .zip(id.iter())
                .map(|(r, i)| format!("{}:{}", r.unwrap(), i.unwrap())),
        );
    }
    out.sort();
    out
}

fn rows(rt: &tokio::runtime::Runtime, lake: &Lake, table: &str) -> Vec<String> {
    rows_at(rt, lake, table, day(), None)
}

// ---- the behaviour suite: every function runs on every store ----

fn a_commit_makes_the_files_visible_at_a_new_version(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    let (p, up) = stage(rt, lake, "r1", day(), work.path(), &[("a", 3), ("b", 2)]);
    assert!(rows(rt, lake, "a").is_empty(), "uploaded files are in no version");
    assert_eq!(commit(rt, lake, &p, &up).unwrap(), 1);
    assert_eq!(rows(rt, lake, "a").len(), 3);
    assert_eq!(rows(rt, lake, "b").len(), 2);
    let (version, files) = rt
        .block_on(publish::table_files(lake, "a", day(), None))
        .unwrap()
        .unwrap();
    assert!(version >= 1, "created at 0, committed after");
    assert_eq!(files, up[0].paths());
    assert_eq!(up[0].rows(), 3, "rows come from the files' statistics");
}

fn a_rerun_replaces_the_day_and_older_versions_stay_readable(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    let (p, up) = stage(rt, lake, "r1", day(), work.path(), &[("a", 5)]);
    commit(rt, lake, &p, &up).unwrap();
    let (v1, _) = rt
        .block_on(publish::table_files(lake, "a", day(), None))
        .unwrap()
        .unwrap();
    let (p, up) = stage(rt, lake, "r2", day(), work.path(), &[("a", 4)]);
    commit(rt, lake, &p, &up).unwrap();
    let a = rows(rt, lake, "a");
    assert_eq!(a.len(), 4, "replaced, not appended: {a:?}");
    assert!(a.iter().all(|r| r.starts_with("r2:")), "{a:?}");
    // Time travel: the first run's version still reads as it was (files kept until vacuum).
    assert_eq!(rows_at(rt, lake, "a", day(), Some(v1)).len(), 5);
    // Another day is another partition.
    let other = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap();
    let (p, up) = stage(rt, lake, "r3", other, work.path(), &[("a", 2)]);
    commit(rt, lake, &p, &up).unwrap();
    assert_eq!(rows(rt, lake, "a").len(), 4);
    assert_eq!(rows_at(rt, lake, "a", other, None).len(), 2);
}

fn two_runs_of_a_day_cannot_both_commit(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    // Both start before either commits: both are based on claim 0.
    let (p1, up1) = stage(rt, lake, "r1", day(), work.path(), &[("a", 1)]);
    let (p2, up2) = stage(rt, lake, "r2", day(), work.path(), &[("a", 2)]);
    commit(rt, lake, &p1, &up1).unwrap();
    let err = commit(rt, lake, &p2, &up2).unwrap_err();
    assert!(matches!(err, publish::Error::RunAlreadyCommitted { .. }), "{err}");
    assert!(err.to_string().contains("r1"), "{err}");
    assert_eq!(rows(rt, lake, "a"), ["r1:0"]);
    // The loser removed its own uploaded files, and nothing else.
    for path in up2[0].paths() {
        assert!(rt.block_on(lake.read(&path)).unwrap().is_none(), "{path} left behind");
    }
    for path in up1[0].paths() {
        assert!(
            rt.block_on(lake.read(&path)).unwrap().is_some(),
            "{path} of the winner removed"
        );
    }
}

fn a_paused_run_loses_to_a_later_run_at_its_first_table(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    // r1 claims the day, then stalls before committing its tables.
    let (p1, up1) = stage(rt, lake, "r1", day(), work.path(), &[("a", 3), ("b", 3)]);
    let claim = rt
        .block_on(publish::claim_day(lake, &p1, ClaimKind::Day, &up1))
        .unwrap();
    // r2 starts after r1's claim, commits the whole day.
    let (p2, up2) = stage(rt, lake, "r2", day(), work.path(), &[("a", 2), ("b", 2)]);
    assert_eq!(commit(rt, lake, &p2, &up2).unwrap(), claim.number + 1);
    // r1 resumes: a later claim replaced its day; it publishes nothing over it.
    let err = rt.block_on(publish::commit(lake, day(), &claim, &up1)).unwrap_err();
    assert!(matches!(err, publish::Error::RunAlreadyCommitted { .. }), "{err}");
    assert!(rows(rt, lake, "a").iter().all(|r| r.starts_with("r2:")));
    assert!(rows(rt, lake, "b").iter().all(|r| r.starts_with("r2:")));
}

fn a_day_of_many_tables_commits_each_once_and_a_loser_publishes_none_over_the_winner(
    rt: &tokio::runtime::Runtime,
    lake: &Lake,
) {
    let work = tempfile::tempdir().unwrap();
    // More tables than a run commits at once.
    let names: Vec<String> = (0..20).map(|i| format!("m{i:02}")).collect();
    let tables =
        |rows: usize| -> Vec<(&str, usize)> { names.iter().enumerate().map(|(i, n)| (n.as_str(), i + rows)).collect() };
    let (p1, up1) = stage(rt, lake, "r1", day(), work.path(), &tables(1));
    let versions = rt
        .block_on(async {
            let claim = publish::claim_day(lake, &p1, ClaimKind::Day, &up1).await?;
            publish::commit(lake, day(), &claim, &up1).await
        })
        .unwrap();
    assert_eq!(versions.keys().collect::<Vec<_>>(), names.iter().collect::<Vec<_>>());
    for (i, name) in names.iter().enumerate() {
        let (version, _) = rt
            .block_on(publish::table_files(lake, name, day(), None))
            .unwrap()
            .unwrap();
        assert_eq!(versions[name].version, version, "{name}");
        assert_eq!(rows(rt, lake, name).len(), i + 1, "{name}");
    }
    // r2 claims and stalls; r3 replaces the whole day; r2 then fails and every table keeps r3's rows.
    let (p2, up2) = stage(rt, lake, "r2", day(), work.path(), &tables(2));
    let claim2 = rt
        .block_on(publish::claim_day(lake, &p2, ClaimKind::Day, &up2))
        .unwrap();
    let (p3, up3) = stage(rt, lake, "r3", day(), work.path(), &tables(3));
    commit(rt, lake, &p3, &up3).unwrap();
    let err = rt.block_on(publish::commit(lake, day(), &claim2, &up2)).unwrap_err();
    assert!(matches!(err, publish::Error::RunAlreadyCommitted { .. }), "{err}");
    for (i, name) in names.iter().enumerate() {
        let rows = rows(rt, lake, name);
        assert_eq!(rows.len(), i + 3, "{name}");
        assert!(rows.iter().all(|r| r.starts_with("r3:")), "{name}: {rows:?}");
    }
}

fn runs_of_different_days_commit_side_by_side(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    let days: Vec<NaiveDate> = (1..=4).map(|d| NaiveDate::from_ymd_opt(2025, 8, d).unwrap()).collect();
    // Create the table first, so every run below reads the same version.
    let (p, up) = stage(rt, lake, "r0", days[0], work.path(), &[("c", 1)]);
    commit(rt, lake, &p, &up).unwrap();
    let staged: Vec<_> = days
        .iter()
        .enumerate()
        .map(|(i, d)| stage(rt, lake, &format!("d{i}"), *d, work.path(), &[("c", i + 1)]))
        .collect();
    let results: Vec<_> = rt.block_on(futures::future::join_all(staged.iter().map(|(p, up)| async move {
        let claim = publish::claim_day(lake, p, ClaimKind::Day, up).await?;
        publish::commit(lake, p.run_date, &claim, up).await
    })));
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    for (i, d) in days.iter().enumerate() {
        assert_eq!(rows_at(rt, lake, "c", *d, None).len(), i + 1, "{d}");
    }
}

fn vacuum_deletes_only_what_the_retention_lets_go(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    let (p, up1) = stage(rt, lake, "r1", day(), work.path(), &[("v", 2)]);
    commit(rt, lake, &p, &up1).unwrap();
    let (p, up2) = stage(rt, lake, "r2", day(), work.path(), &[("v", 3)]);
    commit(rt, lake, &p, &up2).unwrap();
    // A killed run's upload: in no version.
    let (_, orphan) = stage(rt, lake, "r3", day(), work.path(), &[("v", 1)]);
    let kept = rt
        .block_on(publish::vacuum(lake, chrono::Duration::days(7), false))
        .unwrap();
    assert!(
        kept.values().all(Vec::is_empty),
        "nothing is older than 7 days: {kept:?}"
    );
    let dry = rt
        .block_on(publish::vacuum(lake, chrono::Duration::zero(), true))
        .unwrap();
    assert!(!dry["v"].is_empty());
    for path in up1[0].paths().iter().chain(&orphan[0].paths()) {
        assert!(
            rt.block_on(lake.read(path)).unwrap().is_some(),
            "a dry run deleted {path}"
        );
    }
    rt.block_on(publish::vacuum(lake, chrono::Duration::zero(), false))
        .unwrap();
    for path in up1[0].paths().iter().chain(&orphan[0].paths()) {
        assert!(rt.block_on(lake.read(path)).unwrap().is_none(), "{path} kept");
    }
    assert_eq!(rows(rt, lake, "v").len(), 3, "the latest version is intact");
}

fn a_failed_upload_removes_every_file_the_run_put(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    let p = rt
        .block_on(publish::create_package(
            lake,
            "rf",
            day(),
            lake.local_root.is_none().then_some(work.path()),
        ))
        .unwrap();
    // More tables than a run uploads at once; the sixth's second file is not there, so its
    // first is already in the lake when it fails, and tables around it are being put.
    let tables: Vec<TableUpload> = (0..12)
        .map(|i| {
            let table = format!("u{i:02}");
            let path = p.dir.join(layout::part_path(&table, day(), 0));
            let mut df = df!("id" => [1i64, 2], "run" => ["rf", "rf"]).unwrap();
            publish::parquet::write(&path, &mut df).unwrap();
            let mut files = vec![path];
            if i == 5 {
                files.push(p.dir.join("missing.parquet"));
            }
            TableUpload { table, files }
        })
        .collect();
    let err = rt.block_on(publish::upload_all(lake, &p, &tables)).unwrap_err();
    assert!(err.to_string().contains("missing.parquet"), "{err}");
    for t in &tables {
        let left = rt.block_on(lake.list(&t.table)).unwrap();
        assert!(left.is_empty(), "{}: {left:?}", t.table);
    }
}

fn run_suite(open: impl Fn(&str) -> Lake) {
    let rt = rt();
    a_commit_makes_the_files_visible_at_a_new_version(&rt, &open("s1"));
    a_rerun_replaces_the_day_and_older_versions_stay_readable(&rt, &open("s2"));
    two_runs_of_a_day_cannot_both_commit(&rt, &open("s3"));
    a_paused_run_loses_to_a_later_run_at_its_first_table(&rt, &open("s4"));
    runs_of_different_days_commit_side_by_side(&rt, &open("s5"));
    a_day_of_many_tables_commits_each_once_and_a_loser_publishes_none_over_the_winner(&rt, &open("s7"));
    vacuum_deletes_only_what_the_retention_lets_go(&rt, &open("s6"));
    a_failed_upload_removes_every_file_the_run_put(&rt, &open("s8"));
}

#[test]
fn the_store_behaviours_hold_in_memory() {
    run_suite(|_| Lake::open("memory://").unwrap());
}

#[test]
fn the_store_behaviours_hold_on_a_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    run_suite(|name| Lake::open(dir.path().join(name).to_str().unwrap()).unwrap());
}

#[test]
fn the_store_behaviours_hold_on_s3() {
    let Some(s3) = S3Server::start() else { return };
    for (k, v) in s3.env() {
        // SAFETY: set before any thread of this test reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    run_suite(|name| Lake::open(&s3.url(name)).unwrap());
}

// ---- the real binary ----

/// The rows of every table of a local lake's day, by table (latest versions).
fn snapshot(lake: &std::path::Path) -> std::collections::BTreeMap<String, usize> {
    let rt = rt();
    let l = Lake::open(lake.to_str().unwrap()).unwrap();
    rt.block_on(publish::tables(&l))
        .unwrap()
        .into_iter()
        .map(|t| {
            let n = rows_or_height(lake, &t);
            (t, n)
        })
        .collect()
}

fn rows_or_height(lake: &std::path::Path, table: &str) -> usize {
    read_table(lake, table, DAY).height()
}

fn run_cmd(t: &TestLake, extra: &[&str]) -> std::process::Command {
    let mut c = t.cmd();
    c.args(["run", "--as-of", DAY, "--input"])
        .arg(t.input())
        .arg("--output")
        .arg(t.lake())
        .args(extra);
    c
}

#[test]
fn a_run_publishes_to_s3_and_reads_back_like_a_local_run() {
    let Some(s3) = S3Server::start() else { return };
    let t = TestLake::new();
    t.generate(300, 9);
    t.run_ok(DAY, &[]);
    let local = snapshot(&t.lake());
    let run = |args: &[&str]| {
        let mut c = t.cmd();
        c.args(args);
        for (k, v) in s3.env() {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let input = t.input();
    let lake_url = s3.url("lake");
    run(&[
        "run",
        "--as-of",
        DAY,
        "--batch-bytes",
        "100000",
        "--input",
        input.to_str().unwrap(),
        "--output",
        &lake_url,
    ]);
    for (k, v) in s3.env() {
        // SAFETY: set before this test starts any thread that reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    let rt = rt();
    let lake = Lake::open(&lake_url).unwrap();
    let mut remote = std::collections::BTreeMap::new();
    for table in rt.block_on(publish::tables(&lake)).unwrap() {
        let n = rows_at_any(&rt, &lake, &table);
        remote.insert(table, n);
    }
    assert_eq!(local, remote, "an S3 run publishes the same tables as a local one");
    // The reconcile command reads the committed day back from S3.
    let out = run(&["reconcile", "--run-date", DAY, "--output", &lake_url]);
    assert!(out.contains("opslake reconcile"), "{out}");
    let records = rt.block_on(opslake::pipeline::record::day(&lake, day())).unwrap();
    assert_eq!(
        records.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["run", "reconcile"]
    );
    assert_eq!(records[1].commit, 2);
}

/// Rows of a table's day in any lake (files fetched and read with polars).
fn rows_at_any(rt: &tokio::runtime::Runtime, lake: &Lake, table: &str) -> usize {
    let work = tempfile::tempdir().unwrap();
    let (_, files) = rt
        .block_on(publish::table_files(lake, table, day(), None))
        .unwrap()
        .unwrap();
    rt.block_on(publish::fetch(lake, &files, work.path()))
        .unwrap()
        .iter()
        .map(|f| ParquetReader::new(std::fs::File::open(f).unwrap()).num_rows().unwrap())
        .sum()
}

#[test]
fn a_kill_at_any_commit_point_leaves_every_table_at_a_committed_version_and_the_rerun_is_exact() {
    let reference = TestLake::new();
    reference.generate(150, 13);
    reference.run_ok(DAY, &[]);
    let want = snapshot(&reference.lake());
    for point in ["uploaded", "claimed", "committing", "committed"] {
        let t = TestLake::new();
        t.generate(150, 13);
        // A first complete run, then a run killed at the point.
        t.run_ok(DAY, &["--batch-bytes", "50000"]);
        let out = run_cmd(&t, &[])
            .env("OPSLAKE_TEST_HOOK", format!("{point}=crash"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the hook must crash the run");
        // Every table still reads at its latest version: the first run's, or the killed
        // run's (a table it committed before the kill); the same rows either way.
        assert_eq!(snapshot(&t.lake()), want, "{point}");
        assert_eq!(t.manifests(DAY).len(), 1, "{point}: a killed run writes no record");
        // The re-run commits everything.
        t.run_ok(DAY, &[]);
        assert_eq!(snapshot(&t.lake()), want, "{point}: after the re-run");
        let m = t.manifests(DAY);
        assert_eq!(m.len(), 2, "{point}");
        assert_eq!(m[1]["tables"].as_object().unwrap().len(), want.len(), "{point}");
    }
}

#[test]
fn a_failed_upload_leaves_no_file_of_the_run_in_the_lake_and_the_next_run_publishes_all() {
    let t = TestLake::new();
    t.generate(80, 9);
    // A file where one table's day folder goes: putting that table's files fails, while
    // the tables before and after it are being put (several at a time).
    let blocked = t.lake().join("orders").join(format!("run_date={DAY}"));
    std::fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    std::fs::write(&blocked, b"not a folder").unwrap();
    let out = t.run(DAY, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("orders"), "the error names the table's path: {stderr}");
    // Nothing of the run is left: no data file, no table, no run record.
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut left = Vec::new();
    files(&t.lake(), &mut left);
    assert_eq!(
        left,
        vec![blocked.clone()],
        "only the blocking file is left in the lake"
    );
    // Once the way is clear, a run publishes every table.
    std::fs::remove_file(&blocked).unwrap();
    t.run_ok(DAY, &[]);
    assert_eq!(read_table(&t.lake(), "orders", DAY).height(), t.generated_orders(80));
    let m = t.manifests(DAY);
    assert_eq!(m.len(), 1);
    assert!(m[0]["tables"].as_object().unwrap().len() > 20, "{}", m[0]["tables"]);
}

#[test]
fn a_run_killed_at_random_moments_never_leaves_a_table_unreadable() {
    let t = TestLake::new();
    t.generate(200, 21);
    t.run_ok(DAY, &[]);
    let want = snapshot(&t.lake());
    for delay_ms in [150, 400, 900, 1500, 2500] {
        let mut child = run_cmd(&t, &[]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(snapshot(&t.lake()), want, "killed after {delay_ms} ms");
    }
    t.run_ok(DAY, &[]);
    assert_eq!(snapshot(&t.lake()), want);
}

#[test]
fn two_concurrent_runs_of_a_day_one_commits_and_the_other_exits_6() {
    let t = TestLake::new();
    t.generate(120, 4);
    // Both hold before claiming, so both are based on the same claim.
    let spawn = || {
        run_cmd(&t, &[])
            .env("OPSLAKE_TEST_HOOK", "uploaded=sleep:1500")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(6)), "{codes:?}");
    let loser = if a.status.code() == Some(6) { &a } else { &b };
    let stderr = String::from_utf8_lossy(&loser.stderr);
    assert!(stderr.contains("another run"), "{stderr}");
    let m = t.manifests(DAY);
    assert_eq!(m.len(), 1, "one record");
    assert_eq!(
        read_table(&t.lake(), "orders", DAY).height(),
        t.generated_orders(120),
        "the winner's rows, once"
    );
}

#[test]
fn a_run_paused_after_its_claim_loses_to_a_later_run_and_removes_nothing_of_it() {
    let t = TestLake::new();
    t.generate(150, 6);
    let go = t.dir.path().join("go");
    let slow = run_cmd(&t, &[])
        .env("OPSLAKE_TEST_HOOK", format!("claimed=wait:{}", go.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for its claim, then run the day again to completion.
    let claim = t.lake().join(format!("_runs/run_date={DAY}/_claims/00000001.json"));
    for _ in 0..2400 {
        if claim.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(claim.exists(), "the slow run never claimed the day");
    t.run_ok(DAY, &[]);
    std::fs::write(&go, "").unwrap();
    let out = slow.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    let m = t.manifests(DAY);
    assert_eq!(m.len(), 1);
    // The later run's record names every file that each table holds now.
    for (table, rec) in m[0]["tables"].as_object().unwrap() {
        let mut listed: Vec<String> = rec["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        listed.sort();
        let mut now: Vec<String> = table_files(&t.lake(), table, DAY)
            .iter()
            .map(|p| p.strip_prefix(t.lake()).unwrap().to_string_lossy().into_owned())
            .collect();
        now.sort();
        assert_eq!(listed, now, "{table}");
        for f in &now {
            assert!(t.lake().join(f).exists(), "{f} was deleted");
        }
    }
    assert_eq!(read_table(&t.lake(), "orders", DAY).height(), t.generated_orders(150));
}

#[test]
fn runs_list_shows_every_day_in_order_with_its_versions() {
    let t = TestLake::new();
    t.generate(60, 2);
    for d in ["2025-06-29", "2025-06-27", "2025-06-28", "2025-06-28"] {
        t.run_ok(d, &[]);
    }
    let out = t
        .cmd()
        .args(["runs", "list", "--output"])
        .arg(t.lake())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let days: Vec<&str> = lines.iter().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(days, ["2025-06-27", "2025-06-28", "2025-06-28", "2025-06-29"], "{text}");
    let commits: Vec<&str> = lines.iter().map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(commits, ["1", "1", "2", "1"]);
    let m = t.manifests("2025-06-28");
    let id = m[1]["run_id"].as_str().unwrap();
    let out = t
        .cmd()
        .args(["runs", "show", id, "--output"])
        .arg(t.lake())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(id) && text.contains("orders"), "{text}");
    // Each table line names the Delta version the run committed.
    let orders = m[1]["tables"]["orders"]["version"].as_i64().unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("orders ") && l.trim_end().ends_with(&orders.to_string())),
        "{text}"
    );
}

#[test]
fn failures_exit_with_their_documented_codes() {
    let t = TestLake::new();
    t.generate(20, 21);
    let code = |args: &[&str]| t.cmd().args(args).output().unwrap();
    // 2: bad configuration.
    let out = code(&["run", "--as-of", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: bad as_of"));
    let out = code(&["run", "--input", "/nonexistent/folder"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("input folder /nonexistent/folder does not exist"));
    let out = code(&["runs", "list", "--output", "ftp://nowhere/lake"]);
    assert_eq!(out.status.code(), Some(2), "a bad lake URL is configuration");
    // 5: publishing failed (a lake that cannot be written).
    let blocker = t.dir.path().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let out = t
        .cmd()
        .args(["run", "--as-of", DAY, "--input"])
        .arg(t.input())
        .arg("--output")
        .arg(&blocker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn vacuum_keeps_the_files_of_recent_versions() {
    let t = TestLake::new();
    t.generate(50, 8);
    t.run_ok(DAY, &[]);
    let first = table_files(&t.lake(), "orders", DAY);
    t.run_ok(DAY, &[]);
    let vacuum = |extra: &[&str]| {
        let out = t
            .cmd()
            .args(["vacuum", "--output"])
            .arg(t.lake())
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = vacuum(&[]);
    assert!(out.contains("deleted 0 files"), "{out}");
    assert!(first.iter().all(|f| f.exists()), "replaced files stay for 7 days");
    let out = vacuum(&["--retention-hours", "0", "--dry-run"]);
    assert!(out.contains("would delete"), "{out}");
    assert!(first.iter().all(|f| f.exists()));
    vacuum(&["--retention-hours", "0"]);
    assert!(first.iter().all(|f| !f.exists()), "replaced files deleted");
    assert_eq!(t.table("orders", DAY).height(), t.generated_orders(50));
}

#[test]
fn the_kubernetes_manifests_have_what_operations_need() {
    let dir = repo().join("jobs/k8s");
    let load = |f: &str| -> serde_json::Value {
        let y: serde_norway::Value = serde_norway::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
        serde_json::to_value(y).unwrap()
    };
    for f in ["cronjob-daily.yaml", "sharded/cronjob-sharded.yaml"] {
        let c = load(f);
        assert_eq!(c["kind"], "CronJob", "{f}");
        assert_eq!(c["spec"]["concurrencyPolicy"], "Forbid", "{f}");
        assert!(c["spec"]["startingDeadlineSeconds"].as_u64().unwrap() > 0, "{f}");
        let job = &c["spec"]["jobTemplate"]["spec"];
        assert!(job["activeDeadlineSeconds"].as_u64().unwrap() > 0, "{f}");
        assert!(
            job["backoffLimit"].is_u64() || job["backoffLimitPerIndex"].is_u64(),
            "{f}"
        );
        let pod = &job["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{f}");
        let container = &pod["containers"][0];
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true, "{f}");
        assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false, "{f}");
        for r in ["requests", "limits"] {
            assert!(
                container["resources"][r]["memory"].is_string() && container["resources"][r]["cpu"].is_string(),
                "{f} {r}"
            );
        }
        // Keys are Secrets mounted as files, pointed at by the *_FILE variables, never values.
        let env: BTreeMap<String, serde_json::Value> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
            .collect();
        assert!(
            !env.contains_key("OPSLAKE_PII_KEY") && !env.contains_key("OPSLAKE_API_KEY"),
            "{f}"
        );
        for (var, secret) in [
            ("OPSLAKE_PII_KEY_FILE", "opslake-pii-key"),
            ("OPSLAKE_API_KEY_FILE", "opslake-api-key"),
        ] {
            let path = env[var]["value"].as_str().unwrap();
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["secret"]["secretName"] == secret)
                .unwrap();
            let mount = container["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == volume["name"])
                .unwrap();
            assert!(
                path.starts_with(mount["mountPath"].as_str().unwrap()),
                "{f}: {var} is not in the mounted secret"
            );
            assert_eq!(mount["readOnly"], true);
        }
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args[0], "run", "{f}");
    }
    let sharded = load("sharded/cronjob-sharded.yaml");
    let job = &sharded["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"], "Indexed");
    let n = job["completions"].as_u64().unwrap();
    let args = job["template"]["spec"]["containers"][0]["args"].as_array().unwrap();
    let shard = args.iter().position(|a| a == "--shard").unwrap();
    assert_eq!(args[shard + 1], format!("$(JOB_COMPLETION_INDEX)/{n}"));
    // The shipped kustomizations install one schedule each, so the daily and the sharded jobs
    // are never both installed on one lake (they would replace each other's days).
    for (k, want) in [
        ("kustomization.yaml", "cronjob-daily.yaml"),
        ("sharded/kustomization.yaml", "cronjob-sharded.yaml"),
    ] {
        let text = std::fs::read_to_string(dir.join(k)).unwrap();
        let resources = ["cronjob-daily.yaml", "cronjob-sharded.yaml"]
            .iter()
            .filter(|f| text.contains(*f))
            .collect::<Vec<_>>();
        assert_eq!(resources, [&want], "{k}");
    }
    let docker = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(docker.matches("FROM ").count() >= 2, "multi-stage");
    assert!(docker.contains("USER 65532"), "non-root");
}
