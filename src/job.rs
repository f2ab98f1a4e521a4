//! Jobs: a TOML file, `OPSLAKE_*` environment variables and flags, resolved into one [`Job`].
//!
//! Precedence: flag, then environment variable, then job file, then default. A job key, its
//! flag and its variable share a name: `max_reject_ratio`, `--max-reject-ratio`,
//! `OPSLAKE_MAX_REJECT_RATIO`. Relative paths are relative to the working directory. Keys
//! never come from the job file or a flag: `OPSLAKE_PII_KEY` or a mounted file.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::normalize::pii::{Pii, PiiAction, PiiKey, PiiMode};
use crate::normalize::rejects::RejectsRaw;
use crate::normalize::time::TimeParser;

/// The embedded default job: `samples/` in, `./lake` out (the same as `jobs/daily.toml`).
pub const EMBEDDED: &str = include_str!("../jobs/daily.toml");

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
        /// Why (with line and column).
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
         or set pii = \"drop\" to publish no personal data at all"
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
    /// An API section is wrong.
    #[error(transparent)]
    Api(#[from] crate::extract::http::Error),
    /// The command needs APIs and the job has none.
    #[error("this command extracts from APIs and the job has no [api.*] section: use --job jobs/api.toml")]
    NoApis,
    /// An unknown API section.
    #[error("unknown API section [api.{name}]: use appointments, customer_care or logistics")]
    UnknownApi {
        /// The name.
        name: String,
    },
    /// An unknown source name.
    #[error("unknown source {name:?}; known sources: {known}")]
    UnknownSource {
        /// The name.
        name: String,
        /// The known ones.
        known: String,
    },
}

/// The job file, as written (every key optional; unknown keys are an error).
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Job name, recorded in manifests.
    pub name: Option<String>,
    /// Folder of export files, one sub-folder per source.
    pub input: Option<String>,
    /// The lake: a path, `file://`, or `memory://` URL.
    pub output: Option<String>,
    /// The run date, `YYYY-MM-DD`, or `today` (in `source_timezone`).
    pub as_of: Option<String>,
    /// IANA zone of timestamps sent without a zone.
    pub source_timezone: Option<String>,
    /// Largest share of rejected records before the run fails (0.01 = 1%).
    pub max_reject_ratio: Option<f64>,
    /// `redact` (default) or `keep`: raw text of rejects that are not valid JSON.
    pub rejects_raw: Option<RejectsRaw>,
    /// Days without a status change before an expedition is stuck.
    pub stuck_after_days: Option<u32>,
    /// Worker threads (0 = all cores).
    pub threads: Option<usize>,
    /// Input bytes per normalize batch.
    pub batch_bytes: Option<usize>,
    /// Local folder for packages when the lake is remote.
    pub work_dir: Option<String>,
    /// Only these sources (default: all).
    pub sources: Option<Vec<String>>,
    /// `hash` (default: identifiers hashed with the key) or `drop` (no personal data, no key).
    pub pii: Option<PiiMode>,
    /// File holding the PII key (a mounted secret).
    pub pii_key_file: Option<String>,
    /// Let the run use the public development key when no key is set (samples only).
    pub allow_development_key: Option<bool>,
    /// Per-column policy: `"table.column"` or `"column"` = `keep` | `hash` | `drop`.
    pub pii_columns: Option<BTreeMap<String, PiiAction>>,
    /// This run's share of the day, `i/n`: the tenants whose stable hash is `i` modulo `n`.
    pub shard: Option<String>,
    /// Orgs every API is extracted for, unless its section names its own.
    pub tenants: Option<Vec<String>>,
    /// Only these tables are written (default: all; a source's main table always is).
    pub tables: Option<Vec<String>>,
    /// Only these reconciliations are published (default: all; what they read is computed).
    pub reconciliations: Option<Vec<String>>,
    /// The APIs (`[api.appointments]`, `[api.customer_care]`, `[api.logistics]`): with any, the
    /// run extracts every source from its API instead of reading export files.
    pub api: Option<BTreeMap<String, ApiConfig>>,
}

