//! The stored sandbox and its lifecycle: [`SandboxRecord`] (what is kept), [`Phase`] (computed from the clock),
//! [`SandboxEvent`]s (the statuses reached), and [`SandboxBook`] (one workspace's sandboxes, with a
//! creation-order index and a purge queue).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::DEFAULT_REGION;
use super::input::image_of;
use crate::sim::clock::SimTime;
use crate::sim::config::SimConfig;
use crate::sim::previews::PreviewRecord;

/// Every status value the definitions list (for the `status` filter).
pub const STATUSES: [&str; 10] = [
    "DELETING",
    "TERMINATED",
    "FAILED",
    "DEACTIVATED",
    "DEACTIVATING",
    "UPLOADING",
    "BUILDING",
    "DEPLOYING",
    "DEPLOYED",
    "BUILT",
];

/// The computed lifecycle phase of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Starting.
    Deploying,
    /// Running.
    Deployed,
    /// Could not deploy.
    Failed,
    /// Stopping.
    Deactivating,
    /// Stopped.
    Deactivated,
    /// Being deleted.
    Deleting,
    /// Deleted, still visible.
    Terminated,
    /// Deleted and past retention: answers 404.
    Gone,
}

impl Phase {
    /// The `status` string (gone records render as `TERMINATED`, which is what they last were).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploying => "DEPLOYING",
            Self::Deployed => "DEPLOYED",
            Self::Failed => "FAILED",
            Self::Deactivating => "DEACTIVATING",
            Self::Deactivated => "DEACTIVATED",
            Self::Deleting => "DELETING",
            Self::Terminated | Self::Gone => "TERMINATED",
        }
    }

    /// Deleting, terminated or gone.
    #[must_use]
    pub fn is_deleted(self) -> bool {
        matches!(self, Self::Deleting | Self::Terminated | Self::Gone)
    }
}

/// Most events kept per sandbox (older ones are dropped).
pub const MAX_EVENTS: usize = 50;

/// One entry of a sandbox's `events` (the definition's `CoreEvent`): a status it reached, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxEvent {
    /// When the status was reached.
    pub at: SimTime,
    /// The status reached.
    pub status: &'static str,
    /// Why.
    pub message: String,
}

/// One sandbox.
#[derive(Debug, Clone)]
pub struct SandboxRecord {
    /// Unique name in the workspace.
    pub name: String,
    /// `metadata.displayName`, when set.
    pub display_name: Option<String>,
    /// `metadata.labels`.
    pub labels: Map<String, Value>,
    /// `metadata.externalId`, when set.
    pub external_id: Option<String>,
    /// The spec as last written (normalized: region and, in 2026, `enabled` filled in).
    pub spec: Map<String, Value>,
    /// Creation time.
    pub created_at: SimTime,
    /// Creator.
    pub created_by: String,
    /// Last update.
    pub updated_at: SimTime,
    /// Last updater.
    pub updated_by: String,
    /// Creation order, to break ties between equal `created_at`.
    pub seq: u64,
    /// Desired power.
    pub powered: bool,
    /// When power last changed.
    pub power_since: SimTime,
    /// Created disabled: `DEACTIVATED` without passing through `DEACTIVATING`.
    pub never_started: bool,
    /// Deploys end in `FAILED` (image listed in `--fail-image`).
    pub doomed: bool,
    /// Forced failure (`/_sim/`): message and time.
    pub failure: Option<(SimTime, String)>,
    /// When `DELETE` was received.
    pub deleted_at: Option<SimTime>,
    /// Last start or create.
    pub last_used_at: SimTime,
    /// Previews by name.
    pub previews: BTreeMap<String, PreviewRecord>,
    /// Statuses reached so far (see [`SandboxRecord::settle`]).
    pub events: Vec<SandboxEvent>,
}

impl SandboxRecord {
    /// The phase at `now`.
    #[must_use]
    pub fn phase(&self, now: SimTime, cfg: &SimConfig) -> Phase {
        if let Some(d) = self.deleted_at {
            let terminated = d.plus(cfg.delete_time);
            return if now < terminated {
                Phase::Deleting
            } else if now < terminated.plus(cfg.termination_retention) {
                Phase::Terminated
            } else {
                Phase::Gone
            };
        }
        if let Some((at, _)) = &self.failure
            && now >= *at
        {
            return Phase::Failed;
        }
        if self.powered {
            if now < self.power_since.plus(cfg.deploy_time) {
                Phase::Deploying
            } else if self.doomed {
                Phase::Failed
            } else {
                Phase::Deployed
            }
        } else if self.never_started || now >= self.power_since.plus(cfg.stop_time) {
            Phase::Deactivated
        } else {
            Phase::Deactivating
        }
    }

