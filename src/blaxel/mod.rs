//! The remote side: Blaxel's control-plane API as the operator sees it.
//!
//! - [`model`]: the operator's own typed view of the API's objects (tolerant of unknown fields and values).
//! - [`error`]: typed remote errors, each knowing whether it is transient and its metric/Event category.
//! - [`api`]: the [`BlaxelApi`] trait the reconcilers call, and the [`Scope`] (workspace + credential) of a call.
//! - [`secret`]: the redacting [`ApiKey`] wrapper.
//!
//! Reconcilers depend on the trait only; the HTTP implementation lives behind it.

pub mod api;
pub mod error;
pub mod model;
pub mod secret;

pub use api::{BlaxelApi, PowerControl, Scope};
pub use error::ApiError;
pub use secret::ApiKey;
