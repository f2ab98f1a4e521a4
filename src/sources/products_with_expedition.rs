//! `products_with_expedition/`: the logistics system's own view of each product and the
//! expedition it holds it in, with that expedition's current status (seed 004
//! `ProductWithExpedition`, `ArrayOfProductWithExpedition` pages).
//!
//! One row per product (`subscription_device_id`): the API lists a product with its current
//! expedition, so a product listed twice (two pages, or an original and a re-expedition)
//! collapses to the copy whose current status is the latest. `recon_order_fulfilment` compares
//! this view with the status it derives from the expeditions' histories.

use std::borrow::Cow;

use super::logistics::{PRODUCT_COLUMNS, Product};
use super::{read_item, required_text, text};
use crate::schema::Rows;
use crate::schema::columns::{Row, TableSpec, Timestamp};
use crate::schema::lenient::Text;
use crate::source::{Api, Endpoint, Envelope, Item, ItemKey, Method, Paging, RawContext, Source};
use crate::table_row;

/// The products-with-expedition source.
pub struct ProductsWithExpedition;

table_row! {
    /// A row of `products_with_expedition`: the product's columns, then its expedition and that
    /// expedition's current status as the logistics system reports it.
    pub struct ProductWithExpeditionRow<'a> in "products_with_expedition" key ["subscription_device_id"] {
        expedition_id: Option<Cow<'a, str>>,
        current_status_id: Option<Cow<'a, str>>,
        current_status: Option<Cow<'a, str>>,
        current_status_description: Option<Cow<'a, str>>,
        current_status_final: Option<bool>,
        current_status_reshippable: Option<bool>,
        current_status_reason_code: Option<Cow<'a, str>>,
        current_status_reason_description: Option<Cow<'a, str>>,
        current_status_at: Option<Timestamp>,
    }
    groups [PRODUCT_COLUMNS]
}

impl Source for ProductsWithExpedition {
    fn name(&self) -> &'static str {
        "products_with_expedition"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::Logistics,
            method: Method::Get,
            path: "/v1/orgs/{tenant}/products-with-expedition",
            paging: Paging::PageNumber,
            raw: RawContext::Body,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![ProductWithExpeditionRow::spec()]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        &[Envelope {
            items: &["products"],
            context: &[],
        }]
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let mut p: Product<'a> = read_item(item.bytes)?;
        let device = required_text(p.subscription_device_id.clone(), "subscription_device_id")?;
        let mut row = ProductWithExpeditionRow {
            groups: Vec::with_capacity(17),
            ..Default::default()
        };
        if let Some(e) = p.associated_expedition.take() {
            row.expedition_id = text(e.expedition_id);
            if let Some(s) = e.current_status {
                row.current_status_at = rows.timestamp(
                    s.timestamp.as_ref().map(Text::as_str),
                    "associated_expedition.current_status.timestamp",
                )?;
                row.current_status_id = text(s.id);
                row.current_status = text(s.value);
                row.current_status_description = text(s.description);
                row.current_status_final = s.is_final.map(|b| b.0);
                row.current_status_reshippable = s.reshippable.map(|b| b.0);
                row.current_status_reason_code = text(s.reason_code);
                row.current_status_reason_description = text(s.reason_description);
            }
        }
        let updated_at = row.current_status_at.map(|t| t.0);
        PRODUCT_COLUMNS.cells(p, &mut row.groups);
        rows.push(row);
        Ok(ItemKey::updated(device, updated_at))
    }
}
