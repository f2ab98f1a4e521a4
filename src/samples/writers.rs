//! Files: where a tenant's records go and how they are written (NDJSON lines, pages, single
//! files, gzip and zstd), in each [`Layout`].
//!
//! The builders hand over records by kind ([`TenantWriters::order`], ...); this module alone
//! decides file names and shapes, so every layout holds the same records. Parts of the
//! universe are written in parallel: the default and small layouts name their files after the
//! part, the large one writes a hidden piece per part and [`join_pieces`] concatenates them
//! (gzip members and zstd frames may follow one another in a file; the readers take them all).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Layout, Stats};

/// Items per page file in the small layout (a page of the APIs' usual size).
const SMALL_PAGE: usize = 50;
/// Per-id answers (an appointment, a search, a customer's devices or typifications) per file in
/// the small layout: a file per answer would be some 2.5 files per order, and the small layout
/// aims at about half a file per order.
const SMALL_ANSWERS: usize = 6;

/// An open export file, compressed as its name says (`.gz`, `.zst`).
enum Encoded {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
}

impl Encoded {
    /// Creates `path`; `name` (the file name it will have) says the compression.
    fn create(path: &Path, name: &str) -> io::Result<Encoded> {
        if let Some(d) = path.parent() {
            fs::create_dir_all(d)?;
        }
        let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
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

/// Where a stream of lines goes.
enum Target {
    /// One file, created at once (an export lists its files even when they are empty).
    One,
    /// Files of `per_file` lines, `{stem}-{n:05}.{ext}` from 1, created as lines come.
    Numbered {
        dir: PathBuf,
        stem: String,
        ext: &'static str,
        per_file: usize,
    },
}

/// A stream of NDJSON lines.
struct Lines {
    target: Target,
    out: Option<Encoded>,
    /// Lines in the open file.
    in_file: usize,
    /// Files opened.
    files: usize,
}

impl Lines {
    /// One file at `path`.
    fn one(path: &Path) -> io::Result<Lines> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Lines::one_named(path, &name)
    }

    /// One file at `path`, to be renamed `name` (which says the compression).
    fn one_named(path: &Path, name: &str) -> io::Result<Lines> {
        Ok(Lines {
            target: Target::One,
            out: Some(Encoded::create(path, name)?),
            in_file: 0,
            files: 1,
        })
    }

    /// Numbered files of `per_file` lines in `dir`.
    fn numbered(dir: PathBuf, stem: String, ext: &'static str, per_file: usize) -> Lines {
        Lines {
            target: Target::Numbered {
                dir,
                stem,
                ext,
                per_file,
            },
            out: None,
            in_file: 0,
            files: 0,
        }
    }

    fn line(&mut self, v: &Value) -> io::Result<()> {
        if let Target::Numbered {
            dir,
            stem,
            ext,
            per_file,
        } = &self.target
        {
            if self.in_file == *per_file {
                if let Some(out) = self.out.take() {
                    out.close()?;
                }
            }
            if self.out.is_none() {
                self.files += 1;
                self.in_file = 0;
                let name = format!("{stem}-{:05}.{ext}", self.files);
                self.out = Some(Encoded::create(&dir.join(&name), &name)?);
            }
        }
        let Some(out) = self.out.as_mut() else {
            return Err(io::Error::other("a closed export file was written to"));
        };
        let w = out.writer();
        serde_json::to_writer(&mut *w, v)?;
        w.write_all(b"\n")?;
        self.in_file += 1;
        Ok(())
    }

    fn close(self) -> io::Result<()> {
        match self.out {
            Some(out) => out.close(),
            None => Ok(()),
        }
    }
}

/// How a page wraps its items.
#[derive(Clone, Copy)]
enum PageShape {
    /// No page: each item on its own line.
    Bare,
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
        if let PageShape::Bare = self.shape {
            return self.lines.line(&v);
        }
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
            PageShape::Bare => return Ok(()),
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

/// A part's piece of a large-layout file, concatenated into the file once every part is done.
pub(super) struct Piece {
    /// The file.
    file: PathBuf,
    /// This part's piece of it (hidden, named after the part).
    piece: PathBuf,
}

/// The folder of one tenant's files of every source, for one part, in one layout.
struct Place {
    root: PathBuf,
    tenant: &'static str,
    part: usize,
    layout: Layout,
    /// The large layout's pieces.
    pieces: Vec<Piece>,
}

impl Place {
    fn dir(&self, source: &str) -> PathBuf {
        self.root.join(source).join(self.tenant)
    }

