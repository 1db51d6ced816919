//! Sandboxes: `GET/POST /sandboxes`, `GET/PUT/DELETE /sandboxes/{name}` and, in the 2025 generation,
//! `PUT /sandboxes/{name}/start|stop`.
//!
//! A sandbox's `status` is never stored: it is computed from the clock and three facts kept in the record
//! (when power last changed and to what, when it was deleted, whether it is doomed to fail):
//!
//! ```text
//! power on  at t:  DEPLOYING until t + deploy-time, then DEPLOYED (or FAILED for a --fail-image image)
//! power off at t:  DEACTIVATING until t + stop-time, then DEACTIVATED (created disabled: DEACTIVATED at once)
//! deleted   at t:  DELETING until t + delete-time, then TERMINATED for termination-retention, then gone (404)
//! ```
//!
//! Gone records are purged lazily (a queue ordered by purge time, drained at the start of each request), so
//! counts and listings stay O(log n) per item without a background task.
//!
//! Decisions where the definitions are silent:
//! - Power is controlled by start/stop (2025) and by a *change* of `spec.enabled` through `PUT` (both
//!   generations; an absent `enabled` keeps the current power state). Start/stop do not rewrite `spec`.
//! - A name whose sandbox is `TERMINATED` or `FAILED` can be created again (the old record is replaced); one
//!   that is `DELETING` answers 409 like any existing sandbox.
//! - `PUT`, start and stop on a `DELETING`/`TERMINATED` sandbox answer 409; `DELETE` on one answers 200 with
//!   the sandbox as it is (deleting is idempotent).
//! - `PUT` replaces what it carries: `spec` when present (whole), `metadata.labels` and
//!   `metadata.displayName` when present; absent parts are kept. Changing `runtime.image` or `runtime.memory`
//!   of a running sandbox redeploys it (`DEPLOYING` again), as the 2026 definition warns.
//! - The value of a variable marked `secret: true` is stored as sent and answered as `***` (every
//!   answer: lists, gets, create/update/delete), unless `GET /sandboxes/{name}?show_secrets=true` (the
//!   definitions: "masked in API responses unless an admin requests show_secrets=true"; the simulator
//!   has no roles for keys, so any caller may ask). A `PUT` carrying `***` back stores `***`: what a
//!   client that writes back what it read does to a secret. `GET /_sim/state` shows the stored values.
//!
//! Files:
//! - [`record`]: the stored sandbox ([`SandboxRecord`]), its computed [`Phase`] and events, and the per-workspace
//!   [`SandboxBook`] with its indexes and purge queue.
//! - [`input`]: validation of create and update bodies, and the spec fields the server fills in.
//! - [`render`]: the `Sandbox` JSON each generation answers with.
//! - [`routes`]: create, get, update and delete.
//! - [`power`]: start and stop (2025) and the control route's forced failure.
//! - [`listing`]: `GET /sandboxes`, bare or paginated, with its filters, sorts and cursors.

pub mod input;
pub mod listing;
pub mod power;
pub mod record;
pub mod render;
pub mod routes;

pub use listing::{DEFAULT_PAGE, MAX_PAGE, PAGINATED_VERSION, list};
pub use power::{force_fail, start, stop};
pub use record::{MAX_EVENTS, Phase, STATUSES, SandboxBook, SandboxEvent, SandboxRecord};
pub use render::{MASKED, render, render_revealed, render_with, sandbox_url};
pub use routes::{CreateQuery, create, delete, get, update, with_sandbox};

/// Longest sandbox name the definition allows.
pub const MAX_NAME_LEN: usize = 49;
/// Region used when the request names none.
pub const DEFAULT_REGION: &str = "us-pdx-1";
