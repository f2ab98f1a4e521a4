//! `stock/`: available quantity per warehouse and product code (seed 004 `StockItem`, or CSV
//! with `warehouse_id,product_id,available_quantity`).

use std::borrow::Cow;

use serde::Deserialize;

use super::{read_item, required_text};
use crate::schema::Rows;
use crate::schema::columns::{Row, TableSpec};
use crate::schema::lenient::{Int64, Text, opt_text};
use crate::source::{Api, Endpoint, Envelope, Item, ItemKey, Method, Paging, RawContext, Source, composite_key};
use crate::table_row;

/// The stock source.
pub struct Stock;

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct StockItem<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    warehouse_id: Option<Text<'a>>,
    /// The product code (`product_id` in the API).
    #[serde(default, deserialize_with = "opt_text")]
    product_id: Option<Text<'a>>,
    available_quantity: Option<Int64>,
}

table_row! {
    /// A row of `stock`.
    pub struct StockRow<'a> in "stock" key ["warehouse_id", "product_code"] {
        warehouse_id: Option<Cow<'a, str>>,
        product_code: Option<Cow<'a, str>>,
        available_quantity: Option<i64>,
    }
    groups []
}

impl Source for Stock {
    fn name(&self) -> &'static str {
        "stock"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::Logistics,
            method: Method::Get,
            path: "/v1/stock",
            paging: Paging::Single,
            raw: RawContext::Body,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![StockRow::spec()]
    }

    fn csv_columns(&self) -> &'static [&'static str] {
        &["warehouse_id", "product_id", "available_quantity"]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        &[Envelope {
            items: &["data"],
            context: &[],
        }]
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let s: StockItem<'a> = read_item(item.bytes)?;
        let warehouse = required_text(s.warehouse_id, "warehouse_id")?;
        let product = required_text(s.product_id, "product_id")?;
        let key = composite_key(&[&warehouse, &product]);
        rows.push(StockRow {
            warehouse_id: Some(warehouse),
            product_code: Some(product),
            available_quantity: s.available_quantity.map(|q| q.0),
            groups: Vec::new(),
        });
        Ok(ItemKey::new(key))
    }
}
