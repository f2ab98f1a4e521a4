//! `expeditions/`: shipments with their status histories and products (seed 004 `Expedition`).

use std::borrow::Cow;

use serde::Deserialize;

use super::logistics::{PRODUCT_COLUMNS, Product, Status};
use super::{read_item, required_text, text};
use crate::schema::Rows;
use crate::schema::columns::{Row, TableSpec, Timestamp};
use crate::schema::lenient::{Bool, Text, opt_text};
use crate::source::{Api, Endpoint, Envelope, Item, ItemKey, Method, Paging, RawContext, Source};
use crate::table_row;

/// The expeditions source.
pub struct Expeditions;

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Expedition<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    expedition_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    created_date: Option<Text<'a>>,
    transport: Option<Transport<'a>>,
    tracking: Option<Tracking<'a>>,
    status_history: Option<Vec<Status<'a>>>,
    products: Option<Vec<Product<'a>>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Transport<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    courier_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    delivery_service: Option<Text<'a>>,
    verify_identity: Option<Bool>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Tracking<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    tracking_link: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    return_code: Option<Text<'a>>,
}

table_row! {
    /// A row of `expeditions`.
    pub struct ExpeditionRow<'a> in "expeditions" key ["expedition_id"] {
        expedition_id: Option<Cow<'a, str>>,
        created_date: Option<Timestamp>,
        courier_id: Option<Cow<'a, str>>,
        delivery_service: Option<Cow<'a, str>>,
        verify_identity: Option<bool>,
        tracking_link: Option<Cow<'a, str>>,
        return_code: Option<Cow<'a, str>>,
        status_count: Option<i32>,
        product_count: Option<i32>,
    }
    groups []
}

table_row! {
    /// A row of `expedition_status_history`, in the order the API lists them.
    pub struct ExpeditionStatusRow<'a> in "expedition_status_history" key ["expedition_id", "position"] {
        expedition_id: Option<Cow<'a, str>>,
        position: Option<i32>,
        status_id: Option<Cow<'a, str>>,
        status: Option<Cow<'a, str>>,
        description: Option<Cow<'a, str>>,
        is_final: Option<bool>,
        reshippable: Option<bool>,
        reason_code: Option<Cow<'a, str>>,
        reason_description: Option<Cow<'a, str>>,
        status_at: Option<Timestamp>,
    }
    groups []
}

table_row! {
    /// A row of `expedition_products`.
    pub struct ExpeditionProductRow<'a> in "expedition_products" key ["expedition_id", "position"] {
        expedition_id: Option<Cow<'a, str>>,
        position: Option<i32>,
    }
    groups [PRODUCT_COLUMNS]
}

impl Source for Expeditions {
    fn name(&self) -> &'static str {
        "expeditions"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::Logistics,
            method: Method::Get,
            path: "/v1/orgs/{tenant}/expeditions",
            paging: Paging::PageNumber,
            raw: RawContext::Body,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![
            ExpeditionRow::spec(),
            ExpeditionStatusRow::spec(),
            ExpeditionProductRow::spec(),
        ]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        &[Envelope {
            items: &["expeditions"],
            context: &[],
        }]
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let e: Expedition<'a> = read_item(item.bytes)?;
        let id = required_text(e.expedition_id, "expedition_id")?;
        let history = e.status_history.unwrap_or_default();
        let products = e.products.unwrap_or_default();
        let mut statuses = Vec::with_capacity(history.len());
        for (position, s) in history.into_iter().enumerate() {
            statuses.push(ExpeditionStatusRow {
                expedition_id: Some(id.clone()),
                position: Some(position as i32),
                status_at: rows.timestamp(s.timestamp.as_ref().map(Text::as_str), "status_history.timestamp")?,
                status_id: text(s.id),
                status: text(s.value),
                description: text(s.description),
                is_final: s.is_final.map(|b| b.0),
                reshippable: s.reshippable.map(|b| b.0),
                reason_code: text(s.reason_code),
                reason_description: text(s.reason_description),
                groups: Vec::new(),
            });
        }
        let (courier_id, delivery_service, verify_identity) = match e.transport {
            Some(t) => (
                text(t.courier_id),
                text(t.delivery_service),
                t.verify_identity.map(|b| b.0),
            ),
            None => (None, None, None),
        };
        let (tracking_link, return_code) = match e.tracking {
            Some(t) => (text(t.tracking_link), text(t.return_code)),
            None => (None, None),
        };
        let created_date = rows.timestamp(e.created_date.as_ref().map(Text::as_str), "created_date")?;
        rows.push(ExpeditionRow {
            expedition_id: Some(id.clone()),
            created_date,
            courier_id,
            delivery_service,
            verify_identity,
            tracking_link,
            return_code,
            status_count: Some(statuses.len() as i32),
            product_count: Some(products.len() as i32),
            groups: Vec::new(),
        });
        for s in statuses {
            rows.push(s);
        }
        for (position, p) in products.into_iter().enumerate() {
            let mut r = ExpeditionProductRow {
                expedition_id: Some(id.clone()),
                position: Some(position as i32),
                groups: Vec::with_capacity(17),
            };
            PRODUCT_COLUMNS.cells(p, &mut r.groups);
            rows.push(r);
        }
        Ok(ItemKey::new(id))
    }
}
