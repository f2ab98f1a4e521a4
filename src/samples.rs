//! The sample generator: a consistent universe of exports in the layout of `samples/`.
//!
//! Every order draws its own random stream from `(seed, order index)`, so a universe is the
//! same whatever the number of threads that write it. The universe is built to exercise the
//! readers (every file shape, gzip and zstd, role lists in any order, numbers as strings,
//! the three timestamp styles, missing optional fields, re-exported duplicates) and carries
//! known reconciliation cases, listed in `_truth/injected.json`: products with no
//! expedition, stuck expeditions, re-expeditions, stock shortfalls, amount mismatches, late
//! deliveries for installs, appointments missing.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::{Duration, NaiveDate, NaiveDateTime, TimeZone};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};

/// The day the generated exports are a snapshot of (the `as_of` to reconcile them with).
pub const SNAPSHOT: (i32, u32, u32) = (2025, 6, 30);
/// Days without a status change that the injected stuck expeditions exceed (the default
/// `stuck_after_days` is 7).
pub const STUCK_DAYS: i64 = 12;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Universe {
    /// Number of orders.
    pub orders: usize,
    /// Random seed.
    pub seed: u64,
    /// Also export the appointments a reschedule superseded (an export holds them; the API
    /// serves only the latest appointment of a work order).
    pub superseded: bool,
}

impl Default for Universe {
    fn default() -> Self {
        Universe {
            orders: 1000,
            seed: 1,
            superseded: true,
        }
    }
}

/// What was written.
#[derive(Debug, Default)]
pub struct Stats {
    /// Files.
    pub files: usize,
    /// Bytes.
    pub bytes: u64,
}

/// Cases the reconciliations must find, by kind (written to `_truth/injected.json`).
#[derive(Debug, Default, Serialize, Clone)]
pub struct Truth {
    /// `[order_id, subscription_device_id]` of products with no expedition.
    pub no_expedition: Vec<(String, String)>,
    /// `[order_id, subscription_device_id]` whose expedition is stuck.
    pub stuck: Vec<(String, String)>,
    /// `[order_id, subscription_device_id]` shipped again (the later expedition decides).
    pub reexpedited: Vec<(String, String)>,
    /// Expected fulfilment state per `[order_id, subscription_device_id]`, for every product.
    pub fulfilment: BTreeMap<String, String>,
    /// Product codes with less stock than pending demand, and with no stock record.
    pub stock_shortfall: Vec<String>,
    /// Product codes ordered that no warehouse lists.
    pub no_stock_record: Vec<String>,
    /// `[order_id_external, journey_index]` with a courier amount that differs.
    pub amount_mismatch: Vec<(String, i32)>,
    /// Expected remaining-payment state per `order_id_external/journey_index`.
    pub payments: BTreeMap<String, String>,
    /// Expected fees state per `order_id_external/journey_index` of final payments.
    pub fees: BTreeMap<String, String>,
    /// Orders whose devices arrived after the installation appointment started.
    pub late_install: Vec<String>,
    /// Expected readiness state per order with a work order.
    pub readiness: BTreeMap<String, String>,
}

const TENANTS: &[(&str, &str, &str)] = &[
    ("masmovil", "16", "MYSIM_"),
    ("yoigo", "12", "Y"),
    ("pepephone", "21", "PP"),
    ("lebara", "31", "LB_"),
];

const CATALOGUE: &[(&str, &str, &str)] = &[
    ("RM58AV3N2", "Caja de voz Ad Hoc v3", "STB"),
    ("ZTEF680", "Router ZTE F680 FTTH", "ROUTER"),
    ("HGU-2741", "Router Askey RTF8115VW", "ROUTER"),
    ("SIM-4G-T", "Tarjeta SIM 4G triple corte", "SIM"),
    ("SIM-5G-E", "eSIM 5G", "SIM"),
    ("IPH15-128", "iPhone 15 128GB", "TERMINAL"),
    ("SGA55-128", "Samsung Galaxy A55 128GB", "TERMINAL"),
    ("XRN13-256", "Xiaomi Redmi Note 13 256GB", "TERMINAL"),
    ("AGTV-4K", "Agile TV 4K Box", "STB"),
    ("APTV-4K", "Apple TV 4K", "STB_APPLE"),
    ("MESH-W6", "Extensor WiFi Mesh 6", "WIFIMESH"),
    ("SMH-CAM1", "Cámara Smart Home", "SMARTHOME"),
    ("ONT-HUA", "ONT Huawei HG8010", "ROUTER"),
    ("TAB-S9FE", "Samsung Tab S9 FE", "TERMINAL"),
    ("WATCH-SE", "Apple Watch SE", "GENERIC"),
    ("TV-LG43", "LG Smart TV 43\"", "SMART_TV"),
];

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

const IN_PROGRESS_PATH: &[&str] = &[
    "ORDER_RECEIVED",
    "PICKING",
    "READY_TO_SHIPPING",
    "SENT",
    "IN_TRANSIT",
    "IN_DELIVERY",
];
const DELIVERED: &[&str] = &["DELIVERED", "DELIVERED_CUSTODIAN", "DELIVERED_IN_DELIVERY_POINT"];
const RETURNED: &[&str] = &["RETURNED", "RETURNED_TO_OL", "RETURNED_TO_WAREHOUSE", "NOT_DELIVERED"];
const CANCELLED: &[&str] = &["CANCELLED", "ABANDONED", "EXPIRED", "REJECTED"];
const INCIDENCE: &[&str] = &[
    "INCIDENCE",
    "DELIVERY_INCIDENCE",
    "ABSENT_INCIDENCE",
    "TRANSPORT_INCIDENCE",
    "FAIL_CONTACT",
];

