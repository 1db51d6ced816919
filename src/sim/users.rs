//! Workspace members and invitations: `GET/POST /users`, `PUT/DELETE /users/{subOrEmail}` and, in the 2025
//! generation, `POST /workspaces/{ws}/join|decline`.
//!
//! One record per e-mail address per workspace covers the whole life of a membership: sent (pending),
//! expired, accepted (member). Whether a record is pending, expired or accepted is computed from the clock
//! on every read ([`UserRecord::standing`]), so `--auto-accept-after` and `--invite-ttl` need no background task.
//!
//! Decisions where the definition is silent:
//! - **Re-inviting does not duplicate.** `POST /users` for an address that already has a live (pending,
//!   unexpired) invitation or is already a member answers **200 with the existing invitation** unchanged: the
//!   definition lists only 200, 400 and 404 for that route, and an idempotent 200 lets a client retry safely.
//!   For an **expired** invitation it replaces the old one with a fresh pending invitation (new `createdAt`,
//!   role back to `member`).
//! - **Roles of pending invitations can be set.** `PUT /users/{email}` works on a pending or expired
//!   invitation too (it is listed by `GET /users`, and the invite body has no role, so invite-then-set-role
//!   is the only way to invite an admin); the member gets that role on acceptance.
//! - **Identity.** E-mail addresses are compared case-insensitively and stored lower-cased. A member's `sub` is
//!   derived from the address (stable across runs); it is only shown, and only usable in paths, once the
//!   invitation is accepted. Pending entries carry no `sub`, `given_name` or `family_name`.
//! - **Declining** removes the invitation (it no longer appears in `GET /users`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::auth::{Caller, Invitee};
use super::body::{JsonObject, SimPath, field};
use super::clock::{SimClock, SimTime};
use super::config::{ApiGeneration, SimConfig};
use super::error::ApiError;
use super::state::{Sim, World};
use super::util::{fnv1a, validate_email};
use super::workspaces::render as render_workspace;

/// A workspace role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `admin`.
    Admin,
    /// `member` (the role of a new invitation).
    Member,
}

impl Role {
    /// Parses `admin` or `member` (exactly, as the API spells them).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }

    /// The API spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

/// How a user came into the workspace (2026 `WorkspaceUser.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// Invited (`POST /users`): the only way through the API.
    #[default]
    Invitation,
    /// Provisioned by the identity provider's directory (SCIM); only through `/_sim/`.
    DirectorySync,
    /// Joined by e-mail domain; only through `/_sim/`.
    DomainCapture,
}

impl Source {
    /// Parses the API spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invitation" => Some(Self::Invitation),
            "directory_sync" => Some(Self::DirectorySync),
            "domain_capture" => Some(Self::DomainCapture),
            _ => None,
        }
    }

    /// The API spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::DirectorySync => "directory_sync",
            Self::DomainCapture => "domain_capture",
        }
    }
}

/// Where a membership stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Invited, not yet accepted, not expired.
    Pending,
    /// Invited, not accepted in time.
    Expired,
    /// Accepted at the given time.
    Member(SimTime),
}

/// One invitation-or-membership.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Lower-cased e-mail address.
    pub email: String,
    /// Stable user id, derived from the address.
    pub sub: String,
    /// Role (of the invitation, then of the member).
    pub role: Role,
    /// When the (current) invitation was sent.
    pub invited_at: SimTime,
    /// Who sent it.
    pub invited_by: String,
    /// Last change.
    pub updated_at: SimTime,
    /// Who made the last change.
    pub updated_by: String,
    /// Explicit acceptance (join, `/_sim/` accept, seeded member); automatic acceptance is computed.
    pub accepted_at: Option<SimTime>,
    /// How the user came in (rendered in the 2026 generation).
    pub source: Source,
}

impl UserRecord {
    /// A fresh pending invitation.
    #[must_use]
    pub fn invitation(email: &str, now: SimTime, by: &str) -> Self {
        Self {
            email: email.to_owned(),
            sub: sub_for(email),
            role: Role::Member,
            invited_at: now,
            invited_by: by.to_owned(),
            updated_at: now,
            updated_by: by.to_owned(),
            accepted_at: None,
            source: Source::Invitation,
        }
    }

    /// When the invitation expires, if invitations expire.
    #[must_use]
    pub fn expires_at(&self, cfg: &SimConfig) -> Option<SimTime> {
        cfg.invite_ttl.map(|t| self.invited_at.plus(t))
    }

