//! Pure planning for a Workspace: what to do about the workspace record, and whom its membership policy
//! reports or removes. No IO; every input is given.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::blaxel::model::{Workspace as RemoteWorkspace, WorkspaceAvailability, WorkspaceUser};
use crate::crd::{MemberCounts, MembershipPolicy, WorkspaceSpec};
use crate::reconcile::cache::email_key;
use crate::reconcile::conditions::{Health, Why};

/// Condition reason: the name is taken by another account (or refused by Blaxel).
pub const NAME_UNAVAILABLE: &str = "NameUnavailable";
/// Condition reason: Blaxel reports the workspace in `error`.
pub const WORKSPACE_ERROR: &str = "WorkspaceError";
/// Condition reason: an Authoritative pass would remove more than `maxRemovals`.
pub const TOO_MANY_REMOVALS: &str = "TooManyRemovals";
/// Condition reason: the operator cannot see every WorkspaceMember that may declare a member.
pub const INCOMPLETE_VIEW: &str = "IncompleteView";
/// How many unmanaged e-mails the status lists.
pub const UNMANAGED_LISTED: usize = 50;

/// What a pass knows about the workspace record.
pub struct WorkspaceInput<'a> {
    /// The spec.
    pub spec: &'a WorkspaceSpec,
    /// The remote name.
    pub name: &'a str,
    /// The workspace as read, `None` when Blaxel has none by this name (for this key).
    pub observed: Option<&'a RemoteWorkspace>,
    /// The availability of the name, once checked (only asked while the workspace is absent).
    pub availability: Option<&'a WorkspaceAvailability>,
}

/// The next remote step for the workspace record.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkspaceAction {
    /// Ask whether the name may be created.
    CheckAvailability,
    /// `POST /workspaces` with this body.
    Create(RemoteWorkspace),
    /// `PUT /workspaces/{name}` with this body (the record as read, declared fields changed).
    Update(RemoteWorkspace),
}

/// What the workspace record needs, and how it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspacePlan {
    /// The next remote write or check, if any.
    pub action: Option<WorkspaceAction>,
    /// How the record stands.
    pub health: Health,
}

/// Plans the workspace record: check and create while absent; one update on a real difference;
/// otherwise report Blaxel's status.
#[must_use]
pub fn plan(input: &WorkspaceInput<'_>) -> WorkspacePlan {
    let Some(observed) = input.observed else {
        return match input.availability {
            None => WorkspacePlan {
                action: Some(WorkspaceAction::CheckAvailability),
                health: Health::Progressing(Why::new("Creating", "Checking the name")),
            },
            Some(a) if !a.available => WorkspacePlan {
                action: None,
                health: Health::Stalled(Why::new(
                    NAME_UNAVAILABLE,
                    unavailable_message(input.name, a),
                )),
            },
            Some(_) => WorkspacePlan {
                action: Some(WorkspaceAction::Create(desired(input.spec, input.name))),
                health: Health::Progressing(Why::new(
                    "Creating",
                    format!("Creating workspace {}", input.name),
                )),
            },
        };
    };
    if let Some(update) = update_for(input.spec, observed) {
        return WorkspacePlan {
            action: Some(WorkspaceAction::Update(update)),
            health: Health::Progressing(Why::new(
                "Updating",
                format!("Updating workspace {}", input.name),
            )),
        };
    }
    let status = observed.status.as_deref().unwrap_or("ready");
    let health = match status {
        "ready" => Health::Ready(Why::new(
            "Ready",
            format!("Workspace {} is ready", input.name),
        )),
        "error" => Health::Stalled(Why::new(
            WORKSPACE_ERROR,
            format!(
                "Blaxel reports workspace {} in error: {}",
                input.name,
                observed
                    .status_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            ),
        )),
        other => Health::Progressing(Why::new(
            "Provisioning",
            format!("Workspace {} is {other}", input.name),
        )),
    };
    WorkspacePlan {
        action: None,
        health,
    }
}

