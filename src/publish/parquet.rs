//! Parquet files as opslake writes them: zstd, row groups sized for scans, min/max/null-count
//! statistics (not distinct counts: costly to compute, and neither DuckDB nor polars uses them).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_parquet::write::Encoding;

/// Rows per row group: large enough for scans, small enough to bound a writer's memory.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// zstd at level 1: the default level 3 made the normalize stage ~3% slower for files of the
/// same size (1 M appointments: 51 MB either way).
const ZSTD_LEVEL: i32 = 1;

/// A column whose last page zstd left at more than this share of its size holds near-random
/// bytes (64-character hex digests of personal data, bit-packed dictionary keys); its next
/// pages are compressed with a small match table ([`PageCompressor`]).
const NEAR_RANDOM: f64 = 0.4;

/// The match table (log2 entries) for near-random pages, against level 1's 2^13: in hex
/// digests a table of 8,192 keeps finding short matches (a length prefix and a digit or two),
/// each resetting zstd's skipping ahead; with 64 entries a page of digests compresses twice as
/// fast and ~3% larger (Huffman coding of the literals is what shrinks them).
const NEAR_RANDOM_HASH_LOG: u32 = 6;

/// The compression of every opslake file.
fn compression() -> ParquetCompression {
    // polars re-exports the level type only under `polars_utils`.
    ParquetCompression::Zstd(polars::polars_utils::compression::ZstdLevel::try_new(ZSTD_LEVEL).ok())
}

/// A Parquet writer into `sink` configured as every opslake file is.
fn configured_writer<W: std::io::Write>(sink: W) -> ParquetWriter<W> {
    ParquetWriter::new(sink)
        .with_compression(compression())
        .with_statistics(StatisticsOptions::default())
        .with_row_group_size(Some(ROW_GROUP_ROWS))
        // Batches are already written in parallel; one thread per file avoids oversubscription.
        .set_parallel(false)
}

/// The options of [`configured_writer`], for the row groups opslake encodes itself.
fn write_options() -> polars_parquet::write::WriteOptions {
    polars_parquet::write::WriteOptions {
        statistics: StatisticsOptions::default(),
        version: polars_parquet::write::Version::V1,
        compression: compression().into(),
        data_page_size: None,
    }
}

/// Writes one batch of a table to `path` (creating parent folders); returns the file's size in
/// bytes.
pub fn write(path: &Path, frame: &mut DataFrame) -> std::io::Result<u64> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = File::create(path)?;
    configured_writer(BufWriter::with_capacity(1 << 20, file))
        .finish(frame)
        .map_err(std::io::Error::other)
}

/// Runs `query` on the streaming engine straight into a Parquet file at `path`, so encoding
/// overlaps the query; returns the file's row count.
pub fn sink(path: &Path, query: LazyFrame) -> PolarsResult<u64> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let options = ParquetWriteOptions {
        compression: compression(),
        statistics: StatisticsOptions::default(),
        row_group_size: Some(ROW_GROUP_ROWS),
        data_page_size: None,
        key_value_metadata: None,
        arrow_schema: None,
        compat_level: None,
    };
    let target = SinkTarget::Path(PlRefPath::try_from_path(path)?);
    query
        .sink(
            SinkDestination::File { target },
            FileWriteFormat::Parquet(Arc::new(options)),
            UnifiedSinkArgs::default(),
        )?
        .collect_with_engine(Engine::Streaming)?;
    let rows = ParquetReader::new(File::open(path)?).num_rows()?;
    Ok(rows as u64)
}

/// Rows of a table file before the next file starts (DESIGN 5: about 1 M rows or 128 MiB).
pub const FILE_ROWS: u64 = 1_000_000;
/// Bytes of a table file before the next file starts.
pub const FILE_BYTES: u64 = 128 * 1024 * 1024;
/// Row groups of a table file before the next file starts: polars' Parquet writer keeps every
/// page's header and statistics until its file closes (a few KB per column chunk), so a file
/// of many small row groups would make the stage's memory grow with the day.
pub const FILE_ROW_GROUPS: usize = 64;

/// One finished file of a table.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct WrittenFile {
    /// The file's name in its folder.
    pub name: String,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
}

/// A table written as a few large files, whatever the number of batches: batches are appended
/// as row groups to the open file, and the next file starts at [`FILE_ROWS`] rows,
/// [`FILE_BYTES`] bytes or [`FILE_ROW_GROUPS`] row groups. Files are `part-{n}.parquet` in one
/// folder.
pub struct TableFiles {
    dir: PathBuf,
    schema: Schema,
    open: Option<OpenFile>,
    done: Vec<WrittenFile>,
    encodings: Encodings,
}

