//! Reconciliations on hand-built inputs where every state occurs, with the expected state per
//! key written here; and on a generated universe whose injected cases must be found exactly.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};

const DAY: &str = "2025-06-30";

fn product(device: Option<&str>, code: &str, remaining: &str) -> Value {
    let mut p = json!({"product_code": code, "quantity": 1, "remaining_payment": remaining});
    if let Some(d) = device {
        p["subscription_device_id"] = json!(d);
    }
    p
}

fn order(id: &str, work_order: Option<&str>, products: Vec<Value>) -> Value {
    let mut head = json!({"order_id": id});
    if let Some(w) = work_order {
        head["work_order"] = json!(w);
    }
    json!({"order": head, "products": products})
}

/// An expedition of `devices` with `(status, timestamp)` in list order.
fn expedition(id: &str, devices: &[&str], statuses: &[(&str, &str)]) -> Value {
    json!({
        "expedition_id": id,
        "status_history": statuses.iter().map(|(s, t)| json!({"value": s, "timestamp": t})).collect::<Vec<_>>(),
        "products": devices.iter().map(|d| json!({"product_code": "X", "subscription_device_id": d})).collect::<Vec<_>>()
    })
}

fn appointment(id: &str, external: &str, last_update: &str, start: Option<&str>) -> Value {
    let mut a = json!({"id": id, "externalId": external, "lastUpdate": last_update});
    if let Some(s) = start {
        a["validFor"] = json!({"startDateTime": s, "endDateTime": s});
    }
    a
}

fn journey(devices: &[&str], total: Option<Value>, currency: &str) -> Value {
    let mut details = json!({});
    if let Some(t) = total {
        details["remaining_payment"] = json!({"total": t, "currency": currency});
    }
    json!({"devices": devices.iter().map(|d| json!({"reference": "r", "subscription": {}, "subscription_device_id": d})).collect::<Vec<_>>(),
           "transport": {"courier": "GLS", "service": "24h", "delivery_details": details}})
}

fn external(id: &str, process: &str, journeys: Vec<Value>) -> Value {
    json!({"order_id_external": id, "reexpedition": "R0", "process_type": process, "status": {"id": "1", "timestamp": "2025-06-29T10:00:00Z"}, "journeys": journeys})
}

/// A journey device that names its order (`subscription.order_id`, the order's `order_id_crm`).
fn device_of(device: &str, order_id_crm: Option<&str>) -> Value {
    let mut subscription = json!({});
    if let Some(o) = order_id_crm {
        subscription["order_id"] = json!(o);
    }
    json!({"reference": "r", "subscription": subscription, "subscription_device_id": device})
}

fn journey_of(devices: Vec<Value>, total: Value) -> Value {
    json!({"devices": devices, "transport": {"delivery_details": {"remaining_payment": {"total": total, "currency": "EUR"}}}})
}

