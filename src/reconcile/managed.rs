//! What every kind shares before any remote call: the [`Managed`] trait, duplicate claims, credentials,
//! and the start of cleanup. The drivers differ only in what they observe, plan and report.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use serde::de::DeserializeOwned;

use super::conditions::{Health, Why};
use super::credentials::CredentialsError;
use super::removals::Hold;
use super::{Context, Error, claims, is_paused, jittered, publish};
use crate::blaxel::{ApiError, Scope};
use crate::crd::{CredentialsRef, DeletionPolicy, FINALIZER, is_canonical_workspace};

/// A custom resource that manages one remote Blaxel object.
pub trait Managed:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Condition reason when another object holds the claim.
    const DUPLICATE_REASON: &'static str;
    /// Whether the remote object records which object owns it (a sandbox's ownership labels). Cleanup
    /// then decides by that record, not by claims (an object deletes what it owns, whoever claims the
    /// name since), and `Orphan` still has a remote step: releasing it.
    const OWNS_REMOTELY: bool;
    /// Why the spec cannot be acted on although admission took it (it was stored before a stricter
    /// rule), if so, beyond the workspace name every kind checks (see [`unusable_spec`]).
    fn spec_problem(&self) -> Option<Why> {
        None
    }
    /// The Blaxel workspace.
    fn workspace(&self) -> &str;
    /// The object's own credentials, if any.
    fn credentials_ref(&self) -> Option<&CredentialsRef>;
    /// What deletion does remotely.
    fn deletion_policy(&self) -> DeletionPolicy;
    /// The remote object, in words (`alice@example.com`, `sandbox dev-box`).
    fn identity(&self) -> String;
    /// Whether two objects name the same remote identity, which they must not share. Allocation-free:
    /// it runs against the rivals of a contested claim on every reconcile.
    fn same_claim(&self, other: &Self) -> bool;
    /// A hash of the remote identity, equal whenever [`Managed::same_claim`] is true.
    fn claim_hash(&self) -> u64;
    /// Proves that `scope`'s key works in its workspace by reading the kind's shared list (the list the
    /// kind's reconciles read anyway, so it usually costs nothing).
    fn prove(
        ctx: &Context,
        scope: &Scope,
    ) -> impl std::future::Future<Output = Result<(), ApiError>> + Send;
}

/// Why `obj`'s spec cannot be acted on, if so: a workspace name in another form than the CRD's rule
/// admits today (stored before the rule), or the kind's own [`Managed::spec_problem`]. Such an object
/// makes no remote call, holds no claim and counts for no other object.
pub fn unusable_spec<K: Managed>(obj: &K) -> Option<Why> {
    if !is_canonical_workspace(obj.workspace()) {
        return Some(Why::new(
            "WorkspaceNotCanonical",
            format!(
                "The workspace name {:?} is not in the one form Blaxel names workspaces in (lower-case \
                 letters, digits and hyphens, at most 63), which the CRD refuses today; the object was \
                 stored before. Create it again with the name in that form",
                obj.workspace()
            ),
        ));
    }
    obj.spec_problem()
}

/// What the checks before any remote call decided.
pub enum Admission {
    /// Go ahead with these credentials.
    Proceed(Scope),
    /// Report this verdict, make no remote call, and look again as the action says.
    Stop(Health, Action),
}

/// Condition reason and Event reason of a removal held by the mass-removal guard.
pub const REMOVAL_HELD: &str = "RemovalLimitReached";
/// Condition reason and Event reason of a removal that waits because it could not be recorded.
pub const REMOVAL_UNRECORDED: &str = "RemovalUnrecorded";

/// The object holding the claim `obj` makes, when it is not `obj`.
pub struct Holder {
    /// Its name, when it is in `obj`'s namespace; objects of other namespaces are never named.
    pub name: Option<String>,
}

impl Holder {
    /// The duplicate's condition message: the holder is named only when it shares the namespace.
    #[must_use]
    pub fn message(&self, identity: &str, workspace: &str) -> String {
        let who = self.name.as_ref().map_or_else(
            || "An object in another namespace".to_owned(),
            |name| format!("{name} (in this namespace)"),
        );
        format!("{who} already manages {identity} in workspace {workspace}")
    }
}

