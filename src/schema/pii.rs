//! The personal-data policy of DESIGN.md 3.2: what is kept, hashed or dropped, and the keyed hash.
//!
//! Names and streets are dropped; identifiers that join tables (document numbers, e-mails,
//! phones, MSISDNs) become HMAC-SHA256 hex digests under a secret key, so joins still work
//! and no raw value reaches the lake. Every column's action can be overridden by the job.

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What to do with the raw text of a reject that is not valid JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RejectsRaw {
    /// Leave it out: it may hold personal data that cannot be found without parsing.
    #[default]
    Redact,
    /// Keep it as it is.
    Keep,
}

/// The class of personal data a column or role value holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// First names, middle names, surnames, contact names: dropped by default.
    Name,
    /// Street addresses and their parts: dropped by default.
    Street,
    /// Identity document numbers: hashed by default.
    Document,
    /// E-mail addresses: hashed by default (lower-cased first, so joins ignore case).
    Email,
    /// Phone numbers: hashed by default.
    Phone,
    /// Mobile line numbers: hashed by default.
    Msisdn,
    /// Free text that may mention people (notes): kept by default, configurable.
    FreeText,
    /// Bank account numbers (IBAN): hashed by default.
    BankAccount,
    /// Not personal data; only used when a job asks to hash an ordinary column.
    Identifier,
}

impl PiiKind {
    /// What the default policy does with this class.
    pub fn default_action(self) -> PiiAction {
        match self {
            PiiKind::Name | PiiKind::Street => PiiAction::Drop,
            PiiKind::Document | PiiKind::Email | PiiKind::Phone | PiiKind::Msisdn | PiiKind::BankAccount => {
                PiiAction::Hash
            }
            PiiKind::FreeText | PiiKind::Identifier => PiiAction::Keep,
        }
    }

    /// Classifies a field or role the pivots do not know by its name, in English or Spanish,
    /// so that an unexpected `contactEmail`, `telefono` or `apellidos` is still protected.
    /// Words that are also parts of ordinary words (`nie`, `nif`, `dni`, `iban`, `calle`) count
    /// only as whole words of the name (`cliente_nif`, `dniTitular`).
    pub fn of_name(name: &str) -> Option<PiiKind> {
        const PARTS: &[(&str, PiiKind)] = &[
            ("email", PiiKind::Email),
            ("mail", PiiKind::Email),
            ("correo", PiiKind::Email),
            ("msisdn", PiiKind::Msisdn),
            ("iban", PiiKind::BankAccount),
            ("bankaccount", PiiKind::BankAccount),
            ("accountnumber", PiiKind::BankAccount),
            ("cuentabancaria", PiiKind::BankAccount),
            ("numerocuenta", PiiKind::BankAccount),
            ("phone", PiiKind::Phone),
            ("mobile", PiiKind::Phone),
            ("telefono", PiiKind::Phone),
            ("movil", PiiKind::Phone),
            ("celular", PiiKind::Phone),
            ("whatsapp", PiiKind::Phone),
            ("document", PiiKind::Document),
            ("documento", PiiKind::Document),
            ("passport", PiiKind::Document),
            ("pasaporte", PiiKind::Document),
            ("street", PiiKind::Street),
            ("address", PiiKind::Street),
            ("direccion", PiiKind::Street),
            ("domicilio", PiiKind::Street),
            ("surname", PiiKind::Name),
            ("apellido", PiiKind::Name),
            ("name", PiiKind::Name),
            ("nombre", PiiKind::Name),
            ("holder", PiiKind::Name),
            ("titular", PiiKind::Name),
        ];
        const WORDS: &[(&str, PiiKind)] = &[
            ("dni", PiiKind::Document),
            ("nif", PiiKind::Document),
            ("nie", PiiKind::Document),
            ("cif", PiiKind::Document),
            ("iban", PiiKind::BankAccount),
            ("ccc", PiiKind::BankAccount),
            ("calle", PiiKind::Street),
            ("tel", PiiKind::Phone),
        ];
        let words = words_of(name);
        let joined: String = words.concat();
        PARTS
            .iter()
            .find(|(part, _)| joined.contains(part))
            .or_else(|| WORDS.iter().find(|(word, _)| words.iter().any(|w| w == word)))
            .map(|(_, kind)| *kind)
    }

