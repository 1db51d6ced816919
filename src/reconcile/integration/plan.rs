//! Pure planning for an IntegrationConnection: whether to create it, or replace it (a `PUT` replaces
//! the whole connection, so it always carries the secret), from what was observed and the digest of the
//! secret as it is now against the one last sent.

use std::collections::BTreeMap;

use crate::blaxel::SecretValue;
use crate::blaxel::model::{ConnectionSpec, IntegrationConnection as RemoteConnection};
use crate::crd::IntegrationConnectionSpec;
use crate::reconcile::conditions::{Health, Why};

/// Condition reason: the remote connection of that name is of another integration.
pub const INTEGRATION_MISMATCH: &str = "IntegrationMismatch";

/// What a pass knows.
pub struct ConnectionInput<'a> {
    /// The spec.
    pub spec: &'a IntegrationConnectionSpec,
    /// The remote name.
    pub name: &'a str,
    /// The connection as listed, `None` when absent.
    pub observed: Option<&'a RemoteConnection>,
    /// The digest of the Secret's values now.
    pub digest: &'a str,
    /// The digest of the values last sent (from status), if any.
    pub sent: Option<&'a str>,
    /// The names of the Secret's keys now (sorted).
    pub keys: Vec<&'a str>,
}

/// The next remote write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionAction {
    /// `POST`, with the secret.
    Create,
    /// `PUT` of the connection as read with the declared fields set, with the secret.
    Update,
}

/// What the connection needs, and how it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionPlan {
    /// The write, if any.
    pub action: Option<ConnectionAction>,
    /// How it stands.
    pub health: Health,
    /// Why an update is needed (for the Event): `config`, `sandbox`, `secret`.
    pub changed: Vec<&'static str>,
}

/// Plans one pass.
#[must_use]
pub fn plan(input: &ConnectionInput<'_>) -> ConnectionPlan {
    let Some(observed) = input.observed else {
        return ConnectionPlan {
            action: Some(ConnectionAction::Create),
            health: Health::Progressing(Why::new(
                "Creating",
                format!("Creating connection {}", input.name),
            )),
            changed: Vec::new(),
        };
    };
    if !observed.spec.integration.is_empty() && observed.spec.integration != input.spec.integration
    {
        return ConnectionPlan {
            action: None,
            health: Health::Stalled(Why::new(
                INTEGRATION_MISMATCH,
                format!(
                    "Connection {} exists for integration {}, not {}; nothing is changed. Choose \
                     another connectionName, or delete the remote connection",
                    input.name, observed.spec.integration, input.spec.integration
                ),
            )),
            changed: Vec::new(),
        };
    }
    let mut changed = Vec::new();
    if observed.spec.config != input.spec.config {
        changed.push("config");
    }
    if observed.spec.sandbox.unwrap_or(false) != input.spec.sandbox {
        changed.push("sandbox");
    }
    // The keys Blaxel shows, where it shows them, must be the Secret's: a connection replaced by hand
    // without its secret (a `PUT` replaces it all) is told from them, though the digest still matches.
    let shown_differ = observed
        .spec
        .secret_keys_shown
        .as_ref()
        .is_some_and(|shown| !shown.iter().eq(input.keys.iter()));
    if input.sent != Some(input.digest) || shown_differ {
        changed.push("secret");
    }
    if changed.is_empty() {
        return ConnectionPlan {
            action: None,
            health: Health::Ready(Why::new(
                "Ready",
                format!("Connection {} matches the spec", input.name),
            )),
            changed,
        };
    }
    ConnectionPlan {
        action: Some(ConnectionAction::Update),
        health: Health::Progressing(Why::new(
            "Updating",
            format!(
                "Updating connection {} ({})",
                input.name,
                changed.join(", ")
            ),
        )),
        changed,
    }
}

