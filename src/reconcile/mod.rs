//! Reconcilers, one per kind, each in the shape observe → plan (pure) → act → report.
//!
//! - [`member`], [`sandbox`], [`workspace`] and [`integration`]: one folder per kind, its driver (IO) and its pure planner.
//! - [`frame`]: what every kind's reconcile runs in (finalizer, admission), and the [`frame::Driver`]
//!   trait a kind implements.
//! - [`kinds`]: the registry of kinds (store, claims, view) by type.
//! - [`conditions`]: pure status conditions.
//! - [`cache`]: shared, single-flight remote lists.
//! - [`cached`]: the compact copy of each object kept between reconciles.
//! - [`claims`]: duplicate-claim detection from the controller's cache.
//! - [`credentials`]: which API key an object may use.
//! - [`managed`]: what every kind shares before any remote call (claims, credentials, start of cleanup).
//! - [`events`]: Kubernetes Events (Normal ones without kube's Recorder cache).
//! - [`removals`]: the mass-removal guard (at most so many remote removals per workspace per window).
//! - [`backoff`]: per-object retry delays.
//!
//! This module holds what every driver shares: the [`Context`], the [`Error`] type and status/Event
//! helpers.
//!
//! # Adding a kind
//! 1. `src/crd/<kind>.rs`: the spec and status types (and the kind in `crd::all()`).
//! 2. `src/reconcile/<kind>/`: `plan.rs` (pure) and `mod.rs` (the [`managed::Managed`] and
//!    [`frame::Driver`] impls, and `WithConditions` for the status).
//! 3. One line in `controller::run`: `setup.add::<Cached<Kind>>()`.
//! 4. If it calls new endpoints: a trait in `blaxel/api.rs` and a file in `blaxel/client/`.
//! 5. Outside Rust: regenerate `crds/` (a test says when it is stale); the RBAC rules, the chart's CRD
//!    annotation and the Argo CD keys (`scripts/check_deploy.py` derives the expected lists from `crds/`
//!    and fails until they are there).

pub mod backoff;
pub mod cache;
pub mod cached;
pub mod claims;
pub mod conditions;
pub mod credentials;
pub mod digest;
pub mod events;
pub mod frame;
pub mod integration;
pub mod kinds;
pub mod managed;
pub mod member;
pub mod preview;
pub mod reasons;
pub mod removals;
pub mod sandbox;
#[cfg(test)]
pub(crate) mod testing;
pub mod workspace;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::core::object::{HasSpec, HasStatus};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use rand::Rng;

use crate::blaxel::model::{Sandbox as RemoteSandbox, WorkspaceUser};
use crate::blaxel::{ApiError, BlaxelApi};
use crate::crd::{PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION};
use backoff::Backoff;
use cache::ListCache;
use cached::{Cached, WithConditions};
use conditions::{Health, Why};
use credentials::{CredentialsError, DefaultCredentials};
use events::EventPublisher;

/// The field manager of every status the operator writes.
pub const FIELD_MANAGER: &str = "blaxel-operator";

/// Timing and limits of the reconcilers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Periodic resync of settled objects (jittered ±10%); also the freshness of shared lists for them.
    pub resync: Duration,
    /// How often a pending invitation is looked at again.
    pub invitation_poll: Duration,
    /// How often a sandbox in a transitional status is looked at again.
    pub transition_poll: Duration,
    /// How many times an expired invitation is re-sent.
    pub max_reinvites: u32,
    /// How often an object that lost a duplicate claim looks again (no remote call).
    pub claim_recheck: Duration,
    /// This operator instance (`--instance`), part of a sandbox's ownership; `None` for the default.
    pub instance: Option<String>,
    /// Whether private previews' tokens are kept in Secrets (`--preview-tokens`).
    pub preview_tokens: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(600),
            invitation_poll: Duration::from_secs(30),
            transition_poll: Duration::from_secs(5),
            max_reinvites: 3,
            claim_recheck: Duration::from_secs(30),
            instance: None,
            preview_tokens: true,
        }
    }
}

