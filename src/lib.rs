//! blaxel-operator: a Kubernetes operator that keeps Blaxel workspace members and sandboxes in the state
//! declared in Git.
//!
//! Module map:
//! - [`blaxel`]: the remote API: models, typed errors, the `BlaxelApi` trait and its HTTP client.
//! - [`sim`]: the embedded Blaxel API simulator (`blaxel-operator simulate`).

pub mod sim;
