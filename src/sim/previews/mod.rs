//! Sandbox previews and their tokens: `GET/POST /sandboxes/{name}/previews`,
//! `GET/PUT/DELETE /sandboxes/{name}/previews/{preview}`, `GET/POST .../previews/{preview}/tokens` and
//! `DELETE .../tokens/{token}`, as both definitions describe them (`Preview`, `PreviewSpec`, `PreviewToken`).
//!
//! Previews live inside their sandbox's record. Like a sandbox's status, whether a preview still exists is
//! computed from the simulator clock, never by a background task ([`record::settle`]):
//!
//! - a preview whose `spec.ttl` has run out (counted from its creation) or whose `spec.expires` has passed
//!   is deleted, as the definitions say ("After this duration, the preview will be automatically deleted");
//! - every preview (with its tokens) is deleted with its sandbox: from the sandbox's `DELETE` on, its list is
//!   empty and its previews answer 404; a new preview on a sandbox being deleted answers 409.
//!
//! A token's `expired` flag compares its `spec.expiresAt` (kept as the instant the client sent, one hour
//! after creation when it sent none) with the simulator clock.
//!
//! URLs (`spec.url`, read-only): `https://<id>.preview.bl.run`, `<id>` 32 hex digits derived from the
//! workspace, sandbox and preview names (stable: a preview deleted and created again keeps its URL); with
//! `spec.prefixUrl`, `https://<prefixUrl>-<workspace>.preview.bl.run`; with `spec.customDomain`,
//! `https://<prefixUrl or id>.preview.<customDomain>` (the `CustomDomain` schema's
//! `<preview-id>.preview.<base-domain>`). Two live previews of a workspace cannot share a URL: the second
//! answers 409, unless (2026 only) `POST ...?force=true` asks to replace the first. The check looks at every
//! preview of the workspace (O(previews) per create or update).
//!
//! Token values are secrets: they are answered to the API caller (the definitions' `PreviewToken.spec.token`)
//! and shown by `GET /_sim/state`, never logged; [`TokenRecord`]'s `Debug` redacts them.
//!
//! Files:
//! - [`input`]: validation of preview and token bodies.
//! - [`record`]: the stored preview and token, URL hosts, lifetimes, rendering.
//! - [`routes`]: the preview routes. [`tokens`]: the token routes.

pub mod input;
pub mod record;
pub mod routes;
pub mod tokens;

use std::time::Duration;

pub use record::{PreviewRecord, TokenRecord, render_all};
pub use routes::{create, delete, get, list, update};
pub use tokens::{create_token, delete_token, list_tokens};

/// Longest preview or token name.
pub const MAX_NAME_LEN: usize = 63;
/// Token lifetime when the request gives no `expiresAt`.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// The domain previews are served under when they have no custom domain.
pub const PREVIEW_DOMAIN: &str = "preview.bl.run";
