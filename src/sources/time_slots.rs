//! `time_slots/`: `searchTimeSlot` responses (seed 000). An export holds the request and its
//! response (`{"request": {...}, "response": {...}}`), or a response that carries its `id`, or a
//! response alone in a file named after the appointment id.

use std::borrow::Cow;

use serde::Deserialize;

use super::appointments::{RelatedParty, ValidFor};
use super::read_item;
use crate::schema::Rows;
use crate::schema::columns::{Row, TableSpec, Timestamp};
use crate::schema::lenient::Text;
use crate::schema::roles::{Role, RolePivot, RoleType};
use crate::source::{
    Api, Endpoint, Envelope, IdSource, Item, ItemKey, Method, Paging, RawContext, Source, composite_key,
};
use crate::table_row;

/// The time slots source.
pub struct TimeSlots;

/// A slot's `relatedParty`: its free and occupied places (`ocuppiedSlots`, as the API spells it).
pub static SLOT_ROLES: RolePivot = RolePivot {
    list: "availableTimeSlot.relatedParty",
    table: "time_slots",
    roles: &[
        Role::typed(&["freeslots"], "free_slots", RoleType::Int32),
        Role::typed(&["ocuppiedslots", "occupiedslots"], "occupied_slots", RoleType::Int32),
    ],
};

static PIVOTS: [&RolePivot; 1] = [&SLOT_ROLES];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Slot<'a> {
    related_party: Option<Vec<RelatedParty<'a>>>,
    valid_for: Option<ValidFor<'a>>,
}

table_row! {
    /// A row of `time_slots`: one offered slot of a search.
    pub struct TimeSlotRow<'a> in "time_slots" key ["appointment_id", "slot_start"] {
        appointment_id: Option<Cow<'a, str>>,
        slot_start: Option<Timestamp>,
        slot_end: Option<Timestamp>,
        search_date: Option<Timestamp>,
    }
    groups [SLOT_ROLES]
}

table_row! {
    /// A row of `time_slot_parties`: every pair of a slot's `relatedParty`.
    pub struct TimeSlotPartyRow<'a> in "time_slot_parties" key ["appointment_id", "slot_start", "position"] {
        appointment_id: Option<Cow<'a, str>>,
        slot_start: Option<Timestamp>,
        position: Option<i32>,
        role: Option<Cow<'a, str>>,
        value: Option<Cow<'a, str>>,
    }
    groups []
}

impl Source for TimeSlots {
    fn name(&self) -> &'static str {
        "time_slots"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::Appointments,
            method: Method::Post,
            path: "/v1/orgs/{tenant}/appointments/searchTimeSlot",
            paging: Paging::PerId(IdSource {
                from: "appointments",
                pointer: "/id",
            }),
            raw: RawContext::Request,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![TimeSlotRow::spec(), TimeSlotPartyRow::spec()]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        &[
            Envelope {
                items: &["response", "availableTimeSlot"],
                context: &[
                    ("response_id", &["response", "id"]),
                    ("appointment_id", &["request", "id"]),
                    ("search_date", &["response", "searchDate"]),
                ],
            },
            Envelope {
                items: &["availableTimeSlot"],
                context: &[("response_id", &["id"]), ("search_date", &["searchDate"])],
            },
        ]
    }

    fn pivots(&self) -> &'static [&'static RolePivot] {
        &PIVOTS
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let s: Slot<'a> = read_item(item.bytes)?;
        let ctx = item.context;
        let appointment: Cow<'a, str> = ctx
            .get("appointment_id")
            .or_else(|| ctx.get("response_id"))
            .map(|v| Cow::Owned(v.to_string()))
            .or_else(|| (!item.file_stem.is_empty()).then(|| Cow::Owned(item.file_stem.to_string())))
            .ok_or("no appointment id: neither the request, the response nor the file name gives one")?;
        let (start, end) = match &s.valid_for {
            Some(v) => (
                rows.timestamp(v.start_date_time.as_ref().map(Text::as_str), "validFor.startDateTime")?,
                rows.timestamp(v.end_date_time.as_ref().map(Text::as_str), "validFor.endDateTime")?,
            ),
            None => (None, None),
        };
        let start = start.ok_or("missing required key validFor.startDateTime")?;
        let search_date = rows.timestamp(ctx.get("search_date"), "searchDate")?;
        let time = *rows.time();
        let mut row = TimeSlotRow {
            appointment_id: Some(appointment.clone()),
            slot_start: Some(start),
            slot_end: end,
            search_date,
            groups: Vec::with_capacity(2),
        };
        let mut pairs = Vec::new();
        rows.pivot(&SLOT_ROLES).apply(
            s.related_party.unwrap_or_default().into_iter().map(RelatedParty::pair),
            &time,
            &mut row.groups,
            &mut pairs,
        )?;
        rows.push(row);
        for p in pairs {
            rows.push(TimeSlotPartyRow {
                appointment_id: Some(appointment.clone()),
                slot_start: Some(start),
                position: Some(p.position),
                role: Some(p.role),
                value: p.value,
                groups: Vec::new(),
            });
        }
        let key = composite_key(&[&appointment, itoa::Buffer::new().format(start.0)]);
        Ok(ItemKey::new(key))
    }
}
