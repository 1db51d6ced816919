//! The HTTP implementation of [`BlaxelApi`]: reqwest (rustls) behind the operator's own traits.
//!
//! This module is the transport, shared by every resource; each resource's calls are in a file of their
//! own ([`users`], [`sandboxes`], [`previews`], [`workspaces`], [`integrations`]), and lists are read in
//! [`listing`].
//!
//! Every request carries `Authorization: Bearer <key>`, `X-Blaxel-Workspace` and `Blaxel-Version:
//! 2026-04-28` (so today's API paginates `GET /sandboxes`; the 2025 API ignores the header and answers a
//! bare array; both are read). Each HTTP attempt first waits for a token of its credential's bucket
//! ([`super::ratelimit`]); idempotent requests are retried per [`super::retry`], `POST`s never. Answers
//! become typed [`ApiError`]s in [`super::error_map`], and every error leaves through one gate (`seal`:
//! key scrubbed, then message cut); no reqwest type leaves this module, and no key, token or request body
//! is ever logged. Answer bodies are read in chunks up to [`ClientConfig::max_body_bytes`], and one list
//! walk is bounded in pages and in time ([`ClientConfig::list_deadline`]).
//!
//! Every request but a `GET` passes the write [`Fence`] when one is installed
//! ([`HttpClient::set_write_fence`]): refused outside it, and abandoned at its deadline. Leader election
//! therefore fences every remote write in one place, whatever the resource.

mod integrations;
mod listing;
mod previews;
mod sandboxes;
mod users;
mod workspaces;

pub use previews::{OPERATOR_TOKEN_PREFIX, owner_token_prefix};

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::api::Scope;
use super::error::ApiError;
use super::error_map;
use super::fence::Fence;
use super::power::PowerModes;
use super::ratelimit::{RateLimitStats, RateLimiter};
use super::retry::RetryPolicy;
use super::route::{self, DEFAULT_BASE_URL};
#[cfg(doc)]
use super::{api::BlaxelApi, model::Listing};

/// The API version sent with every request: from this one on `GET /sandboxes` is cursor-paginated.
pub const BLAXEL_VERSION: &str = "2026-04-28";
/// Idle connections kept per host once a burst is over (see `pool_max_idle_per_host` below).
const IDLE_CONNECTIONS: usize = 4;

/// Settings of an [`HttpClient`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// The API's base URL (the caller reads `--api-url` / `BL_API_URL`). Default `https://api.blaxel.ai/v0`.
    pub base_url: String,
    /// Limit for establishing a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Limit for one whole HTTP attempt, answer included. Default 30 s.
    pub request_timeout: Duration,
    /// Sustained requests per second per credential (`--api-rate-limit`). Default 10.
    pub rate_limit: f64,
    /// Requests a credential may send at once after being idle (`--api-burst`). Default 20.
    pub burst: u32,
    /// Retries of idempotent requests. Default 3 attempts, 200 ms base, 10 s cap.
    pub retry: RetryPolicy,
    /// Largest answer body read, in bytes; a longer one is refused (`Decode`, not retried in-process) without
    /// being read further. Default 32 MiB: the largest legitimate answer is the unpaginated member list, and
    /// at ~250 bytes per member 32 MiB holds over 100,000 of them; a 200-item sandbox page (~2 KB each) is
    /// ~0.4 MB. The cap is there so a broken or hostile server cannot grow memory without bound.
    pub max_body_bytes: usize,
    /// Longest time one list walk (every page of `GET /users` or `GET /sandboxes`, rate-limiter waits and
    /// retries included) may take; past it the walk fails (`Unavailable`) rather than return part of the
    /// list. Default 60 s: a workspace of 10,000 sandboxes is 50 pages, a few seconds even rate-limited, so
    /// only a server that never stops announcing more pages (or crawls) gets near it.
    pub list_deadline: Duration,
    /// PEM certificates trusted besides the built-in roots (`--api-ca-file`: a proxy or a private
    /// endpoint signed by a CA of one's own). Default none.
    pub ca_bundle: Option<Vec<u8>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            rate_limit: 10.0,
            burst: 20,
            retry: RetryPolicy::default(),
            max_body_bytes: 32 * 1024 * 1024,
            list_deadline: Duration::from_secs(60),
            ca_bundle: None,
        }
    }
}

