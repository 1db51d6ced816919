//! The registry of kinds: what the controller keeps per kind from its watch (the store, the claim index,
//! whether the view is complete), reachable by the kind's type from any reconcile. The Workspace kind
//! reads the WorkspaceMembers and Sandboxes through it, and every kind its own claims.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::runtime::reflector::Store;

use super::claims::ClaimIndex;

/// Whether a kind's cache holds every object the API server has: false from the start until the first
/// list is complete, and again from a watch error or a re-list until that list is complete. While it is
/// false, an object missing from the store may well exist. Also since when the watch has been failing
/// without a success in between (for `/healthz`).
#[derive(Debug, Default)]
pub struct ViewState {
    complete: AtomicBool,
    failing_since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ViewState {
    /// Whether the view is complete now.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Records what a watch event says about completeness.
    pub fn set(&self, complete: bool) {
        self.complete.store(complete, Ordering::Release);
    }

    /// Records a watch error (the first of a run of them starts the clock) or a success (stops it).
    pub fn watch_failed(&self, failed: bool) {
        let mut since = self
            .failing_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (failed, *since) {
            (true, None) => *since = Some(std::time::Instant::now()),
            (false, Some(_)) => *since = None,
            _ => {}
        }
    }

    /// How long the watch has been failing without a success, if it is.
    #[must_use]
    pub fn failing_for(&self) -> Option<std::time::Duration> {
        self.failing_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|since| since.elapsed())
    }
}

/// Each kind's watch state, for `/healthz`: a watch failing for longer than `tolerance` (the API server
/// refusing the kind, a connection that never recovers) makes the process unhealthy, so the kubelet
/// restarts it rather than leave a replica that reconciles nothing.
#[derive(Debug)]
pub struct Liveness {
    tolerance: std::time::Duration,
    views: std::sync::Mutex<Vec<(&'static str, Arc<ViewState>)>>,
}

impl Liveness {
    /// Unhealthy after a watch fails for `tolerance`.
    #[must_use]
    pub fn new(tolerance: std::time::Duration) -> Self {
        Self {
            tolerance,
            views: std::sync::Mutex::default(),
        }
    }

    /// Watches kind `kind`'s view.
    pub fn register(&self, kind: &'static str, view: Arc<ViewState>) {
        self.views
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((kind, view));
    }

    /// `Err` naming the first kind whose watch has failed for longer than the tolerance.
    ///
    /// # Errors
    /// That kind, and for how long.
    pub fn check(&self) -> Result<(), String> {
        let views = self
            .views
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (kind, view) in views.iter() {
            if let Some(failing) = view.failing_for().filter(|f| *f > self.tolerance) {
                return Err(format!(
                    "the {kind} watch has been failing for {}s",
                    failing.as_secs()
                ));
            }
        }
        Ok(())
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Self::new(std::time::Duration::from_secs(300))
    }
}

/// What the controller keeps of one kind.
pub struct KindState<K: kube::Resource<DynamicType = ()> + Clone + 'static> {
    /// Every object of the kind the operator watches.
    pub store: Store<K>,
    /// Who claims what among them.
    pub claims: Arc<ClaimIndex<K>>,
    /// Whether `store` is complete now.
    pub view: Arc<ViewState>,
}

/// Adds the uids of one kind's cached objects to a set.
type UidLister = Box<dyn Fn(&mut HashSet<String>) + Send + Sync>;

/// Every registered kind's [`KindState`], by type.
#[derive(Default)]
pub struct Kinds {
    states: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    /// Each kind's store, for what needs every object whatever its kind (their uids).
    uids: Vec<UidLister>,
}

impl Kinds {
    /// Registers `K` (a second registration replaces the first).
    pub fn insert<K>(&mut self, state: KindState<K>)
    where
        K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let store = state.store.clone();
        self.uids.push(Box::new(move |out: &mut HashSet<String>| {
            out.extend(store.state().iter().filter_map(|o| o.meta().uid.clone()));
        }));
        self.states.insert(TypeId::of::<K>(), Box::new(state));
    }

    /// The uids of every cached object of every kind.
    #[must_use]
    pub fn live_uids(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        for add in &self.uids {
            add(&mut out);
        }
        out
    }

    /// `K`'s state, when `K` is registered.
    #[must_use]
    pub fn get<K>(&self) -> Option<&KindState<K>>
    where
        K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        self.states.get(&TypeId::of::<K>())?.downcast_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::runtime::reflector;

    /// A kind is found by its type, and only a registered one.
    #[test]
    fn kinds_are_found_by_type() {
        let mut kinds = Kinds::default();
        let (store, _writer) = reflector::store::<ConfigMap>();
        kinds.insert(KindState {
            store,
            claims: Arc::new(ClaimIndex::new(|_: &ConfigMap| 0)),
            view: Arc::default(),
        });
        let state = kinds.get::<ConfigMap>();
        assert!(state.is_some_and(|s| !s.view.complete()));
        assert!(kinds.get::<Secret>().is_none());
    }
}
