//! Test doubles for the drivers' unit tests: a Blaxel held in memory that answers as the API does and
//! fails on request ([`FakeBlaxel`]), a Kubernetes API that records what is sent to it ([`FakeKube`]),
//! and a [`Context`] over both. Every branch of a driver runs without a cluster or a simulator; the
//! end-to-end suites run the same code against the real ones.

#![allow(
    clippy::panic,
    reason = "test doubles: a malformed test object is the test's own mistake"
)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use kube::core::object::{HasSpec, HasStatus};
use kube::runtime::events::Reporter;
use prometheus_client::metrics::counter::Counter;
use serde_json::{Value, json};

use super::backoff::Backoff;
use super::cache::ListCache;
use super::cached::Cached;
use super::credentials::DefaultCredentials;
use super::events::EventPublisher;
use super::kinds::Kinds;
use super::removals::RemovalGuard;
use super::{Context, Settings};
use crate::blaxel::model::{
    IntegrationConnection, Listing, PendingInvitation, Preview, PreviewToken, Sandbox, Unreadable,
    Workspace, WorkspaceAvailability, WorkspaceUser,
};
use crate::blaxel::{
    ApiError, ApiKey, IntegrationsApi, PowerControl, PreviewsApi, SandboxesApi, Scope, UsersApi,
    WorkspacesApi,
};

/// A change made to a [`FakeBlaxel`] from outside, as by another writer.
type Change = Box<dyn FnOnce(&FakeBlaxel) + Send>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Blaxel users, sandboxes, connections (of one workspace) and workspaces in memory, with every call recorded as
/// `"<method> <argument>"` and errors scripted per method.
#[derive(Default)]
pub struct FakeBlaxel {
    /// Users and invitations by e-mail.
    pub users: Mutex<BTreeMap<String, WorkspaceUser>>,
    /// Sandboxes by name.
    pub sandboxes: Mutex<BTreeMap<String, Sandbox>>,
    /// Integration connections by name.
    pub connections: Mutex<BTreeMap<String, IntegrationConnection>>,
    /// Workspaces by name (every workspace the key sees).
    pub workspaces: Mutex<BTreeMap<String, Workspace>>,
    /// Records of the user list that could not be decoded, listed with the users.
    pub unreadable_users: Mutex<Vec<Unreadable>>,
    /// The power control the workspace is known to use.
    pub power: Mutex<Option<PowerControl>>,
    /// Today's API: no start/stop routes; power is `spec.enabled`.
    pub todays_api: std::sync::atomic::AtomicBool,
    calls: Mutex<Vec<String>>,
    /// Keys answered 401 whatever the call.
    refused_keys: Mutex<Vec<String>>,
    faults: Mutex<HashMap<&'static str, VecDeque<ApiError>>>,
    /// What happens when a method is next called, before it answers (another writer meanwhile).
    before: Mutex<HashMap<&'static str, Change>>,
}

impl FakeBlaxel {
    /// The next call of `method` fails with `error` (several queue up).
    pub fn fail_next(&self, method: &'static str, error: ApiError) {
        lock(&self.faults)
            .entry(method)
            .or_default()
            .push_back(error);
    }

    /// Runs `change` when `method` is next called, before its answer (another writer meanwhile).
    pub fn meanwhile(&self, method: &'static str, change: impl FnOnce(&Self) + Send + 'static) {
        lock(&self.before).insert(method, Box::new(change));
    }

