//! Normalize: records into typed tables, written as Parquet files of a local package.
//!
//! ```text
//!  reader thread                          worker threads (--threads)
//!  files in name order ──batches──▶  parse items → column builders → collapse duplicates
//!  (decompress, cut at record             → one row group per table per batch, appended
//!   boundaries, pack small files           to the table's open file (rolled at 1 M rows
//!   into one batch, bounded queue)         or 64 row groups)
//! ```
//! Memory is bounded by `batch_bytes` × (workers + queue), whatever the input size: a batch
//! is parsed straight into column builders (no JSON tree per record) and written as soon as it
//! is done. The work per batch is the same whether its bytes come from one file or from a
//! thousand: many small files cost about what a few large ones do. Duplicates are collapsed on
//! the main table's key: inside a batch by its worker, across batches through the source's
//! ledger of key hashes on disk ([`dedupe`]); a row already written that loses is removed by
//! rewriting its file at the end (rare: only re-exported keys). At the end the code checks, per
//! source, `records read = rows written + rejects + duplicates collapsed`.

pub mod dedupe;
pub mod rejects;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use polars::prelude::*;
use serde::Serialize;

use crate::extract::files::{self, ChunkReader, InputFile};
use crate::extract::shape;
use crate::job::Job;
use crate::publish::layout;
pub use crate::publish::parquet::WrittenFile;
use crate::publish::parquet::{self, TableFiles};
use crate::schema::Rows;
use crate::schema::columns::{Row, TableBuilder, TableSpec};
use crate::schema::roles::{BoundPivot, RolePivot};
use crate::source::{Item, Source};
use dedupe::{Ledger, ReadPosition, Sighting};
use rejects::{Redactor, Reject, RejectRow, Spill, SpillKey};

/// Failures of the normalize stage as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Too many records were rejected.
    #[error(
        "{rejects} of {read} records were rejected ({ratio:.2}%), above max_reject_ratio {max:.2}%: \
         fix the inputs or raise max_reject_ratio; first rejects:\n{examples}"
    )]
    TooManyRejects {
        /// Rejected records.
        rejects: u64,
        /// Records read.
        read: u64,
        /// Rejected share, in percent.
        ratio: f64,
        /// Allowed share, in percent.
        max: f64,
        /// A few rejects, one per line.
        examples: String,
    },
    /// The package could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Polars failed to build a table.
    #[error("cannot build table {table}: {source}")]
    Frame {
        /// The table.
        table: String,
        /// The polars error.
        source: PolarsError,
    },
    /// The rows-in = rows-out check failed: a bug, never an input problem.
    #[error(
        "source {source_name}: {read} records read but {written} rows written + {rejects} rejects + \
         {duplicates} duplicates; this is a bug in opslake, please report it"
    )]
    Unbalanced {
        /// The source.
        source_name: String,
        /// Records read.
        read: u64,
        /// Main-table rows written.
        written: u64,
        /// Rejects.
        rejects: u64,
        /// Duplicates collapsed.
        duplicates: u64,
    },
    /// Listing or reading inputs failed.
    #[error(transparent)]
    Extract(#[from] crate::extract::Error),
}

/// The normalize stage's view of a run: the job, the sources it reads, where from and where to.
struct Stage<'s> {
    job: &'s Job,
    sources: &'s [&'s dyn Source],
    input: &'s Path,
    package: &'s Path,
    /// Rejects' raw text and reasons under the strict policy.
    redactor: Redactor,
}

impl Stage<'_> {
    /// Whether `table` (of a source whose main table is `main`) is written.
    fn writes(&self, table: &str, main: &str) -> bool {
        self.job.writes(table, main)
    }

    /// The package folder of `table`'s files.
    fn table_dir(&self, table: &str) -> PathBuf {
        self.package.join(layout::table_partition(table, self.job.as_of))
    }

    /// A table's files in the package.
    fn table_files(&self, spec: &TableSpec) -> TableFiles {
        TableFiles::new(self.table_dir(spec.name), spec.schema(&self.job.pii))
    }
}

/// Input bytes per chunk: 8 MiB keeps each worker's builders around 25 MiB for the widest
/// source (appointments, ~2 KB a record, ~4k records a chunk); memory is about this × 3 per
/// worker, whatever the input size. Measured on 1 M appointments, 2 threads, 5 paired runs
/// (issue 16): 8 MiB 11.1 s / 138 MiB against 16 MiB 11.3 s / 197 MiB (wall ratio 1.00);
/// 4 MiB saved only 4 MiB more; earlier, 32 and 64 MiB were slower (fewer chunks overlap
/// reading with parsing less) and 300-560 MB.
pub const DEFAULT_BATCH_BYTES: usize = crate::job::DEFAULT_BATCH_BYTES;

/// One row per record in [`Shared::rows_per_record`]'s fixed point (sixteenths).
const ROW_RATIO_ONE: usize = 16;

/// Input bytes per row below which a batch's columns are not presized: the guess from the
/// previous batch never reserves more rows than a batch's bytes could hold (a record with a
/// list of a million pairs must not make the next batch reserve a million rows per record).
const PRESIZE_ROW_BYTES: usize = 16;