/// Row groups a column keeps the encoding it took before polars decides again.
const KEEP_GROUPS: usize = 8;

/// The encodings of a table's columns, row group by row group. polars tries a dictionary for
/// every text and numeric column of every row group, estimating its distinct values first
/// (hashing every value: 3-6% of normalizing). A column that went without a dictionary in a
/// row group (keys, digests, instants) is written plain for the next [`KEEP_GROUPS`], and a
/// text column that took one gets its dictionary built directly, both without the estimate;
/// then polars decides again.
struct Encodings {
    /// polars' own choice, per column and leaf.
    default: Vec<Vec<Encoding>>,
    /// Per column: what the next row group takes.
    next: Vec<Choice>,
    /// Per column: whether its last page was near-random ([`NEAR_RANDOM`]).
    near_random: Vec<bool>,
}

/// How a column's next row group is encoded.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Choice {
    /// As polars chooses.
    Polars,
    /// Plain, for this many more row groups.
    Plain(usize),
    /// With a dictionary (text only), for this many more row groups.
    Dictionary(usize),
}

impl Encodings {
    fn new(schema: &Schema) -> Self {
        let arrow = schema.to_arrow(CompatLevel::newest());
        let default: Vec<Vec<Encoding>> = polars::io::parquet::write::get_encodings(&arrow).to_vec();
        Encodings {
            next: vec![Choice::Polars; default.len()],
            near_random: vec![false; default.len()],
            default,
        }
    }

    /// The encodings of column `i` for the next row group.
    fn of(&self, i: usize) -> Vec<Encoding> {
        match self.next[i] {
            Choice::Plain(_) => vec![Encoding::Plain],
            _ => self.default[i].clone(),
        }
    }

    /// Notes whether column `i` went with a dictionary in the row group just encoded.
    fn encoded(&mut self, i: usize, dictionary: bool) {
        // Only a column of one leaf that polars would try a dictionary for.
        if self.default[i] != [Encoding::RleDictionary] {
            return;
        }
        self.next[i] = match (self.next[i], dictionary) {
            (Choice::Polars, false) => Choice::Plain(KEEP_GROUPS),
            (Choice::Polars, true) => Choice::Dictionary(KEEP_GROUPS),
            (Choice::Plain(1) | Choice::Dictionary(1), _) => Choice::Polars,
            (Choice::Plain(n), _) => Choice::Plain(n - 1),
            (Choice::Dictionary(n), _) => Choice::Dictionary(n - 1),
        };
    }

    /// Column `i`'s array as a dictionary array, when it is text or 64-bit integers (instants)
    /// that keep their dictionary: the dictionary polars builds (values in order of first
    /// appearance), built here with a shortcut for a row that repeats the previous row's
    /// value (a long table's key repeats for every pair of its record, and a text column
    /// reuses the view of a repeated value).
    fn dictionary(&self, i: usize, array: &ArrayRef) -> PolarsResult<Option<ArrayRef>> {
        use polars::prelude::PlHashMap;
        use polars_arrow::array::{MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray, View};
        if !matches!(self.next[i], Choice::Dictionary(_)) {
            return Ok(None);
        }
        if let Some(ints) = array.as_any().downcast_ref::<PrimitiveArray<i64>>() {
            return int_dictionary(ints).map(Some);
        }
        let Some(text) = array.as_any().downcast_ref::<Utf8ViewArray>() else {
            return Ok(None);
        };
        // A value of 12 bytes or fewer is its view (length and zero-padded bytes), so it is
        // found by the view's bits; a longer one by its bytes. (A view padded otherwise would
        // only give its value a second entry: a larger dictionary, the same values.)
        let mut short: PlHashMap<u128, u32> = PlHashMap::default();
        let mut long: PlHashMap<&str, u32> = PlHashMap::default();
        let mut values = MutableBinaryViewArray::<str>::new();
        let views = text.views();
        // The same view is the same value: same length and bytes, or the same place.
        let keys = dictionary_keys(
            text,
            |row| views[row].as_u128(),
            |row, bits, next| {
                // SAFETY: `row` is within the array.
                let value = unsafe { text.value_unchecked(row) };
                let mut add = || {
                    values.push_value(value);
                    next
                };
                match views[row].length <= View::MAX_INLINE_SIZE {
                    true => *short.entry(bits).or_insert_with(&mut add),
                    false => *long.entry(value).or_insert_with(add),
                }
            },
        )?;
        let values: Utf8ViewArray = values.into();
        dictionary_array(text, keys, values.boxed()).map(Some)
    }
}

