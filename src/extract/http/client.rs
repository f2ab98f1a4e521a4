//! One API's client: timeout, bounded concurrency, a rate limit, and retries with jittered
//! exponential backoff — the only place retry decisions are made.
//!
//! Retried: connect errors, timeouts, 429 and 5xx (waiting at least `Retry-After`), and a
//! body that is cut short or not valid JSON. Not retried: any other 4xx (401 and 403 name the
//! key as the likely cause) and a body larger than `max_body_bytes` (read as it streams, never
//! whole). A per-id 404 is an answer ("none"), not a failure.
//!
//! The key goes only to its origin: the base URL is `https://`, or `http://` to a loopback
//! host or where the job says `allow_http`; path overrides are plain paths; no redirect is
//! followed; a `next_request` link to another origin is refused. URLs are shown without their
//! password ([`redact`]).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use tokio::sync::Semaphore;
use url::Url;

use super::auth::ApiKey;

/// Failures of an API that stop its source (and the run).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No key was configured.
    #[error("no API key for the {api} API: set {env} or OPSLAKE_API_KEY_FILE (api_key_file in the job file)")]
    MissingApiKey {
        /// The API.
        api: String,
        /// The variable looked at.
        env: String,
    },
    /// The key file could not be read.
    #[error("cannot read the API key file {path}: {why}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The base URL is not usable.
    #[error("bad base URL {url:?} for the {api} API: {why}; set base_url or {env}")]
    BadBaseUrl {
        /// The API.
        api: String,
        /// The URL.
        url: String,
        /// Why.
        why: String,
        /// The variable that sets it.
        env: String,
    },
    /// A tenant or id cannot go into a URL path.
    #[error(
        "refusing {what} {value:?} in a URL path: only letters, digits, '_', '-' and '.' are allowed (no '/' or '..')"
    )]
    UnsafePathValue {
        /// `tenant` or `id`.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// The API refused the key.
    #[error(
        "the {api} API refused the API key (HTTP {status}) at {url}: check OPSLAKE_API_KEY_FILE or OPSLAKE_API_KEY"
    )]
    Unauthorized {
        /// The API.
        api: String,
        /// The status.
        status: u16,
        /// The URL.
        url: String,
    },
    /// A non-retryable answer.
    #[error("the {api} API answered HTTP {status} at {url}: {body}")]
    Status {
        /// The API.
        api: String,
        /// The status.
        status: u16,
        /// The URL.
        url: String,
        /// The start of the body (key removed).
        body: String,
    },
    /// Retries ran out.
    #[error(
        "the {api} API is unreachable: {url} failed {attempts} times, last: {last}; nothing was published, \
         the previous run stays visible"
    )]
    Exhausted {
        /// The API.
        api: String,
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A response body is larger than the cap.
    #[error(
        "the {api} API sent more than {limit} bytes at {url}: the body was not read further; \
         raise max_body_bytes in [api.{api}] or lower page_size"
    )]
    BodyTooLarge {
        /// The API.
        api: String,
        /// The URL.
        url: String,
        /// The cap.
        limit: u64,
    },
    /// A base URL would send the key in clear text.
    #[error(
        "refusing plain http:// to {host} for the {api} API: the key would travel in clear text; \
         use https://, or set allow_http = true in [api.{api}] for a trusted network"
    )]
    PlainHttp {
        /// The API.
        api: String,
        /// The host.
        host: String,
    },
    /// A path override is not a plain path (it could send the key elsewhere).
    #[error(
        "bad path for {source_name} in [api.{api}.paths]: {path:?} {why}; a path starts with one '/' \
         and names no host, user or scheme"
    )]
    BadPath {
        /// The API.
        api: String,
        /// The source.
        source_name: String,
        /// The path.
        path: String,
        /// Why.
        why: String,
    },
    /// An id source of the job is not usable.
    #[error("bad id source in [api.{api}]: {why}")]
    BadIds {
        /// The API.
        api: String,
        /// Why.
        why: String,
    },
    /// A `next_request` link points elsewhere than the API.
    #[error("refusing to follow next_request to {link}: it is not on {base}, and the API key must not leave its API")]
    ForeignLink {
        /// The link.
        link: String,
        /// The configured base.
        base: String,
    },
}