/// Why an [`HttpClient`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The base URL is not an absolute `http`/`https` URL.
    #[error("invalid Blaxel API URL {url:?}: {reason}")]
    BaseUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The rate limit is not a positive finite number, or the burst is 0.
    #[error("invalid API rate limit: requests/s must be positive and finite, burst at least 1")]
    RateLimit,
    /// The retry policy allows no attempt at all.
    #[error("invalid retry policy: at least one attempt is needed")]
    Retry,
    /// The answer size limit is 0.
    #[error("invalid answer size limit: at least 1 byte")]
    BodyLimit,
    /// The list time bound is 0.
    #[error("invalid list time bound: it must be positive")]
    ListDeadline,
    /// The extra CA bundle holds no usable PEM certificate.
    #[error("invalid CA bundle: {0}")]
    CaBundle(String),
    /// The HTTP stack could not be set up (TLS roots, ...).
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// The Blaxel API over HTTP. Cheap to clone; clones share connections, rate-limit buckets and the
/// power-control modes learnt so far.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
    max_body_bytes: usize,
    list_deadline: Duration,
    limiter: RateLimiter,
    power: PowerModes,
    observer: OnceLock<AttemptObserver>,
    fence: OnceLock<Fence>,
}

/// One finished HTTP attempt, as told to an [`AttemptObserver`] (for request metrics). Every value is
/// bounded (a route template, a status, an error category): no names, e-mails or credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// `GET`, `PUT`, `POST`, `DELETE`.
    pub method: &'static str,
    /// The route template, e.g. `/sandboxes/{name}`.
    pub route: &'static str,
    /// The HTTP status, when an answer came at all.
    pub status: Option<u16>,
    /// `"Ok"`, or the [`ApiError::category`] of the failure.
    pub outcome: &'static str,
    /// 1 for the first try of a request, 2 for its first retry, ...
    pub attempt: u32,
    /// How long the exchange took (rate-limiter and retry waits excluded).
    pub elapsed: Duration,
}

/// Called after every HTTP attempt; must be quick (it runs on the request path).
pub type AttemptObserver = Arc<dyn Fn(&Attempt) + Send + Sync>;

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("base_url", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

/// One logical request: what to send and how to name it in logs.
struct Call<'a> {
    method: Method,
    /// The route template (`/users/{subOrEmail}`): bounded, and free of e-mails.
    route: &'static str,
    segments: &'a [&'a str],
    query: &'a [(&'a str, &'a str)],
    body: Option<Vec<u8>>,
}

impl<'a> Call<'a> {
    fn new(method: Method, route: &'static str, segments: &'a [&'a str]) -> Self {
        Self {
            method,
            route,
            segments,
            query: &[],
            body: None,
        }
    }

    fn json(mut self, body: &impl serde::Serialize) -> Result<Self, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Invalid {
            message: format!("cannot encode the request body: {e}"),
        })?;
        self.body = Some(bytes);
        Ok(self)
    }
}

