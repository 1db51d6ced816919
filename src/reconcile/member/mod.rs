//! WorkspaceMember reconciler: observe (shared user list) → plan (pure) → act (invite, set role, remove)
//! → report (conditions by server-side apply, Events for every remote write).

pub mod dry_run;
pub mod plan;
#[cfg(test)]
mod tests;

use std::time::Duration;

use kube::runtime::controller::Action;
use tracing::info;

use super::cache::{Seen, email_key, same_email};
use super::cached::Cached;
use super::claims::hash_of;
use super::conditions::{Health, Why};
use super::frame::{Driver, cleanup_scope, take_removal};
use super::managed::Managed;
use super::{
    Context, Error, conditions_for, failed, is_paused, pending_request, publish, requeue_after,
    write_status,
};
use crate::blaxel::model::WorkspaceUser;
use crate::blaxel::{ApiError, Scope};
use crate::crd::{
    CredentialsRef, DeletionPolicy, MemberPhase, WorkspaceMember, WorkspaceMemberStatus,
    is_canonical_email,
};
use plan::{MemberAction, MemberInput};

/// At most this many remote writes in one reconcile (invite, then set role); more waits for the next pass.
const MAX_STEPS: usize = 3;

impl Managed for Cached<WorkspaceMember> {
    const DUPLICATE_REASON: &'static str = "DuplicateMember";
    const OWNS_REMOTELY: bool = false;
    fn spec_problem(&self) -> Option<Why> {
        (!is_canonical_email(&self.spec.email)).then(|| {
            Why::new(
                "EmailNotCanonical",
                "spec.email is not in canonical form (lower-case ASCII, no whitespace); it was stored \
                 before the operator refused such addresses. Delete this object and create it again \
                 with the address in that form",
            )
        })
    }
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
        self.spec.email.clone()
    }
    fn same_claim(&self, other: &Self) -> bool {
        self.spec.workspace == other.spec.workspace
            && same_email(&self.spec.email, &other.spec.email)
    }
    fn claim_hash(&self) -> u64 {
        hash_of((&self.spec.workspace, email_key(&self.spec.email)))
    }
    async fn prove(ctx: &Context, scope: &Scope) -> Result<(), ApiError> {
        ctx.users
            .readable(scope, ctx.settings.resync, || ctx.api.list_users(scope))
            .await
    }
}

impl Driver for Cached<WorkspaceMember> {
    const KIND: &'static str = "WorkspaceMember";

    async fn apply(obj: &Self, ctx: &Context, scope: Scope) -> Result<Action, Error> {
        apply(obj, ctx, &scope).await
    }

    async fn stopped(obj: &Self, ctx: &Context, health: Health) -> Result<(), Error> {
        let status = obj.status_fields();
        let report = Report {
            phase: MemberPhase::Failed,
            health,
            observed: None,
            adopted: status.adopted,
            reinvites: status.reinvites,
        };
        finish(obj, ctx, report).await
    }

    async fn cleanup(obj: &Self, ctx: &Context) -> Result<Action, Error> {
        cleanup(obj, ctx).await
    }

    async fn cleanup_waits(obj: &Self, ctx: &Context, health: Health) -> Result<(), Error> {
        finish(obj, ctx, deleting(obj, health)).await
    }
}

/// What a pass decided about the object's status, before it becomes a `WorkspaceMemberStatus`.
struct Report {
    phase: MemberPhase,
    health: Health,
    observed: Option<WorkspaceUser>,
    adopted: bool,
    reinvites: u32,
}

async fn apply(
    obj: &Cached<WorkspaceMember>,
    ctx: &Context,
    scope: &Scope,
) -> Result<Action, Error> {
    let status = obj.status_fields();
    let mut report = Report {
        phase: status.phase.unwrap_or(MemberPhase::Pending),
        health: Health::Progressing(Why::new("Reconciling", "Reconciling")),
        observed: None,
        adopted: status.adopted,
        reinvites: status.reinvites,
    };
    // A person's edit restarts the re-invitation budget of an invitation given up on.
    let gave_up = matches!(
        status.phase,
        Some(MemberPhase::Expired | MemberPhase::Declined)
    );
    let edited = status.observed_generation != obj.metadata.generation;
    if gave_up && edited {
        report.reinvites = 0;
    }
    let mut was_pending = matches!(
        status.phase,
        Some(MemberPhase::Invited | MemberPhase::Declined)
    ) && !(gave_up && edited);
    let max_age = if pending_request(obj, status.last_handled_reconcile_at.as_ref()).is_some() {
        Duration::ZERO
    } else if status.phase == Some(MemberPhase::Active) {
        ctx.settings.resync
    } else {
        ctx.settings.invitation_poll
    };
    let mut observed = match observe(ctx, scope, &obj.spec.email, max_age).await {
        Ok(user) => user,
        Err(e) => return fail(obj, ctx, scope, report, e).await,
    };
    if status.phase.is_none() && observed.is_some() {
        report.adopted = true;
    }
    let paused = is_paused(obj);
    for _ in 0..MAX_STEPS {
        let plan = plan::plan(MemberInput {
            role: obj.spec.role,
            observed: observed.as_ref(),
            reinvites: report.reinvites,
            max_reinvites: ctx.settings.max_reinvites,
            was_pending,
        });
        report.phase = plan.phase;
        report.health = plan.health;
        let Some(action) = plan.action.filter(|_| !paused) else {
            break;
        };
        match act(obj, ctx, scope, action, observed.as_ref()).await {
            Ok(now) => observed = now,
            Err(e) => {
                report.observed = observed;
                return fail(obj, ctx, scope, report, e).await;
            }
        }
        if plan.reinvite {
            report.reinvites += 1;
        }
        was_pending = observed.as_ref().is_some_and(WorkspaceUser::is_pending);
    }
    if paused {
        report.health = Health::Paused {
            ready: matches!(report.health, Health::Ready(_)),
        };
    }
    report.observed = observed;
    let action = requeue_after(&report.health, &ctx.settings, ctx.settings.invitation_poll);
    finish(obj, ctx, report).await?;
    Ok(action)
}

