//! The stored preview and token, the URL a preview answers at, when it deletes itself, and the JSON both
//! generations answer with.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use super::PREVIEW_DOMAIN;
use super::input::non_empty;
use crate::sim::clock::SimTime;
use crate::sim::config::ApiGeneration;
use crate::sim::sandboxes::SandboxRecord;
use crate::sim::state::Sim;
use crate::sim::util::{fnv1a, hex_encode};

/// One preview.
#[derive(Debug, Clone)]
pub struct PreviewRecord {
    /// Name, unique within the sandbox.
    pub name: String,
    /// `metadata.displayName`, when set.
    pub display_name: Option<String>,
    /// The writable spec fields as last written (`url` and `region` are added when rendering).
    pub spec: Map<String, Value>,
    /// When the preview deletes itself (`spec.ttl` after creation or `spec.expires`, whichever is first).
    pub expires_at: Option<jiff::Timestamp>,
    /// Creation time.
    pub created_at: SimTime,
    /// Creator.
    pub created_by: String,
    /// Last update.
    pub updated_at: SimTime,
    /// Last updater.
    pub updated_by: String,
    /// Tokens by name.
    pub tokens: BTreeMap<String, TokenRecord>,
}

impl PreviewRecord {
    /// Whether the preview still exists at wall-clock instant `now`.
    #[must_use]
    pub fn is_live(&self, now: jiff::Timestamp) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

/// One preview token.
#[derive(Clone)]
pub struct TokenRecord {
    /// Name, unique within the preview.
    pub name: String,
    /// The secret value.
    pub token: String,
    /// Expiry, as the client sent it (or the default).
    pub expires_at: jiff::Timestamp,
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A preview's stable identifier in its URL: 32 hex digits derived from where it lives and its name.
#[must_use]
pub fn preview_id(workspace: &str, sandbox: &str, preview: &str) -> String {
    let key = format!("{workspace}\0{sandbox}\0{preview}");
    let hi = fnv1a(key.as_bytes());
    let lo = fnv1a(format!("preview-url\0{key}").as_bytes());
    let mut bytes = hi.to_be_bytes().to_vec();
    bytes.extend_from_slice(&lo.to_be_bytes());
    hex_encode(&bytes)
}

/// The first label of a preview host with `prefix` in `workspace`, when the preview has no custom domain.
#[must_use]
pub fn prefixed_label(prefix: &str, workspace: &str) -> String {
    format!("{prefix}-{workspace}")
}

/// The host a preview with this spec answers at (lower case).
#[must_use]
pub fn host(spec: &Map<String, Value>, workspace: &str, sandbox: &str, preview: &str) -> String {
    let prefix = non_empty(spec, "prefixUrl");
    match non_empty(spec, "customDomain").map(str::to_ascii_lowercase) {
        Some(domain) => {
            let label =
                prefix.map_or_else(|| preview_id(workspace, sandbox, preview), str::to_owned);
            format!("{label}.preview.{domain}")
        }
        None => match prefix {
            Some(p) => format!("{}.{PREVIEW_DOMAIN}", prefixed_label(p, workspace)),
            None => format!(
                "{}.{PREVIEW_DOMAIN}",
                preview_id(workspace, sandbox, preview)
            ),
        },
    }
}

/// Forgets what no longer exists: every preview of a deleted sandbox, and previews past their expiry.
pub fn settle(r: &mut SandboxRecord, now: SimTime, sim: &Sim) {
    if r.phase(now, &sim.config).is_deleted() {
        r.previews.clear();
        return;
    }
    let wall = sim.clock.timestamp(now);
    r.previews.retain(|_, p| p.is_live(wall));
}

/// The previews of a sandbox that exist at `now` (see [`settle`]), without changing the record.
pub fn live<'a>(
    r: &'a SandboxRecord,
    now: SimTime,
    sim: &Sim,
) -> impl Iterator<Item = &'a PreviewRecord> {
    let deleted = r.phase(now, &sim.config).is_deleted();
    let wall = sim.clock.timestamp(now);
    r.previews
        .values()
        .filter(move |p| !deleted && p.is_live(wall))
}

