//! Sandboxes: `GET/POST /sandboxes`, `GET/PUT/DELETE /sandboxes/{name}` and, in the 2025 generation,
//! `PUT /sandboxes/{name}/start|stop`.
//!
//! A sandbox's `status` is never stored: it is computed from the clock and three facts kept in the record
//! (when power last changed and to what, when it was deleted, whether it is doomed to fail):
//!
//! ```text
//! power on  at t:  DEPLOYING until t + deploy-time, then DEPLOYED (or FAILED for a --fail-image image)
//! power off at t:  DEACTIVATING until t + stop-time, then DEACTIVATED (created disabled: DEACTIVATED at once)
//! deleted   at t:  DELETING until t + delete-time, then TERMINATED for termination-retention, then gone (404)
//! ```
//!
//! Gone records are purged lazily (a queue ordered by purge time, drained at the start of each request), so
//! counts and listings stay O(log n) per item without a background task.
//!
//! Decisions where the definitions are silent:
//! - Power is controlled by start/stop (2025) and by a *change* of `spec.enabled` through `PUT` (both
//!   generations; an absent `enabled` keeps the current power state). Start/stop do not rewrite `spec`.
//! - A name whose sandbox is `TERMINATED` or `FAILED` can be created again (the old record is replaced); one
//!   that is `DELETING` answers 409 like any existing sandbox.
//! - `PUT`, start and stop on a `DELETING`/`TERMINATED` sandbox answer 409; `DELETE` on one answers 200 with
//!   the sandbox as it is (deleting is idempotent).
//! - `PUT` replaces what it carries: `spec` when present (whole), `metadata.labels` and
//!   `metadata.displayName` when present; absent parts are kept. Changing `runtime.image` or `runtime.memory`
//!   of a running sandbox redeploys it (`DEPLOYING` again), as the 2026 definition warns.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::body::{JsonObject, SimPath, SimQuery, field};
use super::clock::SimTime;
use super::config::{ApiGeneration, SimConfig};
use super::error::{ApiError, SandboxErrorContext};
use super::previews::PreviewRecord;
use super::state::{Sim, World};
use super::util::{fnv1a, hex_decode, hex_encode, validate_name};

/// Longest sandbox name the definition allows.
pub const MAX_NAME_LEN: usize = 49;
/// Region used when the request names none.
pub const DEFAULT_REGION: &str = "us-pdx-1";
/// First `Blaxel-Version` whose `GET /sandboxes` is paginated.
pub const PAGINATED_VERSION: &str = "2026-04-28";
/// Page size when `limit` is absent.
pub const DEFAULT_PAGE: usize = 50;
/// Largest page (larger `limit`s are clamped).
pub const MAX_PAGE: usize = 200;

/// Every status value the definitions list (for the `status` filter).
pub const STATUSES: [&str; 10] = [
    "DELETING",
    "TERMINATED",
    "FAILED",
    "DEACTIVATED",
    "DEACTIVATING",
    "UPLOADING",
    "BUILDING",
    "DEPLOYING",
    "DEPLOYED",
    "BUILT",
];

/// The computed lifecycle phase of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Starting.
    Deploying,
    /// Running.
    Deployed,
    /// Could not deploy.
    Failed,
    /// Stopping.
    Deactivating,
    /// Stopped.
    Deactivated,
    /// Being deleted.
    Deleting,
    /// Deleted, still visible.
    Terminated,
    /// Deleted and past retention: answers 404.
    Gone,
}

impl Phase {
    /// The `status` string (gone records render as `TERMINATED`, which is what they last were).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploying => "DEPLOYING",
            Self::Deployed => "DEPLOYED",
            Self::Failed => "FAILED",
            Self::Deactivating => "DEACTIVATING",
            Self::Deactivated => "DEACTIVATED",
            Self::Deleting => "DELETING",
            Self::Terminated | Self::Gone => "TERMINATED",
        }
    }

    /// Deleting, terminated or gone.
    #[must_use]
    pub fn is_deleted(self) -> bool {
        matches!(self, Self::Deleting | Self::Terminated | Self::Gone)
    }
}

/// Most events kept per sandbox (older ones are dropped).
pub const MAX_EVENTS: usize = 50;

