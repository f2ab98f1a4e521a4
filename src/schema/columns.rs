//! Typed column builders: sources fill them row by row, polars receives Arrow arrays.
//!
//! A table's rows are declared once with [`table_row!`](crate::table_row): the macro
//! generates the row struct, its [`TableSpec`] and the code that appends a row to a
//! [`TableBuilder`], so a column's name, type and personal-data class live in one line.

use std::borrow::Cow;

use polars::prelude::*;
use polars_arrow::array::{Utf8ViewArray, View};
use polars_arrow::bitmap::MutableBitmap;

use super::pii::{Pii, PiiAction, PiiKind};

/// Money is stored as `Decimal(38, 10)`: the APIs send fees as doubles (`16.666667`), and ten
/// places keep every fee they send exact while finance compares to the cent (DESIGN.md 3).
pub const MONEY_SCALE: usize = 10;
/// Precision of money columns: 28 digits before the point, 10 after.
pub const MONEY_PRECISION: usize = 38;

/// The logical type of a published column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text.
    Text,
    /// 32-bit integer.
    Int32,
    /// 64-bit integer.
    Int64,
    /// Binary floating point, only for physical measures (weights, volumes), never money.
    Float64,
    /// Boolean.
    Bool,
    /// An instant, `Datetime(us, UTC)`.
    Timestamp,
    /// A decimal amount, `Decimal(38, 10)`.
    Money,
    /// A calendar day, `Date`.
    Date,
}

impl ColumnType {
    /// The polars data type of the column.
    pub fn dtype(self) -> DataType {
        match self {
            ColumnType::Text => DataType::String,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Timestamp => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
            ColumnType::Money => DataType::Decimal(MONEY_PRECISION, MONEY_SCALE),
            ColumnType::Date => DataType::Date,
        }
    }
}

/// One column of a table: name, type and, for personal data, its class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Column name, exactly as published.
    pub name: &'static str,
    /// Logical type.
    pub ty: ColumnType,
    /// Personal-data class, if the column can hold personal data.
    pub pii: Option<PiiKind>,
}

/// A published table: its name, key and columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    /// Table name, exactly as DESIGN.md gives it.
    pub name: &'static str,
    /// Columns that identify a row.
    pub key: &'static [&'static str],
    /// Columns in published order.
    pub columns: Vec<ColumnSpec>,
}

impl TableSpec {
    /// The schema of the published table under a personal-data policy (dropped columns left out).
    pub fn schema(&self, pii: &Pii) -> Schema {
        self.columns
            .iter()
            .filter(|c| pii.action(self.name, c.name, c.pii) != PiiAction::Drop)
            .map(|c| Field::new(c.name.into(), c.ty.dtype()))
            .collect()
    }
}

/// One value of a column group (role pivots, flattened sub-objects).
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    /// No value.
    Null,
    /// Text.
    Text(Cow<'a, str>),
    /// 32-bit integer.
    Int32(i32),
    /// 64-bit integer.
    Int64(i64),
    /// Float (measures only).
    Float64(f64),
    /// Boolean.
    Bool(bool),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// An amount.
    Money(Money),
}

impl<'a> Cell<'a> {
    /// Text, or null.
    pub fn text(v: Option<impl Into<Cow<'a, str>>>) -> Self {
        v.map_or(Cell::Null, |v| Cell::Text(v.into()))
    }
    /// A 32-bit integer, or null.
    pub fn int32(v: Option<i32>) -> Self {
        v.map_or(Cell::Null, Cell::Int32)
    }
    /// A 64-bit integer, or null.
    pub fn int64(v: Option<i64>) -> Self {
        v.map_or(Cell::Null, Cell::Int64)
    }
    /// A boolean, or null.
    pub fn bool(v: Option<bool>) -> Self {
        v.map_or(Cell::Null, Cell::Bool)
    }
    /// An amount, or null.
    pub fn money(v: Option<Money>) -> Self {
        v.map_or(Cell::Null, Cell::Money)
    }
    /// An instant, or null.
    pub fn timestamp(v: Option<Timestamp>) -> Self {
        v.map_or(Cell::Null, |t| Cell::Timestamp(t.0))
    }
}

/// Microseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

/// An exact amount in units of 10^-[`MONEY_SCALE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(pub i128);

/// A calendar day: days since 1970-01-01.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub i32);

impl Date {
    /// The day of an ISO `YYYY-MM-DD` text, if it is one.
    pub fn parse(text: &str) -> Option<Date> {
        let d = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
        i32::try_from((d - epoch).num_days()).ok().map(Date)
    }
}

