//! Normalization, end to end through the real binary: input shapes, role pivots, timestamps,
//! personal data, rejects and duplicates.

mod common;

use common::*;
use serde_json::json;

const DAY: &str = "2025-06-30";

fn appointment(id: &str, last_update: &str, parties: serde_json::Value) -> String {
    json!({
        "id": id,
        "externalId": format!("EXT-{id}"),
        "category": "installation",
        "lastUpdate": last_update,
        "relatedParty": parties,
        "relatedEntity": [{"id": "MYSIM_12411", "role": "workorder", "name": "ID of OT", "href": "https://mysim/MYSIM_12411"},
                          {"id": "00833", "role": "donorOperator"}],
        "relatedPlace": {"id": "01000500059400011 001B", "name": "Reyes de Navarra 11, 1B, Vitoria, Alava", "role": "interventionAddress"},
        "resourceOrderItem": [{"id": "6545", "resource": {"resourceCharacteristic": [{"name": "type", "value": "FTTH"}]}},
                              {"id": "6546", "resource": {"resourceCharacteristic": [{"name": "msisdn", "value": "666777888"}, {"name": "tariff", "value": "3GB"}]}}],
        "validFor": {"startDateTime": "2025-07-01T08:00:00Z", "endDateTime": "2025-07-01T10:00:00Z"}
    })
    .to_string()
}

fn stock(w: &str, p: &str, q: i64) -> serde_json::Value {
    json!({"warehouse_id": w, "product_id": p, "available_quantity": q})
}

#[test]
fn every_input_shape_is_read() {
    let t = TestLake::new();
    // Single object, array, paginated envelope, NDJSON, gzip, zstd, CSV: one source, seven files.
    t.file("stock/a-single.json", stock("1", "A", 1).to_string());
    t.file(
        "stock/b-array.json",
        json!([stock("2", "A", 2), stock("2", "B", 3)]).to_string(),
    );
    t.file(
        "stock/c-envelope.json",
        json!({"data": [stock("3", "A", 4)]}).to_string(),
    );
    t.file(
        "stock/d-lines.ndjson",
        format!("{}\n{}\n", stock("4", "A", 5), json!({"data": [stock("4", "B", 6)]})),
    );
    t.gz("stock/e-gzip.ndjson.gz", &format!("{}\n", stock("5", "A", 7)));
    t.zst("stock/f-zstd.jsonl.zst", &format!("{}\n", stock("6", "A", 8)));
    t.file(
        "stock/g-table.csv",
        "warehouse_id,product_id,available_quantity\n7,A,9\n7,B,\"10\"\n",
    );
    t.file("stock/notes.txt", "not an export");
    let out = t.run_ok(DAY, &["--sources", "stock"]);
    let df = t.table("stock", DAY);
    assert_eq!(df.height(), 10, "{out}");
    assert_eq!(
        cell(&df, "warehouse_id", "5", "available_quantity").as_deref(),
        Some("7")
    );
    assert_eq!(
        cell(&df, "warehouse_id", "6", "available_quantity").as_deref(),
        Some("8")
    );
    let sevens: Vec<_> = strings(&df, "warehouse_id")
        .into_iter()
        .filter(|w| w.as_deref() == Some("7"))
        .collect();
    assert_eq!(sevens.len(), 2);
    assert!(
        out.contains("skipped stock/notes.txt"),
        "skipped files are reported:\n{out}"
    );
}

#[test]
fn large_files_are_read_in_many_batches_with_the_same_result() {
    let t = TestLake::new();
    let mut lines = String::new();
    for i in 0..3000 {
        lines.push_str(&stock(&format!("W{}", i % 7), &format!("P{i}"), i).to_string());
        lines.push('\n');
    }
    t.file("stock/big.ndjson", &lines);
    t.run_ok(DAY, &["--sources", "stock", "--batch-bytes", "4096"]);
    let df = t.table("stock", DAY);
    assert_eq!(df.height(), 3000);
    // Many read batches still make one right-sized file for the day.
    assert_eq!(common::table_files(&t.lake(), "stock", DAY).len(), 1);
    let total: i64 = df
        .column("available_quantity")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .flatten()
        .sum();
    assert_eq!(total, (0..3000).sum::<i64>());
}