    /// Classifies a value by its form: an e-mail address, a phone number, an IBAN or a
    /// Spanish DNI/NIE. For values under roles and keys nobody declared, whose name says
    /// nothing; a false positive only hashes an ordinary value.
    pub fn of_value(value: &str) -> Option<PiiKind> {
        let v = value.trim();
        if v.len() < 6 || v.len() > 320 {
            return None;
        }
        if is_email(v) {
            Some(PiiKind::Email)
        } else if is_iban(v) {
            Some(PiiKind::BankAccount)
        } else if is_dni_or_nie(v) {
            Some(PiiKind::Document)
        } else if is_phone(v) {
            Some(PiiKind::Phone)
        } else {
            None
        }
    }
}

/// The words of a name, lower-case and without accents: `telefonoMóvil2` → `telefono`,
/// `movil`; `cliente_NIF` → `cliente`, `nif`.
fn words_of(name: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        let c = match c {
            'á' | 'à' | 'Á' | 'À' => 'a',
            'é' | 'è' | 'É' | 'È' => 'e',
            'í' | 'Í' => 'i',
            'ó' | 'ò' | 'Ó' | 'Ò' => 'o',
            'ú' | 'ü' | 'Ú' | 'Ü' => 'u',
            'ñ' | 'Ñ' => 'n',
            c => c,
        };
        if !c.is_alphabetic() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn is_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !v.chars().any(|c| c.is_whitespace() || c == ',' || c == ';')
        && !domain.contains('@')
}

/// Digits of a phone number written with spaces, dots, dashes or brackets: with a `+` or `00`
/// prefix, 8 to 15 digits; without, a Spanish number (9 digits from 6, 7, 8 or 9, or 11
/// starting 34).
fn is_phone(v: &str) -> bool {
    let (international, rest) = match v.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return false,
        }
    }
    let (international, digits) = match digits.strip_prefix("00") {
        Some(d) if !international => (true, d.to_string()),
        _ => (international, digits),
    };
    let spanish = |d: &str| d.len() == 9 && matches!(d.as_bytes()[0], b'6'..=b'9');
    if international {
        (8..=15).contains(&digits.len())
    } else {
        spanish(&digits) || (digits.len() == 11 && digits.starts_with("34") && spanish(&digits[2..]))
    }
}

/// An IBAN: country letters, check digits and 11 to 30 letters or digits (spaces allowed),
/// whose ISO 13616 check (mod 97) holds.
fn is_iban(v: &str) -> bool {
    let compact: Vec<u8> = v.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len())
        || !compact[..2].iter().all(u8::is_ascii_alphabetic)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
        || !compact.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let mut rem = 0u32;
    for b in compact[4..].iter().chain(&compact[..4]) {
        let n = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            _ => u32::from(b.to_ascii_uppercase() - b'A') + 10,
        };
        rem = if n >= 10 {
            (rem * 100 + n) % 97
        } else {
            (rem * 10 + n) % 97
        };
    }
    rem == 1
}

/// A DNI (8 digits and a letter) or NIE (X, Y or Z, 7 digits and a letter), with an optional
/// dash or space before the letter. The control letter is not checked: test and mistyped
/// documents are personal data too.
fn is_dni_or_nie(v: &str) -> bool {
    let compact: Vec<u8> = v.bytes().filter(|b| !matches!(b, b'-' | b' ')).collect();
    let all_digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    match compact.as_slice() {
        [digits @ .., letter] if digits.len() == 8 && all_digits(digits) => letter.is_ascii_alphabetic(),
        [first, digits @ .., letter] if digits.len() == 7 && all_digits(digits) => {
            matches!(first.to_ascii_uppercase(), b'X' | b'Y' | b'Z') && letter.is_ascii_alphabetic()
        }
        _ => false,
    }
}

/// What happens to a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiAction {
    /// Published as it arrives.
    Keep,
    /// Replaced by the keyed hash.
    Hash,
    /// Not published (the column is left out; in long tables the value is null).
    Drop,
}

/// The job-level mode: hash joinable identifiers, or drop every personal value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PiiMode {
    /// Identifiers are hashed with the secret key (a key is required).
    #[default]
    Hash,
    /// Every personal value is dropped; no key is needed.
    Drop,
}

/// The secret HMAC key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct PiiKey {
    bytes: Vec<u8>,
    development: bool,
}

/// The clearly labelled key that only the embedded sample job may use.
pub const DEVELOPMENT_KEY: &[u8] = b"opslake DEVELOPMENT key - not secret - samples only";

impl PiiKey {
    /// A secret key.
    pub fn secret(bytes: Vec<u8>) -> Self {
        PiiKey {
            bytes,
            development: false,
        }
    }

