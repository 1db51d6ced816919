//! Fields shared by both kinds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happens to the remote object when the Kubernetes object is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Remove the remote object (member, invitation or sandbox).
    #[default]
    Delete,
    /// Leave the remote object as it is.
    Orphan,
}

/// A key of a Secret in the object's own namespace holding a Blaxel API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRef {
    /// Name of the Secret, in the same namespace as this object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret's data holding the API key.
    #[serde(default = "default_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_key() -> String {
    "apiKey".to_owned()
}
