//! The floor of the normalize benchmark: read the appointments file and deserialize every
//! record with serde into typed structs, on every core, writing nothing.
//!
//! `cargo build --release --example parse_floor && target/release/examples/parse_floor FILE [THREADS]`

use std::borrow::Cow;

use opslake::normalize::lenient::{Bool, Text};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
#[allow(dead_code)]
struct Appointment<'a> {
    id: Option<Text<'a>>,
    external_id: Option<Text<'a>>,
    category: Option<Text<'a>>,
    description: Option<Text<'a>>,
    status: Option<Text<'a>>,
    creation_date: Option<Text<'a>>,
    last_update: Option<Text<'a>>,
    contact_medium: Option<Vec<ContactMedium<'a>>>,
    note: Option<Vec<Note<'a>>>,
    related_entity: Option<Vec<Pair<'a>>>,
    related_party: Option<Vec<Pair<'a>>>,
    related_place: Option<Pair<'a>>,
    resource_order_item: Option<Vec<Item<'a>>>,
    valid_for: Option<ValidFor<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
#[allow(dead_code)]
struct ContactMedium<'a> {
    characteristic: Option<KeyValue<'a>>,
    medium_type: Option<Text<'a>>,
    preferred: Option<Bool>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
#[allow(dead_code)]
struct KeyValue<'a> {
    key: Option<Text<'a>>,
    value: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
#[allow(dead_code)]
struct Note<'a> {
    id: Option<Text<'a>>,
    author: Option<Text<'a>>,
    date: Option<Text<'a>>,
    text: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
#[allow(dead_code)]
struct Pair<'a> {
    id: Option<Text<'a>>,
    role: Option<Text<'a>>,
    name: Option<Text<'a>>,
    href: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
#[allow(dead_code)]
struct Item<'a> {
    id: Option<Text<'a>>,
    resource: Option<Resource<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
#[allow(dead_code)]
struct Resource<'a> {
    resource_characteristic: Option<Vec<KeyValueNamed<'a>>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
#[allow(dead_code)]
struct KeyValueNamed<'a> {
    name: Option<Text<'a>>,
    value: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
#[allow(dead_code)]
struct ValidFor<'a> {
    start_date_time: Option<Text<'a>>,
    end_date_time: Option<Text<'a>>,
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: parse_floor FILE [THREADS]");
    let threads: usize = args
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let data = std::fs::read(&path)?;
    // Cut the file into one slice per thread, at line ends.
    let mut bounds = vec![0];
    for t in 1..threads {
        let at = data.len() * t / threads;
        let nl = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |p| at + p + 1);
        bounds.push(nl.max(*bounds.last().unwrap_or(&0)));
    }
    bounds.push(data.len());
    let records: usize = std::thread::scope(|s| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let slice = &data[w[0]..w[1]];
                s.spawn(move || {
                    let mut n = 0usize;
                    let mut fields = 0usize;
                    for line in slice.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        let a: Appointment = serde_json::from_slice(line).expect("a valid appointment");
                        fields += a.related_party.map_or(0, |p| p.len());
                        n += 1;
                    }
                    std::hint::black_box(fields);
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let _: Cow<str> = Cow::Borrowed("");
    println!("{records} records");
    Ok(())
}
