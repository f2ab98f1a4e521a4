//! The bearer API key: read from a mounted file or a variable, never from the job file, and
//! never printed.

use std::fmt;
use std::path::Path;

/// An API key. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key from its text (surrounding whitespace, such as a file's final newline, removed).
    pub fn new(text: &str) -> Option<ApiKey> {
        let t = text.trim();
        (!t.is_empty()).then(|| ApiKey(t.to_string()))
    }

    /// Reads a key file.
    pub fn from_file(path: &Path) -> std::io::Result<Option<ApiKey>> {
        Ok(ApiKey::new(&std::fs::read_to_string(path)?))
    }

    /// The `Authorization` header value.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Removes the key from a text that might quote it (error bodies, URLs).
    pub fn scrub(&self, text: &str) -> String {
        text.replace(&self.0, "***")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_prints() {
        let k = ApiKey::new(" s3cr3t-value\n").unwrap();
        assert!(!format!("{k:?} {k}").contains("s3cr3t"));
        assert_eq!(k.bearer(), "Bearer s3cr3t-value");
        assert_eq!(k.scrub("token s3cr3t-value rejected"), "token *** rejected");
        assert!(ApiKey::new("  \n").is_none());
    }
}
