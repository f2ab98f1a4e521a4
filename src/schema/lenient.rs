//! Field types that accept what the APIs really send: numbers as strings, ids as numbers.
//!
//! The seed documents type `customer_num` as an integer and `subscription_device_id` as a
//! string, and the appointments API sends `"80"` for a duration: these types accept either
//! form and keep the value exact. Strings borrow from the input when they have no escapes.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::columns::{MONEY_PRECISION, MONEY_SCALE, Money};

/// Text sent as a string, a number or a boolean; numbers keep their literal digits.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'a> Text<'a> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'a> From<Text<'a>> for Cow<'a, str> {
    fn from(t: Text<'a>) -> Self {
        t.0
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a number")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(itoa::Buffer::new().format(v).to_owned())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(itoa::Buffer::new().format(v).to_owned())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(format_float(v))))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(if v { "true" } else { "false" })))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

/// An optional [`Text`] (`null` or absent: `None`) read in one dispatch on the value's
/// first byte, where `Option<Text>` takes two (serde's `Option` looks for `null`, then
/// `Text` looks at the value again); for `#[serde(default, deserialize_with = "opt_text")]`
/// on the sources' optional text fields.
pub fn opt_text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Text<'a>>, D::Error> {
    struct OptText;
    impl<'de> Visitor<'de> for OptText {
        type Value = Option<Text<'de>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            // Text's own words, so reject reasons read as with `Option<Text>`.
            TextVisitor.expecting(f)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            Text::deserialize(d).map(Some)
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            TextVisitor.visit_borrowed_str(v).map(Some)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            TextVisitor.visit_str(v).map(Some)
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            TextVisitor.visit_string(v).map(Some)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            TextVisitor.visit_i64(v).map(Some)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            TextVisitor.visit_u64(v).map(Some)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            TextVisitor.visit_f64(v).map(Some)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            TextVisitor.visit_bool(v).map(Some)
        }
    }
    d.deserialize_any(OptText)
}

/// Room a role list's vector starts with: serde's own starts empty and doubles, so a list of
/// twenty pairs cost four allocations and three copies.
const LIST_ROOM: usize = 16;

/// An optional JSON list (`null` or absent: `None`) read into a vector that starts with room
/// for [`LIST_ROOM`] elements; for `#[serde(default, deserialize_with = ...)]` on the long
/// role lists.
pub fn list<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct List<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for List<T> {
        type Value = Option<Vec<T>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            // serde's own words for a list, so reject reasons read as before.
            f.write_str("a sequence")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(LIST_ROOM).min(LIST_ROOM));
            while let Some(v) = seq.next_element()? {
                out.push(v);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_option(List(std::marker::PhantomData))
}

/// The shortest decimal text that reads back as `v` (integral values without `.0`).
fn format_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        itoa::Buffer::new().format(v as i64).to_owned()
    } else {
        ryu::Buffer::new().format(v).to_owned()
    }
}

