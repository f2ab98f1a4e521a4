//! Expeditions: whether an order ships, how its status history ends, re-expeditions, and the
//! fulfilment each product must then reconcile to.

use std::sync::LazyLock;

use chrono::{Duration, NaiveDateTime};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::catalogue::Product;
use super::values::{cents, iso, madrid};
use super::writers::TenantWriters;
use super::{PartResult, STUCK_DAYS};

/// The usual path of an expedition through the warehouse and the courier (all IN_PROGRESS).
const IN_PROGRESS_PATH: &[&str] = &[
    "ORDER_RECEIVED",
    "PICKING",
    "READY_TO_SHIPPING",
    "SENT",
    "IN_TRANSIT",
    "IN_DELIVERY",
];

/// The status categories the reconciliation reads (`sql/status_categories.csv`): the generator
/// draws final statuses from the same file, so it can neither send a status the file does not
/// know nor miss one the file adds to a category.
const STATUS_CATEGORIES: &str = include_str!("../../sql/status_categories.csv");

/// The statuses an expedition can end with, per final category.
struct FinalStatuses {
    delivered: Vec<&'static str>,
    returned: Vec<&'static str>,
    cancelled: Vec<&'static str>,
    incidence: Vec<&'static str>,
}

static FINAL_STATUSES: LazyLock<FinalStatuses> = LazyLock::new(|| FinalStatuses {
    delivered: statuses_of("DELIVERED"),
    returned: statuses_of("RETURNED"),
    cancelled: statuses_of("CANCELLED"),
    incidence: statuses_of("INCIDENCE"),
});

/// The statuses of `category` in the category file: those named after the category first
/// (`RETURNED`, `RETURNED_TO_OL`, ...), then the others, each in file order. The order decides
/// which status a random draw gives, so it is fixed by the file alone; this one is also the
/// order the generator's own lists had, so delivered, returned and cancelled expeditions draw
/// the statuses they drew before it read the file.
fn statuses_of(category: &str) -> Vec<&'static str> {
    let (named, others): (Vec<&'static str>, Vec<&'static str>) = STATUS_CATEGORIES
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(','))
        .filter(|(_, c)| c.trim() == category)
        .map(|(status, _)| status.trim())
        .partition(|status| status.starts_with(category));
    named.into_iter().chain(others).collect()
}

/// One of `statuses`, or none when the category file lists none.
fn draw(rng: &mut ChaCha8Rng, statuses: &[&'static str]) -> Option<&'static str> {
    if statuses.is_empty() {
        return None;
    }
    Some(statuses[rng.random_range(0..statuses.len())])
}

/// The expected fulfilment category of an expedition's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Returned,
    Cancelled,
    Incidence,
    InProgress,
    Stuck,
    NoHistory,
}

impl Outcome {
    fn state(self) -> &'static str {
        match self {
            Outcome::Delivered => "DELIVERED",
            Outcome::Returned => "RETURNED",
            Outcome::Cancelled => "CANCELLED",
            Outcome::Incidence => "INCIDENCE",
            Outcome::InProgress | Outcome::NoHistory => "IN_PROGRESS",
            Outcome::Stuck => "STUCK",
        }
    }
}

/// How an order shipped.
pub(super) struct Shipment {
    /// No expedition at all (the products' demand is pending).
    pub none: bool,
    /// When the devices were delivered, if they were.
    pub delivered_at: Option<NaiveDateTime>,
}

