//! Prometheus metrics, served as text at `/metrics` by [`crate::server`].
//!
//! Every label is bounded: the kind, an error category, a remote route *template* with its method, an HTTP
//! status code and an outcome category. Object names, e-mails, workspaces and credentials never become labels.
//!
//! Most values are pushed as they happen (reconciles from the controller's wrappers, remote requests from the
//! HTTP client's attempt observer); a few are pulled at scrape time by hooks ([`Metrics::on_scrape`]), such
//! as the rate limiter's cumulative waits.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::blaxel::RateLimitStats;
use crate::blaxel::client::{Attempt, AttemptObserver};

/// Every metric name starts with this (`blaxel_operator_reconciles_total`, ...).
pub const PREFIX: &str = "blaxel_operator";

/// `kind` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The kind (`WorkspaceMember`, `Sandbox`, `Workspace`).
    pub kind: &'static str,
}

/// `kind` and `category` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The kind (`WorkspaceMember`, `Sandbox`, `Workspace`).
    pub kind: &'static str,
    /// The error's stable category (`Unavailable`, `RateLimited`, `KubernetesApi`, ...).
    pub category: &'static str,
}

/// Labels of a remote request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Method and route template, e.g. `POST /users` or `PUT /sandboxes/{name}`.
    pub operation: String,
    /// The HTTP status code, or `none` when no answer came.
    pub status: String,
    /// `Ok`, or the error category of the attempt.
    pub outcome: &'static str,
}

/// Labels of the objects-by-reason gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// The kind.
    pub kind: String,
    /// `Ready`, `Stalled`, `Progressing` or `NotReady`.
    pub state: &'static str,
    /// The condition's reason (a fixed CamelCase word of the operator's).
    pub reason: String,
}

/// Labels of `build_info`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
    /// Optional features built in (`otel`), comma-separated.
    pub features: &'static str,
}

/// Labels of the request latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// Method and route template.
    pub operation: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn reconcile_histogram() -> Histogram {
    // 5 ms .. ~41 s
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn request_histogram() -> Histogram {
    // 2 ms .. ~16 s
    Histogram::new(exponential_buckets(0.002, 2.0, 14))
}

type ScrapeHook = Box<dyn Fn(&Metrics) + Send + Sync>;

/// `build_info`: 1, labelled with the version and the optional features built in.
fn register_build_info(registry: &mut Registry) {
    let build = Family::<BuildLabels, Gauge>::default();
    registry.register(
        "build_info",
        "1, labelled with the operator's version and the optional features built in",
        build.clone(),
    );
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            features: if cfg!(feature = "otel") { "otel" } else { "" },
        })
        .set(1);
}