/// One entry of a sandbox's `events` (the definition's `CoreEvent`): a status it reached, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxEvent {
    /// When the status was reached.
    pub at: SimTime,
    /// The status reached.
    pub status: &'static str,
    /// Why.
    pub message: String,
}

/// One sandbox.
#[derive(Debug, Clone)]
pub struct SandboxRecord {
    /// Unique name in the workspace.
    pub name: String,
    /// `metadata.displayName`, when set.
    pub display_name: Option<String>,
    /// `metadata.labels`.
    pub labels: Map<String, Value>,
    /// `metadata.externalId`, when set.
    pub external_id: Option<String>,
    /// The spec as last written (normalized: region and, in 2026, `enabled` filled in).
    pub spec: Map<String, Value>,
    /// Creation time.
    pub created_at: SimTime,
    /// Creator.
    pub created_by: String,
    /// Last update.
    pub updated_at: SimTime,
    /// Last updater.
    pub updated_by: String,
    /// Creation order, to break ties between equal `created_at`.
    pub seq: u64,
    /// Desired power.
    pub powered: bool,
    /// When power last changed.
    pub power_since: SimTime,
    /// Created disabled: `DEACTIVATED` without passing through `DEACTIVATING`.
    pub never_started: bool,
    /// Deploys end in `FAILED` (image listed in `--fail-image`).
    pub doomed: bool,
    /// Forced failure (`/_sim/`): message and time.
    pub failure: Option<(SimTime, String)>,
    /// When `DELETE` was received.
    pub deleted_at: Option<SimTime>,
    /// Last start or create.
    pub last_used_at: SimTime,
    /// Previews by name.
    pub previews: BTreeMap<String, PreviewRecord>,
    /// Statuses reached so far (see [`SandboxRecord::settle`]).
    pub events: Vec<SandboxEvent>,
}

impl SandboxRecord {
    /// The phase at `now`.
    #[must_use]
    pub fn phase(&self, now: SimTime, cfg: &SimConfig) -> Phase {
        if let Some(d) = self.deleted_at {
            let terminated = d.plus(cfg.delete_time);
            return if now < terminated {
                Phase::Deleting
            } else if now < terminated.plus(cfg.termination_retention) {
                Phase::Terminated
            } else {
                Phase::Gone
            };
        }
        if let Some((at, _)) = &self.failure
            && now >= *at
        {
            return Phase::Failed;
        }
        if self.powered {
            if now < self.power_since.plus(cfg.deploy_time) {
                Phase::Deploying
            } else if self.doomed {
                Phase::Failed
            } else {
                Phase::Deployed
            }
        } else if self.never_started || now >= self.power_since.plus(cfg.stop_time) {
            Phase::Deactivated
        } else {
            Phase::Deactivating
        }
    }

    /// When the record disappears, if deleted.
    #[must_use]
    pub fn gone_at(&self, cfg: &SimConfig) -> Option<SimTime> {
        self.deleted_at
            .map(|d| d.plus(cfg.delete_time).plus(cfg.termination_retention))
    }