fn states(df: &polars::prelude::DataFrame, key: &[&str]) -> BTreeMap<String, String> {
    let keys: Vec<Vec<Option<String>>> = key.iter().map(|k| strings(df, k)).collect();
    let st = strings(df, "state");
    (0..df.height())
        .map(|i| {
            let k = keys
                .iter()
                .map(|c| c[i].clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("/");
            (k, st[i].clone().unwrap_or_default())
        })
        .collect()
}

fn expect(got: &BTreeMap<String, String>, want: &[(&str, &str)]) {
    for (k, v) in want {
        assert_eq!(got.get(*k).map(String::as_str), Some(*v), "state of {k}; all: {got:#?}");
    }
}

/// One hand-built day: the inputs of every reconciliation.
fn hand_built() -> TestLake {
    let t = TestLake::new();
    t.file(
        "orders/orders.json",
        json!({"orders": [
            order("O1", None, vec![product(Some("D1"), "A", "10.00"), product(Some("D2"), "A", "0")]),
            order("O2", None, vec![product(Some("D3"), "B", "0"), product(Some("D4"), "B", "0")]),
            order("O3", None, vec![product(Some("D5"), "B", "0"), product(Some("D6"), "C", "0")]),
            order("O4", None, vec![product(Some("D7"), "D", "0"), product(Some("D8"), "D", "0")]),
            order("O5", None, vec![product(Some("D9"), "D", "0"), product(Some("D10"), "D", "0")]),
            order("O6", None, vec![product(Some("D11"), "D", "0"), product(Some("D12"), "D", "0"), product(None, "B", "5.00")]),
            order("O7", None, vec![product(Some("D13"), "D", "0"), product(Some("D14"), "D", "0"), product(Some("D15"), "D", "0"), product(Some("D16"), "D", "0")]),
            // Payments
            order("P1", None, vec![product(Some("M1"), "D", "20.50")]),
            order("P2", None, vec![product(Some("M2"), "D", "20.50")]),
            order("P3", None, vec![product(Some("M3"), "D", "20.50")]),
            order("P4", None, vec![product(Some("M4"), "D", "20.50"), product(Some("M5"), "D", "20.50")]),
            order("P5", None, vec![product(Some("M6"), "D", "7.25")]),
            order("P6", None, vec![product(Some("M7"), "D", "20.50")]),
            order("P7", None, vec![product(Some("M8"), "D", "12")]),
            // Installations
            order("W1", Some("WO-1"), vec![product(Some("I1"), "D", "0")]),
            order("W2", Some("WO-2"), vec![product(Some("I2"), "D", "0")]),
            order("W3", Some("WO-3"), vec![product(Some("I3"), "D", "0"), product(Some("I3b"), "D", "0")]),
            order("W4", Some("WO-4"), vec![product(Some("I4"), "D", "0")]),
            order("W5", Some("WO-5"), vec![product(Some("I5"), "D", "0")]),
            order("W6", Some("WO-6"), vec![product(Some("I6"), "D", "0")]),
            order("W7", Some("WO-7"), vec![product(Some("I7"), "D", "0")]),
            order("W8a", Some("WO-8"), vec![product(Some("I8a"), "D", "0")]),
            order("W8b", Some("WO-8"), vec![product(Some("I8b"), "D", "0")]),
        ]})
        .to_string(),
    );
    let e = [
        // D1: none. D2 delivered.
        expedition(
            "E2",
            &["D2"],
            &[("SENT", "2025-06-10 10:00:00"), ("DELIVERED", "2025-06-12 10:00:00")],
        ),
        expedition("E3", &["D3"], &[("RETURNED_TO_WAREHOUSE", "2025-06-12 10:00:00")]),
        expedition("E4", &["D4"], &[("EXPIRED", "2025-06-12 10:00:00")]),
        expedition("E5", &["D5"], &[("FAIL_CONTACT", "2025-06-12 10:00:00")]),
        // D6: in transit for more than 7 days before the end of 2025-06-30 (Madrid).
        expedition("E6", &["D6"], &[("IN_TRANSIT", "2025-06-20 10:00:00")]),
        expedition("E7", &["D7"], &[("IN_TRANSIT", "2025-06-29 10:00:00")]),
        // D8: no history at all, never stuck.
        expedition("E8", &["D8"], &[]),
        // D9: re-expedition, the later one delivered. D10: the later one stuck.
        expedition("E9-R0", &["D9"], &[("RETURNED", "2025-06-10 10:00:00")]),
        expedition(
            "E9-R1",
            &["D9"],
            &[("SENT", "2025-06-11 10:00:00"), ("DELIVERED", "2025-06-15 10:00:00")],
        ),
        expedition("E10-R0", &["D10"], &[("INCIDENCE", "2025-06-01 10:00:00")]),
        expedition("E10-R1", &["D10"], &[("SENT", "2025-06-05 10:00:00")]),
        // D11, D12: ties inside a history: the later in the list wins.
        expedition(
            "E11",
            &["D11"],
            &[
                ("IN_TRANSIT", "2025-06-28 10:00:00"),
                ("DELIVERED", "2025-06-28 10:00:00"),
            ],
        ),
        expedition(
            "E12",
            &["D12"],
            &[
                ("DELIVERED", "2025-06-28 10:00:00"),
                ("ABSENT_INCIDENCE", "2025-06-28 10:00:00"),
            ],
        ),
        // D13: a tie between expeditions: the greater expedition_id wins.
        expedition("E13-A", &["D13"], &[("DELIVERED", "2025-06-20 10:00:00")]),
        expedition("E13-B", &["D13"], &[("NOT_DELIVERED", "2025-06-20 10:00:00")]),
        // D14: listed out of time order. D15: a status not in the category file.
        expedition(
            "E14",
            &["D14"],
            &[("DELIVERED", "2025-06-20 10:00:00"), ("SENT", "2025-06-10 10:00:00")],
        ),
        expedition("E15", &["D15"], &[("TELEPORTED", "2025-06-29 10:00:00")]),
        // D16: exactly 7 days before the end of the day: not older than 7 days.
        expedition("E16", &["D16"], &[("IN_TRANSIT", "2025-06-24 00:00:00")]),
        // Installations: I2 delivered after its appointment; I3 delivered before.
        expedition("EI2", &["I2"], &[("DELIVERED", "2025-06-25T10:00:00Z")]),
        expedition(
            "EI3",
            &["I3", "I3b"],
            &[("DELIVERED_CUSTODIAN", "2025-06-25T10:00:00Z")],
        ),
        expedition("EI4", &["I4"], &[("IN_TRANSIT", "2025-06-29T10:00:00Z")]),
    ];
    t.file("expeditions/page.json", json!({"expeditions": e}).to_string());
    t.file(
        "stock/stock.csv",
        "warehouse_id,product_id,available_quantity\n1,A,5\n1,B,0\n2,B,\n1,D,100\n",
    );
    t.file(
        "appointments/a.ndjson",
        [
            appointment("WO-2", "x2", "2025-06-01T00:00:00Z", Some("2025-06-20T08:00:00Z")),
            appointment("APT-3", "WO-3", "2025-06-01T00:00:00Z", Some("2025-07-05T08:00:00Z")),
            // AT_RISK: starts within 48 h after the end of the day (2025-06-30T22:00Z).
            appointment("WO-4", "x4", "2025-06-01T00:00:00Z", Some("2025-07-01T10:00:00Z")),
            // AT_RISK: already past, nothing delivered.
            appointment("WO-5", "x5", "2025-06-01T00:00:00Z", Some("2025-06-25T08:00:00Z")),
            appointment("WO-6", "x6", "2025-06-01T00:00:00Z", Some("2025-07-10T08:00:00Z")),
            // Rescheduled: the latest by lastUpdate counts.
            appointment(
                "APT-7-old",
                "WO-7",
                "2025-06-01T00:00:00Z",
                Some("2025-06-02T08:00:00Z"),
            ),
            appointment(
                "APT-7-new",
                "WO-7",
                "2025-06-20T00:00:00Z",
                Some("2025-07-20T08:00:00Z"),
            ),
            appointment("WO-8", "WO-8", "2025-06-01T00:00:00Z", Some("2025-07-20T08:00:00Z")),
        ]
        .map(|v| v.to_string())
        .join("\n"),
    );
    t.file(
        "external_orders/e.ndjson",
        [
            external("X1", "PEDIDO", vec![journey(&["M1"], Some(json!(20.5)), "EUR")]),
            // Within the tolerance, to the cent.
            external("X2", "PEDIDO", vec![journey(&["M2"], Some(json!("20.51")), "EUR")]),
            external("X3", "PEDIDO", vec![journey(&["M3"], Some(json!("20.52")), "EUR")]),
            // No amount, a null amount, unknown devices, another currency.
            external(
                "X4",
                "PEDIDO",
                vec![
                    journey(&["M4"], None, "EUR"),
                    journey(&["M5"], Some(Value::Null), "EUR"),
                ],
            ),
            external("X5", "PEDIDO", vec![journey(&["ZZ"], Some(json!(5)), "EUR")]),
            external("X6", "PEDIDO", vec![journey(&["M6"], Some(json!(7.25)), "USD")]),
            // A journey carrying devices of two orders, one listed twice.
            external(
                "X7",
                "PEDIDO",
                vec![journey(&["M7", "M8", "M8"], Some(json!(32.5)), "EUR")],
            ),
            // Final payments against fees.
            external("X8", "FINALPAYMENT", vec![journey(&["M1"], Some(json!(20.5)), "EUR")]),
            external("X9", "FINALPAYMENT", vec![journey(&["M2"], Some(json!(20.5)), "EUR")]),
            external("X10", "FINALPAYMENT", vec![journey(&["M3"], Some(json!(20.5)), "EUR")]),
        ]
        .map(|v| v.to_string())
        .join("\n"),
    );
    t.file(
        "customer_devices/1.json",
        json!({"devices": [
            // 5 * 4 + 0.50 = 20.50: matches.
            {"subscription_terminal_id": "M1", "fees": {"installment_plan": {"monthly_fee": 5, "unpaid_installments": 4, "last_installment_fee": 0.5}}},
            // 20.00: does not.
            {"subscription_terminal_id": "M2", "fees": {"installment_plan": {"monthly_fee": 5, "unpaid_installments": 4, "last_installment_fee": 0}}},
            // Only a final plan: 10 * 2 + 0.50 = 20.50.
            {"subscription_terminal_id": "M3", "fees": {"final_installment_plan": {"monthly_fee": 10, "unpaid_installments": 2, "last_installment_fee": "0.50"}}}
        ]})
        .to_string(),
    );
    t
}

#[test]
fn each_reconciliation_gives_every_state_on_hand_built_data() {
    let t = hand_built();
    let out = t.run_ok(DAY, &["--max-reject-ratio", "0"]);

    let f = t.table("recon_order_fulfilment", DAY);
    let got = states(&f, &["order_id", "subscription_device_id"]);
    expect(
        &got,
        &[
            ("O1/D1", "NO_EXPEDITION"),
            ("O1/D2", "DELIVERED"),
            ("O2/D3", "RETURNED"),
            ("O2/D4", "CANCELLED"),
            ("O3/D5", "INCIDENCE"),
            ("O3/D6", "STUCK"),
            ("O4/D7", "IN_PROGRESS"),
            ("O4/D8", "IN_PROGRESS"),
            ("O5/D9", "DELIVERED"),
            ("O5/D10", "STUCK"),
            ("O6/D11", "DELIVERED"),
            ("O6/D12", "INCIDENCE"),
            ("O6/", "NO_EXPEDITION"),
            ("O7/D13", "RETURNED"),
            ("O7/D14", "DELIVERED"),
            ("O7/D15", "IN_PROGRESS"),
            ("O7/D16", "IN_PROGRESS"),
        ],
    );
    assert_eq!(
        cell(&f, "subscription_device_id", "D9", "expedition_id").as_deref(),
        Some("E9-R1")
    );
    assert_eq!(
        cell(&f, "subscription_device_id", "D9", "expedition_count").as_deref(),
        Some("2")
    );
    assert_eq!(
        cell(&f, "subscription_device_id", "D13", "expedition_id").as_deref(),
        Some("E13-B")
    );
    assert_eq!(
        cell(&f, "subscription_device_id", "D16", "days_since_last_status").as_deref(),
        Some("7")
    );
    // 2025-06-20 10:00 Madrid = 08:00 UTC; the day ends 2025-06-30 22:00 UTC: 10 whole days.
    assert_eq!(
        cell(&f, "subscription_device_id", "D6", "days_since_last_status").as_deref(),
        Some("10")
    );
    assert_eq!(
        cell(&f, "subscription_device_id", "D6", "last_status").as_deref(),
        Some("IN_TRANSIT")
    );
    assert!(
        out.contains("TELEPORTED (1)"),
        "unknown statuses are counted in a warning:\n{out}"
    );

    let s = states(&t.table("recon_stock_coverage", DAY), &["product_code"]);
    // A: 1 pending (D1), 5 available. B: 1 pending (the product without a device id), listed by
    // two warehouses with 0 and no quantity. C: nothing pending, no warehouse lists it.
    expect(
        &s,
        &[
            ("A", "COVERED"),
            ("B", "SHORTFALL"),
            ("C", "NO_STOCK_RECORD"),
            ("D", "COVERED"),
        ],
    );
    let stock = t.table("recon_stock_coverage", DAY);
    assert_eq!(cell(&stock, "product_code", "A", "pending_qty").as_deref(), Some("1"));
    assert_eq!(cell(&stock, "product_code", "A", "available_qty").as_deref(), Some("5"));
    assert_eq!(cell(&stock, "product_code", "C", "available_qty"), None);
    assert_eq!(cell(&stock, "product_code", "B", "available_qty").as_deref(), Some("0"));
    assert_eq!(cell(&stock, "product_code", "B", "shortfall").as_deref(), Some("1"));
    assert_eq!(cell(&stock, "product_code", "C", "shortfall").as_deref(), Some("0"));

    let p = t.table("recon_remaining_payments", DAY);
    let got = states(&p, &["order_id_external", "journey_index"]);
    expect(
        &got,
        &[
            ("X1/0", "MATCH"),
            ("X2/0", "MATCH"),
            ("X3/0", "AMOUNT_MISMATCH"),
            ("X4/0", "NO_AMOUNT"),
            ("X4/1", "NO_AMOUNT"),
            ("X5/0", "ORDER_NOT_FOUND"),
            ("X6/0", "CURRENCY_NOT_EUR"),
            ("X7/0", "MATCH"),
        ],
    );
    assert_eq!(
        cell(&p, "order_id_external", "X7", "order_amount").as_deref(),
        Some("32.5000000000")
    );
    assert_eq!(
        cell(&p, "order_id_external", "X3", "difference").as_deref(),
        Some("0.0200000000")
    );
    let fees = |id: &str| cell(&p, "order_id_external", id, "fees_state");
    assert_eq!(fees("X8").as_deref(), Some("MATCH"));
    assert_eq!(fees("X9").as_deref(), Some("AMOUNT_MISMATCH"));
    assert_eq!(
        fees("X10").as_deref(),
        Some("MATCH"),
        "the final plan when there is no installment plan"
    );
    assert_eq!(fees("X1"), None, "fees only for FINALPAYMENT");
    assert_eq!(
        cell(&p, "order_id_external", "X8", "fees_outstanding").as_deref(),
        Some("20.5000000000")
    );

    let r = states(&t.table("recon_installation_readiness", DAY), &["order_id"]);
    expect(
        &r,
        &[
            ("W1", "NO_APPOINTMENT"),
            ("W2", "LATE"),
            ("W3", "READY"),
            ("W4", "AT_RISK"),
            ("W5", "AT_RISK"),
            ("W6", "PENDING"),
            ("W7", "PENDING"),
            ("W8a", "PENDING"),
            ("W8b", "PENDING"),
        ],
    );
    assert_eq!(r.len(), 9, "one row per order with a work order");
    let readiness = t.table("recon_installation_readiness", DAY);
    assert_eq!(
        cell(&readiness, "order_id", "W7", "appointment_id").as_deref(),
        Some("APT-7-new")
    );
    assert_eq!(
        cell(&readiness, "order_id", "W3", "appointment_id").as_deref(),
        Some("APT-3")
    );

    // The summary: one row per reconciliation and state, printed on the terminal.
    let summary = t.table("recon_summary", DAY);
    let sum = states(&summary, &["reconciliation", "state"]);
    assert!(sum.contains_key("order_fulfilment/STUCK") && sum.contains_key("remaining_payments_fees/AMOUNT_MISMATCH"));
    let stuck = strings(&summary, "count")[strings(&summary, "state")
        .iter()
        .zip(strings(&summary, "reconciliation"))
        .position(|(s, r)| s.as_deref() == Some("STUCK") && r.as_deref() == Some("order_fulfilment"))
        .unwrap()]
    .clone();
    assert_eq!(stuck.as_deref(), Some("2"));
    assert!(
        out.lines()
            .any(|l| l.starts_with("order_fulfilment") && l.contains("STUCK") && l.contains(" 2 ")),
        "{out}"
    );
}

/// The generator puts issue 13's cases in at the rates `samples::rates` states, and the lake
/// shows exactly them: discarded lines, devices repeated in breakdown orders, R1 re-expeditions,
/// final payments without fee records.
#[test]
fn the_generator_injects_issue_13_cases_at_their_stated_rates() {
    use opslake::samples::rates;
    let t = TestLake::new();
    let n = 3000;
    t.generate(n, 9);
    t.run_ok(DAY, &[]);
    let truth: Value = serde_json::from_slice(&std::fs::read(t.input().join("_truth/injected.json")).unwrap()).unwrap();
    let len = |k: &str| truth[k].as_array().unwrap().len();
    assert_eq!(len("discarded"), (0..n).filter(|i| rates::discarded(*i)).count());
    // Orders with a product lacking its device id are never repeated.
    let breakdown = len("breakdown_orders");
    assert!(
        breakdown <= (0..n).filter(|i| rates::breakdown(*i)).count() && breakdown >= n / rates::BREAKDOWN - 2,
        "{breakdown}"
    );
    let op = t.table("order_products", DAY);
    let discarded = strings(&op, "status")
        .iter()
        .filter(|s| s.as_deref() == Some("DISCARDED"))
        .count();
    assert_eq!(discarded, len("discarded"));
    let orders = t.table("orders", DAY);
    let processes = strings(&orders, "business_process");
    assert_eq!(
        processes
            .iter()
            .filter(|p| p.as_deref() == Some("BREAKDOWN_DELIVERY"))
            .count(),
        breakdown
    );
    let ext = t.table("external_orders", DAY);
    let r1 = strings(&ext, "reexpedition")
        .iter()
        .filter(|r| r.as_deref() == Some("R1"))
        .count();
    assert_eq!(r1, len("reexpedition_r1"));
    // About one external order in R1: three in four orders have one.
    let expected = (0..n).filter(|i| rates::r1(*i)).count() as f64 * 0.75;
    assert!(
        (r1 as f64 - expected).abs() < expected * 0.3,
        "{r1} R1 records, about {expected} expected"
    );
    let p = t.table("recon_remaining_payments", DAY);
    let no_fees = strings(&p, "fees_state")
        .iter()
        .filter(|f| f.as_deref() == Some("NO_FEES_RECORD"))
        .count();
    assert_eq!(no_fees, len("no_fees_record"));
    assert!(no_fees > 0);
    // A discarded line is never in fulfilment.
    let f = t.table("recon_order_fulfilment", DAY);
    let in_fulfilment: std::collections::BTreeSet<String> =
        strings(&f, "subscription_device_id").into_iter().flatten().collect();
    for d in truth["discarded"].as_array().unwrap() {
        assert!(!in_fulfilment.contains(d[1].as_str().unwrap()), "{d}");
    }
}

/// Issue 13's defects, each on inputs built so that the old rules gave the wrong answer: a
/// re-expedition collapsed into its original, a device of two orders summed twice, a discarded
/// line counted as demand, an unknown fee reported as a mismatch, fees sent as doubles.
#[test]
fn payments_keep_each_reexpedition_count_a_device_once_and_leave_discarded_products_out() {
    let t = hand_built();
    let order = |id: &str, crm: &str, process: &str, products: Vec<Value>| json!({"order": {"order_id": id, "order_id_crm": crm, "business_process": process}, "products": products});
    let line = |device: &str, code: &str, qty: i32, remaining: Value, status: &str| json!({"subscription_device_id": device, "product_code": code, "quantity": qty, "remaining_payment": remaining, "status": status});
    t.file(
        "orders/issue13.json",
        json!({"orders": [
            // R0 and R1 of the same external order carry F1 (30 each time).
            order("Q1", "CRM-Q1", "PEDIDO", vec![line("F1", "D", 1, json!(30), "CREATED")]),
            // F2 is in its original order and in a BREAKDOWN_DELIVERY order: the journey names
            // the breakdown order; F3 names no order: the latest order holding it (Q4).
            order("Q2", "CRM-Q2", "PEDIDO", vec![line("F2", "D", 1, json!(30), "CREATED"), line("F3", "D", 1, json!(11), "CREATED")]),
            order("Q3", "CRM-Q3", "BREAKDOWN_DELIVERY", vec![line("F2", "D", 1, json!(30), "CREATED")]),
            order("Q4", "CRM-Q4", "BREAKDOWN_DELIVERY", vec![line("F3", "D", 1, json!(12), "CREATED")]),
            // A discarded line of 5 units of a code nobody stocks, and a discarded device the
            // courier carries: neither is demand nor an amount owed.
            order("Q5", "CRM-Q5", "PEDIDO", vec![line("F4", "ZZ-DISCARDED", 5, json!(99), "DISCARDED"), line("F5", "D", 1, json!(40), "DISCARDED")]),
            // A FINALPAYMENT whose device has no customer_devices record; one with fees sent
            // as doubles: 16.666667 * 3 + 0.30000000000000004 = 50.300001 (the noise past the
            // tenth place rounded away).
            order("Q6", "CRM-Q6", "PEDIDO", vec![line("F6", "D", 1, json!(10), "CREATED"), line("F7", "D", 1, json!(50.300001), "CREATED")]),
            // A price no money column of 38 digits... does fit: 10^17 is kept, the run goes on.
            order("Q7", "CRM-Q7", "PEDIDO", vec![line("F8", "D", 1, json!(100000000000000000u64), "CREATED")]),
        ]})
        .to_string(),
    );
    t.file(
        "expeditions/issue13.json",
        json!({"expeditions": [expedition("EF1", &["F1", "F2", "F3", "F6", "F7", "F8"], &[("DELIVERED", "2025-06-28T10:00:00Z")])]})
            .to_string(),
    );
    let ext = |id: &str, r: &str, process: &str, journeys: Vec<Value>| {
        json!({"order_id_external": id, "reexpedition": r, "process_type": process, "status": {"id": "1", "timestamp": "2025-06-29T10:00:00Z"}, "journeys": journeys})
            .to_string()
    };
    t.file(
        "external_orders/issue13.ndjson",
        [
            ext(
                "Y1",
                "R0",
                "PEDIDO",
                vec![journey_of(vec![device_of("F1", Some("CRM-Q1"))], json!(30))],
            ),
            ext(
                "Y1",
                "R1",
                "PEDIDO",
                vec![journey_of(vec![device_of("F1", Some("CRM-Q1"))], json!(30))],
            ),
            ext(
                "Y2",
                "R0",
                "PEDIDO",
                vec![journey_of(vec![device_of("F2", Some("CRM-Q3"))], json!(30))],
            ),
            ext(
                "Y3",
                "R0",
                "PEDIDO",
                vec![journey_of(vec![device_of("F3", None)], json!(12))],
            ),
            ext(
                "Y4",
                "R0",
                "PEDIDO",
                vec![journey_of(vec![device_of("F5", Some("CRM-Q5"))], json!(40))],
            ),
            ext(
                "Y5",
                "R0",
                "FINALPAYMENT",
                vec![journey_of(vec![device_of("F6", Some("CRM-Q6"))], json!(10))],
            ),
            ext(
                "Y6",
                "R0",
                "FINALPAYMENT",
                vec![journey_of(vec![device_of("F7", Some("CRM-Q6"))], json!(50.300001))],
            ),
        ]
        .join("\n"),
    );
    t.file(
        "customer_devices/issue13.json",
        r#"{"devices": [{"subscription_terminal_id": "F7", "fees": {"installment_plan": {"monthly_fee": 16.666667, "unpaid_installments": 3, "last_installment_fee": 0.30000000000000004}}}]}"#,
    );
    t.run_ok(DAY, &["--max-reject-ratio", "0"]);

    let p = t.table("recon_remaining_payments", DAY);
    assert_key_unique(
        &p,
        "recon_remaining_payments",
        &["order_id_external", "reexpedition", "journey_index"],
    );
    let got = states(&p, &["order_id_external", "reexpedition", "journey_index"]);
    expect(
        &got,
        &[
            ("Y1/R0/0", "MATCH"),
            ("Y1/R1/0", "MATCH"),
            ("Y2/R0/0", "MATCH"),
            ("Y3/R0/0", "MATCH"),
            ("Y4/R0/0", "ORDER_NOT_FOUND"),
            ("Y5/R0/0", "MATCH"),
            ("Y6/R0/0", "MATCH"),
        ],
    );
    assert_eq!(
        cell(&p, "order_id_external", "Y2", "order_amount").as_deref(),
        Some("30.0000000000"),
        "F2 is in two orders and counts once"
    );
    assert_eq!(
        cell(&p, "order_id_external", "Y3", "order_amount").as_deref(),
        Some("12.0000000000")
    );
    let fees = |id: &str| cell(&p, "order_id_external", id, "fees_state");
    assert_eq!(fees("Y5").as_deref(), Some("NO_FEES_RECORD"));
    assert_eq!(fees("Y6").as_deref(), Some("MATCH"));
    assert_eq!(
        cell(&p, "order_id_external", "Y6", "fees_outstanding").as_deref(),
        Some("50.3000010000")
    );
    let journeys = t.table("external_order_journeys", DAY);
    assert_key_unique(
        &journeys,
        "external_order_journeys",
        &["order_id_external", "reexpedition", "journey_index"],
    );
    assert_eq!(
        strings(&journeys, "order_id_external")
            .iter()
            .filter(|o| o.as_deref() == Some("Y1"))
            .count(),
        2
    );

    // The discarded lines are published, but are not demand.
    let op = t.table("order_products", DAY);
    assert_eq!(
        cell(&op, "subscription_device_id", "F4", "status").as_deref(),
        Some("DISCARDED")
    );
    let f = t.table("recon_order_fulfilment", DAY);
    let devices = strings(&f, "subscription_device_id");
    assert!(
        !devices.iter().any(|d| matches!(d.as_deref(), Some("F4" | "F5"))),
        "{devices:?}"
    );
    let stock = states(&t.table("recon_stock_coverage", DAY), &["product_code"]);
    assert!(!stock.contains_key("ZZ-DISCARDED"), "{stock:?}");
    assert_eq!(
        cell(&op, "subscription_device_id", "F8", "remaining_payment").as_deref(),
        Some("100000000000000000.0000000000")
    );
}

/// products_with_expedition is the logistics system's own view of each product's current
/// expedition and status; fulfilment says whether it agrees with what the histories give.
#[test]
fn fulfilment_says_whether_the_logistics_systems_own_status_agrees() {
    let t = hand_built();
    let listed = |device: &str, expedition: &str, status: &str| {
        json!({"subscription_device_id": device, "product_code": "A",
               "associated_expedition": {"expedition_id": expedition, "current_status": {"id": "1", "value": status, "timestamp": "2025-06-28T10:00:00Z"}}})
    };
    t.file(
        "products_with_expedition/page-1.json",
        json!({"page_size": 10, "current_page": 1, "total_pages": 1, "total_elements": 4, "products": [
            // Agrees: E2's last status is DELIVERED.
            listed("D2", "E2", "DELIVERED"),
            // The histories say E6 is still IN_TRANSIT (stuck); the system says delivered.
            listed("D6", "E6", "DELIVERED"),
            // The histories chose E9-R1 (delivered); the system still points at R0.
            listed("D9", "E9-R0", "RETURNED"),
            // No expedition in the histories holds D1.
            listed("D1", "E1", "SENT"),
        ]})
        .to_string(),
    );
    t.run_ok(DAY, &["--max-reject-ratio", "0"]);
    let p = t.table("products_with_expedition", DAY);
    assert_eq!(p.height(), 4);
    assert_key_unique(&p, "products_with_expedition", &["subscription_device_id"]);
    let f = t.table("recon_order_fulfilment", DAY);
    let agrees = |d: &str| cell(&f, "subscription_device_id", d, "logistics_status_agrees");
    assert_eq!(agrees("D2").as_deref(), Some("true"));
    assert_eq!(agrees("D6").as_deref(), Some("false"));
    assert_eq!(agrees("D9").as_deref(), Some("false"));
    assert_eq!(agrees("D1").as_deref(), Some("false"));
    assert_eq!(agrees("D3"), None, "not listed by the logistics system");
    assert_eq!(
        cell(&f, "subscription_device_id", "D6", "logistics_status").as_deref(),
        Some("DELIVERED")
    );
}

/// recon_exceptions over five run dates with one skipped: a stuck expedition that is delivered
/// on day 3, one that turns into an incidence, a mismatch open all along; ageing carries over
/// the skipped day from the previous committed day alone.
#[test]
fn exceptions_age_across_days_and_resolve() {
    let t = hand_built();
    let expeditions = |s1: &[(&str, &str)], s2: &[(&str, &str)]| {
        json!({"expeditions": [expedition("ES1", &["S1"], s1), expedition("ES2", &["S2"], s2)]}).to_string()
    };
    t.file(
        "orders/ageing.json",
        json!({"orders": [order("S", None, vec![product(Some("S1"), "D", "15.00"), product(Some("S2"), "D", "0")])]})
            .to_string(),
    );
    let stuck = [("IN_TRANSIT", "2025-06-01T10:00:00Z")];
    let delivered = [
        ("IN_TRANSIT", "2025-06-01T10:00:00Z"),
        ("DELIVERED", "2025-06-28T09:00:00Z"),
    ];
    let incidence = [
        ("IN_TRANSIT", "2025-06-01T10:00:00Z"),
        ("DELIVERY_INCIDENCE", "2025-06-27T09:00:00Z"),
    ];
    let row = |day: &str, recon: &str, key: &str| -> BTreeMap<String, Option<String>> {
        let e = t.table("recon_exceptions", day);
        let recons = strings(&e, "reconciliation");
        let keys = strings(&e, "key");
        let i = (0..e.height())
            .find(|i| recons[*i].as_deref() == Some(recon) && keys[*i].as_deref() == Some(key))
            .unwrap_or_else(|| panic!("{day}: no exception {recon} {key}"));
        ["state", "previous_state", "change", "first_seen", "days_open", "amount"]
            .iter()
            .map(|c| (c.to_string(), strings(&e, c)[i].clone()))
            .collect()
    };
    let has = |day: &str, recon: &str, key: &str| {
        let e = t.table("recon_exceptions", day);
        let (r, k) = (strings(&e, "reconciliation"), strings(&e, "key"));
        (0..e.height()).any(|i| r[i].as_deref() == Some(recon) && k[i].as_deref() == Some(key))
    };
    let s = |v: &str| Some(v.to_string());

    t.file("expeditions/ageing.json", expeditions(&stuck, &stuck));
    let out = t.run_ok("2025-06-26", &[]);
    assert!(
        out.contains("exceptions: ") && out.contains(" new") && out.contains("oldest open:"),
        "{out}"
    );
    let s1 = row("2025-06-26", "order_fulfilment", "S|S1");
    assert_eq!(s1["state"], s("STUCK"));
    assert_eq!(s1["change"], s("NEW"));
    assert_eq!(s1["first_seen"], s("2025-06-26"));
    assert_eq!(s1["days_open"], s("0"));
    assert_eq!(s1["amount"], s("15.0000000000"));
    assert_eq!(row("2025-06-26", "remaining_payments", "X3|R0|0")["change"], s("NEW"));
    assert_eq!(
        row("2025-06-26", "remaining_payments", "X3|R0|0")["amount"],
        s("0.0200000000")
    );

    t.file("expeditions/ageing.json", expeditions(&stuck, &incidence));
    t.run_ok("2025-06-27", &[]);
    let s1 = row("2025-06-27", "order_fulfilment", "S|S1");
    assert_eq!((s1["change"].clone(), s1["days_open"].clone()), (s("OPEN"), s("1")));
    let s2 = row("2025-06-27", "order_fulfilment", "S|S2");
    assert_eq!(s2["change"], s("CHANGED"));
    assert_eq!(s2["state"], s("INCIDENCE"));
    assert_eq!(s2["previous_state"], s("STUCK"));
    assert_eq!(s2["first_seen"], s("2025-06-26"));

    t.file("expeditions/ageing.json", expeditions(&delivered, &incidence));
    t.run_ok("2025-06-28", &[]);
    let s1 = row("2025-06-28", "order_fulfilment", "S|S1");
    assert_eq!(s1["change"], s("RESOLVED"));
    assert_eq!(s1["state"], s("DELIVERED"));
    assert_eq!(s1["previous_state"], s("STUCK"));
    assert_eq!(s1["first_seen"], s("2025-06-26"));

    // 2025-06-29 is skipped: the 30th ages from the 28th.
    t.run_ok(DAY, &[]);
    assert!(
        !has(DAY, "order_fulfilment", "S|S1"),
        "a resolved key is not carried again"
    );
    let x3 = row(DAY, "remaining_payments", "X3|R0|0");
    assert_eq!(x3["change"], s("OPEN"));
    assert_eq!(x3["state"], s("AMOUNT_MISMATCH"));
    assert_eq!(x3["first_seen"], s("2025-06-26"));
    assert_eq!(x3["days_open"], s("4"), "open on five run dates, 26th to 30th");
    let s2 = row(DAY, "order_fulfilment", "S|S2");
    assert_eq!((s2["change"].clone(), s2["days_open"].clone()), (s("OPEN"), s("4")));
    // Only exception keys and the ones just resolved: a delivered device is not listed.
    assert!(!has(DAY, "order_fulfilment", "O1|D2"));
    let e = t.table("recon_exceptions", DAY);
    assert_key_unique(&e, "recon_exceptions", &["reconciliation", "key"]);
}

/// The order's invoice terms against the device's plan, per device, naming what differs.
#[test]
fn device_terms_name_the_invoice_field_that_differs_from_the_plan() {
    let t = hand_built();
    let order = |id: &str, device: &str, invoice: Option<Value>| {
        let mut o = json!({"order": {"order_id": id}, "products": [{"subscription_device_id": device, "product_code": "D", "quantity": 1}]});
        if let Some(i) = invoice {
            o["invoice"] = json!({"data_invoice": i});
        }
        o
    };
    let terms = |amount: Value, duration: i32, residual: Value, initial: Value| {
        json!({"base": 100, "tax_value": 21, "total_invoice": 121, "payment_type": 0,
               "residual_value": residual, "initial_payment": initial, "fee": {"amount": amount, "duration": duration}})
    };
    t.file(
        "orders/terms.json",
        json!({"orders": [
            order("T1", "TD1", Some(terms(json!(12), 24, json!(0), json!(0)))),
            // 16.666667 on the device: more than a cent away.
            order("T2", "TD2", Some(terms(json!(12), 24, json!(0), json!(0)))),
            // Only a final plan, of 12 months; and an upfront fee of 10 against 0.
            order("T3", "TD3", Some(terms(json!(12), 24, json!(0), json!(0)))),
            // No invoice: nothing to compare.
            order("T4", "TD4", None),
        ]})
        .to_string(),
    );
    t.file(
        "customer_devices/terms.json",
        r#"{"devices": [
            {"subscription_terminal_id": "TD1", "fees": {"upfront_fee": 0, "installment_plan": {"monthly_fee": 12.004, "duration": 24, "unpaid_installments": 20, "last_installment_fee": 0}}},
            {"subscription_terminal_id": "TD2", "fees": {"upfront_fee": 0, "installment_plan": {"monthly_fee": 16.666667, "duration": 24, "unpaid_installments": 20, "last_installment_fee": 0}}},
            {"subscription_terminal_id": "TD3", "fees": {"upfront_fee": 10, "final_installment_plan": {"monthly_fee": 12, "duration": 12, "unpaid_installments": 2, "last_installment_fee": 0}}},
            {"subscription_terminal_id": "TD4", "fees": {"upfront_fee": 0, "installment_plan": {"monthly_fee": 12, "duration": 24}}}
        ]}"#,
    );
    t.run_ok(DAY, &["--max-reject-ratio", "0"]);
    let d = t.table("recon_device_terms", DAY);
    assert_key_unique(&d, "recon_device_terms", &["order_id", "subscription_device_id"]);
    let got = states(&d, &["order_id", "subscription_device_id"]);
    expect(
        &got,
        &[
            ("T1/TD1", "MATCH"),
            ("T2/TD2", "TERMS_MISMATCH"),
            ("T3/TD3", "TERMS_MISMATCH"),
            ("T4/TD4", "NO_TERMS"),
            // hand_built's devices M1..M3 are in orders without an invoice.
            ("P1/M1", "NO_TERMS"),
        ],
    );
    let field = |o: &str| cell(&d, "order_id", o, "differing_fields");
    assert_eq!(field("T1"), None);
    assert_eq!(field("T2").as_deref(), Some("invoice_fee_amount"));
    assert_eq!(
        field("T3").as_deref(),
        Some("invoice_fee_duration invoice_initial_payment")
    );
    assert_eq!(
        cell(&d, "order_id", "T3", "plan").as_deref(),
        Some("final_installment_plan")
    );
    let sum = states(&t.table("recon_summary", DAY), &["reconciliation", "state"]);
    assert!(sum.contains_key("device_terms/TERMS_MISMATCH"), "{sum:?}");
}

