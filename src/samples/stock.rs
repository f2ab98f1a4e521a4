//! Stock per warehouse, sized from the demand the orders left without an expedition.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::catalogue::CATALOGUE;
use super::{Truth, Universe};

/// The stock exports: the CSV text of two warehouses, and the JSON (`{"data": [...]}`) of the
/// third.
pub(super) struct Stock {
    /// `stock.csv`.
    pub csv: String,
    /// `warehouse-52.json`.
    pub warehouse: Value,
}

/// Stock per warehouse: codes ordered by index; every fifth code with pending demand is short,
/// every seventh is listed by no warehouse, the others are covered.
pub(super) fn stock(
    u: &Universe,
    pending: &BTreeMap<String, i64>,
    ordered: &BTreeSet<String>,
    truth: &mut Truth,
) -> Stock {
    let mut csv = String::from("warehouse_id,product_id,available_quantity\n");
    let mut extra = Vec::new();
    let warehouses = ["50", "51", "52"];
    let mut rng = ChaCha8Rng::seed_from_u64(u.seed ^ 0x5707);
    for (i, (code, _, _)) in CATALOGUE.iter().enumerate() {
        let need = pending.get(*code).copied().unwrap_or(0);
        if i % 7 == 3 {
            if ordered.contains(*code) {
                truth.no_stock_record.push(code.to_string());
            }
            continue;
        }
        let short = i % 5 == 1 && need > 0;
        let total = if short {
            need / 2
        } else {
            need + rng.random_range(5..500)
        };
        if short {
            truth.stock_shortfall.push(code.to_string());
        }
        // Split over the warehouses; the last one goes to the JSON export.
        let a = total / 3;
        let b = total / 3;
        let c = total - a - b;
        // Writing to a String cannot fail.
        let _ = writeln!(csv, "{},{code},{a}", warehouses[0]);
        // Numbers arrive quoted in some exports.
        let _ = writeln!(csv, "\"{}\",{code},\"{b}\"", warehouses[1]);
        extra.push(json!({"warehouse_id": warehouses[2], "product_id": code, "available_quantity": c}));
    }
    // Codes nobody ordered still have stock.
    extra.push(json!({"warehouse_id": "50", "product_id": "LEGACY-ADSL", "available_quantity": 12}));
    Stock {
        csv,
        warehouse: json!({ "data": extra }),
    }
}