    /// The region the sandbox runs in.
    #[must_use]
    pub fn region(&self) -> &str {
        self.spec
            .get("region")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_REGION)
    }

    /// `spec.enabled` as stored (absent counts as enabled).
    fn spec_enabled(&self) -> bool {
        self.spec
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// When the record entered `phase` (its current phase).
    fn entered(&self, phase: Phase, cfg: &SimConfig) -> SimTime {
        match phase {
            Phase::Deploying | Phase::Deactivating => self.power_since,
            Phase::Deployed => self.power_since.plus(cfg.deploy_time),
            Phase::Failed => match &self.failure {
                Some((at, _)) => *at,
                None => self.power_since.plus(cfg.deploy_time),
            },
            Phase::Deactivated if self.never_started => self.power_since,
            Phase::Deactivated => self.power_since.plus(cfg.stop_time),
            Phase::Deleting => self.deleted_at.unwrap_or(self.power_since),
            Phase::Terminated | Phase::Gone => self
                .deleted_at
                .unwrap_or(self.power_since)
                .plus(cfg.delete_time),
        }
    }

    /// Why the record is in `phase`.
    fn explain(&self, phase: Phase) -> String {
        match phase {
            Phase::Deploying => "Sandbox is deploying".to_owned(),
            Phase::Deployed => "Sandbox is deployed".to_owned(),
            Phase::Failed => match &self.failure {
                Some((_, msg)) => msg.clone(),
                None => format!(
                    "Sandbox failed to start: image {:?} did not become ready",
                    image_of(&self.spec).unwrap_or_default()
                ),
            },
            Phase::Deactivating => "Sandbox is stopping".to_owned(),
            Phase::Deactivated => "Sandbox is stopped".to_owned(),
            Phase::Deleting => "Sandbox is being deleted".to_owned(),
            Phase::Terminated | Phase::Gone => "Sandbox is terminated".to_owned(),
        }
    }

    /// The event for the current phase, unless it is already the last one recorded.
    fn unrecorded_event(&self, now: SimTime, cfg: &SimConfig) -> Option<SandboxEvent> {
        let phase = self.phase(now, cfg);
        let status = phase.as_str();
        if self.events.last().is_some_and(|e| e.status == status) {
            return None;
        }
        Some(SandboxEvent {
            at: self.entered(phase, cfg),
            status,
            message: self.explain(phase),
        })
    }

    /// Records the current phase as an event if it is new. Called before and after every change, so the
    /// history keeps transitions that completed on their own (e.g. `DEPLOYED` before a stop).
    pub fn settle(&mut self, now: SimTime, cfg: &SimConfig) {
        if let Some(e) = self.unrecorded_event(now, cfg) {
            self.events.push(e);
            if self.events.len() > MAX_EVENTS {
                let excess = self.events.len() - MAX_EVENTS;
                self.events.drain(..excess);
            }
        }
    }

    /// Every event, including the current phase if not yet recorded.
    #[must_use]
    pub fn all_events(&self, now: SimTime, cfg: &SimConfig) -> Vec<SandboxEvent> {
        let mut v = self.events.clone();
        v.extend(self.unrecorded_event(now, cfg));
        v
    }

    fn set_power(&mut self, on: bool, now: SimTime) {
        if self.powered != on {
            self.powered = on;
            self.power_since = now;
            self.never_started = false;
            if on {
                self.failure = None;
                self.last_used_at = now;
            }
        }
    }
}

/// The sandboxes of one workspace, with a creation-order index and a purge queue.
#[derive(Debug, Default)]
pub struct SandboxBook {
    by_name: BTreeMap<String, SandboxRecord>,
    by_created: BTreeSet<(SimTime, u64, String)>,
    purge_queue: BTreeSet<(SimTime, String)>,
}

impl SandboxBook {
    /// Drops records whose retention has ended.
    pub fn purge(&mut self, now: SimTime, cfg: &SimConfig) {
        while let Some((at, name)) = self.purge_queue.first().cloned() {
            if at > now {
                break;
            }
            self.purge_queue.remove(&(at, name.clone()));
            if self.by_name.get(&name).and_then(|r| r.gone_at(cfg)) == Some(at) {
                self.remove(&name, cfg);
            }
        }
    }

    /// Number of records (including deleted ones still retained).
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// All records by name.
    pub fn iter(&self) -> impl Iterator<Item = &SandboxRecord> {
        self.by_name.values()
    }

    /// A record by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&SandboxRecord> {
        self.by_name.get(name)
    }

    /// A record by name, for changes that keep `created_at`, `seq` and `deleted_at` (use
    /// [`SandboxBook::mark_deleted`] to delete).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut SandboxRecord> {
        self.by_name.get_mut(name)
    }

    /// Inserts a new record, replacing any record of that name.
    pub fn insert(&mut self, r: SandboxRecord, cfg: &SimConfig) {
        self.remove(&r.name, cfg);
        self.by_created
            .insert((r.created_at, r.seq, r.name.clone()));
        self.by_name.insert(r.name.clone(), r);
    }

    /// Removes a record and its index entries.
    pub fn remove(&mut self, name: &str, cfg: &SimConfig) -> Option<SandboxRecord> {
        let r = self.by_name.remove(name)?;
        self.by_created
            .remove(&(r.created_at, r.seq, r.name.clone()));
        if let Some(at) = r.gone_at(cfg) {
            self.purge_queue.remove(&(at, r.name.clone()));
        }
        Some(r)
    }

    /// Records a deletion at `now` (no-op when already deleted).
    pub fn mark_deleted(&mut self, name: &str, now: SimTime, cfg: &SimConfig) {
        if let Some(r) = self.by_name.get_mut(name)
            && r.deleted_at.is_none()
        {
            r.deleted_at = Some(now);
            if let Some(at) = r.gone_at(cfg) {
                self.purge_queue.insert((at, name.to_owned()));
            }
        }
    }
}

