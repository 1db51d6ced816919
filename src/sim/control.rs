//! `/_sim/`: introspection and control of the simulator, without authentication and never subject to
//! injected faults. Tests and benchmarks use these routes instead of sleeping or guessing.
//!
//! | route | what it does |
//! | --- | --- |
//! | `GET /_sim/health` | `{"ok": true}` |
//! | `GET /_sim/stats` | request counters (see [`super::stats::Stats::snapshot`]) |
//! | `POST /_sim/stats/reset` | zeroes the counters |
//! | `GET /_sim/state` | the whole world as JSON (workspaces with their record, users, sandboxes, previews, tokens, integration connections with their secret values, malformed records; names held by other accounts) |
//! | `POST /_sim/reset` | forgets all objects, counters and runtime fault changes (the clock keeps its time) |
//! | `GET /_sim/faults`, `PUT /_sim/faults` | reads / changes faults at run time (partial updates) |
//! | `GET/POST/DELETE /_sim/faults/script` | lists / appends / clears scripted faults: `{"route"?, "status" \| "drop": true, "times"?, "retryAfterMs"?}` |
//! | `GET /_sim/clock` | `{"nowMs", "now"}` |
//! | `POST /_sim/clock/advance` | `{"seconds": N}` or `{"ms": N}`: moves the clock forward |
//! | `POST /_sim/invitations/{email}/accept` | the invitee accepts (`?workspace=`; default: every workspace inviting them) |
//! | `POST /_sim/invitations/{email}/decline` | the invitee declines |
//! | `POST /_sim/workspaces/{ws}/users` | `{"email", "role"?, "source"?, "accepted"?}`: puts a user straight into the workspace, as if added outside the operator (role `member`, source `invitation`, accepted `true` by default); replaces any record of that address |
//! | `POST /_sim/workspaces/{ws}/members` | the same (its older name) |
//! | `POST /_sim/workspaces/{ws}/foreign`, `DELETE` | the name is held (released) by another account (see [`super::workspaces::control`]) |
//! | `POST /_sim/workspaces/{ws}/fail` | `{"message"?}`: the workspace turns `error` now |
//! | `POST /_sim/workspaces/{ws}/sandboxes/{name}/fail` | `{"message"}`: the sandbox turns `FAILED` now |
//! | `POST /_sim/workspaces/{ws}/malformed` | `{"collection": "users" \| "sandboxes", "record": <any JSON>}`: that raw record is appended to the workspace's `GET /users` or `GET /sandboxes` answers (on the last page when paginated); a sandbox record whose `metadata.name` is a string also answers `GET /sandboxes/{that name}` while no live sandbox has it |
//! | `DELETE /_sim/workspaces/{ws}/malformed` | removes the workspace's raw records |
//! | `PUT /_sim/integrations/{integration}/models` | `{"count": N}`: how many models that catalogue integration offers from now on (404 for an integration not in the catalogue) |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::body::{JsonObject, SimPath, SimQuery, field, parse_object};
use super::config::{Faults, RateLimit, default_burst, validate_faults};
use super::error::ApiError;
use super::faults::ScriptedFault;
use super::state::{Malformed, Sim, Workspace, World, lock};
use super::users::{Role, Source, Standing, UserRecord, render_invitation, render_user};
use super::util::validate_email;
use super::{integrations, previews, sandboxes, users, workspaces};

/// The `/_sim` routes (to be nested under `/_sim`).
pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/health", get(|| async { Json(json!({ "ok": true })) }))
        .route("/stats", get(stats))
        .route("/stats/reset", post(stats_reset))
        .route("/state", get(state))
        .route("/reset", post(reset))
        .route("/faults", get(faults).put(set_faults))
        .route(
            "/faults/script",
            get(script).post(add_script).delete(clear_script),
        )
        .route("/clock", get(clock))
        .route(
            "/integrations/{integration}/models",
            axum::routing::put(set_model_count),
        )
        .route("/clock/advance", post(advance))
        .route("/invitations/{email}/accept", post(accept))
        .route("/invitations/{email}/decline", post(decline))
        .route("/workspaces/{ws}/users", post(add_member))
        .route("/workspaces/{ws}/members", post(add_member))
        .route(
            "/workspaces/{ws}/foreign",
            post(workspaces::control::add_foreign).delete(workspaces::control::remove_foreign),
        )
        .route("/workspaces/{ws}/fail", post(workspaces::control::fail))
        .route("/workspaces/{ws}/sandboxes/{name}/fail", post(fail_sandbox))
        .route(
            "/workspaces/{ws}/malformed",
            post(add_malformed).delete(clear_malformed),
        )
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(lock(&sim.stats).snapshot())
}

