//! Customer care (seed 003): memos, typifications, and the devices of a customer with their
//! fees and permanence.

use std::io;

use chrono::Duration;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::catalogue::Product;
use super::people::Person;
use super::values::{cents, pick, snapshot};
use super::writers::TenantWriters;

/// The customer's memos (every customer has one: the API finds customers through their memos),
/// typifications now and then, and the devices of the order with their fees.
#[allow(clippy::too_many_arguments)]
pub(super) fn customer_care(
    rng: &mut ChaCha8Rng,
    i: usize,
    customer: u64,
    tenant: &str,
    who: &Person,
    products: &[Product],
    fee_off: i64,
    w: &mut TenantWriters,
) -> io::Result<()> {
    let day = snapshot() - Duration::days(rng.random_range(0..90));
    // Every customer has a memo (the API finds customers through their memos).
    for k in 0..rng.random_range(1..3) {
        w.memo(json!({
            "id": format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", i, k, i % 4096, k, customer),
            "host_table": "ModSub", "key_value": "CoRuleID", "memo_seq": k + 1,
            "customer_num": if k % 2 == 0 { json!(customer) } else { json!(customer.to_string()) },
            "customer_external_id": customer + 5_000_000,
            "subscription_id": 2_200_000 + i,
            "memo_title": *pick(rng, &["FixedLine Barring", "Cambio de tarifa", "Portabilidad"]),
            "memo_text": "Cliente solicita información sobre su pedido.",
            "memo_type": "Service", "source": 7,
            "create_stamp": (day - Duration::days(3)).format("%Y-%m-%d").to_string(),
            "create_user": "123654",
            "change_stamp": (day + Duration::days(k)).format("%Y-%m-%d").to_string(),
            "change_user": 214748364
        }))?;
    }
    let typifications: Vec<Value> = (0..rng.random_range(0..3))
        .map(|k| {
            json!({
                "id": format!("TY-{i:08}-{k}"),
                "created_at": format!("{}T{:02}:15:00Z", day.format("%Y-%m-%d"), 8 + k),
                "channel": "agents", "tenant": tenant, "area": "RETENCION",
                "user_id": format!("agent{}@example.com", i % 50),
                "msisdn": who.phone, "campaign": "ORDERS", "reason": "Estado pedido", "subreason1": "Envío",
                "result": "Informado", "initial_fee": 0.1
            })
        })
        .collect();
    if !typifications.is_empty() {
        // The first customers' in a file named after the customer, as the API returns them.
        w.typifications(customer, typifications, i < 2)?;
    }
    let devices: Vec<Value> = products
        .iter()
        .filter_map(|p| p.device.as_ref().map(|d| (p, d)))
        .map(|(p, d)| {
            let unpaid = rng.random_range(0..24);
            // The installment plan covers what is left to pay, to the cent, most of the time.
            let monthly = if unpaid > 0 { p.remaining / (unpaid + 1) } else { 0 };
            let last = p.remaining - monthly * unpaid + fee_off;
            let plan = json!({"last_installment_fee": cents(last), "monthly_fee": cents(monthly), "duration": 24, "unpaid_installments": unpaid, "financed_by": "MASMOVIL"});
            let mut fees = json!({"upfront_fee": 0});
            if rng.random_bool(0.9) {
                fees["installment_plan"] = plan;
            } else {
                fees["final_installment_plan"] = plan;
            }
            json!({
                "start_date": format!("{}T00:00:00Z", (day - Duration::days(400)).format("%Y-%m-%d")),
                "subscription_id": 2_200_000 + i,
                "subscription_terminal_id": d.parse::<u64>().unwrap_or_default(),
                "status": {"id": 1, "value": "ACTIVO"},
                "fees": fees,
                "permanence": {"campaign_id": 214, "description": "Permanencia 24M", "duration_months": 24, "start_date": "2024-01-31T00:00:00Z", "end_date": "2026-01-31T00:00:00Z", "category_type": 1},
                "is_mandatory": true,
                "expedition_info": {"item_number": 214748364, "request_date": "2025-05-31T00:00:00Z", "status": {"id": 3, "value": "ENVIADO"}}
            })
        })
        .collect();
    if !devices.is_empty() {
        // The first customers' in a file named after the customer, as the API returns them.
        w.devices(customer, devices, i < 2)?;
    }
    Ok(())
}
