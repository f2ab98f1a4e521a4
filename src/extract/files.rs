//! Export files: listing, decompression, decoding and cutting into chunks of whole records.
//!
//! A file is read once, as a stream, in chunks of about `batch_bytes`; a chunk always ends on
//! a record boundary, so memory is bounded by the chunk size, not the file size. Records are:
//! each non-blank line of `.ndjson`/`.jsonl`; each top-level JSON value of `.json` (the
//! elements when the file is one big array); each row of `.csv`, turned into a JSON object of
//! its header's fields so the source parses one form. The checksum is over the bytes as
//! stored (before decompression).
//!
//! What the reader itself refuses becomes a [`Problem`] of its chunk (a reject, never an
//! error): a record longer than `max_record_bytes`, streamed past without being held; a CSV
//! row whose header lacks a column the source requires, or with too few or too many fields.
//! A UTF-8 byte-order mark is skipped; a UTF-16 file (with a byte-order mark, or without one
//! when its first character is ASCII, as RFC 4627 detects JSON) is transcoded to UTF-8 as it
//! streams, and its lines and byte offsets are then those of the UTF-8 text. A compressed file
//! that inflates past `max_decompression_ratio` times its stored size stops there: the
//! records before are kept and one reject stands for the rest, as for a corrupt archive.
//! Failing to open or read the stored file is an error of the run ([`is_unreadable`]).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::Xxh3;

use super::Error;

/// How records are delimited in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON values (a single object, an array, or several values).
    Json,
    /// One JSON value per line.
    Ndjson,
    /// Comma-separated values with a header row.
    Csv,
}

/// How a file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

/// One export file of a source.
#[derive(Clone, Debug)]
pub struct InputFile {
    /// Full path.
    pub path: PathBuf,
    /// Path relative to the input root, with `/` separators (reported in rejects and manifests).
    pub name: String,
    /// The file name without its extensions (a customer id, an appointment id).
    pub stem: String,
    /// The tenant: the sub-folder of the source folder the file is in, if any.
    pub tenant: Option<String>,
    /// Size in bytes as stored.
    pub bytes: u64,
    /// Record format.
    pub format: Format,
    /// Compression.
    pub compression: Compression,
}

impl InputFile {
    /// About how many bytes reading it yields: its size, or four times that compressed (JSON
    /// exports compress five to ten times; the reads grow past a low guess).
    pub fn expected_bytes(&self) -> u64 {
        match self.compression {
            Compression::None => self.bytes,
            Compression::Gzip | Compression::Zstd => self.bytes.saturating_mul(4),
        }
    }
}

/// Bounds on what one file may make the reader hold or do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest record, in (decompressed) bytes; a larger one is rejected unread.
    pub max_record_bytes: usize,
    /// How many times its stored size a compressed file may inflate to (0: no bound).
    pub max_decompression_ratio: u64,
}

impl Limits {
    /// The bounds `job` sets.
    pub fn of(job: &crate::job::Job) -> Limits {
        Limits {
            max_record_bytes: job.settings.max_record_bytes,
            max_decompression_ratio: job.settings.max_decompression_ratio,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: crate::job::DEFAULT_MAX_RECORD_BYTES,
            max_decompression_ratio: crate::job::DEFAULT_MAX_DECOMPRESSION_RATIO,
        }
    }
}

/// A compressed file may always inflate to this much, whatever its ratio: a small file of
/// repetitive records compresses far better than a large one.
pub const DECOMPRESSION_FLOOR: u64 = 1 << 20;

/// Classifies a file name: `None` for files that are not exports.
pub fn classify(name: &str) -> Option<(Format, Compression, &str)> {
    let (rest, compression) = if let Some(r) = name.strip_suffix(".gz") {
        (r, Compression::Gzip)
    } else if let Some(r) = name.strip_suffix(".zst") {
        (r, Compression::Zstd)
    } else {
        (name, Compression::None)
    };
    let (stem, ext) = rest.rsplit_once('.')?;
    let format = match ext.to_ascii_lowercase().as_str() {
        "json" => Format::Json,
        "ndjson" | "jsonl" => Format::Ndjson,
        "csv" => Format::Csv,
        _ => return None,
    };
    Some((format, compression, stem))
}

/// Lists the export files under `root/folder`, sorted by path (the "read order" that decides
/// which duplicate wins). Returns the files and the names of files skipped as not exports.
/// A missing folder is an empty source. Symbolic links are followed; one that points nowhere,
/// a folder or special file named like an export, or a source "folder" that is a file, is an
/// error naming the path (an export the run was meant to read and cannot).
pub fn list(root: &Path, folder: &str) -> Result<(Vec<InputFile>, Vec<String>), Error> {
    if !root.is_dir() {
        return Err(Error::MissingInput {
            path: root.to_path_buf(),
        });
    }
    let dir = root.join(folder);
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(Error::NotAFolder { path: dir }),
        Err(e) if e.kind() == io::ErrorKind::NotFound && std::fs::symlink_metadata(&dir).is_err() => {
            return Ok((files, skipped));
        }
        Err(source) => return Err(Error::Read { path: dir, source }),
    }
    // Canonical folders already listed: a link back up the tree is not followed twice.
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        if let Ok(canonical) = d.canonicalize() {
            if !seen.insert(canonical) {
                continue;
            }
        }
        let entries = std::fs::read_dir(&d).map_err(|source| Error::Read {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Read {
                path: d.clone(),
                source,
            })?;
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') {
                continue;
            }
            // Followed through symbolic links: a link that points nowhere fails here.
            let meta = std::fs::metadata(&path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let classified = classify(&file_name);
            if meta.is_dir() {
                if classified.is_some() {
                    return Err(Error::NotAFile { path });
                }
                stack.push(path);
                continue;
            }
            let name = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            match classified {
                // A pipe or device named like an export would block or never end.
                Some(_) if !meta.is_file() => return Err(Error::NotAFile { path }),
                Some((format, compression, stem)) => files.push(InputFile {
                    tenant: tenant_of(&name),
                    stem: stem.to_string(),
                    path,
                    name,
                    bytes: meta.len(),
                    format,
                    compression,
                }),
                None => skipped.push(name),
            }
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    skipped.sort();
    Ok((files, skipped))
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/samples.rs"));
}

/// Whether `root` holds exactly the samples this binary was built with: the same export
/// files (by path relative to `root`) with the same SHA-256, no more, no fewer (other files,
/// such as a README, do not count). Only then may the public development key hash its
/// personal data: the samples' personal data is invented, and checking the content rather
/// than the folder's name means no real export can pass for them.
pub fn is_samples(root: &Path) -> bool {
    let expected = embedded::SAMPLES;
    if expected.is_empty() || !root.is_dir() {
        return false;
    }
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return false;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = std::fs::metadata(&path) else {
                return false;
            };
            if name.starts_with('.') {
                continue;
            }
            if meta.is_dir() {
                stack.push(path);
            } else if classify(&name).is_some() {
                // More files, or a larger one, than the samples have: not them.
                if found.len() >= expected.len() || meta.len() > 16 << 20 {
                    return false;
                }
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let Ok(bytes) = std::fs::read(&path) else {
                    return false;
                };
                found.push((rel, hex::encode(Sha256::digest(&bytes))));
            }
        }
    }
    found.sort();
    found.len() == expected.len()
        && found
            .iter()
            .zip(expected)
            .all(|((name, digest), (want_name, want_digest))| name == want_name && digest == want_digest)
}

/// The tenant of a file named relative to the input root: the first folder below the source
/// folder (`orders/masmovil/page-1.json`), past a `run_date=` folder of raw captures
/// (`orders/run_date=2025-06-30/masmovil/part-00000.ndjson.zst`).
pub fn tenant_of(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = name.split('/').skip(1).collect();
    if parts.first().is_some_and(|p| p.starts_with("run_date=")) {
        parts.remove(0);
    }
    (parts.len() >= 2).then(|| parts[0].to_string())
}

