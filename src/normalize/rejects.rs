//! Rejected records: what could not be read, where it is, and a redacted copy.
//!
//! A reject keeps the source, file, line, page and byte offset, the reason, a SHA-256 of the
//! raw bytes, and the raw text redacted by the personal-data policy: where it parses as JSON
//! every personal field and role value is hashed or dropped; where it does not, the text is
//! kept only if the job says `rejects_raw = "keep"` (the file and offset still point at it).
//!
//! Rejects are not held in memory until the end of the run: each batch's are appended to a
//! [`Spill`] file as they come and read back in file order when `_rejects` is written, so two
//! million bad lines cost disk, not memory.

use std::borrow::Cow;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::schema::pii::{Pii, PiiAction, PiiKind, RejectsRaw};
use crate::table_row;

/// Raw text longer than this is cut; the file and offset point at the whole record.
pub const MAX_RAW_BYTES: usize = 64 * 1024;

/// One rejected record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reject {
    /// Source (export folder).
    pub source: String,
    /// File, relative to the input root.
    pub file: String,
    /// 1-based line of the record.
    pub line: u64,
    /// Page number, for records of a numbered page.
    pub page: Option<i64>,
    /// Byte offset of the record in the (decompressed) file.
    pub offset: u64,
    /// Why it was rejected.
    pub reason: String,
    /// SHA-256 of the raw bytes, hex.
    pub raw_sha256: String,
    /// The raw text, redacted.
    pub raw: Option<String>,
}

impl Reject {
    /// A reject of `raw`, redacted under `pii`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: &str,
        file: &str,
        line: u64,
        page: Option<i64>,
        offset: u64,
        reason: String,
        raw: &[u8],
        pii: &Pii,
        rejects_raw: RejectsRaw,
    ) -> Self {
        Reject {
            source: source.to_string(),
            file: file.to_string(),
            line,
            page,
            offset,
            reason,
            raw_sha256: hex::encode(Sha256::digest(raw)),
            raw: redact(raw, pii, rejects_raw),
        }
    }
}

impl Reject {
    /// A reject of a record whose bytes were not kept (longer than `max_record_bytes`): its
    /// digest was taken as it streamed past, and it has no raw text.
    pub fn unread(source: &str, file: &str, line: u64, offset: u64, reason: String, sha256: [u8; 32]) -> Self {
        Reject {
            source: source.to_string(),
            file: file.to_string(),
            line,
            page: None,
            offset,
            reason,
            raw_sha256: hex::encode(sha256),
            raw: None,
        }
    }
}

/// Where a batch of rejects goes in `_rejects`: sources by name, then files in read order,
/// then batches in read order (a file's own trailing reject after its batches).
pub type SpillKey = (usize, usize, u32);

/// Rejects on disk: an anonymous temporary file (removed by the OS even after a crash) of
/// JSON lines, appended a batch at a time, and an index of the batches.
pub struct Spill {
    file: std::fs::File,
    len: u64,
    batches: Vec<(SpillKey, u64, u64)>,
}

impl Spill {
    /// An empty spill in `dir`.
    pub fn new(dir: &Path) -> io::Result<Self> {
        Ok(Spill {
            file: tempfile::tempfile_in(dir)?,
            len: 0,
            batches: Vec::new(),
        })
    }

    /// Serializes `rejects` for [`Spill::append`] (outside any lock).
    pub fn encode(rejects: &[Reject]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for r in rejects {
            serde_json::to_writer(&mut out, r)?;
            out.push(b'\n');
        }
        Ok(out)
    }

    /// Appends one batch of rejects, encoded by [`Spill::encode`], under `key`.
    pub fn append(&mut self, key: SpillKey, encoded: &[u8]) -> io::Result<()> {
        if encoded.is_empty() {
            return Ok(());
        }
        self.file.write_all(encoded)?;
        self.batches.push((key, self.len, encoded.len() as u64));
        self.len += encoded.len() as u64;
        Ok(())
    }

    /// Calls `each` on every reject, in key order, a batch in memory at a time.
    pub fn for_each(mut self, each: &mut dyn FnMut(Reject) -> io::Result<()>) -> io::Result<()> {
        self.batches.sort_by_key(|b| b.0);
        let mut buf = Vec::new();
        for (_, offset, len) in std::mem::take(&mut self.batches) {
            self.file.seek(SeekFrom::Start(offset))?;
            buf.clear();
            (&mut self.file).take(len).read_to_end(&mut buf)?;
            for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                each(serde_json::from_slice(line)?)?;
            }
        }
        Ok(())
    }
}