/// The keys of a dictionary of `array`'s values in order of first appearance, as polars
/// builds them: a null row gets key 0; a row whose `token` equals the previous valid row's
/// takes its key without a lookup (a long table's key repeats for every pair of its record);
/// any other row's key comes from `lookup(row, token, next)`, which returns `next` for a
/// value it has not seen (and adds it to the dictionary's values).
fn dictionary_keys<T: PartialEq + Copy>(
    array: &dyn polars_arrow::array::Array,
    token: impl Fn(usize) -> T,
    mut lookup: impl FnMut(usize, T, u32) -> u32,
) -> PolarsResult<Vec<u32>> {
    let validity = array.validity();
    let mut keys: Vec<u32> = Vec::with_capacity(array.len());
    let mut distinct: usize = 0;
    let mut previous: Option<(T, u32)> = None;
    for row in 0..array.len() {
        if validity.is_some_and(|v| !v.get_bit(row)) {
            keys.push(0);
            continue;
        }
        let token = token(row);
        let key = match previous {
            Some((same, key)) if same == token => key,
            _ => {
                let next = u32::try_from(distinct)
                    .map_err(|_| polars_err!(ComputeError: "a dictionary of more than 2^32 values"))?;
                let key = lookup(row, token, next);
                if key == next {
                    distinct += 1;
                }
                previous = Some((token, key));
                key
            }
        };
        keys.push(key);
    }
    Ok(keys)
}

/// The dictionary array of `array` from its `keys` and distinct `values`.
fn dictionary_array(
    array: &dyn polars_arrow::array::Array,
    keys: Vec<u32>,
    values: Box<dyn polars_arrow::array::Array>,
) -> PolarsResult<ArrayRef> {
    use polars_arrow::array::{DictionaryArray, PrimitiveArray};
    use polars_arrow::datatypes::{ArrowDataType, IntegerType};
    let keys = PrimitiveArray::<u32>::new(ArrowDataType::UInt32, keys.into(), array.validity().cloned());
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(array.dtype().clone()), false);
    Ok(DictionaryArray::try_new(dtype, keys, values)?.boxed())
}

/// The dictionary of a column of 64-bit integers as polars builds it (values in order of
/// first appearance, of the column's type). polars would first estimate the distinct values
/// of an instant column, whose range is too wide for its integer shortcut, hashing every value
/// once for the estimate and once more for the dictionary (~0.7% of a run on the appointments,
/// whose six instant columns keep dictionaries).
fn int_dictionary(ints: &polars_arrow::array::PrimitiveArray<i64>) -> PolarsResult<ArrayRef> {
    use polars::prelude::PlHashMap;
    use polars_arrow::array::PrimitiveArray;
    let mut index: PlHashMap<i64, u32> = PlHashMap::default();
    let mut values: Vec<i64> = Vec::new();
    let all = ints.values();
    let keys = dictionary_keys(
        ints,
        |row| all[row],
        |_, value, next| {
            *index.entry(value).or_insert_with(|| {
                values.push(value);
                next
            })
        },
    )?;
    let values = PrimitiveArray::<i64>::new(ints.dtype().clone(), values.into(), None);
    dictionary_array(ints, keys, values.boxed())
}

struct OpenFile {
    writer: polars::io::parquet::write::BatchedWriter<CountingWriter>,
    /// The file's Parquet columns, in schema order (what each column is encoded as).
    fields: Vec<polars_parquet::write::ParquetType>,
    bytes: Arc<std::sync::atomic::AtomicU64>,
    name: String,
    rows: u64,
    /// Row groups written so far.
    groups: usize,
    /// The zstd contexts of the file's pages: polars' compressor makes one per page (and
    /// zero-fills a bound-sized output for it), ~2% of normalizing; making them per row group
    /// still took 0.3% of a run's samples (~1,500 row groups of a few thousand rows).
    zstd: PageCompressor,
}