    /// The NDJSON lines of `source`: `{stem}-{part}.{ext}` (default), per-id answers in small
    /// uncompressed files, as an API answers (small), or this part's piece of `{stem}.{ext}`
    /// (large).
    fn lines(&mut self, source: &str, stem: &str, ext: &'static str) -> io::Result<Lines> {
        let dir = self.dir(source);
        let part = self.part;
        match self.layout {
            Layout::Default => Lines::one(&dir.join(format!("{stem}-{part:03}.{ext}"))),
            Layout::Small => Ok(Lines::numbered(
                dir,
                format!("{stem}-{part:03}"),
                "ndjson",
                SMALL_ANSWERS,
            )),
            Layout::Large => {
                let name = format!("{stem}.{ext}");
                // Hidden, so that the readers skip a piece a failed run left behind.
                let piece = dir.join(format!(".{name}.{part:03}"));
                let lines = Lines::one_named(&piece, &name)?;
                self.pieces.push(Piece {
                    file: dir.join(name),
                    piece,
                });
                Ok(lines)
            }
        }
    }

    /// The pages of `source`: `size` items a line in the default and large layouts' file, a
    /// page of [`SMALL_PAGE`] per file in the small layout.
    fn pages(
        &mut self,
        source: &str,
        stem: &str,
        ext: &'static str,
        shape: PageShape,
        size: usize,
    ) -> io::Result<Pager> {
        match self.layout {
            Layout::Small => {
                let lines = Lines::numbered(self.dir(source), format!("{stem}-{:03}", self.part), "json", 1);
                Ok(Pager::new(lines, shape, SMALL_PAGE))
            }
            Layout::Default | Layout::Large => Ok(Pager::new(self.lines(source, stem, ext)?, shape, size)),
        }
    }

    /// A file of its own: `{root}/{source}/{tenant}/{file}`.
    fn alone(&self, source: &str, file: &str) -> PathBuf {
        self.dir(source).join(file)
    }
}

/// The files of one tenant written by one part of the universe: `{root}/{source}/{tenant}/`.
pub(super) struct TenantWriters {
    place: Place,
    appointments: Lines,
    /// Appointments exported again later the same day, written last in a file of their own.
    again: Vec<Value>,
    searches: Lines,
    memos: Pager,
    typifications: Lines,
    devices: Lines,
    orders: Pager,
    expeditions: Pager,
    external: Pager,
    pickups: Vec<Value>,
}

impl TenantWriters {
    fn create(root: &Path, tenant: &'static str, part: usize, layout: Layout) -> io::Result<TenantWriters> {
        let mut p = Place {
            root: root.to_path_buf(),
            tenant,
            part,
            layout,
            pieces: Vec::new(),
        };
        let external_shape = match layout {
            // The operator's records come bare, but an API page of them is an envelope.
            Layout::Small => PageShape::Numbered("external_orders"),
            Layout::Default | Layout::Large => PageShape::Bare,
        };
        Ok(TenantWriters {
            appointments: p.lines("appointments", "appointments", "ndjson.gz")?,
            again: Vec::new(),
            searches: p.lines("time_slots", "searches", "ndjson")?,
            memos: p.pages("memos", "memos", "ndjson", PageShape::Memos, 50)?,
            typifications: p.lines("typifications", "typifications", "ndjson")?,
            devices: p.lines("customer_devices", "devices", "ndjson")?,
            orders: p.pages("orders", "orders", "ndjson", PageShape::Numbered("orders"), 100)?,
            expeditions: p.pages(
                "expeditions",
                "expeditions",
                "ndjson.zst",
                PageShape::Numbered("expeditions"),
                100,
            )?,
            external: p.pages("external_orders", "external", "ndjson.gz", external_shape, SMALL_PAGE)?,
            pickups: Vec::new(),
            place: p,
        })
    }

    /// Whether records flagged to go alone, or again, get their own files (the default layout's
    /// variety of shapes; the others put every record of a source in the same kind of file).
    fn shapes_vary(&self) -> bool {
        self.place.layout == Layout::Default
    }

    /// An appointment.
    pub(super) fn appointment(&mut self, a: &Value) -> io::Result<()> {
        self.appointments.line(a)
    }

    /// An appointment the default layout exports alone, as the GET of one appointment returns it.
    pub(super) fn appointment_alone(&mut self, id: &str, a: &Value) -> io::Result<()> {
        if !self.shapes_vary() {
            return self.appointment(a);
        }
        write_json(&self.place.alone("appointments", &format!("appointment-{id}.json")), a)
    }

