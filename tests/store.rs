//! Publishing to object stores: one behaviour suite run on memory://, file:// and a local S3
//! server; the real binary against S3; crashes at every commit point; concurrent runs.

mod common;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use common::*;
use opslake::publish::{self, Lake, RunManifest, layout};
use polars::prelude::*;

const DAY: &str = "2025-06-30";

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// A package with `tables` (name, rows), staged for `lake`.
fn package(
    rt: &tokio::runtime::Runtime,
    lake: &Lake,
    run_id: &str,
    work: &std::path::Path,
    tables: &[(&str, usize)],
) -> publish::Package {
    let p = rt
        .block_on(publish::create_package(
            lake,
            run_id,
            day(),
            lake.local_root.is_none().then_some(work),
            None,
        ))
        .unwrap();
    for (table, rows) in tables {
        let mut df = df!("id" => (0..*rows as i64).collect::<Vec<_>>(), "run" => vec![run_id; *rows]).unwrap();
        publish::parquet::write(&p.dir.join(layout::part_path(table, day(), 0)), &mut df).unwrap();
    }
    p
}

fn manifest(run_id: &str) -> RunManifest {
    RunManifest {
        run_id: run_id.into(),
        job: "test".into(),
        run_date: Some(day()),
        ..Default::default()
    }
}

