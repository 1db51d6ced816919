//! The custom resources users write: `WorkspaceMember` and `Sandbox` (group `blaxel.ai`, `v1alpha1`).
//!
//! Types only, no IO. The CRD YAML in `crds/` is generated from these types by `blaxel-operator crds`.

mod common;
mod member;
mod sandbox;

pub use common::{CredentialsRef, DeletionPolicy};
pub use member::{MemberPhase, Role, WorkspaceMember, WorkspaceMemberSpec, WorkspaceMemberStatus};
pub use sandbox::{
    PortProtocol, PowerState, Sandbox, SandboxEnv, SandboxPort, SandboxSpec, SandboxStatus,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The finalizer both kinds carry while remote cleanup is pending.
pub const FINALIZER: &str = "blaxel.ai/cleanup";
/// Every annotation the operator reads starts with this.
pub const ANNOTATION_PREFIX: &str = "blaxel.ai/";
/// Annotation: `"true"` pauses remote writes for the object.
pub const PAUSED_ANNOTATION: &str = "blaxel.ai/paused";
/// Annotation: changing its value forces an immediate resync.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "blaxel.ai/reconcile-requested-at";

/// Every CRD the operator serves, in a stable order.
#[must_use]
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![WorkspaceMember::crd(), Sandbox::crd()]
}

/// The CRDs as one multi-document YAML stream, as committed under `crds/`.
///
/// # Errors
/// Fails only if serialization fails, which would be a bug in the types.
pub fn to_yaml(crds: &[CustomResourceDefinition]) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(crd)?);
    }
    Ok(out)
}