/// A text column being built, as Arrow string views and the buffers they point into.
///
/// Written here rather than with polars' `MutableBinaryViewArray`: its push builds each view
/// in memory and reads it back whole, a store-to-load stall on every value (pushing was 13%
/// of a run's CPU, 6.6% built here); here a view is built in registers and stored once.
/// A value appended again on the next row from the same place in the input (a long table
/// repeats its record's key on every row) reuses the previous row's view instead of copying
/// its bytes again.
struct TextColumn {
    name: PlSmallStr,
    views: Vec<View>,
    /// Made at the first null (every earlier row valid); `None` while there is none.
    validity: Option<MutableBitmap>,
    /// Full buffers; a view names its buffer by index here.
    buffers: Vec<Vec<u8>>,
    /// The buffer being filled: index `buffers.len()`.
    in_progress: Vec<u8>,
    /// Bytes of all valid values, as Arrow counts them (repeats included).
    total_bytes: usize,
    /// Bytes held by the buffers.
    total_buffer: usize,
    /// Address and length of the last value appended from the input; (0, 0) after a null or
    /// a value from elsewhere.
    last: (usize, usize),
}

/// Marks a null after `len` rows in a column's validity, made at its first null with every
/// earlier row valid (room for `capacity` rows).
#[inline]
fn push_invalid(validity: &mut Option<MutableBitmap>, len: usize, capacity: usize) {
    validity
        .get_or_insert_with(|| {
            let mut all = MutableBitmap::with_capacity(capacity);
            all.extend_constant(len, true);
            all
        })
        .push(false);
}

/// The first buffer's size; each next one doubles, up to [`MAX_BUFFER`] (polars' own policy).
const FIRST_BUFFER: usize = 8 * 1024;
/// The largest buffer made unless one value needs more.
const MAX_BUFFER: usize = 16 * 1024 * 1024;

impl TextColumn {
    fn new(name: PlSmallStr, capacity: usize) -> Self {
        TextColumn {
            name,
            views: Vec::with_capacity(capacity),
            validity: None,
            buffers: Vec::new(),
            in_progress: Vec::new(),
            total_bytes: 0,
            total_buffer: 0,
            last: (0, 0),
        }
    }

    /// Appends `v`, a value of the input (or any value: a repeat is confirmed by its bytes).
    /// False if it is too long for an Arrow view (over 4 GiB): a null is appended instead.
    #[inline]
    fn push_input(&mut self, v: &str) -> bool {
        let here = (v.as_ptr() as usize, v.len());
        if here == self.last && v.len() > View::MAX_INLINE_SIZE as usize {
            // The same address and length held these bytes on the previous row; compared
            // anyway, since an owned value's allocation may have been reused.
            if let Some(&view) = self.views.last() {
                if self.bytes_of(view) == Some(v.as_bytes()) {
                    self.push_view(view, v.len());
                    return true;
                }
            }
        }
        let fits = self.push_value(v.as_bytes());
        self.last = here;
        fits
    }

    /// Appends a value that is not from the input (a digest in a reused buffer).
    #[inline]
    fn push_other(&mut self, v: &str) -> bool {
        self.last = (0, 0);
        self.push_value(v.as_bytes())
    }

    #[inline]
    fn push_null(&mut self) {
        push_invalid(&mut self.validity, self.views.len(), self.views.capacity());
        self.views.push(View::default());
        self.last = (0, 0);
    }

    #[inline]
    fn push_view(&mut self, view: View, len: usize) {
        self.views.push(view);
        self.total_bytes += len;
        if let Some(validity) = &mut self.validity {
            validity.push(true);
        }
    }

    /// Appends `bytes`: inline in its view if short, else copied into the buffer in progress.
    #[inline]
    fn push_value(&mut self, bytes: &[u8]) -> bool {
        let Ok(length) = u32::try_from(bytes.len()) else {
            self.push_null();
            return false;
        };
        let view = match inline_view(bytes) {
            Some(view) => view,
            None => {
                if self.in_progress.len() + bytes.len() > self.in_progress.capacity() {
                    self.start_buffer(bytes.len());
                }
                // Below 2^32: a buffer is at most MAX_BUFFER or one value of at most u32::MAX.
                let offset = self.in_progress.len() as u32;
                self.in_progress.extend_from_slice(bytes);
                self.total_buffer += bytes.len();
                let prefix = bytes.first_chunk::<4>().map_or(0, |p| u32::from_le_bytes(*p));
                View {
                    length,
                    prefix,
                    buffer_idx: self.buffers.len() as u32,
                    offset,
                }
            }
        };
        self.push_view(view, bytes.len());
        true
    }

    /// Completes the buffer in progress and starts one with room for at least `needed` bytes.
    #[cold]
    fn start_buffer(&mut self, needed: usize) {
        let capacity = needed.max((self.in_progress.capacity() * 2).clamp(FIRST_BUFFER, MAX_BUFFER));
        let full = std::mem::replace(&mut self.in_progress, Vec::with_capacity(capacity));
        if !full.is_empty() {
            self.buffers.push(full);
        }
    }

