//! The `/_sim/` routes about workspaces themselves: names held by another account, and forced failures.
//!
//! | route | what it does |
//! | --- | --- |
//! | `POST /_sim/workspaces/{ws}/foreign` | `ws` is now held by another account: not available, 409 on create, 403 to this account's keys |
//! | `DELETE /_sim/workspaces/{ws}/foreign` | the other account releases `ws` (404 if it held no such name) |
//! | `POST /_sim/workspaces/{ws}/fail` | `{"message"?}`: the workspace turns `error` now, with that `statusReason` |

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::MAX_NAME_LEN;
use super::render::render;
use crate::sim::body::{SimPath, field, parse_object};
use crate::sim::error::ApiError;
use crate::sim::state::{Sim, World};
use crate::sim::util::validate_name;

fn foreign_json(world: &World) -> Value {
    json!({ "foreign": world.foreign.iter().collect::<Vec<_>>() })
}

/// Marks `ws` as another account's; answers every such name. 409 when this account has a workspace of that
/// name (delete it first).
pub async fn add_foreign(
    State(sim): State<Arc<Sim>>,
    SimPath(ws): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    validate_name("workspace", &ws, MAX_NAME_LEN).map_err(ApiError::bad_request)?;
    let mut world = sim.world();
    if world.workspaces.contains_key(&ws) {
        return Err(ApiError::conflict(
            "WORKSPACE_ALREADY_EXISTS",
            format!("workspace {ws:?} belongs to this account; delete it first"),
        ));
    }
    world.foreign.insert(ws);
    Ok(Json(foreign_json(&world)))
}

/// The other account releases `ws`; answers the names still held. 404 when it held no such name.
pub async fn remove_foreign(
    State(sim): State<Arc<Sim>>,
    SimPath(ws): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    let mut world = sim.world();
    if !world.foreign.remove(&ws) {
        return Err(ApiError::not_found(format!(
            "no other account holds workspace {ws:?}"
        )));
    }
    Ok(Json(foreign_json(&world)))
}

/// Turns a workspace `error` now (`{"message"?}`, an empty body allowed); answers the workspace.
pub async fn fail(
    State(sim): State<Arc<Sim>>,
    SimPath(ws): SimPath<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        parse_object(&body)?
    };
    let message = field::opt_str(&body, "message", "message")?
        .unwrap_or("simulated failure")
        .to_owned();
    let now = sim.clock.now();
    let mut world = sim.world();
    let w = world
        .workspaces
        .get_mut(&ws)
        .ok_or_else(|| ApiError::not_found(format!("workspace {ws:?} not found")))?;
    w.meta.failure = Some((now, message));
    Ok(Json(render(&w.meta, now, &sim)))
}
