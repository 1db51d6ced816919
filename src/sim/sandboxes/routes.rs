//! `POST /sandboxes`, `GET/PUT/DELETE /sandboxes/{name}`, and the helpers other routes use to reach one
//! workspace's sandboxes under the world lock.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::MAX_NAME_LEN;
use super::input::{check_image, image_of, memory_of, normalize_spec, parse_input};
use super::record::{Phase, SandboxBook, SandboxRecord};
use super::render::{render, render_revealed};
use crate::sim::auth::Caller;
use crate::sim::body::{JsonObject, SimPath, SimQuery};
use crate::sim::clock::SimTime;
use crate::sim::config::SimConfig;
use crate::sim::error::{ApiError, SandboxErrorContext};
use crate::sim::state::{Sim, World};
use crate::sim::util::validate_name;

/// The context of a create-sandbox error body.
pub(super) fn sandbox_ctx(name: Option<&str>, workspace: &str, sim: &Sim) -> SandboxErrorContext {
    SandboxErrorContext {
        sandbox_name: name.map(str::to_owned),
        workspace: Some(workspace.to_owned()),
        timestamp: Some(sim.clock.rfc3339(sim.clock.now())),
        step: Some("validate_and_prepare"),
        details: None,
    }
}

/// 404 for a sandbox name.
pub(super) fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("sandbox {name:?} not found"))
}

/// A workspace's sandboxes, purged of records past retention; 404 for an unknown workspace.
pub(super) fn book<'a>(
    world: &'a mut World,
    ws: &str,
    now: SimTime,
    cfg: &SimConfig,
) -> Result<&'a mut SandboxBook, ApiError> {
    let w = world
        .workspaces
        .get_mut(ws)
        .ok_or_else(|| ApiError::not_found(format!("workspace {ws:?} not found")))?;
    w.sandboxes.purge(now, cfg);
    Ok(&mut w.sandboxes)
}

/// Runs `f` on a live (not gone) sandbox under the world lock.
pub fn with_sandbox<T>(
    sim: &Sim,
    workspace: &str,
    name: &str,
    f: impl FnOnce(&mut SandboxRecord, SimTime) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let now = sim.clock.now();
    let mut world = sim.world();
    let b = book(&mut world, workspace, now, &sim.config)?;
    let r = b.get_mut(name).ok_or_else(|| not_found(name))?;
    if r.phase(now, &sim.config) == Phase::Gone {
        return Err(not_found(name));
    }
    f(r, now)
}

/// Query parameters of `POST /sandboxes`.
#[derive(Debug, serde::Deserialize)]
pub struct CreateQuery {
    #[serde(rename = "createIfNotExist", default)]
    create_if_not_exist: Option<String>,
}

/// `POST /sandboxes`. Errors use the create-sandbox error body.
pub async fn create(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimQuery(query): SimQuery<CreateQuery>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let ws = caller.workspace.as_str();
    let input = parse_input(&body).map_err(|e| e.with_sandbox(sandbox_ctx(None, ws, &sim)))?;
    let name = input.name.clone().ok_or_else(|| {
        ApiError::bad_request("metadata.name is required").with_sandbox(sandbox_ctx(None, ws, &sim))
    })?;
    validate_name("sandbox", &name, MAX_NAME_LEN).map_err(|m| {
        ApiError::new(axum::http::StatusCode::BAD_REQUEST, "INVALID_NAME", m)
            .with_sandbox(sandbox_ctx(Some(&name), ws, &sim))
    })?;
    if let Some(image) = input.spec.as_ref().and_then(image_of) {
        check_image(image).map_err(|e| {
            let mut ctx = sandbox_ctx(Some(&name), ws, &sim);
            ctx.details = Some(json!({ "requested_image": image }));
            e.with_sandbox(ctx)
        })?;
    }
    let create_if_not_exist = query
        .create_if_not_exist
        .is_some_and(|v| v == "true" || v == "1");
    let now = sim.clock.now();
    let cfg = &sim.config;
    let mut world = sim.world();
    let seq = world.next_seq();
    let b = book(&mut world, ws, now, cfg)?;
    if let Some(existing) = b.get(&name) {
        match existing.phase(now, cfg) {
            Phase::Terminated | Phase::Failed | Phase::Gone => {}
            Phase::Deleting => {
                return Err(ApiError::conflict(
                    "SANDBOX_ALREADY_EXISTS",
                    format!("sandbox {name:?} already exists and is being deleted"),
                )
                .with_sandbox(sandbox_ctx(Some(&name), ws, &sim)));
            }
            _ if create_if_not_exist => return Ok(Json(render(existing, ws, now, &sim))),
            _ => {
                return Err(ApiError::conflict(
                    "SANDBOX_ALREADY_EXISTS",
                    format!("sandbox {name:?} already exists in workspace {ws:?}"),
                )
                .with_sandbox(sandbox_ctx(Some(&name), ws, &sim)));
            }
        }
    }
    let spec = normalize_spec(input.spec.unwrap_or_default(), cfg);
    let powered = spec.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    let doomed = image_of(&spec).is_some_and(|i| cfg.failing_images.iter().any(|f| f == i));
    let record = SandboxRecord {
        name: name.clone(),
        display_name: input.display_name,
        labels: input.labels.unwrap_or_default(),
        external_id: input.external_id,
        spec,
        created_at: now,
        created_by: caller.principal.clone(),
        updated_at: now,
        updated_by: caller.principal.clone(),
        seq,
        powered,
        power_since: now,
        never_started: !powered,
        doomed,
        failure: None,
        deleted_at: None,
        last_used_at: now,
        previews: BTreeMap::new(),
        events: Vec::new(),
    };
    let mut record = record;
    record.settle(now, cfg);
    let out = render(&record, ws, now, &sim);
    b.insert(record, cfg);
    Ok(Json(out))
}

