//! Fields and rules shared by the kinds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happens to the remote object when the Kubernetes object is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Remove the remote object (member, invitation or sandbox).
    #[default]
    Delete,
    /// Leave the remote object as it is.
    Orphan,
}

/// A key of a Secret in the object's own namespace holding a Blaxel API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRef {
    /// Name of the Secret, in the same namespace as this object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret's data holding the API key.
    #[serde(default = "default_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_key() -> String {
    "apiKey".to_owned()
}

/// True for an e-mail in the one form the operator acts on, the form the CRD's rule admits: lower-case
/// printable ASCII, no whitespace, one `@` with a dot after it.
#[must_use]
pub fn is_canonical_email(email: &str) -> bool {
    let allowed = |c: char| c.is_ascii_graphic() && !c.is_ascii_uppercase();
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.chars().all(allowed)
        && !local.is_empty()
        && !domain.contains('@')
        && domain
            .char_indices()
            .any(|(i, c)| c == '.' && i > 0 && i + 1 < domain.len())
}

/// The CEL rule every workspace name in a spec is held to: the one form Blaxel names workspaces in
/// (lower-case letters, digits and hyphens), so that two objects naming the same workspace spell it the
/// same, and a name is compared as it is, never folded.
pub(crate) const WORKSPACE_NAME_RULE: &str = "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')";
/// The message of [`WORKSPACE_NAME_RULE`].
pub(crate) const WORKSPACE_NAME_MESSAGE: &str = "must be a workspace name: lower-case letters, digits and hyphens, starting and ending with a letter or digit";

/// True for a workspace name in the form [`WORKSPACE_NAME_RULE`] admits (at most 63 characters). An
/// object stored before the rule may hold another form; it is refused before any remote call.
#[must_use]
pub fn is_canonical_workspace(name: &str) -> bool {
    let inner = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 63
        && name.chars().all(inner)
        && edge(name.chars().next())
        && edge(name.chars().last())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical e-mail form is the one the CRD admits: lower-case printable ASCII, no whitespace.
    #[test]
    fn canonical_emails() {
        for ok in [
            "alice@example.com",
            "a.b+c@x.y",
            "o'neil@ex-ample.co.uk",
            "a@b..c",
        ] {
            assert!(is_canonical_email(ok), "{ok}");
        }
        for bad in [
            "Alice@example.com",
            "alice@example.com\u{a0}",
            " alice@example.com",
            "alice@example.com\t",
            "al ice@example.com",
            "élodie@example.com",
            "alice@example",
            "alice@example.",
            "alice@.com",
            "@example.com",
            "alice@@example.com",
            "a@b@example.com",
        ] {
            assert!(!is_canonical_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn canonical_workspace_names() {
        for ok in ["a", "acme", "acme-prod", "0a9", &"a".repeat(63)] {
            assert!(is_canonical_workspace(ok), "{ok}");
        }
        for bad in [
            "",
            "Acme",
            "acme ",
            " acme",
            "-acme",
            "acme-",
            "acme.prod",
            "acme_prod",
            "acmé",
            &"a".repeat(64),
        ] {
            assert!(!is_canonical_workspace(bad), "{bad:?}");
        }
    }
}
