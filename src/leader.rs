//! Leader election on a `coordination.k8s.io/v1` Lease, and the fence that keeps a replica that is not
//! (or no longer) the leader from writing to Blaxel.
//!
//! # Protocol
//! - Every write to the Lease is a `create` or a `replace` carrying the `resourceVersion` last read, so two
//!   replicas can never both win the same round (optimistic concurrency: the loser gets 409).
//! - The holder renews every [`LeaderConfig::renew_every`]. Its **fence deadline** is the instant it *sent*
//!   its last successful renew plus `leaseDuration - margin`, measured on its own monotonic clock.
//! - A standby never trusts another replica's wall-clock timestamps: it takes over only after the Lease
//!   record (its `resourceVersion`) has stayed unchanged for the holder's `leaseDurationSeconds` as measured
//!   on *its own* monotonic clock since it first saw that record, or at once if the record names no holder
//!   (a released lease).
//!
//! # Fencing guarantee
//! The standby first saw the record at or after the moment the holder sent the renew that produced it, so
//! the standby can take over no earlier than `sent + leaseDuration` while the old holder stops at
//! `sent + leaseDuration - margin`: the two never write at the same time, given clocks that run at about
//! the same *rate* (no synchronised wall clocks are needed). The fence is checked by the Blaxel client before
//! every remote write ([`crate::blaxel::HttpClient::set_write_fence`]), and a write still running at the deadline is abandoned at the deadline; whatever
//! request bytes were already on the wire when it was abandoned are the one thing the margin must cover.
//!
//! When leadership is lost the operator process exits with an error (see [`crate::ops`]); the Deployment
//! restarts it, and it comes back as a standby. A graceful shutdown releases the lease after the
//! controllers have stopped, so the standby takes over at once instead of waiting for expiry.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::time::Instant;

pub use crate::blaxel::fence::Fence;

/// How a replica takes part in the election.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    /// The Lease's name.
    pub lease_name: String,
    /// The Lease's namespace.
    pub lease_namespace: String,
    /// Who this replica is (unique per process).
    pub identity: String,
    /// How long a lease is valid after its last renew.
    pub lease_duration: Duration,
}

impl LeaderConfig {
    /// The pause between two renew attempts (a third of the lease: two renews may fail before the fence
    /// closes).
    #[must_use]
    pub fn renew_every(&self) -> Duration {
        self.lease_duration / 3
    }

    /// How long before the lease's expiry the holder stops writing (a fifth of the lease).
    #[must_use]
    pub fn margin(&self) -> Duration {
        self.lease_duration / 5
    }
}

/// A unique identity: `POD_NAME` (else the hostname) and a random suffix, so a restarted process never
/// mistakes its predecessor's lease for its own.
#[must_use]
pub fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "blaxel-operator".to_owned());
    format!(
        "{base}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// What a replica should do with the Lease it just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It holds the lease: renew it.
    Renew,
    /// The lease is free or expired by this replica's own observation: take it.
    Acquire,
    /// Someone else holds a live lease: stand by.
    Wait,
}

/// The pure election rule.
///
/// `holder` and `holder_duration` come from the Lease record; `unchanged_since` is when this replica first
/// saw this exact record (same `resourceVersion`) on its own clock.
#[must_use]
pub fn decide(
    holder: Option<&str>,
    holder_duration: Duration,
    unchanged_since: Instant,
    me: &str,
    now: Instant,
) -> Decision {
    match holder {
        Some(h) if h == me => Decision::Renew,
        None | Some("") => Decision::Acquire,
        Some(_) if now.saturating_duration_since(unchanged_since) >= holder_duration => {
            Decision::Acquire
        }
        Some(_) => Decision::Wait,
    }
}

/// The instant until which a holder may write after a renew it sent at `sent`.
#[must_use]
pub fn fence_deadline(sent: Instant, config: &LeaderConfig) -> Instant {
    sent + config.lease_duration.saturating_sub(config.margin())
}

