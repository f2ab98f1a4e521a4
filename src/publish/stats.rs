//! Delta file statistics from a Parquet footer, and the `Add` action for a pre-written file.
//!
//! deltalake 1.1 has the same code (`writer::stats::create_add`,
//! `writer::stats::stats_from_parquet_metadata`) but both are `pub(crate)`: there is no public
//! helper that turns a Parquet file into an `Add` with statistics. This module is the
//! replacement, with three deliberate differences from delta-rs's own:
//! - decimals are written as exact JSON number literals (delta-rs goes through `f64`, which
//!   cannot hold a Decimal(38,10) and may produce a max below the true max);
//! - timestamps are rounded outwards to milliseconds (min down, max up), so the bounds stay
//!   bounds after the millisecond truncation that the Delta protocol implies (delta-rs floors both);
//! - strings longer than [`MAX_STRING_STAT_CHARS`] keep a prefix as min and no max (as Spark
//!   truncates), so a bound is never wrong.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate};
use deltalake::kernel::Add;
use deltalake::parquet::basic::{LogicalType, TimeUnit, Type as PhysicalType};
use deltalake::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use deltalake::parquet::file::statistics::Statistics;
use deltalake::parquet::schema::types::ColumnDescriptor;

/// Strings longer than this keep only a prefix as their min, and no max.
pub const MAX_STRING_STAT_CHARS: usize = 32;

/// A file whose footer cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The file cannot be opened.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The footer is not valid Parquet.
    #[error("invalid Parquet footer in {path}: {source}")]
    Parquet {
        /// The file.
        path: std::path::PathBuf,
        /// The parquet error.
        source: deltalake::parquet::errors::ParquetError,
    },
}

/// What a column's statistics are, for comparing and printing them.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Int,
    /// Unscaled integer of a decimal with this scale.
    Decimal(i32),
    /// Days since the epoch.
    Date,
    /// Microseconds since the epoch, UTC.
    TimestampMicros,
    TimestampMillis,
    TimestampNanos,
    Float,
    Bool,
    Str,
}

#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum Value {
    I(i128),
    F(f64),
    B(bool),
    S(String),
}

fn kind_of(column: &ColumnDescriptor) -> Option<Kind> {
    use PhysicalType as P;
    let logical = column.logical_type_ref();
    Some(match (column.physical_type(), logical) {
        (P::BOOLEAN, _) => Kind::Bool,
        (P::INT32 | P::INT64 | P::FIXED_LEN_BYTE_ARRAY | P::BYTE_ARRAY, Some(LogicalType::Decimal(d))) => {
            Kind::Decimal(d.scale)
        }
        (P::INT32, Some(LogicalType::Date)) => Kind::Date,
        (P::INT32, None | Some(LogicalType::Integer(_))) => Kind::Int,
        (P::INT64, Some(LogicalType::Timestamp(t))) => match t.unit {
            TimeUnit::MICROS => Kind::TimestampMicros,
            TimeUnit::MILLIS => Kind::TimestampMillis,
            TimeUnit::NANOS => Kind::TimestampNanos,
        },
        (P::INT64, None | Some(LogicalType::Integer(_))) => Kind::Int,
        (P::FLOAT | P::DOUBLE, _) => Kind::Float,
        (P::BYTE_ARRAY, Some(LogicalType::String)) => Kind::Str,
        // Binary, intervals, INT96, time of day, uuid, nested: no min/max (null counts only).
        _ => return None,
    })
}

fn be_i128(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(buf))
}

/// The min (or max) of one row group's statistics as a typed value.
fn value_of(stats: &Statistics, kind: Kind, min: bool) -> Option<Value> {
    macro_rules! pick {
        ($s:expr) => {
            if min { $s.min_opt() } else { $s.max_opt() }
        };
    }
    Some(match (stats, kind) {
        (Statistics::Boolean(s), Kind::Bool) => Value::B(*pick!(s)?),
        (Statistics::Int32(s), _) => Value::I(*pick!(s)? as i128),
        (Statistics::Int64(s), _) => Value::I(*pick!(s)? as i128),
        (Statistics::Float(s), _) => Value::F(*pick!(s)? as f64),
        (Statistics::Double(s), _) => Value::F(*pick!(s)?),
        (Statistics::FixedLenByteArray(s), Kind::Decimal(_)) => Value::I(be_i128(pick!(s)?.data())?),
        (Statistics::ByteArray(s), Kind::Decimal(_)) => Value::I(be_i128(pick!(s)?.data())?),
        (Statistics::ByteArray(s), Kind::Str) => {
            // Deprecated min/max fields of old writers compare bytes as signed: unusable.
            if stats.is_min_max_deprecated() {
                return None;
            }
            Value::S(String::from_utf8(pick!(s)?.data().to_vec()).ok()?)
        }
        _ => return None,
    })
}

