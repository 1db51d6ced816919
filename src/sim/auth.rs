//! Authentication and workspace selection, as axum extractors.
//!
//! The bearer token comes from `Authorization` (Blaxel's CLI) or `X-Blaxel-Authorization` (its SDKs). A missing
//! or unknown key answers 401. There are two kinds of key ([`KeyScope`]):
//! - a **workspace key** (`--api-key KEY=WORKSPACE`) acts in its own workspace only: the workspace comes from
//!   `X-Blaxel-Workspace` or `?workspace=`, defaulting to the key's own, and another one answers 403. It is the
//!   key of a service account of that workspace, so it dies with it: once the workspace is deleted the key
//!   answers 401 (even if a workspace of the same name is created again);
//! - an **account key** (`--account-key KEY`) belongs to the simulator's one account: it acts in any of the
//!   account's workspaces, named per request by `X-Blaxel-Workspace` or `?workspace=` (400 without one; 403
//!   for a workspace the account does not have).
//!
//! [`Caller`] is the extractor of workspace routes (users, sandboxes, previews): it also answers 409 while the
//! chosen workspace is not `ready`. [`KeyHolder`] is the extractor of the `/workspaces` routes, which name the
//! workspace in their path and decide themselves what each kind of key may do.
//!
//! The 2025 accept/decline routes are called by the *invitee*, not by a key. The simulator has no user
//! accounts, so an invitee authenticates with the token `user:<email>` ([`Invitee`]); such tokens are refused
//! (403) everywhere else.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Query};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::error::{ApiError, ErrorShape};
use super::state::Sim;
use super::workspaces::is_ready;

/// Prefix of simulated personal user tokens (`Bearer user:alice@example.com`).
pub const USER_TOKEN_PREFIX: &str = "user:";

/// What a key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScope {
    /// Act in this one workspace (a service account's key).
    Workspace(String),
    /// Manage the account's workspaces and act in any of them.
    Account,
}

/// The authenticated caller of a workspace route.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The workspace the request acts on.
    pub workspace: String,
    /// Who is acting, for `createdBy`/`updatedBy`/`invitedBy` (never the key itself).
    pub principal: String,
}

/// The bearer token of a request, from either authorization header.
#[must_use]
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    for name in ["authorization", "x-blaxel-authorization"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            let v = v.trim();
            if let Some((scheme, token)) = v.split_once(' ')
                && scheme.eq_ignore_ascii_case("bearer")
                && !token.trim().is_empty()
            {
                return Some(token.trim().to_owned());
            }
        }
    }
    None
}

/// The workspace asked for, by header or query parameter.
fn requested_workspace(parts: &Parts) -> Option<String> {
    if let Some(v) = parts
        .headers
        .get("x-blaxel-workspace")
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if !v.is_empty() {
            return Some(v.to_owned());
        }
    }
    Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|Query(q)| q.get("workspace").cloned())
        .filter(|w| !w.is_empty())
}

/// A stable, non-secret name for a key: `apikey-` and a short hash.
fn principal_for_key(key: &str) -> String {
    format!(
        "apikey-{:08x}",
        super::util::fnv1a(key.as_bytes()) & 0xffff_ffff
    )
}

/// The holder of a valid key, before any workspace is chosen (the `/workspaces` routes).
#[derive(Debug, Clone)]
pub struct KeyHolder {
    /// What the key may do.
    pub scope: KeyScope,
    /// Who is acting, for `createdBy`/`updatedBy` (never the key itself).
    pub principal: String,
}

