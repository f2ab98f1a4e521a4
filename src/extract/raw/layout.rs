//! Every path of the raw captures, local and at `raw_output`, in one place.
//!
//! ```text
//! {local}/{source}/{tenant}/part-NNNNN.ndjson.zst                 a run's captures, an export folder
//! {raw_output}/run_date=YYYY-MM-DD/{run_id}/{source}/{tenant}/…   the same files, kept
//! ```
//! Sources called without a tenant (stock) have no tenant folder. The captures of a run sit
//! under a prefix of their own, named in the run record (`extract.raw`), so a failed or
//! re-run day never mixes with a committed one, and the next night and replays find exactly
//! the captures of a committed run. The lake's own paths are in `publish::layout`.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// The folder of one source's (and tenant's) raw files under a local raw root.
pub fn dir(root: &Path, source: &str, tenant: Option<&str>) -> PathBuf {
    let d = root.join(source);
    match tenant {
        Some(t) => d.join(t),
        None => d,
    }
}

/// `run_date=YYYY-MM-DD/{run_id}`: the prefix of a run's captures at `raw_output`.
pub fn capture_prefix(run_date: NaiveDate, run_id: &str) -> String {
    format!("run_date={}/{run_id}", run_date.format("%Y-%m-%d"))
}

/// The object of a capture file at `raw_output`: `{prefix}/{rel}`, `rel` being the file's
/// path below the local root with `/` separators.
pub fn object(prefix: &str, rel: &str) -> String {
    format!("{prefix}/{rel}")
}

/// The file's path below the local root, with `/` separators (`None`: not below it).
pub fn relative(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    Some(
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// Whether a capture object belongs to one of `sources` (its first folder below the prefix).
pub fn of_source(prefix: &str, object: &str, sources: &[&str]) -> bool {
    object
        .strip_prefix(prefix)
        .and_then(|r| r.trim_start_matches('/').split('/').next())
        .is_some_and(|s| sources.contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_sit_under_their_run() {
        let d = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let p = capture_prefix(d, "20250630T010000Z-ab12");
        assert_eq!(p, "run_date=2025-06-30/20250630T010000Z-ab12");
        let root = Path::new("/tmp/raw");
        let file = dir(root, "orders", Some("yoigo")).join("part-00000.ndjson.zst");
        let rel = relative(root, &file).unwrap();
        assert_eq!(rel, "orders/yoigo/part-00000.ndjson.zst");
        assert_eq!(
            object(&p, &rel),
            "run_date=2025-06-30/20250630T010000Z-ab12/orders/yoigo/part-00000.ndjson.zst"
        );
        assert_eq!(dir(root, "stock", None), Path::new("/tmp/raw/stock"));
        assert!(of_source(&p, &object(&p, &rel), &["orders"]));
        assert!(!of_source(&p, &object(&p, &rel), &["order"]));
    }
}
