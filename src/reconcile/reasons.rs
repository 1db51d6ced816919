//! What state each object was last reported in (its Stalled or Ready condition and reason), so a
//! dashboard can show how many objects of each kind are Stalled and why, not only how many passes
//! failed. A Stalled outcome ends its pass without error, so the failure counters never see it.
//!
//! Kept from the statuses the operator writes ([`super::write_status`]), one small entry per object
//! (its uid, kind, state and reason); objects gone from the caches are dropped at each scrape.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::conditions::{READY, RECONCILING, STALLED};

/// The state and reason of each object, by uid.
#[derive(Default)]
pub struct Reasons(Mutex<HashMap<String, Reported>>);

/// One object's last reported state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reported {
    kind: String,
    state: &'static str,
    reason: String,
}

/// Objects by (kind, state, reason).
pub type Counts = BTreeMap<(String, &'static str, String), i64>;

impl Reasons {
    /// Records the state `conditions` report for object `uid` of `kind`: `Stalled` with its reason
    /// when Stalled is True, else `Ready` when Ready is True, else `Progressing` (Reconciling True)
    /// or `NotReady`, with that condition's reason.
    pub fn record(&self, kind: &str, uid: &str, conditions: &[Condition]) {
        let is_true = |t: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == t && c.status == "True")
        };
        let (state, condition) = if let Some(c) = is_true(STALLED) {
            ("Stalled", Some(c))
        } else if let Some(c) = is_true(READY) {
            ("Ready", Some(c))
        } else if let Some(c) = is_true(RECONCILING) {
            ("Progressing", Some(c))
        } else {
            ("NotReady", conditions.iter().find(|c| c.type_ == READY))
        };
        let reason = condition.map_or("", |c| c.reason.as_str());
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Every pass reports, most of them what they reported before: nothing is allocated then.
        if map
            .get(uid)
            .is_some_and(|r| r.state == state && r.reason == reason && r.kind == kind)
        {
            return;
        }
        map.insert(
            uid.to_owned(),
            Reported {
                kind: kind.to_owned(),
                state,
                reason: reason.to_owned(),
            },
        );
    }

    /// Objects by kind, state and reason, among those in `live` (the uids the caches hold); the
    /// others are forgotten.
    pub fn counts(&self, live: &HashSet<String>) -> Counts {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|uid, _| live.contains(uid));
        let mut counts = Counts::new();
        for r in map.values() {
            *counts
                .entry((r.kind.clone(), r.state, r.reason.clone()))
                .or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: crate::reconcile::conditions::now(),
        }
    }

    /// Stalled wins over Ready; objects no cache holds are forgotten.
    #[test]
    fn counts_by_state_and_reason() {
        let reasons = Reasons::default();
        reasons.record("Sandbox", "a", &[condition(READY, "True", "Running")]);
        reasons.record("Sandbox", "b", &[condition(READY, "True", "Running")]);
        reasons.record(
            "WorkspaceMember",
            "c",
            &[
                condition(READY, "False", "InvitationDeclined"),
                condition(STALLED, "True", "InvitationDeclined"),
            ],
        );
        reasons.record(
            "Workspace",
            "d",
            &[condition(RECONCILING, "True", "Creating")],
        );
        let live: HashSet<String> = ["a", "b", "c"].map(str::to_owned).into();
        let counts = reasons.counts(&live);
        assert_eq!(
            counts[&("Sandbox".to_owned(), "Ready", "Running".to_owned())],
            2
        );
        assert_eq!(
            counts[&(
                "WorkspaceMember".to_owned(),
                "Stalled",
                "InvitationDeclined".to_owned()
            )],
            1
        );
        assert_eq!(
            counts.len(),
            2,
            "the Workspace no cache holds is gone: {counts:?}"
        );
    }
}
