//! Extraction from the three APIs into raw files (DESIGN.md 2.2).
//!
//! ```text
//!  wave 1: page-number, next-link and single-call sources ──▶ {raw}/{source}/{tenant}/part-N
//!  wave 2: per-id sources, ids read from wave 1's raw files (work orders, customers)
//!  wave 3: per-id sources of wave 2 (time slots of the appointments found) ...
//! ```
//! Each source is fetched for every tenant of its API (that the run's shard owns), through the
//! API's [`client::ApiClient`] (bounded concurrency, rate limit, retries). Responses go to raw
//! files as they arrive, so memory does not grow with the data, and the normalizer then reads
//! the raw folder like an export folder. A source that fails after its retries fails the
//! extraction: nothing of the run is published.
//!
//! Listings are complete or failed ([`paging`]): `total_elements` is checked against the items
//! received, a `total_pages` or `next_request` chain past `max_pages` is refused, and items
//! that moved between pages while paging make the listing be read again.
//!
//! Per-id sources are incremental ([`per_id`]): with the captures of an earlier committed run
//! (its base), only the ids that can have changed are asked; the other answers are copied
//! from the base's captures, each keeping the day it was fetched.

pub mod auth;
pub mod client;
pub mod paging;
pub mod per_id;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::extract::raw::{self, RawWriter, layout};
use crate::job::{IdsFile, Job, Shard};
use crate::source::{Api, Method as SourceMethod, Paging, Source};
use auth::ApiKey;
pub use client::{ApiClient, ClientSettings, ClientStats, Error};

/// One API of a job, resolved.
#[derive(Debug, Clone)]
pub struct ApiSpec {
    /// The client's settings (base, key, limits).
    pub client: ClientSettings,
    /// Orgs to extract.
    pub tenants: Vec<String>,
    /// Items per page.
    pub page_size: u32,
    /// Path overrides by source (plain paths, checked).
    pub paths: BTreeMap<String, String>,
    /// Extra ids for the per-id sources of this API (customers not seen in memos...).
    pub ids: Vec<String>,
    /// A file of more ids.
    pub ids_file: Option<IdsFile>,
    /// A committed table's column of more ids: `(table, column)`.
    pub ids_table: Option<(String, String)>,
    /// Most pages of one listing.
    pub max_pages: u64,
}

