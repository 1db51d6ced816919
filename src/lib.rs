//! blaxel-operator: a Kubernetes operator that keeps Blaxel workspace members and sandboxes in the state
//! declared in Git.
//!
//! Module map:
//! - [`blaxel`]: the remote API: models, typed errors, the `BlaxelApi` trait and its HTTP client.
//! - [`sim`]: the embedded Blaxel API simulator (`blaxel-operator simulate`).
//! - [`kube_local`]: a real Kubernetes API server on loopback for tests, benchmarks and the demo.

pub mod kube_local;