    /// The bytes a long value's view points at.
    fn bytes_of(&self, view: View) -> Option<&[u8]> {
        let buffer = match self.buffers.get(view.buffer_idx as usize) {
            Some(buffer) => buffer.as_slice(),
            None => self.in_progress.as_slice(),
        };
        let start = view.offset as usize;
        buffer.get(start..start + view.length as usize)
    }

    fn finish(mut self) -> StringChunked {
        if !self.in_progress.is_empty() {
            self.buffers.push(std::mem::take(&mut self.in_progress));
        }
        // SAFETY: every view is inline or names a buffer and a range inside it; the values
        // are `str`s, so valid UTF-8; the two totals are kept exact by every push.
        let array = unsafe {
            Utf8ViewArray::new_unchecked(
                ArrowDataType::Utf8View,
                self.views.into(),
                self.buffers.into_iter().map(Into::into).collect::<Vec<_>>().into(),
                self.validity.map(Into::into),
                Some(self.total_bytes),
                self.total_buffer,
            )
        };
        StringChunked::with_chunk(self.name, array)
    }
}

/// The view of a value of at most 12 bytes, built in registers: Arrow keeps such a value in
/// its view, after the length, zero-padded. `None` for a longer value.
#[inline(always)]
fn inline_view(bytes: &[u8]) -> Option<View> {
    let n = bytes.len();
    // Two loads that overlap when the value is shorter than both: the overlapping bytes are
    // the same in each, so OR-ing them is exact, and nothing past the value is read.
    let data: u128 = match (n, bytes.first_chunk::<8>(), bytes.last_chunk::<4>()) {
        (13.., _, _) => return None,
        (8.., Some(head), Some(tail)) => {
            u64::from_le_bytes(*head) as u128 | (u32::from_le_bytes(*tail) as u128) << ((n - 4) * 8)
        }
        (4.., _, Some(tail)) => {
            let head = bytes.first_chunk::<4>().map_or(0, |h| u32::from_le_bytes(*h));
            head as u128 | (u32::from_le_bytes(*tail) as u128) << ((n - 4) * 8)
        }
        (1.., _, _) => {
            bytes[0] as u128 | (bytes[n / 2] as u128) << (n / 2 * 8) | (bytes[n - 1] as u128) << ((n - 1) * 8)
        }
        _ => 0,
    };
    Some(View {
        length: n as u32,
        prefix: data as u32,
        buffer_idx: (data >> 32) as u32,
        offset: (data >> 64) as u32,
    })
}

/// A column of fixed-width values being built: the values, and a validity made at the first
/// null. polars' `PrimitiveChunkedBuilder` takes a call per value (~2% of a run's samples); this
/// push is inlined into the row's. A column that has had only nulls so far (a day's
/// `_fetched_on` when its records come from export files) only counts them.
struct PrimitiveColumn<T: PolarsNumericType> {
    name: PlSmallStr,
    values: Vec<T::Native>,
    /// Made at the first null (every earlier row valid); `None` while there is none.
    validity: Option<MutableBitmap>,
    /// Rows appended before any value, all null: neither in `values` nor in `validity` yet.
    leading_nulls: usize,
}

