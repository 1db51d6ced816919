//! The seam between the reconcilers and Blaxel: the [`BlaxelApi`] trait, in the operator's own types.

use async_trait::async_trait;

use super::error::ApiError;
use super::model::{
    IntegrationConnection, Listing, PendingInvitation, Preview, PreviewToken, Sandbox, Workspace,
    WorkspaceAvailability, WorkspaceUser,
};
use super::secret::ApiKey;

/// Who is calling and where: every call is made in one workspace with one credential.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The Blaxel workspace (`X-Blaxel-Workspace`).
    pub workspace: String,
    /// The API key (`Authorization: Bearer`).
    pub api_key: ApiKey,
}

/// How a sandbox's power state is controlled in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerControl {
    /// The 2025 routes `PUT /sandboxes/{name}/start` and `/stop`.
    StartStop,
    /// Today's API: `spec.enabled` through `PUT /sandboxes/{name}`.
    Enabled,
}

impl PowerControl {
    /// The name shown in the object's status.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartStop => "StartStop",
            Self::Enabled => "Enabled",
        }
    }
}

/// Blaxel's control-plane operations the operator uses: one trait per resource, so each resource's calls
/// live in a file of their own (the HTTP client's `users.rs`, `sandboxes.rs`, ...), and any type with all
/// of them is a `BlaxelApi`.
///
/// Non-idempotent calls (`invite_user`, `create_sandbox`, `create_workspace`) are never retried by an
/// implementation: the caller re-observes instead, so a lost answer cannot send a second invitation or
/// create a second object.
pub trait BlaxelApi:
    UsersApi + SandboxesApi + PreviewsApi + WorkspacesApi + IntegrationsApi
{
}

impl<T: UsersApi + SandboxesApi + PreviewsApi + WorkspacesApi + IntegrationsApi> BlaxelApi for T {}

/// Workspace members and invitations (`/users`).
#[async_trait]
pub trait UsersApi: Send + Sync {
    /// `GET /users`: members and pending invitations; records that do not decode are reported apart.
    async fn list_users(&self, scope: &Scope) -> Result<Listing<WorkspaceUser>, ApiError>;
    /// `POST /users {email}`: invites (the invitation carries no role).
    async fn invite_user(&self, scope: &Scope, email: &str) -> Result<PendingInvitation, ApiError>;
    /// `PUT /users/{subOrEmail} {role}`.
    async fn set_user_role(
        &self,
        scope: &Scope,
        sub_or_email: &str,
        role: &str,
    ) -> Result<WorkspaceUser, ApiError>;
    /// `DELETE /users/{subOrEmail}`: removes a member or revokes a pending invitation.
    async fn remove_user(&self, scope: &Scope, sub_or_email: &str) -> Result<(), ApiError>;
}

/// Sandboxes (`/sandboxes`).
#[async_trait]
pub trait SandboxesApi: Send + Sync {
    /// `GET /sandboxes`, following pagination to the end; records that do not decode are reported apart.
    async fn list_sandboxes(&self, scope: &Scope) -> Result<Listing<Sandbox>, ApiError>;
    /// `GET /sandboxes/{name}`.
    async fn get_sandbox(&self, scope: &Scope, name: &str) -> Result<Sandbox, ApiError>;
    /// `POST /sandboxes`.
    async fn create_sandbox(&self, scope: &Scope, sandbox: &Sandbox) -> Result<Sandbox, ApiError>;
    /// `PUT /sandboxes/{metadata.name}`.
    async fn update_sandbox(&self, scope: &Scope, sandbox: &Sandbox) -> Result<Sandbox, ApiError>;
    /// `DELETE /sandboxes/{name}`.
    async fn delete_sandbox(&self, scope: &Scope, name: &str) -> Result<(), ApiError>;
    /// Starts (`running`) or stops a sandbox with `/start`/`/stop` where the API has them ("already in
    /// that state" counts as success), and answers [`PowerControl::Enabled`] without writing anything
    /// where it does not (detected once per workspace): power is then `spec.enabled`, set by the
    /// caller's own update of the sandbox, a body it builds knowing the values of the secret variables
    /// that Blaxel masks on reads (a read-modify-write here would send the masks back).
    /// `current` is the sandbox as last observed; its name is the target.
    async fn set_sandbox_power(
        &self,
        scope: &Scope,
        current: &Sandbox,
        running: bool,
    ) -> Result<PowerControl, ApiError>;
    /// The power control detected for a workspace so far, if any call has told.
    fn power_control(&self, workspace: &str) -> Option<PowerControl>;
}