/// Where a record sits in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Start in the chunk's bytes.
    pub start: usize,
    /// End (exclusive) in the chunk's bytes.
    pub end: usize,
    /// 1-based line of the record's first byte.
    pub line: u64,
    /// Byte offset of the record in the (decompressed) file.
    pub offset: u64,
}

/// A record the reader rejects itself, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where it is; `start..end` are its bytes in the chunk, empty when it was too large to
    /// keep.
    pub span: Span,
    /// Why (names the column or the limit, never a value).
    pub reason: String,
    /// SHA-256 of the record's bytes, when they are not in the chunk.
    pub sha256: Option<[u8; 32]>,
}

/// Whole records of one file, read together.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The bytes.
    pub data: Vec<u8>,
    /// The records in `data`.
    pub spans: Vec<Span>,
    /// Records rejected by the reader, in file order.
    pub problems: Vec<Problem>,
}

impl Chunk {
    /// Top-level records in the chunk, rejected ones included.
    pub fn records(&self) -> usize {
        self.spans.len() + self.problems.len()
    }
}

/// Xxh3-128 of the bytes read through it, shared with whoever needs the final value. Its
/// I/O errors are marked as the stored file's ([`is_unreadable`]).
struct Checksummed<R> {
    inner: R,
    hasher: Arc<Mutex<Xxh3>>,
}

impl<R: Read> Read for Checksummed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).map_err(unreadable)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// An I/O error of the stored file itself (not of its decompression).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unreadable(io::Error);

fn unreadable(e: io::Error) -> io::Error {
    match e.kind() {
        // Retried by every reader loop: left as it is.
        io::ErrorKind::Interrupted => e,
        kind => io::Error::new(kind, Unreadable(e)),
    }
}

/// Whether `e` (from [`open`] or a [`ChunkReader`]) is a failure to read the stored file
/// (a disk or permission error), rather than corrupt or oversized content: the run cannot
/// read what it was meant to read.
pub fn is_unreadable(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Unreadable>())
}

/// A compressed file that inflated past its bound.
#[derive(Debug, thiserror::Error)]
#[error(
    "the file inflates to more than {limit} bytes, {ratio} times its {stored} stored bytes \
     (max_decompression_ratio): the rest of it is skipped"
)]
struct Inflated {
    limit: u64,
    ratio: u64,
    stored: u64,
}

/// Counts the decompressed bytes and fails past `limit`.
struct Bounded<R> {
    inner: R,
    read: u64,
    bound: Inflated,
    /// Whether the bound was reached with bytes left over.
    over: bool,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let over = || {
            let Inflated { limit, ratio, stored } = self.bound;
            io::Error::new(io::ErrorKind::InvalidData, Inflated { limit, ratio, stored })
        };
        if self.over {
            return Err(over());
        }
        let n = self.inner.read(buf)?;
        let allowed = self.bound.limit - self.read;
        if n as u64 <= allowed {
            self.read += n as u64;
            return Ok(n);
        }
        // The bytes up to the bound are delivered, so the records before it are read; the
        // next read fails.
        self.over = true;
        if allowed == 0 {
            return Err(over());
        }
        self.read = self.bound.limit;
        Ok(allowed as usize)
    }
}

/// The running checksum of a file being read.
#[derive(Clone)]
pub struct Checksum(Arc<Mutex<Xxh3>>);

impl Checksum {
    /// `xxh3-128:<hex>` of everything read so far (the whole file once the reader is done).
    pub fn hex(&self) -> String {
        let v = self.0.lock().map(|h| h.digest128()).unwrap_or_default();
        format!("xxh3-128:{v:032x}")
    }
}

/// Opens a file as a decompressed byte stream, with its checksum, under the default
/// [`Limits`].
pub fn open(file: &InputFile) -> io::Result<(Box<dyn Read + Send>, Checksum)> {
    open_with(file, &Limits::default())
}

/// Opens a file as a decompressed byte stream, with its checksum; decompression stops with an
/// error past `limits.max_decompression_ratio`.
pub fn open_with(file: &InputFile, limits: &Limits) -> io::Result<(Box<dyn Read + Send>, Checksum)> {
    let hasher = Arc::new(Mutex::new(Xxh3::new()));
    let raw = Checksummed {
        inner: File::open(&file.path).map_err(unreadable)?,
        hasher: hasher.clone(),
    };
    let ratio = limits.max_decompression_ratio;
    let bound = Inflated {
        limit: match ratio {
            0 => u64::MAX,
            r => file.bytes.saturating_mul(r).max(DECOMPRESSION_FLOOR),
        },
        ratio,
        stored: file.bytes,
    };
    let reader: Box<dyn Read + Send> = match file.compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(Bounded {
            inner: flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, raw)),
            read: 0,
            bound,
            over: false,
        }),
        Compression::Zstd => Box::new(Bounded {
            inner: zstd::stream::read::Decoder::new(raw)?,
            read: 0,
            bound,
            over: false,
        }),
    };
    Ok((reader, Checksum(hasher)))
}

/// Why the rest of a file could not be read, for its reject (corrupt or truncated archive,
/// a decompression bound): the error's own message, which quotes no record.
pub fn describe(e: &io::Error) -> String {
    match e.get_ref() {
        Some(inner) if inner.is::<Inflated>() => inner.to_string(),
        _ => format!("the rest of the file cannot be read ({e}): it is skipped"),
    }
}

/// The text encoding a file was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf16(&'static encoding_rs::Encoding),
}

/// Reads a file's records in chunks of about `batch_bytes`.
pub struct ChunkReader {
    reader: Box<dyn Read + Send>,
    /// Whether the first bytes were examined for a byte-order mark.
    sniffed: bool,
    format: Format,
    batch_bytes: usize,
    max_record_bytes: usize,
    carry: Vec<u8>,
    eof: bool,
    /// Line number of `carry[0]`.
    line: u64,
    /// Offset of `carry[0]` in the decompressed stream.
    offset: u64,
    /// Whether the value scanner is inside the file's top-level array.
    in_array: bool,
    csv: Option<CsvRows>,
    /// A read error met after some bytes were read: the records before it are returned
    /// first, then it is.
    failed: Option<io::Error>,
    /// Bytes the stream is expected to yield (one more than a plain file's size): the first
    /// read's size.
    expected: usize,
}

impl ChunkReader {
    /// A reader over `reader`, which yields the bytes of a file of `format`.
    pub fn new(reader: Box<dyn Read + Send>, format: Format, batch_bytes: usize) -> Self {
        ChunkReader {
            reader,
            sniffed: false,
            format,
            batch_bytes: batch_bytes.max(1024),
            max_record_bytes: crate::job::DEFAULT_MAX_RECORD_BYTES,
            carry: Vec::new(),
            eof: false,
            line: 1,
            offset: 0,
            in_array: false,
            csv: (format == Format::Csv).then(|| CsvRows::new(&[])),
            failed: None,
            expected: usize::MAX,
        }
    }

    /// Reads about `bytes` at first (a file's size, so that a small file is not read into
    /// a batch-sized buffer); the reads grow from there when the stream holds more.
    pub fn expected_bytes(mut self, bytes: u64) -> Self {
        self.expected = usize::try_from(bytes.saturating_add(1)).unwrap_or(usize::MAX);
        self
    }

