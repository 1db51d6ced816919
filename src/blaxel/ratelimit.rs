//! Client-side rate limiting: one token bucket per credential, shared by every caller of an `HttpClient`.
//!
//! Every HTTP attempt (retries included) first takes a token from its credential's bucket, waiting
//! asynchronously when the bucket is empty. A bucket holds at most `burst` tokens and refills at `rate`
//! tokens per second. A 429 from the server also holds the whole credential back until its `Retry-After`
//! has passed ([`RateLimiter::hold_off`]), so concurrent reconcilers do not keep hammering a throttled key.
//!
//! Buckets are keyed by the [`ApiKey`] itself (exact; the key already lives in this process) and run on
//! `tokio::time`, so tests drive them with a paused clock. The cumulative wait is exposed as
//! [`RateLimitStats`] for metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::secret::ApiKey;

/// Buckets kept before idle (full) ones are pruned, so rotated keys do not accumulate.
const PRUNE_ABOVE: usize = 64;

/// Cumulative rate-limiter waits since the client was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitStats {
    /// How many attempts had to wait for a token.
    pub waits: u64,
    /// The total time those attempts waited.
    pub total_wait: Duration,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens available at `at`; negative when callers have reserved tokens not yet refilled.
    tokens: f64,
    /// The instant `tokens` refers to; in the future while the credential is held off.
    at: Instant,
}

/// Token buckets per credential.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<ApiKey, Bucket>>,
    waits: AtomicU64,
    wait_nanos: AtomicU64,
}