impl Error {
    /// Whether the operator's configuration is at fault (exit code 2) rather than the API.
    pub fn is_config(&self) -> bool {
        // A refused key is the operator's to fix, like a missing one.
        matches!(
            self,
            Error::MissingApiKey { .. }
                | Error::KeyFile { .. }
                | Error::BadBaseUrl { .. }
                | Error::UnsafePathValue { .. }
                | Error::Unauthorized { .. }
                | Error::PlainHttp { .. }
                | Error::BadPath { .. }
                | Error::BadIds { .. }
        )
    }
}

/// A value allowed into a URL path segment (tenants, ids).
pub fn check_path_value(what: &'static str, value: &str) -> Result<(), Error> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.contains("..")
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::UnsafePathValue {
            what,
            value: value.chars().take(80).collect(),
        })
    }
}

/// A URL as it may be shown: without user name or password.
pub fn redact(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let text = shown.to_string();
    // Say that something was removed, where it was.
    text.replacen("://", "://***@", 1)
}

/// A text that may be a URL, as it may be shown: whatever sits between `://` and an `@`
/// before the path is removed, even when the text does not parse as a URL.
pub fn redact_text(text: &str) -> String {
    if let Ok(u) = Url::parse(text) {
        return redact(&u);
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => text.to_string(),
    }
}

/// Checks that a base URL keeps the key safe: `https://`, or `http://` to a loopback host
/// (127.0.0.0/8, ::1, localhost) or with `allow_http`.
pub fn check_base(api: &str, base: &Url, allow_http: bool) -> Result<(), Error> {
    match base.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match base.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if loopback || allow_http {
                Ok(())
            } else {
                Err(Error::PlainHttp {
                    api: api.to_string(),
                    host: base.host_str().unwrap_or_default().to_string(),
                })
            }
        }
        other => Err(Error::BadBaseUrl {
            api: api.to_string(),
            url: redact(base),
            why: format!("{other}:// is not http:// or https://"),
            env: String::new(),
        }),
    }
}

/// Checks that a path override is a plain path below the base: one leading `/`, no `//`, no
/// `@`, no scheme, no `..` segment, no backslash, space or control character.
pub fn check_path(api: &str, source: &str, path: &str) -> Result<(), Error> {
    let why = if !path.starts_with('/') {
        Some("does not start with '/'")
    } else if path.starts_with("//") || path.contains("//") {
        Some("holds '//' (a host)")
    } else if path.contains('@') {
        Some("holds '@' (a user)")
    } else if path.split('?').next().is_some_and(|p| p.contains(':')) {
        Some("holds a scheme or a port")
    } else if path.split(['/', '?']).any(|seg| seg == ".." || seg == ".") {
        Some("holds a '..' or '.' segment")
    } else if path
        .chars()
        .any(|c| c == '\\' || c == '#' || c.is_whitespace() || c.is_control())
    {
        Some("holds a backslash, '#', a space or a control character")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::BadPath {
            api: api.to_string(),
            source_name: source.to_string(),
            path: redact_text(path),
            why: why.to_string(),
        }),
    }
}

/// How an API is called.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The API's name, for messages.
    pub api: String,
    /// Base URL (scheme, host, optional path prefix).
    pub base: Url,
    /// The bearer key.
    pub key: ApiKey,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Requests per second at most.
    pub requests_per_second: u32,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries per request after the first attempt.
    pub retries: u32,
    /// Largest response body read; a larger one fails its call.
    pub max_body_bytes: u64,
}

/// What was asked and how it went, for the manifest.
#[derive(Debug, Default, Serialize, serde::Deserialize, Clone, PartialEq)]
pub struct ClientStats {
    /// Requests answered (successful, or 404 per id).
    pub requests: u64,
    /// Attempts retried, all causes.
    pub retries: u64,
    /// Retried after 429.
    pub retried_429: u64,
    /// Retried after 5xx.
    pub retried_5xx: u64,
    /// Retried after a connect error or a timeout.
    pub retried_network: u64,
    /// Retried after a truncated or invalid JSON body.
    pub retried_invalid_body: u64,
    /// 404 answers to per-id requests.
    pub not_found: u64,
    /// Body bytes received.
    pub bytes: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retried_429: AtomicU64,
    retried_5xx: AtomicU64,
    retried_network: AtomicU64,
    retried_invalid_body: AtomicU64,
    not_found: AtomicU64,
    bytes: AtomicU64,
}

