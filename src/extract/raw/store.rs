//! `raw_output`: where raw captures are kept, with credentials of its own.
//!
//! The raw captures hold personal data, so their store is not the analysts' lake and usually
//! not even the same account. A local folder or `file://` URL is opened as the lake is. For
//! `s3://`, `gs://` and `az://`, credentials come from the provider's usual variables
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`, as for the lake), unless any variable of that provider is
//! given with the prefix `OPSLAKE_RAW_` (`OPSLAKE_RAW_AWS_ACCESS_KEY_ID`,
//! `OPSLAKE_RAW_AWS_SECRET_ACCESS_KEY`, `OPSLAKE_RAW_AWS_ENDPOINT_URL`...): then only the
//! prefixed ones are read, so that none of the lake's credentials (a session token, a role)
//! leaks into the raw store's, and two credential sets can be given side by side.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::prefix::PrefixStore;

use crate::publish::{Error, Lake};

/// The prefix of the raw store's own variables.
pub const PREFIX: &str = "OPSLAKE_RAW_";

/// The variables a store of `provider` (`AWS_`, `GOOGLE_`, `AZURE_`) is configured from: the
/// `OPSLAKE_RAW_`-prefixed ones when any is given (prefix removed), else the provider's own.
fn provider_vars(vars: &[(String, String)], provider: &str) -> Vec<(String, String)> {
    let own_prefix = format!("{PREFIX}{provider}");
    let own: Vec<(String, String)> = vars
        .iter()
        .filter(|(k, _)| k.starts_with(&own_prefix))
        .map(|(k, v)| (k[PREFIX.len()..].to_string(), v.clone()))
        .collect();
    if !own.is_empty() {
        return own;
    }
    vars.iter().filter(|(k, _)| k.starts_with(provider)).cloned().collect()
}

/// Opens `raw_output` at `url` with the credentials `vars` give (the process environment).
/// The store's URL, as recorded and printed, has no password.
pub fn open(url: &str, vars: &[(String, String)]) -> Result<Lake, Error> {
    let shown = crate::extract::http::client::redact_text(url);
    let bad = |why: String| Error::BadUrl {
        url: shown.clone(),
        why,
    };
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let store: Arc<dyn ObjectStore> = match scheme.as_deref() {
        None | Some("file") | Some("memory") => return Lake::open(url),
        Some("s3" | "s3a") => {
            let vars = provider_vars(vars, "AWS_");
            let mut b = AmazonS3Builder::new();
            for (k, v) in &vars {
                if let Ok(key) = k.to_ascii_lowercase().parse() {
                    b = b.with_config(key, v);
                }
                if k == "AWS_S3_FORCE_PATH_STYLE" {
                    b = b.with_virtual_hosted_style_request(!matches!(v.as_str(), "1" | "true" | "TRUE"));
                }
            }
            Arc::new(b.with_url(url).build().map_err(|e| bad(e.to_string()))?)
        }
        Some("gs") => {
            let mut b = GoogleCloudStorageBuilder::new();
            for (k, v) in provider_vars(vars, "GOOGLE_") {
                if let Ok(key) = k.to_ascii_lowercase().parse() {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(b.with_url(url).build().map_err(|e| bad(e.to_string()))?)
        }
        Some("az" | "abfs" | "abfss" | "azure") => {
            let mut b = MicrosoftAzureBuilder::new();
            for (k, v) in provider_vars(vars, "AZURE_") {
                if let Ok(key) = k.to_ascii_lowercase().parse() {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(b.with_url(url).build().map_err(|e| bad(e.to_string()))?)
        }
        Some(other) => {
            return Err(bad(format!(
                "unsupported scheme {other}://: use a path, file://, s3://, gs://, az:// or memory://"
            )));
        }
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let prefix = parsed.path().trim_matches('/');
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    };
    Ok(Lake::from_store(store, &shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_raw_store_reads_its_own_credentials_when_any_is_given() {
        let env = vars(&[
            ("AWS_ACCESS_KEY_ID", "lake-key"),
            ("AWS_SESSION_TOKEN", "lake-token"),
            ("OPSLAKE_RAW_AWS_ACCESS_KEY_ID", "raw-key"),
            ("OPSLAKE_RAW_AWS_SECRET_ACCESS_KEY", "raw-secret"),
        ]);
        let own = provider_vars(&env, "AWS_");
        assert_eq!(
            own,
            vars(&[
                ("AWS_ACCESS_KEY_ID", "raw-key"),
                ("AWS_SECRET_ACCESS_KEY", "raw-secret")
            ]),
            "the lake's session token does not leak into the raw store"
        );
        let shared = provider_vars(&vars(&[("AWS_REGION", "eu-west-1"), ("HOME", "/")]), "AWS_");
        assert_eq!(shared, vars(&[("AWS_REGION", "eu-west-1")]));
    }

    #[test]
    fn a_raw_store_opens_on_any_scheme_and_never_shows_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let local = open(dir.path().join("raw").to_str().unwrap(), &[]).unwrap();
        assert!(local.url.starts_with("file://"));
        let env = vars(&[("OPSLAKE_RAW_AWS_REGION", "eu-west-1")]);
        let s3 = open("s3://raw-bucket/captures", &env).unwrap();
        assert_eq!(s3.url, "s3://raw-bucket/captures");
        let err = open("ftp://user:hunter2@host/x", &[]).unwrap_err().to_string();
        assert!(!err.contains("hunter2") && err.contains("ftp://"), "{err}");
    }
}