/// The rule must not depend on how polars' streaming engine cuts the rows: thousands of
/// devices with three expeditions each (ties inside histories and between expeditions, listed
/// in varying order), run with morsels of 64 rows.
#[test]
fn the_expedition_choice_holds_across_streaming_morsels() {
    const DEVICES: usize = 3000;
    let t = TestLake::new();
    let orders: Vec<Value> = (0..DEVICES)
        .map(|i| order(&format!("O{i}"), None, vec![product(Some(&format!("D{i}")), "A", "0")]))
        .collect();
    t.file("orders/orders.json", json!({ "orders": orders }).to_string());
    let (at, tie) = ("2025-06-20 10:00:00", "2025-06-28 10:00:00");
    let mut expeditions = Vec::new();
    for i in 0..DEVICES {
        let d = format!("D{i}");
        // b and c tie on their last status (c, the greater id, wins); inside each, the two
        // statuses tie and the later in the list counts. Even devices end INCIDENCE.
        let (b_last, c_last) = if i % 2 == 0 {
            ("DELIVERED", "ABSENT_INCIDENCE")
        } else {
            ("ABSENT_INCIDENCE", "DELIVERED")
        };
        let mut three = vec![
            expedition(&format!("R{i}-a"), &[&d], &[("DELIVERED", at)]),
            expedition(&format!("R{i}-b"), &[&d], &[("IN_TRANSIT", tie), (b_last, tie)]),
            expedition(&format!("R{i}-c"), &[&d], &[("IN_TRANSIT", tie), (c_last, tie)]),
        ];
        three.rotate_left(i % 3);
        expeditions.extend(three);
    }
    t.file(
        "expeditions/page.json",
        json!({ "expeditions": expeditions }).to_string(),
    );
    let mut run = t.cmd();
    run.env("POLARS_IDEAL_MORSEL_SIZE", "64")
        .args(["run", "--as-of", DAY, "--input"])
        .arg(t.input())
        .arg("--output")
        .arg(t.lake());
    let out = run.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let f = t.table("recon_order_fulfilment", DAY);
    let got = states(&f, &["order_id", "subscription_device_id"]);
    assert_eq!(got.len(), DEVICES);
    let orders = strings(&f, "order_id");
    let chosen = strings(&f, "expedition_id");
    let counts = strings(&f, "expedition_count");
    for (row, order) in orders.iter().enumerate() {
        let i: usize = order
            .as_deref()
            .and_then(|o| o.strip_prefix('O'))
            .and_then(|n| n.parse().ok())
            .unwrap();
        let want = if i % 2 == 0 { "INCIDENCE" } else { "DELIVERED" };
        assert_eq!(got[&format!("O{i}/D{i}")], want, "state of O{i}");
        assert_eq!(
            chosen[row].as_deref(),
            Some(format!("R{i}-c").as_str()),
            "expedition of O{i}"
        );
        assert_eq!(counts[row].as_deref(), Some("3"), "expedition_count of O{i}");
    }
}

