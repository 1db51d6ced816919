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
    pub key: DefaultKey,
    /// Namespaces allowed to use it; `*` allows every namespace; empty allows none.
    pub namespaces: HashSet<String>,
}

/// Why no key could be had. Messages name Secrets and keys, never key material.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// No `credentialsRef`, and this namespace is not allowed the default key.
    #[error(
        "namespace {namespace} may not use the operator's default credentials; set spec.credentialsRef"
    )]
    NotPermitted {
        /// The object's namespace.
        namespace: String,
    },
    /// No `credentialsRef`; the namespace is allowed the default key, but the operator has none loaded.
    #[error(
        "the operator has no default API key (BL_API_KEY or --api-key-file); set spec.credentialsRef or give the operator a key"
    )]
    NoDefaultKey,
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
            Self::NoDefaultKey => "DefaultCredentialsMissing",
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

/// The key an environment variable holds, if it is set and not blank.
#[must_use]
pub fn key_from_env(variable: &str) -> Option<ApiKey> {
    std::env::var(variable)
        .ok()
        .map(|k| ApiKey::new(&k))
        .filter(|k| !k.is_empty())
}

/// The operator's default key: fixed (`BL_API_KEY`), or a file (`--api-key-file`) read again at each
/// use, so a key rotated in a mounted Secret (the kubelet swaps the file) is used without a restart. A
/// key is a few dozen bytes: reading it costs about what a `stat` would, and no stamp (time, length)
/// can miss a rewrite.
#[derive(Debug, Clone)]
pub enum DefaultKey {
    /// A key given once, or none.
    Fixed(Option<ApiKey>),
    /// A file, and the key last read from it.
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The key last read, shared by the clones.
        last: std::sync::Arc<std::sync::Mutex<Option<ApiKey>>>,
    },
}

impl Default for DefaultKey {
    fn default() -> Self {
        Self::Fixed(None)
    }
}

impl From<Option<ApiKey>> for DefaultKey {
    fn from(key: Option<ApiKey>) -> Self {
        Self::Fixed(key)
    }
}

impl DefaultKey {
    /// The default key as configured: the file `--api-key-file` names (read again whenever it
    /// changes), else the `BL_API_KEY` variable.
    ///
    /// # Errors
    /// When the file cannot be read (the message names the file, never its content).
    pub fn configured(file: Option<&std::path::Path>) -> Result<Self, std::io::Error> {
        match file {
            Some(path) => Self::file(path.to_path_buf()),
            None => Ok(Self::Fixed(key_from_env("BL_API_KEY"))),
        }
    }

    /// A key file, read now (empty: no default key, until it holds one).
    ///
    /// # Errors
    /// When it cannot be read (the message names the file, never its content).
    pub fn file(path: std::path::PathBuf) -> Result<Self, std::io::Error> {
        let key = Self::read(&path)?;
        Ok(Self::File {
            path,
            last: std::sync::Arc::new(std::sync::Mutex::new(key)),
        })
    }