/// The expected fulfilment category of an expedition's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Returned,
    Cancelled,
    Incidence,
    InProgress,
    Stuck,
    NoHistory,
}

impl Outcome {
    fn state(self) -> &'static str {
        match self {
            Outcome::Delivered => "DELIVERED",
            Outcome::Returned => "RETURNED",
            Outcome::Cancelled => "CANCELLED",
            Outcome::Incidence => "INCIDENCE",
            Outcome::InProgress | Outcome::NoHistory => "IN_PROGRESS",
            Outcome::Stuck => "STUCK",
        }
    }
}

fn snapshot() -> NaiveDate {
    NaiveDate::from_ymd_opt(SNAPSHOT.0, SNAPSHOT.1, SNAPSHOT.2).unwrap_or_default()
}

/// The end of the snapshot day in Madrid, as a naive UTC time (the instant `as_of` stands for).
fn snapshot_end_utc() -> NaiveDateTime {
    let local = snapshot()
        .succ_opt()
        .unwrap_or_default()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default();
    chrono_tz::Europe::Madrid
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.naive_utc())
        .unwrap_or(local)
}

/// Madrid wall time of a UTC instant, as the logistics API writes it.
fn madrid(t: NaiveDateTime) -> String {
    chrono_tz::Europe::Madrid
        .from_utc_datetime(&t)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn iso(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn iso_ms(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn cents(c: i64) -> Value {
    // Amounts as JSON numbers with at most two decimals (what the APIs send).
    json!(c as f64 / 100.0)
}

fn money_text(c: i64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// One file per (source, part), NDJSON, optionally compressed.
struct Sink {
    out: Box<dyn Write + Send>,
}

impl Sink {
    fn create(dir: &Path, name: &str) -> io::Result<Sink> {
        fs::create_dir_all(dir)?;
        let path = dir.join(name);
        let file = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        let out: Box<dyn Write + Send> = if name.ends_with(".gz") {
            Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
        } else if name.ends_with(".zst") {
            Box::new(zstd::stream::write::Encoder::new(file, 1)?.auto_finish())
        } else {
            Box::new(file)
        };
        Ok(Sink { out })
    }

    fn line(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }
}

fn write_json(path: &Path, v: &Value) -> io::Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    fs::write(path, serde_json::to_vec_pretty(v)?)
}

/// Pages of items written as one envelope per line.
struct Pager {
    sink: Sink,
    key: &'static str,
    items: Vec<Value>,
    page: usize,
    size: usize,
    memos: bool,
}

impl Pager {
    fn push(&mut self, v: Value) -> io::Result<()> {
        self.items.push(v);
        if self.items.len() == self.size {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        self.page += 1;
        let items = std::mem::take(&mut self.items);
        let page = if self.memos {
            json!({
                "data": {"memos": items},
                "next_request": format!("http://localhost:8081/memos/?limit={}&offset={}", self.size, self.page * self.size)
            })
        } else {
            json!({
                "page_size": self.size,
                "current_page": self.page,
                "total_elements": items.len(),
                (self.key): items
            })
        };
        self.sink.line(&page)
    }
}

struct PartWriters {
    appointments: Sink,
    time_slots: Sink,
    memos: Pager,
    typifications: Sink,
    devices: Sink,
    orders: Pager,
    expeditions: Pager,
    pickups: Vec<Value>,
    external: Sink,
    redelivered: Vec<Value>,
}

/// What a part of the universe adds to the shared totals.
#[derive(Default)]
struct PartResult {
    truth: Truth,
    /// Quantity of products with no expedition, per product code.
    pending: BTreeMap<String, i64>,
    /// Every product code ordered.
    ordered: std::collections::BTreeSet<String>,
    pickups: Vec<(&'static str, Value)>,
}

/// Writes the universe under `out`.
pub fn generate(u: &Universe, out: &Path) -> io::Result<Stats> {
    fs::create_dir_all(out)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parts = (u.orders / 20_000).clamp(1, threads.max(1) * 2);
    let per = u.orders.div_ceil(parts);
    let results: Vec<io::Result<PartResult>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..parts)
            .map(|p| {
                let range = (p * per)..((p + 1) * per).min(u.orders);
                s.spawn(move || write_part(u, out, p, range))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a generator thread panicked")))
            })
            .collect()
    });
    let mut truth = Truth::default();
    let mut pending: BTreeMap<String, i64> = BTreeMap::new();
    let mut ordered = std::collections::BTreeSet::new();
    let mut pickups: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    for r in results {
        let r = r?;
        truth.no_expedition.extend(r.truth.no_expedition);
        truth.stuck.extend(r.truth.stuck);
        truth.reexpedited.extend(r.truth.reexpedited);
        truth.fulfilment.extend(r.truth.fulfilment);
        truth.amount_mismatch.extend(r.truth.amount_mismatch);
        truth.payments.extend(r.truth.payments);
        truth.fees.extend(r.truth.fees);
        truth.late_install.extend(r.truth.late_install);
        truth.readiness.extend(r.truth.readiness);
        for (k, v) in r.pending {
            *pending.entry(k).or_default() += v;
        }
        for (tenant, p) in r.pickups {
            pickups.entry(tenant).or_default().push(p);
        }
        ordered.extend(r.ordered);
    }
    for (tenant, list) in pickups {
        write_json(
            &out.join("pickups").join(tenant).join("pickups.json"),
            &Value::Array(list),
        )?;
    }
    write_stock(u, out, &pending, &ordered, &mut truth)?;
    write_json(&out.join("_truth/injected.json"), &serde_json::to_value(&truth)?)?;
    let mut stats = Stats::default();
    count(out, &mut stats)?;
    Ok(stats)
}

fn count(dir: &Path, stats: &mut Stats) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            count(&e.path(), stats)?;
        } else {
            stats.files += 1;
            stats.bytes += e.metadata()?.len();
        }
    }
    Ok(())
}