/// Everything a reconcile needs, shared by all reconciles of both kinds.
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// Blaxel.
    pub api: Arc<dyn BlaxelApi>,
    /// Timing and limits.
    pub settings: Settings,
    /// The default key and who may use it.
    pub credentials: DefaultCredentials,
    /// Keys recently read from Secrets.
    pub secret_keys: credentials::SecretKeys,
    /// Shared `GET /users` answers.
    pub users: ListCache<WorkspaceUser>,
    /// Shared `GET /sandboxes` answers.
    pub sandboxes: ListCache<RemoteSandbox>,
    /// Shared `GET /integrations/connections` answers.
    pub connections: ListCache<crate::blaxel::model::IntegrationConnection>,
    /// Kubernetes Events.
    pub recorder: EventPublisher,
    /// Per-object retry delays.
    pub backoff: Backoff,
    /// The mass-removal guard.
    pub removals: removals::RemovalGuard,
    /// The namespace the operator watches, when it watches one only.
    pub watched_namespace: Option<String>,
    /// Every registered kind's store, claims and view.
    pub kinds: kinds::Kinds,
    /// The key of the digests of secret values sent.
    pub digests: digest::DigestKeys,
    /// Statuses written that the watch may not show yet.
    pub written: WrittenStatuses,
    /// Each object's last reported state and reason (the objects-by-reason gauge).
    pub reasons: reasons::Reasons,
}

/// Why a reconcile did not finish; decides the retry in [`error_policy`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A transient remote error: retried with backoff (never sooner than a Retry-After).
    #[error(transparent)]
    Remote(#[from] ApiError),
    /// A Kubernetes API error (status patch, Secret read).
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Credentials could not be read for a transient reason.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The digest key could not be read or created.
    #[error(transparent)]
    Digest(#[from] digest::DigestKeyError),
    /// Remote cleanup is under way: look again after the delay (keeps the finalizer).
    #[error("waiting for remote cleanup: {0}")]
    Waiting(String, Duration),
    /// The finalizer helper failed around our reconcile.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// A stable, low-cardinality category for metrics and Event reasons.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Self::Remote(e) => e.category(),
            Self::Kube(_) => "KubernetesApi",
            Self::Credentials(e) => e.reason(),
            Self::Digest(_) => "DigestKey",
            Self::Waiting(..) => "CleanupPending",
            Self::Finalizer(_) => "Finalizer",
        }
    }

    pub(crate) fn from_finalizer(err: kube::runtime::finalizer::Error<Self>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match err {
            F::ApplyFailed(e) | F::CleanupFailed(e) => e,
            F::AddFinalizer(e) | F::RemoveFinalizer(e) => Self::Kube(e),
            other => Self::Finalizer(other.to_string()),
        }
    }
}

/// Decides when to look again after a failed reconcile: transient errors back off per object with
/// jitter (never sooner than the server's Retry-After); cleanup in progress is polled at its own pace.
#[allow(
    clippy::needless_pass_by_value,
    reason = "the signature kube-runtime's Controller::run expects"
)]
pub fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    match error {
        Error::Waiting(_, after) => Action::requeue(*after),
        Error::Remote(e) => {
            Action::requeue(ctx.backoff.next(&object_key(obj.as_ref()), e.retry_after()))
        }
        _ => Action::requeue(ctx.backoff.next(&object_key(obj.as_ref()), None)),
    }
}

/// `kind/namespace/name`, the key of per-object state.
pub fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// True when the object carries `blaxel.ai/paused: "true"`.
///
/// A safety switch fails closed: any value but `false` (in any case) pauses, so `"True"` or `"yes"`
/// written by hand is never silently ignored.
pub fn is_paused<K: Resource>(obj: &K) -> bool {
    paused_by(obj.annotations().get(PAUSED_ANNOTATION).map(String::as_str))
}

/// Whether a `blaxel.ai/paused` value pauses: any but `false`.
pub fn paused_by(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.trim().eq_ignore_ascii_case("false"))
}

/// The `reconcile-requested-at` value not yet handled, if any: it forces fresh remote reads.
pub fn pending_request<K: Resource>(obj: &K, last_handled: Option<&String>) -> Option<String> {
    obj.annotations()
        .get(RECONCILE_REQUESTED_ANNOTATION)
        .filter(|v| Some(*v) != last_handled)
        .cloned()
}

