//! Wiring: one watch and one controller per registered kind ([`Setup::add`]), concurrency, backoff and
//! shutdown.
//!
//! Each kind gets a reflector store (shared with the reconcilers for duplicate claims) and a watch filtered
//! to what deserves a reconcile: generation (spec and deletion), annotations (pause, reconcile requests)
//! and finalizers, compared with the version in the store. The operator's own status writes therefore
//! never wake it again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::api::ListParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::blaxel::BlaxelApi;
use crate::crd::{
    ANNOTATION_PREFIX, IntegrationConnection, Sandbox, SandboxPreview, Workspace, WorkspaceMember,
};
use crate::metrics::Metrics;
use crate::reconcile::backoff::Backoff;
use crate::reconcile::cached::Cached;
use crate::reconcile::claims::ClaimIndex;
use crate::reconcile::credentials::DefaultCredentials;
use crate::reconcile::events::EventPublisher;
use crate::reconcile::frame::{self, Driver};
use crate::reconcile::kinds::{KindState, Kinds, Liveness, ViewState};
use crate::reconcile::managed::Managed;
use crate::reconcile::{self, Context, Settings};

/// How the controllers run.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Reconciler timing and limits.
    pub settings: Settings,
    /// The default key and who may use it.
    pub credentials: DefaultCredentials,
    /// Reconciles running at once, per kind.
    pub max_concurrent_reconciles: u16,
    /// First retry delay after a transient failure.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// The name Events are reported under.
    pub reporter: String,
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Where reconcile counts, durations and the objects-in-backoff gauge go.
    pub metrics: Arc<Metrics>,
    /// Remote removals allowed per workspace within `removal_window` (0: no limit).
    pub removal_limit: u32,
    /// The window of `removal_limit`.
    pub removal_window: Duration,
    /// The namespace whose ConfigMap records recent removals across restarts (`None`: in memory only).
    pub removal_store_namespace: Option<String>,
    /// Where each kind's watch reports its failures, for `/healthz`.
    pub liveness: Arc<Liveness>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            credentials: DefaultCredentials::default(),
            max_concurrent_reconciles: 16,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            reporter: "blaxel-operator".to_owned(),
            namespace: None,
            metrics: Arc::default(),
            removal_limit: 10,
            removal_window: Duration::from_secs(600),
            removal_store_namespace: None,
            liveness: Arc::default(),
        }
    }
}

/// Why the operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A CRD is not served by the cluster.
    #[error(
        "the {0} CRD is not served by this cluster; install the CRDs first: `kubectl apply -f crds/` (or `blaxel-operator crds | kubectl apply -f -`)"
    )]
    CrdMissing(String),
    /// The cluster could not be asked.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Fails with a helpful message unless `K`'s CRD is served. Asks only in `namespace` when the operator
/// watches one, so a namespace-scoped Role suffices.
///
/// # Errors
/// [`StartError::CrdMissing`] naming the missing kind, or the API error.
pub async fn check_crd<K>(client: &kube::Client, namespace: Option<&str>) -> Result<(), StartError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api = match namespace {
        Some(ns) => Api::<K>::namespaced(client.clone(), ns),
        None => Api::<K>::all(client.clone()),
    };
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            Err(StartError::CrdMissing(K::kind(&()).into_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

/// A watch on every object of a kind, reflected into a store, and the objects whose change deserves a
/// reconcile (see [`wakes`]), as references by namespace and name only.
///
/// kube-runtime's own trigger (`Controller::for_stream`) references an object with its uid and
/// resourceVersion as well, and its scheduler keeps two copies of the reference of every object with a
/// requeue pending, that is of every settled one: two strings fewer in each is ≈ 3 MB at 10,000 objects.
/// A watch error is logged here; the watch lists again ([`relisting`]) after kube's default backoff.
fn watch<K>(
    client: kube::Client,
    namespace: Option<&str>,
    claims: Arc<ClaimIndex<K>>,
    view: Arc<ViewState>,
) -> (
    Store<K>,
    impl futures::Stream<Item = ObjectRef<K>> + Send + use<K>,
)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, mut writer) = reflector::store();
    let api = match namespace {
        Some(ns) => Api::<K>::namespaced(client, ns),
        None => Api::<K>::all(client),
    };
    let cached = reader.clone();
    let stream = relisting(api)
        .default_backoff()
        .modify(slim)
        .filter_map(move |event| {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    // The view is incomplete until the next full list is (see `relisting`).
                    view.set(false);
                    view.watch_failed(true);
                    tracing::warn!(kind = %K::kind(&()), %error, "watch failed; retrying");
                    return std::future::ready(None);
                }
            };
            // The claim index sees each event just before the store, so it never lags behind it; the
            // store still holds the previous version when `wakes` compares.
            // Init only starts a list (which may fail): any other event shows the watch works.
            if !matches!(event, watcher::Event::Init) {
                view.watch_failed(false);
            }
            claims.apply(&event);
            let wake = wakes(&cached, &event);
            writer.apply_watcher_event(&event);
            match event {
                watcher::Event::Init => view.set(false),
                watcher::Event::InitDone => view.set(true),
                _ => {}
            }
            std::future::ready(wake)
        });
    (reader, stream)
}