/// Stock per warehouse: codes ordered by index; every fifth code with pending demand is short,
/// every seventh is listed by no warehouse, the others are covered.
fn write_stock(
    u: &Universe,
    out: &Path,
    pending: &BTreeMap<String, i64>,
    ordered: &std::collections::BTreeSet<String>,
    truth: &mut Truth,
) -> io::Result<()> {
    let dir = out.join("stock");
    fs::create_dir_all(&dir)?;
    let mut csv = BufWriter::new(File::create(dir.join("stock.csv"))?);
    writeln!(csv, "warehouse_id,product_id,available_quantity")?;
    let mut extra = Vec::new();
    let warehouses = ["50", "51", "52"];
    let mut rng = ChaCha8Rng::seed_from_u64(u.seed ^ 0x5707);
    for (i, (code, _, _)) in CATALOGUE.iter().enumerate() {
        let need = pending.get(*code).copied().unwrap_or(0);
        if i % 7 == 3 {
            if ordered.contains(*code) {
                truth.no_stock_record.push(code.to_string());
            }
            continue;
        }
        let short = i % 5 == 1 && need > 0;
        let total = if short {
            need / 2
        } else {
            need + rng.random_range(5..500)
        };
        if short {
            truth.stock_shortfall.push(code.to_string());
        }
        // Split over the warehouses; the last one goes to the JSON export.
        let a = total / 3;
        let b = total / 3;
        let c = total - a - b;
        writeln!(csv, "{},{code},{a}", warehouses[0])?;
        // Numbers arrive quoted in some exports.
        writeln!(csv, "\"{}\",{code},\"{b}\"", warehouses[1])?;
        extra.push(json!({"warehouse_id": warehouses[2], "product_id": code, "available_quantity": c}));
    }
    // Codes nobody ordered still have stock.
    extra.push(json!({"warehouse_id": "50", "product_id": "LEGACY-ADSL", "available_quantity": 12}));
    csv.flush()?;
    write_json(&dir.join("warehouse-52.json"), &json!({ "data": extra }))
}

fn part_writers(out: &Path, tenant: &str, part: usize) -> io::Result<PartWriters> {
    let name = |src: &str, ext: &str| format!("{src}-{part:03}.{ext}");
    let dir = |source: &str| out.join(source).join(tenant);
    let pager = |source: &str, file: String, key: &'static str, size: usize, memos: bool| -> io::Result<Pager> {
        Ok(Pager {
            sink: Sink::create(&dir(source), &file)?,
            key,
            items: Vec::new(),
            page: 0,
            size,
            memos,
        })
    };
    Ok(PartWriters {
        appointments: Sink::create(&dir("appointments"), &name("appointments", "ndjson.gz"))?,
        time_slots: Sink::create(&dir("time_slots"), &name("searches", "ndjson"))?,
        memos: pager("memos", name("memos", "ndjson"), "memos", 50, true)?,
        typifications: Sink::create(&dir("typifications"), &name("typifications", "ndjson"))?,
        devices: Sink::create(&dir("customer_devices"), &name("devices", "ndjson"))?,
        orders: pager("orders", name("orders", "ndjson"), "orders", 100, false)?,
        expeditions: pager(
            "expeditions",
            name("expeditions", "ndjson.zst"),
            "expeditions",
            100,
            false,
        )?,
        pickups: Vec::new(),
        external: Sink::create(&dir("external_orders"), &name("external", "ndjson.gz"))?,
        redelivered: Vec::new(),
    })
}

/// Where a tenant's single files go: `{out}/{source}/{tenant}/{file}`.
struct TenantOut {
    root: std::path::PathBuf,
    tenant: &'static str,
}

impl TenantOut {
    fn path(&self, source: &str, file: &str) -> std::path::PathBuf {
        self.root.join(source).join(self.tenant).join(file)
    }
}

/// Writes the orders of `range`, each tenant's into its own sub-folder of every source.
fn write_part(u: &Universe, out: &Path, part: usize, range: std::ops::Range<usize>) -> io::Result<PartResult> {
    let mut writers: BTreeMap<&'static str, PartWriters> = BTreeMap::new();
    let mut result = PartResult::default();
    for i in range {
        order(u, out, part, i, &mut writers, &mut result)?;
    }
    for (tenant, mut w) in writers {
        w.memos.flush()?;
        w.orders.flush()?;
        w.expeditions.flush()?;
        // Appointments exported again later the same day (newer lastUpdate wins).
        if !w.redelivered.is_empty() {
            let mut again = Sink::create(
                &out.join("appointments").join(tenant),
                &format!("appointments-redelivered-{part:03}.ndjson"),
            )?;
            for a in &w.redelivered {
                again.line(a)?;
            }
            again.out.flush()?;
        }
        for s in [
            &mut w.appointments,
            &mut w.time_slots,
            &mut w.typifications,
            &mut w.devices,
            &mut w.external,
        ] {
            s.out.flush()?;
        }
        for s in [&mut w.memos.sink, &mut w.orders.sink, &mut w.expeditions.sink] {
            s.out.flush()?;
        }
        result.pickups.extend(w.pickups.into_iter().map(|p| (tenant, p)));
    }
    Ok(result)
}