/// Ships the products of `order_id`: none, one expedition, or a re-expedition whose later status
/// decides; records the fulfilment each product must reconcile to.
pub(super) fn ship(
    rng: &mut ChaCha8Rng,
    order_id: &str,
    products: &[Product],
    ordered_at: NaiveDateTime,
    end: NaiveDateTime,
    w: &mut TenantWriters,
    result: &mut PartResult,
) -> std::io::Result<Shipment> {
    let key = |d: &Option<String>| format!("{order_id}/{}", d.clone().unwrap_or_default());
    let no_expedition = rng.random_bool(0.04) || products.iter().all(|p| p.device.is_none());
    let outcome = match rng.random_range(0..100) {
        0..=64 => Outcome::Delivered,
        65..=76 => Outcome::InProgress,
        77..=81 => Outcome::Stuck,
        82..=87 => Outcome::Returned,
        88..=92 => Outcome::Cancelled,
        93..=98 => Outcome::Incidence,
        _ => Outcome::NoHistory,
    };
    // A second expedition without any status never wins over the first (whose status is the
    // latest), so re-expeditions always carry a history.
    let reexpedition = !no_expedition && rng.random_bool(0.04) && outcome != Outcome::NoHistory;
    let mut delivered_at: Option<NaiveDateTime> = None;
    if no_expedition {
        for p in products {
            *result.pending.entry(p.code.to_string()).or_default() += p.quantity;
            if let Some(d) = &p.device {
                result.truth.no_expedition.push((order_id.to_string(), d.clone()));
            }
            result.truth.fulfilment.insert(key(&p.device), "NO_EXPEDITION".into());
        }
    } else {
        let base_id = format!("{:016x}", rng.random::<u64>());
        let mut shipped: Vec<&Product> = products.iter().filter(|p| p.device.is_some()).collect();
        for p in products.iter().filter(|p| p.device.is_none()) {
            *result.pending.entry(p.code.to_string()).or_default() += p.quantity;
            result.truth.fulfilment.insert(key(&p.device), "NO_EXPEDITION".into());
        }
        let start = ordered_at + Duration::hours(rng.random_range(2..30));
        let last_at = last_status_time(rng, outcome, end);
        let mut at = start.min(last_at - Duration::hours(24));
        if reexpedition {
            // The first attempt came back before the second one started.
            let first_last = at - Duration::hours(rng.random_range(1..24));
            let (first, _) = expedition(
                rng,
                &format!("{base_id}-R0"),
                &shipped,
                Outcome::Returned,
                first_last - Duration::hours(48),
                first_last,
            );
            w.expedition(first)?;
            at = at.max(first_last + Duration::hours(1)).min(last_at);
            for p in &shipped {
                if let Some(d) = &p.device {
                    result.truth.reexpedited.push((order_id.to_string(), d.clone()));
                }
            }
        }
        let suffix = if reexpedition { "R1" } else { "R0" };
        let (exp, last_at) = expedition(rng, &format!("{base_id}-{suffix}"), &shipped, outcome, at, last_at);
        w.expedition(exp)?;
        if outcome == Outcome::Delivered {
            delivered_at = Some(last_at);
        }
        for p in shipped.drain(..) {
            result.truth.fulfilment.insert(key(&p.device), outcome.state().into());
            if outcome == Outcome::Stuck {
                if let Some(d) = &p.device {
                    result.truth.stuck.push((order_id.to_string(), d.clone()));
                }
            }
        }
    }
    Ok(Shipment {
        none: no_expedition,
        delivered_at,
    })
}

/// When an expedition's last status happened, for the outcome it must have on the snapshot.
fn last_status_time(rng: &mut ChaCha8Rng, outcome: Outcome, end: NaiveDateTime) -> NaiveDateTime {
    match outcome {
        Outcome::Stuck => end - Duration::days(STUCK_DAYS + rng.random_range(0..20)),
        Outcome::InProgress => end - Duration::hours(rng.random_range(6..72)),
        _ => end - Duration::days(rng.random_range(1..25)),
    }
}

