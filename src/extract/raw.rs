//! Raw API responses, kept so a run can be normalized again without the APIs.
//!
//! Each response is one line of `{raw root}/{source}/{tenant}/part-NNNNN.ndjson.zst` (the
//! same layout as an export folder with tenant sub-folders, so the normalizer reads it as
//! one). A per-id response that does not name its id is written with it: devices and
//! typifications gain a leading `"customer_num"` field, a searchTimeSlot response is wrapped
//! as `{"request": {"id": ...}, "response": ...}`; the response's own bytes are kept as sent.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::source::RawContext;

/// Lines per file before the next part starts (bounded files, bounded replays).
const LINES_PER_PART: u64 = 50_000;

/// The raw line for `body`, answering the request for `id`, kept as `context` says.
pub fn line(context: RawContext, body: &[u8], id: Option<&str>) -> Vec<u8> {
    let id_json = serde_json::to_string(id.unwrap_or_default()).unwrap_or_else(|_| "\"\"".into());
    match (context, id) {
        (RawContext::Field(name), Some(_)) => {
            let trimmed = trim_start(body);
            match trimmed.strip_prefix(b"{") {
                Some(rest) => {
                    let rest = trim_start(rest);
                    let sep = if rest.starts_with(b"}") { "" } else { "," };
                    let mut out = format!("{{\"{name}\":{id_json}{sep}").into_bytes();
                    out.extend_from_slice(rest);
                    out
                }
                None => body.to_vec(),
            }
        }
        (RawContext::Request, Some(_)) => {
            let mut out = format!("{{\"request\":{{\"id\":{id_json}}},\"response\":").into_bytes();
            out.extend_from_slice(body);
            out.push(b'}');
            out
        }
        _ => body.to_vec(),
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_added_without_touching_the_body() {
        let body = br#"{"devices": [{"subscription_terminal_id": 1}]}"#;
        let with_id = line(RawContext::Field("customer_num"), body, Some("123"));
        assert_eq!(
            with_id,
            br#"{"customer_num":"123","devices": [{"subscription_terminal_id": 1}]}"#.to_vec()
        );
        let empty = line(RawContext::Field("customer_num"), b"{}", Some("9"));
        assert_eq!(empty, br#"{"customer_num":"9"}"#.to_vec());
        let req = line(RawContext::Request, br#"{"availableTimeSlot": []}"#, Some("A1"));
        let v: serde_json::Value = serde_json::from_slice(&req).unwrap();
        assert_eq!(v["request"]["id"], "A1");
        assert_eq!(line(RawContext::Body, b"{\"a\":1}", Some("x")), b"{\"a\":1}".to_vec());
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
    }
}