/// One API's section of a job file.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Base URL; `OPSLAKE_{API}_URL` overrides it.
    pub base_url: Option<String>,
    /// Orgs to extract (default: the job's `tenants`).
    pub tenants: Option<Vec<String>>,
    /// Variable holding the key (default `OPSLAKE_API_KEY`).
    pub api_key_env: Option<String>,
    /// File holding the key (default `OPSLAKE_API_KEY_FILE`).
    pub api_key_file: Option<String>,
    /// Items per page (default 200).
    pub page_size: Option<u32>,
    /// Requests in flight at most (default 8).
    pub concurrency: Option<usize>,
    /// Requests per second at most (default 50).
    pub requests_per_second: Option<u32>,
    /// Seconds before a request times out (default 30).
    pub timeout_seconds: Option<u64>,
    /// Retries per request after the first attempt (default 5).
    pub retries: Option<u32>,
    /// Path overrides by source (`orders = "/v2/{tenant}/orders"`).
    pub paths: Option<BTreeMap<String, String>>,
    /// Extra ids for this API's per-id sources (customers not seen in memos...).
    pub ids: Option<Vec<String>>,
}

impl JobConfig {
    /// Parses a job file's text.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::Parse {
            path: origin.to_string(),
            why: e.to_string(),
        })
    }

    /// Reads a job file, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&std::path::Path>) -> Result<Self, Error> {
        match path {
            None => Self::parse(EMBEDDED, "the embedded default job"),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| Error::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                Self::parse(&text, &p.display().to_string())
            }
        }
    }
}

