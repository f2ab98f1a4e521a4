//! Field types that accept what the APIs really send: numbers as strings, ids as numbers.
//!
//! The seed documents type `customer_num` as an integer and `subscription_device_id` as a
//! string, and the appointments API sends `"80"` for a duration: these types accept either
//! form and keep the value exact. Strings borrow from the input when they have no escapes.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::columns::{MONEY_SCALE, Money};

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

/// Parses a decimal amount exactly into units of 10^-4; more places than that is an error
/// rather than a silent rounding.
pub fn parse_money(text: &str) -> Result<Money, String> {
    let t = text.trim();
    let d = rust_decimal::Decimal::from_str(t).map_err(|_| format!("{text:?} is not an amount"))?;
    let d = d.normalize();
    if d.scale() as usize > MONEY_SCALE {
        return Err(format!("{text:?} has more than {MONEY_SCALE} decimal places"));
    }
    let factor = 10i128.pow((MONEY_SCALE as u32) - d.scale());
    let units = d
        .mantissa()
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if units.unsigned_abs() >= 10u128.pow(super::columns::MONEY_PRECISION as u32) {
        return Err(format!("{text:?} is too large"));
    }
    Ok(Money(units))
}

/// An amount sent as a JSON number or a numeric string, kept exact (binary floats are read
/// back through their shortest decimal form, which is the literal that was sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Amount(pub Money);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount(Money(v as i128 * 10i128.pow(MONEY_SCALE as u32))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount(Money(v as i128 * 10i128.pow(MONEY_SCALE as u32))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
                if !v.is_finite() {
                    return Err(E::custom(format!("{v} is not an amount")));
                }
                parse_money(ryu::Buffer::new().format(v)).map(Amount).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                parse_money(v).map(Amount).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
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

    fn probe(json: &str) -> Probe<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numbers_as_strings_and_strings_as_numbers() {
        let p = probe(r#"{"t": 214748364, "i": "80", "m": "20.50", "b": "true"}"#);
        assert_eq!(p.t.unwrap().as_str(), "214748364");
        assert_eq!(p.i, Some(Int32(80)));
        assert_eq!(p.m, Some(Amount(Money(205000))));
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

    #[test]
    fn float_amounts_are_exact() {
        assert_eq!(probe(r#"{"m": 24.5}"#).m, Some(Amount(Money(245000))));
        assert_eq!(probe(r#"{"m": 0.1}"#).m, Some(Amount(Money(1000))));
        assert_eq!(probe(r#"{"m": 16.5289}"#).m, Some(Amount(Money(165289))));
        assert_eq!(probe(r#"{"m": 6}"#).m, Some(Amount(Money(60000))));
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(serde_json::from_str::<Probe>(r#"{"i": "abc"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"m": "1.23456"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"b": "maybe"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"i": 3000000000}"#).is_err());
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