/// The operator's metrics and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    /// Reconciles run, by kind.
    pub reconciles: Family<KindLabels, Counter>,
    /// Failed reconciles, by kind and error category.
    pub failures: Family<FailureLabels, Counter>,
    /// Reconcile duration, by kind.
    pub reconcile_duration: HistogramFamily<KindLabels>,
    /// Remote HTTP attempts, by operation, status and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Remote HTTP attempt latency, by operation.
    pub request_duration: HistogramFamily<OperationLabels>,
    /// Objects backing off after a failure.
    pub in_backoff: Gauge,
    /// Remote attempts that waited for a rate-limiter token.
    pub rate_limit_waits: Counter,
    /// Total time spent waiting for rate-limiter tokens.
    pub rate_limit_wait_seconds: Counter<f64, AtomicU64>,
    /// 1 while this replica is the leader (always 1 without leader election), else 0.
    pub leader: Gauge<i64, AtomicI64>,
    /// Remote removals held back by the mass-removal guard.
    pub removals_held: Counter,
    /// Passes that found a remote cleanup still under way (waiting, not failing), by kind.
    pub cleanup_waits: Family<KindLabels, Counter>,
    /// Objects by kind, state and reason, as last reported in their status.
    pub objects: Family<ObjectLabels, Gauge>,
    hooks: Mutex<Vec<ScrapeHook>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding every metric, all at zero.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let reconciles = Family::<KindLabels, Counter>::default();
        registry.register("reconciles", "Reconciles run, by kind", reconciles.clone());
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Failed reconciles, by kind and error category",
            failures.clone(),
        );
        let reconcile_duration: HistogramFamily<KindLabels> =
            Family::new_with_constructor(reconcile_histogram);
        registry.register_with_unit(
            "reconcile_duration",
            "Reconcile duration, by kind",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "Blaxel API HTTP attempts (retries included), by operation (method and route template), status code and outcome",
            requests.clone(),
        );
        let request_duration: HistogramFamily<OperationLabels> =
            Family::new_with_constructor(request_histogram);
        registry.register_with_unit(
            "api_request_duration",
            "Blaxel API HTTP attempt latency, by operation",
            Unit::Seconds,
            request_duration.clone(),
        );
        let in_backoff = Gauge::default();
        registry.register(
            "objects_in_backoff",
            "Objects waiting to retry after a failed reconcile",
            in_backoff.clone(),
        );
        let rate_limit_waits = Counter::default();
        registry.register(
            "rate_limit_waits",
            "Blaxel API attempts that waited for the client-side rate limiter",
            rate_limit_waits.clone(),
        );
        let rate_limit_wait_seconds = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "rate_limit_wait",
            "Time spent waiting for the client-side rate limiter",
            Unit::Seconds,
            rate_limit_wait_seconds.clone(),
        );
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease (always 1 without leader election)",
            leader.clone(),
        );
        let removals_held = Counter::default();
        registry.register(
            "removals_held",
            "Remote removals (members, invitations, sandboxes) held back by --removal-limit until a person confirms",
            removals_held.clone(),
        );
        let cleanup_waits = Family::<KindLabels, Counter>::default();
        registry.register(
            "cleanup_waits",
            "Passes over a deleted object whose remote cleanup is still under way (waiting, not failing), by kind",
            cleanup_waits.clone(),
        );
        let objects = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "objects",
            "Objects by kind, state (Ready, Stalled, Progressing, NotReady) and the reason their status gives",
            objects.clone(),
        );
        register_build_info(&mut registry);
        Self {
            registry,
            objects,
            removals_held,
            cleanup_waits,
            reconciles,
            failures,
            reconcile_duration,
            requests,
            request_duration,
            in_backoff,
            rate_limit_waits,
            rate_limit_wait_seconds,
            leader,
            hooks: Mutex::new(Vec::new()),
        }
    }

    /// Counts one finished reconcile of `kind`; `failure` is the error category when it failed.
    pub fn reconciled(&self, kind: &'static str, elapsed: Duration, failure: Option<&'static str>) {
        let labels = KindLabels { kind };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(category) = failure {
            self.failures
                .get_or_create(&FailureLabels { kind, category })
                .inc();
        }
    }

    /// Counts one pass over a deleted object of `kind` whose remote cleanup is still under way.
    pub fn cleanup_waited(&self, kind: &'static str) {
        self.cleanup_waits.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts one remote HTTP attempt.
    pub fn attempt(&self, attempt: &Attempt) {
        let operation = format!("{} {}", attempt.method, attempt.route);
        let status = attempt
            .status
            .map_or_else(|| "none".to_owned(), |s| s.to_string());
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.clone(),
                status,
                outcome: attempt.outcome,
            })
            .inc();
        self.request_duration
            .get_or_create(&OperationLabels { operation })
            .observe(attempt.elapsed.as_secs_f64());
    }

    /// An observer for [`crate::blaxel::client::HttpClient::set_attempt_observer`] feeding these metrics.
    #[must_use]
    pub fn attempt_observer(self: &Arc<Self>) -> AttemptObserver {
        let metrics = Arc::clone(self);
        Arc::new(move |attempt: &Attempt| metrics.attempt(attempt))
    }

    /// Brings the rate-limiter counters up to the client's cumulative `stats`.
    pub fn set_rate_limit(&self, stats: RateLimitStats) {
        let waits = stats.waits.saturating_sub(self.rate_limit_waits.get());
        if waits > 0 {
            self.rate_limit_waits.inc_by(waits);
        }
        let seconds = stats.total_wait.as_secs_f64() - self.rate_limit_wait_seconds.get();
        if seconds > 0.0 {
            self.rate_limit_wait_seconds.inc_by(seconds);
        }
    }

    /// Sets the objects-in-backoff gauge.
    pub fn set_in_backoff(&self, n: usize) {
        self.in_backoff.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets the objects-by-reason gauge to `counts` (states no object is in any more disappear).
    pub fn set_objects(&self, counts: &crate::reconcile::reasons::Counts) {
        self.objects.clear();
        for ((kind, state, reason), n) in counts {
            self.objects
                .get_or_create(&ObjectLabels {
                    kind: kind.clone(),
                    state,
                    reason: reason.clone(),
                })
                .set(*n);
        }
    }

    /// Sets the leader gauge.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Runs `hook` before every scrape (to pull values kept elsewhere, such as rate-limiter totals).
    pub fn on_scrape(&self, hook: impl Fn(&Self) + Send + Sync + 'static) {
        self.hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(hook));
    }

    /// The Prometheus text exposition of every metric, after running the scrape hooks.
    #[must_use]
    pub fn encode(&self) -> String {
        for hook in self
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            hook(self);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_value(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Reconciles are counted by kind, failures by kind and category, with a duration sample each.
    #[test]
    fn reconciles_and_failures() {
        let m = Metrics::new();
        m.reconciled("Sandbox", Duration::from_millis(20), None);
        m.reconciled("Sandbox", Duration::from_millis(20), Some("Unavailable"));
        let text = m.encode();
        assert_eq!(
            line_value(&text, "blaxel_operator_reconciles_total{kind=\"Sandbox\"}"),
            Some(2.0)
        );
        assert_eq!(
            line_value(
                &text,
                "blaxel_operator_reconcile_failures_total{kind=\"Sandbox\",category=\"Unavailable\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            line_value(
                &text,
                "blaxel_operator_reconcile_duration_seconds_count{kind=\"Sandbox\"}"
            ),
            Some(2.0)
        );
    }

    /// Remote attempts are labelled by method + route template, status and outcome.
    #[test]
    fn attempts() {
        let m = Arc::new(Metrics::new());
        let observe = m.attempt_observer();
        for status in [Some(200), Some(200), None] {
            observe(&Attempt {
                method: "POST",
                route: "/users",
                status,
                outcome: if status.is_some() {
                    "Ok"
                } else {
                    "Unavailable"
                },
                attempt: 1,
                elapsed: Duration::from_millis(3),
            });
        }
        let text = m.encode();
        assert_eq!(
            line_value(
                &text,
                "blaxel_operator_api_requests_total{operation=\"POST /users\",status=\"200\",outcome=\"Ok\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            line_value(
                &text,
                "blaxel_operator_api_requests_total{operation=\"POST /users\",status=\"none\",outcome=\"Unavailable\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            line_value(
                &text,
                "blaxel_operator_api_request_duration_seconds_count{operation=\"POST /users\"}"
            ),
            Some(3.0)
        );
    }

    /// Scrape hooks pull cumulative rate-limiter totals; counters follow them without double counting.
    #[test]
    fn rate_limit_follows_cumulative_stats() {
        let m = Metrics::new();
        let stats = Arc::new(Mutex::new(RateLimitStats::default()));
        let source = Arc::clone(&stats);
        m.on_scrape(move |m| {
            m.set_rate_limit(*source.lock().unwrap_or_else(PoisonError::into_inner));
        });
        *stats.lock().unwrap_or_else(PoisonError::into_inner) = RateLimitStats {
            waits: 3,
            total_wait: Duration::from_millis(1500),
        };
        let _ = m.encode();
        let text = m.encode();
        assert_eq!(
            line_value(&text, "blaxel_operator_rate_limit_waits_total"),
            Some(3.0)
        );
        assert_eq!(
            line_value(&text, "blaxel_operator_rate_limit_wait_seconds_total"),
            Some(1.5)
        );
    }

    /// Gauges: objects in backoff and leader status.
    #[test]
    fn gauges() {
        let m = Metrics::new();
        m.set_in_backoff(4);
        m.set_leader(true);
        let text = m.encode();
        assert_eq!(
            line_value(&text, "blaxel_operator_objects_in_backoff"),
            Some(4.0)
        );
        assert_eq!(line_value(&text, "blaxel_operator_leader"), Some(1.0));
    }
}
