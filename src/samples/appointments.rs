//! Appointments (seed 000): one per install, the readiness it implies, reschedules and
//! re-exports, and the searchTimeSlot answers; also the normalize benchmark's appointments.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::{Duration, NaiveDateTime, TimeZone};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::Stats;
use super::Truth;
use super::catalogue::TENANTS;
use super::people::{Person, person};
use super::values::{iso, iso_ms, pick, snapshot_end_utc};
use super::writers::TenantWriters;

/// Writes `count` seed-shaped appointments, one per line, to `out` (the normalize benchmark's
/// input: about 2 KB each). `varied`: every role list in a random order with every role name
/// spelled in a random style or alias, unknown roles added, and instants sent with offsets or
/// as local time, as exports from several systems come.
pub fn write_appointments(count: usize, seed: u64, varied: bool, out: &Path) -> io::Result<Stats> {
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut file = BufWriter::with_capacity(1 << 20, File::create(out)?);
    let end = snapshot_end_utc();
    for i in 0..count {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64);
        let (_, tenant_id, prefix) = *pick(&mut rng, TENANTS);
        let who = person(&mut rng, i);
        let work_order = format!("{prefix}{:07}", 2_000_000 + i);
        let start = end + Duration::hours(rng.random_range(-400..400));
        let updated = end - Duration::hours(rng.random_range(24..400));
        let mut a = appointment_value(&mut rng, i, &work_order, &work_order, tenant_id, &who, start, updated);
        if varied {
            vary(&mut rng, &mut a);
        }
        serde_json::to_writer(&mut file, &a)?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    Ok(Stats {
        files: 1,
        bytes: fs::metadata(out)?.len(),
    })
}

/// The appointment of an install's work order, if it has one, and its time-slot search now and
/// then; records the readiness the order must reconcile to.
#[allow(clippy::too_many_arguments)]
pub(super) fn appointment(
    rng: &mut ChaCha8Rng,
    i: usize,
    work_order: &str,
    tenant_id: &str,
    who: &Person,
    order_id: &str,
    delivered_at: Option<NaiveDateTime>,
    end: NaiveDateTime,
    superseded: bool,
    w: &mut TenantWriters,
    truth: &mut Truth,
) -> io::Result<()> {
    if rng.random_bool(0.08) {
        truth.readiness.insert(order_id.to_string(), "NO_APPOINTMENT".into());
        return Ok(());
    }
    // The state is chosen, then the appointment time that produces it.
    let (state, start) = match delivered_at {
        Some(d) if rng.random_bool(0.2) => ("LATE", d - Duration::hours(rng.random_range(3..72))),
        Some(d) => ("READY", d + Duration::hours(rng.random_range(12..240))),
        None if rng.random_bool(0.4) => ("AT_RISK", end + Duration::hours(rng.random_range(1..46))),
        None => ("PENDING", end + Duration::hours(rng.random_range(50..400))),
    };
    truth.readiness.insert(order_id.to_string(), state.into());
    if state == "LATE" {
        truth.late_install.push(order_id.to_string());
    }
    let by_external = rng.random_bool(0.4);
    let id = if by_external {
        format!("APT-{i:08}")
    } else {
        work_order.to_string()
    };
    let updated = end - Duration::hours(rng.random_range(24..400));
    let a = appointment_value(rng, i, &id, work_order, tenant_id, who, start, updated);
    if rng.random_bool(0.03) && superseded {
        // Rescheduled: an older appointment of the same work order that lost (older lastUpdate).
        let mut old = a.clone();
        old["id"] = json!(format!("APT-OLD-{i:08}"));
        old["lastUpdate"] = json!(iso_ms(updated - Duration::days(5)));
        old["validFor"] = json!({"startDateTime": iso(end - Duration::days(30)), "endDateTime": iso(end - Duration::days(30) + Duration::hours(2))});
        w.appointment(&old)?;
    }
    if i < 3 {
        w.appointment_alone(&id, &a)?;
    } else if rng.random_bool(0.02) {
        // Exported twice: the first copy is older and loses.
        let mut older = a.clone();
        older["lastUpdate"] = json!(iso_ms(updated - Duration::hours(6)));
        older["status"] = json!("created");
        w.appointment(&older)?;
        w.appointment_again(a)?;
    } else {
        w.appointment(&a)?;
    }
    if rng.random_bool(0.3) {
        let slots: Vec<Value> = (0..rng.random_range(2..6))
            .map(|k| {
                let s = end + Duration::days(k + 1) + Duration::hours(7);
                let free = rng.random_range(0..12);
                json!({"relatedParty": [{"id": format!("{free}"), "role": "freeSlots"}, {"id": format!("{}", 12 - free), "role": "ocuppiedSlots"}],
                       "validFor": {"startDateTime": iso_ms(s), "endDateTime": iso_ms(s + Duration::hours(2))}})
            })
            .collect();
        let response = json!({"availableTimeSlot": slots, "searchDate": iso(end - Duration::hours(30)), "searchResult": "success", "status": "created"});
        // Now and then a response alone, in a file named after the appointment.
        w.search(&id, response, i < 60 && i % 20 == 1)?;
    }
    Ok(())
}

