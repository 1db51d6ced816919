//! Workspace reconciler: observe (the workspace, and the shared user list) → plan (pure: the record,
//! then the membership policy) → act (check, create, update; remove unmanaged members) → report.

pub mod dry_run;
pub mod plan;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::info;

use super::cache::email_key;
use super::cached::{Cached, WithConditions};
use super::claims::hash_of;
use super::conditions::{Health, Why};
use super::digest::list_digest;
use super::frame::{Driver, cleanup_scope, take_removal, wait_in_cleanup};
use super::managed::{Managed, may_act, removal_held};
use super::removals::CONFIRM_ANNOTATION;
use super::{
    Context, Error, conditions_for, failed, is_paused, jittered, pending_request, publish,
    requeue_after, write_status,
};
use crate::blaxel::model::{Workspace as RemoteWorkspace, WorkspaceUser};
use crate::blaxel::{ApiError, Scope, error_map};
use crate::crd::{
    CredentialsRef, DeletionPolicy, IntegrationConnection, MemberCounts, MembershipPolicy, Sandbox,
    Workspace, WorkspaceMember, WorkspaceStatus,
};
use plan::{MembersInput, View, WorkspaceAction, WorkspaceInput};

/// At most this many writes to the workspace record in one pass (check, create); more waits.
const MAX_STEPS: usize = 3;

impl WithConditions for WorkspaceStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

/// The workspace's remote name: `spec.workspaceName`, else `metadata.name`.
#[must_use]
pub fn remote_name(w: &Cached<Workspace>) -> &str {
    w.spec
        .workspace_name
        .as_deref()
        .or(w.metadata.name.as_deref())
        .unwrap_or_default()
}

