//! The mass-removal guard: at most `--removal-limit` remote removals (a member removed or an invitation
//! revoked, a sandbox deleted) per workspace within `--removal-window`; the rest wait for a person.
//!
//! Deleting a namespace, the CRDs, or an Argo CD application that prunes, while the operator runs,
//! would otherwise remove every member and delete every sandbox of a workspace at once. Past the limit
//! a removal is held: the object reports Stalled `RemovalLimitReached` with a Warning Event, and keeps
//! its finalizer until the window has room again, a person confirms this object's removal with the
//! annotation `blaxel.ai/confirm-removal: "true"`, or the limit is raised. A limit of 0 turns the
//! guard off.
//!
//! The count survives restarts: each removal is recorded (wall-clock seconds, per workspace) in the
//! ConfigMap `blaxel-operator-removals` of the operator's namespace *before* the removal is sent, so a
//! crash-looping operator cannot let another batch through at every start. When the record cannot be
//! written, the removal waits (fail closed).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Resource};
use prometheus_client::metrics::counter::Counter;

/// Annotation: `"true"` confirms this object's remote removal past the guard's limit.
pub const CONFIRM_ANNOTATION: &str = "blaxel.ai/confirm-removal";
/// The ConfigMap holding the recent removals, in the operator's namespace.
pub const STORE_NAME: &str = "blaxel-operator-removals";
/// Its data key: JSON `{"<workspace>": [{"at": <unix seconds>, "uid": "<object uid>"}, ...]}`.
const STORE_KEY: &str = "removals.json";

/// One removal: when it was first let through, and for which object. An object's retries (its
/// removal failed and is tried again) are the same removal and take no second place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Removal {
    /// Unix seconds.
    pub at: i64,
    /// The object's uid.
    pub uid: String,
}

/// Recent removals per workspace, oldest first.
type Log = BTreeMap<String, Vec<Removal>>;

/// A removal the guard did not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// The workspace reached its limit within the window.
    Limit {
        /// Removals already made in the workspace within the window.
        recent: usize,
        /// When the window has room again.
        retry_in: Duration,
    },
    /// The record of removals could not be read or written; nothing is removed until it can be.
    Unrecorded(String),
}

/// Where the log is kept: the ConfigMap [`STORE_NAME`] in one namespace.
#[derive(Clone)]
pub struct Store {
    api: Api<ConfigMap>,
}

impl Store {
    /// The store in `namespace`.
    #[must_use]
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
        }
    }
}

/// Recent removals per workspace, and the limit they are held to.
pub struct RemovalGuard {
    limit: u32,
    window: Duration,
    store: Option<Store>,
    /// The log as last read or written, with the ConfigMap's resourceVersion; `None` until first read.
    /// Held across the read-check-write, so removals are decided one at a time.
    state: tokio::sync::Mutex<Option<(Log, Option<String>)>>,
    held: Counter,
}

impl std::fmt::Debug for RemovalGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemovalGuard")
            .field("limit", &self.limit)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// Takes the removal of the object `uid` at `now` (unix seconds) from a workspace's `recent`
/// removals: through when already counted within `window` (a retry), when under `limit`, or when
/// `confirmed`; else held. Pure: the guard's whole rule.
///
/// # Errors
/// [`Hold::Limit`] when the workspace reached its limit and the removal is not confirmed.
pub fn take_from(
    recent: &mut Vec<Removal>,
    now: i64,
    uid: &str,
    window: Duration,
    limit: u32,
    confirmed: bool,
) -> Result<(), Hold> {
    let window_secs = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    recent.retain(|r| now.saturating_sub(r.at) < window_secs);
    if !uid.is_empty() && recent.iter().any(|r| r.uid == uid) {
        return Ok(());
    }
    if !confirmed && recent.len() >= limit as usize {
        let oldest = recent.first().map_or(now, |r| r.at);
        let left = window_secs.saturating_sub(now.saturating_sub(oldest));
        return Err(Hold::Limit {
            recent: recent.len(),
            retry_in: Duration::from_secs(u64::try_from(left).unwrap_or(0).max(1)),
        });
    }
    recent.push(Removal {
        at: now,
        uid: uid.to_owned(),
    });
    Ok(())
}

impl RemovalGuard {
    /// A guard allowing `limit` removals per workspace per `window` (0: no limit), recorded in `store`
    /// (`None`: in memory only, for tests of one process); `held` counts the removals it holds back.
    #[must_use]
    pub fn new(limit: u32, window: Duration, held: Counter, store: Option<Store>) -> Self {
        Self {
            limit,
            window,
            store,
            state: tokio::sync::Mutex::new(None),
            held,
        }
    }

