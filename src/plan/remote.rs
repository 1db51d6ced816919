//! Blaxel as `plan` sees it: one workspace, read only. `Remote` offers reads alone (the HTTP client
//! inside is private), so no planning code can write; each list is read at most once per run.

use tokio::sync::OnceCell;

use crate::blaxel::api::{
    IntegrationsApi, PreviewsApi, SandboxesApi, Scope, UsersApi, WorkspacesApi,
};
use crate::blaxel::client::HttpClient;
use crate::blaxel::error::ApiError;
use crate::blaxel::model::{
    IntegrationConnection, Listing, Preview, Sandbox, Workspace, WorkspaceAvailability,
    WorkspaceUser,
};

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
    connections: OnceCell<Listing<IntegrationConnection>>,
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
            connections: OnceCell::new(),
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

    /// `GET /integrations/connections`, read once.
    ///
    /// # Errors
    /// The remote error.
    pub async fn connections(&self) -> Result<&Listing<IntegrationConnection>, ApiError> {
        self.connections
            .get_or_try_init(|| self.api.list_connections(&self.scope))
            .await
    }

    /// `GET /workspaces/{name}`: `None` when absent for this key.
    ///
    /// # Errors
    /// The remote error.
    pub async fn workspace(&self, name: &str) -> Result<Option<Workspace>, ApiError> {
        crate::reconcile::workspace::as_observed(self.api.get_workspace(&self.scope, name).await)
    }

    /// `POST /workspaces/availability`: a read, despite the method.
    ///
    /// # Errors
    /// The remote error.
    pub async fn availability(&self, name: &str) -> Result<WorkspaceAvailability, ApiError> {
        self.api.workspace_availability(&self.scope, name).await
    }

    /// `GET /sandboxes/{sandbox}/previews/{name}`: `None` when absent.
    ///
    /// # Errors
    /// The remote error.
    pub async fn preview(&self, sandbox: &str, name: &str) -> Result<Option<Preview>, ApiError> {
        match self.api.get_preview(&self.scope, sandbox, name).await {
            Ok(p) => Ok(Some(p)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