/// One input file, as read.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FileReport {
    /// Path relative to the input root.
    pub name: String,
    /// Size as stored.
    pub bytes: u64,
    /// Checksum of the stored bytes.
    pub checksum: String,
    /// Top-level records (lines, values, CSV rows) in it.
    pub records: u64,
}

/// What one source yielded.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SourceReport {
    /// Source name.
    pub name: String,
    /// Files read.
    pub files: Vec<FileReport>,
    /// Files in the folder that are not exports, left alone.
    pub skipped: Vec<String>,
    /// Items read (rows in + rejects + duplicates).
    pub records_read: u64,
    /// Main-table rows written.
    pub rows_written: u64,
    /// Records rejected.
    pub rejects: u64,
    /// Duplicates collapsed.
    pub duplicates: u64,
    /// Keys seen with different contents.
    pub conflicting_duplicates: u64,
}

/// One written table.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TableReport {
    /// Rows in all files.
    pub rows: u64,
    /// Its files in the package's partition folder, in order.
    pub files: Vec<WrittenFile>,
}

/// The outcome of the normalize stage.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NormalizeReport {
    /// Per source.
    pub sources: Vec<SourceReport>,
    /// Per table (including `_rejects`).
    pub tables: BTreeMap<String, TableReport>,
    /// The first rejects in file order (at most [`EXAMPLES`]); all of them are in `_rejects`.
    #[serde(skip)]
    pub rejects: Vec<Reject>,
    /// Warnings for the manifest and summary.
    pub warnings: Vec<String>,
    /// Wall time.
    pub duration: Duration,
}

/// One batch for a worker: consecutive chunks of one source's files, about `batch_bytes` in
/// all. Many small files share a batch, so a day exported as 50,000 small files costs the
/// same column, row-group and ledger work as one exported as a few large ones.
struct Work {
    source: usize,
    batch: u32,
    parts: Vec<Part>,
    /// Bytes of the parts' chunks.
    bytes: usize,
}

/// A chunk of one file, in a batch.
struct Part {
    file: usize,
    chunk: files::Chunk,
}

impl Work {
    fn new(source: usize, batch: u32) -> Self {
        Work {
            source,
            batch,
            parts: Vec::new(),
            bytes: 0,
        }
    }
}

#[derive(Default)]
struct SourceState {
    files: Vec<(InputFile, Option<String>, u64)>,
    skipped: Vec<String>,
    read: u64,
    rejects: u64,
    /// Amounts of accepted records rounded to the money scale.
    rounded: u64,
    /// Every key read, for the end-of-source deduplication.
    ledger: Option<Ledger>,
}

/// Where each batch of each table went: by (table, batch), the file number, its first row in
/// that file and its rows.
type BatchPlaces = HashMap<(&'static str, u32), (usize, usize, usize)>;

struct Shared<'s> {
    opts: &'s Stage<'s>,
    specs: Vec<Vec<TableSpec>>,
    sources: Vec<Mutex<SourceState>>,
    /// Each written table's files, appended to by the workers.
    files: BTreeMap<&'static str, Mutex<TableFiles>>,
    /// Where each batch of each table went (duplicates that a later batch replaced are removed
    /// from there at the end).
    batch_files: Mutex<BatchPlaces>,
    /// Each source's rank by name: `_rejects` is in source name, file, offset order.
    rank: Vec<usize>,
    rejects: Mutex<Spill>,
    failure: Mutex<Option<Error>>,
    /// Rows per input record of each source's tables in the latest batch, in sixteenths: a
    /// long table holds ~16 rows per record, and sizing its columns from the start saves
    /// growing (and copying) them several times per batch.
    rows_per_record: Vec<Vec<AtomicUsize>>,
}

impl Shared<'_> {
    fn fail(&self, e: Error) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(e);
        }
    }
    fn failed(&self) -> bool {
        self.failure.lock().map(|f| f.is_some()).unwrap_or(true)
    }
    /// Records the reject that stands for the rest of file `file` of `source`.
    fn reject(&self, source: usize, file: usize, r: Reject) {
        if let Ok(mut s) = self.sources[source].lock() {
            s.rejects += 1;
            s.read += 1;
        }
        if let Err(e) = self.spill((self.rank[source], file, u32::MAX), &[r]) {
            self.fail(e);
        }
    }

    /// Appends rejects to the spill file.
    fn spill<'r>(&self, key: SpillKey, rejects: impl IntoIterator<Item = &'r Reject>) -> Result<(), Error> {
        let encoded = Spill::encode(rejects).map_err(|e| spill_error(self.opts, e))?;
        lock(&self.rejects)
            .append(key, &encoded)
            .map_err(|e| spill_error(self.opts, e))
    }
}

