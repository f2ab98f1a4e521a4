//! Models the logistics API's sources share (seed 004): clients, addresses, products, sales
//! data, and the column groups they flatten into.

use std::borrow::Cow;

use serde::Deserialize;

use super::text;
use crate::schema::columns::{Cell, ColumnSpec, ColumnType};
use crate::schema::lenient::{Amount, Bool, Int32, Text, opt_text};
use crate::schema::pii::PiiKind;

/// `Client` / `ExternalClient`: a person or company.
#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "'de: 'a"))]
pub struct Client<'a> {
    identity: Option<Identity<'a>>,
    contact_phone: Option<Phone<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    name: Option<Text<'a>>,
    surnames: Option<Vec<Text<'a>>>,
    #[serde(default, deserialize_with = "opt_text")]
    email: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    commercial_name: Option<Text<'a>>,
    /// The client's address (orders, pickups).
    pub address: Option<Address<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Identity<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    document_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    document_type: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Phone<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    phone_number: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    prefix: Option<Text<'a>>,
}

/// `Address` (orders, pickups) and `ExternalAddress` (the logistics operator), in one model.
#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "'de: 'a"))]
pub struct Address<'a> {
    #[serde(alias = "building_street_type")]
    #[serde(default, deserialize_with = "opt_text")]
    street_type: Option<Text<'a>>,
    #[serde(alias = "building_street_name")]
    #[serde(default, deserialize_with = "opt_text")]
    street: Option<Text<'a>>,
    #[serde(alias = "building_number")]
    #[serde(default, deserialize_with = "opt_text")]
    number: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    additional_details: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    bis: Option<Text<'a>>,
    #[serde(alias = "building_floor")]
    #[serde(default, deserialize_with = "opt_text")]
    floor: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    block: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    stair: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    letter: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    building_others: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    city: Option<Text<'a>>,
    #[serde(alias = "zipcode")]
    #[serde(default, deserialize_with = "opt_text")]
    zip_code: Option<Text<'a>>,
    #[serde(alias = "region")]
    #[serde(default, deserialize_with = "opt_text")]
    province: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    country: Option<Text<'a>>,
}

/// The [`PersonColumns`] of a prefix: `person_columns!("client")` names `client_name`...
#[macro_export]
macro_rules! person_columns {
    ($p:literal) => {
        $crate::sources::logistics::PersonColumns {
            names: [
                concat!($p, "_name"),
                concat!($p, "_surnames"),
                concat!($p, "_commercial_name"),
                concat!($p, "_email"),
                concat!($p, "_document_id"),
                concat!($p, "_document_type"),
                concat!($p, "_phone_prefix"),
                concat!($p, "_phone_number"),
            ],
        }
    };
}

/// The [`AddressColumns`] of a prefix: `address_columns!("shipping", "zip_code", "province")`
/// names `shipping_street`..., with the zip and region columns named as the API names them.
#[macro_export]
macro_rules! address_columns {
    ($p:literal, $zip:literal, $region:literal) => {
        $crate::sources::logistics::AddressColumns {
            names: [
                concat!($p, "_street_type"),
                concat!($p, "_street"),
                concat!($p, "_street_number"),
                concat!($p, "_address_details"),
                concat!($p, "_city"),
                concat!($p, "_", $zip),
                concat!($p, "_", $region),
                concat!($p, "_country"),
            ],
        }
    };
}

/// The columns a [`Client`] flattens into, under a prefix.
pub struct PersonColumns {
    /// name, surnames, commercial_name, email, document_id, document_type, phone_prefix, phone_number
    pub names: [&'static str; 8],
}

const PERSON_KINDS: [Option<PiiKind>; 8] = [
    Some(PiiKind::Name),
    Some(PiiKind::Name),
    Some(PiiKind::Name),
    Some(PiiKind::Email),
    Some(PiiKind::Document),
    None,
    None,
    Some(PiiKind::Phone),
];

impl PersonColumns {
    /// The group's columns.
    pub fn column_specs(&self) -> Vec<ColumnSpec> {
        self.names
            .iter()
            .zip(PERSON_KINDS)
            .map(|(name, pii)| ColumnSpec {
                name,
                ty: ColumnType::Text,
                pii,
            })
            .collect()
    }