    /// Takes one removal in `workspace` for `obj` (of `subject`, when one object removes several
    /// things: a Workspace's unmanaged members): through when under the limit or confirmed on the
    /// object (and recorded before it is made), else held.
    ///
    /// # Errors
    /// [`Hold`]: the limit is reached, or the record could not be kept.
    pub async fn take<K: Resource>(
        &self,
        workspace: &str,
        obj: &K,
        subject: &str,
    ) -> Result<(), Hold> {
        if self.limit == 0 {
            return Ok(());
        }
        let confirmed = obj
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(CONFIRM_ANNOTATION))
            .is_some_and(|v| v == "true");
        let mut state = self.state.lock().await;
        // A write that lost a race (another replica, a stale resourceVersion) is read again, once.
        for _ in 0..2 {
            let (log, version) = match &*state {
                Some(known) => known.clone(),
                None => self.load().await?,
            };
            let mut next = log;
            let now = jiff::Timestamp::now().as_second();
            let uid = match (obj.meta().uid.as_deref(), subject) {
                (Some(uid), "") => uid.to_owned(),
                (Some(uid), subject) => format!("{uid}/{subject}"),
                (None, _) => String::new(),
            };
            let uid = uid.as_str();
            let recent = next.entry(workspace.to_owned()).or_default();
            if let Err(hold) = take_from(recent, now, uid, self.window, self.limit, confirmed) {
                // Kept as read (less what the window dropped): a held removal reads nothing again.
                *state = Some((next, version));
                self.held.inc();
                return Err(hold);
            }
            next.retain(|_, recent| !recent.is_empty());
            match self.save(&next, version.as_deref()).await {
                Ok(saved) => {
                    *state = Some((next, saved));
                    return Ok(());
                }
                // Changed or deleted since it was read (by another replica, or by hand): read it
                // again on the next round.
                Err(SaveError::Stale) => *state = None,
                Err(SaveError::Other(e)) => return Err(Hold::Unrecorded(e)),
            }
        }
        Err(Hold::Unrecorded(
            "the removal record kept changing under this operator".to_owned(),
        ))
    }

    async fn load(&self) -> Result<(Log, Option<String>), Hold> {
        let Some(store) = &self.store else {
            return Ok((Log::new(), None));
        };
        let found = store
            .api
            .get_opt(STORE_NAME)
            .await
            .map_err(|e| Hold::Unrecorded(format!("reading ConfigMap {STORE_NAME}: {e}")))?;
        let Some(map) = found else {
            return Ok((Log::new(), None));
        };
        // An unreadable record is treated as empty only if it is absent; otherwise it is an error, so
        // a corrupted record never resets the count.
        let log = match map.data.as_ref().and_then(|d| d.get(STORE_KEY)) {
            None => Log::new(),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                Hold::Unrecorded(format!(
                    "ConfigMap {STORE_NAME} holds no readable record: {e}"
                ))
            })?,
        };
        Ok((log, map.metadata.resource_version))
    }

    async fn save(&self, log: &Log, version: Option<&str>) -> Result<Option<String>, SaveError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let text = serde_json::to_string(log).map_err(|e| SaveError::Other(e.to_string()))?;
        let map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(STORE_NAME.to_owned()),
                resource_version: version.map(ToOwned::to_owned),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/part-of".to_owned(),
                    "blaxel-operator".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(STORE_KEY.to_owned(), text)])),
            ..ConfigMap::default()
        };
        let params = PostParams::default();
        let written = match version {
            None => store.api.create(&params, &map).await,
            Some(_) => store.api.replace(STORE_NAME, &params, &map).await,
        };
        match written {
            Ok(map) => Ok(map.metadata.resource_version),
            // 409: written since; 404: deleted since (a replace of a ConfigMap that is gone).
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Err(SaveError::Stale),
            Err(e) => Err(SaveError::Other(format!(
                "writing ConfigMap {STORE_NAME}: {e}"
            ))),
        }
    }

    /// The condition message for a held removal.
    #[must_use]
    pub fn message(&self, workspace: &str, hold: &Hold) -> String {
        match hold {
            Hold::Limit { recent, retry_in } => format!(
                "{recent} remote removals in workspace {workspace} within {} reached --removal-limit {}; \
                 this one waits (about {}s) unless annotated {CONFIRM_ANNOTATION}=\"true\" or the limit \
                 is raised",
                humantime::format_duration(self.window),
                self.limit,
                retry_in.as_secs().max(1),
            ),
            Hold::Unrecorded(why) => format!(
                "the removal could not be recorded ({why}); it waits, since an unrecorded removal would \
                 escape --removal-limit after a restart"
            ),
        }
    }
}

