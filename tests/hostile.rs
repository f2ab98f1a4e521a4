//! Hostile input files, through the real binary: what Windows tools, broken exports and
//! malicious archives produce. Every valid record is still published, every bad one is a
//! reject with a reason, and an input that cannot be read at all fails the run naming it.

mod common;

use common::*;
use serde_json::json;

const DAY: &str = "2025-06-30";

fn stock(w: &str, p: &str, q: i64) -> serde_json::Value {
    json!({"warehouse_id": w, "product_id": p, "available_quantity": q})
}

fn utf8_bom(text: &str) -> Vec<u8> {
    [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat()
}

fn utf16le_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn first_error(out: &std::process::Output) -> String {
    let err = stderr(out);
    err.lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line in:\n{err}"))
        .to_string()
}

#[test]
fn files_from_windows_tools_are_read_whole() {
    let t = TestLake::new();
    let array = json!([stock("1", "A", 1), stock("1", "B", 2), stock("1", "C", 3)]).to_string();
    t.file("stock/a-bom.json", utf8_bom(&array));
    t.file(
        "stock/b-bom-crlf.ndjson",
        utf8_bom(&format!("{}\r\n{}\r\n", stock("2", "A", 4), stock("2", "B", 5))),
    );
    t.file(
        "stock/c-bom-crlf.csv",
        utf8_bom("warehouse_id,product_id,available_quantity\r\n3,A,6\r\n3,B,7\r\n"),
    );
    t.file(
        "stock/d-utf16.ndjson",
        utf16le_bom(&format!("{}\r\n{}\r\n", stock("4", "Ä", 8), stock("4", "B", 9))),
    );
    let out = t.run_ok(DAY, &["--sources", "stock", "--max-reject-ratio", "0"]);
    let df = t.table("stock", DAY);
    assert_eq!(df.height(), 9, "{out}");
    assert_eq!(t.table("_rejects", DAY).height(), 0);
    assert_eq!(
        cell(&df, "product_code", "Ä", "available_quantity").as_deref(),
        Some("8"),
        "UTF-16 text is decoded"
    );
    let total: i64 = df
        .column("available_quantity")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .flatten()
        .sum();
    assert_eq!(total, 45);
}

#[test]
fn csv_rows_that_do_not_fit_the_header_are_rejects_naming_the_column() {
    let t = TestLake::new();
    t.file(
        "stock/a.csv",
        "warehouse_id,product_id,available_quantity\n1,A,3\n1,B\n1,C,4,9\n1,D,\n",
    );
    t.file("stock/b.csv", "warehouse_id,product_id\n2,A\n2,B\n");
    t.run_ok(DAY, &["--sources", "stock", "--max-reject-ratio", "1"]);
    let df = t.table("stock", DAY);
    assert_eq!(
        strings(&df, "product_code"),
        vec![Some("A".into()), Some("D".into())],
        "only the rows that fit are published"
    );
    assert_eq!(cell(&df, "product_code", "D", "available_quantity"), None);
    let r = t.table("_rejects", DAY);
    let reasons: Vec<String> = strings(&r, "reason").into_iter().flatten().collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons[0].contains("no value for column available_quantity"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("field 4 has no column"), "{reasons:?}");
    for r in &reasons[2..] {
        assert!(r.contains("lacks the required column available_quantity"), "{r}");
    }
    assert_eq!(
        strings(&r, "line"),
        vec![Some("3".into()), Some("4".into()), Some("2".into()), Some("3".into())]
    );
}

#[test]
fn a_record_over_max_record_bytes_is_a_reject_and_the_rest_is_read() {
    let t = TestLake::new();
    let huge = json!({"warehouse_id": "1", "product_id": "x".repeat(200_000), "available_quantity": 1});
    t.gz(
        "stock/a.ndjson.gz",
        &format!("{}\n{huge}\n{}\n", stock("1", "A", 1), stock("1", "B", 2)),
    );
    t.run_ok(
        DAY,
        &[
            "--sources",
            "stock",
            "--max-record-bytes",
            "65536",
            "--max-reject-ratio",
            "0.5",
        ],
    );
    assert_eq!(t.table("stock", DAY).height(), 2);
    let r = t.table("_rejects", DAY);
    assert_eq!(r.height(), 1);
    let reason = strings(&r, "reason")[0].clone().unwrap();
    assert!(
        reason.contains("longer than 65536 bytes") && reason.contains("max_record_bytes"),
        "{reason}"
    );
    assert_eq!(strings(&r, "line")[0].as_deref(), Some("2"));
    assert_eq!(strings(&r, "raw")[0], None, "the record was not kept");
    assert_eq!(strings(&r, "raw_sha256")[0].as_ref().map(String::len), Some(64));
}

#[test]
fn a_decompression_bomb_stops_at_its_bound_and_keeps_the_records_before() {
    let t = TestLake::new();
    // Two records, then 8 MiB of blanks: a few kilobytes stored.
    let mut text = format!("{}\n{}\n", stock("1", "A", 1), stock("1", "B", 2));
    text.push_str(&" ".repeat(8 << 20));
    text.push_str(&format!("\n{}\n", stock("1", "C", 3)));
    t.gz("stock/bomb.ndjson.gz", &text);
    t.run_ok(DAY, &["--sources", "stock", "--max-reject-ratio", "0.5"]);
    let df = t.table("stock", DAY);
    assert_eq!(strings(&df, "product_code"), vec![Some("A".into()), Some("B".into())]);
    let reason = strings(&t.table("_rejects", DAY), "reason")[0].clone().unwrap();
    assert!(reason.contains("max_decompression_ratio"), "{reason}");
    // Without the bound, the whole file is read.
    t.run_ok(DAY, &["--sources", "stock", "--max-decompression-ratio", "0"]);
    assert_eq!(t.table("stock", DAY).height(), 3);
}

#[test]
fn an_input_that_cannot_be_read_fails_the_run_naming_it() {
    // A symbolic link that points nowhere.
    let t = TestLake::new();
    t.file("stock/a.json", stock("1", "A", 1).to_string());
    let link = t.input().join("stock/b.json");
    std::os::unix::fs::symlink(t.dir.path().join("gone.json"), &link).unwrap();
    let out = t.run(DAY, &["--sources", "stock"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let first = first_error(&out);
    assert!(first.contains(&link.display().to_string()), "{first}");
    assert!(!t.lake().join("stock").exists(), "nothing published");

    // A folder where an export file was expected.
    let t = TestLake::new();
    t.file("stock/a.json", stock("1", "A", 1).to_string());
    std::fs::create_dir_all(t.input().join("stock/b.json")).unwrap();
    let out = t.run(DAY, &["--sources", "stock"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let first = first_error(&out);
    assert!(
        first.contains("stock/b.json") && first.contains("not a file"),
        "{first}"
    );

    // A file where a source's folder was expected.
    let t = TestLake::new();
    t.file("stock", "not a folder");
    let out = t.run(DAY, &["--sources", "stock"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(first_error(&out).contains("not a folder"));

    // A file whose reads fail (the kernel refuses to read this one at offset 0).
    let t = TestLake::new();
    t.file("stock/a.json", stock("1", "A", 1).to_string());
    let link = t.input().join("stock/b.ndjson");
    std::os::unix::fs::symlink("/proc/self/mem", &link).unwrap();
    let out = t.run(DAY, &["--sources", "stock"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let first = first_error(&out);
    assert!(
        first.contains(&link.display().to_string()) && first.contains("cannot read"),
        "{first}"
    );
}

#[test]
fn an_unreadable_file_fails_the_run_for_a_user_without_permission() {
    // Permissions do not stop root: the run is made as nobody when the tests run as root.
    let t = TestLake::new();
    t.file("stock/a.json", stock("1", "A", 1).to_string());
    t.file("stock/b.json", stock("1", "B", 1).to_string());
    let secret = t.input().join("stock/b.json");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    for dir in [t.dir.path().to_path_buf(), t.input(), t.input().join("stock")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut cmd = t.cmd();
    cmd.args(["run", "--sources", "stock", "--as-of", DAY, "--input"])
        .arg(t.input())
        .arg("--output")
        .arg(t.lake());
    // SAFETY: getuid/setgid/setuid are async-signal-safe, as pre_exec requires.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::getuid() == 0 && (libc::setgid(65534) != 0 || libc::setuid(65534) != 0) {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let first = first_error(&out);
    assert!(
        first.contains(&secret.display().to_string()) && first.contains("ermission denied"),
        "{first}"
    );
}

#[test]
fn rejects_of_many_batches_and_files_are_written_in_file_and_offset_order() {
    let t = TestLake::new();
    for f in ["c", "a", "b"] {
        let mut lines = Vec::new();
        for i in 0..60 {
            lines.push(match i % 3 {
                0 => format!("{{\"warehouse_id\": \"{f}\", \"product_id\": \"P{i}\", \"available_quantity\": \"x\"}}"),
                _ => stock(f, &format!("P{i}"), i).to_string(),
            });
        }
        t.file(&format!("stock/{f}.ndjson"), lines.join("\n"));
    }
    t.run_ok(
        DAY,
        &[
            "--sources",
            "stock",
            "--batch-bytes",
            "1024",
            "--threads",
            "2",
            "--max-reject-ratio",
            "0.5",
        ],
    );
    let r = t.table("_rejects", DAY);
    assert_eq!(r.height(), 60);
    let got: Vec<(String, u64)> = strings(&r, "file")
        .into_iter()
        .zip(strings(&r, "line"))
        .map(|(f, l)| (f.unwrap(), l.unwrap().parse().unwrap()))
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    assert_eq!(got[0], ("stock/a.ndjson".to_string(), 1));
    assert_eq!(t.table("stock", DAY).height(), 120);
}

#[test]
fn numbers_beyond_their_column_type_are_rejects_naming_the_field() {
    let t = TestLake::new();
    t.file(
        "stock/s.ndjson",
        [
            stock("1", "A", 1).to_string(),
            r#"{"warehouse_id": "1", "product_id": "B", "available_quantity": 1234567890123456789012}"#.into(),
            r#"{"warehouse_id": "1", "product_id": "C", "available_quantity": "1e30"}"#.into(),
            r#"{"warehouse_id": "1", "product_id": "D", "available_quantity": 9223372036854775808}"#.into(),
            stock("1", "E", 5).to_string(),
        ]
        .join("\n"),
    );
    t.file(
        "customer_devices/1.json",
        json!({"devices": [
            {"subscription_terminal_id": "T1", "fees": {"installment_plan": {"unpaid_installments": 3}}},
            {"subscription_terminal_id": "T2", "fees": {"installment_plan": {"unpaid_installments": 3000000000u64}}}
        ]})
        .to_string(),
    );
    t.file(
        "appointments/a.ndjson",
        json!({"id": "A1", "relatedParty": [{"id": "99999999999", "role": "scoring_level"}]}).to_string(),
    );
    let out = t.run(
        DAY,
        &[
            "--sources",
            "stock,customer_devices,appointments",
            "--max-reject-ratio",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let df = t.table("stock", DAY);
    assert_eq!(
        strings(&df, "product_code"),
        vec![Some("A".into()), Some("E".into())],
        "no saturated or wrapped quantity is published"
    );
    assert_eq!(t.table("customer_devices", DAY).height(), 1);
    assert_eq!(t.table("appointments", DAY).height(), 0);
    let r = t.table("_rejects", DAY);
    let reasons: Vec<String> = strings(&r, "reason").into_iter().flatten().collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(
        reasons[0].contains("scoring_level") && reasons[0].contains("32-bit integer"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("unpaid_installments"), "{reasons:?}");
    for r in &reasons[2..] {
        assert!(r.contains("available_quantity") && r.contains("64-bit integer"), "{r}");
    }
    for value in [
        "99999999999",
        "3000000000",
        "1234567890123456789012",
        "1e30",
        "9223372036854775808",
    ] {
        assert!(
            !reasons.iter().any(|r| r.contains(value)),
            "{value} quoted in {reasons:?}"
        );
    }
}