impl HttpClient {
    /// Builds a client from `config`.
    ///
    /// # Errors
    /// [`ConfigError`] when the base URL, rate limit or retry policy is unusable, or TLS cannot be set up.
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        let base = Url::parse(config.base_url.trim()).map_err(|e| ConfigError::BaseUrl {
            url: config.base_url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ConfigError::BaseUrl {
                url: config.base_url,
                reason: "expected an http:// or https:// URL".to_owned(),
            });
        }
        if !(config.rate_limit.is_finite() && config.rate_limit > 0.0) || config.burst == 0 {
            return Err(ConfigError::RateLimit);
        }
        if config.retry.max_attempts == 0 {
            return Err(ConfigError::Retry);
        }
        if config.max_body_bytes == 0 {
            return Err(ConfigError::BodyLimit);
        }
        if config.list_deadline.is_zero() {
            return Err(ConfigError::ListDeadline);
        }
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = &config.ca_bundle {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ConfigError::CaBundle(e.to_string()))?;
            if roots.is_empty() {
                return Err(ConfigError::CaBundle("no PEM certificate in it".to_owned()));
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        let http = builder
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("blaxel-operator/", env!("CARGO_PKG_VERSION")))
            // The API does not redirect; not following keeps the credential on the configured host.
            .redirect(reqwest::redirect::Policy::none())
            // Drop idle connections before a load balancer's idle timeout (often 30-60 s) does: a POST sent
            // on a connection the far end is closing fails, and POSTs are not retried.
            .pool_idle_timeout(Duration::from_secs(25))
            // An HTTP/1.1 connection keeps the read buffer its largest answer grew (a user list or a
            // sandbox page: up to ~400 KB), so every idle connection kept costs that much memory. A burst
            // opens as many connections as it needs; afterwards only a few stay for reuse.
            .pool_max_idle_per_host(IDLE_CONNECTIONS)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                retry: config.retry,
                max_body_bytes: config.max_body_bytes,
                list_deadline: config.list_deadline,
                limiter: RateLimiter::new(config.rate_limit, config.burst),
                power: PowerModes::default(),
                observer: OnceLock::new(),
                fence: OnceLock::new(),
            }),
        })
    }

    /// The base URL requests go to.
    #[must_use]
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// Cumulative rate-limiter waits of this client (and its clones), for metrics.
    #[must_use]
    pub fn rate_limit_stats(&self) -> RateLimitStats {
        self.inner.limiter.stats()
    }

    /// Installs the observer told about every HTTP attempt of this client and its clones (for request
    /// metrics). Only the first call takes effect; returns whether this one did.
    pub fn set_attempt_observer(&self, observer: AttemptObserver) -> bool {
        self.inner.observer.set(observer).is_ok()
    }

    /// Installs the fence every request but a `GET` of this client and its clones must pass (leader
    /// election). Only the first call takes effect; returns whether this one did. Without one, every
    /// request is sent.
    pub fn set_write_fence(&self, fence: Fence) -> bool {
        self.inner.fence.set(fence).is_ok()
    }

    /// Sends `call` (through the write fence unless it is a `GET`) and returns the success body.
    async fn execute(&self, scope: &Scope, call: &Call<'_>) -> Result<Vec<u8>, ApiError> {
        match self.inner.fence.get() {
            Some(fence) if call.method != Method::GET => {
                fence.guard(self.execute_unfenced(scope, call)).await
            }
            _ => self.execute_unfenced(scope, call).await,
        }
    }

    /// Sends `call`, retrying idempotent methods, and returns the success body.
    async fn execute_unfenced(&self, scope: &Scope, call: &Call<'_>) -> Result<Vec<u8>, ApiError> {
        let url = route::url(&self.inner.base, call.segments, call.query)?;
        let headers = headers(scope)?;
        // POST creates (a sandbox, an invitation): a retry after a lost answer could create twice.
        let idempotent = call.method != Method::POST;
        let mut attempt = 1;
        loop {
            self.inner.limiter.acquire(&scope.api_key).await;
            let error = match self
                .attempt(&url, &headers, call, &scope.workspace, attempt)
                .await
            {
                Ok(body) => return Ok(body),
                // Only the category is logged below; messages are sanitized once, on the way out (`seal`).
                Err(error) => error,
            };
            let policy = self.inner.retry;
            if let ApiError::RateLimited {
                retry_after: Some(retry_after),
            } = error
            {
                // Everyone using this key waits, not just this request; never longer than one call may.
                let hold = retry_after.min(policy.cap);
                self.inner
                    .limiter
                    .hold_off(&scope.api_key, Instant::now() + hold);
            }
            let delay = if idempotent {
                policy.delay(attempt, &error, rand::random::<f64>())
            } else {
                None
            };
            let Some(delay) = delay else {
                return Err(error);
            };
            tracing::debug!(
                method = %call.method,
                route = call.route,
                workspace = %scope.workspace,
                attempt,
                error = error.category(),
                wait_ms = delay.as_millis(),
                "retrying Blaxel request"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One HTTP exchange.
    async fn attempt(
        &self,
        url: &Url,
        headers: &HeaderMap,
        call: &Call<'_>,
        workspace: &str,
        attempt: u32,
    ) -> Result<Vec<u8>, ApiError> {
        let started = Instant::now();
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url.clone())
            .headers(headers.clone());
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        // Outer error: nothing usable came back (transport); inner: an HTTP status that is not success.
        let outcome = async {
            let response = request.send().await.map_err(transport_error)?;
            let status = response.status();
            let retry_after = retry_after(response.headers());
            let cap = self.inner.max_body_bytes;
            let body = read_capped(response, cap).await?;
            let answer = match body {
                Some(body) if status.is_success() => Ok(body),
                // Refused, not retried (`Decode`): the same request would get the same answer. Reconcilers
                // requeue a `Decode` with their per-object backoff, so it is not asked again at once either.
                None if status.is_success() => Err(ApiError::Decode {
                    message: format!(
                        "the answer to {} {} is larger than {cap} bytes",
                        call.method, call.route
                    ),
                }),
                // An error status keeps its meaning; an oversized error body just yields no message.
                body => Err(error_map::from_status(
                    status.as_u16(),
                    body.as_deref().unwrap_or_default(),
                    retry_after,
                )),
            };
            Ok::<_, ApiError>((status.as_u16(), answer))
        }
        .await;
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis();
        let (method, route) = (call.method.as_str(), call.route);
        let (status, result) = match outcome {
            Ok((status, Ok(body))) => {
                tracing::debug!(
                    method,
                    route,
                    workspace,
                    status,
                    attempt,
                    elapsed_ms,
                    "Blaxel request"
                );
                (Some(status), Ok(body))
            }
            Ok((status, Err(error))) => {
                let error_kind = error.category();
                tracing::debug!(
                    method,
                    route,
                    workspace,
                    status,
                    attempt,
                    elapsed_ms,
                    error = error_kind,
                    "Blaxel request failed"
                );
                (Some(status), Err(error))
            }
            Err(error) => {
                let error_kind = error.category();
                tracing::debug!(
                    method,
                    route,
                    workspace,
                    attempt,
                    elapsed_ms,
                    error = error_kind,
                    "Blaxel request failed without an answer"
                );
                (None, Err(error))
            }
        };
        if let Some(observer) = self.inner.observer.get() {
            observer(&Attempt {
                method: method_name(&call.method),
                route,
                status,
                outcome: result.as_ref().map_or_else(ApiError::category, |_| "Ok"),
                attempt,
                elapsed,
            });
        }
        result
    }

    /// Sends `call` and decodes the JSON answer.
    async fn fetch<T: DeserializeOwned>(
        &self,
        scope: &Scope,
        call: &Call<'_>,
        what: &str,
    ) -> Result<T, ApiError> {
        let body = self.execute(scope, call).await?;
        serde_json::from_slice(&body).map_err(|e| error_map::decode_error(what, &e))
    }
}

/// The method's name with a `'static` lifetime (the client only sends these four).
fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

/// The per-scope headers: credential (marked sensitive), workspace and API version.
fn headers(scope: &Scope) -> Result<HeaderMap, ApiError> {
    if scope.api_key.is_empty() {
        return Err(ApiError::Unauthorized {
            message: "no API key configured".to_owned(),
        });
    }
    let mut auth =
        HeaderValue::from_str(&format!("Bearer {}", scope.api_key.expose())).map_err(|_| {
            ApiError::Invalid {
                message: "the API key contains characters not allowed in an HTTP header".to_owned(),
            }
        })?;
    auth.set_sensitive(true);
    let workspace = HeaderValue::from_str(&scope.workspace)
        .ok()
        .filter(|_| !scope.workspace.is_empty())
        .ok_or_else(|| ApiError::Invalid {
            message: format!("invalid workspace name {:?}", scope.workspace),
        })?;
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    headers.insert(HeaderName::from_static("x-blaxel-workspace"), workspace);
    headers.insert(
        HeaderName::from_static("blaxel-version"),
        HeaderValue::from_static(BLAXEL_VERSION),
    );
    Ok(headers)
}

/// The server's requested wait, from `Retry-After-Ms` or `Retry-After`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    error_map::retry_after(
        text("retry-after-ms"),
        text("retry-after"),
        jiff::Timestamp::now(),
    )
}

