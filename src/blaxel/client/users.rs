//! Workspace members and invitations: `/users`.

use async_trait::async_trait;
use reqwest::Method;
use serde_json::json;

use super::{Call, HttpClient, seal};
use crate::blaxel::api::{Scope, UsersApi};
use crate::blaxel::error::ApiError;
use crate::blaxel::model::{Listing, PendingInvitation, WorkspaceUser};

#[async_trait]
impl UsersApi for HttpClient {
    async fn list_users(&self, scope: &Scope) -> Result<Listing<WorkspaceUser>, ApiError> {
        let listing = self
            .list_all(scope, "/users", &["users"], false, "list of users")
            .await;
        seal(scope, listing)
    }

    async fn invite_user(&self, scope: &Scope, email: &str) -> Result<PendingInvitation, ApiError> {
        let invite = async {
            let call =
                Call::new(Method::POST, "/users", &["users"]).json(&json!({ "email": email }))?;
            self.fetch(scope, &call, "invitation").await
        };
        seal(scope, invite.await)
    }

    async fn set_user_role(
        &self,
        scope: &Scope,
        sub_or_email: &str,
        role: &str,
    ) -> Result<WorkspaceUser, ApiError> {
        let set = async {
            let segments = ["users", sub_or_email];
            let call = Call::new(Method::PUT, "/users/{subOrEmail}", &segments)
                .json(&json!({ "role": role }))?;
            self.fetch(scope, &call, "workspace user").await
        };
        seal(scope, set.await)
    }

    async fn remove_user(&self, scope: &Scope, sub_or_email: &str) -> Result<(), ApiError> {
        let segments = ["users", sub_or_email];
        let call = Call::new(Method::DELETE, "/users/{subOrEmail}", &segments);
        seal(scope, self.execute(scope, &call).await.map(|_| ()))
    }
}
