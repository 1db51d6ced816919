//! Wiring: watches, the two controllers, concurrency, backoff and shutdown.
//!
//! Each kind gets a reflector store (shared with the reconcilers for duplicate claims) and a watch filtered
//! to what deserves a reconcile: generation (spec and deletion), annotations (pause, reconcile requests)
//! and finalizers. The operator's own status writes therefore never wake it again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::ListParams;
use kube::runtime::controller::Controller;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt, predicates, utils::Predicate};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::blaxel::BlaxelApi;
use crate::crd::{Sandbox, WorkspaceMember};
use crate::reconcile::backoff::Backoff;
use crate::reconcile::claims::ClaimIndex;
use crate::reconcile::credentials::DefaultCredentials;
use crate::reconcile::events::EventPublisher;
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
    CrdMissing(&'static str),
    /// The cluster could not be asked.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Fails with a helpful message unless both CRDs are served.
///
/// # Errors
/// [`StartError::CrdMissing`] naming the missing kind, or the API error.
pub async fn check_crds(client: &kube::Client) -> Result<(), StartError> {
    async fn served<K>(client: &kube::Client) -> Result<(), StartError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    {
        match Api::<K>::all(client.clone())
            .list_metadata(&ListParams::default().limit(1))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                Err(StartError::CrdMissing(K::kind(&()).into_owned().leak()))
            }
            Err(e) => Err(e.into()),
        }
    }
    served::<WorkspaceMember>(client).await?;
    served::<Sandbox>(client).await
}

/// A watch on every object of a kind, reflected into a store and filtered to what deserves a reconcile.
fn watch<K>(
    client: kube::Client,
    namespace: Option<&str>,
    claims: Arc<ClaimIndex<K>>,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + use<K>,
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
    let (reader, writer) = reflector::store();
    let api = match namespace {
        Some(ns) => Api::<K>::namespaced(client, ns),
        None => Api::<K>::all(client),
    };
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        // Nothing reads managedFields (status is written by server-side apply, finalizers by JSON patch):
        // dropping them before the store keeps about half of each cached object out of memory.
        .modify(|obj: &mut K| obj.managed_fields_mut().clear())
        // The claim index sees each event just before the store, so it never lags behind it.
        .map(move |event| {
            if let Ok(event) = &event {
                claims.apply(event);
            }
            event
        })
        .reflect(writer)
        .touched_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::annotations)
                .combine(predicates::finalizers),
            kube::runtime::utils::PredicateConfig::default(),
        );
    (reader, stream)
}

/// Runs both controllers until `shutdown` resolves; in-flight reconciles finish first.
///
/// `ready` is set to true once both caches have synced (for `/readyz`).
///
/// # Errors
/// When the CRDs are not served or the cluster cannot be reached.
pub async fn run(
    client: kube::Client,
    api: Arc<dyn BlaxelApi>,
    config: ControllerConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ready: watch::Sender<bool>,
) -> Result<(), StartError> {
    check_crds(&client).await?;
    let member_claims = Arc::new(ClaimIndex::new(reconcile::member::claim_hash));
    let sandbox_claims = Arc::new(ClaimIndex::new(reconcile::sandbox::claim_hash));
    let (members, member_stream) = watch::<WorkspaceMember>(
        client.clone(),
        config.namespace.as_deref(),
        Arc::clone(&member_claims),
    );
    let (sandboxes, sandbox_stream) = watch::<Sandbox>(
        client.clone(),
        config.namespace.as_deref(),
        Arc::clone(&sandbox_claims),
    );
    let reporter = Reporter {
        controller: config.reporter.clone(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        api,
        settings: config.settings.clone(),
        credentials: config.credentials.clone(),
        secret_keys: reconcile::credentials::SecretKeys::default(),
        users: reconcile::cache::ListCache::default(),
        sandboxes: reconcile::cache::ListCache::default(),
        recorder: EventPublisher::new(client.clone(), reporter),
        backoff: Backoff::new(config.backoff_base, config.backoff_max),
        members: members.clone(),
        sandbox_objects: sandboxes.clone(),
        member_claims,
        sandbox_claims,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let controller_config =
        kube::runtime::controller::Config::default().concurrency(config.max_concurrent_reconciles);
    let member_controller = Controller::for_stream(member_stream, members.clone())
        .with_config(controller_config.clone())
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(
            reconcile::member::reconcile,
            reconcile::error_policy,
            Arc::clone(&ctx),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "WorkspaceMember reconcile failed");
            }
        });
    let sandbox_controller = Controller::for_stream(sandbox_stream, sandboxes.clone())
        .with_config(controller_config)
        .graceful_shutdown_on(stopped(stop_rx))
        .run(
            reconcile::sandbox::reconcile,
            reconcile::error_policy,
            Arc::clone(&ctx),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "Sandbox reconcile failed");
            }
        });
    let synced = async move {
        let (a, b) = tokio::join!(members.wait_until_ready(), sandboxes.wait_until_ready());
        if a.is_ok() && b.is_ok() {
            ready.send_replace(true);
            tracing::info!("caches synced; reconciling");
        }
    };
    let trigger = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight reconciles");
        stop_tx.send_replace(true);
    };
    tokio::join!(member_controller, sandbox_controller, synced, trigger);
    Ok(())
}
