//! `plan` for Sandbox: the sandbox planner run over the workspace's sandbox list, writing nothing.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use super::plan::{self, CleanupStep, Owner, SandboxAction, SandboxInput};
use super::{owner_label, remote_name};
use crate::blaxel::SecretValue;
use crate::blaxel::error::ApiError;
use crate::blaxel::model::Sandbox as RemoteSandbox;
use crate::crd::{PowerState, Sandbox};
use crate::plan::diff::changed;
use crate::plan::manifests::Manifest;
use crate::plan::remote::{Remote, find};
use crate::plan::report::Action;
use crate::plan::{Declared, Kind, Outcome, Scene, decode_alone};
use crate::reconcile::cached::Cached;
use crate::reconcile::conditions::{Health, Why};
use crate::reconcile::managed::{Managed, unusable_spec};

/// Sandbox in `plan`.
pub const KIND: Kind = Kind {
    kind: "Sandbox",
    decode: decode_alone::<Cached<Sandbox>>,
};

/// The listed sandbox named `name`, if any (`Err`: unknown, see [`find`]).
async fn observed(
    remote: &Remote,
    name: &str,
) -> Result<Result<Option<RemoteSandbox>, Why>, ApiError> {
    let sandboxes = remote.sandboxes().await?;
    Ok(find(
        sandboxes,
        name,
        |s: &RemoteSandbox| &s.metadata.name,
        |a, b| a == b,
    ))
}

/// What a write sends, as JSON: the labels and the spec.
fn written(s: &RemoteSandbox) -> Value {
    serde_json::json!({
        "labels": s.metadata.labels,
        "spec": serde_json::to_value(&s.spec).unwrap_or_default(),
    })
}

#[async_trait]
impl Declared for Cached<Sandbox> {
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
        let removed = scene
            .removed
            .contains(&(KIND.kind, Declared::identity(self)));
        let current = if removed {
            None
        } else {
            match out.known(observed(remote, name).await?) {
                Some(current) => current,
                None => return Ok(()),
            }
        };
        let label = owner_label(self);
        let step = plan::plan(SandboxInput {
            spec: &self.spec,
            name,
            owner: Owner {
                object: &label,
                instance: remote.settings().instance.as_deref(),
            },
            observed: current.as_ref(),
            power_control: None,
            reported_phase: None,
            // plan reads no Secret: Secret-sourced values are taken as sent.
            secret_envs: &BTreeMap::new(),
            secrets_sent: true,
        });
        match step.action {
            Some(SandboxAction::Create(body)) => {
                out.change(Action::Create, name, changed(&Value::Null, &written(&body)));
                // Created running; the next pass stops it.
                if self.spec.state == PowerState::Stopped {
                    out.change(Action::Stop, name, vec![]);
                }
            }
            Some(SandboxAction::Update(body)) => {
                let before = current.as_ref().map(written).unwrap_or_default();
                let action = if step.adopts {
                    Action::Adopt
                } else {
                    Action::Update
                };
                out.change(action, name, changed(&before, &written(&body)));
            }
            Some(SandboxAction::Start) => out.change(Action::Start, name, vec![]),
            Some(SandboxAction::Stop) => out.change(Action::Stop, name, vec![]),
            None => {
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
        if unusable_spec(self).is_some() {
            return Ok(false);
        }
        let name = remote_name(self);
        let Some(current) = out.known(observed(remote, name).await?) else {
            return Ok(false);
        };
        let label = owner_label(self);
        let owner = Owner {
            object: &label,
            instance: remote.settings().instance.as_deref(),
        };
        // plan reads no Secret: the variables a Secret gives count as known, as the operator reads them.
        let from_secrets: BTreeMap<String, SecretValue> = self
            .spec
            .envs
            .iter()
            .flatten()
            .filter(|e| e.value_from.is_some())
            .map(|e| (e.name.clone(), SecretValue::new("")))
            .collect();
        match plan::plan_cleanup(
            self.spec.deletion_policy,
            current.as_ref(),
            owner,
            &from_secrets,
        ) {
            CleanupStep::Delete => {
                out.change(
                    Action::Delete,
                    name,
                    vec!["deletionPolicy Delete".to_owned()],
                );
                Ok(true)
            }
            CleanupStep::Release(_) => {
                out.change(
                    Action::Release,
                    name,
                    vec!["deletionPolicy Orphan: the operator's labels taken off".to_owned()],
                );
                Ok(false)
            }
            CleanupStep::Wait | CleanupStep::Done | CleanupStep::LeaveOwned(_) => Ok(false),
        }
    }
}