/// The rows of a table as the lake holds it (every part under the day's partition).
fn rows(rt: &tokio::runtime::Runtime, lake: &Lake, table: &str) -> Vec<String> {
    let work = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for meta in rt.block_on(lake.list(&layout::table_partition(table, day()))).unwrap() {
        let f = work.path().join("part.parquet");
        rt.block_on(lake.download(meta.location.as_ref(), &f)).unwrap();
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

// ---- the behaviour suite: every function runs on every store ----

fn commit_makes_the_package_visible_with_its_manifest(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    let p = package(rt, lake, "r1", work.path(), &[("a", 3), ("b", 2)]);
    assert!(rows(rt, lake, "a").is_empty(), "staged files are not in the table");
    let mut m = manifest("r1");
    rt.block_on(publish::publish(lake, &p, &mut m, true)).unwrap();
    assert_eq!(m.commit, 1);
    assert_eq!(rows(rt, lake, "a").len(), 3);
    assert_eq!(rows(rt, lake, "b").len(), 2);
    let runs = rt.block_on(publish::committed(lake, day())).unwrap();
    assert_eq!(runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["r1"]);
    assert!(
        rt.block_on(lake.list(layout::STAGING)).unwrap().is_empty(),
        "staging is cleaned"
    );
}

fn a_rerun_replaces_the_partition(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    for (run, n) in [("r1", 5), ("r2", 4)] {
        let p = package(rt, lake, run, work.path(), &[("a", n), ("gone", 1)]);
        rt.block_on(publish::publish(lake, &p, &mut manifest(run), true))
            .unwrap();
    }
    let a = rows(rt, lake, "a");
    assert_eq!(a.len(), 4);
    assert!(a.iter().all(|r| r.starts_with("r2:")), "{a:?}");
    // A day-replacing run without a table removes it; a partial one keeps it.
    let p = package(rt, lake, "r3", work.path(), &[("a", 1)]);
    rt.block_on(publish::publish(lake, &p, &mut manifest("r3"), false))
        .unwrap();
    assert_eq!(rows(rt, lake, "gone").len(), 1);
    let p = package(rt, lake, "r4", work.path(), &[("a", 1)]);
    let mut m = manifest("r4");
    rt.block_on(publish::publish(lake, &p, &mut m, true)).unwrap();
    assert!(rows(rt, lake, "gone").is_empty());
    assert_eq!(m.commit, 4);
}

fn two_runs_of_a_day_cannot_both_commit(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    // Both start before either commits: both are based on commit 0.
    let p1 = package(rt, lake, "r1", work.path(), &[("a", 1)]);
    let p2 = package(rt, lake, "r2", work.path(), &[("a", 2)]);
    rt.block_on(publish::publish(lake, &p1, &mut manifest("r1"), true))
        .unwrap();
    let err = rt
        .block_on(publish::publish(lake, &p2, &mut manifest("r2"), true))
        .unwrap_err();
    assert!(
        matches!(err, publish::Error::RunAlreadyCommitted { ref other, .. } if other == "r1"),
        "{err}"
    );
    assert_eq!(rows(rt, lake, "a"), ["r1:0"]);
    assert!(
        rt.block_on(lake.list(layout::STAGING)).unwrap().is_empty(),
        "the loser's staging is gone"
    );
}

fn an_interrupted_commit_is_finished_by_the_next_run(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    let p = package(rt, lake, "r1", work.path(), &[("a", 2)]);
    rt.block_on(publish::publish(lake, &p, &mut manifest("r1"), true))
        .unwrap();
    let p = package(rt, lake, "r2", work.path(), &[("a", 3)]);
    // r2 claims its commit and dies before promoting: simulated by claiming by hand.
    if !p.in_place {
        for meta in std::fs::read_dir(p.dir.join("a/run_date=2025-06-30")).unwrap() {
            let f = meta.unwrap().path();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            rt.block_on(lake.upload(
                &f,
                &format!("_staging/run_date=2025-06-30/r2/a/run_date=2025-06-30/{name}"),
            ))
            .unwrap();
        }
    }
    let mut m = manifest("r2");
    m.commit = 2;
    let claim = serde_json::json!({"commit": 2, "run_id": "r2", "tables": {"a": ["part-0.parquet"]}, "drop_tables": [], "manifest": m});
    assert!(
        rt.block_on(lake.create(
            &layout::commit_path(day(), None, 2),
            serde_json::to_vec(&claim).unwrap()
        ))
        .unwrap()
    );
    assert_eq!(rows(rt, lake, "a").len(), 2, "nothing promoted yet");
    assert_eq!(
        rt.block_on(publish::committed(lake, day())).unwrap().len(),
        1,
        "readers see r1 only"
    );
    let recovered = rt.block_on(publish::recover(lake, day())).unwrap();
    assert_eq!(recovered, ["r2"]);
    assert_eq!(rows(rt, lake, "a").len(), 3);
    assert_eq!(rt.block_on(publish::committed(lake, day())).unwrap().len(), 2);
}

fn staging_debris_of_a_run_that_can_no_longer_commit_is_cleaned(rt: &tokio::runtime::Runtime, lake: &Lake) {
    let work = tempfile::tempdir().unwrap();
    // A run that died after staging (never claimed).
    let dead = package(rt, lake, "dead", work.path(), &[("a", 1)]);
    if !dead.in_place {
        rt.block_on(lake.write(
            "_staging/run_date=2025-06-30/dead/a/run_date=2025-06-30/part-0.parquet",
            vec![1, 2, 3],
        ))
        .unwrap();
    }
    let p = package(rt, lake, "r1", work.path(), &[("a", 1)]);
    rt.block_on(publish::publish(lake, &p, &mut manifest("r1"), true))
        .unwrap();
    let left = rt.block_on(lake.list(layout::STAGING)).unwrap();
    assert!(
        left.is_empty(),
        "debris left: {:?}",
        left.iter().map(|m| m.location.to_string()).collect::<Vec<_>>()
    );
}

type Behaviour = fn(&tokio::runtime::Runtime, &Lake);
const SUITE: &[(&str, Behaviour)] = &[
    (
        "commit_makes_the_package_visible_with_its_manifest",
        commit_makes_the_package_visible_with_its_manifest,
    ),
    ("a_rerun_replaces_the_partition", a_rerun_replaces_the_partition),
    (
        "two_runs_of_a_day_cannot_both_commit",
        two_runs_of_a_day_cannot_both_commit,
    ),
    (
        "an_interrupted_commit_is_finished_by_the_next_run",
        an_interrupted_commit_is_finished_by_the_next_run,
    ),
    (
        "staging_debris_of_a_run_that_can_no_longer_commit_is_cleaned",
        staging_debris_of_a_run_that_can_no_longer_commit_is_cleaned,
    ),
];

fn run_suite(open: impl Fn(&str) -> Lake) {
    let rt = rt();
    for (name, behaviour) in SUITE {
        eprintln!("behaviour: {name}");
        behaviour(&rt, &open(name));
    }
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

/// Every table of a local lake for the day: name -> row count and sorted key column.
fn snapshot(lake: &std::path::Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(lake).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        if name.starts_with('_') && name != "_rejects" {
            continue;
        }
        if lake.join(&name).join(format!("run_date={DAY}")).is_dir() {
            out.insert(name.clone(), read_table(lake, &name, DAY).height());
        }
    }
    out
}

#[test]
fn a_run_publishes_to_s3_and_reads_back_like_a_local_run() {
    let Some(s3) = S3Server::start() else { return };
    let t = TestLake::new();
    t.generate(300, 21);
    t.run_ok(DAY, &[]);
    let mut c = t.cmd();
    c.envs(s3.env())
        .args(["run", "--as-of", DAY, "--batch-bytes", "100000", "--input"])
        .arg(t.input())
        .args(["--output", &s3.url("lake")]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Read the S3 lake back through the manifest and polars, table by table.
    for (k, v) in s3.env() {
        unsafe { std::env::set_var(k, v) };
    }
    let rt = rt();
    let lake = Lake::open(&s3.url("lake")).unwrap();
    let m = rt.block_on(publish::committed(&lake, day())).unwrap().pop().unwrap();
    let local = snapshot(&t.lake());
    assert_eq!(m.tables.len(), local.len());
    let work = tempfile::tempdir().unwrap();
    for (table, tm) in &m.tables {
        let mut n = 0;
        for part in &tm.parts {
            let f = work.path().join(&part.path);
            rt.block_on(lake.download(&part.path, &f)).unwrap();
            n += ParquetReader::new(std::fs::File::open(&f).unwrap())
                .finish()
                .unwrap()
                .height();
        }
        assert_eq!(n, local[table], "{table}");
        assert_eq!(n as u64, tm.rows, "{table}");
    }
    // The day can be reconciled again from S3.
    let mut c = t.cmd();
    c.envs(s3.env())
        .args(["reconcile", "--run-date", DAY, "--output", &s3.url("lake")]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rt.block_on(publish::committed(&lake, day())).unwrap().len(), 2);
}

#[test]
fn a_crash_at_any_commit_point_shows_no_partial_run_and_the_rerun_is_exact() {
    let t = TestLake::new();
    t.generate(150, 21);
    // The uninterrupted run, in its own lake.
    let reference = TestLake::new();
    let mut c = reference.cmd();
    c.args(["run", "--as-of", DAY, "--input"])
        .arg(t.input())
        .arg("--output")
        .arg(reference.lake());
    assert!(c.output().unwrap().status.success());
    let want = snapshot(&reference.lake());

    // A first committed run, then a second one crashing at each point of the protocol.
    t.run_ok(DAY, &[]);
    let before = snapshot(&t.lake());
    for point in ["staged", "claimed", "promoting", "promoted"] {
        let committed = t.manifests(DAY).len();
        let out = t
            .cmd()
            .env("OPSLAKE_TEST_HOOK", format!("{point}=crash"))
            .args(["run", "--as-of", DAY, "--input"])
            .arg(t.input())
            .arg("--output")
            .arg(t.lake())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the run was meant to crash");
        let runs = t.manifests(DAY);
        // Readers see only committed runs: the previous ones, each with all its tables.
        assert_eq!(runs.len(), committed, "{point}: the crashed run left a manifest");
        for m in &runs {
            assert_eq!(m["tables"].as_object().unwrap().len(), want.len(), "{point}");
        }
        if matches!(point, "staged" | "claimed") {
            assert_eq!(snapshot(&t.lake()), before, "{point}: tables untouched");
        }
        // The next run finishes or discards what the crash left, and commits the day.
        t.run_ok(DAY, &[]);
        assert_eq!(
            snapshot(&t.lake()),
            want,
            "{point}: the rerun publishes exactly the rows of an uninterrupted run"
        );
        let staging = t.lake().join("_staging");
        let debris: Vec<_> = walk(&staging);
        assert!(debris.is_empty(), "{point}: staging debris {debris:?}");
    }
}

#[test]
fn a_run_killed_at_random_moments_never_leaves_a_partial_commit() {
    let t = TestLake::new();
    t.generate(400, 21);
    t.run_ok(DAY, &[]);
    let want = snapshot(&t.lake());
    for delay_ms in [150u64, 600, 1200, 2500] {
        let mut child = t
            .cmd()
            .args(["run", "--as-of", DAY, "--input"])
            .arg(t.input())
            .arg("--output")
            .arg(t.lake())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        for m in t.manifests(DAY) {
            assert_eq!(
                m["tables"].as_object().unwrap().len(),
                want.len(),
                "killed at {delay_ms} ms"
            );
        }
        t.run_ok(DAY, &[]);
        assert_eq!(snapshot(&t.lake()), want, "killed at {delay_ms} ms");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn two_concurrent_runs_of_a_day_one_commits_and_the_other_loses_cleanly() {
    let t = TestLake::new();
    t.generate(100, 21);
    let spawn = || {
        t.cmd()
            // Both stay staged long enough for the other to stage too.
            .env("OPSLAKE_TEST_HOOK", "staged=sleep:2500")
            .args(["run", "--as-of", DAY, "--input"])
            .arg(t.input())
            .arg("--output")
            .arg(t.lake())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn();
    let b = spawn();
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let codes: Vec<_> = outs.iter().map(|o| o.status.code()).collect();
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(6)), "{codes:?}");
    let loser = outs.iter().find(|o| o.status.code() == Some(6)).unwrap();
    let err = String::from_utf8_lossy(&loser.stderr);
    let first = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        first.contains("committed 2025-06-30 after this run started") && first.contains("re-run"),
        "{first}"
    );
    assert_eq!(t.manifests(DAY).len(), 1);
    assert!(walk(&t.lake().join("_staging")).is_empty(), "the loser left no staging");
}

#[test]
fn runs_list_shows_every_day_in_order_with_its_figures() {
    let t = TestLake::new();
    t.generate(50, 21);
    for d in ["2025-06-29", "2025-06-27", "2025-06-28"] {
        t.run_ok(d, &[]);
    }
    t.run_ok("2025-06-28", &[]);
    let out = t
        .cmd()
        .args(["runs", "list", "--output"])
        .arg(t.lake())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let days: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(days, ["2025-06-27", "2025-06-28", "2025-06-28", "2025-06-29"], "{text}");
    let commits: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(commits, ["1", "1", "2", "1"]);
    let rows: u64 = t.manifests("2025-06-27")[0]["tables"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["rows"].as_u64().unwrap())
        .sum();
    assert!(text.lines().nth(1).unwrap().contains(&rows.to_string()), "{text}");
    // runs show gives one run in full.
    let id = text
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    let out = t
        .cmd()
        .args(["runs", "show", &id, "--output"])
        .arg(t.lake())
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&out.stdout);
    for want in [
        "stage",
        "normalize",
        "reconcile",
        "publish",
        "inputs:",
        "orders-000.ndjson",
        "xxh3-128:",
        "recon_summary",
    ] {
        assert!(show.contains(want), "runs show lacks {want}:\n{show}");
    }
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
fn the_kubernetes_manifests_have_what_operations_need() {
    let dir = repo().join("jobs/k8s");
    let load = |f: &str| -> serde_json::Value {
        let y: serde_norway::Value = serde_norway::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
        serde_json::to_value(y).unwrap()
    };
    for f in ["cronjob-daily.yaml", "cronjob-sharded.yaml"] {
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
    let sharded = load("cronjob-sharded.yaml");
    let job = &sharded["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"], "Indexed");
    let n = job["completions"].as_u64().unwrap();
    let args = job["template"]["spec"]["containers"][0]["args"].as_array().unwrap();
    let shard = args.iter().position(|a| a == "--shard").unwrap();
    assert_eq!(args[shard + 1], format!("$(JOB_COMPLETION_INDEX)/{n}"));
    let docker = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(docker.matches("FROM ").count() >= 2, "multi-stage");
    assert!(docker.contains("USER 65532"), "non-root");
}