struct Person {
    first: String,
    surnames: String,
    document: String,
    email: String,
    phone: String,
    street: String,
    number: u32,
    city: (&'static str, &'static str, &'static str),
}

fn person(rng: &mut ChaCha8Rng, i: usize) -> Person {
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

fn client(p: &Person, rng: &mut ChaCha8Rng) -> Value {
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

fn address(p: &Person, rng: &mut ChaCha8Rng) -> Value {
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

struct Product {
    device: Option<String>,
    code: &'static str,
    remaining: i64,
    quantity: i64,
}

#[allow(clippy::too_many_lines)]
fn order(
    u: &Universe,
    out: &Path,
    part: usize,
    i: usize,
    writers: &mut BTreeMap<&'static str, PartWriters>,
    result: &mut PartResult,
) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        u.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93),
    );
    let end = snapshot_end_utc();
    let (tenant, tenant_id, wo_prefix) = *pick(&mut rng, TENANTS);
    if !writers.contains_key(tenant) {
        writers.insert(tenant, part_writers(out, tenant, part)?);
    }
    let Some(w) = writers.get_mut(tenant) else {
        return Ok(());
    };
    let out_for = |tenant: &'static str| TenantOut {
        root: out.to_path_buf(),
        tenant,
    };
    let order_id = format!("{:08}-{:05x}", i, rng.random_range(0..0xFFFFFu32));
    let customer = 10_000_000 + i as u64;
    let who = person(&mut rng, i);
    let ordered_at = end - Duration::days(rng.random_range(3..60)) - Duration::minutes(rng.random_range(0..1440));
    // Orders with a product lacking its device id are kept out of installs, so that the
    // readiness each install expects follows from its one expedition.
    let install = rng.random_bool(0.7) && i % 499 != 7;
    let work_order = install.then(|| format!("{wo_prefix}{:07}", 2_000_000 + i));

    // Products.
    let n = 1 + rng.random_range(0..3usize);
    let mut products = Vec::with_capacity(n);
    for k in 0..n {
        let (code, _, _) = *pick(&mut rng, CATALOGUE);
        let remaining = match rng.random_range(0..4) {
            0 => 0,
            1 => 2050,
            2 => rng.random_range(100..20_000),
            _ => rng.random_range(1..9) * 1000 + 99,
        };
        // A product without a device id now and then (a data-quality case).
        let device = (!(i % 499 == 7 && k == 0)).then(|| format!("{}", 40_000_000 + i * 4 + k));
        result.ordered.insert(code.to_string());
        products.push(Product {
            device,
            code,
            remaining,
            quantity: if rng.random_bool(0.05) { 2 } else { 1 },
        });
    }
    let key = |d: &Option<String>| format!("{order_id}/{}", d.clone().unwrap_or_default());

    // Expeditions: none, one, or a re-expedition whose later status decides.
    let no_expedition = rng.random_bool(0.04) || products.iter().all(|p| p.device.is_none());
    let outcome = match rng.random_range(0..100) {
        0..=64 => Outcome::Delivered,
        65..=76 => Outcome::InProgress,
        77..=81 => Outcome::Stuck,
        82..=87 => Outcome::Returned,
        88..=92 => Outcome::Cancelled,
        93..=98 => Outcome::Incidence,
        _ => Outcome::NoHistory,
    };
    // A second expedition without any status never wins over the first (whose status is the
    // latest), so re-expeditions always carry a history.
    let reexpedition = !no_expedition && rng.random_bool(0.04) && outcome != Outcome::NoHistory;
    let mut delivered_at: Option<NaiveDateTime> = None;
    if no_expedition {
        for p in &products {
            *result.pending.entry(p.code.to_string()).or_default() += p.quantity;
            if let Some(d) = &p.device {
                result.truth.no_expedition.push((order_id.clone(), d.clone()));
            }
            result.truth.fulfilment.insert(key(&p.device), "NO_EXPEDITION".into());
        }
    } else {
        let base_id = format!("{:016x}", rng.random::<u64>());
        let mut shipped: Vec<&Product> = products.iter().filter(|p| p.device.is_some()).collect();
        for p in products.iter().filter(|p| p.device.is_none()) {
            *result.pending.entry(p.code.to_string()).or_default() += p.quantity;
            result.truth.fulfilment.insert(key(&p.device), "NO_EXPEDITION".into());
        }
        let start = ordered_at + Duration::hours(rng.random_range(2..30));
        let last_at = last_status_time(&mut rng, outcome, end);
        let mut at = start.min(last_at - Duration::hours(24));
        if reexpedition {
            // The first attempt came back before the second one started.
            let first_last = at - Duration::hours(rng.random_range(1..24));
            let (first, _) = expedition(
                &mut rng,
                &format!("{base_id}-R0"),
                &shipped,
                Outcome::Returned,
                first_last - Duration::hours(48),
                first_last,
            );
            w.expeditions.push(first)?;
            at = at.max(first_last + Duration::hours(1)).min(last_at);
            for p in &shipped {
                if let Some(d) = &p.device {
                    result.truth.reexpedited.push((order_id.clone(), d.clone()));
                }
            }
        }
        let suffix = if reexpedition { "R1" } else { "R0" };
        let (exp, last_at) = expedition(&mut rng, &format!("{base_id}-{suffix}"), &shipped, outcome, at, last_at);
        w.expeditions.push(exp)?;
        if outcome == Outcome::Delivered {
            delivered_at = Some(last_at);
        }
        for p in shipped.drain(..) {
            result.truth.fulfilment.insert(key(&p.device), outcome.state().into());
            if outcome == Outcome::Stuck {
                if let Some(d) = &p.device {
                    result.truth.stuck.push((order_id.clone(), d.clone()));
                }
            }
        }
    }

