//! The mass-removal guard: at most `--removal-limit` remote removals (a member removed or an invitation
//! revoked, a sandbox deleted) per workspace within `--removal-window`; the rest wait for a person.
//!
//! Deleting a namespace, the CRDs, or an Argo CD application that prunes, while the operator runs,
//! would otherwise remove every member and delete every sandbox of a workspace at once. Past the limit
//! a removal is held: the object reports Stalled `RemovalLimitReached` with a Warning Event, and keeps
//! its finalizer until the window has room again, a person confirms this object's removal with the
//! annotation `blaxel.ai/confirm-removal: "true"`, or the limit is raised. A limit of 0 turns the
//! guard off.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kube::Resource;
use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;

/// Annotation: `"true"` confirms this object's remote removal past the guard's limit.
pub const CONFIRM_ANNOTATION: &str = "blaxel.ai/confirm-removal";

/// Recent removals per workspace, and the limit they are held to.
#[derive(Debug)]
pub struct RemovalGuard {
    limit: u32,
    window: Duration,
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
    held: Counter,
}

/// A removal the guard did not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Removals already made in the workspace within the window.
    pub recent: usize,
    /// When the window has room again.
    pub retry_in: Duration,
}

impl RemovalGuard {
    /// A guard allowing `limit` removals per workspace per `window` (0: no limit); `held` counts the
    /// removals it holds back.
    #[must_use]
    pub fn new(limit: u32, window: Duration, held: Counter) -> Self {
        Self {
            limit,
            window,
            recent: Mutex::new(HashMap::new()),
            held,
        }
    }

    /// Takes one removal in `workspace` for `obj`: through when under the limit or confirmed on the
    /// object, else held.
    ///
    /// # Errors
    /// [`Held`] when the workspace reached its limit and the object carries no confirmation.
    pub fn take<K: Resource>(&self, workspace: &str, obj: &K) -> Result<(), Held> {
        if self.limit == 0 {
            return Ok(());
        }
        let confirmed = obj
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(CONFIRM_ANNOTATION))
            .is_some_and(|v| v == "true");
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.window;
        recent.retain(|_, times| {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                times.pop_front();
            }
            !times.is_empty()
        });
        let times = recent.entry(workspace.to_owned()).or_default();
        if !confirmed && times.len() >= self.limit as usize {
            self.held.inc();
            let oldest = times.front().copied().unwrap_or(now);
            return Err(Held {
                recent: times.len(),
                retry_in: window.saturating_sub(now.duration_since(oldest)),
            });
        }
        times.push_back(now);
        Ok(())
    }

    /// The condition message for a held removal.
    #[must_use]
    pub fn message(&self, workspace: &str, held: &Held) -> String {
        format!(
            "{} remote removals in workspace {workspace} within {} reached --removal-limit {}; this \
             one waits (about {}s) unless annotated {CONFIRM_ANNOTATION}=\"true\" or the limit is raised",
            held.recent,
            humantime::format_duration(self.window),
            self.limit,
            held.retry_in.as_secs().max(1),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn obj(confirmed: bool) -> ConfigMap {
        let annotations =
            confirmed.then(|| BTreeMap::from([(CONFIRM_ANNOTATION.to_owned(), "true".to_owned())]));
        ConfigMap {
            metadata: ObjectMeta {
                annotations,
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    /// Past the limit removals are held per workspace until the window has room; a confirmed object
    /// goes through; other workspaces are not affected.
    #[tokio::test(start_paused = true)]
    async fn removals_past_the_limit_are_held() {
        let held = Counter::default();
        let guard = RemovalGuard::new(2, Duration::from_secs(60), held.clone());
        assert!(guard.take("a", &obj(false)).is_ok());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(guard.take("a", &obj(false)).is_ok());
        let stop = guard.take("a", &obj(false)).unwrap_err();
        assert_eq!(stop.recent, 2);
        assert_eq!(stop.retry_in, Duration::from_secs(50));
        assert!(guard.message("a", &stop).contains(CONFIRM_ANNOTATION));
        assert_eq!(held.get(), 1);
        assert!(guard.take("b", &obj(false)).is_ok(), "per workspace");
        assert!(guard.take("a", &obj(true)).is_ok(), "confirmed");
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(
            guard.take("a", &obj(false)).is_err(),
            "the confirmed one counts too"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(guard.take("a", &obj(false)).is_ok(), "the window moved on");
    }

    /// A limit of 0 holds nothing.
    #[test]
    fn zero_is_no_limit() {
        let guard = RemovalGuard::new(0, Duration::from_secs(60), Counter::default());
        for _ in 0..100 {
            assert!(guard.take("a", &obj(false)).is_ok());
        }
    }
}
