//! Integrations and their connections: `GET /integrations/{name}`, `GET/POST /integrations/connections`,
//! `GET/PUT/DELETE /integrations/connections/{connectionName}`, and a connection's `models[/{modelId}]`
//! and `endpointConfigurations`.
//!
//! Choices where the definitions are silent (docs/simulator.md):
//! - **Secrets are never echoed.** A connection's `spec.secret` values are kept, but no answer (GET, list,
//!   or the answers to POST and PUT) carries them: a read shows `spec.secret` in the definition's shape
//!   with every value masked ([`MASK`]), so a client can tell which keys are set. `/_sim/state` shows
//!   the values, for tests.
//! - **`PUT` replaces the spec**: a body without `spec.secret` leaves the connection without secret
//!   values, as a replacing `PUT` does. The integration cannot change (400).
//! - **A built-in catalogue** of integrations: model providers with a fixed number of models (openai 12,
//!   anthropic 5, mistral 8, huggingface 20, changeable with `PUT /_sim/integrations/{name}/models
//!   {"count": N}`) and tools without models (github, slack, gmail). Creating a connection to another
//!   integration answers 400.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::body::{JsonObject, SimPath, field};
use super::clock::SimTime;
use super::error::ApiError;
use super::state::{Sim, World};
use super::util::validate_name;

/// Longest connection name.
pub const MAX_NAME_LEN: usize = 63;

/// The built-in catalogue: integration name, display name, default model count.
const CATALOGUE: &[(&str, &str, u32)] = &[
    ("openai", "OpenAI", 12),
    ("anthropic", "Anthropic", 5),
    ("mistral", "Mistral AI", 8),
    ("huggingface", "Hugging Face", 20),
    ("github", "GitHub", 0),
    ("slack", "Slack", 0),
    ("gmail", "Gmail", 0),
];

/// One connection, as stored.
#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    /// Name, unique in the workspace.
    pub name: String,
    /// `metadata` as written, less the server's fields (kept verbatim, unknown keys included).
    pub metadata: Map<String, Value>,
    /// `spec` as written, less `secret` (kept verbatim, unknown keys included).
    pub spec: Map<String, Value>,
    /// The secret values (never rendered in an answer).
    pub secret: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: SimTime,
    /// Creator.
    pub created_by: String,
    /// Last update.
    pub updated_at: SimTime,
    /// Last updater.
    pub updated_by: String,
}

/// The connections of one workspace, by name.
pub type ConnectionBook = BTreeMap<String, ConnectionRecord>;

/// The number of models `integration` offers now, `None` for an integration not in the catalogue.
pub fn model_count(world: &World, integration: &str) -> Option<u32> {
    let default = CATALOGUE
        .iter()
        .find(|(name, _, _)| *name == integration)
        .map(|(_, _, n)| *n)?;
    Some(
        world
            .model_counts
            .get(integration)
            .copied()
            .unwrap_or(default),
    )
}

/// What a read shows in place of each secret value.
pub const MASK: &str = "********";

/// A connection as answered: its secret's values masked (or, for `/_sim/state`, as they are).
pub fn render(c: &ConnectionRecord, workspace: &str, sim: &Sim, with_secret: bool) -> Value {
    let clock = &sim.clock;
    let mut metadata = c.metadata.clone();
    metadata.insert("name".into(), json!(c.name));
    metadata.insert("workspace".into(), json!(workspace));
    metadata
        .entry("displayName")
        .or_insert_with(|| json!(c.name));
    metadata.insert("createdAt".into(), json!(clock.rfc3339(c.created_at)));
    metadata.insert("updatedAt".into(), json!(clock.rfc3339(c.updated_at)));
    metadata.insert("createdBy".into(), json!(c.created_by));
    metadata.insert("updatedBy".into(), json!(c.updated_by));
    let mut spec = c.spec.clone();
    let shown: BTreeMap<&String, &str> = c
        .secret
        .iter()
        .map(|(k, v)| (k, if with_secret { v.as_str() } else { MASK }))
        .collect();
    spec.insert("secret".into(), json!(shown));
    json!({"metadata": metadata, "spec": spec})
}