/// Counts the bytes written through it, so a file can be closed at a size.
struct CountingWriter {
    inner: BufWriter<File>,
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl TableFiles {
    /// A table of `schema` whose files go into `dir` (created on the first write).
    pub fn new(dir: PathBuf, schema: Schema) -> Self {
        let encodings = Encodings::new(&schema);
        TableFiles {
            dir,
            schema,
            open: None,
            done: Vec::new(),
            encodings,
        }
    }

    /// Appends `frame` (of the table's schema); returns the number of the file it went to and
    /// the row of that file where it starts.
    pub fn write(&mut self, frame: &DataFrame) -> std::io::Result<(usize, usize)> {
        let full = self.open.as_ref().is_some_and(|o| {
            o.rows + frame.height() as u64 > FILE_ROWS
                || o.groups >= FILE_ROW_GROUPS
                || o.bytes.load(std::sync::atomic::Ordering::Relaxed) >= FILE_BYTES
        });
        if full {
            self.close()?;
        }
        if self.open.is_none() {
            self.open = Some(self.start()?);
        }
        let number = self.done.len();
        let start = self.open.as_ref().map_or(0, |o| o.rows as usize);
        if let Some(open) = self.open.as_mut() {
            // Each chunk of the frame becomes a row group: one chunk per ROW_GROUP_ROWS rows.
            let mut offset = 0;
            while offset < frame.height() {
                let mut group = frame.slice(offset as i64, ROW_GROUP_ROWS);
                group.rechunk_mut();
                write_group(open, &group, &mut self.encodings).map_err(std::io::Error::other)?;
                open.groups += 1;
                offset += ROW_GROUP_ROWS;
            }
            open.rows += frame.height() as u64;
        }
        Ok((number, start))
    }

    fn start(&self) -> std::io::Result<OpenFile> {
        std::fs::create_dir_all(&self.dir)?;
        let name = super::layout::part_name(self.done.len() as u64);
        let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sink = CountingWriter {
            inner: BufWriter::with_capacity(1 << 20, File::create(self.dir.join(&name))?),
            bytes: bytes.clone(),
        };
        let mut writer = configured_writer(sink)
            .batched(&self.schema)
            .map_err(std::io::Error::other)?;
        let fields = writer.parquet_schema().fields().to_vec();
        Ok(OpenFile {
            writer,
            fields,
            bytes,
            name,
            rows: 0,
            groups: 0,
            zstd: PageCompressor::new()?,
        })
    }

    fn close(&mut self) -> std::io::Result<()> {
        if let Some(open) = self.open.take() {
            let bytes = open.writer.finish().map_err(std::io::Error::other)?;
            self.done.push(WrittenFile {
                name: open.name,
                rows: open.rows,
                bytes,
            });
        }
        Ok(())
    }

    /// Closes the open file; returns every file, in order. A table that got no rows gets one
    /// empty file, so that readers find its schema.
    pub fn finish(mut self) -> std::io::Result<Vec<WrittenFile>> {
        if self.open.is_none() && self.done.is_empty() {
            self.open = Some(self.start()?);
        }
        self.close()?;
        Ok(self.done)
    }

    /// The folder of the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Encodes, compresses and writes `group` (one chunk per column, the table's schema) to
/// `open` as one row group, each column with the encoding [`Encodings`] chooses.
fn write_group(open: &mut OpenFile, group: &DataFrame, encodings: &mut Encodings) -> PolarsResult<()> {
    use polars_parquet::write::{
        CompressedPage, DynIter, DynStreamingIterator, Page, array_to_columns, fallible_streaming_iterator,
    };
    polars_ensure!(
        group.width() == open.fields.len() && group.width() == encodings.default.len(),
        ShapeMismatch: "a frame of {} columns written to a table of {}", group.width(), open.fields.len()
    );
    let options = write_options();
    for batch in group.iter_chunks(CompatLevel::newest(), false) {
        if batch.is_empty() {
            continue;
        }
        let rows = batch.len() as u64;
        let mut columns: Vec<Vec<CompressedPage>> = Vec::with_capacity(open.fields.len());
        for (i, (array, field)) in batch.columns().iter().zip(&open.fields).enumerate() {
            let dictionary = encodings.dictionary(i, array)?;
            let array = dictionary.as_ref().unwrap_or(array);
            for pages in array_to_columns(array, field.clone(), options, &encodings.of(i))? {
                let mut compressed = Vec::new();
                for page in pages {
                    let page = page?;
                    if compressed.is_empty() {
                        encodings.encoded(i, matches!(page, Page::Dict(_)));
                    }
                    compressed.push(compress_page(
                        page,
                        &mut open.zstd,
                        &mut encodings.near_random[i],
                        options,
                    )?);
                }
                columns.push(compressed);
            }
        }
        let columns = columns.iter().map(|pages| {
            Ok(DynStreamingIterator::new(fallible_streaming_iterator::convert(
                pages.iter().map(PolarsResult::Ok),
            )))
        });
        let mut file = open
            .writer
            .get_writer()
            .lock()
            .map_err(|_| polars_err!(ComputeError: "a Parquet writer's lock was poisoned"))?;
        file.write(rows, DynIter::new(columns))?;
    }
    Ok(())
}

/// zstd contexts and an output buffer kept across a file's pages.
struct PageCompressor {
    zstd: zstd::bulk::Compressor<'static>,
    /// For near-random pages: level 1 with a small match table.
    near_random: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
}

impl PageCompressor {
    fn new() -> std::io::Result<Self> {
        let mut near_random = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
        near_random.set_parameter(zstd::zstd_safe::CParameter::HashLog(NEAR_RANDOM_HASH_LOG))?;
        Ok(PageCompressor {
            zstd: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
            near_random,
            scratch: Vec::new(),
        })
    }

    /// `bytes` compressed, in a vector of their compressed size (the scratch buffer, sized for
    /// the worst case, is reused). `near_random` says how the column's last page compressed,
    /// and is set to how this one did.
    fn compress(&mut self, bytes: &[u8], near_random: &mut bool) -> std::io::Result<Vec<u8>> {
        self.scratch.clear();
        self.scratch.reserve(zstd::zstd_safe::compress_bound(bytes.len()));
        let zstd = if *near_random {
            &mut self.near_random
        } else {
            &mut self.zstd
        };
        zstd.compress_to_buffer(bytes, &mut self.scratch)?;
        *near_random = self.scratch.len() as f64 > NEAR_RANDOM * bytes.len() as f64;
        Ok(self.scratch.clone())
    }
}

/// A page compressed by `zstd`; a page of another kind than opslake writes (a V2 data page)
/// as polars compresses it.
fn compress_page(
    page: polars_parquet::write::Page,
    zstd: &mut PageCompressor,
    near_random: &mut bool,
    options: polars_parquet::write::WriteOptions,
) -> PolarsResult<polars_parquet::write::CompressedPage> {
    use polars_parquet::parquet::CowBuffer;
    use polars_parquet::parquet::compression::Compression;
    use polars_parquet::parquet::page::{CompressedDictPage, DataPageHeader};
    use polars_parquet::write::{CompressedDataPage, CompressedPage, Page};
    match page {
        Page::Data(page) if matches!(page.header(), DataPageHeader::V1(_)) => {
            let rows = page
                .num_rows
                .ok_or_else(|| polars_err!(ComputeError: "a Parquet data page without its row count"))?;
            let buffer = zstd.compress(page.buffer(), near_random)?;
            Ok(CompressedPage::Data(CompressedDataPage::new(
                page.header().clone(),
                CowBuffer::Owned(buffer),
                Compression::Zstd,
                page.buffer().len(),
                page.descriptor.clone(),
                rows,
            )))
        }
        Page::Dict(page) => {
            let buffer = zstd.compress(&page.buffer, near_random)?;
            Ok(CompressedPage::Dict(CompressedDictPage::new(
                CowBuffer::Owned(buffer),
                Compression::Zstd,
                page.buffer.len(),
                page.num_values,
                page.is_sorted,
            )))
        }
        other => Ok(polars_parquet::write::compress(other, Vec::new(), options.compression)?),
    }
}

/// Reads some columns of a Parquet file.
pub fn read_columns(path: &Path, columns: &[&str]) -> std::io::Result<DataFrame> {
    let file = File::open(path)?;
    ParquetReader::new(file)
        .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(std::io::Error::other)
}

/// Rows read at a time by [`rewrite`]: a quarter of a row group, so that rewriting a 1 M-row
/// file of a wide table costs no more memory than normalizing a quarter of the day did.
const REWRITE_ROWS: usize = ROW_GROUP_ROWS / 4;

/// Rewrites the file at `path` keeping the rows whose `keep` is true, [`REWRITE_ROWS`] rows at
/// a time (memory is bounded whatever the file's size); returns the rows and bytes of the new
/// file, which replaces the old one by a rename.
pub fn rewrite(path: &Path, keep: &[bool]) -> std::io::Result<(u64, u64)> {
    let rows = ParquetReader::new(File::open(path)?)
        .num_rows()
        .map_err(std::io::Error::other)?;
    let tmp = path.with_extension("parquet.rewrite");
    let mut writer = None;
    let mut kept = 0u64;
    let mut offset = 0;
    while offset < rows.max(1) {
        let slice = ParquetReader::new(File::open(path)?)
            .with_slice(Some((offset, REWRITE_ROWS)))
            .finish()
            .map_err(std::io::Error::other)?;
        let mask: BooleanChunked = (0..slice.height())
            .map(|i| keep.get(offset + i).copied().unwrap_or(true))
            .collect();
        let mut group = slice.filter(&mask).map_err(std::io::Error::other)?;
        if writer.is_none() {
            let file = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
            let w = configured_writer(file)
                .batched(group.schema())
                .map_err(std::io::Error::other)?;
            writer = Some(w);
        }
        if let Some(w) = writer.as_mut() {
            if group.height() > 0 {
                group.rechunk_mut();
                w.write_batch(&group).map_err(std::io::Error::other)?;
            }
        }
        kept += group.height() as u64;
        offset += REWRITE_ROWS;
    }
    let bytes = match writer {
        Some(w) => w.finish().map_err(std::io::Error::other)?,
        None => return Ok((rows as u64, std::fs::metadata(path)?.len())),
    };
    std::fs::rename(&tmp, path)?;
    Ok((kept, bytes))
}

/// Reads a whole Parquet file.
pub fn read(path: &Path) -> std::io::Result<DataFrame> {
    let file = File::open(path)?;
    ParquetReader::new(file).finish().map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dictionary opslake builds for the one column of `schema`, holding `array`, when
    /// the column keeps its dictionary.
    fn kept_dictionary(schema: &Schema, array: &ArrayRef) -> PolarsResult<ArrayRef> {
        let mut encodings = Encodings::new(schema);
        encodings.next[0] = Choice::Dictionary(KEEP_GROUPS);
        Ok(encodings
            .dictionary(0, array)?
            .expect("a column keeping its dictionary"))
    }

    #[test]
    fn an_instant_dictionary_is_the_one_polars_builds() -> PolarsResult<()> {
        use polars_arrow::array::{DictionaryArray, MutableDictionaryArray, MutablePrimitiveArray, TryExtend};
        // Instants repeated in runs and apart, nulls between repeats, a wide range.
        let rows: Vec<Option<i64>> = [
            Some(1_751_328_000_000_000),
            Some(1_751_328_000_000_000),
            None,
            Some(1_751_328_000_000_000),
            Some(-86_400_000_000),
            Some(0),
            None,
            Some(i64::MAX),
            Some(0),
            Some(1_751_331_600_000_000),
        ]
        .into_iter()
        .cycle()
        .take(100)
        .collect();
        let schema = Schema::from_iter([Field::new(
            "creation_date".into(),
            DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        )]);
        let dtype = schema
            .to_arrow(CompatLevel::newest())
            .get_at_index(0)
            .map(|(_, f)| f.dtype().clone());
        let dtype = dtype.expect("one column");
        let array: ArrayRef = polars_arrow::array::PrimitiveArray::<i64>::from(rows.clone())
            .to(dtype.clone())
            .boxed();
        let ours = kept_dictionary(&schema, &array)?;
        let ours = ours.as_any().downcast_ref::<DictionaryArray<u32>>().expect("u32 keys");

        let mut theirs = MutableDictionaryArray::<u32, MutablePrimitiveArray<i64>>::try_empty(
            MutablePrimitiveArray::<i64>::from(dtype),
            false,
        )?;
        theirs.try_extend(rows.iter().copied())?;
        let theirs = DictionaryArray::<u32>::from(theirs);
        assert_eq!(ours.dtype(), theirs.dtype());
        assert_eq!(ours.keys(), theirs.keys());
        assert_eq!(ours.values(), theirs.values());
        assert_eq!(ours.values().len(), 5);
        Ok(())
    }

    #[test]
    fn a_text_dictionary_is_the_one_polars_builds() -> PolarsResult<()> {
        use polars_arrow::array::{
            DictionaryArray, MutableBinaryViewArray, MutableDictionaryArray, TryExtend, Utf8ViewArray, View,
        };
        use polars_arrow::bitmap::Bitmap;
        use polars_arrow::datatypes::ArrowDataType;
        // Short and long values, repeated in runs and apart, nulls between repeats, empty.
        let long = "a value longer than twelve bytes";
        let rows: Vec<Option<&str>> = [
            Some("scheduled"),
            Some("scheduled"),
            None,
            Some("scheduled"),
            Some(long),
            Some(long),
            Some(""),
            Some("cancelled"),
            None,
            Some("a value longer than twelve bytes, another"),
            Some(long),
            Some("scheduled"),
            Some("twelve bytes"),
            Some("thirteen byte"),
        ]
        .into_iter()
        .cycle()
        .take(100)
        .collect();
        // The column as opslake builds one: a value repeated from the same place in the input
        // reuses its view (equal bits), and the same long value from elsewhere gets its own
        // copy (another view of the same bytes).
        let mut distinct = MutableBinaryViewArray::<str>::new();
        let mut place: Vec<(&str, usize)> = Vec::new();
        let mut views = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let Some(v) = r else {
                views.push(View::default());
                continue;
            };
            let at = match place.iter().find(|(p, _)| p == v) {
                Some((_, at)) if i % 3 != 0 => *at,
                _ => {
                    distinct.push_value(*v);
                    place.push((v, distinct.len() - 1));
                    distinct.len() - 1
                }
            };
            views.push(distinct.views()[at]);
        }
        let buffers = Utf8ViewArray::from(distinct).data_buffers().clone();
        let validity: Bitmap = rows.iter().map(Option::is_some).collect();
        let array: ArrayRef =
            Utf8ViewArray::try_new(ArrowDataType::Utf8View, views.into(), buffers, Some(validity))?.boxed();
        let schema = Schema::from_iter([Field::new("status".into(), DataType::String)]);
        let ours = kept_dictionary(&schema, &array)?;
        let ours = ours.as_any().downcast_ref::<DictionaryArray<u32>>().expect("u32 keys");

        let mut theirs = MutableDictionaryArray::<u32, MutableBinaryViewArray<str>>::new(false);
        theirs.try_extend(rows.iter().copied())?;
        let theirs = DictionaryArray::<u32>::from(theirs);
        assert_eq!(ours.dtype(), theirs.dtype());
        assert_eq!(ours.keys(), theirs.keys());
        let values = |d: &DictionaryArray<u32>| -> Vec<String> {
            let v = d
                .values()
                .as_any()
                .downcast_ref::<Utf8ViewArray>()
                .expect("text values");
            v.values_iter().map(str::to_owned).collect()
        };
        assert_eq!(values(ours), values(&theirs));
        assert_eq!(values(ours).len(), 7);
        Ok(())
    }

    #[test]
    fn near_random_pages_are_compressed_with_the_small_match_table_and_read_back() -> std::io::Result<()> {
        // A page of plain-encoded hex digests (length prefix, 64 characters), and one of ids.
        let mut digests = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        while digests.len() < 64 * 1024 {
            digests.extend_from_slice(&64u32.to_le_bytes());
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                digests.push(b"0123456789abcdef"[(x & 15) as usize]);
            }
        }
        let ids: Vec<u8> = (0..5000)
            .flat_map(|i| format!("MYSIM_{:07}", 2_000_000 + i).into_bytes())
            .collect();
        let mut small_table = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
        small_table.set_parameter(zstd::zstd_safe::CParameter::HashLog(NEAR_RANDOM_HASH_LOG))?;
        let level_1 = zstd::bulk::compress(&digests, ZSTD_LEVEL)?;

        let mut pages = PageCompressor::new()?;
        let mut near_random = false;
        // The column's first page: level 1, and found near-random.
        assert_eq!(pages.compress(&digests, &mut near_random)?, level_1);
        assert!(near_random);
        // Its next page: the small match table, still near-random.
        let next = pages.compress(&digests, &mut near_random)?;
        assert_eq!(next, small_table.compress(&digests)?);
        assert_ne!(next, level_1);
        assert!(near_random);
        assert_eq!(zstd::bulk::decompress(&next, digests.len())?, digests);
        // Values that compress well turn the column back to level 1 for its next page.
        let back = pages.compress(&ids, &mut near_random)?;
        assert_eq!(zstd::bulk::decompress(&back, ids.len())?, ids);
        assert!(!near_random);
        assert_eq!(
            pages.compress(&ids, &mut near_random)?,
            zstd::bulk::compress(&ids, ZSTD_LEVEL)?
        );
        Ok(())
    }