/// An answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A JSON body.
    Json(Bytes),
    /// 404: the resource does not exist.
    NotFound,
}

enum Attempt {
    Done(Answer),
    Retry {
        why: String,
        after: Option<Duration>,
        kind: RetryKind,
    },
    Fail(Error),
}

#[derive(Clone, Copy)]
enum RetryKind {
    TooMany,
    Server,
    Network,
    Body,
}

/// A client for one API.
pub struct ApiClient {
    settings: ClientSettings,
    http: reqwest::Client,
    limiter: DefaultDirectRateLimiter,
    permits: Arc<Semaphore>,
    counters: Counters,
}

impl ApiClient {
    /// A client; TLS certificates are verified (rustls with the system's roots).
    pub fn new(settings: ClientSettings) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("opslake/", env!("CARGO_PKG_VERSION")))
            // A redirect could carry the key elsewhere: follow none.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::BadBaseUrl {
                api: settings.api.clone(),
                url: redact(&settings.base),
                why: e.to_string(),
                env: String::new(),
            })?;
        let rps = NonZeroU32::new(settings.requests_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        Ok(ApiClient {
            limiter: RateLimiter::direct(Quota::per_second(rps)),
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            http,
            settings,
            counters: Counters::default(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// `base` + `path_and_query` (a path template already filled in).
    pub fn url(&self, path_and_query: &str) -> Result<Url, Error> {
        let base = self.settings.base.as_str().trim_end_matches('/');
        let text = format!("{base}{path_and_query}");
        Url::parse(&text).map_err(|e| Error::BadBaseUrl {
            api: self.settings.api.clone(),
            url: redact_text(&text),
            why: e.to_string(),
            env: String::new(),
        })
    }

    /// Resolves a `next_request` link against the base, refusing other hosts.
    pub fn follow(&self, link: &str) -> Result<Url, Error> {
        let base = &self.settings.base;
        let url = base.join(link).map_err(|_| Error::ForeignLink {
            link: link.to_string(),
            base: base.origin().ascii_serialization(),
        })?;
        if url.origin() != base.origin() {
            return Err(Error::ForeignLink {
                link: url.origin().ascii_serialization(),
                base: base.origin().ascii_serialization(),
            });
        }
        Ok(url)
    }

    /// What was asked so far.
    pub fn stats(&self) -> ClientStats {
        let c = &self.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            requests: r(&c.requests),
            retries: r(&c.retried_429) + r(&c.retried_5xx) + r(&c.retried_network) + r(&c.retried_invalid_body),
            retried_429: r(&c.retried_429),
            retried_5xx: r(&c.retried_5xx),
            retried_network: r(&c.retried_network),
            retried_invalid_body: r(&c.retried_invalid_body),
            not_found: r(&c.not_found),
            bytes: r(&c.bytes),
        }
    }

    /// Sends a request until it succeeds, fails for good, or runs out of retries.
    /// `not_found_ok`: a 404 is the answer "none".
    pub async fn call(
        &self,
        method: Method,
        url: &Url,
        body: Option<&[u8]>,
        not_found_ok: bool,
    ) -> Result<Answer, Error> {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(30))
            .with_jitter()
            .with_max_times(self.settings.retries as usize)
            .build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(method.clone(), url, body, not_found_ok).await {
                Attempt::Done(answer) => {
                    self.counters.requests.fetch_add(1, Ordering::Relaxed);
                    if answer == Answer::NotFound {
                        self.counters.not_found.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(answer);
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { why, after, kind } => {
                    let Some(delay) = backoff.next() else {
                        return Err(Error::Exhausted {
                            api: self.settings.api.clone(),
                            url: redact(url),
                            attempts,
                            last: why,
                        });
                    };
                    let counter = match kind {
                        RetryKind::TooMany => &self.counters.retried_429,
                        RetryKind::Server => &self.counters.retried_5xx,
                        RetryKind::Network => &self.counters.retried_network,
                        RetryKind::Body => &self.counters.retried_invalid_body,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let wait = after.map_or(delay, |a| a.max(delay));
                    tracing::debug!(api = %self.settings.api, url = %redact(url), %why, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, method: Method, url: &Url, body: Option<&[u8]>, not_found_ok: bool) -> Attempt {
        self.limiter.until_ready().await;
        let Ok(_permit) = self.permits.acquire().await else {
            return Attempt::Fail(Error::Exhausted {
                api: self.settings.api.clone(),
                url: redact(url),
                attempts: 0,
                last: "the client was shut down".into(),
            });
        };
        let mut request = self
            .http
            .request(method, url.clone())
            .header(reqwest::header::AUTHORIZATION, self.settings.key.bearer())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    why: describe(&e),
                    after: None,
                    kind: RetryKind::Network,
                };
            }
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        let bytes = match self.body(response, url).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return Attempt::Fail(Error::BodyTooLarge {
                    api: self.settings.api.clone(),
                    url: redact(url),
                    limit: self.settings.max_body_bytes,
                });
            }
            Err(BodyError::Cut(e)) => {
                return Attempt::Retry {
                    why: format!("the body was cut short: {}", describe(&e)),
                    after: None,
                    kind: RetryKind::Body,
                };
            }
        };
        self.counters.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        match status {
            s if s.is_success() => match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                Ok(_) => Attempt::Done(Answer::Json(bytes)),
                Err(e) => Attempt::Retry {
                    why: format!("truncated or invalid JSON ({e})"),
                    after: None,
                    kind: RetryKind::Body,
                },
            },
            StatusCode::NOT_FOUND if not_found_ok => Attempt::Done(Answer::NotFound),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Attempt::Fail(Error::Unauthorized {
                api: self.settings.api.clone(),
                status: status.as_u16(),
                url: redact(url),
            }),
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry {
                why: "HTTP 429 Too Many Requests".into(),
                after: retry_after,
                kind: RetryKind::TooMany,
            },
            s if s.is_server_error() => Attempt::Retry {
                why: format!("HTTP {}", s.as_u16()),
                after: retry_after,
                kind: RetryKind::Server,
            },
            s => {
                let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
                Attempt::Fail(Error::Status {
                    api: self.settings.api.clone(),
                    status: s.as_u16(),
                    url: redact(url),
                    body: self.settings.key.scrub(&text),
                })
            }
        }
    }
}

/// Why a body could not be read.
enum BodyError {
    /// Larger than the cap.
    TooLarge,
    /// The connection failed while reading it.
    Cut(reqwest::Error),
}

impl ApiClient {
    /// Reads a body as it streams, refusing one larger than `max_body_bytes` (by its
    /// `Content-Length` before reading, else as soon as the bytes read pass the cap).
    async fn body(&self, mut response: reqwest::Response, url: &Url) -> Result<Bytes, BodyError> {
        let limit = self.settings.max_body_bytes;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(BodyError::TooLarge);
        }
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(BodyError::Cut)? {
            if (buf.len() + chunk.len()) as u64 > limit {
                tracing::warn!(api = %self.settings.api, url = %redact(url), limit, "body larger than max_body_bytes");
                return Err(BodyError::TooLarge);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}

/// A reqwest error in a line, with the URL already known to the caller (and left out: it
/// could hold a password).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        let mut s = e.to_string();
        let mut source = std::error::Error::source(e);
        // reqwest names the URL in its message; the caller names it, redacted.
        if let Some(u) = e.url() {
            s = s.replace(u.as_str(), &redact(u));
        }
        while let Some(inner) = source {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            source = inner.source();
        }
        s
    }
}

/// `Retry-After` in seconds or as an HTTP date, capped at five minutes.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()?
        }
    };
    Some(wait.min(Duration::from_secs(300)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> ApiClient {
        ApiClient::new(ClientSettings {
            api: "logistics".into(),
            base: Url::parse(base).unwrap(),
            key: ApiKey::new("k").unwrap(),
            concurrency: 1,
            requests_per_second: 10,
            timeout: Duration::from_secs(1),
            retries: 0,
            max_body_bytes: 1 << 20,
        })
        .unwrap()
    }

    #[test]
    fn tenants_and_ids_are_checked_before_they_reach_a_path() {
        for ok in ["masmovil", "MYSIM_391588", "APT-0001", "10000001", "v1.2"] {
            assert!(check_path_value("id", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "..", "a..b", "../x", "a b", "a%2F", ".hidden", "x?y=1"] {
            assert!(check_path_value("tenant", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_links_may_not_leave_the_api() {
        let c = client("https://api.example.com/care");
        assert_eq!(
            c.follow("/memos/?offset=40").unwrap().as_str(),
            "https://api.example.com/memos/?offset=40"
        );
        assert!(c.follow("https://api.example.com:443/memos?x=1").is_ok());
        assert!(c.follow("https://evil.example.net/memos").is_err());
        assert!(
            c.follow("http://api.example.com/memos").is_err(),
            "another scheme is another origin"
        );
        assert!(c.follow("https://api.example.com:8443/memos").is_err());
    }

    #[test]
    fn passwords_in_urls_are_never_shown() {
        let u = Url::parse("https://opslake:hunter2@api.example.com/v1?x=1").unwrap();
        assert_eq!(redact(&u), "https://***@api.example.com/v1?x=1");
        assert_eq!(
            redact(&Url::parse("https://api.example.com/").unwrap()),
            "https://api.example.com/"
        );
        assert_eq!(
            redact_text("https://u:hunter2@api.example.com/x"),
            "https://***@api.example.com/x"
        );
        assert_eq!(redact_text("htps://u:hunter2@bad host/x"), "htps://***@bad host/x");
        assert_eq!(redact_text("no url"), "no url");
        let c = client("https://u:hunter2@api.example.com/care");
        let url = c.url("/memos").unwrap();
        assert_eq!(redact(&url), "https://***@api.example.com/care/memos");
    }

    #[test]
    fn plain_http_is_for_loopback_or_where_the_job_allows_it() {
        let ok = |u: &str, allow: bool| check_base("logistics", &Url::parse(u).unwrap(), allow).is_ok();
        assert!(ok("https://api.example.com", false));
        assert!(ok("http://127.0.0.1:8080", false));
        assert!(ok("http://127.8.0.1:8080", false));
        assert!(ok("http://[::1]:8080", false));
        assert!(ok("http://localhost:8080", false));
        assert!(!ok("http://api.example.com", false));
        assert!(!ok("http://10.0.0.5", false));
        assert!(ok("http://10.0.0.5", true));
        assert!(!ok("ftp://api.example.com", true));
        let e = check_base("logistics", &Url::parse("http://api.example.com").unwrap(), false).unwrap_err();
        assert!(e.is_config() && e.to_string().contains("allow_http"), "{e}");
    }

    #[test]
    fn path_overrides_are_plain_paths() {
        for ok in [
            "/v2/{tenant}/orders",
            "/v1/orgs/{tenant}/customers/{id}/devices",
            "/v1/stock?warehouse=all",
        ] {
            assert!(check_path("logistics", "orders", ok).is_ok(), "{ok}");
        }
        for bad in [
            "v1/orders",
            "//evil.example.com/v1/orders",
            "/v1//orders",
            "https://evil.example.com/v1",
            "/v1/@evil.example.com",
            "/v1/orders:8443",
            "/v1/../admin",
            "/v1/orders\\x",
            "/v1/orders#frag",
            "/v1/ orders",
        ] {
            let e = check_path("logistics", "orders", bad).unwrap_err();
            assert!(e.is_config(), "{bad}");
        }
    }

    #[test]
    fn urls_keep_the_base_path() {
        let c = client("https://api.example.com/logistics/");
        assert_eq!(
            c.url("/v1/orders?page=1").unwrap().as_str(),
            "https://api.example.com/logistics/v1/orders?page=1"
        );
    }
}