/// Query parameters of `GET /sandboxes/{name}`.
#[derive(Debug, serde::Deserialize)]
pub struct GetQuery {
    /// Show secret values (the definitions: admin only; the simulator has no roles for keys and shows
    /// them to any caller that asks).
    #[serde(default)]
    show_secrets: Option<String>,
}

/// `GET /sandboxes/{name}`: secret values masked unless `show_secrets=true`.
pub async fn get(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
    SimQuery(query): SimQuery<GetQuery>,
) -> Result<Json<Value>, ApiError> {
    let reveal = query.show_secrets.as_deref() == Some("true");
    let found = with_sandbox(&sim, &caller.workspace, &name, |r, now| {
        Ok(Json(if reveal {
            render_revealed(r, &caller.workspace, now, &sim)
        } else {
            render(r, &caller.workspace, now, &sim)
        }))
    });
    if found.is_err() {
        // No live sandbox of that name: a raw record a test added under it answers instead.
        let world = sim.world();
        let raw = world.workspaces.get(&caller.workspace);
        if let Some(raw) = raw.and_then(|w| w.malformed.sandbox(&name)) {
            return Ok(Json(raw.clone()));
        }
    }
    found
}

/// The raw sandbox records a test added to a workspace's listings (`/_sim/workspaces/{ws}/malformed`).
pub(super) fn malformed_sandboxes(world: &World, ws: &str) -> Vec<Value> {
    world
        .workspaces
        .get(ws)
        .map(|w| w.malformed.sandboxes.clone())
        .unwrap_or_default()
}

/// `PUT /sandboxes/{name}`.
pub async fn update(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let input = parse_input(&body)?;
    if let Some(n) = &input.name
        && n != &name
    {
        return Err(ApiError::bad_request(format!(
            "metadata.name {n:?} does not match the sandbox in the path ({name:?}); names are immutable"
        )));
    }
    let cfg = &sim.config;
    with_sandbox(&sim, &caller.workspace, &name, |r, now| {
        let phase = r.phase(now, cfg);
        if phase.is_deleted() {
            return Err(ApiError::conflict(
                "SANDBOX_TERMINATING",
                format!(
                    "sandbox {name:?} is {} and cannot be updated",
                    phase.as_str()
                ),
            ));
        }
        r.settle(now, cfg);
        if let Some(spec) = input.spec {
            let mut spec = spec;
            let requested_power = spec.get("enabled").and_then(Value::as_bool);
            if requested_power.is_none()
                && let Some(old) = r.spec.get("enabled").cloned()
            {
                // Absent `enabled` keeps the current setting (and power) rather than defaulting to true.
                spec.insert("enabled".into(), old);
            }
            if let Some(image) = image_of(&spec) {
                check_image(image)?;
            }
            let spec = normalize_spec(spec, cfg);
            let redeploy =
                image_of(&spec) != image_of(&r.spec) || memory_of(&spec) != memory_of(&r.spec);
            if let Some(on) = requested_power
                && on != r.spec_enabled()
            {
                r.set_power(on, now);
            } else if redeploy && r.powered {
                r.power_since = now;
                r.failure = None;
            }
            r.doomed = image_of(&spec).is_some_and(|i| cfg.failing_images.iter().any(|f| f == i));
            r.spec = spec;
        }
        if let Some(labels) = input.labels {
            r.labels = labels;
        }
        if let Some(d) = input.display_name {
            r.display_name = Some(d);
        }
        if let Some(x) = input.external_id {
            r.external_id = Some(x);
        }
        r.updated_at = now;
        r.updated_by.clone_from(&caller.principal);
        r.settle(now, cfg);
        Ok(Json(render(r, &caller.workspace, now, &sim)))
    })
}

/// `DELETE /sandboxes/{name}`: answers the sandbox, now `DELETING`.
pub async fn delete(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    let now = sim.clock.now();
    let cfg = &sim.config;
    let mut world = sim.world();
    let b = book(&mut world, &caller.workspace, now, cfg)?;
    match b.get_mut(&name) {
        Some(r) if r.phase(now, cfg) != Phase::Gone => r.settle(now, cfg),
        _ => return Err(not_found(&name)),
    }
    b.mark_deleted(&name, now, cfg);
    let r = b.get_mut(&name).ok_or_else(|| not_found(&name))?;
    r.settle(now, cfg);
    Ok(Json(render(r, &caller.workspace, now, &sim)))
}