impl<T: PolarsNumericType> PrimitiveColumn<T> {
    fn new(name: PlSmallStr, capacity: usize) -> Self {
        PrimitiveColumn {
            name,
            values: Vec::with_capacity(capacity),
            validity: None,
            leading_nulls: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, value: Option<T::Native>) {
        match value {
            Some(v) => {
                if self.leading_nulls > 0 {
                    self.materialize();
                }
                self.values.push(v);
                if let Some(validity) = &mut self.validity {
                    validity.push(true);
                }
            }
            None if self.values.is_empty() => self.leading_nulls += 1,
            None => self.push_null(),
        }
    }

    #[inline(never)]
    fn push_null(&mut self) {
        push_invalid(&mut self.validity, self.values.len(), self.values.capacity());
        self.values.push(T::Native::default());
    }

    /// Writes the leading nulls out as values and validity.
    #[cold]
    fn materialize(&mut self) {
        let mut validity = MutableBitmap::with_capacity(self.values.capacity().max(self.leading_nulls));
        validity.extend_constant(self.leading_nulls, false);
        self.validity = Some(validity);
        self.values.resize(self.leading_nulls, T::Native::default());
        self.leading_nulls = 0;
    }

    /// The column, as polars' builder makes it.
    fn finish(mut self) -> ChunkedArray<T> {
        if self.leading_nulls > 0 {
            self.materialize();
        }
        let dtype = T::get_static_dtype().to_arrow(CompatLevel::newest());
        let array = polars_arrow::array::PrimitiveArray::new(dtype, self.values.into(), self.validity.map(Into::into));
        ChunkedArray::with_chunk(self.name, array)
    }
}

enum Builder {
    Text(TextColumn),
    Int32(PrimitiveColumn<Int32Type>),
    Int64(PrimitiveColumn<Int64Type>),
    Float64(PrimitiveColumn<Float64Type>),
    Bool(BooleanChunkedBuilder),
    Timestamp(PrimitiveColumn<Int64Type>),
    Money(PrimitiveColumn<Int128Type>),
    Date(PrimitiveColumn<Int32Type>),
    /// A column dropped by the personal-data policy: values are discarded.
    Dropped,
}

/// A column being built, with the personal-data action already decided.
pub struct ColumnBuilder {
    spec: ColumnSpec,
    action: PiiAction,
    kind: PiiKind,
    builder: Builder,
    /// Values appended so far.
    rows: u32,
    /// Rows whose value did not fit the column's type (appended as null): their records are
    /// rejects ([`TableBuilder::misfits`]).
    misfits: Vec<u32>,
}

impl ColumnBuilder {
    fn new(table: &str, spec: ColumnSpec, pii: &Pii, capacity: usize) -> Self {
        let action = pii.action(table, spec.name, spec.pii);
        let name: PlSmallStr = spec.name.into();
        let builder = match (action, spec.ty) {
            (PiiAction::Drop, _) => Builder::Dropped,
            (_, ColumnType::Text) => Builder::Text(TextColumn::new(name, capacity)),
            (_, ColumnType::Int32) => Builder::Int32(PrimitiveColumn::new(name, capacity)),
            (_, ColumnType::Int64) => Builder::Int64(PrimitiveColumn::new(name, capacity)),
            (_, ColumnType::Float64) => Builder::Float64(PrimitiveColumn::new(name, capacity)),
            (_, ColumnType::Bool) => Builder::Bool(BooleanChunkedBuilder::new(name, capacity)),
            (_, ColumnType::Timestamp) => Builder::Timestamp(PrimitiveColumn::new(name, capacity)),
            (_, ColumnType::Money) => Builder::Money(PrimitiveColumn::new(name, capacity)),
            (_, ColumnType::Date) => Builder::Date(PrimitiveColumn::new(name, capacity)),
        };
        let kind = spec.pii.unwrap_or(PiiKind::Identifier);
        ColumnBuilder {
            spec,
            action,
            kind,
            builder,
            rows: 0,
            misfits: Vec::new(),
        }
    }

    /// Counts a value; a value that does not fit the column is counted as a misfit.
    #[inline]
    fn counted(&mut self, fits: bool) {
        if !fits {
            self.misfits.push(self.rows);
        }
        self.rows += 1;
    }

    /// Appends text, hashing or dropping it as the policy says.
    #[inline]
    pub fn push_text(&mut self, value: Option<&str>, pii: &Pii) {
        if let Builder::Text(b) = &mut self.builder {
            let fits = match (value, self.action) {
                (Some(v), PiiAction::Hash) => Self::push_hashed(b, pii, self.kind, v),
                (Some(v), _) => b.push_input(v),
                (None, _) => {
                    b.push_null();
                    true
                }
            };
            self.counted(fits);
        } else {
            self.counted(true);
            debug_assert!(
                matches!(self.builder, Builder::Dropped),
                "{} is not text",
                self.spec.name
            );
        }
    }

    /// Appends the digest of `v`: kept out of line, so that a kept value's push is small
    /// enough to be inlined into the row's.
    #[inline(never)]
    fn push_hashed(b: &mut TextColumn, pii: &Pii, kind: PiiKind, v: &str) -> bool {
        b.push_other(pii.hash(kind, v).as_str())
    }

    /// Appends a 32-bit integer.
    #[inline]
    pub fn push_i32(&mut self, value: Option<i32>) {
        self.counted(true);
        match &mut self.builder {
            Builder::Int32(b) => b.push(value),
            Builder::Dropped => {}
            _ => debug_assert!(false, "{} is not Int32", self.spec.name),
        }
    }

    /// Appends a 64-bit integer.
    #[inline]
    pub fn push_i64(&mut self, value: Option<i64>) {
        self.counted(true);
        match &mut self.builder {
            Builder::Int64(b) => b.push(value),
            Builder::Dropped => {}
            _ => debug_assert!(false, "{} is not Int64", self.spec.name),
        }
    }

    /// Appends a float.
    #[inline]
    pub fn push_f64(&mut self, value: Option<f64>) {
        // Infinity and NaN are not measures.
        let fits = value.is_none_or(f64::is_finite);
        self.counted(fits);
        let value = value.filter(|_| fits);
        match &mut self.builder {
            Builder::Float64(b) => b.push(value),
            Builder::Dropped => {}
            _ => debug_assert!(false, "{} is not Float64", self.spec.name),
        }
    }