fn unavailable_message(name: &str, a: &WorkspaceAvailability) -> String {
    let why = match (a.reason.as_deref(), a.message.as_deref()) {
        (_, Some(message)) if !message.is_empty() => message.to_owned(),
        (Some(reason), _) if !reason.is_empty() => reason.to_owned(),
        _ => "taken".to_owned(),
    };
    format!(
        "The workspace name {name} cannot be created ({why}), and this key sees no workspace by that \
         name. Choose another spec.workspaceName, or use a key of the account that owns it"
    )
}

/// The body of a create: the name and every declared field.
fn desired(spec: &WorkspaceSpec, name: &str) -> RemoteWorkspace {
    RemoteWorkspace {
        name: name.to_owned(),
        display_name: spec.display_name.clone(),
        labels: spec.labels.as_ref().map(as_values),
        region: spec.region.clone(),
        ..RemoteWorkspace::default()
    }
}

/// The record to `PUT` when a declared field differs: the record as read (unknown fields kept), with
/// the declared fields set. Fields the spec leaves out are left as they are.
#[must_use]
pub fn update_for(spec: &WorkspaceSpec, observed: &RemoteWorkspace) -> Option<RemoteWorkspace> {
    let mut next = observed.clone();
    if let Some(display_name) = &spec.display_name {
        next.display_name = Some(display_name.clone());
    }
    if let Some(region) = &spec.region {
        next.region = Some(region.clone());
    }
    if let Some(labels) = &spec.labels {
        let declared = as_values(labels);
        if observed.labels.clone().unwrap_or_default() != declared {
            next.labels = Some(declared);
        }
    }
    (next != *observed).then_some(next)
}

/// Declared labels as the record holds them.
fn as_values(labels: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

/// Whether the operator sees every WorkspaceMember that may declare a member of this workspace.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    /// Every declaring object is in the cache, and the remote list was read whole.
    Complete,
    /// Something is missing, for a while (a cache not yet synced, a watch error, a partial remote
    /// list): nothing is concluded; looked at again soon.
    Partial(Why),
    /// Something is missing until a person changes it (a namespace the operator does not watch).
    Blind(Why),
}

/// What a pass knows about the membership.
pub struct MembersInput<'a> {
    /// The policy.
    pub policy: MembershipPolicy,
    /// Members and invitations as listed.
    pub present: Vec<&'a WorkspaceUser>,
    /// E-mails WorkspaceMember objects of the member namespaces declare (canonical keys).
    pub declared: &'a BTreeSet<String>,
    /// E-mails WorkspaceMember objects of other namespaces declare: not counted as declared here, but
    /// never unmanaged either (another team's object would invite them again: no fight).
    pub declared_elsewhere: &'a BTreeSet<String>,
    /// E-mails never removed (canonical keys).
    pub protected: &'a BTreeSet<String>,
    /// The most removals one pass may make.
    pub max_removals: u32,
    /// Whether the view is complete.
    pub view: &'a View,
}

/// What the membership policy makes of the workspace's members.
#[derive(Debug, Clone, PartialEq)]
pub struct MembersPlan {
    /// Counts, when the view is complete.
    pub counts: Option<MemberCounts>,
    /// Unmanaged e-mails, sorted (all of them), when the view is complete.
    pub unmanaged: Option<Vec<String>>,
    /// E-mails to remove now (Authoritative only).
    pub removals: Vec<String>,
    /// A verdict that overrides the workspace record's health, if any.
    pub verdict: Option<Health>,
}

/// True for a user Blaxel provisions itself (directory sync, domain capture): reported, never removed,
/// since the next sync would add them again (and the source, not this operator, decides).
fn provisioned_elsewhere(user: &WorkspaceUser) -> bool {
    matches!(
        user.source.as_deref(),
        Some("directory_sync" | "domain_capture")
    )
}

