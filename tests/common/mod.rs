//! Shared helpers: a temporary lake and the real `opslake` binary, and table readers.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use polars::prelude::*;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary folder with an input tree and a lake, and the binary to run on them.
pub struct TestLake {
    pub dir: tempfile::TempDir,
}

impl TestLake {
    pub fn new() -> Self {
        TestLake {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn input(&self) -> PathBuf {
        self.dir.path().join("input")
    }

    pub fn lake(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    /// Writes a generated universe (`opslake samples generate`) under `input/`.
    pub fn generate(&self, orders: usize, seed: u64) -> opslake::samples::Stats {
        let u = opslake::samples::Universe {
            orders,
            seed,
            ..Default::default()
        };
        opslake::samples::generate(&u, &self.input()).expect("generate a universe")
    }

    /// Writes an input file under `input/`.
    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        let p = self.input().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
        self
    }

    /// Writes a gzip-compressed input file.
    pub fn gz(&self, rel: &str, contents: &str) -> &Self {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(contents.as_bytes()).unwrap();
        self.file(rel, e.finish().unwrap())
    }

    /// Writes a zstd-compressed input file.
    pub fn zst(&self, rel: &str, contents: &str) -> &Self {
        self.file(rel, zstd::encode_all(contents.as_bytes(), 1).unwrap())
    }

    /// `opslake` with the environment cleared of OPSLAKE_* settings, run in the temp dir.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_opslake"));
        c.current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("OPSLAKE_") {
                c.env_remove(k);
            }
        }
        c.env("OPSLAKE_LOG_FORMAT", "json").env("OPSLAKE_PII_KEY", "test-key");
        c
    }

    /// `opslake run` on this lake's input and lake, for `as_of`, with extra arguments.
    pub fn run(&self, as_of: &str, extra: &[&str]) -> Output {
        let mut c = self.cmd();
        c.arg("run")
            .arg("--input")
            .arg(self.input())
            .arg("--output")
            .arg(self.lake())
            .arg("--as-of")
            .arg(as_of)
            .args(extra);
        c.output().expect("run opslake")
    }

    /// Runs and asserts success, returning stdout.
    pub fn run_ok(&self, as_of: &str, extra: &[&str]) -> String {
        let out = self.run(as_of, extra);
        assert!(
            out.status.success(),
            "opslake failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A published table of one day.
    pub fn table(&self, table: &str, as_of: &str) -> DataFrame {
        read_table(&self.lake(), table, as_of)
    }

    /// The manifests of a day, by commit.
    pub fn manifests(&self, as_of: &str) -> Vec<serde_json::Value> {
        manifests(&self.lake(), as_of)
    }
}

/// The files of `table`'s day `as_of` at the table's latest Delta version (through delta-rs).
pub fn table_files(lake: &Path, table: &str, as_of: &str) -> Vec<PathBuf> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let day = chrono::NaiveDate::parse_from_str(as_of, "%Y-%m-%d").unwrap();
    let l = opslake::publish::Lake::open(lake.to_str().unwrap()).unwrap();
    let (_, files) = rt
        .block_on(opslake::publish::table_files(&l, table, day, None))
        .unwrap()
        .unwrap_or_else(|| panic!("no Delta table {table} in {}", lake.display()));
    files.iter().map(|f| lake.join(f)).collect()
}

/// Reads `table`'s day `as_of` as the lake holds it (the files of its latest version).
pub fn read_table(lake: &Path, table: &str, as_of: &str) -> DataFrame {
    let parts = table_files(lake, table, as_of);
    assert!(
        !parts.is_empty(),
        "no files of {table} for {as_of} in {}",
        lake.display()
    );
    let mut frames = parts
        .iter()
        .map(|p| ParquetReader::new(std::fs::File::open(p).unwrap()).finish().unwrap());
    let mut all = frames.next().unwrap();
    for f in frames {
        all.vstack_mut(&f).unwrap();
    }
    all
}

/// The manifests of a day, sorted by commit.
pub fn manifests(lake: &Path, as_of: &str) -> Vec<serde_json::Value> {
    let dir = lake.join("_runs").join(format!("run_date={as_of}"));
    let mut out: Vec<serde_json::Value> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|m| m["commit"].as_u64());
    out
}

