//! Workspace reconciler: observe (the workspace, and the shared user list) → plan (pure: the record,
//! then the membership policy) → act (check, create, update; remove unmanaged members) → report.

pub mod plan;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::info;

use super::cache::email_key;
use super::cached::{Cached, WithConditions};
use super::claims::hash_of;
use super::conditions::{Health, Why};
use super::frame::Driver;
use super::managed::{CleanupStart, Managed, begin_cleanup, keep_finalizer, removal_held};
use super::{
    Context, Error, conditions_for, is_paused, jittered, pending_request, publish, remote_verdict,
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
}

/// What a pass decided, before it becomes a `WorkspaceStatus`.
struct Report {
    health: Health,
    observed: Option<RemoteWorkspace>,
    adopted: bool,
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
    let status = obj.status_fields();
    let name = remote_name(obj).to_owned();
    let mut report = Report::kept(obj, Health::Progressing(Why::new("Reconciling", "")));
    let paused = is_paused(obj);
    let mut observed = match observe(ctx, scope, &name).await {
        Ok(observed) => observed,
        Err(e) => return fail(obj, ctx, report, e).await,
    };
    // Adopted: found on the first look, before this object created anything.
    if status.id.is_none() && status.phase.is_none() && observed.is_some() {
        report.adopted = true;
    }
    let mut health = match converge(obj, ctx, scope, &name, paused, &mut observed).await {
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
/// answer; how the record stands.
async fn converge(
    obj: &Cached<Workspace>,
    ctx: &Context,
    scope: &Scope,
    name: &str,
    paused: bool,
    observed: &mut Option<RemoteWorkspace>,
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
            WorkspaceAction::Create(body) => (
                "Created",
                format!("Created workspace {name}"),
                ctx.api.create_workspace(scope, &body).await,
            ),
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
    match ctx.api.get_workspace(scope, name).await {
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
    let declared = declared(obj, ctx, name);
    let protected: BTreeSet<String> = spec.protected.iter().map(|e| email_key(e)).collect();
    let plan = plan::plan_members(&MembersInput {
        policy: spec.policy,
        present: listing.items.values().collect(),
        declared: &declared.here,
        declared_elsewhere: &declared.elsewhere,
        protected: &protected,
        max_removals: spec.max_removals,
        view: &view,
    });
    announce(obj, ctx, spec.policy, &plan).await;
    let mut verdict = plan.verdict;
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
        }
    }
    let mut unmanaged = plan.unmanaged;
    let mut counts = plan.counts;
    if verdict.is_none() && !plan.removals.is_empty() && !paused {
        // Removed just now: what remains unmanaged is what could not be removed.
        let removed: BTreeSet<&String> = plan.removals.iter().collect();
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
    let status = obj.status_fields();
    let before = status.members.as_ref().map_or(0, |c| c.unmanaged);
    let listed: Vec<String> = unmanaged
        .iter()
        .take(plan::UNMANAGED_LISTED)
        .cloned()
        .collect();
    if status.unmanaged == listed && before == u32::try_from(unmanaged.len()).unwrap_or(u32::MAX) {
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
fn member_namespaces(obj: &Cached<Workspace>) -> Vec<String> {
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

/// The e-mails WorkspaceMember objects declare for workspace `name` (the workspace name compared in
/// any ASCII case): those of the member namespaces, and those of any other namespace. Every such object
/// counts, whatever its state (pending, Stalled, duplicate, being deleted), so no one a person tried to
/// declare is removed, and a WorkspaceMember of another team is never fought over.
fn declared(obj: &Cached<Workspace>, ctx: &Context, name: &str) -> Declared {
    let namespaces = member_namespaces(obj);
    let mut declared = Declared::default();
    let Some(kind) = ctx.kinds.get::<Cached<WorkspaceMember>>() else {
        return declared;
    };
    for member in kind.store.state() {
        if !member.spec.workspace.eq_ignore_ascii_case(name) {
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
            declared.elsewhere.insert(key);
        }
    }
    declared
}

/// Who WorkspaceMembers declare: in the member namespaces, and elsewhere.
#[derive(Default)]
struct Declared {
    here: BTreeSet<String>,
    elsewhere: BTreeSet<String>,
}

/// What still manages something in workspace `name`: WorkspaceMembers, Sandboxes and
/// IntegrationConnections naming it, in any namespace the operator watches.
fn users_of(ctx: &Context, name: &str) -> Vec<String> {
    let mut users = Vec::new();
    if let Some(kind) = ctx.kinds.get::<Cached<WorkspaceMember>>() {
        let n = kind
            .store
            .state()
            .iter()
            .filter(|m| m.spec.workspace.eq_ignore_ascii_case(name))
            .count();
        if n > 0 {
            users.push(format!("{n} WorkspaceMember(s)"));
        }
    }
    if let Some(kind) = ctx.kinds.get::<Cached<Sandbox>>() {
        let n = kind
            .store
            .state()
            .iter()
            .filter(|s| s.spec.workspace.eq_ignore_ascii_case(name))
            .count();
        if n > 0 {
            users.push(format!("{n} Sandbox(es)"));
        }
    }
    if let Some(kind) = ctx.kinds.get::<Cached<IntegrationConnection>>() {
        let n = kind
            .store
            .state()
            .iter()
            .filter(|c| c.spec.workspace.eq_ignore_ascii_case(name))
            .count();
        if n > 0 {
            users.push(format!("{n} IntegrationConnection(s)"));
        }
    }
    users
}

async fn cleanup(obj: &Cached<Workspace>, ctx: &Context) -> Result<Action, Error> {
    let scope = match begin_cleanup(obj, ctx).await? {
        CleanupStart::Done => return Ok(Action::await_change()),
        CleanupStart::Wait(health, after) => {
            let error = keep_finalizer(&health, after);
            finish(obj, ctx, Report::kept(obj, health)).await?;
            return Err(error);
        }
        CleanupStart::Proceed(scope) => scope,
    };
    let name = remote_name(obj).to_owned();
    // Objects still managing something in the workspace would have their own cleanup stranded (their
    // finalizers could never call a workspace that is gone).
    let users = users_of(ctx, &name);
    if !users.is_empty() {
        let message = format!(
            "Workspace {name} is still used by {}; it is deleted once they are gone",
            users.join(" and ")
        );
        publish(&ctx.recorder, obj, true, "WorkspaceInUse", message.clone()).await;
        let health = Health::Stalled(Why::new("WorkspaceInUse", message));
        let error = keep_finalizer(&health, ctx.settings.claim_recheck);
        finish(obj, ctx, Report::kept(obj, health)).await?;
        return Err(error);
    }
    if let Some((health, after)) = removal_held(obj, ctx, &name, "").await {
        let error = keep_finalizer(&health, after);
        finish(obj, ctx, Report::kept(obj, health)).await?;
        return Err(error);
    }
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
    let (category, message) = (err.category(), err.to_string());
    let (health, outcome) = remote_verdict(err, &ctx.settings);
    // A failure is published by the frame; one that stalls the object ends the pass without error.
    if outcome.is_ok() {
        publish(&ctx.recorder, obj, true, category, message).await;
    }
    report.health = health;
    finish(obj, ctx, report).await?;
    outcome
}

async fn finish(obj: &Cached<Workspace>, ctx: &Context, report: Report) -> Result<(), Error> {
    let current = obj.status_fields();
    let observed = report.observed.as_ref();
    let unmanaged = report.unmanaged.map_or(current.unmanaged, |all| {
        all.into_iter().take(plan::UNMANAGED_LISTED).collect()
    });
    let status = WorkspaceStatus {
        observed_generation: obj.metadata.generation,
        phase: observed.and_then(|w| w.status.clone()).or(current.phase),
        id: observed.and_then(|w| w.id.clone()).or(current.id),
        adopted: report.adopted,
        members: report.counts.or(current.members),
        unmanaged,
        last_handled_reconcile_at: pending_request(obj, None).or(current.last_handled_reconcile_at),
        conditions: conditions_for(obj, &report.health),
    };
    write_status(&ctx.client, obj, &status).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// The remote name is `spec.workspaceName`, else the object's name.
    #[test]
    fn remote_names() {
        let mut obj: Cached<Workspace> = serde_json::from_value(serde_json::json!({
            "apiVersion": "blaxel.ai/v1alpha1", "kind": "Workspace",
            "metadata": {"name": "acme", "namespace": "platform"},
            "spec": {}
        }))
        .unwrap();
        assert_eq!(remote_name(&obj), "acme");
        assert_eq!(obj.spec.deletion_policy, DeletionPolicy::Orphan);
        assert_eq!(obj.spec.members.max_removals, 5);
        obj.spec.workspace_name = Some("acme-prod".into());
        assert_eq!(remote_name(&obj), "acme-prod");
        assert_eq!(member_namespaces(&obj), ["platform"]);
    }
}
