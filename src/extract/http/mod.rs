//! Extraction from the three APIs into raw files (DESIGN.md 2.2).
//!
//! ```text
//!  wave 1: page-number, next-link and single-call sources ──▶ {raw root}/{source}/{tenant}/
//!  wave 2: per-id sources, ids read from wave 1's raw files (work orders, customers)
//!  wave 3: per-id sources of wave 2 (time slots of the appointments found) ...
//! ```
//! Each source is fetched for every tenant of its API (that the run's shard owns), through the
//! API's [`client::ApiClient`] (bounded concurrency, rate limit, retries). Responses go to raw
//! files as they arrive, so memory does not grow with the data, and the normalizer then reads
//! the raw folder like an export folder. A source that fails after its retries fails the
//! extraction: nothing of the run is published.

pub mod auth;
pub mod client;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde::Serialize;

use crate::extract::raw::{self, RawWriter};
use crate::extract::shape;
use crate::job::{Job, Shard};
use crate::publish::layout;
use crate::source::{self, Api, Method as SourceMethod, Paging, Source};
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
    /// Path overrides by source.
    pub paths: BTreeMap<String, String>,
    /// Extra ids for the per-id sources of this API (customers not seen in memos...).
    pub ids: Vec<String>,
}

/// The job's APIs, resolved: base URLs from `OPSLAKE_{API}_URL` (read through `env`) or the
/// section, keys from `OPSLAKE_API_KEY_FILE`, the section's file or its variable.
pub fn resolve_apis(job: &Job, env: &dyn Fn(&str) -> Option<String>) -> Result<BTreeMap<Api, ApiSpec>, Error> {
    let default_tenants = job.settings.tenants.clone().unwrap_or_default();
    let mut apis = BTreeMap::new();
    for api in Api::ALL {
        let Some(c) = job.settings.api.get(api.name()) else {
            continue;
        };
        let bad_base = |url: String, why: String| Error::BadBaseUrl {
            api: api.name().into(),
            url,
            why,
            env: api.url_env().into(),
        };
        let Some(base) = env(api.url_env()).filter(|u| !u.is_empty()).or(c.base_url.clone()) else {
            return Err(bad_base(String::new(), "no base URL".into()));
        };
        let base = url::Url::parse(&base).map_err(|e| bad_base(base.clone(), e.to_string()))?;
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
                },
                tenants,
                page_size: c.page_size.max(1),
                paths: c.paths.clone(),
                ids: c.ids.clone(),
            },
        );
    }
    Ok(apis)
}

/// What was extracted from one source.
#[derive(Debug, Default, Serialize, serde::Deserialize, Clone, PartialEq)]
pub struct SourceFetch {
    /// The source.
    pub source: String,
    /// The API.
    pub api: String,
    /// Tenants fetched.
    pub tenants: Vec<String>,
    /// Responses kept (pages, per-id answers).
    pub responses: u64,
    /// Per-id calls answered 404 ("none").
    pub not_found: u64,
    /// Ids of per-id calls left out because they cannot go into a URL path.
    pub unsafe_ids: u64,
}

/// What the extraction did.
#[derive(Debug, Default, Serialize, serde::Deserialize, Clone, PartialEq)]
pub struct ExtractReport {
    /// Per source, in the order they finished.
    pub sources: Vec<SourceFetch>,
    /// Per API: requests, retries by cause, bytes.
    pub apis: BTreeMap<String, ClientStats>,
}

/// Where the extraction writes, and for which shard.
pub struct Target<'a> {
    /// The raw root (`.../raw`).
    pub raw_root: &'a Path,
    /// The run date.
    pub run_date: NaiveDate,
    /// The run's shard of the tenants.
    pub shard: Option<Shard>,
    /// Show progress bars (stderr is a terminal).
    pub progress: bool,
}