macro_rules! lenient_int {
    ($name:ident, $t:ty, $what:literal) => {
        #[doc = concat!("An integer sent as a number or a numeric string (", $what, ").")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
        pub struct $name(pub $t);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($what)
                    }
                    // Reasons name the expected type, never the value (it may be personal data).
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        <$t>::try_from(v)
                            .map($name)
                            .map_err(|_| E::custom(concat!("out of range for ", $what)))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        <$t>::try_from(v)
                            .map($name)
                            .map_err(|_| E::custom(concat!("out of range for ", $what)))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$name, E> {
                        integral::<$t>(v)
                            .map($name)
                            .ok_or_else(|| E::custom(concat!("not ", $what)))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        let t = v.trim();
                        t.parse::<$t>()
                            .ok()
                            // "80.0" is still an integer.
                            .or_else(|| t.parse::<f64>().ok().and_then(integral::<$t>))
                            .map($name)
                            .ok_or_else(|| E::custom(concat!("not ", $what)))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

/// `v` as an integer of type `T` when it is integral and in range; `None` rather than a
/// saturated bound (`1e30 as i64` would be `i64::MAX`).
fn integral<T: TryFrom<i64>>(v: f64) -> Option<T> {
    // i64::MAX is not a float: 2^63 is the first float past it.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if v.fract() != 0.0 || !(-LIMIT..LIMIT).contains(&v) {
        return None;
    }
    T::try_from(v as i64).ok()
}

lenient_int!(Int32, i32, "a 32-bit integer");
lenient_int!(Int64, i64, "a 64-bit integer");

/// A boolean sent as `true`/`false`, `"true"`/`"false"`, `1`/`0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Bool(pub bool);

/// Parses the text forms of a boolean.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        t if t.eq_ignore_ascii_case("true") || t == "1" => Some(true),
        t if t.eq_ignore_ascii_case("false") || t == "0" => Some(false),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bool, E> {
                Ok(Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bool, E> {
                match v {
                    0 => Ok(Bool(false)),
                    1 => Ok(Bool(true)),
                    _ => Err(E::custom("not a boolean")),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bool, E> {
                self.visit_i64(v as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bool, E> {
                parse_bool(v).map(Bool).ok_or_else(|| E::custom("not a boolean"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A float (weights, volumes) sent as a number or a numeric string.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Float(pub f64);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Float;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Float, E> {
                finite(v).ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Float, E> {
                v.trim()
                    .parse()
                    .ok()
                    .and_then(finite)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
        }
        d.deserialize_any(V)
    }
}

/// `v` unless it is infinite or not a number ("1e999" parses as infinity).
fn finite(v: f64) -> Option<Float> {
    v.is_finite().then_some(Float(v))
}

thread_local! {
    /// Amounts this thread rounded since the engine last asked (see [`take_rounded`]).
    static ROUNDED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many amounts this thread rounded to [`MONEY_SCALE`] places since the last call, and
/// resets the count. The normalize engine asks after each item, so rounding is reported per
/// source without threading a counter through every source's model.
pub fn take_rounded() -> u64 {
    ROUNDED.with(|r| r.replace(0))
}

/// Parses a decimal amount from its text (a JSON number's literal, or a numeric string) into
/// units of 10^-[`MONEY_SCALE`], exactly, never through a binary float.
///
/// Digits past the tenth decimal place are rounded half-even (and counted, see
/// [`take_rounded`]): the APIs send fees as doubles, and a double's 16th or 17th significant
/// digit (`0.30000000000000004`) is noise of the binary float that produced it, never a
/// fraction of a cent anybody charged; rejecting it would send valid fees to `_rejects`, and
/// half-even rounding does not bias sums. A value that fits no `Decimal(38, 10)` (more than 28
/// digits before the point) is an error: the record is rejected, the run goes on.
pub fn parse_money(text: &str) -> Result<Money, String> {
    let t = text.trim();
    // Reasons name what was expected, never the value (DESIGN.md 3.2).
    let bad = || "not an amount".to_string();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => {
            let e: i64 = body[i + 1..].parse().map_err(|_| bad())?;
            (&body[..i], e)
        }
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(bad());
    }
    // value = digits * 10^(exponent - fraction length); leading zeros carry no value.
    let digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .skip_while(|d| *d == 0)
        .collect();
    let shift = exponent
        .checked_sub(frac_part.len() as i64)
        .and_then(|e| e.checked_add(MONEY_SCALE as i64))
        .ok_or_else(bad)?;
    let too_large = || format!("does not fit Decimal({MONEY_PRECISION}, {MONEY_SCALE})");
    let limit = 10i128.pow(MONEY_PRECISION as u32);
    let (kept, dropped) = if shift >= 0 {
        (digits.as_slice(), &[][..])
    } else {
        let cut = digits.len().saturating_sub(shift.unsigned_abs() as usize);
        digits.split_at(cut)
    };
    let mut units: i128 = 0;
    for d in kept {
        units = units
            .checked_mul(10)
            .and_then(|u| u.checked_add(*d as i128))
            .ok_or_else(too_large)?;
        if units >= limit {
            return Err(too_large());
        }
    }
    if shift > 0 {
        let factor = 10i128.checked_pow(u32::try_from(shift).map_err(|_| too_large())?);
        units = factor.and_then(|f| units.checked_mul(f)).ok_or_else(too_large)?;
        if units >= limit {
            return Err(too_large());
        }
    }
    if dropped.iter().any(|d| *d != 0) {
        ROUNDED.with(|r| r.set(r.get() + 1));
        // Digits cut past the scale: half-even on the first one, the rest break the tie. When
        // the value is smaller than the scale altogether, the first dropped digit is the one
        // just below the last place only if no zeros stand between them.
        let missing = (shift.unsigned_abs() as usize).saturating_sub(digits.len());
        let (first, rest) = match (missing, dropped.split_first()) {
            (0, Some((first, rest))) => (*first, rest),
            _ => (0, dropped),
        };
        let above_half = first > 5 || (first == 5 && rest.iter().any(|d| *d != 0));
        let tie = first == 5 && rest.iter().all(|d| *d == 0);
        if above_half || (tie && units % 2 == 1) {
            units += 1;
        }
        if units >= limit {
            return Err(too_large());
        }
    }
    Ok(Money(if negative { -units } else { units }))
}

/// An amount sent as a JSON number or a numeric string, read from the JSON text itself (a
/// number's literal digits, never the binary float serde would make of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Amount(pub Money);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The raw JSON text of the value: `16.666667`, `"20.50"`, `1e-3`...
        let raw = <&'de serde_json::value::RawValue>::deserialize(d)?;
        let text = raw.get();
        let literal = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(inner) => inner,
            None => text,
        };
        parse_money(literal).map(Amount).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(bound(deserialize = "'de: 'a"))]
    struct Probe<'a> {
        t: Option<Text<'a>>,
        i: Option<Int32>,
        m: Option<Amount>,
        b: Option<Bool>,
    }

    #[derive(Deserialize)]
    #[serde(bound(deserialize = "'de: 'a"))]
    struct OneDispatch<'a> {
        #[serde(default, deserialize_with = "opt_text")]
        t: Option<Text<'a>>,
    }

    #[derive(Deserialize)]
    #[serde(bound(deserialize = "'de: 'a"))]
    struct TwoDispatches<'a> {
        t: Option<Text<'a>>,
    }

    #[test]
    fn an_optional_text_in_one_dispatch_reads_as_option_of_text() {
        let cases = [
            r#"{}"#,
            r#"{"t": null}"#,
            r#"{"t": "MYSIM_1"}"#,
            r#"{"t": "Sánchez \"López\""}"#,
            r#"{"t": ""}"#,
            r#"{"t": 639376323}"#,
            r#"{"t": -7}"#,
            r#"{"t": 12.50}"#,
            r#"{"t": 1e400}"#,
            r#"{"t": true}"#,
            r#"{"t": {"a": 1}}"#,
            r#"{"t": [1]}"#,
            r#"{"t": nul}"#,
            r#"{"t": "unterminated}"#,
        ];
        for json in cases {
            let one = serde_json::from_str::<OneDispatch<'_>>(json).map(|p| p.t);
            let two = serde_json::from_str::<TwoDispatches<'_>>(json).map(|p| p.t);
            match (one, two) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "{json}");
                    // Borrowed when the input holds the text as is, like serde's own.
                    let borrowed = |t: &Option<Text<'_>>| matches!(t, Some(Text(Cow::Borrowed(_))));
                    assert_eq!(borrowed(&a), borrowed(&b), "{json}");
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{json}"),
                (a, b) => panic!(
                    "{json}: {:?} against {:?}",
                    a.map(|t| t.is_some()),
                    b.map(|t| t.is_some())
                ),
            }
        }
    }

    fn probe(json: &str) -> Probe<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[derive(Deserialize)]
    struct Lists {
        #[serde(default, deserialize_with = "list")]
        l: Option<Vec<i64>>,
    }

    #[test]
    fn a_list_reads_as_serde_reads_an_optional_vector() {
        let read = |json: &str| serde_json::from_str::<Lists>(json).map(|p| p.l);
        assert_eq!(read("{}").ok(), Some(None));
        assert_eq!(read(r#"{"l": null}"#).ok(), Some(None));
        assert_eq!(read(r#"{"l": []}"#).ok(), Some(Some(vec![])));
        let long: Vec<i64> = (0..40).collect();
        assert_eq!(read(&format!(r#"{{"l": {long:?}}}"#)).ok(), Some(Some(long)));
        let err = read(r#"{"l": "x"}"#).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("expected a sequence"), "{err}");
    }

    #[test]
    fn numbers_as_strings_and_strings_as_numbers() {
        let p = probe(r#"{"t": 214748364, "i": "80", "m": "20.50", "b": "true"}"#);
        assert_eq!(p.t.unwrap().as_str(), "214748364");
        assert_eq!(p.i, Some(Int32(80)));
        assert_eq!(p.m, Some(Amount(Money(205_000_000_000))));
        assert_eq!(p.b, Some(Bool(true)));
    }

    #[test]
    fn leading_zeros_survive_as_text() {
        assert_eq!(probe(r#"{"t": "00833"}"#).t.unwrap().as_str(), "00833");
    }

    #[test]
    fn text_borrows_when_it_can() {
        let p = probe(r#"{"t": "plain"}"#);
        assert!(matches!(p.t.unwrap().0, Cow::Borrowed(_)));
    }

    /// `units` of 10^-10 as `Some(Amount)`.
    fn amount(units: i128) -> Option<Amount> {
        Some(Amount(Money(units)))
    }

    #[test]
    fn float_amounts_are_read_from_their_text() {
        assert_eq!(probe(r#"{"m": 24.5}"#).m, amount(245_000_000_000));
        assert_eq!(probe(r#"{"m": 0.1}"#).m, amount(1_000_000_000));
        assert_eq!(probe(r#"{"m": 16.5289}"#).m, amount(165_289_000_000));
        assert_eq!(probe(r#"{"m": 6}"#).m, amount(60_000_000_000));
        // The seeds type fees as double: these are valid, to the tenth place.
        assert_eq!(probe(r#"{"m": 16.666667}"#).m, amount(166_666_670_000));
        assert_eq!(probe(r#"{"m": "16.6666666667"}"#).m, amount(166_666_666_667));
        assert_eq!(probe(r#"{"m": 1e-3}"#).m, amount(10_000_000));
        assert_eq!(probe(r#"{"m": 1.5E3}"#).m, amount(15_000_000_000_000));
        assert_eq!(probe(r#"{"m": -7.25}"#).m, amount(-72_500_000_000));
        // A 22-digit integer fits Decimal(38, 10): 28 digits before the point do.
        assert_eq!(probe(r#"{"m": 1000000000000000000000}"#).m, amount(10i128.pow(31)));
        // Digits a double cannot hold are kept: the text is read, not the float.
        assert_eq!(
            probe(r#"{"m": 1234567890123456789.0123456789}"#).m,
            amount(12_345_678_901_234_567_890_123_456_789)
        );
    }

    #[test]
    fn digits_past_the_tenth_place_are_rounded_half_even_and_counted() {
        take_rounded();
        assert_eq!(probe(r#"{"m": 0.30000000000000004}"#).m, amount(3_000_000_000));
        assert_eq!(take_rounded(), 1);
        // Ties go to the even unit; anything above the tie rounds up.
        assert_eq!(parse_money("0.00000000005"), Ok(Money(0)));
        assert_eq!(parse_money("0.00000000015"), Ok(Money(2)));
        assert_eq!(parse_money("0.000000000250000001"), Ok(Money(3)));
        assert_eq!(parse_money("-0.00000000015"), Ok(Money(-2)));
        assert_eq!(parse_money("0.000000000049"), Ok(Money(0)));
        // Far below the last place: zero, never a carry from a distant digit.
        assert_eq!(parse_money("0.0000000000009"), Ok(Money(0)));
        assert_eq!(parse_money("1e-400"), Ok(Money(0)));
        assert_eq!(take_rounded(), 7);
        // Trailing zeros past the tenth place are not a rounding.
        assert_eq!(parse_money("2.500000000000"), Ok(Money(25_000_000_000)));
        assert_eq!(take_rounded(), 0);
    }

    #[test]
    fn amounts_that_fit_no_decimal_38_10_are_errors_naming_the_type() {
        for too_large in [
            "100000000000000000000000000000",
            "10000000000000000000000000000",
            "1e28",
            "1e400",
            "-99999999999999999999999999999.5",
            "9999999999999999999999999999.99999999999",
        ] {
            let e = parse_money(too_large).unwrap_err();
            assert!(e.contains("does not fit Decimal(38, 10)"), "{too_large}: {e}");
        }
        // The largest value that fits.
        assert_eq!(
            parse_money("9999999999999999999999999999.9999999999"),
            Ok(Money(10i128.pow(38) - 1))
        );
        let e = serde_json::from_str::<Probe>(r#"{"m": 100000000000000000000000000000}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("does not fit"), "{e}");
        for not_amount in ["", ".", "-", "1,5", "NaN", "1e", "12a", "true"] {
            assert!(parse_money(not_amount).is_err(), "{not_amount:?}");
        }
        assert!(serde_json::from_str::<Probe>(r#"{"m": true}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"m": {"total": 1}}"#).is_err());
    }

    #[test]
    fn numbers_beyond_the_type_are_errors_not_saturated_values() {
        #[derive(Deserialize)]
        struct Wide {
            n: Option<Int64>,
            f: Option<Float>,
        }
        for bad in [
            r#"{"n": 1234567890123456789012}"#,
            r#"{"n": 9223372036854775808}"#,
            r#"{"n": "1e30"}"#,
            r#"{"n": "9223372036854775808"}"#,
            r#"{"n": 1.5}"#,
            r#"{"f": "1e999"}"#,
            r#"{"f": "NaN"}"#,
        ] {
            assert!(serde_json::from_str::<Wide>(bad).is_err(), "{bad}");
        }
        let ok: Wide = serde_json::from_str(r#"{"n": "-9223372036854775808", "f": "2.5"}"#).unwrap();
        assert_eq!(ok.n, Some(Int64(i64::MIN)));
        assert_eq!(ok.f, Some(Float(2.5)));
        assert_eq!(probe(r#"{"i": "80.0"}"#).i, Some(Int32(80)));
        assert!(serde_json::from_str::<Probe>(r#"{"i": 2147483648}"#).is_err());
    }

    #[test]
    fn errors_name_the_type_and_never_the_value() {
        for bad in [
            r#"{"i": "Calle Mayor 5"}"#,
            r#"{"i": 99999999999}"#,
            r#"{"b": "Calle Mayor 5"}"#,
        ] {
            let err = serde_json::from_str::<Probe>(bad).err().unwrap().to_string();
            assert!(!err.contains("Calle") && !err.contains("99999"), "{err}");
            assert!(err.contains("not a") || err.contains("out of range"), "{err}");
        }
    }

    #[test]
    fn nulls_are_none() {
        let p = probe(r#"{"t": null, "i": null, "m": null, "b": null}"#);
        assert!(p.t.is_none() && p.i.is_none() && p.m.is_none() && p.b.is_none());
    }
}
