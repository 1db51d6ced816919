//! `Sandbox`: a Blaxel sandbox (micro VM) and its desired power state.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CredentialsRef, DeletionPolicy, WORKSPACE_NAME_MESSAGE, WORKSPACE_NAME_RULE};

/// A Blaxel sandbox kept at the declared image, resources and power state.
#[allow(
    clippy::duplicated_attributes,
    reason = "printcolumn(...) entries repeat `type_ = \"string\"` by design"
)]
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "blaxel.ai",
    version = "v1alpha1",
    kind = "Sandbox",
    namespaced,
    doc = "A Blaxel sandbox (micro VM) kept at its declared configuration and power state.",
    shortname = "sbx",
    category = "blaxel",
    status = "SandboxStatus",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Workspace", type_ = "string", json_path = ".spec.workspace"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.sandboxName) == has(oldSelf.sandboxName)").message("sandboxName is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct SandboxSpec {
    /// Name of the Blaxel workspace. Immutable.
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("workspace is immutable"),
        validation = Rule::new(WORKSPACE_NAME_RULE).message(WORKSPACE_NAME_MESSAGE)
    )]
    #[schemars(length(min = 1, max = 63))]
    pub workspace: String,
    /// Name of the sandbox in Blaxel; defaults to `metadata.name`. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("sandboxName is immutable"))]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_name: Option<String>,
    /// Image to run, e.g. `blaxel/base-image:latest`.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Memory in MiB (CPU follows memory: one core per 2048 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 128, max = 65536))]
    pub memory: Option<i64>,
    /// Region, e.g. `us-pdx-1`. Blaxel picks the nearest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub region: Option<String>,
    /// Ports the sandbox exposes. Absent: the remote sandbox's ports are left as they are; `[]`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub ports: Option<Vec<SandboxPort>>,
    /// Environment variables, each name once. Absent: the remote sandbox's variables are left as they
    /// are; `[]`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    #[x_kube(validation = Rule::new("self.all(e, self.filter(f, f.name == e.name).size() == 1)").message("each env name may be given once"))]
    pub envs: Option<Vec<SandboxEnv>>,
    /// Maximum age after creation before Blaxel deletes the sandbox (`30m`, `24h`, `7d`), passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[smhdw]$"))]
    pub ttl: Option<String>,
    /// Labels set on the remote sandbox, beside the operator's ownership labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Desired power state: `Running` or `Stopped`.
    #[serde(default)]
    pub state: PowerState,
    /// What happens to the remote sandbox when this object is deleted: `Delete` or `Orphan`.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// A Secret key in this namespace holding the Blaxel API key to use. Without it the operator's
    /// default key is used, where this namespace is allowed to use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<CredentialsRef>,
}

/// A port the sandbox exposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SandboxPort {
    /// Port name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub name: Option<String>,
    /// Port number inside the sandbox.
    #[schemars(range(min = 1, max = 65535))]
    pub target: i64,
    /// Protocol: HTTP, TCP, UDP or TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<PortProtocol>,
}

/// A port protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum PortProtocol {
    /// HTTP.
    Http,
    /// Raw TCP.
    Tcp,
    /// UDP.
    Udp,
    /// TLS.
    Tls,
}

impl PortProtocol {
    /// The protocol as Blaxel spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Tls => "TLS",
        }
    }
}

/// An environment variable: a value, or a key of a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("!(has(self.value) && has(self.valueFrom))").message("an env takes value or valueFrom, not both"))]
#[serde(rename_all = "camelCase")]
pub struct SandboxEnv {
    /// Variable name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Variable value (empty when neither this nor `valueFrom` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value taken from a key of a Secret in this namespace, so that it never sits in Git: it is
    /// sent to Blaxel (marked `secret`) and shown nowhere else; a changed value is sent at the next
    /// pass (`status.envDigest` tells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvSource>,
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvSource {
    /// A key of a Secret in the Sandbox's namespace.
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret in the object's own namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key in it.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A sandbox's power state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PowerState {
    /// Running (Blaxel may still put an idle sandbox on standby and resume it on demand).
    #[default]
    Running,
    /// Stopped.
    Stopped,
}

/// Observed state of a `Sandbox`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The remote status, verbatim (`DEPLOYING`, `DEPLOYED`, `FAILED`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The observed power state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<PowerState>,
    /// The sandbox URL, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How the power state is controlled: `StartStop` (2025 routes) or `Enabled` (today's `spec.enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_control: Option<String>,
    /// The keyed digest (`hmac-sha256:...`) of the Secret-sourced environment values last sent; never
    /// the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_digest: Option<String>,
    /// True when the remote sandbox existed before this object and was taken over.
    #[serde(default)]
    pub adopted: bool,
    /// The last `blaxel.ai/reconcile-requested-at` value handled (a forced resync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Ready, Synced, Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
