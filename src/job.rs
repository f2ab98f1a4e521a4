//! Jobs: every setting declared once, in [`Settings`], and layered into a [`Job`].
//!
//! A setting is one field of [`Settings`]: its name is the job-file key, its `#[arg]` gives the
//! flag, the `OPSLAKE_*` variable and the default, its doc comment is the `--help` text, and its
//! type validates the value wherever it comes from (clap parses flags and variables with the
//! type's `FromStr`; serde reads the file with the same type). Precedence: a flag, then its
//! variable (clap), then the job file, then the default. Fields marked `#[arg(skip)]` are
//! job-file only (tables such as `[api.*]`). Keys never come from the job file or a flag:
//! `OPSLAKE_PII_KEY` or a mounted file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::schema::pii::{Pii, PiiAction, PiiKey, PiiMode, RejectsRaw};
use crate::schema::time::TimeParser;

/// The embedded default job: `samples/` in, `./lake` out (the same as `jobs/daily.toml`).
pub const EMBEDDED: &str = include_str!("../jobs/daily.toml");

/// Input bytes per normalize batch unless the job says otherwise (see `normalize`).
pub const DEFAULT_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// The largest record unless the job says otherwise: far above any real record (an appointment
/// is ~2 KB, a page of 200 orders ~1 MB), low enough that one hostile line cannot exhaust memory.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// How many times its stored size a `.gz`/`.zst` export may inflate to unless the job says
/// otherwise: JSON exports compress 5-30 times, so 250 is only reached by a decompression bomb.
pub const DEFAULT_MAX_DECOMPRESSION_RATIO: u64 = 250;

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job file cannot be read.
    #[error("cannot read job file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The job file is not valid.
    #[error("invalid job file {path}: {why}")]
    Parse {
        /// The file.
        path: String,
        /// Why (with the key).
        why: String,
    },
    /// A setting has a bad value.
    #[error("bad {setting} {value:?}: {why}")]
    Value {
        /// The setting (job key, flag or variable).
        setting: String,
        /// The value.
        value: String,
        /// Why.
        why: String,
    },
    /// Hashing personal data needs a key and none was given.
    #[error(
        "no PII key: set OPSLAKE_PII_KEY or OPSLAKE_PII_KEY_FILE (or pii_key_file in the job file), \
         or set pii = \"drop\" to publish no personal data at all; the public development key is \
         only used for the samples, or for test data in a job file with allow_development_key = true"
    )]
    MissingPiiKey,
    /// The key file cannot be read.
    #[error("cannot read the PII key file {path}: {source}")]
    PiiKeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The command needs APIs and the job has none.
    #[error("this command extracts from APIs and the job has no [api.*] section: use --job jobs/api.toml")]
    NoApis,
    /// A command needs a committed day and the lake has none for it.
    #[error(
        "nothing committed for {run_date} in {url}{what}: pick a day that `opslake runs list` shows, or run that day first"
    )]
    NothingCommitted {
        /// The day asked for.
        run_date: NaiveDate,
        /// The lake.
        url: String,
        /// What was looked for, when more precise than a commit (" (no raw captures)").
        what: &'static str,
    },
    /// `runs show` of a run the lake has no record of.
    #[error("no committed run {run_id} in {url}: see `opslake runs list`")]
    UnknownRun {
        /// The id asked for.
        run_id: String,
        /// The lake.
        url: String,
    },
    /// A name (source, table, reconciliation, API section) is not one opslake knows.
    #[error("unknown {what} {name:?}; known: {known}")]
    UnknownName {
        /// What kind of name.
        what: &'static str,
        /// The name.
        name: String,
        /// The known ones.
        known: String,
    },
}

