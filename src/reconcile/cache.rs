//! Shared remote reads: one list per (workspace, credential) per freshness window, shared by every object
//! of that workspace.
//!
//! A reader states how old an answer it accepts (`max_age`); concurrent readers of a stale entry wait for one
//! fetch instead of each listing (single flight). The operator's own writes update the cached list in place
//! (write-through) with the object the API answered, so a write never forces a re-list and the next reader
//! still sees it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::blaxel::{ApiError, Scope};

type Items<T> = HashMap<String, T>;

struct Entry<T> {
    fetched_at: Option<Instant>,
    items: Arc<Items<T>>,
}

/// A per-scope cache of remote lists, keyed within a scope by each item's identity.
pub struct ListCache<T> {
    entries: Mutex<HashMap<Scope, Arc<tokio::sync::Mutex<Entry<T>>>>>,
}

impl<T> Default for ListCache<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> ListCache<T> {
    fn entry(&self, scope: &Scope) -> Arc<tokio::sync::Mutex<Entry<T>>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(entries.entry(scope.clone()).or_insert_with(|| {
            Arc::new(tokio::sync::Mutex::new(Entry {
                fetched_at: None,
                items: Arc::new(HashMap::new()),
            }))
        }))
    }

    /// The item with identity `key`, from a list no older than `max_age`, fetching the list when needed.
    /// `identity` maps each listed item to its key.
    ///
    /// # Errors
    /// The fetch's error, when a fetch was needed and failed.
    pub async fn get<F, Fut>(
        &self,
        scope: &Scope,
        key: &str,
        max_age: Duration,
        identity: impl Fn(&T) -> String,
        fetch: F,
    ) -> Result<Option<T>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<T>, ApiError>>,
    {
        let entry = self.entry(scope);
        let mut guard = entry.lock().await;
        let fresh = guard.fetched_at.is_some_and(|at| at.elapsed() <= max_age);
        if !fresh {
            let items = fetch().await?;
            guard.items = Arc::new(
                items
                    .into_iter()
                    .map(|item| (identity(&item), item))
                    .collect(),
            );
            guard.fetched_at = Some(Instant::now());
        }
        Ok(guard.items.get(key).cloned())
    }

    /// Records the result of one of our writes: `Some(item)` puts it, `None` removes the key.
    /// Does nothing for a scope never listed (the next reader lists anyway).
    pub async fn write_through(&self, scope: &Scope, key: &str, item: Option<T>) {
        let entry = self.entry(scope);
        let mut guard = entry.lock().await;
        if guard.fetched_at.is_none() {
            return;
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
        entry.lock().await.fetched_at = None;
    }
}

/// The case-folded identity of an e-mail address.
#[must_use]
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// `email_key(a) == email_key(b)`, without allocating for ASCII addresses (the common case).
#[must_use]
pub fn same_email(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        email_key(a) == email_key(b)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::blaxel::ApiKey;

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
                        Clone::clone,
                        || async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok((0..5).map(|n| format!("u{n}")).collect())
                        },
                    )
                    .await
            })
        });
        for r in futures::future::join_all(readers).await {
            assert!(r.unwrap().unwrap().is_some());
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
                    Ok(vec!["x".to_owned()])
                };
                let ten_seconds = Duration::from_secs(10);
                cache
                    .get(&scope(ws), "x", ten_seconds, Clone::clone, fetch)
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
            Ok(Vec::new())
        };
        assert_eq!(
            cache
                .get(&scope("a"), "new", Duration::MAX, Clone::clone, fetch)
                .await
                .unwrap(),
            None
        );
        cache
            .write_through(&scope("a"), "new", Some("new".into()))
            .await;
        assert_eq!(
            cache
                .get(&scope("a"), "new", Duration::MAX, Clone::clone, fetch)
                .await
                .unwrap()
                .as_deref(),
            Some("new")
        );
        cache.write_through(&scope("a"), "new", None).await;
        assert_eq!(
            cache
                .get(&scope("a"), "new", Duration::MAX, Clone::clone, fetch)
                .await
                .unwrap(),
            None
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        cache.invalidate(&scope("a")).await;
        cache
            .get(&scope("a"), "new", Duration::MAX, Clone::clone, fetch)
            .await
            .unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    /// `same_email` agrees with comparing `email_key`s.
    #[test]
    fn same_email_matches_email_key() {
        let cases = [
            ("Alice@Example.com", " alice@example.COM "),
            ("alice@example.com", "alicia@example.com"),
            ("ÉLODIE@example.com", "élodie@example.com"),
            ("élodie@example.com", "elodie@example.com"),
        ];
        for (a, b) in cases {
            assert_eq!(same_email(a, b), email_key(a) == email_key(b), "{a} vs {b}");
        }
    }

    /// A failed fetch is reported and leaves the scope unlisted.
    #[tokio::test]
    async fn failed_fetch_is_not_cached() {
        let cache = ListCache::<String>::default();
        let err = cache
            .get(&scope("a"), "x", Duration::MAX, Clone::clone, || async {
                Err(ApiError::Unavailable {
                    message: "down".into(),
                    retry_after: None,
                })
            })
            .await;
        assert!(err.is_err());
        let ok = cache
            .get(&scope("a"), "x", Duration::MAX, Clone::clone, || async {
                Ok(vec!["x".to_owned()])
            })
            .await;
        assert_eq!(ok.unwrap().as_deref(), Some("x"));
    }
}
