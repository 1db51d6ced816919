//! `GET/POST /workspaces`, `GET/PUT/DELETE /workspaces/{name}` and `POST /workspaces/availability`.
//!
//! Who may do what ([`KeyScope`]): an account key lists, reads, creates, updates and deletes the account's
//! workspaces; a workspace key lists and reads its own workspace and updates it, and gets 403 for anything
//! else. Both may check availability. A name held by another account answers 403 to every key of this one
//! (it exists, and they have no access to it); a name nobody holds answers 404 to an account key and 403 to
//! a workspace key (which has no access to any other workspace, existing or not).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::MAX_NAME_LEN;
use super::input::parse;
use super::names::{Unavailable, unavailable};
use super::record::WorkspaceRecord;
use super::render::{render, resource_counts};
use crate::sim::auth::{KeyHolder, KeyScope};
use crate::sim::body::{JsonObject, SimPath, SimQuery, field};
use crate::sim::config::ApiGeneration;
use crate::sim::error::ApiError;
use crate::sim::state::{Sim, Workspace, World};
use crate::sim::util::validate_name;

/// What a request does to a named workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Read,
    Update,
    Delete,
}

/// Checks that `holder` may do `action` to the workspace `name`: 403 or 404 otherwise.
fn check_access(
    holder: &KeyHolder,
    world: &World,
    name: &str,
    action: Action,
) -> Result<(), ApiError> {
    if world.foreign.contains(name) {
        return Err(ApiError::forbidden(format!(
            "you do not have access to workspace {name:?}: it belongs to another account"
        )));
    }
    match &holder.scope {
        KeyScope::Workspace(own) if own != name => Err(ApiError::forbidden(format!(
            "this API key is not allowed to access workspace {name:?}"
        ))),
        KeyScope::Workspace(_) if action == Action::Delete => Err(ApiError::forbidden(
            "insufficient permissions: only an account key can delete a workspace",
        )),
        KeyScope::Workspace(_) => Ok(()),
        KeyScope::Account if world.workspaces.contains_key(name) => Ok(()),
        KeyScope::Account => Err(ApiError::not_found(format!("workspace {name:?} not found"))),
    }
}

/// The workspace `name`, once access is checked.
fn workspace<'a>(world: &'a mut World, name: &str) -> Result<&'a mut Workspace, ApiError> {
    world
        .workspaces
        .get_mut(name)
        .ok_or_else(|| ApiError::not_found(format!("workspace {name:?} not found")))
}

/// `GET /workspaces`: every workspace of the account (account key) or the key's own (workspace key), by name.
pub async fn list(State(sim): State<Arc<Sim>>, holder: KeyHolder) -> Result<Json<Value>, ApiError> {
    let now = sim.clock.now();
    let world = sim.world();
    let items = world
        .workspaces
        .values()
        .filter(|w| match &holder.scope {
            KeyScope::Account => true,
            KeyScope::Workspace(own) => own == &w.meta.name,
        })
        .map(|w| render(&w.meta, now, &sim))
        .collect();
    Ok(Json(Value::Array(items)))
}

/// `POST /workspaces`: creates a workspace of the account (account keys only), `created` at first.
pub async fn create(
    State(sim): State<Arc<Sim>>,
    holder: KeyHolder,
    body: Result<JsonObject, ApiError>,
) -> Result<Json<Value>, ApiError> {
    if holder.scope != KeyScope::Account {
        return Err(ApiError::forbidden(
            "insufficient permissions: only an account key can create workspaces",
        ));
    }
    let JsonObject(body) = body?;
    let input = parse(&body, sim.config.generation)?;
    let name = input
        .name
        .clone()
        .ok_or_else(|| ApiError::bad_request("field name is required"))?;
    validate_name("workspace", &name, MAX_NAME_LEN).map_err(ApiError::bad_request)?;
    let now = sim.clock.now();
    let mut world = sim.world();
    match unavailable(&world, &name) {
        None => {}
        Some(Unavailable::Taken) => {
            return Err(ApiError::conflict(
                "WORKSPACE_ALREADY_EXISTS",
                format!("a workspace named {name:?} already exists"),
            ));
        }
        Some(why) => return Err(ApiError::bad_request(why.message(&name))),
    }
    let seq = world.next_seq();
    let mut record = WorkspaceRecord::new(
        &name,
        WorkspaceRecord::created_id(&name, seq),
        now,
        &holder.principal,
    );
    input.apply(&mut record, now, &holder.principal);
    let out = render(&record, now, &sim);
    world.workspaces.insert(name, Workspace::new(record));
    Ok(Json(out))
}

