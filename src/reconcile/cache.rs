//! Shared remote reads: one list per (workspace, credential) per freshness window, shared by every object
//! of that workspace.
//!
//! A reader states how old an answer it accepts (`max_age`); concurrent readers of a stale entry wait for one
//! fetch instead of each listing (single flight). A failed fetch is shared the same way: readers within
//! [`FAILURE_SHARED_FOR`] (or the server's `Retry-After`, if longer) get the same error without a fetch
//! of their own, so N objects waiting on a failing list cost one fetch per retry period, not N. The
//! operator's own writes update the cached list in place (write-through) with the object the API
//! answered, so a write never forces a re-list and the next reader still sees it.
//!
//! A record that did not decode is kept by identity where it had one: a reader asking for that identity
//! gets an error, never "absent" (which would invite twice, create again, or end a cleanup early).
//! Lists of scopes nobody read for a while (a rotated key, a workspace no object names any more) are
//! dropped.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::blaxel::model::{Listing, Sandbox as RemoteSandbox, WorkspaceUser};
use crate::blaxel::{ApiError, Scope};

/// How long a failed fetch answers for every reader of its scope, unless the server asked for longer.
pub const FAILURE_SHARED_FOR: Duration = Duration::from_secs(2);

/// An item of a shared list, keyed within its list.
pub trait Listed: Clone + Send + Sync {
    /// The item's key: a user's case-folded e-mail, a sandbox's name.
    fn key(&self) -> String;
    /// The key of an identity read from a record that did not decode.
    fn key_of(identity: &str) -> String;
}

impl Listed for WorkspaceUser {
    fn key(&self) -> String {
        email_key(&self.email)
    }
    fn key_of(identity: &str) -> String {
        email_key(identity)
    }
}

impl Listed for RemoteSandbox {
    fn key(&self) -> String {
        self.metadata.name.clone()
    }
    fn key_of(identity: &str) -> String {
        identity.to_owned()
    }
}

struct Entry<T> {
    fetched_at: Option<Instant>,
    items: Arc<HashMap<String, T>>,
    /// Key → why its record could not be read.
    unreadable: Arc<HashMap<String, String>>,
    /// Records that could not be read and had no readable identity either.
    anonymous: usize,
    /// The last fetch's failure, shared with readers until it is older than its window.
    failed: Option<(Instant, ApiError)>,
}

struct Slot<T> {
    entry: Arc<tokio::sync::Mutex<Entry<T>>>,
    touched: Instant,
}

struct Slots<T> {
    by_scope: HashMap<Scope, Slot<T>>,
    swept_at: Instant,
}

/// A per-scope cache of remote lists, keyed within a scope by each item's [`Listed::key`].
pub struct ListCache<T> {
    slots: Mutex<Slots<T>>,
    evict_after: Duration,
}

impl<T> Default for ListCache<T> {
    fn default() -> Self {
        Self::new(Duration::from_secs(3600))
    }
}

/// A whole list as cached: shared, not copied.
#[derive(Debug)]
pub struct Snapshot<T> {
    /// Every item that was read, by key.
    pub items: Arc<HashMap<String, T>>,
    /// How many records could not be read.
    pub unreadable: usize,
}

/// What a list says about one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen<T> {
    /// The key is listed.
    Present(T),
    /// The key is not listed, and every record of the list was read.
    Absent,
    /// The key is not listed, but some record could not be read and had no identity: it may be this one.
    Unsure,
}

impl<T> ListCache<T> {
    /// An empty cache that drops the list of a scope nobody read for `evict_after`.
    #[must_use]
    pub fn new(evict_after: Duration) -> Self {
        Self {
            slots: Mutex::new(Slots {
                by_scope: HashMap::new(),
                swept_at: Instant::now(),
            }),
            evict_after,
        }
    }

    /// How many scopes have a list (for tests and metrics).
    #[must_use]
    pub fn scopes(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_scope
            .len()
    }

