//! `Workspace`: a Blaxel workspace itself, and who may be in it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CredentialsRef, DeletionPolicy, WORKSPACE_NAME_MESSAGE, WORKSPACE_NAME_RULE};

/// A Blaxel workspace: created or adopted, its display name, labels and region kept as declared, and
/// its membership checked against the WorkspaceMember objects that name it.
#[allow(
    clippy::duplicated_attributes,
    reason = "printcolumn(...) entries repeat `type_ = \"string\"` by design"
)]
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "blaxel.ai",
    version = "v1alpha1",
    kind = "Workspace",
    namespaced,
    doc = "A Blaxel workspace, and who may be in it; see spec and status.",
    shortname = "bws",
    category = "blaxel",
    status = "WorkspaceStatus",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.members.policy"),
    printcolumn(
        name = "Unmanaged",
        type_ = "integer",
        json_path = ".status.members.unmanaged"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.workspaceName) == has(oldSelf.workspaceName)").message("workspaceName is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSpec {
    /// The remote workspace name (lower-case letters, digits and hyphens); default `metadata.name`.
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("workspaceName is immutable"),
        validation = Rule::new(WORKSPACE_NAME_RULE).message(WORKSPACE_NAME_MESSAGE)
    )]
    #[schemars(length(min = 1, max = 63))]
    pub workspace_name: Option<String>,
    /// The name shown to people. Left as it is remotely when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub display_name: Option<String>,
    /// The write region (e.g. `us-pdx-1`). Left as it is remotely when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub region: Option<String>,
    /// Remote labels. Left as they are remotely when absent; `{}` means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// What deleting this object does remotely: `Orphan` (the default: deleting a workspace destroys
    /// everything in it) leaves the workspace, `Delete` deletes it.
    #[serde(default = "orphan")]
    pub deletion_policy: DeletionPolicy,
    /// A Secret key in this namespace holding the Blaxel API key to use (an account key to create or
    /// delete the workspace; a workspace key suffices to adopt and keep it). Without it the operator's
    /// default key is used, where this namespace is allowed to use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<CredentialsRef>,
    /// Who may be in the workspace.
    #[serde(default)]
    pub members: MembersSpec,
}

fn orphan() -> DeletionPolicy {
    DeletionPolicy::Orphan
}

/// Who may be in the workspace, and what happens to members no WorkspaceMember declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembersSpec {
    /// `Additive` (the default) leaves unmanaged members alone; `Report` lists them in status and
    /// announces changes with a Warning Event; `Authoritative` removes them and revokes their
    /// invitations.
    #[serde(default)]
    pub policy: MembershipPolicy,
    /// E-mails never removed, whatever the policy (in canonical form: lower-case ASCII, no whitespace).
    /// Put here the person or service account whose key the operator uses: Blaxel does not say whose a
    /// key is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(r"self.all(e, e.matches('^[!-?\\[-~]+@[!-?\\[-~]+\\.[!-?\\[-~]+$'))").message("protected e-mails must be lower-case ASCII addresses without spaces, such as alice@example.com"))]
    #[schemars(length(max = 100), inner(length(min = 3, max = 254)))]
    pub protected: Vec<String>,
    /// `Authoritative`: a pass that would remove more than this many members and invitations removes
    /// none and waits for a person (Stalled `TooManyRemovals`). Default 5.
    #[serde(default = "default_max_removals")]
    #[schemars(range(max = 1000))]
    pub max_removals: u32,
    /// The namespaces whose WorkspaceMember objects count as declared for this workspace (in status, and
    /// as the view that must be complete); default this object's namespace. At least one: `[]` would
    /// declare no one. WorkspaceMembers of other namespaces that name the workspace are never removed
    /// either, so two teams' objects never fight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100), inner(length(min = 1, max = 63)))]
    pub namespaces: Option<Vec<String>>,
}

impl Default for MembersSpec {
    fn default() -> Self {
        Self {
            policy: MembershipPolicy::default(),
            protected: Vec::new(),
            max_removals: default_max_removals(),
            namespaces: None,
        }
    }
}

fn default_max_removals() -> u32 {
    5
}

/// What happens to members no WorkspaceMember declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MembershipPolicy {
    /// Left alone (and counted in status).
    #[default]
    Additive,
    /// Listed in status and announced by a Warning Event when the set changes; nothing removed.
    Report,
    /// Removed, and their invitations revoked, except protected ones.
    Authoritative,
}

impl MembershipPolicy {
    /// The policy's name as the spec spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Additive => "Additive",
            Self::Report => "Report",
            Self::Authoritative => "Authoritative",
        }
    }
}

/// Member counts of a workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemberCounts {
    /// Distinct e-mails WorkspaceMember objects declare for this workspace.
    pub declared: u32,
    /// Members and invitations in the workspace.
    pub present: u32,
    /// Members and invitations present that nothing declares or protects.
    pub unmanaged: u32,
}

/// Observed state of a `Workspace`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The remote status, verbatim (`created` ... `ready`, `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Blaxel's id of the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// True when the workspace existed before this object, false when this object created it (set
    /// as the create is sent, so a lost answer does not pass it off as adopted); absent until known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<bool>,
    /// Member counts, once the membership was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<MemberCounts>,
    /// The first 50 unmanaged members and invitations, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<String>,
    /// A digest of the whole unmanaged set (the list above stops at 50), so that a change past the
    /// 50th is still announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmanaged_digest: Option<String>,
    /// The last `blaxel.ai/reconcile-requested-at` value handled (a forced resync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Ready, Synced, Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
