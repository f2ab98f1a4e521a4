//! Raw API responses, kept so a run can be replayed without the APIs and so that the next
//! night can carry forward what cannot have changed.
//!
//! Raw responses hold personal data (names, e-mails, document numbers), so they never go into
//! the analysts' lake: they are kept at `raw_output`, a location with its own URL and
//! credentials ([`store`]), or not at all. Paths are built in [`layout`] only.
//!
//! Each response is one line of a zstd file (`{source}/{tenant}/part-NNNNN.ndjson.zst`: the
//! layout of an export folder with tenant sub-folders, so the normalizer reads it as one).
//! Pages are kept as sent. A per-id answer is wrapped so that it says what was asked and when
//! ([`RawContext::Answer`]): `{"_id": id, "_fetched_on": "YYYY-MM-DD", "request": {"id": id},
//! "response": body}`, with `"response": []` for a 404 ("none"); the response's own bytes are
//! kept as sent.

pub mod layout;
pub mod store;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::NaiveDate;

use crate::source::{FETCHED_ON, RawContext};

/// Lines per file before the next part starts (bounded files, bounded replays).
const LINES_PER_PART: u64 = 50_000;

/// The raw line for `body`, kept as `context` says; `id` is the id of a per-id call and
/// `fetched_on` its day. A per-id 404 is `body = None`.
pub fn line(context: RawContext, body: Option<&[u8]>, id: Option<&str>, fetched_on: NaiveDate) -> Vec<u8> {
    match (context, id) {
        (RawContext::Answer, Some(id)) => {
            let id_json = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".into());
            let mut out = format!(
                "{{\"_id\":{id_json},\"{FETCHED_ON}\":\"{}\",\"request\":{{\"id\":{id_json}}},\"response\":",
                fetched_on.format("%Y-%m-%d")
            )
            .into_bytes();
            out.extend_from_slice(body.unwrap_or(b"[]"));
            out.push(b'}');
            out
        }
        _ => body.unwrap_or(b"{}").to_vec(),
    }
}

/// What a per-id answer line says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The id asked.
    pub id: String,
    /// The day it was asked.
    pub fetched_on: Option<NaiveDate>,
    /// The answer, `None` for a 404.
    pub response: Option<serde_json::Value>,
}

/// Reads a per-id answer line (`None`: not one, such as an export record or a page).
pub fn answer(line: &[u8]) -> Option<Answer> {
    #[derive(serde::Deserialize)]
    struct Line {
        #[serde(rename = "_id")]
        id: Option<serde_json::Value>,
        #[serde(rename = "_fetched_on")]
        fetched_on: Option<String>,
        response: Option<serde_json::Value>,
    }
    let l: Line = serde_json::from_slice(line).ok()?;
    let id = match l.id? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let response = match l.response {
        Some(serde_json::Value::Array(a)) if a.is_empty() => None,
        other => other,
    };
    Some(Answer {
        id,
        fetched_on: l
            .fetched_on
            .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()),
        response,
    })
}

struct Open {
    encoder: zstd::stream::write::Encoder<'static, BufWriter<File>>,
    lines: u64,
    part: u32,
}

/// The raw files of one source and tenant, written by concurrent requests.
pub struct RawWriter {
    dir: PathBuf,
    open: Mutex<Option<Open>>,
    lines: std::sync::atomic::AtomicU64,
}