    /// Pending, expired or member, at `now`.
    #[must_use]
    pub fn standing(&self, now: SimTime, cfg: &SimConfig) -> Standing {
        if let Some(at) = self.accepted_at {
            return Standing::Member(at);
        }
        let expires_at = self.expires_at(cfg);
        if let Some(after) = cfg.auto_accept_after {
            let at = self.invited_at.plus(after);
            // An invitation that expires first is never auto-accepted.
            if at <= now && expires_at.is_none_or(|e| at < e) {
                return Standing::Member(at);
            }
        }
        match expires_at {
            Some(e) if now >= e => Standing::Expired,
            _ => Standing::Pending,
        }
    }
}

/// A `sub` derived from the address: UUID-shaped, stable, distinct per address.
#[must_use]
pub fn sub_for(email: &str) -> String {
    let a = fnv1a(email.as_bytes());
    let b = fnv1a(format!("sub:{email}").as_bytes());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// Members and invitations of one workspace.
#[derive(Debug, Default)]
pub struct UserBook {
    by_email: BTreeMap<String, UserRecord>,
    by_sub: HashMap<String, String>,
}

impl UserBook {
    /// Number of records (pending, expired and members).
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_email.len()
    }

    /// Whether there are no records.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_email.is_empty()
    }

    /// All records, ordered by e-mail.
    pub fn iter(&self) -> impl Iterator<Item = &UserRecord> {
        self.by_email.values()
    }

    /// The record for an e-mail address.
    #[must_use]
    pub fn get(&self, email: &str) -> Option<&UserRecord> {
        self.by_email.get(email)
    }

    /// Inserts or replaces a record.
    pub fn put(&mut self, r: UserRecord) {
        self.by_sub.insert(r.sub.clone(), r.email.clone());
        self.by_email.insert(r.email.clone(), r);
    }

    /// Removes a record.
    pub fn remove(&mut self, email: &str) -> Option<UserRecord> {
        let r = self.by_email.remove(email)?;
        self.by_sub.remove(&r.sub);
        Some(r)
    }

    /// The e-mail key of the record a path parameter names: an address (any case), or the `sub` of an
    /// accepted member.
    #[must_use]
    pub fn resolve(&self, sub_or_email: &str, now: SimTime, cfg: &SimConfig) -> Option<String> {
        let lower = sub_or_email.to_ascii_lowercase();
        if self.by_email.contains_key(&lower) {
            return Some(lower);
        }
        let email = self.by_sub.get(sub_or_email)?;
        let r = self.by_email.get(email)?;
        matches!(r.standing(now, cfg), Standing::Member(_)).then(|| email.clone())
    }
}

/// Renders a record as a `WorkspaceUser`.
#[must_use]
pub fn render_user(r: &UserRecord, now: SimTime, cfg: &SimConfig) -> Value {
    let mut m = Map::new();
    let standing = r.standing(now, cfg);
    m.insert("email".into(), json!(r.email));
    m.insert("role".into(), json!(r.role.as_str()));
    match standing {
        Standing::Member(_) => {
            let (given, family) = names_from_email(&r.email);
            m.insert("sub".into(), json!(r.sub));
            m.insert("given_name".into(), json!(given));
            m.insert("family_name".into(), json!(family));
            m.insert("email_verified".into(), json!(true));
            m.insert("accepted".into(), json!(true));
            m.insert("expired".into(), json!(false));
        }
        Standing::Pending | Standing::Expired => {
            m.insert("email_verified".into(), json!(false));
            m.insert("accepted".into(), json!(false));
            m.insert("expired".into(), json!(standing == Standing::Expired));
        }
    }
    if cfg.generation == ApiGeneration::V2026 {
        m.insert("source".into(), json!(r.source.as_str()));
    }
    Value::Object(m)
}

/// Renders a record as a `PendingInvitation`.
#[must_use]
pub fn render_invitation(
    r: &UserRecord,
    workspace: &str,
    clock: &SimClock,
    cfg: &SimConfig,
) -> Value {
    let mut m = Map::new();
    m.insert("email".into(), json!(r.email));
    m.insert("role".into(), json!(r.role.as_str()));
    m.insert("workspace".into(), json!(workspace));
    m.insert("invitedBy".into(), json!(r.invited_by));
    m.insert("createdAt".into(), json!(clock.rfc3339(r.invited_at)));
    m.insert("updatedAt".into(), json!(clock.rfc3339(r.updated_at)));
    m.insert("createdBy".into(), json!(r.invited_by));
    m.insert("updatedBy".into(), json!(r.updated_by));
    if cfg.generation == ApiGeneration::V2026
        && let Some(e) = r.expires_at(cfg)
    {
        m.insert("expiresAt".into(), json!(clock.rfc3339(e)));
    }
    Value::Object(m)
}

