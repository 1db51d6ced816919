//! Per-object retry delays: capped exponential backoff with jitter, reset on success.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;

/// Failure counts per object and the delay rule.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Delays start around `base` and double per consecutive failure up to `cap`.
    #[must_use]
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap, failures: Mutex::new(HashMap::new()) }
    }

    /// Counts a failure of `key` and returns the delay before the next attempt: a random value in the upper
    /// half of `base * 2^(failures-1)` (capped), and never less than `at_least` (a server's Retry-After).
    pub fn next(&self, key: &str, at_least: Option<Duration>) -> Duration {
        let failures = {
            let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
            let n = map.entry(key.to_owned()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let exp = self.base.saturating_mul(1u32 << failures.saturating_sub(1).min(20)).min(self.cap);
        let jittered = exp.mul_f64(rand::rng().random_range(0.5..=1.0));
        jittered.max(at_least.unwrap_or_default())
    }

    /// Forgets `key`'s failures after a success.
    pub fn reset(&self, key: &str) {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// How many objects are backing off now.
    #[must_use]
    pub fn in_backoff(&self) -> usize {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delays grow, stay within [cap/2, cap] once capped, and reset on success.
    #[test]
    fn grows_caps_and_resets() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let first = b.next("x", None);
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
        for _ in 0..20 {
            b.next("x", None);
        }
        let capped = b.next("x", None);
        assert!(capped >= Duration::from_secs(30) && capped <= Duration::from_secs(60), "{capped:?}");
        assert_eq!(b.in_backoff(), 1);
        b.reset("x");
        assert_eq!(b.in_backoff(), 0);
        assert!(b.next("x", None) <= Duration::from_secs(1));
    }

    /// A server's Retry-After is a floor.
    #[test]
    fn retry_after_is_a_floor() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        assert!(b.next("y", Some(Duration::from_secs(7))) >= Duration::from_secs(7));
    }

    /// Objects back off independently.
    #[test]
    fn per_object() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..5 {
            b.next("a", None);
        }
        assert!(b.next("b", None) <= Duration::from_secs(1));
    }
}
