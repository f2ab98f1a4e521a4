//! Shapes: a record may be an item, an array of items, or a page/envelope holding items.
//!
//! Shapes are detected per record, not per file (DESIGN.md 2.1). A source declares its
//! [`Envelope`]s as data: where the items sit (`["data", "memos"]`) and which values of the
//! envelope its items inherit (`appointment_id` from `["request", "id"]`). A record that
//! holds none of an envelope's keys is parsed straight as an item, without a second pass.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::source::{Context, Envelope};

/// Records nested deeper than this are rejected rather than followed.
const MAX_DEPTH: usize = 4;

/// Calls `item` for every item in `record`; returns why the record as a whole cannot be read.
/// `item` returns nothing: per-item failures are the caller's to record.
pub fn for_each_item<'a>(
    record: &'a [u8],
    envelopes: &[Envelope],
    item: &mut dyn FnMut(&'a [u8], &Context<'a>),
) -> Result<(), String> {
    Shapes::new(envelopes).for_each_item(record, item)
}

/// A source's envelopes with the search for their keys prepared once, for reading many
/// records (building a substring searcher per record cost ~0.6% of normalizing).
pub struct Shapes<'e> {
    envelopes: &'e [Envelope],
    /// `"key"` of each envelope's first items key, quoted.
    keys: Vec<memchr::memmem::Finder<'static>>,
}

impl<'e> Shapes<'e> {
    /// The shapes of a source's `envelopes`.
    pub fn new(envelopes: &'e [Envelope]) -> Self {
        let keys = envelopes
            .iter()
            .map(|e| memchr::memmem::Finder::new(format!("\"{}\"", e.items[0]).as_bytes()).into_owned())
            .collect();
        Shapes { envelopes, keys }
    }

    /// [`for_each_item`] with these shapes.
    pub fn for_each_item<'a>(
        &self,
        record: &'a [u8],
        item: &mut dyn FnMut(&'a [u8], &Context<'a>),
    ) -> Result<(), String> {
        self.visit(record, &Context::default(), item, 0)
    }

    fn visit<'a>(
        &self,
        record: &'a [u8],
        inherited: &Context<'a>,
        item: &mut dyn FnMut(&'a [u8], &Context<'a>),
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("records nested too deeply".into());
        }
        match record.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => {
                let elements: Vec<&RawValue> =
                    serde_json::from_slice(record).map_err(|e| format!("invalid JSON array: {e}"))?;
                for e in elements {
                    self.visit(e.get().as_bytes(), inherited, item, depth + 1)?;
                }
                Ok(())
            }
            Some(b'{') => {
                // Whether a quoted key appears anywhere in the record: a cheap pre-check; the
                // parse decides.
                if !self.keys.iter().any(|k| k.find(record).is_some()) {
                    item(record, inherited);
                    return Ok(());
                }
                let object: BTreeMap<Cow<'a, str>, &'a RawValue> =
                    serde_json::from_slice(record).map_err(|e| format!("invalid JSON: {e}"))?;
                for envelope in self.envelopes {
                    let Some(items) = lookup(&object, envelope.items)? else {
                        continue;
                    };
                    let mut ctx = inherited.clone();
                    if let Some(page) = object.get("current_page") {
                        ctx.page = serde_json::from_str::<i64>(page.get()).ok();
                    }
                    for (name, path) in envelope.context {
                        if let Some(v) = lookup(&object, path)? {
                            if let Ok(t) = serde_json::from_str::<crate::schema::lenient::Text<'a>>(v.get()) {
                                ctx.set(name, t.0);
                            }
                        }
                    }
                    return self.visit(items.get().as_bytes(), &ctx, item, depth + 1);
                }
                item(record, inherited);
                Ok(())
            }
            Some(_) => Err("not a JSON object or array".into()),
            None => Err("empty record".into()),
        }
    }
}

/// Follows `path` through nested objects.
fn lookup<'a>(object: &BTreeMap<Cow<'a, str>, &'a RawValue>, path: &[&str]) -> Result<Option<&'a RawValue>, String> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(None);
    };
    let Some(mut value) = object.get(*first).copied() else {
        return Ok(None);
    };
    for key in rest {
        if !value.get().trim_start().starts_with('{') {
            return Ok(None);
        }
        let inner: BTreeMap<Cow<'a, str>, &'a RawValue> =
            serde_json::from_str(value.get()).map_err(|e| format!("invalid JSON: {e}"))?;
        match inner.get(*key) {
            Some(v) => value = v,
            None => return Ok(None),
        }
    }
    if value.get() == "null" {
        return Ok(None);
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMOS: &[Envelope] = &[
        Envelope {
            items: &["data", "memos"],
            context: &[],
        },
        Envelope {
            items: &["memos"],
            context: &[],
        },
    ];
    const SLOTS: &[Envelope] = &[
        Envelope {
            items: &["response", "availableTimeSlot"],
            context: &[("appointment_id", &["request", "id"])],
        },
        Envelope {
            items: &["availableTimeSlot"],
            context: &[("appointment_id", &["id"])],
        },
    ];

    fn items<'a>(record: &'a str, env: &[Envelope]) -> Vec<(String, Context<'a>)> {
        let mut out = Vec::new();
        for_each_item(record.as_bytes(), env, &mut |b, c| {
            out.push((String::from_utf8_lossy(b).into_owned(), c.clone()))
        })
        .unwrap();
        out
    }

    #[test]
    fn a_bare_item_is_itself() {
        let got = items(r#"{"id": "m1"}"#, MEMOS);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, r#"{"id": "m1"}"#);
    }

    #[test]
    fn paginated_envelopes_and_arrays_are_unwrapped() {
        let page = r#"{"data": {"memos": [{"id": "a"}, {"id": "b"}]}, "next_request": "http://x"}"#;
        assert_eq!(items(page, MEMOS).len(), 2);
        let list = r#"[{"memos": [{"id": "a"}]}, {"id": "c"}]"#;
        let got = items(list, MEMOS);
        assert_eq!(
            got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
            [r#"{"id": "a"}"#, r#"{"id": "c"}"#]
        );
    }

    #[test]
    fn items_inherit_context_and_page() {
        let rec = r#"{"request": {"id": "MYSIM_1"}, "response": {"availableTimeSlot": [{"x": 1}]}, "current_page": 3}"#;
        let got = items(rec, SLOTS);
        assert_eq!(got[0].1.get("appointment_id"), Some("MYSIM_1"));
        assert_eq!(got[0].1.page, Some(3));
        let rec = r#"{"id": 42, "availableTimeSlot": [{"x": 1}, {"x": 2}]}"#;
        let got = items(rec, SLOTS);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1.get("appointment_id"), Some("42"));
    }

    #[test]
    fn a_key_mentioned_only_in_text_does_not_make_an_envelope() {
        let rec = r#"{"id": "m", "memo_text": "see \"memos\" folder"}"#;
        assert_eq!(items(rec, MEMOS).len(), 1);
    }

    #[test]
    fn broken_records_are_errors() {
        assert!(for_each_item(b"{\"memos\": [", MEMOS, &mut |_, _| {}).is_err());
        assert!(for_each_item(b"42", MEMOS, &mut |_, _| {}).is_err());
    }
}
