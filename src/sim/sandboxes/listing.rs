//! `GET /sandboxes`: a bare array, or (2026 generation, `Blaxel-Version >= 2026-04-28`) a page with a cursor.
//! Filters (`status`, `showTerminated`, `externalId`, `q`) and sorts are the 2026 definition's; a cursor is
//! bound to the query that issued it.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::record::{Phase, STATUSES, SandboxRecord};
use super::render::{render, render_with};
use super::routes::{book, malformed_sandboxes};
use crate::sim::auth::Caller;
use crate::sim::body::SimQuery;
use crate::sim::clock::SimTime;
use crate::sim::config::ApiGeneration;
use crate::sim::error::ApiError;
use crate::sim::state::Sim;
use crate::sim::util::{fnv1a, hex_decode, hex_encode};

/// First `Blaxel-Version` whose `GET /sandboxes` is paginated.
pub const PAGINATED_VERSION: &str = "2026-04-28";
/// Page size when `limit` is absent.
pub const DEFAULT_PAGE: usize = 50;
/// Largest page (larger `limit`s are clamped).
pub const MAX_PAGE: usize = 200;

/// Sort orders of the paginated listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    CreatedDesc,
    CreatedAsc,
    NameAsc,
    NameDesc,
}

impl Sort {
    fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s.unwrap_or("createdAt:desc") {
            "createdAt:desc" => Ok(Self::CreatedDesc),
            "createdAt:asc" => Ok(Self::CreatedAsc),
            "name:asc" => Ok(Self::NameAsc),
            "name:desc" => Ok(Self::NameDesc),
            other => Err(ApiError::bad_request(format!(
                "invalid sort {other:?}: expected createdAt:desc, createdAt:asc, name:asc or name:desc"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::CreatedDesc => "createdAt:desc",
            Self::CreatedAsc => "createdAt:asc",
            Self::NameAsc => "name:asc",
            Self::NameDesc => "name:desc",
        }
    }
}

/// Which sandboxes a listing shows.
struct Filter {
    statuses: Option<BTreeSet<&'static str>>,
    show_terminated: bool,
    external_id: Option<String>,
    q: Option<String>,
}

impl Filter {
    fn fingerprint(&self, sort: Sort) -> String {
        let statuses = self
            .statuses
            .as_ref()
            .map(|s| s.iter().copied().collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let raw = format!(
            "{}|{statuses}|{}|{}|{}",
            sort.as_str(),
            self.show_terminated,
            self.external_id.as_deref().unwrap_or(""),
            self.q.as_deref().unwrap_or("")
        );
        format!("{:016x}", fnv1a(raw.as_bytes()))
    }

    fn accepts(&self, r: &SandboxRecord, phase: Phase) -> bool {
        if phase == Phase::Gone {
            return false;
        }
        match &self.statuses {
            Some(s) if !s.contains(phase.as_str()) => return false,
            None if phase == Phase::Terminated && !self.show_terminated => return false,
            _ => {}
        }
        if let Some(x) = &self.external_id
            && r.external_id.as_ref() != Some(x)
        {
            return false;
        }
        if let Some(q) = &self.q {
            let hit = r.name.contains(q.as_str())
                || r.display_name
                    .as_ref()
                    .is_some_and(|d| d.to_lowercase().contains(q.as_str()))
                || r.labels.iter().any(|(k, v)| {
                    k.to_lowercase().contains(q.as_str())
                        || v.as_str()
                            .is_some_and(|v| v.to_lowercase().contains(q.as_str()))
                });
            if !hit {
                return false;
            }
        }
        true
    }
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    created: SimTime,
    seq: u64,
    name: String,
}

fn encode_cursor(fp: &str, r: &SandboxRecord) -> String {
    hex_encode(format!("v1\n{fp}\n{}\n{}\n{}", r.created_at.0, r.seq, r.name).as_bytes())
}

fn decode_cursor(s: &str, fp: &str) -> Result<Cursor, ApiError> {
    let bad = || ApiError::bad_request("invalid cursor: pass back meta.nextCursor unchanged");
    let raw = String::from_utf8(hex_decode(s).ok_or_else(bad)?).map_err(|_| bad())?;
    let parts: Vec<&str> = raw.splitn(5, '\n').collect();
    let [version, cfp, created, seq, name] = parts.as_slice() else {
        return Err(bad());
    };
    if *version != "v1" {
        return Err(bad());
    }
    if cfp != &fp {
        return Err(ApiError::bad_request(
            "cursor was issued for a different query (sort or filters changed)",
        ));
    }
    Ok(Cursor {
        created: SimTime(created.parse().map_err(|_| bad())?),
        seq: seq.parse().map_err(|_| bad())?,
        name: (*name).to_owned(),
    })
}

/// Whether the request asks for the paginated listing (`Blaxel-Version` at or after 2026-04-28).
fn wants_pagination(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(v) = headers.get("blaxel-version") else {
        return Ok(false);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid Blaxel-Version header"))?
        .trim();
    let date: jiff::civil::Date = v.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid Blaxel-Version {v:?}: expected a date like 2026-04-28"
        ))
    })?;
    let threshold: jiff::civil::Date = PAGINATED_VERSION.parse().map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "bad version constant",
        )
    })?;
    Ok(date >= threshold)
}