impl RateLimiter {
    /// A limiter allowing `rate` requests per second per credential, with bursts of up to `burst`.
    ///
    /// `rate` must be positive and finite and `burst` at least 1 (the client's configuration checks this).
    #[must_use]
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
            waits: AtomicU64::new(0),
            wait_nanos: AtomicU64::new(0),
        }
    }

    /// Takes a token for `key`, waiting until one is available; returns how long it waited.
    pub async fn acquire(&self, key: &ApiKey) -> Duration {
        let wait = self.reserve(key, Instant::now());
        if !wait.is_zero() {
            tracing::debug!(
                credential = %key.fingerprint(),
                wait_ms = wait.as_millis(),
                "rate limiter wait"
            );
            tokio::time::sleep(wait).await;
            self.waits.fetch_add(1, Ordering::Relaxed);
            let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
            self.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
        wait
    }

    /// Holds every request with `key` back until `until` (the server's `Retry-After`); after that the
    /// bucket restarts with at most one token, so the retry goes first and the rest follow at `rate`.
    pub fn hold_off(&self, key: &ApiKey, until: Instant) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        self.refill(bucket, now);
        if until > bucket.at {
            bucket.tokens = bucket.tokens.min(1.0);
            bucket.at = until;
        }
    }

    /// The cumulative waits so far.
    #[must_use]
    pub fn stats(&self) -> RateLimitStats {
        RateLimitStats {
            waits: self.waits.load(Ordering::Relaxed),
            total_wait: Duration::from_nanos(self.wait_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Reserves a token for `key` at `now` and returns how long the caller must wait before using it.
    fn reserve(&self, key: &ApiKey, now: Instant) -> Duration {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= PRUNE_ABOVE && !buckets.contains_key(key) {
            buckets.retain(|_, bucket| !self.is_idle(bucket, now));
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        self.refill(bucket, now);
        bucket.tokens -= 1.0;
        let held = bucket.at.saturating_duration_since(now);
        let deficit = if bucket.tokens < 0.0 {
            micros_ceil(-bucket.tokens / self.rate)
        } else {
            Duration::ZERO
        };
        held + deficit
    }

    /// Brings `bucket` forward to `now` (no-op while it is held off into the future).
    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        if now > bucket.at {
            let elapsed = now.duration_since(bucket.at).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
            bucket.at = now;
        }
    }

    /// True when the bucket would be full at `now`: forgetting it changes nothing.
    fn is_idle(&self, bucket: &Bucket, now: Instant) -> bool {
        now >= bucket.at
            && bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.rate >= self.burst
    }
}

/// Seconds to a `Duration`, rounded up to the microsecond so float error never undershoots the rate.
fn micros_ceil(seconds: f64) -> Duration {
    // Saturating float-to-int cast; the value is non-negative and finite (rate is positive and finite).
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "saturating, non-negative"
    )]
    let micros = (seconds * 1e6).ceil() as u64;
    Duration::from_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> ApiKey {
        ApiKey::new(text)
    }

    /// `actual` is `expected_ms` give or take the timer's millisecond granularity.
    fn assert_about(actual: Duration, expected_ms: u64) {
        let expected = Duration::from_millis(expected_ms);
        let slack = Duration::from_millis(2);
        assert!(
            actual + slack >= expected && actual <= expected + slack,
            "{actual:?} is not about {expected:?}"
        );
    }

    /// `burst` requests pass at once; the rest are spaced at `1/rate`, so N take (N-burst)/rate.
    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let limiter = RateLimiter::new(10.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.acquire(&key("a")).await, Duration::ZERO);
        }
        for _ in 0..7 {
            limiter.acquire(&key("a")).await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(710), "{elapsed:?}");
        let stats = limiter.stats();
        assert_eq!(stats.waits, 7);
        assert!(stats.total_wait >= Duration::from_millis(700));
    }

    /// Concurrent callers share one bucket: reservations queue up instead of all passing.
    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_bucket() {
        let limiter = RateLimiter::new(5.0, 1);
        let start = Instant::now();
        let key = key("a");
        let mut waits = futures::future::join_all((0..6).map(|_| limiter.acquire(&key))).await;
        waits.sort_unstable();
        for (wait, expected_ms) in waits.into_iter().zip([0, 200, 400, 600, 800, 1000]) {
            assert_about(wait, expected_ms);
        }
        assert!(start.elapsed() >= Duration::from_secs(1));
    }

    /// Each credential has its own bucket: one key's burst does not slow another key.
    #[tokio::test(start_paused = true)]
    async fn credentials_are_independent() {
        let limiter = RateLimiter::new(1.0, 1);
        assert_eq!(limiter.acquire(&key("a")).await, Duration::ZERO);
        assert_eq!(limiter.acquire(&key("b")).await, Duration::ZERO);
        assert_about(limiter.acquire(&key("a")).await, 1000);
    }

    /// An idle bucket refills to `burst` and no further.
    #[test]
    fn refill_is_capped_at_burst() {
        let limiter = RateLimiter::new(2.0, 2);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(limiter.reserve(&key("a"), t0), Duration::ZERO);
        }
        assert_eq!(limiter.reserve(&key("a"), t0), Duration::from_millis(500));
        // Long idle: still only `burst` immediate tokens.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(limiter.reserve(&key("a"), later), Duration::ZERO);
        assert_eq!(limiter.reserve(&key("a"), later), Duration::ZERO);
        assert_eq!(
            limiter.reserve(&key("a"), later),
            Duration::from_millis(500)
        );
    }

    /// A hold-off (server `Retry-After`) delays every caller of the credential, then paces them at `rate`.
    #[tokio::test(start_paused = true)]
    async fn hold_off_delays_the_credential() {
        let limiter = RateLimiter::new(10.0, 5);
        let now = Instant::now();
        limiter.hold_off(&key("a"), now + Duration::from_secs(2));
        assert_about(limiter.acquire(&key("a")).await, 2000);
        assert_about(limiter.acquire(&key("a")).await, 100);
        assert_eq!(limiter.acquire(&key("b")).await, Duration::ZERO);
    }

    /// Idle buckets of forgotten keys are pruned once many keys have been seen.
    #[test]
    fn idle_buckets_are_pruned() {
        let limiter = RateLimiter::new(1.0, 1);
        let t0 = Instant::now();
        for n in 0..PRUNE_ABOVE {
            limiter.reserve(&key(&format!("k{n}")), t0);
        }
        limiter.reserve(&key("new"), t0 + Duration::from_secs(5));
        let buckets = limiter
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        assert_eq!(buckets.len(), 1);
    }
}
