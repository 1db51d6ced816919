//! Flow control between what deserves a reconcile and kube-runtime's scheduler.
//!
//! kube-runtime's `Controller` takes every request its trigger offers at once, and keeps each in tables (a
//! delay queue, a map that folds duplicates, the requests held while their object is being reconciled)
//! that never give their capacity back. Offered 10,000 objects at start-up, and holding a resync requeue
//! for every settled object, they kept ≈ 8 MB for good.
//!
//! A [`Pacer`] queues the objects to reconcile, in order and each once, and offers the scheduler at most
//! `limit` of them at a time: an object offered counts until a reconcile of it is reported finished,
//! whatever its outcome. Its own queue gives its memory back whenever it drains. A resync sweep is not
//! queued key by key: the pacer walks a snapshot of the store (one pointer per object) whenever nothing
//! else waits.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::vec::IntoIter;

use futures::Stream;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::Notify;

use super::key_of;

/// Capacity an empty queue keeps; what a start-up or a resync sweep grew beyond it is given back.
const KEPT_CAPACITY: usize = 1024;

/// The objects waiting for a reconcile, and those offered to the scheduler but not yet reconciled.
pub struct Pacer<K: Resource<DynamicType = ()>> {
    state: Mutex<State<K>>,
    wake: Notify,
    limit: usize,
}

struct State<K: Resource<DynamicType = ()>> {
    queue: VecDeque<ObjectRef<K>>,
    queued: HashSet<ObjectRef<K>>,
    offered: HashSet<ObjectRef<K>>,
    /// What the current resync sweep has yet to offer.
    sweep: IntoIter<Arc<K>>,
}

