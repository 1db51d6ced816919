//! Pure status helpers: the four standard conditions built from a [`Health`] verdict.
//!
//! `lastTransitionTime` moves only when a condition's status changes, so a reconcile that observes
//! nothing new produces a status equal to the one already stored, and nothing is written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition types, as kstatus and Argo CD read them.
pub const READY: &str = "Ready";
/// The last reconcile reached the remote API and applied what it had to.
pub const SYNCED: &str = "Synced";
/// Work is in progress.
pub const RECONCILING: &str = "Reconciling";
/// Cannot progress without a change by a person.
pub const STALLED: &str = "Stalled";
/// The four condition types every status carries, in the order they are written.
pub const TYPES: [&str; 4] = [READY, SYNCED, RECONCILING, STALLED];

/// A reason and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Why {
    /// Builds a reason with its message.
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

impl Health {
    /// The same verdict with its message passed through `f` (to redact text that came from Blaxel).
    #[must_use]
    pub fn map_message(self, f: impl FnOnce(&str) -> String) -> Self {
        let redo = |why: Why| Why {
            message: f(&why.message),
            reason: why.reason,
        };
        match self {
            Self::Ready(why) => Self::Ready(redo(why)),
            Self::Progressing(why) => Self::Progressing(redo(why)),
            Self::Stalled(why) => Self::Stalled(redo(why)),
            Self::Failing(why) => Self::Failing(redo(why)),
            paused @ Self::Paused { .. } => paused,
        }
    }
}

/// The verdict a reconcile reaches about an object, from which the conditions follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The remote object matches the spec and is usable.
    Ready(Why),
    /// Converging: a remote transition or an invitation is under way.
    Progressing(Why),
    /// Cannot progress without a person: duplicate, credentials, expired invitation, remote failure.
    Stalled(Why),
    /// Remote writes are paused by annotation; `ready` tells whether the remote object matches anyway.
    Paused {
        /// Whether the observed remote object matches the spec.
        ready: bool,
    },
    /// The remote API could not be reached or refused transiently; will retry.
    Failing(Why),
}

/// Builds the four conditions for `health`, keeping each previous `lastTransitionTime` whose status is
/// unchanged.
#[must_use]
pub fn build(
    previous: &Transitions,
    health: &Health,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let (ready, synced, reconciling, stalled) = match health {
        Health::Ready(why) => (
            (true, why.clone()),
            (
                true,
                Why::new("Synced", "The remote object matches the spec"),
            ),
            (false, Why::new("Idle", "Nothing to do")),
            (false, Why::new("Idle", "Nothing to do")),
        ),
        Health::Progressing(why) => (
            (false, why.clone()),
            (
                true,
                Why::new("Synced", "Applied the spec; waiting for the remote side"),
            ),
            (true, why.clone()),
            (false, Why::new("Progressing", "Converging")),
        ),
        Health::Stalled(why) => (
            (false, why.clone()),
            (true, Why::new("Synced", "Nothing the operator can apply")),
            (
                false,
                Why::new("Stalled", "Waiting for a change by a person"),
            ),
            (true, why.clone()),
        ),
        Health::Paused { ready } => (
            (
                *ready,
                if *ready {
                    Why::new("Ready", "The remote object matches the spec")
                } else {
                    Why::new(
                        "Paused",
                        "Remote writes are paused; the remote object differs from the spec",
                    )
                },
            ),
            (
                false,
                Why::new(
                    "Paused",
                    "Remote writes are paused by the blaxel.ai/paused annotation",
                ),
            ),
            (false, Why::new("Paused", "Remote writes are paused")),
            (false, Why::new("Paused", "Remote writes are paused")),
        ),
        Health::Failing(why) => (
            (false, why.clone()),
            (false, why.clone()),
            (true, Why::new("Retrying", "Retrying after a remote error")),
            (false, Why::new("Retrying", "The error is expected to pass")),
        ),
    };
    TYPES
        .into_iter()
        .zip([ready, synced, reconciling, stalled])
        .map(|(kind, (status, why))| condition(previous, kind, status, why, generation, now))
        .collect()
}

fn condition(
    previous: &Transitions,
    kind: &str,
    status: bool,
    why: Why,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let last_transition_time = previous.since(kind, status).unwrap_or(now).clone();
    Condition {
        type_: kind.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: why.reason,
        message: why.message,
        last_transition_time,
        observed_generation: generation,
    }
}