/// Whether `obj` may act for its workspace: its spec is usable, its credentials resolve in its
/// namespace, and Blaxel does not refuse its key there. Only such an object holds a claim, so a
/// made-up key cannot squat an identity.
///
/// # Errors
/// When that cannot be told just now (the Secret or the proof failed transiently): nothing may be
/// concluded, in either direction, from an incomplete view.
pub async fn may_act<K: Managed>(obj: &K, ctx: &Context) -> Result<bool, Error> {
    if unusable_spec(obj).is_some() {
        return Ok(false);
    }
    let scope = match scope(obj, ctx).await {
        Ok(scope) => scope,
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(_) => return Ok(false),
    };
    match K::prove(ctx, &scope).await {
        Ok(()) => Ok(true),
        Err(ApiError::Unauthorized { .. } | ApiError::Forbidden { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The older object, among those that may act for the workspace, holding the claim on `obj`'s remote
/// identity, if it is not `obj`.
///
/// # Errors
/// When whether a senior may act cannot be told just now.
pub async fn duplicate_of<K: Managed>(obj: &K, ctx: &Context) -> Result<Option<Holder>, Error> {
    let Some(kind) = ctx.kinds.get::<K>() else {
        return Ok(None);
    };
    for senior in claims::seniors_in(obj, &kind.store, &kind.claims, K::same_claim) {
        if may_act(senior.as_ref(), ctx).await? {
            let name = (senior.namespace() == obj.namespace()).then(|| senior.name_any());
            return Ok(Some(Holder { name }));
        }
    }
    Ok(None)
}

/// The workspace and key `obj` may use.
///
/// # Errors
/// Why no key may be used.
pub async fn scope<K: Managed>(obj: &K, ctx: &Context) -> Result<Scope, CredentialsError> {
    let namespace = obj.namespace().unwrap_or_default();
    let api_key = ctx
        .secret_keys
        .resolve(
            &ctx.credentials,
            &ctx.client,
            &namespace,
            obj.credentials_ref(),
        )
        .await?;
    Ok(Scope {
        workspace: obj.workspace().to_owned(),
        api_key,
    })
}

/// The spec, the credentials and duplicate claims, checked in that order before an object may call
/// Blaxel: an object that may not act is told why, and holds no claim.
///
/// # Errors
/// A transient failure to read credentials.
pub async fn admit<K: Managed>(obj: &K, ctx: &Context) -> Result<Admission, Error> {
    if let Some(why) = unusable_spec(obj) {
        return Ok(Admission::Stop(
            Health::Stalled(why),
            Action::await_change(),
        ));
    }
    let scope = match scope(obj, ctx).await {
        Ok(scope) => scope,
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            let stalled = Health::Stalled(Why::new(e.reason(), e.to_string()));
            return Ok(Admission::Stop(
                stalled,
                Action::requeue(jittered(ctx.settings.resync)),
            ));
        }
    };
    // A contested claim is told about only to an object whose own key works: a made-up key must not
    // learn what other namespaces manage.
    if ctx
        .kinds
        .get::<K>()
        .is_some_and(|kind| kind.claims.contested(obj))
    {
        match K::prove(ctx, &scope).await {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                let (health, outcome) = super::remote_verdict(e, &ctx.settings);
                return Ok(Admission::Stop(
                    health,
                    outcome.unwrap_or_else(|_| Action::await_change()),
                ));
            }
        }
    }
    if let Some(holder) = duplicate_of(obj, ctx).await? {
        let message = holder.message(&obj.identity(), obj.workspace());
        // Re-checked often (it costs at most reads of shared lists, usually cached), so the newer
        // object takes over soon after the holder is gone.
        let again = Action::requeue(jittered(ctx.settings.claim_recheck));
        return Ok(Admission::Stop(
            Health::Stalled(Why::new(K::DUPLICATE_REASON, message)),
            again,
        ));
    }
    Ok(Admission::Proceed(scope))
}

/// Takes one remote removal in `workspace` (of `subject`, see [`super::removals::RemovalGuard::take`])
/// from the mass-removal guard. When it is held, publishes the Warning Event and returns the verdict to
/// report and when to look again.
pub async fn removal_held<K: Managed>(
    obj: &K,
    ctx: &Context,
    workspace: &str,
    subject: &str,
) -> Option<(Health, Duration)> {
    let hold = ctx.removals.take(workspace, obj, subject).await.err()?;
    let message = ctx.removals.message(workspace, &hold);
    match hold {
        Hold::Limit { retry_in, .. } => {
            publish(&ctx.recorder, obj, true, REMOVAL_HELD, message.clone()).await;
            Some((
                Health::Stalled(Why::new(REMOVAL_HELD, message)),
                retry_in.max(Duration::from_secs(1)),
            ))
        }
        // A Kubernetes hiccup: retried soon, like any transient failure.
        Hold::Unrecorded(_) => {
            publish(
                &ctx.recorder,
                obj,
                true,
                REMOVAL_UNRECORDED,
                message.clone(),
            )
            .await;
            Some((
                Health::Failing(Why::new(REMOVAL_UNRECORDED, message)),
                ctx.settings.transition_poll,
            ))
        }
    }
}

/// How cleanup of a deleted object starts.
pub enum CleanupStart {
    /// Nothing to do remotely (Orphan, or a duplicate that never acted): the finalizer may go.
    Done,
    /// Report this verdict and look again after the delay, keeping the finalizer.
    Wait(Health, Duration),
    /// Clean up with these credentials.
    Proceed(Scope),
}

/// The checks before remote cleanup: spec, policy, duplicates, pause and credentials.
///
/// A cleanup that cannot go on for want of credentials keeps the finalizer (the remote member or
/// sandbox would otherwise outlive its object unseen) and says so in a condition and a Warning Event.
///
/// # Errors
/// A transient failure to read credentials.
pub async fn begin_cleanup<K: Managed>(obj: &K, ctx: &Context) -> Result<CleanupStart, Error> {
    if let Some(why) = unusable_spec(obj) {
        // Such an object never acted under this operator; nothing is removed on its behalf.
        publish(
            &ctx.recorder,
            obj,
            true,
            &why.reason,
            format!(
                "Deleted without any remote call: {}. Remove {} from workspace {} by hand if it exists",
                why.message,
                obj.identity(),
                obj.workspace()
            ),
        )
        .await;
        return Ok(CleanupStart::Done);
    }
    let orphan = obj.deletion_policy() == DeletionPolicy::Orphan;
    if orphan && !K::OWNS_REMOTELY {
        return Ok(CleanupStart::Done);
    }
    // A duplicate never acted: removing the identity would undo what its holder manages. Where the
    // remote object records its owner, that record decides instead (see `OWNS_REMOTELY`): an object
    // that owns it may have acted before an older one came to hold the claim.
    if !K::OWNS_REMOTELY && duplicate_of(obj, ctx).await?.is_some() {
        return Ok(CleanupStart::Done);
    }
    if is_paused(obj) {
        // Even an orphan waits: its release is a remote write.
        return Ok(CleanupStart::Wait(
            Health::Paused { ready: false },
            ctx.settings.resync,
        ));
    }
    let error = match scope(obj, ctx).await {
        Ok(scope) => return Ok(CleanupStart::Proceed(scope)),
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => e,
    };
    // Releasing an orphan is a courtesy, and a duplicate without credentials cannot be checked while
    // its holder manages the name: neither is waited for.
    if orphan || (K::OWNS_REMOTELY && duplicate_of(obj, ctx).await?.is_some()) {
        return Ok(CleanupStart::Done);
    }
    let message = format!(
        "{error}; the finalizer {FINALIZER} stays until the credentials are back (or a person \
         removes it, leaving {} in workspace {})",
        obj.identity(),
        obj.workspace()
    );
    publish(&ctx.recorder, obj, true, error.reason(), message.clone()).await;
    Ok(CleanupStart::Wait(
        Health::Stalled(Why::new(error.reason(), message)),
        ctx.settings.resync,
    ))
}

/// Turns a [`CleanupStart::Wait`] into the error that keeps the finalizer and schedules the next look.
#[must_use]
pub fn keep_finalizer(health: &Health, after: Duration) -> Error {
    let message = match health {
        Health::Stalled(why)
        | Health::Failing(why)
        | Health::Progressing(why)
        | Health::Ready(why) => why.message.clone(),
        Health::Paused { .. } => "paused".to_owned(),
    };
    Error::Waiting(message, after)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use serde_json::{Value, json};

    use super::*;
    use crate::crd::{Sandbox, WorkspaceMember};
    use crate::reconcile::testing::{self, Harness, deleting, register};

    type Member = Harness<WorkspaceMember>;

    /// A member object `name` for `email` in workspace acme, `extra` laid over its spec, created at
    /// `created`.
    fn member(name: &str, email: &str, extra: &Value, created: &str) -> Value {
        let mut spec = json!({"workspace": "acme", "email": email, "role": "admin"});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let mut obj = testing::object("WorkspaceMember", name, &spec, None, 1);
        obj["metadata"]["creationTimestamp"] = json!(created);
        obj
    }

    fn alice(extra: &Value) -> Value {
        member("alice", "alice@example.com", extra, "2026-01-02T00:00:00Z")
    }

    fn stalled_reason(admission: &Admission) -> Option<&str> {
        match admission {
            Admission::Stop(Health::Stalled(why), _) => Some(why.reason.as_str()),
            _ => None,
        }
    }

    /// A workspace name in a form the CRD refuses today (stored before the rule) stops admission and
    /// cleanup before any call, remote or to Kubernetes (but the Warning Event of cleanup).
    #[tokio::test]
    async fn an_unusable_workspace_makes_no_call() {
        let obj = alice(&json!({"workspace": "Acme_Corp"}));
        let h: Member = Harness::new(&obj, 10);
        let admission = admit(&h.obj, &h.ctx).await.unwrap();
        assert_eq!(stalled_reason(&admission), Some("WorkspaceNotCanonical"));
        assert!(h.kube.sent().is_empty());
        let gone: Member = Harness::new(&deleting(obj), 10);
        let start = begin_cleanup(&gone.obj, &gone.ctx).await.unwrap();
        assert!(matches!(start, CleanupStart::Done));
        assert!(gone.api.calls().is_empty());
        assert_eq!(gone.kube.events(), ["Warning:WorkspaceNotCanonical"]);
    }

    /// A key from the object's Secret is the one used; a missing Secret stalls admission, and keeps the
    /// finalizer of a deleted object (with a Warning Event) but for an orphan, which has nothing to do.
    #[tokio::test]
    async fn credentials_come_from_the_objects_secret() {
        let creds = json!({"credentialsRef": {"name": "creds", "key": "apiKey"}});
        let h: Member = Harness::new(&alice(&creds), 10);
        h.kube
            .put_secret(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "team-a"},
            "data": {"apiKey": "dGVhbS1rZXk="}}));
        let Admission::Proceed(scope) = admit(&h.obj, &h.ctx).await.unwrap() else {
            panic!("admitted with the Secret's key");
        };
        assert_eq!(scope.api_key.expose(), "team-key");
        assert_eq!(scope.workspace, "acme");

        let missing: Member = Harness::new(&alice(&creds), 10);
        let admission = admit(&missing.obj, &missing.ctx).await.unwrap();
        assert_eq!(stalled_reason(&admission), Some("CredentialsNotFound"));
        let gone: Member = Harness::new(&deleting(alice(&creds)), 10);
        let start = begin_cleanup(&gone.obj, &gone.ctx).await.unwrap();
        assert!(
            matches!(start, CleanupStart::Wait(Health::Stalled(ref why), _) if why.reason == "CredentialsNotFound")
        );
        assert_eq!(gone.kube.events(), ["Warning:CredentialsNotFound"]);

        let mut orphan = testing::object(
            "Sandbox",
            "box",
            &json!({"workspace": "acme", "image": "base:2", "deletionPolicy": "Orphan",
                    "credentialsRef": {"name": "creds", "key": "apiKey"}}),
            None,
            1,
        );
        orphan = deleting(orphan);
        let orphan: Harness<Sandbox> = Harness::new(&orphan, 10);
        let start = begin_cleanup(&orphan.obj, &orphan.ctx).await.unwrap();
        assert!(matches!(start, CleanupStart::Done));
        assert!(orphan.kube.events().is_empty());
    }

    /// A paused object's deletion waits, even an orphan's (its release is a remote write).
    #[tokio::test]
    async fn a_paused_deletion_waits() {
        let mut obj = deleting(alice(&json!({})));
        obj["metadata"]["annotations"] = json!({"blaxel.ai/paused": "true"});
        let h: Member = Harness::new(&obj, 10);
        let start = begin_cleanup(&h.obj, &h.ctx).await.unwrap();
        assert!(matches!(
            start,
            CleanupStart::Wait(Health::Paused { .. }, _)
        ));
        assert!(h.api.calls().is_empty());
    }

    /// The older object holding a claim stops a newer duplicate (named, being in its namespace), whose
    /// deletion then removes nothing; an older object whose key Blaxel refuses holds no claim.
    #[tokio::test]
    async fn the_older_object_that_may_act_holds_the_claim() {
        let holder = member(
            "first",
            "alice@example.com",
            &json!({}),
            "2026-01-01T00:00:00Z",
        );
        let mut h: Member = Harness::new(&alice(&json!({})), 10);
        register::<WorkspaceMember>(&mut h.ctx, &[holder.clone(), alice(&json!({}))]);
        let admission = admit(&h.obj, &h.ctx).await.unwrap();
        assert_eq!(stalled_reason(&admission), Some("DuplicateMember"));
        let Admission::Stop(Health::Stalled(why), _) = admission else {
            unreachable!()
        };
        assert!(
            why.message.starts_with("first (in this namespace)"),
            "{}",
            why.message
        );

        let gone = deleting(alice(&json!({})));
        let mut d: Member = Harness::new(&gone, 10);
        register::<WorkspaceMember>(&mut d.ctx, &[holder.clone(), gone.clone()]);
        let start = begin_cleanup(&d.obj, &d.ctx).await.unwrap();
        assert!(matches!(start, CleanupStart::Done));
        assert_eq!(d.api.writes(), Vec::<String>::new());

        // The holder's own key is one Blaxel refuses: it may not act, and holds nothing.
        let mut bad = holder;
        bad["spec"]["credentialsRef"] = json!({"name": "first-creds", "key": "apiKey"});
        let mut free: Member = Harness::new(&alice(&json!({})), 10);
        register::<WorkspaceMember>(&mut free.ctx, &[bad, alice(&json!({}))]);
        free.kube
            .put_secret(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "first-creds", "namespace": "team-a"},
            "data": {"apiKey": "YmFkLWtleQ=="}}));
        free.api.refuse_key("bad-key");
        let admission = admit(&free.obj, &free.ctx).await.unwrap();
        assert!(matches!(admission, Admission::Proceed(_)));

        // A newer object whose own key is refused is told so, not who holds the claim.
        let mut refused: Member = Harness::new(&alice(&json!({})), 10);
        register::<WorkspaceMember>(
            &mut refused.ctx,
            &[
                member(
                    "first",
                    "alice@example.com",
                    &json!({}),
                    "2026-01-01T00:00:00Z",
                ),
                alice(&json!({})),
            ],
        );
        refused.api.refuse_key("the-default-key");
        let admission = admit(&refused.obj, &refused.ctx).await.unwrap();
        assert_eq!(stalled_reason(&admission), Some("Unauthorized"));
    }

    /// A duplicate is told the holder's name only when the holder is in its own namespace.
    #[test]
    fn holders_of_other_namespaces_are_not_named() {
        let here = Holder {
            name: Some("alice".into()),
        };
        let elsewhere = Holder { name: None };
        assert_eq!(
            here.message("alice@example.com", "acme"),
            "alice (in this namespace) already manages alice@example.com in workspace acme"
        );
        let hidden = elsewhere.message("alice@example.com", "acme");
        assert!(
            hidden.starts_with("An object in another namespace"),
            "{hidden}"
        );
    }
}