    /// Appends a boolean.
    #[inline]
    pub fn push_bool(&mut self, value: Option<bool>) {
        self.counted(true);
        match &mut self.builder {
            Builder::Bool(b) => b.append_option(value),
            Builder::Dropped => {}
            _ => debug_assert!(false, "{} is not Bool", self.spec.name),
        }
    }

    /// Appends an instant.
    #[inline]
    pub fn push_timestamp(&mut self, value: Option<Timestamp>) {
        self.counted(true);
        match &mut self.builder {
            Builder::Timestamp(b) => b.push(value.map(|t| t.0)),
            Builder::Dropped => {}
            _ => debug_assert!(false, "{} is not Timestamp", self.spec.name),
        }
    }

    /// Appends an amount.
    #[inline]
    pub fn push_money(&mut self, value: Option<Money>) {
        // A decimal of more digits than the column's precision would fail the whole table.
        let fits = value.is_none_or(|m| m.0.unsigned_abs() < 10u128.pow(MONEY_PRECISION as u32));
        self.counted(fits);
        let value = value.filter(|_| fits);
        match &mut self.builder {
            Builder::Money(b) => b.push(value.map(|m| m.0)),
            Builder::Dropped => {}
            _ => debug_assert!(false, "{} is not Money", self.spec.name),
        }
    }

    /// Appends a day.
    #[inline]
    pub fn push_date(&mut self, value: Option<Date>) {
        match &mut self.builder {
            Builder::Date(b) => b.push(value.map(|d| d.0)),
            Builder::Dropped => {}
            _ => debug_assert!(false, "{} is not Date", self.spec.name),
        }
    }

    /// Appends a cell of a column group; a cell of another type than the column is null.
    pub fn push_cell(&mut self, cell: &Cell<'_>, pii: &Pii) {
        debug_assert!(
            matches!(
                (self.spec.ty, cell),
                (_, Cell::Null)
                    | (ColumnType::Text, Cell::Text(_))
                    | (ColumnType::Int32, Cell::Int32(_))
                    | (ColumnType::Int64, Cell::Int64(_))
                    | (ColumnType::Float64, Cell::Float64(_))
                    | (ColumnType::Bool, Cell::Bool(_))
                    | (ColumnType::Timestamp, Cell::Timestamp(_))
                    | (ColumnType::Money, Cell::Money(_))
            ),
            "{}: {cell:?} does not fit {:?}",
            self.spec.name,
            self.spec.ty
        );
        match (self.spec.ty, cell) {
            (ColumnType::Text, Cell::Text(v)) => self.push_text(Some(v), pii),
            (ColumnType::Text, _) => self.push_text(None, pii),
            (ColumnType::Int32, Cell::Int32(v)) => self.push_i32(Some(*v)),
            (ColumnType::Int32, _) => self.push_i32(None),
            (ColumnType::Int64, Cell::Int64(v)) => self.push_i64(Some(*v)),
            (ColumnType::Int64, _) => self.push_i64(None),
            (ColumnType::Float64, Cell::Float64(v)) => self.push_f64(Some(*v)),
            (ColumnType::Float64, _) => self.push_f64(None),
            (ColumnType::Bool, Cell::Bool(v)) => self.push_bool(Some(*v)),
            (ColumnType::Bool, _) => self.push_bool(None),
            (ColumnType::Timestamp, Cell::Timestamp(v)) => self.push_timestamp(Some(Timestamp(*v))),
            (ColumnType::Timestamp, _) => self.push_timestamp(None),
            (ColumnType::Money, Cell::Money(v)) => self.push_money(Some(*v)),
            (ColumnType::Money, _) => self.push_money(None),
            // No column group holds days.
            (ColumnType::Date, _) => self.push_date(None),
        }
    }

