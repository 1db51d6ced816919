//! `GET/POST /sandboxes/{name}/previews` and `GET/PUT/DELETE /sandboxes/{name}/previews/{preview}`, and
//! the helpers the token routes share: reaching a workspace's sandboxes under the world lock, a live
//! sandbox, an existing preview.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use rand::rngs::StdRng;
use serde_json::Value;

use super::MAX_NAME_LEN;
use super::input::{SpecInput, parse_preview};
use super::record::{PreviewRecord, host, live, prefixed_label, render_preview, settle};
use crate::sim::auth::Caller;
use crate::sim::body::{JsonObject, SimPath, SimQuery};
use crate::sim::clock::SimTime;
use crate::sim::config::ApiGeneration;
use crate::sim::error::ApiError;
use crate::sim::sandboxes::{Phase, SandboxBook, SandboxRecord};
use crate::sim::state::Sim;
use crate::sim::util::validate_name;

/// Runs `f` on a workspace's sandboxes (purged of records past retention) and the world's random stream,
/// under the world lock.
pub(super) fn with_book<T>(
    sim: &Sim,
    workspace: &str,
    f: impl FnOnce(&mut SandboxBook, &mut StdRng, SimTime) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let now = sim.clock.now();
    let mut guard = sim.world();
    let world = &mut *guard;
    let w = world
        .workspaces
        .get_mut(workspace)
        .ok_or_else(|| ApiError::not_found(format!("workspace {workspace:?} not found")))?;
    w.sandboxes.purge(now, &sim.config);
    f(&mut w.sandboxes, &mut world.rng, now)
}

/// A sandbox that can still be seen (not gone), with its previews settled: 404 otherwise.
pub(super) fn sandbox_mut<'a>(
    b: &'a mut SandboxBook,
    name: &str,
    now: SimTime,
    sim: &Sim,
) -> Result<&'a mut SandboxRecord, ApiError> {
    match b.get_mut(name) {
        Some(r) if r.phase(now, &sim.config) != Phase::Gone => {
            settle(r, now, sim);
            Ok(r)
        }
        _ => Err(ApiError::not_found(format!("sandbox {name:?} not found"))),
    }
}

/// 404 for a preview.
pub(super) fn preview_not_found(sandbox: &str, preview: &str) -> ApiError {
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
    let ws = caller.workspace.as_str();
    with_book(&sim, ws, |b, _, now| {
        let r = sandbox_mut(b, &sandbox, now, &sim)?;
        let items = r
            .previews
            .values()
            .map(|p| render_preview(p, r, ws, &sim))
            .collect();
        Ok(Json(Value::Array(items)))
    })
}

/// `GET /sandboxes/{name}/previews/{preview}`.
pub async fn get(
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
        Ok(Json(render_preview(p, r, ws, &sim)))
    })
}

/// Query parameters of `POST /sandboxes/{name}/previews`.
#[derive(Debug, serde::Deserialize)]
pub struct CreateQuery {
    /// 2026: replace previews whose URL the new one would take.
    #[serde(default)]
    force: Option<String>,
}

/// `force`, read only in the 2026 generation (the 2025 definition has no such parameter).
fn force_of(query: &CreateQuery, sim: &Sim) -> Result<bool, ApiError> {
    if sim.config.generation != ApiGeneration::V2026 {
        return Ok(false);
    }
    match query.force.as_deref() {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "query parameter force must be true or false, got {other:?}"
        ))),
    }
}

/// The URL host of a spec, after checking that its first label fits DNS (63 characters).
fn checked_host(
    spec: &SpecInput,
    workspace: &str,
    sandbox: &str,
    preview: &str,
) -> Result<String, ApiError> {
    if let Some(prefix) = spec.prefix()
        && spec.custom_domain().is_none()
    {
        let label = prefixed_label(prefix, workspace);
        if label.len() > 63 {
            return Err(ApiError::bad_request(format!(
                "spec.prefixUrl {prefix:?} is too long: the URL's first label {label:?} would exceed 63 characters"
            )));
        }
    }
    Ok(host(&spec.fields, workspace, sandbox, preview))
}

/// The live previews of the workspace, other than `(sandbox, preview)`, that answer at `host`.
fn url_holders(
    b: &SandboxBook,
    host_name: &str,
    workspace: &str,
    (sandbox, preview): (&str, &str),
    now: SimTime,
    sim: &Sim,
) -> Vec<(String, String)> {
    b.iter()
        .flat_map(|r| live(r, now, sim).map(move |p| (r, p)))
        .filter(|(r, p)| !(r.name == sandbox && p.name == preview))
        .filter(|(r, p)| host(&p.spec, workspace, &r.name, &p.name) == host_name)
        .map(|(r, p)| (r.name.clone(), p.name.clone()))
        .collect()
}

/// 409 for a URL another preview holds.
fn url_taken(host_name: &str, holders: &[(String, String)]) -> ApiError {
    let (sandbox, preview) = holders.first().cloned().unwrap_or_default();
    ApiError::conflict(
        "PREVIEW_URL_CONFLICT",
        format!(
            "https://{host_name} is already the URL of preview {preview:?} of sandbox {sandbox:?}"
        ),
    )
}