/// Every setting of a job. Each field is a job-file key, a `--flag` and an `OPSLAKE_*`
/// variable of the same name.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Job name, recorded in the run records.
    #[arg(long, env = "OPSLAKE_NAME", default_value = "adhoc")]
    pub name: String,
    /// Folder of export files, one sub-folder per source.
    #[arg(long, env = "OPSLAKE_INPUT", default_value = "samples")]
    pub input: PathBuf,
    /// The lake: a folder, or a file://, s3://, gs://, az:// or memory:// URL.
    #[arg(long, env = "OPSLAKE_OUTPUT", default_value = "./lake")]
    pub output: String,
    /// Run date, YYYY-MM-DD or "today" (in source_timezone): the partition written and the
    /// reconciliations' day.
    #[arg(long, visible_alias = "run-date", env = "OPSLAKE_AS_OF", default_value = "today")]
    pub as_of: AsOf,
    /// IANA time zone of timestamps sent without one.
    #[arg(long, env = "OPSLAKE_SOURCE_TIMEZONE", default_value = "Europe/Madrid")]
    pub source_timezone: chrono_tz::Tz,
    /// Largest share of rejected records before the run fails (0.01 = 1%).
    #[arg(long, env = "OPSLAKE_MAX_REJECT_RATIO", default_value_t = 0.01)]
    pub max_reject_ratio: f64,
    /// Raw text of rejects that are not valid JSON: redact (leave out) or keep.
    #[arg(long, value_enum, env = "OPSLAKE_REJECTS_RAW", default_value_t = RejectsRaw::Redact)]
    pub rejects_raw: RejectsRaw,
    /// Days without a status change before an in-progress expedition is stuck.
    #[arg(long, env = "OPSLAKE_STUCK_AFTER_DAYS", default_value_t = 7)]
    pub stuck_after_days: u32,
    /// Worker threads for every stage (0: all cores).
    #[arg(long, env = "OPSLAKE_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Input bytes per normalize batch (at least 1024).
    #[arg(long, env = "OPSLAKE_BATCH_BYTES", default_value_t = DEFAULT_BATCH_BYTES)]
    pub batch_bytes: usize,
    /// Largest record in bytes (a line, a JSON value, a CSV row); a longer one is rejected
    /// without being held in memory (at least 1024).
    #[arg(long, env = "OPSLAKE_MAX_RECORD_BYTES", default_value_t = DEFAULT_MAX_RECORD_BYTES)]
    pub max_record_bytes: usize,
    /// How many times its stored size a .gz or .zst export may inflate to (0: no bound); the
    /// rest of a file past it is one reject.
    #[arg(long, env = "OPSLAKE_MAX_DECOMPRESSION_RATIO", default_value_t = DEFAULT_MAX_DECOMPRESSION_RATIO)]
    pub max_decompression_ratio: u64,
    /// Local folder for the run's package when the lake is remote.
    #[arg(long, env = "OPSLAKE_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Only these sources, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', env = "OPSLAKE_SOURCES")]
    pub sources: Option<Vec<String>>,
    /// Only these tables, comma-separated [default: all; a source's main table always].
    #[arg(long, value_delimiter = ',', env = "OPSLAKE_TABLES")]
    pub tables: Option<Vec<String>>,
    /// Only these reconciliations, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', env = "OPSLAKE_RECONCILIATIONS")]
    pub reconciliations: Option<Vec<String>>,
    /// Personal data: hash identifiers with the key, or drop all personal data.
    #[arg(long, value_enum, env = "OPSLAKE_PII", default_value_t = PiiMode::Hash)]
    pub pii: PiiMode,
    /// File holding the PII key (a mounted secret).
    #[arg(long, env = "OPSLAKE_PII_KEY_FILE")]
    pub pii_key_file: Option<PathBuf>,
    /// Read and publish only this share of the day, i/n (0-based): the tenants whose stable
    /// hash is i modulo n.
    #[arg(long, env = "OPSLAKE_SHARD")]
    pub shard: Option<Shard>,
    /// Orgs every API is extracted for, comma-separated, unless its section names its own.
    #[arg(long, value_delimiter = ',', env = "OPSLAKE_TENANTS")]
    pub tenants: Option<Vec<String>>,
    /// Where raw API responses are kept (they hold personal data): a folder or a file://,
    /// s3://, gs://, az:// URL outside the lake, with its own credentials (OPSLAKE_RAW_AWS_*...).
    /// Unset: none are kept, and every night is a full pull.
    #[arg(long, env = "OPSLAKE_RAW_OUTPUT")]
    pub raw_output: Option<String>,
    /// Days between nights that ask every per-id call again (0: every night).
    #[arg(long, env = "OPSLAKE_FULL_REFRESH_DAYS", default_value_t = 7)]
    pub full_refresh_days: u32,
    /// Ask every per-id call again tonight, whatever the last night kept.
    #[arg(long, env = "OPSLAKE_FULL_REFRESH")]
    #[serde(default)]
    pub full_refresh: bool,
    /// Job file only: with no key set, hash with the public development key whatever the
    /// input (test data only; without it the key is used for the samples alone).
    #[arg(skip)]
    #[serde(default)]
    pub allow_development_key: bool,
    /// Job file only: per-column policy, `"table.column"` or `"column"` = keep | hash | drop.
    #[arg(skip)]
    #[serde(default)]
    pub pii_columns: BTreeMap<String, PiiAction>,
    /// Job file only: the APIs (`[api.appointments]`, `[api.customer_care]`,
    /// `[api.logistics]`); with any, the run extracts its sources from the APIs.
    #[arg(skip)]
    #[serde(default)]
    pub api: BTreeMap<String, ApiConfig>,
}

