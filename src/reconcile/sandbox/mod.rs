//! Sandbox reconciler: observe (shared sandbox list) → plan (pure) → act (create, update, start, stop,
//! delete) → report (conditions by server-side apply, Events for every remote write).

pub mod dry_run;
pub mod env;
pub mod plan;
#[cfg(test)]
mod tests;

use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::info;

use super::cache::Seen;
use super::cached::Cached;
use super::claims::hash_of;
use super::conditions::{self, Health, Why};
use super::frame::{Driver, cleanup_scope, take_removal};
use super::managed::Managed;
use super::{
    Context, Error, conditions_for, failed, is_paused, jittered, pending_request, publish,
    requeue_after, write_status,
};
use crate::blaxel::model::{Sandbox as RemoteSandbox, SandboxPhase};
use crate::blaxel::{ApiError, PowerControl, Scope, SecretValue, error_map};
use crate::crd::{CredentialsRef, DeletionPolicy, Sandbox, SandboxStatus};
use plan::{CleanupStep, EXPIRED_PHASE, Owner, SandboxAction, SandboxInput, observed_power};

/// At most this many remote writes in one reconcile; more waits for the next pass.
const MAX_STEPS: usize = 3;

impl Managed for Cached<Sandbox> {
    const DUPLICATE_REASON: &'static str = "DuplicateSandbox";
    const OWNS_REMOTELY: bool = true;
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
    fn same_claim(&self, other: &Self) -> bool {
        self.spec.workspace == other.spec.workspace && remote_name(self) == remote_name(other)
    }
    fn claim_hash(&self) -> u64 {
        hash_of((&self.spec.workspace, remote_name(self)))
    }
    async fn prove(ctx: &Context, scope: &Scope) -> Result<(), ApiError> {
        ctx.sandboxes
            .readable(scope, ctx.settings.resync, || ctx.api.list_sandboxes(scope))
            .await
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

impl Driver for Cached<Sandbox> {
    const KIND: &'static str = "Sandbox";

    async fn apply(obj: &Self, ctx: &Context, scope: Scope) -> Result<Action, Error> {
        apply(obj, ctx, &scope).await
    }

    async fn stopped(obj: &Self, ctx: &Context, health: Health) -> Result<(), Error> {
        finish(obj, ctx, kept(obj, health)).await
    }

    async fn cleanup(obj: &Self, ctx: &Context) -> Result<Action, Error> {
        cleanup(obj, ctx).await
    }

    async fn cleanup_waits(obj: &Self, ctx: &Context, health: Health) -> Result<(), Error> {
        finish(obj, ctx, kept(obj, health)).await
    }
}

/// What a pass decided, before it becomes a `SandboxStatus`.
struct Report {
    health: Health,
    observed: Option<RemoteSandbox>,
    adopted: bool,
    /// Blaxel removed the sandbox at the end of its ttl: report it gone, phase `EXPIRED`.
    expired: bool,
    /// The digest of the Secret-sourced variables last sent.
    env_digest: Option<String>,
}

/// A report of `health` that keeps what the status says of the sandbox.
fn kept(obj: &Cached<Sandbox>, health: Health) -> Report {
    let status = obj.status_fields();
    Report {
        health,
        observed: None,
        adopted: status.adopted,
        expired: false,
        env_digest: status.env_digest,
    }
}

/// The object's ownership label value, `<namespace>.<name>`.
fn owner_label(obj: &Cached<Sandbox>) -> String {
    format!("{}.{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

fn owner<'a>(label: &'a str, ctx: &'a Context) -> Owner<'a> {
    Owner {
        object: label,
        instance: ctx.settings.instance.as_deref(),
    }
}

async fn apply(obj: &Cached<Sandbox>, ctx: &Context, scope: &Scope) -> Result<Action, Error> {
    let status = obj.status_fields();
    let mut report = Report {
        health: Health::Progressing(Why::new("Reconciling", "Reconciling")),
        observed: None,
        adopted: status.adopted,
        expired: false,
        env_digest: status.env_digest.clone(),
    };
    let secrets = match env::read(obj, ctx).await? {
        Ok(secrets) => secrets,
        Err(why) => return missing_secret(obj, ctx, report, why).await,
    };
    let name = remote_name(obj).to_owned();
    let mut observed = match observe(ctx, scope, &name, list_age(obj, ctx)).await {
        Ok(s) => s,
        Err(e) => return fail(obj, ctx, scope, report, e).await,
    };
    let label = owner_label(obj);
    let paused = is_paused(obj);
    let reported_phase = status
        .phase
        .as_deref()
        .filter(|_| status.observed_generation == obj.metadata.generation);
    // A shared list may be a resync old: a write planned on it could erase what someone changed since (a
    // PUT replaces the whole spec and label set) or stop a sandbox that is no longer ours. Every write
    // but a create (which a taken name refuses with 409) is planned on the sandbox as just read, or as
    // our own last write answered.
    let mut fresh = false;
    for _ in 0..MAX_STEPS {
        let plan = plan::plan(SandboxInput {
            spec: &obj.spec,
            name: &name,
            owner: owner(&label, ctx),
            observed: observed.as_ref(),
            power_control: power_control(ctx, obj),
            reported_phase,
            secret_envs: &secrets.values,
            secrets_sent: report.env_digest == secrets.digest,
        });
        report.expired =
            matches!(&plan.health, Health::Stalled(why) if why.reason == plan::TTL_EXPIRED);
        report.health = plan.health;
        let Some(action) = plan.action.filter(|_| !paused) else {
            break;
        };
        if !matches!(action, SandboxAction::Create(_)) && !fresh {
            fresh = true;
            match refresh(ctx, scope, &name).await {
                Ok(now) => {
                    observed = now;
                    continue;
                }
                Err(e) => {
                    report.observed = observed;
                    return fail(obj, ctx, scope, report, e).await;
                }
            }
        }
        let writes_envs = matches!(action, SandboxAction::Create(_) | SandboxAction::Update(_));
        match act(obj, ctx, scope, &name, action, observed.as_ref()).await {
            Ok(Acted::Wrote(now)) => {
                // Sent only now that the write carrying them succeeded.
                if writes_envs {
                    report.env_digest.clone_from(&secrets.digest);
                }
                // Taken over only now that the write carrying our ownership succeeded.
                report.adopted |= plan.adopts;
                observed = Some(now);
                fresh = true;
            }
            Ok(Acted::Found(now)) => {
                // A create met its name taken: nothing was written; the next step plans on what is there.
                observed = now;
                fresh = true;
            }
            Ok(Acted::Waiting) => {
                // The create met a sandbox still on its way out: wait for it to go.
                report.health = Health::Progressing(Why::new(
                    "WaitingForOldSandbox",
                    format!("Sandbox {name} is still being deleted"),
                ));
                break;
            }
            Err(e) => {
                report.observed = observed;
                return fail(obj, ctx, scope, report, e).await;
            }
        }
    }
    if paused {
        report.health = Health::Paused {
            ready: matches!(report.health, Health::Ready(_)),
        };
    }
    // A verdict may quote Blaxel (a FAILED sandbox's own message): what leaves the process in status
    // and Events is scrubbed of the key and cut, as every remote error message is.
    let secret_values: Vec<&str> = secrets.values.values().map(SecretValue::expose).collect();
    report.health = report
        .health
        .map_message(|m| error_map::outgoing_text_with(m, &scope.api_key, &secret_values));
    report.observed = observed.filter(|_| !report.expired);
    let action = requeue_after(&report.health, &ctx.settings, ctx.settings.transition_poll);
    finish(obj, ctx, report).await?;
    Ok(action)
}

/// A Secret-sourced variable that cannot be read: Stalled (with an Event), nothing sent; looked at
/// again at the resync (or at once on `reconcile-requested-at`).
async fn missing_secret(
    obj: &Cached<Sandbox>,
    ctx: &Context,
    mut report: Report,
    why: Why,
) -> Result<Action, Error> {
    publish(&ctx.recorder, obj, true, &why.reason, why.message.clone()).await;
    report.health = Health::Stalled(why);
    finish(obj, ctx, report).await?;
    Ok(Action::requeue(jittered(ctx.settings.resync)))
}

/// How old a shared list this pass accepts: none after a forced resync, a resync period for a settled
/// sandbox, the transition poll otherwise.
fn list_age(obj: &Cached<Sandbox>, ctx: &Context) -> Duration {
    let status = obj.status_fields();
    let settled = status
        .phase
        .as_deref()
        .is_some_and(|p| !SandboxPhase::parse(p).is_transitional())
        && obj
            .status
            .as_ref()
            .is_some_and(|s| s.transitions.is_true(conditions::READY));
    if pending_request(obj, status.last_handled_reconcile_at.as_ref()).is_some() {
        Duration::ZERO
    } else if settled {
        ctx.settings.resync
    } else {
        ctx.settings.transition_poll
    }
}

async fn cleanup(obj: &Cached<Sandbox>, ctx: &Context) -> Result<Action, Error> {
    let report = |health, observed| Report {
        observed,
        ..kept(obj, health)
    };
    let Some(scope) = cleanup_scope(obj, ctx).await? else {
        return Ok(Action::await_change());
    };
    let name = remote_name(obj).to_owned();
    let deleting = Health::Progressing(Why::new("Deleting", format!("Deleting sandbox {name}")));
    // Cleanup decides on the sandbox as it is now, never on a list that may be older: a sandbox made by
    // hand under our name since, or hand edits since, must not be deleted or overwritten.
    let observed = match refresh(ctx, &scope, &name).await {
        Ok(now) => now,
        Err(e) => return fail(obj, ctx, &scope, report(deleting, None), e).await,
    };
    let label = owner_label(obj);
    // Releasing sends the sandbox back whole: the values of its secret variables must come from the
    // object's Secrets (Blaxel masks them); a Secret gone leaves the sandbox as it is.
    let secrets = match env::read(obj, ctx).await? {
        Ok(secrets) => secrets.values,
        Err(_) => std::collections::BTreeMap::new(),
    };
    let observed = match plan::plan_cleanup(
        obj.spec.deletion_policy,
        observed.as_ref(),
        owner(&label, ctx),
        &secrets,
    ) {
        CleanupStep::Done => return Ok(Action::await_change()),
        CleanupStep::LeaveOwned(unknown) => {
            publish(
                &ctx.recorder,
                obj,
                true,
                plan::SECRET_VARIABLES_UNKNOWN,
                format!(
                    "Sandbox {name} was left as it is, still labelled as this object's: taking the \
                     labels off would overwrite its secret variables {}, whose values Blaxel masks",
                    unknown.join(", ")
                ),
            )
            .await;
            return Ok(Action::await_change());
        }
        CleanupStep::Wait => observed,
        CleanupStep::Release(body) => {
            return match release(obj, ctx, &scope, &body).await {
                Ok(()) => Ok(Action::await_change()),
                Err(e) => fail(obj, ctx, &scope, report(deleting, observed), e).await,
            };
        }
        CleanupStep::Delete => {
            take_removal(obj, ctx, &scope.workspace).await?;
            match ctx.api.delete_sandbox(&scope, &name).await {
                Ok(()) => {
                    info!(workspace = %scope.workspace, sandbox = %name, "delete requested");
                    publish(
                        &ctx.recorder,
                        obj,
                        false,
                        "Deleting",
                        format!("Deleting sandbox {name}"),
                    )
                    .await;
                }
                Err(ApiError::NotFound { .. }) => {
                    ctx.sandboxes.write_through(&scope, &name, None).await;
                    return Ok(Action::await_change());
                }
                Err(e) => return fail(obj, ctx, &scope, report(deleting, observed), e).await,
            }
            match refresh(ctx, &scope, &name).await {
                Ok(None) => return Ok(Action::await_change()),
                Ok(now) => now,
                Err(e) => return fail(obj, ctx, &scope, report(deleting, None), e).await,
            }
        }
    };
    finish(obj, ctx, report(deleting, observed)).await?;
    Err(Error::Waiting(
        format!("sandbox {name} is being deleted"),
        ctx.settings.transition_poll,
    ))
}

/// Leaves an orphaned sandbox in place without this object's ownership labels (one `PUT`), so that a
/// later object may take it over; already gone counts as done.
async fn release(
    obj: &Cached<Sandbox>,
    ctx: &Context,
    scope: &Scope,
    body: &RemoteSandbox,
) -> Result<(), ApiError> {
    let name = body.metadata.name.as_str();
    match ctx.api.update_sandbox(scope, body).await {
        Ok(released) => {
            info!(workspace = %scope.workspace, sandbox = %name, "released");
            ctx.sandboxes
                .write_through(scope, name, Some(released))
                .await;
            publish(
                &ctx.recorder,
                obj,
                false,
                "Released",
                format!("Left sandbox {name} in place without this object's ownership"),
            )
            .await;
            Ok(())
        }
        Err(ApiError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn power_control(ctx: &Context, obj: &Cached<Sandbox>) -> Option<PowerControl> {
    ctx.api.power_control(&obj.spec.workspace).or_else(|| {
        match obj.status.as_ref()?.fields.power_control.as_deref()? {
            "Enabled" => Some(PowerControl::Enabled),
            "StartStop" => Some(PowerControl::StartStop),
            _ => None,
        }
    })
}

async fn observe(
    ctx: &Context,
    scope: &Scope,
    name: &str,
    max_age: Duration,
) -> Result<Option<RemoteSandbox>, ApiError> {
    ctx.sandboxes
        .get(scope, name, max_age, || ctx.api.list_sandboxes(scope))
        .await
        .map(Seen::into_option)
}

/// One `GET /sandboxes/{name}`, recorded in the shared list.
async fn refresh(
    ctx: &Context,
    scope: &Scope,
    name: &str,
) -> Result<Option<RemoteSandbox>, ApiError> {
    let now = match ctx.api.get_sandbox(scope, name).await {
        Ok(s) => Some(s),
        Err(ApiError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    ctx.sandboxes.write_through(scope, name, now.clone()).await;
    Ok(now)
}

/// What one remote write did.
enum Acted {
    /// Written: the sandbox as it now stands.
    Wrote(RemoteSandbox),
    /// Nothing written: a create met the name taken (ours after a lost answer, or another's), a power
    /// change found the sandbox gone, or found power to be `spec.enabled` (an update's to set); what is
    /// there now.
    Found(Option<RemoteSandbox>),
    /// Nothing written: a create met a sandbox of the same name still going away.
    Waiting,
}

/// Performs one remote write.
async fn act(
    obj: &Cached<Sandbox>,
    ctx: &Context,
    scope: &Scope,
    name: &str,
    action: SandboxAction,
    before: Option<&RemoteSandbox>,
) -> Result<Acted, ApiError> {
    let after = match action {
        SandboxAction::Create(body) => match ctx.api.create_sandbox(scope, &body).await {
            Ok(created) => {
                info!(workspace = %scope.workspace, sandbox = name, "created");
                publish(
                    &ctx.recorder,
                    obj,
                    false,
                    "Created",
                    format!("Created sandbox {name}"),
                )
                .await;
                created
            }
            // The name is taken: look at who holds it (ours after a lost answer = adoption, not failure).
            Err(ApiError::Conflict { .. }) => {
                let now = refresh(ctx, scope, name).await?;
                let leaving = |s: &RemoteSandbox| {
                    matches!(s.phase(), SandboxPhase::Deleting | SandboxPhase::Terminated)
                };
                return Ok(match now {
                    Some(s) if !leaving(&s) => Acted::Found(Some(s)),
                    _ => Acted::Waiting,
                });
            }
            // The answer was lost: the sandbox may exist. The next pass lists again before creating.
            Err(e) => {
                ctx.sandboxes.invalidate(scope).await;
                return Err(e);
            }
        },
        SandboxAction::Update(body) => {
            let updated = ctx.api.update_sandbox(scope, &body).await?;
            info!(workspace = %scope.workspace, sandbox = name, "updated");
            publish(
                &ctx.recorder,
                obj,
                false,
                "Updated",
                format!("Updated sandbox {name}"),
            )
            .await;
            updated
        }
        SandboxAction::Start | SandboxAction::Stop => {
            let running = action == SandboxAction::Start;
            let current = before.cloned().unwrap_or_default();
            let mode = ctx.api.set_sandbox_power(scope, &current, running).await?;
            if mode == PowerControl::Enabled {
                // Nothing was written: power is `spec.enabled` here, which the next step's update sets.
                return Ok(Acted::Found(before.cloned()));
            }
            let verb = if running { "Started" } else { "Stopped" };
            info!(workspace = %scope.workspace, sandbox = name, mode = mode.as_str(), "{}", verb.to_lowercase());
            publish(
                &ctx.recorder,
                obj,
                false,
                verb,
                format!("{verb} sandbox {name} ({})", mode.as_str()),
            )
            .await;
            return Ok(match refresh(ctx, scope, name).await? {
                Some(now) => Acted::Wrote(now),
                None => Acted::Found(None),
            });
        }
    };
    ctx.sandboxes
        .write_through(scope, name, Some(after.clone()))
        .await;
    Ok(Acted::Wrote(after))
}

/// Reports a remote error: Stalled for errors a person must fix, Failing (and backoff) for transient ones.
async fn fail(
    obj: &Cached<Sandbox>,
    ctx: &Context,
    scope: &Scope,
    mut report: Report,
    err: ApiError,
) -> Result<Action, Error> {
    if matches!(err, ApiError::NotFound { .. } | ApiError::Conflict { .. }) {
        // What we saw is out of date: the next pass lists again.
        ctx.sandboxes.invalidate(scope).await;
    }
    let (health, outcome) = failed(obj, ctx, err).await;
    report.health = health;
    finish(obj, ctx, report).await?;
    outcome
}

async fn finish(obj: &Cached<Sandbox>, ctx: &Context, report: Report) -> Result<(), Error> {
    let current = obj.status.as_ref().map(|s| &s.fields);
    let generation = obj.metadata.generation;
    let observed = report.observed.as_ref();
    // What was last reported of a sandbox Blaxel removed at expiry is not kept.
    let kept = current.filter(|_| !report.expired);
    let status = SandboxStatus {
        observed_generation: generation,
        phase: if report.expired {
            Some(EXPIRED_PHASE.to_owned())
        } else {
            observed
                .and_then(|s| s.status.clone())
                .or_else(|| current.and_then(|s| s.phase.clone()))
        },
        state: observed
            .map(observed_power)
            .or_else(|| kept.and_then(|s| s.state)),
        url: observed
            .and_then(|s| s.metadata.url.clone())
            .or_else(|| kept.and_then(|s| s.url.clone())),
        power_control: power_control(ctx, obj).map(|p| p.as_str().to_owned()),
        env_digest: report.env_digest,
        adopted: report.adopted,
        last_handled_reconcile_at: pending_request(obj, None)
            .or_else(|| current.and_then(|s| s.last_handled_reconcile_at.clone())),
        conditions: conditions_for(obj, &report.health),
    };
    write_status(ctx, obj, &status).await
}
