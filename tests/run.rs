//! Whole runs of the real binary: the samples, a generated universe, re-runs of a day.

mod common;

use common::*;
use opslake::sources::SOURCES;

const DAY: &str = "2025-06-30";

/// Every table of DESIGN.md 3.1.
const TABLES: &[&str] = &[
    "appointments",
    "appointment_parties",
    "appointment_entities",
    "appointment_resource_characteristics",
    "appointment_notes",
    "appointment_contact_media",
    "time_slots",
    "memos",
    "typifications",
    "customer_devices",
    "orders",
    "order_products",
    "expeditions",
    "expedition_status_history",
    "expedition_products",
    "products_with_expedition",
    "stock",
    "pickups",
    "pickup_products",
    "external_orders",
    "external_order_journeys",
    "external_order_devices",
    "_rejects",
];

fn run_samples(t: &TestLake) -> String {
    let mut c = t.cmd();
    c.env_remove("OPSLAKE_PII_KEY")
        .current_dir(repo())
        .args(["run", "--output"])
        .arg(t.lake());
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // In JSON log mode stderr is a log stream: a library printing plain text there (polars'
    // deprecation notices did) breaks the log collector reading it.
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let parsed = serde_json::from_str::<serde_json::Value>(line);
        assert!(parsed.is_ok_and(|v| v.is_object()), "not a JSON log line: {line}");
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_samples_run_publishes_every_table_with_unique_keys_and_balanced_counts() {
    let t = TestLake::new();
    let summary = run_samples(&t);
    for table in TABLES {
        let df = t.table(table, DAY);
        assert!(df.height() > 0, "{table} is empty");
    }
    // Every source, walked from SOURCES: rows in every table, keys unique and non-null.
    for source in SOURCES {
        for spec in source.tables() {
            let df = t.table(spec.name, DAY);
            assert!(df.height() > 0, "{} is empty", spec.name);
            if spec.name == "order_products" {
                // Products without a device id are kept (position tells them apart).
                assert_key_unique(&df, spec.name, &["order_id", "position"]);
            } else {
                assert_key_unique(&df, spec.name, spec.key);
            }
        }
    }
    let m = &t.manifests(DAY)[0];
    for s in m["sources"].as_array().unwrap() {
        let n = |k: &str| s[k].as_u64().unwrap();
        assert_eq!(
            n("records_read"),
            n("rows_written") + n("rejects") + n("duplicates"),
            "{}",
            s["name"]
        );
        assert_eq!(s["balanced"], true);
        for f in s["files"].as_array().unwrap() {
            assert!(f["checksum"].as_str().unwrap().starts_with("xxh3-128:"), "{f}");
        }
    }
    assert_eq!(m["rejects"].as_u64().unwrap(), t.table("_rejects", DAY).height() as u64);
    assert!(
        t.table("_rejects", DAY).height() >= 4,
        "the samples' broken records are rejected"
    );
    assert!(
        strings(&t.table("_rejects", DAY), "reason")
            .iter()
            .all(|r| r.as_deref().is_some_and(|r| !r.is_empty()))
    );
    assert!(
        m["pii"]["key"].as_str().unwrap().contains("DEVELOPMENT"),
        "the development key is labelled"
    );
    for line in ["source", "table", "rejects:", "published to"] {
        assert!(summary.contains(line), "summary lacks {line}:\n{summary}");
    }
}

#[test]
fn a_rerun_of_the_same_day_replaces_the_partition() {
    let t = TestLake::new();
    let st = t.generate(200, 11);
    assert!(st.files > 10);
    t.run_ok(DAY, &[]);
    let first: Vec<_> = TABLES.iter().map(|tb| t.table(tb, DAY).height()).collect();
    let orders = t.table("orders", DAY);
    t.run_ok(DAY, &["--batch-bytes", "65536"]);
    let second: Vec<_> = TABLES.iter().map(|tb| t.table(tb, DAY).height()).collect();
    assert_eq!(first, second, "same rows, no duplicates");
    let again = t.table("orders", DAY);
    let mut a = strings(&orders, "order_id");
    let mut b = strings(&again, "order_id");
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let m = t.manifests(DAY);
    assert_eq!(m.len(), 2);
    assert_eq!(m[1]["commit"], 2);
    assert!(
        !t.lake()
            .join("_staging")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "staging cleaned"
    );
    // Another day is another partition, left alone by this day's runs.
    t.run_ok("2025-07-01", &[]);
    assert_eq!(t.table("orders", DAY).height(), orders.height());
    assert_eq!(t.table("orders", "2025-07-01").height(), orders.height());
}

#[test]
fn a_generated_universe_runs_end_to_end_with_its_known_counts() {
    let t = TestLake::new();
    let out = t
        .cmd()
        .args(["samples", "generate", "--orders", "2000", "--seed", "5", "--out"])
        .arg(t.input())
        .output()
        .unwrap();
    assert!(out.status.success());
    t.run_ok(DAY, &["--threads", "2"]);
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.input().join("_truth/injected.json")).unwrap()).unwrap();
    // The 2000 orders, and the breakdown orders that repeat some of their devices.
    let breakdown = truth["breakdown_orders"].as_array().unwrap().len();
    assert_eq!(t.table("orders", DAY).height(), 2000 + breakdown);
    // Every product is in fulfilment, but for the discarded lines.
    let products = truth["fulfilment"].as_object().unwrap().len() + truth["discarded"].as_array().unwrap().len();
    assert_eq!(t.table("order_products", DAY).height(), products);
    let m = &t.manifests(DAY)[0];
    assert_eq!(m["rejects"], 0, "a generated universe has no bad records");
    // Every expedition status of the universe is one of the API's values.
    let statuses = strings(&t.table("expedition_status_history", DAY), "status");
    assert!(statuses.iter().all(Option::is_some));
}

