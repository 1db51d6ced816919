//! `plan` for Workspace: the workspace record (create or update) and its membership policy over the
//! declared WorkspaceMembers: Report lists who is unmanaged, Authoritative removes them.

use std::collections::BTreeSet;

use async_trait::async_trait;

use super::plan::{self, MembersInput, View, WorkspaceAction, WorkspaceInput};
use super::{member_namespaces, remote_name};
use crate::blaxel::error::ApiError;
use crate::blaxel::model::WorkspaceUser;
use crate::crd::{DeletionPolicy, MembershipPolicy, Workspace, WorkspaceMember};
use crate::plan::diff::changed;
use crate::plan::manifests::Manifest;
use crate::plan::remote::Remote;
use crate::plan::report::Action;
use crate::plan::{Declared, Kind, Outcome, Scene, decode_alone};
use crate::reconcile::cache::email_key;
use crate::reconcile::cached::Cached;
use crate::reconcile::conditions::{Health, Why};
use crate::reconcile::managed::unusable_spec;

/// Workspace in `plan`.
pub const KIND: Kind = Kind {
    kind: "Workspace",
    decode: decode_alone::<Cached<Workspace>>,
};

/// The e-mails declared for workspace `name`: by WorkspaceMembers of the member namespaces, and of
/// the others (which the operator counts only once their key works there; plan cannot tell, and
/// counts them: it never shows a removal the operator might not make, but may miss one).
fn declared(
    obj: &Cached<Workspace>,
    name: &str,
    all: &[Manifest],
) -> (BTreeSet<String>, BTreeSet<String>) {
    let namespaces = member_namespaces(obj);
    let (mut here, mut elsewhere) = (BTreeSet::new(), BTreeSet::new());
    for m in all.iter().filter(|m| m.kind == "WorkspaceMember") {
        let Ok(member) = serde_json::from_value::<WorkspaceMember>(m.value.clone()) else {
            continue;
        };
        if member.spec.workspace != name {
            continue;
        }
        if namespaces.contains(&m.namespace) {
            here.insert(email_key(&member.spec.email));
        } else {
            elsewhere.insert(email_key(&member.spec.email));
        }
    }
    (here, elsewhere)
}

/// The membership step: Authoritative removals, and a Report's unmanaged list as a note.
async fn membership(
    obj: &Cached<Workspace>,
    remote: &Remote,
    scene: &Scene<'_>,
    out: &mut Outcome,
) -> Result<(), ApiError> {
    let spec = &obj.spec.members;
    if spec.policy == MembershipPolicy::Additive {
        return Ok(());
    }
    let name = remote_name(obj);
    let listing = remote.users().await?;
    // Users a deleted WorkspaceMember removes first are gone by then.
    let present: Vec<&WorkspaceUser> = listing
        .items
        .iter()
        .filter(|u| {
            !scene
                .removed
                .contains(&("WorkspaceMember", email_key(&u.email)))
        })
        .collect();
    let view = if listing.unreadable.is_empty() {
        View::Complete
    } else {
        View::Partial(Why::new(
            "RemoteListIncomplete",
            format!(
                "{} records of the member list could not be read; nothing is concluded from it",
                listing.unreadable.len()
            ),
        ))
    };
    let (here, elsewhere) = declared(obj, name, scene.declared);
    let protected: BTreeSet<String> = spec.protected.iter().map(|e| email_key(e)).collect();
    let members = plan::plan_members(&MembersInput {
        policy: spec.policy,
        present,
        declared: &here,
        declared_elsewhere: &elsewhere,
        protected: &protected,
        max_removals: spec.max_removals,
        view: &view,
    });
    for email in &members.removals {
        out.change(
            Action::Remove,
            email,
            vec!["not declared (members.policy Authoritative)".to_owned()],
        );
    }
    if let Some(Health::Stalled(why) | Health::Progressing(why)) = &members.verdict {
        out.note(why);
    }
    let unmanaged = members.unmanaged.unwrap_or_default();
    if spec.policy == MembershipPolicy::Report && !unmanaged.is_empty() {
        out.note(&Why::new(
            "Unmanaged",
            format!(
                "{} member(s) no WorkspaceMember declares (Report: listed, not removed): {}",
                unmanaged.len(),
                unmanaged.join(", ")
            ),
        ));
    }
    Ok(())
}

#[async_trait]
impl Declared for Cached<Workspace> {
    fn workspace(&self) -> &str {
        remote_name(self)
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
        let observed = if scene.removed.contains(&(KIND.kind, name.to_owned())) {
            None
        } else {
            remote.workspace(name).await?
        };
        let mut availability = None;
        loop {
            let step = plan::plan(&WorkspaceInput {
                spec: &self.spec,
                name,
                observed: observed.as_ref(),
                availability: availability.as_ref(),
            });
            match step.action {
                Some(WorkspaceAction::CheckAvailability) => {
                    availability = Some(remote.availability(name).await?);
                    continue;
                }
                Some(WorkspaceAction::Create(body)) => {
                    let after = serde_json::to_value(&body).unwrap_or_default();
                    out.change(
                        Action::Create,
                        name,
                        changed(&serde_json::Value::Null, &after),
                    );
                    return Ok(());
                }
                Some(WorkspaceAction::Update(body)) => {
                    let before = serde_json::to_value(&observed).unwrap_or_default();
                    let after = serde_json::to_value(&body).unwrap_or_default();
                    out.change(Action::Update, name, changed(&before, &after));
                }
                None => {
                    if let Health::Stalled(why) = &step.health {
                        out.note(why);
                        return Ok(());
                    }
                }
            }
            break;
        }
        membership(self, remote, scene, out).await
    }

    async fn plan_deleted(
        &self,
        remote: &Remote,
        declared: &[Manifest],
        out: &mut Outcome,
    ) -> Result<bool, ApiError> {
        if unusable_spec(self).is_some() || self.spec.deletion_policy != DeletionPolicy::Delete {
            return Ok(false);
        }
        let name = remote_name(self);
        if remote.workspace(name).await?.is_none() {
            return Ok(false);
        }
        // Another Workspace object naming it (the operator never deletes a workspace another object
        // names), or any object acting in it.
        let users: Vec<String> = declared
            .iter()
            .filter(|m| {
                if m.kind == KIND.kind {
                    serde_json::from_value::<Cached<Workspace>>(m.value.clone())
                        .is_ok_and(|w| remote_name(&w) == name)
                } else {
                    m.value.pointer("/spec/workspace").and_then(|w| w.as_str()) == Some(name)
                }
            })
            .map(Manifest::label)
            .collect();
        if !users.is_empty() {
            out.note(&Why::new(
                "InUse",
                format!(
                    "deletionPolicy Delete, but {} still name the workspace: it is deleted once none does",
                    users.join(", ")
                ),
            ));
            return Ok(false);
        }
        out.change(
            Action::Delete,
            name,
            vec!["deletionPolicy Delete: the workspace and everything in it".to_owned()],
        );
        Ok(true)
    }
}
