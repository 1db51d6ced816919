//! The `Workspace` JSON each generation answers with, and the 2026 `resourceCounts`.

use serde_json::{Map, Value, json};

use super::record::{WorkspaceRecord, WorkspaceStatus};
use super::{ACCOUNT_ID, DEFAULT_RUNTIME_GENERATION};
use crate::sim::clock::SimTime;
use crate::sim::config::ApiGeneration;
use crate::sim::sandboxes::Phase;
use crate::sim::state::{Sim, Workspace};

/// A `Workspace`: the modelled fields, the server's (id, account, status, times, owners) and every unknown
/// field the client wrote.
#[must_use]
pub fn render(r: &WorkspaceRecord, now: SimTime, sim: &Sim) -> Value {
    let cfg = &sim.config;
    let c = &sim.clock;
    let status = r.status(now, cfg);
    let mut m = Map::new();
    m.insert("name".into(), json!(r.name));
    m.insert(
        "displayName".into(),
        json!(r.display_name.as_deref().unwrap_or(&r.name)),
    );
    m.insert("labels".into(), Value::Object(r.labels.clone()));
    m.insert("region".into(), json!(r.region));
    m.insert("id".into(), json!(r.id));
    m.insert("accountId".into(), json!(ACCOUNT_ID));
    m.insert("status".into(), json!(status.as_str()));
    if let Some(reason) = r.status_reason(now, cfg) {
        m.insert("statusReason".into(), json!(reason));
    }
    let mut runtime = r.runtime.clone();
    runtime
        .entry("generation")
        .or_insert_with(|| json!(DEFAULT_RUNTIME_GENERATION));
    m.insert("runtime".into(), Value::Object(runtime));
    m.insert("createdAt".into(), json!(c.rfc3339(r.created_at)));
    m.insert("updatedAt".into(), json!(c.rfc3339(r.updated_at)));
    m.insert("createdBy".into(), json!(r.created_by));
    m.insert("updatedBy".into(), json!(r.updated_by));
    if cfg.generation == ApiGeneration::V2026 {
        if let Some(g) = &r.group_mappings {
            m.insert("groupMappings".into(), Value::Array(g.clone()));
        }
        m.insert("hipaaInfo".into(), render_hipaa(r, sim));
    }
    for (k, v) in &r.extra {
        m.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Value::Object(m)
}

/// `hipaaInfo`: what the client wrote, the account's `accountEnabled` (false: the simulator's account has no
/// HIPAA addon) and the server's stamps on `unsafe`.
fn render_hipaa(r: &WorkspaceRecord, sim: &Sim) -> Value {
    let mut info = r
        .hipaa
        .as_ref()
        .map(|h| h.fields.clone())
        .unwrap_or_default();
    info.insert("accountEnabled".into(), json!(false));
    if let Some(h) = &r.hipaa
        && let Some((at, by)) = &h.unsafe_changed
        && let Some(Value::Object(opt_out)) = info.get_mut("unsafe")
    {
        opt_out.insert("updatedAt".into(), json!(sim.clock.rfc3339(*at)));
        opt_out.insert("updatedBy".into(), json!(by));
    }
    Value::Object(info)
}

/// The resource kinds `resourceCounts` lists (2026 definition); the simulator has only sandboxes, previews
/// and service accounts (API keys), so the others are always 0.
const COUNTED: [&str; 14] = [
    "agents",
    "functions",
    "models",
    "sandboxes",
    "policies",
    "jobs",
    "volumes",
    "drives",
    "volumetemplates",
    "integrationconnections",
    "previews",
    "customdomains",
    "serviceaccounts",
    "images",
];

/// `resourceCounts` of a workspace (2026 `GET /workspaces/{name}?countResources=true`): sandboxes not yet
/// terminated, their previews that exist at `now` (a deleting sandbox has none, nor has a preview past
/// its ttl), and the `--api-key` bindings of a seeded workspace.
#[must_use]
pub fn resource_counts(ws: &Workspace, now: SimTime, sim: &Sim) -> Value {
    let cfg = &sim.config;
    let live: Vec<_> = ws
        .sandboxes
        .iter()
        .filter(|s| !matches!(s.phase(now, cfg), Phase::Terminated | Phase::Gone))
        .collect();
    let previews: usize = live
        .iter()
        .map(|s| crate::sim::previews::record::live(s, now, sim).count())
        .sum();
    let keys = if ws.meta.seeded {
        cfg.effective_api_keys()
            .iter()
            .filter(|k| k.workspace == ws.meta.name)
            .count()
    } else {
        0
    };
    let mut m = Map::new();
    for kind in COUNTED {
        let n = match kind {
            "sandboxes" => live.len(),
            "previews" => previews,
            "serviceaccounts" => keys,
            _ => 0,
        };
        m.insert(kind.into(), json!(n));
    }
    Value::Object(m)
}

/// Whether a workspace can be worked in (its users, sandboxes and previews reached).
#[must_use]
pub fn is_ready(r: &WorkspaceRecord, now: SimTime, sim: &Sim) -> bool {
    r.status(now, &sim.config) == WorkspaceStatus::Ready
}
