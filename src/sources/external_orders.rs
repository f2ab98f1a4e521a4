//! `external_orders/`: the logistics operator's delivery records (seed 004 `ExternalOrder`),
//! with their journeys, devices and the remaining payment collected on delivery.

use std::borrow::Cow;

use serde::Deserialize;

use super::logistics::{Address, AddressColumns, Client, PersonColumns};
use super::{read_item, required_text, text};
use crate::schema::Rows;
use crate::schema::columns::{Money, Row, TableSpec, Timestamp};
use crate::schema::lenient::{Amount, Bool, Float, Text, opt_text};
use crate::source::{Api, Endpoint, Envelope, Item, ItemKey, Method, Paging, RawContext, Source, composite_key};
use crate::table_row;

/// The external orders source.
pub struct ExternalOrders;

static CUSTOMER: PersonColumns = crate::person_columns!("customer");
static CUSTOMER_ADDRESS: AddressColumns = crate::address_columns!("customer", "zipcode", "region");

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct ExternalOrder<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    order_id_external: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    reexpedition: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    order_date: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    logistics_operator: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    delivery_type: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    process_type: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    logistic_operation: Option<Text<'a>>,
    portability: Option<Bool>,
    #[serde(default, deserialize_with = "opt_text")]
    business: Option<Text<'a>>,
    status: Option<ExternalStatus<'a>>,
    journeys: Option<Vec<Journey<'a>>>,
    customer_delivering_info: Option<CustomerDeliveringInfo<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct ExternalStatus<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    description: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    timestamp: Option<Text<'a>>,
    reason: Option<Reason<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Reason<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    code: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    description: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct CustomerDeliveringInfo<'a> {
    address: Option<Address<'a>>,
    client: Option<Client<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    language: Option<Text<'a>>,
    updated: Option<Bool>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Journey<'a> {
    devices: Option<Vec<Device<'a>>>,
    transport: Option<Transport<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Transport<'a> {
    delivery_details: Option<DeliveryDetails<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    courier: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    service: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    tracking_link: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    expedition_number: Option<Text<'a>>,
    delivery_note: Option<DeliveryNote<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct DeliveryDetails<'a> {
    package: Option<Package>,
    coverage: Option<Bool>,
    secure_delivery: Option<Bool>,
    remaining_payment: Option<Price<'a>>,
    recipient_verification: Option<RecipientVerification>,
}

#[derive(Deserialize)]
struct Package {
    weight: Option<Float>,
    dimensions: Option<Float>,
}

#[derive(Deserialize)]
struct RecipientVerification {
    exclusive_delivery: Option<Bool>,
    verification: Option<Verification>,
}

#[derive(Deserialize)]
struct Verification {
    required: Option<Bool>,
    completed: Option<Bool>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct DeliveryNote<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    delivery_note_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    link: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Price<'a> {
    total: Option<Amount>,
    #[serde(default, deserialize_with = "opt_text")]
    currency: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Device<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    reference: Option<Text<'a>>,
    subscription: Option<Subscription<'a>>,
    #[serde(rename = "type")]
    kind: Option<DeviceType<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    replacement: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    identifier: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    additional_identifier: Option<Text<'a>>,
    active: Option<Bool>,
    #[serde(default, deserialize_with = "opt_text")]
    subscription_device_id: Option<Text<'a>>,
    price: Option<DevicePrice<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Subscription<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    subscription_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    order_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    msisdn: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct DeviceType<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    action_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    family_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct DevicePrice<'a> {
    markup: Option<Price<'a>>,
    no_markup: Option<Price<'a>>,
}

table_row! {
    /// A row of `external_orders`.
    pub struct ExternalOrderRow<'a> in "external_orders" key ["order_id_external", "reexpedition"] {
        order_id_external: Option<Cow<'a, str>>,
        reexpedition: Option<Cow<'a, str>>,
        order_date: Option<Timestamp>,
        logistics_operator: Option<Cow<'a, str>>,
        delivery_type: Option<Cow<'a, str>>,
        process_type: Option<Cow<'a, str>>,
        logistic_operation: Option<Cow<'a, str>>,
        portability: Option<bool>,
        business: Option<Cow<'a, str>>,
        status_id: Option<Cow<'a, str>>,
        status_description: Option<Cow<'a, str>>,
        status_at: Option<Timestamp>,
        status_reason_code: Option<Cow<'a, str>>,
        status_reason_description: Option<Cow<'a, str>>,
        customer_language: Option<Cow<'a, str>>,
        customer_updated: Option<bool>,
        journey_count: Option<i32>,
    }
    groups [CUSTOMER, CUSTOMER_ADDRESS]
}