    /// An appointment exported again later the same day (the newer copy of a duplicate; the
    /// default layout writes these last, in a file of their own).
    pub(super) fn appointment_again(&mut self, a: Value) -> io::Result<()> {
        if !self.shapes_vary() {
            return self.appointment(&a);
        }
        self.again.push(a);
        Ok(())
    }

    /// The searchTimeSlot response for appointment `id`; `alone`: the default layout writes it
    /// as a response alone in a file named after the appointment, else with its request.
    pub(super) fn search(&mut self, id: &str, response: Value, alone: bool) -> io::Result<()> {
        if alone && self.shapes_vary() {
            write_json(&self.place.alone("time_slots", &format!("{id}.json")), &response)
        } else {
            self.searches
                .line(&json!({"request": {"id": id, "requestedTimeSlot": []}, "response": response}))
        }
    }

    /// A memo.
    pub(super) fn memo(&mut self, m: Value) -> io::Result<()> {
        self.memos.push(m)
    }

    /// A customer's typifications; `alone`: the default layout writes them in a file named
    /// after the customer, as the API returns them.
    pub(super) fn typifications(&mut self, customer: u64, list: Vec<Value>, alone: bool) -> io::Result<()> {
        if alone && self.shapes_vary() {
            write_json(
                &self.place.alone("typifications", &format!("{customer}.json")),
                &json!({ "typifications": list }),
            )
        } else {
            self.typifications
                .line(&json!({"customer_num": customer, "typifications": list}))
        }
    }

    /// A customer's devices; `alone`: the default layout writes them in a file named after the
    /// customer, as the API returns them.
    pub(super) fn devices(&mut self, customer: u64, list: Vec<Value>, alone: bool) -> io::Result<()> {
        if alone && self.shapes_vary() {
            write_json(
                &self.place.alone("customer_devices", &format!("{customer}.json")),
                &json!({ "devices": list }),
            )
        } else {
            self.devices.line(&json!({"customer_num": customer, "devices": list}))
        }
    }

    /// An order; `alone`: the default layout exports it alone, as the GET of one order returns it.
    pub(super) fn order(&mut self, o: Value, alone: bool) -> io::Result<()> {
        if alone && self.shapes_vary() {
            write_json(&self.place.alone("orders", "single-order.json"), &o)
        } else {
            self.orders.push(o)
        }
    }

    /// An expedition.
    pub(super) fn expedition(&mut self, e: Value) -> io::Result<()> {
        self.expeditions.push(e)
    }

    /// The logistics operator's record of an order.
    pub(super) fn external_order(&mut self, e: Value) -> io::Result<()> {
        self.external.push(e)
    }

    /// A pickup (written with the tenant's other pickups once every part is done).
    pub(super) fn pickup(&mut self, p: Value) {
        self.pickups.push(p);
    }

    /// Ends every file; returns the pickups and the large layout's pieces.
    fn close(self) -> io::Result<(Vec<Value>, Vec<Piece>)> {
        self.memos.close()?;
        self.orders.close()?;
        self.expeditions.close()?;
        self.external.close()?;
        if !self.again.is_empty() {
            let mut again = Lines::one(&self.place.alone(
                "appointments",
                &format!("appointments-redelivered-{:03}.ndjson", self.place.part),
            ))?;
            for a in &self.again {
                again.line(a)?;
            }
            again.close()?;
        }
        for lines in [self.appointments, self.searches, self.typifications, self.devices] {
            lines.close()?;
        }
        Ok((self.pickups, self.place.pieces))
    }
}

/// What a part's files leave to do once every part is written.
#[derive(Default)]
pub(super) struct PartLeftovers {
    /// Pickups by tenant, in order.
    pub pickups: Vec<(&'static str, Value)>,
    /// The large layout's pieces.
    pub pieces: Vec<Piece>,
}

/// The files one part of the universe writes, per tenant (created as tenants turn up).
pub(super) struct PartWriters {
    root: PathBuf,
    part: usize,
    layout: Layout,
    tenants: BTreeMap<&'static str, TenantWriters>,
}

impl PartWriters {
    /// Writers for part `part` under `root`, in `layout`.
    pub(super) fn new(root: &Path, part: usize, layout: Layout) -> PartWriters {
        PartWriters {
            root: root.to_path_buf(),
            part,
            layout,
            tenants: BTreeMap::new(),
        }
    }

