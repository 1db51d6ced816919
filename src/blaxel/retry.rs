//! When the HTTP client tries a request again, and after how long.
//!
//! Only idempotent requests (`GET`, `PUT`, `DELETE`) reach this policy: the client never retries a `POST`
//! (invite, create), so a lost answer cannot send a second invitation or create a second sandbox; the
//! reconciler re-observes instead.
//!
//! The delay is capped exponential backoff with full jitter (a uniform draw in `[0, min(cap, base·2ⁿ)]`),
//! raised to the server's `Retry-After` when it gave one. A `Retry-After` longer than `cap` is not waited
//! out in-process: the error goes back to the caller, whose requeue honours it, so a reconcile worker is
//! never parked for minutes inside one call.

use std::time::Duration;

use super::error::ApiError;

/// How many times, and how patiently, idempotent requests are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per request, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Backoff ceiling before the first retry; doubles for each further retry.
    pub base: Duration,
    /// Upper bound of any in-process wait, `Retry-After` included.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 200 ms base, 10 s cap (Blaxel's own Go SDK retries twice, honouring `Retry-After`).
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The backoff ceiling before retry number `retry` (1 for the first retry): `min(cap, base·2^(retry-1))`.
    #[must_use]
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before trying again after `attempt` (1-based) failed with `error`, or `None` to give up.
    ///
    /// `jitter` is a uniform draw in `[0, 1)`; the result is `jitter · ceiling`, but never less than the
    /// server's `Retry-After`.
    #[must_use]
    pub fn delay(&self, attempt: u32, error: &ApiError, jitter: f64) -> Option<Duration> {
        if attempt >= self.max_attempts || !is_retryable(error) {
            return None;
        }
        let backoff = self.ceiling(attempt).mul_f64(jitter.clamp(0.0, 1.0));
        match error.retry_after() {
            // The server asked for more patience than one call may spend: let the caller requeue.
            Some(retry_after) if retry_after > self.cap => None,
            Some(retry_after) => Some(backoff.max(retry_after)),
            None => Some(backoff),
        }
    }
}

/// True for the failures a repeated identical request may get past: 429, 5xx/408, timeouts and
/// connection failures. Not `Decode`: a well-delivered answer we cannot read will not read better twice.
#[must_use]
pub fn is_retryable(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::RateLimited { .. } | ApiError::Unavailable { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(retry_after: Option<Duration>) -> ApiError {
        ApiError::Unavailable {
            message: "503".into(),
            retry_after,
        }
    }

    /// The backoff ceiling doubles from `base` and never exceeds `cap`, even for huge retry numbers.
    #[test]
    fn ceiling_doubles_up_to_cap() {
        let policy = RetryPolicy {
            max_attempts: 100,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        let ceilings: Vec<_> = (1..=6).map(|n| policy.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(1));
    }

    /// Full jitter: the delay spans `[0, ceiling]` as the draw spans `[0, 1)`.
    #[test]
    fn delay_is_full_jitter_within_bounds() {
        let policy = RetryPolicy::default();
        let error = unavailable(None);
        assert_eq!(policy.delay(1, &error, 0.0), Some(Duration::ZERO));
        assert_eq!(
            policy.delay(2, &error, 0.5),
            Some(Duration::from_millis(200))
        );
        for jitter in [0.0, 0.1, 0.7, 0.999_999] {
            let delay = policy.delay(2, &error, jitter).unwrap_or(Duration::MAX);
            assert!(delay <= policy.ceiling(2), "{delay:?}");
        }
    }

    /// A server's `Retry-After` is a floor on the wait, whatever the jitter draw.
    #[test]
    fn retry_after_is_a_floor() {
        let policy = RetryPolicy::default();
        let limited = ApiError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(policy.delay(1, &limited, 0.0), Some(Duration::from_secs(2)));
        assert_eq!(
            policy.delay(1, &unavailable(Some(Duration::from_secs(3))), 0.9),
            Some(Duration::from_secs(3))
        );
    }

    /// A `Retry-After` beyond the cap is handed back to the caller instead of being waited out in-process.
    #[test]
    fn long_retry_after_gives_up() {
        let policy = RetryPolicy::default();
        let limited = ApiError::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(policy.delay(1, &limited, 0.5), None);
    }

    /// Attempts are bounded, and only transient transport/server failures are retried.
    #[test]
    fn attempts_and_kinds_are_bounded() {
        let policy = RetryPolicy::default();
        let error = unavailable(None);
        assert!(policy.delay(1, &error, 0.5).is_some());
        assert!(policy.delay(2, &error, 0.5).is_some());
        assert_eq!(policy.delay(3, &error, 0.5), None);
        for permanent in [
            ApiError::NotFound {
                message: String::new(),
            },
            ApiError::Conflict {
                message: String::new(),
            },
            ApiError::Unauthorized {
                message: String::new(),
            },
            ApiError::Forbidden {
                message: String::new(),
            },
            ApiError::Invalid {
                message: String::new(),
            },
            ApiError::Decode {
                message: String::new(),
            },
        ] {
            assert_eq!(policy.delay(1, &permanent, 0.5), None, "{permanent:?}");
        }
    }
}