    /// Answers every call made with `key` 401 Unauthorized.
    pub fn refuse_key(&self, key: &str) {
        lock(&self.refused_keys).push(key.to_owned());
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// How many calls of `method` were made.
    pub fn count(&self, method: &str) -> usize {
        lock(&self.calls)
            .iter()
            .filter(|c| c.split(' ').next() == Some(method))
            .count()
    }

    /// The calls that change something (every one but lists, gets, counts and availability checks).
    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| {
                !["list_", "get_", "count_", "workspace_availability"]
                    .iter()
                    .any(|r| c.starts_with(r))
            })
            .collect()
    }

    /// Adds a user or invitation.
    pub fn put_user(&self, user: WorkspaceUser) {
        lock(&self.users).insert(user.email.clone(), user);
    }

    /// Adds a sandbox.
    pub fn put_sandbox(&self, sandbox: Sandbox) {
        lock(&self.sandboxes).insert(sandbox.metadata.name.clone(), sandbox);
    }

    /// The connection named `name`, if any, as last written (secret values included).
    pub fn connection(&self, name: &str) -> Option<IntegrationConnection> {
        lock(&self.connections).get(name).cloned()
    }

    /// Adds a workspace.
    pub fn put_workspace(&self, workspace: Workspace) {
        lock(&self.workspaces).insert(workspace.name.clone(), workspace);
    }

    /// The workspace named `name`, if any.
    pub fn workspace(&self, name: &str) -> Option<Workspace> {
        lock(&self.workspaces).get(name).cloned()
    }

    /// The sandbox named `name`, if any.
    pub fn sandbox(&self, name: &str) -> Option<Sandbox> {
        lock(&self.sandboxes).get(name).cloned()
    }

    /// Records the call, refuses a refused key, runs a pending change, and takes a scripted failure.
    fn call(&self, scope: &Scope, method: &'static str, argument: &str) -> Result<(), ApiError> {
        lock(&self.calls).push(format!("{method} {argument}").trim_end().to_owned());
        if lock(&self.refused_keys).contains(&scope.api_key.expose().to_owned()) {
            return Err(ApiError::Unauthorized {
                message: "unknown API key".to_owned(),
            });
        }
        let change = lock(&self.before).remove(method);
        if let Some(change) = change {
            change(self);
        }
        lock(&self.faults)
            .get_mut(method)
            .and_then(VecDeque::pop_front)
            .map_or(Ok(()), Err)
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("{what} not found"),
    }
}

fn not_here() -> ApiError {
    ApiError::Invalid {
        message: "not served by this fake".to_owned(),
    }
}

#[async_trait]
impl UsersApi for FakeBlaxel {
    async fn list_users(&self, scope: &Scope) -> Result<Listing<WorkspaceUser>, ApiError> {
        self.call(scope, "list_users", "")?;
        Ok(Listing {
            items: lock(&self.users).values().cloned().collect(),
            unreadable: lock(&self.unreadable_users).clone(),
        })
    }

    async fn invite_user(&self, scope: &Scope, email: &str) -> Result<PendingInvitation, ApiError> {
        self.call(scope, "invite_user", email)?;
        // As the simulator: a live invitation or a member is answered unchanged; an expired invitation
        // is replaced by a fresh one.
        let mut users = lock(&self.users);
        let live = users.get(email).filter(|u| !u.expired);
        if live.is_none() {
            users.insert(
                email.to_owned(),
                WorkspaceUser {
                    email: email.to_owned(),
                    accepted: Some(false),
                    ..WorkspaceUser::default()
                },
            );
        }
        Ok(PendingInvitation {
            email: email.to_owned(),
            role: users.get(email).and_then(|u| u.role.clone()),
            ..PendingInvitation::default()
        })
    }

    async fn set_user_role(
        &self,
        scope: &Scope,
        email: &str,
        role: &str,
    ) -> Result<WorkspaceUser, ApiError> {
        self.call(scope, "set_user_role", &format!("{email} {role}"))?;
        let mut users = lock(&self.users);
        let user = users.get_mut(email).ok_or_else(|| not_found(email))?;
        user.role = Some(role.to_owned());
        Ok(user.clone())
    }

    async fn remove_user(&self, scope: &Scope, email: &str) -> Result<(), ApiError> {
        self.call(scope, "remove_user", email)?;
        lock(&self.users)
            .remove(email)
            .map(|_| ())
            .ok_or_else(|| not_found(email))
    }
}

#[async_trait]
impl SandboxesApi for FakeBlaxel {
    async fn list_sandboxes(&self, scope: &Scope) -> Result<Listing<Sandbox>, ApiError> {
        self.call(scope, "list_sandboxes", "")?;
        Ok(Listing::complete(
            lock(&self.sandboxes).values().cloned().collect(),
        ))
    }