    // The order itself.
    let product_values: Vec<Value> = products
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let (code, description, kind) = CATALOGUE
                .iter()
                .find(|c| c.0 == p.code)
                .copied()
                .unwrap_or(CATALOGUE[0]);
            let mut v = json!({
                "product_id": p.device.clone().unwrap_or_else(|| format!("P{i}{k}")),
                "product_code": code,
                "product_description": description,
                "product_type": kind,
                "product_type_id": 16,
                "product_unit_price": cents(p.remaining + 1650),
                "quantity": p.quantity,
                "msisdn": who.phone,
                "financed": p.remaining > 0,
                "invoiced": true,
                "status": "CREATED"
            });
            if let Some(d) = &p.device {
                v["subscription_device_id"] = json!(d);
            }
            // Amounts sometimes arrive as strings, with their cents.
            v["remaining_payment"] = if k % 2 == 1 {
                json!(money_text(p.remaining))
            } else {
                cents(p.remaining)
            };
            v
        })
        .collect();
    let mut head = json!({
        "subscription_id": format!("{}", 2_200_000 + i),
        "order_id": order_id,
        "order_id_crm": format!("{}", 109_000_000 + i),
        "business_process": "PEDIDO",
        "convergent": install,
        "language": "ES",
        "delivery_type": *pick(&mut rng, &["AGENCY", "HOME", "SHOP"])
    });
    if let Some(wo) = &work_order {
        head["work_order"] = json!(wo);
    }
    let order_value = json!({
        "order": head,
        "data_sales": {"agent": format!("AG{:04}", i % 700), "channel": "TELE_SALE_CARE", "type": "NEW_SALE", "group": "POS"},
        "client": client(&who, &mut rng),
        "invoice": {"address": address(&who, &mut rng), "data_invoice": {"base": 100, "tax_value": 21, "total_invoice": 121, "payment_type": 0, "fee": {"amount": 12, "duration": 24}}},
        "shipping": {
            "address": address(&who, &mut rng),
            "contact_data": {"identity": {"document_id": who.document, "document_type": "NIF"}, "contact_phone": {"phone_number": who.phone, "prefix": "+34"}, "name": who.first},
            "data_delivery": {"courier_id": "CORREOS", "delivery_service": "DELIVERY_24", "exclusive": false, "verify_identity": true, "retrieve_contract": false}
        },
        "products": product_values,
        "documentation": {"letter_type": "WP", "documents": [{"document_id": format!("doc-{i}"), "document_type": "CONTRACT", "copies": 1, "signable": true, "signed": false}]}
    });
    if i == 0 {
        // One order exported alone, as the GET of one order returns it.
        write_json(&out.join("orders").join(tenant).join("single-order.json"), &order_value)?;
    } else {
        w.orders.push(order_value)?;
    }

    // Appointment for installs, and the readiness it implies.
    if let Some(wo) = &work_order {
        appointment(
            &mut rng,
            i,
            wo,
            tenant_id,
            &who,
            &order_id,
            delivered_at,
            end,
            u.superseded,
            &out_for(tenant),
            w,
            result,
        )?;
    }

    // Customer care: memos, typifications, devices.
    // Final payments: the fees on file usually cover what is left to pay; sometimes not.
    let finalpayment = rng.random_bool(0.1);
    let fee_off = if finalpayment && rng.random_bool(0.25) { 100 } else { 0 };
    customer_care(&mut rng, i, customer, tenant, &who, &products, fee_off, w, out)?;

    // The logistics operator's record of the delivery and its remaining payment.
    if !no_expedition && rng.random_bool(0.75) {
        external_order(
            &mut rng,
            i,
            &order_id,
            &products,
            &who,
            end,
            (finalpayment, fee_off != 0),
            w,
            result,
        )?;
    }
    if rng.random_bool(0.05) {
        w.pickups.push(json!({
            "order": {"subscription_id": format!("{}", 2_200_000 + i), "pickup_id": format!("P{:07}", i), "order_id_crm": format!("{}", 109_000_000 + i),
                      "language": "ES", "business_process": "UNSUBSCRIPTION", "reason": "Unsubscription", "delivery_type": "AGENCY", "access_reused": false},
            "client": client(&who, &mut rng),
            "shipping": {"address": address(&who, &mut rng), "contact_data": {"identity": {"document_id": who.document, "document_type": "NIF"}, "contact_phone": {"phone_number": who.phone}},
                         "transport_data": {"courier_id": "DEFAULT", "delivery_service": "DEFAULT", "exclusive": false, "verify_identity": false, "retrieve_contract": false}},
            "products": products.iter().filter_map(|p| p.device.as_ref().map(|d| json!({"product_code": p.code, "product_type": "ROUTER", "identifier": format!("SN{d}"), "subscription_device_id": d, "technology": "FTTH", "status": "CREATED"}))).collect::<Vec<_>>()
        }));
    }
    Ok(())
}