#[test]
fn stuck_after_days_moves_the_boundary() {
    let t = hand_built();
    t.run_ok(DAY, &["--stuck-after-days", "5"]);
    let got = states(
        &t.table("recon_order_fulfilment", DAY),
        &["order_id", "subscription_device_id"],
    );
    expect(&got, &[("O7/D16", "STUCK"), ("O4/D7", "IN_PROGRESS")]);
}

#[test]
fn reconcile_alone_republishes_only_its_tables_atomically() {
    let t = hand_built();
    t.run_ok(DAY, &[]);
    let orders = t.table("orders", DAY).height();
    let mut c = t.cmd();
    c.args(["reconcile", "--run-date", DAY, "--stuck-after-days", "5", "--output"])
        .arg(t.lake())
        .args(["--log", "opslake=debug", "--log-format", "json"]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done: BTreeMap<String, u64> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["fields"]["message"] == "reconciliation done")
        .map(|e| {
            let f = &e["fields"];
            assert!(f["seconds"].as_f64().is_some_and(|s| s >= 0.0), "{e}");
            (
                f["reconciliation"].as_str().unwrap().to_string(),
                f["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("commit #2"), "{text}");
    let got = states(
        &t.table("recon_order_fulfilment", DAY),
        &["order_id", "subscription_device_id"],
    );
    expect(&got, &[("O7/D16", "STUCK")]);
    assert_eq!(t.table("orders", DAY).height(), orders, "normalized tables untouched");
    let m = t.manifests(DAY);
    assert_eq!(m.len(), 2);
    assert_eq!(m[1]["kind"], "reconcile");
    let tables = m[1]["tables"].as_object().unwrap();
    assert!(
        !tables.is_empty() && tables.keys().all(|t| t.starts_with("recon_")),
        "a reconcile record names only the recon tables it replaced: {tables:?}"
    );
    assert_eq!(m[1]["stages"][0]["name"], "reconcile");
    // At debug level each reconciliation logs its rows, the rows its table was committed with.
    let committed: BTreeMap<String, u64> = tables
        .iter()
        .map(|(name, t)| (name.clone(), t["rows"].as_u64().unwrap()))
        .collect();
    assert_eq!(done, committed);
    // A day never published cannot be reconciled: the day named is wrong (exit 2, issue 15).
    let mut c = t.cmd();
    c.args(["reconcile", "--run-date", "2025-01-01", "--output"])
        .arg(t.lake());
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing committed for 2025-01-01"));
}

#[test]
fn a_generated_universe_reconciles_to_exactly_its_injected_cases() {
    let t = TestLake::new();
    t.generate(3000, 9);
    t.run_ok(DAY, &[]);
    let truth: Value = serde_json::from_slice(&std::fs::read(t.input().join("_truth/injected.json")).unwrap()).unwrap();
    let want = |k: &str| -> BTreeMap<String, String> {
        truth[k]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect()
    };
    let diff = |got: &BTreeMap<String, String>, want: &BTreeMap<String, String>, what: &str| {
        let bad: Vec<_> = want.iter().filter(|(k, v)| got.get(*k) != Some(*v)).take(10).collect();
        assert!(
            bad.is_empty(),
            "{what}: {} of {} differ, e.g. {bad:?}",
            bad.len(),
            want.len()
        );
        assert_eq!(got.len(), want.len(), "{what}: rows");
    };
    diff(
        &states(
            &t.table("recon_order_fulfilment", DAY),
            &["order_id", "subscription_device_id"],
        ),
        &want("fulfilment"),
        "fulfilment",
    );
    diff(
        &states(
            &t.table("recon_remaining_payments", DAY),
            &["order_id_external", "reexpedition", "journey_index"],
        ),
        &want("payments"),
        "payments",
    );
    diff(
        &states(&t.table("recon_installation_readiness", DAY), &["order_id"]),
        &want("readiness"),
        "readiness",
    );
    let payments = t.table("recon_remaining_payments", DAY);
    let fees: BTreeMap<String, String> = strings(&payments, "order_id_external")
        .into_iter()
        .zip(strings(&payments, "reexpedition"))
        .zip(strings(&payments, "journey_index"))
        .zip(strings(&payments, "fees_state"))
        .filter_map(|(((o, r), j), f)| {
            f.map(|f| {
                let key = [o, r, j].map(Option::unwrap_or_default).join("/");
                (key, f)
            })
        })
        .collect();
    diff(&fees, &want("fees"), "fees");
    // The generator's logistics system lists each shipped product at the expedition and
    // status the histories give.
    let agrees = strings(&t.table("recon_order_fulfilment", DAY), "logistics_status_agrees");
    let listed: Vec<_> = agrees.iter().flatten().collect();
    assert!(
        listed.len() > 1000 && listed.iter().all(|a| *a == "true"),
        "{} listed",
        listed.len()
    );
    let stock = states(&t.table("recon_stock_coverage", DAY), &["product_code"]);
    let codes = |state: &str| {
        stock
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    let sorted = |k: &str| {
        let mut v: Vec<String> = truth[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(codes("SHORTFALL"), sorted("stock_shortfall"));
    assert_eq!(codes("NO_STOCK_RECORD"), sorted("no_stock_record"));
    // The injected lists themselves are non-trivial.
    for k in [
        "no_expedition",
        "stuck",
        "reexpedited",
        "amount_mismatch",
        "late_install",
        "stock_shortfall",
    ] {
        assert!(!truth[k].as_array().unwrap().is_empty(), "{k} injected");
    }
}

#[test]
fn the_samples_summary_has_several_states_per_reconciliation() {
    let t = TestLake::new();
    let mut c = t.cmd();
    c.env_remove("OPSLAKE_PII_KEY")
        .current_dir(repo())
        .args(["run", "--output"])
        .arg(t.lake());
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = t.table("recon_summary", DAY);
    let recons = strings(&summary, "reconciliation");
    for r in [
        "order_fulfilment",
        "stock_coverage",
        "remaining_payments",
        "installation_readiness",
    ] {
        let n = recons.iter().filter(|x| x.as_deref() == Some(r)).count();
        assert!(n >= 3, "{r} has {n} states");
    }
}

#[test]
fn a_day_without_orders_has_an_empty_readiness_table_that_later_days_extend() {
    let t = hand_built();
    let orders = t.input().join("orders/orders.json");
    let kept = std::fs::read(&orders).unwrap();
    // The day before: appointments, but no orders to reconcile them with.
    std::fs::remove_file(&orders).unwrap();
    t.run_ok("2025-06-29", &[]);
    let before = t.table("recon_installation_readiness", "2025-06-29");
    assert_eq!(before.height(), 0);
    assert!(t.table("appointments", "2025-06-29").height() > 0);
    // The day with orders commits into the same Delta table: the empty day's columns have
    // the types of a full day's, or the commit would fail on the schema.
    std::fs::write(&orders, kept).unwrap();
    t.run_ok(DAY, &[]);
    let readiness = t.table("recon_installation_readiness", DAY);
    assert_eq!(before.schema(), readiness.schema());
    let r = states(&readiness, &["order_id"]);
    assert_eq!(r.get("W3").map(String::as_str), Some("READY"));
    assert_eq!(r.get("W2").map(String::as_str), Some("LATE"));
    assert_eq!(r.len(), 9);
}
