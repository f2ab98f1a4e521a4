//! Role/value lists (`relatedParty`, `relatedEntity`, `resourceCharacteristic`) into typed
//! wide columns, keeping every pair for the long tables.
//!
//! A [`RolePivot`] is data: the roles it knows, how each is spelled by the APIs, the column
//! it fills and its type. Role names match after lower-casing and removing `_`, `-` and
//! spaces, so `sellchannel`, `sell_channel` and `sellChannel` fill the same column. The
//! first occurrence of a role fills the wide column; every occurrence, known or not, is a
//! long-table row. A value that does not fit its column's type rejects the record.

use std::borrow::Cow;
use std::cell::RefCell;

use polars::prelude::PlHashMap;

use super::columns::{Cell, ColumnSpec, ColumnType};
use super::pii::{Pii, PiiAction, PiiKind};
use super::time::TimeParser;

/// The type of a pivoted role column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleType {
    /// Text, kept as sent (leading zeros matter).
    Text,
    /// 32-bit integer sent as text.
    Int32,
    /// Boolean sent as `"true"`/`"false"`.
    Bool,
    /// An instant.
    Timestamp,
    /// `start - end`: the role's column is the start, this names the end column.
    TimeRange {
        /// Name of the end column.
        end: &'static str,
    },
}

/// One known role of a pivot.
#[derive(Clone, Copy, Debug)]
pub struct Role {
    /// Spellings the APIs use, already normalized (lower case, no `_`, `-` or spaces).
    pub sent_as: &'static [&'static str],
    /// The wide column it fills.
    pub column: &'static str,
    /// The column type.
    pub ty: RoleType,
    /// Personal-data class of its values.
    pub pii: Option<PiiKind>,
}

impl Role {
    /// A text role.
    pub const fn text(sent_as: &'static [&'static str], column: &'static str) -> Role {
        Role {
            sent_as,
            column,
            ty: RoleType::Text,
            pii: None,
        }
    }

    /// A role of another type.
    pub const fn typed(sent_as: &'static [&'static str], column: &'static str, ty: RoleType) -> Role {
        Role {
            sent_as,
            column,
            ty,
            pii: None,
        }
    }

    /// A text role holding personal data.
    pub const fn personal(sent_as: &'static [&'static str], column: &'static str, pii: PiiKind) -> Role {
        Role {
            sent_as,
            column,
            ty: RoleType::Text,
            pii: Some(pii),
        }
    }

    fn width(&self) -> usize {
        match self.ty {
            RoleType::TimeRange { .. } => 2,
            _ => 1,
        }
    }
}

/// A role/value list and the roles that become columns.
#[derive(Debug)]
pub struct RolePivot {
    /// The list's name in the API (`relatedParty`), for reject reasons.
    pub list: &'static str,
    /// The wide table, whose column policy also governs the long table's values.
    pub table: &'static str,
    /// Known roles.
    pub roles: &'static [Role],
}

/// One pair of a role list, its value already under the personal-data policy.
#[derive(Clone, Debug, PartialEq)]
pub struct RolePair<'a> {
    /// 0-based position in the list.
    pub position: i32,
    /// The role as sent.
    pub role: Cow<'a, str>,
    /// The value as sent, hashed, or `None` when dropped or absent.
    pub value: Option<Cow<'a, str>>,
}

/// Unknown role names a bound pivot remembers the personal-data class of; a batch sees a
/// handful of names thousands of times, and hostile input cannot grow the memo past this (nor
/// past the batch's own bytes: a pivot is bound per batch).
const UNKNOWN_NAMES_KEPT: usize = 1024;

/// Longest normalized role spelling looked up; longer ones are unknown roles.
const ROLE_MAX: usize = 64;

