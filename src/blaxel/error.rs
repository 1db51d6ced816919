//! Typed remote errors. Reconcilers match on variants, never on message text.

use std::time::Duration;

/// What went wrong talking to Blaxel. Messages come from the remote error body and never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404: the object (or, on an older/newer API, the route) does not exist.
    #[error("not found: {message}")]
    NotFound {
        /// The remote message.
        message: String,
    },
    /// 409: the object already exists, or is already in the requested state.
    #[error("conflict: {message}")]
    Conflict {
        /// The remote message.
        message: String,
    },
    /// 401: the API key is missing, unknown or revoked.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// The remote message.
        message: String,
    },
    /// 403: the key may not act in this workspace.
    #[error("forbidden: {message}")]
    Forbidden {
        /// The remote message.
        message: String,
    },
    /// 429: too many requests; wait at least `retry_after` when the server said so.
    #[error("rate limited by the Blaxel API")]
    RateLimited {
        /// The server's `Retry-After` / `Retry-After-Ms`, when given.
        retry_after: Option<Duration>,
    },
    /// 400/422 and other 4xx: the request was refused as invalid; retrying the same request cannot help.
    #[error("invalid request: {message}")]
    Invalid {
        /// The remote message.
        message: String,
    },
    /// 5xx, timeouts and connection failures: worth retrying later.
    #[error("Blaxel API unavailable: {message}")]
    Unavailable {
        /// What failed (status or connection error kind).
        message: String,
        /// The server's `Retry-After`, when given with a 503.
        retry_after: Option<Duration>,
    },
    /// The answer could not be understood.
    #[error("could not decode the Blaxel API answer: {message}")]
    Decode {
        /// The decoding error.
        message: String,
    },
}

impl ApiError {
    /// True when the same request may succeed later without any change by a person.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Unavailable { .. } | Self::Decode { .. }
        )
    }

    /// A stable, low-cardinality name for metric labels and Event reasons.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "NotFound",
            Self::Conflict { .. } => "Conflict",
            Self::Unauthorized { .. } => "Unauthorized",
            Self::Forbidden { .. } => "Forbidden",
            Self::RateLimited { .. } => "RateLimited",
            Self::Invalid { .. } => "Invalid",
            Self::Unavailable { .. } => "Unavailable",
            Self::Decode { .. } => "Decode",
        }
    }

    /// The least time to wait before trying again, when the server said so.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}