/// The `Preview` JSON.
#[must_use]
pub fn render_preview(p: &PreviewRecord, sbx: &SandboxRecord, workspace: &str, sim: &Sim) -> Value {
    let c = &sim.clock;
    let mut spec = p.spec.clone();
    let url = format!("https://{}", host(&p.spec, workspace, &sbx.name, &p.name));
    spec.insert("url".into(), json!(url));
    spec.insert("region".into(), json!(sbx.region()));
    let mut out = json!({
        "metadata": {
            "name": p.name,
            "displayName": p.display_name.as_deref().unwrap_or(&p.name),
            "resourceName": sbx.name,
            "resourceType": "sandbox",
            "workspace": workspace,
            "createdAt": c.rfc3339(p.created_at),
            "updatedAt": c.rfc3339(p.updated_at),
            "createdBy": p.created_by,
            "updatedBy": p.updated_by,
        },
        "spec": spec,
    });
    if sim.config.generation == ApiGeneration::V2026
        && let Value::Object(m) = &mut out
    {
        m.insert("status".into(), json!("DEPLOYED"));
    }
    out
}

/// The `PreviewToken` JSON; `expired` compares `expiresAt` with the simulator clock.
#[must_use]
pub fn render_token(
    t: &TokenRecord,
    preview: &str,
    sandbox: &str,
    workspace: &str,
    now: jiff::Timestamp,
) -> Value {
    json!({
        "metadata": {
            "name": t.name,
            "previewName": preview,
            "resourceName": sandbox,
            "resourceType": "sandbox",
            "workspace": workspace,
        },
        "spec": {
            "expiresAt": t.expires_at.to_string(),
            "token": t.token,
            "expired": now >= t.expires_at,
        },
    })
}

/// Every existing preview of a sandbox with its tokens (for `GET /_sim/state`).
#[must_use]
pub fn render_all(r: &SandboxRecord, workspace: &str, now: SimTime, sim: &Sim) -> Vec<Value> {
    let wall = sim.clock.timestamp(now);
    live(r, now, sim)
        .map(|p| {
            let mut v = render_preview(p, r, workspace, sim);
            if let Value::Object(m) = &mut v {
                let tokens = p
                    .tokens
                    .values()
                    .map(|t| render_token(t, &p.name, &r.name, workspace, wall))
                    .collect();
                m.insert("tokens".into(), Value::Array(tokens));
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// URL ids are stable, 32 hex digits, and differ between previews.
    #[test]
    fn ids_are_stable_and_distinct() {
        let a = preview_id("ws", "box", "web");
        assert_eq!(a, preview_id("ws", "box", "web"));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, preview_id("ws", "box", "api"));
        assert_ne!(a, preview_id("ws", "boxweb", ""));
    }

    /// The three URL forms.
    #[test]
    fn hosts() {
        let spec = |v: Value| v.as_object().unwrap().clone();
        let id = preview_id("ws", "box", "web");
        assert_eq!(
            host(&spec(json!({})), "ws", "box", "web"),
            format!("{id}.preview.bl.run")
        );
        assert_eq!(
            host(&spec(json!({ "prefixUrl": "app" })), "ws", "box", "web"),
            "app-ws.preview.bl.run"
        );
        assert_eq!(
            host(
                &spec(json!({ "prefixUrl": "app", "customDomain": "Example.com" })),
                "ws",
                "box",
                "web"
            ),
            "app.preview.example.com"
        );
        assert_eq!(
            host(
                &spec(json!({ "customDomain": "example.com" })),
                "ws",
                "box",
                "web"
            ),
            format!("{id}.preview.example.com")
        );
    }

    /// A token's Debug output never shows its value.
    #[test]
    fn token_debug_is_redacted() {
        let t = TokenRecord {
            name: "ci".into(),
            token: "s3cr3t-value".into(),
            expires_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let shown = format!("{t:?}");
        assert!(
            shown.contains("ci") && !shown.contains("s3cr3t-value"),
            "{shown}"
        );
    }
}