enum SaveError {
    /// The record changed or went since it was read.
    Stale,
    Other(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn obj(confirmed: bool) -> ConfigMap {
        let annotations =
            confirmed.then(|| BTreeMap::from([(CONFIRM_ANNOTATION.to_owned(), "true".to_owned())]));
        ConfigMap {
            metadata: ObjectMeta {
                annotations,
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    fn member(uid: &str, confirmed: bool) -> ConfigMap {
        let mut o = obj(confirmed);
        o.metadata.uid = Some(uid.to_owned());
        o
    }

    /// A guard of `limit` removals an hour, its record in namespace `ops` of `kube`.
    fn guard(kube: &crate::reconcile::testing::FakeKube, limit: u32) -> RemovalGuard {
        RemovalGuard::new(
            limit,
            Duration::from_secs(3600),
            Counter::default(),
            Some(Store::new(kube.client(), "ops")),
        )
    }

    /// The count lives in the ConfigMap, labelled as the operator's: a guard made anew (a restart)
    /// holds what the last one counted; a confirmed removal still goes through.
    #[tokio::test]
    async fn the_count_survives_a_restart() {
        let kube = crate::reconcile::testing::FakeKube::default();
        guard(&kube, 1)
            .take("acme", &member("u1", false), "")
            .await
            .unwrap();
        let stored = kube.config_map("ops", STORE_NAME).unwrap();
        assert_eq!(
            stored["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "blaxel-operator"
        );
        assert!(stored["data"][STORE_KEY].as_str().unwrap().contains("u1"));
        let restarted = guard(&kube, 1);
        let held = restarted.take("acme", &member("u2", false), "").await;
        assert!(matches!(held, Err(Hold::Limit { recent: 1, .. })));
        assert!(
            restarted
                .take("acme", &member("u3", true), "")
                .await
                .is_ok(),
            "a confirmed removal goes through"
        );
    }

    /// Two guards (replicas) on one record: a write on a record changed since it was read is refused,
    /// and the record read again, so neither count is lost.
    #[tokio::test]
    async fn a_record_changed_since_it_was_read_is_read_again() {
        let kube = crate::reconcile::testing::FakeKube::default();
        let (a, b) = (guard(&kube, 2), guard(&kube, 2));
        a.take("acme", &member("u1", false), "").await.unwrap();
        b.take("acme", &member("u2", false), "").await.unwrap();
        let third = a.take("acme", &member("u3", false), "").await;
        assert!(
            matches!(third, Err(Hold::Limit { recent: 2, .. })),
            "{third:?}"
        );
    }

    /// A record deleted by hand since it was read is written anew; one that cannot be read holds every
    /// removal (a corrupted record never resets the count).
    #[tokio::test]
    async fn a_deleted_record_is_made_again_and_a_corrupt_one_holds() {
        let kube = crate::reconcile::testing::FakeKube::default();
        let g = guard(&kube, 5);
        g.take("acme", &member("u1", false), "").await.unwrap();
        kube.set_config_map("ops", STORE_NAME, None);
        g.take("acme", &member("u2", false), "").await.unwrap();
        let made_again = kube.config_map("ops", STORE_NAME).unwrap();
        assert!(
            made_again["data"][STORE_KEY]
                .as_str()
                .unwrap()
                .contains("u2")
        );
        let mut corrupt = made_again;
        corrupt["data"][STORE_KEY] = serde_json::json!("not a record");
        kube.set_config_map("ops", STORE_NAME, Some(corrupt));
        let held = guard(&kube, 5).take("acme", &member("u3", false), "").await;
        assert!(matches!(held, Err(Hold::Unrecorded(_))), "{held:?}");
    }

    /// Past the limit removals are held until the window has room; a confirmed one goes through and
    /// counts; an object's retry takes no second place.
    #[test]
    fn removals_past_the_limit_are_held() {
        let mut recent = Vec::new();
        assert!(take_from(&mut recent, 1000, "a", MINUTE, 2, false).is_ok());
        assert!(
            take_from(&mut recent, 1005, "a", MINUTE, 2, false).is_ok(),
            "a's retry"
        );
        assert!(take_from(&mut recent, 1010, "b", MINUTE, 2, false).is_ok());
        assert_eq!(
            take_from(&mut recent, 1010, "c", MINUTE, 2, false),
            Err(Hold::Limit {
                recent: 2,
                retry_in: Duration::from_secs(50)
            })
        );
        assert!(
            take_from(&mut recent, 1010, "b", MINUTE, 2, false).is_ok(),
            "b's retry"
        );
        assert!(
            take_from(&mut recent, 1020, "d", MINUTE, 2, true).is_ok(),
            "confirmed"
        );
        assert!(
            take_from(&mut recent, 1060, "e", MINUTE, 2, false).is_err(),
            "the confirmed one counts too"
        );
        assert!(
            take_from(&mut recent, 1070, "e", MINUTE, 2, false).is_ok(),
            "the window moved on"
        );
    }

    /// The in-memory guard: per workspace, and a limit of 0 holds nothing.
    #[tokio::test]
    async fn per_workspace_and_zero_is_no_limit() {
        let counted = Counter::default();
        let guard = RemovalGuard::new(1, MINUTE, counted.clone(), None);
        assert!(guard.take("a", &obj(false), "").await.is_ok());
        let hold = guard.take("a", &obj(false), "").await.unwrap_err();
        assert!(guard.message("a", &hold).contains(CONFIRM_ANNOTATION));
        assert_eq!(counted.get(), 1);
        assert!(
            guard.take("b", &obj(false), "").await.is_ok(),
            "per workspace"
        );
        let off = RemovalGuard::new(0, MINUTE, Counter::default(), None);
        for _ in 0..100 {
            assert!(off.take("a", &obj(false), "").await.is_ok());
        }
    }
}
