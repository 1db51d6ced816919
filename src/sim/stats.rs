//! Request statistics for `/v0` routes, served at `GET /_sim/stats`. Tests and benchmarks read these to
//! know exactly what a client sent (how many writes, how many retries, which statuses) instead of guessing.
//!
//! Requests are counted per method, route template (`PUT /v0/sandboxes/{name}`; `<unmatched>` for unknown
//! paths) and outcome: the HTTP status; `dropped` for connections closed by fault injection before the
//! request was handled; `lost` for those closed after it was handled (its change made, the answer lost).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use super::faults::FaultMark;
use super::state::{Sim, lock};

/// Route template of requests that matched no route.
pub const UNMATCHED: &str = "<unmatched>";

/// The outcome key of dropped connections.
pub const DROPPED: &str = "dropped";

/// The outcome key of answers lost after the request was handled.
pub const LOST: &str = "lost";

/// Counters since start (or the last reset).
#[derive(Debug, Default)]
pub struct Stats {
    total: u64,
    counts: HashMap<(String, String, String), u64>,
    delayed: u64,
    rate_limited: u64,
    injected_errors: u64,
    dropped: u64,
    lost_answers: u64,
}

impl Stats {
    /// Counts one request.
    pub fn record(
        &mut self,
        method: &str,
        route: &str,
        outcome: String,
        mark: Option<FaultMark>,
        delayed: bool,
    ) {
        self.total += 1;
        *self
            .counts
            .entry((method.to_owned(), route.to_owned(), outcome))
            .or_default() += 1;
        if delayed {
            self.delayed += 1;
        }
        match mark {
            Some(FaultMark::Dropped) => self.dropped += 1,
            Some(FaultMark::RateLimited) => self.rate_limited += 1,
            Some(FaultMark::Injected) => self.injected_errors += 1,
            Some(FaultMark::LostAnswer) => self.lost_answers += 1,
            None => {}
        }
    }

    /// The JSON served at `GET /_sim/stats`:
    ///
    /// ```json
    /// { "total": 7,
    ///   "byStatus": {"200": 5, "409": 1, "dropped": 1},
    ///   "byMethod": {"GET": 3, "POST": 4},
    ///   "byRoute": {"POST /v0/sandboxes": {"total": 4, "byStatus": {"200": 2, "409": 1, "dropped": 1}}},
    ///   "faults": {"delayed": 0, "rateLimited": 0, "injectedErrors": 0, "dropped": 1, "lostAnswers": 0} }
    /// ```
    #[must_use]
    pub fn snapshot(&self) -> Value {
        let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_method: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_route: BTreeMap<String, (u64, BTreeMap<&str, u64>)> = BTreeMap::new();
        for ((method, route, outcome), n) in &self.counts {
            *by_status.entry(outcome).or_default() += n;
            *by_method.entry(method).or_default() += n;
            let e = by_route.entry(format!("{method} {route}")).or_default();
            e.0 += n;
            *e.1.entry(outcome).or_default() += n;
        }
        let by_route: BTreeMap<String, Value> = by_route
            .into_iter()
            .map(|(k, (total, statuses))| (k, json!({ "total": total, "byStatus": statuses })))
            .collect();
        json!({
            "total": self.total,
            "byStatus": by_status,
            "byMethod": by_method,
            "byRoute": by_route,
            "faults": {
                "delayed": self.delayed,
                "rateLimited": self.rate_limited,
                "injectedErrors": self.injected_errors,
                "dropped": self.dropped,
                "lostAnswers": self.lost_answers,
            },
        })
    }
}

/// Counts every `/v0` request after it has been answered (or dropped).
pub async fn middleware(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let delayed = {
        let f = &lock(&sim.faults).faults;
        !(f.latency.is_zero() && f.latency_jitter.is_zero())
    };
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let mark = resp.extensions().get::<FaultMark>().copied();
    let outcome = match mark {
        Some(FaultMark::Dropped) => DROPPED.to_owned(),
        Some(FaultMark::LostAnswer) => LOST.to_owned(),
        _ => resp.status().as_u16().to_string(),
    };
    tracing::debug!(
        method = %method,
        route = %route,
        outcome = %outcome,
        fault = ?mark,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "simulator request"
    );
    lock(&sim.stats).record(&method, &route, outcome, mark, delayed);
    resp
}