/// Plans the membership: unmanaged = present, not declared (in the member namespaces or elsewhere),
/// not protected. `Authoritative` removes
/// them (those provisioned by directory sync or domain capture excepted), never on an incomplete view
/// and never more than `max_removals` in one pass.
#[must_use]
pub fn plan_members(input: &MembersInput<'_>) -> MembersPlan {
    match input.view {
        View::Complete => {}
        View::Partial(why) => {
            return MembersPlan {
                counts: None,
                unmanaged: None,
                removals: Vec::new(),
                verdict: (input.policy != MembershipPolicy::Additive)
                    .then(|| Health::Progressing(why.clone())),
            };
        }
        View::Blind(why) => {
            return MembersPlan {
                counts: None,
                unmanaged: None,
                removals: Vec::new(),
                verdict: (input.policy != MembershipPolicy::Additive)
                    .then(|| Health::Stalled(why.clone())),
            };
        }
    }
    let mut present = BTreeSet::new();
    let mut unmanaged = BTreeSet::new();
    let mut removable = BTreeSet::new();
    for user in &input.present {
        let key = email_key(&user.email);
        present.insert(key.clone());
        if input.declared.contains(&key)
            || input.declared_elsewhere.contains(&key)
            || input.protected.contains(&key)
        {
            continue;
        }
        if !provisioned_elsewhere(user) {
            removable.insert(key.clone());
        }
        unmanaged.insert(key);
    }
    let counts = MemberCounts {
        declared: count(input.declared.len()),
        present: count(present.len()),
        unmanaged: count(unmanaged.len()),
    };
    let unmanaged: Vec<String> = unmanaged.into_iter().collect();
    if input.policy != MembershipPolicy::Authoritative || removable.is_empty() {
        return MembersPlan {
            counts: Some(counts),
            unmanaged: Some(unmanaged),
            removals: Vec::new(),
            verdict: None,
        };
    }
    if removable.len() > input.max_removals as usize {
        let message = format!(
            "{} members or invitations are not declared and would be removed, more than \
             members.maxRemovals ({}); none was removed. Declare them (WorkspaceMember objects or \
             members.protected), or raise members.maxRemovals if they are to go",
            removable.len(),
            input.max_removals
        );
        return MembersPlan {
            counts: Some(counts),
            unmanaged: Some(unmanaged),
            removals: Vec::new(),
            verdict: Some(Health::Stalled(Why::new(TOO_MANY_REMOVALS, message))),
        };
    }
    MembersPlan {
        counts: Some(counts),
        unmanaged: Some(unmanaged),
        removals: removable.into_iter().collect(),
        verdict: None,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::*;
    use crate::crd::MembersSpec;

    fn spec() -> WorkspaceSpec {
        WorkspaceSpec {
            workspace_name: None,
            display_name: Some("Acme".into()),
            region: None,
            labels: Some([("team".to_owned(), "a".to_owned())].into()),
            deletion_policy: crate::crd::DeletionPolicy::Orphan,
            credentials_ref: None,
            members: MembersSpec::default(),
        }
    }

    fn remote(display: &str) -> RemoteWorkspace {
        serde_json::from_value(serde_json::json!({
            "name": "acme", "displayName": display, "labels": {"team": "a"},
            "region": "us-pdx-1", "status": "ready", "runtime": {"generation": "mk3"}
        }))
        .unwrap()
    }

    /// Absent: check, then create unless taken.
    #[test]
    fn absent_workspaces_are_checked_then_created() {
        let spec = spec();
        let input = |availability| WorkspaceInput {
            spec: &spec,
            name: "acme",
            observed: None,
            availability,
        };
        assert_eq!(
            plan(&input(None)).action,
            Some(WorkspaceAction::CheckAvailability)
        );
        let free = WorkspaceAvailability {
            available: true,
            ..WorkspaceAvailability::default()
        };
        let Some(WorkspaceAction::Create(body)) = plan(&input(Some(&free))).action else {
            panic!("create expected");
        };
        assert_eq!(
            (body.name.as_str(), body.display_name.as_deref()),
            ("acme", Some("Acme"))
        );
        assert_eq!(
            serde_json::to_value(&body.labels).unwrap(),
            serde_json::json!({"team": "a"}),
            "every declared field is in the create"
        );
        let mut in_region = spec.clone();
        in_region.region = Some("eu-lon-1".into());
        let with_region = WorkspaceInput {
            spec: &in_region,
            ..input(Some(&free))
        };
        let Some(WorkspaceAction::Create(body)) = plan(&with_region).action else {
            panic!("create expected");
        };
        assert_eq!(body.region.as_deref(), Some("eu-lon-1"));
        let taken = WorkspaceAvailability {
            available: false,
            reason: Some("taken".into()),
            message: None,
        };
        let stalled = plan(&input(Some(&taken)));
        assert_eq!(stalled.action, None);
        assert!(
            matches!(&stalled.health, Health::Stalled(why) if why.reason == NAME_UNAVAILABLE && why.message.contains("(taken)")),
            "{stalled:?}"
        );
    }

    /// Why a name cannot be created, in the words Blaxel gave: its message first, else its reason, else
    /// "taken"; an empty one counts as none.
    #[test]
    fn an_unavailable_name_is_explained_in_blaxels_words() {
        let why = |reason: Option<&str>, message: Option<&str>| {
            let a = WorkspaceAvailability {
                available: false,
                reason: reason.map(str::to_owned),
                message: message.map(str::to_owned),
            };
            let text = unavailable_message("acme", &a);
            let start = text.find('(').unwrap() + 1;
            let end = text.find(')').unwrap();
            text[start..end].to_owned()
        };
        assert_eq!(
            why(Some("reserved"), Some("is reserved by Blaxel")),
            "is reserved by Blaxel"
        );
        assert_eq!(why(Some("reserved"), Some("")), "reserved");
        assert_eq!(why(Some("reserved"), None), "reserved");
        assert_eq!(why(Some(""), None), "taken");
        assert_eq!(why(None, None), "taken");
    }

    /// One update on a real difference, keeping unknown fields; nothing when equal; absent fields left.
    #[test]
    fn updates_only_on_a_real_difference() {
        let spec = spec();
        let same = remote("Acme");
        let input = WorkspaceInput {
            spec: &spec,
            name: "acme",
            observed: Some(&same),
            availability: None,
        };
        let settled = plan(&input);
        assert_eq!(settled.action, None);
        assert!(matches!(settled.health, Health::Ready(_)));

        let drifted = remote("Old name");
        let Some(WorkspaceAction::Update(body)) =
            update_for(&spec, &drifted).map(WorkspaceAction::Update)
        else {
            panic!("update expected");
        };
        assert_eq!(body.display_name.as_deref(), Some("Acme"));
        assert_eq!(
            body.region.as_deref(),
            Some("us-pdx-1"),
            "absent from the spec: kept"
        );
        assert_eq!(
            body.extra.get("runtime"),
            Some(serde_json::json!({"generation": "mk3"}))
        );

        let mut labels_drift = remote("Acme");
        labels_drift.labels = None;
        assert!(
            update_for(&spec, &labels_drift).is_some(),
            "labels declared, none remote"
        );
        let mut no_labels = spec.clone();
        no_labels.labels = Some(std::collections::BTreeMap::default());
        assert!(
            update_for(&no_labels, &labels_drift).is_none(),
            "`{{}}` and no labels are the same"
        );
    }

    /// Blaxel's statuses map to health: ready, error (Stalled), anything else (provisioning).
    #[test]
    fn remote_status_is_health() {
        let spec = spec();
        let mut ws = remote("Acme");
        for (status, ready, stalled) in [
            ("ready", true, false),
            ("error", false, true),
            ("created", false, false),
        ] {
            ws.status = Some(status.into());
            let health = plan(&WorkspaceInput {
                spec: &spec,
                name: "acme",
                observed: Some(&ws),
                availability: None,
            })
            .health;
            assert_eq!(matches!(health, Health::Ready(_)), ready, "{status}");
            assert_eq!(matches!(health, Health::Stalled(_)), stalled, "{status}");
        }
    }

    fn user(email: &str, source: Option<&str>) -> WorkspaceUser {
        WorkspaceUser {
            email: email.into(),
            source: source.map(Into::into),
            ..WorkspaceUser::default()
        }
    }

    fn keys(emails: &[&str]) -> BTreeSet<String> {
        emails.iter().map(|e| (*e).to_owned()).collect()
    }

    fn members(policy: MembershipPolicy, view: &View, max: u32) -> MembersPlan {
        let present = [
            user("alice@example.com", None),
            user("Bob@Example.com", Some("invitation")),
            user("carol@example.com", None),
            user("dave@example.com", Some("directory_sync")),
            user("owner@example.com", None),
            user("erin@example.com", None),
        ];
        plan_members(&MembersInput {
            policy,
            present: present.iter().collect(),
            declared: &keys(&["alice@example.com"]),
            declared_elsewhere: &keys(&["erin@example.com"]),
            protected: &keys(&["owner@example.com"]),
            max_removals: max,
            view,
        })
    }

    /// Unmanaged = present, not declared, not protected (one canonical form); Authoritative removes
    /// them, except those a directory sync or domain capture provisioned.
    #[test]
    fn authoritative_removes_the_unmanaged_only() {
        let plan = members(MembershipPolicy::Authoritative, &View::Complete, 5);
        assert_eq!(
            plan.unmanaged.unwrap(),
            ["bob@example.com", "carol@example.com", "dave@example.com"]
        );
        assert_eq!(plan.removals, ["bob@example.com", "carol@example.com"]);
        assert_eq!(
            plan.counts.unwrap(),
            MemberCounts {
                declared: 1,
                present: 6,
                unmanaged: 3
            }
        );
        assert_eq!(plan.verdict, None);
    }

    /// Report and Additive list and count, and remove nobody.
    #[test]
    fn report_and_additive_remove_nobody() {
        for policy in [MembershipPolicy::Report, MembershipPolicy::Additive] {
            let plan = members(policy, &View::Complete, 0);
            assert!(plan.removals.is_empty(), "{policy:?}");
            assert_eq!(plan.unmanaged.unwrap().len(), 3);
            assert_eq!(plan.verdict, None);
        }
    }

    /// More removals than the cap: none, Stalled; at the cap: all.
    #[test]
    fn over_the_cap_removes_none() {
        let over = members(MembershipPolicy::Authoritative, &View::Complete, 1);
        assert!(over.removals.is_empty());
        assert!(
            matches!(&over.verdict, Some(Health::Stalled(why)) if why.reason == TOO_MANY_REMOVALS),
            "{over:?}"
        );
        let at = members(MembershipPolicy::Authoritative, &View::Complete, 2);
        assert_eq!(at.removals.len(), 2);
    }

    /// An incomplete view concludes nothing: no removal, no count, no list.
    #[test]
    fn an_incomplete_view_concludes_nothing() {
        for view in [
            View::Partial(Why::new("MemberViewIncomplete", "syncing")),
            View::Blind(Why::new(INCOMPLETE_VIEW, "not watched")),
        ] {
            let plan = members(MembershipPolicy::Authoritative, &view, 100);
            assert!(plan.removals.is_empty(), "{view:?}");
            assert_eq!((plan.counts, plan.unmanaged), (None, None));
            assert!(plan.verdict.is_some());
            let additive = members(MembershipPolicy::Additive, &view, 100);
            assert_eq!(additive.verdict, None, "Additive needs no complete view");
        }
    }
}