/// One API's section of a job file (`[api.logistics]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Base URL; `OPSLAKE_{API}_URL` overrides it.
    pub base_url: Option<String>,
    /// Orgs to extract (default: the job's `tenants`).
    pub tenants: Option<Vec<String>>,
    /// Variable holding the key.
    pub api_key_env: String,
    /// File holding the key; `OPSLAKE_API_KEY_FILE` overrides it.
    pub api_key_file: Option<PathBuf>,
    /// Items per page.
    pub page_size: u32,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Requests per second at most.
    pub requests_per_second: u32,
    /// Seconds before a request times out.
    pub timeout_seconds: u64,
    /// Retries per request after the first attempt.
    pub retries: u32,
    /// Path overrides by source (`orders = "/v2/{tenant}/orders"`): plain paths only.
    pub paths: BTreeMap<String, String>,
    /// Extra ids for this API's per-id sources (customers not seen in memos...).
    pub ids: Vec<String>,
    /// More ids from a CSV or Parquet file: a path or an object-store URL (read-only).
    pub ids_file: Option<IdsFile>,
    /// More ids from a column of a committed lake table, `table.column` (a CRM export...).
    pub ids_table: Option<String>,
    /// Plain `http://` to a host that is not loopback (the key then travels in clear text).
    pub allow_http: bool,
    /// Most pages of one listing: a `total_pages` or a `next_request` chain past it is an error.
    pub max_pages: u64,
    /// Largest response body in bytes; a larger one fails the run.
    pub max_body_bytes: u64,
}

/// A file of ids (`ids_file = { url = "s3://crm/customers.parquet", column = "customer_num" }`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdsFile {
    /// A path, or a file://, s3://, gs://, az:// URL; `.csv` (with a header) or `.parquet`.
    pub url: String,
    /// The column holding the ids (default: the file's only column).
    pub column: Option<String>,
    /// A column holding each id's tenant (default: every id is asked in every tenant).
    pub tenant_column: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            base_url: None,
            tenants: None,
            api_key_env: "OPSLAKE_API_KEY".into(),
            api_key_file: None,
            page_size: 200,
            concurrency: 8,
            requests_per_second: 50,
            timeout_seconds: 30,
            retries: 5,
            paths: BTreeMap::new(),
            ids: Vec::new(),
            ids_file: None,
            ids_table: None,
            allow_http: false,
            max_pages: 100_000,
            max_body_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The run date setting: a day, or today in the source time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AsOf {
    /// Today, in `source_timezone`, when the run starts.
    Today,
    /// A given day.
    Day(NaiveDate),
}

