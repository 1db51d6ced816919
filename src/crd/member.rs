//! `WorkspaceMember`: a person invited to a Blaxel workspace with a role.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CredentialsRef, DeletionPolicy, WORKSPACE_NAME_MESSAGE, WORKSPACE_NAME_RULE};

/// A person's membership of a Blaxel workspace: invited, observed until accepted, kept at its role.
#[allow(
    clippy::duplicated_attributes,
    reason = "printcolumn(...) entries repeat `type_ = \"string\"` by design"
)]
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "blaxel.ai",
    version = "v1alpha1",
    kind = "WorkspaceMember",
    namespaced,
    doc = "A person invited to a Blaxel workspace with a role; see spec and status.",
    shortname = "wsm",
    category = "blaxel",
    status = "WorkspaceMemberStatus",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Workspace", type_ = "string", json_path = ".spec.workspace"),
    printcolumn(name = "Email", type_ = "string", json_path = ".spec.email"),
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.role"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceMemberSpec {
    /// Name of the Blaxel workspace. Immutable.
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("workspace is immutable"),
        validation = Rule::new(WORKSPACE_NAME_RULE).message(WORKSPACE_NAME_MESSAGE)
    )]
    #[schemars(length(min = 1, max = 63))]
    pub workspace: String,
    /// E-mail address of the person to invite, in its one canonical form: lower-case printable ASCII, no
    /// whitespace of any kind (the form lookups, claims and every remote call use). Immutable.
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("email is immutable"),
        validation = Rule::new(r"self.matches('^[!-?\\[-~]+@[!-?\\[-~]+\\.[!-?\\[-~]+$')").message("email must be a lower-case ASCII e-mail address without spaces, such as alice@example.com")
    )]
    #[schemars(length(min = 3, max = 254))]
    pub email: String,
    /// Role in the workspace: `admin` or `member`.
    #[serde(default)]
    pub role: Role,
    /// What happens to the remote member or invitation when this object is deleted:
    /// `Delete` removes the member (or revokes the invitation), `Orphan` leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// A Secret key in this namespace holding the Blaxel API key to use. Without it the operator's
    /// default key is used, where this namespace is allowed to use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<CredentialsRef>,
}

/// A workspace role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full control of the workspace.
    Admin,
    /// Ordinary member.
    #[default]
    Member,
}

impl Role {
    /// The role's name as Blaxel spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

/// Where a member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MemberPhase {
    /// Not yet invited.
    Pending,
    /// Invitation sent, not yet accepted.
    Invited,
    /// Invitation accepted; the person is a member with the desired role.
    Active,
    /// The invitation expired more often than the operator re-sends it.
    Expired,
    /// The member cannot be reconciled (see the conditions).
    Failed,
    /// The invitation disappeared unaccepted (declined, or revoked by hand) more often than the
    /// operator sends it again.
    Declined,
    /// Being removed.
    Deleting,
}

/// Observed state of a `WorkspaceMember`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceMemberStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the member stands: Pending, Invited, Active, Expired, Declined, Failed or Deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MemberPhase>,
    /// Blaxel's user id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// True when the member or invitation existed before this object.
    #[serde(default)]
    pub adopted: bool,
    /// How many times an invitation was sent again after it expired or disappeared unaccepted.
    #[serde(default)]
    pub reinvites: u32,
    /// The last `blaxel.ai/reconcile-requested-at` value handled (a forced resync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Ready, Synced, Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