    /// When the record disappears, if deleted.
    #[must_use]
    pub fn gone_at(&self, cfg: &SimConfig) -> Option<SimTime> {
        self.deleted_at
            .map(|d| d.plus(cfg.delete_time).plus(cfg.termination_retention))
    }

    /// The region the sandbox runs in.
    #[must_use]
    pub fn region(&self) -> &str {
        self.spec
            .get("region")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_REGION)
    }

    /// `spec.enabled` as stored (absent counts as enabled).
    pub(super) fn spec_enabled(&self) -> bool {
        self.spec
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// When the record entered `phase` (its current phase).
    pub(super) fn entered(&self, phase: Phase, cfg: &SimConfig) -> SimTime {
        match phase {
            Phase::Deploying | Phase::Deactivating => self.power_since,
            Phase::Deployed => self.power_since.plus(cfg.deploy_time),
            Phase::Failed => match &self.failure {
                Some((at, _)) => *at,
                None => self.power_since.plus(cfg.deploy_time),
            },
            Phase::Deactivated if self.never_started => self.power_since,
            Phase::Deactivated => self.power_since.plus(cfg.stop_time),
            Phase::Deleting => self.deleted_at.unwrap_or(self.power_since),
            Phase::Terminated | Phase::Gone => self
                .deleted_at
                .unwrap_or(self.power_since)
                .plus(cfg.delete_time),
        }
    }

    /// Why the record is in `phase`.
    pub(super) fn explain(&self, phase: Phase) -> String {
        match phase {
            Phase::Deploying => "Sandbox is deploying".to_owned(),
            Phase::Deployed => "Sandbox is deployed".to_owned(),
            Phase::Failed => match &self.failure {
                Some((_, msg)) => msg.clone(),
                None => format!(
                    "Sandbox failed to start: image {:?} did not become ready",
                    image_of(&self.spec).unwrap_or_default()
                ),
            },
            Phase::Deactivating => "Sandbox is stopping".to_owned(),
            Phase::Deactivated => "Sandbox is stopped".to_owned(),
            Phase::Deleting => "Sandbox is being deleted".to_owned(),
            Phase::Terminated | Phase::Gone => "Sandbox is terminated".to_owned(),
        }
    }

    /// The event for the current phase, unless it is already the last one recorded.
    fn unrecorded_event(&self, now: SimTime, cfg: &SimConfig) -> Option<SandboxEvent> {
        let phase = self.phase(now, cfg);
        let status = phase.as_str();
        if self.events.last().is_some_and(|e| e.status == status) {
            return None;
        }
        Some(SandboxEvent {
            at: self.entered(phase, cfg),
            status,
            message: self.explain(phase),
        })
    }

    /// Records the current phase as an event if it is new. Called before and after every change, so the
    /// history keeps transitions that completed on their own (e.g. `DEPLOYED` before a stop).
    pub fn settle(&mut self, now: SimTime, cfg: &SimConfig) {
        if let Some(e) = self.unrecorded_event(now, cfg) {
            self.events.push(e);
            if self.events.len() > MAX_EVENTS {
                let excess = self.events.len() - MAX_EVENTS;
                self.events.drain(..excess);
            }
        }
    }

    /// Every event, including the current phase if not yet recorded.
    #[must_use]
    pub fn all_events(&self, now: SimTime, cfg: &SimConfig) -> Vec<SandboxEvent> {
        let mut v = self.events.clone();
        v.extend(self.unrecorded_event(now, cfg));
        v
    }

    pub(super) fn set_power(&mut self, on: bool, now: SimTime) {
        if self.powered != on {
            self.powered = on;
            self.power_since = now;
            self.never_started = false;
            if on {
                self.failure = None;
                self.last_used_at = now;
            }
        }
    }
}

/// The sandboxes of one workspace, with a creation-order index and a purge queue.
#[derive(Debug, Default)]
pub struct SandboxBook {
    pub(super) by_name: BTreeMap<String, SandboxRecord>,
    pub(super) by_created: BTreeSet<(SimTime, u64, String)>,
    pub(super) purge_queue: BTreeSet<(SimTime, String)>,
}

impl SandboxBook {
    /// Drops records whose retention has ended.
    pub fn purge(&mut self, now: SimTime, cfg: &SimConfig) {
        while let Some((at, name)) = self.purge_queue.first().cloned() {
            if at > now {
                break;
            }
            self.purge_queue.remove(&(at, name.clone()));
            if self.by_name.get(&name).and_then(|r| r.gone_at(cfg)) == Some(at) {
                self.remove(&name, cfg);
            }
        }
    }