/// Watch events of every `K` in `api`, listing everything again after any error.
///
/// kube's watcher resumes a watch that failed for any reason but 410 Gone from its last resourceVersion,
/// without a list: nothing is missed, but nothing says so either, and a view marked incomplete at the
/// error would stay so for ever (the Workspace kind concludes nothing from an incomplete view). A new
/// watcher after each error starts with a list, whose end ([`watcher::Event::InitDone`]) tells that the
/// view is complete again. The error ends the old watcher before it is polled again, so it retries
/// nothing itself; the caller's backoff paces the new one.
fn relisting<K>(
    api: Api<K>,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    futures::stream::repeat_with(move || {
        let one = watcher(api.clone(), watcher::Config::default().any_semantic()).boxed();
        futures::stream::unfold(Some(one), |state| async move {
            let mut watch = state?;
            let event = watch.next().await?;
            let rest = event.is_ok().then_some(watch);
            Some((event, rest))
        })
    })
    .flatten()
}

/// The reference a reconcile is scheduled by: namespace and name (all the store's lookup hashes).
fn key_of<K: Resource<DynamicType = ()>>(obj: &K) -> Option<ObjectRef<K>> {
    let meta = obj.meta();
    let key = ObjectRef::new(meta.name.as_deref()?);
    Some(match meta.namespace.as_deref() {
        Some(namespace) => key.within(namespace),
        None => key,
    })
}

/// The key to reconcile an applied object by, when it deserves a reconcile: it is new to the cache, or
/// its generation (spec, deletion), the operator's annotations (pause, reconcile requests) or its
/// finalizers changed. The same key looks the previous version up in the store. The
/// operator's own status writes change none of these, so they do not wake it again. (kube-runtime's
/// `predicate_filter` decides the same from a cache of its own, an entry of ≈ 250 bytes per object; the
/// store already holds the previous version.) A deleted object is gone from the store, so a reconcile
/// of it would be skipped: deletions wake nothing.
fn wakes<K: Resource<DynamicType = ()> + Clone>(
    cached: &Store<K>,
    event: &watcher::Event<K>,
) -> Option<ObjectRef<K>> {
    let (watcher::Event::Apply(new) | watcher::Event::InitApply(new)) = event else {
        return None;
    };
    let key = key_of(new)?;
    let meta = new.meta();
    let wake = cached.get(&key).is_none_or(|old| {
        let old = old.meta();
        old.uid != meta.uid
            || old.generation != meta.generation
            || old.annotations != meta.annotations
            || old.finalizers != meta.finalizers
    });
    wake.then_some(key)
}