/// A seed-000 appointment: role lists in any order, personal data, optional parts missing
/// now and then.
#[allow(clippy::too_many_arguments)]
fn appointment_value(
    rng: &mut ChaCha8Rng,
    i: usize,
    id: &str,
    work_order: &str,
    tenant_id: &str,
    who: &Person,
    start: NaiveDateTime,
    updated: NaiveDateTime,
) -> Value {
    let mut parties = vec![
        json!({"id": *pick(rng, &["OK", "RISK", "RELEASE"]), "role": "scoring_result"}),
        json!({"id": format!("{}", rng.random_range(0..3)), "role": "scoring_level"}),
        json!({"id": who.first, "role": "firstName"}),
        json!({"id": who.surnames, "role": "middleName"}),
        json!({"id": who.document, "role": "documentNumber"}),
        json!({"id": who.email, "role": "email"}),
        json!({"id": who.phone, "role": "phoneNumber"}),
        json!({"id": who.city.1, "role": "zipcode"}),
        json!({"id": *pick(rng, &["mysim", "heos", "tienda"]), "role": if rng.random_bool(0.5) { "sellchannel" } else { "sell_channel" }}),
        json!({"id": format!("{}", rng.random_range(10..15)), "role": "user_role"}),
        json!({"id": *pick(rng, &["Residencial", "RESIDENCIAL", "Empresa"]), "role": "segment"}),
        json!({"id": *pick(rng, &["es_ES", "eu_ES", "ca_ES"]), "role": "language"}),
        json!({"id": tenant_id, "role": "tenant"}),
        json!({"id": format!("{}", 60 + 5 * rng.random_range(0..6)), "role": "duration"}),
    ];
    if rng.random_bool(0.5) {
        let local = chrono_tz::Europe::Madrid.from_utc_datetime(&start).naive_local();
        parties.push(json!({"id": "CONTRACT_TO_DEFINE", "role": "contract"}));
        parties.push(json!({"id": "0", "role": "delay"}));
        parties.push(json!({"id": "false", "role": "isNewAppointment"}));
        parties.push(json!({"id": format!("{} - {}", local.format("%Y-%m-%dT%H:%M:%S"), (local + Duration::hours(3)).format("%Y-%m-%dT%H:%M:%S")), "role": "validForAppointment"}));
        parties.push(json!({"id": "installation", "role": "category"}));
    }
    // Role lists arrive in any order.
    for k in (1..parties.len()).rev() {
        parties.swap(k, rng.random_range(0..=k));
    }
    let mut a = json!({
        "category": "installation",
        "contactMedium": [
            {"characteristic": {"key": "mobile", "value": who.phone.parse::<u64>().unwrap_or_default()}, "mediumType": "phoneNumber", "preferred": true},
            {"characteristic": {"key": "email", "value": who.email}, "mediumType": "email"}
        ],
        "creationDate": iso(updated - Duration::days(2)),
        "description": "Tarea para conseguir una cita",
        "externalId": work_order,
        "id": id,
        "lastUpdate": iso_ms(updated),
        "note": [{"author": "Backoffice", "date": iso_ms(updated - Duration::days(1)), "text": "Cliente avisado por SMS"}],
        "relatedEntity": [
            {"href": format!("https://mysim/{work_order}"), "id": work_order, "name": "ID of OT", "role": "workorder"},
            {"id": "Alta FTTH + VOIP", "role": "orderType"},
            {"id": "INSTALA MM", "role": "connectionInstallationFlow"},
            {"id": "00833", "role": "donorOperator"},
            {"id": "V", "role": "linkState"},
            {"id": *pick(rng, &["POSTE", "NO POSTE"]), "role": "ctoPoleDB"}
        ],
        "relatedParty": parties,
        "relatedPlace": {"href": "https://gescal37/geographicAddress/01000500059400011", "id": format!("{:017} 001B", 1_000_500_059_400_011u64 + i as u64), "name": format!("{} {}, {}", who.street, who.number, who.city.0), "role": "interventionAddress"},
        "resourceOrderItem": [
            {"id": format!("{}", 6545 + i), "resource": {"resourceCharacteristic": [{"name": "type", "value": "FTTH"}, {"name": "territoryOwner", "value": "NEBA"}]}},
            {"id": format!("{}", 6546 + i), "resource": {"resourceCharacteristic": [{"name": "type", "value": "MOBILE_LINE"}, {"name": "msisdn", "value": who.phone}, {"name": "tariff", "value": "3GB Ilimitada"}]}}
        ],
        "status": *pick(rng, &["accepted", "created", "scheduled"]),
        "validFor": {"startDateTime": iso(start), "endDateTime": iso(start + Duration::hours(2))}
    });
    if rng.random_bool(0.1) {
        // Optional parts missing.
        if let Some(o) = a.as_object_mut() {
            o.remove("note");
            o.remove("contactMedium");
            o.remove("description");
        }
    }
    a
}

