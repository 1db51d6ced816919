//! Workspaces of the simulator's one account: `GET/POST /workspaces`, `GET/PUT/DELETE /workspaces/{name}` and
//! `POST /workspaces/availability`, in both API generations.
//!
//! Every workspace named by an `--api-key` binding exists from the start, `ready`. A workspace created through
//! `POST /workspaces` (account keys only) starts `created` and passes through `account_binded`,
//! `account_configured` and `workspace_configured` to `ready` over `--workspace-ready-time`, on the simulator
//! clock; then its users, sandboxes and previews can be reached (with an account key naming it in
//! `X-Blaxel-Workspace`), all empty at first. `DELETE` removes it and everything in it at once.
//!
//! Decisions where the definitions are silent:
//! - **Permissions** (see [`routes`]): account keys may do everything; a workspace key may list and read its
//!   own workspace and update it, and gets 403 for creating, deleting, and any other workspace. Availability is
//!   open to both: it tells only what a create would.
//! - **Names held elsewhere** answer 403 (they exist; the caller has no access), unknown names 404 to an
//!   account key. Creating a taken name answers 409, a forbidden one 400 ([`names`]).
//! - **Not ready**: workspace routes (users, sandboxes, previews) in a workspace that is not `ready` answer
//!   409 `WORKSPACE_NOT_READY`; the `/workspaces` routes themselves work in every status.
//! - **Writes** ([`input`]): `PUT` writes the fields its body carries and keeps the others, as `PUT
//!   /sandboxes/{name}` does; the name cannot change (400). Server fields (`id`, `accountId`, `status`,
//!   `statusReason`, times, owners, 2026 `resourceCounts`) are ignored in bodies; every field the generation
//!   does not know is kept verbatim and answered back.
//! - **Delete** answers 200 with the workspace as it was (the definition's `Workspace`), at once: there is no
//!   deleting status. The keys bound to a deleted workspace answer 401 from then on.
//! - `accountId` is [`ACCOUNT_ID`]; `region` defaults to `us-pdx-1`, `runtime.generation` to `mk3`.
//!
//! Files: [`record`] (the record and its status), [`input`] (bodies), [`render`] (answers), [`names`]
//! (availability), [`routes`] (the API), [`control`] (the `/_sim/` routes about workspaces).

pub mod control;
pub mod input;
pub mod names;
pub mod record;
pub mod render;
pub mod routes;

pub use record::{HipaaInfo, WorkspaceRecord, WorkspaceStatus};
pub use render::{is_ready, render, resource_counts};
pub use routes::{availability, create, delete, get, list, update};

/// Longest workspace name the simulator accepts (the definitions give none; a DNS label's limit).
pub const MAX_NAME_LEN: usize = 63;
/// Region of a workspace whose body names none (the same default as sandboxes).
pub const DEFAULT_REGION: &str = super::sandboxes::DEFAULT_REGION;
/// `runtime.generation` of a workspace whose body names none (the 2026 definition's example).
pub const DEFAULT_RUNTIME_GENERATION: &str = "mk3";
/// The `accountId` of every workspace: the simulator has one account.
pub const ACCOUNT_ID: &str = "5a1ac0de-0000-4000-8000-000000000001";
/// `createdBy`/`updatedBy` of the workspaces named by `--api-key` bindings.
pub const SEED_PRINCIPAL: &str = "sim";
