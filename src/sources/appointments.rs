//! `appointments/`: field-service appointments, `GET /v1/orgs/{tenant}/appointments/{id}` (seed 000).

use std::borrow::Cow;

use serde::Deserialize;

use super::{fetched_on, read_item, required_text, text};
use crate::schema::Rows;
use crate::schema::columns::{Date, Row, TableSpec, Timestamp};
use crate::schema::lenient::{Bool, Text, opt_text};
use crate::schema::roles::{Role, RolePair, RolePivot, RoleType};
use crate::source::{
    Api, Endpoint, Envelope, FETCHED_ON, IdSource, Item, ItemKey, Method, Paging, RawContext, Settled, Source,
};
use crate::table_row;

/// The appointments source.
pub struct Appointments;

/// `relatedParty`: the customer, the sale and the scheduling constraints.
pub static PARTIES: RolePivot = RolePivot {
    list: "relatedParty",
    table: "appointments",
    roles: &[
        Role::text(&["scoringresult"], "scoring_result"),
        Role::typed(&["scoringlevel"], "scoring_level", RoleType::Int32),
        Role::text(&["sellchannel"], "sell_channel"),
        Role::text(&["userrole"], "user_role"),
        Role::text(&["usercode"], "user_code"),
        Role::text(&["segment"], "segment"),
        Role::text(&["language"], "language"),
        Role::text(&["tenant", "tenantid"], "tenant"),
        Role::typed(&["duration", "durationmin"], "duration_min", RoleType::Int32),
        Role::text(&["zipcode", "postcode"], "zipcode"),
        Role::text(&["contract"], "contract"),
        Role::typed(&["delay"], "delay", RoleType::Int32),
        Role::typed(&["isnewappointment"], "is_new_appointment", RoleType::Bool),
        Role::typed(
            &["validforappointment"],
            "valid_for_appointment_start",
            RoleType::TimeRange {
                end: "valid_for_appointment_end",
            },
        ),
        Role::personal(&["firstname"], "first_name", crate::schema::pii::PiiKind::Name),
        Role::personal(
            &["middlename", "lastname", "surname", "surnames"],
            "middle_name",
            crate::schema::pii::PiiKind::Name,
        ),
        Role::personal(
            &["documentnumber", "documentid"],
            "document_number",
            crate::schema::pii::PiiKind::Document,
        ),
        Role::personal(&["email", "emailaddress"], "email", crate::schema::pii::PiiKind::Email),
        Role::personal(
            &["phonenumber", "phone", "contactnumber"],
            "phone_number",
            crate::schema::pii::PiiKind::Phone,
        ),
    ],
};

/// `relatedEntity`: the work order and the installation's network data.
pub static ENTITIES: RolePivot = RolePivot {
    list: "relatedEntity",
    table: "appointments",
    roles: &[
        Role::text(&["workorder", "workorderid"], "work_order"),
        Role::text(&["ordertype"], "order_type"),
        Role::text(&["connectioninstallationflow"], "connection_installation_flow"),
        Role::text(&["donoroperator"], "donor_operator"),
        Role::text(&["linkstate"], "link_state"),
        Role::text(&["ctopoledb"], "cto_pole_db"),
    ],
};

/// `resourceOrderItem[].resource.resourceCharacteristic`: what is installed.
pub static RESOURCES: RolePivot = RolePivot {
    list: "resourceCharacteristic",
    table: "appointments",
    roles: &[
        Role::text(&["type"], "type"),
        Role::text(&["territoryowner"], "territory_owner"),
        Role::personal(&["msisdn"], "msisdn", crate::schema::pii::PiiKind::Msisdn),
        Role::text(&["tariff"], "tariff"),
    ],
};

static PIVOTS: [&RolePivot; 3] = [&PARTIES, &ENTITIES, &RESOURCES];

/// The appointment states after which an appointment no longer changes (compared ASCII
/// case-insensitively). Seed 000 shows only `accepted` and `created`, both open; these are the
/// end states of the TM Forum appointment life cycle (TMF646) the API follows, and their
/// common spellings. An appointment in one of them is carried forward on incremental nights.
pub const FINAL_STATUSES: &[&str] = &[
    "completed",
    "cancelled",
    "canceled",
    "failed",
    "closed",
    "finished",
    "done",
    "rejected",
];