    /// Number of records (including deleted ones still retained).
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// All records by name.
    pub fn iter(&self) -> impl Iterator<Item = &SandboxRecord> {
        self.by_name.values()
    }

    /// A record by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&SandboxRecord> {
        self.by_name.get(name)
    }

    /// A record by name, for changes that keep `created_at`, `seq` and `deleted_at` (use
    /// [`SandboxBook::mark_deleted`] to delete).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut SandboxRecord> {
        self.by_name.get_mut(name)
    }

    /// Inserts a new record, replacing any record of that name.
    pub fn insert(&mut self, r: SandboxRecord, cfg: &SimConfig) {
        self.remove(&r.name, cfg);
        self.by_created
            .insert((r.created_at, r.seq, r.name.clone()));
        self.by_name.insert(r.name.clone(), r);
    }

    /// Removes a record and its index entries.
    pub fn remove(&mut self, name: &str, cfg: &SimConfig) -> Option<SandboxRecord> {
        let r = self.by_name.remove(name)?;
        self.by_created
            .remove(&(r.created_at, r.seq, r.name.clone()));
        if let Some(at) = r.gone_at(cfg) {
            self.purge_queue.remove(&(at, r.name.clone()));
        }
        Some(r)
    }

    /// Records a deletion at `now` (no-op when already deleted).
    pub fn mark_deleted(&mut self, name: &str, now: SimTime, cfg: &SimConfig) {
        if let Some(r) = self.by_name.get_mut(name)
            && r.deleted_at.is_none()
        {
            r.deleted_at = Some(now);
            if let Some(at) = r.gone_at(cfg) {
                self.purge_queue.insert((at, name.to_owned()));
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;

    /// A sandbox created at time zero, powered or not.
    pub(in crate::sim::sandboxes) fn record(powered: bool) -> SandboxRecord {
        SandboxRecord {
            name: "a".into(),
            display_name: None,
            labels: Map::new(),
            external_id: None,
            spec: Map::new(),
            created_at: SimTime(0),
            created_by: String::new(),
            updated_at: SimTime(0),
            updated_by: String::new(),
            seq: 1,
            powered,
            power_since: SimTime(0),
            never_started: !powered,
            doomed: false,
            failure: None,
            deleted_at: None,
            last_used_at: SimTime(0),
            previews: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    fn cfg() -> SimConfig {
        SimConfig {
            deploy_time: Duration::from_secs(2),
            stop_time: Duration::from_secs(1),
            delete_time: Duration::from_secs(1),
            termination_retention: Duration::from_secs(10),
            ..SimConfig::default()
        }
    }

    /// The lifecycle is a pure function of the clock: deploy, stop, delete and purge happen at the
    /// configured instants and nowhere else.
    #[test]
    fn phases_follow_the_clock() {
        let c = cfg();
        let mut r = record(true);
        assert_eq!(r.phase(SimTime(1_999), &c), Phase::Deploying);
        assert_eq!(r.phase(SimTime(2_000), &c), Phase::Deployed);
        r.set_power(false, SimTime(5_000));
        assert_eq!(r.phase(SimTime(5_999), &c), Phase::Deactivating);
        assert_eq!(r.phase(SimTime(6_000), &c), Phase::Deactivated);
        r.deleted_at = Some(SimTime(7_000));
        assert_eq!(r.phase(SimTime(7_999), &c), Phase::Deleting);
        assert_eq!(r.phase(SimTime(8_000), &c), Phase::Terminated);
        assert_eq!(r.phase(SimTime(17_999), &c), Phase::Terminated);
        assert_eq!(r.phase(SimTime(18_000), &c), Phase::Gone);
        assert_eq!(record(false).phase(SimTime(0), &c), Phase::Deactivated);
    }

    /// Purging removes exactly the records past retention, and the indexes stay consistent.
    #[test]
    fn purge_is_lazy_and_exact() {
        let c = cfg();
        let mut b = SandboxBook::default();
        b.insert(record(true), &c);
        let mut other = record(true);
        other.name = "b".into();
        other.seq = 2;
        b.insert(other, &c);
        b.mark_deleted("a", SimTime(0), &c);
        b.purge(SimTime(10_999), &c);
        assert_eq!(b.len(), 2);
        b.purge(SimTime(11_000), &c);
        assert_eq!(b.len(), 1);
        assert_eq!(b.by_created.len(), 1);
        assert!(b.purge_queue.is_empty());
    }
}