    fn entry(&self, scope: &Scope) -> Arc<tokio::sync::Mutex<Entry<T>>> {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(slots.swept_at) >= self.evict_after / 4 {
            slots.swept_at = now;
            let evict_after = self.evict_after;
            // A slot still held by a reader stays, however old: it is in use.
            slots.by_scope.retain(|_, slot| {
                now.duration_since(slot.touched) < evict_after || Arc::strong_count(&slot.entry) > 1
            });
        }
        let slot = slots.by_scope.entry(scope.clone()).or_insert_with(|| Slot {
            entry: Arc::new(tokio::sync::Mutex::new(Entry {
                fetched_at: None,
                items: Arc::new(HashMap::new()),
                unreadable: Arc::new(HashMap::new()),
                anonymous: 0,
                failed: None,
            })),
            touched: now,
        });
        slot.touched = now;
        Arc::clone(&slot.entry)
    }
}

impl<T> Seen<T> {
    /// The item if listed; `None` when absent or unsure.
    pub fn into_option(self) -> Option<T> {
        match self {
            Self::Present(item) => Some(item),
            Self::Absent | Self::Unsure => None,
        }
    }
}

impl<T: Listed> ListCache<T> {
    /// Makes sure the scope's list is no older than `max_age`, fetching it when needed, and returns its
    /// entry still locked.
    async fn fresh<F, Fut>(
        entry: &tokio::sync::Mutex<Entry<T>>,
        max_age: Duration,
        fetch: F,
    ) -> Result<tokio::sync::MutexGuard<'_, Entry<T>>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Listing<T>, ApiError>>,
    {
        let mut guard = entry.lock().await;
        if guard.fetched_at.is_some_and(|at| at.elapsed() <= max_age) {
            return Ok(guard);
        }
        if let Some((at, error)) = &guard.failed {
            let window = error
                .retry_after()
                .map_or(FAILURE_SHARED_FOR, |r| r.max(FAILURE_SHARED_FOR));
            if at.elapsed() < window {
                return Err(error.clone());
            }
        }
        match fetch().await {
            Ok(listing) => {
                let mut anonymous = 0;
                let mut unreadable = HashMap::new();
                for record in listing.unreadable {
                    match record.identity {
                        Some(identity) => {
                            unreadable.insert(T::key_of(&identity), record.error);
                        }
                        None => anonymous += 1,
                    }
                }
                guard.items = Arc::new(
                    listing
                        .items
                        .into_iter()
                        .map(|item| (item.key(), item))
                        .collect(),
                );
                guard.unreadable = Arc::new(unreadable);
                guard.anonymous = anonymous;
                guard.fetched_at = Some(Instant::now());
                guard.failed = None;
                Ok(guard)
            }
            Err(error) => {
                guard.failed = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Whether the scope's list can be read (no older than `max_age`, fetched when needed): proves that
    /// the scope's key works in its workspace, at the cost of a read the scope's objects share anyway.
    ///
    /// # Errors
    /// The fetch's error (this reader's, or one shared within its window).
    pub async fn readable<F, Fut>(
        &self,
        scope: &Scope,
        max_age: Duration,
        fetch: F,
    ) -> Result<(), ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Listing<T>, ApiError>>,
    {
        let entry = self.entry(scope);
        Self::fresh(&entry, max_age, fetch).await.map(drop)
    }

    /// What a list no older than `max_age` says about `key`, fetching the list when needed.
    ///
    /// # Errors
    /// The fetch's error (this reader's, or one shared within its window), or a decode error when the
    /// record of `key` itself could not be read.
    pub async fn get<F, Fut>(
        &self,
        scope: &Scope,
        key: &str,
        max_age: Duration,
        fetch: F,
    ) -> Result<Seen<T>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Listing<T>, ApiError>>,
    {
        let entry = self.entry(scope);
        let guard = Self::fresh(&entry, max_age, fetch).await?;
        if let Some(item) = guard.items.get(key) {
            return Ok(Seen::Present(item.clone()));
        }
        if let Some(why) = guard.unreadable.get(key) {
            return Err(ApiError::Decode {
                message: format!("the remote record of {key} could not be read: {why}"),
            });
        }
        Ok(if guard.anonymous > 0 {
            Seen::Unsure
        } else {
            Seen::Absent
        })
    }

    /// The whole list, no older than `max_age` (fetched when needed): every item by key, and how many
    /// records could not be read (with or without an identity).
    ///
    /// # Errors
    /// The fetch's error (this reader's, or one shared within its window).
    pub async fn snapshot<F, Fut>(
        &self,
        scope: &Scope,
        max_age: Duration,
        fetch: F,
    ) -> Result<Snapshot<T>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Listing<T>, ApiError>>,
    {
        let entry = self.entry(scope);
        let guard = Self::fresh(&entry, max_age, fetch).await?;
        Ok(Snapshot {
            items: Arc::clone(&guard.items),
            unreadable: guard.unreadable.len() + guard.anonymous,
        })
    }

    /// Records the result of one of our writes: `Some(item)` puts it, `None` removes the key.
    /// Does nothing for a scope never listed (the next reader lists anyway).
    pub async fn write_through(&self, scope: &Scope, key: &str, item: Option<T>) {
        let entry = self.entry(scope);
        let mut guard = entry.lock().await;
        if guard.fetched_at.is_none() {
            return;
        }
        if guard.unreadable.contains_key(key) {
            Arc::make_mut(&mut guard.unreadable).remove(key);
        }
        let items = Arc::make_mut(&mut guard.items);
        match item {
            Some(item) => items.insert(key.to_owned(), item),
            None => items.remove(key),
        };
    }

    /// Forgets a scope's list, so that the next reader fetches it again.
    pub async fn invalidate(&self, scope: &Scope) {
        let entry = self.entry(scope);
        let mut guard = entry.lock().await;
        guard.fetched_at = None;
        guard.failed = None;
    }
}

/// The identity of an e-mail address: ASCII case folded, nothing else changed. Blaxel folds ASCII case
/// only (so does the simulator); the operator accepts only lower-case ASCII e-mails at admission, so an
/// object's e-mail is its own key.
#[must_use]
pub fn email_key(email: &str) -> String {
    email.to_ascii_lowercase()
}

/// `email_key(a) == email_key(b)`, without allocating.
#[must_use]
pub fn same_email(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::blaxel::ApiKey;
    use crate::blaxel::model::Unreadable;

    impl Listed for String {
        fn key(&self) -> String {
            self.clone()
        }
        fn key_of(identity: &str) -> String {
            identity.to_owned()
        }
    }

    fn scope(ws: &str) -> Scope {
        Scope {
            workspace: ws.into(),
            api_key: ApiKey::new("k"),
        }
    }

    /// Many concurrent readers of one stale scope cause exactly one fetch.
    #[tokio::test]
    async fn single_flight_per_scope() {
        let cache = Arc::new(ListCache::<String>::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let readers = (0..50).map(|i| {
            let (cache, fetches) = (Arc::clone(&cache), Arc::clone(&fetches));
            tokio::spawn(async move {
                cache
                    .get(
                        &scope("a"),
                        &format!("u{}", i % 5),
                        Duration::from_secs(60),
                        || async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok(Listing::complete((0..5).map(|n| format!("u{n}")).collect()))
                        },
                    )
                    .await
            })
        });
        for r in futures::future::join_all(readers).await {
            assert!(matches!(r.unwrap().unwrap(), Seen::Present(_)));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    /// A list older than the reader's max_age is fetched again; other scopes are separate.
    #[tokio::test(start_paused = true)]
    async fn stale_lists_are_refetched() {
        let cache = ListCache::<String>::default();
        let fetches = AtomicUsize::new(0);
        let read = |ws: &'static str| {
            let (cache, fetches) = (&cache, &fetches);
            async move {
                let fetch = || async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    Ok(Listing::complete(vec!["x".to_owned()]))
                };
                let ten_seconds = Duration::from_secs(10);
                cache
                    .get(&scope(ws), "x", ten_seconds, fetch)
                    .await
                    .unwrap();
            }
        };
        read("a").await;
        read("a").await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(11)).await;
        read("a").await;
        read("b").await;
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }

    /// Our writes are visible to the next reader without a fetch; a removal hides the item.
    #[tokio::test]
    async fn write_through_avoids_refetch() {
        let cache = ListCache::<String>::default();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(Listing::complete(Vec::new()))
        };
        assert_eq!(
            cache
                .get(&scope("a"), "new", Duration::MAX, fetch)
                .await
                .unwrap(),
            Seen::Absent
        );
        cache
            .write_through(&scope("a"), "new", Some("new".into()))
            .await;
        assert_eq!(
            cache
                .get(&scope("a"), "new", Duration::MAX, fetch)
                .await
                .unwrap()
                .into_option()
                .as_deref(),
            Some("new")
        );
        cache.write_through(&scope("a"), "new", None).await;
        assert_eq!(
            cache
                .get(&scope("a"), "new", Duration::MAX, fetch)
                .await
                .unwrap(),
            Seen::Absent
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        cache.invalidate(&scope("a")).await;
        cache
            .get(&scope("a"), "new", Duration::MAX, fetch)
            .await
            .unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    /// `same_email` agrees with comparing `email_key`s.
    #[test]
    fn same_email_matches_email_key() {
        let cases = [
            ("Alice@Example.com", "alice@example.COM"),
            ("alice@example.com", " alice@example.com"),
            ("alice@example.com", "alice@example.com\u{a0}"),
            ("ÉLODIE@example.com", "élodie@example.com"),
            ("élodie@example.com", "elodie@example.com"),
        ];
        for (a, b) in cases {
            assert_eq!(same_email(a, b), email_key(a) == email_key(b), "{a} vs {b}");
        }
    }

    fn down() -> ApiError {
        ApiError::Unavailable {
            message: "down".into(),
            retry_after: None,
        }
    }

    /// A failed fetch is shared: readers within the window get the same error without a fetch; after
    /// it, the next reader fetches again.
    #[tokio::test(start_paused = true)]
    async fn failures_are_shared_within_their_window() {
        let cache = Arc::new(ListCache::<String>::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let read = |cache: Arc<ListCache<String>>, fetches: Arc<AtomicUsize>, ok: bool| async move {
            cache
                .get(&scope("a"), "x", Duration::MAX, || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    if ok {
                        Ok(Listing::complete(vec!["x".to_owned()]))
                    } else {
                        Err(down())
                    }
                })
                .await
        };
        let waiters =
            (0..10).map(|_| tokio::spawn(read(Arc::clone(&cache), Arc::clone(&fetches), false)));
        for r in futures::future::join_all(waiters).await {
            assert_eq!(r.unwrap().unwrap_err(), down());
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "ten waiters, one fetch");
        tokio::time::advance(FAILURE_SHARED_FOR).await;
        let ok = read(Arc::clone(&cache), Arc::clone(&fetches), true).await;
        assert_eq!(ok.unwrap().into_option().as_deref(), Some("x"));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    /// A Retry-After longer than the window holds the shared failure that long.
    #[tokio::test(start_paused = true)]
    async fn retry_after_extends_the_shared_failure() {
        let cache = ListCache::<String>::default();
        let fetches = AtomicUsize::new(0);
        let limited = ApiError::RateLimited {
            retry_after: Some(Duration::from_secs(10)),
        };
        let a = scope("a");
        let read = || {
            cache.get(&a, "x", Duration::MAX, || async {
                fetches.fetch_add(1, Ordering::SeqCst);
                Err(limited.clone())
            })
        };
        assert!(read().await.is_err());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(read().await.is_err());
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(read().await.is_err());
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    /// A record that did not decode is an error for its own key, never "absent"; others are served; a
    /// record without identity makes every unlisted key unsure.
    #[tokio::test]
    async fn unreadable_records_are_not_absent() {
        let cache = ListCache::<String>::default();
        let listing = |anonymous: bool| {
            let mut unreadable = vec![Unreadable {
                identity: Some("bad".into()),
                error: "memory out of range".into(),
            }];
            if anonymous {
                unreadable.push(Unreadable {
                    identity: None,
                    error: "email is null".into(),
                });
            }
            Listing {
                items: vec!["good".to_owned()],
                unreadable,
            }
        };
        let a = scope("a");
        let get = |key: &'static str, anonymous: bool| {
            cache.get(&a, key, Duration::ZERO, move || async move {
                Ok(listing(anonymous))
            })
        };
        let error = get("bad", false).await.unwrap_err();
        assert_eq!(error.category(), "Decode");
        assert!(error.to_string().contains("memory out of range"), "{error}");
        assert_eq!(
            get("good", false).await.unwrap(),
            Seen::Present("good".into())
        );
        assert_eq!(get("other", false).await.unwrap(), Seen::Absent);
        assert_eq!(get("other", true).await.unwrap(), Seen::Unsure);
    }

    /// A record that did not decode is found under the key its identity has in the kind's one form: a
    /// user's e-mail case-folded, a sandbox's name as it is.
    #[tokio::test]
    async fn unreadable_records_are_keyed_as_the_kind_keys() {
        let a = scope("a");
        let users = ListCache::<WorkspaceUser>::default();
        let broken = |identity: &str| Unreadable {
            identity: Some(identity.to_owned()),
            error: "bad record".into(),
        };
        let listing = Listing {
            items: Vec::new(),
            unreadable: vec![broken("Bob@Example.COM")],
        };
        let got = users
            .get(&a, "bob@example.com", Duration::ZERO, || async {
                Ok(listing)
            })
            .await;
        assert_eq!(got.unwrap_err().category(), "Decode");
        let sandboxes = ListCache::<RemoteSandbox>::default();
        let listing = Listing {
            items: Vec::new(),
            unreadable: vec![broken("box")],
        };
        let got = sandboxes
            .get(&a, "box", Duration::ZERO, || async { Ok(listing) })
            .await;
        assert_eq!(got.unwrap_err().category(), "Decode");
    }

    /// A scope is dropped once unread for exactly its eviction age, and one whose list a reader holds
    /// stays however old.
    #[tokio::test(start_paused = true)]
    async fn eviction_is_at_the_age_and_spares_a_held_list() {
        let cache = ListCache::<String>::new(Duration::from_secs(100));
        let (old, held, recent) = (scope("old"), scope("held"), scope("recent"));
        let read = |scope| {
            cache.get(scope, "x", Duration::MAX, || async {
                Ok(Listing::complete(Vec::new()))
            })
        };
        read(&old).await.unwrap();
        let in_use = cache.entry(&held);
        tokio::time::advance(Duration::from_secs(100)).await;
        read(&recent).await.unwrap();
        assert_eq!(cache.scopes(), 2, "old went at 100 s; the held list stays");
        drop(in_use);
        tokio::time::advance(Duration::from_secs(100)).await;
        read(&recent).await.unwrap();
        assert_eq!(cache.scopes(), 1);
    }

    /// The list of a scope nobody reads any more is dropped; one in use stays.
    #[tokio::test(start_paused = true)]
    async fn idle_scopes_are_evicted() {
        let cache = ListCache::<String>::new(Duration::from_secs(100));
        let (old, recent) = (scope("old"), scope("recent"));
        let read = |scope| {
            cache.get(scope, "x", Duration::MAX, || async {
                Ok(Listing::complete(Vec::new()))
            })
        };
        read(&old).await.unwrap();
        tokio::time::advance(Duration::from_secs(60)).await;
        read(&recent).await.unwrap();
        assert_eq!(cache.scopes(), 2);
        tokio::time::advance(Duration::from_secs(60)).await;
        read(&recent).await.unwrap();
        assert_eq!(cache.scopes(), 1, "the scope unread for 120 s went");
    }
}