/// Drops what no reconcile reads before the object reaches the store: managedFields (status is written by
/// server-side apply, finalizers by JSON patch), labels, and annotations other than the operator's own
/// (`kubectl apply` keeps a copy of the whole object in one). That keeps about half of each cached object
/// out of memory, and a change to a foreign annotation no longer wakes the reconciler.
fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    meta.labels = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.retain(|key, _| key.starts_with(ANNOTATION_PREFIX));
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The frame's reconcile of `K` ([`frame::reconcile`]), counted and timed in `metrics` (by kind, and by
/// error category when it fails), with what every kind shares after a pass:
/// - a pass that ends without error (Ready, Stalled, deleted) clears the object's backoff, so an object
///   that stopped failing never stays counted in `objects_in_backoff`;
/// - a failed pass publishes a Warning Event (remote, Kubernetes, credentials, finalizer errors alike),
///   as every failed pass must; drivers publish only the failures that end a pass without error
///   (Stalled);
/// - waiting for a remote cleanup to finish is counted apart (`cleanup_waits_total`), not as a failure.
fn measured<K: Driver>(
    metrics: &Arc<Metrics>,
) -> impl FnMut(
    Arc<K>,
    Arc<Context>,
) -> futures::future::BoxFuture<'static, Result<Action, reconcile::Error>>
+ use<K> {
    let metrics = Arc::clone(metrics);
    move |obj, ctx| {
        let metrics = Arc::clone(&metrics);
        Box::pin(async move {
            let kind = K::KIND;
            let started = std::time::Instant::now();
            let result = frame::reconcile(Arc::clone(&obj), Arc::clone(&ctx)).await;
            let failure = match &result {
                Ok(_) => {
                    ctx.backoff.reset(&reconcile::object_key(obj.as_ref()));
                    None
                }
                Err(reconcile::Error::Waiting(..)) => {
                    metrics.cleanup_waited(kind);
                    None
                }
                Err(error) => {
                    reconcile::publish(
                        &ctx.recorder,
                        obj.as_ref(),
                        true,
                        error.category(),
                        error.to_string(),
                    )
                    .await;
                    Some(error.category())
                }
            };
            metrics.reconciled(kind, started.elapsed(), failure);
            metrics.set_in_backoff(ctx.backoff.in_backoff());
            result
        })
    }
}

/// [`reconcile::error_policy`], then the objects-in-backoff gauge brought up to date.
fn backoff_gauge<K: Resource<DynamicType = ()>>(
    metrics: &Arc<Metrics>,
) -> impl Fn(Arc<K>, &reconcile::Error, Arc<Context>) -> Action + use<K> {
    let metrics = Arc::clone(metrics);
    move |obj, error, ctx| {
        let action = reconcile::error_policy(obj, error, Arc::clone(&ctx));
        metrics.set_in_backoff(ctx.backoff.in_backoff());
        action
    }
}

/// `controller`, except that a stop before `store` is ready ends it at once.
///
/// kube-runtime holds reconciles until the store is ready, and its graceful shutdown cuts the watch that
/// would make it ready: stopped before the sync, it would wait forever. No reconcile of that controller
/// can have started then, so dropping it loses nothing.
async fn unless_stopped_unsynced<K>(
    controller: impl Future<Output = ()>,
    store: Store<K>,
    stop: watch::Receiver<bool>,
) where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let unsynced_stop = async move {
        let mut stop = stop;
        let _ = stop.wait_for(|s| *s).await;
        if store.wait_until_ready().now_or_never().is_some() {
            std::future::pending::<()>().await;
        }
        tracing::info!(
            kind = %K::kind(&()),
            "stopped before the cache synced: no reconcile in flight"
        );
    };
    tokio::select! {
        () = controller => {}
        () = unsynced_stop => {}
    }
}

/// The reconcilers' shared [`Context`] over the registered kinds.
fn context(
    client: &kube::Client,
    api: Arc<dyn BlaxelApi>,
    config: &ControllerConfig,
    kinds: Kinds,
) -> Context {
    let reporter = Reporter {
        controller: config.reporter.clone(),
        instance: std::env::var("POD_NAME").ok(),
    };
    Context {
        client: client.clone(),
        api,
        settings: config.settings.clone(),
        credentials: config.credentials.clone(),
        secret_keys: reconcile::credentials::SecretKeys::default(),
        // A scope unread for three resync periods is no longer used by any object (its key rotated, or
        // no object names its workspace any more).
        users: reconcile::cache::ListCache::new(config.settings.resync * 3),
        sandboxes: reconcile::cache::ListCache::new(config.settings.resync * 3),
        connections: reconcile::cache::ListCache::new(config.settings.resync * 3),
        recorder: EventPublisher::new(client.clone(), reporter),
        backoff: Backoff::new(config.backoff_base, config.backoff_max),
        removals: reconcile::removals::RemovalGuard::new(
            config.removal_limit,
            config.removal_window,
            config.metrics.removals_held.clone(),
            config
                .removal_store_namespace
                .as_deref()
                .map(|ns| reconcile::removals::Store::new(client.clone(), ns)),
        ),
        watched_namespace: config.namespace.clone(),
        digests: reconcile::digest::DigestKeys::new(
            client,
            config.removal_store_namespace.as_deref(),
        ),
        kinds,
        written: reconcile::WrittenStatuses::default(),
        reasons: reconcile::reasons::Reasons::default(),
    }
}

/// A kind's controller, built once the [`Context`] exists, run until the stop signal.
type Starter =
    Box<dyn FnOnce(Arc<Context>, watch::Receiver<bool>) -> BoxFuture<'static, ()> + Send>;