/// A validated connection body.
struct Input {
    name: Option<String>,
    metadata: Map<String, Value>,
    spec: Map<String, Value>,
    integration: Option<String>,
    secret: BTreeMap<String, String>,
}

fn parse(body: &Map<String, Value>) -> Result<Input, ApiError> {
    let mut metadata = field::opt_obj(body, "metadata", "metadata")?
        .cloned()
        .unwrap_or_default();
    let name = field::opt_str(&metadata, "name", "metadata.name")?.map(str::to_owned);
    field::opt_str(&metadata, "displayName", "metadata.displayName")?;
    field::opt_string_map(&metadata, "labels", "metadata.labels")?;
    for server in [
        "name",
        "workspace",
        "createdAt",
        "updatedAt",
        "createdBy",
        "updatedBy",
    ] {
        metadata.remove(server);
    }
    let mut spec = field::opt_obj(body, "spec", "spec")?
        .cloned()
        .unwrap_or_default();
    let integration = field::opt_str(&spec, "integration", "spec.integration")?.map(str::to_owned);
    field::opt_string_map(&spec, "config", "spec.config")?;
    field::opt_bool(&spec, "sandbox", "spec.sandbox")?;
    let secret = field::opt_string_map(&spec, "secret", "spec.secret")?
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
        .collect();
    spec.remove("secret");
    Ok(Input {
        name,
        metadata,
        spec,
        integration,
        secret,
    })
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("integration connection {name:?} not found"))
}

/// Runs `f` on the workspace's connections under the world lock.
fn with_book<T>(
    sim: &Sim,
    workspace: &str,
    f: impl FnOnce(&mut ConnectionBook, &World, SimTime) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let now = sim.clock.now();
    let mut world = sim.world();
    let mut book = world
        .workspaces
        .get_mut(workspace)
        .map(|w| std::mem::take(&mut w.connections))
        .ok_or_else(|| ApiError::not_found(format!("workspace {workspace:?} not found")))?;
    let result = f(&mut book, &world, now);
    if let Some(w) = world.workspaces.get_mut(workspace) {
        w.connections = book;
    }
    result
}

/// `GET /integrations/connections`.
pub async fn list(State(sim): State<Arc<Sim>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    with_book(&sim, &caller.workspace, |book, _, _| {
        let items = book
            .values()
            .map(|c| render(c, &caller.workspace, &sim, false))
            .collect();
        Ok(Json(Value::Array(items)))
    })
}

/// `POST /integrations/connections`.
pub async fn create(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let input = parse(&body)?;
    let name = input
        .name
        .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?;
    validate_name("integration connection", &name, MAX_NAME_LEN).map_err(ApiError::bad_request)?;
    let integration = input
        .integration
        .ok_or_else(|| ApiError::bad_request("spec.integration is required"))?;
    with_book(&sim, &caller.workspace, |book, world, now| {
        if model_count(world, &integration).is_none() {
            return Err(ApiError::bad_request(format!(
                "unknown integration {integration:?}"
            )));
        }
        if book.contains_key(&name) {
            return Err(ApiError::conflict(
                "INTEGRATION_CONNECTION_ALREADY_EXISTS",
                format!("integration connection {name:?} already exists"),
            ));
        }
        let record = ConnectionRecord {
            name: name.clone(),
            metadata: input.metadata,
            spec: input.spec,
            secret: input.secret,
            created_at: now,
            created_by: caller.principal.clone(),
            updated_at: now,
            updated_by: caller.principal.clone(),
        };
        let out = render(&record, &caller.workspace, &sim, false);
        book.insert(name, record);
        Ok(Json(out))
    })
}

