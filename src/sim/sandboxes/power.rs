//! Power in the 2025 generation (`PUT /sandboxes/{name}/start|stop`) and the control route's forced failure.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::record::Phase;
use super::render::{render, render_metadata};
use super::routes::with_sandbox;
use crate::sim::auth::Caller;
use crate::sim::body::SimPath;
use crate::sim::error::ApiError;
use crate::sim::state::Sim;

/// `PUT /sandboxes/{name}/start` (2025): answers `StartSandbox`; 409 when already running.
pub async fn start(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    power(&sim, &caller, &name, true)
}

/// `PUT /sandboxes/{name}/stop` (2025): answers `StopSandbox`; 409 when not running.
pub async fn stop(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    power(&sim, &caller, &name, false)
}

fn power(sim: &Sim, caller: &Caller, name: &str, on: bool) -> Result<Json<Value>, ApiError> {
    let cfg = &sim.config;
    with_sandbox(sim, &caller.workspace, name, |r, now| {
        let phase = r.phase(now, cfg);
        if phase.is_deleted() {
            return Err(ApiError::conflict(
                "SANDBOX_TERMINATING",
                format!("sandbox {name:?} is {}", phase.as_str()),
            ));
        }
        // A FAILED sandbox is not running: start retries it, stop is refused.
        let running = r.powered && phase != Phase::Failed;
        if on && running {
            return Err(ApiError::conflict(
                "SANDBOX_ALREADY_RUNNING",
                "Sandbox is already running",
            ));
        }
        if !on && !running {
            return Err(ApiError::conflict(
                "SANDBOX_NOT_RUNNING",
                "Sandbox is not running",
            ));
        }
        r.settle(now, cfg);
        if on && !r.powered {
            r.set_power(true, now);
        } else if on {
            // Restarting a failed sandbox.
            r.power_since = now;
            r.failure = None;
            r.last_used_at = now;
        } else {
            r.set_power(false, now);
        }
        r.updated_at = now;
        r.updated_by.clone_from(&caller.principal);
        r.settle(now, cfg);
        let status = r.phase(now, cfg).as_str();
        let message = if on {
            "Sandbox start initiated"
        } else {
            "Sandbox stop initiated"
        };
        Ok(Json(json!({
            "message": message,
            "metadata": render_metadata(r, &caller.workspace, sim),
            "status": status,
        })))
    })
}

/// Marks a sandbox `FAILED` now (control route); the rendered sandbox.
pub fn force_fail(
    sim: &Sim,
    workspace: &str,
    name: &str,
    message: String,
) -> Result<Value, ApiError> {
    with_sandbox(sim, workspace, name, |r, now| {
        if r.phase(now, &sim.config).is_deleted() {
            return Err(ApiError::conflict(
                "SANDBOX_TERMINATING",
                format!("sandbox {name:?} is deleted"),
            ));
        }
        r.settle(now, &sim.config);
        r.failure = Some((now, message));
        r.settle(now, &sim.config);
        Ok(render(r, workspace, now, sim))
    })
}
