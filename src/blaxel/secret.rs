//! Credentials that must never be printed: the API key wrapper, and [`SecretValue`] for the secret values
//! the operator sends on a user's behalf (an integration connection's keys).
//!
//! `Debug` and `Display` both redact; the only way to the key's text is [`ApiKey::expose`], which the HTTP
//! layer calls when it writes the `Authorization` header; a secret value's text leaves only in the body
//! of the request that carries it (its `Serialize`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A Blaxel API key. Cheap to clone; never shows its value in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// Wraps a key, trimming surrounding whitespace (keys read from files usually end in a newline).
    #[must_use]
    pub fn new(key: &str) -> Self {
        Self(Arc::from(key.trim()))
    }

    /// The key's text, for the `Authorization` header only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the key is empty (after trimming).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stable, non-reversible identifier of the key for in-process maps and logs (`key-1a2b3c4d`).
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.0.hash(&mut hasher);
        format!("key-{:08x}", hasher.finish() & 0xffff_ffff)
    }
}

impl Hash for ApiKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A secret value sent to Blaxel (a key of an integration connection's secret). Cheap to clone; never
/// shows its value in `Debug` or `Display`. It serializes as the plain string: it exists to be sent, in
/// a request body, which the client never logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Arc<str>);

impl SecretValue {
    /// Wraps a value, as it is (no trimming: a secret's bytes are the user's).
    #[must_use]
    pub fn new(value: &str) -> Self {
        Self(Arc::from(value))
    }

    /// The value's text, to digest it or to scrub it from a message.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl serde::Serialize for SecretValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key's text never reaches Debug or Display output.
    #[test]
    fn debug_and_display_redact() {
        let key = ApiKey::new("bl_super_secret_value\n");
        assert_eq!(key.expose(), "bl_super_secret_value");
        for shown in [format!("{key:?}"), format!("{key}"), key.fingerprint()] {
            assert!(!shown.contains("super_secret"), "{shown}");
        }
    }

    /// A secret value is redacted in Debug and Display, and sent as is.
    #[test]
    fn secret_values_redact_but_serialize() {
        let value = SecretValue::new("sk-live-123 ");
        for shown in [format!("{value:?}"), format!("{value}")] {
            assert!(!shown.contains("sk-live"), "{shown}");
        }
        assert_eq!(
            serde_json::to_string(&value).unwrap_or_default(),
            "\"sk-live-123 \""
        );
    }
}
