//! Sandbox previews and their tokens: `GET/POST /sandboxes/{name}/previews`,
//! `GET/PUT/DELETE /sandboxes/{name}/previews/{preview}`, `GET/POST .../previews/{preview}/tokens` and
//! `DELETE .../tokens/{token}`.
//!
//! Previews live inside their sandbox's record and disappear with it. Writes to the previews of a deleted
//! (`DELETING`/`TERMINATED`) sandbox answer 409; reads still work while the sandbox is visible. A token's
//! `expired` flag is computed from the simulator clock; `spec.expiresAt` defaults to one hour from creation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use rand::Rng;
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::body::{JsonObject, SimPath, field};
use super::clock::SimTime;
use super::config::ApiGeneration;
use super::error::ApiError;
use super::sandboxes::{SandboxRecord, with_sandbox};
use super::state::Sim;
use super::util::{hex_encode, validate_name};

/// Longest preview or token name.
pub const MAX_NAME_LEN: usize = 63;
/// Token lifetime when the request gives no `expiresAt`.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// One preview.
#[derive(Debug, Clone)]
pub struct PreviewRecord {
    /// Name, unique within the sandbox.
    pub name: String,
    /// `metadata.displayName`, when set.
    pub display_name: Option<String>,
    /// The spec as written (server fields `url` and `region` are added when rendering).
    pub spec: Map<String, Value>,
    /// Creation time.
    pub created_at: SimTime,
    /// Creator.
    pub created_by: String,
    /// Last update.
    pub updated_at: SimTime,
    /// Last updater.
    pub updated_by: String,
    /// Tokens by name.
    pub tokens: BTreeMap<String, TokenRecord>,
}

/// One preview token.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Name, unique within the preview.
    pub name: String,
    /// The secret value.
    pub token: String,
    /// Expiry (simulator time).
    pub expires_at: SimTime,
}

fn render_preview(p: &PreviewRecord, sbx: &SandboxRecord, workspace: &str, sim: &Sim) -> Value {
    let c = &sim.clock;
    let mut spec = p.spec.clone();
    let host = match spec.get("prefixUrl").and_then(Value::as_str) {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}-{workspace}"),
        _ => format!("{}-{}-{workspace}", p.name, sbx.name),
    };
    spec.insert(
        "url".into(),
        json!(format!("https://{host}.preview.bl.run")),
    );
    spec.insert("region".into(), json!(sbx.region()));
    let mut out = json!({
        "metadata": {
            "name": p.name,
            "displayName": p.display_name.as_deref().unwrap_or(&p.name),
            "resourceName": sbx.name,
            "resourceType": "sandbox",
            "workspace": workspace,
            "createdAt": c.rfc3339(p.created_at),
            "updatedAt": c.rfc3339(p.updated_at),
            "createdBy": p.created_by,
            "updatedBy": p.updated_by,
        },
        "spec": spec,
    });
    if sim.config.generation == ApiGeneration::V2026
        && let Value::Object(m) = &mut out
    {
        m.insert("status".into(), json!("DEPLOYED"));
    }
    out
}

fn render_token(
    t: &TokenRecord,
    preview: &str,
    sandbox: &str,
    workspace: &str,
    now: SimTime,
    sim: &Sim,
) -> Value {
    json!({
        "metadata": {
            "name": t.name,
            "previewName": preview,
            "resourceName": sandbox,
            "resourceType": "sandbox",
            "workspace": workspace,
        },
        "spec": {
            "expiresAt": sim.clock.rfc3339(t.expires_at),
            "token": t.token,
            "expired": now >= t.expires_at,
        },
    })
}

/// Validated preview body.
struct PreviewInput {
    name: Option<String>,
    display_name: Option<String>,
    spec: Option<Map<String, Value>>,
}