/// An appointment, field by field as seed 000 returns it (public for the benchmark's
/// parse-only floor, which deserializes this same model).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct Appointment<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    external_id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    category: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    description: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    status: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    creation_date: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    last_update: Option<Text<'a>>,
    contact_medium: Option<Vec<ContactMedium<'a>>>,
    note: Option<Vec<Note<'a>>>,
    #[serde(default, deserialize_with = "crate::schema::lenient::list")]
    related_entity: Option<Vec<RelatedEntity<'a>>>,
    #[serde(default, deserialize_with = "crate::schema::lenient::list")]
    related_party: Option<Vec<RelatedParty<'a>>>,
    related_place: Option<RelatedPlace<'a>>,
    resource_order_item: Option<Vec<ResourceOrderItem<'a>>>,
    valid_for: Option<ValidFor<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct ContactMedium<'a> {
    characteristic: Option<KeyValue<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    medium_type: Option<Text<'a>>,
    preferred: Option<Bool>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct KeyValue<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    key: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    value: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Note<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    author: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    date: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    text: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct RelatedEntity<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    role: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    name: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    href: Option<Text<'a>>,
}

/// A `{id, role}` pair of a `relatedParty` list (also used by time slots).
#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub struct RelatedParty<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    role: Option<Text<'a>>,
}

impl<'a> RelatedParty<'a> {
    /// The pair as pivot input.
    pub fn pair(self) -> (Cow<'a, str>, Option<Cow<'a, str>>) {
        (self.role.map(|r| r.0).unwrap_or_default(), self.id.map(|v| v.0))
    }
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct RelatedPlace<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    href: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    name: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    role: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct ResourceOrderItem<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    id: Option<Text<'a>>,
    resource: Option<Resource<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Resource<'a> {
    #[serde(default, deserialize_with = "crate::schema::lenient::list")]
    resource_characteristic: Option<Vec<Characteristic<'a>>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Characteristic<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    name: Option<Text<'a>>,
    #[serde(default, deserialize_with = "opt_text")]
    value: Option<Text<'a>>,
}

/// A TM Forum `RangePeriod`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct ValidFor<'a> {
    /// Start.
    #[serde(default, deserialize_with = "opt_text")]
    pub start_date_time: Option<Text<'a>>,
    /// End.
    #[serde(default, deserialize_with = "opt_text")]
    pub end_date_time: Option<Text<'a>>,
}

table_row! {
    /// A row of `appointments`: one per appointment, roles pivoted into typed columns.
    pub struct AppointmentRow<'a> in "appointments" key ["appointment_id"] {
        appointment_id: Option<Cow<'a, str>>,
        external_id: Option<Cow<'a, str>>,
        category: Option<Cow<'a, str>>,
        description: Option<Cow<'a, str>> => FreeText,
        status: Option<Cow<'a, str>>,
        creation_date: Option<Timestamp>,
        last_update: Option<Timestamp>,
        valid_for_start: Option<Timestamp>,
        valid_for_end: Option<Timestamp>,
        related_place_id: Option<Cow<'a, str>>,
        related_place_href: Option<Cow<'a, str>>,
        related_place_role: Option<Cow<'a, str>>,
        related_place_name: Option<Cow<'a, str>> => Street,
        _fetched_on: Option<Date>,
    }
    groups [PARTIES, ENTITIES, RESOURCES]
}

table_row! {
    /// A row of `appointment_parties`: every `relatedParty` pair, unknown roles included.
    pub struct AppointmentPartyRow<'a> in "appointment_parties" key ["appointment_id", "position"] {
        appointment_id: Option<Cow<'a, str>>,
        position: Option<i32>,
        role: Option<Cow<'a, str>>,
        value: Option<Cow<'a, str>>,
        _fetched_on: Option<Date>,
    }
    groups []
}

table_row! {
    /// A row of `appointment_entities`: every `relatedEntity`.
    pub struct AppointmentEntityRow<'a> in "appointment_entities" key ["appointment_id", "position"] {
        appointment_id: Option<Cow<'a, str>>,
        position: Option<i32>,
        role: Option<Cow<'a, str>>,
        value: Option<Cow<'a, str>>,
        name: Option<Cow<'a, str>>,
        href: Option<Cow<'a, str>>,
        _fetched_on: Option<Date>,
    }
    groups []
}

