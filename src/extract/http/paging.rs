//! Listings, complete or failed: page numbers and `next_request` chains.
//!
//! A listing is read whole or the source fails; it is never silently short.
//! * `total_pages` past `max_pages`, or larger than `total_elements` allows at the first
//!   page's size, is refused before any other page is asked (a server announcing 10^12
//!   pages would otherwise be paged for ever).
//! * A `next_request` chain longer than `max_pages`, or one that comes back to a page already
//!   read, is refused.
//! * Items that moved between pages while paging (the same item on two pages, a page whose
//!   `total_elements` differs from the first's, or fewer or more items than announced) make
//!   the listing be **read again** from its first page, its raw lines discarded: a listing
//!   that changes under the reader is usually being written to at that moment and settles.
//!   After [`ATTEMPTS`] reads that all moved, the source fails, saying what moved.

use std::collections::{BTreeSet, HashMap};

use futures::{StreamExt, TryStreamExt};

use super::{ExtractError, SourceFetch, TenantCalls, client};
use crate::extract::shape;

/// Reads of a listing before it is declared to keep changing.
pub const ATTEMPTS: u32 = 3;

/// What one read of a listing saw.
#[derive(Default)]
struct Listing {
    /// Items received.
    items: u64,
    /// `total_elements` of the first page.
    announced: Option<u64>,
    /// Item hash → the page it was first seen on.
    seen: HashMap<u64, u64>,
    /// Items seen on two pages.
    duplicates: u64,
    /// A page announced another `total_elements` than the first.
    changed_total: Option<(u64, u64)>,
}

impl Listing {
    /// Counts the items of page `page`; returns how many it held.
    fn page(&mut self, page: u64, body: &[u8], calls: &TenantCalls<'_>) -> Result<u64, String> {
        let mut n = 0;
        let seen = &mut self.seen;
        let duplicates = &mut self.duplicates;
        shape::for_each_item(body, calls.source.envelopes(), &mut |item, _| {
            n += 1;
            let h = xxhash_rust::xxh3::xxh3_64(item);
            match seen.get(&h) {
                Some(p) if *p != page => *duplicates += 1,
                Some(_) => {}
                None => {
                    seen.insert(h, page);
                }
            }
        })?;
        self.items += n;
        Ok(n)
    }

    /// Why the read is not a consistent snapshot (`None`: it is).
    fn moved(&self) -> Option<String> {
        if let Some((first, later)) = self.changed_total {
            return Some(format!(
                "items moved between pages while paging: total_elements went from {first} to {later}"
            ));
        }
        if self.duplicates > 0 {
            return Some(format!(
                "items moved between pages while paging: {} item(s) came on two pages",
                self.duplicates
            ));
        }
        match self.announced {
            Some(total) if total != self.items => Some(format!(
                "received {} items where total_elements announced {total}",
                self.items
            )),
            _ => None,
        }
    }
}

/// `total_pages` and `total_elements` of a numbered page (a page without `total_pages` is the
/// only one).
fn pagination(body: &[u8]) -> Result<(u64, Option<u64>), String> {
    #[derive(serde::Deserialize)]
    struct Pagination {
        total_pages: Option<crate::schema::lenient::Int64>,
        total_elements: Option<crate::schema::lenient::Int64>,
    }
    let p: Pagination = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok((
        p.total_pages.map_or(1, |t| t.0.max(1) as u64),
        p.total_elements.map(|t| t.0.max(0) as u64),
    ))
}

/// Checks a first page's `total_pages` against the bound and its own `total_elements`.
fn check_total_pages(total: u64, announced: Option<u64>, first_items: u64, max_pages: u64) -> Result<(), String> {
    if total > max_pages {
        return Err(format!(
            "total_pages {total} is past the bound max_pages = {max_pages}; raise max_pages in the API's section if the listing is really that long"
        ));
    }
    if let Some(elements) = announced {
        let fits = elements.div_ceil(first_items.max(1)).max(1);
        if total > fits {
            return Err(format!(
                "total_pages {total} does not fit total_elements {elements} at {first_items} items per page"
            ));
        }
    }
    Ok(())
}

/// Page 1, then pages 2 to `total_pages` in parallel; read again when items moved.
pub async fn numbered(calls: &TenantCalls<'_>, fetch: &mut SourceFetch) -> Result<(), ExtractError> {
    let mut why = String::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            tracing::warn!(source = calls.source.name(), tenant = ?calls.tenant, attempt, %why, "reading the listing again");
            calls.writer.reset().map_err(|e| calls.raw_err(e))?;
            fetch.rereads += 1;
        }
        let listing = numbered_once(calls).await?;
        match listing.moved() {
            None => {
                fetch.items += listing.items;
                if let Some(t) = listing.announced {
                    *fetch.total_elements.get_or_insert(0) += t;
                }
                return Ok(());
            }
            Some(w) => why = w,
        }
    }
    Err(calls.incomplete(format!(
        "{why}; read {ATTEMPTS} times and it kept changing: run again when the API is quiet"
    )))
}