    /// Appends the group's cells for `client`.
    pub fn cells<'a>(&self, client: Option<Client<'a>>, out: &mut Vec<Cell<'a>>) {
        let c = client.unwrap_or_default();
        let (document_id, document_type) = c
            .identity
            .map_or((None, None), |i| (text(i.document_id), text(i.document_type)));
        let (prefix, number) = c
            .contact_phone
            .map_or((None, None), |p| (text(p.prefix), text(p.phone_number)));
        let surnames = c
            .surnames
            .filter(|s| !s.is_empty())
            .map(|s| Cow::Owned(s.iter().map(Text::as_str).collect::<Vec<_>>().join(" ")));
        out.extend([
            Cell::text(text(c.name)),
            Cell::text(surnames),
            Cell::text(text(c.commercial_name)),
            Cell::text(text(c.email)),
            Cell::text(document_id),
            Cell::text(document_type),
            Cell::text(prefix),
            Cell::text(number),
        ]);
    }
}

/// The columns an [`Address`] flattens into, under a prefix.
pub struct AddressColumns {
    /// street_type, street, number, address_details, city, zip_code, province, country
    pub names: [&'static str; 8],
}

const ADDRESS_KINDS: [Option<PiiKind>; 8] = [
    Some(PiiKind::Street),
    Some(PiiKind::Street),
    Some(PiiKind::Street),
    Some(PiiKind::Street),
    None,
    None,
    None,
    None,
];

impl AddressColumns {
    /// The group's columns.
    pub fn column_specs(&self) -> Vec<ColumnSpec> {
        self.names
            .iter()
            .zip(ADDRESS_KINDS)
            .map(|(name, pii)| ColumnSpec {
                name,
                ty: ColumnType::Text,
                pii,
            })
            .collect()
    }

    /// Appends the group's cells for `address`.
    pub fn cells<'a>(&self, address: Option<Address<'a>>, out: &mut Vec<Cell<'a>>) {
        let a = address.unwrap_or_default();
        // Floor, block, stair, letter... are parts of the street address: kept together.
        let details: Vec<String> = [
            ("bis", a.bis),
            ("floor", a.floor),
            ("block", a.block),
            ("stair", a.stair),
            ("letter", a.letter),
            ("details", a.additional_details),
            ("others", a.building_others),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}: {}", v.as_str())))
        .collect();
        out.extend([
            Cell::text(text(a.street_type)),
            Cell::text(text(a.street)),
            Cell::text(text(a.number)),
            Cell::text((!details.is_empty()).then(|| details.join("; "))),
            Cell::text(text(a.city)),
            Cell::text(text(a.zip_code)),
            Cell::text(text(a.province)),
            Cell::text(text(a.country)),
        ]);
    }
}

/// `DataSales`.
#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "'de: 'a"))]
pub struct DataSales<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    agent: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    channel: Option<Text<'a>>,
    #[serde(rename = "type")]
    #[serde(default, deserialize_with = "opt_text")]
    kind: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    group: Option<Text<'a>>,
}

/// The `data_sales_*` columns.
pub struct SalesColumns;

impl SalesColumns {
    /// The group's columns.
    pub fn column_specs(&self) -> Vec<ColumnSpec> {
        [
            "data_sales_agent",
            "data_sales_channel",
            "data_sales_type",
            "data_sales_group",
        ]
        .into_iter()
        .map(|name| ColumnSpec {
            name,
            ty: ColumnType::Text,
            pii: None,
        })
        .collect()
    }

    /// Appends the group's cells.
    pub fn cells<'a>(&self, sales: Option<DataSales<'a>>, out: &mut Vec<Cell<'a>>) {
        let s = sales.unwrap_or_default();
        out.extend([
            Cell::text(text(s.agent)),
            Cell::text(text(s.channel)),
            Cell::text(text(s.kind)),
            Cell::text(text(s.group)),
        ]);
    }
}

/// `DataDelivery` / `DataTransport`: how a shipment travels.
#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "'de: 'a"))]
pub struct DataDelivery<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    courier_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    delivery_service: Option<Text<'a>>,
    exclusive: Option<Bool>,
    verify_identity: Option<Bool>,
    retrieve_contract: Option<Bool>,
    #[serde(default, deserialize_with = "opt_text")]
    group_by: Option<Text<'a>>,
    secure_delivery: Option<Bool>,
    #[serde(default, deserialize_with = "opt_text")]
    delivery_point_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    delivery_shop_name: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    return_code: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    delivery_type: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    ol_comments: Option<Text<'a>>,
}

