//! Extraction from the three APIs into raw files (DESIGN.md 2.2).
//!
//! ```text
//!  wave 1: page-number, next-link and single-call sources ──▶ raw/{source}/run_date=D/{tenant}/
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
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde::Serialize;

use crate::extract::raw::{self, RawWriter};
use crate::extract::shape;
use crate::publish::layout::Shard;
use crate::sources::{Api, Paging, Source};
pub use client::{ApiClient, ClientSettings, ClientStats, Error};

/// The default path of every source's API resource, in one place: `{tenant}` is the org,
/// `{id}` the id of a per-id call. A job overrides any of them in its API's `paths` table.
/// The seeds give the appointments paths; the others are this project's defaults.
pub const DEFAULT_PATHS: &[(&str, &str, &str)] = &[
    ("appointments", "GET", "/v1/orgs/{tenant}/appointments/{id}"),
    ("time_slots", "POST", "/v1/orgs/{tenant}/appointments/searchTimeSlot"),
    ("memos", "GET", "/v1/orgs/{tenant}/memos"),
    ("typifications", "GET", "/v1/orgs/{tenant}/customers/{id}/typifications"),
    ("customer_devices", "GET", "/v1/orgs/{tenant}/customers/{id}/devices"),
    ("orders", "GET", "/v1/orgs/{tenant}/orders"),
    ("expeditions", "GET", "/v1/orgs/{tenant}/expeditions"),
    ("stock", "GET", "/v1/stock"),
    ("pickups", "GET", "/v1/orgs/{tenant}/pickups"),
    ("external_orders", "GET", "/v1/orgs/{tenant}/external-orders"),
];

/// The method and default path of a source.
pub fn default_path(source: &str) -> Option<(&'static str, &'static str)> {
    DEFAULT_PATHS
        .iter()
        .find(|(s, _, _)| *s == source)
        .map(|(_, m, p)| (*m, *p))
}