async fn numbered_once(calls: &TenantCalls<'_>) -> Result<Listing, ExtractError> {
    let page_size = calls.spec.page_size;
    let first_url = calls.url(&format!("page=1&page_size={page_size}"))?;
    let mut listing = Listing::default();
    let client::Answer::Json(first) = calls.get(&first_url).await? else {
        return Ok(listing);
    };
    let shape_err = |why: String| ExtractError::Shape {
        source_name: calls.source.name().into(),
        url: client::redact(&first_url),
        why,
    };
    let (total, announced) = pagination(&first).map_err(shape_err)?;
    let first_items = listing.page(1, &first, calls).map_err(shape_err)?;
    listing.announced = announced;
    check_total_pages(total, announced, first_items, calls.spec.max_pages).map_err(|w| calls.incomplete(w))?;
    if let Some(b) = calls.bar {
        b.inc_length(total.max(1));
    }
    calls.keep(Some(&first), None)?;
    let urls = (2..=total)
        .map(|page| Ok((page, calls.url(&format!("page={page}&page_size={page_size}"))?)))
        .collect::<Result<Vec<_>, ExtractError>>()?;
    let pages = futures::stream::iter(urls)
        .map(|(page, url)| {
            let client = calls.client.clone();
            let method = calls.method.clone();
            async move {
                let answer = client.call(method, &url, None, false).await?;
                Ok::<_, client::Error>((page, url, answer))
            }
        })
        .buffer_unordered(calls.client.settings().concurrency.max(1));
    futures::pin_mut!(pages);
    while let Some((page, url, answer)) = pages.try_next().await.map_err(|e| calls.api_err(e))? {
        if let client::Answer::Json(body) = answer {
            let shape_err = |why: String| ExtractError::Shape {
                source_name: calls.source.name().into(),
                url: client::redact(&url),
                why,
            };
            let (_, elements) = pagination(&body).map_err(shape_err)?;
            if let (Some(first), Some(later)) = (announced, elements) {
                if first != later && listing.changed_total.is_none() {
                    listing.changed_total = Some((first, later));
                }
            }
            listing.page(page, &body, calls).map_err(shape_err)?;
            calls.keep(Some(&body), None)?;
        }
    }
    Ok(listing)
}

/// The next page's link (at the JSON pointer `link`) and how many items of `envelopes` the
/// page held; a page that holds none of the envelopes has no items.
pub fn next_link(body: &[u8], link: &str, envelopes: &[crate::source::Envelope]) -> (Option<String>, usize) {
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

/// Follows the link at `link` until the last page or an empty page; read again when items
/// moved between pages.
pub async fn linked(calls: &TenantCalls<'_>, link: &str, fetch: &mut SourceFetch) -> Result<(), ExtractError> {
    let mut why = String::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            tracing::warn!(source = calls.source.name(), tenant = ?calls.tenant, attempt, %why, "reading the chain again");
            calls.writer.reset().map_err(|e| calls.raw_err(e))?;
            fetch.rereads += 1;
        }
        let listing = linked_once(calls, link).await?;
        match listing.moved() {
            None => {
                fetch.items += listing.items;
                return Ok(());
            }
            Some(w) => why = w,
        }
    }
    Err(calls.incomplete(format!(
        "{why}; read {ATTEMPTS} times and it kept changing: run again when the API is quiet"
    )))
}

async fn linked_once(calls: &TenantCalls<'_>, link: &str) -> Result<Listing, ExtractError> {
    let mut url = calls.url(&format!("limit={}", calls.spec.page_size))?;
    let mut listing = Listing::default();
    let mut followed = BTreeSet::new();
    let max_pages = calls.spec.max_pages;
    for page in 1.. {
        if page > max_pages {
            return Err(calls.incomplete(format!(
                "the next_request chain is longer than max_pages = {max_pages} pages; raise max_pages in the API's section if it is really that long"
            )));
        }
        followed.insert(url.to_string());
        let client::Answer::Json(body) = calls.get(&url).await? else {
            break;
        };
        calls.keep(Some(&body), None)?;
        listing.page(page, &body, calls).map_err(|why| ExtractError::Shape {
            source_name: calls.source.name().into(),
            url: client::redact(&url),
            why,
        })?;
        let (next, items) = next_link(&body, link, calls.source.envelopes());
        let Some(next) = next.filter(|_| items > 0) else {
            break;
        };
        let next = calls.client.follow(&next).map_err(|e| calls.api_err(e))?;
        if followed.contains(next.as_str()) {
            return Err(calls.incomplete(format!(
                "next_request came back to {} after {page} pages: the chain loops",
                client::redact(&next)
            )));
        }
        url = next;
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source;

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

    #[test]
    fn a_total_pages_past_the_bound_or_the_elements_is_refused() {
        assert!(check_total_pages(4, Some(100), 25, 100_000).is_ok());
        assert!(check_total_pages(1, Some(0), 0, 100_000).is_ok());
        assert!(check_total_pages(7, None, 25, 100_000).is_ok());
        let e = check_total_pages(1_000_000_000_000, Some(100), 25, 100_000).unwrap_err();
        assert!(e.contains("max_pages"), "{e}");
        let e = check_total_pages(9, Some(100), 25, 100_000).unwrap_err();
        assert!(e.contains("does not fit total_elements 100"), "{e}");
        assert_eq!(
            pagination(br#"{"total_pages": "3", "total_elements": 61}"#).unwrap(),
            (3, Some(61))
        );
        assert_eq!(pagination(br#"{"orders": []}"#).unwrap(), (1, None));
    }

    #[test]
    fn a_listing_that_moved_says_how() {
        let mut l = Listing {
            items: 10,
            announced: Some(10),
            ..Default::default()
        };
        assert_eq!(l.moved(), None);
        l.duplicates = 1;
        assert!(l.moved().unwrap().contains("came on two pages"));
        l.duplicates = 0;
        l.items = 9;
        assert!(
            l.moved()
                .unwrap()
                .contains("received 9 items where total_elements announced 10")
        );
        l.changed_total = Some((10, 11));
        assert!(l.moved().unwrap().contains("from 10 to 11"));
    }
}