/// Lower-cases ASCII and removes `_`, `-` and spaces; `None` when longer than the buffer (the
/// byte-by-byte definition [`Spelling::of`] computes eight bytes at a time).
#[cfg(test)]
fn normalize_role<'b>(role: &str, buf: &'b mut [u8; ROLE_MAX]) -> Option<&'b [u8]> {
    let mut n = 0;
    for b in role.bytes() {
        if matches!(b, b'_' | b'-' | b' ') {
            continue;
        }
        if n == buf.len() {
            return None;
        }
        buf[n] = b.to_ascii_lowercase();
        n += 1;
    }
    Some(&buf[..n])
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Up to 8 bytes as a little-endian word, zero-padded, from loads that overlap when the slice
/// is shorter (nothing past it is read). The same loads as the short cases of the text
/// columns' `inline_view`: that function calling this one compiled to a different, ~2% slower
/// string push (11 alternated pairs), so each keeps its own.
#[inline(always)]
fn word_of(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    match (
        n,
        bytes.first_chunk::<8>(),
        bytes.first_chunk::<4>(),
        bytes.last_chunk::<4>(),
    ) {
        (8.., Some(head), _, _) => u64::from_le_bytes(*head),
        (4.., _, Some(head), Some(tail)) => {
            u32::from_le_bytes(*head) as u64 | (u32::from_le_bytes(*tail) as u64) << ((n - 4) * 8)
        }
        (1.., _, _, _) => {
            bytes[0] as u64 | (bytes[n / 2] as u64) << (n / 2 * 8) | (bytes[n - 1] as u64) << ((n - 1) * 8)
        }
        _ => 0,
    }
}

