//! The pure member planner: from the desired spec and the observed remote user to the next remote action
//! and the verdict. No IO; the driver calls it again after each action with what the action returned.

use crate::blaxel::model::WorkspaceUser;
use crate::crd::{DeletionPolicy, MemberPhase, Role};
use crate::reconcile::conditions::{Health, Why};

/// One remote write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    /// `POST /users {email}`: first invitation, or a re-sent expired one.
    Invite,
    /// `PUT /users/{email} {role}`.
    SetRole(Role),
    /// `DELETE /users/{email}`: removes the member or revokes the invitation.
    Remove,
}

/// What the planner knows.
#[derive(Debug, Clone, Copy)]
pub struct MemberInput<'a> {
    /// The desired role.
    pub role: Role,
    /// The remote user or invitation with this e-mail, if any.
    pub observed: Option<&'a WorkspaceUser>,
    /// Expired invitations re-sent so far.
    pub reinvites: u32,
    /// How many times an expired invitation may be re-sent.
    pub max_reinvites: u32,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPlan {
    /// The next remote write, if any.
    pub action: Option<MemberAction>,
    /// True when `action` re-sends an expired invitation (the driver counts it in status).
    pub reinvite: bool,
    /// The phase to report.
    pub phase: MemberPhase,
    /// The verdict to report.
    pub health: Health,
}

/// Plans the next step for a member that should exist.
#[must_use]
pub fn plan(input: MemberInput<'_>) -> MemberPlan {
    let Some(user) = input.observed else {
        return MemberPlan {
            action: Some(MemberAction::Invite),
            reinvite: false,
            phase: MemberPhase::Pending,
            health: Health::Progressing(Why::new("Inviting", "Sending the invitation")),
        };
    };
    if user.is_pending() && user.expired {
        if input.reinvites < input.max_reinvites {
            return MemberPlan {
                action: Some(MemberAction::Invite),
                reinvite: true,
                phase: MemberPhase::Invited,
                health: Health::Progressing(Why::new(
                    "InvitationPending",
                    format!("The invitation expired; re-sending it ({} of {})", input.reinvites + 1, input.max_reinvites),
                )),
            };
        }
        return MemberPlan {
            action: None,
            reinvite: false,
            phase: MemberPhase::Expired,
            health: Health::Stalled(Why::new(
                "InvitationExpired",
                format!(
                    "The invitation expired and was re-sent {} times; edit the object to try again",
                    input.reinvites
                ),
            )),
        };
    }
    if !role_matches(user, input.role) {
        return MemberPlan {
            action: Some(MemberAction::SetRole(input.role)),
            reinvite: false,
            phase: if user.is_pending() { MemberPhase::Invited } else { MemberPhase::Active },
            health: Health::Progressing(Why::new("SettingRole", format!("Setting the role to {}", input.role.as_str()))),
        };
    }
    if user.is_pending() {
        return MemberPlan {
            action: None,
            reinvite: false,
            phase: MemberPhase::Invited,
            health: Health::Progressing(Why::new("InvitationPending", "Waiting for the invitation to be accepted")),
        };
    }
    MemberPlan {
        action: None,
        reinvite: false,
        phase: MemberPhase::Active,
        health: Health::Ready(Why::new("Active", format!("Member with role {}", input.role.as_str()))),
    }
}

/// Plans cleanup when the object is deleted: `Some(Remove)` while a remote member or invitation is left
/// to remove under the `Delete` policy.
#[must_use]
pub fn plan_cleanup(policy: DeletionPolicy, observed: Option<&WorkspaceUser>) -> Option<MemberAction> {
    match (policy, observed) {
        (DeletionPolicy::Delete, Some(_)) => Some(MemberAction::Remove),
        _ => None,
    }
}