/// An expedition with a status history from `start` to `last_at` ending in `outcome`; returns
/// it and its last status time.
fn expedition(
    rng: &mut ChaCha8Rng,
    id: &str,
    products: &[&Product],
    outcome: Outcome,
    start: NaiveDateTime,
    last_at: NaiveDateTime,
) -> (Value, NaiveDateTime) {
    let steps = rng.random_range(3..IN_PROGRESS_PATH.len());
    let mut statuses: Vec<(&str, NaiveDateTime)> = Vec::new();
    let first_at = start.min(last_at - Duration::hours(2 * steps as i64));
    let mut at = first_at;
    let gap = (last_at - first_at) / (steps as i32 + 1);
    for s in IN_PROGRESS_PATH.iter().take(steps) {
        statuses.push((s, at));
        at += gap;
    }
    let finals = &*FINAL_STATUSES;
    let final_status = match outcome {
        Outcome::Delivered => draw(rng, &finals.delivered),
        Outcome::Returned => draw(rng, &finals.returned),
        Outcome::Cancelled => draw(rng, &finals.cancelled),
        Outcome::Incidence => draw(rng, &finals.incidence),
        Outcome::InProgress | Outcome::Stuck | Outcome::NoHistory => None,
    };
    match final_status {
        Some(s) => statuses.push((s, last_at)),
        None => {
            if let Some(last) = statuses.last_mut() {
                last.1 = last_at;
            }
        }
    }
    // A tie: a transport note at the very same second, listed before the final status.
    if rng.random_bool(0.03) && statuses.len() > 1 {
        let n = statuses.len();
        statuses[n - 2].1 = statuses[n - 1].1;
    }
    let iso_style = rng.random_bool(0.1);
    let mut history: Vec<Value> = statuses
        .iter()
        .enumerate()
        .map(|(k, (s, t))| {
            json!({
                "id": format!("{}", k + 1),
                "value": s,
                "description": s.to_lowercase().replace('_', " "),
                "final": matches!(*s, "DELIVERED" | "RETURNED" | "CANCELLED"),
                "reshippable": false,
                "reason_code": "",
                "reason_description": null,
                "timestamp": if iso_style { iso(*t) } else { madrid(*t) }
            })
        })
        .collect();
    if outcome == Outcome::NoHistory {
        history.clear();
    } else if rng.random_bool(0.05) && history.len() > 2 {
        // Histories are not always listed in time order: the latest by timestamp counts.
        history.swap(0, 1);
        let last = history.len() - 1;
        history.swap(last - 1, 0);
    }
    let items: Vec<Value> = products
        .iter()
        .map(|p| json!({"product_code": p.code, "quantity": p.quantity, "subscription_device_id": p.device, "remaining_payment": cents(p.remaining)}))
        .collect();
    let v = json!({
        "expedition_id": id,
        "created_date": start.format("%Y-%m-%d").to_string(),
        "transport": {"courier_id": "CORREOS", "delivery_service": "DELIVERY_24", "verify_identity": false},
        "tracking": {"tracking_link": format!("http://gls.es/{id}"), "return_code": null},
        "status_history": history,
        "products": items
    });
    (v, last_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn category_of(status: &str) -> Option<&'static str> {
        STATUS_CATEGORIES
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(','))
            .find(|(s, _)| s.trim() == status)
            .map(|(_, c)| c.trim())
    }

    #[test]
    fn final_statuses_come_from_the_category_file_category_named_first() {
        let f = &*FINAL_STATUSES;
        assert_eq!(
            f.delivered,
            ["DELIVERED", "DELIVERED_CUSTODIAN", "DELIVERED_IN_DELIVERY_POINT"]
        );
        assert_eq!(
            f.returned,
            ["RETURNED", "RETURNED_TO_OL", "RETURNED_TO_WAREHOUSE", "NOT_DELIVERED"]
        );
        assert_eq!(f.cancelled, ["CANCELLED", "ABANDONED", "EXPIRED", "REJECTED"]);
        assert_eq!(f.incidence.len(), 11);
        assert_eq!(f.incidence[0], "INCIDENCE");
        for (list, category) in [
            (&f.delivered, "DELIVERED"),
            (&f.returned, "RETURNED"),
            (&f.cancelled, "CANCELLED"),
            (&f.incidence, "INCIDENCE"),
        ] {
            for s in list {
                assert_eq!(category_of(s), Some(category), "{s}");
            }
        }
    }

    #[test]
    fn the_path_before_the_end_is_in_progress_in_the_category_file() {
        for s in IN_PROGRESS_PATH {
            assert_eq!(category_of(s), Some("IN_PROGRESS"), "{s}");
        }
    }
}