/// Reads the files of `sources` under `input` and writes their tables into the `package`
/// folder (laid out like the lake), as `job` says.
pub fn normalize(job: &Job, sources: &[&dyn Source], input: &Path, package: &Path) -> Result<NormalizeReport, Error> {
    let stage = Stage {
        job,
        sources,
        input,
        package,
        redactor: Redactor::new(&job.pii, job.settings.rejects_raw, sources),
    };
    let opts = &stage;
    let started = Instant::now();
    std::fs::create_dir_all(opts.package).map_err(|e| ledger_error(opts, e))?;
    let mut names: Vec<(&str, usize)> = opts.sources.iter().enumerate().map(|(i, s)| (s.name(), i)).collect();
    names.sort();
    let mut rank = vec![0; names.len()];
    for (r, (_, i)) in names.into_iter().enumerate() {
        rank[i] = r;
    }
    let shared = Shared {
        opts,
        specs: opts.sources.iter().map(|s| s.tables()).collect(),
        sources: opts
            .sources
            .iter()
            .map(|_| Mutex::new(SourceState::default()))
            .collect(),
        files: opts
            .sources
            .iter()
            .flat_map(|s| {
                let specs = s.tables();
                let main = specs[0].name;
                specs.into_iter().filter(move |t| opts.writes(t.name, main))
            })
            .map(|spec| (spec.name, Mutex::new(opts.table_files(&spec))))
            .collect(),
        batch_files: Mutex::new(HashMap::new()),
        rank,
        rejects: Mutex::new(Spill::new(opts.package).map_err(|e| spill_error(opts, e))?),
        failure: Mutex::new(None),
        rows_per_record: opts
            .sources
            .iter()
            .map(|s| s.tables().iter().map(|_| AtomicUsize::new(ROW_RATIO_ONE)).collect())
            .collect(),
    };
    for (i, s) in opts.sources.iter().enumerate() {
        let (files, skipped) = files::list(opts.input, s.name())?;
        let mut st = lock(&shared.sources[i]);
        st.files = files
            .into_iter()
            .filter(|f| opts.job.settings.shard.is_none_or(|sh| sh.owns(f.tenant.as_deref())))
            .map(|f| (f, None, 0))
            .collect();
        st.skipped = skipped;
        st.ledger = Some(Ledger::new(opts.package).map_err(|e| ledger_error(opts, e))?);
    }

    let threads = opts.job.threads.max(1);
    let (tx, rx) = crossbeam_channel::bounded::<Work>(threads);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let rx = rx.clone();
            let shared = &shared;
            scope.spawn(move || {
                for job in rx {
                    if shared.failed() {
                        continue;
                    }
                    if let Err(e) = process(shared, job) {
                        shared.fail(e);
                    }
                }
            });
        }
        drop(rx);
        read_all(&shared, tx);
    });
    if let Some(e) = shared.failure.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }

    let mut tables: BTreeMap<String, TableReport> = BTreeMap::new();
    let batch_files = std::mem::take(&mut *lock(&shared.batch_files));
    for (name, files) in shared.files {
        let files = files
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .finish()
            .map_err(|source| Error::Write {
                path: opts.table_dir(name),
                source,
            })?;
        let rows = files.iter().map(|f| f.rows).sum();
        tables.insert(name.to_string(), TableReport { rows, files });
    }

    let mut report = NormalizeReport::default();
    for (i, source) in opts.sources.iter().enumerate() {
        let mut st = lock(&shared.sources[i]);
        let dedupe = match st.ledger.take() {
            Some(ledger) => ledger.resolve().map_err(|e| ledger_error(opts, e))?,
            None => Default::default(),
        };
        remove_losers(opts, &shared.specs[i], &dedupe.losers, &batch_files, &mut tables)?;
        let written = tables.get(shared.specs[i][0].name).map_or(0, |t| t.rows);
        let r = SourceReport {
            name: source.name().to_string(),
            files: st
                .files
                .iter()
                .map(|(f, sum, records)| FileReport {
                    name: f.name.clone(),
                    bytes: f.bytes,
                    checksum: sum.clone().unwrap_or_default(),
                    records: *records,
                })
                .collect(),
            skipped: st.skipped.clone(),
            records_read: st.read,
            rows_written: written,
            rejects: st.rejects,
            duplicates: dedupe.duplicates,
            conflicting_duplicates: dedupe.conflicting,
        };
        if r.records_read != r.rows_written + r.rejects + r.duplicates {
            return Err(Error::Unbalanced {
                source_name: r.name,
                read: r.records_read,
                written: r.rows_written,
                rejects: r.rejects,
                duplicates: r.duplicates,
            });
        }
        if st.rounded > 0 {
            report.warnings.push(format!(
                "{}: {} amounts had more than {} decimal places and were rounded half-even to {}",
                r.name,
                st.rounded,
                crate::schema::columns::MONEY_SCALE,
                crate::schema::columns::MONEY_SCALE
            ));
        }
        if r.conflicting_duplicates > 0 {
            report.warnings.push(format!(
                "{}: {} keys were exported more than once with different contents (the latest was kept)",
                r.name, r.conflicting_duplicates
            ));
        }
        for s in &r.skipped {
            report.warnings.push(format!(
                "{}: skipped {s} (not a .json, .ndjson, .jsonl or .csv file)",
                r.name
            ));
        }
        if r.files.is_empty() {
            report.warnings.push(format!("{}: no input files", r.name));
        }
        report.sources.push(r);
    }

    let spill = shared
        .rejects
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (rejects, examples) = write_rejects(opts, spill)?;
    tables.insert("_rejects".into(), rejects);
    report.rejects = examples;
    report.tables = tables;

    let read: u64 = report.sources.iter().map(|s| s.records_read).sum();
    let rejected: u64 = report.sources.iter().map(|s| s.rejects).sum();
    report.duration = started.elapsed();
    if read > 0 && rejected as f64 > opts.job.settings.max_reject_ratio * read as f64 {
        let examples = report
            .rejects
            .iter()
            .map(|r| format!("  {} line {}: {}", r.file, r.line, r.reason))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(Error::TooManyRejects {
            rejects: rejected,
            read,
            ratio: 100.0 * rejected as f64 / read as f64,
            max: 100.0 * opts.job.settings.max_reject_ratio,
            examples,
        });
    }
    Ok(report)
}