fn role_matches(user: &WorkspaceUser, role: Role) -> bool {
    user.role.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(role.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: &str, accepted: Option<bool>, expired: bool) -> WorkspaceUser {
        WorkspaceUser {
            email: "alice@example.com".into(),
            role: Some(role.into()),
            accepted,
            expired,
            ..WorkspaceUser::default()
        }
    }

    fn input(observed: Option<&WorkspaceUser>, role: Role, reinvites: u32) -> MemberInput<'_> {
        MemberInput { role, observed, reinvites, max_reinvites: 3 }
    }

    /// No remote user: invite.
    #[test]
    fn absent_is_invited() {
        let plan = plan(input(None, Role::Admin, 0));
        assert_eq!(plan.action, Some(MemberAction::Invite));
        assert_eq!(plan.phase, MemberPhase::Pending);
        assert!(!plan.reinvite);
    }

    /// A fresh invitation with the wrong role gets its role set while still pending.
    #[test]
    fn pending_with_wrong_role_sets_role() {
        let u = user("member", Some(false), false);
        let plan = plan(input(Some(&u), Role::Admin, 0));
        assert_eq!(plan.action, Some(MemberAction::SetRole(Role::Admin)));
        assert_eq!(plan.phase, MemberPhase::Invited);
    }

    /// A pending invitation with the right role waits: Invited, Reconciling, reason InvitationPending.
    #[test]
    fn pending_with_right_role_waits() {
        let u = user("admin", Some(false), false);
        let plan = plan(input(Some(&u), Role::Admin, 0));
        assert_eq!(plan.action, None);
        assert_eq!(plan.phase, MemberPhase::Invited);
        assert!(matches!(plan.health, Health::Progressing(ref w) if w.reason == "InvitationPending"));
    }

    /// Accepted with the right role: Active and Ready; role compared case-insensitively.
    #[test]
    fn accepted_with_right_role_is_ready() {
        for accepted in [Some(true), None] {
            let u = user("Admin", accepted, false);
            let plan = plan(input(Some(&u), Role::Admin, 0));
            assert_eq!(plan.action, None);
            assert_eq!(plan.phase, MemberPhase::Active);
            assert!(matches!(plan.health, Health::Ready(_)));
        }
    }

    /// Drift: an accepted member re-roled out of band, or with an unknown role, is put back.
    #[test]
    fn drifted_role_is_repaired() {
        for remote in ["admin", "owner"] {
            let u = user(remote, Some(true), false);
            let plan = plan(input(Some(&u), Role::Member, 0));
            assert_eq!(plan.action, Some(MemberAction::SetRole(Role::Member)));
            assert_eq!(plan.phase, MemberPhase::Active);
        }
    }

    /// An expired invitation is re-sent while under the cap, counted as a re-invite.
    #[test]
    fn expired_is_reinvited_under_cap() {
        let u = user("member", Some(false), true);
        let plan = plan(input(Some(&u), Role::Member, 2));
        assert_eq!(plan.action, Some(MemberAction::Invite));
        assert!(plan.reinvite);
    }

    /// At the cap an expired invitation is left alone: Expired and Stalled.
    #[test]
    fn expired_at_cap_stalls() {
        let u = user("member", Some(false), true);
        let plan = plan(input(Some(&u), Role::Member, 3));
        assert_eq!(plan.action, None);
        assert_eq!(plan.phase, MemberPhase::Expired);
        assert!(matches!(plan.health, Health::Stalled(ref w) if w.reason == "InvitationExpired"));
    }

    /// `expired` on an accepted member means nothing: it stays Active.
    #[test]
    fn expired_flag_on_member_is_ignored() {
        let u = user("member", Some(true), true);
        assert_eq!(plan(input(Some(&u), Role::Member, 0)).phase, MemberPhase::Active);
    }

    /// Delete removes what exists; Orphan and "already gone" remove nothing.
    #[test]
    fn cleanup_follows_policy() {
        let u = user("member", Some(false), false);
        assert_eq!(plan_cleanup(DeletionPolicy::Delete, Some(&u)), Some(MemberAction::Remove));
        assert_eq!(plan_cleanup(DeletionPolicy::Delete, None), None);
        assert_eq!(plan_cleanup(DeletionPolicy::Orphan, Some(&u)), None);
    }
}
