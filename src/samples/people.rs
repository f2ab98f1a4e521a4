//! Customers: names, documents, contact data and addresses, as the logistics API writes them.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::values::pick;

const FIRST: &[&str] = &[
    "Raúl",
    "Carmen",
    "Manuel",
    "Lucía",
    "Javier",
    "Ana",
    "Iñaki",
    "María José",
    "Jordi",
    "Nerea",
];
const SURNAMES: &[&str] = &[
    "García",
    "Martínez",
    "López",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Fernández",
    "Etxeberria",
    "Puig",
    "Rodríguez",
];
const STREETS: &[&str] = &[
    "Mayor",
    "Reyes de Navarra",
    "Gran Vía",
    "Alcalá",
    "Diagonal",
    "Colón",
    "San Francisco",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Leganes", "28912", "Madrid"),
    ("Vitoria", "01005", "Alava"),
    ("Zaragoza", "50007", "Zaragoza"),
    ("Barcelona", "08036", "Barcelona"),
    ("Bilbao", "48001", "Bizkaia"),
    ("Valencia", "46002", "Valencia"),
];

/// The customer of an order.
pub(super) struct Person {
    pub first: String,
    pub surnames: String,
    pub document: String,
    pub email: String,
    pub phone: String,
    pub street: String,
    pub number: u32,
    /// City, zip code, region.
    pub city: (&'static str, &'static str, &'static str),
}

/// The customer of order `i`.
pub(super) fn person(rng: &mut ChaCha8Rng, i: usize) -> Person {
    let first = pick(rng, FIRST).to_string();
    let surnames = format!("{} {}", pick(rng, SURNAMES), pick(rng, SURNAMES));
    let letters = "TRWAGMYFPDXBNJZSQVHLCKE".as_bytes();
    let n = 10_000_000 + (i as u32 * 7919) % 89_999_999;
    Person {
        email: format!(
            "{}.{}{}@example.com",
            first.to_lowercase().replace(' ', ""),
            i,
            rng.random_range(0..99)
        ),
        first,
        surnames,
        document: format!("{n:08}{}", letters[(n % 23) as usize] as char),
        phone: format!("6{:08}", rng.random_range(0..100_000_000u32)),
        street: pick(rng, STREETS).to_string(),
        number: rng.random_range(1..300),
        city: *pick(rng, CITIES),
    }
}

/// Seed 004's `client`: identity, contact and address.
pub(super) fn client(p: &Person, rng: &mut ChaCha8Rng) -> Value {
    let mut c = json!({
        "identity": {"document_id": p.document, "document_type": "NIF"},
        "contact_phone": {"phone_number": p.phone, "prefix": "+34"},
        "name": p.first,
        "surnames": p.surnames.split(' ').collect::<Vec<_>>(),
        "email": p.email,
        "address": address(p, rng)
    });
    if rng.random_bool(0.1) {
        c["commercial_name"] = json!("Comercial Ejemplo SL");
    }
    c
}

/// Seed 004's `address`, with floor and letter half of the time.
pub(super) fn address(p: &Person, rng: &mut ChaCha8Rng) -> Value {
    let mut a = json!({
        "street_type": "Calle",
        "street": p.street,
        "number": p.number.to_string(),
        "city": p.city.0,
        "zip_code": p.city.1,
        "province": p.city.2,
        "country": "es"
    });
    if rng.random_bool(0.5) {
        a["floor"] = json!(format!("{}", rng.random_range(1..9)));
        a["letter"] = json!("B");
    }
    a
}
