//! Files: where a tenant's records go and how they are written (NDJSON lines, pages, single
//! files, gzip and zstd).
//!
//! The builders hand over records by kind ([`TenantWriters::order`], ...); this module alone
//! decides file names and shapes, so the same records can be laid out in other ways.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Stats;

/// An open export file, compressed as its name says (`.gz`, `.zst`).
enum Encoded {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
}

impl Encoded {
    fn create(path: &Path) -> io::Result<Encoded> {
        if let Some(d) = path.parent() {
            fs::create_dir_all(d)?;
        }
        let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
        let name = path.to_string_lossy();
        Ok(if name.ends_with(".gz") {
            Encoded::Gzip(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
        } else if name.ends_with(".zst") {
            Encoded::Zstd(zstd::stream::write::Encoder::new(file, 1)?)
        } else {
            Encoded::Plain(file)
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Encoded::Plain(w) => w,
            Encoded::Gzip(w) => w,
            Encoded::Zstd(w) => w,
        }
    }

    /// Ends the compressed stream and the file. The flush before the end is what the generator
    /// has always done (it adds an empty block), kept so that a seed's files keep their bytes.
    fn close(self) -> io::Result<()> {
        match self {
            Encoded::Plain(mut w) => w.flush(),
            Encoded::Gzip(mut w) => {
                w.flush()?;
                w.finish()?.flush()
            }
            Encoded::Zstd(mut w) => {
                w.flush()?;
                w.finish()?.flush()
            }
        }
    }
}

/// One NDJSON file, created at once (an export lists its files even when they are empty).
struct Lines {
    out: Encoded,
}

impl Lines {
    fn create(path: &Path) -> io::Result<Lines> {
        Ok(Lines {
            out: Encoded::create(path)?,
        })
    }

    fn line(&mut self, v: &Value) -> io::Result<()> {
        let w = self.out.writer();
        serde_json::to_writer(&mut *w, v)?;
        w.write_all(b"\n")
    }

    fn close(self) -> io::Result<()> {
        self.out.close()
    }
}

/// How a page wraps its items.
#[derive(Clone, Copy)]
enum PageShape {
    /// Seed 003's `MemosPag`: `{"data": {"memos": [...]}, "next_request": "..."}`.
    Memos,
    /// Seed 004's numbered page: `{"page_size", "current_page", "total_elements", key: [...]}`.
    Numbered(&'static str),
}

/// Items gathered into pages of `size`, one page per line.
struct Pager {
    lines: Lines,
    shape: PageShape,
    items: Vec<Value>,
    page: usize,
    size: usize,
}

impl Pager {
    fn new(lines: Lines, shape: PageShape, size: usize) -> Pager {
        Pager {
            lines,
            shape,
            items: Vec::new(),
            page: 0,
            size,
        }
    }

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
        let page = match self.shape {
            PageShape::Memos => json!({
                "data": {"memos": items},
                "next_request": format!("http://localhost:8081/memos/?limit={}&offset={}", self.size, self.page * self.size)
            }),
            PageShape::Numbered(key) => json!({
                "page_size": self.size,
                "current_page": self.page,
                "total_elements": items.len(),
                (key): items
            }),
        };
        self.lines.line(&page)
    }

    /// Writes the last, partial page and ends the file.
    fn close(mut self) -> io::Result<()> {
        self.flush()?;
        self.lines.close()
    }
}

/// Writes `v` as pretty JSON to `path`, creating its folder.
pub(super) fn write_json(path: &Path, v: &Value) -> io::Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    fs::write(path, serde_json::to_vec_pretty(v)?)
}

/// The files of one tenant written by one part of the universe: `{root}/{source}/{tenant}/`.
pub(super) struct TenantWriters {
    root: PathBuf,
    tenant: &'static str,
    part: usize,
    appointments: Lines,
    /// Appointments exported again later the same day, written last in a file of their own.
    again: Vec<Value>,
    searches: Lines,
    memos: Pager,
    typifications: Lines,
    devices: Lines,
    orders: Pager,
    expeditions: Pager,
    external: Lines,
    pickups: Vec<Value>,
}

impl TenantWriters {
    fn create(root: &Path, tenant: &'static str, part: usize) -> io::Result<TenantWriters> {
        let file = |source: &str, stem: &str, ext: &str| {
            Lines::create(&root.join(source).join(tenant).join(format!("{stem}-{part:03}.{ext}")))
        };
        Ok(TenantWriters {
            root: root.to_path_buf(),
            tenant,
            part,
            appointments: file("appointments", "appointments", "ndjson.gz")?,
            again: Vec::new(),
            searches: file("time_slots", "searches", "ndjson")?,
            memos: Pager::new(file("memos", "memos", "ndjson")?, PageShape::Memos, 50),
            typifications: file("typifications", "typifications", "ndjson")?,
            devices: file("customer_devices", "devices", "ndjson")?,
            orders: Pager::new(file("orders", "orders", "ndjson")?, PageShape::Numbered("orders"), 100),
            expeditions: Pager::new(
                file("expeditions", "expeditions", "ndjson.zst")?,
                PageShape::Numbered("expeditions"),
                100,
            ),
            external: file("external_orders", "external", "ndjson.gz")?,
            pickups: Vec::new(),
        })
    }

    /// A file of its own: `{root}/{source}/{tenant}/{file}`.
    fn alone(&self, source: &str, file: &str) -> PathBuf {
        self.root.join(source).join(self.tenant).join(file)
    }

