//! IntegrationConnection reconciler: read the Secret (by name, each pass) → observe (the workspace's
//! shared connection list) → plan (pure) → act (create or replace, the secret always carried) → count the
//! models → report. The secret's values appear nowhere but in the request that carries them: status
//! holds a keyed digest ([`super::digest`]).

pub mod dry_run;
pub mod plan;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use tracing::info;

use super::cache::{Listed, Seen};
use super::cached::{Cached, WithConditions};
use super::claims::hash_of;
use super::conditions::{Health, Why};
use super::frame::{Driver, cleanup_scope, take_removal};
use super::managed::Managed;
use super::{
    Context, Error, conditions_for, failed, jittered, pending_request, publish, requeue_after,
    write_status,
};
use crate::blaxel::model::IntegrationConnection as RemoteConnection;
use crate::blaxel::{ApiError, Scope, SecretValue};
use crate::crd::{
    CredentialsRef, DeletionPolicy, IntegrationConnection, IntegrationConnectionStatus,
};
use plan::{ConnectionAction, ConnectionInput};

/// Condition reason: the Secret named by `spec.secretRef` is missing or holds nothing.
pub const SECRET_NOT_FOUND: &str = "SecretNotFound";

impl WithConditions for IntegrationConnectionStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl Listed for RemoteConnection {
    fn key(&self) -> String {
        self.metadata.name.clone()
    }
    fn key_of(identity: &str) -> String {
        identity.to_owned()
    }
}

/// The connection's remote name: `spec.connectionName`, else `metadata.name`.
#[must_use]
pub fn remote_name(c: &Cached<IntegrationConnection>) -> &str {
    c.spec
        .connection_name
        .as_deref()
        .or(c.metadata.name.as_deref())
        .unwrap_or_default()
}

impl Managed for Cached<IntegrationConnection> {
    const DUPLICATE_REASON: &'static str = "DuplicateConnection";
    const OWNS_REMOTELY: bool = false;
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
        format!("connection {}", remote_name(self))
    }
    fn same_claim(&self, other: &Self) -> bool {
        self.spec.workspace == other.spec.workspace && remote_name(self) == remote_name(other)
    }
    fn claim_hash(&self) -> u64 {
        hash_of((&self.spec.workspace, remote_name(self)))
    }
    async fn prove(ctx: &Context, scope: &Scope) -> Result<(), ApiError> {
        ctx.connections
            .readable(scope, ctx.settings.resync, || {
                ctx.api.list_connections(scope)
            })
            .await
    }
}

impl Driver for Cached<IntegrationConnection> {
    const KIND: &'static str = "IntegrationConnection";

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

/// What a pass decided, before it becomes a status.
struct Report {
    health: Health,
    sent: Option<String>,
    models: Option<u32>,
    adopted: bool,
}

impl Report {
    fn kept(obj: &Cached<IntegrationConnection>, health: Health) -> Self {
        let status = obj.status_fields();
        Self {
            health,
            sent: status.secret_digest,
            models: status.models,
            adopted: status.adopted,
        }
    }
}

/// A Secret key's value, if it can be sent: UTF-8 text, not blank (an unset variable in `kubectl
/// create secret`, or a secret store not filled in yet: sending it would replace a working secret
/// with nothing). Else why not, to follow "key K of Secret S".
pub fn usable_value(bytes: &[u8]) -> Result<SecretValue, &'static str> {
    match std::str::from_utf8(bytes) {
        Err(_) => Err("is not UTF-8 text"),
        Ok(text) if text.trim().is_empty() => Err("is empty"),
        Ok(text) => Ok(SecretValue::new(text)),
    }
}

/// The Secret's values, `None` when the Secret is missing or holds nothing usable (with why).
async fn secret_values(
    obj: &Cached<IntegrationConnection>,
    ctx: &Context,
) -> Result<Result<BTreeMap<String, SecretValue>, Why>, Error> {
    let name = &obj.spec.secret_ref.name;
    let api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let not_found = |why: String| {
        Ok(Err(Why::new(
            SECRET_NOT_FOUND,
            format!("{why}; nothing is sent to Blaxel until it is there"),
        )))
    };
    let Some(secret) = api.get_opt(name).await? else {
        return not_found(format!("Secret {name} (spec.secretRef) does not exist"));
    };
    let mut values = BTreeMap::new();
    for (key, bytes) in secret.data.unwrap_or_default() {
        match usable_value(&bytes.0) {
            Ok(value) => values.insert(key, value),
            Err(why) => return not_found(format!("key {key} of Secret {name} {why}")),
        };
    }
    if values.is_empty() {
        return not_found(format!("Secret {name} (spec.secretRef) holds no key"));
    }
    Ok(Ok(values))
}