/// When a preview created at `created` with this spec deletes itself: 400 if that is already past.
fn expiry(
    spec: &SpecInput,
    created: jiff::Timestamp,
    now: jiff::Timestamp,
) -> Result<Option<jiff::Timestamp>, ApiError> {
    let by_ttl = match spec.ttl {
        Some(ttl) => Some(
            created
                .checked_add(ttl)
                .map_err(|_| ApiError::bad_request("spec.ttl is too long"))?,
        ),
        None => None,
    };
    let at = match (by_ttl, spec.expires) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match at {
        Some(at) if at <= now => Err(ApiError::bad_request(format!(
            "the preview would already be expired (at {at}, from spec.ttl counted from its creation and spec.expires)"
        ))),
        _ => Ok(at),
    }
}

/// `POST /sandboxes/{name}/previews[?force=true]`.
pub async fn create(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(sandbox): SimPath<String>,
    SimQuery(query): SimQuery<CreateQuery>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let ws = caller.workspace.as_str();
    let input = parse_preview(&body)?;
    let name = input
        .name
        .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?;
    validate_name("preview", &name, MAX_NAME_LEN).map_err(ApiError::bad_request)?;
    let force = force_of(&query, &sim)?;
    let spec = input.spec.unwrap_or_default();
    with_book(&sim, ws, |b, _, now| {
        let r = sandbox_mut(b, &sandbox, now, &sim)?;
        let phase = r.phase(now, &sim.config);
        if phase.is_deleted() {
            return Err(ApiError::conflict(
                "SANDBOX_TERMINATING",
                format!("sandbox {sandbox:?} is {}", phase.as_str()),
            ));
        }
        if r.previews.contains_key(&name) {
            return Err(ApiError::conflict(
                "PREVIEW_ALREADY_EXISTS",
                format!("preview {name:?} already exists on sandbox {sandbox:?}"),
            ));
        }
        let wall = sim.clock.timestamp(now);
        let expires_at = expiry(&spec, wall, wall)?;
        let host_name = checked_host(&spec, ws, &sandbox, &name)?;
        let holders = url_holders(b, &host_name, ws, (&sandbox, &name), now, &sim);
        if !holders.is_empty() {
            if !force {
                return Err(url_taken(&host_name, &holders));
            }
            for (s, p) in &holders {
                if let Some(r) = b.get_mut(s) {
                    r.previews.remove(p);
                }
            }
        }
        let p = PreviewRecord {
            name: name.clone(),
            display_name: input.display_name,
            spec: spec.fields,
            expires_at,
            created_at: now,
            created_by: caller.principal.clone(),
            updated_at: now,
            updated_by: caller.principal.clone(),
            tokens: BTreeMap::new(),
        };
        let r = sandbox_mut(b, &sandbox, now, &sim)?;
        let out = render_preview(&p, r, ws, &sim);
        r.previews.insert(name, p);
        Ok(Json(out))
    })
}

/// `PUT /sandboxes/{name}/previews/{preview}`: replaces the spec (when given, as a whole) and the display
/// name (when given); `ttl` keeps counting from the preview's creation.
pub async fn update(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview)): SimPath<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let ws = caller.workspace.as_str();
    let input = parse_preview(&body)?;
    if let Some(n) = &input.name
        && n != &preview
    {
        return Err(ApiError::bad_request(format!(
            "metadata.name {n:?} does not match the preview in the path ({preview:?}); names are immutable"
        )));
    }
    with_book(&sim, ws, |b, _, now| {
        let mut p = sandbox_mut(b, &sandbox, now, &sim)?
            .previews
            .get(&preview)
            .cloned()
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        if let Some(spec) = input.spec {
            let wall = sim.clock.timestamp(now);
            p.expires_at = expiry(&spec, sim.clock.timestamp(p.created_at), wall)?;
            let host_name = checked_host(&spec, ws, &sandbox, &preview)?;
            let holders = url_holders(b, &host_name, ws, (&sandbox, &preview), now, &sim);
            if !holders.is_empty() {
                return Err(url_taken(&host_name, &holders));
            }
            p.spec = spec.fields;
        }
        if let Some(d) = input.display_name {
            p.display_name = Some(d);
        }
        p.updated_at = now;
        p.updated_by.clone_from(&caller.principal);
        let r = sandbox_mut(b, &sandbox, now, &sim)?;
        let out = render_preview(&p, r, ws, &sim);
        r.previews.insert(preview.clone(), p);
        Ok(Json(out))
    })
}

/// `DELETE /sandboxes/{name}/previews/{preview}`: answers the deleted preview (its tokens go with it).
pub async fn delete(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((sandbox, preview)): SimPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let ws = caller.workspace.as_str();
    with_book(&sim, ws, |b, _, now| {
        let r = sandbox_mut(b, &sandbox, now, &sim)?;
        let p = r
            .previews
            .remove(&preview)
            .ok_or_else(|| preview_not_found(&sandbox, &preview))?;
        Ok(Json(render_preview(&p, r, ws, &sim)))
    })
}