    /// An appointment.
    pub(super) fn appointment(&mut self, a: &Value) -> io::Result<()> {
        self.appointments.line(a)
    }

    /// An appointment exported alone, as the GET of one appointment returns it.
    pub(super) fn appointment_alone(&mut self, id: &str, a: &Value) -> io::Result<()> {
        write_json(&self.alone("appointments", &format!("appointment-{id}.json")), a)
    }

    /// An appointment exported again later the same day (the newer copy of a duplicate).
    pub(super) fn appointment_again(&mut self, a: Value) -> io::Result<()> {
        self.again.push(a);
        Ok(())
    }

    /// The searchTimeSlot response for appointment `id`; `alone`: as a response alone in a file
    /// named after the appointment, else with its request.
    pub(super) fn search(&mut self, id: &str, response: Value, alone: bool) -> io::Result<()> {
        if alone {
            write_json(&self.alone("time_slots", &format!("{id}.json")), &response)
        } else {
            self.searches
                .line(&json!({"request": {"id": id, "requestedTimeSlot": []}, "response": response}))
        }
    }

    /// A memo.
    pub(super) fn memo(&mut self, m: Value) -> io::Result<()> {
        self.memos.push(m)
    }

    /// A customer's typifications; `alone`: in a file named after the customer, as the API
    /// returns them.
    pub(super) fn typifications(&mut self, customer: u64, list: Vec<Value>, alone: bool) -> io::Result<()> {
        if alone {
            write_json(
                &self.alone("typifications", &format!("{customer}.json")),
                &json!({ "typifications": list }),
            )
        } else {
            self.typifications
                .line(&json!({"customer_num": customer, "typifications": list}))
        }
    }

    /// A customer's devices; `alone`: in a file named after the customer, as the API returns them.
    pub(super) fn devices(&mut self, customer: u64, list: Vec<Value>, alone: bool) -> io::Result<()> {
        if alone {
            write_json(
                &self.alone("customer_devices", &format!("{customer}.json")),
                &json!({ "devices": list }),
            )
        } else {
            self.devices.line(&json!({"customer_num": customer, "devices": list}))
        }
    }

    /// An order; `alone`: exported alone, as the GET of one order returns it.
    pub(super) fn order(&mut self, o: Value, alone: bool) -> io::Result<()> {
        if alone {
            write_json(&self.alone("orders", "single-order.json"), &o)
        } else {
            self.orders.push(o)
        }
    }

    /// An expedition.
    pub(super) fn expedition(&mut self, e: Value) -> io::Result<()> {
        self.expeditions.push(e)
    }

    /// The logistics operator's record of an order.
    pub(super) fn external_order(&mut self, e: &Value) -> io::Result<()> {
        self.external.line(e)
    }

    /// A pickup (written with the tenant's other pickups once every part is done).
    pub(super) fn pickup(&mut self, p: Value) {
        self.pickups.push(p);
    }

    /// Ends every file; returns the pickups.
    fn close(self) -> io::Result<Vec<Value>> {
        self.memos.close()?;
        self.orders.close()?;
        self.expeditions.close()?;
        if !self.again.is_empty() {
            let mut again = Lines::create(
                &self
                    .root
                    .join("appointments")
                    .join(self.tenant)
                    .join(format!("appointments-redelivered-{:03}.ndjson", self.part)),
            )?;
            for a in &self.again {
                again.line(a)?;
            }
            again.close()?;
        }
        for lines in [
            self.appointments,
            self.searches,
            self.typifications,
            self.devices,
            self.external,
        ] {
            lines.close()?;
        }
        Ok(self.pickups)
    }
}

/// The files one part of the universe writes, per tenant (created as tenants turn up).
pub(super) struct PartWriters {
    root: PathBuf,
    part: usize,
    tenants: BTreeMap<&'static str, TenantWriters>,
}

impl PartWriters {
    /// Writers for part `part` under `root`.
    pub(super) fn new(root: &Path, part: usize) -> PartWriters {
        PartWriters {
            root: root.to_path_buf(),
            part,
            tenants: BTreeMap::new(),
        }
    }

    /// The writers of `tenant`.
    pub(super) fn tenant(&mut self, tenant: &'static str) -> io::Result<&mut TenantWriters> {
        Ok(match self.tenants.entry(tenant) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(TenantWriters::create(&self.root, tenant, self.part)?),
        })
    }

    /// Ends every file; returns the pickups by tenant.
    pub(super) fn close(self) -> io::Result<Vec<(&'static str, Value)>> {
        let mut pickups = Vec::new();
        for (tenant, w) in self.tenants {
            pickups.extend(w.close()?.into_iter().map(|p| (tenant, p)));
        }
        Ok(pickups)
    }
}

/// Writes each tenant's pickups, in part then order, as one JSON array.
pub(super) fn write_pickups(root: &Path, pickups: BTreeMap<&'static str, Vec<Value>>) -> io::Result<()> {
    for (tenant, list) in pickups {
        write_json(
            &root.join("pickups").join(tenant).join("pickups.json"),
            &Value::Array(list),
        )?;
    }
    Ok(())
}

/// Writes the stock exports: the CSV and the last warehouse's JSON.
pub(super) fn write_stock(root: &Path, csv: &str, warehouse: &Value) -> io::Result<()> {
    let dir = root.join("stock");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("stock.csv"), csv)?;
    write_json(&dir.join("warehouse-52.json"), warehouse)
}

/// Counts the files and bytes under `dir`.
pub(super) fn count(dir: &Path, stats: &mut Stats) -> io::Result<()> {
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
