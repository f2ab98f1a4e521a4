//! Pickups (seed 004 `Pickup`): devices collected from a customer who unsubscribed.

use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::catalogue::Product;
use super::people::{Person, address, client};

/// The pickup of order `i`'s devices.
pub(super) fn pickup(rng: &mut ChaCha8Rng, i: usize, who: &Person, products: &[Product]) -> Value {
    json!({
        "order": {"subscription_id": format!("{}", 2_200_000 + i), "pickup_id": format!("P{:07}", i), "order_id_crm": format!("{}", 109_000_000 + i),
                  "language": "ES", "business_process": "UNSUBSCRIPTION", "reason": "Unsubscription", "delivery_type": "AGENCY", "access_reused": false},
        "client": client(who, rng),
        "shipping": {"address": address(who, rng), "contact_data": {"identity": {"document_id": who.document, "document_type": "NIF"}, "contact_phone": {"phone_number": who.phone}},
                     "transport_data": {"courier_id": "DEFAULT", "delivery_service": "DEFAULT", "exclusive": false, "verify_identity": false, "retrieve_contract": false}},
        "products": products.iter().filter_map(|p| p.device.as_ref().map(|d| json!({"product_code": p.code, "product_type": "ROUTER", "identifier": format!("SN{d}"), "subscription_device_id": d, "technology": "FTTH", "status": "CREATED"}))).collect::<Vec<_>>()
    })
}
