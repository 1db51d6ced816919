//! Keyed digests of secret values: what an object's status records of the secret it last sent
//! (`status.secretDigest`), so that a changed Secret is pushed and an unchanged one is not, without the
//! values ever leaving the operator.
//!
//! The digest is HMAC-SHA256 under a key of the operator's own, not a plain hash: a plain hash of a
//! short secret in a status anyone can read would let a reader confirm a guessed key. The key lives in
//! the Secret `blaxel-operator-digest-key` of the operator's namespace, created with 32 random bytes on
//! first use, so a restart keeps it and does not push every secret again. Without a namespace to keep it
//! in (a one-process test), the key is random per process.
//!
//! Also a plain short digest of a list of names ([`list_digest`]), for a status to tell that a set it
//! lists only in part changed (nothing secret: the Workspace kind's unmanaged e-mails).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::blaxel::SecretValue;

/// The Secret holding the digest key, in the operator's namespace.
pub const KEY_SECRET: &str = "blaxel-operator-digest-key";
const KEY_FIELD: &str = "key";
const KEY_BYTES: usize = 32;

/// The operator's digest key, loaded (or created) on first use.
pub struct DigestKeys {
    store: Option<Api<Secret>>,
    key: tokio::sync::Mutex<Option<hmac::Key>>,
}

/// Why no digest could be made just now (retried like any transient failure).
#[derive(Debug, thiserror::Error)]
#[error("the digest key (Secret {KEY_SECRET}) could not be read or created: {0}")]
pub struct DigestKeyError(String);

impl DigestKeys {
    /// Keys kept in the Secret [`KEY_SECRET`] of `namespace` (`None`: a random key per process).
    #[must_use]
    pub fn new(client: &kube::Client, namespace: Option<&str>) -> Self {
        Self {
            store: namespace.map(|ns| Api::namespaced(client.clone(), ns)),
            key: tokio::sync::Mutex::new(None),
        }
    }

    /// The digest of `values` (every key and value, in key order), as `hmac-sha256:<hex>`.
    ///
    /// # Errors
    /// When the key could not be read or created.
    pub async fn digest(
        &self,
        values: &BTreeMap<String, SecretValue>,
    ) -> Result<String, DigestKeyError> {
        let mut key = self.key.lock().await;
        if key.is_none() {
            *key = Some(self.load().await?);
        }
        let Some(key) = key.as_ref() else {
            return Err(DigestKeyError("no key".to_owned()));
        };
        Ok(digest_with(key, values))
    }

    async fn load(&self) -> Result<hmac::Key, DigestKeyError> {
        let Some(api) = &self.store else {
            return random_bytes().map(|b| hmac::Key::new(hmac::HMAC_SHA256, &b));
        };
        // Read, else create; a create that lost a race (409) reads the winner's key.
        for _ in 0..2 {
            let found = api
                .get_opt(KEY_SECRET)
                .await
                .map_err(|e| DigestKeyError(e.to_string()))?;
            if let Some(secret) = found {
                let bytes = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(KEY_FIELD))
                    .filter(|b| b.0.len() >= KEY_BYTES)
                    .ok_or_else(|| {
                        DigestKeyError(format!("it holds no `{KEY_FIELD}` of {KEY_BYTES} bytes"))
                    })?;
                return Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes.0));
            }
            let bytes = random_bytes()?;
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(KEY_SECRET.to_owned()),
                    labels: Some(BTreeMap::from([(
                        "app.kubernetes.io/part-of".to_owned(),
                        "blaxel-operator".to_owned(),
                    )])),
                    ..ObjectMeta::default()
                },
                data: Some(BTreeMap::from([(
                    KEY_FIELD.to_owned(),
                    ByteString(bytes.to_vec()),
                )])),
                ..Secret::default()
            };
            match api.create(&PostParams::default(), &secret).await {
                Ok(_) => return Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes)),
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(DigestKeyError(e.to_string())),
            }
        }
        Err(DigestKeyError("it kept changing".to_owned()))
    }
}

fn random_bytes() -> Result<[u8; KEY_BYTES], DigestKeyError> {
    let mut bytes = [0u8; KEY_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DigestKeyError("no randomness".to_owned()))?;
    Ok(bytes)
}

/// The digest of `values` under `key`: each name and value length-prefixed, in name order, so that no
/// two different sets encode alike.
fn digest_with(key: &hmac::Key, values: &BTreeMap<String, SecretValue>) -> String {
    let mut ctx = hmac::Context::with_key(key);
    for (name, value) in values {
        for part in [name.as_bytes(), value.expose().as_bytes()] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
    }
    format!("hmac-sha256:{}", hex(ctx.sign().as_ref()))
}

/// A short digest of a sorted list of names, stable across builds and versions (SHA-256, its first 8
/// bytes in hex): tells whether a set changed without keeping it.
#[must_use]
pub fn list_digest(items: &[String]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for item in items {
        ctx.update(&(item.len() as u64).to_be_bytes());
        ctx.update(item.as_bytes());
    }
    hex(&ctx.finish().as_ref()[..8])
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretValue::new(v)))
            .collect()
    }

    /// Equal sets digest alike; a changed value, a moved boundary or another key differ; the value
    /// never shows.
    #[test]
    fn digests_are_keyed_and_unambiguous() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[7; KEY_BYTES]);
        let other = hmac::Key::new(hmac::HMAC_SHA256, &[8; KEY_BYTES]);
        let a = values(&[("apiKey", "sk-1"), ("org", "acme")]);
        let d = digest_with(&key, &a);
        assert!(d.starts_with("hmac-sha256:") && d.len() == 12 + 64, "{d}");
        assert_eq!(d, digest_with(&key, &a));
        assert_ne!(
            d,
            digest_with(&key, &values(&[("apiKey", "sk-2"), ("org", "acme")]))
        );
        assert_ne!(
            digest_with(&key, &values(&[("ab", "c")])),
            digest_with(&key, &values(&[("a", "bc")]))
        );
        assert_ne!(d, digest_with(&other, &a), "the key matters");
        assert!(!d.contains("sk-1"));
    }
}