    async fn get_sandbox(&self, scope: &Scope, name: &str) -> Result<Sandbox, ApiError> {
        self.call(scope, "get_sandbox", name)?;
        self.sandbox(name).ok_or_else(|| not_found(name))
    }

    async fn create_sandbox(&self, scope: &Scope, sandbox: &Sandbox) -> Result<Sandbox, ApiError> {
        let name = sandbox.metadata.name.as_str();
        self.call(scope, "create_sandbox", name)?;
        let mut sandboxes = lock(&self.sandboxes);
        if sandboxes.contains_key(name) {
            return Err(ApiError::Conflict {
                message: "exists".to_owned(),
            });
        }
        let mut created = sandbox.clone();
        created.status = Some("DEPLOYED".to_owned());
        sandboxes.insert(name.to_owned(), created.clone());
        Ok(created)
    }

    async fn update_sandbox(&self, scope: &Scope, sandbox: &Sandbox) -> Result<Sandbox, ApiError> {
        let name = sandbox.metadata.name.as_str();
        self.call(scope, "update_sandbox", name)?;
        let mut sandboxes = lock(&self.sandboxes);
        let stored = sandboxes.get_mut(name).ok_or_else(|| not_found(name))?;
        let status = stored.status.clone();
        *stored = sandbox.clone();
        stored.status = status;
        Ok(stored.clone())
    }

    async fn delete_sandbox(&self, scope: &Scope, name: &str) -> Result<(), ApiError> {
        self.call(scope, "delete_sandbox", name)?;
        let mut sandboxes = lock(&self.sandboxes);
        let stored = sandboxes.get_mut(name).ok_or_else(|| not_found(name))?;
        stored.status = Some("DELETING".to_owned());
        Ok(())
    }

    async fn set_sandbox_power(
        &self,
        scope: &Scope,
        current: &Sandbox,
        running: bool,
    ) -> Result<PowerControl, ApiError> {
        let name = current.metadata.name.as_str();
        self.call(scope, "set_sandbox_power", &format!("{name} {running}"))?;
        // As the client: where power is `spec.enabled`, nothing is written (the caller's update sets it).
        if self.todays_api.load(std::sync::atomic::Ordering::SeqCst) {
            *lock(&self.power) = Some(PowerControl::Enabled);
            return Ok(PowerControl::Enabled);
        }
        let mut sandboxes = lock(&self.sandboxes);
        let stored = sandboxes.get_mut(name).ok_or_else(|| not_found(name))?;
        stored.status = Some(if running { "DEPLOYED" } else { "DEACTIVATED" }.to_owned());
        *lock(&self.power) = Some(PowerControl::StartStop);
        Ok(PowerControl::StartStop)
    }

    fn power_control(&self, _: &str) -> Option<PowerControl> {
        *lock(&self.power)
    }
}