/// `GET /integrations/connections/{connectionName}`.
pub async fn get(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    with_book(&sim, &caller.workspace, |book, _, _| {
        let c = book.get(&name).ok_or_else(|| not_found(&name))?;
        Ok(Json(render(c, &caller.workspace, &sim, false)))
    })
}

/// `PUT /integrations/connections/{connectionName}`: replaces the spec (the secret included: absent
/// means none) and the metadata given; the integration cannot change.
pub async fn update(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let input = parse(&body)?;
    if let Some(n) = &input.name
        && n != &name
    {
        return Err(ApiError::bad_request(format!(
            "metadata.name {n:?} does not match the connection in the path ({name:?})"
        )));
    }
    with_book(&sim, &caller.workspace, |book, _, now| {
        let c = book.get_mut(&name).ok_or_else(|| not_found(&name))?;
        let current = c
            .spec
            .get("integration")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let integration = input.integration.unwrap_or_else(|| current.clone());
        if integration != current {
            return Err(ApiError::bad_request(format!(
                "spec.integration cannot change ({current:?} to {integration:?})"
            )));
        }
        let mut spec = input.spec;
        spec.insert("integration".into(), json!(integration));
        c.spec = spec;
        c.secret = input.secret;
        if !input.metadata.is_empty() {
            c.metadata = input.metadata;
        }
        c.updated_at = now;
        c.updated_by.clone_from(&caller.principal);
        Ok(Json(render(c, &caller.workspace, &sim, false)))
    })
}

/// `DELETE /integrations/connections/{connectionName}`: answers the deleted connection.
pub async fn delete(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    with_book(&sim, &caller.workspace, |book, _, _| {
        let c = book.remove(&name).ok_or_else(|| not_found(&name))?;
        Ok(Json(render(&c, &caller.workspace, &sim, false)))
    })
}

/// The models of connection `name`: `{id, name, integration}` each.
fn models(book: &ConnectionBook, world: &World, name: &str) -> Result<Vec<Value>, ApiError> {
    let c = book.get(name).ok_or_else(|| not_found(name))?;
    let integration = c
        .spec
        .get("integration")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let n = model_count(world, integration).unwrap_or(0);
    Ok((1..=n)
        .map(|i| json!({"id": format!("{integration}-model-{i}"), "name": format!("{integration} model {i}"), "integration": integration}))
        .collect())
}

/// `GET /integrations/connections/{connectionName}/models`.
pub async fn list_models(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    with_book(&sim, &caller.workspace, |book, world, _| {
        models(book, world, &name).map(|m| Json(Value::Array(m)))
    })
}

/// `GET /integrations/connections/{connectionName}/models/{modelId}`.
pub async fn get_model(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath((name, model)): SimPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    with_book(&sim, &caller.workspace, |book, world, _| {
        models(book, world, &name)?
            .into_iter()
            .find(|m| m["id"] == model.as_str())
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("model {model:?} not found")))
    })
}

/// `GET /integrations/connections/{connectionName}/endpointConfigurations`: one default endpoint.
pub async fn endpoint_configurations(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    with_book(&sim, &caller.workspace, |book, _, _| {
        let c = book.get(&name).ok_or_else(|| not_found(&name))?;
        let integration = c
            .spec
            .get("integration")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(Json(json!([{
            "name": "default",
            "integration": integration,
            "endpoint": format!("https://{integration}.integrations.bl.run"),
        }])))
    })
}

/// `GET /integrations/{integrationName}`: the catalogue entry (404 for another name).
pub async fn get_integration(
    State(sim): State<Arc<Sim>>,
    _caller: Caller,
    SimPath(name): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (_, display, _) = CATALOGUE
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| ApiError::not_found(format!("integration {name:?} not found")))?;
    let models = model_count(&sim.world(), &name).unwrap_or(0);
    Ok(Json(json!({
        "name": name,
        "additionalInfos": {"displayName": display, "models": models.to_string()},
        "endpoints": {},
        "headers": {},
        "params": {},
        "organizations": [],
        "repositories": [],
    })))
}