    #[test]
    fn a_column_without_a_dictionary_stays_plain_for_a_while_then_tries_again() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let schema = Schema::from_iter([
            Field::new("key".into(), DataType::String),
            Field::new("status".into(), DataType::String),
            Field::new("at".into(), DataType::Int64),
        ]);
        let mut files = TableFiles::new(dir.path().join("t"), schema);
        // Row group 0: distinct keys and instants (no dictionary). Then values a dictionary
        // would suit: written plain for KEEP_GROUPS row groups, with a dictionary after them.
        let groups = KEEP_GROUPS + 2;
        let (mut written_keys, mut written_at, mut written_status) = (Vec::new(), Vec::new(), Vec::new());
        for group in 0..groups {
            let keys: Vec<String> = (0..1000)
                .map(|i| match group {
                    0 => format!("MYSIM_{i:07}"),
                    _ => format!("MYSIM_{:07}", i % 3),
                })
                .collect();
            // Two values and nulls, then (in the last row groups) distinct values: the
            // dictionary is kept.
            let status: Vec<Option<String>> = (0..1000)
                .map(|i| match group {
                    _ if i % 7 == 0 => None,
                    g if g + 2 >= groups => Some(format!("status-{g}-{i}")),
                    _ => Some(["scheduled", "cancelled"][i % 2].to_string()),
                })
                .collect();
            written_status.extend(status.iter().cloned());
            // Microseconds a day apart: too wide a range for polars' small-integer dictionary.
            let at: Vec<i64> = (0..1000i64)
                .map(|i| match group {
                    0 => i * 86_400_000_000,
                    _ => (i % 3) * 86_400_000_000,
                })
                .collect();
            written_keys.extend(keys.iter().cloned());
            written_at.extend(at.iter().copied());
            let frame = DataFrame::new(
                1000,
                vec![
                    Column::new("key".into(), keys),
                    Column::new("status".into(), status),
                    Column::new("at".into(), at),
                ],
            )
            .map_err(std::io::Error::other)?;
            files.write(&frame)?;
        }
        let written = files.finish()?;
        let path = dir.path().join("t").join(&written[0].name);