/// Whether any byte of `w` is `b`.
#[inline(always)]
fn has_byte(w: u64, b: u8) -> bool {
    let x = w ^ (ONES * b as u64);
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// `w` with its ASCII capitals lower-cased (other bytes, UTF-8 ones included, unchanged).
#[inline(always)]
fn ascii_lower(w: u64) -> u64 {
    let low7 = w & !HIGHS;
    // A byte's high bit set where its low 7 bits are >= 'A', and where they are > 'Z'.
    let from_a = low7 + ONES * (0x80 - b'A') as u64;
    let past_z = low7 + ONES * (0x80 - b'Z' - 1) as u64;
    let capitals = from_a & !past_z & !w & HIGHS;
    w | capitals >> 2
}

/// A normalized role spelling as zero-padded words, so that hashing and comparing it are a
/// few word operations instead of a byte loop and a `memcmp`.
#[derive(Clone, Copy)]
struct Spelling {
    words: [u64; ROLE_MAX / 8],
    len: usize,
}

impl Spelling {
    /// The normalized form of `role` (lower-cased ASCII without `_`, `-` and spaces); `None`
    /// when longer than [`ROLE_MAX`]. Eight bytes at a time: a chunk without a separator is
    /// lower-cased and shifted into place whole, one with a separator byte by byte. Words are
    /// stored as words: bytes stored one by one and read back as words stalled every lookup.
    #[inline(always)]
    fn of(role: &str) -> Option<Spelling> {
        let mut words = [0u64; ROLE_MAX / 8];
        let mut len = 0;
        // ORs `w` (zero past the bytes it carries) into the words from byte `len` on.
        let put = |words: &mut [u64; ROLE_MAX / 8], len: usize, w: u64| {
            let (at, shift) = (len / 8, len % 8 * 8);
            words[at] |= w << shift;
            if shift != 0 && at + 1 < words.len() {
                words[at + 1] |= w >> (64 - shift);
            }
        };
        for chunk in role.as_bytes().chunks(8) {
            let w = word_of(chunk);
            if has_byte(w, b'_') || has_byte(w, b'-') || has_byte(w, b' ') {
                for &b in chunk {
                    if matches!(b, b'_' | b'-' | b' ') {
                        continue;
                    }
                    if len == ROLE_MAX {
                        return None;
                    }
                    put(&mut words, len, b.to_ascii_lowercase() as u64);
                    len += 1;
                }
            } else {
                if len + chunk.len() > ROLE_MAX {
                    return None;
                }
                put(&mut words, len, ascii_lower(w));
                len += chunk.len();
            }
        }
        Some(Spelling { words, len })
    }

    /// Whether two spellings are the same, without a call to `memcmp`.
    #[inline]
    fn same(&self, other: &Spelling) -> bool {
        let diff = self.words.iter().zip(&other.words).fold(0, |d, (a, b)| d | (a ^ b));
        diff == 0 && self.len == other.len
    }

    /// A hash of the first 24 bytes and the length (equal hashes are confirmed by
    /// [`Spelling::same`]).
    #[inline]
    fn hash(&self) -> u64 {
        let h = self.words[0] ^ self.words[1].rotate_left(21) ^ self.words[2].rotate_left(42) ^ self.len as u64;
        h.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// Normalized spelling → role, an open-addressed table looked up once per pair.
struct RoleIndex {
    slots: Vec<Option<(Spelling, usize)>>,
}

impl RoleIndex {
    /// Every spelling of every role of `pivot` → the role's position.
    fn of(pivot: &RolePivot) -> Self {
        RoleIndex::new(
            pivot
                .roles
                .iter()
                .enumerate()
                .flat_map(|(i, r)| r.sent_as.iter().map(move |s| (*s, i))),
        )
    }

    fn new(spellings: impl Iterator<Item = (&'static str, usize)>) -> Self {
        let spellings: Vec<(Spelling, usize)> =
            spellings.filter_map(|(s, i)| Spelling::of(s).map(|s| (s, i))).collect();
        // At most a quarter full, so a lookup probes about one slot.
        let mut index = RoleIndex {
            slots: vec![None; (spellings.len() * 4).next_power_of_two().max(8)],
        };
        for (spelling, role) in spellings {
            // A later role listing the same spelling takes it.
            let at = index.slot(&spelling);
            index.slots[at] = Some((spelling, role));
        }
        index
    }

    #[inline]
    fn get(&self, role: &str) -> Option<usize> {
        let spelling = Spelling::of(role)?;
        self.slots[self.slot(&spelling)].map(|(_, role)| role)
    }

    /// The slot holding `spelling`, or the empty one where it would go.
    #[inline]
    fn slot(&self, spelling: &Spelling) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = (spelling.hash() >> 32) as usize & mask;
        while self.slots[at].is_some_and(|(s, _)| !s.same(spelling)) {
            at = (at + 1) & mask;
        }
        at
    }
}

impl RolePivot {
    /// Number of wide columns.
    pub fn width(&self) -> usize {
        self.roles.iter().map(Role::width).sum()
    }

    /// The wide columns, in order.
    pub fn column_specs(&self) -> Vec<ColumnSpec> {
        let mut out = Vec::new();
        for r in self.roles {
            let ty = match r.ty {
                RoleType::Text => ColumnType::Text,
                RoleType::Int32 => ColumnType::Int32,
                RoleType::Bool => ColumnType::Bool,
                RoleType::Timestamp | RoleType::TimeRange { .. } => ColumnType::Timestamp,
            };
            out.push(ColumnSpec {
                name: r.column,
                ty,
                pii: r.pii,
            });
            if let RoleType::TimeRange { end } = r.ty {
                out.push(ColumnSpec {
                    name: end,
                    ty,
                    pii: r.pii,
                });
            }
        }
        out
    }

    /// The pivot with its personal-data actions resolved once (per batch).
    pub fn bind<'p>(&'p self, pii: &'p Pii) -> BoundPivot<'p> {
        let mut offsets = Vec::with_capacity(self.roles.len());
        let mut width = 0;
        for r in self.roles {
            offsets.push(width);
            width += r.width();
        }
        let actions = self
            .roles
            .iter()
            .map(|r| pii.action(self.table, r.column, r.pii))
            .collect();
        // Looked up once per pair: a hash of the spelling beats scanning every role's.
        let index = RoleIndex::of(self);
        BoundPivot {
            pivot: self,
            index,
            offsets,
            width,
            actions,
            pii,
            unknown: RefCell::default(),
        }
    }
}

/// A [`RolePivot`] bound to a run's personal-data policy.
pub struct BoundPivot<'p> {
    pivot: &'p RolePivot,
    /// Normalized spelling → role.
    index: RoleIndex,
    offsets: Vec<usize>,
    width: usize,
    actions: Vec<PiiAction>,
    pii: &'p Pii,
    /// Unknown role name → its class by name ([`PiiKind::of_name`] splits the name into
    /// words and searches it for ~40 of them: 4% of normalizing varied role lists).
    unknown: RefCell<PlHashMap<Box<str>, Option<PiiKind>>>,
}

impl BoundPivot<'_> {
    /// Pivots `(role, value)` pairs: appends exactly one cell per wide column to `cells` and,
    /// when the long table is written (`long` is given), one [`RolePair`] per pair to it.
    /// Fails on a value that does not fit its column, whether or not `long` is given.
    pub fn apply<'a, I>(
        &self,
        pairs: I,
        time: &TimeParser,
        cells: &mut Vec<Cell<'a>>,
        mut long: Option<&mut Vec<RolePair<'a>>>,
    ) -> Result<(), String>
    where
        I: IntoIterator<Item = (Cow<'a, str>, Option<Cow<'a, str>>)>,
    {
        let base = cells.len();
        cells.resize(base + self.width, Cell::Null);
        let pairs = pairs.into_iter();
        if let Some(long) = long.as_deref_mut() {
            long.reserve(pairs.size_hint().0);
        }
        for (position, (role, value)) in pairs.enumerate() {
            let known = self.index.get(&role);
            if let (Some(i), Some(v)) = (known, &value) {
                let slot = base + self.offsets[i];
                let r = &self.pivot.roles[i];
                if cells[slot] == Cell::Null {
                    self.fill(r, v, time, &mut cells[slot..slot + r.width()])?;
                }
            }
            // Without its long table, a pair is done once its wide column has it.
            let Some(long) = long.as_deref_mut() else {
                continue;
            };
            let stored = match value {
                None => None,
                Some(v) => {
                    let (action, kind) = match known {
                        Some(i) => (self.actions[i], self.pivot.roles[i].pii),
                        None => {
                            // An unknown role is personal by its name, or by its value's form.
                            let kind = self.kind_of_unknown(&role).or_else(|| PiiKind::of_value(&v));
                            (self.pii.action(self.pivot.table, &role, kind), kind)
                        }
                    };
                    self.pii.enforce(action, kind, v)
                }
            };
            long.push(RolePair {
                position: position as i32,
                role,
                value: stored,
            });
        }
        Ok(())
    }

    /// [`PiiKind::of_name`] of an unknown role, remembered for the batch.
    fn kind_of_unknown(&self, role: &str) -> Option<PiiKind> {
        let mut memo = self.unknown.borrow_mut();
        if let Some(kind) = memo.get(role) {
            return *kind;
        }
        let kind = PiiKind::of_name(role);
        if memo.len() < UNKNOWN_NAMES_KEPT {
            memo.insert(role.into(), kind);
        }
        kind
    }

    // The value stays a `Cow` so that a borrowed one is kept without copying.
    #[allow(clippy::ptr_arg)]
    fn fill<'a>(&self, r: &Role, v: &Cow<'a, str>, time: &TimeParser, out: &mut [Cell<'a>]) -> Result<(), String> {
        let why = |e: String| format!("{} role {}: {e}", self.pivot.list, r.column);
        match r.ty {
            RoleType::Text => out[0] = Cell::Text(v.clone()),
            RoleType::Int32 => {
                let t = v.trim();
                let n = t.parse::<i32>().map_err(|_| why("not a 32-bit integer".into()))?;
                out[0] = Cell::Int32(n);
            }
            RoleType::Bool => {
                let b = super::lenient::parse_bool(v).ok_or_else(|| why("not a boolean".into()))?;
                out[0] = Cell::Bool(b);
            }
            RoleType::Timestamp => out[0] = Cell::Timestamp(time.parse(v).map_err(why)?),
            RoleType::TimeRange { .. } => {
                let (a, b) = time.parse_range(v).map_err(why)?;
                out[0] = Cell::Timestamp(a);
                out[1] = Cell::Timestamp(b);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::pii::{PiiKey, PiiMode};
    use std::collections::HashMap;

    const ROLES: &[Role] = &[
        Role::text(&["sellchannel"], "sell_channel"),
        Role::typed(&["scoringlevel"], "scoring_level", RoleType::Int32),
        Role::typed(&["isnewappointment"], "is_new_appointment", RoleType::Bool),
        Role::typed(
            &["validforappointment"],
            "valid_for_appointment_start",
            RoleType::TimeRange {
                end: "valid_for_appointment_end",
            },
        ),
        Role::personal(&["email"], "email", PiiKind::Email),
        Role::personal(&["firstname"], "first_name", PiiKind::Name),
    ];
    const PIVOT: RolePivot = RolePivot {
        list: "relatedParty",
        table: "appointments",
        roles: ROLES,
    };

    fn pii() -> Pii {
        Pii::new(PiiMode::Hash, Some(&PiiKey::secret(b"k".to_vec())), HashMap::new()).unwrap()
    }

    fn pairs<'a>(v: &[(&'a str, &'a str)]) -> Vec<(Cow<'a, str>, Option<Cow<'a, str>>)> {
        v.iter()
            .map(|(r, v)| (Cow::Borrowed(*r), Some(Cow::Borrowed(*v))))
            .collect()
    }

    #[test]
    fn the_role_index_finds_every_spelling_as_sent_and_nothing_else() {
        let index = RoleIndex::new(
            [
                ("connectioninstallationflow", 0),
                ("connectioninstallationfloor", 1),
                ("email", 2),
                ("emailaddress", 3),
                ("a", 4),
            ]
            .into_iter(),
        );
        assert_eq!(index.get("connectionInstallationFlow"), Some(0));
        assert_eq!(index.get("connection_installation_floor"), Some(1));
        assert_eq!(index.get("E-Mail"), Some(2));
        assert_eq!(index.get("email address"), Some(3));
        assert_eq!(index.get("A"), Some(4));
        // The same first 24 bytes, or the same hash words, but another spelling.
        assert_eq!(index.get("connectioninstallationflo"), None);
        assert_eq!(index.get("connectioninstallationflowx"), None);
        assert_eq!(index.get("emai"), None);
        assert_eq!(index.get(""), None);
        assert_eq!(index.get(&"x".repeat(ROLE_MAX + 1)), None);
        // Every pivot of every source: each spelling finds its own role.
        for source in crate::sources::SOURCES {
            for pivot in source.pivots() {
                let index = RoleIndex::of(pivot);
                for (i, r) in pivot.roles.iter().enumerate() {
                    for s in r.sent_as {
                        assert_eq!(index.get(&s.to_uppercase()), Some(i), "{}: {s}", pivot.list);
                    }
                }
            }
        }
    }

    #[test]
    fn aliases_are_written_normalized() {
        for r in ROLES {
            for s in r.sent_as {
                let mut buf = [0u8; ROLE_MAX];
                assert_eq!(normalize_role(s, &mut buf).unwrap(), s.as_bytes());
            }
        }
    }

    #[test]
    fn pivots_typed_values_in_any_order_and_spelling() {
        let p = pii();
        let bound = PIVOT.bind(&p);
        let (mut cells, mut long) = (Vec::new(), Vec::new());
        let input = pairs(&[
            ("isNewAppointment", "false"),
            ("scoring_level", "1"),
            ("sell_channel", "mysim"),
            ("validForAppointment", "2023-10-03T15:00:00 - 2023-10-03T18:00:00"),
        ]);
        bound
            .apply(input, &TimeParser::default(), &mut cells, Some(&mut long))
            .unwrap();
        assert_eq!(cells.len(), PIVOT.column_specs().len());
        assert_eq!(cells[0], Cell::Text("mysim".into()));
        assert_eq!(cells[1], Cell::Int32(1));
        assert_eq!(cells[2], Cell::Bool(false));
        assert!(matches!(cells[3], Cell::Timestamp(_)) && matches!(cells[4], Cell::Timestamp(_)));
        assert_eq!(cells[5], Cell::Null, "missing role is null");
        assert_eq!(long.len(), 4);
        assert_eq!(long[1].role, "scoring_level");
        assert_eq!(long[1].position, 1);
    }

    #[test]
    fn without_its_long_table_a_pivot_fills_and_rejects_alike() {
        let p = pii();
        let bound = PIVOT.bind(&p);
        let good = [
            ("sell_channel", "mysim"),
            ("category", "installation"),
            ("scoring_level", "1"),
            ("email", "Ana@example.com"),
        ];
        let bad = [("sell_channel", "mysim"), ("scoring_level", "high")];
        for input in [&good[..], &bad[..]] {
            let (mut with, mut long) = (Vec::new(), Vec::new());
            let kept = bound.apply(pairs(input), &TimeParser::default(), &mut with, Some(&mut long));
            let mut without = Vec::new();
            let alone = bound.apply(pairs(input), &TimeParser::default(), &mut without, None);
            assert_eq!(kept, alone, "{input:?}");
            if kept.is_ok() {
                assert_eq!(with, without, "{input:?}");
                assert_eq!(long.len(), input.len());
            }
        }
        assert!(
            bound
                .apply(pairs(&bad), &TimeParser::default(), &mut Vec::new(), None)
                .is_err()
        );
    }

    #[test]
    fn unknown_roles_are_kept_in_the_long_table_only() {
        let p = pii();
        let (mut cells, mut long) = (Vec::new(), Vec::new());
        PIVOT
            .bind(&p)
            .apply(
                pairs(&[("category", "installation")]),
                &TimeParser::default(),
                &mut cells,
                Some(&mut long),
            )
            .unwrap();
        assert!(cells.iter().all(|c| *c == Cell::Null));
        assert_eq!(long[0].value.as_deref(), Some("installation"));
        // Kept as it came: borrowed from the input, not copied.
        assert!(matches!(long[0].value, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn unknown_roles_are_classified_alike_every_time_and_past_the_memo() {
        let p = pii();
        let bound = PIVOT.bind(&p);
        // More distinct unknown names than the memo keeps, then the personal ones again.
        let fillers: Vec<String> = (0..UNKNOWN_NAMES_KEPT + 10).map(|i| format!("extra{i}")).collect();
        let mut names: Vec<&str> = vec!["contactPhone", "campaign", "telefono_movil"];
        names.extend(fillers.iter().map(String::as_str));
        names.extend(["contactPhone", "campaign", "telefono_movil", "apellidos"]);
        for name in names {
            let (mut cells, mut long) = (Vec::new(), Vec::new());
            bound
                .apply(
                    pairs(&[(name, "600")]),
                    &TimeParser::default(),
                    &mut cells,
                    Some(&mut long),
                )
                .unwrap();
            let kind = PiiKind::of_name(name).or_else(|| PiiKind::of_value("600"));
            let action = p.action("appointments", name, kind);
            let expected = p.enforce(action, kind, Cow::Borrowed("600"));
            assert_eq!(long[0].value.as_deref(), expected.as_deref(), "{name}");
            assert_eq!(long[0].value.as_deref() == Some("600"), kind.is_none(), "{name}");
        }
        assert_eq!(bound.unknown.borrow().len(), UNKNOWN_NAMES_KEPT);
        let phone = bound.kind_of_unknown("contactPhone");
        assert_eq!(phone, Some(PiiKind::Phone));
        assert_eq!(bound.kind_of_unknown("campaign"), None);
    }

    #[test]
    fn personal_values_are_hashed_or_dropped_in_the_long_table() {
        let p = pii();
        let (mut cells, mut long) = (Vec::new(), Vec::new());
        let input = pairs(&[("email", "test@pe.es"), ("firstName", "Raúl"), ("contactPhone", "600")]);
        PIVOT
            .bind(&p)
            .apply(input, &TimeParser::default(), &mut cells, Some(&mut long))
            .unwrap();
        assert_eq!(
            long[0].value.as_deref(),
            Some(p.hash(PiiKind::Email, "test@pe.es").as_str())
        );
        assert_eq!(long[1].value, None, "names are dropped");
        assert_eq!(long[2].value.as_deref(), Some(p.hash(PiiKind::Phone, "600").as_str()));
        // The wide cell keeps the raw value: the column builder applies the policy.
        assert_eq!(cells[5], Cell::Text("test@pe.es".into()));
    }

    #[test]
    fn unknown_roles_holding_personal_data_are_hashed_or_dropped() {
        let p = pii();
        let (mut cells, mut long) = (Vec::new(), Vec::new());
        let input = pairs(&[
            ("telefono", "611222333"),
            ("apellidos", "Fernández López"),
            ("iban", "ES91 2100 0418 4502 0005 1332"),
            ("ref2", "ana.b@correo.es"),
            ("otro", "+34 611 222 333"),
            ("doc", "X1234567L"),
            ("category", "installation"),
        ]);
        PIVOT
            .bind(&p)
            .apply(input, &TimeParser::default(), &mut cells, Some(&mut long))
            .unwrap();
        let values: Vec<Option<&str>> = long.iter().map(|l| l.value.as_deref()).collect();
        assert_eq!(values[0], Some(p.hash(PiiKind::Phone, "611222333").as_str()));
        assert_eq!(values[1], None, "surnames are dropped");
        assert_eq!(
            values[2],
            Some(p.hash(PiiKind::BankAccount, "ES91 2100 0418 4502 0005 1332").as_str())
        );
        assert_eq!(values[3], Some(p.hash(PiiKind::Email, "ana.b@correo.es").as_str()));
        assert_eq!(values[4], Some(p.hash(PiiKind::Phone, "+34 611 222 333").as_str()));
        assert_eq!(values[5], Some(p.hash(PiiKind::Document, "X1234567L").as_str()));
        assert_eq!(values[6], Some("installation"));
        let dropping = Pii::drop_all();
        let (mut cells, mut long) = (Vec::new(), Vec::new());
        PIVOT
            .bind(&dropping)
            .apply(
                pairs(&[("ref2", "ana.b@correo.es")]),
                &TimeParser::default(),
                &mut cells,
                Some(&mut long),
            )
            .unwrap();
        assert_eq!(long[0].value, None, "drop mode drops what would be hashed");
    }

    #[test]
    fn first_occurrence_wins_in_the_wide_column() {
        let p = pii();
        let (mut cells, mut long) = (Vec::new(), Vec::new());
        let input = pairs(&[("sellchannel", "a"), ("sellchannel", "b")]);
        PIVOT
            .bind(&p)
            .apply(input, &TimeParser::default(), &mut cells, Some(&mut long))
            .unwrap();
        assert_eq!(cells[0], Cell::Text("a".into()));
        assert_eq!(long.len(), 2);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error_naming_the_role() {
        let p = pii();
        let (mut cells, mut long) = (Vec::new(), Vec::new());
        let err = PIVOT
            .bind(&p)
            .apply(
                pairs(&[("scoring_level", "high")]),
                &TimeParser::default(),
                &mut cells,
                Some(&mut long),
            )
            .unwrap_err();
        assert!(
            err.contains("scoring_level") && err.contains("not a 32-bit integer"),
            "{err}"
        );
        assert!(!err.contains("high"), "the value is never quoted: {err}");
    }

    mod properties {
        //! Property tests of the pivots: any pairs, in any spelling, never panic, fill exactly
        //! one cell per wide column and one long row per pair, and no personal value (by the
        //! role's name or the value's form) reaches a long row unhashed.
        use super::*;
        use proptest::prelude::*;

        fn config() -> ProptestConfig {
            let cases = std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(128);
            ProptestConfig {
                cases,
                failure_persistence: None,
                ..ProptestConfig::default()
            }
        }

        fn role() -> impl Strategy<Value = String> {
            prop_oneof![
                proptest::sample::select(vec![
                    "scoring_level",
                    "scoringLevel",
                    "SELL-CHANNEL",
                    "is_new_appointment",
                    "validForAppointment",
                    "email",
                    "firstName",
                    "telefono",
                    "apellidos",
                    "dni",
                    "iban",
                    "correo",
                    "category",
                    "",
                ])
                .prop_map(str::to_string),
                "[A-Za-z_ -]{0,12}",
                ".{0,80}",
            ]
        }

        fn value() -> impl Strategy<Value = Option<String>> {
            proptest::option::of(prop_oneof![
                proptest::sample::select(vec![
                    "1",
                    "-7",
                    "99999999999",
                    "true",
                    "maybe",
                    "2023-10-03T15:00:00 - 2023-10-03T18:00:00",
                    "2023-13-45",
                    "ana@correo.es",
                    "+34 611 222 333",
                    "12345678Z",
                    "ES91 2100 0418 4502 0005 1332",
                    "",
                ])
                .prop_map(str::to_string),
                ".{0,40}",
            ])
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_pairs_pivot_without_panicking_and_without_raw_personal_values(
                input in proptest::collection::vec((role(), value()), 0..20),
            ) {
                let p = pii();
                let bound = PIVOT.bind(&p);
                let (mut cells, mut long) = (Vec::new(), Vec::new());
                let pairs: Vec<(Cow<'_, str>, Option<Cow<'_, str>>)> = input
                    .iter()
                    .map(|(r, v)| (Cow::Borrowed(r.as_str()), v.as_deref().map(Cow::Borrowed)))
                    .collect();
                match bound.apply(pairs, &TimeParser::default(), &mut cells, Some(&mut long)) {
                    Ok(()) => {
                        prop_assert_eq!(cells.len(), PIVOT.column_specs().len());
                        prop_assert_eq!(long.len(), input.len());
                        for (l, (r, v)) in long.iter().zip(&input) {
                            let Some(v) = v else { continue };
                            let known_personal = bound.index.get(r).and_then(|i| ROLES[i].pii).is_some();
                            let unknown_personal = bound.index.get(r).is_none()
                                && (PiiKind::of_name(r).is_some_and(|k| k.default_action() != PiiAction::Keep)
                                    || PiiKind::of_value(v).is_some());
                            if known_personal || unknown_personal {
                                prop_assert_ne!(l.value.as_deref(), Some(v.as_str()), "{} = {} kept raw", r, v);
                            }
                        }
                    }
                    // A typed role with a value of another type: the reason names the role.
                    Err(why) => prop_assert!(why.starts_with("relatedParty role"), "{}", why),
                }
            }

            #[test]
            fn a_spelling_is_the_role_normalized_byte_by_byte(
                role in prop_oneof![
                    "[A-Za-z_ -]{0,80}",
                    "[a-zA-Z0-9_\\- ñÁ\u{0}]{56,72}",
                    ".{0,80}",
                ],
            ) {
                let mut buf = [0u8; ROLE_MAX];
                let expected = normalize_role(&role, &mut buf).map(<[u8]>::to_vec);
                let got = Spelling::of(&role).map(|s| {
                    s.words.iter().flat_map(|w| w.to_le_bytes()).take(s.len).collect::<Vec<u8>>()
                });
                prop_assert_eq!(&got, &expected);
                // Past its length a spelling is zero, so equal spellings have equal words.
                if let Some(s) = Spelling::of(&role) {
                    let padding = s.words.iter().flat_map(|w| w.to_le_bytes()).skip(s.len);
                    prop_assert!(padding.into_iter().all(|b| b == 0));
                }
            }
        }
    }
}
