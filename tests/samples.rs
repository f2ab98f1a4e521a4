//! The sample generator's file layouts: the same universe written as the default layout, as
//! many small files and as a few large ones holds the same records, so `opslake run` publishes
//! the same tables from each.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use polars::prelude::*;

const DAY: &str = "2025-06-30";
const SEED: &str = "5";

/// `opslake samples generate --files {layout}` into the lake's input; returns the files written.
fn generate(t: &TestLake, orders: usize, layout: &str) -> usize {
    let out = t
        .cmd()
        .args(["samples", "generate", "--seed", SEED, "--files", layout, "--orders"])
        .arg(orders.to_string())
        .arg("--out")
        .arg(t.input())
        .output()
        .expect("run opslake samples generate");
    assert!(
        out.status.success(),
        "samples generate --files {layout} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    files_under(&t.input())
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { files_under(&p) } else { 1 })
        .sum()
}

/// The tables a run published for the day (every folder of the lake but `_runs`, `_staging`).
fn tables(lake: &Path) -> BTreeSet<String> {
    std::fs::read_dir(lake)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "_runs" && n != "_staging" && lake.join(n).join(format!("run_date={DAY}")).is_dir())
        .collect()
}

/// A table's column names and its rows as text (`column=value` joined by `|`), sorted: two
/// tables hold the same rows exactly when these are equal, whatever order their parts came in.
fn rows(lake: &Path, table: &str) -> (Vec<String>, Vec<String>) {
    let df = read_table(lake, table, DAY);
    let mut names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
    names.sort();
    let columns: Vec<Vec<String>> = names
        .iter()
        .map(|n| {
            let text = df
                .column(n)
                .unwrap()
                .cast(&DataType::String)
                .unwrap_or_else(|e| panic!("{table}.{n} as text: {e}"));
            text.str()
                .unwrap()
                .iter()
                .map(|v| format!("{n}={}", v.unwrap_or("null")))
                .collect()
        })
        .collect();
    let mut out: Vec<String> = (0..df.height())
        .map(|i| columns.iter().map(|c| c[i].as_str()).collect::<Vec<_>>().join("|"))
        .collect();
    out.sort();
    (names, out)
}

/// Asserts that two lakes hold the same tables with the same rows, naming what differs.
fn assert_same_tables(a: &Path, a_name: &str, b: &Path, b_name: &str) {
    let names = tables(a);
    assert_eq!(names, tables(b), "{a_name} and {b_name} publish different tables");
    for table in &names {
        let (a_columns, a_rows) = rows(a, table);
        let (b_columns, b_rows) = rows(b, table);
        assert_eq!(
            a_columns, b_columns,
            "{table}: columns differ between {a_name} and {b_name}"
        );
        if a_rows != b_rows {
            let only = |x: &[String], y: &[String]| -> Vec<String> {
                let y: BTreeSet<&String> = y.iter().collect();
                x.iter().filter(|r| !y.contains(r)).take(3).cloned().collect()
            };
            panic!(
                "{table}: {} rows from {a_name}, {} from {b_name}\nonly in {a_name}:\n  {}\nonly in {b_name}:\n  {}",
                a_rows.len(),
                b_rows.len(),
                only(&a_rows, &b_rows).join("\n  "),
                only(&b_rows, &a_rows).join("\n  ")
            );
        }
    }
}

#[test]
fn the_three_layouts_of_a_seed_normalize_to_the_same_tables() {
    let lakes: Vec<(&str, TestLake)> = ["default", "small", "large"]
        .into_iter()
        .map(|layout| {
            let t = TestLake::new();
            generate(&t, 300, layout);
            t.run_ok(DAY, &[]);
            (layout, t)
        })
        .collect();
    let (base_name, base) = &lakes[0];
    let truth = std::fs::read(base.input().join("_truth/injected.json")).unwrap();
    assert!(tables(&base.lake()).contains("recon_order_fulfilment"));
    for (name, t) in &lakes[1..] {
        let other = std::fs::read(t.input().join("_truth/injected.json")).unwrap();
        assert!(
            truth == other,
            "{name}: _truth/injected.json differs from {base_name}'s"
        );
        assert_same_tables(&base.lake(), base_name, &t.lake(), name);
    }
}

#[test]
fn small_writes_about_half_a_file_per_order_and_large_a_few_files_in_all() {
    let orders = 1000;
    let small = generate(&TestLake::new(), orders, "small");
    let ratio = small as f64 / orders as f64;
    assert!((0.3..=1.0).contains(&ratio), "small: {small} files for {orders} orders");
    let large = generate(&TestLake::new(), orders, "large");
    assert!(large <= 50, "large: {large} files for {orders} orders");
    let default = generate(&TestLake::new(), orders, "default");
    assert!(
        large < default && default < small,
        "large {large}, default {default}, small {small}"
    );
}