/// Reads an answer's body in chunks: `None`, without reading on, once it is known to be longer than `cap`
/// bytes (announced by `Content-Length`, or actually sent).
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, ApiError> {
    let announced = response.content_length();
    if announced.is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX)) {
        return Ok(None);
    }
    // The announced length (now known to be within the cap) sizes the buffer; it is only a hint.
    let hint = announced.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    let mut body = Vec::with_capacity(hint);
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if chunk.len() > cap - body.len() {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// A failure below HTTP (connect, timeout, broken answer): transient. The URL is left out of the message
/// (it may hold an e-mail); the cause chain is kept.
fn transport_error(error: reqwest::Error) -> ApiError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "reading the answer failed"
    } else if error.is_builder() {
        return ApiError::Invalid {
            message: "cannot build the request".to_owned(),
        };
    } else {
        "request failed"
    };
    let error = error.without_url();
    let mut message = format!("{kind}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    ApiError::Unavailable {
        message,
        retry_after: None,
    }
}
/// Every error leaving the client through [`BlaxelApi`]: scrubbed of the key, then cut
/// ([`error_map::outgoing`]). Errors are built with the remote text whole inside the client; this is the one
/// place they are made fit to be shown (status, Events, logs).
fn seal<T>(scope: &Scope, result: Result<T, ApiError>) -> Result<T, ApiError> {
    result.map_err(|error| error_map::outgoing(error, &scope.api_key))
}

