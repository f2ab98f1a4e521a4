//! The logistics operator's records (`external_orders/`): journeys, devices and the remaining
//! payment collected on delivery.

use std::io;

use chrono::{Duration, NaiveDateTime};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::Truth;
use super::catalogue::Product;
use super::people::Person;
use super::values::{cents, iso, iso_ms, money_text, pick};
use super::writers::TenantWriters;

/// The logistics operator's record of an order's delivery: its journeys, the remaining payment
/// the courier collects, and the payment and fees states they must reconcile to.
#[allow(clippy::too_many_arguments)]
pub(super) fn external_order(
    rng: &mut ChaCha8Rng,
    i: usize,
    order_id: &str,
    products: &[Product],
    who: &Person,
    end: NaiveDateTime,
    (finalpayment, fee_mismatch): (bool, bool),
    w: &mut TenantWriters,
    truth: &mut Truth,
) -> io::Result<()> {
    let id = format!("OL-{i:08}");
    let shipped: Vec<&Product> = products.iter().filter(|p| p.device.is_some()).collect();
    // Usually one journey; sometimes the devices travel in two.
    let split = shipped.len() > 1 && rng.random_bool(0.15);
    let groups: Vec<Vec<&Product>> = if split {
        vec![shipped[..1].to_vec(), shipped[1..].to_vec()]
    } else {
        vec![shipped.clone()]
    };
    let mut journeys = Vec::new();
    for (j, group) in groups.iter().enumerate() {
        let expected: i64 = group.iter().map(|p| p.remaining).sum();
        let roll = rng.random_range(0..100);
        let (courier, state): (Option<Value>, &str) = match roll {
            0..=4 => (None, "NO_AMOUNT"),
            5..=9 => {
                let off = rng.random_range(100..5000) * if rng.random_bool(0.5) { 1 } else { -1 };
                (Some(cents((expected + off).abs())), "AMOUNT_MISMATCH")
            }
            // Within the 0.01 EUR tolerance.
            10..=12 => (Some(json!(format!("{}4", money_text(expected)))), "MATCH"),
            _ => (Some(cents(expected)), "MATCH"),
        };
        let state = if state == "AMOUNT_MISMATCH"
            && courier
                .as_ref()
                .and_then(Value::as_f64)
                .is_some_and(|c| ((c * 100.0).round() as i64 - expected).abs() <= 1)
        {
            "MATCH"
        } else {
            state
        };
        let unknown_devices = rng.random_bool(0.02);
        let state = if unknown_devices && courier.is_some() {
            "ORDER_NOT_FOUND"
        } else {
            state
        };
        // Now and then the courier collects in another currency.
        let usd = courier.is_some() && !unknown_devices && rng.random_bool(0.01);
        let state = if usd { "CURRENCY_NOT_EUR" } else { state };
        if finalpayment && !unknown_devices {
            let fees = if fee_mismatch { "AMOUNT_MISMATCH" } else { "MATCH" };
            truth.fees.insert(format!("{id}/{j}"), fees.into());
        }
        if state == "AMOUNT_MISMATCH" {
            truth.amount_mismatch.push((id.clone(), j as i32));
        }
        truth.payments.insert(format!("{id}/{j}"), state.into());
        let devices: Vec<Value> = group
            .iter()
            .map(|p| {
                let device = if unknown_devices { format!("9{}", p.device.clone().unwrap_or_default()) } else { p.device.clone().unwrap_or_default() };
                json!({
                    "reference": format!("REF{device}"),
                    "subscription": {"subscription_id": format!("{}", 2_200_000 + i), "order_id": order_id, "msisdn": who.phone},
                    "type": {"action_id": "1", "family_id": "17", "id": "ROUTER"},
                    "replacement": "N", "identifier": format!("SN{device}"), "active": true,
                    "subscription_device_id": device,
                    "price": {"markup": {"total": cents(p.remaining), "currency": "EUR"}, "no_markup": {"total": cents(p.remaining), "currency": "EUR"}}
                })
            })
            .collect();
        let mut details = json!({"package": {"weight": 2.5, "dimensions": 0}, "coverage": true, "secure_delivery": false,
                                  "recipient_verification": {"exclusive_delivery": false, "verification": {"required": true, "completed": false}}});
        match courier {
            Some(c) => details["remaining_payment"] = json!({"total": c, "currency": if usd { "USD" } else { "EUR" }}),
            None if rng.random_bool(0.5) => details["remaining_payment"] = json!({"total": null, "currency": "EUR"}),
            None => {}
        }
        journeys.push(json!({
            "devices": devices,
            "transport": {"delivery_details": details, "courier": "GLS", "service": "24h", "tracking_link": format!("https://www.trackinglink.com/{id}/{j}"),
                          "expedition_number": format!("{}", 28_272_272_722u64 + i as u64), "delivery_note": {"delivery_note_id": format!("{}", 111_222_333_444u64 + i as u64), "link": "https://www.gls.com/deliverynote"}}
        }));
    }
    let status_at = end - Duration::hours(rng.random_range(1..500));
    let v = json!({
        "order_id_external": id,
        "reexpedition": "R0",
        "order_date": iso_ms(status_at - Duration::days(3)),
        "logistics_operator": *pick(rng, &["INTERBOX", "ANOVO"]),
        "delivery_type": "HOME",
        "process_type": if finalpayment { "FINALPAYMENT" } else { "PEDIDO" },
        "logistic_operation": "DELIVERY",
        "portability": false,
        "status": {"id": "3", "description": "Delivered", "timestamp": iso(status_at)},
        "journeys": journeys,
        "customer_delivering_info": {
            "address": {"building_street_type": "Calle", "building_street_name": who.street, "building_number": who.number.to_string(), "city": who.city.0, "zipcode": who.city.1, "region": who.city.2, "country": "ES"},
            "client": {"identity": {"document_id": who.document, "document_type": "NIF"}, "contact_phone": {"phone_number": who.phone, "prefix": "+34"}, "name": who.first, "surnames": [who.surnames], "email": who.email},
            "language": "ES", "updated": false
        }
    });
    w.external_order(v)
}
