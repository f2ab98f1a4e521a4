//! A new source is one file plus one registration line: here the "file" is a module of this
//! test, registered next to the real sources, and a run publishes its table.

use std::borrow::Cow;

use opslake::schema::Rows;
use opslake::schema::columns::{Row, TableSpec};
use opslake::schema::lenient::{Int64, Text};
use opslake::source::{Api, Endpoint, Item, ItemKey, Method, Paging, RawContext, Source};
use opslake::sources::{read_item, required_text};
use opslake::table_row;

mod common;
use common::{TestLake, read_table, strings};

/// `couriers/`: the couriers of the logistics operator (a source opslake does not ship).
struct Couriers;

#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Courier<'a> {
    id: Option<Text<'a>>,
    name: Option<Text<'a>>,
    vans: Option<Int64>,
}

table_row! {
    /// A row of `couriers`.
    pub struct CourierRow<'a> in "couriers" key ["courier_id"] {
        courier_id: Option<Cow<'a, str>>,
        name: Option<Cow<'a, str>>,
        vans: Option<i64>,
    }
    groups []
}

impl Source for Couriers {
    fn name(&self) -> &'static str {
        "couriers"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            api: Api::Logistics,
            method: Method::Get,
            path: "/v1/orgs/{tenant}/couriers",
            paging: Paging::PageNumber,
            raw: RawContext::Body,
        }
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![CourierRow::spec()]
    }

    fn parse<'a>(&self, item: &Item<'_, 'a>, rows: &mut Rows<'_, 'a>) -> Result<ItemKey<'a>, String> {
        let c: Courier<'a> = read_item(item.bytes)?;
        let id = required_text(c.id, "id")?;
        rows.push(CourierRow {
            courier_id: Some(id.clone()),
            name: c.name.map(|n| n.0),
            vans: c.vans.map(|v| v.0),
            groups: Vec::new(),
        });
        Ok(ItemKey::new(id))
    }
}

/// The shipped sources plus the one registration line of the new source.
fn registry() -> &'static [&'static dyn Source] {
    let mut all: Vec<&'static dyn Source> = opslake::sources::SOURCES.to_vec();
    all.push(&Couriers);
    Box::leak(all.into_boxed_slice())
}

#[test]
fn a_source_registered_with_one_line_is_read_normalized_and_published() {
    let t = TestLake::new();
    t.generate(30, 3);
    t.file(
        "couriers/page-1.json",
        r#"[{"id": "C1", "name": "Seur", "vans": "12"}, {"id": "C2", "name": "MRW", "vans": 4}, {"name": "no id"}]"#,
    );
    let args = opslake::job::JobArgs {
        job: None,
        settings: <Wrapper as clap::Parser>::parse_from([
            "opslake",
            "--input",
            t.input().to_str().unwrap(),
            "--output",
            t.lake().to_str().unwrap(),
            "--as-of",
            "2025-06-30",
            "--pii",
            "drop",
            "--max-reject-ratio",
            "0.5",
        ])
        .settings,
    };
    let job = args.resolve(&|_| true, &|_| None).unwrap();
    let run = opslake::pipeline::Run::start(job, registry()).unwrap();
    let report = opslake::pipeline::run(&run, None).unwrap();

    let couriers = report.normalize.sources.iter().find(|s| s.name == "couriers").unwrap();
    assert_eq!(
        (couriers.records_read, couriers.rows_written, couriers.rejects),
        (3, 2, 1)
    );
    let table = read_table(&t.lake(), "couriers", "2025-06-30");
    let mut ids = strings(&table, "courier_id");
    ids.sort();
    assert_eq!(ids, [Some("C1".to_string()), Some("C2".to_string())]);
    assert_eq!(strings(&table, "vans").iter().flatten().count(), 2);
}

#[derive(clap::Parser)]
struct Wrapper {
    #[command(flatten)]
    settings: opslake::job::Settings,
}
