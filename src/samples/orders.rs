//! Orders (seed 004 `Order`), and the order as the unit of the universe: everything else (its
//! expeditions, appointment, customer care, the operator's record, a pickup) hangs off one.

use std::io;

use chrono::Duration;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::appointments::appointment;
use super::catalogue::{CATALOGUE, Product, TENANTS};
use super::customer_care::customer_care;
use super::expeditions::ship;
use super::external_orders::external_order;
use super::people::{Person, address, client, person};
use super::pickups::pickup;
use super::values::{cents, money_text, pick, snapshot_end_utc};
use super::writers::PartWriters;
use super::{PartResult, Universe};

/// Writes order `i` and everything that hangs off it. The order draws its own random stream
/// from `(seed, i)`, in a fixed sequence, so a universe does not depend on how it is split
/// into parts.
pub(super) fn write_order(u: &Universe, i: usize, files: &mut PartWriters, result: &mut PartResult) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        u.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93),
    );
    let end = snapshot_end_utc();
    let (tenant, tenant_id, wo_prefix) = *pick(&mut rng, TENANTS);
    let w = files.tenant(tenant)?;
    let order_id = format!("{:08}-{:05x}", i, rng.random_range(0..0xFFFFFu32));
    let customer = 10_000_000 + i as u64;
    let who = person(&mut rng, i);
    let ordered_at = end - Duration::days(rng.random_range(3..60)) - Duration::minutes(rng.random_range(0..1440));
    // Orders with a product lacking its device id are kept out of installs, so that the
    // readiness each install expects follows from its one expedition.
    let install = rng.random_bool(0.7) && i % 499 != 7;
    let work_order = install.then(|| format!("{wo_prefix}{:07}", 2_000_000 + i));

    // Products.
    let n = 1 + rng.random_range(0..3usize);
    let mut products = Vec::with_capacity(n);
    for k in 0..n {
        let (code, _, _) = *pick(&mut rng, CATALOGUE);
        let remaining = match rng.random_range(0..4) {
            0 => 0,
            1 => 2050,
            2 => rng.random_range(100..20_000),
            _ => rng.random_range(1..9) * 1000 + 99,
        };
        // A product without a device id now and then (a data-quality case).
        let device = (!(i % 499 == 7 && k == 0)).then(|| format!("{}", 40_000_000 + i * 4 + k));
        result.ordered.insert(code.to_string());
        products.push(Product {
            device,
            code,
            remaining,
            quantity: if rng.random_bool(0.05) { 2 } else { 1 },
        });
    }

    let shipment = ship(&mut rng, &order_id, &products, ordered_at, end, w, result)?;

    // One order exported alone, as the GET of one order returns it.
    let value = order(&mut rng, i, &order_id, &who, install, work_order.as_deref(), &products);
    w.order(value, i == 0)?;

    // Appointment for installs, and the readiness it implies.
    if let Some(wo) = &work_order {
        appointment(
            &mut rng,
            i,
            wo,
            tenant_id,
            &who,
            &order_id,
            shipment.delivered_at,
            end,
            u.superseded,
            w,
            &mut result.truth,
        )?;
    }

    // Customer care: memos, typifications, devices.
    // Final payments: the fees on file usually cover what is left to pay; sometimes not.
    let finalpayment = rng.random_bool(0.1);
    let fee_off = if finalpayment && rng.random_bool(0.25) { 100 } else { 0 };
    customer_care(&mut rng, i, customer, tenant, &who, &products, fee_off, w)?;

    // The logistics operator's record of the delivery and its remaining payment.
    if !shipment.none && rng.random_bool(0.75) {
        external_order(
            &mut rng,
            i,
            &order_id,
            &products,
            &who,
            end,
            (finalpayment, fee_off != 0),
            w,
            &mut result.truth,
        )?;
    }
    if rng.random_bool(0.05) {
        w.pickup(pickup(&mut rng, i, &who, &products));
    }
    Ok(())
}

/// The seed 004 `Order` of order `i`.
fn order(
    rng: &mut ChaCha8Rng,
    i: usize,
    order_id: &str,
    who: &Person,
    install: bool,
    work_order: Option<&str>,
    products: &[Product],
) -> Value {
    let product_values: Vec<Value> = products
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let (code, description, kind) = CATALOGUE
                .iter()
                .find(|c| c.0 == p.code)
                .copied()
                .unwrap_or(CATALOGUE[0]);
            let mut v = json!({
                "product_id": p.device.clone().unwrap_or_else(|| format!("P{i}{k}")),
                "product_code": code,
                "product_description": description,
                "product_type": kind,
                "product_type_id": 16,
                "product_unit_price": cents(p.remaining + 1650),
                "quantity": p.quantity,
                "msisdn": who.phone,
                "financed": p.remaining > 0,
                "invoiced": true,
                "status": "CREATED"
            });
            if let Some(d) = &p.device {
                v["subscription_device_id"] = json!(d);
            }
            // Amounts sometimes arrive as strings, with their cents.
            v["remaining_payment"] = if k % 2 == 1 {
                json!(money_text(p.remaining))
            } else {
                cents(p.remaining)
            };
            v
        })
        .collect();
    let mut head = json!({
        "subscription_id": format!("{}", 2_200_000 + i),
        "order_id": order_id,
        "order_id_crm": format!("{}", 109_000_000 + i),
        "business_process": "PEDIDO",
        "convergent": install,
        "language": "ES",
        "delivery_type": *pick(rng, &["AGENCY", "HOME", "SHOP"])
    });
    if let Some(wo) = work_order {
        head["work_order"] = json!(wo);
    }
    json!({
        "order": head,
        "data_sales": {"agent": format!("AG{:04}", i % 700), "channel": "TELE_SALE_CARE", "type": "NEW_SALE", "group": "POS"},
        "client": client(who, rng),
        "invoice": {"address": address(who, rng), "data_invoice": {"base": 100, "tax_value": 21, "total_invoice": 121, "payment_type": 0, "fee": {"amount": 12, "duration": 24}}},
        "shipping": {
            "address": address(who, rng),
            "contact_data": {"identity": {"document_id": who.document, "document_type": "NIF"}, "contact_phone": {"phone_number": who.phone, "prefix": "+34"}, "name": who.first},
            "data_delivery": {"courier_id": "CORREOS", "delivery_service": "DELIVERY_24", "exclusive": false, "verify_identity": true, "retrieve_contract": false}
        },
        "products": product_values,
        "documentation": {"letter_type": "WP", "documents": [{"document_id": format!("doc-{i}"), "document_type": "CONTRACT", "copies": 1, "signable": true, "signed": false}]}
    })
}