#[async_trait]
impl PreviewsApi for FakeBlaxel {
    async fn list_previews(&self, _: &Scope, _: &str) -> Result<Vec<Preview>, ApiError> {
        Err(not_here())
    }
    async fn create_preview(&self, _: &Scope, _: &str, _: &Preview) -> Result<Preview, ApiError> {
        Err(not_here())
    }
    async fn get_preview(&self, _: &Scope, _: &str, _: &str) -> Result<Preview, ApiError> {
        Err(not_here())
    }
    async fn update_preview(&self, _: &Scope, _: &str, _: &Preview) -> Result<Preview, ApiError> {
        Err(not_here())
    }
    async fn delete_preview(&self, _: &Scope, _: &str, _: &str) -> Result<(), ApiError> {
        Err(not_here())
    }
    async fn list_preview_tokens(
        &self,
        _: &Scope,
        _: &str,
        _: &str,
    ) -> Result<Vec<PreviewToken>, ApiError> {
        Err(not_here())
    }
    async fn create_preview_token(
        &self,
        _: &Scope,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<PreviewToken, ApiError> {
        Err(not_here())
    }
    async fn delete_preview_token(
        &self,
        _: &Scope,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<(), ApiError> {
        Err(not_here())
    }
}

#[async_trait]
impl WorkspacesApi for FakeBlaxel {
    async fn list_workspaces(&self, scope: &Scope) -> Result<Vec<Workspace>, ApiError> {
        self.call(scope, "list_workspaces", "")?;
        Ok(lock(&self.workspaces).values().cloned().collect())
    }

    async fn get_workspace(&self, scope: &Scope, name: &str) -> Result<Workspace, ApiError> {
        self.call(scope, "get_workspace", name)?;
        self.workspace(name).ok_or_else(|| not_found(name))
    }

    async fn workspace_availability(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<WorkspaceAvailability, ApiError> {
        self.call(scope, "workspace_availability", name)?;
        // As the simulator: a name any workspace holds is `taken`.
        if lock(&self.workspaces).contains_key(name) {
            return Ok(WorkspaceAvailability {
                available: false,
                reason: Some("taken".to_owned()),
                message: Some(format!("The workspace name {name:?} is already taken")),
            });
        }
        Ok(WorkspaceAvailability {
            available: true,
            ..WorkspaceAvailability::default()
        })
    }

    async fn create_workspace(
        &self,
        scope: &Scope,
        workspace: &Workspace,
    ) -> Result<Workspace, ApiError> {
        let name = workspace.name.as_str();
        self.call(scope, "create_workspace", name)?;
        let mut workspaces = lock(&self.workspaces);
        if workspaces.contains_key(name) {
            return Err(ApiError::Conflict {
                message: "WORKSPACE_ALREADY_EXISTS".to_owned(),
            });
        }
        // As the simulator: a new workspace gets an id and starts `created` (it is `ready` later).
        let mut created = workspace.clone();
        created.id = Some(format!("id-{name}"));
        created.status = Some("created".to_owned());
        workspaces.insert(name.to_owned(), created.clone());
        Ok(created)
    }

    async fn update_workspace(
        &self,
        scope: &Scope,
        workspace: &Workspace,
    ) -> Result<Workspace, ApiError> {
        let name = workspace.name.as_str();
        self.call(scope, "update_workspace", name)?;
        let mut workspaces = lock(&self.workspaces);
        let stored = workspaces.get_mut(name).ok_or_else(|| not_found(name))?;
        // As the simulator: the fields the body carries are written, the others kept; the read-only
        // ones (id, status) are the server's.
        let mut next = workspace.clone();
        next.display_name = next.display_name.or_else(|| stored.display_name.clone());
        next.labels = next.labels.or_else(|| stored.labels.clone());
        next.region = next.region.or_else(|| stored.region.clone());
        next.id.clone_from(&stored.id);
        next.status.clone_from(&stored.status);
        next.status_reason.clone_from(&stored.status_reason);
        *stored = next;
        Ok(stored.clone())
    }

    async fn delete_workspace(&self, scope: &Scope, name: &str) -> Result<(), ApiError> {
        self.call(scope, "delete_workspace", name)?;
        lock(&self.workspaces)
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }
}

#[async_trait]
impl IntegrationsApi for FakeBlaxel {
    async fn list_connections(
        &self,
        scope: &Scope,
    ) -> Result<Listing<IntegrationConnection>, ApiError> {
        self.call(scope, "list_connections", "")?;
        // As read from Blaxel: the secret's values are never shown.
        let shown = lock(&self.connections)
            .values()
            .map(|c| {
                let mut c = c.clone();
                c.spec.secret = None;
                c
            })
            .collect();
        Ok(Listing::complete(shown))
    }

    async fn create_connection(
        &self,
        scope: &Scope,
        connection: &IntegrationConnection,
    ) -> Result<IntegrationConnection, ApiError> {
        let name = connection.metadata.name.as_str();
        self.call(scope, "create_connection", name)?;
        let mut connections = lock(&self.connections);
        if connections.contains_key(name) {
            return Err(ApiError::Conflict {
                message: "exists".to_owned(),
            });
        }
        connections.insert(name.to_owned(), connection.clone());
        Ok(connection.clone())
    }

    async fn update_connection(
        &self,
        scope: &Scope,
        connection: &IntegrationConnection,
    ) -> Result<IntegrationConnection, ApiError> {
        let name = connection.metadata.name.as_str();
        self.call(scope, "update_connection", name)?;
        let mut connections = lock(&self.connections);
        let stored = connections.get_mut(name).ok_or_else(|| not_found(name))?;
        stored.clone_from(connection);
        Ok(connection.clone())
    }

    async fn delete_connection(&self, scope: &Scope, name: &str) -> Result<(), ApiError> {
        self.call(scope, "delete_connection", name)?;
        lock(&self.connections)
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }

    async fn count_models(&self, scope: &Scope, name: &str) -> Result<u32, ApiError> {
        self.call(scope, "count_models", name)?;
        Ok(3)
    }
}

/// One request the Kubernetes API received.
#[derive(Debug, Clone)]
pub struct Sent {
    /// `GET`, `PATCH`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The body, as JSON (`null` when empty).
    pub body: Value,
}

/// A Kubernetes API that records every request. It answers a status patch with `object` carrying the
/// patched status, an Event with a minimal Event, a `GET` of a Secret from `secrets`, and anything
/// else with 404.
#[derive(Clone, Default)]
pub struct FakeKube {
    sent: Arc<Mutex<Vec<Sent>>>,
    object: Arc<Mutex<Value>>,
    secrets: Arc<Mutex<HashMap<String, Value>>>,
    /// ConfigMaps by path, each with its `resourceVersion`.
    config_maps: Arc<Mutex<HashMap<String, Value>>>,
}

impl FakeKube {
    /// A fake whose status patches answer with `object`.
    pub fn serving(object: &Value) -> Self {
        let fake = Self::default();
        *lock(&fake.object) = object.clone();
        fake
    }

    /// Serves `secret` (a whole Secret object) at its namespace and name.
    pub fn put_secret(&self, secret: Value) {
        let path = format!(
            "/api/v1/namespaces/{}/secrets/{}",
            secret["metadata"]["namespace"].as_str().unwrap_or_default(),
            secret["metadata"]["name"].as_str().unwrap_or_default()
        );
        lock(&self.secrets).insert(path, secret);
    }

    /// The ConfigMap `name` of namespace `namespace`, if any.
    pub fn config_map(&self, namespace: &str, name: &str) -> Option<Value> {
        lock(&self.config_maps)
            .get(&format!("/api/v1/namespaces/{namespace}/configmaps/{name}"))
            .cloned()
    }

    /// Sets (`Some`) or deletes (`None`) a ConfigMap by hand, as another writer would.
    pub fn set_config_map(&self, namespace: &str, name: &str, map: Option<Value>) {
        let path = format!("/api/v1/namespaces/{namespace}/configmaps/{name}");
        let mut maps = lock(&self.config_maps);
        match map {
            Some(mut map) => {
                map["metadata"]["resourceVersion"] = json!("by-hand");
                maps.insert(path, map);
            }
            None => {
                maps.remove(&path);
            }
        }
    }

    /// ConfigMaps as the API server keeps them: create (409 if present), replace (404 if absent, 409
    /// on another `resourceVersion`), get.
    fn config_map_answer(&self, sent: &Sent) -> Option<(u16, Value)> {
        let collection = sent.path.strip_suffix("/configmaps").map(str::to_owned);
        let mut maps = lock(&self.config_maps);
        let conflict = (
            409,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                    "reason": "Conflict", "code": 409, "message": "conflict"}),
        );
        if let Some(collection) = collection.filter(|_| sent.method == "POST") {
            let name = sent.body["metadata"]["name"].as_str().unwrap_or_default();
            let path = format!("{collection}/configmaps/{name}");
            if maps.contains_key(&path) {
                return Some(conflict);
            }
            let mut map = sent.body.clone();
            map["metadata"]["resourceVersion"] = json!("1");
            maps.insert(path, map.clone());
            return Some((201, map));
        }
        if !sent.path.contains("/configmaps/") {
            return None;
        }
        let stored = maps.get(&sent.path).cloned();
        match (sent.method.as_str(), stored) {
            ("GET", Some(map)) => Some((200, map)),
            ("PUT", Some(map)) => {
                let sent_version = &sent.body["metadata"]["resourceVersion"];
                if !sent_version.is_null() && *sent_version != map["metadata"]["resourceVersion"] {
                    return Some(conflict);
                }
                let next = map["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
                    + 1;
                let mut map = sent.body.clone();
                map["metadata"]["resourceVersion"] = json!(next.to_string());
                maps.insert(sent.path.clone(), map.clone());
                Some((200, map))
            }
            _ => None,
        }
    }

    /// Every request so far.
    pub fn sent(&self) -> Vec<Sent> {
        lock(&self.sent).clone()
    }

    /// The statuses written, in order.
    pub fn statuses(&self) -> Vec<Value> {
        self.sent()
            .into_iter()
            .filter(|s| s.method == "PATCH" && s.path.ends_with("/status"))
            .map(|s| s.body["status"].clone())
            .collect()
    }

    /// The last status written.
    pub fn status(&self) -> Value {
        self.statuses().pop().unwrap_or(Value::Null)
    }

    /// The last status's condition `kind`: its status and reason.
    pub fn condition(&self, kind: &str) -> (String, String) {
        let status = self.status();
        let found = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == kind);
        let text = |c: &Value, field: &str| c[field].as_str().unwrap_or_default().to_owned();
        found.map_or_else(Default::default, |c| (text(c, "status"), text(c, "reason")))
    }

    /// The reasons of the Events published, in order, each as `Normal:<reason>` or `Warning:<reason>`.
    pub fn events(&self) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|s| s.path.contains("/events") && s.method == "POST")
            .map(|s| {
                format!(
                    "{}:{}",
                    s.body["type"].as_str().unwrap_or_default(),
                    s.body["reason"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// A client whose requests this fake answers.
    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let fake = fake.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let sent = Sent {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                };
                let (status, answer) = fake.answer(&sent);
                lock(&fake.sent).push(sent);
                let response = http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(answer.to_string().into_bytes()));
                response.map_err(|e| e.to_string())
            }
        });
        kube::Client::new(service, "default")
    }

    fn answer(&self, sent: &Sent) -> (u16, Value) {
        if let Some(answer) = self.config_map_answer(sent) {
            return answer;
        }
        if sent.path.ends_with("/status") && sent.method == "PATCH" {
            let mut object = lock(&self.object).clone();
            object["status"] = sent.body["status"].clone();
            return (200, object);
        }
        if sent.path.contains("/events") {
            return (
                201,
                json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                       "metadata": {"name": "e", "namespace": "default"},
                       "eventTime": "2026-01-01T00:00:00.000000Z"}),
            );
        }
        if sent.method == "GET"
            && let Some(secret) = lock(&self.secrets).get(&sent.path)
        {
            return (200, secret.clone());
        }
        (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "not found"}),
        )
    }
}