    /// The public development key.
    pub fn development() -> Self {
        PiiKey {
            bytes: DEVELOPMENT_KEY.to_vec(),
            development: true,
        }
    }

    /// Whether this is the public development key.
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// Whether the key has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for PiiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PiiKey(***)")
    }
}

/// A hex HMAC digest held on the stack.
#[derive(Clone, Copy)]
pub struct HexDigest([u8; 64]);

impl HexDigest {
    /// The digest as lower-case hex.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into the buffer.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The resolved policy of a run, with the keyed hasher.
#[derive(Clone)]
pub struct Pii {
    mode: PiiMode,
    overrides: HashMap<String, PiiAction>,
    mac: Option<Hmac<Sha256>>,
    key_label: String,
    /// Tells policies apart in the per-thread cache of digests ([`RecentDigest`]).
    id: u64,
}

/// Policies made so far: each gets its own id.
static POLICIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Slots of the per-thread cache of digests.
const RECENT_DIGESTS: usize = 256;

/// A slot of the last digests a thread made, by value: a personal value is hashed for its
/// wide column and again for its long table's row (and the same customer's phone recurs
/// across records), so a lookup spares about half of the HMACs of a run (issue 16).
/// Direct-mapped: a slot holds the last value that fell on it.
struct RecentDigest {
    /// The policy's id; `u64::MAX` for a slot never filled.
    policy: u64,
    /// Whether the value was lower-cased before hashing.
    fold: bool,
    value: String,
    digest: HexDigest,
}

thread_local! {
    static RECENT: std::cell::RefCell<Vec<RecentDigest>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl fmt::Debug for Pii {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pii")
            .field("mode", &self.mode)
            .field("overrides", &self.overrides)
            .field("key", &self.key_label)
            .finish()
    }
}

impl Pii {
    /// A policy. `overrides` maps `table.column` or `column` to an action. In
    /// [`PiiMode::Hash`] a key is required; in [`PiiMode::Drop`] it is ignored.
    pub fn new(mode: PiiMode, key: Option<&PiiKey>, overrides: HashMap<String, PiiAction>) -> Result<Self, String> {
        let (mac, key_label) = match (mode, key) {
            (PiiMode::Drop, _) => (None, "none (pii = \"drop\")".to_string()),
            (PiiMode::Hash, None) => return Err("no PII key".into()),
            (PiiMode::Hash, Some(k)) if k.is_empty() => return Err("the PII key is empty".into()),
            (PiiMode::Hash, Some(k)) => {
                let mac = Hmac::<Sha256>::new_from_slice(&k.bytes).map_err(|e| format!("unusable PII key: {e}"))?;
                let label = if k.is_development() {
                    "DEVELOPMENT key (public, not for production)".to_string()
                } else {
                    // A fingerprint tells key rotations apart without revealing the key.
                    let mut m = mac.clone();
                    m.update(b"opslake key fingerprint");
                    format!("secret, fingerprint {}", &hex::encode(m.finalize().into_bytes())[..12])
                };
                (Some(mac), label)
            }
        };
        Ok(Pii {
            mode,
            overrides,
            mac,
            key_label,
            id: POLICIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// A policy that drops every personal value (tests, `pii = "drop"`).
    pub fn drop_all() -> Self {
        Pii {
            mode: PiiMode::Drop,
            overrides: HashMap::new(),
            mac: None,
            key_label: "none (pii = \"drop\")".into(),
            id: POLICIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// A description of the key for the manifest (never the key itself).
    pub fn key_label(&self) -> &str {
        &self.key_label
    }

    /// The mode.
    pub fn mode(&self) -> PiiMode {
        self.mode
    }

    /// The action a job configured for a field called `column` (`[pii_columns]`), if any.
    pub fn configured(&self, column: &str) -> Option<PiiAction> {
        self.overrides.get(column).copied()
    }

    /// The action for `table.column` holding data of class `kind`.
    pub fn action(&self, table: &str, column: &str, kind: Option<PiiKind>) -> PiiAction {
        let configured = if self.overrides.is_empty() {
            None
        } else {
            self.overrides
                .get(&format!("{table}.{column}"))
                .or_else(|| self.overrides.get(column))
                .copied()
        };
        let action = configured.unwrap_or_else(|| kind.map_or(PiiAction::Keep, PiiKind::default_action));
        match (action, self.mac.is_some()) {
            (PiiAction::Hash, false) => PiiAction::Drop,
            (a, _) => a,
        }
    }

    /// Applies `action` to a value of class `kind`: a kept value is returned as it came (a
    /// borrowed one stays borrowed), a hashed one as its digest.
    #[inline]
    pub fn enforce<'a>(
        &self,
        action: PiiAction,
        kind: Option<PiiKind>,
        value: std::borrow::Cow<'a, str>,
    ) -> Option<std::borrow::Cow<'a, str>> {
        match action {
            PiiAction::Keep => Some(value),
            PiiAction::Hash => Some(std::borrow::Cow::Owned(
                self.hash(kind.unwrap_or(PiiKind::Identifier), &value)
                    .as_str()
                    .to_owned(),
            )),
            PiiAction::Drop => None,
        }
    }

    /// The keyed hash of a value: HMAC-SHA256 over the trimmed value (e-mails lower-cased).
    /// Without a key (drop mode) the digest is all zeros; callers never publish it then,
    /// because [`Pii::action`] turns every hash into a drop.
    pub fn hash(&self, kind: PiiKind, value: &str) -> HexDigest {
        let Some(mac) = &self.mac else {
            return HexDigest([b'0'; 64]);
        };
        // Only an e-mail with capitals hashes otherwise than its bytes: the same address in
        // lower case under another class (a contact medium's value) shares its slot.
        let fold = kind == PiiKind::Email && value.bytes().any(|b| b.is_ascii_uppercase());
        let slot = (xxhash_rust::xxh3::xxh3_64(value.as_bytes()) as usize ^ usize::from(fold)) % RECENT_DIGESTS;
        RECENT.with_borrow_mut(|recent| {
            if recent.is_empty() {
                recent.resize_with(RECENT_DIGESTS, || RecentDigest {
                    policy: u64::MAX,
                    fold: false,
                    value: String::new(),
                    digest: HexDigest([b'0'; 64]),
                });
            }
            let r = &mut recent[slot];
            if !(r.policy == self.id && r.fold == fold && r.value == value) {
                r.digest = Self::digest(mac, fold, value);
                r.policy = self.id;
                r.fold = fold;
                r.value.clear();
                r.value.push_str(value);
            }
            r.digest
        })
    }

    /// The HMAC of the trimmed `value`, lower-cased first when `fold` (an e-mail with capitals).
    fn digest(mac: &Hmac<Sha256>, fold: bool, value: &str) -> HexDigest {
        let mut out = [b'0'; 64];
        let mut m = mac.clone();
        let v = value.trim();
        if fold {
            m.update(v.to_ascii_lowercase().as_bytes());
        } else {
            m.update(v.as_bytes());
        }
        let digest = m.finalize().into_bytes();
        // Encoding 32 bytes into a 64-byte buffer cannot fail.
        let _ = hex::encode_to_slice(digest, &mut out);
        HexDigest(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(key: &[u8]) -> Pii {
        Pii::new(PiiMode::Hash, Some(&PiiKey::secret(key.to_vec())), HashMap::new()).unwrap()
    }

    #[test]
    fn same_value_same_key_gives_same_hash() {
        let p = policy(b"k1");
        assert_eq!(
            p.hash(PiiKind::Document, "12345678T").as_str(),
            p.hash(PiiKind::Document, " 12345678T ").as_str()
        );
    }

    #[test]
    fn different_key_gives_different_hash() {
        assert_ne!(
            policy(b"k1").hash(PiiKind::Phone, "666777888").as_str(),
            policy(b"k2").hash(PiiKind::Phone, "666777888").as_str()
        );
    }

    #[test]
    fn hash_is_hmac_sha256_hex() {
        let p = policy(b"key");
        let mut m = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        m.update(b"test@pe.es");
        let want = hex::encode(m.finalize().into_bytes());
        assert_eq!(p.hash(PiiKind::Email, "Test@PE.es").as_str(), want);
    }

    #[test]
    fn digests_from_the_recent_cache_are_those_a_fresh_hmac_gives() {
        let hmac = |key: &[u8], value: &str| {
            let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
            m.update(value.as_bytes());
            hex::encode(m.finalize().into_bytes())
        };
        let (p, q) = (policy(b"k1"), policy(b"k2"));
        // More values than the cache has slots, twice: the second round mixes hits and
        // values whose slot another took; neither may give another value's or key's digest.
        // Lower-case addresses share a slot across classes; those with capitals do not.
        let values: Vec<String> = (0..1000)
            .map(|i| {
                if i % 3 == 0 {
                    format!("val{i}@pe.es")
                } else {
                    format!("Val{i}@PE.es")
                }
            })
            .collect();
        for _ in 0..2 {
            for v in &values {
                assert_eq!(p.hash(PiiKind::Email, v).as_str(), hmac(b"k1", &v.to_lowercase()));
                assert_eq!(p.hash(PiiKind::Phone, v).as_str(), hmac(b"k1", v));
                assert_eq!(q.hash(PiiKind::Email, v).as_str(), hmac(b"k2", &v.to_lowercase()));
            }
        }
    }

    #[test]
    fn default_actions_follow_the_design() {
        let p = policy(b"k");
        assert_eq!(
            p.action("appointments", "first_name", Some(PiiKind::Name)),
            PiiAction::Drop
        );
        assert_eq!(p.action("appointments", "email", Some(PiiKind::Email)), PiiAction::Hash);
        assert_eq!(p.action("appointments", "zipcode", None), PiiAction::Keep);
    }

    #[test]
    fn overrides_by_table_column_win_over_column() {
        let mut o = HashMap::new();
        o.insert("email".to_string(), PiiAction::Drop);
        o.insert("orders.client_email".to_string(), PiiAction::Keep);
        let p = Pii::new(PiiMode::Hash, Some(&PiiKey::secret(b"k".to_vec())), o).unwrap();
        assert_eq!(p.action("appointments", "email", Some(PiiKind::Email)), PiiAction::Drop);
        assert_eq!(
            p.action("orders", "client_email", Some(PiiKind::Email)),
            PiiAction::Keep
        );
    }

    #[test]
    fn drop_mode_drops_what_would_be_hashed() {
        let p = Pii::drop_all();
        assert_eq!(
            p.action("typifications", "msisdn", Some(PiiKind::Msisdn)),
            PiiAction::Drop
        );
        assert_eq!(p.action("typifications", "channel", None), PiiAction::Keep);
    }

    #[test]
    fn hash_mode_needs_a_key() {
        assert!(Pii::new(PiiMode::Hash, None, HashMap::new()).is_err());
    }

    #[test]
    fn key_debug_hides_bytes() {
        let k = PiiKey::secret(b"super-secret".to_vec());
        assert!(!format!("{k:?}").contains("super"));
    }

    #[test]
    fn unknown_roles_are_classified_by_name_in_english_and_spanish() {
        for (name, kind) in [
            ("contactEmail", PiiKind::Email),
            ("lastname", PiiKind::Name),
            ("telefono", PiiKind::Phone),
            ("teléfonoMóvil", PiiKind::Phone),
            ("movil", PiiKind::Phone),
            ("apellidos", PiiKind::Name),
            ("nombre", PiiKind::Name),
            ("dni", PiiKind::Document),
            ("cliente_NIF", PiiKind::Document),
            ("nie", PiiKind::Document),
            ("correo", PiiKind::Email),
            ("email", PiiKind::Email),
            ("direccion", PiiKind::Street),
            ("dirección_envío", PiiKind::Street),
            ("iban", PiiKind::BankAccount),
            ("IBAN", PiiKind::BankAccount),
            ("holder", PiiKind::Name),
        ] {
            assert_eq!(PiiKind::of_name(name), Some(kind), "{name}");
        }
        for name in [
            "segment",
            "companies",
            "unified",
            "scoring_level",
            "tariff",
            "caller_id",
        ] {
            assert_eq!(PiiKind::of_name(name), None, "{name}");
        }
    }

    #[test]
    fn values_are_classified_by_their_form() {
        for (value, kind) in [
            ("ana.b@correo.es", PiiKind::Email),
            ("+34 611 222 333", PiiKind::Phone),
            ("611222333", PiiKind::Phone),
            ("0034611222333", PiiKind::Phone),
            ("34611222333", PiiKind::Phone),
            ("ES91 2100 0418 4502 0005 1332", PiiKind::BankAccount),
            ("GB82WEST12345698765432", PiiKind::BankAccount),
            ("12345678Z", PiiKind::Document),
            ("12345678-z", PiiKind::Document),
            ("X1234567L", PiiKind::Document),
        ] {
            assert_eq!(PiiKind::of_value(value), Some(kind), "{value}");
        }
        for value in [
            "installation",
            "00833",
            "123456789",
            "2025-06-30T10:00:00Z",
            "ES91 2100 0418 4502 0005 1333",
            "MYSIM_12411",
            "a@b",
            "28036",
        ] {
            assert_eq!(PiiKind::of_value(value), None, "{value}");
        }
    }
}