/// `d` with ±10% jitter, so that objects created together do not resync together.
#[must_use]
pub fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.9..1.1))
}

/// The next look after a successful reconcile.
#[must_use]
pub fn requeue_after(health: &Health, settings: &Settings, progressing_poll: Duration) -> Action {
    match health {
        Health::Progressing(_) => Action::requeue(progressing_poll),
        _ => Action::requeue(jittered(settings.resync)),
    }
}

/// How a remote error shows in status, and what follows: transient errors fail the reconcile (backoff);
/// a refused request waits for the object to change; bad credentials are looked at again at resync
/// (the Secret may be fixed without touching the object).
pub fn remote_verdict(err: ApiError, settings: &Settings) -> (Health, Result<Action, Error>) {
    let why = Why::new(err.category(), err.to_string());
    match err {
        ApiError::Invalid { .. } => (Health::Stalled(why), Ok(Action::await_change())),
        ApiError::Unauthorized { .. } | ApiError::Forbidden { .. } => (
            Health::Stalled(why),
            Ok(Action::requeue(jittered(settings.resync))),
        ),
        other => (Health::Failing(why), Err(Error::Remote(other))),
    }
}

/// The status each object was last written with, while the watch has not yet shown it: a pass that
/// starts from a cached copy older than the operator's own last status write would decide from the
/// state before it (take a workspace it created for adopted, make a second preview token). Entries
/// live only until the cache catches up, and at most [`WrittenStatuses::PATIENCE`] (a status edited
/// by hand meanwhile never matches): those no pass looks at again (an object deleted after its last
/// write) are swept at most once per `PATIENCE`, so the map holds only the objects written lately.
#[derive(Default)]
pub struct WrittenStatuses(std::sync::Mutex<Written>);

/// [`WrittenStatuses`]' entries (digest and time of the write, by uid), and when they were last swept.
#[derive(Default)]
pub struct Written {
    entries: std::collections::HashMap<String, (u64, std::time::Instant)>,
    swept: Option<std::time::Instant>,
}

impl WrittenStatuses {
    /// How long a pass waits for the cache to show the operator's own write.
    pub const PATIENCE: Duration = Duration::from_secs(5);
    /// How soon a pass that found the cache behind looks again.
    pub const RETRY: Duration = Duration::from_millis(100);

    fn lock(&self) -> std::sync::MutexGuard<'_, Written> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that object `uid` was written with a status of digest `digest`.
    pub fn record(&self, uid: &str, digest: u64) {
        let mut written = self.lock();
        let now = std::time::Instant::now();
        if written
            .swept
            .is_none_or(|at| now.duration_since(at) >= Self::PATIENCE)
        {
            written
                .entries
                .retain(|_, (_, at)| now.duration_since(*at) < Self::PATIENCE);
            written.swept = Some(now);
        }
        written.entries.insert(uid.to_owned(), (digest, now));
    }

    /// Whether the cached copy of `uid`, whose status digest is `seen`, is older than the operator's
    /// own last write to it (within [`Self::PATIENCE`]); an entry the cache caught up with, or too
    /// old, is dropped.
    pub fn lags(&self, uid: &str, seen: Option<u64>) -> bool {
        let mut written = self.lock();
        let Some((digest, at)) = written.entries.get(uid) else {
            return false;
        };
        if Some(*digest) != seen && at.elapsed() < Self::PATIENCE {
            return true;
        }
        written.entries.remove(uid);
        false
    }
}

/// The verdict on a remote error for `obj`: Stalled for an error a person must fix (published here as
/// a Warning Event, since the pass then ends without error), Failing with backoff for a transient one
/// (the frame publishes those). The health to report, and the pass's outcome.
pub async fn failed<K: Resource<DynamicType = ()>>(
    obj: &K,
    ctx: &Context,
    err: ApiError,
) -> (Health, Result<Action, Error>) {
    let (category, message) = (err.category(), err.to_string());
    let (health, outcome) = remote_verdict(err, &ctx.settings);
    if outcome.is_ok() {
        publish(&ctx.recorder, obj, true, category, message).await;
    }
    (health, outcome)
}

