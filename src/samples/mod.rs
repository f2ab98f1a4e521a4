//! The sample generator: a consistent universe of exports in the layout of `samples/`.
//!
//! Every order draws its own random stream from `(seed, order index)`, so a universe is the
//! same whatever the number of threads that write it. The universe is built to exercise the
//! readers (every file shape, gzip and zstd, role lists in any order, numbers as strings,
//! the three timestamp styles, missing optional fields, re-exported duplicates) and carries
//! known reconciliation cases, listed in `_truth/injected.json`: products with no
//! expedition, stuck expeditions, re-expeditions, stock shortfalls, amount mismatches, late
//! deliveries for installs, appointments missing.
//!
//! Files: `orders.rs` drives one order and everything hanging off it (`expeditions.rs`,
//! `appointments.rs`, `customer_care.rs`, `external_orders.rs`, `pickups.rs`); `stock.rs` sizes
//! the stock from the demand left; the shared dictionaries are in `catalogue.rs` and
//! `people.rs`, time and money formats in `values.rs`. The builders hand their records to
//! `writers.rs`, the only place that names files.

mod appointments;
mod catalogue;
mod customer_care;
mod expeditions;
mod external_orders;
mod orders;
mod people;
mod pickups;
mod stock;
mod values;
mod writers;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

pub use appointments::write_appointments;
use writers::PartWriters;

/// The day the generated exports are a snapshot of (the `as_of` to reconcile them with).
pub const SNAPSHOT: (i32, u32, u32) = (2025, 6, 30);
/// Days without a status change that the injected stuck expeditions exceed (the default
/// `stuck_after_days` is 7).
pub const STUCK_DAYS: i64 = 12;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Universe {
    /// Number of orders.
    pub orders: usize,
    /// Random seed.
    pub seed: u64,
    /// Also export the appointments a reschedule superseded (an export holds them; the API
    /// serves only the latest appointment of a work order).
    pub superseded: bool,
}

impl Default for Universe {
    fn default() -> Self {
        Universe {
            orders: 1000,
            seed: 1,
            superseded: true,
        }
    }
}

/// What was written.
#[derive(Debug, Default)]
pub struct Stats {
    /// Files.
    pub files: usize,
    /// Bytes.
    pub bytes: u64,
}

/// Cases the reconciliations must find, by kind (written to `_truth/injected.json`).
#[derive(Debug, Default, Serialize, Clone)]
pub struct Truth {
    /// `[order_id, subscription_device_id]` of products with no expedition.
    pub no_expedition: Vec<(String, String)>,
    /// `[order_id, subscription_device_id]` whose expedition is stuck.
    pub stuck: Vec<(String, String)>,
    /// `[order_id, subscription_device_id]` shipped again (the later expedition decides).
    pub reexpedited: Vec<(String, String)>,
    /// Expected fulfilment state per `[order_id, subscription_device_id]`, for every product.
    pub fulfilment: BTreeMap<String, String>,
    /// Product codes with less stock than pending demand, and with no stock record.
    pub stock_shortfall: Vec<String>,
    /// Product codes ordered that no warehouse lists.
    pub no_stock_record: Vec<String>,
    /// `[order_id_external, journey_index]` with a courier amount that differs.
    pub amount_mismatch: Vec<(String, i32)>,
    /// Expected remaining-payment state per `order_id_external/journey_index`.
    pub payments: BTreeMap<String, String>,
    /// Expected fees state per `order_id_external/journey_index` of final payments.
    pub fees: BTreeMap<String, String>,
    /// Orders whose devices arrived after the installation appointment started.
    pub late_install: Vec<String>,
    /// Expected readiness state per order with a work order.
    pub readiness: BTreeMap<String, String>,
}

/// What a part of the universe adds to the shared totals.
#[derive(Default)]
struct PartResult {
    truth: Truth,
    /// Quantity of products with no expedition, per product code.
    pending: BTreeMap<String, i64>,
    /// Every product code ordered.
    ordered: BTreeSet<String>,
    pickups: Vec<(&'static str, Value)>,
}

/// Writes the universe under `out`.
pub fn generate(u: &Universe, out: &Path) -> io::Result<Stats> {
    fs::create_dir_all(out)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parts = (u.orders / 20_000).clamp(1, threads.max(1) * 2);
    let per = u.orders.div_ceil(parts);
    let results: Vec<io::Result<PartResult>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..parts)
            .map(|p| {
                let range = (p * per)..((p + 1) * per).min(u.orders);
                s.spawn(move || write_part(u, out, p, range))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a generator thread panicked")))
            })
            .collect()
    });
    let mut truth = Truth::default();
    let mut pending: BTreeMap<String, i64> = BTreeMap::new();
    let mut ordered = BTreeSet::new();
    let mut pickups: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    for r in results {
        let r = r?;
        truth.no_expedition.extend(r.truth.no_expedition);
        truth.stuck.extend(r.truth.stuck);
        truth.reexpedited.extend(r.truth.reexpedited);
        truth.fulfilment.extend(r.truth.fulfilment);
        truth.amount_mismatch.extend(r.truth.amount_mismatch);
        truth.payments.extend(r.truth.payments);
        truth.fees.extend(r.truth.fees);
        truth.late_install.extend(r.truth.late_install);
        truth.readiness.extend(r.truth.readiness);
        for (k, v) in r.pending {
            *pending.entry(k).or_default() += v;
        }
        for (tenant, p) in r.pickups {
            pickups.entry(tenant).or_default().push(p);
        }
        ordered.extend(r.ordered);
    }
    writers::write_pickups(out, pickups)?;
    let stock = stock::stock(u, &pending, &ordered, &mut truth);
    writers::write_stock(out, &stock.csv, &stock.warehouse)?;
    writers::write_json(&out.join("_truth/injected.json"), &serde_json::to_value(&truth)?)?;
    let mut stats = Stats::default();
    writers::count(out, &mut stats)?;
    Ok(stats)
}

/// Writes the orders of `range`, each tenant's into its own sub-folder of every source.
fn write_part(u: &Universe, out: &Path, part: usize, range: std::ops::Range<usize>) -> io::Result<PartResult> {
    let mut files = PartWriters::new(out, part);
    let mut result = PartResult::default();
    for i in range {
        orders::write_order(u, i, &mut files, &mut result)?;
    }
    result.pickups = files.close()?;
    Ok(result)
}
