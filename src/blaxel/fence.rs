//! The write fence: whether this replica may write to Blaxel now (leader election, see
//! [`crate::leader`]). The HTTP client checks it before every request but a `GET`.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use super::error::ApiError;

/// Whether this replica may write now: open until a deadline, closed otherwise. Cheap to clone; clones
/// share the deadline.
#[derive(Debug, Clone, Default)]
pub struct Fence {
    deadline: Arc<Mutex<Option<Instant>>>,
    always_open: bool,
}

impl Fence {
    /// A fence that is always open (no leader election: the single replica always writes).
    #[must_use]
    pub fn open() -> Self {
        Self {
            deadline: Arc::default(),
            always_open: true,
        }
    }

    /// A closed fence, opened by [`crate::leader::Elector`] renews.
    #[must_use]
    pub fn closed() -> Self {
        Self::default()
    }

    /// Until when writes are allowed (`None`: not now). Always-open fences have no deadline.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when a write may start now.
    #[must_use]
    pub fn may_write(&self) -> bool {
        self.always_open || self.deadline().is_some_and(|d| Instant::now() < d)
    }

    /// Sets the deadline (the elector, after each renew or on loss).
    pub(crate) fn set(&self, deadline: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = deadline;
    }
}

impl Fence {
    /// Runs `write` if the fence is open now, abandoning it at the fence deadline; refuses it (an
    /// `Unavailable` error, retried by the caller like any transient failure) otherwise.
    ///
    /// # Errors
    /// `write`'s own error, or the refusal.
    pub async fn guard<T>(
        &self,
        write: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        if self.always_open {
            return write.await;
        }
        let Some(deadline) = self.deadline().filter(|d| Instant::now() < *d) else {
            return Err(not_leader());
        };
        tokio::time::timeout_at(deadline, write)
            .await
            .unwrap_or_else(|_| Err(not_leader()))
    }
}

fn not_leader() -> ApiError {
    ApiError::Unavailable {
        message: "this replica does not hold the leader lease; remote writes are fenced".to_owned(),
        retry_after: None,
    }
}