/// The delivery columns.
pub struct DeliveryColumns;

const DELIVERY: [(&str, ColumnType, Option<PiiKind>); 12] = [
    ("courier_id", ColumnType::Text, None),
    ("delivery_service", ColumnType::Text, None),
    ("exclusive", ColumnType::Bool, None),
    ("verify_identity", ColumnType::Bool, None),
    ("retrieve_contract", ColumnType::Bool, None),
    ("group_by", ColumnType::Text, None),
    ("secure_delivery", ColumnType::Bool, None),
    ("delivery_point_id", ColumnType::Text, None),
    ("delivery_shop_name", ColumnType::Text, None),
    ("return_code", ColumnType::Text, None),
    ("shipping_delivery_type", ColumnType::Text, None),
    ("ol_comments", ColumnType::Text, Some(PiiKind::FreeText)),
];

impl DeliveryColumns {
    /// The group's columns.
    pub fn column_specs(&self) -> Vec<ColumnSpec> {
        DELIVERY
            .iter()
            .map(|(name, ty, pii)| ColumnSpec {
                name,
                ty: *ty,
                pii: *pii,
            })
            .collect()
    }

    /// Appends the group's cells.
    pub fn cells<'a>(&self, d: Option<DataDelivery<'a>>, out: &mut Vec<Cell<'a>>) {
        let d = d.unwrap_or_default();
        out.extend([
            Cell::text(text(d.courier_id)),
            Cell::text(text(d.delivery_service)),
            Cell::bool(d.exclusive.map(|b| b.0)),
            Cell::bool(d.verify_identity.map(|b| b.0)),
            Cell::bool(d.retrieve_contract.map(|b| b.0)),
            Cell::text(text(d.group_by)),
            Cell::bool(d.secure_delivery.map(|b| b.0)),
            Cell::text(text(d.delivery_point_id)),
            Cell::text(text(d.delivery_shop_name)),
            Cell::text(text(d.return_code)),
            Cell::text(text(d.delivery_type)),
            Cell::text(text(d.ol_comments)),
        ]);
    }
}

/// A status of an expedition (seed 004 `Status`).
#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub struct Status<'a> {
    /// Status id.
    #[serde(default, deserialize_with = "opt_text")]
    pub id: Option<Text<'a>>,
    /// The status value (`StatusValue`).
    #[serde(default, deserialize_with = "opt_text")]
    pub value: Option<Text<'a>>,
    /// Its description.
    #[serde(default, deserialize_with = "opt_text")]
    pub description: Option<Text<'a>>,
    /// Whether it is a final state of the expedition.
    #[serde(rename = "final")]
    pub is_final: Option<Bool>,
    /// Whether it can be reshipped in a new expedition.
    pub reshippable: Option<Bool>,
    /// Reason code.
    #[serde(default, deserialize_with = "opt_text")]
    pub reason_code: Option<Text<'a>>,
    /// Reason description.
    #[serde(default, deserialize_with = "opt_text")]
    pub reason_description: Option<Text<'a>>,
    /// When it happened.
    #[serde(default, deserialize_with = "opt_text")]
    pub timestamp: Option<Text<'a>>,
}

/// `ProductWithExpedition.associated_expedition`: the expedition the logistics system holds a
/// product in, with its current status.
#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub struct AssociatedExpedition<'a> {
    /// The expedition.
    #[serde(default, deserialize_with = "opt_text")]
    pub expedition_id: Option<Text<'a>>,
    /// Its current status, as the logistics system sees it.
    pub current_status: Option<Status<'a>>,
}

