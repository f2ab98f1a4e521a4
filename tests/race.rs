//! Two runs of the same day racing: one wins, the other exits 6 (README: "another run
//! committed the same day first") and removes nothing of the winner's.

mod common;

use common::*;

const DAY: &str = "2025-06-30";

/// A slow run still normalizing when a quick run of the same day commits: the slow run must
/// exit 6 and leave the quick run's commit whole. On the file-based commit protocol of today
/// the quick run's commit also cleans the day's staging of runs based on an older commit, so
/// whether the slow run meets a missing staging folder (a write error: exit 5 since issue 15,
/// 1 before) or a lost claim (6) depends on timing; it exited 6 in the runs made for issue 15.
/// Ignored by default: it takes minutes on a debug build (`cargo test --test race --
/// --ignored`); to be enabled with the Delta Lake commit, where a loser fails only at its
/// conditional log entry.
#[test]
#[ignore = "minutes long and timing-dependent until the Delta commit: run with --ignored"]
fn a_run_overtaken_while_normalizing_exits_6_and_leaves_the_winner_whole() {
    let slow = TestLake::new();
    slow.generate(600, 7);
    let quick = TestLake::new();
    quick.file(
        "stock/s.json",
        serde_json::json!({"warehouse_id": "1", "product_id": "A", "available_quantity": 1}).to_string(),
    );
    let lake = slow.lake();
    let loser = slow
        .cmd()
        .args([
            "run",
            "--as-of",
            DAY,
            "--threads",
            "1",
            "--batch-bytes",
            "4096",
            "--input",
        ])
        .arg(slow.input())
        .arg("--output")
        .arg(&lake)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the slow run is writing its package.
    let staging = lake.join("_staging").join(format!("run_date={DAY}"));
    for _ in 0..600 {
        if std::fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = quick
        .cmd()
        .args(["run", "--sources", "stock", "--as-of", DAY, "--input"])
        .arg(quick.input())
        .arg("--output")
        .arg(&lake)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lost = loser.wait_with_output().unwrap();
    assert_eq!(lost.status.code(), Some(6), "{}", String::from_utf8_lossy(&lost.stderr));
    assert_eq!(manifests(&lake, DAY).len(), 1, "only the winner committed");
    assert_eq!(
        read_table(&lake, "stock", DAY).height(),
        1,
        "the winner's table is whole"
    );
}