/// The job's APIs, resolved: base URLs from `OPSLAKE_{API}_URL` (read through `env`) or the
/// section, keys from `OPSLAKE_API_KEY_FILE`, the section's file or its variable. The key goes
/// only to its origin: base URLs are `https://` (or loopback, or `allow_http`) and path
/// overrides are plain paths of the API's own sources.
pub fn resolve_apis(
    job: &Job,
    registry: &[&dyn Source],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<Api, ApiSpec>, Error> {
    let default_tenants = job.settings.tenants.clone().unwrap_or_default();
    let mut apis = BTreeMap::new();
    for api in Api::ALL {
        let Some(c) = job.settings.api.get(api.name()) else {
            continue;
        };
        let bad_base = |url: String, why: String| Error::BadBaseUrl {
            api: api.name().into(),
            url: client::redact_text(&url),
            why,
            env: api.url_env().into(),
        };
        let Some(base) = env(api.url_env()).filter(|u| !u.is_empty()).or(c.base_url.clone()) else {
            return Err(bad_base(String::new(), "no base URL".into()));
        };
        let base = url::Url::parse(&base).map_err(|e| bad_base(base.clone(), e.to_string()))?;
        client::check_base(api.name(), &base, c.allow_http)?;
        for (source, path) in &c.paths {
            if !registry.iter().any(|s| s.name() == source && s.endpoint().api == api) {
                return Err(Error::BadPath {
                    api: api.name().into(),
                    source_name: source.clone(),
                    path: client::redact_text(path),
                    why: "is not for a source of this API".into(),
                });
            }
            client::check_path(api.name(), source, path)?;
        }
        let ids_table = match &c.ids_table {
            None => None,
            Some(t) => match t.split_once('.') {
                Some((table, column)) if !table.is_empty() && !column.is_empty() => {
                    Some((table.to_string(), column.to_string()))
                }
                _ => {
                    return Err(Error::BadIds {
                        api: api.name().into(),
                        why: format!("ids_table {t:?} is not table.column"),
                    });
                }
            },
        };
        let key_file = env("OPSLAKE_API_KEY_FILE")
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .or(c.api_key_file.clone());
        let key = match (key_file, env(&c.api_key_env).and_then(|k| ApiKey::new(&k))) {
            (Some(path), _) => ApiKey::from_file(&path)
                .map_err(|e| Error::KeyFile {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })?
                .ok_or_else(|| Error::KeyFile {
                    path: path.display().to_string(),
                    why: "the file is empty".into(),
                })?,
            (None, Some(k)) => k,
            (None, None) => {
                return Err(Error::MissingApiKey {
                    api: api.name().into(),
                    env: c.api_key_env.clone(),
                });
            }
        };
        let tenants = c.tenants.clone().unwrap_or_else(|| default_tenants.clone());
        for t in &tenants {
            client::check_path_value("tenant", t)?;
        }
        apis.insert(
            api,
            ApiSpec {
                client: ClientSettings {
                    api: api.name().into(),
                    base,
                    key,
                    concurrency: c.concurrency.max(1),
                    requests_per_second: c.requests_per_second.max(1),
                    timeout: std::time::Duration::from_secs(c.timeout_seconds.max(1)),
                    retries: c.retries,
                    max_body_bytes: c.max_body_bytes.max(1024),
                },
                tenants,
                page_size: c.page_size.max(1),
                paths: c.paths.clone(),
                ids: c.ids.clone(),
                ids_file: c.ids_file.clone(),
                ids_table,
                max_pages: c.max_pages.max(1),
            },
        );
    }
    Ok(apis)
}

/// Where an id of a per-id source came from, besides the items of its id source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdOrigin {
    /// The job's `ids` list.
    List,
    /// The job's `ids_file`.
    File,
    /// The job's `ids_table`.
    Table,
    /// Known from an earlier committed day.
    Known,
}

/// One id that no item of the run names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraId {
    /// The id.
    pub id: String,
    /// Its tenant (`None`: asked in every tenant of the API).
    pub tenant: Option<String>,
    /// Where it came from.
    pub origin: IdOrigin,
}

/// Ids for per-id sources that no item of the run names, by source.
#[derive(Debug, Clone, Default)]
pub struct ExtraIds {
    /// Source name → ids.
    pub by_source: BTreeMap<String, Vec<ExtraId>>,
}

/// How many ids a per-id source had, by where they came from.
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
pub struct IdCounts {
    /// Named by the items of its id source.
    pub from_items: u64,
    /// Only in the job's `ids` list.
    pub list: u64,
    /// Only in the job's `ids_file`.
    pub file: u64,
    /// Only in the job's `ids_table`.
    pub table: u64,
    /// Only known from an earlier committed day.
    pub known: u64,
}

