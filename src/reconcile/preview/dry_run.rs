//! `plan` for SandboxPreview: the preview planner against the preview as read, through the Sandbox
//! object the manifests declare beside it (its workspace and remote sandbox).

use async_trait::async_trait;
use serde_json::Value;

use super::plan::{self, PreviewAction};
use super::preview_name;
use super::secret::secret_name;
use crate::blaxel::error::ApiError;
use crate::crd::{DeletionPolicy, Sandbox, SandboxPreview};
use crate::plan::diff::changed;
use crate::plan::manifests::Manifest;
use crate::plan::remote::Remote;
use crate::plan::report::Action;
use crate::plan::{Declared, Kind, Outcome, Scene, undecodable};
use crate::reconcile::cached::Cached;
use crate::reconcile::sandbox::remote_name;

/// SandboxPreview in `plan`.
pub const KIND: Kind = Kind {
    kind: "SandboxPreview",
    decode,
};

/// A preview and where its Sandbox object puts it.
struct Planned {
    obj: Cached<SandboxPreview>,
    workspace: String,
    sandbox: String,
}

fn decode(m: &Manifest, all: &[Manifest]) -> Result<Box<dyn Declared>, String> {
    let obj: Cached<SandboxPreview> =
        serde_json::from_value(m.value.clone()).map_err(|_| undecodable(m))?;
    let wanted = &obj.spec.sandbox_ref.name;
    let sandbox = all
        .iter()
        .find(|s| s.kind == "Sandbox" && s.namespace == m.namespace && &s.name == wanted)
        .and_then(|s| serde_json::from_value::<Cached<Sandbox>>(s.value.clone()).ok())
        .ok_or_else(|| {
            format!(
                "spec.sandboxRef names Sandbox {wanted}, which the manifests do not declare in \
                 namespace {}: plan takes the manifests for the whole declared set",
                m.namespace
            )
        })?;
    Ok(Box::new(Planned {
        workspace: sandbox.spec.workspace.clone(),
        sandbox: remote_name(&sandbox).to_owned(),
        obj,
    }))
}

#[async_trait]
impl Declared for Planned {
    fn workspace(&self) -> &str {
        &self.workspace
    }

    fn identity(&self) -> String {
        format!("{}/{}", self.sandbox, preview_name(&self.obj))
    }

    async fn plan(
        &self,
        remote: &Remote,
        scene: &Scene<'_>,
        out: &mut Outcome,
    ) -> Result<(), ApiError> {
        let name = preview_name(&self.obj);
        // A sandbox deleted first takes its previews with it; a deleted object of the same preview
        // deletes it first.
        let gone = scene.removed.contains(&("Sandbox", self.sandbox.clone()))
            || scene.removed.contains(&(KIND.kind, self.identity()));
        let current = if gone {
            None
        } else {
            remote.preview(&self.sandbox, name).await?
        };
        let target = self.identity();
        match plan::plan(&self.obj.spec, name, current.as_ref()) {
            Some(PreviewAction::Create(body)) => {
                let after = serde_json::to_value(&body.spec).unwrap_or_default();
                let mut details = changed(&Value::Null, &after);
                if !self.obj.spec.public {
                    details.push(format!(
                        "a token, kept in Secret {}",
                        secret_name(&self.obj)
                    ));
                }
                out.change(Action::Create, &target, details);
            }
            Some(PreviewAction::Update(body)) => {
                let before = current
                    .as_ref()
                    .map(|p| serde_json::to_value(&p.spec).unwrap_or_default())
                    .unwrap_or_default();
                let after = serde_json::to_value(&body.spec).unwrap_or_default();
                out.change(Action::Update, &target, changed(&before, &after));
            }
            None => {}
        }
        Ok(())
    }

    async fn plan_deleted(
        &self,
        remote: &Remote,
        _: &[Manifest],
        out: &mut Outcome,
    ) -> Result<bool, ApiError> {
        let name = preview_name(&self.obj);
        if remote.preview(&self.sandbox, name).await?.is_none() {
            return Ok(false);
        }
        let target = self.identity();
        if self.obj.spec.deletion_policy == DeletionPolicy::Delete {
            out.change(
                Action::Delete,
                &target,
                vec!["deletionPolicy Delete".to_owned()],
            );
            return Ok(true);
        }
        if !self.obj.spec.public {
            out.change(
                Action::Release,
                &target,
                vec![
                    "deletionPolicy Orphan: the operator's tokens deleted, the preview kept"
                        .to_owned(),
                ],
            );
        }
        Ok(false)
    }
}