/// What a create or update body says, validated.
#[derive(Debug, Default)]
struct SandboxInput {
    name: Option<String>,
    display_name: Option<String>,
    labels: Option<Map<String, Value>>,
    external_id: Option<String>,
    spec: Option<Map<String, Value>>,
}

fn parse_input(body: &Map<String, Value>) -> Result<SandboxInput, ApiError> {
    let mut input = SandboxInput::default();
    if let Some(meta) = field::opt_obj(body, "metadata", "metadata")? {
        input.name = field::opt_str(meta, "name", "metadata.name")?.map(str::to_owned);
        input.display_name =
            field::opt_str(meta, "displayName", "metadata.displayName")?.map(str::to_owned);
        if let Some(d) = &input.display_name
            && d.chars().count() > 63
        {
            return Err(ApiError::bad_request(
                "metadata.displayName must be at most 63 characters",
            ));
        }
        input.labels = field::opt_string_map(meta, "labels", "metadata.labels")?;
        input.external_id =
            field::opt_str(meta, "externalId", "metadata.externalId")?.map(str::to_owned);
    }
    if let Some(spec) = field::opt_obj(body, "spec", "spec")? {
        validate_spec(spec)?;
        input.spec = Some(spec.clone());
    }
    Ok(input)
}

/// Type-checks the spec fields the simulator (and the operator) rely on; other fields pass through.
fn validate_spec(spec: &Map<String, Value>) -> Result<(), ApiError> {
    field::opt_bool(spec, "enabled", "spec.enabled")?;
    field::opt_str(spec, "region", "spec.region")?;
    field::opt_array(spec, "volumes", "spec.volumes")?;
    if let Some(lc) = field::opt_obj(spec, "lifecycle", "spec.lifecycle")? {
        field::opt_array(
            lc,
            "expirationPolicies",
            "spec.lifecycle.expirationPolicies",
        )?;
    }
    let Some(rt) = field::opt_obj(spec, "runtime", "spec.runtime")? else {
        return Ok(());
    };
    field::opt_str(rt, "image", "spec.runtime.image")?;
    field::opt_uint(rt, "memory", "spec.runtime.memory")?;
    field::opt_str(rt, "ttl", "spec.runtime.ttl")?;
    field::opt_str(rt, "expires", "spec.runtime.expires")?;
    if let Some(ports) = field::opt_array(rt, "ports", "spec.runtime.ports")? {
        for (i, p) in ports.iter().enumerate() {
            let path = format!("spec.runtime.ports[{i}]");
            let Value::Object(p) = p else {
                return Err(ApiError::bad_request(format!("{path} must be an object")));
            };
            let target = field::opt_uint(p, "target", &format!("{path}.target"))?
                .ok_or_else(|| ApiError::bad_request(format!("{path}.target is required")))?;
            if !(1..=65_535).contains(&target) {
                return Err(ApiError::bad_request(format!(
                    "{path}.target must be a port number (1-65535)"
                )));
            }
            field::opt_str(p, "name", &format!("{path}.name"))?;
            field::opt_str(p, "protocol", &format!("{path}.protocol"))?;
        }
    }
    if let Some(envs) = field::opt_array(rt, "envs", "spec.runtime.envs")? {
        for (i, e) in envs.iter().enumerate() {
            let path = format!("spec.runtime.envs[{i}]");
            let Value::Object(e) = e else {
                return Err(ApiError::bad_request(format!("{path} must be an object")));
            };
            field::opt_str(e, "name", &format!("{path}.name"))?
                .ok_or_else(|| ApiError::bad_request(format!("{path}.name is required")))?;
            field::opt_str(e, "value", &format!("{path}.value"))?;
        }
    }
    Ok(())
}

