//! README's exit-code table is the contract: each code is provoked here through the real
//! binary (3 in tests/hostile.rs, 4 in tests/normalize.rs, 6 in tests/race.rs), with the
//! first line on stderr saying what failed.

mod common;

use common::*;
use serde_json::json;

const DAY: &str = "2025-06-30";

fn stock(w: &str, p: &str, q: i64) -> serde_json::Value {
    json!({"warehouse_id": w, "product_id": p, "available_quantity": q})
}

fn first_error(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line in:\n{err}"))
        .to_string()
}

#[test]
fn commands_on_a_day_with_no_commit_exit_2_naming_the_day() {
    let t = TestLake::new();
    t.file("stock/s.json", stock("1", "A", 1).to_string());
    t.run_ok(DAY, &["--sources", "stock"]);
    for args in [
        vec!["reconcile", "--as-of", "2025-06-29"],
        vec!["normalize", "--from-raw", "2025-06-29"],
    ] {
        let out = t.cmd().args(&args).arg("--output").arg(t.lake()).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let first = first_error(&out);
        assert!(
            first.contains("2025-06-29") && first.contains("nothing committed"),
            "{first}"
        );
    }
}

#[test]
fn runs_show_of_an_unknown_id_exits_2() {
    let t = TestLake::new();
    t.file("stock/s.json", stock("1", "A", 1).to_string());
    t.run_ok(DAY, &["--sources", "stock"]);
    let out = t
        .cmd()
        .env_remove("OPSLAKE_PII_KEY")
        .args(["runs", "show", "20990101T000000Z-dead", "--output"])
        .arg(t.lake())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(first_error(&out).contains("no committed run 20990101T000000Z-dead"));
    // The run records need no PII key to be read.
    let out = t
        .cmd()
        .env_remove("OPSLAKE_PII_KEY")
        .args(["runs", "list", "--output"])
        .arg(t.lake())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(DAY));
}

/// A few thousand rows of incompressible text: a stock part of several hundred kilobytes.
fn big_stock(t: &TestLake) {
    let mut lines = String::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for i in 0..3000 {
        let mut code = format!("P{i}-");
        for _ in 0..12 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            code.push_str(&format!("{x:016x}"));
        }
        lines.push_str(&stock("1", &code, i).to_string());
        lines.push('\n');
    }
    t.file("stock/big.ndjson", lines);
}

#[test]
fn a_full_disk_while_writing_parts_exits_5_and_the_last_commit_stays() {
    let t = TestLake::new();
    t.file("stock/s.json", stock("1", "A", 1).to_string());
    t.run_ok(DAY, &["--sources", "stock"]);
    big_stock(&t);
    let mut cmd = t.cmd();
    cmd.args(["run", "--sources", "stock", "--as-of", DAY, "--input"])
        .arg(t.input())
        .arg("--output")
        .arg(t.lake());
    // No small file system can be mounted here without privileges: a file-size limit makes
    // every write past 256 KiB fail (EFBIG), as a full disk fails with ENOSPC. SIGXFSZ, which
    // would kill the process first, is ignored, as a full disk sends none.
    // SAFETY: signal and setrlimit are async-signal-safe, as pre_exec requires.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 256 * 1024,
                rlim_max: 256 * 1024,
            };
            match libc::setrlimit(libc::RLIMIT_FSIZE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let first = first_error(&out);
    assert!(
        first.contains("cannot write") && first.contains("stock/run_date="),
        "the error names the table's folder: {first}"
    );
    assert_eq!(t.manifests(DAY).len(), 1, "nothing new committed");
    assert_eq!(t.table("stock", DAY).height(), 1, "the previous commit stays visible");
}

#[test]
fn log_filters_come_from_opslake_log_then_rust_log() {
    let t = TestLake::new();
    t.file("stock/s.json", stock("1", "A", 1).to_string());
    let run = |env: &[(&str, &str)]| {
        let mut c = t.cmd();
        c.env_remove("RUST_LOG");
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(["run", "--sources", "stock", "--as-of", DAY, "--input"])
            .arg(t.input())
            .arg("--output")
            .arg(t.lake())
            .output()
            .unwrap()
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let default = run(&[]);
    assert!(stderr(&default).contains("run started") && !stderr(&default).contains("\"DEBUG\""));
    // A healthy first run logs no error, and the Delta kernel's chatter stays out.
    assert!(default.status.success());
    assert!(!stderr(&default).contains("\"ERROR\""), "{}", stderr(&default));
    assert!(!stderr(&default).contains("buoyant_kernel"), "{}", stderr(&default));
    let debug = run(&[("OPSLAKE_LOG", "opslake=debug")]);
    assert!(stderr(&debug).contains("\"DEBUG\"") && stderr(&debug).contains("stock/s.json"));
    let quiet = run(&[("OPSLAKE_LOG", "error"), ("RUST_LOG", "debug")]);
    assert!(quiet.status.success());
    assert!(
        !stderr(&quiet).contains("run started"),
        "OPSLAKE_LOG wins over RUST_LOG"
    );
    let rust_log = run(&[("RUST_LOG", "warn")]);
    assert!(!stderr(&rust_log).contains("run started"), "RUST_LOG is honoured");
    let bad = run(&[("OPSLAKE_LOG", "opslake=loud")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(first_error(&bad).contains("bad log filter"), "{}", stderr(&bad));
    let help = t.cmd().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("OPSLAKE_LOG") && help.contains("RUST_LOG"), "{help}");
}
