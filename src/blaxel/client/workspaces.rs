//! Workspaces: `/workspaces`, and the name availability check.

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Call, HttpClient, seal};
use crate::blaxel::api::{Scope, WorkspacesApi};
use crate::blaxel::error::ApiError;
use crate::blaxel::error_map;
use crate::blaxel::model::{Workspace, WorkspaceAvailability};

/// Reads an availability answer: a bare boolean (2025) or `{available, reason, message}` (2026). An
/// answer of any other shape, or an object without a boolean `available`, is a decode error: never
/// taken for "available".
fn availability(body: &[u8]) -> Result<WorkspaceAvailability, ApiError> {
    let what = "workspace availability";
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| error_map::decode_error(what, &e))?;
    let unexpected = || ApiError::Decode {
        message: format!("{what}: expected a boolean or an object with a boolean `available`"),
    };
    match answer {
        Value::Bool(available) => Ok(WorkspaceAvailability {
            available,
            ..WorkspaceAvailability::default()
        }),
        Value::Object(ref fields) if fields.get("available").is_some_and(Value::is_boolean) => {
            serde_json::from_value(answer).map_err(|e| error_map::decode_error(what, &e))
        }
        _ => Err(unexpected()),
    }
}

#[async_trait]
impl WorkspacesApi for HttpClient {
    async fn list_workspaces(&self, scope: &Scope) -> Result<Vec<Workspace>, ApiError> {
        let call = Call::new(Method::GET, "/workspaces", &["workspaces"]);
        seal(scope, self.fetch(scope, &call, "list of workspaces").await)
    }

    async fn get_workspace(&self, scope: &Scope, name: &str) -> Result<Workspace, ApiError> {
        let segments = ["workspaces", name];
        let call = Call::new(Method::GET, "/workspaces/{name}", &segments);
        seal(scope, self.fetch(scope, &call, "workspace").await)
    }

    async fn workspace_availability(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<WorkspaceAvailability, ApiError> {
        let check = async {
            let segments = ["workspaces", "availability"];
            // Today's API gives the reason only when asked; the 2025 API ignores the parameter.
            let call = Call {
                query: &[("withReason", "true")],
                ..Call::new(Method::POST, "/workspaces/availability", &segments)
            }
            .json(&json!({ "name": name }))?;
            availability(&self.execute(scope, &call).await?)
        };
        seal(scope, check.await)
    }

    async fn create_workspace(
        &self,
        scope: &Scope,
        workspace: &Workspace,
    ) -> Result<Workspace, ApiError> {
        let create = async {
            let call = Call::new(Method::POST, "/workspaces", &["workspaces"]).json(workspace)?;
            self.fetch(scope, &call, "workspace").await
        };
        seal(scope, create.await)
    }

    async fn update_workspace(
        &self,
        scope: &Scope,
        workspace: &Workspace,
    ) -> Result<Workspace, ApiError> {
        let update = async {
            let segments = ["workspaces", workspace.name.as_str()];
            let call = Call::new(Method::PUT, "/workspaces/{name}", &segments).json(workspace)?;
            self.fetch(scope, &call, "workspace").await
        };
        seal(scope, update.await)
    }

    async fn delete_workspace(&self, scope: &Scope, name: &str) -> Result<(), ApiError> {
        let segments = ["workspaces", name];
        let call = Call::new(Method::DELETE, "/workspaces/{name}", &segments);
        seal(scope, self.execute(scope, &call).await.map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// Both generations' answers are read; anything else is a decode error, never "available".
    #[test]
    fn availability_in_both_shapes() {
        assert!(availability(b"true").unwrap().available);
        assert!(!availability(b"false").unwrap().available);
        let taken =
            availability(br#"{"available":false,"reason":"taken","message":"in use"}"#).unwrap();
        assert!(!taken.available);
        assert_eq!(taken.reason.as_deref(), Some("taken"));
        assert!(availability(br#"{"available":true}"#).unwrap().available);
        for bad in [
            &b"null"[..],
            b"\"yes\"",
            b"[true]",
            b"",
            br#"{"reason":"taken"}"#,
            br#"{"available":"yes"}"#,
        ] {
            assert_eq!(
                availability(bad).unwrap_err().category(),
                "Decode",
                "{bad:?}"
            );
        }
    }
}