/// An image reference must be non-empty, without whitespace or control characters, at most 255 bytes.
fn check_image(image: &str) -> Result<(), ApiError> {
    let ok = !image.is_empty()
        && image.len() <= 255
        && !image.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "INVALID_IMAGE",
            format!("Sandbox image {image:?} is not a valid image reference"),
        ))
    }
}

fn image_of(spec: &Map<String, Value>) -> Option<&str> {
    spec.get("runtime")?.get("image")?.as_str()
}

fn memory_of(spec: &Map<String, Value>) -> Option<u64> {
    spec.get("runtime")?.get("memory")?.as_u64()
}

/// Fills in what the server decides: the region and (2026) `enabled`.
fn normalize_spec(mut spec: Map<String, Value>, cfg: &SimConfig) -> Map<String, Value> {
    if !spec.get("region").is_some_and(Value::is_string) {
        spec.insert("region".into(), json!(DEFAULT_REGION));
    }
    if cfg.generation == ApiGeneration::V2026 && !spec.get("enabled").is_some_and(Value::is_boolean)
    {
        spec.insert("enabled".into(), json!(true));
    }
    spec
}

/// The URL the definition gives sandboxes (`metadata.url`).
#[must_use]
pub fn sandbox_url(name: &str, workspace: &str, region: &str) -> String {
    format!("https://sbx-{name}-{workspace}.{region}.bl.run")
}

