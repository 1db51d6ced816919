//! The frame every kind's reconcile runs in: the finalizer, then admission ([`admit`]: spec, credentials,
//! duplicate claims) before the kind's own pass, or the kind's cleanup on deletion. A kind supplies its
//! [`Driver`]; the controller ([`crate::controller`]) adds metrics, backoff and Warning Events around it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, ResourceExt};
use serde::Serialize;
use tracing::Instrument;

use super::cached::SeenStatus;
use super::conditions::Health;
use super::managed::{
    Admission, CleanupStart, Managed, admit, begin_cleanup, keep_finalizer, removal_held,
};
use super::{Context, Error, WrittenStatuses, publish_for};
use crate::blaxel::Scope;
use crate::crd::FINALIZER;

/// One kind's side of a reconcile: its pass once admitted, its status when admission stopped it, and
/// its cleanup.
pub trait Driver: Managed + SeenStatus + Serialize {
    /// The kind's name in metrics and logs.
    const KIND: &'static str;

    /// The checks before any remote call: [`admit`] (the object's own spec, credentials and duplicate
    /// claims) unless the kind acts through another object (a preview, through its Sandbox).
    fn admit(obj: &Self, ctx: &Context) -> impl Future<Output = Result<Admission, Error>> + Send {
        admit(obj, ctx)
    }

    /// Observes, plans and acts for an admitted object, with the credentials admission chose.
    fn apply(
        obj: &Self,
        ctx: &Context,
        scope: Scope,
    ) -> impl Future<Output = Result<Action, Error>> + Send;

    /// Reports the verdict of an admission that stopped the object (it may not act).
    fn stopped(
        obj: &Self,
        ctx: &Context,
        health: Health,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Cleans up remotely after the object's deletion; an error keeps the finalizer.
    fn cleanup(obj: &Self, ctx: &Context) -> impl Future<Output = Result<Action, Error>> + Send;

    /// Reports the verdict of a cleanup that waits, keeping the finalizer (no credentials, paused, a
    /// removal the guard holds): see [`wait_in_cleanup`].
    fn cleanup_waits(
        obj: &Self,
        ctx: &Context,
        health: Health,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Reports `health` through [`Driver::cleanup_waits`] and returns the error that keeps the finalizer
/// and looks again after `after` (or the status write's own error).
pub async fn wait_in_cleanup<K: Driver>(
    obj: &K,
    ctx: &Context,
    health: Health,
    after: Duration,
) -> Error {
    let error = keep_finalizer(&health, after);
    match K::cleanup_waits(obj, ctx, health).await {
        Ok(()) => error,
        Err(e) => e,
    }
}

/// The start of a kind's cleanup ([`begin_cleanup`]): the credentials to clean up with, or `None` when
/// nothing remains to do remotely.
///
/// # Errors
/// A wait (reported through the driver, keeping the finalizer), or a transient failure.
pub async fn cleanup_scope<K: Driver>(obj: &K, ctx: &Context) -> Result<Option<Scope>, Error> {
    match begin_cleanup(obj, ctx).await? {
        CleanupStart::Done => Ok(None),
        CleanupStart::Wait(health, after) => Err(wait_in_cleanup(obj, ctx, health, after).await),
        CleanupStart::Proceed(scope) => Ok(Some(scope)),
    }
}

/// Takes one removal in `workspace` from the mass-removal guard ([`removal_held`]).
///
/// # Errors
/// The removal is held: reported through the driver, keeping the finalizer.
pub async fn take_removal<K: Driver>(obj: &K, ctx: &Context, workspace: &str) -> Result<(), Error> {
    match removal_held(obj, ctx, workspace, "").await {
        Some((health, after)) => Err(wait_in_cleanup(obj, ctx, health, after).await),
        None => Ok(()),
    }
}

/// Reconciles one object of kind `K` inside the finalizer.
///
/// # Errors
/// Transient failures, for [`super::error_policy`] to back off.
pub async fn reconcile<K: Driver>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    // Read-your-writes: never decide from a copy older than the operator's own last status write.
    if let Some(uid) = obj.meta().uid.as_deref()
        && ctx.written.lags(uid, obj.seen_status())
    {
        return Ok(Action::requeue(WrittenStatuses::RETRY));
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let span = tracing::info_span!(
        "reconcile",
        kind = K::KIND,
        namespace = obj.namespace().unwrap_or_default(),
        object = obj.name_any()
    );
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => match K::admit(obj.as_ref(), &ctx).await? {
                Admission::Proceed(scope) => K::apply(&obj, &ctx, scope).await,
                Admission::Stop(health, again) => {
                    // Every pass that cannot go on says so in an Event, not only in the status.
                    if let Health::Stalled(why) = &health {
                        let note = why.message.clone();
                        publish_for(
                            &ctx.recorder,
                            obj.as_ref(),
                            "Admit",
                            true,
                            &why.reason,
                            note,
                        )
                        .await;
                    }
                    K::stopped(&obj, &ctx, health).await?;
                    Ok(again)
                }
            },
            FinalizerEvent::Cleanup(obj) => K::cleanup(&obj, &ctx).await,
        }
    })
    .instrument(span)
    .await
    .map_err(Error::from_finalizer)
}
