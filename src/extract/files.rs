//! Export files: listing, decompression and cutting into chunks of whole records.
//!
//! A file is read once, as a stream, in chunks of about `batch_bytes`; a chunk always ends on
//! a record boundary, so memory is bounded by the chunk size, not the file size. Records are:
//! each non-blank line of `.ndjson`/`.jsonl`; each top-level JSON value of `.json` (the
//! elements when the file is one big array); each row of `.csv`, turned into a JSON object of
//! its header's fields so the source parses one form. The checksum is over the bytes as
//! stored (before decompression).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
/// A missing folder is an empty source.
pub fn list(root: &Path, folder: &str) -> Result<(Vec<InputFile>, Vec<String>), Error> {
    if !root.is_dir() {
        return Err(Error::MissingInput {
            path: root.to_path_buf(),
        });
    }
    let dir = root.join(folder);
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    if !dir.is_dir() {
        return Ok((files, skipped));
    }
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
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
            let meta = entry.metadata().map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            if meta.is_dir() {
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
            let tenant = tenant_of(&name);
            match classify(&file_name) {
                Some((format, compression, stem)) => files.push(InputFile {
                    tenant,
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

/// Whole records of one file, read together.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The bytes.
    pub data: Vec<u8>,
    /// The records in `data`.
    pub spans: Vec<Span>,
}

/// Xxh3-128 of the bytes read through it, shared with whoever needs the final value.
struct Checksummed<R> {
    inner: R,
    hasher: Arc<Mutex<Xxh3>>,
}

impl<R: Read> Read for Checksummed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
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

/// Opens a file as a decompressed byte stream, with its checksum.
pub fn open(file: &InputFile) -> io::Result<(Box<dyn Read + Send>, Checksum)> {
    let hasher = Arc::new(Mutex::new(Xxh3::new()));
    let raw = Checksummed {
        inner: File::open(&file.path)?,
        hasher: hasher.clone(),
    };
    let reader: Box<dyn Read + Send> = match file.compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            raw,
        ))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
    };
    Ok((reader, Checksum(hasher)))
}

/// Reads a file's records in chunks of about `batch_bytes`.
pub struct ChunkReader {
    reader: Box<dyn Read + Send>,
    format: Format,
    batch_bytes: usize,
    carry: Vec<u8>,
    eof: bool,
    /// Line number of `carry[0]`.
    line: u64,
    /// Offset of `carry[0]` in the decompressed stream.
    offset: u64,
    /// Whether the value scanner is inside the file's top-level array.
    in_array: bool,
    csv: Option<CsvRows>,
}

impl ChunkReader {
    /// A reader over `reader`, which yields the bytes of a file of `format`.
    pub fn new(reader: Box<dyn Read + Send>, format: Format, batch_bytes: usize) -> Self {
        let (reader, csv) = match format {
            Format::Csv => (
                Box::new(io::empty()) as Box<dyn Read + Send>,
                Some(CsvRows::new(reader)),
            ),
            _ => (reader, None),
        };
        ChunkReader {
            reader,
            format,
            batch_bytes: batch_bytes.max(1024),
            carry: Vec::new(),
            eof: false,
            line: 1,
            offset: 0,
            in_array: false,
            csv,
        }
    }

    /// The next chunk, `None` at the end of the file.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        if let Some(csv) = &mut self.csv {
            return csv.next_chunk(self.batch_bytes);
        }
        let mut data = std::mem::take(&mut self.carry);
        let mut want = self.batch_bytes.max(data.len() + self.batch_bytes / 2);
        loop {
            self.fill(&mut data, want)?;
            let (spans, used, line_after) = match self.format {
                Format::Ndjson => split_lines(&data, self.eof, self.line, self.offset),
                Format::Json => split_values(&data, self.eof, self.line, self.offset, &mut self.in_array),
                Format::Csv => return Ok(None),
            };
            if used == 0 && !self.eof {
                // One record is larger than the buffer: read more of it.
                want = data.len() * 2;
                continue;
            }
            self.carry = data.split_off(used);
            self.offset += used as u64;
            self.line = line_after;
            if spans.is_empty() && self.eof && self.carry.is_empty() {
                return Ok(None);
            }
            return Ok(Some(Chunk { data, spans }));
        }
    }

    fn fill(&mut self, data: &mut Vec<u8>, target: usize) -> io::Result<()> {
        while data.len() < target && !self.eof {
            let start = data.len();
            data.resize(target, 0);
            let n = loop {
                match self.reader.read(&mut data[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        data.truncate(start);
                        return Err(e);
                    }
                }
            };
            data.truncate(start + n);
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(())
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
        let mut depth = 0usize;
        let mut lines_inside = 0;
        let mut end = None;
        let mut j = i;
        match data[j] {
            b'{' | b'[' => {
                while j < n {
                    match data[j] {
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                end = Some(j + 1);
                                break;
                            }
                        }
                        b'"' => {
                            // Skip the string, honouring escapes.
                            j += 1;
                            while j < n {
                                match memchr::memchr3(b'"', b'\\', b'\n', &data[j..]) {
                                    Some(k) => {
                                        j += k;
                                        match data[j] {
                                            b'\\' => j += 2,
                                            b'\n' => {
                                                lines_inside += 1;
                                                j += 1
                                            }
                                            _ => break,
                                        }
                                    }
                                    None => j = n,
                                }
                            }
                        }
                        b'\n' => lines_inside += 1,
                        _ => {}
                    }
                    j += 1;
                }
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

/// CSV rows as JSON objects keyed by the header.
struct CsvRows {
    reader: csv::Reader<Box<dyn Read + Send>>,
    headers: Option<Vec<String>>,
    done: bool,
}

impl CsvRows {
    fn new(reader: Box<dyn Read + Send>) -> Self {
        CsvRows {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(reader),
            headers: None,
            done: false,
        }
    }

    fn next_chunk(&mut self, batch_bytes: usize) -> io::Result<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        let mut chunk = Chunk::default();
        let mut record = csv::ByteRecord::new();
        while chunk.data.len() < batch_bytes {
            let pos = self.reader.position().clone();
            let more = self.reader.read_byte_record(&mut record).map_err(io::Error::other)?;
            if !more {
                self.done = true;
                break;
            }
            let Some(headers) = &self.headers else {
                self.headers = Some(
                    record
                        .iter()
                        .map(|h| String::from_utf8_lossy(h).trim_start_matches('\u{feff}').to_string())
                        .collect(),
                );
                continue;
            };
            let start = chunk.data.len();
            // Written by hand to keep the header's column order in rejects.
            let out = &mut chunk.data;
            out.push(b'{');
            for (i, field) in record.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let key = headers.get(i).cloned().unwrap_or_else(|| format!("_column_{i}"));
                serde_json::to_writer(&mut *out, &key).map_err(io::Error::other)?;
                out.push(b':');
                if field.is_empty() {
                    out.extend_from_slice(b"null");
                } else {
                    serde_json::to_writer(&mut *out, &String::from_utf8_lossy(field)).map_err(io::Error::other)?;
                }
            }
            if record.len() != headers.len() {
                // Kept visible as malformed: the source rejects the row with this reason.
                let why = format!("{} fields, header has {}", record.len(), headers.len());
                out.extend_from_slice(b",\"_csv_error\":");
                serde_json::to_writer(&mut *out, &why).map_err(io::Error::other)?;
            }
            out.push(b'}');
            chunk.spans.push(Span {
                start,
                end: chunk.data.len(),
                line: pos.line(),
                offset: pos.byte(),
            });
            chunk.data.push(b'\n');
        }
        if chunk.spans.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(format: Format, input: &str, batch: usize) -> Vec<(String, u64, u64)> {
        let mut r = ChunkReader::new(Box::new(io::Cursor::new(input.as_bytes().to_vec())), format, batch);
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            for s in &c.spans {
                out.push((
                    String::from_utf8_lossy(&c.data[s.start..s.end]).into_owned(),
                    s.line,
                    s.offset,
                ));
            }
        }
        out
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
}
