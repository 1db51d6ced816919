//! `plan` for WorkspaceMember: the member planner run over the workspace's user list, as the
//! reconciler runs it (invite, then set the role), writing nothing.

use async_trait::async_trait;

use super::plan::{self, MemberAction, MemberInput};
use crate::blaxel::error::ApiError;
use crate::blaxel::model::WorkspaceUser;
use crate::crd::{Role, WorkspaceMember};
use crate::plan::manifests::Manifest;
use crate::plan::remote::{Remote, find};
use crate::plan::report::Action;
use crate::plan::{Declared, Kind, Outcome, Scene, decode_alone};
use crate::reconcile::cache::same_email;
use crate::reconcile::cached::Cached;
use crate::reconcile::conditions::{Health, Why};
use crate::reconcile::managed::{Managed, unusable_spec};

/// WorkspaceMember in `plan`.
pub const KIND: Kind = Kind {
    kind: "WorkspaceMember",
    decode: decode_alone::<Cached<WorkspaceMember>>,
};

/// The remote user with `email`, if listed (`Err`: unknown, see [`find`]).
async fn observed(
    remote: &Remote,
    email: &str,
) -> Result<Result<Option<WorkspaceUser>, Why>, ApiError> {
    let users = remote.users().await?;
    Ok(find(users, email, |u: &WorkspaceUser| &u.email, same_email))
}

#[async_trait]
impl Declared for Cached<WorkspaceMember> {
    fn workspace(&self) -> &str {
        Managed::workspace(self)
    }

    fn identity(&self) -> String {
        Managed::identity(self)
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
        let email = self.spec.email.as_str();
        let removed = scene
            .removed
            .contains(&(KIND.kind, Managed::identity(self)));
        let mut user = if removed {
            None
        } else {
            match out.known(observed(remote, email).await?) {
                Some(user) => user,
                None => return Ok(()),
            }
        };
        for _ in 0..super::MAX_STEPS {
            let step = plan::plan(MemberInput {
                role: self.spec.role,
                observed: user.as_ref(),
                reinvites: 0,
                was_pending: false,
                max_reinvites: remote.settings().max_reinvites,
            });
            match step.action {
                Some(MemberAction::Invite) => {
                    out.change(Action::Invite, email, vec![]);
                    // An invitation is sent as a member: another role is set next.
                    user = Some(WorkspaceUser {
                        email: email.to_owned(),
                        role: Some(Role::Member.as_str().to_owned()),
                        accepted: Some(false),
                        ..WorkspaceUser::default()
                    });
                }
                Some(MemberAction::SetRole(role)) => {
                    let before = user.as_ref().and_then(|u| u.role.clone());
                    out.change(
                        Action::SetRole,
                        email,
                        vec![format!(
                            "role: {} -> {}",
                            before.as_deref().unwrap_or("none"),
                            role.as_str()
                        )],
                    );
                    if let Some(u) = user.as_mut() {
                        u.role = Some(role.as_str().to_owned());
                    }
                }
                Some(MemberAction::Remove) | None => {
                    if let Health::Stalled(why) = &step.health {
                        out.note(why);
                    }
                    break;
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
        let Some(MemberAction::Remove) = plan::plan_cleanup(self.spec.deletion_policy) else {
            return Ok(false);
        };
        let email = self.spec.email.as_str();
        let Some(user) = out.known(observed(remote, email).await?).flatten() else {
            return Ok(false);
        };
        let action = if user.is_pending() {
            Action::Revoke
        } else {
            Action::Remove
        };
        let role = user.role.as_deref().unwrap_or("none");
        out.change(
            action,
            email,
            vec![format!("role: {role} (deletionPolicy Delete)")],
        );
        Ok(true)
    }
}
