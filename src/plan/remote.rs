//! Blaxel as `plan` sees it: one workspace, read only. `Remote` offers reads alone (the HTTP client
//! inside is private), so no planning code can write; each list is read at most once per run.

use tokio::sync::OnceCell;

use crate::reconcile::conditions::Why;

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

    /// `text` (which may quote Blaxel) without the workspace's key, cut to length.
    #[must_use]
    pub fn scrub(&self, text: &str) -> String {
        crate::blaxel::error_map::outgoing_text(text, &self.scope.api_key)
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

/// The listed record whose identity is `identity` (`same` compares identities), as the operator's
/// list cache answers: a record that could not be read for that identity, or one whose identity could
/// not be read at all, leaves it unknown (the operator then waits; so does the plan).
///
/// # Errors
/// Why the record is unknown, as a `RemoteListIncomplete` verdict.
pub fn find<T: Clone>(
    listing: &Listing<T>,
    identity: &str,
    id_of: impl Fn(&T) -> &str,
    same: impl Fn(&str, &str) -> bool,
) -> Result<Option<T>, Why> {
    if let Some(item) = listing.items.iter().find(|i| same(id_of(i), identity)) {
        return Ok(Some(item.clone()));
    }
    let unknown = listing
        .unreadable
        .iter()
        .find(|u| u.identity.as_deref().is_none_or(|id| same(id, identity)));
    match unknown {
        Some(u) => Err(Why::new(
            "RemoteListIncomplete",
            format!(
                "a listed record that may be {identity} could not be read ({}); nothing is planned for it",
                u.error
            ),
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::blaxel::model::Unreadable;

    /// `a`, and unreadable records of these identities (`None`: an identity not read either).
    fn listing(unreadable: &[Option<&str>]) -> Listing<String> {
        Listing {
            items: vec!["a".to_owned()],
            unreadable: unreadable
                .iter()
                .map(|identity| Unreadable {
                    identity: identity.map(str::to_owned),
                    error: "bad".to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn unreadable_records_leave_their_identity_unknown() {
        fn id(s: &String) -> &str {
            s
        }
        fn same(a: &str, b: &str) -> bool {
            a.eq_ignore_ascii_case(b)
        }
        assert_eq!(
            find(&listing(&[]), "A", id, same).unwrap(),
            Some("a".to_owned())
        );
        assert_eq!(find(&listing(&[]), "b", id, same).unwrap(), None);
        assert_eq!(find(&listing(&[Some("c")]), "b", id, same).unwrap(), None);
        let why = find(&listing(&[Some("B")]), "b", id, same).unwrap_err();
        assert_eq!(why.reason, "RemoteListIncomplete");
        assert!(find(&listing(&[None]), "b", id, same).is_err());
        assert!(find(&listing(&[None]), "a", id, same).is_ok());
    }
}
