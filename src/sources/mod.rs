//! Sources: one file per export folder / API resource, each stating what differs per source
//! (the [`Source`] trait of [`crate::source`]): its serde model field by field from the seed,
//! its tables with keys, envelopes, role pivots and API endpoint. The stage engines name no
//! source; adding one is a new file here plus one line in [`SOURCES`]. An optional text field
//! of a model is `Option<Text>` read by [`crate::schema::lenient::opt_text`] (`#[serde(default,
//! deserialize_with = "opt_text")]`): the same values, in one pass over each.

use std::borrow::Cow;

use crate::source::{Item, Source};

pub mod appointments;
pub mod customer_devices;
pub mod expeditions;
pub mod external_orders;
pub mod logistics;
pub mod memos;
pub mod orders;
pub mod pickups;
pub mod products_with_expedition;
pub mod stock;
pub mod time_slots;
pub mod typifications;

/// Every source, in the order they are read.
pub const SOURCES: &[&dyn Source] = &[
    &appointments::Appointments,
    &time_slots::TimeSlots,
    &memos::Memos,
    &typifications::Typifications,
    &customer_devices::CustomerDevices,
    &orders::Orders,
    &expeditions::Expeditions,
    &products_with_expedition::ProductsWithExpedition,
    &stock::Stock,
    &pickups::Pickups,
    &external_orders::ExternalOrders,
];

/// The customers known from earlier days: whoever had devices or typifications in the last
/// committed tables is asked for them again, even with no memo today (their fees are still due).
pub const KNOWN_CUSTOMERS: &[(&str, &str)] = &[("customer_devices", "customer_num"), ("typifications", "customer_num")];

/// The text of an optional field.
pub fn text<'a>(t: Option<crate::schema::lenient::Text<'a>>) -> Option<Cow<'a, str>> {
    t.map(|t| t.0)
}

/// Deserializes an item; a wrong value's message names the field that holds it.
pub fn read_item<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    // One SIMD pass validates the UTF-8 of the whole item; serde then borrows its strings
    // without checking each again. Invalid UTF-8 falls through to serde's own error.
    let parsed = match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    match parsed {
        Ok(v) => Ok(v),
        Err(e) if e.is_syntax() || e.is_eof() => Err(format!("invalid JSON: {e}")),
        Err(e) => {
            // Only on failure: a second, path-tracking pass names the field.
            let mut de = serde_json::Deserializer::from_slice(bytes);
            match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(pe) if pe.path().iter().next().is_some() => Err(format!(
                    "invalid value at {}: {}",
                    pe.path(),
                    without_value(&pe.inner().to_string())
                )),
                _ => Err(format!("invalid record: {}", without_value(&e.to_string()))),
            }
        }
    }
}

/// A serde message without the value it quotes: `invalid type: string "Calle Ficticia 13",
/// expected a string or a number` becomes `invalid type: string, expected a string or a
/// number`. Values may be personal data; the field's path and the expected type say enough.
pub fn without_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return format!("{prefix}{}", without_unexpected(rest));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some(end) = rest.find('`') {
            return format!("unknown variant{}", &rest[end + 1..]);
        }
    }
    message.to_string()
}

/// serde's `Unexpected` as it is displayed, without its value: `string "..."` (Rust's
/// debug quoting, with escapes) or `integer `5``, `floating point `1.5``, `boolean `true``,
/// `character `c``.
fn without_unexpected(text: &str) -> String {
    if let Some(quoted) = text.strip_prefix("string \"") {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return format!("string{}", &quoted[i + 1..]),
                _ => {}
            }
        }
        return "string".into();
    }
    if let Some(open) = text.find(" `") {
        if text[..open].bytes().all(|b| b.is_ascii_lowercase() || b == b' ') {
            if let Some(close) = text[open + 2..].find('`') {
                return format!("{}{}", &text[..open], &text[open + 2 + close + 1..]);
            }
        }
    }
    text.to_string()
}

/// The customer an item belongs to: inherited from its envelope, or the file's name when the
/// export names files by customer number (all digits).
pub fn customer_of<'a>(item: &Item<'_, 'a>) -> Option<Cow<'a, str>> {
    if let Some(c) = item.context.get("customer_num") {
        return Some(Cow::Owned(c.to_string()));
    }
    let stem = item.file_stem;
    (!stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit())).then(|| Cow::Owned(stem.to_string()))
}

/// The day a per-id answer was fetched (its raw line's `_fetched_on`): `None` for export
/// files, which do not say.
pub fn fetched_on(item: &Item<'_, '_>) -> Option<crate::schema::columns::Date> {
    item.context
        .get(crate::source::FETCHED_ON)
        .and_then(crate::schema::columns::Date::parse)
}

/// Requires a key field.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing required key {field}"))
}

/// Requires a key field, non-empty text.
pub fn required_text<'a>(value: Option<crate::schema::lenient::Text<'a>>, field: &str) -> Result<Cow<'a, str>, String> {
    match value {
        Some(t) if !t.0.trim().is_empty() => Ok(t.0),
        _ => Err(format!("missing required key {field}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_field_and_the_type_never_the_value() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Place {
            id: Option<String>,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Item {
            place: Option<Place>,
            n: Option<u8>,
            flag: Option<bool>,
        }
        for (raw, field, kind) in [
            (
                r#"{"place": "Calle Ficticia 13, \"2B\", expected x"}"#,
                "place",
                "invalid type: string, expected struct Place",
            ),
            (r#"{"n": 600123456}"#, "n", "invalid value: integer, expected u8"),
            (r#"{"n": 6.5}"#, "n", "invalid type: floating point, expected u8"),
            (
                r#"{"flag": "Juan"}"#,
                "flag",
                "invalid type: string, expected a boolean",
            ),
        ] {
            let why = read_item::<Item>(raw.as_bytes()).err().unwrap();
            let want = format!("invalid value at {field}: {kind} at line 1 column");
            assert!(why.starts_with(&want), "{why}");
        }
        assert_eq!(without_value("missing field `id`"), "missing field `id`");
        assert_eq!(
            without_value("unknown variant `juan@x.es`, expected `A` or `B`"),
            "unknown variant, expected `A` or `B`"
        );
    }

    #[test]
    fn source_names_are_unique_and_tables_carry_the_main_key() {
        let mut names: Vec<_> = SOURCES.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SOURCES.len());
        for s in SOURCES {
            let tables = s.tables();
            assert_eq!(tables[0].name, s.name(), "main table is named after the source");
            for t in &tables {
                for k in tables[0].key {
                    assert!(t.columns.iter().any(|c| c.name == *k), "{} lacks {}", t.name, k);
                }
                for k in t.key {
                    assert!(
                        t.columns.iter().any(|c| c.name == *k),
                        "{} key {} is not a column",
                        t.name,
                        k
                    );
                }
            }
            // A row finds its table by the id of its name: no two tables of a source share one.
            let mut ids: Vec<u64> = tables
                .iter()
                .map(|t| crate::schema::columns::table_id(t.name))
                .collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), tables.len(), "{}: two tables share an id", s.name());
        }
    }
}