async fn cleanup(obj: &Cached<WorkspaceMember>, ctx: &Context) -> Result<Action, Error> {
    let Some(scope) = cleanup_scope(obj, ctx).await? else {
        return Ok(Action::await_change());
    };
    let Some(action) = plan::plan_cleanup(obj.spec.deletion_policy) else {
        return Ok(Action::await_change());
    };
    take_removal(obj, ctx, &scope.workspace).await?;
    if let Err(e) = act(obj, ctx, &scope, action, None).await {
        let removing = Health::Progressing(Why::new("Removing", ""));
        return fail(obj, ctx, &scope, deleting(obj, removing), e).await;
    }
    Ok(Action::await_change())
}

/// The report of a pass of cleanup.
fn deleting(obj: &Cached<WorkspaceMember>, health: Health) -> Report {
    let status = obj.status_fields();
    Report {
        phase: MemberPhase::Deleting,
        health,
        observed: None,
        adopted: status.adopted,
        reinvites: status.reinvites,
    }
}

async fn observe(
    ctx: &Context,
    scope: &Scope,
    email: &str,
    max_age: Duration,
) -> Result<Option<WorkspaceUser>, ApiError> {
    ctx.users
        .get(scope, &email_key(email), max_age, || {
            ctx.api.list_users(scope)
        })
        .await
        .map(Seen::into_option)
}

/// Performs one remote write and returns the user as it now stands (`None` once removed).
async fn act(
    obj: &Cached<WorkspaceMember>,
    ctx: &Context,
    scope: &Scope,
    action: MemberAction,
    before: Option<&WorkspaceUser>,
) -> Result<Option<WorkspaceUser>, ApiError> {
    let email = obj.spec.email.as_str();
    let key = email_key(email);
    let after = match action {
        MemberAction::Invite => match ctx.api.invite_user(scope, email).await {
            Ok(invitation) => {
                info!(workspace = %scope.workspace, "invited");
                publish(
                    &ctx.recorder,
                    obj,
                    false,
                    "Invited",
                    format!("Invited {email} to {}", scope.workspace),
                )
                .await;
                Some(WorkspaceUser {
                    email: email.to_owned(),
                    role: invitation.role,
                    accepted: Some(false),
                    ..WorkspaceUser::default()
                })
            }
            // Someone (or an earlier, lost answer) invited already: look again instead of inviting twice.
            Err(ApiError::Conflict { .. }) => {
                ctx.users.invalidate(scope).await;
                return observe(ctx, scope, email, Duration::ZERO).await;
            }
            // The answer was lost: the invitation may exist. The next pass lists again before inviting.
            Err(e) => {
                ctx.users.invalidate(scope).await;
                return Err(e);
            }
        },
        MemberAction::SetRole(role) => {
            let mut user = ctx.api.set_user_role(scope, email, role.as_str()).await?;
            // The answer may leave out the invitation flags: keep what we knew.
            if let Some(before) = before {
                user.accepted = user.accepted.or(before.accepted);
                user.expired = user.expired || (before.expired && user.accepted == Some(false));
                if user.email.is_empty() {
                    user.email = before.email.clone();
                }
            }
            info!(workspace = %scope.workspace, role = role.as_str(), "role set");
            publish(
                &ctx.recorder,
                obj,
                false,
                "RoleSet",
                format!("Set the role of {email} to {}", role.as_str()),
            )
            .await;
            Some(user)
        }
        MemberAction::Remove => {
            match ctx.api.remove_user(scope, email).await {
                Ok(()) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            info!(workspace = %scope.workspace, "removed");
            publish(
                &ctx.recorder,
                obj,
                false,
                "Removed",
                format!("Removed {email} from {}", scope.workspace),
            )
            .await;
            None
        }
    };
    ctx.users.write_through(scope, &key, after.clone()).await;
    Ok(after)
}

/// Reports a remote error: Stalled for errors a person must fix, Failing (and backoff) for transient ones.
async fn fail(
    obj: &Cached<WorkspaceMember>,
    ctx: &Context,
    scope: &Scope,
    mut report: Report,
    err: ApiError,
) -> Result<Action, Error> {
    if matches!(err, ApiError::NotFound { .. } | ApiError::Conflict { .. }) {
        // What we saw is out of date: the next pass lists again.
        ctx.users.invalidate(scope).await;
    }
    let (health, outcome) = failed(obj, ctx, err).await;
    report.health = health;
    finish(obj, ctx, report).await?;
    outcome
}

async fn finish(obj: &Cached<WorkspaceMember>, ctx: &Context, report: Report) -> Result<(), Error> {
    let current = obj.status.as_ref().map(|s| &s.fields);
    let generation = obj.metadata.generation;
    let status = WorkspaceMemberStatus {
        observed_generation: generation,
        phase: Some(report.phase),
        sub: report
            .observed
            .and_then(|u| u.sub)
            .or_else(|| current.and_then(|s| s.sub.clone())),
        adopted: report.adopted,
        reinvites: report.reinvites,
        last_handled_reconcile_at: pending_request(obj, None)
            .or_else(|| current.and_then(|s| s.last_handled_reconcile_at.clone())),
        conditions: conditions_for(obj, &report.health),
    };
    write_status(ctx, obj, &status).await
}