/// The body of a write: the connection as read (unknown fields kept; none when creating), with the
/// declared fields and the secret set.
#[must_use]
pub fn body(
    spec: &IntegrationConnectionSpec,
    name: &str,
    observed: Option<&RemoteConnection>,
    secret: &BTreeMap<String, SecretValue>,
) -> RemoteConnection {
    let mut body = observed.cloned().unwrap_or_default();
    name.clone_into(&mut body.metadata.name);
    body.spec = ConnectionSpec {
        integration: spec.integration.clone(),
        config: spec.config.clone(),
        sandbox: Some(spec.sandbox),
        secret: Some(secret.clone()),
        secret_keys_shown: None,
        extra: body.spec.extra,
    };
    body
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::collections::BTreeSet;

    use crate::crd::{DeletionPolicy, SecretRef};

    fn spec() -> IntegrationConnectionSpec {
        IntegrationConnectionSpec {
            workspace: "acme".into(),
            connection_name: None,
            integration: "openai".into(),
            config: [("org".to_owned(), "acme".to_owned())].into(),
            secret_ref: SecretRef {
                name: "openai".into(),
            },
            sandbox: false,
            deletion_policy: DeletionPolicy::Delete,
            credentials_ref: None,
        }
    }

    fn remote(config: &[(&str, &str)]) -> RemoteConnection {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "openai", "displayName": "OpenAI"},
            "spec": {"integration": "openai", "config": config.iter().copied().collect::<BTreeMap<_, _>>(), "sandbox": false}
        }))
        .unwrap()
    }

    fn input<'a>(
        spec: &'a IntegrationConnectionSpec,
        observed: Option<&'a RemoteConnection>,
        sent: Option<&'a str>,
    ) -> ConnectionInput<'a> {
        ConnectionInput {
            spec,
            name: "openai",
            observed,
            digest: "d1",
            sent,
            keys: vec!["apiKey"],
        }
    }

    /// Absent: created. Settled (same config, same digest): nothing.
    #[test]
    fn create_then_settle() {
        let spec = spec();
        assert_eq!(
            plan(&input(&spec, None, None)).action,
            Some(ConnectionAction::Create)
        );
        let same = remote(&[("org", "acme")]);
        let settled = plan(&input(&spec, Some(&same), Some("d1")));
        assert_eq!(settled.action, None);
        assert!(matches!(settled.health, Health::Ready(_)));
    }

    /// Config drift (an extra remote key included), a sandbox flip, a changed or never-sent secret:
    /// one update each, naming what changed.
    #[test]
    fn drift_and_secret_changes_update() {
        let spec = spec();
        let drifted = remote(&[("org", "acme"), ("extra", "x")]);
        assert_eq!(
            plan(&input(&spec, Some(&drifted), Some("d1"))).changed,
            ["config"]
        );
        let same = remote(&[("org", "acme")]);
        assert_eq!(
            plan(&input(&spec, Some(&same), Some("d0"))).changed,
            ["secret"]
        );
        assert_eq!(
            plan(&input(&spec, Some(&same), None)).changed,
            ["secret"],
            "adopted: our secret was never sent"
        );
        let mut sandboxed = spec.clone();
        sandboxed.sandbox = true;
        let p = plan(&input(&sandboxed, Some(&same), Some("d1")));
        assert_eq!(
            (p.action, p.changed),
            (Some(ConnectionAction::Update), vec!["sandbox"])
        );
    }

    /// Key names Blaxel shows that are not the Secret's (a connection replaced by hand without its
    /// secret) are a secret change though the digest matches; the same names, or none shown, are not.
    #[test]
    fn shown_secret_keys_that_differ_update() {
        let spec = spec();
        let mut wiped = remote(&[("org", "acme")]);
        wiped.spec.secret_keys_shown = Some(BTreeSet::new());
        assert_eq!(
            plan(&input(&spec, Some(&wiped), Some("d1"))).changed,
            ["secret"]
        );
        let mut same = remote(&[("org", "acme")]);
        same.spec.secret_keys_shown = Some(["apiKey".to_owned()].into());
        assert_eq!(plan(&input(&spec, Some(&same), Some("d1"))).action, None);
        let read: RemoteConnection = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "openai"},
            "spec": {"integration": "openai", "config": {"org": "acme"}, "sandbox": false,
                     "secret": {"apiKey": "********", "orgKey": "********"}}
        }))
        .unwrap();
        let read = read.without_remote_secret();
        assert!(
            !serde_json::to_string(&read).unwrap().contains("****"),
            "values dropped"
        );
        assert_eq!(
            plan(&input(&spec, Some(&read), Some("d1"))).changed,
            ["secret"]
        );
    }

    /// A remote connection of another integration is never overwritten.
    #[test]
    fn another_integration_is_left_alone() {
        let spec = spec();
        let mut other = remote(&[]);
        other.spec.integration = "anthropic".into();
        let p = plan(&input(&spec, Some(&other), None));
        assert_eq!(p.action, None);
        assert!(matches!(&p.health, Health::Stalled(w) if w.reason == INTEGRATION_MISMATCH));
    }

    /// The body keeps what the remote has beyond the spec, and carries the secret.
    #[test]
    fn bodies_keep_unknown_fields_and_carry_the_secret() {
        let spec = spec();
        let observed = remote(&[("stale", "1")]);
        let secret = [("apiKey".to_owned(), SecretValue::new("sk-1"))].into();
        let b = body(&spec, "openai", Some(&observed), &secret);
        let sent = serde_json::to_value(&b).unwrap();
        assert_eq!(sent["metadata"]["displayName"], "OpenAI");
        assert_eq!(sent["spec"]["config"], serde_json::json!({"org": "acme"}));
        assert_eq!(
            sent["spec"]["secret"],
            serde_json::json!({"apiKey": "sk-1"})
        );
    }
}