impl Managed for Cached<Workspace> {
    const DUPLICATE_REASON: &'static str = "DuplicateWorkspace";
    const OWNS_REMOTELY: bool = false;
    fn workspace(&self) -> &str {
        remote_name(self)
    }
    fn credentials_ref(&self) -> Option<&CredentialsRef> {
        self.spec.credentials_ref.as_ref()
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn identity(&self) -> String {
        format!("workspace {}", remote_name(self))
    }
    fn same_claim(&self, other: &Self) -> bool {
        remote_name(self) == remote_name(other)
    }
    fn claim_hash(&self) -> u64 {
        hash_of(remote_name(self))
    }
    async fn prove(ctx: &Context, scope: &Scope) -> Result<(), ApiError> {
        // A key Blaxel accepts reads the workspace, or learns it does not exist (yet).
        match ctx.api.get_workspace(scope, &scope.workspace).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Driver for Cached<Workspace> {
    const KIND: &'static str = "Workspace";

    async fn apply(obj: &Self, ctx: &Context, scope: Scope) -> Result<Action, Error> {
        apply(obj, ctx, &scope).await
    }

    async fn stopped(obj: &Self, ctx: &Context, health: Health) -> Result<(), Error> {
        finish(obj, ctx, Report::kept(obj, health)).await
    }

    async fn cleanup(obj: &Self, ctx: &Context) -> Result<Action, Error> {
        cleanup(obj, ctx).await
    }

    async fn cleanup_waits(obj: &Self, ctx: &Context, health: Health) -> Result<(), Error> {
        finish(obj, ctx, Report::kept(obj, health)).await
    }
}

/// What a pass decided, before it becomes a `WorkspaceStatus`.
struct Report {
    health: Health,
    observed: Option<RemoteWorkspace>,
    adopted: Option<bool>,
    counts: Option<MemberCounts>,
    unmanaged: Option<Vec<String>>,
}

impl Report {
    /// A report that changes nothing but the health.
    fn kept(obj: &Cached<Workspace>, health: Health) -> Self {
        Self {
            health,
            observed: None,
            adopted: obj.status_fields().adopted,
            counts: None,
            unmanaged: None,
        }
    }
}

async fn apply(obj: &Cached<Workspace>, ctx: &Context, scope: &Scope) -> Result<Action, Error> {
    let name = remote_name(obj).to_owned();
    let mut report = Report::kept(obj, Health::Progressing(Why::new("Reconciling", "")));
    let paused = is_paused(obj);
    let mut observed = match observe(ctx, scope, &name).await {
        Ok(observed) => observed,
        Err(e) => return fail(obj, ctx, report, e).await,
    };
    // Adopted: found before this object sent a create of its own.
    if report.adopted.is_none() && observed.is_some() {
        report.adopted = Some(true);
    }
    let mut health = match converge(
        obj,
        ctx,
        scope,
        &name,
        paused,
        &mut observed,
        &mut report.adopted,
    )
    .await
    {
        Ok(health) => health,
        Err(e) => {
            report.observed = observed;
            return fail(obj, ctx, report, e).await;
        }
    };
    // Members are read in a ready workspace only (before, Blaxel refuses calls in it).
    if observed
        .as_ref()
        .is_some_and(|w| w.status.as_deref().is_none_or(|s| s == "ready"))
    {
        match members(obj, ctx, scope, &name, paused).await {
            Ok(members) => {
                report.counts = members.counts;
                report.unmanaged = members.unmanaged;
                if let Some(verdict) = members.verdict
                    && matches!(health, Health::Ready(_))
                {
                    health = verdict;
                }
            }
            Err(e) => {
                report.observed = observed;
                return fail(obj, ctx, report, e).await;
            }
        }
    }
    if paused {
        health = Health::Paused {
            ready: matches!(health, Health::Ready(_)),
        };
    }
    report.observed = observed;
    report.health = health.map_message(|m| error_map::outgoing_text(m, &scope.api_key));
    let action = match &report.health {
        // Waiting for the member caches: soon, not at resync.
        Health::Progressing(why) if why.reason == MEMBER_VIEW_PARTIAL => {
            Action::requeue(ctx.settings.transition_poll)
        }
        Health::Stalled(_) => Action::requeue(jittered(ctx.settings.resync)),
        health => requeue_after(health, &ctx.settings, ctx.settings.transition_poll),
    };
    finish(obj, ctx, report).await?;
    Ok(action)
}

/// Brings the workspace record to the spec (check, create, update), updating `observed` with each
/// answer, and `adopted` to `false` once a create is sent (the answer may be lost); how the record
/// stands.
async fn converge(
    obj: &Cached<Workspace>,
    ctx: &Context,
    scope: &Scope,
    name: &str,
    paused: bool,
    observed: &mut Option<RemoteWorkspace>,
    adopted: &mut Option<bool>,
) -> Result<Health, ApiError> {
    let mut availability = None;
    let mut health = Health::Progressing(Why::new("Reconciling", ""));
    for _ in 0..MAX_STEPS {
        let plan = plan::plan(&WorkspaceInput {
            spec: &obj.spec,
            name,
            observed: observed.as_ref(),
            availability: availability.as_ref(),
        });
        health = plan.health;
        let Some(action) = plan.action.filter(|_| !paused) else {
            break;
        };
        let (reason, note, answer) = match action {
            WorkspaceAction::CheckAvailability => {
                availability = Some(ctx.api.workspace_availability(scope, name).await?);
                continue;
            }
            WorkspaceAction::Create(body) => {
                let before = adopted.replace(false);
                let answer = ctx.api.create_workspace(scope, &body).await;
                if matches!(answer, Err(ApiError::Conflict { .. })) {
                    // Not created by this request: whoever did, the next look decides.
                    *adopted = before;
                }
                ("Created", format!("Created workspace {name}"), answer)
            }
            WorkspaceAction::Update(body) => (
                "Updated",
                format!("Updated workspace {name}"),
                ctx.api.update_workspace(scope, &body).await,
            ),
        };
        match answer {
            Ok(now) => {
                info!(workspace = %name, reason, "workspace written");
                publish(&ctx.recorder, obj, false, reason, note).await;
                *observed = Some(now);
            }
            // Created meanwhile (by another, or by a lost answer of ours): read it again soon.
            Err(ApiError::Conflict { .. }) => {
                return Ok(Health::Progressing(Why::new(
                    "Creating",
                    format!("Workspace {name} was created meanwhile; reading it again"),
                )));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(health)
}

/// Condition reason: the WorkspaceMember cache is not complete yet (a start, a watch error).
const MEMBER_VIEW_PARTIAL: &str = "MemberViewIncomplete";

/// The workspace as Blaxel has it, `None` when absent for this key.
async fn observe(
    ctx: &Context,
    scope: &Scope,
    name: &str,
) -> Result<Option<RemoteWorkspace>, ApiError> {
    as_observed(ctx.api.get_workspace(scope, name).await)
}

/// A `GET /workspaces/{name}` answer as what was observed: `None` when absent for this key.
///
/// # Errors
/// Any other error.
pub fn as_observed(
    answer: Result<RemoteWorkspace, ApiError>,
) -> Result<Option<RemoteWorkspace>, ApiError> {
    match answer {
        Ok(ws) => Ok(Some(ws)),
        // 403: the workspace exists and this key may not see it (another account's, or another
        // workspace than a workspace key's own): none of ours. The availability check then tells.
        Err(ApiError::NotFound { .. } | ApiError::Forbidden { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What the membership step found (counts and list when the view was complete), and its verdict.
struct Membership {
    counts: Option<MemberCounts>,
    unmanaged: Option<Vec<String>>,
    verdict: Option<Health>,
}

/// Reads the members (the shared user list of this key), plans the policy, and removes what an
/// Authoritative policy removes, one mass-removal slot each.
async fn members(
    obj: &Cached<Workspace>,
    ctx: &Context,
    scope: &Scope,
    name: &str,
    paused: bool,
) -> Result<Membership, ApiError> {
    let spec = &obj.spec.members;
    let max_age =
        if pending_request(obj, obj.status_fields().last_handled_reconcile_at.as_ref()).is_some() {
            Duration::ZERO
        } else {
            ctx.settings.resync
        };
    let listing = ctx
        .users
        .snapshot(scope, max_age, || ctx.api.list_users(scope))
        .await?;
    let mut view = member_view(obj, ctx);
    if view == View::Complete && listing.unreadable > 0 {
        view = View::Partial(Why::new(
            "RemoteListIncomplete",
            format!(
                "{} records of the member list could not be read; nothing is concluded from it",
                listing.unreadable
            ),
        ));
    }
    let present: Vec<&WorkspaceUser> = listing.items.values().collect();
    let declared = if view == View::Complete {
        declared(obj, ctx, name, &present)
            .await
            .unwrap_or_else(|e| {
                view = View::Partial(Why::new(
                    MEMBER_VIEW_PARTIAL,
                    format!(
                        "Whether a WorkspaceMember of another namespace may act here could not be \
                         told ({e}); nothing is concluded about unmanaged members"
                    ),
                ));
                Declared::default()
            })
    } else {
        Declared::default()
    };
    let protected: BTreeSet<String> = spec.protected.iter().map(|e| email_key(e)).collect();
    let plan = plan::plan_members(&MembersInput {
        policy: spec.policy,
        present,
        declared: &declared.here,
        declared_elsewhere: &declared.elsewhere,
        protected: &protected,
        max_removals: spec.max_removals,
        view: &view,
    });
    announce(obj, ctx, spec.policy, &plan).await;
    let mut verdict = plan.verdict;
    let mut removed: BTreeSet<&String> = BTreeSet::new();
    if !paused {
        for email in &plan.removals {
            if let Some((health, _)) = removal_held(obj, ctx, name, email).await {
                verdict = Some(health);
                break;
            }
            match ctx.api.remove_user(scope, email).await {
                Ok(()) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            info!(workspace = %name, "removed an unmanaged member");
            publish(
                &ctx.recorder,
                obj,
                false,
                "RemovedUnmanaged",
                format!("Removed {email} from {name}: no WorkspaceMember declares it"),
            )
            .await;
            ctx.users
                .write_through(scope, email, None::<WorkspaceUser>)
                .await;
            removed.insert(email);
        }
    }
    if !removed.is_empty() {
        consume_confirmation(obj, ctx).await;
    }
    let mut unmanaged = plan.unmanaged;
    let mut counts = plan.counts;
    if !removed.is_empty() {
        // Removed just now (all, or those before the removal guard held the rest): what remains
        // unmanaged is what was not removed.
        if let Some(list) = &mut unmanaged {
            list.retain(|e| !removed.contains(e));
        }
        if let (Some(counts), Some(list)) = (&mut counts, &unmanaged) {
            counts.present = counts
                .present
                .saturating_sub(u32::try_from(removed.len()).unwrap_or(u32::MAX));
            counts.unmanaged = u32::try_from(list.len()).unwrap_or(u32::MAX);
        }
    }
    Ok(Membership {
        counts,
        unmanaged,
        verdict,
    })
}

/// Takes `blaxel.ai/confirm-removal` off a Workspace whose pass removed members: on an object that
/// removes many things, one confirmation lets one pass's removals through, not every later one. (A
/// confirmation set again in the instant between the pass and the patch is taken off too: the next
/// removal then waits for one more, the safe side.) A failure leaves the annotation for the next pass
/// that removes to take off.
async fn consume_confirmation(obj: &Cached<Workspace>, ctx: &Context) {
    let confirmed = obj
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(CONFIRM_ANNOTATION));
    if !confirmed {
        return;
    }
    let api: Api<Workspace> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = serde_json::json!({"metadata": {"annotations": {CONFIRM_ANNOTATION: null}}});
    if let Err(e) = api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::warn!(error = %e, "could not take the used removal confirmation off");
    }
}

/// A Warning Event when the unmanaged set differs from the one last reported (Report and
/// Authoritative), so people see a change without watching the status.
async fn announce(
    obj: &Cached<Workspace>,
    ctx: &Context,
    policy: MembershipPolicy,
    plan: &plan::MembersPlan,
) {
    let Some(unmanaged) = &plan.unmanaged else {
        return;
    };
    if policy == MembershipPolicy::Additive || unmanaged.is_empty() {
        return;
    }
    if obj.status_fields().unmanaged_digest == Some(list_digest(unmanaged)) {
        return;
    }
    let shown: Vec<&str> = unmanaged.iter().take(10).map(String::as_str).collect();
    let more = unmanaged.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let event = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Warning,
        reason: "UnmanagedMembers".to_owned(),
        note: Some(format!(
            "{} members or invitations no WorkspaceMember declares: {}{tail}",
            unmanaged.len(),
            shown.join(", ")
        )),
        action: "ReportMembers".to_owned(),
        secondary: None,
    };
    // Each change is an Event of its own: a series would keep showing the first set.
    if let Err(e) = ctx.recorder.announce(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish an Event");
    }
}

/// The namespaces whose WorkspaceMembers count as declared.
pub fn member_namespaces(obj: &Cached<Workspace>) -> Vec<String> {
    obj.spec
        .members
        .namespaces
        .clone()
        .unwrap_or_else(|| vec![obj.namespace().unwrap_or_default()])
}

/// Whether the operator sees every WorkspaceMember that may declare a member here.
fn member_view(obj: &Cached<Workspace>, ctx: &Context) -> View {
    if let Some(watched) = &ctx.watched_namespace {
        let unseen: Vec<String> = member_namespaces(obj)
            .into_iter()
            .filter(|ns| ns != watched)
            .collect();
        if !unseen.is_empty() {
            return View::Blind(Why::new(
                plan::INCOMPLETE_VIEW,
                format!(
                    "The operator watches namespace {watched} only, so WorkspaceMembers in {} are not \
                     seen; nothing is concluded about unmanaged members. Watch all namespaces, or \
                     list only {watched} in members.namespaces",
                    unseen.join(", ")
                ),
            ));
        }
    }
    let complete = ctx
        .kinds
        .get::<Cached<WorkspaceMember>>()
        .is_some_and(|kind| kind.view.complete());
    if complete {
        View::Complete
    } else {
        View::Partial(Why::new(
            MEMBER_VIEW_PARTIAL,
            "The WorkspaceMember cache is not complete (starting, or re-listing after a watch error); \
             nothing is concluded about unmanaged members until it is",
        ))
    }
}

/// The e-mails WorkspaceMember objects declare for workspace `name` (named exactly: names are in one
/// form, see [`crate::crd::is_canonical_workspace`]).
///
/// Every object of the member namespaces counts, whatever its state (pending, Stalled, duplicate, being
/// deleted), so no one a person tried to declare is removed. An object of another namespace counts only
/// when it may act in the workspace (its key resolves and Blaxel accepts it there): another team's
/// WorkspaceMember is never fought over, but one that can do nothing here (a tenant without a key, a
/// made-up key, a name in another form) keeps no one in the workspace. That is asked only for the
/// `present` e-mails nothing here declares, so it costs nothing in the common case.
///
/// # Errors
/// Whether such an object may act could not be told just now.
async fn declared(
    obj: &Cached<Workspace>,
    ctx: &Context,
    name: &str,
    present: &[&WorkspaceUser],
) -> Result<Declared, Error> {
    let namespaces = member_namespaces(obj);
    let mut declared = Declared::default();
    let Some(kind) = ctx.kinds.get::<Cached<WorkspaceMember>>() else {
        return Ok(declared);
    };
    let mut others: BTreeMap<String, Vec<Arc<Cached<WorkspaceMember>>>> = BTreeMap::new();
    for member in kind.store.state() {
        if member.spec.workspace != name {
            continue;
        }
        let here = member
            .metadata
            .namespace
            .as_ref()
            .is_some_and(|ns| namespaces.contains(ns));
        let key = email_key(&member.spec.email);
        if here {
            declared.here.insert(key);
        } else {
            others.entry(key).or_default().push(member);
        }
    }
    for user in present {
        let key = email_key(&user.email);
        if declared.here.contains(&key) || declared.elsewhere.contains(&key) {
            continue;
        }
        for member in others.get(&key).into_iter().flatten() {
            if may_act(member.as_ref(), ctx).await? {
                declared.elsewhere.insert(key);
                break;
            }
        }
    }
    Ok(declared)
}

/// Who WorkspaceMembers declare: in the member namespaces, and elsewhere.
#[derive(Default)]
struct Declared {
    here: BTreeSet<String>,
    elsewhere: BTreeSet<String>,
}

/// Why deleting `obj` must leave workspace `name` in place although its policy is `Delete`, if so.
fn not_taken_over(obj: &Cached<Workspace>, ctx: &Context, name: &str) -> Option<String> {
    if obj.status_fields().id.is_none() {
        return Some("this object never created nor adopted it (no id in its status)".to_owned());
    }
    let kind = ctx.kinds.get::<Cached<Workspace>>()?;
    let others = kind
        .store
        .state()
        .iter()
        .filter(|w| {
            w.metadata.uid != obj.metadata.uid
                && w.metadata.deletion_timestamp.is_none()
                && remote_name(w) == name
        })
        .count();
    (others > 0).then(|| format!("{others} other Workspace object(s) name it"))
}

/// What still manages something in workspace `name`, in words: the WorkspaceMembers, Sandboxes and
/// IntegrationConnections naming it that may act there (an object that never could, such as a tenant's
/// without a key, needs nothing of the workspace and blocks nothing).
///
/// # Errors
/// `Waiting` while a kind's cache is incomplete (an object missing from it may exist), or when whether
/// an object may act could not be told.
async fn users_of(ctx: &Context, name: &str) -> Result<Vec<String>, Error> {
    let mut users = Vec::new();
    for (n, what) in [
        (
            acting::<WorkspaceMember>(ctx, name, |m| &m.workspace).await?,
            "WorkspaceMember(s)",
        ),
        (
            acting::<Sandbox>(ctx, name, |s| &s.workspace).await?,
            "Sandbox(es)",
        ),
        (
            acting::<IntegrationConnection>(ctx, name, |c| &c.workspace).await?,
            "IntegrationConnection(s)",
        ),
    ] {
        if n > 0 {
            users.push(format!("{n} {what}"));
        }
    }
    Ok(users)
}

/// How many objects of kind `K` name workspace `name` (through `workspace`) and may act there.
async fn acting<K>(
    ctx: &Context,
    name: &str,
    workspace: fn(&K::Spec) -> &String,
) -> Result<usize, Error>
where
    K: kube::core::object::HasSpec + kube::core::object::HasStatus + Resource<DynamicType = ()>,
    Cached<K>: Managed,
{
    let Some(kind) = ctx.kinds.get::<Cached<K>>() else {
        return Ok(0);
    };
    if !kind.view.complete() {
        return Err(Error::Waiting(
            format!(
                "The {} cache is not complete (starting, or re-listing after a watch error); the \
                 workspace is not deleted until it is",
                K::kind(&())
            ),
            ctx.settings.transition_poll,
        ));
    }
    let mut n = 0;
    for obj in kind.store.state() {
        if workspace(&obj.spec) == name && may_act(obj.as_ref(), ctx).await? {
            n += 1;
        }
    }
    Ok(n)
}

async fn cleanup(obj: &Cached<Workspace>, ctx: &Context) -> Result<Action, Error> {
    let Some(scope) = cleanup_scope(obj, ctx).await? else {
        return Ok(Action::await_change());
    };
    let name = remote_name(obj).to_owned();
    // Only a workspace this object took over is deleted: one whose id its status records (created or
    // adopted by a pass of its own), and that no other Workspace object names. A duplicate never
    // acted, and another object may hold the claim even while it cannot act (its Secret rotating).
    if let Some(why) = not_taken_over(obj, ctx, &name) {
        publish(
            &ctx.recorder,
            obj,
            true,
            "NotDeleted",
            format!("Workspace {name} was left as it is: {why}"),
        )
        .await;
        return Ok(Action::await_change());
    }
    // Objects still managing something in the workspace would have their own cleanup stranded (their
    // finalizers could never call a workspace that is gone).
    let users = match users_of(ctx, &name).await {
        Ok(users) => users,
        Err(Error::Waiting(message, after)) => {
            let health = Health::Progressing(Why::new(MEMBER_VIEW_PARTIAL, message));
            return Err(wait_in_cleanup(obj, ctx, health, after).await);
        }
        Err(e) => return Err(e),
    };
    if !users.is_empty() {
        let message = format!(
            "Workspace {name} is still used by {}; it is deleted once they are gone",
            users.join(" and ")
        );
        publish(&ctx.recorder, obj, true, "WorkspaceInUse", message.clone()).await;
        let health = Health::Stalled(Why::new("WorkspaceInUse", message));
        return Err(wait_in_cleanup(obj, ctx, health, ctx.settings.claim_recheck).await);
    }
    take_removal(obj, ctx, &name).await?;
    match ctx.api.delete_workspace(&scope, &name).await {
        Ok(()) | Err(ApiError::NotFound { .. }) => {
            info!(workspace = %name, "deleted");
            publish(
                &ctx.recorder,
                obj,
                false,
                "Deleted",
                format!("Deleted workspace {name}"),
            )
            .await;
            Ok(Action::await_change())
        }
        Err(e) => {
            let report = Report::kept(obj, Health::Progressing(Why::new("Deleting", "")));
            fail(obj, ctx, report, e).await
        }
    }
}

/// Reports a remote error: Stalled for errors a person must fix, Failing (and backoff) for transient ones.
async fn fail(
    obj: &Cached<Workspace>,
    ctx: &Context,
    mut report: Report,
    err: ApiError,
) -> Result<Action, Error> {
    let (health, outcome) = failed(obj, ctx, err).await;
    report.health = health;
    finish(obj, ctx, report).await?;
    outcome
}

async fn finish(obj: &Cached<Workspace>, ctx: &Context, report: Report) -> Result<(), Error> {
    let current = obj.status_fields();
    let observed = report.observed.as_ref();
    let (unmanaged, unmanaged_digest) = match report.unmanaged {
        Some(all) => (
            all.iter().take(plan::UNMANAGED_LISTED).cloned().collect(),
            Some(list_digest(&all)),
        ),
        None => (current.unmanaged, current.unmanaged_digest),
    };
    let status = WorkspaceStatus {
        observed_generation: obj.metadata.generation,
        phase: observed.and_then(|w| w.status.clone()).or(current.phase),
        id: observed.and_then(|w| w.id.clone()).or(current.id),
        adopted: report.adopted,
        members: report.counts.or(current.members),
        unmanaged,
        unmanaged_digest,
        last_handled_reconcile_at: pending_request(obj, None).or(current.last_handled_reconcile_at),
        conditions: conditions_for(obj, &report.health),
    };
    write_status(ctx, obj, &status).await
}
