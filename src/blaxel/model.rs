//! The operator's typed view of Blaxel objects.
//!
//! Only the fields the operator reads or writes are named. Objects the operator writes back whole (a
//! sandbox's read-modify-write `PUT`) keep the rest in `extra` ([`OtherFields`]), so the `PUT` never drops
//! a field someone else set; a workspace user is never written back, so it keeps nothing else (thousands
//! of them sit in the shared user lists). Unknown fields or enum values (a new sandbox status, say) always
//! deserialize.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The fields of a remote object the operator does not name, kept so that a read-modify-write `PUT`
/// sends them back unchanged.
///
/// Held as compact JSON text rather than as `serde_json` maps: every JSON object in a map costs a B-tree
/// node (over 600 bytes however few its keys), which made these fields ≈ 1.5 KB of each sandbox in the
/// shared list cache, against a few hundred bytes of text. They are read back only to find a failure
/// message or to send a `PUT`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherFields(Option<Box<str>>);

impl OtherFields {
    /// The field `key`, if the API sent it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<Value> {
        self.to_map().remove(key)
    }

    /// Whether the API sent the field `key`.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.to_map().contains_key(key)
    }

    /// Drops the field `key`, if the API sent it.
    pub fn remove(&mut self, key: &str) {
        let mut map = self.to_map();
        if map.remove(key).is_some() {
            *self = Self::from_map(&map);
        }
    }

    /// Sets the field `key`.
    pub fn insert(&mut self, key: String, value: Value) {
        let mut map = self.to_map();
        map.insert(key, value);
        *self = Self::from_map(&map);
    }

    fn to_map(&self) -> Map<String, Value> {
        // The text is always what `from_map` wrote, so it parses.
        self.0
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }

    fn from_map(map: &Map<String, Value>) -> Self {
        if map.is_empty() {
            return Self(None);
        }
        Self(serde_json::to_string(map).ok().map(String::into_boxed_str))
    }
}

impl<'de> Deserialize<'de> for OtherFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(|map| Self::from_map(&map))
    }
}

impl Serialize for OtherFields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(serializer)
    }
}

/// A remote list as read: the records that decoded, and those that did not.
///
/// One malformed record (a null e-mail, a memory size beyond `i64`) must not hide the others: it is
/// skipped and reported here instead of failing the whole list. A list with unreadable records is an
/// incomplete view: nothing may be removed because it looks absent from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    /// The records that decoded.
    pub items: Vec<T>,
    /// The records that did not.
    pub unreadable: Vec<Unreadable>,
}

impl<T> Listing<T> {
    /// A list in which every record decoded.
    #[must_use]
    pub fn complete(items: Vec<T>) -> Self {
        Self {
            items,
            unreadable: Vec::new(),
        }
    }
}

/// A listed record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The record's identity where it could still be read: a user's e-mail, a sandbox's name.
    pub identity: Option<String>,
    /// Why it could not be decoded, without quoting the record.
    pub error: String,
}

/// A member of a workspace, or a pending invitation (`accepted: false`), as `GET /users` lists them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceUser {
    /// Blaxel's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The user's e-mail.
    #[serde(default)]
    pub email: String,
    /// The user's role (`admin`, `member`, or a value this operator does not know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Whether the invitation was accepted. Absent means a plain member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    /// Whether a pending invitation has expired.
    #[serde(default)]
    pub expired: bool,
    /// How the user came in (2026 API: `invitation`, `directory_sync`, `domain_capture`; absent before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl WorkspaceUser {
    /// True for an invitation not (yet) accepted.
    #[must_use]
    pub fn is_pending(&self) -> bool {
        self.accepted == Some(false)
    }
}

/// The answer to an invitation (`POST /users`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingInvitation {
    /// The invited e-mail.
    #[serde(default)]
    pub email: String,
    /// The workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The role recorded with the invitation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Everything else the API sent.
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// A Blaxel sandbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    /// Name, labels, URL.
    #[serde(default)]
    pub metadata: SandboxMetadata,
    /// Desired configuration.
    #[serde(default)]
    pub spec: SandboxSpec,
    /// Deployment status (`DEPLOYING`, `DEPLOYED`, ...; open set). Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Power state on today's API (`RUNNING` | `STANDBY`). Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Everything else the API sent (events, errors, lastUsedAt, ...).
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// Sandbox metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxMetadata {
    /// The sandbox name, unique in its workspace.
    #[serde(default)]
    pub name: String,
    /// Labels. Always sent, even empty: a `PUT` replaces the labels it carries and keeps them when it
    /// carries none, so releasing the last label takes an explicit `{}`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The sandbox URL, once it has one. Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When Blaxel made it (RFC 3339). Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Everything else the API sent.
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// Sandbox specification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxSpec {
    /// Today's power switch: false stops the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Region, e.g. `us-pdx-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Image, memory, ports, envs, ttl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// Everything else the API sent.
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// The runtime part of a sandbox spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Runtime {
    /// Container image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Memory in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Exposed ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envs: Vec<EnvVar>,
    /// Time to live (`24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Everything else the API sent.
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// An exposed port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// Port name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Target port number.
    #[serde(default)]
    pub target: i64,
    /// `HTTP`, `TCP`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// An environment variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Variable name.
    #[serde(default)]
    pub name: String,
    /// Variable value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Whether the value is a secret (today's API; sent for values taken from Kubernetes Secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<bool>,
}