/// Everything extraction can fail on.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// An API call failed for good.
    #[error("source {source_name}: {error}")]
    Api {
        /// The source.
        source_name: String,
        /// What failed.
        #[source]
        error: Error,
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
                error,
            })?;
        }
        let c = ApiClient::new(spec.client.clone()).map_err(|error| ExtractError::Api {
            source_name: s.name().into(),
            error,
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
            writer: RawWriter::new(layout::raw_dir(target.raw_root, name, tenant.as_deref())),
            raw_root: target.raw_root,
            bar: bar.as_ref(),
        };
        match endpoint.paging {
            Paging::Single => calls.single().await?,
            Paging::PageNumber => calls.numbered_pages().await?,
            Paging::NextLink { link } => calls.linked_pages(link).await?,
            Paging::PerId(from) => {
                let Some(ids_source) = source::find(registry, from.from) else {
                    return Err(ExtractError::Shape {
                        source_name: name.into(),
                        url: String::new(),
                        why: format!("its ids come from source {}, which is not registered", from.from),
                    });
                };
                let dir = layout::raw_dir(target.raw_root, from.from, tenant.as_deref());
                let mut ids = ids_in(&dir, ids_source.envelopes(), from.pointer)?;
                ids.extend(spec.ids.iter().cloned());
                let (safe, unsafe_ids): (Vec<String>, Vec<String>) = ids
                    .into_iter()
                    .partition(|id| client::check_path_value("id", id).is_ok());
                if let Some(example) = unsafe_ids.first() {
                    tracing::warn!(source = name, count = unsafe_ids.len(), example = %example, "ids left out: they cannot go into a URL path");
                    fetch.unsafe_ids += unsafe_ids.len() as u64;
                }
                fetch.not_found += calls.per_id(safe).await?;
            }
        }
        calls.writer.finish().map_err(|source| ExtractError::Raw {
            path: target.raw_root.to_path_buf(),
            source,
        })?;
        fetch.responses += calls.writer.lines();
        if let Some(t) = tenant {
            fetch.tenants.push(t);
        }
    }
    if let Some(b) = bar {
        b.finish_with_message("done");
    }
    tracing::info!(
        source = name,
        responses = fetch.responses,
        not_found = fetch.not_found,
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
struct TenantCalls<'a> {
    source: &'static dyn Source,
    client: &'a Arc<ApiClient>,
    spec: &'a ApiSpec,
    method: Method,
    /// The source's path with the tenant filled in (`{id}` left for per-id calls).
    path: String,
    writer: RawWriter,
    raw_root: &'a Path,
    bar: Option<&'a indicatif::ProgressBar>,
}

impl TenantCalls<'_> {
    fn api_err(&self, error: Error) -> ExtractError {
        ExtractError::Api {
            source_name: self.source.name().to_string(),
            error,
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

    /// Keeps one answer (for `id`, in per-id calls) as a raw line.
    fn keep(&self, body: &[u8], id: Option<&str>) -> Result<(), ExtractError> {
        self.writer
            .write(&raw::line(self.source.endpoint().raw, body, id))
            .map_err(|source| ExtractError::Raw {
                path: self.raw_root.to_path_buf(),
                source,
            })?;
        if let Some(b) = self.bar {
            b.inc(1);
        }
        Ok(())
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
            self.keep(&body, None)?;
        }
        Ok(())
    }

    /// Page 1, then pages 2 to `total_pages` in parallel.
    async fn numbered_pages(&self) -> Result<(), ExtractError> {
        let page_size = self.spec.page_size;
        let first_url = self.url(&format!("page=1&page_size={page_size}"))?;
        let client::Answer::Json(first) = self.get(&first_url).await? else {
            return Ok(());
        };
        let total = total_pages(&first).map_err(|why| ExtractError::Shape {
            source_name: self.source.name().into(),
            url: first_url.to_string(),
            why,
        })?;
        if let Some(b) = self.bar {
            b.inc_length(total.max(1));
        }
        self.keep(&first, None)?;
        let urls = (2..=total)
            .map(|page| self.url(&format!("page={page}&page_size={page_size}")))
            .collect::<Result<Vec<_>, _>>()?;
        let pages = futures::stream::iter(urls)
            .map(|url| {
                let client = self.client.clone();
                let method = self.method.clone();
                async move { client.call(method, &url, None, false).await }
            })
            .buffer_unordered(self.client.settings().concurrency.max(1));
        futures::pin_mut!(pages);
        while let Some(answer) = pages.try_next().await.map_err(|e| self.api_err(e))? {
            if let client::Answer::Json(body) = answer {
                self.keep(&body, None)?;
            }
        }
        Ok(())
    }

    /// Follows the link at `link` until the last page, an empty page, or a link already
    /// followed.
    async fn linked_pages(&self, link: &str) -> Result<(), ExtractError> {
        let mut url = self.url(&format!("limit={}", self.spec.page_size))?;
        let mut seen = BTreeSet::new();
        loop {
            seen.insert(url.to_string());
            let client::Answer::Json(body) = self.get(&url).await? else {
                return Ok(());
            };
            self.keep(&body, None)?;
            let (next, items) = next_link(&body, link, self.source.envelopes());
            let Some(next) = next.filter(|_| items > 0) else {
                return Ok(());
            };
            let next = self.client.follow(&next).map_err(|e| self.api_err(e))?;
            if seen.contains(next.as_str()) {
                return Ok(());
            }
            url = next;
        }
    }

    /// One call per id; returns how many were answered 404 ("none").
    async fn per_id(&self, ids: Vec<String>) -> Result<u64, ExtractError> {
        if let Some(b) = self.bar {
            b.inc_length(ids.len() as u64);
        }
        let calls = futures::stream::iter(ids)
            .map(|id| {
                let client = self.client.clone();
                let method = self.method.clone();
                let url = self.client.url(&self.path.replace("{id}", &id));
                let body = (method == Method::POST).then(|| serde_json::json!({ "id": id }).to_string());
                async move {
                    let answer = client
                        .call(method, &url?, body.as_deref().map(str::as_bytes), true)
                        .await?;
                    Ok::<_, Error>((id, answer))
                }
            })
            .buffer_unordered(self.client.settings().concurrency.max(1));
        futures::pin_mut!(calls);
        let mut not_found = 0;
        while let Some((id, answer)) = calls.try_next().await.map_err(|e| self.api_err(e))? {
            match answer {
                client::Answer::Json(body) => self.keep(&body, Some(&id))?,
                client::Answer::NotFound => {
                    not_found += 1;
                    if let Some(b) = self.bar {
                        b.inc(1);
                    }
                }
            }
        }
        Ok(not_found)
    }
}

