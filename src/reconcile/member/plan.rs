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
    /// Invitations re-sent so far (after expiry, or after one disappeared unaccepted).
    pub reinvites: u32,
    /// True when this object last saw its invitation pending (or already gave up on one that kept
    /// disappearing): an invitation absent now went away unaccepted, declined or revoked by hand.
    pub was_pending: bool,
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
        if input.was_pending {
            return resend_or_give_up(input, Lapse::Vanished);
        }
        return MemberPlan {
            action: Some(MemberAction::Invite),
            reinvite: false,
            phase: MemberPhase::Pending,
            health: Health::Progressing(Why::new("Inviting", "Sending the invitation")),
        };
    };
    if user.is_pending() && user.expired {
        return resend_or_give_up(input, Lapse::Expired);
    }
    if !role_matches(user, input.role) {
        return MemberPlan {
            action: Some(MemberAction::SetRole(input.role)),
            reinvite: false,
            phase: if user.is_pending() {
                MemberPhase::Invited
            } else {
                MemberPhase::Active
            },
            health: Health::Progressing(Why::new(
                "SettingRole",
                format!("Setting the role to {}", input.role.as_str()),
            )),
        };
    }
    if user.is_pending() {
        return MemberPlan {
            action: None,
            reinvite: false,
            phase: MemberPhase::Invited,
            health: Health::Progressing(Why::new(
                "InvitationPending",
                "Waiting for the invitation to be accepted",
            )),
        };
    }
    MemberPlan {
        action: None,
        reinvite: false,
        phase: MemberPhase::Active,
        health: Health::Ready(Why::new(
            "Active",
            format!("Member with role {}", input.role.as_str()),
        )),
    }
}

/// How an invitation lapsed without being accepted.
#[derive(Debug, Clone, Copy)]
enum Lapse {
    /// It expired.
    Expired,
    /// It went away: declined, or revoked by hand.
    Vanished,
}

/// A lapsed invitation is sent again while under `--max-reinvites` (each is an e-mail to the person, so
/// both kinds of lapse count against the one budget), then given up on until a person edits the object.
fn resend_or_give_up(input: MemberInput<'_>, lapse: Lapse) -> MemberPlan {
    let (what, phase, reason) = match lapse {
        Lapse::Expired => ("expired", MemberPhase::Expired, "InvitationExpired"),
        Lapse::Vanished => (
            "went away unaccepted (declined, or revoked by hand)",
            MemberPhase::Declined,
            "InvitationDeclined",
        ),
    };
    if input.reinvites < input.max_reinvites {
        return MemberPlan {
            action: Some(MemberAction::Invite),
            reinvite: true,
            phase: MemberPhase::Invited,
            health: Health::Progressing(Why::new(
                "InvitationPending",
                format!(
                    "The invitation {what}; sending it again ({} of {})",
                    input.reinvites + 1,
                    input.max_reinvites
                ),
            )),
        };
    }
    MemberPlan {
        action: None,
        reinvite: false,
        phase,
        health: Health::Stalled(Why::new(
            reason,
            format!(
                "The invitation {what} after being sent again {} times; edit the object to invite again",
                input.reinvites
            ),
        )),
    }
}

/// Plans cleanup when the object is deleted: under `Delete`, remove the member or revoke the
/// invitation whatever a list last said (a list may be older than a new invitation; 404 is done).
#[must_use]
pub fn plan_cleanup(policy: DeletionPolicy) -> Option<MemberAction> {
    match policy {
        DeletionPolicy::Delete => Some(MemberAction::Remove),
        DeletionPolicy::Orphan => None,
    }
}

fn role_matches(user: &WorkspaceUser, role: Role) -> bool {
    user.role
        .as_deref()
        .is_some_and(|r| r.eq_ignore_ascii_case(role.as_str()))
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
        MemberInput {
            role,
            observed,
            reinvites,
            max_reinvites: 3,
            was_pending: false,
        }
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
        assert!(
            matches!(plan.health, Health::Progressing(ref w) if w.reason == "InvitationPending")
        );
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
        assert_eq!(
            plan(input(Some(&u), Role::Member, 0)).phase,
            MemberPhase::Active
        );
    }

    /// Delete removes (404 counts as done, so no list is trusted to say "gone"); Orphan removes nothing.
    #[test]
    fn cleanup_follows_policy() {
        assert_eq!(
            plan_cleanup(DeletionPolicy::Delete),
            Some(MemberAction::Remove)
        );
        assert_eq!(plan_cleanup(DeletionPolicy::Orphan), None);
    }

    /// An invitation that went away unaccepted is sent again, counted, and given up on at the cap:
    /// Declined and Stalled, not one more e-mail.
    #[test]
    fn vanished_invitation_is_bounded() {
        let mut i = input(None, Role::Member, 0);
        i.was_pending = true;
        let again = plan(i);
        assert_eq!(again.action, Some(MemberAction::Invite));
        assert!(again.reinvite, "counted against --max-reinvites");
        assert_eq!(again.phase, MemberPhase::Invited);
        i.reinvites = 3;
        let stop = plan(i);
        assert_eq!(stop.action, None);
        assert_eq!(stop.phase, MemberPhase::Declined);
        assert!(matches!(stop.health, Health::Stalled(ref w) if w.reason == "InvitationDeclined"));
        i.was_pending = false;
        assert!(
            !plan(i).reinvite,
            "a first invitation is not a re-invitation"
        );
    }
}