fn spill_error(opts: &Stage<'_>, source: std::io::Error) -> Error {
    Error::Write {
        path: opts.package.join("(rejects, a temporary file)"),
        source,
    }
}

fn ledger_error(opts: &Stage<'_>, source: std::io::Error) -> Error {
    Error::Write {
        path: opts.package.join("(duplicate ledger, a temporary file)"),
        source,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The reader: files in name order, cut into chunks, packed into batches of about
/// `batch_bytes` and sent to the workers.
fn read_all(shared: &Shared<'_>, tx: crossbeam_channel::Sender<Work>) {
    let opts = shared.opts;
    let batch_bytes = opts.job.settings.batch_bytes;
    let full = batch_bytes - batch_bytes / 8;
    let limits = files::Limits::of(opts.job);
    let mut batch = 0u32;
    for (si, source) in opts.sources.iter().enumerate() {
        let files: Vec<InputFile> = lock(&shared.sources[si]).files.iter().map(|f| f.0.clone()).collect();
        // A batch holds one source's records only: it is parsed by that source.
        let mut pending = Work::new(si, batch);
        let send = |pending: &mut Work, batch: &mut u32| -> bool {
            if pending.parts.is_empty() {
                return true;
            }
            *batch += 1;
            tx.send(std::mem::replace(pending, Work::new(si, *batch))).is_ok()
        };
        for (fi, file) in files.iter().enumerate() {
            if shared.failed() {
                return;
            }
            tracing::debug!(source = source.name(), file = %file.name, bytes = file.bytes, "reading");
            let (stream, checksum) = match files::open_with(file, &limits) {
                Ok(x) => x,
                Err(e) => return shared.fail(unreadable_file(file, e)),
            };
            let mut reader = ChunkReader::new(stream, file.format, batch_bytes)
                .expected_bytes(file.expected_bytes())
                .max_record_bytes(limits.max_record_bytes)
                .csv_columns(source.csv_columns());
            let mut records = 0u64;
            loop {
                match reader.next_chunk() {
                    Ok(Some(mut chunk)) => {
                        records += chunk.records() as u64;
                        // A small file's chunk is read into a larger buffer: many of them
                        // wait in one batch, so each keeps only what it holds.
                        if chunk.data.capacity() > 2 * chunk.data.len() {
                            chunk.data.shrink_to_fit();
                        }
                        // A batch stays within about `batch_bytes`, which bounds memory.
                        let over = pending.bytes + chunk.data.len() > batch_bytes;
                        if over && !send(&mut pending, &mut batch) {
                            return;
                        }
                        pending.bytes += chunk.data.len();
                        pending.parts.push(Part { file: fi, chunk });
                        // A large file's chunk (a batch short of a record) goes at once.
                        if pending.bytes >= full && !send(&mut pending, &mut batch) {
                            return;
                        }
                    }
                    Ok(None) => break,
                    // The disk or the file system failed: the run cannot read its input.
                    Err(e) if files::is_unreadable(&e) => return shared.fail(unreadable_file(file, e)),
                    Err(e) => {
                        // The rest of the file cannot be read (a corrupt archive, a
                        // decompression bomb): one reject stands for it, and the records
                        // before it are kept.
                        records += 1;
                        shared.reject(si, fi, corrupt_rest(source.name(), file, &e, opts));
                        break;
                    }
                }
            }
            let mut st = lock(&shared.sources[si]);
            st.files[fi].1 = Some(checksum.hex());
            st.files[fi].2 = records;
        }
        if !send(&mut pending, &mut batch) {
            return;
        }
    }
}

/// A file that cannot be opened or read: the run fails naming it (exit 3).
fn unreadable_file(file: &InputFile, source: std::io::Error) -> Error {
    Error::Extract(crate::extract::Error::Read {
        path: file.path.clone(),
        source,
    })
}

/// The reject that stands for the rest of a file that cannot be decompressed.
fn corrupt_rest(source: &str, file: &InputFile, e: &std::io::Error, opts: &Stage<'_>) -> Reject {
    Reject::new(source, &file.name, 0, None, 0, files::describe(e), b"", &opts.redactor)
}

struct Parsed<'a> {
    key: std::borrow::Cow<'a, str>,
    updated_at: Option<i64>,
    content: u64,
    /// Amounts the item rounded to the money scale.
    rounded: u64,
}

/// Where an item is: its part, its bytes in that part's chunk, line, page and offset (for a
/// later reject).
struct Origin {
    part: usize,
    bytes: std::ops::Range<usize>,
    line: u64,
    page: Option<i64>,
    offset: u64,
}

/// A worker's job: one batch → rows → row groups of the tables' files.
fn process(shared: &Shared<'_>, job: Work) -> Result<(), Error> {
    let opts = shared.opts;
    let source = opts.sources[job.source];
    let specs = &shared.specs[job.source];
    let files: Vec<InputFile> = {
        let st = lock(&shared.sources[job.source]);
        job.parts.iter().map(|p| st.files[p.file].0.clone()).collect()
    };
    let capacity: usize = job.parts.iter().map(|p| p.chunk.spans.len()).sum();
    let most_rows = job.parts.iter().map(|p| p.chunk.data.len()).sum::<usize>() / PRESIZE_ROW_BYTES;
    let main = specs[0].name;
    let ratios = &shared.rows_per_record[job.source];
    let mut tables: Vec<TableBuilder> = specs
        .iter()
        .zip(ratios)
        .map(|(s, ratio)| match opts.writes(s.name, main) {
            true => {
                let rows = (capacity.saturating_mul(ratio.load(Ordering::Relaxed)) / ROW_RATIO_ONE).min(most_rows);
                TableBuilder::new(s.clone(), &opts.job.pii, rows)
            }
            false => TableBuilder::unwritten(s.clone()),
        })
        .collect();
    let bound: Vec<(&'static RolePivot, BoundPivot<'_>)> =
        source.pivots().iter().map(|p| (*p, p.bind(&opts.job.pii))).collect();
    let mut parsed: Vec<Option<Parsed<'_>>> = Vec::with_capacity(capacity);
    let mut origins: Vec<Origin> = Vec::with_capacity(capacity);
    let shapes = shape::Shapes::new(source.envelopes());
    // Rejects by the part they are in (its file), in read order.
    let mut rejects: Vec<(usize, Reject)> = Vec::new();

    for (pi, (part, file)) in job.parts.iter().zip(&files).enumerate() {
        let data = &part.chunk.data;
        for span in &part.chunk.spans {
            let record = &data[span.start..span.end];
            let result = shapes.for_each_item(record, &mut |bytes, ctx| {
                let ordinal = parsed.len() as u32;
                let item = Item {
                    bytes,
                    context: ctx,
                    file_stem: &file.stem,
                };
                let mut rows = Rows::new(&mut tables, &bound, &opts.job.pii, &opts.job.time, ordinal);
                let start = bytes.as_ptr() as usize - data.as_ptr() as usize;
                let offset = span.offset + (bytes.as_ptr() as usize - record.as_ptr() as usize) as u64;
                origins.push(Origin {
                    part: pi,
                    bytes: start..start + bytes.len(),
                    line: span.line,
                    page: ctx.page,
                    offset,
                });
                let outcome = source.parse(&item, &mut rows);
                // Counted for the records kept only: a reject's amounts are not published.
                let rounded_here = crate::schema::lenient::take_rounded();
                match outcome {
                    Ok(key) => parsed.push(Some(Parsed {
                        key: key.key,
                        updated_at: key.updated_at,
                        content: xxhash_rust::xxh3::xxh3_64(bytes),
                        rounded: rounded_here,
                    })),
                    Err(reason) => {
                        parsed.push(None);
                        let r = Reject::new(
                            source.name(),
                            &file.name,
                            span.line,
                            ctx.page,
                            offset,
                            reason,
                            bytes,
                            &opts.redactor,
                        );
                        rejects.push((pi, r));
                    }
                }
            });
            if let Err(reason) = result {
                let r = Reject::new(
                    source.name(),
                    &file.name,
                    span.line,
                    None,
                    span.offset,
                    reason,
                    record,
                    &opts.redactor,
                );
                rejects.push((pi, r));
            }
        }
        // Records the reader refused (too long, a CSV row that does not fit its header).
        for p in &part.chunk.problems {
            let r = match p.sha256 {
                Some(sha256) => Reject::unread(
                    source.name(),
                    &file.name,
                    p.span.line,
                    p.span.offset,
                    p.reason.clone(),
                    sha256,
                ),
                None => Reject::new(
                    source.name(),
                    &file.name,
                    p.span.line,
                    None,
                    p.span.offset,
                    p.reason.clone(),
                    &data[p.span.start..p.span.end],
                    &opts.redactor,
                ),
            };
            rejects.push((pi, r));
        }
    }

    // A value the source accepted but its column's type cannot hold (a decimal wider than the
    // column): the record is a reject, never a failed table.
    let mut misfits: Vec<u32> = Vec::new();
    for t in tables.iter().filter(|t| t.is_written()) {
        for (ordinal, reason) in t.misfits() {
            let i = ordinal as usize;
            if parsed.get_mut(i).and_then(Option::take).is_none() {
                continue;
            }
            misfits.push(ordinal);
            let o = &origins[i];
            let r = Reject::new(
                source.name(),
                &files[o.part].name,
                o.line,
                o.page,
                o.offset,
                reason,
                &job.parts[o.part].chunk.data[o.bytes.clone()],
                &opts.redactor,
            );
            rejects.push((o.part, r));
        }
    }
    // Parts of one file are consecutive, so sorting by part keeps the files' read order.
    rejects.sort_by_key(|(part, r)| (*part, r.offset));

    // Duplicates inside the chunk are settled here; those across chunks at the end.
    let mut sightings: Vec<Sighting> = parsed
        .iter()
        .enumerate()
        .filter_map(|(ordinal, p)| {
            p.as_ref().map(|p| Sighting {
                key: dedupe::key_hash(&p.key),
                updated_at: p.updated_at,
                at: ReadPosition {
                    batch: job.batch,
                    ordinal: ordinal as u32,
                },
                content: p.content,
            })
        })
        .collect();
    let mut dropped = dedupe::settle_chunk(&mut sightings);
    if !misfits.is_empty() {
        dropped.extend(misfits);
        dropped.sort_unstable();
        dropped.dedup();
    }
    {
        let mut st = lock(&shared.sources[job.source]);
        let record_rejects = rejects.len() - parsed.iter().filter(|p| p.is_none()).count();
        st.read += (parsed.len() + record_rejects) as u64;
        st.rejects += rejects.len() as u64;
        st.rounded += parsed.iter().flatten().map(|p| p.rounded).sum::<u64>();
        if let Some(ledger) = st.ledger.as_mut() {
            ledger.record(&sightings).map_err(|e| ledger_error(opts, e))?;
        }
    }
    if !parsed.is_empty() {
        for (t, ratio) in tables.iter().zip(ratios) {
            ratio.store(t.len() * ROW_RATIO_ONE / parsed.len(), Ordering::Relaxed);
        }
    }
    // Spilled per file: `_rejects` is in source, file, batch order.
    for group in rejects.chunk_by(|a, b| job.parts[a.0].file == job.parts[b.0].file) {
        let file = job.parts[group[0].0].file;
        shared.spill((shared.rank[job.source], file, job.batch), group.iter().map(|(_, r)| r))?;
    }
    for t in tables {
        if !t.is_written() {
            continue;
        }
        let name = t.spec().name;
        let frame = t.finish(&dropped).map_err(|source| Error::Frame {
            table: name.to_string(),
            source,
        })?;
        if frame.height() == 0 {
            continue;
        }
        let Some(files) = shared.files.get(name) else { continue };
        let (number, start) = lock(files).write(&frame).map_err(|source| Error::Write {
            path: opts.table_dir(name),
            source,
        })?;
        lock(&shared.batch_files).insert((name, job.batch), (number, start, frame.height()));
    }
    Ok(())
}

/// Removes, from the files already written, the rows of keys that a later batch replaced
/// (`losers`: the replaced keys by the batch that read them).
fn remove_losers(
    opts: &Stage<'_>,
    specs: &[TableSpec],
    losers: &HashMap<u32, HashSet<u128>>,
    batch_files: &BatchPlaces,
    tables: &mut BTreeMap<String, TableReport>,
) -> Result<(), Error> {
    let main_key = specs[0].key;
    for spec in specs {
        let Some(table) = tables.get_mut(spec.name) else {
            continue;
        };
        // The batches of each file of the table that lost keys.
        let mut by_file: BTreeMap<usize, Vec<BatchRows<'_>>> = BTreeMap::new();
        for (batch, keys) in losers {
            if let Some(&(n, start, len)) = batch_files.get(&(spec.name, *batch)) {
                by_file.entry(n).or_default().push(BatchRows { start, len, keys });
            }
        }
        for (n, batches) in by_file {
            let Some(file) = table.files.get_mut(n) else { continue };
            let path = opts.table_dir(spec.name).join(&file.name);
            let io = |source| Error::Write {
                path: path.clone(),
                source,
            };
            // Only the key columns are read to find the rows; the file is then rewritten a
            // row group at a time (files hold up to 1 M rows: read whole, the long tables of a
            // large day took gigabytes).
            let keys = parquet::read_columns(&path, main_key).map_err(io)?;
            let keep = losers_kept(&keys, main_key, &batches).map_err(|source| Error::Frame {
                table: spec.name.to_string(),
                source,
            })?;
            if keep.iter().all(|k| *k) {
                continue;
            }
            let (rows, bytes) = parquet::rewrite(&path, &keep).map_err(io)?;
            table.rows -= file.rows - rows;
            file.rows = rows;
            file.bytes = bytes;
        }
    }
    Ok(())
}

/// For each row of `frame`, whether it stays: not if it is in one of the batches in `losers`
/// and its key (its `key` columns joined like [`crate::source::composite_key`]) hashes
/// ([`dedupe::key_hash`]) into that batch's set. Each batch occupies the rows
/// `start..start + len` of the frame.
fn losers_kept(frame: &DataFrame, key: &[&str], losers: &[BatchRows<'_>]) -> PolarsResult<Vec<bool>> {
    // Instants are keyed by their microseconds, as the sources join them.
    let columns = key
        .iter()
        .map(|k| {
            let c = frame.column(k)?;
            match c.dtype() {
                DataType::Datetime(..) => c.cast(&DataType::Int64)?.cast(&DataType::String),
                _ => c.cast(&DataType::String),
            }
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    let strings = columns.iter().map(|c| c.str()).collect::<PolarsResult<Vec<_>>>()?;
    let mut keep = vec![true; frame.height()];
    for batch in losers {
        for (i, kept) in keep.iter_mut().enumerate().skip(batch.start).take(batch.len) {
            let k = strings
                .iter()
                .map(|s| s.get(i).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\u{1f}");
            if batch.keys.contains(&dedupe::key_hash(&k)) {
                *kept = false;
            }
        }
    }
    Ok(keep)
}

/// The rows of one batch in a table's file, and the keys it lost.
struct BatchRows<'k> {
    start: usize,
    len: usize,
    keys: &'k HashSet<u128>,
}

/// Rejects kept as examples in the report and the error of a run above the ratio.
pub const EXAMPLES: usize = 5;

/// Rejects are built into frames of at most this many rows, or this many bytes of text
/// (reasons and raw text): a builder is what the table costs in memory, whatever the number of
/// rejects. The table's files roll as every table's do.
const REJECT_FRAME_ROWS: usize = 1_000_000;
const REJECT_FRAME_BYTES: usize = 64 << 20;

/// Writes the spilled rejects into `_rejects`, in order; returns its report and the first few.
fn write_rejects(opts: &Stage<'_>, spill: Spill) -> Result<(TableReport, Vec<Reject>), Error> {
    let pii = &opts.job.pii;
    let spec = RejectRow::spec();
    let new_builder = || TableBuilder::new(spec.clone(), pii, 1024);
    let mut files = opts.table_files(&spec);
    let io = |source| Error::Write {
        path: opts.table_dir(spec.name),
        source,
    };
    let mut builder = new_builder();
    let (mut rows, mut bytes) = (0usize, 0usize);
    let mut examples = Vec::new();
    let mut failed = None;
    let flush = |builder: TableBuilder, files: &mut TableFiles| -> Result<(), Error> {
        let frame = builder.finish(&[]).map_err(|source| Error::Frame {
            table: "_rejects".into(),
            source,
        })?;
        if frame.height() > 0 {
            files.write(&frame).map_err(io)?;
        }
        Ok(())
    };
    let read = spill.for_each(&mut |r| {
        bytes += r.reason.len() + r.raw.as_ref().map_or(0, String::len) + r.file.len() + 160;
        RejectRow::from(&r).write(&mut builder, pii);
        builder.end_row(rows as u32);
        rows += 1;
        if examples.len() < EXAMPLES {
            examples.push(r);
        }
        if rows >= REJECT_FRAME_ROWS || bytes >= REJECT_FRAME_BYTES {
            if let Err(e) = flush(std::mem::replace(&mut builder, new_builder()), &mut files) {
                failed = Some(e);
                return Err(std::io::Error::other("stopped"));
            }
            (rows, bytes) = (0, 0);
        }
        Ok(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    read.map_err(|e| spill_error(opts, e))?;
    if rows > 0 {
        flush(builder, &mut files)?;
    }
    let files = files.finish().map_err(io)?;
    let rows = files.iter().map(|f| f.rows).sum();
    Ok((TableReport { rows, files }, examples))
}

/// The package folder of a run under `work_dir`.
pub fn package_dir(work_dir: &Path, run_id: &str) -> PathBuf {
    work_dir.join(run_id)
}

#[cfg(test)]
mod properties {
    //! End-to-end property: files of every source, cut from the samples' records, mutated
    //! (bytes flipped, ranges cut or repeated, records cut short), in mixed shapes, line ends,
    //! byte-order marks and compressions, go through the whole stage: it never panics nor
    //! fails, counts every record it reads as published, rejected or collapsed, and counts
    //! as many records in a file as the file has. `PROPTEST_CASES` runs more cases.
    use std::io::Write;
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;
    use crate::sources::SOURCES;

    fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8);
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Every top-level record of the samples, per source (as one-line JSON).
    fn seeds() -> &'static Vec<Vec<String>> {
        static SEEDS: OnceLock<Vec<Vec<String>>> = OnceLock::new();
        SEEDS.get_or_init(|| {
            let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
            SOURCES
                .iter()
                .map(|s| {
                    let mut out = Vec::new();
                    for f in files::list(&samples, s.name()).map(|l| l.0).unwrap_or_default() {
                        let Ok((stream, _)) = files::open(&f) else { continue };
                        let mut r = ChunkReader::new(stream, f.format, 1 << 20);
                        while let Ok(Some(c)) = r.next_chunk() {
                            for sp in &c.spans {
                                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&c.data[sp.start..sp.end]) {
                                    out.push(v.to_string());
                                }
                            }
                        }
                    }
                    out
                })
                .collect()
        })
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Flip(prop::sample::Index, u8),
        Cut(prop::sample::Index, prop::sample::Index),
        Repeat(prop::sample::Index, prop::sample::Index),
        Truncate(prop::sample::Index),
    }

    fn mutate(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
        if bytes.is_empty() {
            return bytes;
        }
        match m {
            Mutation::Flip(at, b) => {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
            Mutation::Cut(a, b) => {
                let (x, y) = (a.index(bytes.len()), b.index(bytes.len()));
                bytes.drain(x.min(y)..x.max(y));
            }
            Mutation::Repeat(a, b) => {
                let (x, y) = (a.index(bytes.len()), b.index(bytes.len()));
                let part = bytes[x.min(y)..x.max(y)].to_vec();
                bytes.splice(x.max(y)..x.max(y), part);
            }
            Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        }
        bytes
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()).prop_map(|(a, b)| Mutation::Cut(a, b)),
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()).prop_map(|(a, b)| Mutation::Repeat(a, b)),
            any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        ]
    }

    /// One file: a source, some of its records (possibly mutated), a shape and an encoding.
    #[derive(Debug, Clone)]
    struct FileCase {
        source: prop::sample::Index,
        records: Vec<(prop::sample::Index, Option<Mutation>)>,
        shape: u8,
        crlf: bool,
        bom: bool,
        gzip: bool,
    }

    fn file_case() -> impl Strategy<Value = FileCase> {
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(
                (any::<prop::sample::Index>(), prop::option::weighted(0.3, mutation())),
                0..8,
            ),
            0..3u8,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(source, records, shape, crlf, bom, gzip)| FileCase {
                source,
                records,
                shape,
                crlf,
                bom,
                gzip,
            })
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn every_record_is_published_rejected_or_collapsed(
            cases in prop::collection::vec(file_case(), 1..6),
            batch in 1024usize..8192,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let input = dir.path().join("input");
            // Lines per ndjson file written, to compare with what the stage counted.
            let mut lines_of: HashMap<String, u64> = HashMap::new();
            for (n, case) in cases.iter().enumerate() {
                let si = case.source.index(SOURCES.len());
                let seeds = &seeds()[si];
                if seeds.is_empty() {
                    continue;
                }
                let nl = if case.crlf { "\r\n" } else { "\n" };
                let records: Vec<Vec<u8>> = case
                    .records
                    .iter()
                    .map(|(i, m)| {
                        let r = seeds[i.index(seeds.len())].as_bytes().to_vec();
                        match m {
                            Some(m) => mutate(r, m),
                            None => r,
                        }
                    })
                    .collect();
                let (ext, mut bytes) = match case.shape {
                    0 => ("ndjson", records.join(nl.as_bytes())),
                    1 => {
                        let mut b = b"[".to_vec();
                        b.extend(records.join(format!(",{nl}").as_bytes()));
                        b.push(b']');
                        ("json", b)
                    }
                    _ => ("json", records.join(nl.as_bytes())),
                };
                if case.bom {
                    bytes.splice(0..0, [0xEF, 0xBB, 0xBF]);
                }
                let name = format!("{}/f{n}.{ext}", SOURCES[si].name());
                if ext == "ndjson" {
                    let text = String::from_utf8_lossy(&bytes[if case.bom { 3 } else { 0 }..]).into_owned();
                    let count = text.split('\n').filter(|l| !l.trim_ascii().is_empty()).count() as u64;
                    lines_of.insert(name.clone() + if case.gzip { ".gz" } else { "" }, count);
                }
                let (name, bytes) = match case.gzip {
                    true => {
                        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                        e.write_all(&bytes).unwrap();
                        (name + ".gz", e.finish().unwrap())
                    }
                    false => (name, bytes),
                };
                let path = input.join(&name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, bytes).unwrap();
            }
            std::fs::create_dir_all(&input).unwrap();
            let job_text = format!(
                "input = {:?}\nmax_reject_ratio = 1.0\nthreads = 2\nbatch_bytes = {batch}\nas_of = \"2025-06-30\"\n",
                input.display().to_string()
            );
            let job = crate::job::tests::job_from_toml(&job_text, &|k| (k == "OPSLAKE_PII_KEY").then(|| "k".into())).unwrap();
            let report = normalize(&job, SOURCES, &input, &dir.path().join("package"));
            let report = match report {
                Ok(r) => r,
                Err(e) => return Err(TestCaseError::fail(format!("the stage failed: {e}"))),
            };
            for s in &report.sources {
                prop_assert_eq!(s.records_read, s.rows_written + s.rejects + s.duplicates, "{}", s.name);
                for f in &s.files {
                    if let Some(lines) = lines_of.get(&f.name) {
                        prop_assert_eq!(f.records, *lines, "{}", f.name);
                    }
                }
            }
            let rejects: u64 = report.sources.iter().map(|s| s.rejects).sum();
            prop_assert_eq!(report.tables.get("_rejects").map_or(0, |t| t.rows), rejects);
        }
    }
}