impl FromStr for AsOf {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim() == "today" {
            return Ok(AsOf::Today);
        }
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(AsOf::Day)
            .map_err(|_| format!("{s:?} is not YYYY-MM-DD or \"today\""))
    }
}

impl TryFrom<String> for AsOf {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<AsOf> for String {
    fn from(a: AsOf) -> String {
        a.to_string()
    }
}

impl fmt::Display for AsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsOf::Today => f.write_str("today"),
            AsOf::Day(d) => write!(f, "{}", d.format("%Y-%m-%d")),
        }
    }
}

/// A share of a day's run (`--shard i/n`): the tenants whose stable hash modulo `count` is
/// `index`; files outside any tenant folder belong to shard 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shard {
    /// 0-based index.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Shard {
    /// Whether the shard reads the files of `tenant` (`None`: files of no tenant).
    pub fn owns(&self, tenant: Option<&str>) -> bool {
        match tenant {
            None => self.index == 0,
            Some(t) => xxhash_rust::xxh3::xxh3_64(t.as_bytes()) % self.count as u64 == self.index as u64,
        }
    }
}

impl FromStr for Shard {
    type Err = String;
    /// Parses `i/n` (0 <= i < n <= 999).
    fn from_str(text: &str) -> Result<Shard, String> {
        let (i, n) = text.split_once('/').ok_or("expected i/n, such as 0/4")?;
        let index: u32 = i.trim().parse().map_err(|_| "the shard index is not a number")?;
        let count: u32 = n.trim().parse().map_err(|_| "the shard count is not a number")?;
        if count == 0 || count > 999 || index >= count {
            return Err("expected 0 <= i < n <= 999".into());
        }
        Ok(Shard { index, count })
    }
}

impl TryFrom<String> for Shard {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Shard> for String {
    fn from(s: Shard) -> String {
        s.to_string()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `--job FILE` and the settings: what every command that runs a job takes.
#[derive(Debug, Clone, clap::Args)]
pub struct JobArgs {
    /// Job file (TOML). Default: the embedded job, the same as jobs/daily.toml.
    #[arg(long, env = "OPSLAKE_JOB")]
    pub job: Option<PathBuf>,
    /// The settings.
    #[command(flatten)]
    pub settings: Settings,
}

impl JobArgs {
    /// The job: the job file's keys under the settings that `given` says came from a flag or
    /// a variable; `env` reads the secrets' variables.
    pub fn resolve(&self, given: &dyn Fn(&str) -> bool, env: &dyn Fn(&str) -> Option<String>) -> Result<Job, Error> {
        let (text, origin) = match &self.job {
            None => (EMBEDDED.to_string(), "the embedded default job".to_string()),
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| Error::Read {
                    path: p.clone(),
                    source,
                })?,
                p.display().to_string(),
            ),
        };
        let file: toml::Table = toml::from_str(&text).map_err(|e| Error::Parse {
            path: origin.clone(),
            why: e.to_string(),
        })?;
        let settings = layer(&self.settings, file, given).map_err(|why| Error::Parse { path: origin, why })?;
        Job::resolve(settings, env)
    }
}

/// The file's keys under the command line's given settings, read back as [`Settings`]
/// (unknown keys and wrong types are refused, naming the key).
fn layer(cli: &Settings, file: toml::Table, given: &dyn Fn(&str) -> bool) -> Result<Settings, String> {
    let mut merged = match toml::Value::try_from(cli) {
        Ok(toml::Value::Table(t)) => t,
        Ok(_) => toml::Table::new(),
        Err(e) => return Err(e.to_string()),
    };
    for (key, value) in file {
        if !given(&key) {
            merged.insert(key, value);
        }
    }
    serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| match e.path().to_string() {
        p if p == "." => e.inner().to_string(),
        p => format!("{p}: {}", e.inner()),
    })
}

/// A resolved job: its settings, and what is derived from them once.
#[derive(Debug, Clone)]
pub struct Job {
    /// The settings, validated.
    pub settings: Settings,
    /// The run date.
    pub as_of: NaiveDate,
    /// Timestamp parsing in `source_timezone`.
    pub time: TimeParser,
    /// Worker threads (`threads = 0` resolved to the cores).
    pub threads: usize,
    /// Personal-data policy with its key.
    pub pii: Pii,
    /// Whether the public development key is in use.
    pub development_key: bool,
}

