//! Blaxel as `plan` sees it: one workspace, read only. `Remote` offers reads alone (the HTTP client
//! inside is private), so no planning code can write; each list is read at most once per run.

use tokio::sync::OnceCell;

use crate::blaxel::api::{SandboxesApi, Scope, UsersApi};
use crate::blaxel::client::HttpClient;
use crate::blaxel::error::ApiError;
use crate::blaxel::model::{Listing, Sandbox, WorkspaceUser};

/// What the operator's configuration adds to a plan.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--instance`: part of the ownership written on sandboxes.
    pub instance: Option<String>,
    /// `--max-reinvites`.
    pub max_reinvites: u32,
}

/// One workspace, read only, each list read once.
pub struct Remote {
    api: HttpClient,
    scope: Scope,
    settings: Settings,
    users: OnceCell<Listing<WorkspaceUser>>,
    sandboxes: OnceCell<Listing<Sandbox>>,
}

impl Remote {
    /// Reads `scope`'s workspace with `api`.
    #[must_use]
    pub fn new(api: HttpClient, scope: Scope, settings: Settings) -> Self {
        Self {
            api,
            scope,
            settings,
            users: OnceCell::new(),
            sandboxes: OnceCell::new(),
        }
    }

    /// The operator's configuration.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `GET /users`, read once.
    ///
    /// # Errors
    /// The remote error.
    pub async fn users(&self) -> Result<&Listing<WorkspaceUser>, ApiError> {
        self.users
            .get_or_try_init(|| self.api.list_users(&self.scope))
            .await
    }

    /// `GET /sandboxes`, every page, read once.
    ///
    /// # Errors
    /// The remote error.
    pub async fn sandboxes(&self) -> Result<&Listing<Sandbox>, ApiError> {
        self.sandboxes
            .get_or_try_init(|| self.api.list_sandboxes(&self.scope))
            .await
    }
}