impl Api {
    /// Its name in job files (`[api.customer_care]`).
    pub fn name(self) -> &'static str {
        match self {
            Api::Appointments => "appointments",
            Api::CustomerCare => "customer_care",
            Api::Logistics => "logistics",
        }
    }

    /// The variable that sets its base URL.
    pub fn url_env(self) -> &'static str {
        match self {
            Api::Appointments => "OPSLAKE_APPOINTMENTS_URL",
            Api::CustomerCare => "OPSLAKE_CUSTOMER_CARE_URL",
            Api::Logistics => "OPSLAKE_LOGISTICS_URL",
        }
    }

    /// Every API.
    pub const ALL: [Api; 3] = [Api::Appointments, Api::CustomerCare, Api::Logistics];
}

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
pub async fn extract(
    apis: &BTreeMap<Api, ApiSpec>,
    sources: &[&'static dyn Source],
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
            Paging::PerId { ids_from, .. } => done.contains(ids_from) || !selected.contains(ids_from),
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
            fetch_source(*s, client, spec, target, bars.as_ref())
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
    target: &Target<'_>,
    bars: Option<&indicatif::MultiProgress>,
) -> Result<SourceFetch, ExtractError> {
    let name = source.name();
    let endpoint = source.endpoint();
    let (default_method, default_path) = default_path(name).unwrap_or(("GET", ""));
    let path = spec.paths.get(name).map_or(default_path, String::as_str).to_string();
    let method = if default_method == "POST" {
        Method::POST
    } else {
        Method::GET
    };
    let api_err = |error| ExtractError::Api {
        source_name: name.to_string(),
        error,
    };
    let bar = bars.map(|m| {
        let b = m.add(indicatif::ProgressBar::new(0));
        b.set_style(
            indicatif::ProgressStyle::with_template("{prefix:>18} {bar:30} {pos}/{len} {msg} {per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_prefix(name);
        b
    });
    let mut fetch = SourceFetch {
        source: name.to_string(),
        api: endpoint.api.name().to_string(),
        ..Default::default()
    };
    let not_found = AtomicU64::new(0);
    for tenant in tenants_of(&path, spec, target.shard) {
        let writer = RawWriter::new(raw::dir(target.raw_root, name, target.run_date, tenant.as_deref()));
        let fill = |id: Option<&str>| {
            path.replace("{tenant}", tenant.as_deref().unwrap_or(""))
                .replace("{id}", id.unwrap_or(""))
        };
        let keep = |body: &[u8], id: Option<&str>| -> Result<(), ExtractError> {
            writer
                .write(&endpoint.raw.line(body, id))
                .map_err(|source| ExtractError::Raw {
                    path: target.raw_root.to_path_buf(),
                    source,
                })?;
            if let Some(b) = &bar {
                b.inc(1);
            }
            Ok(())
        };
        match endpoint.paging {
            Paging::Single => {
                let url = client.url(&fill(None)).map_err(api_err)?;
                if let client::Answer::Json(body) =
                    client.call(method.clone(), &url, None, false).await.map_err(api_err)?
                {
                    keep(&body, None)?;
                }
            }
            Paging::PageNumber => {
                let page_url = |page: u64| {
                    let sep = if path.contains('?') { '&' } else { '?' };
                    client.url(&format!("{}{sep}page={page}&page_size={}", fill(None), spec.page_size))
                };
                let first_url = page_url(1).map_err(api_err)?;
                let first = client
                    .call(method.clone(), &first_url, None, false)
                    .await
                    .map_err(api_err)?;
                let client::Answer::Json(first) = first else { continue };
                let total = total_pages(&first).map_err(|why| ExtractError::Shape {
                    source_name: name.into(),
                    url: first_url.to_string(),
                    why,
                })?;
                if let Some(b) = &bar {
                    b.inc_length(total.max(1));
                }
                keep(&first, None)?;
                let pages = futures::stream::iter(2..=total)
                    .map(|page| {
                        let client = client.clone();
                        let method = method.clone();
                        let url = page_url(page);
                        async move {
                            let url = url?;
                            client.call(method, &url, None, false).await
                        }
                    })
                    .buffer_unordered(client.settings().concurrency.max(1));
                futures::pin_mut!(pages);
                while let Some(answer) = pages.try_next().await.map_err(api_err)? {
                    if let client::Answer::Json(body) = answer {
                        keep(&body, None)?;
                    }
                }
            }
            Paging::NextLink => {
                let sep = if path.contains('?') { '&' } else { '?' };
                let mut url = client
                    .url(&format!("{}{sep}limit={}", fill(None), spec.page_size))
                    .map_err(api_err)?;
                let mut seen = BTreeSet::new();
                loop {
                    seen.insert(url.to_string());
                    let client::Answer::Json(body) =
                        client.call(method.clone(), &url, None, false).await.map_err(api_err)?
                    else {
                        break;
                    };
                    keep(&body, None)?;
                    let (next, items) = next_link(&body);
                    // Stop at the last page, on an empty page, or on a link already followed.
                    let Some(next) = next.filter(|_| items > 0) else { break };
                    let next = client.follow(&next).map_err(api_err)?;
                    if seen.contains(next.as_str()) {
                        break;
                    }
                    url = next;
                }
            }
            Paging::PerId { ids_from, pointer } => {
                let mut ids = ids_in(target.raw_root, ids_from, target.run_date, tenant.as_deref(), pointer)?;
                ids.extend(spec.ids.iter().cloned());
                let (safe, unsafe_ids): (Vec<String>, Vec<String>) = ids
                    .into_iter()
                    .partition(|id| client::check_path_value("id", id).is_ok());
                if !unsafe_ids.is_empty() {
                    tracing::warn!(source = name, count = unsafe_ids.len(), example = %unsafe_ids[0], "ids left out: they cannot go into a URL path");
                    fetch.unsafe_ids += unsafe_ids.len() as u64;
                }
                if let Some(b) = &bar {
                    b.inc_length(safe.len() as u64);
                }
                let calls = futures::stream::iter(safe)
                    .map(|id| {
                        let client = client.clone();
                        let method = method.clone();
                        let url = client.url(&fill(Some(&id)));
                        let body = (method == Method::POST).then(|| serde_json::json!({ "id": id }).to_string());
                        async move {
                            let url = url?;
                            let answer = client
                                .call(method, &url, body.as_deref().map(str::as_bytes), true)
                                .await?;
                            Ok::<_, Error>((id, answer))
                        }
                    })
                    .buffer_unordered(client.settings().concurrency.max(1));
                futures::pin_mut!(calls);
                while let Some((id, answer)) = calls.try_next().await.map_err(api_err)? {
                    match answer {
                        client::Answer::Json(body) => keep(&body, Some(&id))?,
                        client::Answer::NotFound => {
                            not_found.fetch_add(1, Ordering::Relaxed);
                            if let Some(b) = &bar {
                                b.inc(1);
                            }
                        }
                    }
                }
            }
        }
        writer.finish().map_err(|source| ExtractError::Raw {
            path: target.raw_root.to_path_buf(),
            source,
        })?;
        fetch.responses += writer.lines();
        if let Some(t) = tenant {
            fetch.tenants.push(t);
        }
    }
    fetch.not_found = not_found.load(Ordering::Relaxed);
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

/// `total_pages` of a numbered page (a page without it is the only one).
fn total_pages(body: &[u8]) -> Result<u64, String> {
    #[derive(serde::Deserialize)]
    struct Pagination {
        total_pages: Option<crate::normalize::lenient::Int64>,
    }
    let p: Pagination = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(p.total_pages.map_or(1, |t| t.0.max(1) as u64))
}

/// The `next_request` link of a memos page and how many items the page held.
fn next_link(body: &[u8]) -> (Option<String>, usize) {
    #[derive(serde::Deserialize)]
    struct Page {
        next_request: Option<String>,
        data: Option<Data>,
        memos: Option<Vec<serde::de::IgnoredAny>>,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        memos: Option<Vec<serde::de::IgnoredAny>>,
    }
    match serde_json::from_slice::<Page>(body) {
        Ok(p) => {
            let items = p.data.and_then(|d| d.memos).or(p.memos).map_or(0, |m| m.len());
            (p.next_request.filter(|n| !n.trim().is_empty()), items)
        }
        Err(_) => (None, 0),
    }
}

/// The distinct ids at `pointer` in the items of `source`'s raw files for one tenant.
fn ids_in(
    raw_root: &Path,
    source: &str,
    run_date: NaiveDate,
    tenant: Option<&str>,
    pointer: &str,
) -> Result<BTreeSet<String>, ExtractError> {
    let mut ids = BTreeSet::new();
    let Some(from) = crate::sources::find(source) else {
        return Ok(ids);
    };
    let dir = raw::dir(raw_root, source, run_date, tenant);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(ids);
    };
    let io = |source| ExtractError::Raw {
        path: dir.clone(),
        source,
    };
    for entry in entries {
        let path = entry.map_err(io)?.path();
        if !path.is_file() {
            continue;
        }
        let bytes = zstd::decode_all(std::fs::File::open(&path).map_err(io)?).map_err(io)?;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let _ = shape::for_each_item(line, from.envelopes(), &mut |item, _| {
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
