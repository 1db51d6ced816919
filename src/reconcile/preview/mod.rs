//! SandboxPreview reconciler: admitted through its Sandbox object (which must hold its claim and own a
//! ready sandbox; its workspace and credentials are used) → observe (the preview, and a private
//! preview's tokens and Secret) → plan (pure, [`plan`]) → act (create or update the preview; make a
//! token, write the Secret, delete the operator's other tokens) → report. Status records where the
//! preview is, so that cleanup finds it when the Sandbox object is gone.

pub mod dry_run;
pub mod plan;
pub mod secret;

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::info;

use super::cached::{Cached, WithConditions};
use super::claims::{self, hash_of};
use super::conditions::{Health, Why};
use super::frame::{Driver, wait_in_cleanup};
use super::managed::{Admission, Managed, scope as credentials_scope};
use super::{
    Context, Error, conditions_for, failed, is_paused, jittered, pending_request, publish,
    requeue_after, write_status,
};
use crate::blaxel::client::{OPERATOR_TOKEN_PREFIX, owner_token_prefix};
use crate::blaxel::model::Preview;
use crate::blaxel::{ApiError, Scope};
use crate::crd::{
    CredentialsRef, DeletionPolicy, PreviewLocation, PreviewTokenStatus, Sandbox, SandboxPreview,
    SandboxPreviewStatus,
};
use plan::{PreviewAction, TokenInput, TokenTimes};
use secret::TokenSecret;

/// Condition reason: the referenced Sandbox is missing, not ready, or not the holder of its sandbox.
pub const SANDBOX_NOT_READY: &str = "SandboxNotReady";
/// Condition reason: the token's Secret exists and is not this object's.
pub const SECRET_NOT_OWNED: &str = "SecretNotOwned";
/// Condition reason: the operator runs with `--preview-tokens=false`.
pub const TOKENS_DISABLED: &str = "PreviewTokensDisabled";

impl WithConditions for SandboxPreviewStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

/// The preview's remote name: `spec.previewName`, else `metadata.name`.
#[must_use]
pub fn preview_name(p: &Cached<SandboxPreview>) -> &str {
    p.spec
        .preview_name
        .as_deref()
        .or(p.metadata.name.as_deref())
        .unwrap_or_default()
}

impl Managed for Cached<SandboxPreview> {
    const DUPLICATE_REASON: &'static str = "DuplicatePreview";
    const OWNS_REMOTELY: bool = false;
    /// The workspace recorded by the last pass that acted (the Sandbox object's); empty before.
    fn workspace(&self) -> &str {
        self.status
            .as_ref()
            .and_then(|s| s.fields.remote.as_ref())
            .map_or("", |r| r.workspace.as_str())
    }
    fn credentials_ref(&self) -> Option<&CredentialsRef> {
        None
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn identity(&self) -> String {
        format!(
            "preview {} of Sandbox {}",
            preview_name(self),
            self.spec.sandbox_ref.name
        )
    }
    /// Two previews claim one remote preview when they name it through the same Sandbox object (a
    /// Sandbox of another namespace never shares its sandbox: its own claim decides).
    fn same_claim(&self, other: &Self) -> bool {
        self.metadata.namespace == other.metadata.namespace
            && self.spec.sandbox_ref == other.spec.sandbox_ref
            && preview_name(self) == preview_name(other)
    }
    fn claim_hash(&self) -> u64 {
        hash_of((
            self.metadata.namespace.as_deref(),
            &self.spec.sandbox_ref.name,
            preview_name(self),
        ))
    }
    /// Previews act with their Sandbox's key, which that Sandbox proved.
    async fn prove(_ctx: &Context, _scope: &Scope) -> Result<(), ApiError> {
        Ok(())
    }
}

impl Driver for Cached<SandboxPreview> {
    const KIND: &'static str = "SandboxPreview";