fn parse_preview(body: &Map<String, Value>) -> Result<PreviewInput, ApiError> {
    let mut input = PreviewInput {
        name: None,
        display_name: None,
        spec: None,
    };
    if let Some(meta) = field::opt_obj(body, "metadata", "metadata")? {
        input.name = field::opt_str(meta, "name", "metadata.name")?.map(str::to_owned);
        input.display_name =
            field::opt_str(meta, "displayName", "metadata.displayName")?.map(str::to_owned);
    }
    if let Some(spec) = field::opt_obj(body, "spec", "spec")? {
        if let Some(port) = field::opt_uint(spec, "port", "spec.port")?
            && !(1..=65_535).contains(&port)
        {
            return Err(ApiError::bad_request(
                "spec.port must be a port number (1-65535)",
            ));
        }
        field::opt_bool(spec, "public", "spec.public")?;
        field::opt_str(spec, "prefixUrl", "spec.prefixUrl")?;
        field::opt_str(spec, "customDomain", "spec.customDomain")?;
        field::opt_str(spec, "ttl", "spec.ttl")?;
        field::opt_str(spec, "expires", "spec.expires")?;
        field::opt_string_map(spec, "requestHeaders", "spec.requestHeaders")?;
        field::opt_string_map(spec, "responseHeaders", "spec.responseHeaders")?;
        let mut spec = spec.clone();
        // Read-only fields are the server's to set.
        spec.remove("url");
        spec.remove("region");
        input.spec = Some(spec);
    }
    Ok(input)
}

fn refuse_if_deleted(r: &SandboxRecord, now: SimTime, sim: &Sim) -> Result<(), ApiError> {
    let phase = r.phase(now, &sim.config);
    if phase.is_deleted() {
        return Err(ApiError::conflict(
            "SANDBOX_TERMINATING",
            format!("sandbox {:?} is {}", r.name, phase.as_str()),
        ));
    }
    Ok(())
}

fn preview_not_found(sandbox: &str, preview: &str) -> ApiError {
    ApiError::not_found(format!(
        "preview {preview:?} not found on sandbox {sandbox:?}"
    ))
}

/// `GET /sandboxes/{name}/previews`.
pub async fn list(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(sandbox): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    with_sandbox(&sim, &caller.workspace, &sandbox, |r, _| {
        let items = r
            .previews
            .values()
            .map(|p| render_preview(p, r, &caller.workspace, &sim))
            .collect();
        Ok(Json(Value::Array(items)))
    })
}

/// `POST /sandboxes/{name}/previews`.
pub async fn create(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(sandbox): SimPath<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let input = parse_preview(&body)?;
    let name = input
        .name
        .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?;
    validate_name("preview", &name, MAX_NAME_LEN).map_err(ApiError::bad_request)?;
    with_sandbox(&sim, &caller.workspace, &sandbox, |r, now| {
        refuse_if_deleted(r, now, &sim)?;
        if r.previews.contains_key(&name) {
            return Err(ApiError::conflict(
                "PREVIEW_ALREADY_EXISTS",
                format!("preview {name:?} already exists on sandbox {sandbox:?}"),
            ));
        }
        let p = PreviewRecord {
            name: name.clone(),
            display_name: input.display_name,
            spec: input.spec.unwrap_or_default(),
            created_at: now,
            created_by: caller.principal.clone(),
            updated_at: now,
            updated_by: caller.principal.clone(),
            tokens: BTreeMap::new(),
        };
        let out = render_preview(&p, r, &caller.workspace, &sim);
        r.previews.insert(name, p);
        Ok(Json(out))
    })
}

/// `GET /sandboxes/{name}/previews/{preview}`.
pub async fn get(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview)): SimPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    with_sandbox(&sim, &caller.workspace, &sandbox, |r, _| {
        let p = r
            .previews
            .get(&preview)
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        Ok(Json(render_preview(p, r, &caller.workspace, &sim)))
    })
}

/// `PUT /sandboxes/{name}/previews/{preview}`: replaces the spec (when given) and display name.
pub async fn update(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview)): SimPath<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let input = parse_preview(&body)?;
    if let Some(n) = &input.name
        && n != &preview
    {
        return Err(ApiError::bad_request(format!(
            "metadata.name {n:?} does not match the preview in the path ({preview:?})"
        )));
    }
    with_sandbox(&sim, &caller.workspace, &sandbox, |r, now| {
        refuse_if_deleted(r, now, &sim)?;
        let mut p = r
            .previews
            .get(&preview)
            .cloned()
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        if let Some(spec) = input.spec {
            p.spec = spec;
        }
        if let Some(d) = input.display_name {
            p.display_name = Some(d);
        }
        p.updated_at = now;
        p.updated_by.clone_from(&caller.principal);
        let out = render_preview(&p, r, &caller.workspace, &sim);
        r.previews.insert(preview.clone(), p);
        Ok(Json(out))
    })
}