table_row! {
    /// A row of `external_order_journeys`: `journey_index` is the 0-based position in `journeys`.
    pub struct JourneyRow<'a> in "external_order_journeys" key ["order_id_external", "reexpedition", "journey_index"] {
        order_id_external: Option<Cow<'a, str>>,
        reexpedition: Option<Cow<'a, str>>,
        journey_index: Option<i32>,
        courier: Option<Cow<'a, str>>,
        service: Option<Cow<'a, str>>,
        tracking_link: Option<Cow<'a, str>>,
        expedition_number: Option<Cow<'a, str>>,
        delivery_note_id: Option<Cow<'a, str>>,
        delivery_note_link: Option<Cow<'a, str>>,
        package_weight: Option<f64>,
        package_dimensions: Option<f64>,
        coverage: Option<bool>,
        secure_delivery: Option<bool>,
        remaining_payment_total: Option<Money>,
        remaining_payment_currency: Option<Cow<'a, str>>,
        exclusive_delivery: Option<bool>,
        verification_required: Option<bool>,
        verification_completed: Option<bool>,
        device_count: Option<i32>,
    }
    groups []
}

table_row! {
    /// A row of `external_order_devices`.
    pub struct JourneyDeviceRow<'a> in "external_order_devices" key ["order_id_external", "reexpedition", "journey_index", "position"] {
        order_id_external: Option<Cow<'a, str>>,
        reexpedition: Option<Cow<'a, str>>,
        journey_index: Option<i32>,
        position: Option<i32>,
        subscription_device_id: Option<Cow<'a, str>>,
        reference: Option<Cow<'a, str>>,
        subscription_id: Option<Cow<'a, str>>,
        subscription_order_id: Option<Cow<'a, str>>,
        subscription_msisdn: Option<Cow<'a, str>> => Msisdn,
        type_action_id: Option<Cow<'a, str>>,
        type_family_id: Option<Cow<'a, str>>,
        type_id: Option<Cow<'a, str>>,
        replacement: Option<Cow<'a, str>>,
        identifier: Option<Cow<'a, str>>,
        additional_identifier: Option<Cow<'a, str>>,
        active: Option<bool>,
        price_markup_total: Option<Money>,
        price_markup_currency: Option<Cow<'a, str>>,
        price_no_markup_total: Option<Money>,
        price_no_markup_currency: Option<Cow<'a, str>>,
    }
    groups []
}

fn flag(b: Option<Bool>) -> Option<bool> {
    b.map(|b| b.0)
}

fn price<'a>(p: Option<Price<'a>>) -> (Option<Money>, Option<Cow<'a, str>>) {
    p.map_or((None, None), |p| (p.total.map(|a| a.0), text(p.currency)))
}