/// What was extracted from one source.
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
pub struct SourceFetch {
    /// The source.
    pub source: String,
    /// The API.
    pub api: String,
    /// Tenants fetched.
    pub tenants: Vec<String>,
    /// Responses kept (pages, per-id answers fetched or carried forward).
    pub responses: u64,
    /// Per-id calls answered 404 ("none").
    pub not_found: u64,
    /// Ids of per-id calls left out because they cannot go into a URL path.
    pub unsafe_ids: u64,
    /// Items received (listings).
    #[serde(default)]
    pub items: u64,
    /// Items the listing announced (`total_elements`), where it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_elements: Option<u64>,
    /// Listings read again because items moved between pages while paging.
    #[serde(default)]
    pub rereads: u64,
    /// Per-id: the ids, by origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<IdCounts>,
    /// Per-id calls made tonight.
    #[serde(default)]
    pub called: u64,
    /// Per-id answers carried forward from the base run's captures.
    #[serde(default)]
    pub carried: u64,
    /// Ids asked because they are new since the base run.
    #[serde(default)]
    pub asked_new: u64,
    /// Ids asked because the items that name them changed since the base run.
    #[serde(default)]
    pub asked_changed: u64,
    /// Ids asked because their answer was not in a final state.
    #[serde(default)]
    pub asked_unsettled: u64,
    /// Per-id calls the API refused (a 4xx other than 401, 403, 404 and 429).
    #[serde(default)]
    pub failed: u64,
    /// The first refused calls, each naming its id and the API's reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// The run whose captures a night carried forward.
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
pub struct BaseRun {
    /// Its id.
    pub run_id: String,
    /// Its day.
    pub run_date: Option<NaiveDate>,
}

/// Where a run's raw captures are kept.
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
pub struct RawCapture {
    /// The `raw_output` URL (without password).
    pub url: String,
    /// The captures' prefix in it.
    pub prefix: String,
    /// Files.
    pub files: u64,
    /// Bytes (compressed).
    pub bytes: u64,
}

/// What the extraction did.
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
pub struct ExtractReport {
    /// Per source, in the order they finished.
    pub sources: Vec<SourceFetch>,
    /// Per API: requests, retries by cause, bytes.
    pub apis: BTreeMap<String, ClientStats>,
    /// `full` (every per-id call asked) or `incremental` (only what can have changed).
    #[serde(default)]
    pub refresh: String,
    /// Why the night was a full pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_refresh_reason: Option<String>,
    /// The committed run whose captures were carried forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseRun>,
    /// The last night that asked every per-id call (this one, on a full pull).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_refresh: Option<NaiveDate>,
    /// Where this run's raw captures are kept (none: not kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawCapture>,
    /// Journey devices with no fee record (`customer_devices`) after this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey_devices_without_fees: Option<u64>,
    /// Things worth a look that did not fail the extraction (refused calls...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl ExtractReport {
    /// Per-id calls made tonight, all sources.
    pub fn per_id_calls(&self) -> u64 {
        self.sources.iter().map(|s| s.called).sum()
    }
}

/// Where the extraction writes, what it may carry forward, and for which shard.
pub struct Target<'a> {
    /// The local folder of the run's captures.
    pub raw_root: &'a Path,
    /// The run date (the day answers are marked as fetched on).
    pub run_date: NaiveDate,
    /// The run's shard of the tenants.
    pub shard: Option<Shard>,
    /// Show progress bars (stderr is a terminal).
    pub progress: bool,
    /// The base run's captures, downloaded (`None`: no base, every id is asked).
    pub base: Option<&'a Path>,
    /// Ask every per-id call even with a base (a full refresh); the base still names the
    /// customers known from earlier days.
    pub full: bool,
    /// Ids no item names, by source.
    pub extra: &'a ExtraIds,
    /// Largest share of a per-id source's calls the API may refuse before the run fails.
    pub max_failed_ratio: f64,
}

/// Everything extraction can fail on.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// An API call failed for good.
    #[error("source {source_name}: {error}")]
    Api {
        /// The source.
        source_name: String,
        /// What failed (boxed: the error type is large and failures are rare).
        #[source]
        error: Box<Error>,
    },
    /// A raw file could not be written or read.
    #[error("cannot write or read raw responses under {path}: {source}")]
    Raw {
        /// Where.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A page could not be understood (not the paged envelope the paging promises).
    #[error("source {source_name}: {url} is not a page of the expected shape: {why}")]
    Shape {
        /// The source.
        source_name: String,
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// A listing could not be read whole.
    #[error("source {source_name} (tenant {tenant}): incomplete listing: {why}; nothing was published")]
    Incomplete {
        /// The source.
        source_name: String,
        /// The tenant (`-` when none).
        tenant: String,
        /// Why.
        why: String,
    },
    /// The API refused more per-id calls than the job allows.
    #[error(
        "source {source_name}: the API refused {failed} of {called} calls (more than max_reject_ratio), \
         first: {first}; nothing was published"
    )]
    Refused {
        /// The source.
        source_name: String,
        /// Calls refused.
        failed: u64,
        /// Calls made.
        called: u64,
        /// The first refusal, naming its id.
        first: String,
    },
    /// The job names an API that a selected source needs but no base URL is set.
    #[error("source {source_name} needs the {api} API: set {env} or [api.{api}] base_url in the job file")]
    NoApi {
        /// The source.
        source_name: String,
        /// The API.
        api: String,
        /// The variable.
        env: String,
    },
}