/// Settings given on the command line (clap also fills them from `OPSLAKE_*` variables).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--input`.
    pub input: Option<String>,
    /// `--output`.
    pub output: Option<String>,
    /// `--as-of`.
    pub as_of: Option<String>,
    /// `--source-timezone`.
    pub source_timezone: Option<String>,
    /// `--max-reject-ratio`.
    pub max_reject_ratio: Option<f64>,
    /// `--rejects-raw`.
    pub rejects_raw: Option<RejectsRaw>,
    /// `--stuck-after-days`.
    pub stuck_after_days: Option<u32>,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--batch-bytes`.
    pub batch_bytes: Option<usize>,
    /// `--work-dir`.
    pub work_dir: Option<String>,
    /// `--sources`.
    pub sources: Option<Vec<String>>,
    /// `--pii`.
    pub pii: Option<PiiMode>,
    /// `--pii-key-file`.
    pub pii_key_file: Option<String>,
    /// `--shard`.
    pub shard: Option<String>,
    /// `--tables`.
    pub tables: Option<Vec<String>>,
    /// `--reconciliations`.
    pub reconciliations: Option<Vec<String>>,
}

/// A resolved job: everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job name.
    pub name: String,
    /// Export folder root.
    pub input: PathBuf,
    /// Lake URL.
    pub output: String,
    /// Run date.
    pub as_of: NaiveDate,
    /// Timestamp parsing.
    pub time: TimeParser,
    /// Largest allowed reject share.
    pub max_reject_ratio: f64,
    /// Raw text policy for unparseable rejects.
    pub rejects_raw: RejectsRaw,
    /// Days before an in-progress expedition is stuck.
    pub stuck_after_days: u32,
    /// Worker threads.
    pub threads: usize,
    /// Input bytes per batch.
    pub batch_bytes: usize,
    /// Local folder for packages of remote lakes.
    pub work_dir: Option<PathBuf>,
    /// Source names to read.
    pub sources: Vec<String>,
    /// Personal-data policy with its key.
    pub pii: Pii,
    /// Whether the public development key is in use.
    pub development_key: bool,
    /// The share of the day this run reads and publishes.
    pub shard: Option<crate::publish::layout::Shard>,
    /// Tables written (`None`: all).
    pub tables: Option<Vec<String>>,
    /// Reconciliations published (`None`: all).
    pub reconciliations: Option<Vec<String>>,
    /// The APIs to extract from; `None`: the run reads export files.
    pub apis: Option<BTreeMap<crate::sources::Api, crate::extract::http::ApiSpec>>,
}

/// Resolves a job from its file, the environment (`env`) and flags.
pub fn resolve(config: JobConfig, env: &dyn Fn(&str) -> Option<String>, flags: &Overrides) -> Result<Job, Error> {
    let bad = |setting: &str, value: &str, why: String| Error::Value {
        setting: setting.to_string(),
        value: value.to_string(),
        why,
    };
    let source_timezone = flags
        .source_timezone
        .clone()
        .or(config.source_timezone)
        .unwrap_or_else(|| "Europe/Madrid".into());
    let time = TimeParser::new(&source_timezone).map_err(|why| bad("source_timezone", &source_timezone, why))?;

    let as_of_text = flags.as_of.clone().or(config.as_of).unwrap_or_else(|| "today".into());
    let as_of = if as_of_text == "today" {
        chrono::Utc::now().with_timezone(&time.zone()).date_naive()
    } else {
        NaiveDate::parse_from_str(&as_of_text, "%Y-%m-%d")
            .map_err(|_| bad("as_of", &as_of_text, "expected YYYY-MM-DD or \"today\"".into()))?
    };

    let max_reject_ratio = flags.max_reject_ratio.or(config.max_reject_ratio).unwrap_or(0.01);
    if !(0.0..=1.0).contains(&max_reject_ratio) {
        return Err(bad(
            "max_reject_ratio",
            &max_reject_ratio.to_string(),
            "must be between 0 and 1".into(),
        ));
    }
    let threads = match flags.threads.or(config.threads).unwrap_or(0) {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let batch_bytes = flags
        .batch_bytes
        .or(config.batch_bytes)
        .unwrap_or(crate::normalize::DEFAULT_BATCH_BYTES);
    if batch_bytes < 1024 {
        return Err(bad(
            "batch_bytes",
            &batch_bytes.to_string(),
            "must be at least 1024".into(),
        ));
    }

    let known: Vec<&str> = crate::sources::SOURCES.iter().map(|s| s.name()).collect();
    let sources = match flags.sources.clone().or(config.sources) {
        None => known.iter().map(|s| s.to_string()).collect(),
        Some(list) => {
            for name in &list {
                if !known.contains(&name.as_str()) {
                    return Err(Error::UnknownSource {
                        name: name.clone(),
                        known: known.join(", "),
                    });
                }
            }
            list
        }
    };

    let mode = flags.pii.or(config.pii).unwrap_or_default();
    let key_file = flags
        .pii_key_file
        .clone()
        .or_else(|| env("OPSLAKE_PII_KEY_FILE"))
        .or(config.pii_key_file);
    let mut development_key = false;
    let key = match mode {
        PiiMode::Drop => None,
        PiiMode::Hash => Some(match (env("OPSLAKE_PII_KEY"), key_file) {
            (Some(k), _) if !k.is_empty() => PiiKey::secret(k.into_bytes()),
            (_, Some(path)) => {
                let bytes = std::fs::read(&path).map_err(|source| Error::PiiKeyFile {
                    path: PathBuf::from(&path),
                    source,
                })?;
                // A trailing newline in a mounted secret is not part of the key.
                let trimmed = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
                let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed).to_vec();
                if trimmed.is_empty() {
                    return Err(bad("pii_key_file", &path, "the file is empty".into()));
                }
                PiiKey::secret(trimmed)
            }
            _ if config.allow_development_key == Some(true) => {
                development_key = true;
                PiiKey::development()
            }
            _ => return Err(Error::MissingPiiKey),
        }),
    };
    let overrides: HashMap<String, PiiAction> = config.pii_columns.unwrap_or_default().into_iter().collect();
    let pii = Pii::new(mode, key.as_ref(), overrides).map_err(|why| bad("pii", "", why))?;

    let shard = match flags.shard.clone().or(config.shard) {
        None => None,
        Some(text) => Some(crate::publish::layout::Shard::parse(&text).map_err(|why| bad("shard", &text, why))?),
    };

    let tables = flags.tables.clone().or(config.tables);
    if let Some(list) = &tables {
        let known: Vec<&str> = crate::sources::SOURCES
            .iter()
            .flat_map(|s| s.tables().into_iter().map(|t| t.name))
            .collect();
        if let Some(bad) = list.iter().find(|t| !known.contains(&t.as_str())) {
            return Err(bad_name("table", bad, &known));
        }
    }
    let reconciliations = flags.reconciliations.clone().or(config.reconciliations);
    if let Some(list) = &reconciliations {
        let known: Vec<&str> = crate::reconcile::RECONCILIATIONS.iter().map(|r| r.name).collect();
        if let Some(bad) = list.iter().find(|t| !known.contains(&t.as_str())) {
            return Err(bad_name("reconciliation", bad, &known));
        }
    }
    let apis = match &config.api {
        None => None,
        Some(sections) => Some(resolve_apis(
            sections,
            config.tenants.as_deref().unwrap_or_default(),
            env,
        )?),
    };

    Ok(Job {
        shard,
        apis,
        tables,
        reconciliations,
        name: config.name.unwrap_or_else(|| "adhoc".into()),
        input: PathBuf::from(flags.input.clone().or(config.input).unwrap_or_else(|| "samples".into())),
        output: flags
            .output
            .clone()
            .or(config.output)
            .unwrap_or_else(|| "./lake".into()),
        as_of,
        time,
        max_reject_ratio,
        rejects_raw: flags.rejects_raw.or(config.rejects_raw).unwrap_or_default(),
        stuck_after_days: flags.stuck_after_days.or(config.stuck_after_days).unwrap_or(7),
        threads,
        batch_bytes,
        work_dir: flags.work_dir.clone().or(config.work_dir).map(PathBuf::from),
        sources,
        pii,
        development_key,
    })
}

fn bad_name(what: &str, name: &str, known: &[&str]) -> Error {
    Error::Value {
        setting: what.to_string(),
        value: name.to_string(),
        why: format!("not one of {}", known.join(", ")),
    }
}

/// The job's APIs: URLs and keys from the environment first, then the file.
fn resolve_apis(
    sections: &BTreeMap<String, ApiConfig>,
    default_tenants: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<crate::sources::Api, crate::extract::http::ApiSpec>, Error> {
    use crate::extract::http::{ApiSpec, ClientSettings, Error as ApiError, auth::ApiKey};
    use crate::sources::Api;
    for name in sections.keys() {
        if !Api::ALL.iter().any(|a| a.name() == name) {
            return Err(Error::UnknownApi { name: name.clone() });
        }
    }
    let mut apis = BTreeMap::new();
    for api in Api::ALL {
        let Some(c) = sections.get(api.name()) else { continue };
        let Some(base) = env(api.url_env()).filter(|u| !u.is_empty()).or(c.base_url.clone()) else {
            return Err(ApiError::BadBaseUrl {
                api: api.name().into(),
                url: String::new(),
                why: "no base URL".into(),
                env: api.url_env().into(),
            }
            .into());
        };
        let base = url::Url::parse(&base).map_err(|e| ApiError::BadBaseUrl {
            api: api.name().into(),
            url: base.clone(),
            why: e.to_string(),
            env: api.url_env().into(),
        })?;
        let key_env = c.api_key_env.clone().unwrap_or_else(|| "OPSLAKE_API_KEY".into());
        let key_file = env("OPSLAKE_API_KEY_FILE")
            .filter(|f| !f.is_empty())
            .or(c.api_key_file.clone());
        let key = match (key_file, env(&key_env).and_then(|k| ApiKey::new(&k))) {
            (Some(path), _) => ApiKey::from_file(std::path::Path::new(&path))
                .map_err(|e| ApiError::KeyFile {
                    path: path.clone(),
                    why: e.to_string(),
                })?
                .ok_or_else(|| ApiError::KeyFile {
                    path,
                    why: "the file is empty".into(),
                })?,
            (None, Some(k)) => k,
            (None, None) => {
                return Err(ApiError::MissingApiKey {
                    api: api.name().into(),
                    env: key_env,
                }
                .into());
            }
        };
        let tenants = c.tenants.clone().unwrap_or_else(|| default_tenants.to_vec());
        for t in &tenants {
            crate::extract::http::client::check_path_value("tenant", t)?;
        }
        apis.insert(
            api,
            ApiSpec {
                client: ClientSettings {
                    api: api.name().into(),
                    base,
                    key,
                    concurrency: c.concurrency.unwrap_or(8).max(1),
                    requests_per_second: c.requests_per_second.unwrap_or(50).max(1),
                    timeout: std::time::Duration::from_secs(c.timeout_seconds.unwrap_or(30).max(1)),
                    retries: c.retries.unwrap_or(5),
                },
                tenants,
                page_size: c.page_size.unwrap_or(200).max(1),
                paths: c.paths.clone().unwrap_or_default(),
                ids: c.ids.clone().unwrap_or_default(),
            },
        );
    }
    Ok(apis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_embedded_job_parses_and_resolves_without_a_key() {
        let job = resolve(JobConfig::load(None).unwrap(), &no_env, &Overrides::default()).unwrap();
        assert!(job.development_key);
        assert_eq!(job.output, "./lake");
        assert_eq!(job.input, PathBuf::from("samples"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = JobConfig::parse("inptu = \"x\"", "test").unwrap_err();
        assert!(err.to_string().contains("inptu"), "{err}");
    }

    #[test]
    fn without_a_key_the_run_refuses_unless_pii_is_dropped() {
        let cfg = JobConfig::parse("", "test").unwrap();
        assert!(matches!(
            resolve(cfg.clone(), &no_env, &Overrides::default()),
            Err(Error::MissingPiiKey)
        ));
        let drop = JobConfig::parse("pii = \"drop\"", "test").unwrap();
        assert!(resolve(drop, &no_env, &Overrides::default()).is_ok());
    }

    #[test]
    fn flags_beat_environment_beats_file() {
        let cfg = JobConfig::parse("output = \"from-file\"\nas_of = \"2025-01-02\"", "test").unwrap();
        let env = |k: &str| (k == "OPSLAKE_PII_KEY").then(|| "k".to_string());
        let flags = Overrides {
            output: Some("from-flag".into()),
            ..Default::default()
        };
        let job = resolve(cfg, &env, &flags).unwrap();
        assert_eq!(job.output, "from-flag");
        assert_eq!(job.as_of, NaiveDate::from_ymd_opt(2025, 1, 2).unwrap());
        assert!(!job.development_key);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cfg = JobConfig::parse("as_of = \"yesterday\"\npii = \"drop\"", "test").unwrap();
        let err = resolve(cfg, &no_env, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("as_of") && err.contains("yesterday"), "{err}");
        let cfg = JobConfig::parse("sources = [\"ordres\"]\npii = \"drop\"", "test").unwrap();
        let err = resolve(cfg, &no_env, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("ordres") && err.contains("orders"), "{err}");
    }
}

#[cfg(test)]
mod api_tests {
    use super::*;

    const JOB: &str = r#"
pii = "drop"
tenants = ["masmovil", "yoigo"]
[api.logistics]
base_url = "https://logistics.example.com"
concurrency = 4
[api.logistics.paths]
orders = "/v2/{tenant}/orders"
"#;

    #[test]
    fn api_sections_take_urls_and_keys_from_the_environment() {
        let env = |k: &str| match k {
            "OPSLAKE_LOGISTICS_URL" => Some("http://127.0.0.1:9/".to_string()),
            "OPSLAKE_API_KEY" => Some("sekret".to_string()),
            _ => None,
        };
        let job = resolve(JobConfig::parse(JOB, "t").unwrap(), &env, &Overrides::default()).unwrap();
        let apis = job.apis.unwrap();
        let l = &apis[&crate::sources::Api::Logistics];
        assert_eq!(l.client.base.as_str(), "http://127.0.0.1:9/");
        assert_eq!(l.tenants, ["masmovil", "yoigo"]);
        assert_eq!(l.client.concurrency, 4);
        assert_eq!(l.paths["orders"], "/v2/{tenant}/orders");
        assert!(!format!("{:?}", l.client.key).contains("sekret"));
    }

    #[test]
    fn a_missing_key_or_a_bad_tenant_is_a_configuration_error() {
        let no_key = |_: &str| None;
        let err = resolve(JobConfig::parse(JOB, "t").unwrap(), &no_key, &Overrides::default()).unwrap_err();
        assert!(err.to_string().starts_with("no API key for the logistics API"), "{err}");
        let key = |k: &str| (k == "OPSLAKE_API_KEY").then(|| "k".to_string());
        let bad = JOB.replace("\"yoigo\"", "\"../etc\"");
        let err = resolve(JobConfig::parse(&bad, "t").unwrap(), &key, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("../etc"), "{err}");
    }
}