table_row! {
    /// A row of `_rejects`.
    pub struct RejectRow<'a> in "_rejects" key ["source", "file", "byte_offset"] {
        source: Option<Cow<'a, str>>,
        file: Option<Cow<'a, str>>,
        line: Option<i64>,
        page: Option<i64>,
        byte_offset: Option<i64>,
        reason: Option<Cow<'a, str>>,
        raw_sha256: Option<Cow<'a, str>>,
        raw: Option<Cow<'a, str>>,
    }
    groups []
}

impl<'a> From<&'a Reject> for RejectRow<'a> {
    fn from(r: &'a Reject) -> Self {
        RejectRow {
            source: Some(Cow::Borrowed(&r.source)),
            file: Some(Cow::Borrowed(&r.file)),
            line: Some(r.line as i64),
            page: r.page,
            byte_offset: Some(r.offset as i64),
            reason: Some(Cow::Borrowed(&r.reason)),
            raw_sha256: Some(Cow::Borrowed(&r.raw_sha256)),
            raw: r.raw.as_deref().map(Cow::Borrowed),
            groups: Vec::new(),
        }
    }
}

/// The redacted raw text of a reject.
pub fn redact(raw: &[u8], pii: &Pii, rejects_raw: RejectsRaw) -> Option<String> {
    match serde_json::from_slice::<Value>(raw) {
        Ok(mut v) => {
            redact_value(&mut v, pii);
            Some(cut(v.to_string()))
        }
        Err(_) => match rejects_raw {
            RejectsRaw::Keep => Some(cut(String::from_utf8_lossy(raw).into_owned())),
            RejectsRaw::Redact => None,
        },
    }
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_RAW_BYTES {
        let mut end = MAX_RAW_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("…[truncated]");
    }
    s
}