fn parse_bool(q: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(v) => Err(ApiError::bad_request(format!(
            "invalid {key} {v:?}: expected true or false"
        ))),
    }
}

fn parse_limit(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(v) => match v.parse::<u64>() {
            Ok(0) | Err(_) => Err(ApiError::bad_request(format!(
                "invalid limit {v:?}: expected an integer from 1 to {MAX_PAGE}"
            ))),
            Ok(n) => Ok(usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE)),
        },
    }
}

fn parse_filter(q: &HashMap<String, String>, paginated: bool) -> Result<Filter, ApiError> {
    let statuses = match q.get("status").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => None,
        Some(list) => {
            let mut set = BTreeSet::new();
            for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let upper = s.to_ascii_uppercase();
                let known = STATUSES.iter().find(|k| **k == upper).ok_or_else(|| {
                    ApiError::bad_request(format!("unknown status {s:?} in status filter"))
                })?;
                set.insert(*known);
            }
            // Selecting every status is the same as not filtering.
            (set.len() < STATUSES.len()).then_some(set)
        }
    };
    let q_search = if paginated {
        q.get("q")
            .map(|s| s.trim().to_lowercase())
            .filter(|s| s.chars().count() >= 2)
    } else {
        None
    };
    if q_search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(ApiError::bad_request("q must be at most 200 characters"));
    }
    Ok(Filter {
        statuses,
        show_terminated: parse_bool(q, "showTerminated")?,
        external_id: q.get("externalId").filter(|s| !s.is_empty()).cloned(),
        q: q_search,
    })
}