impl<K: Resource<DynamicType = ()>> Pacer<K> {
    /// A pacer offering at most `limit` objects at a time (at least one).
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                offered: HashSet::new(),
                sweep: Vec::new().into_iter(),
            }),
            wake: Notify::new(),
            limit: limit.max(1),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `key` for a reconcile, unless it is queued already.
    pub fn push(&self, key: ObjectRef<K>) {
        let mut state = self.state();
        if state.queued.insert(key.clone()) {
            state.queue.push_back(key);
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Queues `key` ahead of everything queued, unless it is queued already.
    pub fn push_front(&self, key: ObjectRef<K>) {
        let mut state = self.state();
        if state.queued.insert(key.clone()) {
            state.queue.push_front(key);
            drop(state);
            self.wake.notify_one();
        }
    }

    /// A reconcile of `key` has finished (or found the object gone): it no longer counts against the
    /// limit.
    pub fn finished(&self, key: &ObjectRef<K>) {
        if self.state().offered.remove(key) {
            self.wake.notify_one();
        }
    }

    /// Starts a resync sweep of `objects`, offered whenever nothing queued waits. While the previous
    /// sweep is still going, changes nothing and returns false.
    pub fn sweep(&self, objects: Vec<Arc<K>>) -> bool {
        let mut state = self.state();
        if state.sweep.len() > 0 {
            return false;
        }
        state.sweep = objects.into_iter();
        drop(state);
        self.wake.notify_one();
        true
    }

    /// The next key to offer, if there is one and room for it: queued keys first, then the sweep's.
    fn take(&self) -> Option<ObjectRef<K>> {
        let mut state = self.state();
        if state.offered.len() >= self.limit {
            return None;
        }
        let key = if let Some(key) = state.queue.pop_front() {
            state.queued.remove(&key);
            if state.queue.is_empty() && state.queue.capacity() > KEPT_CAPACITY {
                state.queue.shrink_to(KEPT_CAPACITY);
                state.queued.shrink_to(KEPT_CAPACITY);
            }
            key
        } else {
            let next = state.sweep.by_ref().find_map(|obj| key_of(obj.as_ref()));
            if state.sweep.len() == 0 {
                // Give the snapshot's buffer back.
                state.sweep = Vec::new().into_iter();
            }
            next?
        };
        state.offered.insert(key.clone());
        Some(key)
    }

    /// The keys to reconcile, as they may be offered: the controller's trigger. It never ends.
    pub fn offers(self: Arc<Self>) -> impl Stream<Item = ObjectRef<K>> + Send + 'static
    where
        K: Send + Sync + 'static,
    {
        futures::stream::unfold(self, |pacer| async move {
            loop {
                if let Some(key) = pacer.take() {
                    return Some((key, pacer));
                }
                // A push or a finish since `take` left a permit: this returns at once then.
                pacer.wake.notified().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::time::Duration;

    use futures::{FutureExt, StreamExt};
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn key(name: &str) -> ObjectRef<ConfigMap> {
        ObjectRef::new(name).within("ns")
    }

    /// The key offered now, if any (the stream is polled once).
    fn next(offers: &mut (impl Stream<Item = ObjectRef<ConfigMap>> + Unpin)) -> Option<String> {
        offers.next().now_or_never().flatten().map(|k| k.name)
    }

    /// Keys come out in the order pushed, each once however often it was pushed while queued.
    #[test]
    fn offers_in_order_without_duplicates() {
        let pacer = Arc::new(Pacer::new(10));
        for name in ["a", "b", "a", "c", "b"] {
            pacer.push(key(name));
        }
        let mut offers = Box::pin(Arc::clone(&pacer).offers());
        for name in ["a", "b", "c"] {
            assert_eq!(next(&mut offers).as_deref(), Some(name));
        }
        assert_eq!(next(&mut offers), None, "nothing else");
        // Offered, then pushed again (it changed meanwhile): it is queued again.
        pacer.push(key("a"));
        assert_eq!(next(&mut offers).as_deref(), Some("a"));
        // Pushed to the front: ahead of what waits, unless it waits already.
        for name in ["d", "e"] {
            pacer.push(key(name));
        }
        pacer.push_front(key("f"));
        pacer.push_front(key("e"));
        for name in ["f", "d", "e"] {
            assert_eq!(next(&mut offers).as_deref(), Some(name));
        }
    }

    /// No more than `limit` keys are out at once; each finished reconcile lets one more through.
    #[test]
    fn at_most_limit_offered_until_finished() {
        let pacer = Arc::new(Pacer::new(2));
        for name in ["a", "b", "c", "d"] {
            pacer.push(key(name));
        }
        let mut offers = Box::pin(Arc::clone(&pacer).offers());
        assert_eq!(next(&mut offers).as_deref(), Some("a"));
        assert_eq!(next(&mut offers).as_deref(), Some("b"));
        assert_eq!(next(&mut offers), None, "two are out");
        pacer.finished(&key("x"));
        assert_eq!(next(&mut offers), None, "a key never offered frees nothing");
        pacer.finished(&key("b"));
        assert_eq!(next(&mut offers).as_deref(), Some("c"));
        pacer.finished(&key("a"));
        assert_eq!(next(&mut offers).as_deref(), Some("d"));
    }

    /// A waiting stream wakes when a key is pushed.
    #[tokio::test]
    async fn a_push_wakes_the_waiting_stream() {
        let pacer = Arc::new(Pacer::<ConfigMap>::new(1));
        let mut offers = Box::pin(Arc::clone(&pacer).offers());
        let waiting = tokio::spawn(async move { offers.next().await.map(|k| k.name) });
        tokio::task::yield_now().await;
        pacer.push(key("late"));
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.as_deref(), Some("late"));
    }

    fn object(name: &str) -> Arc<ConfigMap> {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.namespace = Some("ns".into());
        Arc::new(cm)
    }

    /// A sweep is offered after what is queued, and a second one waits for the first to finish.
    #[test]
    fn a_sweep_comes_after_queued_keys() {
        let pacer = Arc::new(Pacer::new(10));
        assert!(pacer.sweep(vec![object("s1"), object("s2")]));
        assert!(!pacer.sweep(vec![object("s3")]), "one sweep at a time");
        pacer.push(key("w"));
        let mut offers = Box::pin(Arc::clone(&pacer).offers());
        assert_eq!(next(&mut offers).as_deref(), Some("w"));
        assert_eq!(next(&mut offers).as_deref(), Some("s1"));
        pacer.push(key("x"));
        assert_eq!(next(&mut offers).as_deref(), Some("x"), "a wake goes first");
        assert_eq!(next(&mut offers).as_deref(), Some("s2"));
        assert_eq!(next(&mut offers), None);
        assert_eq!(pacer.state().sweep.as_slice().len(), 0);
        assert!(pacer.sweep(vec![object("s3")]), "the first one is over");
        assert_eq!(next(&mut offers).as_deref(), Some("s3"));
    }

    /// The queue gives back what a burst grew it to once it drains.
    #[test]
    fn a_drained_queue_gives_its_memory_back() {
        let pacer = Arc::new(Pacer::new(usize::MAX));
        for i in 0..10_000 {
            pacer.push(key(&format!("o{i}")));
        }
        assert!(pacer.state().queue.capacity() >= 10_000);
        let mut offers = Box::pin(Arc::clone(&pacer).offers());
        for _ in 0..10_000 {
            next(&mut offers).unwrap();
        }
        let state = pacer.state();
        assert!(
            state.queue.capacity() <= KEPT_CAPACITY,
            "{}",
            state.queue.capacity()
        );
        assert!(
            state.queued.capacity() <= 2 * KEPT_CAPACITY,
            "{}",
            state.queued.capacity()
        );
    }
}