/// The current time, truncated to whole seconds as the API server stores it.
#[must_use]
pub fn now() -> Time {
    let ts = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

/// Of each of the four conditions, whether it is True and since when: what a reconcile needs of the
/// conditions it wrote before (their reasons and messages it builds anew).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transitions([Option<(bool, Time)>; 4]);

impl Transitions {
    /// The transitions of `conditions`; other types, and statuses other than True and False, are left out.
    #[must_use]
    pub fn of(conditions: &[Condition]) -> Self {
        let mut out = Self::default();
        for c in conditions {
            let status = match c.status.as_str() {
                "True" => true,
                "False" => false,
                _ => continue,
            };
            if let Some(i) = TYPES.iter().position(|t| *t == c.type_) {
                out.0[i] = Some((status, c.last_transition_time.clone()));
            }
        }
        out
    }

    /// Since when the condition of `kind` has had `status`, if it has.
    #[must_use]
    pub fn since(&self, kind: &str, status: bool) -> Option<&Time> {
        let i = TYPES.iter().position(|t| *t == kind)?;
        self.0[i]
            .as_ref()
            .filter(|(s, _)| *s == status)
            .map(|(_, at)| at)
    }

    /// True when the condition of `kind` is True.
    #[must_use]
    pub fn is_true(&self, kind: &str) -> bool {
        self.since(kind, true).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(second).unwrap_or_default())
    }

    /// lastTransitionTime stays put while a condition's status does not change, and moves when it does.
    #[test]
    fn transition_time_moves_only_on_status_change() {
        let first = build(
            &Transitions::default(),
            &Health::Progressing(Why::new("InvitationPending", "x")),
            Some(1),
            &at(10),
        );
        let again = build(
            &Transitions::of(&first),
            &Health::Progressing(Why::new("InvitationPending", "x")),
            Some(1),
            &at(20),
        );
        assert_eq!(
            first, again,
            "a no-op reconcile must produce an identical status"
        );
        let ready = build(
            &Transitions::of(&again),
            &Health::Ready(Why::new("Active", "y")),
            Some(1),
            &at(30),
        );
        let time_of = |cs: &[Condition], kind: &str| {
            cs.iter()
                .find(|c| c.type_ == kind)
                .map(|c| c.last_transition_time.clone())
        };
        assert_eq!(time_of(&ready, READY), Some(at(30)));
        assert_eq!(time_of(&ready, SYNCED), Some(at(10)), "Synced stayed True");
        assert_eq!(time_of(&ready, RECONCILING), Some(at(30)));
    }

    /// Every verdict yields all four conditions with the generation it describes.
    #[test]
    fn four_conditions_with_generation() {
        for health in [
            Health::Ready(Why::new("A", "a")),
            Health::Progressing(Why::new("B", "b")),
            Health::Stalled(Why::new("C", "c")),
            Health::Paused { ready: false },
            Health::Failing(Why::new("D", "d")),
        ] {
            let cs = build(&Transitions::default(), &health, Some(7), &at(1));
            let kinds: Vec<_> = cs.iter().map(|c| c.type_.as_str()).collect();
            assert_eq!(kinds, [READY, SYNCED, RECONCILING, STALLED]);
            assert!(cs.iter().all(|c| c.observed_generation == Some(7)));
        }
    }

    /// Stalled and Paused verdicts say so in Stalled and Synced.
    #[test]
    fn stalled_and_paused_map_to_their_conditions() {
        let stalled = build(
            &Transitions::default(),
            &Health::Stalled(Why::new("DuplicateMember", "m")),
            None,
            &at(1),
        );
        let stalled = Transitions::of(&stalled);
        assert!(stalled.is_true(STALLED) && !stalled.is_true(READY));
        let paused = build(
            &Transitions::default(),
            &Health::Paused { ready: true },
            None,
            &at(1),
        );
        let seen = Transitions::of(&paused);
        assert!(seen.is_true(READY) && !seen.is_true(SYNCED));
        assert!(
            paused
                .iter()
                .any(|c| c.type_ == SYNCED && c.reason == "Paused")
        );
    }

    /// Only the four types, and only True or False, are remembered.
    #[test]
    fn transitions_keep_only_known_types_and_statuses() {
        let condition = |type_: &str, status: &str| Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "R".into(),
            message: "m".into(),
            last_transition_time: at(5),
            observed_generation: None,
        };
        let seen = Transitions::of(&[
            condition("Ready", "Unknown"),
            condition("Custom", "True"),
            condition(SYNCED, "True"),
        ]);
        assert_eq!(seen.since(READY, true), None);
        assert_eq!(seen.since(READY, false), None);
        assert_eq!(seen.since("Custom", true), None);
        assert_eq!(seen.since(SYNCED, true), Some(&at(5)));
        assert_eq!(seen.since(SYNCED, false), None);
    }
}