    /// Rejects records longer than `bytes` (at least 1024), streaming past them.
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record_bytes = bytes.max(1024);
        self
    }

    /// Rejects the rows of a CSV file whose header lacks any of `columns`.
    pub fn csv_columns(mut self, columns: &'static [&'static str]) -> Self {
        if let Some(csv) = &mut self.csv {
            csv.required = columns;
        }
        self
    }

    /// The next chunk, `None` at the end of the file.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        if !self.sniffed {
            self.sniff()?;
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if let Some(csv) = &mut self.csv {
            return csv.next_chunk(&mut self.reader, self.batch_bytes, self.max_record_bytes);
        }
        let mut data = std::mem::take(&mut self.carry);
        let mut want = self.batch_bytes.max(data.len() + self.batch_bytes / 2);
        loop {
            self.fill(&mut data, want)?;
            let (mut spans, used, line_after) = match self.format {
                Format::Ndjson => split_lines(&data, self.eof, self.line, self.offset),
                Format::Json => split_values(&data, self.eof, self.line, self.offset, &mut self.in_array),
                Format::Csv => return Ok(None),
            };
            if used == 0 && !self.eof {
                if let Some(e) = self.failed.take() {
                    return Err(e);
                }
                if data.len() > self.max_record_bytes {
                    let problem = self.skip_record(data)?;
                    return Ok(Some(Chunk {
                        problems: vec![problem],
                        ..Chunk::default()
                    }));
                }
                // One record is larger than the buffer: read more of it, up to the limit.
                want = (data.len() * 2).min(self.max_record_bytes + 1).max(data.len() + 1);
                continue;
            }
            self.carry = data.split_off(used);
            self.offset += used as u64;
            self.line = line_after;
            if spans.is_empty() && self.eof && self.carry.is_empty() {
                return Ok(None);
            }
            // Only when batch_bytes exceeds the limit can a whole oversized record be here.
            let mut problems = Vec::new();
            let max = self.max_record_bytes;
            if spans.iter().any(|s| s.end - s.start > max) {
                spans.retain(|s| {
                    let keep = s.end - s.start <= max;
                    if !keep {
                        problems.push(Problem {
                            span: Span { end: s.start, ..*s },
                            reason: too_large(max),
                            sha256: Some(Sha256::digest(&data[s.start..s.end]).into()),
                        });
                    }
                    keep
                });
            }
            return Ok(Some(Chunk { data, spans, problems }));
        }
    }

    /// Examines the first bytes: a UTF-8 byte-order mark is skipped, UTF-16 is transcoded.
    fn sniff(&mut self) -> io::Result<()> {
        self.sniffed = true;
        let mut head = [0u8; 4];
        let mut n = 0;
        while n < head.len() {
            match self.reader.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let head = &head[..n];
        let encoding = match head {
            [0xEF, 0xBB, 0xBF, ..] => {
                self.offset = 3;
                self.carry.extend_from_slice(&head[3..]);
                Encoding::Utf8
            }
            [0xFF, 0xFE, ..] => Encoding::Utf16(encoding_rs::UTF_16LE),
            [0xFE, 0xFF, ..] => Encoding::Utf16(encoding_rs::UTF_16BE),
            // No mark, but an ASCII first character in two bytes (RFC 4627, section 3).
            [a, 0, ..] if *a != 0 && a.is_ascii() => Encoding::Utf16(encoding_rs::UTF_16LE),
            [0, b, ..] if *b != 0 && b.is_ascii() => Encoding::Utf16(encoding_rs::UTF_16BE),
            _ => {
                self.carry.extend_from_slice(head);
                Encoding::Utf8
            }
        };
        if let Encoding::Utf16(encoding) = encoding {
            let rest = std::mem::replace(&mut self.reader, Box::new(io::empty()));
            let stream = io::Cursor::new(head.to_vec()).chain(rest);
            self.reader = Box::new(
                encoding_rs_io::DecodeReaderBytesBuilder::new()
                    .encoding(Some(encoding))
                    .bom_override(true)
                    .strip_bom(true)
                    .build(stream),
            );
        }
        if let Some(csv) = &mut self.csv {
            // The CSV reader takes its input from the reader: hand it what was looked at.
            csv.buf = std::mem::take(&mut self.carry);
            csv.offset = self.offset;
        }
        Ok(())
    }

    fn fill(&mut self, data: &mut Vec<u8>, target: usize) -> io::Result<()> {
        while data.len() < target && !self.eof && self.failed.is_none() {
            // The buffer is zeroed before a read: a small file is asked for about its size,
            // not a whole batch (megabytes of memset for a few kilobytes), then reads double.
            let step = (target - data.len()).min(self.expected.max(data.len()).max(1024));
            match read_some(&mut self.reader, data, step) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                // The complete records already read are returned before the error.
                Err(e) if !data.is_empty() => self.failed = Some(e),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Streams past a record longer than the limit that starts at `data[0]`, hashing it, and
    /// leaves what follows it to be read.
    fn skip_record(&mut self, data: Vec<u8>) -> io::Result<Problem> {
        let (line, offset) = (self.line, self.offset);
        let mut hasher = Sha256::new();
        let mut scan = RecordEnd::new(self.format);
        let mut block = data;
        let (mut consumed, mut lines) = (0u64, 0u64);
        loop {
            if let Some(end) = scan.feed(&block) {
                hasher.update(&block[..end]);
                lines += memchr::memchr_iter(b'\n', &block[..end]).count() as u64;
                consumed += end as u64;
                self.carry = block[end..].to_vec();
                break;
            }
            hasher.update(&block);
            lines += memchr::memchr_iter(b'\n', &block).count() as u64;
            consumed += block.len() as u64;
            if self.eof {
                break;
            }
            // The record's first part held up to the limit; the rest passes in small blocks.
            block = Vec::with_capacity(SKIP_BLOCK);
            if read_some(&mut self.reader, &mut block, SKIP_BLOCK)? == 0 {
                self.eof = true;
            }
        }
        self.offset += consumed;
        self.line += lines;
        Ok(Problem {
            span: Span {
                start: 0,
                end: 0,
                line,
                offset,
            },
            reason: too_large(self.max_record_bytes),
            sha256: Some(hasher.finalize().into()),
        })
    }
}

/// Bytes read at a time while streaming past an oversized record.
const SKIP_BLOCK: usize = 1 << 20;

fn too_large(max: usize) -> String {
    format!("record longer than {max} bytes (max_record_bytes): not read")
}

/// Appends up to `want` bytes from `reader` to `data`; returns how many (0 at the end).
fn read_some(reader: &mut dyn Read, data: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    let start = data.len();
    data.resize(start + want, 0);
    loop {
        match reader.read(&mut data[start..]) {
            Ok(n) => {
                data.truncate(start + n);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                data.truncate(start);
                return Err(e);
            }
        }
    }
}

/// Finds where a record ends across the blocks of a stream, with the rules of
/// [`split_lines`] and [`split_values`].
enum RecordEnd {
    /// Up to the next newline.
    Line,
    /// A JSON value whose first byte is still to come.
    Json,
    /// A JSON scalar (or garbage): up to the next separator.
    Scalar,
    /// A JSON object or array.
    Value(ValueScan),
}

impl RecordEnd {
    fn new(format: Format) -> Self {
        match format {
            Format::Json => RecordEnd::Json,
            _ => RecordEnd::Line,
        }
    }

    /// The end of the record in `bytes` (exclusive), if it is there.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        if let RecordEnd::Json = self {
            *self = match *bytes.first()? {
                b'{' | b'[' => RecordEnd::Value(ValueScan::default()),
                _ => RecordEnd::Scalar,
            };
        }
        match self {
            RecordEnd::Line => memchr::memchr(b'\n', bytes),
            RecordEnd::Json => None,
            RecordEnd::Scalar => bytes
                .iter()
                .position(|b| matches!(b, b'\n' | b',' | b']' | b'}' | b' ' | b'\t' | b'\r')),
            RecordEnd::Value(scan) => scan.feed(bytes),
        }
    }
}

