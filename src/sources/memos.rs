//! `memos/`: customer-care memos (seed 003 `Memo`, `Memos`, `MemosPag` pages with `next_request`).

use std::borrow::Cow;

use serde::Deserialize;

use super::{read_item, required_text, text};
use crate::schema::Rows;
use crate::schema::columns::{Row, TableSpec, Timestamp};
use crate::schema::lenient::{Int64, Text, opt_text};
use crate::source::{Api, Endpoint, Envelope, Item, ItemKey, Method, Paging, RawContext, Source};
use crate::table_row;

/// The memos source.
pub struct Memos;

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Memo<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    host_table: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    key_value: Option<Text<'a>>,
    memo_seq: Option<Int64>,
    #[serde(default, deserialize_with = "opt_text")]
    customer_num: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    customer_external_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    subscription_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    memo_title: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    memo_text: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    memo_type: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    source: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    create_stamp: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    create_user: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    change_stamp: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    change_user: Option<Text<'a>>,
}

table_row! {
    /// A row of `memos`.
    pub struct MemoRow<'a> in "memos" key ["memo_id"] {
        memo_id: Option<Cow<'a, str>>,
        host_table: Option<Cow<'a, str>>,
        key_value: Option<Cow<'a, str>>,
        memo_seq: Option<i64>,
        customer_num: Option<Cow<'a, str>>,
        customer_external_id: Option<Cow<'a, str>>,
        subscription_id: Option<Cow<'a, str>>,
        memo_title: Option<Cow<'a, str>>,
        memo_text: Option<Cow<'a, str>> => FreeText,
        memo_type: Option<Cow<'a, str>>,
        source: Option<Cow<'a, str>>,
        create_stamp: Option<Timestamp>,
        create_user: Option<Cow<'a, str>>,
        change_stamp: Option<Timestamp>,
        change_user: Option<Cow<'a, str>>,
    }
    groups []
}

impl Source for Memos {
    fn name(&self) -> &'static str {
        "memos"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::CustomerCare,
            method: Method::Get,
            path: "/v1/orgs/{tenant}/memos",
            paging: Paging::NextLink { link: "/next_request" },
            raw: RawContext::Body,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![MemoRow::spec()]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        &[
            Envelope {
                items: &["data", "memos"],
                context: &[],
            },
            Envelope {
                items: &["memos"],
                context: &[],
            },
        ]
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let m: Memo<'a> = read_item(item.bytes)?;
        let id = required_text(m.id, "id")?;
        let change_stamp = rows.timestamp(m.change_stamp.as_ref().map(Text::as_str), "change_stamp")?;
        let create_stamp = rows.timestamp(m.create_stamp.as_ref().map(Text::as_str), "create_stamp")?;
        rows.push(MemoRow {
            memo_id: Some(id.clone()),
            host_table: text(m.host_table),
            key_value: text(m.key_value),
            memo_seq: m.memo_seq.map(|v| v.0),
            customer_num: text(m.customer_num),
            customer_external_id: text(m.customer_external_id),
            subscription_id: text(m.subscription_id),
            memo_title: text(m.memo_title),
            memo_text: text(m.memo_text),
            memo_type: text(m.memo_type),
            source: text(m.source),
            create_stamp,
            create_user: text(m.create_user),
            change_stamp,
            change_user: text(m.change_user),
            groups: Vec::new(),
        });
        Ok(ItemKey::updated(id, change_stamp.map(|t| t.0)))
    }
}
