//! `plan` for IntegrationConnection: the connection planner over the workspace's connection list.
//! Plan reads no Kubernetes Secret, so a change of secret values is not seen: a write always carries
//! the secret, and its values are never shown.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::plan::{self, ConnectionAction, ConnectionInput};
use super::remote_name;
use crate::blaxel::error::ApiError;
use crate::blaxel::model::IntegrationConnection as RemoteConnection;
use crate::crd::{DeletionPolicy, IntegrationConnection};
use crate::plan::diff::changed;
use crate::plan::manifests::Manifest;
use crate::plan::remote::{Remote, find};
use crate::plan::report::Action;
use crate::plan::{Declared, Kind, Outcome, Scene, decode_alone};
use crate::reconcile::cached::Cached;
use crate::reconcile::conditions::{Health, Why};
use crate::reconcile::managed::{Managed, unusable_spec};

/// IntegrationConnection in `plan`.
pub const KIND: Kind = Kind {
    kind: "IntegrationConnection",
    decode: decode_alone::<Cached<IntegrationConnection>>,
};

/// The listed connection named `name`, if any (`Err`: unknown, see [`find`]).
async fn observed(
    remote: &Remote,
    name: &str,
) -> Result<Result<Option<RemoteConnection>, Why>, ApiError> {
    let listing = remote.connections().await?;
    Ok(find(
        listing,
        name,
        |c: &RemoteConnection| &c.metadata.name,
        |a, b| a == b,
    ))
}

/// The declared fields, as JSON.
fn fields(integration: &str, config: &impl serde::Serialize, sandbox: bool) -> Value {
    json!({"integration": integration, "config": config, "sandbox": sandbox})
}

#[async_trait]
impl Declared for Cached<IntegrationConnection> {
    fn workspace(&self) -> &str {
        Managed::workspace(self)
    }

    fn identity(&self) -> String {
        remote_name(self).to_owned()
    }

    async fn plan(
        &self,
        remote: &Remote,
        scene: &Scene<'_>,
        out: &mut Outcome,
    ) -> Result<(), ApiError> {
        if let Some(why) = unusable_spec(self) {
            out.note(&why);
            return Ok(());
        }
        let name = remote_name(self);
        // A deleted object of the same name deletes it first.
        let current = if scene.removed.contains(&(KIND.kind, name.to_owned())) {
            None
        } else {
            let Some(current) = out.known(observed(remote, name).await?) else {
                return Ok(());
            };
            current
        };
        // The secret is taken as sent: plan cannot read it (the keys Blaxel shows are kept as they are).
        let shown: Vec<&str> = current
            .as_ref()
            .and_then(|c| c.spec.secret_keys_shown.as_ref())
            .map(|k| k.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let step = plan::plan(&ConnectionInput {
            spec: &self.spec,
            name,
            observed: current.as_ref(),
            digest: "",
            sent: Some(""),
            keys: shown,
        });
        let secret = format!(
            "secret: the values of Secret {} (not shown, not compared)",
            self.spec.secret_ref.name
        );
        let after = fields(&self.spec.integration, &self.spec.config, self.spec.sandbox);
        match (step.action, current.as_ref()) {
            (Some(ConnectionAction::Create), _) | (Some(ConnectionAction::Update), None) => {
                let mut details = changed(&Value::Null, &after);
                details.push(secret);
                out.change(Action::Create, name, details);
            }
            (Some(ConnectionAction::Update), Some(c)) => {
                let before = fields(
                    &c.spec.integration,
                    &c.spec.config,
                    c.spec.sandbox.unwrap_or(false),
                );
                let mut details = changed(&before, &after);
                details.push(secret);
                out.change(Action::Update, name, details);
            }
            (None, _) => {
                if let Health::Stalled(why) = &step.health {
                    out.note(why);
                }
            }
        }
        Ok(())
    }

    async fn plan_deleted(
        &self,
        remote: &Remote,
        _: &[Manifest],
        out: &mut Outcome,
    ) -> Result<bool, ApiError> {
        if unusable_spec(self).is_some() || self.spec.deletion_policy != DeletionPolicy::Delete {
            return Ok(false);
        }
        let name = remote_name(self);
        if out.known(observed(remote, name).await?).flatten().is_none() {
            return Ok(false);
        }
        out.change(
            Action::Delete,
            name,
            vec!["deletionPolicy Delete".to_owned()],
        );
        Ok(true)
    }
}