/// `alice.smith@x` → ("Alice", "Smith"); `bob@x` → ("Bob", "").
fn names_from_email(email: &str) -> (String, String) {
    let local = email.split('@').next().unwrap_or_default();
    let local = local.split('+').next().unwrap_or_default();
    let mut parts = local
        .split(['.', '_', '-'])
        .filter(|p| !p.is_empty())
        .map(capitalize);
    let given = parts.next().unwrap_or_default();
    let family = parts.collect::<Vec<_>>().join(" ");
    (given, family)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn workspace_mut<'a>(
    world: &'a mut World,
    ws: &str,
) -> Result<&'a mut super::state::Workspace, ApiError> {
    world
        .workspaces
        .get_mut(ws)
        .ok_or_else(|| ApiError::not_found(format!("workspace {ws:?} not found")))
}

/// `GET /users`.
pub async fn list(State(sim): State<Arc<Sim>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let now = sim.clock.now();
    let mut world = sim.world();
    let ws = workspace_mut(&mut world, &caller.workspace)?;
    let users = ws
        .users
        .iter()
        .map(|r| render_user(r, now, &sim.config))
        // Raw records a test asked for (`/_sim/workspaces/{ws}/malformed`), after the real ones.
        .chain(ws.malformed.users.iter().cloned())
        .collect();
    Ok(Json(Value::Array(users)))
}

/// `POST /users {"email"}`.
pub async fn invite(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let email = field::opt_str(&body, "email", "email")?
        .ok_or_else(|| ApiError::bad_request("field email is required"))?;
    validate_email(email).map_err(ApiError::bad_request)?;
    let email = email.to_ascii_lowercase();
    let now = sim.clock.now();
    let mut world = sim.world();
    let ws = workspace_mut(&mut world, &caller.workspace)?;
    let record = match ws.users.get(&email) {
        // Live invitation or member: idempotent, nothing changes.
        Some(r) if r.standing(now, &sim.config) != Standing::Expired => r.clone(),
        // Absent or expired: a fresh invitation.
        _ => {
            let r = UserRecord::invitation(&email, now, &caller.principal);
            ws.users.put(r.clone());
            r
        }
    };
    Ok(Json(render_invitation(
        &record,
        &caller.workspace,
        &sim.clock,
        &sim.config,
    )))
}

/// `PUT /users/{subOrEmail} {"role"}`.
pub async fn update_role(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(sub_or_email): SimPath<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let role = field::opt_str(&body, "role", "role")?
        .ok_or_else(|| ApiError::bad_request("field role is required"))?;
    let role = Role::parse(role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid role {role:?}: expected \"admin\" or \"member\""
        ))
    })?;
    let now = sim.clock.now();
    let mut world = sim.world();
    let ws = workspace_mut(&mut world, &caller.workspace)?;
    let key = ws
        .users
        .resolve(&sub_or_email, now, &sim.config)
        .ok_or_else(|| {
            ApiError::not_found(format!("user {sub_or_email:?} not found in workspace"))
        })?;
    let mut r = ws.users.get(&key).cloned().ok_or_else(|| {
        ApiError::not_found(format!("user {sub_or_email:?} not found in workspace"))
    })?;
    r.role = role;
    r.updated_at = now;
    r.updated_by.clone_from(&caller.principal);
    ws.users.put(r.clone());
    Ok(Json(render_user(&r, now, &sim.config)))
}

/// `DELETE /users/{subOrEmail}`: removes a member or revokes an invitation; 200 with an empty body.
pub async fn remove(
    State(sim): State<Arc<Sim>>,
    caller: Caller,
    SimPath(sub_or_email): SimPath<String>,
) -> Result<Response, ApiError> {
    let now = sim.clock.now();
    let mut world = sim.world();
    let ws = workspace_mut(&mut world, &caller.workspace)?;
    let key = ws
        .users
        .resolve(&sub_or_email, now, &sim.config)
        .ok_or_else(|| {
            ApiError::not_found(format!("user {sub_or_email:?} not found in workspace"))
        })?;
    ws.users.remove(&key);
    Ok(StatusCode::OK.into_response())
}