/// Splits complete lines; at end of file the last line needs no newline.
/// Returns the spans, the bytes consumed and the line number after them.
fn split_lines(data: &[u8], eof: bool, mut line: u64, base: u64) -> (Vec<Span>, usize, u64) {
    let mut spans = Vec::new();
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', data) {
        push_line(data, start, nl, line, base, &mut spans);
        start = nl + 1;
        line += 1;
    }
    if eof && start < data.len() {
        push_line(data, start, data.len(), line, base, &mut spans);
        start = data.len();
    }
    (spans, start, line)
}

fn push_line(data: &[u8], start: usize, end: usize, line: u64, base: u64, spans: &mut Vec<Span>) {
    let mut s = start;
    let mut e = end;
    while s < e && data[s].is_ascii_whitespace() {
        s += 1;
    }
    while e > s && data[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    if s < e {
        spans.push(Span {
            start: s,
            end: e,
            line,
            offset: base + s as u64,
        });
    }
}

/// Where the JSON object or array that `data` starts with ends (exclusive), if it ends in
/// `data`, and the newlines before that end (all of `data`'s when it does not).
fn value_end(data: &[u8]) -> (Option<usize>, u64) {
    let mut scan = ValueScan::default();
    let end = scan.feed(data);
    (end, scan.lines)
}

/// Where a JSON object or array ends, scanned in one piece or several.
///
/// 64 bytes at a time, as simdjson finds structure: each block's quotes, backslashes,
/// brackets and newlines become a bit per byte ([`Block`]), a quote after an odd run
/// of backslashes is dropped, and a prefix XOR of the quotes left marks every byte inside a
/// string; only the brackets outside strings are then visited. (A byte loop with a search per
/// string spent ~9% of a JSON array's normalizing on finding its elements.) As in simdjson,
/// a backslash escapes the next byte wherever it is: outside strings valid JSON has none.
#[derive(Debug, Default)]
struct ValueScan {
    depth: usize,
    /// Newlines seen so far, up to the end once found.
    lines: u64,
    /// All ones when the byte before ended inside a string.
    in_string: u64,
    /// 1 when the byte before is a backslash that escapes the next one.
    next_escaped: u64,
}

impl ValueScan {
    /// The value's end in `piece` (exclusive), if it is there; else the scan goes on with the
    /// next piece. The value's first byte is the first piece's first.
    fn feed(&mut self, piece: &[u8]) -> Option<usize> {
        for (n, block) in piece.chunks(64).enumerate() {
            // The block's last byte carries the string and escape states into the next one.
            let last = block.len() - 1;
            let bits = Block::of(block);
            let quotes = bits.quote & !escaped(bits.backslash, last, &mut self.next_escaped);
            let strings = prefix_xor(quotes) ^ self.in_string;
            self.in_string = (strings >> last & 1).wrapping_neg();
            let mut brackets = (bits.open | bits.close) & !strings;
            while brackets != 0 {
                let k = brackets.trailing_zeros();
                brackets &= brackets - 1;
                if bits.open >> k & 1 == 1 {
                    self.depth += 1;
                    continue;
                }
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    let before = if k == 63 { u64::MAX } else { (2u64 << k) - 1 };
                    self.lines += u64::from((bits.newline & before).count_ones());
                    return Some(n * 64 + k as usize + 1);
                }
            }
            self.lines += u64::from(bits.newline.count_ones());
        }
        None
    }
}

/// The bytes of a block of up to 64 that matter for a value's end, bit `k` for byte `k`.
#[derive(Debug, Default, PartialEq)]
struct Block {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
    newline: u64,
}

impl Block {
    fn of(block: &[u8]) -> Block {
        // A short last block is padded with zeros, which match none of the bytes looked for.
        let mut padded = [0u8; 64];
        let full = match block.first_chunk::<64>() {
            Some(full) => full,
            None => {
                padded[..block.len()].copy_from_slice(block);
                &padded
            }
        };
        #[cfg(target_arch = "x86_64")]
        return Block::sse2(full);
        #[cfg(not(target_arch = "x86_64"))]
        return Block::words(full);
    }

    /// 16 bytes at a time: a compare and a mask per byte looked for (~15 GB/s; the words'
    /// version below runs at ~0.6).
    #[cfg(target_arch = "x86_64")]
    fn sse2(block: &[u8; 64]) -> Block {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
        };
        let word = |half: &[u8]| half.first_chunk::<8>().map_or(0, |w| i64::from_le_bytes(*w));
        let mut bits = Block::default();
        for (k, chunk) in block.chunks_exact(16).enumerate() {
            let (lo, hi) = chunk.split_at(8);
            // SAFETY: SSE2 is part of every x86_64 target's baseline, and these intrinsics
            // read no memory.
            let [quote, backslash, open, close, newline] = unsafe {
                let v = _mm_set_epi64x(word(hi), word(lo));
                // `[` and `{`, and `]` and `}`, differ only in the 0x20 bit.
                let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
                let mask =
                    |x: __m128i, b: u8| u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(b as i8))) as u16);
                [
                    mask(v, b'"'),
                    mask(v, b'\\'),
                    mask(folded, b'{'),
                    mask(folded, b'}'),
                    mask(v, b'\n'),
                ]
            };
            let at = 16 * k;
            bits.quote |= quote << at;
            bits.backslash |= backslash << at;
            bits.open |= open << at;
            bits.close |= close << at;
            bits.newline |= newline << at;
        }
        bits
    }

    /// A word of 8 bytes at a time, on any target.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn words(block: &[u8; 64]) -> Block {
        const ONES: u64 = u64::from_le_bytes([0x01; 8]);
        const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
        // Bit k of the result for byte k of `w` equal to `b` (exact: no borrow between bytes).
        let equal = |w: u64, b: u8| {
            let x = w ^ (ONES * u64::from(b));
            let high = !(((x & !HIGHS) + !HIGHS) | x) & HIGHS;
            (high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
        };
        let mut bits = Block::default();
        for (k, word) in block.chunks_exact(8).enumerate() {
            let w = word.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w));
            let folded = w | (ONES * 0x20);
            let at = 8 * k;
            bits.quote |= equal(w, b'"') << at;
            bits.backslash |= equal(w, b'\\') << at;
            bits.open |= equal(folded, b'{') << at;
            bits.close |= equal(folded, b'}') << at;
            bits.newline |= equal(w, b'\n') << at;
        }
        bits
    }
}

/// The bytes escaped by a backslash (those after an odd run of them), given a block's
/// backslashes and its `last` byte; `next_escaped` carries a run across blocks. simdjson's
/// escape scanner.
fn escaped(backslash: u64, last: usize, next_escaped: &mut u64) -> u64 {
    const ODD: u64 = 0xAAAA_AAAA_AAAA_AAAA;
    let potential = backslash & !*next_escaped;
    let code = ((potential << 1) | ODD).wrapping_sub(potential) ^ ODD;
    let escaped = code ^ (backslash | *next_escaped);
    *next_escaped = (code & backslash) >> last & 1;
    escaped
}

/// Bit `k` of the result is the XOR of bits 0 to `k`: between an opening quote (included)
/// and its closing one (excluded), ones.
fn prefix_xor(mut x: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        x ^= x << shift;
    }
    x
}

