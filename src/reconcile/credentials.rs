//! Which API key an object may use: its own Secret (`credentialsRef`, same namespace), or the operator's
//! default key where its namespace is allowed to use it.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tokio::time::Instant;

use crate::blaxel::ApiKey;
use crate::crd::CredentialsRef;

/// The operator's default credentials and who may use them.
#[derive(Debug, Clone, Default)]
pub struct DefaultCredentials {
    /// The default API key, if one was configured.
    pub key: Option<ApiKey>,
    /// Namespaces allowed to use it; `*` allows every namespace; empty allows none.
    pub namespaces: HashSet<String>,
}

/// Why no key could be had. Messages name Secrets and keys, never key material.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// No `credentialsRef` and the default key is absent or not allowed in this namespace.
    #[error(
        "namespace {namespace} may not use the operator's default credentials; set spec.credentialsRef"
    )]
    NotPermitted {
        /// The object's namespace.
        namespace: String,
    },
    /// The referenced Secret does not exist.
    #[error("Secret {name} not found in namespace {namespace}")]
    SecretNotFound {
        /// Secret name.
        name: String,
        /// Namespace.
        namespace: String,
    },
    /// The Secret lacks the key, or it is empty.
    #[error("Secret {name} has no non-empty key {key}")]
    KeyMissing {
        /// Secret name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// Reading the Secret failed.
    #[error("reading Secret {name}: {source}")]
    Kube {
        /// Secret name.
        name: String,
        /// The Kubernetes API error.
        #[source]
        source: kube::Error,
    },
}

impl CredentialsError {
    /// The condition reason.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotPermitted { .. } => "CredentialsNotPermitted",
            Self::SecretNotFound { .. } | Self::KeyMissing { .. } => "CredentialsNotFound",
            Self::Kube { .. } => "CredentialsUnreadable",
        }
    }

    /// True when retrying soon may help (a Kubernetes API hiccup).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Kube { .. })
    }
}

impl DefaultCredentials {
    fn allows(&self, namespace: &str) -> bool {
        self.namespaces.contains("*") || self.namespaces.contains(namespace)
    }

    /// Resolves the key for an object in `namespace` with an optional `credentialsRef`.
    ///
    /// # Errors
    /// See [`CredentialsError`].
    pub async fn resolve(
        &self,
        client: &kube::Client,
        namespace: &str,
        reference: Option<&CredentialsRef>,
    ) -> Result<ApiKey, CredentialsError> {
        let Some(reference) = reference else {
            return match &self.key {
                Some(key) if self.allows(namespace) => Ok(key.clone()),
                _ => Err(CredentialsError::NotPermitted {
                    namespace: namespace.to_owned(),
                }),
            };
        };
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let secret = secrets
            .get_opt(&reference.name)
            .await
            .map_err(|source| CredentialsError::Kube {
                name: reference.name.clone(),
                source,
            })?
            .ok_or_else(|| CredentialsError::SecretNotFound {
                name: reference.name.clone(),
                namespace: namespace.to_owned(),
            })?;
        let from_data = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&reference.key))
            .and_then(|v| std::str::from_utf8(&v.0).ok().map(ApiKey::new));
        let from_string_data = || {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(&reference.key))
                .map(|v| ApiKey::new(v))
        };
        from_data
            .or_else(from_string_data)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| CredentialsError::KeyMissing {
                name: reference.name.clone(),
                key: reference.key.clone(),
            })
    }
}

/// How long a key read from a Secret is reused. Without it every reconcile read its Secret again: one
/// Kubernetes GET per object per resync, which at 10,000 objects kept the API server busy in a steady
/// state that otherwise costs nothing. A rotated key is picked up within this delay.
pub const SECRET_TTL: Duration = Duration::from_secs(2);

/// Keys recently read from Secrets, by (namespace, Secret, key). Only successful reads are kept: a
/// missing Secret or key is looked up again on the next reconcile.
#[derive(Debug, Default)]
pub struct SecretKeys {
    entries: Mutex<HashMap<SecretKeyId, (Instant, ApiKey)>>,
}

/// (namespace, Secret name, key in the Secret).
type SecretKeyId = (String, String, String);

impl SecretKeys {
    /// [`DefaultCredentials::resolve`], reusing a key read less than [`SECRET_TTL`] ago.
    ///
    /// # Errors
    /// See [`CredentialsError`].
    pub async fn resolve(
        &self,
        credentials: &DefaultCredentials,
        client: &kube::Client,
        namespace: &str,
        reference: Option<&CredentialsRef>,
    ) -> Result<ApiKey, CredentialsError> {
        let Some(r) = reference else {
            return credentials.resolve(client, namespace, None).await;
        };
        let id = (namespace.to_owned(), r.name.clone(), r.key.clone());
        let now = Instant::now();
        {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            match entries.get(&id) {
                Some((at, key)) if now.duration_since(*at) < SECRET_TTL => return Ok(key.clone()),
                Some(_) => {
                    entries.remove(&id);
                }
                None => {}
            }
        }
        let key = credentials.resolve(client, namespace, reference).await?;
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Expired entries of Secrets nobody asks for any more go at the next insert.
        entries.retain(|_, (at, _)| now.duration_since(*at) < SECRET_TTL);
        entries.insert(id, (now, key.clone()));
        Ok(key)
    }
}
