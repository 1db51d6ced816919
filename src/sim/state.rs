//! The simulator's shared state: configuration, clock, the in-memory world (the account's [`Workspace`]s: one
//! per workspace an API key is bound to, plus those created through `POST /workspaces`, and the names other
//! accounts hold), request statistics and the fault injector.
//!
//! One `Mutex` guards the world. Every handler takes it once, does O(log n) work (O(n) only for listings),
//! and releases it before any `.await`, so there are no lock-order or await-holding hazards. A poisoned lock
//! is recovered rather than propagated: the world holds plain data, valid after any panic in a handler.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::auth::KeyScope;
use super::clock::SimClock;
use super::config::SimConfig;
use super::faults::FaultState;
use super::sandboxes::SandboxBook;
use super::stats::Stats;
use super::users::UserBook;
use super::workspaces::WorkspaceRecord;

/// Locks a mutex, recovering the data if a previous holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A random generator: seeded (and so reproducible) when a seed is configured. `salt` keeps independent
/// streams (faults, tokens) from perturbing each other.
pub(crate) fn make_rng(seed: Option<u64>, salt: u64) -> StdRng {
    match seed {
        Some(s) => StdRng::seed_from_u64(s ^ salt),
        None => StdRng::from_os_rng(),
    }
}

/// Salt of the world's random stream (tokens).
const WORLD_SALT: u64 = 0x5eed_0001;

/// Everything one workspace holds.
#[derive(Debug)]
pub struct Workspace {
    /// The workspace itself (name, id, labels, status ...).
    pub meta: WorkspaceRecord,
    /// Members and invitations.
    pub users: UserBook,
    /// Sandboxes (with their previews and tokens).
    pub sandboxes: SandboxBook,
    /// Integration connections (with their secret values).
    pub connections: super::integrations::ConnectionBook,
    /// Raw records added to the list answers on request (`/_sim/workspaces/{ws}/malformed`).
    pub malformed: Malformed,
}

/// Records served exactly as a test gave them, however malformed, to exercise clients' handling of records
/// they cannot read. They are not objects of the world: nothing else sees or changes them.
#[derive(Debug, Default)]
pub struct Malformed {
    /// Appended to every `GET /users` answer.
    pub users: Vec<Value>,
    /// Appended to every `GET /sandboxes` answer (on the last page when paginated); one whose
    /// `metadata.name` is a string also answers `GET /sandboxes/{that name}` while no live sandbox has it.
    pub sandboxes: Vec<Value>,
}

impl Workspace {
    /// A workspace with no users, sandboxes or raw records.
    #[must_use]
    pub fn new(meta: WorkspaceRecord) -> Self {
        Self {
            meta,
            users: UserBook::default(),
            sandboxes: SandboxBook::default(),
            connections: super::integrations::ConnectionBook::default(),
            malformed: Malformed::default(),
        }
    }
}

impl Malformed {
    /// The first raw sandbox record whose `metadata.name` is `name`.
    #[must_use]
    pub fn sandbox(&self, name: &str) -> Option<&Value> {
        self.sandboxes
            .iter()
            .find(|r| r.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
    }

    /// `{"users": [...], "sandboxes": [...]}`, as `/_sim/` shows them.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({ "users": self.users, "sandboxes": self.sandboxes })
    }
}

/// All workspaces plus the world's own random stream and sequence counter.
#[derive(Debug)]
pub struct World {
    /// The account's workspaces by name.
    pub workspaces: BTreeMap<String, Workspace>,
    /// Workspace names other accounts hold (names are global).
    pub foreign: BTreeSet<String>,
    /// Random stream for generated values (preview tokens).
    pub rng: StdRng,
    /// Monotonic counter for tie-breaking creation order.
    pub seq: u64,
    /// Model counts set by `/_sim/integrations/{name}/models`, over the catalogue's.
    pub model_counts: BTreeMap<String, u32>,
}

impl World {
    fn new(config: &SimConfig) -> Self {
        let workspaces = config
            .effective_api_keys()
            .into_iter()
            .map(|k| {
                let meta = WorkspaceRecord::seeded(&k.workspace);
                (k.workspace, Workspace::new(meta))
            })
            .collect();
        Self {
            workspaces,
            foreign: config.foreign_workspaces.iter().cloned().collect(),
            rng: make_rng(config.seed, WORLD_SALT),
            seq: 0,
            model_counts: BTreeMap::new(),
        }
    }

    /// The next sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// The whole simulator, shared by every request.
#[derive(Debug)]
pub struct Sim {
    /// Settings it was started with.
    pub config: SimConfig,
    /// Bearer key → what it may do (one workspace, or the whole account).
    pub keys: HashMap<String, KeyScope>,
    /// The simulator clock.
    pub clock: SimClock,
    world: Mutex<World>,
    /// Request counters.
    pub stats: Mutex<Stats>,
    /// Faults in force and their random stream and rate-limit buckets.
    pub faults: Mutex<FaultState>,
}

impl Sim {
    /// A fresh simulator.
    #[must_use]
    pub fn new(config: SimConfig) -> Self {
        let mut keys: HashMap<String, KeyScope> = config
            .effective_api_keys()
            .into_iter()
            .map(|k| (k.key, KeyScope::Workspace(k.workspace)))
            .collect();
        keys.extend(
            config
                .account_keys
                .iter()
                .map(|k| (k.clone(), KeyScope::Account)),
        );
        Self {
            keys,
            clock: SimClock::new(config.manual_clock),
            world: Mutex::new(World::new(&config)),
            stats: Mutex::new(Stats::default()),
            faults: Mutex::new(FaultState::new(config.faults.clone(), config.seed)),
            config,
        }
    }

    /// Locks the world.
    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// Forgets every object, counter and runtime fault change; the clock keeps its time (so timestamps
    /// never go backwards for clients that survive the reset).
    pub fn reset(&self) {
        *self.world() = World::new(&self.config);
        *lock(&self.stats) = Stats::default();
        *lock(&self.faults) = FaultState::new(self.config.faults.clone(), self.config.seed);
    }
}