    fn finish(self) -> PolarsResult<Option<Column>> {
        let series = match self.builder {
            Builder::Dropped => return Ok(None),
            Builder::Text(b) => b.finish().into_series(),
            Builder::Int32(b) => b.finish().into_series(),
            Builder::Int64(b) => b.finish().into_series(),
            Builder::Float64(b) => b.finish().into_series(),
            Builder::Bool(b) => b.finish().into_series(),
            Builder::Timestamp(b) => b
                .finish()
                .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                .into_series(),
            Builder::Money(b) => b.finish().into_series().into_decimal(MONEY_PRECISION, MONEY_SCALE)?,
            Builder::Date(b) => b.finish().into_date().into_series(),
        };
        Ok(Some(series.into_column()))
    }
}

/// The rows of one table collected from one batch of input.
pub struct TableBuilder {
    spec: TableSpec,
    /// [`table_id`] of the spec's name.
    id: u64,
    columns: Vec<ColumnBuilder>,
    /// For every row, the ordinal of the input record it came from (to drop collapsed duplicates).
    records: Vec<u32>,
    /// Whether the run writes the table; rows of a table it does not write are discarded.
    written: bool,
}

impl TableBuilder {
    /// An empty table for `spec` under the personal-data policy.
    pub fn new(spec: TableSpec, pii: &Pii, capacity: usize) -> Self {
        let columns = spec
            .columns
            .iter()
            .map(|c| ColumnBuilder::new(spec.name, c.clone(), pii, capacity))
            .collect();
        TableBuilder {
            id: table_id(spec.name),
            spec,
            columns,
            records: Vec::with_capacity(capacity),
            written: true,
        }
    }

    /// A table the run does not write (`--tables`): it takes no rows and costs no column work.
    pub fn unwritten(spec: TableSpec) -> Self {
        TableBuilder {
            id: table_id(spec.name),
            spec,
            columns: Vec::new(),
            records: Vec::new(),
            written: false,
        }
    }

    /// Whether the run writes this table.
    pub fn is_written(&self) -> bool {
        self.written
    }

    /// [`table_id`] of the table's name.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The table's spec.
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// Column `i`, in spec order.
    #[inline]
    pub fn column(&mut self, i: usize) -> &mut ColumnBuilder {
        &mut self.columns[i]
    }

    /// Marks the end of a row that came from input record `record`.
    #[inline]
    pub fn end_row(&mut self, record: u32) {
        self.records.push(record);
    }

    /// Number of rows so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records with a value that did not fit its column's type, with why (the column and
    /// its type, never the value), in record order.
    pub fn misfits(&self) -> Vec<(u32, String)> {
        let mut out: Vec<(u32, String)> = self
            .columns
            .iter()
            .flat_map(|c| {
                c.misfits.iter().filter_map(|row| {
                    let record = *self.records.get(*row as usize)?;
                    let ty = match c.spec.ty {
                        ColumnType::Money => format!("Decimal({MONEY_PRECISION}, {MONEY_SCALE})"),
                        ColumnType::Float64 => "a finite Float64".to_string(),
                        other => format!("{:?}", other.dtype()),
                    };
                    Some((
                        record,
                        format!("invalid value at {}.{}: does not fit {ty}", self.spec.name, c.spec.name),
                    ))
                })
            })
            .collect();
        out.sort_by_key(|m| m.0);
        out.dedup_by_key(|m| m.0);
        out
    }