    /// The key now. A file read is the key unless it fails or is empty (the file replaced, or
    /// truncated by a writer, at that instant): then the key read before is kept.
    pub fn current(&self) -> Option<ApiKey> {
        match self {
            Self::Fixed(key) => key.clone(),
            Self::File { path, last } => {
                let mut last = last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match Self::read(path) {
                    Ok(Some(key)) => {
                        if last.as_ref().is_some_and(|k| k != &key) {
                            tracing::info!(file = %path.display(), "the API key file changed: using the new key");
                        }
                        *last = Some(key);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "could not read the API key file again; the key read before is kept");
                    }
                }
                last.clone()
            }
        }
    }

    /// The key in `path`, `None` when it holds only whitespace.
    fn read(path: &std::path::Path) -> Result<Option<ApiKey>, std::io::Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("reading the API key file {}: {e}", path.display()),
            )
        })?;
        Ok(Some(ApiKey::new(&text)).filter(|k| !k.is_empty()))
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
            if !self.allows(namespace) {
                return Err(CredentialsError::NotPermitted {
                    namespace: namespace.to_owned(),
                });
            }
            return self.key.current().ok_or(CredentialsError::NoDefaultKey);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A Kubernetes client whose API answers every GET with `secret` (404 when `None`), counting calls.
    fn client(secret: Option<serde_json::Value>, calls: Arc<AtomicUsize>) -> kube::Client {
        let service = tower::service_fn(move |_req: http::Request<kube::client::Body>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let (status, body) = match &secret {
                Some(s) => (200, s.to_string()),
                None => (
                    404,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                       "reason": "NotFound", "code": 404, "message": "not found"})
                    .to_string(),
                ),
            };
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(body.into_bytes()))
                .unwrap();
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        kube::Client::new(service, "default")
    }

    /// A key file is read again when it changes (a rotation without a restart); a file that
    /// disappears for a moment keeps the key read before.
    #[test]
    fn key_files_are_read_again_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apiKey");
        std::fs::write(&path, "first-key\n").unwrap();
        let key = DefaultKey::file(path.clone()).unwrap();
        assert_eq!(key.current().unwrap().expose(), "first-key");
        std::fs::write(&path, "the-second-key\n").unwrap();
        assert_eq!(key.current().unwrap().expose(), "the-second-key");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(key.clone().current().unwrap().expose(), "the-second-key");
        assert!(DefaultKey::file(dir.path().join("missing")).is_err());
    }

    /// A key file emptied for a moment (a non-atomic rewrite), or holding only whitespace, keeps the
    /// key read before (found by an adversarial probe: the key was dropped).
    #[test]
    fn an_emptied_key_file_keeps_the_key_read_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apiKey");
        std::fs::write(&path, "first-key\n").unwrap();
        let key = DefaultKey::file(path.clone()).unwrap();
        for blank in ["", "  \n"] {
            std::fs::write(&path, blank).unwrap();
            assert_eq!(key.current().unwrap().expose(), "first-key", "{blank:?}");
        }
    }

    /// A key rotated to another of the same length within one tick of the file system's clock is
    /// used (found by an adversarial probe: a stamp of time and length missed it).
    #[test]
    fn a_same_length_key_rotated_within_one_tick_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apiKey");
        std::fs::write(&path, "key-aaaa\n").unwrap();
        let key = DefaultKey::file(path.clone()).unwrap();
        assert_eq!(key.current().unwrap().expose(), "key-aaaa");
        let tick = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, "key-bbbb\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(tick)
            .unwrap();
        assert_eq!(key.current().unwrap().expose(), "key-bbbb");
    }

    fn defaults(key: Option<&str>, namespaces: &[&str]) -> DefaultCredentials {
        DefaultCredentials {
            key: key.map(ApiKey::new).into(),
            namespaces: namespaces.iter().map(ToString::to_string).collect(),
        }
    }

    fn reference() -> CredentialsRef {
        CredentialsRef {
            name: "creds".into(),
            key: "apiKey".into(),
        }
    }

    fn secret(data: &serde_json::Value) -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "creds", "namespace": "team-a"}, "data": data})
    }

    /// The default key goes only to listed namespaces (`*`: all; none listed: none); an allowed
    /// namespace without a loaded key gets a reason of its own. No Kubernetes call is made.
    #[tokio::test]
    async fn default_key_is_namespace_scoped() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = client(None, Arc::clone(&calls));
        let listed = defaults(Some("k"), &["team-a"]);
        assert_eq!(
            listed.resolve(&c, "team-a", None).await.unwrap().expose(),
            "k"
        );
        let other = listed.resolve(&c, "team-b", None).await.unwrap_err();
        assert_eq!(other.reason(), "CredentialsNotPermitted");
        assert!(
            defaults(Some("k"), &["*"])
                .resolve(&c, "any", None)
                .await
                .is_ok()
        );
        let none = defaults(Some("k"), &[]).resolve(&c, "team-a", None).await;
        assert_eq!(none.unwrap_err().reason(), "CredentialsNotPermitted");
        let unloaded = defaults(None, &["team-a"])
            .resolve(&c, "team-a", None)
            .await;
        assert_eq!(unloaded.unwrap_err().reason(), "DefaultCredentialsMissing");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    /// A Secret's key is read from `data` (base64); a missing Secret, a missing key and an empty one
    /// are each named without any key material.
    #[tokio::test]
    async fn secret_keys_are_read_and_their_absence_named() {
        let calls = Arc::new(AtomicUsize::new(0));
        let none = defaults(None, &[]);
        // "c2VjcmV0LWtleQ==" is "secret-key".
        let good = client(
            Some(secret(&serde_json::json!({"apiKey": "c2VjcmV0LWtleQ=="}))),
            Arc::clone(&calls),
        );
        let key = none
            .resolve(&good, "team-a", Some(&reference()))
            .await
            .unwrap();
        assert_eq!(key.expose(), "secret-key");
        let missing = client(None, Arc::clone(&calls));
        let err = none
            .resolve(&missing, "team-a", Some(&reference()))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "CredentialsNotFound");
        assert!(!err.is_transient());
        for data in [
            serde_json::json!({"other": "eA=="}),
            serde_json::json!({"apiKey": ""}),
        ] {
            let c = client(Some(secret(&data)), Arc::clone(&calls));
            let err = none
                .resolve(&c, "team-a", Some(&reference()))
                .await
                .unwrap_err();
            assert_eq!(err.reason(), "CredentialsNotFound");
            assert!(err.to_string().contains("no non-empty key apiKey"), "{err}");
        }
    }

    /// A key read from a Secret is reused for [`SECRET_TTL`], then read again.
    #[tokio::test(start_paused = true)]
    async fn secret_keys_are_reused_briefly() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = client(
            Some(secret(&serde_json::json!({"apiKey": "c2VjcmV0LWtleQ=="}))),
            Arc::clone(&calls),
        );
        let keys = SecretKeys::default();
        let none = defaults(None, &[]);
        for _ in 0..3 {
            keys.resolve(&none, &c, "team-a", Some(&reference()))
                .await
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(SECRET_TTL).await;
        keys.resolve(&none, &c, "team-a", Some(&reference()))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
