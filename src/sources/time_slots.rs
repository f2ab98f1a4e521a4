//! `time_slots/`: `searchTimeSlot` responses (seed 000). An export holds the request and its
//! response (`{"request": {...}, "response": {...}}`), or a response that carries its `id`, or a
//! response alone in a file named after the appointment id.

use std::borrow::Cow;

use serde::Deserialize;

use super::appointments::{RelatedParty, ValidFor};
use super::{fetched_on, read_item};
use crate::schema::Rows;
use crate::schema::columns::{Date, Row, TableSpec, Timestamp};
use crate::schema::lenient::Text;
use crate::schema::roles::{Role, RolePivot, RoleType};
use crate::source::{
    Api, Endpoint, Envelope, FETCHED_ON, IdSource, Item, ItemKey, Method, Paging, RawContext, Settled, Source,
    composite_key,
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
        _fetched_on: Option<Date>,
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
        _fetched_on: Option<Date>,
    }
    groups []
}

/// The searchTimeSlot request of seed 000 for an appointment: its `id`, `relatedEntity`,
/// `relatedParty`, `relatedPlace` and `resourceOrderItem` as the appointment holds them, and its
/// `validFor` as the one `requestedTimeSlot`. Parts the appointment lacks are left out (the API
/// says what it misses in its 400).
pub fn search_request(id: &str, appointment: &serde_json::Value) -> Result<serde_json::Value, String> {
    let a = appointment.as_object().ok_or("the appointment is not a JSON object")?;
    let mut body = serde_json::Map::new();
    body.insert("id".into(), serde_json::Value::String(id.to_string()));
    for key in ["relatedEntity", "relatedParty", "relatedPlace", "resourceOrderItem"] {
        if let Some(v) = a.get(key).filter(|v| !v.is_null()) {
            body.insert(key.into(), v.clone());
        }
    }
    if let Some(v) = a.get("validFor").filter(|v| v.is_object()) {
        body.insert("requestedTimeSlot".into(), serde_json::json!([{ "validFor": v }]));
    }
    Ok(serde_json::Value::Object(body))
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
                known: &[],
                body: Some(search_request),
                // Free slots change every day while the appointment is open; a search for an
                // appointment in a final state is kept as it was.
                settled: Settled::Item {
                    pointer: "/status",
                    values: super::appointments::FINAL_STATUSES,
                },
            }),
            raw: RawContext::Answer,
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
                    (FETCHED_ON, &["_fetched_on"]),
                ],
            },
            // A per-id answer kept raw as `"response": []`: the API answered 404.
            Envelope {
                items: &["response"],
                context: &[],
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
        let fetched = fetched_on(item);
        let time = *rows.time();
        let mut row = TimeSlotRow {
            appointment_id: Some(appointment.clone()),
            slot_start: Some(start),
            slot_end: end,
            search_date,
            _fetched_on: fetched,
            groups: Vec::with_capacity(2),
        };
        let mut pairs = Vec::new();
        rows.pivot(&SLOT_ROLES).apply(
            s.related_party.unwrap_or_default().into_iter().map(RelatedParty::pair),
            &time,
            &mut row.groups,
            rows.writes::<TimeSlotPartyRow>().then_some(&mut pairs),
        )?;
        rows.push(row);
        for p in pairs {
            rows.push(TimeSlotPartyRow {
                appointment_id: Some(appointment.clone()),
                slot_start: Some(start),
                position: Some(p.position),
                role: Some(p.role),
                value: p.value,
                _fetched_on: fetched,
                groups: Vec::new(),
            });
        }
        let key = composite_key(&[&appointment, itoa::Buffer::new().format(start.0)]);
        Ok(ItemKey::new(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_request_is_built_from_the_appointment_as_seed_000_defines_it() {
        let appointment = serde_json::json!({
            "id": "MYSIM_391588", "status": "accepted", "note": [{"text": "x"}],
            "relatedEntity": [{"id": "MYSIM_12411", "role": "workorder"}],
            "relatedParty": [{"id": "28036", "role": "zipcode"}],
            "relatedPlace": {"id": "01000500059400011 001B", "role": "interventionAddress"},
            "resourceOrderItem": [{"id": "6545"}],
            "validFor": {"startDateTime": "2020-08-18T13:00:00Z", "endDateTime": "2020-08-18T15:00:00Z"}
        });
        let body = search_request("MYSIM_391588", &appointment).unwrap();
        assert_eq!(body["id"], "MYSIM_391588");
        assert_eq!(body["relatedPlace"]["id"], "01000500059400011 001B");
        assert_eq!(body["relatedParty"][0]["role"], "zipcode");
        assert_eq!(body["resourceOrderItem"][0]["id"], "6545");
        assert_eq!(body["relatedEntity"][0]["role"], "workorder");
        assert_eq!(
            body["requestedTimeSlot"],
            serde_json::json!([{"validFor": {"startDateTime": "2020-08-18T13:00:00Z", "endDateTime": "2020-08-18T15:00:00Z"}}])
        );
        assert!(
            body.get("note").is_none() && body.get("status").is_none(),
            "only what the request defines"
        );
        let bare = search_request("A1", &serde_json::json!({"id": "A1"})).unwrap();
        assert_eq!(bare, serde_json::json!({"id": "A1"}));
        assert!(search_request("A1", &serde_json::json!([1])).is_err());
    }
}
