//! The `Sandbox` JSON: metadata, spec, status and events, plus `state` and `errors` in the 2026 generation.

use serde_json::{Map, Value, json};

use super::record::{Phase, SandboxRecord};
use crate::sim::clock::SimTime;
use crate::sim::config::ApiGeneration;
use crate::sim::state::Sim;

/// The URL the definition gives sandboxes (`metadata.url`).
#[must_use]
pub fn sandbox_url(name: &str, workspace: &str, region: &str) -> String {
    format!("https://sbx-{name}-{workspace}.{region}.bl.run")
}

/// `metadata` of a sandbox.
pub(super) fn render_metadata(r: &SandboxRecord, workspace: &str, sim: &Sim) -> Value {
    let c = &sim.clock;
    let mut m = Map::new();
    m.insert("name".into(), json!(r.name));
    m.insert(
        "displayName".into(),
        json!(r.display_name.as_deref().unwrap_or(&r.name)),
    );
    m.insert("labels".into(), Value::Object(r.labels.clone()));
    m.insert("workspace".into(), json!(workspace));
    m.insert(
        "url".into(),
        json!(sandbox_url(&r.name, workspace, r.region())),
    );
    m.insert("createdAt".into(), json!(c.rfc3339(r.created_at)));
    m.insert("updatedAt".into(), json!(c.rfc3339(r.updated_at)));
    m.insert("createdBy".into(), json!(r.created_by));
    m.insert("updatedBy".into(), json!(r.updated_by));
    if let Some(x) = &r.external_id {
        m.insert("externalId".into(), json!(x));
    }
    Value::Object(m)
}

/// What the API shows in place of the value of a variable marked `secret: true` (the definitions: values
/// "masked in API responses unless an admin requests show_secrets=true", "masked with ***").
pub const MASKED: &str = "***";

/// A `Sandbox` as the configured generation renders it, secret values masked.
#[must_use]
pub fn render(r: &SandboxRecord, workspace: &str, now: SimTime, sim: &Sim) -> Value {
    render_with(r, workspace, now, sim, true)
}

/// A `Sandbox` with its secret values shown (`GET /sandboxes/{name}?show_secrets=true`, and the
/// simulator's own state dump).
#[must_use]
pub fn render_revealed(r: &SandboxRecord, workspace: &str, now: SimTime, sim: &Sim) -> Value {
    render_spec(r, workspace, now, sim, true, r.spec.clone())
}

/// A `Sandbox`, with or without its `events` (today's paginated listing uses the lite shape, without),
/// secret values masked.
#[must_use]
pub fn render_with(
    r: &SandboxRecord,
    workspace: &str,
    now: SimTime,
    sim: &Sim,
    events: bool,
) -> Value {
    let mut spec = r.spec.clone();
    mask_secret_values(&mut spec);
    render_spec(r, workspace, now, sim, events, spec)
}

/// Replaces the value of every variable marked `secret: true` in a sandbox spec by [`MASKED`].
fn mask_secret_values(spec: &mut Map<String, Value>) {
    let envs = spec
        .get_mut("runtime")
        .and_then(|r| r.get_mut("envs"))
        .and_then(Value::as_array_mut);
    for env in envs.into_iter().flatten() {
        if env.get("secret") == Some(&Value::Bool(true))
            && let Some(value) = env.get_mut("value")
        {
            *value = json!(MASKED);
        }
    }
}

fn render_spec(
    r: &SandboxRecord,
    workspace: &str,
    now: SimTime,
    sim: &Sim,
    events: bool,
    spec: Map<String, Value>,
) -> Value {
    let cfg = &sim.config;
    let phase = r.phase(now, cfg);
    let mut m = Map::new();
    m.insert("metadata".into(), render_metadata(r, workspace, sim));
    m.insert("spec".into(), Value::Object(spec));
    m.insert("status".into(), json!(phase.as_str()));
    m.insert(
        "lastUsedAt".into(),
        json!(sim.clock.rfc3339(r.last_used_at)),
    );
    if events {
        let list: Vec<Value> = r
            .all_events(now, cfg)
            .iter()
            .map(|e| {
                json!({
                    "type": "status",
                    "status": e.status,
                    "message": e.message,
                    "time": sim.clock.rfc3339(e.at),
                })
            })
            .collect();
        m.insert("events".into(), Value::Array(list));
    }
    if cfg.generation == ApiGeneration::V2026 {
        let running = r.powered && !phase.is_deleted() && phase != Phase::Failed;
        m.insert(
            "state".into(),
            json!(if running { "RUNNING" } else { "STANDBY" }),
        );
        if phase == Phase::Failed {
            let code = if r.failure.is_some() {
                "SIMULATED_FAILURE"
            } else {
                "IMAGE_START_FAILURE"
            };
            m.insert(
                "errors".into(),
                json!([{
                    "code": code,
                    "fatal": true,
                    "message": r.explain(phase),
                    "time": sim.clock.rfc3339(r.entered(phase, cfg)),
                }]),
            );
        }
    }
    Value::Object(m)
}
