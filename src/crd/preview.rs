//! `SandboxPreview`: a preview URL in front of one port of a Sandbox object's sandbox, and for a private
//! preview a token kept in a Secret and renewed before it expires.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::DeletionPolicy;

/// A preview of a sandbox's port, kept as declared; a private one's token kept in a Secret.
#[allow(
    clippy::duplicated_attributes,
    reason = "printcolumn(...) entries repeat `type_ = \"string\"` by design"
)]
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "blaxel.ai",
    version = "v1alpha1",
    kind = "SandboxPreview",
    namespaced,
    doc = "A preview URL of a Blaxel sandbox's port, and its token in a Secret; see spec and status.",
    shortname = "sbxp",
    category = "blaxel",
    status = "SandboxPreviewStatus",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Sandbox",
        type_ = "string",
        json_path = ".spec.sandboxRef.name"
    ),
    printcolumn(name = "Port", type_ = "integer", json_path = ".spec.port"),
    printcolumn(name = "Public", type_ = "boolean", json_path = ".spec.public"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(
        name = "Token Expires",
        type_ = "date",
        json_path = ".status.token.expiresAt"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.previewName) == has(oldSelf.previewName)").message("previewName is immutable"))]
#[x_kube(validation = Rule::new("!(has(self.public) && self.public && has(self.token))").message("a public preview takes no token: remove token, or set public: false"))]
#[serde(rename_all = "camelCase")]
pub struct SandboxPreviewSpec {
    /// The Sandbox object (in this namespace) whose sandbox the preview shows; its workspace and
    /// credentials are used. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("sandboxRef is immutable"))]
    pub sandbox_ref: SandboxRef,
    /// The preview's remote name; default `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("previewName is immutable"))]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub preview_name: Option<String>,
    /// The sandbox port the preview forwards to.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Reachable without a token. Default false: private, a token is kept in a Secret.
    #[serde(default)]
    pub public: bool,
    /// A prefix of the preview's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub prefix_url: Option<String>,
    /// A custom domain for the preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub custom_domain: Option<String>,
    /// The preview's time to live, passed to Blaxel as it is (`24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub ttl: Option<String>,
    /// Headers added to requests reaching the sandbox.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 64))]
    pub request_headers: BTreeMap<String, String>,
    /// Headers added to responses.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 64))]
    pub response_headers: BTreeMap<String, String>,
    /// Where and how the token of a private preview is kept. A private preview without it uses the
    /// defaults (Secret `<metadata.name>-token`, 24h tokens renewed 8h before expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<PreviewTokenSpec>,
    /// What deleting this object does remotely: `Delete` removes the preview, `Orphan` leaves it (the
    /// operator's tokens and the Secret go in both cases).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// A Sandbox object in the preview's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SandboxRef {
    /// The Sandbox object's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The token of a private preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("!has(self.lifetime) || duration(self.lifetime) >= duration('1m')").message("token.lifetime must be at least 1m"))]
#[x_kube(validation = Rule::new("!has(self.renewBefore) || (duration(self.renewBefore) > duration('0s') && duration(self.renewBefore) < (has(self.lifetime) ? duration(self.lifetime) : duration('24h')))").message("token.renewBefore must be positive and shorter than token.lifetime"))]
#[serde(rename_all = "camelCase")]
pub struct PreviewTokenSpec {
    /// The Secret (in this namespace) the operator writes the token to, with `url`, `token`,
    /// `expiresAt` and `header`; default `<metadata.name>-token`. A Secret of that name the operator
    /// did not create is never touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub secret_name: Option<String>,
    /// Each token's lifetime, in the form CEL's `duration()` reads (`90m`, `24h`; no `d`); at least
    /// `1m`. Default `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(\\\\.[0-9]+)?(h|m|s|ms|us|ns))+$')").message("token.lifetime must be a duration such as 90m or 24h"))]
    #[schemars(length(min = 2, max = 32))]
    pub lifetime: Option<String>,
    /// How long before the current token expires a new one is made; shorter than `lifetime`.
    /// Default a third of `lifetime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(\\\\.[0-9]+)?(h|m|s|ms|us|ns))+$')").message("token.renewBefore must be a duration such as 90m or 8h"))]
    #[schemars(length(min = 2, max = 32))]
    pub renew_before: Option<String>,
}

/// The token the operator keeps, as status shows it: never the token itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewTokenStatus {
    /// The token's remote name.
    pub name: String,
    /// When it expires (RFC 3339).
    pub expires_at: String,
    /// The Secret holding it.
    pub secret_name: String,
}

/// Observed state of a `SandboxPreview`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxPreviewStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The preview's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where the preview is (workspace, remote sandbox and preview names), recorded so that cleanup can
    /// find it when the Sandbox object is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<PreviewLocation>,
    /// When Blaxel made the preview there (its `metadata.createdAt`): a `spec.ttl` counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The current token of a private preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<PreviewTokenStatus>,
    /// True when the preview existed before this object.
    #[serde(default)]
    pub adopted: bool,
    /// The last `blaxel.ai/reconcile-requested-at` value handled (a forced resync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Ready, Synced, Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Where a preview is, and with which credentials it was reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewLocation {
    /// The Blaxel workspace.
    pub workspace: String,
    /// The remote sandbox.
    pub sandbox: String,
    /// The remote preview.
    pub preview: String,
    /// The Sandbox object's `credentialsRef` Secret name, when it had one (the default key otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// Its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_key: Option<String>,
}