table_row! {
    /// A row of `appointment_resource_characteristics`: every characteristic of every item.
    pub struct AppointmentResourceRow<'a> in "appointment_resource_characteristics" key ["appointment_id", "position"] {
        appointment_id: Option<Cow<'a, str>>,
        position: Option<i32>,
        resource_order_item_id: Option<Cow<'a, str>>,
        resource_order_item_position: Option<i32>,
        role: Option<Cow<'a, str>>,
        value: Option<Cow<'a, str>>,
        _fetched_on: Option<Date>,
    }
    groups []
}

table_row! {
    /// A row of `appointment_notes`.
    pub struct AppointmentNoteRow<'a> in "appointment_notes" key ["appointment_id", "position"] {
        appointment_id: Option<Cow<'a, str>>,
        position: Option<i32>,
        note_id: Option<Cow<'a, str>>,
        author: Option<Cow<'a, str>> => Name,
        date: Option<Timestamp>,
        text: Option<Cow<'a, str>> => FreeText,
        _fetched_on: Option<Date>,
    }
    groups []
}

table_row! {
    /// A row of `appointment_contact_media`.
    pub struct AppointmentContactMediumRow<'a> in "appointment_contact_media" key ["appointment_id", "position"] {
        appointment_id: Option<Cow<'a, str>>,
        position: Option<i32>,
        medium_type: Option<Cow<'a, str>>,
        preferred: Option<bool>,
        characteristic_key: Option<Cow<'a, str>>,
        characteristic_value: Option<Cow<'a, str>> => Phone,
        _fetched_on: Option<Date>,
    }
    groups []
}

