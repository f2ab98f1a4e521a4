//! Per-id sources: which ids to ask, which to ask tonight, and the rest carried forward.
//!
//! ```text
//!  ids = items of the id source (today's captures)            memos' customer_num, orders' work_order
//!      + the job's ids (list, file, table: first-level sources only)
//!      + ids known from earlier days (answered in the base run's captures, or committed tables)
//!
//!  per id:  full refresh or no base ─────────────────────────▶ ask   (full)
//!           no answer in the base ───────────────────────────▶ ask   (new)
//!           the items naming it differ from the base's ──────▶ ask   (changed)
//!           its answer is not settled (IdSource::settled) ───▶ ask   (unsettled)
//!           otherwise ───────────────────────────────────────▶ carry the base's raw line as it is
//! ```
//! A carried line keeps its `_fetched_on`, so each row says the day it was fetched. A 404 is an
//! answer too (kept as `"response": []`). A call the API refuses (a 400: the request was
//! wrong for that id) fails that call only: it is named in the report, the base's answer is
//! carried when there is one, and the run fails only when more than `max_reject_ratio` of the
//! source's calls were refused (a request the API refuses every time is a bug, not data).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use reqwest::Method;

use super::{ExtractError, IdCounts, IdOrigin, SourceFetch, Target, TenantCalls, client};
use crate::extract::raw::{self, layout};
use crate::extract::shape;
use crate::source::{self, Envelope, IdSource, Settled, Source};

/// Refused calls named in the report, at most.
const NAMED_FAILURES: usize = 10;

/// What today's items say about an id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdState {
    /// A fingerprint of the items that name it (`None`: no item does; an id of the job's
    /// lists or known from an earlier day).
    pub fingerprint: Option<u64>,
    /// Whether every item naming it is in a final state (`Settled::Item` rules only).
    pub item_final: Option<bool>,
}

/// What the base run answered for an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrevAnswer {
    /// It answered something (not a 404).
    pub found: bool,
    /// The answer is in a final state (`Settled::Answer` rules only).
    pub answer_final: bool,
}

/// Why an id is asked tonight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A full pull.
    Full,
    /// No answer in the base.
    New,
    /// The items naming it changed since the base.
    Changed,
    /// Its answer is not in a final state.
    Unsettled,
}

/// Asked tonight, or carried forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Asked, and why.
    Ask(Reason),
    /// Carried forward from the base.
    Carry,
}

/// Whether an id is asked tonight: `base` is its base answer and the base's fingerprint of
/// the items that named it, `None` when the night has no base or is a full refresh.
pub fn decide(settled: Settled, today: &IdState, base: Option<(Option<&PrevAnswer>, Option<u64>)>) -> Decision {
    let Some((prev, base_fingerprint)) = base else {
        return Decision::Ask(Reason::Full);
    };
    let Some(prev) = prev else {
        return Decision::Ask(Reason::New);
    };
    if base_fingerprint != today.fingerprint {
        return Decision::Ask(Reason::Changed);
    }
    let settled = match settled {
        Settled::Never => false,
        Settled::Always => true,
        Settled::Answer { .. } => prev.answer_final,
        Settled::Item { .. } => today.item_final == Some(true),
    };
    if settled {
        Decision::Carry
    } else {
        Decision::Ask(Reason::Unsettled)
    }
}