/// The kinds the operator runs, each registered with one [`Setup::add`] line.
struct Setup<'a> {
    client: &'a kube::Client,
    config: &'a ControllerConfig,
    kinds: Kinds,
    checks: Vec<BoxFuture<'a, Result<(), StartError>>>,
    starters: Vec<Starter>,
    synced: Vec<BoxFuture<'static, bool>>,
}

impl<'a> Setup<'a> {
    fn new(client: &'a kube::Client, config: &'a ControllerConfig) -> Self {
        Self {
            client,
            config,
            kinds: Kinds::default(),
            checks: Vec::new(),
            starters: Vec::new(),
            synced: Vec::new(),
        }
    }

    /// Registers kind `K`: its CRD check, its watch (store, claims, view), its controller and its
    /// readiness.
    fn add<K: Driver>(&mut self) {
        let namespace = self.config.namespace.as_deref();
        self.checks
            .push(Box::pin(check_crd::<K>(self.client, namespace)));
        let claims = Arc::new(ClaimIndex::new(<K as Managed>::claim_hash));
        let view = Arc::new(ViewState::default());
        self.config.liveness.register(K::KIND, Arc::clone(&view));
        let (store, stream) = watch::<K>(
            self.client.clone(),
            namespace,
            Arc::clone(&claims),
            Arc::clone(&view),
        );
        self.kinds.insert(KindState {
            store: store.clone(),
            claims,
            view,
        });
        let ready = store.clone();
        self.synced.push(Box::pin(
            async move { ready.wait_until_ready().await.is_ok() },
        ));
        let metrics = Arc::clone(&self.config.metrics);
        let concurrency = self.config.max_concurrent_reconciles;
        self.starters.push(Box::new(move |ctx, stop| {
            let stopped = {
                let mut stop = stop.clone();
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                }
            };
            let controller = Controller::for_stream(futures::stream::empty(), store.clone())
                .reconcile_on(stream)
                .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
                .graceful_shutdown_on(stopped)
                .run(measured::<K>(&metrics), backoff_gauge(&metrics), ctx)
                .for_each(|result| async move {
                    if let Err(e) = result {
                        tracing::debug!(kind = K::KIND, error = %e, "reconcile failed");
                    }
                });
            Box::pin(unless_stopped_unsynced(controller, store, stop))
        }));
    }
}

