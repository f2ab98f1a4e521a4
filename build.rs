//! Embeds the SHA-256 of every export file under `samples/`: the public development key is
//! accepted for an input folder that holds exactly these files (see `extract::files::is_samples`).

use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

fn main() {
    println!("cargo:rerun-if-changed=samples");
    println!("cargo:rerun-if-changed=build.rs");
    let root = Path::new("samples");
    let mut files = Vec::new();
    // Without the folder (a build context that leaves it out), no input is the samples.
    if root.is_dir() {
        walk(root, root, &mut files);
    }
    files.sort();
    let mut out = String::from("/// Export files of `samples/` and their SHA-256, by path relative to it.\n");
    out.push_str("pub const SAMPLES: &[(&str, &str)] = &[\n");
    for (name, digest) in files {
        let _ = writeln!(out, "    ({name:?}, {digest:?}),");
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("samples.rs");
    std::fs::write(dest, out).expect("write samples.rs");
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out);
        } else if is_export(&name) {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, hex(&Sha256::digest(&bytes))));
        }
    }
}

/// The same file names as `extract::files::classify` accepts.
fn is_export(name: &str) -> bool {
    let base = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".zst"))
        .unwrap_or(name);
    let ext = base.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    matches!(ext.as_deref(), Some("json" | "ndjson" | "jsonl" | "csv"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