/// Previews of a sandbox's port, and their tokens (`/sandboxes/{name}/previews`).
#[async_trait]
pub trait PreviewsApi: Send + Sync {
    /// `GET /sandboxes/{name}/previews`.
    async fn list_previews(&self, scope: &Scope, sandbox: &str) -> Result<Vec<Preview>, ApiError>;
    /// `POST /sandboxes/{name}/previews`.
    async fn create_preview(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &Preview,
    ) -> Result<Preview, ApiError>;
    /// `GET /sandboxes/{name}/previews/{preview}`.
    async fn get_preview(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
    ) -> Result<Preview, ApiError>;
    /// `PUT /sandboxes/{name}/previews/{preview}` (the preview as read, declared fields set).
    async fn update_preview(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &Preview,
    ) -> Result<Preview, ApiError>;
    /// `DELETE /sandboxes/{name}/previews/{preview}`.
    async fn delete_preview(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
    ) -> Result<(), ApiError>;
    /// `GET /sandboxes/{name}/previews/{preview}/tokens`.
    async fn list_preview_tokens(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
    ) -> Result<Vec<PreviewToken>, ApiError>;
    /// `POST /sandboxes/{name}/previews/{preview}/tokens {metadata:{name}, spec:{expiresAt}}`, the name
    /// `name_prefix` and a unique suffix.
    async fn create_preview_token(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
        name_prefix: &str,
        expires_at: &str,
    ) -> Result<PreviewToken, ApiError>;
    /// `DELETE /sandboxes/{name}/previews/{preview}/tokens/{token}`.
    async fn delete_preview_token(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
        token: &str,
    ) -> Result<(), ApiError>;
}

/// Workspaces (`/workspaces`). `scope.workspace` selects the workspace the call is made in (the
/// `X-Blaxel-Workspace` header); the workspace acted on is named by the call.
#[async_trait]
pub trait WorkspacesApi: Send + Sync {
    /// `GET /workspaces`: the workspaces the key may see.
    async fn list_workspaces(&self, scope: &Scope) -> Result<Vec<Workspace>, ApiError>;
    /// `GET /workspaces/{name}`.
    async fn get_workspace(&self, scope: &Scope, name: &str) -> Result<Workspace, ApiError>;
    /// `POST /workspaces/availability {name}`: whether `name` may be created (a read, despite the
    /// method). Both answers are read: a bare boolean (2025) and `{available, reason, message}`.
    async fn workspace_availability(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<WorkspaceAvailability, ApiError>;
    /// `POST /workspaces`.
    async fn create_workspace(
        &self,
        scope: &Scope,
        workspace: &Workspace,
    ) -> Result<Workspace, ApiError>;
    /// `PUT /workspaces/{workspace.name}`: the whole record, unknown fields included.
    async fn update_workspace(
        &self,
        scope: &Scope,
        workspace: &Workspace,
    ) -> Result<Workspace, ApiError>;
    /// `DELETE /workspaces/{name}`.
    async fn delete_workspace(&self, scope: &Scope, name: &str) -> Result<(), ApiError>;
}

/// Integration connections (`/integrations/connections`).
#[async_trait]
pub trait IntegrationsApi: Send + Sync {
    /// `GET /integrations/connections`: every connection of the workspace, secrets left out; records
    /// that do not decode are reported apart.
    async fn list_connections(
        &self,
        scope: &Scope,
    ) -> Result<Listing<IntegrationConnection>, ApiError>;
    /// `POST /integrations/connections`, secret included.
    async fn create_connection(
        &self,
        scope: &Scope,
        connection: &IntegrationConnection,
    ) -> Result<IntegrationConnection, ApiError>;
    /// `PUT /integrations/connections/{metadata.name}`: replaces the connection, secret included.
    async fn update_connection(
        &self,
        scope: &Scope,
        connection: &IntegrationConnection,
    ) -> Result<IntegrationConnection, ApiError>;
    /// `DELETE /integrations/connections/{name}`.
    async fn delete_connection(&self, scope: &Scope, name: &str) -> Result<(), ApiError>;
    /// `GET /integrations/connections/{name}/models`: how many models the connection offers.
    async fn count_models(&self, scope: &Scope, name: &str) -> Result<u32, ApiError>;
}
