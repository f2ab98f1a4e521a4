//! `orders/`: logistics orders and their products (seed 004 `Order`, `ArrayOfOrders` pages).

use std::borrow::Cow;

use serde::Deserialize;

use super::logistics::{
    Address, AddressColumns, Client, DataDelivery, DataSales, DeliveryColumns, PRODUCT_COLUMNS, PersonColumns, Product,
    SalesColumns,
};
use super::{read_item, required_text, text};
use crate::schema::Rows;
use crate::schema::columns::{Money, Row, TableSpec};
use crate::schema::lenient::{Amount, Bool, Int32, Text, opt_text};
use crate::source::{Api, Endpoint, Envelope, Item, ItemKey, Method, Paging, RawContext, Source};
use crate::table_row;

/// The orders source.
pub struct Orders;

static CLIENT: PersonColumns = crate::person_columns!("client");
static CLIENT_ADDRESS: AddressColumns = crate::address_columns!("client", "zip_code", "province");
static INVOICE_CLIENT: PersonColumns = crate::person_columns!("invoice_client");
static INVOICE_ADDRESS: AddressColumns = crate::address_columns!("invoice", "zip_code", "province");
static SHIPPING_CONTACT: PersonColumns = crate::person_columns!("shipping_contact");
static SHIPPING_ADDRESS: AddressColumns = crate::address_columns!("shipping", "zip_code", "province");

/// An order, field by field as seed 004 gives it.
#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Order<'a> {
    order: Option<NewOrderData<'a>>,
    data_sales: Option<DataSales<'a>>,
    client: Option<Client<'a>>,
    invoice: Option<Invoice<'a>>,
    shipping: Option<Shipping<'a>>,
    products: Option<Vec<Product<'a>>>,
    documentation: Option<Documentation<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct NewOrderData<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    subscription_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    work_order: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    order_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    order_id_crm: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    business_process: Option<Text<'a>>,
    convergent: Option<Bool>,
    #[serde(default, deserialize_with = "opt_text")]
    language: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    delivery_type: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Invoice<'a> {
    address: Option<Address<'a>>,
    client: Option<Client<'a>>,
    data_invoice: Option<DataInvoice>,
}

#[derive(Deserialize)]
struct DataInvoice {
    base: Option<Amount>,
    tax_value: Option<Amount>,
    total_invoice: Option<Amount>,
    discount: Option<Amount>,
    payment_type: Option<Int32>,
    residual_value: Option<Amount>,
    initial_payment: Option<Amount>,
    fee: Option<Fee>,
}

#[derive(Deserialize)]
struct Fee {
    amount: Option<Amount>,
    duration: Option<Int32>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Shipping<'a> {
    address: Option<Address<'a>>,
    contact_data: Option<Client<'a>>,
    data_delivery: Option<DataDelivery<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Documentation<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    letter_type: Option<Text<'a>>,
}

table_row! {
    /// A row of `orders`.
    pub struct OrderRow<'a> in "orders" key ["order_id"] {
        order_id: Option<Cow<'a, str>>,
        subscription_id: Option<Cow<'a, str>>,
        work_order: Option<Cow<'a, str>>,
        order_id_crm: Option<Cow<'a, str>>,
        business_process: Option<Cow<'a, str>>,
        convergent: Option<bool>,
        language: Option<Cow<'a, str>>,
        delivery_type: Option<Cow<'a, str>>,
        letter_type: Option<Cow<'a, str>>,
        product_count: Option<i32>,
        invoice_base: Option<Money>,
        invoice_tax_value: Option<Money>,
        invoice_total: Option<Money>,
        invoice_discount: Option<Money>,
        invoice_payment_type: Option<i32>,
        invoice_residual_value: Option<Money>,
        invoice_initial_payment: Option<Money>,
        invoice_fee_amount: Option<Money>,
        invoice_fee_duration: Option<i32>,
    }
    groups [SalesColumns, CLIENT, CLIENT_ADDRESS, INVOICE_CLIENT, INVOICE_ADDRESS, SHIPPING_CONTACT, SHIPPING_ADDRESS, DeliveryColumns]
}

table_row! {
    /// A row of `order_products`: key `order_id, subscription_device_id` (`position` keeps
    /// products without a device id apart).
    pub struct OrderProductRow<'a> in "order_products" key ["order_id", "subscription_device_id"] {
        order_id: Option<Cow<'a, str>>,
        position: Option<i32>,
    }
    groups [PRODUCT_COLUMNS]
}

fn money(a: Option<Amount>) -> Option<Money> {
    a.map(|a| a.0)
}

impl Source for Orders {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::Logistics,
            method: Method::Get,
            path: "/v1/orgs/{tenant}/orders",
            paging: Paging::PageNumber,
            raw: RawContext::Body,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![OrderRow::spec(), OrderProductRow::spec()]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        &[Envelope {
            items: &["orders"],
            context: &[],
        }]
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let o: Order<'a> = read_item(item.bytes)?;
        let head = o.order.ok_or("missing required key order")?;
        let id = required_text(head.order_id, "order.order_id")?;
        let products = o.products.unwrap_or_default();
        let (inv_address, inv_client, data) = match o.invoice {
            Some(i) => (i.address, i.client, i.data_invoice),
            None => (None, None, None),
        };
        let (ship_address, ship_contact, delivery) = match o.shipping {
            Some(s) => (s.address, s.contact_data, s.data_delivery),
            None => (None, None, None),
        };
        let mut client = o.client;
        let client_address = client.as_mut().and_then(|c| c.address.take());
        let mut row = OrderRow {
            order_id: Some(id.clone()),
            subscription_id: text(head.subscription_id),
            work_order: text(head.work_order),
            order_id_crm: text(head.order_id_crm),
            business_process: text(head.business_process),
            convergent: head.convergent.map(|b| b.0),
            language: text(head.language),
            delivery_type: text(head.delivery_type),
            letter_type: o.documentation.and_then(|d| text(d.letter_type)),
            product_count: Some(products.len() as i32),
            ..Default::default()
        };
        if let Some(d) = data {
            row.invoice_base = money(d.base);
            row.invoice_tax_value = money(d.tax_value);
            row.invoice_total = money(d.total_invoice);
            row.invoice_discount = money(d.discount);
            row.invoice_payment_type = d.payment_type.map(|v| v.0);
            row.invoice_residual_value = money(d.residual_value);
            row.invoice_initial_payment = money(d.initial_payment);
            if let Some(f) = d.fee {
                row.invoice_fee_amount = money(f.amount);
                row.invoice_fee_duration = f.duration.map(|v| v.0);
            }
        }
        SalesColumns.cells(o.data_sales, &mut row.groups);
        CLIENT.cells(client, &mut row.groups);
        CLIENT_ADDRESS.cells(client_address, &mut row.groups);
        INVOICE_CLIENT.cells(inv_client, &mut row.groups);
        INVOICE_ADDRESS.cells(inv_address, &mut row.groups);
        SHIPPING_CONTACT.cells(ship_contact, &mut row.groups);
        SHIPPING_ADDRESS.cells(ship_address, &mut row.groups);
        DeliveryColumns.cells(delivery, &mut row.groups);
        rows.push(row);
        for (position, p) in products.into_iter().enumerate() {
            let mut r = OrderProductRow {
                order_id: Some(id.clone()),
                position: Some(position as i32),
                groups: Vec::with_capacity(17),
            };
            PRODUCT_COLUMNS.cells(p, &mut r.groups);
            rows.push(r);
        }
        Ok(ItemKey::new(id))
    }
}