/// Splits complete top-level JSON values (or the elements of a top-level array). A value
/// that is still open at the end of the file becomes one record (which will be rejected).
fn split_values(data: &[u8], eof: bool, mut line: u64, base: u64, in_array: &mut bool) -> (Vec<Span>, usize, u64) {
    let mut spans = Vec::new();
    let mut i = 0;
    let n = data.len();
    loop {
        // Whitespace and separators between records.
        while i < n {
            match data[i] {
                b'\n' => line += 1,
                b' ' | b'\t' | b'\r' => {}
                b',' if *in_array => {}
                b']' if *in_array => *in_array = false,
                b'[' if !*in_array => *in_array = true,
                _ => break,
            }
            i += 1;
        }
        if i >= n {
            return (spans, n, line);
        }
        let start = i;
        let start_line = line;
        let mut lines_inside = 0;
        let mut end = None;
        let mut j = i;
        match data[j] {
            b'{' | b'[' => {
                let (found, lines) = value_end(&data[start..]);
                end = found.map(|e| start + e);
                lines_inside = lines;
            }
            _ => {
                // A scalar or garbage: up to the next separator.
                while j < n && !matches!(data[j], b'\n' | b',' | b']' | b'}' | b' ' | b'\t' | b'\r') {
                    j += 1;
                }
                if j < n || eof {
                    end = Some(j.max(start + 1).min(n));
                }
            }
        }
        let end = match end {
            Some(e) => e,
            None if eof => n,
            None => return (spans, start, start_line),
        };
        spans.push(Span {
            start,
            end,
            line: start_line,
            offset: base + start as u64,
        });
        line = start_line + lines_inside;
        i = end;
    }
}

/// CSV rows as JSON objects keyed by the header, cut by csv-core so that a row's size is
/// bounded while it is read.
struct CsvRows {
    core: csv_core::Reader,
    /// Columns the header must have.
    required: &'static [&'static str],
    headers: Option<Vec<String>>,
    /// Why every row is rejected (the header lacks a required column), if it is.
    missing: Option<String>,
    /// Raw input not yet parsed starts at `buf[pos]`.
    buf: Vec<u8>,
    pos: usize,
    /// Offset of `buf[0]` in the (decompressed) stream.
    offset: u64,
    /// Line of `buf[pos]`.
    line: u64,
    eof: bool,
    done: bool,
    /// A read error met after some rows of a chunk: returned after them.
    failed: Option<io::Error>,
    fields: Vec<u8>,
    ends: Vec<usize>,
}

/// One CSV record as csv-core cut it.
enum CsvRecord {
    /// Fields in `CsvRows::fields`, ends in `CsvRows::ends[..n]`.
    Fields { n: usize, line: u64, offset: u64 },
    /// Longer than the limit: streamed past.
    TooLarge { line: u64, offset: u64, sha256: [u8; 32] },
}

/// Bytes of raw CSV read at a time.
const CSV_BLOCK: usize = 1 << 16;

