//! Values every builder shares: the snapshot day, times and money as the APIs write them, and
//! a random pick.

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::SNAPSHOT;

/// The snapshot day.
pub(super) fn snapshot() -> NaiveDate {
    NaiveDate::from_ymd_opt(SNAPSHOT.0, SNAPSHOT.1, SNAPSHOT.2).unwrap_or_default()
}

/// The end of the snapshot day in Madrid, as a naive UTC time (the instant `as_of` stands for).
pub(super) fn snapshot_end_utc() -> NaiveDateTime {
    let local = snapshot()
        .succ_opt()
        .unwrap_or_default()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default();
    chrono_tz::Europe::Madrid
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.naive_utc())
        .unwrap_or(local)
}

/// Madrid wall time of a UTC instant, as the logistics API writes it.
pub(super) fn madrid(t: NaiveDateTime) -> String {
    chrono_tz::Europe::Madrid
        .from_utc_datetime(&t)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// ISO 8601 in UTC to the second (`2025-06-30T08:15:00Z`).
pub(super) fn iso(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// ISO 8601 in UTC to the millisecond (`2025-06-30T08:15:00.000Z`).
pub(super) fn iso_ms(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// One of `items`, drawn from `rng`; `items` is one of the generator's own non-empty lists.
pub(super) fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// An amount in cents as the APIs send it.
pub(super) fn cents(c: i64) -> Value {
    // Amounts as JSON numbers with at most two decimals (what the APIs send).
    json!(c as f64 / 100.0)
}

/// An amount in cents as text with its two decimals (`20.50`).
pub(super) fn money_text(c: i64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}
