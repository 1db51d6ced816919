//! Fault injection for `/v0` routes: latency (with jitter), dropped connections, a per-key token-bucket rate
//! limit answering 429 with `Retry-After` (whole seconds) and `Retry-After-Ms`, a fraction of injected 5xx,
//! and lost answers: the request is handled, its change made, and the connection then closes without the
//! answer, as when a load balancer or the network fails on the way back. Only lost answers tell whether a
//! client retries a create blindly (a second invitation, a second sandbox) or looks again first.
//!
//! Scripted faults (`POST /_sim/faults/script`) come first: "answer the next 2 `PUT /v0/sandboxes/{name}`
//! with 503", "drop the next request". They use no randomness and consume no rate-limit tokens, so a test can
//! provoke exactly the failure it is about.
//!
//! Every random choice comes from one `StdRng`, seeded by `--seed` when given, and is drawn in a fixed order
//! per request, so a sequential client sees the same faults on every run. Rate-limit buckets refill on the
//! simulator clock, so tests can refill them with `POST /_sim/clock/advance` instead of waiting.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::clock::SimTime;
use super::config::Faults;
use super::conn::ConnHandle;
use super::error::{ApiError, ErrorShape};
use super::state::{Sim, lock, make_rng};

/// Most rate-limit buckets kept; beyond this (a flood of distinct bogus keys) they all start over full.
const MAX_BUCKETS: usize = 10_000;

/// Salt of the fault injector's random stream.
const FAULT_SALT: u64 = 0xfa17_0002;

/// Marks a response produced by fault injection (read by the statistics middleware).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMark {
    /// The connection was killed; the response is never sent.
    Dropped,
    /// Answered 429.
    RateLimited,
    /// Answered with an injected 5xx.
    Injected,
    /// Handled, then the connection was killed: the change was made, the answer never sent.
    LostAnswer,
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Handle normally.
    Pass,
    /// Close the connection without answering.
    Drop,
    /// Answer 429; the client may retry after this long.
    RateLimited(Duration),
    /// Answer this status (a 5xx, or any status a script asks for), with an optional `Retry-After`.
    Error(StatusCode, Option<Duration>),
    /// Handle it normally, then close the connection without the answer.
    LoseAnswer,
}

/// A fault scripted for the next matching requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptedFault {
    /// The request to match, as `METHOD /v0/template` (e.g. `PUT /v0/sandboxes/{name}`, as in the stats);
    /// absent: any API request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The status to answer (400-599); 429 answers carry `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Close the connection without answering instead.
    #[serde(default)]
    pub drop: bool,
    /// Handle the request (its change is made), then close the connection without the answer.
    #[serde(default)]
    pub lose_answer: bool,
    /// `Retry-After` to send, in milliseconds (default for 429: 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// How many matching requests it applies to.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl ScriptedFault {
    /// Checks that it says one thing to do, at least once.
    ///
    /// # Errors
    /// What is wrong, for a 400.
    pub fn validate(&self) -> Result<(), String> {
        let given = [self.status.is_some(), self.drop, self.lose_answer];
        match given.iter().filter(|g| **g).count() {
            0 => {
                return Err("give a status (400-599), drop: true or loseAnswer: true".to_owned());
            }
            1 => {}
            _ => return Err("give one of status, drop and loseAnswer".to_owned()),
        }
        if let Some(s) = self.status.filter(|s| !(400..=599).contains(s)) {
            return Err(format!("status must be between 400 and 599, got {s}"));
        }
        if self.times == 0 {
            return Err("times must be at least 1".to_owned());
        }
        Ok(())
    }

    fn decision(&self) -> Decision {
        if self.drop {
            return Decision::Drop;
        }
        if self.lose_answer {
            return Decision::LoseAnswer;
        }
        let status = self
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after_ms.map(Duration::from_millis);
        if status == StatusCode::TOO_MANY_REQUESTS {
            Decision::RateLimited(retry.unwrap_or(Duration::from_secs(1)))
        } else {
            Decision::Error(status, retry)
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: SimTime,
}

/// The faults in force, their random stream and the rate-limit buckets.
#[derive(Debug)]
pub struct FaultState {
    /// Current settings.
    pub faults: Faults,
    rng: StdRng,
    buckets: HashMap<String, Bucket>,
    /// Scripted faults, consumed in order.
    pub script: Vec<ScriptedFault>,
}

impl FaultState {
    /// Fresh state for these settings.
    #[must_use]
    pub fn new(faults: Faults, seed: Option<u64>) -> Self {
        Self {
            faults,
            rng: make_rng(seed, FAULT_SALT),
            buckets: HashMap::new(),
            script: Vec::new(),
        }
    }

    /// Replaces the settings; buckets start full again. A seed restarts the random stream.
    pub fn set(&mut self, faults: Faults, seed: Option<u64>) {
        self.faults = faults;
        self.buckets.clear();
        if let Some(s) = seed {
            self.rng = make_rng(Some(s), FAULT_SALT);
        }
    }

    /// Takes one use of the first scripted fault matching `route`.
    fn scripted(&mut self, route: &str) -> Option<Decision> {
        let i = self
            .script
            .iter()
            .position(|s| s.route.as_deref().is_none_or(|r| r == route))?;
        let entry = self.script.get_mut(i)?;
        let decision = entry.decision();
        entry.times = entry.times.saturating_sub(1);
        if entry.times == 0 {
            self.script.remove(i);
        }
        Some(decision)
    }

    /// Decides the latency and the fate of one request from `key` to `route` (`METHOD /v0/template`) at `now`.
    pub fn decide(&mut self, key: &str, route: &str, now: SimTime) -> (Duration, Decision) {
        let f = &self.faults;
        let mut latency = f.latency;
        if !f.latency_jitter.is_zero() {
            let extra: f64 = self.rng.random();
            latency += f.latency_jitter.mul_f64(extra);
        }
        if let Some(d) = self.scripted(route) {
            return (latency, d);
        }
        let f = &self.faults;
        if f.drop_rate > 0.0 && self.rng.random::<f64>() < f.drop_rate {
            return (latency, Decision::Drop);
        }
        if let Some(rl) = f.rate_limit {
            let burst = f64::from(rl.burst);
            if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(key) {
                self.buckets.clear();
            }
            let b = self.buckets.entry(key.to_owned()).or_insert(Bucket {
                tokens: burst,
                at: now,
            });
            let elapsed = now.since(b.at).as_secs_f64();
            b.tokens = (b.tokens + elapsed * rl.per_second).min(burst);
            b.at = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
            } else {
                let wait = Duration::from_secs_f64(((1.0 - b.tokens) / rl.per_second).max(0.001));
                return (latency, Decision::RateLimited(wait));
            }
        }
        if f.error_rate > 0.0 && self.rng.random::<f64>() < f.error_rate {
            let status = if self.rng.random::<bool>() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return (latency, Decision::Error(status, None));
        }
        // Drawn only when set, so seeded runs without it see the same faults as before it existed.
        if f.lost_answer_rate > 0.0 && self.rng.random::<f64>() < f.lost_answer_rate {
            return (latency, Decision::LoseAnswer);
        }
        (latency, Decision::Pass)
    }
}