impl Source for ExternalOrders {
    fn name(&self) -> &'static str {
        "external_orders"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::Logistics,
            method: Method::Get,
            path: "/v1/orgs/{tenant}/external-orders",
            paging: Paging::PageNumber,
            raw: RawContext::Body,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![ExternalOrderRow::spec(), JourneyRow::spec(), JourneyDeviceRow::spec()]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        &[
            Envelope {
                items: &["external_orders"],
                context: &[],
            },
            Envelope {
                items: &["orders"],
                context: &[],
            },
        ]
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let o: ExternalOrder<'a> = read_item(item.bytes)?;
        let id = required_text(o.order_id_external, "order_id_external")?;
        // Each re-expedition (R0, R1, ...) is its own record: the pair is the key, so R1 never
        // replaces R0 (whose journeys and courier amounts finance still reconciles).
        let reexpedition = required_text(o.reexpedition, "reexpedition")?;
        let order_date = rows.timestamp(o.order_date.as_ref().map(Text::as_str), "order_date")?;
        let journeys = o.journeys.unwrap_or_default();
        let mut row = ExternalOrderRow {
            order_id_external: Some(id.clone()),
            reexpedition: Some(reexpedition.clone()),
            order_date,
            logistics_operator: text(o.logistics_operator),
            delivery_type: text(o.delivery_type),
            process_type: text(o.process_type),
            logistic_operation: text(o.logistic_operation),
            portability: flag(o.portability),
            business: text(o.business),
            journey_count: Some(journeys.len() as i32),
            ..Default::default()
        };
        if let Some(s) = o.status {
            row.status_at = rows.timestamp(s.timestamp.as_ref().map(Text::as_str), "status.timestamp")?;
            row.status_id = text(s.id);
            row.status_description = text(s.description);
            if let Some(r) = s.reason {
                row.status_reason_code = text(r.code);
                row.status_reason_description = text(r.description);
            }
        }
        let (address, client) = match o.customer_delivering_info {
            Some(c) => {
                row.customer_language = text(c.language);
                row.customer_updated = flag(c.updated);
                (c.address, c.client)
            }
            None => (None, None),
        };
        CUSTOMER.cells(client, &mut row.groups);
        CUSTOMER_ADDRESS.cells(address, &mut row.groups);
        let updated_at = row.status_at.map(|t| t.0);
        rows.push(row);

        for (index, journey) in journeys.into_iter().enumerate() {
            let devices = journey.devices.unwrap_or_default();
            let mut j = JourneyRow {
                order_id_external: Some(id.clone()),
                reexpedition: Some(reexpedition.clone()),
                journey_index: Some(index as i32),
                device_count: Some(devices.len() as i32),
                ..Default::default()
            };
            if let Some(t) = journey.transport {
                j.courier = text(t.courier);
                j.service = text(t.service);
                j.tracking_link = text(t.tracking_link);
                j.expedition_number = text(t.expedition_number);
                if let Some(n) = t.delivery_note {
                    j.delivery_note_id = text(n.delivery_note_id);
                    j.delivery_note_link = text(n.link);
                }
                if let Some(d) = t.delivery_details {
                    if let Some(p) = d.package {
                        j.package_weight = p.weight.map(|f| f.0);
                        j.package_dimensions = p.dimensions.map(|f| f.0);
                    }
                    j.coverage = flag(d.coverage);
                    j.secure_delivery = flag(d.secure_delivery);
                    (j.remaining_payment_total, j.remaining_payment_currency) = price(d.remaining_payment);
                    if let Some(r) = d.recipient_verification {
                        j.exclusive_delivery = flag(r.exclusive_delivery);
                        if let Some(v) = r.verification {
                            j.verification_required = flag(v.required);
                            j.verification_completed = flag(v.completed);
                        }
                    }
                }
            }
            rows.push(j);
            for (position, d) in devices.into_iter().enumerate() {
                let mut row = JourneyDeviceRow {
                    order_id_external: Some(id.clone()),
                    reexpedition: Some(reexpedition.clone()),
                    journey_index: Some(index as i32),
                    position: Some(position as i32),
                    subscription_device_id: text(d.subscription_device_id),
                    reference: text(d.reference),
                    replacement: text(d.replacement),
                    identifier: text(d.identifier),
                    additional_identifier: text(d.additional_identifier),
                    active: flag(d.active),
                    ..Default::default()
                };
                if let Some(s) = d.subscription {
                    row.subscription_id = text(s.subscription_id);
                    row.subscription_order_id = text(s.order_id);
                    row.subscription_msisdn = text(s.msisdn);
                }
                if let Some(t) = d.kind {
                    row.type_action_id = text(t.action_id);
                    row.type_family_id = text(t.family_id);
                    row.type_id = text(t.id);
                }
                if let Some(p) = d.price {
                    (row.price_markup_total, row.price_markup_currency) = price(p.markup);
                    (row.price_no_markup_total, row.price_no_markup_currency) = price(p.no_markup);
                }
                rows.push(row);
            }
        }
        Ok(ItemKey::updated(composite_key(&[&id, &reexpedition]), updated_at))
    }
}
