//! Rejected records: what could not be read, where it is, and a redacted copy.
//!
//! A reject keeps the source, file, line, page and byte offset, the reason, a SHA-256 of the
//! raw bytes, and the raw text redacted by the strict personal-data policy ([`Redactor`]):
//! where it parses as JSON, a value is kept only when its key or role is one the sources
//! know and neither the name nor the value's form is personal; personal values are hashed or
//! dropped by the default policy (a job's `[pii_columns]` can make that stricter, never
//! looser), and everything else (values under unknown keys and roles, top-level scalars) is
//! left out. Where it does not parse, the text is kept only if the job says
//! `rejects_raw = "keep"` (the file and offset still point at it). A reason never quotes a
//! value of its record: one that does is rewritten.
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

use std::collections::HashSet;

use crate::schema::pii::{Pii, PiiAction, PiiKind, PiiMode, RejectsRaw};
use crate::source::Source;
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
    /// A reject of `raw`, redacted by `redactor`; `reason` loses any value of the record it
    /// quotes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: &str,
        file: &str,
        line: u64,
        page: Option<i64>,
        offset: u64,
        reason: String,
        raw: &[u8],
        redactor: &Redactor,
    ) -> Self {
        let (raw_text, reason) = redactor.redact(raw, reason);
        Reject {
            source: source.to_string(),
            file: file.to_string(),
            line,
            page,
            offset,
            reason,
            raw_sha256: hex::encode(Sha256::digest(raw)),
            raw: raw_text,
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
    pub fn encode<'r>(rejects: impl IntoIterator<Item = &'r Reject>) -> io::Result<Vec<u8>> {
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

/// Generic keys of pages and envelopes, known whatever the source.
const STRUCTURE: &[&str] = &[
    "id",
    "data",
    "items",
    "page",
    "pagesize",
    "currentpage",
    "totalpages",
    "totalelements",
    "nextrequest",
    "request",
    "response",
    "role",
    "key",
    "value",
    "href",
    "type",
    "status",
    "code",
    "description",
];

/// Rejects' raw text and reasons under the strict personal-data policy, for a run's sources.
pub struct Redactor {
    pii: Pii,
    rejects_raw: RejectsRaw,
    /// Keys and roles the sources know (normalized): their columns and every `_`-suffix of
    /// them (`client_zip_code` → `clientzipcode`, `zipcode`, `code`), role spellings, envelope
    /// keys.
    known: HashSet<String>,
}

impl Redactor {
    /// The redactor of a run reading `sources` under `pii`.
    pub fn new(pii: &Pii, rejects_raw: RejectsRaw, sources: &[&dyn Source]) -> Self {
        let mut known: HashSet<String> = STRUCTURE.iter().map(|k| k.to_string()).collect();
        let mut add = |name: &str| {
            let mut rest = name;
            loop {
                known.insert(normalized(rest));
                match rest.split_once('_') {
                    Some((_, tail)) if !tail.is_empty() => rest = tail,
                    _ => break,
                }
            }
        };
        for source in sources {
            add(source.name());
            for table in source.tables() {
                for column in &table.columns {
                    add(column.name);
                }
            }
            for pivot in source.pivots() {
                add(pivot.list);
                for role in pivot.roles {
                    role.sent_as.iter().for_each(|s| add(s));
                    add(role.column);
                }
            }
            for envelope in source.envelopes() {
                envelope.items.iter().for_each(|k| add(k));
                for (name, path) in envelope.context {
                    add(name);
                    path.iter().for_each(|k| add(k));
                }
            }
            source.csv_columns().iter().for_each(|c| add(c));
        }
        Redactor {
            pii: pii.clone(),
            rejects_raw,
            known,
        }
    }

    /// A redactor that knows no source (every value under a key is left out unless personal
    /// by name, where it is hashed or dropped).
    pub fn strict(pii: &Pii, rejects_raw: RejectsRaw) -> Self {
        Redactor::new(pii, rejects_raw, &[])
    }

    /// The redacted raw text of `raw`, and `reason` without the record's values.
    pub fn redact(&self, raw: &[u8], reason: String) -> (Option<String>, String) {
        match serde_json::from_slice::<Value>(raw) {
            Ok(mut v) => {
                let reason = without_values(reason, &v);
                let text = match self.value(&mut v, None) {
                    true => Some(cut(v.to_string())),
                    false => None,
                };
                (text, reason)
            }
            Err(_) => match self.rejects_raw {
                RejectsRaw::Keep => (Some(cut(String::from_utf8_lossy(raw).into_owned())), reason),
                RejectsRaw::Redact => (None, reason),
            },
        }
    }

    fn known(&self, key: &str) -> bool {
        self.known.contains(&normalized(key))
    }

    /// The action for a value of class `kind` under `key`: the default, or a stricter one the
    /// job configured for the key; hashing becomes dropping without a key.
    fn action(&self, key: Option<&str>, kind: PiiKind) -> PiiAction {
        let default = kind.default_action();
        let configured = key.and_then(|k| self.pii.configured(k));
        let strictest = match (default, configured) {
            (PiiAction::Drop, _) | (_, Some(PiiAction::Drop)) => PiiAction::Drop,
            (PiiAction::Hash, _) | (_, Some(PiiAction::Hash)) => PiiAction::Hash,
            _ => PiiAction::Keep,
        };
        match (strictest, self.pii.mode()) {
            (PiiAction::Hash, PiiMode::Drop) => PiiAction::Drop,
            (a, _) => a,
        }
    }

    /// Redacts `v`, found under `key`; `false` when it must be left out altogether.
    fn value(&self, v: &mut Value, key: Option<&str>) -> bool {
        match v {
            Value::Null | Value::Bool(_) => true,
            Value::String(_) | Value::Number(_) => self.scalar(v, key),
            Value::Array(items) => {
                for item in items.iter_mut() {
                    if !self.value(item, key) {
                        *item = Value::Null;
                    }
                }
                true
            }
            Value::Object(map) => {
                // A role/value pair: the role names the class of the value.
                let pair = [("role", "id"), ("name", "value"), ("key", "value")]
                    .into_iter()
                    .find(|(r, val)| map.get(*r).is_some_and(Value::is_string) && map.contains_key(*val));
                if let Some((role_key, value_key)) = pair {
                    let role = map
                        .get(role_key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    // A role that is itself personal data (an e-mail as a role) is hashed.
                    if let Some(r) = map.get_mut(role_key) {
                        if PiiKind::of_value(&role).is_some() && !self.scalar(r, None) {
                            *r = Value::Null;
                        }
                    }
                    let keep = match (PiiKind::of_name(&role), map.get_mut(value_key)) {
                        (_, None) => true,
                        (Some(kind), Some(x)) => self.personal(x, Some(&role), kind),
                        (None, Some(x)) => self.value(x, Some(&role)),
                    };
                    if !keep {
                        map.remove(value_key);
                    }
                    let rest: Vec<String> = map
                        .keys()
                        .filter(|k| *k != role_key && *k != value_key)
                        .cloned()
                        .collect();
                    self.members(map, rest);
                } else {
                    let keys: Vec<String> = map.keys().cloned().collect();
                    self.members(map, keys);
                }
                true
            }
        }
    }

    fn members(&self, map: &mut serde_json::Map<String, Value>, keys: Vec<String>) {
        for k in keys {
            let Some(x) = map.get_mut(&k) else {
                continue;
            };
            let keep = match field_kind(&k) {
                // A structure under a personal name (`address`, `contact_phone`) is walked:
                // its parts say what they are.
                Some(_) if x.is_object() => self.value(x, Some(&k)),
                Some(kind) => self.personal(x, Some(&k), kind),
                None => self.value(x, Some(&k)),
            };
            if !keep {
                map.remove(&k);
            }
        }
    }

    /// Applies the policy of `kind` to `v`; `false` when it is dropped.
    fn personal(&self, v: &mut Value, key: Option<&str>, kind: PiiKind) -> bool {
        match self.action(key, kind) {
            PiiAction::Drop => false,
            // Free text and identifiers the policy keeps: kept unless their form is personal.
            PiiAction::Keep => self.value(v, key.or(Some("value"))),
            PiiAction::Hash => {
                match v {
                    Value::String(s) => *v = Value::String(self.pii.hash(kind, s).as_str().to_owned()),
                    Value::Number(n) => *v = Value::String(self.pii.hash(kind, &n.to_string()).as_str().to_owned()),
                    Value::Array(items) => {
                        for item in items.iter_mut() {
                            if item.is_object() || item.is_array() || !self.personal(item, key, kind) {
                                *item = Value::Null;
                            }
                        }
                    }
                    Value::Object(_) => return self.value(v, key),
                    Value::Null | Value::Bool(_) => {}
                }
                true
            }
        }
    }

    /// A string or number: hashed or dropped when its form is personal, kept under a known
    /// key, left out otherwise.
    fn scalar(&self, v: &mut Value, key: Option<&str>) -> bool {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return true,
        };
        if let Some(kind) = PiiKind::of_value(&text) {
            return match self.action(key, kind) {
                PiiAction::Drop => false,
                _ => {
                    *v = Value::String(self.pii.hash(kind, &text).as_str().to_owned());
                    true
                }
            };
        }
        key.is_some_and(|k| self.known(k))
    }
}

/// `reason` without any string or number of the record, where it quotes one (`"…"`, `` `…` ``).
fn without_values(mut reason: String, record: &Value) -> String {
    fn scalars(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if !s.is_empty() => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|i| scalars(i, out)),
            Value::Object(map) => map.values().for_each(|i| scalars(i, out)),
            _ => {}
        }
    }
    let mut values = Vec::new();
    scalars(record, &mut values);
    for v in values {
        for quoted in [format!("{v:?}"), format!("\"{v}\""), format!("`{v}`")] {
            if reason.contains(&quoted) {
                reason = reason.replace(&quoted, "(value withheld)");
            }
        }
    }
    reason
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
        "piso",
        "puerta",
        "portal",
        "escalera",
        "numero",
    ];
    let k = normalized(key);
    if ADDRESS_PARTS.contains(&k.as_str()) {
        return Some(PiiKind::Street);
    }
    match k.as_str() {
        "author" => Some(PiiKind::Name),
        "userid" => Some(PiiKind::Email),
        "contactnumber" => Some(PiiKind::Phone),
        _ if k.contains("zip") || k.contains("postcode") || k.contains("postal") => None,
        _ => PiiKind::of_name(key),
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

    fn redactor() -> Redactor {
        Redactor::new(&pii(), RejectsRaw::Redact, crate::sources::SOURCES)
    }

    fn redact(raw: &[u8], rejects_raw: RejectsRaw) -> Option<String> {
        Redactor::new(&pii(), rejects_raw, crate::sources::SOURCES)
            .redact(raw, String::new())
            .0
    }

    #[test]
    fn json_rejects_lose_every_personal_value() {
        let raw = r#"{"id":"A1","relatedParty":[{"id":"Raul","role":"firstName"},{"id":"x@y.es","role":"email"},{"id":"28036","role":"zipcode"},
              {"id":"Fernández","role":"apellidos"},{"id":"611222333","role":"telefono"},{"id":"ana@b.es","role":"ref9"},{"id":"secreto","role":"ref10"}],
            "relatedPlace":{"id":"01","name":"Reyes de Navarra 11"},
            "client":{"name":"Juan","surnames":["Perez"],"email":"example@gmail.com","identity":{"document_id":"00000000A"},
                      "contact_phone":{"phone_number":"666666666"},"address":{"street":"Mayor","number":"208","zip_code":"28912","city":"Leganes"}},
            "payment":{"holder":"Maria Lopez","iban":"ES91 2100 0418 4502 0005 1332","nota":"llamar a Maria","tags":["vip","Lopez"]},
            "contactMedium":[{"characteristic":{"key":"mobile","value":33650981065}},{"characteristic":{"key":"whatsapp","value":"Pepe"}}],
            "resourceCharacteristic":[{"name":"msisdn","value":"666777888"}],
            "duration":"eighty"}"#;
        let out = redact(raw.as_bytes(), RejectsRaw::Redact).unwrap();
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
            "Fernández",
            "611222333",
            "ana@b.es",
            "secreto",
            "Maria",
            "Lopez",
            "ES91",
            "Pepe",
        ] {
            assert!(!out.contains(secret), "{secret} leaked in {out}");
        }
        for kept in ["28036", "28912", "Leganes", "eighty", "msisdn", "A1", "whatsapp"] {
            assert!(out.contains(kept), "{kept} missing in {out}");
        }
        assert!(out.contains(pii().hash(PiiKind::Email, "x@y.es").as_str()));
        assert!(out.contains(pii().hash(PiiKind::Email, "ana@b.es").as_str()), "{out}");
    }

    #[test]
    fn scalars_and_arrays_of_unknown_meaning_are_left_out() {
        assert_eq!(
            redact(br#""Calle Ficticia 13, 2B, 28001 Madrid""#, RejectsRaw::Redact),
            None
        );
        assert_eq!(
            redact(b"600123456", RejectsRaw::Redact),
            Some(format!("\"{}\"", pii().hash(PiiKind::Phone, "600123456").as_str()))
        );
        assert_eq!(
            redact(br#"["Juan Perez", 12, true, null]"#, RejectsRaw::Redact).as_deref(),
            Some("[null,null,true,null]")
        );
    }

    #[test]
    fn overrides_only_make_rejects_stricter() {
        let mut o = HashMap::new();
        o.insert("email".to_string(), PiiAction::Drop);
        o.insert("first_name".to_string(), PiiAction::Keep);
        o.insert("text".to_string(), PiiAction::Keep);
        let p = Pii::new(PiiMode::Hash, Some(&PiiKey::secret(b"k".to_vec())), o).unwrap();
        let r = Redactor::new(&p, RejectsRaw::Redact, crate::sources::SOURCES);
        let (out, _) = r.redact(br#"{"email":"a@b.es","first_name":"Raul","text":"ok"}"#, String::new());
        let out = out.unwrap();
        assert!(!out.contains("email") && !out.contains("Raul"), "{out}");
        assert!(out.contains("\"text\":\"ok\""), "{out}");
    }

    #[test]
    fn reasons_lose_the_values_they_quote() {
        let (_, reason) = redactor().redact(
            br#"{"relatedPlace": "Calle Ficticia 13, 2B", "n": 600123456}"#,
            "invalid type: string \"Calle Ficticia 13, 2B\", expected struct; integer `600123456`".into(),
        );
        assert!(!reason.contains("Calle") && !reason.contains("600123456"), "{reason}");
        assert!(reason.contains("expected struct"), "{reason}");
    }

    #[test]
    fn unparseable_rejects_keep_text_only_when_asked() {
        let raw = b"{\"email\": \"a@b.c\", broken";
        assert_eq!(redact(raw, RejectsRaw::Redact), None);
        assert_eq!(
            redact(raw, RejectsRaw::Keep).as_deref(),
            Some("{\"email\": \"a@b.c\", broken")
        );
    }

    #[test]
    fn long_raw_text_is_cut() {
        let raw = format!("{{\"id\": \"{}\"}}", "a".repeat(MAX_RAW_BYTES * 2));
        let out = redact(raw.as_bytes(), RejectsRaw::Redact).unwrap();
        assert!(out.len() < MAX_RAW_BYTES + 32);
    }

    #[test]
    fn reject_carries_a_sha256_of_the_raw_bytes() {
        let r = Reject::new("stock", "stock/a.csv", 3, None, 10, "bad".into(), b"abc", &redactor());
        assert_eq!(
            r.raw_sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
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
}
