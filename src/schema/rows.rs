//! The rows of one item being converted: what a source's `parse` writes into.

use std::marker::PhantomData;

use super::columns::{self, Row, TableBuilder};
use super::pii::Pii;
use super::roles::{BoundPivot, RolePivot};
use super::time::TimeParser;

/// The rows of one item being converted, and what a source needs to convert it.
pub struct Rows<'b, 'a> {
    tables: &'b mut [TableBuilder],
    pivots: &'b [(&'static RolePivot, BoundPivot<'b>)],
    pii: &'b Pii,
    time: &'b TimeParser,
    record: u32,
    _item: PhantomData<&'a ()>,
}

impl<'b, 'a> Rows<'b, 'a> {
    /// Rows of the item numbered `record` in its batch, written into `tables`.
    pub fn new(
        tables: &'b mut [TableBuilder],
        pivots: &'b [(&'static RolePivot, BoundPivot<'b>)],
        pii: &'b Pii,
        time: &'b TimeParser,
        record: u32,
    ) -> Self {
        Rows {
            tables,
            pivots,
            pii,
            time,
            record,
            _item: PhantomData,
        }
    }

    /// Appends a row to its table; a row of a table the run does not write is discarded.
    pub fn push<R: Row>(&mut self, row: R) {
        if let Some(t) = self.tables.iter_mut().find(|t| t.id() == R::TABLE_ID) {
            debug_assert_eq!(t.spec().name, R::TABLE);
            if t.is_written() {
                row.write(t, self.pii);
                t.end_row(self.record);
            }
        } else {
            debug_assert!(false, "table {} is not among the source's tables", R::TABLE);
        }
    }

    /// Whether the run writes `R`'s table: a source may skip building rows that
    /// [`Rows::push`] would discard, once everything that can reject the record is converted.
    pub fn writes<R: Row>(&self) -> bool {
        self.tables.iter().any(|t| t.id() == R::TABLE_ID && t.is_written())
    }

    /// The source's pivot, bound to the run's policy.
    pub fn pivot(&self, pivot: &'static RolePivot) -> &BoundPivot<'b> {
        match self.pivots.iter().find(|(p, _)| std::ptr::eq(*p, pivot)) {
            Some((_, bound)) => bound,
            None => panic!("pivot {} is not listed in the source's pivots()", pivot.list),
        }
    }

    /// Timestamp parsing in the source time zone.
    pub fn time(&self) -> &TimeParser {
        self.time
    }

    /// Parses an optional timestamp field; `what` names it in the reject reason.
    pub fn timestamp(&self, value: Option<&str>, what: &str) -> Result<Option<columns::Timestamp>, String> {
        match value {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => self
                .time
                .parse(v)
                .map(|t| Some(columns::Timestamp(t)))
                .map_err(|e| format!("{what}: {e}")),
        }
    }
}
