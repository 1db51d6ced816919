//! Integration connections: `/integrations/connections`, and how many models a connection offers.
//!
//! A connection's secret values travel in request bodies only (never logged); what an answer shows of a
//! secret is dropped on the way in ([`IntegrationConnection::without_remote_secret`]).

use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value;

use super::{Call, HttpClient, seal, seal_with};
use crate::blaxel::api::{IntegrationsApi, Scope};
use crate::blaxel::error::ApiError;
use crate::blaxel::error_map;
use crate::blaxel::model::{IntegrationConnection, Listing};

/// The secret values a connection carries, to scrub from any error its request brings back.
fn secret_texts(connection: &IntegrationConnection) -> Vec<&str> {
    connection
        .spec
        .secret
        .iter()
        .flat_map(|secret| secret.values().map(crate::blaxel::SecretValue::expose))
        .collect()
}

/// How many models a models answer lists: a bare array, or an object holding one (`data`, `models`,
/// `items`). The definitions give the answer no schema; anything else is a decode error.
fn model_count(body: &[u8]) -> Result<u32, ApiError> {
    let what = "list of models";
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| error_map::decode_error(what, &e))?;
    let list = match &answer {
        Value::Array(items) => Some(items),
        Value::Object(fields) => ["data", "models", "items"]
            .iter()
            .find_map(|k| fields.get(*k).and_then(Value::as_array)),
        _ => None,
    };
    let list = list.ok_or_else(|| ApiError::Decode {
        message: format!("{what}: expected an array, or an object with a `data` array"),
    })?;
    Ok(u32::try_from(list.len()).unwrap_or(u32::MAX))
}

#[async_trait]
impl IntegrationsApi for HttpClient {
    async fn list_connections(
        &self,
        scope: &Scope,
    ) -> Result<Listing<IntegrationConnection>, ApiError> {
        let segments = ["integrations", "connections"];
        let listing = self
            .list_all(
                scope,
                "/integrations/connections",
                &segments,
                false,
                "list of integration connections",
            )
            .await
            .map(|listing| Listing {
                items: listing
                    .items
                    .into_iter()
                    .map(IntegrationConnection::without_remote_secret)
                    .collect(),
                unreadable: listing.unreadable,
            });
        seal(scope, listing)
    }

    async fn create_connection(
        &self,
        scope: &Scope,
        connection: &IntegrationConnection,
    ) -> Result<IntegrationConnection, ApiError> {
        let create = async {
            let segments = ["integrations", "connections"];
            let call =
                Call::new(Method::POST, "/integrations/connections", &segments).json(connection)?;
            self.fetch::<IntegrationConnection>(scope, &call, "integration connection")
                .await
                .map(IntegrationConnection::without_remote_secret)
        };
        seal_with(scope, &secret_texts(connection), create.await)
    }

    async fn update_connection(
        &self,
        scope: &Scope,
        connection: &IntegrationConnection,
    ) -> Result<IntegrationConnection, ApiError> {
        let update = async {
            let segments = [
                "integrations",
                "connections",
                connection.metadata.name.as_str(),
            ];
            let call = Call::new(
                Method::PUT,
                "/integrations/connections/{connectionName}",
                &segments,
            )
            .json(connection)?;
            self.fetch::<IntegrationConnection>(scope, &call, "integration connection")
                .await
                .map(IntegrationConnection::without_remote_secret)
        };
        seal_with(scope, &secret_texts(connection), update.await)
    }

    async fn delete_connection(&self, scope: &Scope, name: &str) -> Result<(), ApiError> {
        let segments = ["integrations", "connections", name];
        let call = Call::new(
            Method::DELETE,
            "/integrations/connections/{connectionName}",
            &segments,
        );
        seal(scope, self.execute(scope, &call).await.map(|_| ()))
    }

    async fn count_models(&self, scope: &Scope, name: &str) -> Result<u32, ApiError> {
        let count = async {
            let segments = ["integrations", "connections", name, "models"];
            let call = Call::new(
                Method::GET,
                "/integrations/connections/{connectionName}/models",
                &segments,
            );
            model_count(&self.execute(scope, &call).await?)
        };
        seal(scope, count.await)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::blaxel::SecretValue;

    /// Models are counted in an array or a `data` page; anything else is a decode error.
    #[test]
    fn models_are_counted_in_either_shape() {
        assert_eq!(model_count(b"[{},{},{}]").unwrap(), 3);
        assert_eq!(model_count(br#"{"data":[{"id":"a"}]}"#).unwrap(), 1);
        assert_eq!(model_count(b"[]").unwrap(), 0);
        for bad in [&b"null"[..], b"{}", b"7", br#"{"data":5}"#] {
            assert_eq!(
                model_count(bad).unwrap_err().category(),
                "Decode",
                "{bad:?}"
            );
        }
    }

    /// A connection read back drops what Blaxel shows of its secret, keeps everything else, and is
    /// sent with the operator's values only.
    #[test]
    fn remote_secrets_are_dropped_and_ours_are_sent() {
        let read: IntegrationConnection = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "openai", "labels": {"a": "b"}},
            "spec": {"integration": "openai", "config": {"org": "acme"}, "secret": {"apiKey": "***"}, "extra": 1}
        }))
        .unwrap();
        let mut mine = read.without_remote_secret();
        mine.spec.secret = Some([("apiKey".to_owned(), SecretValue::new("sk-1"))].into());
        let sent = serde_json::to_value(&mine).unwrap();
        assert_eq!(
            sent["spec"]["secret"],
            serde_json::json!({"apiKey": "sk-1"})
        );
        assert_eq!(sent["spec"]["extra"], 1);
        assert_eq!(sent["metadata"]["labels"], serde_json::json!({"a": "b"}));
        assert!(
            !format!("{mine:?}").contains("sk-1"),
            "Debug shows the secret"
        );
    }
}
