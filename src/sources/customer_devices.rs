//! `customer_devices/`: devices, fees and permanence by customer (seed 003
//! `DevicesInfoByCustomerId`; the file name is the customer number when known).

use std::borrow::Cow;

use serde::Deserialize;

use super::{KNOWN_CUSTOMERS, customer_of, fetched_on, read_item, required_text, text};
use crate::schema::Rows;
use crate::schema::columns::{Date, Money, Row, TableSpec, Timestamp};
use crate::schema::lenient::{Amount, Bool, Int32, Text, opt_text};
use crate::source::{
    Api, Endpoint, Envelope, FETCHED_ON, IdSource, Item, ItemKey, Method, Paging, RawContext, Settled, Source,
};
use crate::table_row;

/// The customer devices source.
pub struct CustomerDevices;

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Device<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    start_date: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    subscription_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    subscription_terminal_id: Option<Text<'a>>,
    status: Option<Status<'a>>,
    fees: Option<Fees<'a>>,
    permanence: Option<Permanence<'a>>,
    is_mandatory: Option<Bool>,
    expedition_info: Option<ExpeditionInfo<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    customer_num: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Status<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    value: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Fees<'a> {
    upfront_fee: Option<Amount>,
    installment_plan: Option<InstallmentPlan<'a>>,
    final_installment_plan: Option<InstallmentPlan<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "'de: 'a"))]
struct InstallmentPlan<'a> {
    last_installment_fee: Option<Amount>,
    monthly_fee: Option<Amount>,
    duration: Option<Int32>,
    unpaid_installments: Option<Int32>,
    #[serde(default, deserialize_with = "opt_text")]
    financed_by: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Permanence<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    campaign_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    description: Option<Text<'a>>,
    duration_months: Option<Int32>,
    #[serde(default, deserialize_with = "opt_text")]
    start_date: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    end_date: Option<Text<'a>>,
    category_type: Option<Int32>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct ExpeditionInfo<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    item_number: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    request_date: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    expedition_date: Option<Text<'a>>,
    status: Option<Status<'a>>,
}

table_row! {
    /// A row of `customer_devices`: fees flattened, the installment plan first and the final
    /// plan under `final_*`.
    pub struct CustomerDeviceRow<'a> in "customer_devices" key ["subscription_terminal_id"] {
        subscription_terminal_id: Option<Cow<'a, str>>,
        customer_num: Option<Cow<'a, str>>,
        subscription_id: Option<Cow<'a, str>>,
        start_date: Option<Timestamp>,
        status_id: Option<Cow<'a, str>>,
        status_value: Option<Cow<'a, str>>,
        is_mandatory: Option<bool>,
        upfront_fee: Option<Money>,
        monthly_fee: Option<Money>,
        unpaid_installments: Option<i32>,
        last_installment_fee: Option<Money>,
        financed_by: Option<Cow<'a, str>>,
        installment_duration: Option<i32>,
        final_monthly_fee: Option<Money>,
        final_unpaid_installments: Option<i32>,
        final_last_installment_fee: Option<Money>,
        final_financed_by: Option<Cow<'a, str>>,
        final_installment_duration: Option<i32>,
        permanence_campaign_id: Option<Cow<'a, str>>,
        permanence_description: Option<Cow<'a, str>>,
        permanence_duration_months: Option<i32>,
        permanence_start_date: Option<Timestamp>,
        permanence_end_date: Option<Timestamp>,
        permanence_category_type: Option<i32>,
        expedition_item_number: Option<Cow<'a, str>>,
        expedition_request_date: Option<Timestamp>,
        expedition_date: Option<Timestamp>,
        expedition_status_id: Option<Cow<'a, str>>,
        expedition_status_value: Option<Cow<'a, str>>,
        _fetched_on: Option<Date>,
    }
    groups []
}

impl Source for CustomerDevices {
    fn name(&self) -> &'static str {
        "customer_devices"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::CustomerCare,
            method: Method::Get,
            path: "/v1/orgs/{tenant}/customers/{id}/devices",
            paging: Paging::PerId(IdSource {
                from: "memos",
                pointer: "/customer_num",
                known: KNOWN_CUSTOMERS,
                body: None,
                settled: Settled::Always,
            }),
            raw: RawContext::Answer,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![CustomerDeviceRow::spec()]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        &[
            // A per-id answer as kept raw; `"response": []` is a 404 (none).
            Envelope {
                items: &["response", "devices"],
                context: &[("customer_num", &["_id"]), (FETCHED_ON, &["_fetched_on"])],
            },
            Envelope {
                items: &["response"],
                context: &[("customer_num", &["_id"]), (FETCHED_ON, &["_fetched_on"])],
            },
            Envelope {
                items: &["devices"],
                context: &[("customer_num", &["customer_num"])],
            },
        ]
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let d: Device<'a> = read_item(item.bytes)?;
        let id = required_text(d.subscription_terminal_id, "subscription_terminal_id")?;
        let ts = |v: &Option<Text<'a>>, what: &str| rows.timestamp(v.as_ref().map(Text::as_str), what);
        let start_date = ts(&d.start_date, "start_date")?;
        let (fees_upfront, plan, final_plan) = match d.fees {
            Some(f) => (
                f.upfront_fee,
                f.installment_plan.unwrap_or_default(),
                f.final_installment_plan.unwrap_or_default(),
            ),
            None => (None, InstallmentPlan::default(), InstallmentPlan::default()),
        };
        let mut row = CustomerDeviceRow {
            subscription_terminal_id: Some(id.clone()),
            customer_num: text(d.customer_num).or_else(|| customer_of(item)),
            subscription_id: text(d.subscription_id),
            start_date,
            is_mandatory: d.is_mandatory.map(|b| b.0),
            upfront_fee: fees_upfront.map(|a| a.0),
            monthly_fee: plan.monthly_fee.map(|a| a.0),
            unpaid_installments: plan.unpaid_installments.map(|v| v.0),
            last_installment_fee: plan.last_installment_fee.map(|a| a.0),
            financed_by: text(plan.financed_by),
            installment_duration: plan.duration.map(|v| v.0),
            final_monthly_fee: final_plan.monthly_fee.map(|a| a.0),
            final_unpaid_installments: final_plan.unpaid_installments.map(|v| v.0),
            final_last_installment_fee: final_plan.last_installment_fee.map(|a| a.0),
            final_financed_by: text(final_plan.financed_by),
            final_installment_duration: final_plan.duration.map(|v| v.0),
            _fetched_on: fetched_on(item),
            ..Default::default()
        };
        if let Some(s) = d.status {
            row.status_id = text(s.id);
            row.status_value = text(s.value);
        }
        if let Some(p) = d.permanence {
            row.permanence_start_date = ts(&p.start_date, "permanence.start_date")?;
            row.permanence_end_date = ts(&p.end_date, "permanence.end_date")?;
            row.permanence_campaign_id = text(p.campaign_id);
            row.permanence_description = text(p.description);
            row.permanence_duration_months = p.duration_months.map(|v| v.0);
            row.permanence_category_type = p.category_type.map(|v| v.0);
        }
        if let Some(e) = d.expedition_info {
            row.expedition_request_date = ts(&e.request_date, "expedition_info.request_date")?;
            row.expedition_date = ts(&e.expedition_date, "expedition_info.expedition_date")?;
            row.expedition_item_number = text(e.item_number);
            if let Some(s) = e.status {
                row.expedition_status_id = text(s.id);
                row.expedition_status_value = text(s.value);
            }
        }
        rows.push(row);
        Ok(ItemKey::new(id))
    }
}
