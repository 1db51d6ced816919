//! The remote side: Blaxel's control-plane API as the operator sees it.
//!
//! - [`model`]: the operator's own typed view of the API's objects (tolerant of unknown fields and values).
//! - [`error`]: typed remote errors, each knowing whether it is transient and its metric/Event category.
//! - [`api`]: the [`BlaxelApi`] trait the reconcilers call, and the [`Scope`] (workspace + credential) of a call.
//! - [`secret`]: the redacting [`ApiKey`] wrapper.
//! - [`client`]: [`HttpClient`], the reqwest implementation of the trait, built from a [`ClientConfig`].
//!   Its helpers: [`route`] (URLs, percent-encoding), [`error_map`] (HTTP answer → [`ApiError`],
//!   `Retry-After`), [`retry`] (backoff policy), [`ratelimit`] (token bucket per credential) and [`power`]
//!   (start/stop vs `spec.enabled`, detected once per workspace).
//!
//! Reconcilers depend on the trait only; the HTTP implementation lives behind it.

pub mod api;
pub mod client;
pub mod error;
pub mod error_map;
pub mod fence;
pub mod model;
pub mod power;
pub mod ratelimit;
pub mod retry;
pub mod route;
pub mod secret;

pub use api::{
    BlaxelApi, IntegrationsApi, PowerControl, PreviewsApi, SandboxesApi, Scope, UsersApi,
    WorkspacesApi,
};
pub use client::{Attempt, AttemptObserver, ClientConfig, ConfigError, HttpClient};
pub use error::ApiError;
pub use ratelimit::RateLimitStats;
pub use retry::RetryPolicy;
pub use secret::{ApiKey, SecretValue};