/// [`seal`], scrubbing the secret values the request carried as well (a server that quotes a rejected
/// value must not put it in a status).
fn seal_with<T>(scope: &Scope, also: &[&str], result: Result<T, ApiError>) -> Result<T, ApiError> {
    result.map_err(|error| error_map::outgoing_with(error, &scope.api_key, also))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::blaxel::ApiKey;

    fn scope(key: &str) -> Scope {
        Scope {
            workspace: "team-a".into(),
            api_key: ApiKey::new(key),
        }
    }

    /// Every request carries the bearer key (marked sensitive), the workspace and the API version.
    #[test]
    fn headers_are_complete_and_the_key_is_sensitive() {
        let headers = headers(&scope("bl_key")).unwrap();
        let auth = headers.get(AUTHORIZATION).unwrap();
        assert_eq!(auth.to_str().unwrap(), "Bearer bl_key");
        assert!(auth.is_sensitive());
        assert!(!format!("{headers:?}").contains("bl_key"));
        assert_eq!(headers.get("x-blaxel-workspace").unwrap(), "team-a");
        assert_eq!(headers.get("blaxel-version").unwrap(), BLAXEL_VERSION);
    }

    /// An empty key or an unprintable workspace is refused before any request is sent.
    #[test]
    fn unusable_scopes_are_refused() {
        assert_eq!(headers(&scope("")).unwrap_err().category(), "Unauthorized");
        let bad = Scope {
            workspace: "a\nb".into(),
            api_key: ApiKey::new("k"),
        };
        assert_eq!(headers(&bad).unwrap_err().category(), "Invalid");
    }

    /// Bad configurations are refused with a precise error.
    #[test]
    fn config_is_validated() {
        let bad_url = ClientConfig {
            base_url: "ftp://x".into(),
            ..ClientConfig::default()
        };
        assert!(matches!(
            HttpClient::new(bad_url),
            Err(ConfigError::BaseUrl { .. })
        ));
        for (rate_limit, burst) in [(0.0, 1), (f64::NAN, 1), (f64::INFINITY, 1), (1.0, 0)] {
            let config = ClientConfig {
                rate_limit,
                burst,
                ..ClientConfig::default()
            };
            assert_eq!(HttpClient::new(config).unwrap_err(), ConfigError::RateLimit);
        }
        let client = HttpClient::new(ClientConfig::default()).unwrap();
        let no_body = ClientConfig {
            max_body_bytes: 0,
            ..ClientConfig::default()
        };
        assert_eq!(
            HttpClient::new(no_body).unwrap_err(),
            ConfigError::BodyLimit
        );
        assert_eq!(client.base_url(), "https://api.blaxel.ai/v0");
        assert_eq!(client.rate_limit_stats(), RateLimitStats::default());
    }

    mod fenced {
        use super::*;
        use crate::blaxel::api::{SandboxesApi, UsersApi};
        use crate::blaxel::model::Sandbox;
        use crate::sim::{self, Faults, SimConfig, SimHandle};

        async fn fenced(config: SimConfig) -> (SimHandle, HttpClient, Fence, Scope) {
            let sim = sim::spawn(config).await.unwrap();
            let http = HttpClient::new(ClientConfig {
                base_url: sim.base_url(),
                ..ClientConfig::default()
            })
            .unwrap();
            let key = sim.api_key();
            let scope = Scope {
                workspace: key.workspace,
                api_key: ApiKey::new(&key.key),
            };
            let fence = Fence::closed();
            assert!(http.set_write_fence(fence.clone()));
            assert!(
                !http.set_write_fence(Fence::open()),
                "only the first fence counts"
            );
            (sim, http, fence, scope)
        }

        fn calls(sim: &SimHandle, route: &str) -> u64 {
            sim.stats()["byRoute"][route]["total"].as_u64().unwrap_or(0)
        }

        /// Outside the fence, reads pass and no write of any method reaches the server; inside it, writes
        /// go through.
        #[tokio::test]
        async fn writes_of_every_method_are_fenced() {
            let (sim, api, fence, scope) = fenced(SimConfig::default()).await;
            assert!(api.list_users(&scope).await.is_ok(), "reads are not fenced");
            let refused = api.invite_user(&scope, "a@example.com").await;
            assert!(
                matches!(refused, Err(ApiError::Unavailable { .. })),
                "{refused:?}"
            );
            let put = api.set_user_role(&scope, "a@example.com", "admin").await;
            assert!(matches!(put, Err(ApiError::Unavailable { .. })), "{put:?}");
            let delete = api.delete_sandbox(&scope, "x").await;
            assert!(
                matches!(delete, Err(ApiError::Unavailable { .. })),
                "{delete:?}"
            );
            let create = api.create_sandbox(&scope, &Sandbox::default()).await;
            assert!(
                matches!(create, Err(ApiError::Unavailable { .. })),
                "{create:?}"
            );
            assert_eq!(
                calls(&sim, "POST /v0/users"),
                0,
                "a fenced write never reaches Blaxel"
            );
            assert_eq!(calls(&sim, "PUT /v0/users/{subOrEmail}"), 0);
            assert_eq!(calls(&sim, "DELETE /v0/sandboxes/{name}"), 0);
            assert_eq!(calls(&sim, "POST /v0/sandboxes"), 0);
            fence.set(Some(Instant::now() + Duration::from_secs(30)));
            api.invite_user(&scope, "a@example.com").await.unwrap();
            assert_eq!(calls(&sim, "POST /v0/users"), 1);
            fence.set(Some(Instant::now()));
            assert!(api.invite_user(&scope, "b@example.com").await.is_err());
            assert_eq!(
                calls(&sim, "POST /v0/users"),
                1,
                "an expired deadline closes the fence"
            );
        }

        /// A write still running when the deadline passes is abandoned at the deadline.
        #[tokio::test]
        async fn a_write_is_abandoned_at_the_deadline() {
            let (_sim, api, fence, scope) = fenced(SimConfig {
                faults: Faults {
                    latency: Duration::from_secs(5),
                    ..Faults::default()
                },
                ..SimConfig::default()
            })
            .await;
            fence.set(Some(Instant::now() + Duration::from_millis(200)));
            let started = Instant::now();
            let result = api.invite_user(&scope, "a@example.com").await;
            assert!(
                matches!(result, Err(ApiError::Unavailable { .. })),
                "{result:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{:?}",
                started.elapsed()
            );
        }
    }
}