/// `DELETE /sandboxes/{name}/previews/{preview}`: answers the deleted preview.
pub async fn delete(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview)): SimPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    with_sandbox(&sim, &caller.workspace, &sandbox, |r, _| {
        let p = r
            .previews
            .remove(&preview)
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        Ok(Json(render_preview(&p, r, &caller.workspace, &sim)))
    })
}

/// `GET /sandboxes/{name}/previews/{preview}/tokens`.
pub async fn list_tokens(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview)): SimPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    with_sandbox(&sim, &caller.workspace, &sandbox, |r, now| {
        let p = r
            .previews
            .get(&preview)
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        let items = p
            .tokens
            .values()
            .map(|t| render_token(t, &preview, &sandbox, &caller.workspace, now, &sim))
            .collect();
        Ok(Json(Value::Array(items)))
    })
}

/// `POST /sandboxes/{name}/previews/{preview}/tokens {metadata: {name}, spec: {expiresAt}}`.
pub async fn create_token(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview)): SimPath<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let meta = field::opt_obj(&body, "metadata", "metadata")?;
    let name = meta
        .map(|m| field::opt_str(m, "name", "metadata.name"))
        .transpose()?
        .flatten()
        .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?
        .to_owned();
    validate_name("token", &name, MAX_NAME_LEN).map_err(ApiError::bad_request)?;
    let expires = match field::opt_obj(&body, "spec", "spec")? {
        Some(spec) => match field::opt_str(spec, "expiresAt", "spec.expiresAt")? {
            Some(s) => Some(s.parse::<jiff::Timestamp>().map_err(|e| {
                ApiError::bad_request(format!(
                    "spec.expiresAt {s:?} is not an RFC 3339 timestamp: {e}"
                ))
            })?),
            None => None,
        },
        None => None,
    };
    let secret = {
        let mut world = sim.world();
        let bytes: [u8; 16] = world.rng.random();
        hex_encode(&bytes)
    };
    with_sandbox(&sim, &caller.workspace, &sandbox, |r, now| {
        refuse_if_deleted(r, now, &sim)?;
        let p = r
            .previews
            .get_mut(&preview)
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        if p.tokens.contains_key(&name) {
            return Err(ApiError::conflict(
                "TOKEN_ALREADY_EXISTS",
                format!("token {name:?} already exists on preview {preview:?}"),
            ));
        }
        let expires_at = expires.map_or(now.plus(DEFAULT_TOKEN_TTL), |ts| {
            sim.clock.from_timestamp(ts)
        });
        let t = TokenRecord {
            name: name.clone(),
            token: secret,
            expires_at,
        };
        let out = render_token(&t, &preview, &sandbox, &caller.workspace, now, &sim);
        p.tokens.insert(name, t);
        Ok(Json(out))
    })
}

/// `DELETE /sandboxes/{name}/previews/{preview}/tokens/{token}`: answers `{message}`.
pub async fn delete_token(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview, token)): SimPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    with_sandbox(&sim, &caller.workspace, &sandbox, |r, _| {
        let p = r
            .previews
            .get_mut(&preview)
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        p.tokens.remove(&token).ok_or_else(|| {
            ApiError::not_found(format!("token {token:?} not found on preview {preview:?}"))
        })?;
        Ok(Json(json!({ "message": format!("token {token} deleted") })))
    })
}

/// Every preview of a sandbox with its tokens (for `GET /_sim/state`).
#[must_use]
pub fn render_all(r: &SandboxRecord, workspace: &str, now: SimTime, sim: &Sim) -> Vec<Value> {
    r.previews
        .values()
        .map(|p| {
            let mut v = render_preview(p, r, workspace, sim);
            if let Value::Object(m) = &mut v {
                let tokens = p
                    .tokens
                    .values()
                    .map(|t| render_token(t, &p.name, &r.name, workspace, now, sim))
                    .collect();
                m.insert("tokens".into(), Value::Array(tokens));
            }
            v
        })
        .collect()
}
