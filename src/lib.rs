//! blaxel-operator: a Kubernetes operator that keeps Blaxel workspace members and sandboxes in the state
//! declared in Git.
//!
//! Module map:
//! - [`crd`]: the custom resources users write (types only).
//! - [`reconcile`]: one reconciler per kind (observe → plan → act → report), pure planners and status.
//! - [`controller`]: watches, concurrency, backoff and shutdown.
//! - [`blaxel`]: the remote API: models, typed errors, the `BlaxelApi` trait and its HTTP client.
//! - [`sim`]: the embedded Blaxel API simulator (`blaxel-operator simulate`).
//! - [`kube_local`]: the local Kubernetes API server used by the demo and the tests.
//! - [`kube_client`]: the Kubernetes client (kube's stack over HTTP/2).
//! - [`cli`], [`operator`], [`demo`], [`telemetry`]: the command line, `run`, `demo`, and logging.
//! - [`plan`]: `blaxel-operator plan`, what a change of manifests will do to Blaxel (read only).
//! - [`validation`]: offline validation of custom resources against the CRDs, with the API server's
//!   verdict and messages (for `plan`).
//! - [`ops`]: around the controllers: [`metrics`], the [`server`] (`/metrics`, `/healthz`, `/readyz`) and
//!   [`leader`] election with its write fence.

/// `println!` for what a command tells the person running it. A closed stdout (`demo | head`) ends
/// nothing: the message is dropped and the work goes on, where `println!` would panic.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod blaxel;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod demo;
pub mod kube_client;
pub mod kube_local;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod ops;
#[cfg(feature = "otel")]
pub mod otel;
pub mod plan;
pub mod reconcile;
pub mod server;
pub mod sim;
pub mod telemetry;
pub mod validation;