async fn stats_reset(State(sim): State<Arc<Sim>>) -> Json<Value> {
    *lock(&sim.stats) = super::stats::Stats::default();
    Json(lock(&sim.stats).snapshot())
}

async fn reset(State(sim): State<Arc<Sim>>) -> Json<Value> {
    sim.reset();
    Json(json!({ "reset": true }))
}

fn clock_json(sim: &Sim) -> Value {
    let now = sim.clock.now();
    json!({ "nowMs": now.0, "now": sim.clock.rfc3339(now) })
}

async fn clock(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(clock_json(&sim))
}

async fn advance(
    State(sim): State<Arc<Sim>>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let d = match (body.get("seconds"), body.get("ms")) {
        (Some(s), None) => {
            let s = s
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e12)
                .ok_or_else(|| ApiError::bad_request("seconds must be a non-negative number"))?;
            Duration::from_secs_f64(s)
        }
        (None, Some(ms)) => Duration::from_millis(
            ms.as_u64()
                .ok_or_else(|| ApiError::bad_request("ms must be a non-negative integer"))?,
        ),
        _ => {
            return Err(ApiError::bad_request(
                "send exactly one of {\"seconds\": N} or {\"ms\": N}",
            ));
        }
    };
    sim.clock.advance(d);
    Ok(Json(clock_json(&sim)))
}

fn faults_json(f: &Faults) -> Value {
    serde_json::to_value(f).unwrap_or(Value::Null)
}

async fn faults(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(faults_json(&lock(&sim.faults).faults))
}

/// Partial update: only the keys present change; `"rateLimit": null` removes the limit; `"seed"` restarts
/// the random stream.
async fn set_faults(
    State(sim): State<Arc<Sim>>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let known = [
        "latencyMs",
        "latencyJitterMs",
        "rateLimit",
        "errorRate",
        "dropRate",
        "lostAnswerRate",
        "seed",
    ];
    if let Some(k) = body.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown fault setting {k:?}; known: {known:?}"
        )));
    }
    let mut f = lock(&sim.faults).faults.clone();
    if let Some(ms) = field::opt_uint(&body, "latencyMs", "latencyMs")? {
        f.latency = Duration::from_millis(ms);
    }
    if let Some(ms) = field::opt_uint(&body, "latencyJitterMs", "latencyJitterMs")? {
        f.latency_jitter = Duration::from_millis(ms);
    }
    for (key, slot) in [
        ("errorRate", &mut f.error_rate),
        ("dropRate", &mut f.drop_rate),
        ("lostAnswerRate", &mut f.lost_answer_rate),
    ] {
        if let Some(v) = body.get(key) {
            *slot = v
                .as_f64()
                .ok_or_else(|| ApiError::bad_request(format!("{key} must be a number")))?;
        }
    }
    match body.get("rateLimit") {
        None => {}
        Some(Value::Null) => f.rate_limit = None,
        Some(Value::Object(rl)) => {
            let per_second = rl
                .get("perSecond")
                .and_then(Value::as_f64)
                .ok_or_else(|| ApiError::bad_request("rateLimit.perSecond must be a number"))?;
            let burst = match field::opt_uint(rl, "burst", "rateLimit.burst")? {
                Some(b) => u32::try_from(b)
                    .map_err(|_| ApiError::bad_request("rateLimit.burst is too large"))?,
                None => default_burst(per_second),
            };
            f.rate_limit = Some(RateLimit { per_second, burst });
        }
        Some(_) => return Err(ApiError::bad_request("rateLimit must be an object or null")),
    }
    let seed = field::opt_uint(&body, "seed", "seed")?;
    validate_faults(&f).map_err(ApiError::bad_request)?;
    let mut state = lock(&sim.faults);
    state.set(f, seed);
    Ok(Json(faults_json(&state.faults)))
}

async fn script(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(serde_json::to_value(&lock(&sim.faults).script).unwrap_or(Value::Null))
}

/// Appends one scripted fault; answers the whole script.
async fn add_script(
    State(sim): State<Arc<Sim>>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let fault: ScriptedFault = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request(format!("invalid scripted fault: {e}")))?;
    fault.validate().map_err(ApiError::bad_request)?;
    let mut state = lock(&sim.faults);
    state.script.push(fault);
    Ok(Json(
        serde_json::to_value(&state.script).unwrap_or(Value::Null),
    ))
}

