//! `IntegrationConnection`: a connection of a Blaxel workspace to an integration (a model provider, a
//! tool), its secret values taken from a Kubernetes Secret.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CredentialsRef, DeletionPolicy, WORKSPACE_NAME_MESSAGE, WORKSPACE_NAME_RULE};

/// An integration connection kept as declared; its secret comes from a Secret, never from the spec.
#[allow(
    clippy::duplicated_attributes,
    reason = "printcolumn(...) entries repeat `type_ = \"string\"` by design"
)]
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "blaxel.ai",
    version = "v1alpha1",
    kind = "IntegrationConnection",
    namespaced,
    doc = "A Blaxel integration connection, its secret taken from a Secret; see spec and status.",
    shortname = "bic",
    category = "blaxel",
    status = "IntegrationConnectionStatus",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Workspace", type_ = "string", json_path = ".spec.workspace"),
    printcolumn(
        name = "Integration",
        type_ = "string",
        json_path = ".spec.integration"
    ),
    printcolumn(name = "Models", type_ = "integer", json_path = ".status.models"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.connectionName) == has(oldSelf.connectionName)").message("connectionName is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct IntegrationConnectionSpec {
    /// Name of the Blaxel workspace. Immutable.
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("workspace is immutable"),
        validation = Rule::new(WORKSPACE_NAME_RULE).message(WORKSPACE_NAME_MESSAGE)
    )]
    #[schemars(length(min = 1, max = 63))]
    pub workspace: String,
    /// The connection's remote name; default `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("connectionName is immutable"))]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub connection_name: Option<String>,
    /// The integration (`openai`, `anthropic`, ...). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("integration is immutable"))]
    #[schemars(length(min = 1, max = 63))]
    pub integration: String,
    /// Non-secret settings. The spec owns the map: remote keys it does not list are removed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 64))]
    pub config: BTreeMap<String, String>,
    /// The Secret (in this namespace) whose every key becomes a key of the connection's secret.
    pub secret_ref: SecretRef,
    /// Whether the connection uses sandbox (test) credentials.
    #[serde(default)]
    pub sandbox: bool,
    /// What deleting this object does remotely: `Delete` removes the connection, `Orphan` leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// A Secret key in this namespace holding the Blaxel API key to use. Without it the operator's
    /// default key is used, where this namespace is allowed to use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<CredentialsRef>,
}

/// A Secret in the object's own namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Observed state of an `IntegrationConnection`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationConnectionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// A keyed digest (HMAC-SHA256 under the operator's own key) of the secret last sent: never the
    /// values, and no plain hash that could confirm a guess.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_digest: Option<String>,
    /// How many models the connection offers, refreshed at resync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<u32>,
    /// True when the connection existed before this object.
    #[serde(default)]
    pub adopted: bool,
    /// The last `blaxel.ai/reconcile-requested-at` value handled (a forced resync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Ready, Synced, Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
