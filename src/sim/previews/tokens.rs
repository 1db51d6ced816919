//! `GET/POST /sandboxes/{name}/previews/{preview}/tokens` and `DELETE .../tokens/{token}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::DEFAULT_TOKEN_TTL;
use super::input::parse_token;
use super::record::{TokenRecord, render_token};
use super::routes::{preview_not_found, sandbox_mut, with_book};
use crate::sim::auth::Caller;
use crate::sim::body::{JsonObject, SimPath};
use crate::sim::error::ApiError;
use crate::sim::state::Sim;
use crate::sim::util::hex_encode;

/// `GET /sandboxes/{name}/previews/{preview}/tokens`: every token, expired ones included (`expired: true`).
pub async fn list_tokens(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview)): SimPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let ws = caller.workspace.as_str();
    with_book(&sim, ws, |b, _, now| {
        let r = sandbox_mut(b, &sandbox, now, &sim)?;
        let p = r
            .previews
            .get(&preview)
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        let wall = sim.clock.timestamp(now);
        let items = p
            .tokens
            .values()
            .map(|t| render_token(t, &preview, &sandbox, ws, wall))
            .collect();
        Ok(Json(Value::Array(items)))
    })
}

/// Random hex of `n` bytes.
fn random_hex(rng: &mut StdRng, n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rng.random::<u8>()).collect();
    hex_encode(&bytes)
}

/// `POST /sandboxes/{name}/previews/{preview}/tokens {metadata: {name}, spec: {expiresAt}}`: a token
/// expiring at `expiresAt` (even one already past: it is listed as expired), one hour from now without one.
/// An empty name is chosen by the server (`token-<16 hex digits>`).
pub async fn create_token(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview)): SimPath<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let ws = caller.workspace.as_str();
    let input = parse_token(&body)?;
    with_book(&sim, ws, |b, rng, now| {
        let r = sandbox_mut(b, &sandbox, now, &sim)?;
        let p = r
            .previews
            .get_mut(&preview)
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        let name = match input.name {
            Some(n) if p.tokens.contains_key(&n) => {
                return Err(ApiError::conflict(
                    "TOKEN_ALREADY_EXISTS",
                    format!("token {n:?} already exists on preview {preview:?}"),
                ));
            }
            Some(n) => n,
            None => loop {
                let n = format!("token-{}", random_hex(rng, 8));
                if !p.tokens.contains_key(&n) {
                    break n;
                }
            },
        };
        let wall = sim.clock.timestamp(now);
        let expires_at = match input.expires_at {
            Some(at) => at,
            None => sim.clock.timestamp(now.plus(DEFAULT_TOKEN_TTL)),
        };
        let t = TokenRecord {
            name: name.clone(),
            token: random_hex(rng, 16),
            expires_at,
        };
        let out = render_token(&t, &preview, &sandbox, ws, wall);
        p.tokens.insert(name, t);
        Ok(Json(out))
    })
}

/// `DELETE /sandboxes/{name}/previews/{preview}/tokens/{token}`: answers `{message}`. The path names the
/// token by its name or, as Blaxel's TypeScript SDK does (`preview.tokens.delete(token.value)`), by its value.
pub async fn delete_token(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview, token)): SimPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let ws = caller.workspace.as_str();
    with_book(&sim, ws, |b, _, now| {
        let r = sandbox_mut(b, &sandbox, now, &sim)?;
        let p = r
            .previews
            .get_mut(&preview)
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        let name = if p.tokens.contains_key(&token) {
            token
        } else {
            p.tokens
                .values()
                .find(|t| t.token == token)
                .map(|t| t.name.clone())
                .ok_or_else(|| {
                    ApiError::not_found(format!("no such token on preview {preview:?}"))
                })?
        };
        p.tokens.remove(&name);
        Ok(Json(json!({ "message": format!("token {name} deleted") })))
    })
}