async fn apply(
    obj: &Cached<IntegrationConnection>,
    ctx: &Context,
    scope: &Scope,
) -> Result<Action, Error> {
    let name = remote_name(obj).to_owned();
    let mut report = Report::kept(obj, Health::Progressing(Why::new("Reconciling", "")));
    let values = match secret_values(obj, ctx).await? {
        Ok(values) => values,
        Err(why) => {
            publish(&ctx.recorder, obj, true, &why.reason, why.message.clone()).await;
            report.health = Health::Stalled(why);
            finish(obj, ctx, report).await?;
            return Ok(Action::requeue(jittered(ctx.settings.resync)));
        }
    };
    let digest = ctx.digests.digest(&values).await?;
    let fresh = pending_request(obj, obj.status_fields().last_handled_reconcile_at.as_ref());
    let max_age = if fresh.is_some() {
        Duration::ZERO
    } else {
        ctx.settings.resync
    };
    let observed = match ctx
        .connections
        .get(scope, &name, max_age, || ctx.api.list_connections(scope))
        .await
    {
        Ok(Seen::Present(c)) => Some(c),
        Ok(Seen::Absent | Seen::Unsure) => None,
        Err(e) => return fail(obj, ctx, report, e).await,
    };
    if obj.status_fields().secret_digest.is_none() && observed.is_some() {
        report.adopted = true;
    }
    let plan = plan::plan(&ConnectionInput {
        spec: &obj.spec,
        name: &name,
        observed: observed.as_ref(),
        digest: &digest,
        sent: report.sent.as_deref(),
        keys: values.keys().map(String::as_str).collect(),
    });
    report.health = plan.health;
    if let Some(action) = plan.action.filter(|_| !super::is_paused(obj)) {
        let body = plan::body(&obj.spec, &name, observed.as_ref(), &values);
        let (answer, reason, note) = match action {
            ConnectionAction::Create => (
                ctx.api.create_connection(scope, &body).await,
                "Created",
                format!("Created connection {name} ({})", obj.spec.integration),
            ),
            ConnectionAction::Update => (
                ctx.api.update_connection(scope, &body).await,
                "Updated",
                format!("Updated connection {name}: {}", plan.changed.join(", ")),
            ),
        };
        match answer {
            Ok(now) => {
                info!(workspace = %scope.workspace, connection = %name, reason, "connection written");
                publish(&ctx.recorder, obj, false, reason, note).await;
                ctx.connections.write_through(scope, &name, Some(now)).await;
                report.sent = Some(digest);
                report.health = Health::Ready(Why::new(
                    "Ready",
                    format!("Connection {name} matches the spec"),
                ));
            }
            Err(e @ ApiError::Conflict { .. }) => {
                // Created meanwhile: list again.
                ctx.connections.invalidate(scope).await;
                return fail(obj, ctx, report, e).await;
            }
            Err(e @ ApiError::Unavailable { .. }) => {
                // The write may have been applied with its answer lost: the values count as sent,
                // so a connection that then exists is not passed off as adopted, nor written again,
                // and the list is read again rather than trusted to say it is absent.
                report.sent = Some(digest);
                ctx.connections.invalidate(scope).await;
                return fail(obj, ctx, report, e).await;
            }
            Err(e) => return fail(obj, ctx, report, e).await,
        }
    }
    if matches!(report.health, Health::Ready(_)) {
        match ctx.api.count_models(scope, &name).await {
            Ok(n) => report.models = Some(n),
            Err(e) => return fail(obj, ctx, report, e).await,
        }
    }
    if super::is_paused(obj) {
        report.health = Health::Paused {
            ready: matches!(report.health, Health::Ready(_)),
        };
    }
    let action = requeue_after(&report.health, &ctx.settings, ctx.settings.transition_poll);
    finish(obj, ctx, report).await?;
    Ok(action)
}

async fn cleanup(obj: &Cached<IntegrationConnection>, ctx: &Context) -> Result<Action, Error> {
    let Some(scope) = cleanup_scope(obj, ctx).await? else {
        return Ok(Action::await_change());
    };
    let name = remote_name(obj).to_owned();
    take_removal(obj, ctx, &scope.workspace).await?;
    match ctx.api.delete_connection(&scope, &name).await {
        Ok(()) | Err(ApiError::NotFound { .. }) => {
            info!(workspace = %scope.workspace, connection = %name, "deleted");
            ctx.connections.write_through(&scope, &name, None).await;
            publish(
                &ctx.recorder,
                obj,
                false,
                "Deleted",
                format!("Deleted connection {name}"),
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

/// Reports a remote error: Stalled for errors a person must fix, Failing (and backoff) for transient
/// ones.
async fn fail(
    obj: &Cached<IntegrationConnection>,
    ctx: &Context,
    mut report: Report,
    err: ApiError,
) -> Result<Action, Error> {
    let (health, outcome) = failed(obj, ctx, err).await;
    report.health = health;
    finish(obj, ctx, report).await?;
    outcome
}

async fn finish(
    obj: &Cached<IntegrationConnection>,
    ctx: &Context,
    report: Report,
) -> Result<(), Error> {
    let current = obj.status_fields();
    let status = IntegrationConnectionStatus {
        observed_generation: obj.metadata.generation,
        secret_digest: report.sent,
        models: report.models,
        adopted: report.adopted,
        last_handled_reconcile_at: pending_request(obj, None).or(current.last_handled_reconcile_at),
        conditions: conditions_for(obj, &report.health),
    };
    write_status(ctx, obj, &status).await
}