#[test]
fn a_day_with_one_commit_is_readable_by_duckdb_as_a_hive_dataset() {
    let Ok(python) = std::env::var("OPSLAKE_TEST_PYTHON") else {
        eprintln!("skipped: set OPSLAKE_TEST_PYTHON to a python with duckdb (.ci/run does)");
        return;
    };
    let t = TestLake::new();
    run_samples(&t);
    let script = format!(
        "import duckdb, sys\n\
         con = duckdb.connect()\n\
         for t in {tables:?}:\n\
         \x20   n = con.execute(f\"select count(*), min(run_date)::varchar from read_parquet('{lake}/{{t}}/run_date=*/*.parquet', hive_partitioning=true)\").fetchone()\n\
         \x20   print(t, n[0], n[1])\n",
        tables = TABLES,
        lake = t.lake().display()
    );
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for table in TABLES {
        let expect = t.table(table, DAY).height();
        assert!(text.contains(&format!("{table} {expect} {DAY}")), "{table}: {text}");
    }
}

#[test]
fn a_run_of_some_sources_replaces_only_their_tables() {
    let t = TestLake::new();
    t.generate(100, 3);
    t.run_ok(DAY, &[]);
    let orders = t.table("orders", DAY).height();
    let fulfilment = t.table("recon_order_fulfilment", DAY).height();
    std::fs::write(
        t.input().join("stock/extra.csv"),
        "warehouse_id,product_id,available_quantity\n99,NEW,1\n",
    )
    .unwrap();
    let out = t.run_ok(DAY, &["--sources", "stock"]);
    assert!(out.contains("reconciliations skipped"), "{out}");
    assert_eq!(t.table("orders", DAY).height(), orders);
    assert_eq!(t.table("recon_order_fulfilment", DAY).height(), fulfilment);
    assert!(strings(&t.table("stock", DAY), "product_code").contains(&Some("NEW".into())));
    let m = t.manifests(DAY);
    assert_eq!(m[1]["kind"], "sources");
    let tables = m[1]["tables"].as_object().unwrap();
    assert!(
        tables.contains_key("stock") && !tables.contains_key("orders"),
        "{tables:?}"
    );
    // The day's rejects keep the other sources' rows.
    let rejects = t.table("_rejects", DAY);
    assert_eq!(rejects.height() as u64, m[0]["rejects"].as_u64().unwrap());
}

#[test]
fn a_run_of_some_tables_replaces_only_those_and_skips_the_reconciliations() {
    let t = TestLake::new();
    t.generate(100, 5);
    t.run_ok(DAY, &[]);
    let fulfilment = t.table("recon_order_fulfilment", DAY).height();
    let products = t.table("order_products", DAY).height();
    // Every source, but not the tables the reconciliations read (order_products).
    let out = t.run_ok(DAY, &["--tables", "appointments,appointment_parties"]);
    assert!(out.contains("reconciliations skipped"), "{out}");
    assert_eq!(t.table("recon_order_fulfilment", DAY).height(), fulfilment);
    assert_eq!(t.table("order_products", DAY).height(), products);
    let m = t.manifests(DAY);
    assert_eq!(m[1]["kind"], "sources");
    let tables = m[1]["tables"].as_object().unwrap();
    assert!(
        tables.contains_key("appointment_parties") && !tables.contains_key("order_products"),
        "{tables:?}"
    );
}