/// `Product`, `ProductBasic`, `PickupProductBasic` and `ProductWithExpedition`, in one model.
#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "'de: 'a"))]
pub struct Product<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    product_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    product_code: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    product_description: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    product_type: Option<Text<'a>>,
    product_type_id: Option<Int32>,
    product_unit_price: Option<Amount>,
    #[serde(default, deserialize_with = "opt_text")]
    icc_imei: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    identifier: Option<Text<'a>>,
    quantity: Option<Int32>,
    #[serde(default, deserialize_with = "opt_text")]
    product_comments: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    msisdn: Option<Text<'a>>,
    financed: Option<Bool>,
    /// The device id that joins orders, expeditions, devices and journeys.
    #[serde(default, deserialize_with = "opt_text")]
    pub subscription_device_id: Option<Text<'a>>,
    remaining_payment: Option<Amount>,
    invoiced: Option<Bool>,
    #[serde(default, deserialize_with = "opt_text")]
    status: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    technology: Option<Text<'a>>,
    /// `ProductWithExpedition` only: its expedition and current status (taken out before the
    /// product columns are filled).
    pub associated_expedition: Option<AssociatedExpedition<'a>>,
}

/// The product columns of `order_products`, `expedition_products` and `pickup_products`.
pub struct ProductColumns;

const PRODUCT: [(&str, ColumnType, Option<PiiKind>); 17] = [
    ("subscription_device_id", ColumnType::Text, None),
    ("product_id", ColumnType::Text, None),
    ("product_code", ColumnType::Text, None),
    ("product_description", ColumnType::Text, None),
    ("product_type", ColumnType::Text, None),
    ("product_type_id", ColumnType::Int32, None),
    ("product_unit_price", ColumnType::Money, None),
    ("icc_imei", ColumnType::Text, None),
    ("identifier", ColumnType::Text, None),
    ("quantity", ColumnType::Int32, None),
    ("product_comments", ColumnType::Text, Some(PiiKind::FreeText)),
    ("msisdn", ColumnType::Text, Some(PiiKind::Msisdn)),
    ("financed", ColumnType::Bool, None),
    ("remaining_payment", ColumnType::Money, None),
    ("invoiced", ColumnType::Bool, None),
    ("status", ColumnType::Text, None),
    ("technology", ColumnType::Text, None),
];

impl ProductColumns {
    /// The group's columns.
    pub fn column_specs(&self) -> Vec<ColumnSpec> {
        PRODUCT
            .iter()
            .map(|(name, ty, pii)| ColumnSpec {
                name,
                ty: *ty,
                pii: *pii,
            })
            .collect()
    }

    /// Appends the group's cells.
    pub fn cells<'a>(&self, p: Product<'a>, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::text(text(p.subscription_device_id)),
            Cell::text(text(p.product_id)),
            Cell::text(text(p.product_code)),
            Cell::text(text(p.product_description)),
            Cell::text(text(p.product_type)),
            Cell::int32(p.product_type_id.map(|v| v.0)),
            Cell::money(p.product_unit_price.map(|v| v.0)),
            Cell::text(text(p.icc_imei)),
            Cell::text(text(p.identifier)),
            Cell::int32(p.quantity.map(|v| v.0)),
            Cell::text(text(p.product_comments)),
            Cell::text(text(p.msisdn)),
            Cell::bool(p.financed.map(|v| v.0)),
            Cell::money(p.remaining_payment.map(|v| v.0)),
            Cell::bool(p.invoiced.map(|v| v.0)),
            Cell::text(text(p.status)),
            Cell::text(text(p.technology)),
        ]);
    }
}

/// The product group every product table uses.
pub static PRODUCT_COLUMNS: ProductColumns = ProductColumns;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_fill_one_cell_per_column() {
        let mut out = Vec::new();
        PersonColumns {
            names: ["a", "b", "c", "d", "e", "f", "g", "h"],
        }
        .cells(None, &mut out);
        assert_eq!(out.len(), 8);
        out.clear();
        ProductColumns.cells(Product::default(), &mut out);
        assert_eq!(out.len(), ProductColumns.column_specs().len());
        out.clear();
        DeliveryColumns.cells(None, &mut out);
        assert_eq!(out.len(), DeliveryColumns.column_specs().len());
        out.clear();
        SalesColumns.cells(None, &mut out);
        assert_eq!(out.len(), SalesColumns.column_specs().len());
        out.clear();
        AddressColumns {
            names: ["a", "b", "c", "d", "e", "f", "g", "h"],
        }
        .cells(None, &mut out);
        assert_eq!(out.len(), 8);
    }
}