/// Aliases the APIs also use for a role (the pivots know them).
const ALIASES: &[(&str, &str)] = &[
    ("tenant", "tenantId"),
    ("duration", "durationMin"),
    ("zipcode", "postCode"),
    ("workorder", "workOrderId"),
    ("email", "emailAddress"),
    ("phoneNumber", "contactNumber"),
];

/// Roles no pivot knows: long-table rows only.
const UNKNOWN_ROLES: &[&str] = &["campaign", "referrerCode", "preferredContactTime", "channelDetail"];

/// Respells `role` in a random style (camelCase, snake_case, UPPER, kebab-case, spaced words,
/// PascalCase) or alias; the pivots' matching (lower case, no `_`, `-` or spaces) and a SQL
/// `lower(replace(...))` both find it.
fn respell(rng: &mut ChaCha8Rng, role: &str) -> String {
    let role = match ALIASES.iter().find(|(r, _)| r.eq_ignore_ascii_case(role)) {
        Some((_, alias)) if rng.random_bool(0.5) => alias,
        _ => role,
    };
    // Words: split at `_` and before an upper-case letter.
    let mut words: Vec<String> = Vec::new();
    for part in role.split('_') {
        let mut word = String::new();
        for c in part.chars() {
            if c.is_ascii_uppercase() && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            word.push(c.to_ascii_lowercase());
        }
        if !word.is_empty() {
            words.push(word);
        }
    }
    let cap = |w: &String| {
        let mut c = w.chars();
        c.next()
            .map_or(String::new(), |f| f.to_ascii_uppercase().to_string() + c.as_str())
    };
    match rng.random_range(0..6) {
        0 => words
            .iter()
            .enumerate()
            .map(|(k, w)| if k == 0 { w.clone() } else { cap(w) })
            .collect(),
        1 => words.join("_"),
        2 => words.join("_").to_ascii_uppercase(),
        3 => words.join("-"),
        4 => words.iter().map(cap).collect::<Vec<_>>().join(" "),
        _ => words.iter().map(cap).collect(),
    }
}

/// Reorders and respells every role list of an appointment, adds unknown roles, and sends its
/// instants with an offset or as Madrid wall time.
fn vary(rng: &mut ChaCha8Rng, a: &mut Value) {
    let shuffle = |rng: &mut ChaCha8Rng, list: &mut Vec<Value>| {
        for k in (1..list.len()).rev() {
            list.swap(k, rng.random_range(0..=k));
        }
    };
    if let Some(parties) = a["relatedParty"].as_array_mut() {
        for _ in 0..rng.random_range(0..3) {
            let role = *pick(rng, UNKNOWN_ROLES);
            parties.push(json!({"id": format!("X{}", rng.random_range(0..1000)), "role": role}));
        }
    }
    for list in ["relatedParty", "relatedEntity"] {
        if let Some(pairs) = a[list].as_array_mut() {
            shuffle(rng, pairs);
            for p in pairs.iter_mut() {
                if let Some(role) = p["role"].as_str() {
                    p["role"] = json!(respell(rng, role));
                }
            }
        }
    }
    if let Some(items) = a["resourceOrderItem"].as_array_mut() {
        for item in items {
            if let Some(chars) = item["resource"]["resourceCharacteristic"].as_array_mut() {
                shuffle(rng, chars);
                for c in chars.iter_mut() {
                    if let Some(name) = c["name"].as_str() {
                        c["name"] = json!(respell(rng, name));
                    }
                }
            }
        }
    }
    // Instants: with a +02:00 offset, or as local wall time without a zone (read as Madrid).
    for field in ["creationDate", "lastUpdate"] {
        let Some(t) = a[field]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        let t = t.with_timezone(&chrono::Utc).naive_utc();
        a[field] = match rng.random_range(0..3) {
            0 => json!((t + Duration::hours(2)).format("%Y-%m-%dT%H:%M:%S+02:00").to_string()),
            1 => json!(
                chrono_tz::Europe::Madrid
                    .from_utc_datetime(&t)
                    .naive_local()
                    .format("%Y-%m-%dT%H:%M:%S")
                    .to_string()
            ),
            _ => a[field].clone(),
        };
    }
}