impl CsvRows {
    fn new(required: &'static [&'static str]) -> Self {
        CsvRows {
            core: csv_core::Reader::new(),
            required,
            headers: None,
            missing: None,
            buf: Vec::new(),
            pos: 0,
            offset: 0,
            line: 1,
            eof: false,
            done: false,
            failed: None,
            fields: vec![0; 1024],
            ends: vec![0; 64],
        }
    }

    /// Makes `buf[pos..]` non-empty unless the stream is over.
    fn refill(&mut self, reader: &mut dyn Read) -> io::Result<()> {
        if self.pos < self.buf.len() || self.eof {
            return Ok(());
        }
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        self.pos = 0;
        if read_some(reader, &mut self.buf, CSV_BLOCK)? == 0 {
            self.eof = true;
        }
        Ok(())
    }

    /// Moves past `n` bytes of `buf`, counting lines.
    fn consume(&mut self, n: usize) {
        self.line += memchr::memchr_iter(b'\n', &self.buf[self.pos..self.pos + n]).count() as u64;
        self.pos += n;
    }

    fn read_record(&mut self, reader: &mut dyn Read, max: usize) -> io::Result<Option<CsvRecord>> {
        // Blank lines between records are skipped here, so a record's line and offset are
        // those of its first byte.
        loop {
            self.refill(reader)?;
            match self.buf.get(self.pos) {
                Some(b'\n' | b'\r') => self.consume(1),
                _ => break,
            }
        }
        let (line, offset) = (self.line, self.offset + self.pos as u64);
        let mut hasher = Sha256::new();
        let (mut nout, mut nend) = (0, 0);
        self.core.reset();
        loop {
            self.refill(reader)?;
            let input = &self.buf[self.pos..];
            let at_end = input.is_empty();
            let (result, nin, o, e) = self
                .core
                .read_record(input, &mut self.fields[nout..], &mut self.ends[nend..]);
            hasher.update(&input[..nin]);
            self.consume(nin);
            nout += o;
            nend += e;
            match result {
                // An empty input is the end of the stream, which csv-core answers with a
                // record or the end; never wait for more then.
                csv_core::ReadRecordResult::InputEmpty if at_end => return Ok(None),
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull | csv_core::ReadRecordResult::OutputEndsFull
                    if nout + nend * std::mem::size_of::<usize>() > max =>
                {
                    return self.skip_row(reader, hasher, line, offset).map(Some);
                }
                csv_core::ReadRecordResult::OutputFull => {
                    let len = self.fields.len() * 2;
                    self.fields.resize(len, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len() * 2;
                    self.ends.resize(len, 0);
                }
                csv_core::ReadRecordResult::Record => return Ok(Some(CsvRecord::Fields { n: nend, line, offset })),
                csv_core::ReadRecordResult::End => return Ok(None),
            }
        }
    }

    /// Streams past the rest of an oversized row, to its next newline (quotes are not
    /// followed: a row this long is not data the source can use anyway).
    fn skip_row(&mut self, reader: &mut dyn Read, mut hasher: Sha256, line: u64, offset: u64) -> io::Result<CsvRecord> {
        loop {
            self.refill(reader)?;
            if self.pos == self.buf.len() {
                break;
            }
            let rest = &self.buf[self.pos..];
            match memchr::memchr(b'\n', rest) {
                Some(k) => {
                    hasher.update(&rest[..k]);
                    self.consume(k + 1);
                    break;
                }
                None => {
                    hasher.update(rest);
                    let n = rest.len();
                    self.consume(n);
                }
            }
        }
        Ok(CsvRecord::TooLarge {
            line,
            offset,
            sha256: hasher.finalize().into(),
        })
    }

    /// Field `i` of the record just read, trimmed.
    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.fields[start..self.ends[i]].trim_ascii()
    }

    fn next_chunk(&mut self, reader: &mut dyn Read, batch_bytes: usize, max: usize) -> io::Result<Option<Chunk>> {
        if let Some(e) = self.failed.take() {
            self.done = true;
            return Err(e);
        }
        if self.done {
            return Ok(None);
        }
        let mut chunk = Chunk::default();
        while chunk.data.len() < batch_bytes {
            let record = match self.read_record(reader, max) {
                Ok(r) => r,
                Err(e) if chunk.records() > 0 => {
                    self.failed = Some(e);
                    break;
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            let (n, line, offset) = match record {
                None => {
                    self.done = true;
                    break;
                }
                Some(CsvRecord::TooLarge { line, offset, sha256 }) => {
                    if self.headers.is_none() {
                        self.headers = Some(Vec::new());
                        self.missing = Some(format!(
                            "the CSV header is longer than {max} bytes (max_record_bytes) and was not read"
                        ));
                        continue;
                    }
                    chunk.problems.push(Problem {
                        span: Span {
                            start: 0,
                            end: 0,
                            line,
                            offset,
                        },
                        reason: too_large(max),
                        sha256: Some(sha256),
                    });
                    continue;
                }
                Some(CsvRecord::Fields { n, line, offset }) => (n, line, offset),
            };
            if n == 0 || (n == 1 && self.field(0).is_empty()) {
                // A line of blanks only.
                continue;
            }
            let Some(headers) = &self.headers else {
                let headers: Vec<String> = (0..n)
                    .map(|i| {
                        String::from_utf8_lossy(self.field(i))
                            .trim_start_matches('\u{feff}')
                            .to_string()
                    })
                    .collect();
                let absent: Vec<&str> = self
                    .required
                    .iter()
                    .copied()
                    .filter(|c| !headers.iter().any(|h| h == c))
                    .collect();
                if !absent.is_empty() {
                    let (noun, list) = match absent.len() {
                        1 => ("column", absent[0].to_string()),
                        _ => ("columns", absent.join(", ")),
                    };
                    self.missing = Some(format!(
                        "the CSV header lacks the required {noun} {list} (it has {})",
                        headers.join(",")
                    ));
                }
                self.headers = Some(headers);
                continue;
            };
            let start = chunk.data.len();
            // Written by hand to keep the header's column order in rejects.
            let out = &mut chunk.data;
            out.push(b'{');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                let key = headers.get(i).cloned().unwrap_or_else(|| format!("_column_{}", i + 1));
                serde_json::to_writer(&mut *out, &key).map_err(io::Error::other)?;
                out.push(b':');
                let field = self.field(i);
                if field.is_empty() {
                    out.extend_from_slice(b"null");
                } else {
                    serde_json::to_writer(&mut *out, &String::from_utf8_lossy(field)).map_err(io::Error::other)?;
                }
            }
            out.push(b'}');
            let span = Span {
                start,
                end: chunk.data.len(),
                line,
                offset,
            };
            chunk.data.push(b'\n');
            let why = match &self.missing {
                Some(why) => Some(why.clone()),
                None if n < headers.len() => Some(format!(
                    "the CSV row has {n} fields and the header {}: no value for column {}",
                    headers.len(),
                    headers[n]
                )),
                None if n > headers.len() => Some(format!(
                    "the CSV row has {n} fields and the header {}: field {} has no column (the last is {})",
                    headers.len(),
                    headers.len() + 1,
                    headers.last().map_or("none", String::as_str)
                )),
                None => None,
            };
            match why {
                Some(reason) => chunk.problems.push(Problem {
                    span,
                    reason,
                    sha256: None,
                }),
                None => chunk.spans.push(span),
            }
        }
        if chunk.records() == 0 && self.done {
            return Ok(None);
        }
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(format: Format, input: &str, batch: usize) -> Vec<(String, u64, u64)> {
        read(format, input.as_bytes(), batch, 1 << 20, &[]).0
    }

    /// The records and the problems (line, offset, reason) of `input`.
    #[allow(clippy::type_complexity)]
    fn read(
        format: Format,
        input: &[u8],
        batch: usize,
        max: usize,
        columns: &'static [&'static str],
    ) -> (Vec<(String, u64, u64)>, Vec<(u64, u64, String)>) {
        let mut r = ChunkReader::new(Box::new(io::Cursor::new(input.to_vec())), format, batch)
            .max_record_bytes(max)
            .csv_columns(columns);
        let (mut out, mut problems) = (Vec::new(), Vec::new());
        while let Some(c) = r.next_chunk().unwrap() {
            for s in &c.spans {
                out.push((
                    String::from_utf8_lossy(&c.data[s.start..s.end]).into_owned(),
                    s.line,
                    s.offset,
                ));
            }
            for p in &c.problems {
                problems.push((p.span.line, p.span.offset, p.reason.clone()));
            }
        }
        (out, problems)
    }

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
        for u in units {
            out.extend_from_slice(&if big_endian { u.to_be_bytes() } else { u.to_le_bytes() });
        }
        out
    }

    #[test]
    fn a_utf8_byte_order_mark_is_skipped_in_every_format() {
        let bom = |t: &str| [&[0xEF, 0xBB, 0xBF][..], t.as_bytes()].concat();
        let (json, _) = read(Format::Json, &bom("[{\"a\":1},\n{\"b\":2}]"), 1024, 1 << 20, &[]);
        assert_eq!(json.len(), 2);
        assert_eq!(json[0].0, "{\"a\":1}");
        assert_eq!(json[0].2, 4, "offsets count the mark's bytes");
        let (lines, _) = read(Format::Ndjson, &bom("{\"a\":1}\r\n{\"b\":2}\r\n"), 1024, 1 << 20, &[]);
        assert_eq!(
            lines.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            ["{\"a\":1}", "{\"b\":2}"]
        );
        assert_eq!((lines[0].1, lines[0].2), (1, 3));
        assert_eq!((lines[1].1, lines[1].2), (2, 12));
        let (rows, problems) = read(Format::Csv, &bom("a,b\r\n1,2\r\n"), 1024, 1 << 20, &["a"]);
        assert_eq!(rows[0].0, r#"{"a":"1","b":"2"}"#);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn utf16_files_are_decoded_with_or_without_a_mark() {
        let text = "{\"id\": \"Áñ€\"}\n{\"id\": \"b\"}\n";
        for big_endian in [false, true] {
            for bom in [true, false] {
                let (got, problems) = read(Format::Ndjson, &utf16(text, big_endian, bom), 1024, 1 << 20, &[]);
                assert!(problems.is_empty());
                assert_eq!(
                    got.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
                    ["{\"id\": \"Áñ€\"}", "{\"id\": \"b\"}"],
                    "big endian {big_endian}, mark {bom}"
                );
            }
        }
        let csv = utf16("warehouse_id,product_id\r\n1,Ä\r\n", false, true);
        let (rows, _) = read(Format::Csv, &csv, 1024, 1 << 20, &[]);
        assert_eq!(rows[0].0, r#"{"warehouse_id":"1","product_id":"Ä"}"#);
    }

    #[test]
    fn csv_rows_that_do_not_fit_the_header_are_problems_naming_the_column() {
        const COLUMNS: &[&str] = &["warehouse_id", "product_id", "available_quantity"];
        let text = "warehouse_id,product_id,available_quantity\n1,A,3\n1,B\n1,C,4,extra\n\n   \n1,D,\n";
        let (rows, problems) = read(Format::Csv, text.as_bytes(), 1024, 1 << 20, COLUMNS);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            rows[1].0.contains("\"available_quantity\":null"),
            "an empty field is null"
        );
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].0, 3);
        assert!(
            problems[0].2.contains("no value for column available_quantity"),
            "{problems:?}"
        );
        assert_eq!(problems[1].0, 4);
        assert!(problems[1].2.contains("field 4 has no column"), "{problems:?}");
        let (rows, problems) = read(
            Format::Csv,
            b"warehouse_id,product_id\n1,A\n2,B\n",
            1024,
            1 << 20,
            COLUMNS,
        );
        assert!(rows.is_empty());
        assert_eq!(problems.len(), 2);
        assert!(
            problems
                .iter()
                .all(|p| p.2.contains("lacks the required column available_quantity")),
            "{problems:?}"
        );
    }

    #[test]
    fn quoted_csv_fields_keep_commas_and_newlines() {
        let (rows, problems) = read(Format::Csv, b"a,b\n\"x, y\",\"line\none\"\n2,3\n", 1024, 1 << 20, &[]);
        assert!(problems.is_empty());
        assert_eq!(rows[0].0, r#"{"a":"x, y","b":"line\none"}"#);
        assert_eq!((rows[1].1, rows[1].0.as_str()), (4, r#"{"a":"2","b":"3"}"#));
    }

    #[test]
    fn records_longer_than_the_limit_are_streamed_past() {
        let long = format!("{{\"id\": \"{}\"}}", "x".repeat(10_000));
        for format in [Format::Ndjson, Format::Json] {
            let text = format!("{{\"a\":1}}\n{long}\n{{\"b\":2}}\n");
            let (got, problems) = read(format, text.as_bytes(), 1024, 2048, &[]);
            assert_eq!(
                got.iter().map(|r| (r.0.as_str(), r.1)).collect::<Vec<_>>(),
                [("{\"a\":1}", 1), ("{\"b\":2}", 3)],
                "{format:?}"
            );
            assert_eq!(problems.len(), 1);
            assert_eq!((problems[0].0, problems[0].1), (2, 8), "{format:?}");
            assert!(problems[0].2.contains("max_record_bytes"));
        }
        // Inside a top-level array, with the huge value spanning lines and holding brackets.
        let text = format!(
            "[{{\"a\":1}},\n{{\"x\": [\"]}}\\\"\", \n \"{}\"]}},\n{{\"b\":2}}]",
            "y".repeat(5000)
        );
        let (got, problems) = read(Format::Json, text.as_bytes(), 1024, 1024, &[]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1].1, 4, "lines inside the skipped value are counted");
        assert_eq!(problems.len(), 1);
        let csv = format!("a,b\n1,2\n3,\"{}\"\n5,6\n", "z".repeat(5000));
        let (rows, problems) = read(Format::Csv, csv.as_bytes(), 1024, 1024, &[]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].0, r#"{"a":"5","b":"6"}"#);
        assert_eq!(problems[0].0, 3);
    }

    #[test]
    fn a_record_over_the_limit_in_a_large_batch_is_a_problem_too() {
        let text = format!("{{\"a\":1}}\n{{\"id\": \"{}\"}}\n", "x".repeat(3000));
        let (got, problems) = read(Format::Ndjson, text.as_bytes(), 1 << 20, 1024, &[]);
        assert_eq!(got.len(), 1);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn ndjson_lines_with_blank_lines_and_no_final_newline() {
        let got = records(Format::Ndjson, "{\"a\":1}\n\n  {\"b\":2}\r\n{\"c\":3}", 1024);
        assert_eq!(
            got,
            vec![
                ("{\"a\":1}".into(), 1, 0),
                ("{\"b\":2}".into(), 3, 11),
                ("{\"c\":3}".into(), 4, 20)
            ]
        );
    }

    #[test]
    fn json_array_elements_are_records() {
        let got = records(Format::Json, "[\n {\"a\": \"x]}\"},\n {\"b\": [1,2]}\n]\n", 1024);
        assert_eq!(got[0].0, "{\"a\": \"x]}\"}");
        assert_eq!(got[0].1, 2);
        assert_eq!(got[1].0, "{\"b\": [1,2]}");
        assert_eq!(got[1].1, 3);
    }

    #[test]
    fn pretty_single_object_is_one_record() {
        let text = "{\n  \"id\": \"x\",\n  \"n\": {\"m\": \"a\\\"b\"}\n}\n";
        let got = records(Format::Json, text, 1024);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, text.trim());
    }

    #[test]
    fn records_survive_small_chunks() {
        let mut text = String::from("[");
        for i in 0..200 {
            text.push_str(&format!("{{\"id\": {i}, \"pad\": \"{}\"}},\n", "x".repeat(i % 37)));
        }
        text.push_str("{\"id\": 200}]");
        let got = records(Format::Json, &text, 1024);
        assert_eq!(got.len(), 201);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, r)| r.0.starts_with(&format!("{{\"id\": {i}")))
        );
        let lines = records(Format::Ndjson, &text.replace(",\n", "\n"), 1024);
        assert_eq!(lines.len(), 201);
    }

    #[test]
    fn an_unclosed_value_becomes_one_record_at_the_end() {
        let got = records(Format::Json, "{\"a\": 1}\n{\"b\": ", 1024);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].0, "{\"b\": ");
    }

    #[test]
    fn csv_rows_become_objects() {
        let got = records(
            Format::Csv,
            "warehouse_id,product_id,available_quantity\n50,RM58,60\n51,RM59,\n",
            1024,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].0,
            r#"{"warehouse_id":"50","product_id":"RM58","available_quantity":"60"}"#
        );
        assert_eq!(got[0].1, 2);
        assert!(got[1].0.contains("\"available_quantity\":null"));
    }

    #[test]
    fn only_the_samples_themselves_are_the_samples() {
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        assert!(is_samples(&samples));
        let copy = tempfile::tempdir().unwrap();
        let mut stack = vec![samples.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                let to = copy.path().join(p.strip_prefix(&samples).unwrap());
                if p.is_dir() {
                    std::fs::create_dir_all(&to).unwrap();
                    stack.push(p);
                } else {
                    std::fs::copy(&p, &to).unwrap();
                }
            }
        }
        assert!(is_samples(copy.path()), "a copy elsewhere is still the samples");
        std::fs::write(copy.path().join("stock/notes.txt"), "x").unwrap();
        assert!(is_samples(copy.path()), "files that are not exports do not count");
        std::fs::write(copy.path().join("stock/extra.json"), "{}").unwrap();
        assert!(!is_samples(copy.path()), "one more export");
        std::fs::remove_file(copy.path().join("stock/extra.json")).unwrap();
        let csv = copy.path().join("stock/stock.csv");
        let mut text = std::fs::read(&csv).unwrap();
        text.push(b'\n');
        std::fs::write(&csv, text).unwrap();
        assert!(!is_samples(copy.path()), "a changed export");
        assert!(!is_samples(&samples.join("stock")));
    }

    #[test]
    fn tenants_are_the_folders_below_the_source() {
        assert_eq!(tenant_of("orders/masmovil/page-1.json").as_deref(), Some("masmovil"));
        assert_eq!(tenant_of("orders/page-1.json"), None);
        assert_eq!(
            tenant_of("orders/run_date=2025-06-30/yoigo/part-00000.ndjson.zst").as_deref(),
            Some("yoigo")
        );
        assert_eq!(tenant_of("stock/run_date=2025-06-30/part-00000.ndjson.zst"), None);
    }

    #[test]
    fn classify_names() {
        assert_eq!(
            classify("a.ndjson.gz").map(|c| (c.0, c.1)),
            Some((Format::Ndjson, Compression::Gzip))
        );
        assert_eq!(classify("12345.json").map(|c| c.2), Some("12345"));
        assert_eq!(classify("stock.csv.zst").map(|c| c.0), Some(Format::Csv));
        assert!(classify("README.md").is_none());
    }

    mod properties {
        //! Property tests: the reader never panics, never loops, keeps spans inside its
        //! chunk, and cuts the same records whatever the chunk size, the encoding or where
        //! the file ends. `PROPTEST_CASES` runs more cases than CI's default.
        use super::*;
        use proptest::prelude::*;

        fn config(ci: u32) -> ProptestConfig {
            let cases = std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(ci);
            ProptestConfig {
                cases,
                failure_persistence: None,
                ..ProptestConfig::default()
            }
        }

        /// Everything a reader yields: records, then problems.
        #[allow(clippy::type_complexity)]
        fn all(
            format: Format,
            bytes: &[u8],
            batch: usize,
            max: usize,
        ) -> (Vec<(String, u64, u64)>, Vec<(u64, u64, String)>) {
            let mut r = ChunkReader::new(Box::new(io::Cursor::new(bytes.to_vec())), format, batch)
                .max_record_bytes(max)
                .csv_columns(&["a"]);
            let (mut out, mut problems) = (Vec::new(), Vec::new());
            let mut chunks = 0;
            while let Some(c) = r.next_chunk().unwrap() {
                chunks += 1;
                assert!(chunks <= bytes.len() + 4, "the reader does not end");
                for s in &c.spans {
                    assert!(s.start <= s.end && s.end <= c.data.len());
                    out.push((
                        String::from_utf8_lossy(&c.data[s.start..s.end]).into_owned(),
                        s.line,
                        s.offset,
                    ));
                }
                for p in &c.problems {
                    assert!(p.span.start <= p.span.end && p.span.end <= c.data.len());
                    problems.push((p.span.line, p.span.offset, p.reason.clone()));
                }
            }
            (out, problems)
        }

        fn format() -> impl Strategy<Value = Format> {
            prop_oneof![Just(Format::Json), Just(Format::Ndjson), Just(Format::Csv)]
        }

        /// Text with what makes readers stumble: quotes, escapes, brackets, separators,
        /// newlines, multi-byte characters.
        fn text() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("\"".to_string()),
                    Just("\\".to_string()),
                    Just("{".to_string()),
                    Just("]".to_string()),
                    Just(",".to_string()),
                    Just("\n".to_string()),
                    Just("\r\n".to_string()),
                    Just("é€😀".to_string()),
                    "[a-z0-9 ]{0,8}",
                ],
                0..8,
            )
            .prop_map(|parts| parts.concat())
        }

        /// A byte, often one that matters for where a JSON value ends, or a near miss of one.
        fn structural_byte() -> impl Strategy<Value = u8> {
            prop_oneof![
                Just(b'"'),
                Just(b'\\'),
                Just(b'{'),
                Just(b'}'),
                Just(b'['),
                Just(b']'),
                Just(b'\n'),
                Just(b'a'),
                Just(b' '),
                Just(b'[' ^ 0x80),
                Just(b'{' ^ 0x01),
                any::<u8>(),
            ]
        }

        /// An object's or array's opening bracket, then up to `max` structural bytes.
        fn value_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
            (
                prop_oneof![Just(b'{'), Just(b'[')],
                proptest::collection::vec(structural_byte(), 0..max),
            )
                .prop_map(|(open, body)| std::iter::once(open).chain(body).collect())
        }

        fn records() -> impl Strategy<Value = Vec<serde_json::Value>> {
            proptest::collection::vec(
                (text(), text(), any::<i64>())
                    .prop_map(|(a, b, n)| serde_json::json!({"a": a, "b": [b, n], "c": {"d": n}})),
                0..12,
            )
        }

        proptest! {
            #![proptest_config(config(64))]

            #[cfg(target_arch = "x86_64")]
            #[test]
            fn a_block_is_classified_alike_by_words_and_by_sse2(
                bytes in proptest::collection::vec(structural_byte(), 64),
            ) {
                let block: [u8; 64] = bytes.try_into().unwrap_or([0; 64]);
                prop_assert_eq!(Block::sse2(&block), Block::words(&block));
            }

            #[test]
            fn a_value_ends_where_a_byte_by_byte_scan_ends_it(
                data in value_bytes(400),
            ) {
                // The rules of `value_end` one byte at a time: a backslash escapes the next
                // byte (an escaped quote neither opens nor closes a string), brackets count
                // outside strings, every newline counts.
                let (mut depth, mut lines, mut in_string, mut escaped) = (0usize, 0u64, false, false);
                let mut want = (None, 0);
                for (i, &b) in data.iter().enumerate() {
                    if b == b'\n' {
                        lines += 1;
                    }
                    let was_escaped = std::mem::take(&mut escaped);
                    match b {
                        b'\\' if !was_escaped => escaped = true,
                        b'"' if !was_escaped => in_string = !in_string,
                        b'{' | b'[' if !in_string => depth += 1,
                        b'}' | b']' if !in_string => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                want = (Some(i + 1), lines);
                                break;
                            }
                        }
                        _ => {}
                    }
                    want.1 = lines;
                }
                prop_assert_eq!(value_end(&data), want);
            }

            #[test]
            fn a_value_streamed_in_two_pieces_ends_where_it_ends_in_one(
                data in value_bytes(300),
                cut in any::<proptest::sample::Index>(),
            ) {
                let cut = cut.index(data.len() + 1);
                let mut scan = RecordEnd::new(Format::Json);
                let streamed = match scan.feed(&data[..cut]) {
                    Some(end) => Some(end),
                    None => scan.feed(&data[cut..]).map(|end| cut + end),
                };
                prop_assert_eq!(streamed, value_end(&data).0);
            }

            #[test]
            fn any_bytes_are_read_to_their_end_without_panicking(
                bytes in proptest::collection::vec(any::<u8>(), 0..3000),
                format in format(),
                batch in 1024usize..3000,
                max in 1024usize..4096,
            ) {
                all(format, &bytes, batch, max);
            }

            #[test]
            fn json_records_do_not_depend_on_chunk_size_encoding_or_line_ends(
                values in records(),
                shape in 0..3u8,
                bom in any::<bool>(),
                crlf in any::<bool>(),
                utf16 in any::<bool>(),
                batch in 1024usize..4096,
            ) {
                let want: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                let nl = if crlf { "\r\n" } else { "\n" };
                let (format, text) = match shape {
                    0 => (Format::Ndjson, want.iter().map(|w| format!("{w}{nl}")).collect::<String>()),
                    1 => (Format::Json, format!("[{nl}{}{nl}]", want.join(&format!(",{nl}")))),
                    _ => (Format::Json, want.join(nl)),
                };
                let mut bytes = if bom && !utf16 { vec![0xEF, 0xBB, 0xBF] } else { Vec::new() };
                if utf16 {
                    for u in std::iter::once(0xFEFF).chain(text.encode_utf16()) {
                        bytes.extend_from_slice(&u.to_le_bytes());
                    }
                } else {
                    bytes.extend_from_slice(text.as_bytes());
                }
                let (small, problems) = all(format, &bytes, batch, 1 << 20);
                prop_assert!(problems.is_empty());
                let got: Vec<String> = small.iter().map(|r| r.0.clone()).collect();
                prop_assert_eq!(&got, &want);
                let (large, _) = all(format, &bytes, 1 << 20, 1 << 20);
                prop_assert_eq!(small, large);
            }

            #[test]
            fn a_file_cut_anywhere_keeps_every_record_before_the_cut(
                values in records(),
                format in prop_oneof![Just(Format::Ndjson), Just(Format::Json)],
                cut in any::<proptest::sample::Index>(),
            ) {
                let lines: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
                let at = cut.index(text.len() + 1);
                let (got, _) = all(format, &text.as_bytes()[..at], 1024, 1 << 20);
                // Every record whole before the cut, then at most one piece of the next.
                let mut end = 0;
                let complete = lines.iter().take_while(|l| { end += l.len() + 1; end - 1 <= at }).count();
                prop_assert!(got.len() == complete || got.len() == complete + 1, "{} of {}", got.len(), complete);
                for (g, w) in got.iter().zip(&lines).take(complete) {
                    prop_assert_eq!(&g.0, w);
                }
            }

            #[test]
            fn csv_rows_keep_their_fields_whatever_the_quoting(
                rows in proptest::collection::vec((text(), text()), 0..10),
                crlf in any::<bool>(),
                batch in 1024usize..2048,
            ) {
                let nl = if crlf { "\r\n" } else { "\n" };
                let quote = |f: &str| format!("\"{}\"", f.replace('"', "\"\""));
                let mut text = format!("a,b{nl}");
                for (a, b) in &rows {
                    text.push_str(&format!("{},{}{nl}", quote(a), quote(b)));
                }
                let (got, problems) = all(Format::Csv, text.as_bytes(), batch, 1 << 20);
                prop_assert!(problems.is_empty(), "{:?}", problems);
                let want: Vec<(String, String)> = rows
                    .iter()
                    .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                    .collect();
                let parsed: Vec<(String, String)> = got
                    .iter()
                    .map(|g| {
                        let v: serde_json::Value = serde_json::from_str(&g.0).unwrap();
                        let f = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                        (f("a"), f("b"))
                    })
                    .collect();
                prop_assert_eq!(parsed, want);
            }
        }
    }
}