/// Writes `status` with server-side apply unless it is the status `obj` was last seen with.
/// A no-op reconcile therefore writes nothing. A write is recorded in [`Context::written`], so the
/// next pass does not start from a cached copy that predates it.
///
/// # Errors
/// The Kubernetes API error.
pub async fn write_status<K>(
    ctx: &Context,
    obj: &Cached<K>,
    status: &K::Status,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + HasSpec
        + HasStatus
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::Status: WithConditions,
{
    if let Some(uid) = obj.metadata.uid.as_deref() {
        ctx.reasons.record(&K::kind(&()), uid, status.conditions());
    }
    if obj.status.as_ref().is_some_and(|seen| seen.is(status)) {
        return Ok(());
    }
    patch_status(&ctx.client, obj, status).await?;
    if let Some(uid) = obj.metadata.uid.as_deref() {
        ctx.written.record(uid, cached::digest(status));
    }
    Ok(())
}

/// The status write itself (server-side apply of the status subresource), whatever the cache says.
///
/// # Errors
/// The Kubernetes API error.
pub async fn patch_status<K>(
    client: &kube::Client,
    obj: &Cached<K>,
    status: &K::Status,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + HasSpec
        + HasStatus
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::Status: WithConditions,
{
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// The four conditions for `health`, keeping the transition times `obj` was last seen with.
#[must_use]
pub fn conditions_for<K: HasSpec + HasStatus>(
    obj: &Cached<K>,
    health: &Health,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    let unseen = conditions::Transitions::default();
    let previous = obj.status.as_ref().map_or(&unseen, |s| &s.transitions);
    conditions::build(
        previous,
        health,
        obj.metadata.generation,
        &conditions::now(),
    )
}

/// Publishes a Kubernetes Event about `obj` for the action `Reconcile`; a failure to publish is logged,
/// never fatal.
pub async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &EventPublisher,
    obj: &K,
    warning: bool,
    reason: &str,
    note: String,
) {
    publish_for(recorder, obj, "Reconcile", warning, reason, note).await;
}

/// Publishes a Kubernetes Event about `obj` for `action`. Events of one object, reason and action form
/// one series (later ones count up, keeping the first note), so a verdict told at another step (the
/// admission, the cleanup) uses an action of its own.
pub async fn publish_for<K: Resource<DynamicType = ()>>(
    recorder: &EventPublisher,
    obj: &K,
    action: &str,
    warning: bool,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish an Event");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, reason = "tests")]
    use super::*;

    /// A pass waits for the cache to show the operator's own last status write, and only for that:
    /// an object never written, or whose cache caught up, is not held (and the entry goes).
    #[test]
    fn written_statuses_hold_only_a_lagging_cache() {
        let written = WrittenStatuses::default();
        assert!(!written.lags("u1", None), "never written");
        written.record("u1", 7);
        assert!(written.lags("u1", None), "the cache has no status yet");
        assert!(
            written.lags("u1", Some(6)),
            "the cache shows the status before"
        );
        assert!(!written.lags("u1", Some(7)), "caught up");
        assert!(
            !written.lags("u1", Some(6)),
            "the entry went once caught up"
        );
    }

    /// Entries no pass looks at again (an object deleted after its last write) are swept once they
    /// are older than the patience, at the next write after it.
    #[test]
    fn written_statuses_forget_objects_never_seen_again() {
        let written = WrittenStatuses::default();
        written.record("gone", 1);
        {
            let mut w = written.lock();
            let old = std::time::Instant::now()
                .checked_sub(WrittenStatuses::PATIENCE * 2)
                .expect("a past instant");
            w.entries.insert("gone".to_owned(), (1, old));
            w.swept = Some(old);
        }
        written.record("fresh", 2);
        assert_eq!(
            written.lock().entries.keys().collect::<Vec<_>>(),
            ["fresh"],
            "only the fresh write is remembered"
        );
        assert!(written.lags("fresh", None));
    }
}