async fn clear_script(State(sim): State<Arc<Sim>>) -> Json<Value> {
    lock(&sim.faults).script.clear();
    Json(json!([]))
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

async fn state(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let cfg = &sim.config;
    let now = sim.clock.now();
    let faults = faults_json(&lock(&sim.faults).faults);
    let mut world = sim.world();
    let mut workspaces = Map::new();
    for (name, ws) in &mut world.workspaces {
        ws.sandboxes.purge(now, cfg);
        let users: Vec<Value> = ws
            .users
            .iter()
            .map(|r| {
                let mut u = render_user(r, now, cfg);
                if let Value::Object(m) = &mut u {
                    m.insert(
                        "invitation".into(),
                        render_invitation(r, name, &sim.clock, cfg),
                    );
                    let standing = match r.standing(now, cfg) {
                        Standing::Pending => "pending",
                        Standing::Expired => "expired",
                        Standing::Member(_) => "member",
                    };
                    m.insert("standing".into(), json!(standing));
                }
                u
            })
            .collect();
        let sandboxes: Vec<Value> = ws
            .sandboxes
            .iter()
            .map(|r| {
                let mut s = sandboxes::render_revealed(r, name, now, &sim);
                if let Value::Object(m) = &mut s {
                    m.insert(
                        "previews".into(),
                        Value::Array(previews::render_all(r, name, now, &sim)),
                    );
                }
                s
            })
            .collect();
        workspaces.insert(
            name.clone(),
            json!({
                "workspace": workspaces::render(&ws.meta, now, &sim),
                "users": users,
                "sandboxes": sandboxes,
                // The secret values as received: this is where tests check what reached Blaxel.
                "integrationConnections": ws
                    .connections
                    .values()
                    .map(|c| integrations::render(c, name, &sim, true))
                    .collect::<Vec<_>>(),
                "malformed": ws.malformed.to_json(),
            }),
        );
    }
    Json(json!({
        "generation": cfg.generation,
        "clock": { "nowMs": now.0, "now": sim.clock.rfc3339(now) },
        "config": {
            "deployTime": human(cfg.deploy_time),
            "stopTime": human(cfg.stop_time),
            "deleteTime": human(cfg.delete_time),
            "terminationRetention": human(cfg.termination_retention),
            "autoAcceptAfter": cfg.auto_accept_after.map(human),
            "inviteTtl": cfg.invite_ttl.map(human),
            "failingImages": cfg.failing_images,
            "manualClock": cfg.manual_clock,
            "maxBodyBytes": cfg.max_body_bytes,
            "seed": cfg.seed,
            "workspaces": cfg.effective_api_keys().iter().map(|k| k.workspace.clone()).collect::<Vec<_>>(),
            "accountKeys": cfg.account_keys.len(),
            "workspaceReadyTime": human(cfg.workspace_ready_time),
            "foreignWorkspaces": cfg.foreign_workspaces,
        },
        "faults": faults,
        "workspaces": workspaces,
        "foreignWorkspaces": world.foreign.iter().collect::<Vec<_>>(),
    }))
}

/// The workspaces an invitation helper acts on: the one named by `?workspace=`, or every workspace that
/// has a record for the address.
fn target_workspaces(sim: &Sim, q: &HashMap<String, String>, email: &str) -> Vec<String> {
    if let Some(ws) = q.get("workspace") {
        return vec![ws.clone()];
    }
    let email = email.to_ascii_lowercase();
    sim.world()
        .workspaces
        .iter()
        .filter(|(_, w)| w.users.get(&email).is_some())
        .map(|(n, _)| n.clone())
        .collect()
}

async fn accept(
    State(sim): State<Arc<Sim>>,
    SimPath(email): SimPath<String>,
    SimQuery(q): SimQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let targets = target_workspaces(&sim, &q, &email);
    if targets.is_empty() {
        return Err(ApiError::not_found(format!(
            "no invitation for {email:?} in any workspace"
        )));
    }
    let now = sim.clock.now();
    let mut world = sim.world();
    let mut out = Vec::new();
    for ws in targets {
        let r = users::accept(&mut world, &sim, &ws, &email, now)?;
        let mut u = render_user(&r, now, &sim.config);
        if let Value::Object(m) = &mut u {
            m.insert("workspace".into(), json!(ws));
        }
        out.push(u);
    }
    Ok(Json(Value::Array(out)))
}

async fn decline(
    State(sim): State<Arc<Sim>>,
    SimPath(email): SimPath<String>,
    SimQuery(q): SimQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let targets = target_workspaces(&sim, &q, &email);
    if targets.is_empty() {
        return Err(ApiError::not_found(format!(
            "no invitation for {email:?} in any workspace"
        )));
    }
    let now = sim.clock.now();
    let mut world = sim.world();
    let mut out = Vec::new();
    for ws in targets {
        let r = users::decline(&mut world, &sim, &ws, &email, now)?;
        out.push(render_invitation(&r, &ws, &sim.clock, &sim.config));
    }
    Ok(Json(Value::Array(out)))
}

/// Puts a user straight into a workspace, as if added outside the operator (SCIM, domain capture, the web
/// console): `{"email", "role"?, "source"?, "accepted"?}`. Replaces any record of that address.
async fn add_member(
    State(sim): State<Arc<Sim>>,
    SimPath(ws): SimPath<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let known = ["email", "role", "source", "accepted"];
    if let Some(k) = body.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown key {k:?}; known: {known:?}"
        )));
    }
    let email = field::opt_str(&body, "email", "email")?
        .ok_or_else(|| ApiError::bad_request("email is required"))?;
    validate_email(email).map_err(ApiError::bad_request)?;
    let role = match field::opt_str(&body, "role", "role")? {
        None => Role::Member,
        Some(r) => {
            Role::parse(r).ok_or_else(|| ApiError::bad_request("role must be admin or member"))?
        }
    };
    let source = match field::opt_str(&body, "source", "source")? {
        None => Source::Invitation,
        Some(s) => Source::parse(s).ok_or_else(|| {
            ApiError::bad_request("source must be invitation, directory_sync or domain_capture")
        })?,
    };
    let accepted = field::opt_bool(&body, "accepted", "accepted")?.unwrap_or(true);
    let now = sim.clock.now();
    let mut world = sim.world();
    let w = workspace(&mut world, &ws)?;
    let mut r = UserRecord::invitation(&email.to_ascii_lowercase(), now, "sim");
    r.role = role;
    r.source = source;
    r.accepted_at = accepted.then_some(now);
    w.users.put(r.clone());
    Ok(Json(render_user(&r, now, &sim.config)))
}