    /// The frame of all rows whose record is not in `dropped` (sorted record ordinals).
    pub fn finish(self, dropped: &[u32]) -> PolarsResult<DataFrame> {
        let height = self.records.len();
        let columns = self
            .columns
            .into_iter()
            .filter_map(|c| c.finish().transpose())
            .collect::<PolarsResult<Vec<_>>>()?;
        let frame = DataFrame::new(height, columns)?;
        if dropped.is_empty() {
            return Ok(frame);
        }
        let keep: BooleanChunked = self.records.iter().map(|r| dropped.binary_search(r).is_err()).collect();
        frame.filter(&keep)
    }
}

/// A table's name as a number (FNV-1a), computed at compile time for a row type: a row pushed
/// finds its table by it instead of a `memcmp` call per row. The tables of one source have
/// distinct ids (a test checks every source's).
pub const fn table_id(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// A value that can be appended to a column of a generated row struct.
pub trait ColumnValue {
    /// The column type it fills.
    const TYPE: ColumnType;
    /// Appends the value to `column`.
    fn push(self, column: &mut ColumnBuilder, pii: &Pii);
}

impl ColumnValue for Option<Cow<'_, str>> {
    const TYPE: ColumnType = ColumnType::Text;
    #[inline(always)]
    fn push(self, column: &mut ColumnBuilder, pii: &Pii) {
        column.push_text(self.as_deref(), pii)
    }
}

impl ColumnValue for Option<i32> {
    const TYPE: ColumnType = ColumnType::Int32;
    #[inline]
    fn push(self, column: &mut ColumnBuilder, _: &Pii) {
        column.push_i32(self)
    }
}

impl ColumnValue for Option<i64> {
    const TYPE: ColumnType = ColumnType::Int64;
    #[inline]
    fn push(self, column: &mut ColumnBuilder, _: &Pii) {
        column.push_i64(self)
    }
}

impl ColumnValue for Option<f64> {
    const TYPE: ColumnType = ColumnType::Float64;
    #[inline]
    fn push(self, column: &mut ColumnBuilder, _: &Pii) {
        column.push_f64(self)
    }
}

impl ColumnValue for Option<bool> {
    const TYPE: ColumnType = ColumnType::Bool;
    #[inline]
    fn push(self, column: &mut ColumnBuilder, _: &Pii) {
        column.push_bool(self)
    }
}

impl ColumnValue for Option<Timestamp> {
    const TYPE: ColumnType = ColumnType::Timestamp;
    #[inline]
    fn push(self, column: &mut ColumnBuilder, _: &Pii) {
        column.push_timestamp(self)
    }
}

impl ColumnValue for Option<Money> {
    const TYPE: ColumnType = ColumnType::Money;
    #[inline]
    fn push(self, column: &mut ColumnBuilder, _: &Pii) {
        column.push_money(self)
    }
}

impl ColumnValue for Option<Date> {
    const TYPE: ColumnType = ColumnType::Date;
    #[inline]
    fn push(self, column: &mut ColumnBuilder, _: &Pii) {
        column.push_date(self)
    }
}

/// A row of a published table, generated by [`table_row!`](crate::table_row).
pub trait Row {
    /// The table the row belongs to.
    const TABLE: &'static str;
    /// [`table_id`] of [`Row::TABLE`]: how a row finds its table without comparing names.
    const TABLE_ID: u64 = table_id(Self::TABLE);
    /// The table's spec (fixed columns, then column groups).
    fn spec() -> TableSpec;
    /// Appends the row's values to `table`'s columns, in spec order.
    fn write(self, table: &mut TableBuilder, pii: &Pii);
}

/// Declares a table's row struct, its [`TableSpec`] and how a row is appended.
///
/// ```ignore
/// table_row! {
///     /// A row of `stock`.
///     pub struct StockRow<'a> in "stock" key ["warehouse_id", "product_code"] {
///         warehouse_id: Option<Cow<'a, str>>,
///         available_quantity: Option<i64>,
///     }
///     groups []
/// }
/// ```
/// A field followed by `=> Kind` holds personal data of that [`PiiKind`]. The column groups
/// named after `groups` (role pivots, flattened sub-objects: anything with a
/// `column_specs()`) add their columns after the fields; their values go in `groups`.
#[macro_export]
macro_rules! table_row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident<$lt:lifetime> in $table:literal key [$($key:literal),* $(,)?] {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty $(=> $pii:ident)? ),* $(,)?
        }
        groups [$($group:expr),* $(,)?]
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default, Clone)]
        $vis struct $name<$lt> {
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// Values of the column groups' columns, in order.
            pub groups: Vec<$crate::schema::columns::Cell<$lt>>,
        }

        impl<$lt> $crate::schema::columns::Row for $name<$lt> {
            const TABLE: &'static str = $table;

            fn spec() -> $crate::schema::columns::TableSpec {
                #[allow(unused_mut)]
                let mut columns = vec![
                    $( $crate::schema::columns::ColumnSpec {
                        name: stringify!($field),
                        ty: <$ty as $crate::schema::columns::ColumnValue>::TYPE,
                        pii: $crate::table_row!(@pii $($pii)?),
                    }, )*
                ];
                $( columns.extend($group.column_specs()); )*
                $crate::schema::columns::TableSpec { name: $table, key: &[$($key),*], columns }
            }

            #[allow(unused_assignments, unused_mut, unused_variables)]
            fn write(
                self,
                table: &mut $crate::schema::columns::TableBuilder,
                pii: &$crate::schema::pii::Pii,
            ) {
                let mut i = 0usize;
                $(
                    $crate::schema::columns::ColumnValue::push(self.$field, table.column(i), pii);
                    i += 1;
                )*
                debug_assert_eq!(i + self.groups.len(), table.spec().columns.len(), "{}: groups", $table);
                for cell in &self.groups {
                    table.column(i).push_cell(cell, pii);
                    i += 1;
                }
            }
        }
    };
    (@pii) => { None };
    (@pii $kind:ident) => { Some($crate::schema::pii::PiiKind::$kind) };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::table_row! {
        /// A probe table.
        pub struct ProbeRow<'a> in "probe" key ["id"] {
            id: Option<Cow<'a, str>>,
            amount: Option<Money>,
            weight: Option<f64>,
        }
        groups []
    }

    #[test]
    fn a_primitive_column_is_the_one_polars_builds() {
        // Without nulls, with nulls first (a run of them), only nulls, none at all, nulls in
        // the middle and last.
        let cases: [Vec<Option<i64>>; 7] = [
            vec![Some(1), Some(-2), Some(i64::MAX)],
            vec![None, Some(1), Some(2)],
            vec![None, None, None, Some(1), None, Some(2)],
            vec![None, None],
            vec![],
            vec![Some(1), None, Some(3), Some(4)],
            vec![Some(1), Some(2), None],
        ];
        for values in cases {
            let mut ours = PrimitiveColumn::<Int64Type>::new("v".into(), 1);
            let mut theirs = PrimitiveChunkedBuilder::<Int64Type>::new("v".into(), 1);
            for v in &values {
                ours.push(*v);
                theirs.append_option(*v);
            }
            let (ours, theirs) = (ours.finish(), theirs.finish());
            assert_eq!(ours.name(), theirs.name());
            assert_eq!(ours.dtype(), theirs.dtype());
            assert_eq!(ours.null_count(), theirs.null_count(), "{values:?}");
            assert_eq!(ours.iter().collect::<Vec<_>>(), values);
            assert!(ours.equal_missing(&theirs).all());
        }
    }

    #[test]
    fn a_value_repeated_from_the_same_place_reads_back_as_itself() {
        let input = "MYSIM_2000000MYSIM_2000001short";
        let (first, second, short) = (&input[..13], &input[13..26], &input[26..]);
        let mut column = TextColumn::new("id".into(), 0);
        let mut expected: Vec<Option<String>> = Vec::new();
        let mut push = |column: &mut TextColumn, v: Option<&str>| {
            match v {
                Some(v) => assert!(column.push_input(v)),
                None => column.push_null(),
            }
            expected.push(v.map(str::to_string));
        };
        for _ in 0..3 {
            push(&mut column, Some(first));
        }
        push(&mut column, None);
        push(&mut column, Some(first));
        push(&mut column, Some(second));
        push(&mut column, Some(short));
        push(&mut column, Some(short));
        // Enough long values to complete the buffer in progress between two repeats.
        let long = "x".repeat(40_000);
        push(&mut column, Some(&long));
        push(&mut column, Some(&long));
        for i in 0..4 {
            // Owned values: the same address may come back with other bytes.
            let owned = format!("value-number-{i:04}");
            push(&mut column, Some(&owned));
        }
        push(&mut column, Some(second));
        push(&mut column, Some(second));
        let total: usize = expected.iter().flatten().map(String::len).sum();

        let values = column.finish();

        let array = values.downcast_as_array();
        let got: Vec<Option<String>> = array.iter().map(|v| v.map(str::to_string)).collect();
        assert_eq!(got, expected);
        assert_eq!(array.total_bytes_len(), total);
        assert_eq!(values.null_count(), 1);
    }

    #[test]
    fn values_of_every_length_read_back_as_themselves() {
        // Short values live in the view itself (built from overlapping loads); long ones in
        // buffers, and enough of them to fill several buffers.
        let text = "ação-MSISDN_912345678-ç€-0123456789abcdefghij";
        let mut column = TextColumn::new("v".into(), 0);
        let mut expected: Vec<Option<&str>> = vec![None];
        column.push_null();
        for round in 0..3_000 {
            for start in 0..text.len() {
                for end in start..=text.len().min(start + 16) {
                    let Some(v) = text.get(start..end) else { continue };
                    if round % 7 == 0 && end == start + 5 {
                        column.push_null();
                        expected.push(None);
                    }
                    assert!(column.push_input(v));
                    expected.push(Some(v));
                }
            }
        }
        let total: usize = expected.iter().flatten().map(|v| v.len()).sum();

        let values = column.finish();

        let array = values.downcast_as_array();
        assert!(array.data_buffers().len() > 1, "{}", array.data_buffers().len());
        assert!(array.iter().eq(expected.iter().copied()));
        assert_eq!(array.total_bytes_len(), total);
        assert_eq!(values.null_count(), expected.iter().filter(|v| v.is_none()).count());
    }

    #[test]
    fn values_that_do_not_fit_their_column_are_misfits_of_their_record_not_a_failed_table() {
        let pii = Pii::drop_all();
        let mut t = TableBuilder::new(ProbeRow::spec(), &pii, 4);
        let widest = 10i128.pow(MONEY_PRECISION as u32);
        for (record, amount, weight) in [
            (0, Some(Money(widest - 1)), Some(1.5)),
            (1, Some(Money(-widest)), None),
            (2, None, Some(f64::INFINITY)),
            (3, Some(Money(7)), Some(f64::NAN)),
        ] {
            ProbeRow {
                id: Some(record.to_string().into()),
                amount,
                weight,
                groups: Vec::new(),
            }
            .write(&mut t, &pii);
            t.end_row(record);
        }
        let misfits = t.misfits();
        assert_eq!(misfits.iter().map(|m| m.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(
            misfits[0].1.contains("probe.amount") && misfits[0].1.contains("Decimal"),
            "{misfits:?}"
        );
        assert!(misfits[1].1.contains("probe.weight"), "{misfits:?}");
        let frame = t.finish(&[1, 2, 3]).unwrap();
        assert_eq!(frame.height(), 1);
    }
}