#[test]
fn many_small_files_share_batches_with_the_same_result() {
    // 600 files of one or two records each: read as a few batches, not one batch per file,
    // yet every file keeps its records, rejects, duplicates and checksum.
    let t = TestLake::new();
    for i in 0..600 {
        let mut text = stock("1", &format!("P{i}"), i).to_string();
        if i == 300 {
            text.push_str("\n{\"warehouse_id\": \"1\", \"product_id\": ");
        }
        t.file(&format!("stock/f{i:04}.ndjson"), text);
    }
    // The same key in an early and a late file: without a timestamp the later read wins.
    t.file("stock/a-first.ndjson", stock("1", "P5", -1).to_string());
    let out = t.run_ok(DAY, &["--sources", "stock"]);
    let s = t.table("stock", DAY);
    assert_eq!(s.height(), 600, "{out}");
    assert_eq!(
        cell(&s, "product_code", "P5", "available_quantity").as_deref(),
        Some("5")
    );
    let r = t.table("_rejects", DAY);
    assert_eq!(strings(&r, "file"), vec![Some("stock/f0300.ndjson".to_string())]);
    assert_eq!(strings(&r, "line"), vec![Some("2".to_string())]);
    let m = &t.manifests(DAY)[0];
    let files = m["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "stock")
        .unwrap()["files"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(files.len(), 601);
    assert!(
        files
            .iter()
            .all(|f| f["checksum"].as_str().unwrap().starts_with("xxh3-128:"))
    );
    assert_eq!(files.iter().map(|f| f["records"].as_u64().unwrap()).sum::<u64>(), 602);
    // One file of one row group: the batches packed the small files together.
    let parts = common::table_files(&t.lake(), "stock", DAY);
    assert_eq!(parts.len(), 1);
    let footer = opslake::publish::stats::read_footer(&parts[0]).unwrap();
    assert_eq!(footer.num_row_groups(), 1, "one row group per batch, not per file");
}

#[test]
fn role_lists_pivot_into_typed_columns_and_keep_every_pair() {
    let t = TestLake::new();
    let a = appointment(
        "A1",
        "2025-06-01T10:00:00Z",
        json!([
            {"id": "eu_ES", "role": "language"},
            {"id": "80", "role": "duration"},
            {"id": "1", "role": "scoring_level"},
            {"id": "mysim", "role": "sellChannel"},
            {"id": "true", "role": "isNewAppointment"},
            {"id": "2023-10-03T15:00:00 - 2023-10-03T18:00:00", "role": "validForAppointment"},
            {"id": "00833", "role": "zipcode"},
            {"id": "installation", "role": "category"},
            {"id": "16", "role": "tenant"}
        ]),
    );
    // Another order, other spellings, a role missing, a number where text is expected.
    let b = appointment(
        "A2",
        "2025-06-01T10:00:00Z",
        json!([{"id": 85, "role": "duration_min"}, {"id": "RISK", "role": "scoring_result"}, {"id": "tienda", "role": "sell_channel"}]),
    );
    t.file("appointments/a.ndjson", format!("{a}\n{b}\n"));
    t.run_ok(DAY, &["--sources", "appointments"]);
    let df = t.table("appointments", DAY);
    assert_eq!(df.height(), 2);
    assert_eq!(
        df.column("scoring_level").unwrap().dtype(),
        &polars::prelude::DataType::Int32
    );
    assert_eq!(
        df.column("duration_min").unwrap().dtype(),
        &polars::prelude::DataType::Int32
    );
    assert_eq!(
        df.column("is_new_appointment").unwrap().dtype(),
        &polars::prelude::DataType::Boolean
    );
    assert_eq!(cell(&df, "appointment_id", "A1", "duration_min").as_deref(), Some("80"));
    assert_eq!(cell(&df, "appointment_id", "A2", "duration_min").as_deref(), Some("85"));
    assert_eq!(
        cell(&df, "appointment_id", "A1", "sell_channel").as_deref(),
        Some("mysim")
    );
    assert_eq!(
        cell(&df, "appointment_id", "A2", "sell_channel").as_deref(),
        Some("tienda")
    );
    assert_eq!(
        cell(&df, "appointment_id", "A1", "is_new_appointment").as_deref(),
        Some("true")
    );
    assert_eq!(
        cell(&df, "appointment_id", "A2", "scoring_level"),
        None,
        "missing role is null"
    );
    assert_eq!(
        cell(&df, "appointment_id", "A1", "zipcode").as_deref(),
        Some("00833"),
        "leading zeros kept"
    );
    assert_eq!(
        cell(&df, "appointment_id", "A1", "work_order").as_deref(),
        Some("MYSIM_12411")
    );
    assert_eq!(
        cell(&df, "appointment_id", "A1", "donor_operator").as_deref(),
        Some("00833")
    );
    assert_eq!(cell(&df, "appointment_id", "A1", "type").as_deref(), Some("FTTH"));
    assert_eq!(cell(&df, "appointment_id", "A1", "tariff").as_deref(), Some("3GB"));
    // 2023-10-03 15:00 Madrid (CEST) = 13:00 UTC.
    let start = cell(&df, "appointment_id", "A1", "valid_for_appointment_start").unwrap();
    assert!(start.starts_with("2023-10-03 13:00:00"), "{start}");
    let end = cell(&df, "appointment_id", "A1", "valid_for_appointment_end").unwrap();
    assert!(end.starts_with("2023-10-03 16:00:00"), "{end}");

    let parties = t.table("appointment_parties", DAY);
    assert_eq!(parties.height(), 12, "every pair, unknown roles included");
    let roles = strings(&parties, "role");
    assert!(roles.contains(&Some("category".into())), "unknown role kept");
    assert!(roles.contains(&Some("sellChannel".into())), "role kept as sent");
    assert_key_unique(&parties, "appointment_parties", &["appointment_id", "position"]);
    let rc = t.table("appointment_resource_characteristics", DAY);
    assert_eq!(rc.height(), 6);
    assert_eq!(strings(&rc, "resource_order_item_id")[1].as_deref(), Some("6546"));
    let entities = t.table("appointment_entities", DAY);
    assert_eq!(entities.height(), 4);
    assert_eq!(strings(&entities, "name")[0].as_deref(), Some("ID of OT"));
}

#[test]
fn timestamps_in_every_style_become_utc() {
    let t = TestLake::new();
    let mk = |id: &str, ts: &str| {
        json!({"expedition_id": id, "created_date": "2023-11-26", "status_history": [{"value": "SENT", "timestamp": ts}]}).to_string()
    };
    t.file(
        "expeditions/e.ndjson",
        [
            mk("zulu", "2023-05-02T09:00:09Z"),
            mk("fraction", "2023-05-02T09:00:09.500Z"),
            mk("offset", "2023-05-02T11:00:09+02:00"),
            mk("local-iso", "2023-05-02T11:00:09"),
            mk("local-space", "2023-05-02 11:00:09"),
            mk("winter", "2023-01-15 11:00:09"),
            mk("date", "2023-05-02"),
        ]
        .join("\n"),
    );
    t.run_ok(DAY, &["--sources", "expeditions", "--source-timezone", "Europe/Madrid"]);
    let h = t.table("expedition_status_history", DAY);
    let at = |id: &str| cell(&h, "expedition_id", id, "status_at").unwrap();
    for id in ["zulu", "offset", "local-iso", "local-space"] {
        assert!(at(id).starts_with("2023-05-02 09:00:09"), "{id}: {}", at(id));
    }
    assert!(
        at("fraction").starts_with("2023-05-02 09:00:09.500"),
        "{}",
        at("fraction")
    );
    assert!(at("winter").starts_with("2023-01-15 10:00:09"), "{}", at("winter"));
    assert!(
        at("date").starts_with("2023-05-01 22:00:00"),
        "local midnight: {}",
        at("date")
    );
    let e = t.table("expeditions", DAY);
    assert!(
        cell(&e, "expedition_id", "zulu", "created_date")
            .unwrap()
            .starts_with("2023-11-25 23:00:00")
    );
    let dtype = h.column("status_at").unwrap().dtype().to_string();
    assert!(dtype.contains("UTC") && dtype.contains("μs"), "{dtype}");
}

#[test]
fn personal_data_is_hashed_or_dropped_everywhere() {
    let t = TestLake::new();
    let a = appointment(
        "P1",
        "2025-06-01T10:00:00Z",
        json!([{"id": "Raúl", "role": "firstName"}, {"id": "Garcia Garcia", "role": "middleName"},
               {"id": "12345678T", "role": "documentNumber"}, {"id": "Test@PE.es", "role": "email"},
               {"id": "686201221", "role": "phoneNumber"}, {"id": "28036", "role": "zipcode"}]),
    );
    t.file("appointments/a.json", &a);
    t.file(
        "typifications/t.json",
        json!({"typifications": [{"id": "T1", "created_at": "2022-01-01T01:01:01Z", "channel": "agents", "user_id": "agent@corp.es", "msisdn": "686201221", "campaign": "c", "reason": "r"}]}).to_string(),
    );
    // A broken record with personal data: its raw text must be redacted too.
    t.file("appointments/bad.ndjson", json!({"id": "P2", "relatedParty": [{"id": "x", "role": "scoring_level"}, {"id": "secret@pe.es", "role": "email"}]}).to_string());
    t.run_ok(
        DAY,
        &["--sources", "appointments,typifications", "--max-reject-ratio", "0.6"],
    );
    let text = all_text(&t.lake());
    for raw in [
        "Raúl",
        "Garcia Garcia",
        "12345678T",
        "Test@PE.es",
        "test@pe.es",
        "686201221",
        "Reyes de Navarra",
        "666777888",
        "agent@corp.es",
        "secret@pe.es",
    ] {
        assert!(!text.contains(raw), "{raw} reached the lake");
    }
    assert!(text.contains("28036"), "zip codes are kept");
    let df = t.table("appointments", DAY);
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    assert!(
        !names.contains(&"first_name".into()) && !names.contains(&"related_place_name".into()),
        "names and streets dropped"
    );
    let email = cell(&df, "appointment_id", "P1", "email").unwrap();
    assert_eq!(email.len(), 64, "hex HMAC-SHA256");
    // The same identifier hashes the same in every table (here: phone = msisdn of the same line).
    let phone = cell(&df, "appointment_id", "P1", "phone_number").unwrap();
    let ty = t.table("typifications", DAY);
    assert_eq!(cell(&ty, "typification_id", "T1", "msisdn").unwrap(), phone);
    let rejects = t.table("_rejects", DAY);
    let raw = strings(&rejects, "raw")[0].clone().unwrap();
    assert!(raw.contains("scoring_level") && !raw.contains("secret@pe.es"), "{raw}");

    // Same input and key: same hash. Another key: another hash.
    let t2 = TestLake::new();
    t2.file("appointments/a.json", &a);
    t2.run_ok(DAY, &["--sources", "appointments"]);
    assert_eq!(
        cell(&t2.table("appointments", DAY), "appointment_id", "P1", "email").unwrap(),
        email
    );
    let t3 = TestLake::new();
    t3.file("appointments/a.json", &a);
    let out = t3
        .cmd()
        .env("OPSLAKE_PII_KEY", "another-key")
        .args(["run", "--sources", "appointments", "--as-of", DAY, "--input"])
        .arg(t3.input())
        .arg("--output")
        .arg(t3.lake())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_ne!(
        cell(&t3.table("appointments", DAY), "appointment_id", "P1", "email").unwrap(),
        email
    );
}

#[test]
fn without_a_key_a_hashing_job_refuses_to_start() {
    let t = TestLake::new();
    t.file("stock/s.json", stock("1", "A", 1).to_string());
    t.file("job.toml", "input = \"input\"\noutput = \"lake\"\n");
    let out = t
        .cmd()
        .env_remove("OPSLAKE_PII_KEY")
        .args(["run", "--job", "input/job.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().any(|l| l.starts_with("error: no PII key")), "{err}");
    assert!(!t.lake().join("stock").exists(), "nothing published");
    // pii = "drop" needs no key and publishes no personal column.
    t.file("job.toml", "input = \"input\"\noutput = \"lake\"\npii = \"drop\"\n");
    let out = t
        .cmd()
        .env_remove("OPSLAKE_PII_KEY")
        .args(["run", "--job", "input/job.toml", "--as-of", DAY])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bad_records_become_rejects_with_reasons_and_the_run_goes_on() {
    let t = TestLake::new();
    let mut lines = Vec::new();
    for i in 0..200 {
        lines.push(stock("1", &format!("P{i}"), i).to_string());
    }
    lines.insert(10, "{\"warehouse_id\": \"1\", \"product_id\": ".into());
    lines.insert(
        50,
        r#"{"warehouse_id": "1", "product_id": "X", "available_quantity": "many"}"#.into(),
    );
    lines.insert(90, json!({"product_id": "no-warehouse"}).to_string());
    t.file("stock/s.ndjson", lines.join("\n"));
    let out = t.run_ok(DAY, &["--sources", "stock", "--max-reject-ratio", "0.02"]);
    assert!(out.contains("rejects: 3 of 203"), "{out}");
    let r = t.table("_rejects", DAY);
    assert_eq!(r.height(), 3);
    let reasons = strings(&r, "reason");
    assert!(
        reasons[0].as_deref().unwrap().starts_with("invalid JSON"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].as_deref().unwrap().contains("available_quantity"),
        "{reasons:?}"
    );
    assert!(
        reasons[2]
            .as_deref()
            .unwrap()
            .contains("missing required key warehouse_id"),
        "{reasons:?}"
    );
    assert_eq!(
        strings(&r, "line"),
        vec![Some("11".into()), Some("51".into()), Some("91".into())]
    );
    for c in ["source", "file", "byte_offset", "raw_sha256"] {
        assert!(strings(&r, c).iter().all(Option::is_some), "{c} filled");
    }
    assert_eq!(
        strings(&r, "raw")[0],
        None,
        "unparseable raw text is redacted by default"
    );
    assert_eq!(t.table("stock", DAY).height(), 200);
}

#[test]
fn too_many_rejects_fail_the_run_and_publish_nothing() {
    let t = TestLake::new();
    t.file(
        "stock/s.ndjson",
        format!("{}\n{{broken\n{{broken\n", stock("1", "A", 1)),
    );
    let out = t.run(DAY, &["--sources", "stock"]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        first.contains("2 of 3 records were rejected") && first.contains("max_reject_ratio"),
        "{err}"
    );
    assert!(!t.lake().join("stock").exists(), "nothing published");
    assert!(t.manifests(DAY).is_empty());
}

#[test]
fn duplicates_collapse_to_the_latest_update_and_are_counted() {
    let t = TestLake::new();
    let old = appointment("D1", "2025-06-01T10:00:00Z", json!([{"id": "OLD", "role": "segment"}]));
    let new = appointment(
        "D1",
        "2025-06-02T10:00:00Z",
        json!([{"id": "NEW", "role": "segment"}, {"id": "x", "role": "language"}]),
    );
    let other = appointment("D2", "2025-06-01T10:00:00Z", json!([]));
    // The newer copy is read first: the timestamp decides, not the read order.
    t.file("appointments/1.ndjson", format!("{new}\n{other}\n"));
    t.file("appointments/2.ndjson", format!("{old}\n{other}\n"));
    // Without a timestamp (stock) the last read wins, across batches too.
    let mut early = String::new();
    for i in 0..400 {
        early.push_str(&stock("9", &format!("Q{i}"), 1).to_string());
        early.push('\n');
    }
    t.file("stock/1.ndjson", format!("{}\n{early}", stock("1", "A", 1)));
    t.file("stock/2.ndjson", format!("{}\n", stock("1", "A", 2)));
    let out = t.run_ok(DAY, &["--sources", "appointments,stock", "--batch-bytes", "2048"]);
    let a = t.table("appointments", DAY);
    assert_eq!(a.height(), 2);
    assert_eq!(cell(&a, "appointment_id", "D1", "segment").as_deref(), Some("NEW"));
    let parties = t.table("appointment_parties", DAY);
    let d1 = strings(&parties, "appointment_id")
        .iter()
        .filter(|k| k.as_deref() == Some("D1"))
        .count();
    assert_eq!(d1, 2, "the loser's long-table rows are gone too");
    let s = t.table("stock", DAY);
    assert_eq!(s.height(), 401);
    let a1: Vec<_> = strings(&s, "product_code")
        .iter()
        .zip(strings(&s, "available_quantity"))
        .filter(|(p, _)| p.as_deref() == Some("A"))
        .map(|(_, q)| q)
        .collect();
    assert_eq!(a1, vec![Some("2".to_string())]);
    let m = &t.manifests(DAY)[0];
    let src = |name: &str| {
        m["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(src("appointments")["duplicates"], 2);
    assert_eq!(
        src("appointments")["conflicting_duplicates"],
        1,
        "D1 copies differ, D2 copies do not"
    );
    assert_eq!(src("stock")["duplicates"], 1);
    assert!(out.contains("different contents"), "{out}");
}

#[test]
fn envelopes_pass_their_context_to_items() {
    let t = TestLake::new();
    t.file(
        "time_slots/search.json",
        json!({"request": {"id": "MYSIM_1"}, "response": {"availableTimeSlot": [
            {"relatedParty": [{"id": "11", "role": "freeSlots"}, {"id": "0", "role": "ocuppiedSlots"}], "validFor": {"startDateTime": "2020-08-15T07:00:00.000Z", "endDateTime": "2020-08-15T09:00:00.000Z"}},
            {"relatedParty": [{"id": "7", "role": "freeSlots"}, {"id": "4", "role": "ocuppiedSlots"}], "validFor": {"startDateTime": "2020-08-15T09:00:00.000Z", "endDateTime": "2020-08-15T11:00:00.000Z"}}]}})
        .to_string(),
    );
    t.file(
        "time_slots/MYSIM_2.json",
        json!({"availableTimeSlot": [{"relatedParty": [{"id": "3", "role": "freeSlots"}], "validFor": {"startDateTime": "2020-08-16T07:00:00Z"}}]}).to_string(),
    );
    t.file("customer_devices/12345.json", json!({"devices": [{"subscription_terminal_id": 214748364, "fees": {"installment_plan": {"monthly_fee": 6, "unpaid_installments": 10, "last_installment_fee": 0.5}}}]}).to_string());
    t.file(
        "memos/page.json",
        json!({"data": {"memos": [{"id": "m1", "customer_num": 12345, "change_stamp": "2020-01-31"}]}, "next_request": "http://localhost:8081/memos/?limit=40&offset=40"}).to_string(),
    );
    t.run_ok(DAY, &["--sources", "time_slots,customer_devices,memos"]);
    let s = t.table("time_slots", DAY);
    assert_eq!(s.height(), 3);
    // Files are read in name order: MYSIM_2.json before search.json.
    assert_eq!(
        strings(&s, "appointment_id"),
        vec![Some("MYSIM_2".into()), Some("MYSIM_1".into()), Some("MYSIM_1".into())]
    );
    assert_eq!(
        strings(&s, "occupied_slots"),
        vec![None, Some("0".into()), Some("4".into())]
    );
    assert_eq!(
        strings(&s, "free_slots"),
        vec![Some("3".into()), Some("11".into()), Some("7".into())]
    );
    let d = t.table("customer_devices", DAY);
    assert_eq!(
        cell(&d, "subscription_terminal_id", "214748364", "customer_num").as_deref(),
        Some("12345")
    );
    assert_eq!(
        cell(&d, "subscription_terminal_id", "214748364", "monthly_fee").as_deref(),
        Some("6.0000000000")
    );
    assert_eq!(
        cell(&d, "subscription_terminal_id", "214748364", "last_installment_fee").as_deref(),
        Some("0.5000000000")
    );
    assert_eq!(
        cell(&t.table("memos", DAY), "memo_id", "m1", "customer_num").as_deref(),
        Some("12345")
    );
}

#[test]
fn fees_sent_as_doubles_are_exact_decimals_and_only_values_beyond_38_digits_are_rejected() {
    let t = TestLake::new();
    // Literals are written by hand: serde_json's json! would turn them into floats first.
    t.file(
        "customer_devices/12345.json",
        r#"{"devices": [
            {"subscription_terminal_id": "D1", "fees": {"upfront_fee": 0, "installment_plan": {"monthly_fee": 16.666667, "unpaid_installments": 3, "last_installment_fee": 0.30000000000000004}}},
            {"subscription_terminal_id": "D2", "fees": {"upfront_fee": 1234567890123456789012.5}}
        ]}"#,
    );
    t.file(
        "typifications/12345.json",
        r#"{"typifications": [{"id": "T1", "initial_fee": 0.30000000000000004}, {"id": "T2", "initial_fee": 0.1}]}"#,
    );
    t.file(
        "orders/o.json",
        r#"{"orders": [
            {"order": {"order_id": "O1"}, "products": [{"subscription_device_id": "D1", "product_code": "A", "product_unit_price": 100000000000000000000000000000}]},
            {"order": {"order_id": "O2"}, "products": [{"subscription_device_id": "D2", "product_code": "A", "product_unit_price": 100000000000000000, "remaining_payment": "20.5"}]}
        ]}"#,
    );
    let out = t.run_ok(
        DAY,
        &[
            "--sources",
            "customer_devices,typifications,orders",
            "--max-reject-ratio",
            "0.5",
        ],
    );
    let d = t.table("customer_devices", DAY);
    let fee = |id: &str, c: &str| cell(&d, "subscription_terminal_id", id, c);
    assert_eq!(fee("D1", "monthly_fee").as_deref(), Some("16.6666670000"));
    assert_eq!(fee("D1", "last_installment_fee").as_deref(), Some("0.3000000000"));
    assert_eq!(
        fee("D2", "upfront_fee").as_deref(),
        Some("1234567890123456789012.5000000000")
    );
    let ty = t.table("typifications", DAY);
    assert_eq!(
        cell(&ty, "typification_id", "T1", "initial_fee").as_deref(),
        Some("0.3000000000")
    );
    assert_eq!(
        cell(&ty, "typification_id", "T2", "initial_fee").as_deref(),
        Some("0.1000000000")
    );
    // 10^17 fits Decimal(38, 10); 10^29 does not: that order alone is a reject, naming the field.
    let orders = t.table("orders", DAY);
    assert_eq!(strings(&orders, "order_id"), vec![Some("O2".to_string())]);
    assert_eq!(
        cell(&t.table("order_products", DAY), "order_id", "O2", "product_unit_price").as_deref(),
        Some("100000000000000000.0000000000")
    );
    let r = t.table("_rejects", DAY);
    assert_eq!(r.height(), 1, "{out}");
    let reason = strings(&r, "reason")[0].clone().unwrap();
    assert!(
        reason.contains("product_unit_price") && reason.contains("does not fit Decimal(38, 10)"),
        "{reason}"
    );
    // Digits past the tenth place are rounded half-even and counted, per source.
    assert!(
        out.contains("customer_devices: 1 amounts had more than 10 decimal places")
            && out.contains("typifications: 1 amounts had more than 10 decimal places"),
        "{out}"
    );
}

#[test]
fn products_with_expedition_keep_each_product_at_its_latest_current_status() {
    let t = TestLake::new();
    let listed = |device: Option<&str>, status: &str, at: &str| {
        let mut p = json!({"product_code": "RM58AV3N2", "quantity": 1, "remaining_payment": 20.5,
            "associated_expedition": {"expedition_id": "E1-R0", "current_status": {"id": "1", "value": status, "final": false, "timestamp": at}}});
        if let Some(d) = device {
            p["subscription_device_id"] = json!(d);
        }
        p
    };
    t.file(
        "products_with_expedition/page-1.json",
        json!({"page_size": 3, "current_page": 1, "total_pages": 2, "total_elements": 4, "products": [
            listed(Some("40397"), "DELIVERED", "2023-05-02 11:00:09"),
            listed(Some("40398"), "IN_TRANSIT", "2023-05-01 09:00:00"),
            listed(None, "SENT", "2023-05-01 09:00:00"),
        ]})
        .to_string(),
    );
    // Page 2 lists 40397 again with an older status: the page-1 copy stays.
    t.file(
        "products_with_expedition/page-2.json",
        json!({"page_size": 3, "current_page": 2, "total_pages": 2, "total_elements": 4, "products": [
            listed(Some("40397"), "IN_TRANSIT", "2023-05-01 11:00:09"),
        ]})
        .to_string(),
    );
    t.run_ok(
        DAY,
        &["--sources", "products_with_expedition", "--max-reject-ratio", "0.5"],
    );
    let p = t.table("products_with_expedition", DAY);
    assert_eq!(p.height(), 2);
    assert_eq!(
        cell(&p, "subscription_device_id", "40397", "current_status").as_deref(),
        Some("DELIVERED")
    );
    assert_eq!(
        cell(&p, "subscription_device_id", "40397", "expedition_id").as_deref(),
        Some("E1-R0")
    );
    // Madrid wall time, stored as UTC.
    let at = cell(&p, "subscription_device_id", "40398", "current_status_at").unwrap();
    assert!(at.starts_with("2023-05-01 07:00:00"), "{at}");
    assert_eq!(
        cell(&p, "subscription_device_id", "40398", "remaining_payment").as_deref(),
        Some("20.5000000000")
    );
    let r = t.table("_rejects", DAY);
    assert_eq!(
        strings(&r, "reason"),
        vec![Some("missing required key subscription_device_id".to_string())]
    );
    let m = &t.manifests(DAY)[0];
    assert_eq!(m["sources"][0]["duplicates"], 1);
    assert_eq!(m["sources"][0]["rows_written"], 2);
}

#[test]
fn a_published_lake_holds_no_raw_personal_value_from_hostile_inputs() {
    let t = TestLake::new();
    let a = json!({
        "id": "H1",
        "lastUpdate": "2025-06-01T10:00:00Z",
        "relatedParty": [
            {"id": "611 222 333", "role": "telefono"}, {"id": "622333444", "role": "movil"},
            {"id": "Fernández López", "role": "apellidos"}, {"id": "Lucía", "role": "nombre"},
            {"id": "12345678Z", "role": "dni"}, {"id": "X1234567L", "role": "nie"},
            {"id": "lucia@correo.es", "role": "correo"}, {"id": "Calle Ficticia 13", "role": "direccion"},
            {"id": "ES9121000418450200051332", "role": "iban"},
            {"id": "otra.persona@dominio.es", "role": "ref9"}, {"id": "+34 633 444 555", "role": "contacto2"},
            {"id": "Y7654321K", "role": "doc2"}, {"id": "installation", "role": "category"}
        ],
        "relatedEntity": [{"id": "tercera@dominio.es", "role": "notify"}],
        "resourceOrderItem": [{"id": "1", "resource": {"resourceCharacteristic": [{"name": "linea2", "value": "655 666 777"}]}}],
        "contactMedium": [{"mediumType": "chat", "characteristic": {"key": "whatsapp", "value": "+34 644 555 666"}}]
    });
    let place_as_text = json!({"id": "H2", "relatedPlace": "Calle Ficticia 14, 2B, 28001 Madrid"});
    let payment = json!({"id": "H3", "lastUpdate": "yesterday", "payment": {"holder": "María Pérez", "iban": "GB82WEST12345698765432"}});
    t.file(
        "appointments/a.ndjson",
        [
            a.to_string(),
            place_as_text.to_string(),
            payment.to_string(),
            "\"Calle Falsa 123, Springfield\"".into(),
            json!(["Juan Nadie", "699888777"]).to_string(),
        ]
        .join("\n"),
    );
    let out = t.run(DAY, &["--sources", "appointments", "--max-reject-ratio", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secrets = [
        "611 222 333",
        "622333444",
        "Fernández",
        "Lucía",
        "12345678Z",
        "X1234567L",
        "lucia@correo.es",
        "Calle Ficticia",
        "ES9121000418450200051332",
        "otra.persona@dominio.es",
        "+34 633 444 555",
        "Y7654321K",
        "tercera@dominio.es",
        "655 666 777",
        "644 555 666",
        "María",
        "Pérez",
        "GB82WEST",
        "Calle Falsa",
        "Juan Nadie",
        "699888777",
    ];
    let mut everything = all_text(&t.lake());
    for m in t.manifests(DAY) {
        everything.push_str(&m.to_string());
    }
    everything.push_str(&String::from_utf8_lossy(&out.stdout));
    everything.push_str(&String::from_utf8_lossy(&out.stderr));
    for raw in secrets {
        assert!(
            !everything.contains(raw),
            "{raw} reached the lake, the record or the logs"
        );
    }
    assert!(everything.contains("installation"), "ordinary values are kept");
    let r = t.table("_rejects", DAY);
    assert_eq!(r.height(), 4);
    let reasons: Vec<String> = strings(&r, "reason").into_iter().flatten().collect();
    assert!(
        reasons[0].contains("relatedPlace") && reasons[0].contains("string"),
        "{reasons:?}"
    );

    // The same records above the allowed ratio: the error names no value either.
    let out = t.run(DAY, &["--sources", "appointments", "--max-reject-ratio", "0"]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("relatedPlace"), "{err}");
    for raw in secrets {
        assert!(!err.contains(raw), "{raw} in stderr: {err}");
    }
}

#[test]
fn the_development_key_is_refused_unless_the_input_is_the_samples_or_the_job_allows_it() {
    let t = TestLake::new();
    // One of the samples' own files, alone: not the samples.
    t.file(
        "stock/seed-stock.json",
        std::fs::read(repo().join("samples/stock/seed-stock.json")).unwrap(),
    );
    let embedded = |t: &TestLake| {
        t.cmd()
            .env_remove("OPSLAKE_PII_KEY")
            .args(["run", "--sources", "stock", "--as-of", DAY, "--input"])
            .arg(t.input())
            .arg("--output")
            .arg(t.lake())
            .output()
            .unwrap()
    };
    let out = embedded(&t);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: no PII key") && l.contains("development key")),
        "{err}"
    );
    assert!(!t.lake().join("stock").exists(), "nothing published");

    // A job file that says the input is test data may use it.
    t.file(
        "job.toml",
        "input = \"input\"\noutput = \"lake\"\nallow_development_key = true\n",
    );
    let out = t
        .cmd()
        .env_remove("OPSLAKE_PII_KEY")
        .args(["run", "--job", "input/job.toml", "--sources", "stock", "--as-of", DAY])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = &t.manifests(DAY)[0];
    assert!(m["pii"]["key"].as_str().unwrap().contains("DEVELOPMENT"), "{m}");
}

/// Every row of `df` as text, sorted: two tables hold the same rows whatever their order.
fn sorted_rows(df: &polars::prelude::DataFrame) -> Vec<String> {
    let mut rows: Vec<String> = (0..df.height())
        .map(|i| {
            df.columns()
                .iter()
                .map(|c| format!("{}={}", c.name(), c.get(i).unwrap()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_subset_of_tables_is_written_as_the_whole_run_writes_it_and_rejects_the_same_records() {
    let parties = json!([{"id": "Ana", "role": "firstName"}, {"id": "ana@x.es", "role": "email"},
                         {"id": "Residencial", "role": "segment"}, {"id": "v", "role": "customRole"}]);
    let mut lines = Vec::new();
    for i in 0..40 {
        let mut a: serde_json::Value =
            serde_json::from_str(&appointment(&format!("A{i}"), "2025-06-27T12:00:00Z", parties.clone())).unwrap();
        a["contactMedium"] = json!([{"mediumType": "email", "characteristic": {"key": "email", "value": "Ana@X.es"}}]);
        a["note"] = json!([{"author": "Backoffice", "date": "2025-06-26T12:00:00Z", "text": "ok"}]);
        if i % 10 == 3 {
            // Rejected for a table the subset does not write: the record is rejected all the same.
            a["note"][0]["date"] = json!("not a date");
        }
        lines.push(a.to_string());
    }
    let subset = TestLake::new();
    let whole = TestLake::new();
    for t in [&subset, &whole] {
        t.file("appointments/a.ndjson", lines.join("\n"));
    }
    let out = subset.run_ok(
        DAY,
        &[
            "--sources",
            "appointments",
            "--tables",
            "appointments,appointment_parties",
            "--max-reject-ratio",
            "0.2",
        ],
    );
    whole.run_ok(DAY, &["--sources", "appointments", "--max-reject-ratio", "0.2"]);
    assert!(out.contains("rejects: 4 of 40"), "{out}");
    for table in ["appointments", "appointment_parties", "_rejects"] {
        let (s, w) = (subset.table(table, DAY), whole.table(table, DAY));
        assert!(s.height() > 0, "{table} is written");
        assert_eq!(sorted_rows(&s), sorted_rows(&w), "{table}");
    }
    for table in [
        "appointment_entities",
        "appointment_resource_characteristics",
        "appointment_notes",
        "appointment_contact_media",
    ] {
        assert!(whole.table(table, DAY).height() >= 36, "{table} in the whole run");
        assert!(
            !subset.lake().join(table).exists(),
            "{table} is not written by the subset"
        );
    }
}

#[test]
fn contact_e_mails_are_hashed_as_the_same_address_in_any_case() {
    let t = TestLake::new();
    let mut lines = Vec::new();
    for (i, (medium, address)) in [("email", "ana@x.es"), ("E-MAIL", "Ana@X.es"), ("eMail", "ANA@x.ES")]
        .into_iter()
        .enumerate()
    {
        let mut a: serde_json::Value = serde_json::from_str(&appointment(
            &format!("A{i}"),
            "2025-06-27T12:00:00Z",
            json!([{"id": "ana@x.es", "role": "email"}]),
        ))
        .unwrap();
        a["contactMedium"] = json!([{"mediumType": medium, "characteristic": {"key": "k", "value": address}},
                                    {"mediumType": "phoneNumber", "characteristic": {"key": "mobile", "value": address}}]);
        lines.push(a.to_string());
    }
    t.file("appointments/a.ndjson", lines.join("\n"));
    t.run_ok(DAY, &["--sources", "appointments"]);
    let party = strings(&t.table("appointment_parties", DAY), "value");
    assert!(party.iter().all(|v| v == &party[0]) && party[0].as_deref().is_some_and(|v| v.len() == 64));
    let media = t.table("appointment_contact_media", DAY);
    let values = strings(&media, "characteristic_value");
    let types = strings(&media, "medium_type");
    let (mails, others): (Vec<_>, Vec<_>) = types
        .iter()
        .zip(&values)
        .partition(|(t, _)| t.as_deref() != Some("phoneNumber"));
    assert_eq!(mails.len(), 3);
    assert!(
        mails.iter().all(|(_, v)| **v == party[0]),
        "{mails:?} against {party:?}"
    );
    // Other media are hashed as sent: the three spellings stay three digests.
    let mut distinct: Vec<_> = others.iter().map(|(_, v)| (*v).clone()).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{others:?}");
}