/// Settings for driver tests: long periods, so that only a forced look reads a list again.
pub fn settings() -> Settings {
    Settings {
        resync: Duration::from_secs(600),
        invitation_poll: Duration::from_secs(600),
        transition_poll: Duration::from_secs(5),
        ..Settings::default()
    }
}

/// A [`Context`] over `api` and `kube`, the default key `key` for every namespace, and a removal guard
/// of `removal_limit` per hour.
pub fn context(api: &Arc<FakeBlaxel>, kube: &FakeKube, removal_limit: u32) -> Context {
    let client = kube.client();
    let settings = settings();
    Context {
        client: client.clone(),
        api: api.clone(),
        credentials: DefaultCredentials {
            key: Some(ApiKey::new("the-default-key")).into(),
            namespaces: std::iter::once("*".to_owned()).collect(),
        },
        secret_keys: super::credentials::SecretKeys::default(),
        users: ListCache::new(settings.resync * 3),
        sandboxes: ListCache::new(settings.resync * 3),
        connections: ListCache::new(settings.resync * 3),
        recorder: EventPublisher::new(
            client.clone(),
            Reporter {
                controller: "blaxel-operator".to_owned(),
                instance: None,
            },
        ),
        backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        removals: RemovalGuard::new(
            removal_limit,
            Duration::from_secs(3600),
            Counter::default(),
            None,
        ),
        watched_namespace: None,
        kinds: Kinds::default(),
        digests: super::digest::DigestKeys::new(&client, None),
        written: super::WrittenStatuses::default(),
        reasons: super::reasons::Reasons::default(),
        settings,
    }
}

