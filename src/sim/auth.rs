//! Authentication and workspace selection, as an axum extractor.
//!
//! The bearer token comes from `Authorization` (Blaxel's CLI) or `X-Blaxel-Authorization` (its SDKs). The
//! workspace comes from `X-Blaxel-Workspace` or `?workspace=`, defaulting to the key's own. A missing or
//! unknown key answers 401; a key used for another workspace answers 403.
//!
//! The 2025 accept/decline routes are called by the *invitee*, not by a workspace key. The simulator has no
//! user accounts, so an invitee authenticates with the token `user:<email>` ([`Invitee`]); such tokens are
//! refused (403) everywhere else.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Query};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::error::{ApiError, ErrorShape};
use super::state::Sim;

/// Prefix of simulated personal user tokens (`Bearer user:alice@example.com`).
pub const USER_TOKEN_PREFIX: &str = "user:";

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

impl FromRequestParts<Arc<Sim>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        sim: &Arc<Sim>,
    ) -> Result<Self, Self::Rejection> {
        let shape = ErrorShape::for_route(&parts.method, parts.uri.path());
        let Some(token) = bearer_token(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "missing credentials: send Authorization: Bearer <api key> (or X-Blaxel-Authorization)",
            )
            .with_shape(shape));
        };
        if token.starts_with(USER_TOKEN_PREFIX) {
            return Err(ApiError::forbidden(
                "a user token may only accept or decline invitations; use a workspace API key",
            )
            .with_shape(shape));
        }
        let Some(key_ws) = sim.keys.get(&token) else {
            return Err(ApiError::unauthorized("invalid API key").with_shape(shape));
        };
        let workspace = match requested_workspace(parts) {
            Some(ws) if &ws != key_ws => {
                return Err(ApiError::forbidden(format!(
                    "this API key is not allowed to access workspace {ws:?}"
                ))
                .with_shape(shape));
            }
            _ => key_ws.clone(),
        };
        Ok(Self {
            workspace,
            principal: principal_for_key(&token),
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
                "workspace API keys cannot accept or decline invitations; the invitee does (Bearer user:<email>)",
            ))
        } else {
            Err(ApiError::unauthorized("invalid token"))
        }
    }
}