    async fn admit(obj: &Self, ctx: &Context) -> Result<Admission, Error> {
        admit(obj, ctx).await
    }

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

/// The Sandbox object `obj` names, when it holds its sandbox: present, not being deleted, and Ready
/// at its current generation (a duplicate, or a Sandbox whose sandbox another owns, never is), so a
/// preview never publishes a port of someone else's sandbox.
fn ready_sandbox(obj: &Cached<SandboxPreview>, ctx: &Context) -> Result<Arc<Cached<Sandbox>>, Why> {
    let name = &obj.spec.sandbox_ref.name;
    let namespace = obj.namespace().unwrap_or_default();
    let sandbox = ctx.kinds.get::<Cached<Sandbox>>().and_then(|kind| {
        kind.store.find(|s| {
            s.metadata.name.as_ref() == Some(name)
                && s.metadata.namespace.as_deref() == Some(&namespace)
        })
    });
    let not_ready = |why: &str| {
        Why::new(
            SANDBOX_NOT_READY,
            format!("Sandbox {name} (spec.sandboxRef) {why}; the preview waits for it"),
        )
    };
    let Some(sandbox) = sandbox else {
        return Err(not_ready("does not exist in this namespace"));
    };
    if sandbox.metadata.deletion_timestamp.is_some() {
        return Err(not_ready("is being deleted"));
    }
    let ready = sandbox.status.as_ref().is_some_and(|s| {
        s.fields.observed_generation == sandbox.metadata.generation
            && s.transitions.is_true("Ready")
    });
    if !ready {
        return Err(not_ready("is not Ready"));
    }
    Ok(sandbox)
}

/// Admission through the Sandbox object: it must hold its sandbox; its credentials are used; two
/// previews of one remote preview: the older acts.
async fn admit(obj: &Cached<SandboxPreview>, ctx: &Context) -> Result<Admission, Error> {
    let sandbox = match ready_sandbox(obj, ctx) {
        Ok(sandbox) => sandbox,
        Err(why) => {
            return Ok(Admission::Stop(
                Health::Progressing(why),
                Action::requeue(ctx.settings.transition_poll),
            ));
        }
    };
    let scope = match credentials_scope(sandbox.as_ref(), ctx).await {
        Ok(scope) => scope,
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            return Ok(Admission::Stop(
                Health::Stalled(Why::new(e.reason(), e.to_string())),
                Action::requeue(jittered(ctx.settings.resync)),
            ));
        }
    };
    let seniors = ctx
        .kinds
        .get::<Cached<SandboxPreview>>()
        .map_or_else(Vec::new, |kind| {
            claims::seniors_in(obj, &kind.store, &kind.claims, Managed::same_claim)
        });
    if let Some(holder) = seniors.first() {
        let message = format!(
            "{} (in this namespace) already manages {}",
            holder.name_any(),
            obj.identity()
        );
        return Ok(Admission::Stop(
            Health::Stalled(Why::new("DuplicatePreview", message)),
            Action::requeue(jittered(ctx.settings.claim_recheck)),
        ));
    }
    Ok(Admission::Proceed(scope))
}

/// What a pass decided, before it becomes a `SandboxPreviewStatus`.
struct Report {
    health: Health,
    url: Option<String>,
    remote: Option<PreviewLocation>,
    created_at: Option<String>,
    token: Option<PreviewTokenStatus>,
    adopted: bool,
}

impl Report {
    fn kept(obj: &Cached<SandboxPreview>, health: Health) -> Self {
        let status = obj.status_fields();
        Self {
            health,
            url: status.url,
            remote: status.remote,
            created_at: status.created_at,
            token: status.token,
            adopted: status.adopted,
        }
    }
}

async fn apply(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    scope: &Scope,
) -> Result<Action, Error> {
    let mut report = Report::kept(obj, Health::Progressing(Why::new("Reconciling", "")));
    let sandbox = match ready_sandbox(obj, ctx) {
        Ok(sandbox) => sandbox,
        Err(why) => {
            report.health = Health::Progressing(why);
            finish(obj, ctx, report).await?;
            return Ok(Action::requeue(ctx.settings.transition_poll));
        }
    };
    let location = PreviewLocation {
        workspace: scope.workspace.clone(),
        sandbox: super::sandbox::remote_name(&sandbox).to_owned(),
        preview: preview_name(obj).to_owned(),
        credentials_secret: sandbox
            .spec
            .credentials_ref
            .as_ref()
            .map(|r| r.name.clone()),
        credentials_key: sandbox.spec.credentials_ref.as_ref().map(|r| r.key.clone()),
    };
    if let Some(old) = report
        .remote
        .clone()
        .filter(|old| !same_place(old, &location))
    {
        // The Sandbox object names another sandbox now (deleted with Orphan and made again): this
        // object's tokens at the old place go; the preview there is left, with the sandbox it shows.
        if let Err(e) = leave_place(obj, ctx, &old).await {
            return fail(obj, ctx, report, e).await;
        }
    }
    let observed = match ctx
        .api
        .get_preview(scope, &location.sandbox, &location.preview)
        .await
    {
        Ok(p) => Some(p),
        Err(ApiError::NotFound { .. }) => None,
        Err(e) => return fail(obj, ctx, report, e).await,
    };
    // Adopted: found before this object recorded where it acts (it does so before its create).
    if report.remote.is_none() && observed.is_some() {
        report.adopted = true;
    }
    match ttl_expired(obj, ctx, scope, &location, observed.is_none()).await {
        Ok(false) => {}
        Ok(true) => return expire(obj, ctx, report, &location).await,
        Err(e) => return fail(obj, ctx, report, e).await,
    }
    report.remote = Some(location.clone());
    let paused = is_paused(obj);
    let preview = match converge(obj, ctx, scope, &location, observed, paused).await {
        Ok(preview) => preview,
        Err(e) => return fail(obj, ctx, report, e).await,
    };
    report.url = preview.as_ref().and_then(|p| p.spec.url.clone());
    report.created_at = preview.as_ref().and_then(|p| p.metadata.created_at.clone());
    report.health = Health::Ready(Why::new(
        "Ready",
        format!("Preview {} is up", location.preview),
    ));
    if preview.is_some() && !paused {
        match tokens(obj, ctx, scope, &location, report.url.as_deref()).await {
            Ok(Ok(token)) => report.token = token,
            Ok(Err(why)) => {
                publish(&ctx.recorder, obj, true, &why.reason, why.message.clone()).await;
                report.health = Health::Stalled(why);
            }
            Err(TokenError::Remote(e)) => return fail(obj, ctx, report, e).await,
            Err(TokenError::Kube(e)) => {
                finish(obj, ctx, report).await?;
                return Err(e);
            }
        }
    }
    if paused {
        report.health = Health::Paused {
            ready: matches!(report.health, Health::Ready(_)),
        };
    }
    // A settled private preview looks again at its resync, or when its token is to be renewed.
    let action = match (&report.health, renewal_due(report.token.as_ref(), obj)) {
        (Health::Ready(_), Some(due)) => Action::requeue(due.min(jittered(ctx.settings.resync))),
        (Health::Stalled(_), _) => Action::requeue(jittered(ctx.settings.resync)),
        (health, _) => requeue_after(health, &ctx.settings, ctx.settings.transition_poll),
    };
    finish(obj, ctx, report).await?;
    Ok(action)
}

/// Whether two places are the same preview.
fn same_place(a: &PreviewLocation, b: &PreviewLocation) -> bool {
    (&a.workspace, &a.sandbox, &a.preview) == (&b.workspace, &b.sandbox, &b.preview)
}

/// Whether the preview at `at`, `absent` now, was there at this generation with a `spec.ttl`: Blaxel
/// removed it at expiry, unless [`lost_with_sandbox`] (a preview deleted by hand reads as expired
/// too, as a sandbox does).
async fn ttl_expired(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    scope: &Scope,
    at: &PreviewLocation,
    absent: bool,
) -> Result<bool, ApiError> {
    let status = obj.status_fields();
    let was_here = obj.spec.ttl.is_some()
        && status.url.is_some()
        && status.observed_generation == obj.metadata.generation
        && status.remote.as_ref().is_some_and(|r| same_place(r, at));
    if !(absent && was_here) {
        return Ok(false);
    }
    Ok(!lost_with_sandbox(obj, ctx, scope, at).await?)
}

/// Reports a preview whose ttl ran out: Stalled until its spec changes.
async fn expire(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    mut report: Report,
    at: &PreviewLocation,
) -> Result<Action, Error> {
    let why = Why::new(
        "TtlExpired",
        format!(
            "Preview {} reached its spec.ttl and Blaxel removed it; it is not made again until the \
             spec changes",
            at.preview
        ),
    );
    // The URL stays in status: it is what tells a later pass the preview was there.
    report.token = None;
    report.health = Health::Stalled(why);
    finish(obj, ctx, report).await?;
    Ok(Action::requeue(jittered(ctx.settings.resync)))
}

/// Whether the sandbox at `at` was made after the preview recorded there (both times Blaxel's
/// `createdAt`, so no clock of ours is compared with Blaxel's): the preview went with the sandbox it
/// showed, deleted and made again, and its ttl did not run out. A sandbox that is gone counts too:
/// the create that follows waits for it. A time that cannot be read never counts.
async fn lost_with_sandbox(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    scope: &Scope,
    at: &PreviewLocation,
) -> Result<bool, ApiError> {
    let instant = |t: Option<&str>| t.and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let Some(made) = instant(obj.status_fields().created_at.as_deref()) else {
        return Ok(false);
    };
    match ctx.api.get_sandbox(scope, &at.sandbox).await {
        Ok(sandbox) => {
            Ok(instant(sandbox.metadata.created_at.as_deref()).is_some_and(|s| s > made))
        }
        Err(ApiError::NotFound { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Deletes this object's own tokens at a place it no longer acts at, with the credentials recorded
/// for it (none usable: they expire on their own).
async fn leave_place(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    old: &PreviewLocation,
) -> Result<(), ApiError> {
    match recorded_scope(obj, ctx, old).await {
        // A token already gone counts as deleted (delete_token).
        Ok(scope) => delete_own_tokens(obj, ctx, &scope, old).await,
        Err(e) => {
            info!(error = %e, preview = %old.preview, "left a former place without its credentials");
            Ok(())
        }
    }
}

/// How long until the current token is to be renewed (at least a second), if there is one.
fn renewal_due(
    token: Option<&PreviewTokenStatus>,
    obj: &Cached<SandboxPreview>,
) -> Option<std::time::Duration> {
    let token = token?;
    let times = token_times(obj).ok()?;
    let expires: jiff::Timestamp = token.expires_at.parse().ok()?;
    let renew_at = expires
        .checked_sub(jiff::SignedDuration::try_from(times.renew_before).ok()?)
        .ok()?;
    let left = renew_at.duration_since(jiff::Timestamp::now());
    Some(
        std::time::Duration::try_from(left)
            .unwrap_or_default()
            .max(std::time::Duration::from_secs(1)),
    )
}

/// Brings the preview record to the spec; the preview as it now is (`None`: still absent).
async fn converge(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    scope: &Scope,
    at: &PreviewLocation,
    observed: Option<Preview>,
    paused: bool,
) -> Result<Option<Preview>, ApiError> {
    let Some(action) = plan::plan(&obj.spec, &at.preview, observed.as_ref()).filter(|_| !paused)
    else {
        return Ok(observed);
    };
    let (reason, answer) = match action {
        PreviewAction::Create(body) => (
            "Created",
            ctx.api.create_preview(scope, &at.sandbox, &body).await,
        ),
        PreviewAction::Update(body) => (
            "Updated",
            ctx.api.update_preview(scope, &at.sandbox, &body).await,
        ),
    };
    let now = answer?;
    info!(workspace = %at.workspace, sandbox = %at.sandbox, preview = %at.preview, reason, "preview written");
    publish(
        &ctx.recorder,
        obj,
        false,
        reason,
        format!("{reason} preview {} of sandbox {}", at.preview, at.sandbox),
    )
    .await;
    Ok(Some(now))
}

/// Why the token step stopped.
enum TokenError {
    Remote(ApiError),
    Kube(Error),
}

impl From<ApiError> for TokenError {
    fn from(e: ApiError) -> Self {
        Self::Remote(e)
    }
}

fn token_times(obj: &Cached<SandboxPreview>) -> Result<TokenTimes, String> {
    let token = obj.spec.token.as_ref();
    TokenTimes::from_spec(
        token.and_then(|t| t.lifetime.as_deref()),
        token.and_then(|t| t.renew_before.as_deref()),
    )
}

/// The token step: for a private preview, keep a live token in the Secret (renewed ahead of expiry)
/// and delete the operator's other tokens; for a public one, remove the Secret and those tokens. A
/// Secret this object made under another name (`secretName` changed or dropped) goes either way. The
/// current token's status, or why the step cannot go on (Stalled; the operator's tokens, which no
/// Secret of its holds then, are deleted all the same).
async fn tokens(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    scope: &Scope,
    at: &PreviewLocation,
    url: Option<&str>,
) -> Result<Result<Option<PreviewTokenStatus>, Why>, TokenError> {
    let secrets = TokenSecret::new(obj, ctx);
    forget_former_secret(obj, ctx).await?;
    let held = secrets.read().await.map_err(TokenError::Kube)?;
    let remote = ctx
        .api
        .list_preview_tokens(scope, &at.sandbox, &at.preview)
        .await?;
    let ours = |name: &str| name.starts_with(OPERATOR_TOKEN_PREFIX);
    let stop = if obj.spec.public {
        secrets
            .delete_if_ours(&held)
            .await
            .map_err(TokenError::Kube)?;
        Some(None)
    } else if !ctx.settings.preview_tokens {
        Some(Some(Why::new(
            TOKENS_DISABLED,
            "The operator runs with --preview-tokens=false (no permission to write Secrets): a private \
             preview's token is not kept. Make the preview public, or enable preview tokens",
        )))
    } else {
        secrets.refused(&held).map(Some)
    };
    let times = match (stop, token_times(obj)) {
        (Some(why), _) => {
            for token in remote.iter().filter(|t| ours(&t.metadata.name)) {
                delete_token(ctx, scope, at, &token.metadata.name).await?;
            }
            return Ok(why.map_or(Ok(None), Err));
        }
        (None, Err(message)) => return Ok(Err(Why::new("InvalidSpec", message))),
        (None, Ok(times)) => times,
    };
    let in_secret = held.token();
    let current = plan::current_token(in_secret.as_ref(), &remote);
    let now = jiff::Timestamp::now();
    let plan = plan::plan_token(&TokenInput {
        current,
        remote: &remote,
        ours,
        times,
        now,
    });
    let kept = if plan.create {
        // Blaxel's clock may run ahead of ours: a token it calls expired ends no earlier than the
        // moment its clock has passed, so a new one is made to last `lifetime` from there.
        let since = remote
            .iter()
            .filter(|t| t.spec.expired)
            .filter_map(|t| {
                t.spec
                    .expires_at
                    .as_deref()?
                    .parse::<jiff::Timestamp>()
                    .ok()
            })
            .fold(now, std::cmp::max);
        let fresh = Fresh {
            secrets: &secrets,
            held: &held,
            url,
            since,
            lifetime: times.lifetime,
        };
        renew(obj, ctx, scope, at, &fresh).await?.map(Some)
    } else {
        if let Some(url) = url {
            secrets
                .keep_url(&held, url)
                .await
                .map_err(TokenError::Kube)?;
        }
        Ok(current.map(|(name, expires)| PreviewTokenStatus {
            name: name.to_owned(),
            expires_at: expires.to_string(),
            secret_name: secrets.name().to_owned(),
        }))
    };
    for name in &plan.delete {
        delete_token(ctx, scope, at, name).await?;
    }
    Ok(kept)
}

/// Deletes the Secret this object made under a name its spec no longer gives (its status recorded
/// it): a `secretName` changed, or dropped when the preview went public.
async fn forget_former_secret(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
) -> Result<(), TokenError> {
    let Some(old) = former_secret(obj, ctx) else {
        return Ok(());
    };
    let held = old.read().await.map_err(TokenError::Kube)?;
    old.delete_if_ours(&held).await.map_err(TokenError::Kube)
}

/// What a new token needs: the Secret it goes to, the URL, and from when it lasts how long.
struct Fresh<'a> {
    secrets: &'a TokenSecret<'a>,
    held: &'a secret::Held,
    url: Option<&'a str>,
    since: jiff::Timestamp,
    lifetime: std::time::Duration,
}

/// Makes a new token and writes it to the Secret: its status, or why it cannot be used (Blaxel calls
/// it expired at once: the clocks differ by more than a lifetime). A token whose Secret cannot be
/// written is deleted again: no token lives that no Secret holds.
async fn renew(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    scope: &Scope,
    at: &PreviewLocation,
    fresh: &Fresh<'_>,
) -> Result<Result<PreviewTokenStatus, Why>, TokenError> {
    let expires = fresh
        .since
        .checked_add(jiff::SignedDuration::try_from(fresh.lifetime).unwrap_or_default())
        .unwrap_or(fresh.since);
    let expires_at = expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let token = ctx
        .api
        .create_preview_token(
            scope,
            &at.sandbox,
            &at.preview,
            &own_token_prefix(obj),
            &expires_at,
        )
        .await?;
    let name = token.metadata.name.clone();
    let Some(value) = token.spec.token.as_ref().filter(|_| !token.spec.expired) else {
        delete_token(ctx, scope, at, &name).await?;
        if token.spec.expired {
            return Ok(Err(Why::new(
                "TokenExpiredOnArrival",
                format!(
                    "Blaxel calls a token expiring at {expires_at} expired as soon as it is made: its \
                     clock and the operator's differ by more than token.lifetime. Check the operator's \
                     clock, or lengthen the lifetime"
                ),
            )));
        }
        return Err(TokenError::Remote(ApiError::Decode {
            message: "the new preview token's answer holds no token".to_owned(),
        }));
    };
    let expires_at = token.spec.expires_at.clone().unwrap_or(expires_at);
    let url = fresh.url.unwrap_or_default();
    let written = fresh
        .secrets
        .write(fresh.held, &name, value, &expires_at, url)
        .await;
    if let Err(e) = written {
        delete_token(ctx, scope, at, &name).await?;
        return Err(TokenError::Kube(e));
    }
    info!(preview = %at.preview, token = %name, "preview token made");
    publish(
        &ctx.recorder,
        obj,
        false,
        "TokenRenewed",
        format!(
            "A new token for preview {} (expires {expires_at}) is in Secret {}",
            at.preview,
            fresh.secrets.name()
        ),
    )
    .await;
    Ok(Ok(PreviewTokenStatus {
        name,
        expires_at,
        secret_name: fresh.secrets.name().to_owned(),
    }))
}

async fn delete_token(
    ctx: &Context,
    scope: &Scope,
    at: &PreviewLocation,
    name: &str,
) -> Result<(), ApiError> {
    match ctx
        .api
        .delete_preview_token(scope, &at.sandbox, &at.preview, name)
        .await
    {
        Ok(()) | Err(ApiError::NotFound { .. }) => {
            info!(preview = %at.preview, token = %name, "preview token deleted");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The credentials recorded for a preview's cleanup, and the workspace.
async fn recorded_scope(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    at: &PreviewLocation,
) -> Result<Scope, super::credentials::CredentialsError> {
    let reference = at.credentials_secret.as_ref().map(|name| CredentialsRef {
        name: name.clone(),
        key: at
            .credentials_key
            .clone()
            .unwrap_or_else(|| "apiKey".to_owned()),
    });
    let api_key = ctx
        .secret_keys
        .resolve(
            &ctx.credentials,
            &ctx.client,
            &obj.namespace().unwrap_or_default(),
            reference.as_ref(),
        )
        .await?;
    Ok(Scope {
        workspace: at.workspace.clone(),
        api_key,
    })
}

/// Cleanup, at the place the status recorded: with `Delete`, the preview (its tokens go with it) when
/// this object still holds that place; otherwise only this object's own tokens (the one its Secret
/// holds, the one its status names) and never another's; then its Secrets. An object that never acted
/// (no place recorded: a duplicate, one whose Sandbox never got ready) removes nothing remotely.
async fn cleanup(obj: &Cached<SandboxPreview>, ctx: &Context) -> Result<Action, Error> {
    let Some(at) = obj.status_fields().remote else {
        delete_secrets(obj, ctx).await?;
        return Ok(Action::await_change());
    };
    if is_paused(obj) {
        let health = Health::Paused { ready: false };
        return Err(wait_in_cleanup(obj, ctx, health, ctx.settings.resync).await);
    }
    let scope = match recorded_scope(obj, ctx, &at).await {
        Ok(scope) => Some(scope),
        Err(e) if e.is_transient() => return Err(e.into()),
        // Without credentials the remote side cannot be reached: the Secret still goes, and the
        // operator's tokens expire on their own.
        Err(e) => {
            publish(
                &ctx.recorder,
                obj,
                true,
                e.reason(),
                format!(
                    "{e}; preview {} was left as it is, its tokens expire on their own",
                    at.preview
                ),
            )
            .await;
            None
        }
    };
    if let Some(scope) = scope {
        let whole = obj.spec.deletion_policy == DeletionPolicy::Delete && holds(obj, ctx, &at);
        let removed = if whole {
            ctx.api
                .delete_preview(&scope, &at.sandbox, &at.preview)
                .await
        } else {
            delete_own_tokens(obj, ctx, &scope, &at).await
        };
        match removed {
            Ok(()) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => {
                let report = Report::kept(obj, Health::Progressing(Why::new("Deleting", "")));
                return fail(obj, ctx, report, e).await;
            }
        }
        info!(sandbox = %at.sandbox, preview = %at.preview, whole, "preview cleaned up");
    }
    delete_secrets(obj, ctx).await?;
    Ok(Action::await_change())
}

/// Whether `obj` still holds the place `at`: the place its spec and its Sandbox object name now (the
/// Sandbox may have moved, or been deleted with `Orphan` and its sandbox taken over since), and no
/// other preview object, in any namespace, names the same place so. Both are read from specs and the
/// Sandbox objects, never from another preview's status, which whoever may write the status
/// subresource sets.
fn holds(obj: &Cached<SandboxPreview>, ctx: &Context, at: &PreviewLocation) -> bool {
    let names = |p: &Cached<SandboxPreview>| {
        preview_name(p) == at.preview
            && ready_sandbox(p, ctx).is_ok_and(|sandbox| {
                super::sandbox::remote_name(&sandbox) == at.sandbox
                    && sandbox.spec.workspace == at.workspace
            })
    };
    let shared = || {
        ctx.kinds
            .get::<Cached<SandboxPreview>>()
            .is_some_and(|kind| {
                kind.store.state().iter().any(|other| {
                    other.metadata.uid != obj.metadata.uid
                        && other.metadata.deletion_timestamp.is_none()
                        && names(other)
                })
            })
    };
    names(obj) && !shared()
}

/// Deletes the tokens this object made at `at`: the one its Secret holds and the one its status
/// names (they differ between a renewal and the status write), and only when the name carries this
/// object's uid: never another object's, whatever a hand-written status or Secret names.
async fn delete_own_tokens(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    scope: &Scope,
    at: &PreviewLocation,
) -> Result<(), ApiError> {
    let mut names: Vec<String> = obj
        .status_fields()
        .token
        .map(|t| t.name)
        .into_iter()
        .collect();
    for secret in own_secrets(obj, ctx) {
        if let Ok(held) = secret.read().await
            && let Some(token) = held.token()
        {
            names.push(token.name.to_owned());
        }
    }
    names.sort();
    names.dedup();
    let own = own_token_prefix(obj);
    for name in names.iter().filter(|n| n.starts_with(&own)) {
        delete_token(ctx, scope, at, name).await?;
    }
    Ok(())
}

/// The prefix of the names of this object's tokens.
fn own_token_prefix(obj: &Cached<SandboxPreview>) -> String {
    owner_token_prefix(obj.metadata.uid.as_deref().unwrap_or_default())
}

/// The Secrets this object may have made: the one its spec names and the one its status recorded.
fn own_secrets<'a>(obj: &'a Cached<SandboxPreview>, ctx: &Context) -> Vec<TokenSecret<'a>> {
    std::iter::once(TokenSecret::new(obj, ctx))
        .chain(former_secret(obj, ctx))
        .collect()
}

/// The Secret this object's status recorded under a name its spec no longer gives, if any.
fn former_secret<'a>(obj: &'a Cached<SandboxPreview>, ctx: &Context) -> Option<TokenSecret<'a>> {
    let current = TokenSecret::new(obj, ctx);
    obj.status_fields()
        .token
        .map(|t| t.secret_name)
        .filter(|name| name != current.name())
        .map(|name| TokenSecret::named(obj, ctx, name))
}

/// Deletes the Secrets this object made.
async fn delete_secrets(obj: &Cached<SandboxPreview>, ctx: &Context) -> Result<(), Error> {
    for secret in own_secrets(obj, ctx) {
        let held = secret.read().await?;
        secret.delete_if_ours(&held).await?;
    }
    Ok(())
}

/// Reports a remote error: Stalled for errors a person must fix, Failing (and backoff) for transient
/// ones.
async fn fail(
    obj: &Cached<SandboxPreview>,
    ctx: &Context,
    mut report: Report,
    err: ApiError,
) -> Result<Action, Error> {
    let (health, outcome) = failed(obj, ctx, err).await;
    report.health = health;
    finish(obj, ctx, report).await?;
    outcome
}

async fn finish(obj: &Cached<SandboxPreview>, ctx: &Context, report: Report) -> Result<(), Error> {
    let current = obj.status_fields();
    let status = SandboxPreviewStatus {
        observed_generation: obj.metadata.generation,
        url: report.url,
        remote: report.remote,
        created_at: report.created_at,
        token: report.token,
        adopted: report.adopted,
        last_handled_reconcile_at: pending_request(obj, None).or(current.last_handled_reconcile_at),
        conditions: conditions_for(obj, &report.health),
    };
    write_status(ctx, obj, &status).await
}
