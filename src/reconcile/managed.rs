//! What both kinds share before any remote call: the [`Managed`] trait, duplicate claims, credentials,
//! and the start of cleanup. The drivers differ only in what they observe, plan and report.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use serde::de::DeserializeOwned;

use super::cache::{email_key, same_email};
use super::cached::Cached;
use super::claims::{ClaimIndex, hash_of};
use super::conditions::{Health, Why};
use super::credentials::CredentialsError;
use super::{Context, Error, claims, is_paused, jittered};
use crate::blaxel::Scope;
use crate::crd::{CredentialsRef, DeletionPolicy, Sandbox, WorkspaceMember};

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
    /// The Blaxel workspace.
    fn workspace(&self) -> &str;
    /// The object's own credentials, if any.
    fn credentials_ref(&self) -> Option<&CredentialsRef>;
    /// What deletion does remotely.
    fn deletion_policy(&self) -> DeletionPolicy;
    /// The remote object, in words (`alice@example.com`, `sandbox dev-box`).
    fn identity(&self) -> String;
    /// Every object of the kind, from the controller's cache.
    fn store(ctx: &Context) -> &Store<Self>;
    /// Who claims what among the objects of the kind, kept from the watch.
    fn claims(ctx: &Context) -> &ClaimIndex<Self>;
    /// Whether two objects name the same remote identity, which they must not share. Allocation-free:
    /// it runs against the rivals of a contested claim on every reconcile.
    fn same_claim(&self, other: &Self) -> bool;
    /// A hash of the remote identity, equal whenever [`Managed::same_claim`] is true.
    fn claim_hash(&self) -> u64;
}

impl Managed for Cached<WorkspaceMember> {
    const DUPLICATE_REASON: &'static str = "DuplicateMember";
    fn workspace(&self) -> &str {
        &self.spec.workspace
    }
    fn credentials_ref(&self) -> Option<&CredentialsRef> {
        self.spec.credentials_ref.as_ref()
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn identity(&self) -> String {
        self.spec.email.trim().to_owned()
    }
    fn store(ctx: &Context) -> &Store<Self> {
        &ctx.members
    }
    fn claims(ctx: &Context) -> &ClaimIndex<Self> {
        &ctx.member_claims
    }
    fn same_claim(&self, other: &Self) -> bool {
        self.spec.workspace == other.spec.workspace
            && same_email(&self.spec.email, &other.spec.email)
    }
    fn claim_hash(&self) -> u64 {
        hash_of((&self.spec.workspace, email_key(&self.spec.email)))
    }
}

impl Managed for Cached<Sandbox> {
    const DUPLICATE_REASON: &'static str = "DuplicateSandbox";
    fn workspace(&self) -> &str {
        &self.spec.workspace
    }
    fn credentials_ref(&self) -> Option<&CredentialsRef> {
        self.spec.credentials_ref.as_ref()
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn identity(&self) -> String {
        format!("sandbox {}", remote_name(self))
    }
    fn store(ctx: &Context) -> &Store<Self> {
        &ctx.sandbox_objects
    }
    fn claims(ctx: &Context) -> &ClaimIndex<Self> {
        &ctx.sandbox_claims
    }
    fn same_claim(&self, other: &Self) -> bool {
        self.spec.workspace == other.spec.workspace && remote_name(self) == remote_name(other)
    }
    fn claim_hash(&self) -> u64 {
        hash_of((&self.spec.workspace, remote_name(self)))
    }
}

/// A sandbox's remote name: `spec.sandboxName`, else `metadata.name`.
#[must_use]
pub fn remote_name(s: &Cached<Sandbox>) -> &str {
    s.spec
        .sandbox_name
        .as_deref()
        .or(s.metadata.name.as_deref())
        .unwrap_or_default()
}

/// What the checks before any remote call decided.
pub enum Admission {
    /// Go ahead with these credentials.
    Proceed(Scope),
    /// Report this verdict, make no remote call, and look again as the action says.
    Stop(Health, Action),
}

/// The older object holding the claim on `obj`'s remote identity, if it is not `obj`.
pub fn duplicate_of<K: Managed>(obj: &K, ctx: &Context) -> Option<String> {
    claims::holder_in(obj, K::store(ctx), K::claims(ctx), K::same_claim)
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

/// Duplicate claims and credentials, checked before an object may call Blaxel.
///
/// # Errors
/// A transient failure to read credentials.
pub async fn admit<K: Managed>(obj: &K, ctx: &Context) -> Result<Admission, Error> {
    if let Some(holder) = duplicate_of(obj, ctx) {
        let message = format!(
            "{holder} already manages {} in workspace {}",
            obj.identity(),
            obj.workspace()
        );
        // Re-checked often (it costs no remote call), so the newer object takes over soon after the
        // holder is gone.
        let again = Action::requeue(jittered(ctx.settings.claim_recheck));
        return Ok(Admission::Stop(
            Health::Stalled(Why::new(K::DUPLICATE_REASON, message)),
            again,
        ));
    }
    match scope(obj, ctx).await {
        Ok(scope) => Ok(Admission::Proceed(scope)),
        Err(e) if e.is_transient() => Err(e.into()),
        Err(e) => {
            let stalled = Health::Stalled(Why::new(e.reason(), e.to_string()));
            Ok(Admission::Stop(
                stalled,
                Action::requeue(jittered(ctx.settings.resync)),
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

/// The checks before remote cleanup: policy, duplicates, pause and credentials.
///
/// # Errors
/// A transient failure to read credentials.
pub async fn begin_cleanup<K: Managed>(obj: &K, ctx: &Context) -> Result<CleanupStart, Error> {
    if obj.deletion_policy() == DeletionPolicy::Orphan || duplicate_of(obj, ctx).is_some() {
        return Ok(CleanupStart::Done);
    }
    if is_paused(obj) {
        return Ok(CleanupStart::Wait(
            Health::Paused { ready: false },
            ctx.settings.resync,
        ));
    }
    match scope(obj, ctx).await {
        Ok(scope) => Ok(CleanupStart::Proceed(scope)),
        Err(e) if e.is_transient() => Err(e.into()),
        Err(e) => Ok(CleanupStart::Wait(
            Health::Stalled(Why::new(e.reason(), e.to_string())),
            ctx.settings.resync,
        )),
    }
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