/// An id's text at `pointer` of an item (a string or a number).
fn id_at(value: &serde_json::Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Calls `each(id, item bytes, item)` for every item of the raw files in `dir` that names an
/// id at `pointer`.
fn for_each_id(
    dir: &Path,
    envelopes: &[Envelope],
    pointer: &str,
    each: &mut dyn FnMut(String, &[u8], &serde_json::Value),
) -> std::io::Result<()> {
    raw::read_lines(dir, &mut |line| {
        let _ = shape::for_each_item(line, envelopes, &mut |item, _| {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(item) {
                if let Some(id) = id_at(&v, pointer) {
                    each(id, item, &v);
                }
            }
        });
    })
}

/// The ids named by the items in `dir`, each with a fingerprint of those items (the same
/// items give the same fingerprint, in any order) and, for `Settled::Item` rules, whether
/// they are all final.
pub fn scan_ids(dir: &Path, from: &dyn Source, ids: IdSource) -> std::io::Result<BTreeMap<String, IdState>> {
    let mut out: BTreeMap<String, IdState> = BTreeMap::new();
    for_each_id(dir, from.envelopes(), ids.pointer, &mut |id, bytes, value| {
        let h = xxhash_rust::xxh3::xxh3_64(bytes);
        let state = out.entry(id).or_default();
        state.fingerprint = Some(state.fingerprint.unwrap_or(0).wrapping_add(h));
        if let Settled::Item { pointer, values } = ids.settled {
            let fin = Settled::is_final(values, value.pointer(pointer));
            state.item_final = Some(state.item_final.unwrap_or(true) && fin);
        }
    })?;
    Ok(out)
}

/// What the base run kept for a source and tenant.
struct Base {
    /// Its answers, by id.
    answers: HashMap<String, PrevAnswer>,
    /// Its fingerprints of the items that named each id.
    fingerprints: HashMap<String, u64>,
    /// The folder of its answer lines.
    dir: std::path::PathBuf,
}

impl Base {
    fn read(
        root: &Path,
        source: &dyn Source,
        from: &dyn Source,
        ids: IdSource,
        tenant: Option<&str>,
    ) -> std::io::Result<Base> {
        let dir = layout::dir(root, source.name(), tenant);
        let mut answers = HashMap::new();
        raw::read_lines(&dir, &mut |line| {
            // Lines of older captures (before answers said what was asked) are not answers:
            // their ids count as new.
            if let Some(a) = raw::answer(line) {
                let answer_final = match (ids.settled, &a.response) {
                    (Settled::Answer { pointer, values }, Some(r)) => Settled::is_final(values, r.pointer(pointer)),
                    _ => false,
                };
                answers.insert(
                    a.id,
                    PrevAnswer {
                        found: a.response.is_some(),
                        answer_final,
                    },
                );
            }
        })?;
        let fingerprints = scan_ids(&layout::dir(root, from.name(), tenant), from, ids)?
            .into_iter()
            .filter_map(|(id, s)| s.fingerprint.map(|f| (id, f)))
            .collect();
        Ok(Base {
            answers,
            fingerprints,
            dir,
        })
    }

    /// Copies the base's answer lines of `ids` into today's captures; returns how many.
    fn carry(&self, calls: &TenantCalls<'_>, ids: &BTreeSet<String>) -> Result<u64, ExtractError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut copied = BTreeSet::new();
        let mut failure = None;
        raw::read_lines(&self.dir, &mut |line| {
            if failure.is_some() {
                return;
            }
            if let Some(a) = raw::answer(line) {
                // An id answered twice in the base: its first line is carried.
                if ids.contains(&a.id) && !copied.contains(&a.id) {
                    if let Err(e) = calls.writer.write(line) {
                        failure = Some(e);
                        return;
                    }
                    calls.tick();
                    copied.insert(a.id);
                }
            }
        })
        .map_err(|e| ExtractError::Raw {
            path: self.dir.clone(),
            source: e,
        })?;
        if let Some(e) = failure {
            return Err(calls.raw_err(e));
        }
        Ok(copied.len() as u64)
    }
}

/// One per-id source for one tenant: ids, plan, calls, carried lines.
pub async fn fetch(
    calls: &TenantCalls<'_>,
    ids_from: IdSource,
    registry: &[&'static dyn Source],
    target: &Target<'_>,
    fetch: &mut SourceFetch,
) -> Result<(), ExtractError> {
    let source = calls.source;
    let name = source.name();
    let tenant = calls.tenant.as_deref();
    let Some(from) = source::find(registry, ids_from.from) else {
        return Err(ExtractError::Shape {
            source_name: name.into(),
            url: String::new(),
            why: format!("its ids come from source {}, which is not registered", ids_from.from),
        });
    };
    let today_dir = layout::dir(target.raw_root, ids_from.from, tenant);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExtractError::Raw { path, source }
    };
    let mut ids = scan_ids(&today_dir, from, ids_from).map_err(io(&today_dir))?;
    let counts = fetch.ids.get_or_insert_with(IdCounts::default);
    counts.from_items += ids.len() as u64;
    let add = |id: String, origin: IdOrigin, ids: &mut BTreeMap<String, IdState>, counts: &mut IdCounts| {
        if let std::collections::btree_map::Entry::Vacant(v) = ids.entry(id) {
            v.insert(IdState::default());
            match origin {
                IdOrigin::List => counts.list += 1,
                IdOrigin::File => counts.file += 1,
                IdOrigin::Table => counts.table += 1,
                IdOrigin::Known => counts.known += 1,
            }
        }
    };
    for e in target.extra.by_source.get(name).into_iter().flatten() {
        if e.tenant.as_deref().is_none_or(|t| Some(t) == tenant) {
            add(e.id.clone(), e.origin, &mut ids, counts);
        }
    }
    let base = match target.base {
        Some(root) => Some(Base::read(root, source, from, ids_from, tenant).map_err(io(root))?),
        None => None,
    };
    if let Some(b) = base.as_ref().filter(|_| !ids_from.known.is_empty()) {
        // Customers answered on an earlier day are still asked for (their fees are still due),
        // in the tenant that answered them. Sources that keep no ids from earlier days (a
        // search of an appointment no order names any more) do not.
        let known: Vec<&String> = b.answers.iter().filter(|(_, a)| a.found).map(|(id, _)| id).collect();
        for id in known {
            add(id.clone(), IdOrigin::Known, &mut ids, counts);
        }
    }

    let mut ask: Vec<String> = Vec::new();
    let mut carry: BTreeSet<String> = BTreeSet::new();
    for (id, state) in &ids {
        if client::check_path_value("id", id).is_err() {
            fetch.unsafe_ids += 1;
            if fetch.unsafe_ids == 1 {
                tracing::warn!(source = name, example = %id, "ids left out: they cannot go into a URL path");
            }
            continue;
        }
        let base_view = base
            .as_ref()
            .filter(|_| !target.full)
            .map(|b| (b.answers.get(id), b.fingerprints.get(id).copied()));
        match decide(ids_from.settled, state, base_view) {
            Decision::Carry => {
                carry.insert(id.clone());
            }
            Decision::Ask(reason) => {
                match reason {
                    Reason::New => fetch.asked_new += 1,
                    Reason::Changed => fetch.asked_changed += 1,
                    Reason::Unsettled => fetch.asked_unsettled += 1,
                    Reason::Full => {}
                }
                ask.push(id.clone());
            }
        }
    }

    // Ids asked tonight, whether or not their request could be built.
    fetch.called += ask.len() as u64;
    // Request bodies, built from the items that named the ids.
    let mut failures: Vec<(String, String)> = Vec::new();
    let mut bodies: HashMap<String, Vec<u8>> = HashMap::new();
    if let Some(build) = ids_from.body {
        let wanted: BTreeSet<&str> = ask.iter().map(String::as_str).collect();
        let mut items: HashMap<String, serde_json::Value> = HashMap::new();
        for_each_id(&today_dir, from.envelopes(), ids_from.pointer, &mut |id, _, value| {
            if wanted.contains(id.as_str()) {
                items.insert(id, value.clone());
            }
        })
        .map_err(io(&today_dir))?;
        ask.retain(|id| {
            let built = match items.get(id) {
                Some(item) => build(id, item).map(|b| b.to_string().into_bytes()),
                None => Err(format!("no {} item named it to build the request from", ids_from.from)),
            };
            match built {
                Ok(b) => {
                    bodies.insert(id.clone(), b);
                    true
                }
                Err(why) => {
                    failures.push((id.clone(), why));
                    false
                }
            }
        });
    }

    if let Some(b) = calls.bar {
        b.inc_length((ask.len() + carry.len()) as u64);
    }
    let (not_found, refused) = per_id_calls(calls, ask, bodies).await?;
    fetch.not_found += not_found;
    failures.extend(refused);

    // A refused call keeps the base's answer, where there is one.
    for (id, why) in &failures {
        fetch.failed += 1;
        if fetch.failures.len() < NAMED_FAILURES {
            // "appointment id MYSIM_1: HTTP 400: ...": the item and field that named the id.
            let field = ids_from.pointer.rsplit('/').next().unwrap_or("id");
            fetch
                .failures
                .push(format!("{} {field} {id}: {why}", ids_from.from.trim_end_matches('s')));
        }
        if base.as_ref().is_some_and(|b| b.answers.contains_key(id)) {
            carry.insert(id.clone());
        }
    }
    if let Some(b) = &base {
        fetch.carried += b.carry(calls, &carry)?;
    }
    Ok(())
}

/// Fails a per-id source whose refused calls are more than `max_ratio` of its calls (all
/// tenants): a request the API refuses every time is a bug, not data.
pub fn check_refusals(fetch: &SourceFetch, max_ratio: f64) -> Result<(), ExtractError> {
    if fetch.failed > 0 && fetch.failed as f64 > max_ratio * fetch.called as f64 {
        return Err(ExtractError::Refused {
            source_name: fetch.source.clone(),
            failed: fetch.failed,
            called: fetch.called,
            first: fetch.failures.first().cloned().unwrap_or_default(),
        });
    }
    Ok(())
}

/// One call per id (with its body, for a `POST`); returns how many were answered 404
/// ("none") and the calls the API refused, by id.
async fn per_id_calls(
    calls: &TenantCalls<'_>,
    ids: Vec<String>,
    mut bodies: HashMap<String, Vec<u8>>,
) -> Result<(u64, Vec<(String, String)>), ExtractError> {
    let requests: Vec<(String, Option<Vec<u8>>)> = ids
        .into_iter()
        .map(|id| {
            let body = bodies.remove(&id);
            (id, body)
        })
        .collect();
    let stream = futures::stream::iter(requests)
        .map(|(id, body)| {
            let client = calls.client.clone();
            let method = calls.method.clone();
            let url = calls.client.url(&calls.path.replace("{id}", &id));
            async move {
                let body = match (&method, body) {
                    (&Method::POST, None) => Some(serde_json::json!({ "id": id }).to_string().into_bytes()),
                    (_, b) => b,
                };
                let answer = client.call(method, &url?, body.as_deref(), true).await;
                Ok::<_, client::Error>((id, answer))
            }
        })
        .buffer_unordered(calls.client.settings().concurrency.max(1));
    futures::pin_mut!(stream);
    let mut not_found = 0;
    let mut refused = Vec::new();
    while let Some((id, answer)) = stream.try_next().await.map_err(|e| calls.api_err(e))? {
        match answer {
            Ok(client::Answer::Json(body)) => calls.keep(Some(&body), Some(&id))?,
            Ok(client::Answer::NotFound) => {
                not_found += 1;
                calls.keep(None, Some(&id))?;
            }
            // The API refused this id's request: that call fails, not the night.
            Err(client::Error::Status { status, body, .. }) => {
                tracing::warn!(source = calls.source.name(), id = %id, status, "the API refused the call");
                refused.push((id, format!("HTTP {status}: {body}")));
                calls.tick();
            }
            Err(e) => return Err(calls.api_err(e)),
        }
    }
    Ok((not_found, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINAL: Settled = Settled::Answer {
        pointer: "/status",
        values: &["completed"],
    };

    fn state(fp: Option<u64>, item_final: Option<bool>) -> IdState {
        IdState {
            fingerprint: fp,
            item_final,
        }
    }

    #[test]
    fn only_ids_that_can_have_changed_are_asked() {
        let settled = PrevAnswer {
            found: true,
            answer_final: true,
        };
        let open = PrevAnswer {
            found: true,
            answer_final: false,
        };
        let today = state(Some(7), None);
        assert_eq!(decide(FINAL, &today, None), Decision::Ask(Reason::Full));
        assert_eq!(decide(FINAL, &today, Some((None, None))), Decision::Ask(Reason::New));
        assert_eq!(
            decide(FINAL, &today, Some((Some(&settled), Some(8)))),
            Decision::Ask(Reason::Changed)
        );
        assert_eq!(
            decide(FINAL, &today, Some((Some(&open), Some(7)))),
            Decision::Ask(Reason::Unsettled)
        );
        assert_eq!(decide(FINAL, &today, Some((Some(&settled), Some(7)))), Decision::Carry);
        // An id of the job's lists: no items on either day.
        assert_eq!(
            decide(Settled::Always, &state(None, None), Some((Some(&open), None))),
            Decision::Carry
        );
        assert_eq!(
            decide(Settled::Never, &today, Some((Some(&settled), Some(7)))),
            Decision::Ask(Reason::Unsettled)
        );
        let item_rule = Settled::Item {
            pointer: "/status",
            values: &["completed"],
        };
        assert_eq!(
            decide(item_rule, &state(Some(7), Some(true)), Some((Some(&open), Some(7)))),
            Decision::Carry
        );
        assert_eq!(
            decide(item_rule, &state(Some(7), Some(false)), Some((Some(&open), Some(7)))),
            Decision::Ask(Reason::Unsettled)
        );
        // A 404 is no record: never final under an answer rule.
        let none = PrevAnswer {
            found: false,
            answer_final: false,
        };
        assert_eq!(
            decide(FINAL, &today, Some((Some(&none), Some(7)))),
            Decision::Ask(Reason::Unsettled)
        );
    }

    #[test]
    fn ids_carry_a_fingerprint_of_the_items_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let w = raw::RawWriter::new(dir.path().join("memos"));
        w.write(br#"{"data": {"memos": [{"id": "m1", "customer_num": 7}, {"id": "m2", "customer_num": "7"}]}}"#)
            .unwrap();
        w.write(br#"{"data": {"memos": [{"id": "m3", "customer_num": 8}]}}"#)
            .unwrap();
        w.finish().unwrap();
        let ids_from = IdSource {
            from: "memos",
            pointer: "/customer_num",
            known: &[],
            body: None,
            settled: Settled::Always,
        };
        let memos = crate::sources::memos::Memos;
        let ids = scan_ids(&dir.path().join("memos"), &memos, ids_from).unwrap();
        assert_eq!(ids.keys().collect::<Vec<_>>(), ["7", "8"]);
        let h = |s: &[u8]| xxhash_rust::xxh3::xxh3_64(s);
        assert_eq!(
            ids["7"].fingerprint,
            Some(h(br#"{"id": "m1", "customer_num": 7}"#).wrapping_add(h(br#"{"id": "m2", "customer_num": "7"}"#)))
        );
        assert_ne!(ids["7"].fingerprint, ids["8"].fingerprint);
    }
}