/// The sandbox status values the operator acts on; any other value is kept verbatim in `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxPhase {
    /// Being built or deployed: wait.
    Deploying,
    /// Up.
    Deployed,
    /// Failed; the remote message says why.
    Failed,
    /// Being stopped.
    Deactivating,
    /// Stopped.
    Deactivated,
    /// Being deleted.
    Deleting,
    /// Deleted; shown for a while before the sandbox disappears.
    Terminated,
    /// Any value this operator does not know (treated as transitional).
    Other(String),
}

impl SandboxPhase {
    /// Parses a remote status, case-insensitively.
    #[must_use]
    pub fn parse(status: &str) -> Self {
        match status.to_ascii_uppercase().as_str() {
            "DEPLOYING" | "UPLOADING" | "BUILDING" | "BUILT" => Self::Deploying,
            "DEPLOYED" => Self::Deployed,
            "FAILED" => Self::Failed,
            "DEACTIVATING" => Self::Deactivating,
            "DEACTIVATED" => Self::Deactivated,
            "DELETING" => Self::Deleting,
            "TERMINATED" => Self::Terminated,
            _ => Self::Other(status.to_owned()),
        }
    }

    /// True while the remote side is moving between states.
    #[must_use]
    pub fn is_transitional(&self) -> bool {
        matches!(
            self,
            Self::Deploying | Self::Deactivating | Self::Deleting | Self::Other(_)
        )
    }
}

impl Sandbox {
    /// The values of its variables marked secret, to scrub from any message that may quote them.
    #[must_use]
    pub fn secret_values(&self) -> Vec<&str> {
        self.spec
            .runtime
            .iter()
            .flat_map(|r| &r.envs)
            .filter(|e| e.secret == Some(true))
            .filter_map(|e| e.value.as_deref())
            .collect()
    }

    /// The parsed remote status (`Other("")` when absent).
    #[must_use]
    pub fn phase(&self) -> SandboxPhase {
        SandboxPhase::parse(self.status.as_deref().unwrap_or_default())
    }

    /// The most recent failure message the API recorded (today's `errors`, else the 2025 `events`).
    #[must_use]
    pub fn failure_message(&self) -> Option<String> {
        ["errors", "events"].iter().find_map(|field| {
            self.extra
                .get(field)?
                .as_array()?
                .iter()
                .rev()
                .find_map(|entry| entry.get("message")?.as_str().map(str::to_owned))
        })
    }
}

/// A preview: a public or private URL in front of one of a sandbox's ports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    /// Name and owner.
    #[serde(default)]
    pub metadata: PreviewMetadata,
    /// Port, visibility, URL.
    #[serde(default)]
    pub spec: PreviewSpec,
    /// Everything else the API sent.
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// Preview metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewMetadata {
    /// Preview name.
    #[serde(default)]
    pub name: String,
    /// When Blaxel made it (RFC 3339). Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Everything else the API sent.
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// Preview specification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewSpec {
    /// Sandbox port the preview forwards to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// Whether the preview is reachable without a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// The preview URL. Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Everything else the API sent.
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// A token granting access to a private preview. The token text is a secret: it is kept as a
/// [`crate::blaxel::ApiKey`]-like redacted value and never printed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PreviewToken {
    /// Token name.
    #[serde(default)]
    pub metadata: PreviewTokenMetadata,
    /// Expiry and the token itself.
    #[serde(default)]
    pub spec: PreviewTokenSpec,
}

/// Preview token metadata.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PreviewTokenMetadata {
    /// Token name.
    #[serde(default)]
    pub name: String,
}

/// Preview token specification.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewTokenSpec {
    /// When the token expires (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Whether it has expired.
    #[serde(default)]
    pub expired: bool,
    /// The token text, redacted in Debug output.
    #[serde(default, deserialize_with = "deserialize_token")]
    pub token: Option<crate::blaxel::ApiKey>,
}