impl Job {
    /// Validates `settings` and derives the run date, the time zone and the PII policy;
    /// `env` reads `OPSLAKE_PII_KEY`.
    pub fn resolve(settings: Settings, env: &dyn Fn(&str) -> Option<String>) -> Result<Job, Error> {
        let bad = |setting: &str, value: String, why: &str| Error::Value {
            setting: setting.to_string(),
            value,
            why: why.to_string(),
        };
        if !(0.0..=1.0).contains(&settings.max_reject_ratio) {
            let value = settings.max_reject_ratio.to_string();
            return Err(bad("max_reject_ratio", value, "must be between 0 and 1"));
        }
        if settings.batch_bytes < 1024 {
            let value = settings.batch_bytes.to_string();
            return Err(bad("batch_bytes", value, "must be at least 1024"));
        }
        if settings.max_record_bytes < 1024 {
            let value = settings.max_record_bytes.to_string();
            return Err(bad("max_record_bytes", value, "must be at least 1024"));
        }
        for name in settings.api.keys() {
            if !crate::source::Api::ALL.iter().any(|a| a.name() == name) {
                return Err(Error::UnknownName {
                    what: "API section",
                    name: format!("[api.{name}]"),
                    known: "appointments, customer_care, logistics".into(),
                });
            }
        }
        let time = TimeParser::from(settings.source_timezone);
        let as_of = match settings.as_of {
            AsOf::Today => chrono::Utc::now().with_timezone(&time.zone()).date_naive(),
            AsOf::Day(d) => d,
        };
        let threads = match settings.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let mut development_key = false;
        let key = match settings.pii {
            PiiMode::Drop => None,
            PiiMode::Hash => Some(match (env("OPSLAKE_PII_KEY"), &settings.pii_key_file) {
                (Some(k), _) if !k.is_empty() => PiiKey::secret(k.into_bytes()),
                (_, Some(path)) => read_key_file(path)?,
                // The public key is for invented data only: `pipeline::check_development_key`
                // refuses it for any other input before a run starts.
                _ => {
                    development_key = true;
                    PiiKey::development()
                }
            }),
        };
        let overrides: HashMap<String, PiiAction> = settings.pii_columns.clone().into_iter().collect();
        let pii = Pii::new(settings.pii, key.as_ref(), overrides).map_err(|why| bad("pii", String::new(), &why))?;
        Ok(Job {
            as_of,
            time,
            threads,
            pii,
            development_key,
            settings,
        })
    }

    /// Whether `table` (of a source whose main table is `main`) is written.
    pub fn writes(&self, table: &str, main: &str) -> bool {
        table == main
            || self
                .settings
                .tables
                .as_ref()
                .is_none_or(|t| t.iter().any(|n| n == table))
    }
}

/// A mounted secret: its bytes without a trailing newline.
fn read_key_file(path: &Path) -> Result<PiiKey, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::PiiKeyFile {
        path: path.to_path_buf(),
        source,
    })?;
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed).to_vec();
    if trimmed.is_empty() {
        return Err(Error::Value {
            setting: "pii_key_file".into(),
            value: path.display().to_string(),
            why: "the file is empty".into(),
        });
    }
    Ok(PiiKey::secret(trimmed))
}

