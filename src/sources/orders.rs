//! `orders/`: logistics orders and their products (seed 004 `Order`, `ArrayOfOrders` pages).

use std::borrow::Cow;

use serde::Deserialize;

use super::logistics::{
    Address, AddressColumns, Client, DataDelivery, DataSales, DeliveryColumns, PRODUCT_COLUMNS, PersonColumns, Product,
    SalesColumns,
};
use super::{Api, Endpoint, Item, ItemKey, Paging, Source, read_item, required_text};
use crate::extract::raw::RawContext;
use crate::extract::shape::Envelope;
use crate::normalize::Rows;
use crate::normalize::columns::{Money, Row, TableSpec};
use crate::normalize::lenient::{Amount, Bool, Int32, Text};
use crate::table_row;

/// The orders source.
pub struct Orders;

static CLIENT: PersonColumns = PersonColumns {
    names: [
        "client_name",
        "client_surnames",
        "client_commercial_name",
        "client_email",
        "client_document_id",
        "client_document_type",
        "client_phone_prefix",
        "client_phone_number",
    ],
};
static CLIENT_ADDRESS: AddressColumns = AddressColumns {
    names: [
        "client_street_type",
        "client_street",
        "client_street_number",
        "client_address_details",
        "client_city",
        "client_zip_code",
        "client_province",
        "client_country",
    ],
};
static INVOICE_CLIENT: PersonColumns = PersonColumns {
    names: [
        "invoice_client_name",
        "invoice_client_surnames",
        "invoice_client_commercial_name",
        "invoice_client_email",
        "invoice_client_document_id",
        "invoice_client_document_type",
        "invoice_client_phone_prefix",
        "invoice_client_phone_number",
    ],
};
static INVOICE_ADDRESS: AddressColumns = AddressColumns {
    names: [
        "invoice_street_type",
        "invoice_street",
        "invoice_street_number",
        "invoice_address_details",
        "invoice_city",
        "invoice_zip_code",
        "invoice_province",
        "invoice_country",
    ],
};
static SHIPPING_CONTACT: PersonColumns = PersonColumns {
    names: [
        "shipping_contact_name",
        "shipping_contact_surnames",
        "shipping_contact_commercial_name",
        "shipping_contact_email",
        "shipping_contact_document_id",
        "shipping_contact_document_type",
        "shipping_contact_phone_prefix",
        "shipping_contact_phone_number",
    ],
};
static SHIPPING_ADDRESS: AddressColumns = AddressColumns {
    names: [
        "shipping_street_type",
        "shipping_street",
        "shipping_street_number",
        "shipping_address_details",
        "shipping_city",
        "shipping_zip_code",
        "shipping_province",
        "shipping_country",
    ],
};

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
    subscription_id: Option<Text<'a>>,
    work_order: Option<Text<'a>>,
    order_id: Option<Text<'a>>,
    order_id_crm: Option<Text<'a>>,
    business_process: Option<Text<'a>>,
    convergent: Option<Bool>,
    language: Option<Text<'a>>,
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

fn text<'a>(t: Option<Text<'a>>) -> Option<Cow<'a, str>> {
    t.map(|t| t.0)
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
