//! The simulator clock. Every time-based transition (deploy, stop, delete, invitation acceptance and expiry,
//! rate-limit refill) is computed lazily from this clock when a request arrives, so nothing mutates state in
//! the background and tests can jump forward with `POST /_sim/clock/advance` instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A point on the simulator's timeline: milliseconds since the simulator started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct SimTime(pub u64);

impl SimTime {
    /// This time plus a duration (saturating).
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_ms(d)))
    }

    /// Milliseconds from `earlier` to `self`, zero when `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A duration in whole milliseconds, saturating.
#[must_use]
pub fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Real elapsed time (unless frozen) plus whatever tests added.
#[derive(Debug)]
pub struct SimClock {
    started: Instant,
    /// Wall-clock time of [`SimTime`] zero, in Unix milliseconds: used to render timestamps.
    wall_origin_ms: i64,
    advanced_ms: AtomicU64,
    manual: bool,
}

impl SimClock {
    /// A clock starting now; `manual` freezes real time so only [`SimClock::advance`] moves it.
    #[must_use]
    pub fn new(manual: bool) -> Self {
        Self {
            started: Instant::now(),
            wall_origin_ms: jiff::Timestamp::now().as_millisecond(),
            advanced_ms: AtomicU64::new(0),
            manual,
        }
    }

    /// The current simulator time.
    #[must_use]
    pub fn now(&self) -> SimTime {
        let real = if self.manual {
            0
        } else {
            duration_ms(self.started.elapsed())
        };
        SimTime(real.saturating_add(self.advanced_ms.load(Ordering::SeqCst)))
    }

    /// Moves the clock forward; returns the new time.
    pub fn advance(&self, d: Duration) -> SimTime {
        self.advanced_ms.fetch_add(duration_ms(d), Ordering::SeqCst);
        self.now()
    }

    /// The wall-clock timestamp of a simulator time.
    #[must_use]
    pub fn timestamp(&self, t: SimTime) -> jiff::Timestamp {
        let ms = self
            .wall_origin_ms
            .saturating_add(i64::try_from(t.0).unwrap_or(i64::MAX));
        jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::MAX)
    }

    /// A simulator time rendered as RFC 3339 (UTC, millisecond precision), as the API renders timestamps.
    #[must_use]
    pub fn rfc3339(&self, t: SimTime) -> String {
        format!("{:.3}", self.timestamp(t))
    }

    /// The simulator time of a wall-clock timestamp (clamped at the simulator's start).
    #[must_use]
    pub fn from_timestamp(&self, ts: jiff::Timestamp) -> SimTime {
        let ms = ts.as_millisecond().saturating_sub(self.wall_origin_ms);
        SimTime(u64::try_from(ms).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manual clock moves only when advanced, and timestamps round-trip through the wall clock.
    #[test]
    fn manual_clock_advances_only_on_request() {
        let c = SimClock::new(true);
        assert_eq!(c.now(), SimTime(0));
        assert_eq!(c.advance(Duration::from_secs(3)), SimTime(3000));
        let ts = c.timestamp(SimTime(3000));
        assert_eq!(c.from_timestamp(ts), SimTime(3000));
        assert!(c.rfc3339(SimTime(0)).ends_with('Z'));
    }
}
