//! The periodic resync: every object looked at again once per period, in one sweep through the pacer,
//! instead of a requeue held per settled object in kube-runtime's scheduler (≈ 0.8 KB each, for good).
//!
//! A settled object's reconcile returns [`reconcile::at_resync`]; the controller hands kube-runtime
//! `await_change` instead and leaves the rest to the sweeps. An object whose last reconcile asked to wait
//! for a change (`await_change`: the remote refused its spec, or its cleanup is done) is left out of the
//! sweeps until it is reconciled again.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};

use super::key_of;
use super::pacer::Pacer;
use crate::reconcile;

/// The objects the sweeps leave out.
pub struct Resync<K: Resource<DynamicType = ()>> {
    waiting: Mutex<HashSet<ObjectRef<K>>>,
}

impl<K: Resource<DynamicType = ()> + Clone> Resync<K> {
    /// Nothing left out yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            waiting: Mutex::new(HashSet::new()),
        }
    }

    fn waiting(&self) -> MutexGuard<'_, HashSet<ObjectRef<K>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What kube-runtime's controller is to do after a reconcile of `obj` returned `action`.
    pub fn action(&self, obj: &K, action: Action) -> Action {
        let Some(key) = key_of(obj) else {
            return action;
        };
        if action == reconcile::at_resync() {
            self.waiting().remove(&key);
            Action::await_change()
        } else if action == Action::await_change() {
            self.waiting().insert(key);
            action
        } else {
            self.waiting().remove(&key);
            action
        }
    }

    /// Starts a sweep of every object in `store` but those waiting for a change; forgets those no longer
    /// in the store. A sweep still going when the next is due is left to finish, and the next skipped.
    pub fn sweep(&self, store: &Store<K>, pacer: &Pacer<K>) {
        let mut objects = store.state();
        let mut waiting = self.waiting();
        waiting.retain(|key| store.get(key).is_some());
        if !waiting.is_empty() {
            objects.retain(|obj| key_of(obj.as_ref()).is_some_and(|key| !waiting.contains(&key)));
        }
        tracing::debug!(
            kind = %K::kind(&()),
            objects = objects.len(),
            waiting = waiting.len(),
            "resync sweep"
        );
        drop(waiting);
        if !pacer.sweep(objects) {
            tracing::debug!(
                kind = %K::kind(&()),
                "the last resync sweep is still going; skipping this one"
            );
        }
    }

    /// Sweeps every `period`, the first one `period` from now, forever.
    pub async fn run(&self, store: Store<K>, pacer: &Pacer<K>, period: Duration) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.sweep(&store, pacer);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::sync::Arc;

    use futures::{FutureExt, StreamExt};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::{reflector, watcher};

    use super::*;

    fn object(name: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.namespace = Some("ns".into());
        cm
    }

    /// The names one sweep queues, sorted.
    fn swept(store: &Store<ConfigMap>, resync: &Resync<ConfigMap>) -> Vec<String> {
        let pacer = Arc::new(Pacer::new(usize::MAX));
        resync.sweep(store, &pacer);
        let mut offers = Box::pin(Arc::clone(&pacer).offers());
        let mut names = Vec::new();
        while let Some(Some(key)) = offers.next().now_or_never() {
            names.push(key.name);
        }
        names.sort();
        names
    }

    /// A sweep queues every object but those waiting for a change; a reconcile that asks for the resync
    /// brings an object back into the sweeps; deleted objects are forgotten.
    #[test]
    fn sweeps_skip_objects_waiting_for_a_change() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        for name in ["a", "b", "c"] {
            writer.apply_watcher_event(&watcher::Event::Apply(object(name)));
        }
        let resync = Resync::new();
        let wait = Action::await_change();
        let again = Action::requeue(Duration::from_secs(3));
        assert_eq!(resync.action(&object("a"), wait.clone()), wait);
        assert_eq!(
            resync.action(&object("b"), reconcile::at_resync()),
            wait,
            "the scheduler holds nothing for a settled object"
        );
        assert_eq!(resync.action(&object("c"), again.clone()), again);

        assert_eq!(swept(&store, &resync), ["b", "c"]);
        resync.action(&object("a"), reconcile::at_resync());
        assert_eq!(swept(&store, &resync), ["a", "b", "c"]);

        resync.action(&object("a"), Action::await_change());
        writer.apply_watcher_event(&watcher::Event::Delete(object("a")));
        resync.sweep(&store, &Pacer::new(1));
        assert!(resync.waiting().is_empty(), "a deleted object is forgotten");
    }
}