/// `metadata` of a sandbox.
fn render_metadata(r: &SandboxRecord, workspace: &str, sim: &Sim) -> Value {
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

/// A `Sandbox` as the configured generation renders it.
#[must_use]
pub fn render(r: &SandboxRecord, workspace: &str, now: SimTime, sim: &Sim) -> Value {
    render_with(r, workspace, now, sim, true)
}

/// A `Sandbox`, with or without its `events` (today's paginated listing uses the lite shape, without).
#[must_use]
pub fn render_with(
    r: &SandboxRecord,
    workspace: &str,
    now: SimTime,
    sim: &Sim,
    events: bool,
) -> Value {
    let cfg = &sim.config;
    let phase = r.phase(now, cfg);
    let mut m = Map::new();
    m.insert("metadata".into(), render_metadata(r, workspace, sim));
    m.insert("spec".into(), Value::Object(r.spec.clone()));
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

fn sandbox_ctx(name: Option<&str>, workspace: &str, sim: &Sim) -> SandboxErrorContext {
    SandboxErrorContext {
        sandbox_name: name.map(str::to_owned),
        workspace: Some(workspace.to_owned()),
        timestamp: Some(sim.clock.rfc3339(sim.clock.now())),
        step: Some("validate_and_prepare"),
        details: None,
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("sandbox {name:?} not found"))
}

fn book<'a>(
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

/// `GET /sandboxes/{name}`.
pub async fn get(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(name): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    let found = with_sandbox(&sim, &caller.workspace, &name, |r, now| {
        Ok(Json(render(r, &caller.workspace, now, &sim)))
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
fn malformed_sandboxes(world: &World, ws: &str) -> Vec<Value> {
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

/// Sort orders of the paginated listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    CreatedDesc,
    CreatedAsc,
    NameAsc,
    NameDesc,
}

impl Sort {
    fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s.unwrap_or("createdAt:desc") {
            "createdAt:desc" => Ok(Self::CreatedDesc),
            "createdAt:asc" => Ok(Self::CreatedAsc),
            "name:asc" => Ok(Self::NameAsc),
            "name:desc" => Ok(Self::NameDesc),
            other => Err(ApiError::bad_request(format!(
                "invalid sort {other:?}: expected createdAt:desc, createdAt:asc, name:asc or name:desc"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::CreatedDesc => "createdAt:desc",
            Self::CreatedAsc => "createdAt:asc",
            Self::NameAsc => "name:asc",
            Self::NameDesc => "name:desc",
        }
    }
}

/// Which sandboxes a listing shows.
struct Filter {
    statuses: Option<BTreeSet<&'static str>>,
    show_terminated: bool,
    external_id: Option<String>,
    q: Option<String>,
}

impl Filter {
    fn fingerprint(&self, sort: Sort) -> String {
        let statuses = self
            .statuses
            .as_ref()
            .map(|s| s.iter().copied().collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let raw = format!(
            "{}|{statuses}|{}|{}|{}",
            sort.as_str(),
            self.show_terminated,
            self.external_id.as_deref().unwrap_or(""),
            self.q.as_deref().unwrap_or("")
        );
        format!("{:016x}", fnv1a(raw.as_bytes()))
    }

    fn accepts(&self, r: &SandboxRecord, phase: Phase) -> bool {
        if phase == Phase::Gone {
            return false;
        }
        match &self.statuses {
            Some(s) if !s.contains(phase.as_str()) => return false,
            None if phase == Phase::Terminated && !self.show_terminated => return false,
            _ => {}
        }
        if let Some(x) = &self.external_id
            && r.external_id.as_ref() != Some(x)
        {
            return false;
        }
        if let Some(q) = &self.q {
            let hit = r.name.contains(q.as_str())
                || r.display_name
                    .as_ref()
                    .is_some_and(|d| d.to_lowercase().contains(q.as_str()))
                || r.labels.iter().any(|(k, v)| {
                    k.to_lowercase().contains(q.as_str())
                        || v.as_str()
                            .is_some_and(|v| v.to_lowercase().contains(q.as_str()))
                });
            if !hit {
                return false;
            }
        }
        true
    }
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    created: SimTime,
    seq: u64,
    name: String,
}

fn encode_cursor(fp: &str, r: &SandboxRecord) -> String {
    hex_encode(format!("v1\n{fp}\n{}\n{}\n{}", r.created_at.0, r.seq, r.name).as_bytes())
}

fn decode_cursor(s: &str, fp: &str) -> Result<Cursor, ApiError> {
    let bad = || ApiError::bad_request("invalid cursor: pass back meta.nextCursor unchanged");
    let raw = String::from_utf8(hex_decode(s).ok_or_else(bad)?).map_err(|_| bad())?;
    let parts: Vec<&str> = raw.splitn(5, '\n').collect();
    let [version, cfp, created, seq, name] = parts.as_slice() else {
        return Err(bad());
    };
    if *version != "v1" {
        return Err(bad());
    }
    if cfp != &fp {
        return Err(ApiError::bad_request(
            "cursor was issued for a different query (sort or filters changed)",
        ));
    }
    Ok(Cursor {
        created: SimTime(created.parse().map_err(|_| bad())?),
        seq: seq.parse().map_err(|_| bad())?,
        name: (*name).to_owned(),
    })
}

/// Whether the request asks for the paginated listing (`Blaxel-Version` at or after 2026-04-28).
fn wants_pagination(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(v) = headers.get("blaxel-version") else {
        return Ok(false);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid Blaxel-Version header"))?
        .trim();
    let date: jiff::civil::Date = v.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid Blaxel-Version {v:?}: expected a date like 2026-04-28"
        ))
    })?;
    let threshold: jiff::civil::Date = PAGINATED_VERSION.parse().map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "bad version constant",
        )
    })?;
    Ok(date >= threshold)
}

fn parse_bool(q: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(v) => Err(ApiError::bad_request(format!(
            "invalid {key} {v:?}: expected true or false"
        ))),
    }
}

fn parse_limit(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(v) => match v.parse::<u64>() {
            Ok(0) | Err(_) => Err(ApiError::bad_request(format!(
                "invalid limit {v:?}: expected an integer from 1 to {MAX_PAGE}"
            ))),
            Ok(n) => Ok(usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE)),
        },
    }
}