/// Applies the faults in force to one `/v0` request.
pub async fn middleware(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let key = super::auth::bearer_token(req.headers()).unwrap_or_default();
    let route = format!(
        "{} {}",
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map_or(super::stats::UNMATCHED, MatchedPath::as_str)
    );
    let (latency, decision) = {
        let now = sim.clock.now();
        lock(&sim.faults).decide(&key, &route, now)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let shape = ErrorShape::for_route(req.method(), req.uri().path());
    let conn = req.extensions().get::<ConnectInfo<ConnHandle>>().cloned();
    let (mut resp, mark) = match decision {
        Decision::Pass => return next.run(req).await,
        Decision::LoseAnswer => {
            let resp = next.run(req).await;
            if let Some(ConnectInfo(conn)) = conn {
                conn.kill();
            }
            (resp, FaultMark::LostAnswer)
        }
        Decision::Drop => {
            if let Some(ConnectInfo(conn)) = conn {
                conn.kill();
            }
            let e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "DROPPED",
                "connection dropped (fault injection)",
            );
            (e.into_response(), FaultMark::Dropped)
        }
        Decision::RateLimited(wait) => (
            ApiError::rate_limited(wait)
                .with_shape(shape)
                .into_response(),
            FaultMark::RateLimited,
        ),
        Decision::Error(status, retry_after) => {
            let mut e = ApiError::new(
                status,
                "INJECTED_FAULT",
                format!("simulated {} (fault injection)", status.as_u16()),
            )
            .with_shape(shape);
            e.retry_after = retry_after;
            (e.into_response(), FaultMark::Injected)
        }
    };
    resp.extensions_mut().insert(mark);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::RateLimit;

    /// The bucket admits `burst` requests at once, then answers 429 with the exact wait until the next
    /// token, and refills with the simulator clock.
    #[test]
    fn token_bucket() {
        let faults = Faults {
            rate_limit: Some(RateLimit {
                per_second: 2.0,
                burst: 2,
            }),
            ..Faults::default()
        };
        let mut s = FaultState::new(faults, Some(1));
        assert_eq!(s.decide("k", "GET /v0/users", SimTime(0)).1, Decision::Pass);
        assert_eq!(s.decide("k", "GET /v0/users", SimTime(0)).1, Decision::Pass);
        assert_eq!(
            s.decide("k", "GET /v0/users", SimTime(0)).1,
            Decision::RateLimited(Duration::from_millis(500))
        );
        // Another key has its own bucket.
        assert_eq!(
            s.decide("other", "GET /v0/users", SimTime(0)).1,
            Decision::Pass
        );
        assert_eq!(
            s.decide("k", "GET /v0/users", SimTime(500)).1,
            Decision::Pass
        );
    }

    /// Only a request that would be handled can lose its answer: one refused by the rate limit is refused.
    #[test]
    fn lost_answers_follow_the_other_faults() {
        let faults = Faults {
            rate_limit: Some(RateLimit {
                per_second: 1.0,
                burst: 1,
            }),
            lost_answer_rate: 1.0,
            ..Faults::default()
        };
        let mut s = FaultState::new(faults, Some(1));
        assert_eq!(
            s.decide("k", "POST /v0/users", SimTime(0)).1,
            Decision::LoseAnswer
        );
        assert!(matches!(
            s.decide("k", "POST /v0/users", SimTime(0)).1,
            Decision::RateLimited(_)
        ));
    }

    /// The same seed gives the same sequence of injected errors.
    #[test]
    fn seeded_errors_are_reproducible() {
        let faults = Faults {
            error_rate: 0.3,
            ..Faults::default()
        };
        let run = || {
            let mut s = FaultState::new(faults.clone(), Some(42));
            (0..200)
                .map(|_| s.decide("k", "GET /v0/users", SimTime(0)).1)
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let errors = a
            .iter()
            .filter(|d| matches!(d, Decision::Error(..)))
            .count();
        assert!((40..=80).contains(&errors), "{errors}");
    }
}