/// `total_pages` of a numbered page (a page without it is the only one).
fn total_pages(body: &[u8]) -> Result<u64, String> {
    #[derive(serde::Deserialize)]
    struct Pagination {
        total_pages: Option<crate::schema::lenient::Int64>,
    }
    let p: Pagination = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(p.total_pages.map_or(1, |t| t.0.max(1) as u64))
}

/// The next page's link (at the JSON pointer `link`) and how many items of `envelopes` the
/// page held; a page that holds none of the envelopes has no items.
fn next_link(body: &[u8], link: &str, envelopes: &[source::Envelope]) -> (Option<String>, usize) {
    let Ok(page) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, 0);
    };
    let next = match page.pointer(link) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    };
    let enveloped = envelopes.iter().any(|e| {
        let pointer: String = e.items.iter().map(|k| format!("/{k}")).collect();
        page.pointer(&pointer).is_some()
    });
    let mut items = 0;
    if enveloped {
        let _ = shape::for_each_item(body, envelopes, &mut |_, _| items += 1);
    }
    (next, items)
}

/// The distinct ids at `pointer` in the items (inside `envelopes`) of the raw files in `dir`.
fn ids_in(dir: &Path, envelopes: &[source::Envelope], pointer: &str) -> Result<BTreeSet<String>, ExtractError> {
    let mut ids = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(ids);
    };
    let io = |source| ExtractError::Raw {
        path: dir.to_path_buf(),
        source,
    };
    for entry in entries {
        let path = entry.map_err(io)?.path();
        if !path.is_file() {
            continue;
        }
        let bytes = zstd::decode_all(std::fs::File::open(&path).map_err(io)?).map_err(io)?;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let _ = shape::for_each_item(line, envelopes, &mut |item, _| {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(item) {
                    match v.pointer(pointer) {
                        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                            ids.insert(s.trim().to_string());
                        }
                        Some(serde_json::Value::Number(n)) => {
                            ids.insert(n.to_string());
                        }
                        _ => {}
                    }
                }
            });
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Job;

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

    #[test]
    fn api_sections_take_urls_and_keys_from_the_environment() {
        let env = |k: &str| match k {
            "OPSLAKE_LOGISTICS_URL" => Some("http://127.0.0.1:9/".to_string()),
            "OPSLAKE_API_KEY" => Some("sekret".to_string()),
            _ => None,
        };
        let apis = resolve_apis(&job(JOB), &env).unwrap();
        let l = &apis[&Api::Logistics];
        assert_eq!(l.client.base.as_str(), "http://127.0.0.1:9/");
        assert_eq!(l.tenants, ["masmovil", "yoigo"]);
        assert_eq!(l.client.concurrency, 4);
        assert_eq!(l.page_size, 200);
        assert_eq!(l.paths["orders"], "/v2/{tenant}/orders");
        assert!(!format!("{:?}", l.client.key).contains("sekret"));
    }

    #[test]
    fn a_missing_key_or_a_bad_tenant_is_a_configuration_error() {
        let err = resolve_apis(&job(JOB), &|_| None).unwrap_err();
        assert!(err.to_string().starts_with("no API key for the logistics API"), "{err}");
        assert!(err.is_config());
        let key = |k: &str| (k == "OPSLAKE_API_KEY").then(|| "k".to_string());
        let bad = JOB.replace("\"yoigo\"", "\"../etc\"");
        let err = resolve_apis(&job(&bad), &key).unwrap_err();
        assert!(err.to_string().contains("../etc"), "{err}");
    }

    #[test]
    fn next_links_are_followed_while_pages_hold_items() {
        let envelopes = [source::Envelope {
            items: &["data", "memos"],
            context: &[],
        }];
        let page = br#"{"data": {"memos": [{"id": 1}, {"id": 2}]}, "next_request": "/memos?page=2"}"#;
        assert_eq!(
            next_link(page, "/next_request", &envelopes),
            (Some("/memos?page=2".into()), 2)
        );
        let empty = br#"{"data": {"memos": []}, "next_request": "/memos?page=3"}"#;
        assert_eq!(next_link(empty, "/next_request", &envelopes).1, 0);
        let last = br#"{"data": {"memos": [{"id": 3}]}, "next_request": ""}"#;
        assert_eq!(next_link(last, "/next_request", &envelopes), (None, 1));
        assert_eq!(next_link(b"{}", "/next_request", &envelopes), (None, 0));
    }
}