fn parse_filter(q: &HashMap<String, String>, paginated: bool) -> Result<Filter, ApiError> {
    let statuses = match q.get("status").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => None,
        Some(list) => {
            let mut set = BTreeSet::new();
            for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let upper = s.to_ascii_uppercase();
                let known = STATUSES.iter().find(|k| **k == upper).ok_or_else(|| {
                    ApiError::bad_request(format!("unknown status {s:?} in status filter"))
                })?;
                set.insert(*known);
            }
            // Selecting every status is the same as not filtering.
            (set.len() < STATUSES.len()).then_some(set)
        }
    };
    let q_search = if paginated {
        q.get("q")
            .map(|s| s.trim().to_lowercase())
            .filter(|s| s.chars().count() >= 2)
    } else {
        None
    };
    if q_search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(ApiError::bad_request("q must be at most 200 characters"));
    }
    Ok(Filter {
        statuses,
        show_terminated: parse_bool(q, "showTerminated")?,
        external_id: q.get("externalId").filter(|s| !s.is_empty()).cloned(),
        q: q_search,
    })
}

/// `GET /sandboxes`: a bare array, or (2026 generation with `Blaxel-Version >= 2026-04-28`) a page
/// `{data, meta: {hasMore, nextCursor, total}}`.
#[allow(
    clippy::implicit_hasher,
    reason = "the query extractor's concrete map type"
)]
pub async fn list(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    headers: HeaderMap,
    SimQuery(q): SimQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let cfg = &sim.config;
    let now = sim.clock.now();
    if cfg.generation == ApiGeneration::V2025 {
        let mut world = sim.world();
        let b = book(&mut world, &caller.workspace, now, cfg)?;
        let mut items: Vec<Value> = b
            .iter()
            .filter(|r| r.phase(now, cfg) != Phase::Gone)
            .map(|r| render(r, &caller.workspace, now, &sim))
            .collect();
        items.extend(malformed_sandboxes(&world, &caller.workspace));
        return Ok(Json(Value::Array(items)));
    }
    let paginated = wants_pagination(&headers)?;
    let filter = parse_filter(&q, paginated)?;
    if !paginated {
        let mut world = sim.world();
        let b = book(&mut world, &caller.workspace, now, cfg)?;
        let mut items: Vec<Value> = b
            .iter()
            .filter(|r| filter.accepts(r, r.phase(now, cfg)))
            .map(|r| render_with(r, &caller.workspace, now, &sim, false))
            .collect();
        items.extend(malformed_sandboxes(&world, &caller.workspace));
        return Ok(Json(Value::Array(items)));
    }
    let sort = Sort::parse(q.get("sort").map(String::as_str))?;
    let limit = parse_limit(&q)?;
    let fp = filter.fingerprint(sort);
    let cursor = match q.get("cursor").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_cursor(c, &fp)?),
        None => None,
    };
    let mut world = sim.world();
    let b = book(&mut world, &caller.workspace, now, cfg)?;
    let names: Box<dyn Iterator<Item = &String>> = match (sort, &cursor) {
        (Sort::CreatedDesc, None) => Box::new(b.by_created.iter().rev().map(|k| &k.2)),
        (Sort::CreatedDesc, Some(c)) => Box::new(
            b.by_created
                .range(..(c.created, c.seq, c.name.clone()))
                .rev()
                .map(|k| &k.2),
        ),
        (Sort::CreatedAsc, None) => Box::new(b.by_created.iter().map(|k| &k.2)),
        (Sort::CreatedAsc, Some(c)) => Box::new(
            b.by_created
                .range((
                    Bound::Excluded((c.created, c.seq, c.name.clone())),
                    Bound::Unbounded,
                ))
                .map(|k| &k.2),
        ),
        (Sort::NameAsc, None) => Box::new(b.by_name.keys()),
        (Sort::NameAsc, Some(c)) => Box::new(
            b.by_name
                .range::<str, _>((Bound::Excluded(c.name.as_str()), Bound::Unbounded))
                .map(|(k, _)| k),
        ),
        (Sort::NameDesc, None) => Box::new(b.by_name.keys().rev()),
        (Sort::NameDesc, Some(c)) => Box::new(
            b.by_name
                .range::<str, _>((Bound::Unbounded, Bound::Excluded(c.name.as_str())))
                .rev()
                .map(|(k, _)| k),
        ),
    };
    let mut page: Vec<&SandboxRecord> = Vec::with_capacity(limit.min(64) + 1);
    for name in names {
        let Some(r) = b.by_name.get(name) else {
            continue;
        };
        if filter.accepts(r, r.phase(now, cfg)) {
            page.push(r);
            if page.len() > limit {
                break;
            }
        }
    }
    let has_more = page.len() > limit;
    page.truncate(limit);
    let next_cursor = match (has_more, page.last()) {
        (true, Some(last)) => encode_cursor(&fp, last),
        _ => String::new(),
    };
    let mut data: Vec<Value> = page
        .iter()
        .map(|r| render_with(r, &caller.workspace, now, &sim, false))
        .collect();
    let total = b.len();
    // Raw records a test added ride on the last page, whatever the filters: they cannot be sorted or
    // filtered, and a cursor cannot point at them.
    let malformed = malformed_sandboxes(&world, &caller.workspace);
    let total = total + malformed.len();
    if !has_more {
        data.extend(malformed);
    }
    Ok(Json(json!({
        "data": data,
        "meta": { "hasMore": has_more, "nextCursor": next_cursor, "total": total },
    })))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(powered: bool) -> SandboxRecord {
        SandboxRecord {
            name: "a".into(),
            display_name: None,
            labels: Map::new(),
            external_id: None,
            spec: Map::new(),
            created_at: SimTime(0),
            created_by: String::new(),
            updated_at: SimTime(0),
            updated_by: String::new(),
            seq: 1,
            powered,
            power_since: SimTime(0),
            never_started: !powered,
            doomed: false,
            failure: None,
            deleted_at: None,
            last_used_at: SimTime(0),
            previews: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    fn cfg() -> SimConfig {
        SimConfig {
            deploy_time: Duration::from_secs(2),
            stop_time: Duration::from_secs(1),
            delete_time: Duration::from_secs(1),
            termination_retention: Duration::from_secs(10),
            ..SimConfig::default()
        }
    }

    /// The lifecycle is a pure function of the clock: deploy, stop, delete and purge happen at the
    /// configured instants and nowhere else.
    #[test]
    fn phases_follow_the_clock() {
        let c = cfg();
        let mut r = record(true);
        assert_eq!(r.phase(SimTime(1_999), &c), Phase::Deploying);
        assert_eq!(r.phase(SimTime(2_000), &c), Phase::Deployed);
        r.set_power(false, SimTime(5_000));
        assert_eq!(r.phase(SimTime(5_999), &c), Phase::Deactivating);
        assert_eq!(r.phase(SimTime(6_000), &c), Phase::Deactivated);
        r.deleted_at = Some(SimTime(7_000));
        assert_eq!(r.phase(SimTime(7_999), &c), Phase::Deleting);
        assert_eq!(r.phase(SimTime(8_000), &c), Phase::Terminated);
        assert_eq!(r.phase(SimTime(17_999), &c), Phase::Terminated);
        assert_eq!(r.phase(SimTime(18_000), &c), Phase::Gone);
        assert_eq!(record(false).phase(SimTime(0), &c), Phase::Deactivated);
    }

    /// Purging removes exactly the records past retention, and the indexes stay consistent.
    #[test]
    fn purge_is_lazy_and_exact() {
        let c = cfg();
        let mut b = SandboxBook::default();
        b.insert(record(true), &c);
        let mut other = record(true);
        other.name = "b".into();
        other.seq = 2;
        b.insert(other, &c);
        b.mark_deleted("a", SimTime(0), &c);
        b.purge(SimTime(10_999), &c);
        assert_eq!(b.len(), 2);
        b.purge(SimTime(11_000), &c);
        assert_eq!(b.len(), 1);
        assert_eq!(b.by_created.len(), 1);
        assert!(b.purge_queue.is_empty());
    }

    /// Cursors round-trip and refuse to be reused with another query.
    #[test]
    fn cursors() {
        let r = record(true);
        let cur = encode_cursor("fp", &r);
        assert_eq!(
            decode_cursor(&cur, "fp").ok(),
            Some(Cursor {
                created: SimTime(0),
                seq: 1,
                name: "a".into()
            })
        );
        assert!(decode_cursor(&cur, "other").is_err());
        assert!(decode_cursor("zz", "fp").is_err());
        assert!(decode_cursor("", "fp").is_err());
    }
}
