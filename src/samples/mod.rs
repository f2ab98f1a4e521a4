//! The sample generator: a consistent universe of exports in the layout of `samples/`, or in
//! another [`Layout`] of the same records (many small files, a few large ones).
//!
//! Every order draws its own random stream from `(seed, order index)`, so a universe is the
//! same whatever the number of threads that write it, and the same in every layout. The
//! universe is built to exercise the readers (every file shape, gzip and zstd, role lists in
//! any order, numbers as strings, the three timestamp styles, missing optional fields,
//! re-exported duplicates) and carries known reconciliation cases, listed in
//! `_truth/injected.json`: products with no expedition, stuck expeditions, re-expeditions,
//! stock shortfalls, amount mismatches, late deliveries for installs, appointments missing.
//!
//! Files: `orders.rs` drives one order and everything hanging off it (`expeditions.rs`,
//! `appointments.rs`, `customer_care.rs`, `external_orders.rs`, `pickups.rs`); `stock.rs` sizes
//! the stock from the demand left; the shared dictionaries are in `catalogue.rs` and
//! `people.rs`, time and money formats in `values.rs`. The builders hand their records to
//! `writers.rs`, the only place that names files, which lays them out as the layout says.

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
use writers::{PartLeftovers, PartWriters};

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
    /// What its files leave to do once every part is written.
    files: PartLeftovers,
}

/// How a universe is laid out in files (`samples generate --files`). The records, and so the
/// tables they normalize to, are the same in every layout; only files and shapes differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// The layout of samples/: per source and tenant one file per part (the universe is
    /// written in parallel parts of about 20,000 orders; NDJSON lines, pages of 100, gzip and
    /// zstd), plus a few single-record files (an order, an appointment, customers' devices and
    /// typifications named after the customer, time-slot responses named after the
    /// appointment) and re-exported appointments apart.
    #[default]
    Default,
    /// Many small files, as a per-page / per-id API export writes them: a page of 50 orders,
    /// expeditions, external orders, pickups or memos per file, and per-id answers
    /// (appointments, searches, a customer's devices or typifications) 6 to an NDJSON file;
    /// about half a file per order.
    Small,
    /// As few files as possible: one per source and tenant (plus the two stock files), about 40
    /// for any number of orders.
    Large,
}

/// Writes the universe under `out` in the default layout.
pub fn generate(u: &Universe, out: &Path) -> io::Result<Stats> {
    generate_as(u, Layout::Default, out)
}

/// Writes the universe under `out` in `layout`.
pub fn generate_as(u: &Universe, layout: Layout, out: &Path) -> io::Result<Stats> {
    fs::create_dir_all(out)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parts = (u.orders / 20_000).clamp(1, threads.max(1) * 2);
    let per = u.orders.div_ceil(parts);
    let results: Vec<io::Result<PartResult>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..parts)
            .map(|p| {
                let range = (p * per)..((p + 1) * per).min(u.orders);
                s.spawn(move || write_part(u, layout, out, p, range))
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
    let mut pieces = Vec::new();
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
        for (tenant, p) in r.files.pickups {
            pickups.entry(tenant).or_default().push(p);
        }
        pieces.extend(r.files.pieces);
        ordered.extend(r.ordered);
    }
    writers::join_pieces(pieces)?;
    writers::write_pickups(out, layout, pickups)?;
    let stock = stock::stock(u, &pending, &ordered, &mut truth);
    writers::write_stock(out, &stock.csv, &stock.warehouse)?;
    writers::write_json(&out.join("_truth/injected.json"), &serde_json::to_value(&truth)?)?;
    let mut stats = Stats::default();
    writers::count(out, &mut stats)?;
    Ok(stats)
}

/// Writes the orders of `range`, each tenant's into its own sub-folder of every source.
fn write_part(
    u: &Universe,
    layout: Layout,
    out: &Path,
    part: usize,
    range: std::ops::Range<usize>,
) -> io::Result<PartResult> {
    let mut files = PartWriters::new(out, part, layout);
    let mut result = PartResult::default();
    for i in range {
        orders::write_order(u, i, &mut files, &mut result)?;
    }
    result.files = files.close()?;
    Ok(result)
}