fn normalized(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The personal-data class of a JSON field by its name, for records the pivots never saw.
fn field_kind(key: &str) -> Option<PiiKind> {
    const ADDRESS_PARTS: &[&str] = &[
        "number",
        "floor",
        "block",
        "stair",
        "letter",
        "bis",
        "additionaldetails",
        "buildingnumber",
        "buildingfloor",
        "buildingothers",
    ];
    let k = normalized(key);
    if ADDRESS_PARTS.contains(&k.as_str()) {
        return Some(PiiKind::Street);
    }
    match k.as_str() {
        "author" => Some(PiiKind::Name),
        "userid" => Some(PiiKind::Email),
        "contactnumber" => Some(PiiKind::Phone),
        "postcode" => None,
        _ => PiiKind::guess(&k),
    }
}

fn redact_value(v: &mut Value, pii: &Pii) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| redact_value(i, pii)),
        Value::Object(map) => {
            // Role/value pairs: the role names the class of the value.
            let pair = [("role", "id"), ("name", "value"), ("key", "value")]
                .into_iter()
                .find(|(r, val)| map.get(*r).is_some_and(Value::is_string) && map.contains_key(*val));
            let mut skip: Vec<&str> = Vec::new();
            if let Some((role_key, value_key)) = pair {
                let role = map
                    .get(role_key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(kind) = PiiKind::guess(&normalized(&role)) {
                    apply(map, value_key, kind, pii);
                }
                skip = vec![role_key, value_key];
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if skip.contains(&k.as_str()) {
                    if let Some(inner) = map.get_mut(&k) {
                        if inner.is_object() || inner.is_array() {
                            redact_value(inner, pii);
                        }
                    }
                    continue;
                }
                let is_nested = map.get(&k).is_some_and(|x| x.is_object() || x.is_array());
                match field_kind(&k) {
                    // Zip codes, cities and provinces are kept by the policy.
                    _ if normalized(&k).contains("zip") => {}
                    Some(kind) if !is_nested || map.get(&k).is_some_and(Value::is_array) => apply(map, &k, kind, pii),
                    _ => {
                        if let Some(inner) = map.get_mut(&k) {
                            redact_value(inner, pii);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

fn apply(map: &mut serde_json::Map<String, Value>, key: &str, kind: PiiKind, pii: &Pii) {
    let action = match kind.default_action() {
        // Free text is not hunted down in rejects beyond what the policy keeps elsewhere.
        PiiAction::Keep => return,
        a => match (a, pii.mode()) {
            (PiiAction::Hash, crate::schema::pii::PiiMode::Drop) => PiiAction::Drop,
            (a, _) => a,
        },
    };
    let Some(value) = map.get_mut(key) else {
        return;
    };
    match action {
        PiiAction::Drop => {
            map.remove(key);
        }
        PiiAction::Hash => {
            let hashed = match value {
                Value::String(s) => Value::String(pii.hash(kind, s).as_str().to_owned()),
                Value::Number(n) => Value::String(pii.hash(kind, &n.to_string()).as_str().to_owned()),
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|i| match i {
                            Value::String(s) => Value::String(pii.hash(kind, s).as_str().to_owned()),
                            _ => Value::Null,
                        })
                        .collect(),
                ),
                Value::Null | Value::Bool(_) => return,
                Value::Object(_) => Value::Null,
            };
            *value = hashed;
        }
        PiiAction::Keep => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::pii::{PiiKey, PiiMode};
    use std::collections::HashMap;

    fn pii() -> Pii {
        Pii::new(PiiMode::Hash, Some(&PiiKey::secret(b"k".to_vec())), HashMap::new()).unwrap()
    }

    #[test]
    fn json_rejects_lose_every_personal_value() {
        let raw = br#"{"id":"A1","relatedParty":[{"id":"Raul","role":"firstName"},{"id":"x@y.es","role":"email"},{"id":"28036","role":"zipcode"}],
            "relatedPlace":{"id":"01","name":"Reyes de Navarra 11"},
            "client":{"name":"Juan","surnames":["Perez"],"email":"example@gmail.com","identity":{"document_id":"00000000A"},
                      "contact_phone":{"phone_number":"666666666"},"address":{"street":"Mayor","number":"208","zip_code":"28912","city":"Leganes"}},
            "contactMedium":[{"characteristic":{"key":"mobile","value":33650981065}}],
            "resourceCharacteristic":[{"name":"msisdn","value":"666777888"}],
            "duration":"eighty"}"#;
        let out = redact(raw, &pii(), RejectsRaw::Redact).unwrap();
        for secret in [
            "Raul",
            "x@y.es",
            "Reyes",
            "Juan",
            "Perez",
            "example@gmail.com",
            "00000000A",
            "666666666",
            "Mayor",
            "33650981065",
            "666777888",
        ] {
            assert!(!out.contains(secret), "{secret} leaked in {out}");
        }
        for kept in ["28036", "28912", "Leganes", "eighty", "msisdn", "A1"] {
            assert!(out.contains(kept), "{kept} missing in {out}");
        }
        assert!(out.contains(pii().hash(PiiKind::Email, "x@y.es").as_str()));
    }

    #[test]
    fn unparseable_rejects_keep_text_only_when_asked() {
        let raw = b"{\"email\": \"a@b.c\", broken";
        assert_eq!(redact(raw, &pii(), RejectsRaw::Redact), None);
        assert_eq!(
            redact(raw, &pii(), RejectsRaw::Keep).as_deref(),
            Some("{\"email\": \"a@b.c\", broken")
        );
    }

    #[test]
    fn long_raw_text_is_cut() {
        let raw = format!("\"{}\"", "a".repeat(MAX_RAW_BYTES * 2));
        let out = redact(raw.as_bytes(), &pii(), RejectsRaw::Redact).unwrap();
        assert!(out.len() < MAX_RAW_BYTES + 32);
    }

    #[test]
    fn spilled_rejects_come_back_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(dir.path()).unwrap();
        let r = |file: &str, offset: u64| Reject::unread("stock", file, 1, offset, "why\nnot".into(), [7; 32]);
        for (key, rejects) in [
            ((1, 0, 0), vec![r("b", 1)]),
            ((0, 1, u32::MAX), vec![r("a2", 9)]),
            ((0, 1, 3), vec![r("a2", 1), r("a2", 5)]),
            ((0, 0, 0), vec![]),
            ((0, 0, 1), vec![r("a1", 2)]),
        ] {
            spill.append(key, &Spill::encode(&rejects).unwrap()).unwrap();
        }
        let mut got = Vec::new();
        spill
            .for_each(&mut |r| {
                got.push((r.file, r.offset, r.reason));
                Ok(())
            })
            .unwrap();
        let order: Vec<_> = got.iter().map(|g| (g.0.as_str(), g.1)).collect();
        assert_eq!(order, [("a1", 2), ("a2", 1), ("a2", 5), ("a2", 9), ("b", 1)]);
        assert_eq!(got[0].2, "why\nnot");
    }

    #[test]
    fn reject_carries_a_sha256_of_the_raw_bytes() {
        let r = Reject::new(
            "stock",
            "stock/a.csv",
            3,
            None,
            10,
            "bad".into(),
            b"abc",
            &pii(),
            RejectsRaw::Redact,
        );
        assert_eq!(
            r.raw_sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