/// The Lease record as last read, and when this replica first saw it.
#[derive(Debug, Clone)]
struct Seen {
    version: Option<String>,
    since: Instant,
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    config: LeaderConfig,
    fence: Fence,
    seen: Option<Seen>,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lease_seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

impl Elector {
    /// An elector for `config`, with a closed fence.
    #[must_use]
    pub fn new(client: kube::Client, config: LeaderConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.lease_namespace),
            config,
            fence: Fence::closed(),
            seen: None,
        }
    }

    /// The fence this elector opens while it holds the lease.
    #[must_use]
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &LeaderConfig {
        &self.config
    }

    fn record(&self, previous: Option<&LeaseSpec>, now: jiff::Timestamp) -> LeaseSpec {
        let mut spec = previous.cloned().unwrap_or_default();
        let transition = spec.holder_identity.as_deref() != Some(self.config.identity.as_str());
        if transition {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(
                spec.lease_transitions
                    .unwrap_or(0)
                    .saturating_add(i32::from(previous.is_some())),
            );
        }
        spec.holder_identity = Some(self.config.identity.clone());
        spec.lease_duration_seconds = Some(lease_seconds(self.config.lease_duration));
        spec.renew_time = Some(MicroTime(now));
        spec
    }

    /// One round: read the Lease, decide, and create/renew/acquire it when the rule says so. Returns whether
    /// this replica holds the lease now; opens the fence until the new deadline on success.
    ///
    /// # Errors
    /// The Kubernetes API error (a lost race is not an error: it returns `Ok(false)`).
    pub async fn round(&mut self) -> Result<bool, kube::Error> {
        let sent = Instant::now();
        let Some(lease) = self.api.get_opt(&self.config.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.lease_name.clone()),
                    namespace: Some(self.config.lease_namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.record(None, jiff::Timestamp::now())),
            };
            let won = self.write(self.api.create(&PostParams::default(), &lease).await, sent)?;
            if won {
                tracing::info!(lease = %self.config.lease_name, identity = %self.config.identity, "created and acquired the leader lease");
            }
            return Ok(won);
        };
        let now = Instant::now();
        let version = lease.metadata.resource_version.clone();
        let since = match &self.seen {
            Some(seen) if seen.version == version => seen.since,
            _ => now,
        };
        self.seen = Some(Seen { version, since });
        let spec = lease.spec.clone().unwrap_or_default();
        let holder_duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        )
        .max(Duration::from_secs(1));
        match decide(
            spec.holder_identity.as_deref(),
            holder_duration,
            since,
            &self.config.identity,
            now,
        ) {
            Decision::Wait => Ok(false),
            Decision::Renew | Decision::Acquire => {
                let mut next = lease.clone();
                next.spec = Some(self.record(Some(&spec), jiff::Timestamp::now()));
                let result = self
                    .api
                    .replace(&self.config.lease_name, &PostParams::default(), &next)
                    .await;
                if result.is_ok() && spec.holder_identity.as_deref() != Some(&self.config.identity)
                {
                    tracing::info!(
                        lease = %self.config.lease_name,
                        previous = spec.holder_identity.as_deref().unwrap_or(""),
                        identity = %self.config.identity,
                        "acquired the leader lease"
                    );
                }
                self.write(result, sent)
            }
        }
    }

    /// Opens the fence after a successful write sent at `sent` (returns true); a 409 (someone else wrote
    /// first) is a lost race, not an error (returns false and leaves the fence at its current deadline,
    /// which the winner's own wait has already outlasted).
    fn write(
        &mut self,
        result: Result<Lease, kube::Error>,
        sent: Instant,
    ) -> Result<bool, kube::Error> {
        match result {
            Ok(lease) => {
                self.seen = Some(Seen {
                    version: lease.metadata.resource_version,
                    since: Instant::now(),
                });
                self.fence.set(Some(fence_deadline(sent, &self.config)));
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&mut self) {
        let mut waiting_logged = false;
        loop {
            let started = Instant::now();
            match self.round().await {
                Ok(true) => return,
                Ok(false) if !waiting_logged => {
                    tracing::info!(lease = %self.config.lease_name, identity = %self.config.identity, "standing by: another replica holds the leader lease");
                    waiting_logged = true;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: cannot read or write the Lease");
                }
            }
            // The election's own schedule (not a synchronisation sleep).
            tokio::time::sleep_until(started + self.config.renew_every()).await;
        }
    }

    /// Keeps renewing while this replica holds the lease; resolves when leadership is lost: the lease was
    /// taken by another replica, or no renew succeeded before the fence deadline.
    pub async fn hold(&mut self) {
        loop {
            let Some(deadline) = self.fence.deadline() else {
                return;
            };
            let next = Instant::now() + self.config.renew_every();
            tokio::time::sleep_until(next.min(deadline)).await;
            if Instant::now() >= deadline {
                break;
            }
            // A renew still running at the deadline is pointless: the fence has closed by then.
            match tokio::time::timeout_at(deadline, self.round()).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    // Another replica holds the lease now.
                    self.fence.set(None);
                    break;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "leader election: renew failed; retrying");
                }
                Err(_) => break,
            }
        }
        self.fence.set(None);
        tracing::error!(lease = %self.config.lease_name, identity = %self.config.identity, "lost the leader lease");
    }

    /// Gives the lease up (after the controllers have stopped), so a standby takes over without waiting
    /// for expiry. Best effort: a failure only delays the handover by one lease duration.
    pub async fn release(&mut self) {
        self.fence.set(None);
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.lease_name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.config.lease_name, "released the leader lease"),
            Err(e) => tracing::warn!(error = %e, "could not release the leader lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn config() -> LeaderConfig {
        LeaderConfig {
            lease_name: "l".into(),
            lease_namespace: "ns".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
        }
    }

    /// The holder renews; a free or released lease is taken at once.
    #[test]
    fn renew_own_and_take_free() {
        let now = Instant::now();
        let d = Duration::from_secs(15);
        assert_eq!(decide(Some("me"), d, now, "me", now), Decision::Renew);
        assert_eq!(decide(None, d, now, "me", now), Decision::Acquire);
        assert_eq!(decide(Some(""), d, now, "me", now), Decision::Acquire);
    }

    /// A standby waits a full lease duration of its *own* observation of an unchanged record.
    #[test]
    fn standby_waits_for_expiry_by_own_clock() {
        let seen = Instant::now();
        let d = Duration::from_secs(15);
        assert_eq!(
            decide(Some("other"), d, seen, "me", seen + Duration::from_secs(14)),
            Decision::Wait
        );
        assert_eq!(
            decide(Some("other"), d, seen, "me", seen + d),
            Decision::Acquire
        );
    }

    /// The old holder's fence closes strictly before the earliest takeover by a standby.
    #[test]
    fn fence_closes_before_takeover() {
        let c = config();
        let sent = Instant::now();
        // The standby sees the renewed record no earlier than it was sent.
        let earliest_takeover = sent + c.lease_duration;
        assert!(fence_deadline(sent, &c) + c.margin() <= earliest_takeover);
        assert!(fence_deadline(sent, &c) < earliest_takeover);
        assert!(c.renew_every() * 2 < c.lease_duration.saturating_sub(c.margin()));
    }

    /// A closed fence refuses writes; an open one allows them until its deadline; `open()` always allows.
    #[tokio::test(start_paused = true)]
    async fn fence_follows_deadline() {
        let f = Fence::closed();
        assert!(!f.may_write());
        f.set(Some(Instant::now() + Duration::from_secs(2)));
        assert!(f.may_write());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!f.may_write());
        assert!(Fence::open().may_write());
    }

    /// Identities are unique per process start.
    #[test]
    fn identities_differ() {
        assert_ne!(default_identity(), default_identity());
    }
}