impl ExtractError {
    /// Whether the configuration is at fault (exit code 2).
    pub fn is_config(&self) -> bool {
        match self {
            ExtractError::Api { error, .. } => error.is_config(),
            ExtractError::NoApi { .. } => true,
            _ => false,
        }
    }
}

/// Pulls every source from its API into raw files under `target.raw_root`.
/// `registry` holds every source, so that a per-id source can read its ids from the raw files
/// of a source the run does not extract itself.
pub async fn extract(
    apis: &BTreeMap<Api, ApiSpec>,
    sources: &[&'static dyn Source],
    registry: &[&'static dyn Source],
    target: &Target<'_>,
) -> Result<ExtractReport, ExtractError> {
    let mut clients: HashMap<Api, Arc<ApiClient>> = HashMap::new();
    for s in sources {
        let api = s.endpoint().api;
        if clients.contains_key(&api) {
            continue;
        }
        let spec = apis.get(&api).ok_or_else(|| ExtractError::NoApi {
            source_name: s.name().into(),
            api: api.name().into(),
            env: api.url_env().into(),
        })?;
        for t in &spec.tenants {
            client::check_path_value("tenant", t).map_err(|error| ExtractError::Api {
                source_name: s.name().into(),
                error: Box::new(error),
            })?;
        }
        let c = ApiClient::new(spec.client.clone()).map_err(|error| ExtractError::Api {
            source_name: s.name().into(),
            error: Box::new(error),
        })?;
        clients.insert(api, Arc::new(c));
    }
    let bars = target.progress.then(indicatif::MultiProgress::new);
    let mut report = ExtractReport::default();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let selected: BTreeSet<&str> = sources.iter().map(|s| s.name()).collect();
    let mut pending: Vec<&'static dyn Source> = sources.to_vec();
    while !pending.is_empty() {
        // A wave: every source whose ids (if any) come from a source already extracted.
        let (ready, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|s| match s.endpoint().paging {
            Paging::PerId(ids) => done.contains(ids.from) || !selected.contains(ids.from),
            _ => true,
        });
        if ready.is_empty() {
            break;
        }
        pending = later;
        let wave = ready.iter().map(|s| {
            let api = s.endpoint().api;
            let client = clients[&api].clone();
            let spec = &apis[&api];
            fetch_source(*s, client, spec, registry, target, bars.as_ref())
        });
        for fetched in futures::future::try_join_all(wave).await? {
            done.insert(
                sources
                    .iter()
                    .find(|s| s.name() == fetched.source)
                    .map_or("", |s| s.name()),
            );
            if fetched.failed > 0 {
                report.warnings.push(format!(
                    "{}: the API refused {} of {} calls (kept yesterday's answer where there was one), first: {}",
                    fetched.source,
                    fetched.failed,
                    fetched.called,
                    fetched.failures.first().map_or("", String::as_str)
                ));
            }
            report.sources.push(fetched);
        }
    }
    for (api, c) in &clients {
        report.apis.insert(api.name().to_string(), c.stats());
    }
    Ok(report)
}

/// The tenants a source is fetched for: every tenant of its API that the shard owns, or one
/// tenant-less call when its path has no `{tenant}`.
fn tenants_of(path: &str, spec: &ApiSpec, shard: Option<Shard>) -> Vec<Option<String>> {
    if !path.contains("{tenant}") {
        return if shard.is_none_or(|s| s.owns(None)) {
            vec![None]
        } else {
            Vec::new()
        };
    }
    spec.tenants
        .iter()
        .filter(|t| shard.is_none_or(|s| s.owns(Some(t))))
        .map(|t| Some(t.clone()))
        .collect()
}

async fn fetch_source(
    source: &'static dyn Source,
    client: Arc<ApiClient>,
    spec: &ApiSpec,
    registry: &[&'static dyn Source],
    target: &Target<'_>,
    bars: Option<&indicatif::MultiProgress>,
) -> Result<SourceFetch, ExtractError> {
    let name = source.name();
    let endpoint = source.endpoint();
    let path = spec.paths.get(name).map_or(endpoint.path, String::as_str);
    let bar = bars.map(|m| progress_bar(m, name));
    let mut fetch = SourceFetch {
        source: name.to_string(),
        api: endpoint.api.name().to_string(),
        ..Default::default()
    };
    for tenant in tenants_of(path, spec, target.shard) {
        let calls = TenantCalls {
            source,
            client: &client,
            spec,
            method: match endpoint.method {
                SourceMethod::Get => Method::GET,
                SourceMethod::Post => Method::POST,
            },
            path: path.replace("{tenant}", tenant.as_deref().unwrap_or("")),
            writer: RawWriter::new(layout::dir(target.raw_root, name, tenant.as_deref())),
            tenant: tenant.clone(),
            run_date: target.run_date,
            bar: bar.as_ref(),
        };
        match endpoint.paging {
            Paging::Single => calls.single().await?,
            Paging::PageNumber => paging::numbered(&calls, &mut fetch).await?,
            Paging::NextLink { link } => paging::linked(&calls, link, &mut fetch).await?,
            Paging::PerId(ids) => per_id::fetch(&calls, ids, registry, target, &mut fetch).await?,
        }
        calls.writer.finish().map_err(|e| calls.raw_err(e))?;
        fetch.responses += calls.writer.lines();
        if let Some(t) = tenant {
            fetch.tenants.push(t);
        }
    }
    if let Some(b) = bar {
        b.finish_with_message("done");
    }
    per_id::check_refusals(&fetch, target.max_failed_ratio)?;
    tracing::info!(
        source = name,
        responses = fetch.responses,
        not_found = fetch.not_found,
        called = fetch.called,
        carried = fetch.carried,
        "extracted"
    );
    Ok(fetch)
}

fn progress_bar(bars: &indicatif::MultiProgress, name: &str) -> indicatif::ProgressBar {
    let b = bars.add(indicatif::ProgressBar::new(0));
    b.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>18} {bar:30} {pos}/{len} {msg} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b.set_prefix(name.to_string());
    b
}

/// The calls of one source for one tenant, and the raw files their answers go to.
pub struct TenantCalls<'a> {
    source: &'static dyn Source,
    client: &'a Arc<ApiClient>,
    spec: &'a ApiSpec,
    method: Method,
    /// The source's path with the tenant filled in (`{id}` left for per-id calls).
    path: String,
    writer: RawWriter,
    tenant: Option<String>,
    run_date: NaiveDate,
    bar: Option<&'a indicatif::ProgressBar>,
}

impl TenantCalls<'_> {
    fn api_err(&self, error: Error) -> ExtractError {
        ExtractError::Api {
            source_name: self.source.name().to_string(),
            error: Box::new(error),
        }
    }

    fn raw_err(&self, source: std::io::Error) -> ExtractError {
        ExtractError::Raw {
            path: self.writer.dir().to_path_buf(),
            source,
        }
    }

    fn incomplete(&self, why: String) -> ExtractError {
        ExtractError::Incomplete {
            source_name: self.source.name().to_string(),
            tenant: self.tenant.clone().unwrap_or_else(|| "-".into()),
            why,
        }
    }

    /// The URL of the source's path with `query` appended.
    fn url(&self, query: &str) -> Result<url::Url, ExtractError> {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        let path = match query {
            "" => self.path.clone(),
            q => format!("{}{sep}{q}", self.path),
        };
        self.client.url(&path).map_err(|e| self.api_err(e))
    }

    /// Keeps one answer (for `id`, in per-id calls; `None` is a 404) as a raw line.
    fn keep(&self, body: Option<&[u8]>, id: Option<&str>) -> Result<(), ExtractError> {
        self.writer
            .write(&raw::line(self.source.endpoint().raw, body, id, self.run_date))
            .map_err(|e| self.raw_err(e))?;
        self.tick();
        Ok(())
    }

    fn tick(&self) {
        if let Some(b) = self.bar {
            b.inc(1);
        }
    }

    async fn get(&self, url: &url::Url) -> Result<client::Answer, ExtractError> {
        self.client
            .call(self.method.clone(), url, None, false)
            .await
            .map_err(|e| self.api_err(e))
    }

    /// One call returns everything.
    async fn single(&self) -> Result<(), ExtractError> {
        if let client::Answer::Json(body) = self.get(&self.url("")?).await? {
            self.keep(Some(&body), None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Job;
    use crate::sources::SOURCES;

    const JOB: &str = r#"
pii = "drop"
tenants = ["masmovil", "yoigo"]
[api.logistics]
base_url = "https://logistics.example.com"
concurrency = 4
[api.logistics.paths]
orders = "/v2/{tenant}/orders"
"#;

    fn job(text: &str) -> Job {
        crate::job::tests::job_from_toml(text, &|_| None).unwrap()
    }

    fn key(k: &str) -> Option<String> {
        (k == "OPSLAKE_API_KEY").then(|| "k".to_string())
    }

    #[test]
    fn api_sections_take_urls_and_keys_from_the_environment() {
        let env = |k: &str| match k {
            "OPSLAKE_LOGISTICS_URL" => Some("http://127.0.0.1:9/".to_string()),
            "OPSLAKE_API_KEY" => Some("sekret".to_string()),
            _ => None,
        };
        let apis = resolve_apis(&job(JOB), SOURCES, &env).unwrap();
        let l = &apis[&Api::Logistics];
        assert_eq!(l.client.base.as_str(), "http://127.0.0.1:9/");
        assert_eq!(l.tenants, ["masmovil", "yoigo"]);
        assert_eq!(l.client.concurrency, 4);
        assert_eq!(l.page_size, 200);
        assert_eq!(l.max_pages, 100_000);
        assert_eq!(l.client.max_body_bytes, 64 * 1024 * 1024);
        assert_eq!(l.paths["orders"], "/v2/{tenant}/orders");
        assert!(!format!("{:?}", l.client.key).contains("sekret"));
    }

    #[test]
    fn a_missing_key_or_a_bad_tenant_is_a_configuration_error() {
        let err = resolve_apis(&job(JOB), SOURCES, &|_| None).unwrap_err();
        assert!(err.to_string().starts_with("no API key for the logistics API"), "{err}");
        assert!(err.is_config());
        let bad = JOB.replace("\"yoigo\"", "\"../etc\"");
        let err = resolve_apis(&job(&bad), SOURCES, &key).unwrap_err();
        assert!(err.to_string().contains("../etc"), "{err}");
    }

    #[test]
    fn the_key_goes_only_to_its_origin() {
        for (bad, says) in [
            (r#"orders = "//evil.example.com/v1/orders""#, "'//'"),
            (r#"orders = "https://evil.example.com/v1/orders""#, "scheme"),
            (r#"orders = "/v1/x@evil.example.com""#, "'@'"),
            (r#"memos = "/v1/memos""#, "not for a source of this API"),
        ] {
            let text = JOB.replace(r#"orders = "/v2/{tenant}/orders""#, bad);
            let err = resolve_apis(&job(&text), SOURCES, &key).unwrap_err();
            assert!(err.is_config() && err.to_string().contains(says), "{bad}: {err}");
        }
        let http = JOB.replace("https://logistics.example.com", "http://logistics.example.com");
        let err = resolve_apis(&job(&http), SOURCES, &key).unwrap_err();
        assert!(err.is_config() && err.to_string().contains("allow_http"), "{err}");
        let allowed = http.replace("concurrency = 4", "concurrency = 4\nallow_http = true");
        assert!(resolve_apis(&job(&allowed), SOURCES, &key).is_ok());
        let password = JOB.replace("https://logistics", "https://opslake:hunter2@logistics");
        let env = |k: &str| match k {
            "OPSLAKE_LOGISTICS_URL" => Some("https://opslake:hunter2@bad host/".to_string()),
            other => key(other),
        };
        let err = resolve_apis(&job(&password), SOURCES, &env).unwrap_err().to_string();
        assert!(!err.contains("hunter2") && err.contains("***@"), "{err}");
    }
}