        let back = read(&path)?;
        let text = |name: &str| -> std::io::Result<Vec<Option<String>>> {
            back.column(name)
                .and_then(|c| c.str().map(|c| c.iter().map(|v| v.map(str::to_string)).collect()))
                .map_err(std::io::Error::other)
        };
        assert_eq!(text("key")?, written_keys.into_iter().map(Some).collect::<Vec<_>>());
        assert_eq!(text("status")?, written_status);
        let at: Vec<i64> = back
            .column("at")
            .and_then(|c| c.i64().map(|c| c.into_no_null_iter().collect()))
            .map_err(std::io::Error::other)?;
        assert_eq!(at, written_at);
        let metadata = polars_parquet::read::read_metadata(&mut File::open(&path)?).map_err(std::io::Error::other)?;
        let dictionary = |column: usize| -> Vec<bool> {
            metadata
                .row_groups
                .iter()
                .map(|g| g.parquet_columns()[column].dictionary_page_offset().is_some())
                .collect()
        };
        let mut want = vec![false; groups];
        want[groups - 1] = true;
        assert_eq!(dictionary(0), want, "key");
        // The dictionary kept through row group KEEP_GROUPS (distinct values included), then
        // polars' estimate decides against it.
        let mut kept = vec![true; groups];
        kept[groups - 1] = false;
        assert_eq!(dictionary(1), kept, "status");
        assert_eq!(dictionary(2), want, "at");
        Ok(())
    }

    #[test]
    fn a_file_closes_at_its_row_group_limit_and_the_next_one_takes_the_rest() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let schema = Schema::from_iter([Field::new("id".into(), DataType::Int64)]);
        let mut files = TableFiles::new(dir.path().join("t"), schema);
        // Small batches, each its own row group: far below the file's row and byte limits.
        let mut starts = Vec::new();
        for batch in 0..FILE_ROW_GROUPS as i64 + 2 {
            let frame = DataFrame::new(
                3,
                vec![Column::new("id".into(), vec![batch * 3, batch * 3 + 1, batch * 3 + 2])],
            )
            .map_err(std::io::Error::other)?;
            starts.push(files.write(&frame)?);
        }
        let written = files.finish()?;

        let rows: Vec<u64> = written.iter().map(|f| f.rows).collect();
        assert_eq!(rows, vec![3 * FILE_ROW_GROUPS as u64, 6]);
        assert_eq!(starts[FILE_ROW_GROUPS - 1], (0, 3 * (FILE_ROW_GROUPS - 1)));
        assert_eq!(starts[FILE_ROW_GROUPS], (1, 0));
        assert_eq!(starts[FILE_ROW_GROUPS + 1], (1, 3));
        // Every row, once, in the order written.
        let mut ids = Vec::new();
        for file in &written {
            let back = read(&dir.path().join("t").join(&file.name))?;
            assert_eq!(back.height() as u64, file.rows);
            let column = back
                .column("id")
                .and_then(|c| c.i64().map(|c| c.into_no_null_iter().collect::<Vec<_>>()));
            ids.extend(column.map_err(std::io::Error::other)?);
        }
        assert_eq!(ids, (0..3 * (FILE_ROW_GROUPS as i64 + 2)).collect::<Vec<_>>());
        Ok(())
    }

    #[test]
    fn rewrite_keeps_exactly_the_kept_rows_across_its_slices() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("part-0.parquet");
        // Three slices, the last one partial, so that every boundary is crossed.
        let n = REWRITE_ROWS * 2 + 123;
        let ids: Vec<i64> = (0..n as i64).collect();
        let mut frame = DataFrame::new(n, vec![Column::new("id".into(), ids)]).map_err(std::io::Error::other)?;
        write(&path, &mut frame)?;
        let keep: Vec<bool> = (0..n).map(|i| i % 3 != 0 && i != REWRITE_ROWS).collect();

        let (rows, bytes) = rewrite(&path, &keep)?;

        let expected: Vec<i64> = (0..n).filter(|i| keep[*i]).map(|i| i as i64).collect();
        assert_eq!(rows, expected.len() as u64);
        assert_eq!(bytes, std::fs::metadata(&path)?.len());
        let back = read(&path)?;
        let got: Vec<i64> = back
            .column("id")
            .and_then(|c| c.i64().map(|c| c.into_no_null_iter().collect()))
            .map_err(std::io::Error::other)?;
        assert_eq!(got, expected);
        Ok(())
    }
}
