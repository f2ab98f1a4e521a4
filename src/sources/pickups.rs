//! `pickups/`: device collections (seed 004 `Pickup`).

use std::borrow::Cow;

use serde::Deserialize;

use super::logistics::{
    Address, AddressColumns, Client, DataDelivery, DataSales, DeliveryColumns, PRODUCT_COLUMNS, PersonColumns, Product,
    SalesColumns,
};
use super::{read_item, required_text, text};
use crate::schema::Rows;
use crate::schema::columns::{Row, TableSpec};
use crate::schema::lenient::{Bool, Text, opt_text};
use crate::source::{Api, Endpoint, Envelope, Item, ItemKey, Method, Paging, RawContext, Source};
use crate::table_row;

/// The pickups source.
pub struct Pickups;

static CLIENT: PersonColumns = crate::person_columns!("client");
static SHIPPING_CONTACT: PersonColumns = crate::person_columns!("shipping_contact");
static SHIPPING_ADDRESS: AddressColumns = crate::address_columns!("shipping", "zip_code", "province");

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Pickup<'a> {
    order: Option<PickupData<'a>>,
    data_sales: Option<DataSales<'a>>,
    client: Option<Client<'a>>,
    shipping: Option<ShippingPickup<'a>>,
    products: Option<Vec<Product<'a>>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct PickupData<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    subscription_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    pickup_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    order_id_external: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    order_id_crm: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    language: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    business_process: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    reason: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    delivery_type: Option<Text<'a>>,
    access_reused: Option<Bool>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct ShippingPickup<'a> {
    address: Option<Address<'a>>,
    contact_data: Option<Client<'a>>,
    transport_data: Option<DataDelivery<'a>>,
}

table_row! {
    /// A row of `pickups`.
    pub struct PickupRow<'a> in "pickups" key ["pickup_id"] {
        pickup_id: Option<Cow<'a, str>>,
        subscription_id: Option<Cow<'a, str>>,
        order_id_external: Option<Cow<'a, str>>,
        order_id_crm: Option<Cow<'a, str>>,
        language: Option<Cow<'a, str>>,
        business_process: Option<Cow<'a, str>>,
        reason: Option<Cow<'a, str>>,
        delivery_type: Option<Cow<'a, str>>,
        access_reused: Option<bool>,
    }
    groups [SalesColumns, CLIENT, SHIPPING_CONTACT, SHIPPING_ADDRESS, DeliveryColumns]
}

table_row! {
    /// A row of `pickup_products`.
    pub struct PickupProductRow<'a> in "pickup_products" key ["pickup_id", "position"] {
        pickup_id: Option<Cow<'a, str>>,
        position: Option<i32>,
    }
    groups [PRODUCT_COLUMNS]
}

impl Source for Pickups {
    fn name(&self) -> &'static str {
        "pickups"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::Logistics,
            method: Method::Get,
            path: "/v1/orgs/{tenant}/pickups",
            paging: Paging::PageNumber,
            raw: RawContext::Body,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![PickupRow::spec(), PickupProductRow::spec()]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        &[Envelope {
            items: &["pickups"],
            context: &[],
        }]
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let p: Pickup<'a> = read_item(item.bytes)?;
        let head = p.order.ok_or("missing required key order")?;
        let id = required_text(head.pickup_id, "order.pickup_id")?;
        let (address, contact, transport) = match p.shipping {
            Some(s) => (s.address, s.contact_data, s.transport_data),
            None => (None, None, None),
        };
        let mut row = PickupRow {
            pickup_id: Some(id.clone()),
            subscription_id: text(head.subscription_id),
            order_id_external: text(head.order_id_external),
            order_id_crm: text(head.order_id_crm),
            language: text(head.language),
            business_process: text(head.business_process),
            reason: text(head.reason),
            delivery_type: text(head.delivery_type),
            access_reused: head.access_reused.map(|b| b.0),
            groups: Vec::new(),
        };
        SalesColumns.cells(p.data_sales, &mut row.groups);
        CLIENT.cells(p.client, &mut row.groups);
        SHIPPING_CONTACT.cells(contact, &mut row.groups);
        SHIPPING_ADDRESS.cells(address, &mut row.groups);
        DeliveryColumns.cells(transport, &mut row.groups);
        rows.push(row);
        for (position, product) in p.products.unwrap_or_default().into_iter().enumerate() {
            let mut r = PickupProductRow {
                pickup_id: Some(id.clone()),
                position: Some(position as i32),
                groups: Vec::with_capacity(17),
            };
            PRODUCT_COLUMNS.cells(product, &mut r.groups);
            rows.push(r);
        }
        Ok(ItemKey::new(id))
    }
}
