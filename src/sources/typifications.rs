//! `typifications/`: customer-care contact typifications (seed 003 `GetTypificationsResponse`).

use std::borrow::Cow;

use serde::Deserialize;

use super::{KNOWN_CUSTOMERS, customer_of, fetched_on, read_item, required_text, text};
use crate::schema::Rows;
use crate::schema::columns::{Date, Money, Row, TableSpec, Timestamp};
use crate::schema::lenient::{Amount, Text, opt_text};
use crate::source::{
    Api, Endpoint, Envelope, FETCHED_ON, IdSource, Item, ItemKey, Method, Paging, RawContext, Settled, Source,
};
use crate::table_row;

/// The typifications source.
pub struct Typifications;

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Typification<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    created_at: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    channel: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    tenant: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    area: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    user_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    msisdn: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    campaign: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    reason: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    subreason1: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    subreason2: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    result: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    subresult: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    conversation_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    operator: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    description: Option<Text<'a>>,
    initial_fee: Option<Amount>,
    #[serde(default, deserialize_with = "opt_text")]
    customer_num: Option<Text<'a>>,
}

table_row! {
    /// A row of `typifications`.
    pub struct TypificationRow<'a> in "typifications" key ["typification_id"] {
        typification_id: Option<Cow<'a, str>>,
        customer_num: Option<Cow<'a, str>>,
        created_at: Option<Timestamp>,
        channel: Option<Cow<'a, str>>,
        tenant: Option<Cow<'a, str>>,
        area: Option<Cow<'a, str>>,
        user_id: Option<Cow<'a, str>> => Email,
        msisdn: Option<Cow<'a, str>> => Msisdn,
        campaign: Option<Cow<'a, str>>,
        reason: Option<Cow<'a, str>>,
        subreason1: Option<Cow<'a, str>>,
        subreason2: Option<Cow<'a, str>>,
        result: Option<Cow<'a, str>>,
        subresult: Option<Cow<'a, str>>,
        conversation_id: Option<Cow<'a, str>>,
        operator: Option<Cow<'a, str>>,
        description: Option<Cow<'a, str>> => FreeText,
        initial_fee: Option<Money>,
        _fetched_on: Option<Date>,
    }
    groups []
}

impl Source for Typifications {
    fn name(&self) -> &'static str {
        "typifications"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::CustomerCare,
            method: Method::Get,
            path: "/v1/orgs/{tenant}/customers/{id}/typifications",
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
        vec![TypificationRow::spec()]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        &[
            // A per-id answer as kept raw; `"response": []` is a 404 (none).
            Envelope {
                items: &["response", "typifications"],
                context: &[("customer_num", &["_id"]), (FETCHED_ON, &["_fetched_on"])],
            },
            Envelope {
                items: &["response"],
                context: &[("customer_num", &["_id"]), (FETCHED_ON, &["_fetched_on"])],
            },
            Envelope {
                items: &["typifications"],
                context: &[("customer_num", &["customer_num"])],
            },
        ]
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let t: Typification<'a> = read_item(item.bytes)?;
        let id = required_text(t.id, "id")?;
        let created_at = rows.timestamp(t.created_at.as_ref().map(Text::as_str), "created_at")?;
        let customer_num = text(t.customer_num).or_else(|| customer_of(item));
        rows.push(TypificationRow {
            typification_id: Some(id.clone()),
            customer_num,
            created_at,
            channel: text(t.channel),
            tenant: text(t.tenant),
            area: text(t.area),
            user_id: text(t.user_id),
            msisdn: text(t.msisdn),
            campaign: text(t.campaign),
            reason: text(t.reason),
            subreason1: text(t.subreason1),
            subreason2: text(t.subreason2),
            result: text(t.result),
            subresult: text(t.subresult),
            conversation_id: text(t.conversation_id),
            operator: text(t.operator),
            description: text(t.description),
            initial_fee: t.initial_fee.map(|a| a.0),
            _fetched_on: fetched_on(item),
            groups: Vec::new(),
        });
        Ok(ItemKey::new(id))
    }
}