/// `GET /workspaces/{name}`; in the 2026 generation `?countResources=true` adds `resourceCounts`.
#[allow(
    clippy::implicit_hasher,
    reason = "the query extractor's concrete map type"
)]
pub async fn get(
    State(sim): State<Arc<Sim>>,
    holder: KeyHolder,
    SimPath(name): SimPath<String>,
    SimQuery(q): SimQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let count = sim.config.generation == ApiGeneration::V2026 && query_flag(&q, "countResources")?;
    let now = sim.clock.now();
    let mut world = sim.world();
    check_access(&holder, &world, &name, Action::Read)?;
    let w = workspace(&mut world, &name)?;
    w.sandboxes.purge(now, &sim.config);
    let mut out = render(&w.meta, now, &sim);
    if count && let Value::Object(m) = &mut out {
        m.insert("resourceCounts".into(), resource_counts(w, now, &sim));
    }
    Ok(Json(out))
}

/// `PUT /workspaces/{name}`: writes the fields the body carries (the name cannot change), keeps the rest.
pub async fn update(
    State(sim): State<Arc<Sim>>,
    holder: KeyHolder,
    SimPath(name): SimPath<String>,
    body: Result<JsonObject, ApiError>,
) -> Result<Json<Value>, ApiError> {
    {
        let world = sim.world();
        check_access(&holder, &world, &name, Action::Update)?;
    }
    let JsonObject(body) = body?;
    let input = parse(&body, sim.config.generation)?;
    if let Some(n) = &input.name
        && n != &name
    {
        return Err(ApiError::bad_request(format!(
            "field name {n:?} does not match the workspace in the path ({name:?}); a workspace cannot be renamed"
        )));
    }
    let now = sim.clock.now();
    let mut world = sim.world();
    // Checked again: the workspace may have gone while the body was read.
    check_access(&holder, &world, &name, Action::Update)?;
    let w = workspace(&mut world, &name)?;
    input.apply(&mut w.meta, now, &holder.principal);
    Ok(Json(render(&w.meta, now, &sim)))
}

/// `DELETE /workspaces/{name}` (account keys only): removes the workspace and everything in it at once;
/// answers the workspace as it was.
pub async fn delete(
    State(sim): State<Arc<Sim>>,
    holder: KeyHolder,
    SimPath(name): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    let now = sim.clock.now();
    let mut world = sim.world();
    check_access(&holder, &world, &name, Action::Delete)?;
    let w = world
        .workspaces
        .remove(&name)
        .ok_or_else(|| ApiError::not_found(format!("workspace {name:?} not found")))?;
    Ok(Json(render(&w.meta, now, &sim)))
}

/// `POST /workspaces/availability {"name"}`: a bare boolean, or in the 2026 generation with
/// `?withReason=true` a `WorkspaceAvailability` (`reason` and `message` only when unavailable).
#[allow(
    clippy::implicit_hasher,
    reason = "the query extractor's concrete map type"
)]
pub async fn availability(
    State(sim): State<Arc<Sim>>,
    _holder: KeyHolder,
    SimQuery(q): SimQuery<HashMap<String, String>>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let with_reason =
        sim.config.generation == ApiGeneration::V2026 && query_flag(&q, "withReason")?;
    let name = field::opt_str(&body, "name", "name")?
        .ok_or_else(|| ApiError::bad_request("field name is required"))?;
    validate_name("workspace", name, MAX_NAME_LEN).map_err(ApiError::bad_request)?;
    let why = {
        let world = sim.world();
        unavailable(&world, name)
    };
    if !with_reason {
        return Ok(Json(json!(why.is_none())));
    }
    let mut m = Map::new();
    m.insert("available".into(), json!(why.is_none()));
    if let Some(why) = why {
        m.insert("reason".into(), json!(why.reason()));
        m.insert("message".into(), json!(why.message(name)));
    }
    Ok(Json(Value::Object(m)))
}

/// A boolean query parameter: absent, empty, `false` or `0` is false; `true` or `1` true; else 400.
fn query_flag(q: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(v) => Err(ApiError::bad_request(format!(
            "invalid {key} {v:?}: expected true or false"
        ))),
    }
}