fn deserialize_token<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::blaxel::ApiKey>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|t| crate::blaxel::ApiKey::new(&t)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// Unknown fields and unknown status values deserialize and survive a round trip (labels are always
    /// sent, even empty: a `PUT` keeps the labels it does not carry).
    #[test]
    fn unknown_fields_and_values_are_kept() {
        let raw = serde_json::json!({
            "metadata": {"name": "a", "plan": "x", "labels": {}},
            "spec": {"runtime": {"image": "i", "cpu": 2}, "volumes": []},
            "status": "HIBERNATING",
            "brandNew": {"x": 1}
        });
        let sandbox: Sandbox = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(sandbox.phase(), SandboxPhase::Other("HIBERNATING".into()));
        assert!(sandbox.phase().is_transitional());
        assert_eq!(serde_json::to_value(&sandbox).unwrap(), raw);
    }

    /// Other fields are read back, set and sent as JSON values; the same fields in another order are the
    /// same; none at all is nothing.
    #[test]
    fn other_fields_read_set_and_compare_as_values() {
        let mut sandbox: Sandbox = serde_json::from_value(
            serde_json::json!({"lastUsedAt": "t", "events": [{"message": "m"}]}),
        )
        .unwrap();
        assert_eq!(
            sandbox.extra.get("lastUsedAt"),
            Some(serde_json::json!("t"))
        );
        assert!(sandbox.extra.contains_key("events") && !sandbox.extra.contains_key("nope"));
        sandbox.extra.insert("errors".into(), serde_json::json!([]));
        let sent = serde_json::to_value(&sandbox).unwrap();
        assert_eq!(
            (&sent["errors"], &sent["lastUsedAt"]),
            (&serde_json::json!([]), &serde_json::json!("t"))
        );

        let a: Sandbox = serde_json::from_str(r#"{"b": 1, "a": {"y": 1, "x": 2}}"#).unwrap();
        let b: Sandbox = serde_json::from_str(r#"{"a": {"x": 2, "y": 1}, "b": 1}"#).unwrap();
        assert_eq!(a, b);
        let none: Sandbox = serde_json::from_str("{}").unwrap();
        assert_eq!(none.extra, OtherFields::default());
    }

    /// The failure message prefers today's `errors` over the 2025 `events`.
    #[test]
    fn failure_message_prefers_errors() {
        let sandbox: Sandbox = serde_json::from_value(serde_json::json!({
            "status": "FAILED",
            "events": [{"message": "old"}],
            "errors": [{"message": "first"}, {"message": "image pull failed"}]
        }))
        .unwrap();
        assert_eq!(
            sandbox.failure_message().as_deref(),
            Some("image pull failed")
        );
    }

    /// A preview token's text is not shown by Debug.
    #[test]
    fn preview_token_is_redacted() {
        let token: PreviewToken = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "t"}, "spec": {"token": "tok_secret_123"}}),
        )
        .unwrap();
        assert!(!format!("{token:?}").contains("tok_secret_123"));
        assert_eq!(token.spec.token.unwrap().expose(), "tok_secret_123");
    }
}

/// A Blaxel workspace. Written back whole by a read-modify-write `PUT`, so every field the operator does
/// not name is kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    /// The workspace name, unique across Blaxel.
    #[serde(default)]
    pub name: String,
    /// The name shown to people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Labels. Their values are strings in today's definition, any JSON in the 2025 one (`labels:
    /// object`): a value of another type set by another tool must not make the record unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, Value>>,
    /// The write region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Blaxel's id of the workspace. Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `created`, `account_binded`, `account_configured`, `workspace_configured`, `ready`, `error` (open
    /// set). Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Why the status is `error`. Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Everything else the API sent.
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// Whether a workspace name may be created (`POST /workspaces/availability`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceAvailability {
    /// Whether the name is free.
    #[serde(default)]
    pub available: bool,
    /// Why not (`taken`, `forbidden_reserved`, ...; open set), when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Blaxel's explanation, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An integration connection (`/integrations/connections`). Its secret values are sent, never read
/// back: reads leave `spec.secret` out (or redact it), so it is never compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntegrationConnection {
    /// Name and the rest of the metadata.
    #[serde(default)]
    pub metadata: ConnectionMetadata,
    /// The connection's settings.
    #[serde(default)]
    pub spec: ConnectionSpec,
    /// Everything else the API sent.
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// Integration connection metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionMetadata {
    /// The connection name, unique in its workspace.
    #[serde(default)]
    pub name: String,
    /// Everything else the API sent.
    #[serde(flatten)]
    pub extra: OtherFields,
}

/// Integration connection specification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionSpec {
    /// The integration (`openai`, `anthropic`, ...).
    #[serde(default)]
    pub integration: String,
    /// Non-secret settings.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Whether the connection uses sandbox (test) credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<bool>,
    /// The secret values, on the way out only: never deserialized from an answer.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub secret: Option<BTreeMap<String, super::secret::SecretValue>>,
    /// The names of the secret's keys, as a read showed them (`spec.secret`'s keys; its values are
    /// dropped unread). `None` when the read showed no secret at all.
    #[serde(skip)]
    pub secret_keys_shown: Option<BTreeSet<String>>,
    /// Everything else the API sent. `secret`, as Blaxel may show it, lands here on a read and is
    /// dropped by [`IntegrationConnection::without_remote_secret`]: never kept, never sent back.
    #[serde(flatten)]
    pub extra: OtherFields,
}

impl IntegrationConnection {
    /// The connection as read, less whatever Blaxel showed of its secret (a read-modify-write `PUT`
    /// must carry the operator's values, not echo redacted ones) but the names of its keys.
    #[must_use]
    pub fn without_remote_secret(mut self) -> Self {
        if let Some(shown) = self.spec.extra.get("secret") {
            self.spec.secret_keys_shown = shown.as_object().map(|m| m.keys().cloned().collect());
            self.spec.extra.remove("secret");
        }
        self
    }
}