impl RawWriter {
    /// Files under `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        RawWriter {
            dir,
            open: Mutex::new(None),
            lines: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Appends one response; `line` must hold no newline (compact JSON never does).
    pub fn write(&self, line: &[u8]) -> io::Result<()> {
        let mut guard = self.open.lock().map_err(|_| io::Error::other("raw writer poisoned"))?;
        if guard.as_ref().is_some_and(|o| o.lines >= LINES_PER_PART) {
            let part = guard.as_ref().map_or(0, |o| o.part + 1);
            if let Some(o) = guard.take() {
                o.encoder.finish()?.flush()?;
            }
            *guard = Some(self.open_part(part)?);
        }
        if guard.is_none() {
            *guard = Some(self.open_part(0)?);
        }
        if let Some(o) = guard.as_mut() {
            o.encoder.write_all(line)?;
            o.encoder.write_all(b"\n")?;
            o.lines += 1;
        }
        self.lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn open_part(&self, part: u32) -> io::Result<Open> {
        std::fs::create_dir_all(&self.dir)?;
        let file = File::create(self.dir.join(format!("part-{part:05}.ndjson.zst")))?;
        Ok(Open {
            encoder: zstd::stream::write::Encoder::new(BufWriter::new(file), 3)?,
            lines: 0,
            part,
        })
    }

    /// Discards every line written so far (a listing read again from its first page): the
    /// writer's folder holds its own files only.
    pub fn reset(&self) -> io::Result<()> {
        let mut guard = self.open.lock().map_err(|_| io::Error::other("raw writer poisoned"))?;
        if let Some(o) = guard.take() {
            o.encoder.finish()?.flush()?;
        }
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => {
                for e in entries {
                    let path = e?.path();
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if path.is_file() && name.starts_with("part-") {
                        std::fs::remove_file(&path)?;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.lines.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The folder it writes into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lines written.
    pub fn lines(&self) -> u64 {
        self.lines.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Finishes the open file.
    pub fn finish(&self) -> io::Result<()> {
        let mut guard = self.open.lock().map_err(|_| io::Error::other("raw writer poisoned"))?;
        if let Some(o) = guard.take() {
            o.encoder.finish()?.flush()?;
        }
        Ok(())
    }
}

/// Every line of the raw files in `dir` (its own files, not its sub-folders), in file order.
pub fn read_lines(dir: &Path, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    files.sort();
    for path in files {
        let reader = io::BufReader::new(zstd::stream::read::Decoder::new(File::open(&path)?)?);
        for line in io::BufRead::split(reader, b'\n') {
            let line = line?;
            if !line.is_empty() {
                each(&line);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_say_what_was_asked_and_when_without_touching_the_body() {
        let day = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let body = br#"{"devices": [{"subscription_terminal_id": 1}]}"#;
        let kept = line(RawContext::Answer, Some(body), Some("123"), day);
        assert!(kept.ends_with(br#""response":{"devices": [{"subscription_terminal_id": 1}]}}"#));
        let a = answer(&kept).unwrap();
        assert_eq!((a.id.as_str(), a.fetched_on), ("123", Some(day)));
        assert_eq!(a.response.unwrap()["devices"][0]["subscription_terminal_id"], 1);
        let none = line(RawContext::Answer, None, Some("9"), day);
        let v: serde_json::Value = serde_json::from_slice(&none).unwrap();
        assert_eq!(v["request"]["id"], "9");
        assert_eq!(
            answer(&none).unwrap().response,
            None,
            "a 404 is kept as an empty response"
        );
        assert_eq!(
            line(RawContext::Body, Some(b"{\"a\":1}"), None, day),
            b"{\"a\":1}".to_vec()
        );
        assert_eq!(answer(b"{\"a\":1}"), None);
    }

    #[test]
    fn lines_roll_over_into_parts_readable_as_ndjson() {
        let dir = tempfile::tempdir().unwrap();
        let w = RawWriter::new(dir.path().join("x"));
        for i in 0..3 {
            w.write(format!("{{\"i\":{i}}}").as_bytes()).unwrap();
        }
        w.finish().unwrap();
        let bytes = zstd::decode_all(File::open(dir.path().join("x/part-00000.ndjson.zst")).unwrap()).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n");
        assert_eq!(w.lines(), 3);
        let mut read = Vec::new();
        read_lines(&dir.path().join("x"), &mut |l| read.push(l.to_vec())).unwrap();
        assert_eq!(
            read,
            [b"{\"i\":0}".to_vec(), b"{\"i\":1}".to_vec(), b"{\"i\":2}".to_vec()]
        );
        w.reset().unwrap();
        assert_eq!(w.lines(), 0);
        w.write(b"{\"i\":9}").unwrap();
        w.finish().unwrap();
        let mut read = Vec::new();
        read_lines(&dir.path().join("x"), &mut |l| read.push(l.to_vec())).unwrap();
        assert_eq!(read, [b"{\"i\":9}".to_vec()], "a reset writer starts over");
        read_lines(&dir.path().join("missing"), &mut |_| panic!("no lines")).unwrap();
    }
}