#[test]
fn the_union_of_the_shards_equals_the_unsharded_run() {
    let input = TestLake::new();
    input.generate(400, 17);
    let whole = TestLake::new();
    let run = |lake: &TestLake, extra: &[&str]| {
        let out = lake
            .cmd()
            .args(["run", "--as-of", DAY, "--input"])
            .arg(input.input())
            .arg("--output")
            .arg(lake.lake())
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&whole, &[]);
    let sharded = TestLake::new();
    for i in 0..2 {
        let out = run(&sharded, &["--shard", &format!("{i}/3")]);
        assert!(out.contains("share staged"), "{out}");
        assert!(
            sharded.manifests(DAY).is_empty(),
            "nothing is committed before the last shard"
        );
    }
    let out = run(&sharded, &["--shard", "2/3"]);
    assert!(out.contains("every shard's share committed"), "{out}");
    // The last shard committed every share in one commit, then reconciled the day.
    let m = sharded.manifests(DAY);
    let kinds: Vec<&str> = m.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["shards", "reconcile"]);
    assert_eq!(m[0]["shares"].as_array().unwrap().len(), 3);
    for source in SOURCES {
        for spec in source.tables() {
            let rows = |lake: &TestLake| {
                let df = lake.table(spec.name, DAY);
                let cols: Vec<Vec<Option<String>>> =
                    df.get_column_names().iter().map(|c| strings(&df, c.as_str())).collect();
                let mut rows: Vec<String> = (0..df.height())
                    .map(|i| cols.iter().map(|c| format!("{:?}", c[i])).collect::<Vec<_>>().join("|"))
                    .collect();
                rows.sort();
                rows
            };
            let (a, b) = (rows(&whole), rows(&sharded));
            assert_eq!(a.len(), b.len(), "{}: rows", spec.name);
            assert!(
                a == b,
                "{}: the shards' union differs from the unsharded run",
                spec.name
            );
        }
    }
    // The reconciliations of the day are the unsharded run's.
    for t in [
        "recon_order_fulfilment",
        "recon_stock_coverage",
        "recon_remaining_payments",
        "recon_installation_readiness",
    ] {
        assert_eq!(whole.table(t, DAY).height(), sharded.table(t, DAY).height(), "{t}");
    }
    // A re-run of one shard is committed with the other shards' latest shares.
    let orders = sharded.table("orders", DAY).height();
    let out = run(&sharded, &["--shard", "1/3"]);
    assert!(out.contains("every shard's share committed"), "{out}");
    assert_eq!(sharded.table("orders", DAY).height(), orders);
    // An unsharded run replaces the whole day, shards included.
    run(&sharded, &[]);
    assert_eq!(sharded.table("orders", DAY).height(), orders);
    assert_eq!(
        table_files(&sharded.lake(), "orders", DAY).len(),
        table_files(&whole.lake(), "orders", DAY).len(),
        "the day is the whole-day run's files only"
    );
    // Shards started before that whole-day run are refused: shard 0 re-runs, finds the
    // others' shares older than the whole-day commit, and waits for them.
    let out = run(&sharded, &["--shard", "0/3"]);
    assert!(out.contains("share staged"), "{out}");
    assert_eq!(sharded.table("orders", DAY).height(), orders);
    assert_eq!(sharded.manifests(DAY).last().unwrap()["kind"], "run");
}

#[test]
fn other_readers_read_every_table_with_the_rows_opslake_counted_and_travel_in_time() {
    let Ok(python) = std::env::var("OPSLAKE_TEST_PYTHON") else {
        eprintln!("skipped: set OPSLAKE_TEST_PYTHON to a python with deltalake and polars (.ci/run does)");
        return;
    };
    let t = TestLake::new();
    t.generate(120, 31);
    t.run_ok(DAY, &[]);
    // A second run of the day on a smaller universe: the first stays readable by version.
    let smaller = TestLake::new();
    smaller.generate(60, 31);
    std::fs::remove_dir_all(t.input()).unwrap();
    std::fs::rename(smaller.input(), t.input()).unwrap();
    t.run_ok(DAY, &[]);
    let m = t.manifests(DAY);
    let script = r#"
import json, sys, datetime
import deltalake, polars as pl
lake, day, first, latest = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
d = datetime.date.fromisoformat(day)
for table, rec in sorted(latest["tables"].items()):
    dt = deltalake.DeltaTable(f"{lake}/{table}")
    assert dt.version() == rec["version"], (table, dt.version(), rec["version"])
    a = dt.to_pyarrow_table(filters=[("run_date", "=", d)]).num_rows
    b = pl.scan_delta(f"{lake}/{table}").filter(pl.col("run_date") == d).select(pl.len()).collect().item()
    old = first["tables"][table]
    c = pl.scan_delta(f"{lake}/{table}", version=old["version"]).filter(pl.col("run_date") == d).select(pl.len()).collect().item()
    print(table, a, b, c)
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(t.lake())
        .arg(DAY)
        .arg(m[0].to_string())
        .arg(m[1].to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let tables = m[1]["tables"].as_object().unwrap();
    assert_eq!(text.lines().count(), tables.len(), "{text}");
    for (table, rec) in tables {
        let now = rec["rows"].as_u64().unwrap();
        let then = m[0]["tables"][table]["rows"].as_u64().unwrap();
        assert!(
            text.lines().any(|l| l == format!("{table} {now} {now} {then}")),
            "{table}: opslake counted {now} now and {then} before:\n{text}"
        );
    }
    assert_ne!(m[0]["tables"]["orders"]["rows"], m[1]["tables"]["orders"]["rows"]);
}