/// Runs every kind's controller until `shutdown` resolves; in-flight reconciles finish first.
///
/// `ready` is set to true once every kind's cache has synced (for `/readyz`).
///
/// # Errors
/// When a CRD is not served or the cluster cannot be reached.
pub async fn run(
    client: kube::Client,
    api: Arc<dyn BlaxelApi>,
    config: ControllerConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ready: watch::Sender<bool>,
) -> Result<(), StartError> {
    let mut setup = Setup::new(&client, &config);
    setup.add::<Cached<WorkspaceMember>>();
    setup.add::<Cached<Sandbox>>();
    setup.add::<Cached<Workspace>>();
    setup.add::<Cached<IntegrationConnection>>();
    setup.add::<Cached<SandboxPreview>>();
    let Setup {
        kinds,
        checks,
        starters,
        synced,
        ..
    } = setup;
    for check in checks {
        check.await?;
    }
    let ctx = Arc::new(context(&client, api, &config, kinds));
    let reported = Arc::clone(&ctx);
    config.metrics.on_scrape(move |m| {
        m.set_objects(&reported.reasons.counts(&reported.kinds.live_uids()));
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let controllers = futures::future::join_all(
        starters
            .into_iter()
            .map(|start| start(Arc::clone(&ctx), stop_rx.clone())),
    );
    let mut synced_stop = stop_rx.clone();
    let synced = async move {
        // A shutdown before the caches synced must not wait for a sync that will never come (the stopped
        // watch streams keep their stores' writers alive until this join ends).
        tokio::select! {
            all = futures::future::join_all(synced) => {
                if all.into_iter().all(|ok| ok) {
                    ready.send_replace(true);
                    tracing::info!("caches synced; reconciling");
                }
            }
            _ = synced_stop.wait_for(|s| *s) => {}
        }
    };
    let trigger = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight reconciles");
        stop_tx.send_replace(true);
    };
    tokio::join!(controllers, synced, trigger);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::crd::{PAUSED_ANNOTATION, WorkspaceMemberSpec};

    /// The cached copy keeps the operator's annotations and what reconciles read; the rest goes.
    #[test]
    fn slim_keeps_only_what_reconciles_read() {
        let mut obj: WorkspaceMember = serde_json::from_value(serde_json::json!({
            "apiVersion": "blaxel.ai/v1alpha1",
            "kind": "WorkspaceMember",
            "metadata": {
                "name": "alice", "namespace": "team", "uid": "u1", "generation": 2,
                "finalizers": ["blaxel.ai/cleanup"],
                "labels": {"app": "x"},
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\":{}}",
                    PAUSED_ANNOTATION: "true",
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            },
            "spec": {"workspace": "ws", "email": "a@example.com", "role": "member"},
        }))
        .unwrap();
        let spec: WorkspaceMemberSpec = obj.spec.clone();
        slim(&mut obj);
        assert_eq!(obj.metadata.managed_fields, None);
        assert_eq!(obj.metadata.labels, None);
        let annotations = obj.metadata.annotations.clone().unwrap();
        assert_eq!(annotations.len(), 1);
        assert_eq!(
            annotations.get(PAUSED_ANNOTATION).map(String::as_str),
            Some("true")
        );
        assert_eq!(
            obj.metadata.finalizers,
            Some(vec![crate::crd::FINALIZER.to_owned()])
        );
        assert_eq!(obj.metadata.generation, Some(2));
        assert_eq!(obj.spec, spec);

        // Without any of ours, no empty map is left behind.
        obj.metadata.annotations = Some([("other".to_owned(), "1".to_owned())].into());
        slim(&mut obj);
        assert_eq!(obj.metadata.annotations, None);
    }

    /// A reconcile is scheduled by namespace and name only, and still finds the object in the store.
    #[test]
    fn keys_carry_no_uid_or_resource_version() {
        use k8s_openapi::api::core::v1::ConfigMap;

        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("a".into());
        cm.metadata.namespace = Some("ns".into());
        cm.metadata.uid = Some("0c0d8b1e-2f5a-4c1e-9c53-5a3f0f6e7d21".into());
        cm.metadata.resource_version = Some("12345".into());
        let key = key_of(&cm).unwrap();
        assert_eq!(
            (key.name.as_str(), key.namespace.as_deref()),
            ("a", Some("ns"))
        );
        assert_eq!((key.extra.uid, key.extra.resource_version), (None, None));

        let (store, mut writer) = reflector::store::<ConfigMap>();
        writer.apply_watcher_event(&watcher::Event::Apply(cm.clone()));
        assert!(store.get(&key_of(&cm).unwrap()).is_some());

        cm.metadata.name = None;
        assert!(key_of(&cm).is_none(), "nothing to schedule without a name");
    }

    /// Only what a person or another controller changes wakes a reconcile; a status write does not.
    #[test]
    fn wakes_on_new_objects_and_on_changes_that_matter() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use watcher::Event;

        let object = |generation: i64| {
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some("a".into());
            cm.metadata.namespace = Some("ns".into());
            cm.metadata.uid = Some("u1".into());
            cm.metadata.generation = Some(generation);
            cm
        };
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let first = Event::Apply(object(1));
        assert!(wakes(&store, &first).is_some(), "new to the cache");
        writer.apply_watcher_event(&first);

        let mut status_only = object(1);
        status_only.data = Some([("status".to_owned(), "written".to_owned())].into());
        assert!(wakes(&store, &Event::Apply(status_only.clone())).is_none());
        assert!(
            wakes(&store, &Event::InitApply(status_only)).is_none(),
            "a relist of the same"
        );

        assert!(
            wakes(&store, &Event::Apply(object(2))).is_some(),
            "generation"
        );
        let mut annotated = object(1);
        annotated.metadata.annotations =
            Some([(PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
        assert!(
            wakes(&store, &Event::Apply(annotated)).is_some(),
            "annotations"
        );
        let mut finalized = object(1);
        finalized.metadata.finalizers = Some(vec![crate::crd::FINALIZER.to_owned()]);
        assert!(
            wakes(&store, &Event::Apply(finalized)).is_some(),
            "finalizers"
        );
        let mut recreated = object(1);
        recreated.metadata.uid = Some("u2".into());
        assert!(
            wakes(&store, &Event::Apply(recreated)).is_some(),
            "a new object by the same name"
        );

        assert!(wakes(&store, &Event::Delete(object(1))).is_none());
        assert!(wakes(&store, &Event::Init).is_none());
        assert!(wakes(&store, &Event::InitDone).is_none());
    }
}