/// A custom resource of `kind` named `name` in namespace `team-a` as the API server would hold it
/// (uid `uid-<name>`), with `status` if any.
pub fn object(
    kind: &str,
    name: &str,
    spec: &Value,
    status: Option<Value>,
    generation: i64,
) -> Value {
    let mut obj = json!({
        "apiVersion": "blaxel.ai/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": "team-a", "uid": format!("uid-{name}"),
                     "generation": generation},
        "spec": spec,
    });
    if let Some(status) = status {
        obj["status"] = status;
    }
    obj
}

/// `obj` being deleted: a deletion timestamp, and the operator's finalizer.
pub fn deleting(mut obj: Value) -> Value {
    obj["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    obj["metadata"]["finalizers"] = json!([crate::crd::FINALIZER]);
    obj
}

/// A fake world around one object: Blaxel, the Kubernetes API (answering status writes with `obj`),
/// and a context over both.
pub struct Harness<K: HasSpec + HasStatus> {
    /// Blaxel.
    pub api: Arc<FakeBlaxel>,
    /// The Kubernetes API.
    pub kube: FakeKube,
    /// The reconcilers' context.
    pub ctx: Context,
    /// The object, as the controller caches it.
    pub obj: Cached<K>,
}

impl<K> Harness<K>
where
    K: HasSpec + HasStatus,
    Cached<K>: serde::de::DeserializeOwned,
{
    /// A world around `obj`, with a removal limit of `removal_limit` per hour.
    pub fn new(obj: &Value, removal_limit: u32) -> Self {
        let api = Arc::new(FakeBlaxel::default());
        let kube = FakeKube::serving(obj);
        let ctx = context(&api, &kube, removal_limit);
        Self {
            api,
            kube,
            ctx,
            obj: cached(obj),
        }
    }
}

/// Registers kind `K` in `ctx` with `objects` in its store and claim index, as the watch would.
pub fn register<K>(ctx: &mut Context, objects: &[Value])
where
    K: HasSpec + HasStatus + 'static,
    Cached<K>: super::managed::Managed,
{
    let (store, mut writer) = kube::runtime::reflector::store::<Cached<K>>();
    let claims = Arc::new(super::claims::ClaimIndex::new(
        <Cached<K> as super::managed::Managed>::claim_hash,
    ));
    for obj in objects {
        let event = kube::runtime::watcher::Event::Apply(cached::<K>(obj));
        claims.apply(&event);
        writer.apply_watcher_event(&event);
    }
    ctx.kinds.insert(super::kinds::KindState {
        store,
        claims,
        view: Arc::default(),
    });
}

/// `obj` as the controller caches it.
pub fn cached<K>(obj: &Value) -> Cached<K>
where
    K: HasSpec + HasStatus,
    Cached<K>: serde::de::DeserializeOwned,
{
    match serde_json::from_value(obj.clone()) {
        Ok(cached) => cached,
        Err(e) => panic!("not a {}: {e}", std::any::type_name::<K>()),
    }
}

/// The scope of workspace `acme` with the default key.
pub fn scope() -> Scope {
    Scope {
        workspace: "acme".to_owned(),
        api_key: ApiKey::new("the-default-key"),
    }
}