impl Source for Appointments {
    fn name(&self) -> &'static str {
        "appointments"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::Appointments,
            method: Method::Get,
            path: "/v1/orgs/{tenant}/appointments/{id}",
            paging: Paging::PerId(IdSource {
                from: "orders",
                pointer: "/order/work_order",
                known: &[],
                body: None,
                settled: Settled::Answer {
                    pointer: "/status",
                    values: FINAL_STATUSES,
                },
            }),
            raw: RawContext::Answer,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![
            AppointmentRow::spec(),
            AppointmentPartyRow::spec(),
            AppointmentEntityRow::spec(),
            AppointmentResourceRow::spec(),
            AppointmentNoteRow::spec(),
            AppointmentContactMediumRow::spec(),
        ]
    }

    fn envelopes(&self) -> &'static [Envelope] {
        // A per-id answer as kept raw (`"response": []` is a 404); export records are bare.
        &[Envelope {
            items: &["response"],
            context: &[(FETCHED_ON, &["_fetched_on"])],
        }]
    }

    fn pivots(&self) -> &'static [&'static RolePivot] {
        &PIVOTS
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let a: Appointment<'a> = read_item(item.bytes)?;
        let fetched = fetched_on(item);
        let id = required_text(a.id, "id")?;
        let last_update = rows.timestamp(a.last_update.as_ref().map(Text::as_str), "lastUpdate")?;
        let (valid_for_start, valid_for_end) = match &a.valid_for {
            Some(v) => (
                rows.timestamp(v.start_date_time.as_ref().map(Text::as_str), "validFor.startDateTime")?,
                rows.timestamp(v.end_date_time.as_ref().map(Text::as_str), "validFor.endDateTime")?,
            ),
            None => (None, None),
        };
        let place = a.related_place;
        let mut row = AppointmentRow {
            appointment_id: Some(id.clone()),
            external_id: text(a.external_id),
            category: text(a.category),
            description: text(a.description),
            status: text(a.status),
            creation_date: rows.timestamp(a.creation_date.as_ref().map(Text::as_str), "creationDate")?,
            last_update,
            valid_for_start,
            valid_for_end,
            related_place_id: None,
            related_place_href: None,
            related_place_role: None,
            related_place_name: None,
            _fetched_on: fetched,
            // The three pivots' cells, allocated once.
            groups: Vec::with_capacity(PIVOTS.iter().map(|p| p.width()).sum()),
        };
        if let Some(p) = place {
            row.related_place_id = text(p.id);
            row.related_place_href = text(p.href);
            row.related_place_role = text(p.role);
            row.related_place_name = text(p.name);
        }

        let time = *rows.time();
        // A long table the run does not write (`--tables`) gets no pairs; the record's values
        // are still converted into the wide columns, and rejected alike.
        let (with_parties, with_entities, with_resources) = (
            rows.writes::<AppointmentPartyRow>(),
            rows.writes::<AppointmentEntityRow>(),
            rows.writes::<AppointmentResourceRow>(),
        );
        let mut parties: Vec<RolePair<'a>> = Vec::new();
        rows.pivot(&PARTIES).apply(
            a.related_party.unwrap_or_default().into_iter().map(RelatedParty::pair),
            &time,
            &mut row.groups,
            with_parties.then_some(&mut parties),
        )?;

        let entities_in = a.related_entity.unwrap_or_default();
        let mut entity_meta = Vec::new();
        let pairs: Vec<_> = entities_in
            .into_iter()
            .map(|e| {
                if with_entities {
                    entity_meta.push((text(e.name), text(e.href)));
                }
                (e.role.map(|r| r.0).unwrap_or_default(), text(e.id))
            })
            .collect();
        let mut entities = Vec::new();
        rows.pivot(&ENTITIES)
            .apply(pairs, &time, &mut row.groups, with_entities.then_some(&mut entities))?;

        let mut item_of = Vec::new();
        let mut pairs = Vec::new();
        for (item_position, it) in a.resource_order_item.unwrap_or_default().into_iter().enumerate() {
            let item_id = text(it.id);
            for c in it.resource.and_then(|r| r.resource_characteristic).unwrap_or_default() {
                if with_resources {
                    item_of.push((item_id.clone(), item_position as i32));
                }
                pairs.push((c.name.map(|n| n.0).unwrap_or_default(), text(c.value)));
            }
        }
        let mut resources = Vec::new();
        rows.pivot(&RESOURCES)
            .apply(pairs, &time, &mut row.groups, with_resources.then_some(&mut resources))?;

        let mut notes = Vec::new();
        for (position, n) in a.note.unwrap_or_default().into_iter().enumerate() {
            notes.push(AppointmentNoteRow {
                appointment_id: Some(id.clone()),
                position: Some(position as i32),
                note_id: text(n.id),
                author: text(n.author),
                date: rows.timestamp(n.date.as_ref().map(Text::as_str), "note.date")?,
                text: text(n.text),
                _fetched_on: fetched,
                groups: Vec::new(),
            });
        }

        // Everything converted: only now are rows appended.
        rows.push(row);
        for p in parties {
            rows.push(AppointmentPartyRow {
                appointment_id: Some(id.clone()),
                position: Some(p.position),
                role: Some(p.role),
                value: p.value,
                _fetched_on: fetched,
                groups: Vec::new(),
            });
        }
        // Nothing below can reject the record: the rows of a table the run does not write
        // (`--tables`) are not built at all (its pairs were not kept).
        for (p, (name, href)) in entities.into_iter().zip(entity_meta) {
            rows.push(AppointmentEntityRow {
                appointment_id: Some(id.clone()),
                position: Some(p.position),
                role: Some(p.role),
                value: p.value,
                name,
                href,
                _fetched_on: fetched,
                groups: Vec::new(),
            });
        }
        for (p, (item_id, item_position)) in resources.into_iter().zip(item_of) {
            rows.push(AppointmentResourceRow {
                appointment_id: Some(id.clone()),
                position: Some(p.position),
                resource_order_item_id: item_id,
                resource_order_item_position: Some(item_position),
                role: Some(p.role),
                value: p.value,
                _fetched_on: fetched,
                groups: Vec::new(),
            });
        }
        for n in notes {
            rows.push(n);
        }
        let media = if rows.writes::<AppointmentContactMediumRow>() {
            a.contact_medium.unwrap_or_default()
        } else {
            Vec::new()
        };
        for (position, m) in media.into_iter().enumerate() {
            let (key, value) = match m.characteristic {
                Some(c) => (text(c.key), text(c.value)),
                None => (None, None),
            };
            let medium_type = text(m.medium_type);
            // E-mail addresses are hashed lower-cased, as in every other table.
            let is_email = medium_type
                .as_deref()
                .is_some_and(|t| t.as_bytes().windows(4).any(|w| w.eq_ignore_ascii_case(b"mail")));
            let value = value.map(|v| {
                if is_email && v.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(v.to_ascii_lowercase())
                } else {
                    v
                }
            });
            rows.push(AppointmentContactMediumRow {
                appointment_id: Some(id.clone()),
                position: Some(position as i32),
                medium_type,
                preferred: m.preferred.map(|b| b.0),
                characteristic_key: key,
                characteristic_value: value,
                _fetched_on: fetched,
                groups: Vec::new(),
            });
        }
        Ok(ItemKey::updated(id, last_update.map(|t| t.0)))
    }
}