/// `GET /sandboxes`: a bare array, or (2026 generation with `Blaxel-Version >= 2026-04-28`) a page
/// `{data, meta: {hasMore, nextCursor, total}}`.
#[allow(
    clippy::implicit_hasher,
    reason = "the query extractor's concrete map type"
)]
pub async fn list(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    headers: HeaderMap,
    SimQuery(q): SimQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let cfg = &sim.config;
    let now = sim.clock.now();
    if cfg.generation == ApiGeneration::V2025 {
        let mut world = sim.world();
        let b = book(&mut world, &caller.workspace, now, cfg)?;
        let mut items: Vec<Value> = b
            .iter()
            .filter(|r| r.phase(now, cfg) != Phase::Gone)
            .map(|r| render(r, &caller.workspace, now, &sim))
            .collect();
        items.extend(malformed_sandboxes(&world, &caller.workspace));
        return Ok(Json(Value::Array(items)));
    }
    let paginated = wants_pagination(&headers)?;
    let filter = parse_filter(&q, paginated)?;
    if !paginated {
        let mut world = sim.world();
        let b = book(&mut world, &caller.workspace, now, cfg)?;
        let mut items: Vec<Value> = b
            .iter()
            .filter(|r| filter.accepts(r, r.phase(now, cfg)))
            .map(|r| render_with(r, &caller.workspace, now, &sim, false))
            .collect();
        items.extend(malformed_sandboxes(&world, &caller.workspace));
        return Ok(Json(Value::Array(items)));
    }
    let sort = Sort::parse(q.get("sort").map(String::as_str))?;
    let limit = parse_limit(&q)?;
    let fp = filter.fingerprint(sort);
    let cursor = match q.get("cursor").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_cursor(c, &fp)?),
        None => None,
    };
    let mut world = sim.world();
    let b = book(&mut world, &caller.workspace, now, cfg)?;
    let names: Box<dyn Iterator<Item = &String>> = match (sort, &cursor) {
        (Sort::CreatedDesc, None) => Box::new(b.by_created.iter().rev().map(|k| &k.2)),
        (Sort::CreatedDesc, Some(c)) => Box::new(
            b.by_created
                .range(..(c.created, c.seq, c.name.clone()))
                .rev()
                .map(|k| &k.2),
        ),
        (Sort::CreatedAsc, None) => Box::new(b.by_created.iter().map(|k| &k.2)),
        (Sort::CreatedAsc, Some(c)) => Box::new(
            b.by_created
                .range((
                    Bound::Excluded((c.created, c.seq, c.name.clone())),
                    Bound::Unbounded,
                ))
                .map(|k| &k.2),
        ),
        (Sort::NameAsc, None) => Box::new(b.by_name.keys()),
        (Sort::NameAsc, Some(c)) => Box::new(
            b.by_name
                .range::<str, _>((Bound::Excluded(c.name.as_str()), Bound::Unbounded))
                .map(|(k, _)| k),
        ),
        (Sort::NameDesc, None) => Box::new(b.by_name.keys().rev()),
        (Sort::NameDesc, Some(c)) => Box::new(
            b.by_name
                .range::<str, _>((Bound::Unbounded, Bound::Excluded(c.name.as_str())))
                .rev()
                .map(|(k, _)| k),
        ),
    };
    let mut page: Vec<&SandboxRecord> = Vec::with_capacity(limit.min(64) + 1);
    for name in names {
        let Some(r) = b.by_name.get(name) else {
            continue;
        };
        if filter.accepts(r, r.phase(now, cfg)) {
            page.push(r);
            if page.len() > limit {
                break;
            }
        }
    }
    let has_more = page.len() > limit;
    page.truncate(limit);
    let next_cursor = match (has_more, page.last()) {
        (true, Some(last)) => encode_cursor(&fp, last),
        _ => String::new(),
    };
    let mut data: Vec<Value> = page
        .iter()
        .map(|r| render_with(r, &caller.workspace, now, &sim, false))
        .collect();
    let total = b.len();
    // Raw records a test added ride on the last page, whatever the filters: they cannot be sorted or
    // filtered, and a cursor cannot point at them.
    let malformed = malformed_sandboxes(&world, &caller.workspace);
    let total = total + malformed.len();
    if !has_more {
        data.extend(malformed);
    }
    Ok(Json(json!({
        "data": data,
        "meta": { "hasMore": has_more, "nextCursor": next_cursor, "total": total },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::sandboxes::record::tests::record;

    /// Cursors round-trip and refuse to be reused with another query.
    #[test]
    fn cursors() {
        let r = record(true);
        let cur = encode_cursor("fp", &r);
        assert_eq!(
            decode_cursor(&cur, "fp").ok(),
            Some(Cursor {
                created: SimTime(0),
                seq: 1,
                name: "a".into()
            })
        );
        assert!(decode_cursor(&cur, "other").is_err());
        assert!(decode_cursor("zz", "fp").is_err());
        assert!(decode_cursor("", "fp").is_err());
    }
}