/// Checks that every name of `list` (a `setting`) is one of `known`.
pub fn check_names(what: &'static str, list: Option<&[String]>, known: &[&str]) -> Result<(), Error> {
    let known_set: BTreeSet<&str> = known.iter().copied().collect();
    match list.into_iter().flatten().find(|n| !known_set.contains(n.as_str())) {
        Some(name) => Err(Error::UnknownName {
            what,
            name: name.clone(),
            known: known.join(", "),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use clap::Parser;

    use super::*;

    /// A job from a job file's text, with no flag given (for other modules' tests).
    pub(crate) fn job_from_toml(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Job, Error> {
        resolve(text, &[], env)
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: JobArgs,
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// Parses `flags` as a command line would, and resolves them over `file` (TOML text).
    fn resolve(file: &str, flags: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Result<Job, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv = vec!["opslake", "--job", path.to_str().unwrap()];
        argv.extend_from_slice(flags);
        let matches = <Cli as clap::CommandFactory>::command().get_matches_from(argv);
        let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        let given = |id: &str| {
            matches.ids().any(|i| i.as_str() == id)
                && matches!(
                    matches.value_source(id),
                    Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
                )
        };
        cli.args.resolve(&given, env)
    }

    #[test]
    fn the_embedded_job_resolves_without_a_key() {
        let args = JobArgs {
            job: None,
            settings: Cli::parse_from(["opslake"]).args.settings,
        };
        let job = args.resolve(&|_| false, &no_env).unwrap();
        assert!(job.development_key);
        assert_eq!(job.settings.output, "./lake");
        assert_eq!(job.settings.input, PathBuf::from("samples"));
        assert_eq!(job.as_of, NaiveDate::from_ymd_opt(2025, 6, 30).unwrap());
    }

    #[test]
    fn unknown_keys_are_refused_naming_them() {
        let err = resolve("inptu = \"x\"\npii = \"drop\"", &[], &no_env).unwrap_err();
        assert!(err.to_string().contains("inptu"), "{err}");
    }

    #[test]
    fn without_a_key_the_development_key_is_named_unless_pii_is_dropped() {
        let other = "input = \"src\"";
        assert!(resolve(other, &[], &no_env).unwrap().development_key);
        assert!(
            !resolve(&format!("{other}\npii = \"drop\""), &[], &no_env)
                .unwrap()
                .development_key
        );
        assert!(!resolve(other, &["--pii", "drop"], &no_env).unwrap().development_key);
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_default() {
        let env = |k: &str| (k == "OPSLAKE_PII_KEY").then(|| "k".to_string());
        let file = "output = \"from-file\"\nas_of = \"2025-01-02\"\nstuck_after_days = 9";
        let job = resolve(file, &["--output", "from-flag"], &env).unwrap();
        assert_eq!(job.settings.output, "from-flag");
        assert_eq!(job.as_of, NaiveDate::from_ymd_opt(2025, 1, 2).unwrap());
        assert_eq!(job.settings.stuck_after_days, 9);
        assert_eq!(job.settings.max_reject_ratio, 0.01);
        assert!(!job.development_key);
        // A flag equal to the default still beats the file.
        let job = resolve(file, &["--stuck-after-days", "7"], &env).unwrap();
        assert_eq!(job.settings.stuck_after_days, 7);
    }

    #[test]
    fn bad_values_name_the_setting_wherever_they_come_from() {
        let err = resolve("as_of = \"yesterday\"\npii = \"drop\"", &[], &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("as_of") && err.contains("yesterday"), "{err}");
        let err = resolve("max_reject_ratio = 2.0\npii = \"drop\"", &[], &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_reject_ratio"), "{err}");
        let err = resolve("shard = \"4/4\"\npii = \"drop\"", &[], &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("shard"), "{err}");
        let err = resolve("source_timezone = \"Mars/Base\"\npii = \"drop\"", &[], &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("source_timezone"), "{err}");
        let err = resolve("pii = \"drop\"\n[api.billing]\n", &[], &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("api.billing"), "{err}");
    }

    #[test]
    fn every_tenant_belongs_to_exactly_one_shard() {
        for n in 1..6 {
            for t in ["masmovil", "yoigo", "pepephone", "lebara", "x"] {
                let owners = (0..n).filter(|i| Shard { index: *i, count: n }.owns(Some(t))).count();
                assert_eq!(owners, 1, "{t} in {n}");
            }
            assert_eq!((0..n).filter(|i| Shard { index: *i, count: n }.owns(None)).count(), 1);
        }
    }

    #[test]
    fn bad_shards_are_refused() {
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
    }
}