/// When an expedition's last status happened, for the outcome it must have on the snapshot.
fn last_status_time(rng: &mut ChaCha8Rng, outcome: Outcome, end: NaiveDateTime) -> NaiveDateTime {
    match outcome {
        Outcome::Stuck => end - Duration::days(STUCK_DAYS + rng.random_range(0..20)),
        Outcome::InProgress => end - Duration::hours(rng.random_range(6..72)),
        _ => end - Duration::days(rng.random_range(1..25)),
    }
}

/// An expedition with a status history from `start` to `last_at` ending in `outcome`; returns
/// it and its last status time.
fn expedition(
    rng: &mut ChaCha8Rng,
    id: &str,
    products: &[&Product],
    outcome: Outcome,
    start: NaiveDateTime,
    last_at: NaiveDateTime,
) -> (Value, NaiveDateTime) {
    let steps = rng.random_range(3..IN_PROGRESS_PATH.len());
    let mut statuses: Vec<(&str, NaiveDateTime)> = Vec::new();
    let first_at = start.min(last_at - Duration::hours(2 * steps as i64));
    let mut at = first_at;
    let gap = (last_at - first_at) / (steps as i32 + 1);
    for s in IN_PROGRESS_PATH.iter().take(steps) {
        statuses.push((s, at));
        at += gap;
    }
    let final_status = match outcome {
        Outcome::Delivered => Some(*pick(rng, DELIVERED)),
        Outcome::Returned => Some(*pick(rng, RETURNED)),
        Outcome::Cancelled => Some(*pick(rng, CANCELLED)),
        Outcome::Incidence => Some(*pick(rng, INCIDENCE)),
        Outcome::InProgress | Outcome::Stuck | Outcome::NoHistory => None,
    };
    match final_status {
        Some(s) => statuses.push((s, last_at)),
        None => {
            if let Some(last) = statuses.last_mut() {
                last.1 = last_at;
            }
        }
    }
    // A tie: a transport note at the very same second, listed before the final status.
    if rng.random_bool(0.03) && statuses.len() > 1 {
        let n = statuses.len();
        statuses[n - 2].1 = statuses[n - 1].1;
    }
    let iso_style = rng.random_bool(0.1);
    let mut history: Vec<Value> = statuses
        .iter()
        .enumerate()
        .map(|(k, (s, t))| {
            json!({
                "id": format!("{}", k + 1),
                "value": s,
                "description": s.to_lowercase().replace('_', " "),
                "final": matches!(*s, "DELIVERED" | "RETURNED" | "CANCELLED"),
                "reshippable": false,
                "reason_code": "",
                "reason_description": null,
                "timestamp": if iso_style { iso(*t) } else { madrid(*t) }
            })
        })
        .collect();
    if outcome == Outcome::NoHistory {
        history.clear();
    } else if rng.random_bool(0.05) && history.len() > 2 {
        // Histories are not always listed in time order: the latest by timestamp counts.
        history.swap(0, 1);
        let last = history.len() - 1;
        history.swap(last - 1, 0);
    }
    let items: Vec<Value> = products
        .iter()
        .map(|p| json!({"product_code": p.code, "quantity": p.quantity, "subscription_device_id": p.device, "remaining_payment": cents(p.remaining)}))
        .collect();
    let v = json!({
        "expedition_id": id,
        "created_date": start.format("%Y-%m-%d").to_string(),
        "transport": {"courier_id": "CORREOS", "delivery_service": "DELIVERY_24", "verify_identity": false},
        "tracking": {"tracking_link": format!("http://gls.es/{id}"), "return_code": null},
        "status_history": history,
        "products": items
    });
    (v, last_at)
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

/// Writes `count` seed-shaped appointments, one per line, to `out` (the normalize benchmark's
/// input: about 2 KB each).
pub fn write_appointments(count: usize, seed: u64, out: &Path) -> io::Result<Stats> {
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
        let a = appointment_value(&mut rng, i, &work_order, &work_order, tenant_id, &who, start, updated);
        serde_json::to_writer(&mut file, &a)?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    Ok(Stats {
        files: 1,
        bytes: fs::metadata(out)?.len(),
    })
}

#[allow(clippy::too_many_arguments)]
fn appointment(
    rng: &mut ChaCha8Rng,
    i: usize,
    work_order: &str,
    tenant_id: &str,
    who: &Person,
    order_id: &str,
    delivered_at: Option<NaiveDateTime>,
    end: NaiveDateTime,
    superseded: bool,
    out: &TenantOut,
    w: &mut PartWriters,
    result: &mut PartResult,
) -> io::Result<()> {
    if rng.random_bool(0.08) {
        result
            .truth
            .readiness
            .insert(order_id.to_string(), "NO_APPOINTMENT".into());
        return Ok(());
    }
    // The state is chosen, then the appointment time that produces it.
    let (state, start) = match delivered_at {
        Some(d) if rng.random_bool(0.2) => ("LATE", d - Duration::hours(rng.random_range(3..72))),
        Some(d) => ("READY", d + Duration::hours(rng.random_range(12..240))),
        None if rng.random_bool(0.4) => ("AT_RISK", end + Duration::hours(rng.random_range(1..46))),
        None => ("PENDING", end + Duration::hours(rng.random_range(50..400))),
    };
    result.truth.readiness.insert(order_id.to_string(), state.into());
    if state == "LATE" {
        result.truth.late_install.push(order_id.to_string());
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
        w.appointments.line(&old)?;
    }
    if i < 3 {
        write_json(&out.path("appointments", &format!("appointment-{id}.json")), &a)?;
    } else if rng.random_bool(0.02) {
        // Exported twice: the first copy is older and loses.
        let mut older = a.clone();
        older["lastUpdate"] = json!(iso_ms(updated - Duration::hours(6)));
        older["status"] = json!("created");
        w.appointments.line(&older)?;
        w.redelivered.push(a.clone());
    } else {
        w.appointments.line(&a)?;
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
        if i < 60 && i % 20 == 1 {
            // A response alone, in a file named after the appointment.
            write_json(&out.path("time_slots", &format!("{id}.json")), &response)?;
        } else {
            w.time_slots
                .line(&json!({"request": {"id": id, "requestedTimeSlot": []}, "response": response}))?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn customer_care(
    rng: &mut ChaCha8Rng,
    i: usize,
    customer: u64,
    tenant: &str,
    who: &Person,
    products: &[Product],
    fee_off: i64,
    w: &mut PartWriters,
    out: &Path,
) -> io::Result<()> {
    let day = snapshot() - Duration::days(rng.random_range(0..90));
    // Every customer has a memo (the API finds customers through their memos).
    for k in 0..rng.random_range(1..3) {
        w.memos.push(json!({
            "id": format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", i, k, i % 4096, k, customer),
            "host_table": "ModSub", "key_value": "CoRuleID", "memo_seq": k + 1,
            "customer_num": if k % 2 == 0 { json!(customer) } else { json!(customer.to_string()) },
            "customer_external_id": customer + 5_000_000,
            "subscription_id": 2_200_000 + i,
            "memo_title": *pick(rng, &["FixedLine Barring", "Cambio de tarifa", "Portabilidad"]),
            "memo_text": "Cliente solicita información sobre su pedido.",
            "memo_type": "Service", "source": 7,
            "create_stamp": (day - Duration::days(3)).format("%Y-%m-%d").to_string(),
            "create_user": "123654",
            "change_stamp": (day + Duration::days(k)).format("%Y-%m-%d").to_string(),
            "change_user": 214748364
        }))?;
    }
    let typifications: Vec<Value> = (0..rng.random_range(0..3))
        .map(|k| {
            json!({
                "id": format!("TY-{i:08}-{k}"),
                "created_at": format!("{}T{:02}:15:00Z", day.format("%Y-%m-%d"), 8 + k),
                "channel": "agents", "tenant": tenant, "area": "RETENCION",
                "user_id": format!("agent{}@example.com", i % 50),
                "msisdn": who.phone, "campaign": "ORDERS", "reason": "Estado pedido", "subreason1": "Envío",
                "result": "Informado", "initial_fee": 0.1
            })
        })
        .collect();
    if !typifications.is_empty() {
        if i < 2 {
            write_json(
                &out.join("typifications").join(tenant).join(format!("{customer}.json")),
                &json!({ "typifications": typifications }),
            )?;
        } else {
            w.typifications
                .line(&json!({"customer_num": customer, "typifications": typifications}))?;
        }
    }
    let devices: Vec<Value> = products
        .iter()
        .filter_map(|p| p.device.as_ref().map(|d| (p, d)))
        .map(|(p, d)| {
            let unpaid = rng.random_range(0..24);
            // The installment plan covers what is left to pay, to the cent, most of the time.
            let monthly = if unpaid > 0 { p.remaining / (unpaid + 1) } else { 0 };
            let last = p.remaining - monthly * unpaid + fee_off;
            let plan = json!({"last_installment_fee": cents(last), "monthly_fee": cents(monthly), "duration": 24, "unpaid_installments": unpaid, "financed_by": "MASMOVIL"});
            let mut fees = json!({"upfront_fee": 0});
            if rng.random_bool(0.9) {
                fees["installment_plan"] = plan;
            } else {
                fees["final_installment_plan"] = plan;
            }
            json!({
                "start_date": format!("{}T00:00:00Z", (day - Duration::days(400)).format("%Y-%m-%d")),
                "subscription_id": 2_200_000 + i,
                "subscription_terminal_id": d.parse::<u64>().unwrap_or_default(),
                "status": {"id": 1, "value": "ACTIVO"},
                "fees": fees,
                "permanence": {"campaign_id": 214, "description": "Permanencia 24M", "duration_months": 24, "start_date": "2024-01-31T00:00:00Z", "end_date": "2026-01-31T00:00:00Z", "category_type": 1},
                "is_mandatory": true,
                "expedition_info": {"item_number": 214748364, "request_date": "2025-05-31T00:00:00Z", "status": {"id": 3, "value": "ENVIADO"}}
            })
        })
        .collect();
    if !devices.is_empty() {
        if i < 2 {
            // As the API returns it, in a file named after the customer.
            write_json(
                &out.join("customer_devices")
                    .join(tenant)
                    .join(format!("{customer}.json")),
                &json!({ "devices": devices }),
            )?;
        } else {
            w.devices.line(&json!({"customer_num": customer, "devices": devices}))?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn external_order(
    rng: &mut ChaCha8Rng,
    i: usize,
    order_id: &str,
    products: &[Product],
    who: &Person,
    end: NaiveDateTime,
    (finalpayment, fee_mismatch): (bool, bool),
    w: &mut PartWriters,
    result: &mut PartResult,
) -> io::Result<()> {
    let id = format!("OL-{i:08}");
    let shipped: Vec<&Product> = products.iter().filter(|p| p.device.is_some()).collect();
    // Usually one journey; sometimes the devices travel in two.
    let split = shipped.len() > 1 && rng.random_bool(0.15);
    let groups: Vec<Vec<&Product>> = if split {
        vec![shipped[..1].to_vec(), shipped[1..].to_vec()]
    } else {
        vec![shipped.clone()]
    };
    let mut journeys = Vec::new();
    for (j, group) in groups.iter().enumerate() {
        let expected: i64 = group.iter().map(|p| p.remaining).sum();
        let roll = rng.random_range(0..100);
        let (courier, state): (Option<Value>, &str) = match roll {
            0..=4 => (None, "NO_AMOUNT"),
            5..=9 => {
                let off = rng.random_range(100..5000) * if rng.random_bool(0.5) { 1 } else { -1 };
                (Some(cents((expected + off).abs())), "AMOUNT_MISMATCH")
            }
            // Within the 0.01 EUR tolerance.
            10..=12 => (Some(json!(format!("{}4", money_text(expected)))), "MATCH"),
            _ => (Some(cents(expected)), "MATCH"),
        };
        let state = if state == "AMOUNT_MISMATCH"
            && courier
                .as_ref()
                .and_then(Value::as_f64)
                .is_some_and(|c| ((c * 100.0).round() as i64 - expected).abs() <= 1)
        {
            "MATCH"
        } else {
            state
        };
        let unknown_devices = rng.random_bool(0.02);
        let state = if unknown_devices && courier.is_some() {
            "ORDER_NOT_FOUND"
        } else {
            state
        };
        // Now and then the courier collects in another currency.
        let usd = courier.is_some() && !unknown_devices && rng.random_bool(0.01);
        let state = if usd { "CURRENCY_NOT_EUR" } else { state };
        if finalpayment && !unknown_devices {
            let fees = if fee_mismatch { "AMOUNT_MISMATCH" } else { "MATCH" };
            result.truth.fees.insert(format!("{id}/{j}"), fees.into());
        }
        if state == "AMOUNT_MISMATCH" {
            result.truth.amount_mismatch.push((id.clone(), j as i32));
        }
        result.truth.payments.insert(format!("{id}/{j}"), state.into());
        let devices: Vec<Value> = group
            .iter()
            .map(|p| {
                let device = if unknown_devices { format!("9{}", p.device.clone().unwrap_or_default()) } else { p.device.clone().unwrap_or_default() };
                json!({
                    "reference": format!("REF{device}"),
                    "subscription": {"subscription_id": format!("{}", 2_200_000 + i), "order_id": order_id, "msisdn": who.phone},
                    "type": {"action_id": "1", "family_id": "17", "id": "ROUTER"},
                    "replacement": "N", "identifier": format!("SN{device}"), "active": true,
                    "subscription_device_id": device,
                    "price": {"markup": {"total": cents(p.remaining), "currency": "EUR"}, "no_markup": {"total": cents(p.remaining), "currency": "EUR"}}
                })
            })
            .collect();
        let mut details = json!({"package": {"weight": 2.5, "dimensions": 0}, "coverage": true, "secure_delivery": false,
                                  "recipient_verification": {"exclusive_delivery": false, "verification": {"required": true, "completed": false}}});
        match courier {
            Some(c) => details["remaining_payment"] = json!({"total": c, "currency": if usd { "USD" } else { "EUR" }}),
            None if rng.random_bool(0.5) => details["remaining_payment"] = json!({"total": null, "currency": "EUR"}),
            None => {}
        }
        journeys.push(json!({
            "devices": devices,
            "transport": {"delivery_details": details, "courier": "GLS", "service": "24h", "tracking_link": format!("https://www.trackinglink.com/{id}/{j}"),
                          "expedition_number": format!("{}", 28_272_272_722u64 + i as u64), "delivery_note": {"delivery_note_id": format!("{}", 111_222_333_444u64 + i as u64), "link": "https://www.gls.com/deliverynote"}}
        }));
    }
    let status_at = end - Duration::hours(rng.random_range(1..500));
    let v = json!({
        "order_id_external": id,
        "reexpedition": "R0",
        "order_date": iso_ms(status_at - Duration::days(3)),
        "logistics_operator": *pick(rng, &["INTERBOX", "ANOVO"]),
        "delivery_type": "HOME",
        "process_type": if finalpayment { "FINALPAYMENT" } else { "PEDIDO" },
        "logistic_operation": "DELIVERY",
        "portability": false,
        "status": {"id": "3", "description": "Delivered", "timestamp": iso(status_at)},
        "journeys": journeys,
        "customer_delivering_info": {
            "address": {"building_street_type": "Calle", "building_street_name": who.street, "building_number": who.number.to_string(), "city": who.city.0, "zipcode": who.city.1, "region": who.city.2, "country": "ES"},
            "client": {"identity": {"document_id": who.document, "document_type": "NIF"}, "contact_phone": {"phone_number": who.phone, "prefix": "+34"}, "name": who.first, "surnames": [who.surnames], "email": who.email},
            "language": "ES", "updated": false
        }
    });
    w.external.line(&v)
}