fn decimal_literal(unscaled: i128, scale: i32) -> String {
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale.max(0) as usize;
    let body = if scale == 0 {
        digits
    } else if digits.len() > scale {
        format!(
            "{}.{}",
            &digits[..digits.len() - scale],
            &digits[digits.len() - scale..]
        )
    } else {
        format!("0.{}{}", "0".repeat(scale - digits.len()), digits)
    };
    if negative { format!("-{body}") } else { body }
}

fn timestamp_literal(millis: i128) -> Option<String> {
    let t = DateTime::from_timestamp_millis(i64::try_from(millis).ok()?)?;
    Some(format!("\"{}\"", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")))
}

/// The JSON text of a column's min or max, or None where no sound bound can be written.
fn literal(value: &Value, kind: Kind, is_min: bool) -> Option<String> {
    // Serializing a string cannot fail; an empty literal would only drop the bound.
    let json_str = |s: &str| serde_json::to_string(s).unwrap_or_default();
    match (value, kind) {
        (Value::B(b), _) => Some(b.to_string()),
        (Value::F(f), _) => f.is_finite().then(|| {
            let text = f.to_string();
            // JSON has no "-0" problem, but keep it a float literal for readers typing by shape.
            if text.contains(['.', 'e', 'E']) {
                text
            } else {
                format!("{text}.0")
            }
        }),
        (Value::I(i), Kind::Int) => Some(i.to_string()),
        (Value::I(i), Kind::Decimal(scale)) => Some(decimal_literal(*i, scale)),
        (Value::I(days), Kind::Date) => {
            let day = NaiveDate::from_ymd_opt(1970, 1, 1)?
                .checked_add_signed(chrono::Duration::days(i64::try_from(*days).ok()?))?;
            Some(json_str(&day.format("%Y-%m-%d").to_string()))
        }
        (Value::I(v), Kind::TimestampMicros | Kind::TimestampMillis | Kind::TimestampNanos) => {
            let per_milli: i128 = match kind {
                Kind::TimestampMicros => 1_000,
                Kind::TimestampMillis => 1,
                _ => 1_000_000,
            };
            let millis = if is_min {
                v.div_euclid(per_milli)
            } else {
                -(-v).div_euclid(per_milli)
            };
            timestamp_literal(millis)
        }
        (Value::S(s), Kind::Str) => {
            if s.chars().count() <= MAX_STRING_STAT_CHARS {
                Some(json_str(s))
            } else if is_min {
                Some(json_str(&s.chars().take(MAX_STRING_STAT_CHARS).collect::<String>()))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The Delta `stats` JSON of a Parquet file: numRecords, minValues, maxValues, nullCount for
/// its top-level, non-repeated columns (partition columns are not in the files).
pub fn stats_json(metadata: &ParquetMetaData) -> String {
    let schema = metadata.file_metadata().schema_descr();
    let num_records = metadata.file_metadata().num_rows();
    let mut mins = Vec::new();
    let mut maxes = Vec::new();
    let mut nulls = Vec::new();
    for (index, column) in schema.columns().iter().enumerate() {
        if column.path().parts().len() != 1 || column.max_rep_level() > 0 {
            continue;
        }
        let Ok(name) = serde_json::to_string(column.name()) else {
            continue;
        };
        let kind = kind_of(column);
        let mut null_count: Option<i64> = Some(0);
        let mut min: Option<Value> = None;
        let mut max: Option<Value> = None;
        // A row group with values but no min/max makes the file's bounds unknown.
        let mut bounds_known = kind.is_some();
        for row_group in metadata.row_groups() {
            let chunk = row_group.column(index);
            let Some(stats) = chunk.statistics() else {
                null_count = None;
                bounds_known = false;
                continue;
            };
            let rg_nulls = stats.null_count_opt();
            null_count = match (null_count, rg_nulls) {
                (Some(total), Some(n)) => Some(total + n as i64),
                _ => None,
            };
            let Some(kind) = kind else { continue };
            let all_null = rg_nulls == Some(row_group.num_rows() as u64);
            match (value_of(stats, kind, true), value_of(stats, kind, false)) {
                (Some(lo), Some(hi)) => {
                    if min.as_ref().is_none_or(|m| lo < *m) {
                        min = Some(lo);
                    }
                    if max.as_ref().is_none_or(|m| hi > *m) {
                        max = Some(hi);
                    }
                }
                _ if all_null => {}
                _ => bounds_known = false,
            }
        }
        if let Some(n) = null_count {
            nulls.push(format!("{name}:{n}"));
        }
        if let (true, Some(kind)) = (bounds_known, kind) {
            if let Some(text) = min.as_ref().and_then(|v| literal(v, kind, true)) {
                mins.push(format!("{name}:{text}"));
            }
            if let Some(text) = max.as_ref().and_then(|v| literal(v, kind, false)) {
                maxes.push(format!("{name}:{text}"));
            }
        }
    }
    format!(
        "{{\"numRecords\":{num_records},\"minValues\":{{{}}},\"maxValues\":{{{}}},\"nullCount\":{{{}}}}}",
        mins.join(","),
        maxes.join(","),
        nulls.join(",")
    )
}

/// The footer of a local Parquet file.
pub fn read_footer(path: &std::path::Path) -> Result<ParquetMetaData, StatsError> {
    let file = std::fs::File::open(path).map_err(|e| StatsError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|source| StatsError::Parquet {
            path: path.to_path_buf(),
            source,
        })
}

/// The `Add` action of a local file that will be published at `relative_path` under its
/// table's folder, with the statistics of its footer (`metadata`).
pub fn add_for_file(
    relative_path: &str,
    size: u64,
    metadata: &ParquetMetaData,
    partition_values: HashMap<String, Option<String>>,
) -> Add {
    Add {
        path: relative_path.to_string(),
        partition_values,
        size: size as i64,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change: true,
        stats: Some(stats_json(metadata)),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_literals_are_exact() {
        assert_eq!(decimal_literal(12_345, 4), "1.2345");
        assert_eq!(decimal_literal(-5, 4), "-0.0005");
        assert_eq!(decimal_literal(0, 10), "0.0000000000");
        assert_eq!(decimal_literal(7, 0), "7");
        // The largest Decimal(38,10): f64 would print 1e28.
        let max = 10_i128.pow(38) - 1;
        assert_eq!(decimal_literal(max, 10), "9999999999999999999999999999.9999999999");
    }

    #[test]
    fn timestamps_round_outwards() {
        // 2025-06-30T10:00:00.000500Z in microseconds.
        let micros = 1_751_277_600_000_500_i128;
        assert_eq!(
            literal(&Value::I(micros), Kind::TimestampMicros, true).unwrap(),
            "\"2025-06-30T10:00:00.000Z\""
        );
        assert_eq!(
            literal(&Value::I(micros), Kind::TimestampMicros, false).unwrap(),
            "\"2025-06-30T10:00:00.001Z\""
        );
        // Negative (before 1970) rounds the same way.
        assert_eq!(
            literal(&Value::I(-1), Kind::TimestampMicros, true).unwrap(),
            "\"1969-12-31T23:59:59.999Z\""
        );
        assert_eq!(
            literal(&Value::I(-1), Kind::TimestampMicros, false).unwrap(),
            "\"1970-01-01T00:00:00.000Z\""
        );
    }

    #[test]
    fn long_strings_keep_a_prefix_min_and_no_max() {
        let long = "x".repeat(40);
        assert_eq!(
            literal(&Value::S(long.clone()), Kind::Str, true).unwrap(),
            format!("\"{}\"", "x".repeat(32))
        );
        assert_eq!(literal(&Value::S(long), Kind::Str, false), None);
    }
}