    /// The writers of `tenant`.
    pub(super) fn tenant(&mut self, tenant: &'static str) -> io::Result<&mut TenantWriters> {
        Ok(match self.tenants.entry(tenant) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(TenantWriters::create(&self.root, tenant, self.part, self.layout)?),
        })
    }

    /// Ends every file.
    pub(super) fn close(self) -> io::Result<PartLeftovers> {
        let mut left = PartLeftovers::default();
        for (tenant, w) in self.tenants {
            let (pickups, pieces) = w.close()?;
            left.pickups.extend(pickups.into_iter().map(|p| (tenant, p)));
            left.pieces.extend(pieces);
        }
        Ok(left)
    }
}

/// Concatenates the large layout's pieces into their files, in part order, and removes them.
pub(super) fn join_pieces(pieces: Vec<Piece>) -> io::Result<()> {
    let mut by_file: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for Piece { file, piece } in pieces {
        by_file.entry(file).or_default().push(piece);
    }
    for (file, mut pieces) in by_file {
        // Piece names end in the part number.
        pieces.sort();
        if let [only] = pieces.as_slice() {
            fs::rename(only, &file)?;
            continue;
        }
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&file)?);
        for piece in &pieces {
            io::copy(&mut File::open(piece)?, &mut out)?;
        }
        out.flush()?;
        for piece in &pieces {
            fs::remove_file(piece)?;
        }
    }
    Ok(())
}

/// Writes each tenant's pickups, in part then order: one JSON array per tenant, or pages of
/// [`SMALL_PAGE`] in files of their own in the small layout.
pub(super) fn write_pickups(
    root: &Path,
    layout: Layout,
    pickups: BTreeMap<&'static str, Vec<Value>>,
) -> io::Result<()> {
    for (tenant, list) in pickups {
        let dir = root.join("pickups").join(tenant);
        match layout {
            Layout::Small => {
                let lines = Lines::numbered(dir, "pickups".into(), "json", 1);
                let mut pages = Pager::new(lines, PageShape::Numbered("pickups"), SMALL_PAGE);
                for p in list {
                    pages.push(p)?;
                }
                pages.close()?;
            }
            Layout::Default | Layout::Large => write_json(&dir.join("pickups.json"), &Value::Array(list))?,
        }
    }
    Ok(())
}

/// Writes the stock exports (the same in every layout: two small files): the CSV and the last
/// warehouse's JSON.
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn decoded(path: &Path) -> Vec<Value> {
        let file = File::open(path).unwrap();
        let mut reader: Box<dyn Read> = match path.extension().and_then(|e| e.to_str()) {
            // As the readers open them (extract::files::open).
            Some("gz") => Box::new(flate2::read::MultiGzDecoder::new(file)),
            Some("zst") => Box::new(zstd::stream::read::Decoder::new(file).unwrap()),
            _ => Box::new(file),
        };
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn large_pieces_concatenate_into_one_file_that_reads_every_part_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["ndjson", "ndjson.gz", "ndjson.zst"] {
            let name = format!("x.{ext}");
            let mut pieces = Vec::new();
            // Written out of order, as parallel parts finish.
            for part in [2, 0, 1] {
                let piece = dir.path().join(format!(".{name}.{part:03}"));
                let mut lines = Lines::one_named(&piece, &name).unwrap();
                for k in 0..2 {
                    lines.line(&json!({"part": part, "k": k})).unwrap();
                }
                lines.close().unwrap();
                pieces.push(Piece {
                    file: dir.path().join(&name),
                    piece,
                });
            }
            join_pieces(pieces).unwrap();
            let got: Vec<(u64, u64)> = decoded(&dir.path().join(&name))
                .iter()
                .map(|v| (v["part"].as_u64().unwrap(), v["k"].as_u64().unwrap()))
                .collect();
            assert_eq!(got, [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)], "{ext}");
        }
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "pieces left behind: {left:?}");
    }

    #[test]
    fn numbered_lines_start_a_new_file_every_per_file_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = Lines::numbered(dir.path().to_path_buf(), "devices-000".into(), "ndjson", 3);
        for k in 0..7 {
            lines.line(&json!({ "k": k })).unwrap();
        }
        lines.close().unwrap();
        let sizes: Vec<usize> = (1..=3)
            .map(|n| decoded(&dir.path().join(format!("devices-000-{n:05}.ndjson"))).len())
            .collect();
        assert_eq!(sizes, [3, 3, 1]);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