/// The text values of a column.
pub fn strings(df: &DataFrame, column: &str) -> Vec<Option<String>> {
    df.column(column)
        .unwrap_or_else(|e| panic!("{column}: {e}"))
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

/// The value of `column` in the row where `key_column` = `key`, as text.
pub fn cell(df: &DataFrame, key_column: &str, key: &str, column: &str) -> Option<String> {
    let keys = strings(df, key_column);
    let values = strings(df, column);
    let i = keys
        .iter()
        .position(|k| k.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no row with {key_column} = {key}"));
    values[i].clone()
}

/// Asserts that the key columns of `df` are non-null and unique.
pub fn assert_key_unique(df: &DataFrame, table: &str, key: &[&str]) {
    let cols: Vec<Vec<Option<String>>> = key.iter().map(|k| strings(df, k)).collect();
    let mut seen = BTreeSet::new();
    for i in 0..df.height() {
        let k: Vec<String> = cols
            .iter()
            .zip(key)
            .map(|(c, name)| {
                c[i].clone()
                    .unwrap_or_else(|| panic!("{table}: null {name} in row {i}"))
            })
            .collect();
        assert!(seen.insert(k.clone()), "{table}: duplicate key {k:?}");
    }
}

/// Every text value of every table of a local lake (Parquet pages are compressed, so raw
/// bytes would hide what the tables hold).
pub fn all_text(lake: &Path) -> String {
    let mut out = String::new();
    for table in std::fs::read_dir(lake).unwrap() {
        let table = table.unwrap();
        let name = table.file_name().to_string_lossy().into_owned();
        if name.starts_with("_runs") || name.starts_with("_staging") || !table.path().is_dir() {
            continue;
        }
        for day in std::fs::read_dir(table.path()).unwrap() {
            let day = day.unwrap().file_name().to_string_lossy().into_owned();
            let Some(as_of) = day.strip_prefix("run_date=") else {
                continue;
            };
            let df = read_table(lake, &name, as_of);
            for c in df.columns() {
                if let Ok(s) = c.cast(&DataType::String) {
                    for v in s.str().unwrap().iter().flatten() {
                        out.push_str(v);
                        out.push('\n');
                    }
                }
            }
        }
    }
    out
}

/// A local S3-compatible server (moto) on 127.0.0.1, started for one test and stopped on drop.
/// `.ci/run` installs it and sets `OPSLAKE_TEST_MOTO` to its `moto_server` program; without it
/// the S3 suites are skipped (they say so).
pub struct S3Server {
    child: std::process::Child,
    pub endpoint: String,
    pub bucket: String,
}

impl S3Server {
    /// Starts a server with one bucket, or `None` (with the reason printed) when unavailable.
    pub fn start() -> Option<S3Server> {
        let Ok(program) = std::env::var("OPSLAKE_TEST_MOTO") else {
            eprintln!("skipped: set OPSLAKE_TEST_MOTO to a moto_server program (.ci/run does)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "lake-bucket".into(),
        };
        for _ in 0..200 {
            if http(port, "GET", "/moto-api/").is_some() {
                // moto accepts an unsigned bucket creation.
                http(port, "PUT", &format!("/{}", server.bucket)).expect("create bucket");
                return Some(server);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("moto_server did not start on port {port}");
    }

    /// The environment a client needs (credentials are not checked by moto).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ]
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare HTTP/1.1 request; the status line's code if it answered.
fn http(port: u16, method: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The fixture API server (`opslake fixtures serve`) on 127.0.0.1, stopped on drop.
pub struct FixtureServer {
    child: std::process::Child,
    pub url: String,
}

impl FixtureServer {
    /// Serves `data` with key `key` and the given extra flags (faults, latency...).
    pub fn start(data: &Path, key: &str, extra: &[&str]) -> FixtureServer {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_opslake"))
            .args(["fixtures", "serve", "--port", "0", "--api-key", key, "--data"])
            .arg(data)
            .args(extra)
            .env("OPSLAKE_LOG_FORMAT", "json")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the fixture server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected: {line}"))
            .to_string();
        FixtureServer { child, url }
    }

    /// The variables pointing the three APIs at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OPSLAKE_APPOINTMENTS_URL", self.url.clone()),
            ("OPSLAKE_CUSTOMER_CARE_URL", self.url.clone()),
            ("OPSLAKE_LOGISTICS_URL", self.url.clone()),
        ]
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