/// Checks the bearer token: 401 when missing or unknown (a workspace key whose workspace was deleted is
/// unknown), 403 for a simulated user token.
fn authenticate(headers: &HeaderMap, sim: &Sim) -> Result<KeyHolder, ApiError> {
    let Some(token) = bearer_token(headers) else {
        return Err(ApiError::unauthorized(
            "missing credentials: send Authorization: Bearer <api key> (or X-Blaxel-Authorization)",
        ));
    };
    if token.starts_with(USER_TOKEN_PREFIX) {
        return Err(ApiError::forbidden(
            "a user token may only accept or decline invitations; use a workspace API key",
        ));
    }
    let Some(scope) = sim.keys.get(&token) else {
        return Err(ApiError::unauthorized("invalid API key"));
    };
    if let KeyScope::Workspace(ws) = scope {
        // The key of a service account of its workspace: gone with the workspace.
        let alive = sim
            .world()
            .workspaces
            .get(ws)
            .is_some_and(|w| w.meta.seeded);
        if !alive {
            return Err(ApiError::unauthorized(
                "invalid API key: its workspace has been deleted",
            ));
        }
    }
    Ok(KeyHolder {
        scope: scope.clone(),
        principal: principal_for_key(&token),
    })
}

impl FromRequestParts<Arc<Sim>> for KeyHolder {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        sim: &Arc<Sim>,
    ) -> Result<Self, Self::Rejection> {
        let shape = ErrorShape::for_route(&parts.method, parts.uri.path());
        authenticate(&parts.headers, sim).map_err(|e| e.with_shape(shape))
    }
}

/// The workspace a request acts in, for a key of `scope`: 400, 403 or 409 when it cannot act there.
fn choose_workspace(parts: &Parts, sim: &Sim, scope: &KeyScope) -> Result<String, ApiError> {
    let requested = requested_workspace(parts);
    let workspace = match (scope, requested) {
        (KeyScope::Workspace(own), Some(ws)) if &ws != own => {
            return Err(ApiError::forbidden(format!(
                "this API key is not allowed to access workspace {ws:?}"
            )));
        }
        (KeyScope::Workspace(own), _) => own.clone(),
        (KeyScope::Account, Some(ws)) => ws,
        (KeyScope::Account, None) => {
            return Err(ApiError::bad_request(
                "an account key acts in one workspace at a time: name it with X-Blaxel-Workspace (or ?workspace=)",
            ));
        }
    };
    let now = sim.clock.now();
    let world = sim.world();
    let Some(ws) = world.workspaces.get(&workspace) else {
        return Err(ApiError::forbidden(format!(
            "this API key is not allowed to access workspace {workspace:?}"
        )));
    };
    if !is_ready(&ws.meta, now, sim) {
        return Err(ApiError::conflict(
            "WORKSPACE_NOT_READY",
            format!(
                "workspace {workspace:?} is not ready (status {})",
                ws.meta.status(now, &sim.config).as_str()
            ),
        ));
    }
    Ok(workspace)
}

impl FromRequestParts<Arc<Sim>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        sim: &Arc<Sim>,
    ) -> Result<Self, Self::Rejection> {
        let shape = ErrorShape::for_route(&parts.method, parts.uri.path());
        let holder = authenticate(&parts.headers, sim).map_err(|e| e.with_shape(shape))?;
        let workspace =
            choose_workspace(parts, sim, &holder.scope).map_err(|e| e.with_shape(shape))?;
        Ok(Self {
            workspace,
            principal: holder.principal,
        })
    }
}

/// The invitee calling `POST /workspaces/{ws}/join|decline`, identified by a `user:<email>` token.
#[derive(Debug, Clone)]
pub struct Invitee {
    /// The invitee's e-mail address (lower-cased).
    pub email: String,
}

impl FromRequestParts<Arc<Sim>> for Invitee {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        sim: &Arc<Sim>,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer_token(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "missing credentials: the invitee authenticates with Bearer user:<email>",
            ));
        };
        if let Some(email) = token.strip_prefix(USER_TOKEN_PREFIX) {
            return Ok(Self {
                email: email.trim().to_ascii_lowercase(),
            });
        }
        if sim.keys.contains_key(&token) {
            Err(ApiError::forbidden(
                "API keys cannot accept or decline invitations; the invitee does (Bearer user:<email>)",
            ))
        } else {
            Err(ApiError::unauthorized("invalid token"))
        }
    }
}