async fn fail_sandbox(
    State(sim): State<Arc<Sim>>,
    SimPath((ws, name)): SimPath<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        parse_object(&body)?
    };
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("simulated failure")
        .to_owned();
    sandboxes::force_fail(&sim, &ws, &name, message).map(Json)
}

/// The workspace `ws`, or 404.
fn workspace<'a>(world: &'a mut World, ws: &str) -> Result<&'a mut Workspace, ApiError> {
    world
        .workspaces
        .get_mut(ws)
        .ok_or_else(|| ApiError::not_found(format!("workspace {ws:?} not found")))
}

/// Appends a raw record to a workspace's `users` or `sandboxes` list answers; answers all of them.
async fn add_malformed(
    State(sim): State<Arc<Sim>>,
    SimPath(ws): SimPath<String>,
    JsonObject(mut body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    if let Some(k) = body
        .keys()
        .find(|k| !["collection", "record"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown key {k:?}; expected collection and record"
        )));
    }
    let collection = field::opt_str(&body, "collection", "collection")?
        .ok_or_else(|| ApiError::bad_request("collection is required (users or sandboxes)"))?
        .to_owned();
    // Any JSON at all, null included: only a missing record is refused.
    let record = body
        .remove("record")
        .ok_or_else(|| ApiError::bad_request("record is required (any JSON value)"))?;
    let mut world = sim.world();
    let malformed = &mut workspace(&mut world, &ws)?.malformed;
    match collection.as_str() {
        "users" => malformed.users.push(record),
        "sandboxes" => malformed.sandboxes.push(record),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown collection {other:?}: expected users or sandboxes"
            )));
        }
    }
    Ok(Json(malformed.to_json()))
}

/// Removes every raw record of a workspace.
async fn clear_malformed(
    State(sim): State<Arc<Sim>>,
    SimPath(ws): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    let mut world = sim.world();
    let malformed = &mut workspace(&mut world, &ws)?.malformed;
    *malformed = Malformed::default();
    Ok(Json(malformed.to_json()))
}

/// `PUT /_sim/integrations/{integration}/models {"count": N}`.
async fn set_model_count(
    State(sim): State<Arc<Sim>>,
    SimPath(integration): SimPath<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let count = field::opt_uint(&body, "count", "count")?
        .ok_or_else(|| ApiError::bad_request("count is required"))?;
    let count = u32::try_from(count).map_err(|_| ApiError::bad_request("count is too large"))?;
    let mut world = sim.world();
    if integrations::model_count(&world, &integration).is_none() {
        return Err(ApiError::not_found(format!(
            "integration {integration:?} is not in the catalogue"
        )));
    }
    world.model_counts.insert(integration.clone(), count);
    Ok(Json(json!({"integration": integration, "models": count})))
}