/// Accepts a pending invitation at `now`; the updated record. Errors: 404 when there is no invitation or it
/// expired. Accepting twice is harmless.
pub fn accept(
    world: &mut World,
    sim: &Sim,
    ws_name: &str,
    email: &str,
    now: SimTime,
) -> Result<UserRecord, ApiError> {
    let ws = workspace_mut(world, ws_name)?;
    let email = email.to_ascii_lowercase();
    let mut r = ws.users.get(&email).cloned().ok_or_else(|| {
        ApiError::not_found(format!(
            "no invitation for {email:?} in workspace {ws_name:?}"
        ))
    })?;
    match r.standing(now, &sim.config) {
        Standing::Member(_) => Ok(r),
        Standing::Expired => Err(ApiError::not_found(format!(
            "the invitation for {email:?} to workspace {ws_name:?} has expired"
        ))),
        Standing::Pending => {
            r.accepted_at = Some(now);
            r.updated_at = now;
            ws.users.put(r.clone());
            Ok(r)
        }
    }
}

/// Declines (removes) a pending or expired invitation; the removed record. 404 when there is none (members
/// cannot decline).
pub fn decline(
    world: &mut World,
    sim: &Sim,
    ws_name: &str,
    email: &str,
    now: SimTime,
) -> Result<UserRecord, ApiError> {
    let ws = workspace_mut(world, ws_name)?;
    let email = email.to_ascii_lowercase();
    match ws.users.get(&email).map(|r| r.standing(now, &sim.config)) {
        Some(Standing::Pending | Standing::Expired) => ws
            .users
            .remove(&email)
            .ok_or_else(|| ApiError::not_found("invitation vanished")),
        _ => Err(ApiError::not_found(format!(
            "no pending invitation for {email:?} in workspace {ws_name:?}"
        ))),
    }
}

/// `POST /workspaces/{ws}/join` (2025): the invitee accepts; answers `PendingInvitationAccept`.
pub async fn join(
    State(sim): State<Arc<Sim>>,
    invitee: Invitee,
    SimPath(ws): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    let now = sim.clock.now();
    let mut world = sim.world();
    let r = accept(&mut world, &sim, &ws, &invitee.email, now)?;
    let workspace = workspace_mut(&mut world, &ws)?;
    Ok(Json(
        json!({ "email": r.email, "workspace": render_workspace(&workspace.meta, now, &sim) }),
    ))
}

/// `POST /workspaces/{ws}/decline` (2025): the invitee declines; answers the declined `PendingInvitation`.
pub async fn decline_route(
    State(sim): State<Arc<Sim>>,
    invitee: Invitee,
    SimPath(ws): SimPath<String>,
) -> Result<Json<Value>, ApiError> {
    let now = sim.clock.now();
    let mut world = sim.world();
    let r = decline(&mut world, &sim, &ws, &invitee.email, now)?;
    Ok(Json(render_invitation(&r, &ws, &sim.clock, &sim.config)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cfg(auto: Option<u64>, ttl: Option<u64>) -> SimConfig {
        SimConfig {
            auto_accept_after: auto.map(Duration::from_secs),
            invite_ttl: ttl.map(Duration::from_secs),
            ..SimConfig::default()
        }
    }

    /// Standing follows the clock: pending, then accepted at the auto-accept time, or expired at the TTL,
    /// whichever comes first.
    #[test]
    fn standing_over_time() {
        let r = UserRecord::invitation("a@b.co", SimTime(0), "k");
        let c = cfg(Some(10), Some(20));
        assert_eq!(r.standing(SimTime(9_999), &c), Standing::Pending);
        assert_eq!(
            r.standing(SimTime(10_000), &c),
            Standing::Member(SimTime(10_000))
        );
        let c = cfg(Some(30), Some(20));
        assert_eq!(r.standing(SimTime(19_999), &c), Standing::Pending);
        assert_eq!(r.standing(SimTime(20_000), &c), Standing::Expired);
        assert_eq!(r.standing(SimTime(40_000), &c), Standing::Expired);
        let c = cfg(None, None);
        assert_eq!(r.standing(SimTime(u64::MAX), &c), Standing::Pending);
    }

    /// Subs are stable and UUID-shaped, and names derive from the address.
    #[test]
    fn derived_identity() {
        let s = sub_for("alice@example.com");
        assert_eq!(s, sub_for("alice@example.com"));
        assert_ne!(s, sub_for("bob@example.com"));
        assert_eq!(s.len(), 36);
        assert_eq!(
            names_from_email("alice.smith@x.io"),
            ("Alice".into(), "Smith".into())
        );
        assert_eq!(
            names_from_email("bob+ci@x.io"),
            ("Bob".into(), String::new())
        );
    }
}
