//! Error answers. The API has two error bodies and the simulator reproduces both:
//!
//! - the general one, `{error, code, message}`: `error` a short name of the kind of error, `code` the HTTP
//!   status as an integer, `message` a human-readable explanation;
//! - the one `POST /sandboxes` answers with, `{code, message, details, sandbox_name, status_code, step,
//!   timestamp, workspace}`: there `code` is a stable string such as `SANDBOX_ALREADY_EXISTS`.
//!
//! Which one a request gets depends only on its route ([`ErrorShape::for_route`]), so middleware (auth,
//! rate limiting, injected faults) and handlers answer the same route with the same shape.

use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which error body a route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{error, code, message}`.
    Standard,
    /// The create-sandbox body (`SandboxError`).
    SandboxCreate,
}

impl ErrorShape {
    /// The shape of errors for a request, by method and path.
    #[must_use]
    pub fn for_route(method: &Method, path: &str) -> Self {
        if method == Method::POST && path.trim_end_matches('/') == "/v0/sandboxes" {
            Self::SandboxCreate
        } else {
            Self::Standard
        }
    }
}

/// A typed API error; rendered as JSON with the right status, shape and headers.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine code (used as `code` in the create-sandbox shape).
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Which body to render.
    pub shape: ErrorShape,
    /// For 429: how long the client should wait.
    pub retry_after: Option<Duration>,
    /// Extra context for the create-sandbox shape.
    pub sandbox: Option<Box<SandboxErrorContext>>,
}

/// Context the create-sandbox error body carries.
#[derive(Debug, Clone, Default)]
pub struct SandboxErrorContext {
    /// `sandbox_name`.
    pub sandbox_name: Option<String>,
    /// `workspace`.
    pub workspace: Option<String>,
    /// `timestamp` (RFC 3339).
    pub timestamp: Option<String>,
    /// `step`.
    pub step: Option<&'static str>,
    /// `details`.
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with a status, a stable code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            shape: ErrorShape::Standard,
            retry_after: None,
            sandbox: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 409 Conflict.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413 Payload Too Large.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 429 Too Many Requests, with the wait the client must honour.
    pub fn rate_limited(wait: Duration) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!("rate limit exceeded, retry in {} ms", wait.as_millis()),
        );
        e.retry_after = Some(wait);
        e
    }

    /// Renders with the given shape.
    #[must_use]
    pub fn with_shape(mut self, shape: ErrorShape) -> Self {
        self.shape = shape;
        self
    }

    /// Adds create-sandbox context (and switches to that shape).
    #[must_use]
    pub fn with_sandbox(mut self, ctx: SandboxErrorContext) -> Self {
        self.shape = ErrorShape::SandboxCreate;
        self.sandbox = Some(Box::new(ctx));
        self
    }

    /// The JSON body this error renders to.
    #[must_use]
    pub fn body(&self) -> Value {
        match self.shape {
            ErrorShape::Standard => json!({
                "error": self.status.canonical_reason().unwrap_or("Error"),
                "code": self.status.as_u16(),
                "message": self.message,
            }),
            ErrorShape::SandboxCreate => {
                let ctx = self.sandbox.as_deref().cloned().unwrap_or_default();
                let mut body = json!({
                    "code": self.code,
                    "message": self.message,
                    "status_code": self.status.as_u16(),
                    "details": ctx.details.unwrap_or_else(|| json!({})),
                    "step": ctx.step.unwrap_or("validate_and_prepare"),
                });
                if let Value::Object(m) = &mut body {
                    if let Some(n) = ctx.sandbox_name {
                        m.insert("sandbox_name".into(), Value::String(n));
                    }
                    if let Some(w) = ctx.workspace {
                        m.insert("workspace".into(), Value::String(w));
                    }
                    if let Some(t) = ctx.timestamp {
                        m.insert("timestamp".into(), Value::String(t));
                    }
                }
                body
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if let Some(wait) = self.retry_after {
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            // Retry-After is whole seconds (rounded up, at least 1); Retry-After-Ms is what Blaxel's SDK prefers.
            let secs = ms.div_ceil(1000).max(1);
            let h = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
            if let Ok(v) = HeaderValue::from_str(&ms.to_string()) {
                h.insert("retry-after-ms", v);
            }
        }
        resp
    }
}

/// Why `run` could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A setting is invalid.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("simulator server failed: {0}")]
    Serve(#[from] std::io::Error),
}
