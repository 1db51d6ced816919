//! Previews of a sandbox's port and their tokens: `/sandboxes/{name}/previews[/{preview}/tokens]`.

use async_trait::async_trait;
use reqwest::Method;
use serde_json::json;

use super::{Call, HttpClient, seal};
use crate::blaxel::api::{PreviewsApi, Scope};
use crate::blaxel::error::ApiError;
use crate::blaxel::model::{Preview, PreviewToken};

/// The prefix of the names of the tokens the operator makes: tokens of other names (a person's, an
/// SDK's `token-<unix ms>`) are never deleted by it.
pub const OPERATOR_TOKEN_PREFIX: &str = "blaxel-operator-";

/// The prefix of the names of the tokens made for one object: [`OPERATOR_TOKEN_PREFIX`] and the first
/// 12 hex digits of its uid, which the API server assigns. A place recorded in a status (which whoever
/// may write the status subresource can set) then never leads the operator to another object's tokens.
pub fn owner_token_prefix(uid: &str) -> String {
    let tag: String = uid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .take(12)
        .collect();
    format!("{OPERATOR_TOKEN_PREFIX}{tag}-")
}

/// A name for a new preview token: today's API requires one (`metadata.name`). The caller's `prefix`,
/// the unix milliseconds and a random suffix, so two tokens minted in the same millisecond do not
/// collide (the POST is not retried, a collision would be a spurious 409).
fn token_name(prefix: &str, now: jiff::Timestamp, salt: u16) -> String {
    format!("{prefix}{}-{salt:04x}", now.as_millisecond())
}

#[async_trait]
impl PreviewsApi for HttpClient {
    async fn list_previews(&self, scope: &Scope, sandbox: &str) -> Result<Vec<Preview>, ApiError> {
        let segments = ["sandboxes", sandbox, "previews"];
        let previews = self
            .list_all(
                scope,
                "/sandboxes/{name}/previews",
                &segments,
                false,
                "list of previews",
            )
            .await
            .map(|listing| listing.items);
        seal(scope, previews)
    }

    async fn create_preview(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &Preview,
    ) -> Result<Preview, ApiError> {
        let create = async {
            let segments = ["sandboxes", sandbox, "previews"];
            let call =
                Call::new(Method::POST, "/sandboxes/{name}/previews", &segments).json(preview)?;
            self.fetch(scope, &call, "preview").await
        };
        seal(scope, create.await)
    }

    async fn get_preview(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
    ) -> Result<Preview, ApiError> {
        let read = async {
            let segments = ["sandboxes", sandbox, "previews", preview];
            let call = Call::new(
                Method::GET,
                "/sandboxes/{name}/previews/{preview}",
                &segments,
            );
            self.fetch(scope, &call, "preview").await
        };
        seal(scope, read.await)
    }

    async fn update_preview(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &Preview,
    ) -> Result<Preview, ApiError> {
        let update = async {
            let name = preview.metadata.name.as_str();
            let segments = ["sandboxes", sandbox, "previews", name];
            let call = Call::new(
                Method::PUT,
                "/sandboxes/{name}/previews/{preview}",
                &segments,
            )
            .json(preview)?;
            self.fetch(scope, &call, "preview").await
        };
        seal(scope, update.await)
    }

    async fn delete_preview(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
    ) -> Result<(), ApiError> {
        let segments = ["sandboxes", sandbox, "previews", preview];
        let call = Call::new(
            Method::DELETE,
            "/sandboxes/{name}/previews/{preview}",
            &segments,
        );
        seal(scope, self.execute(scope, &call).await.map(|_| ()))
    }

    async fn list_preview_tokens(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
    ) -> Result<Vec<PreviewToken>, ApiError> {
        let segments = ["sandboxes", sandbox, "previews", preview, "tokens"];
        let tokens = self
            .list_all(
                scope,
                "/sandboxes/{name}/previews/{preview}/tokens",
                &segments,
                false,
                "list of preview tokens",
            )
            .await
            .map(|listing| listing.items);
        seal(scope, tokens)
    }

    async fn create_preview_token(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
        name_prefix: &str,
        expires_at: &str,
    ) -> Result<PreviewToken, ApiError> {
        let create = async {
            let segments = ["sandboxes", sandbox, "previews", preview, "tokens"];
            let call = Call::new(
                Method::POST,
                "/sandboxes/{name}/previews/{preview}/tokens",
                &segments,
            )
            .json(&json!({
                "metadata": { "name": token_name(name_prefix, jiff::Timestamp::now(), rand::random::<u16>()) },
                "spec": { "expiresAt": expires_at },
            }))?;
            self.fetch(scope, &call, "preview token").await
        };
        seal(scope, create.await)
    }

    async fn delete_preview_token(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
        token: &str,
    ) -> Result<(), ApiError> {
        let segments = ["sandboxes", sandbox, "previews", preview, "tokens", token];
        let call = Call::new(
            Method::DELETE,
            "/sandboxes/{name}/previews/{preview}/tokens/{token}",
            &segments,
        );
        seal(scope, self.execute(scope, &call).await.map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// Generated token names are valid API names (lowercase, digits, hyphens) and differ by salt.
    #[test]
    fn token_names_are_valid_and_salted() {
        let now: jiff::Timestamp = "2026-11-28T03:00:00Z".parse().unwrap();
        let prefix = owner_token_prefix("0A1B2C3D-4E5F-6789-abcd-ef0123456789");
        assert_eq!(prefix, "blaxel-operator-0a1b2c3d4e5f-");
        assert_eq!(
            token_name(&prefix, now, 0xbeef),
            "blaxel-operator-0a1b2c3d4e5f-1795834800000-beef"
        );
        assert_ne!(token_name(&prefix, now, 1), token_name(&prefix, now, 2));
        let name = token_name(&prefix, now, 7);
        assert!(name.len() <= 63);
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
    }
}
