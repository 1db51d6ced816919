//! The HTTP implementation of [`BlaxelApi`]: reqwest (rustls) behind the operator's own trait.
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
//! Power control detects once per workspace whether the 2025 start/stop routes exist ([`super::power`]).
//!
//! Lists are read record by record: the page's array is split into raw JSON records, each decoded on its
//! own. In the member and sandbox lists a record that does not decode is reported in
//! [`Listing::unreadable`] (with its e-mail or name where that can still be read) and logged once at warn,
//! instead of hiding every other record; the preview and token lists stay all-or-nothing.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::api::{BlaxelApi, PowerControl, Scope};
use super::error::ApiError;
use super::error_map;
use super::model::{
    Listing, PendingInvitation, Preview, PreviewToken, Sandbox, Unreadable, WorkspaceUser,
};
use super::power::PowerModes;
use super::ratelimit::{RateLimitStats, RateLimiter};
use super::retry::RetryPolicy;
use super::route::{self, DEFAULT_BASE_URL};

/// The API version sent with every request: from this one on `GET /sandboxes` is cursor-paginated.
pub const BLAXEL_VERSION: &str = "2026-04-28";
/// Page size asked for when listing sandboxes (the API's maximum).
const PAGE_LIMIT: &str = "200";
/// Safety stop for a server that keeps announcing more pages: 1,000 pages of 200 are 200,000 sandboxes in
/// one workspace, far beyond what one operator keeps in its shared list cache (~0.4 KB each, BENCHMARKS.md).
/// At the default 10 requests/s the walk's time bound ([`ClientConfig::list_deadline`]) ends a walk first
/// (~600 pages); this stop still holds when the rate limit is raised. It was 10,000: hours of requests.
const MAX_PAGES: usize = 1_000;
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
        let http = reqwest::Client::builder()
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

    /// Sends `call`, retrying idempotent methods, and returns the success body.
    async fn execute(&self, scope: &Scope, call: &Call<'_>) -> Result<Vec<u8>, ApiError> {
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

    /// GETs a list, accepting a bare array or a `{data, meta}` page and following cursors to the end.
    ///
    /// Records are decoded one by one ([`Record`]); where `T` skips unreadable records they are reported in
    /// the listing (and logged once each), otherwise the first one fails the whole list.
    ///
    /// The walk is bounded in pages ([`MAX_PAGES`]) and in time (`list_deadline`). It runs entirely in the
    /// caller's future (nothing is spawned), so dropping that future stops it, in-flight request included.
    async fn list_all<T: Record>(
        &self,
        scope: &Scope,
        route: &'static str,
        segments: &[&str],
        paginate: bool,
        what: &str,
    ) -> Result<Listing<T>, ApiError> {
        let mut listing = Listing::complete(Vec::new());
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        let bound = self.inner.list_deadline;
        let deadline = Instant::now() + bound;
        for pages in 0..MAX_PAGES {
            let mut query = Vec::new();
            if paginate {
                query.push(("limit", PAGE_LIMIT));
            }
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.as_str()));
            }
            let call = Call {
                query: &query,
                ..Call::new(Method::GET, route, segments)
            };
            let Ok(answer) = tokio::time::timeout_at(deadline, self.execute(scope, &call)).await
            else {
                return Err(ApiError::Unavailable {
                    message: format!(
                        "{what}: not read to the end within {} ({pages} pages read); a partial list is not used",
                        humantime::format_duration(bound)
                    ),
                    retry_after: None,
                });
            };
            let body = answer?;
            let (records, meta) = decode_listing(&body, what)?;
            for record in records {
                let index = listing.items.len() + listing.unreadable.len();
                match decode_record::<T>(record, index, what) {
                    Ok(item) => listing.items.push(item),
                    Err(unreadable) if T::SKIP_UNREADABLE => {
                        let error = error_map::outgoing_text(&unreadable.error, &scope.api_key);
                        tracing::warn!(
                            route,
                            workspace = %scope.workspace,
                            identity = unreadable.identity.as_deref().unwrap_or("<unknown>"),
                            error = %error,
                            "skipping a listed record that cannot be read"
                        );
                        listing.unreadable.push(Unreadable {
                            error,
                            ..unreadable
                        });
                    }
                    Err(unreadable) => {
                        return Err(ApiError::Decode {
                            message: unreadable.error,
                        });
                    }
                }
            }
            let Some(meta) = meta.filter(|m| m.has_more) else {
                return Ok(listing);
            };
            // A partial list would make present objects look missing: refuse rather than truncate.
            let next =
                meta.next_cursor
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| ApiError::Decode {
                        message: format!("{what}: more pages announced without a cursor"),
                    })?;
            if !seen.insert(next.clone()) {
                return Err(ApiError::Decode {
                    message: format!("{what}: pagination cursor repeated"),
                });
            }
            cursor = Some(next);
        }
        Err(ApiError::Decode {
            message: format!("{what}: more than {MAX_PAGES} pages"),
        })
    }

    /// Starts or stops a sandbox (see [`BlaxelApi::set_sandbox_power`]), errors not yet sealed.
    async fn power(
        &self,
        scope: &Scope,
        current: &Sandbox,
        running: bool,
    ) -> Result<PowerControl, ApiError> {
        let power = &self.inner.power;
        let workspace = scope.workspace.as_str();
        let name = current.metadata.name.as_str();
        if power.get(workspace) == Some(PowerControl::Enabled) {
            self.set_enabled(scope, name, None, running).await?;
            return Ok(PowerControl::Enabled);
        }
        // While the mode is unknown, one caller per workspace probes; the others wait for its verdict.
        let _detecting = match power.get(workspace) {
            None => Some(power.detection_guard(workspace).await),
            Some(_) => None,
        };
        if power.get(workspace) == Some(PowerControl::Enabled) {
            self.set_enabled(scope, name, None, running).await?;
            return Ok(PowerControl::Enabled);
        }
        match self.start_stop(scope, name, running).await {
            Ok(()) => {
                power.set(workspace, PowerControl::StartStop);
                Ok(PowerControl::StartStop)
            }
            Err(ApiError::NotFound { message }) => {
                // 404 means "no such sandbox" or "no such route" (today's API). The caller just observed
                // the sandbox, but it may have been deleted since: one GET tells the two apart, so a race
                // with a deletion can never switch a 2025 workspace to `spec.enabled` for good. The GET
                // is not wasted: it is the read of the read-modify-write below.
                let fresh = match self.get_raw_sandbox(scope, name).await {
                    Ok(fresh) => fresh,
                    Err(ApiError::NotFound { .. }) => return Err(ApiError::NotFound { message }),
                    Err(error) => return Err(error),
                };
                if power.set(workspace, PowerControl::Enabled) {
                    tracing::info!(
                        workspace,
                        "sandbox start/stop routes are gone; using spec.enabled for power control"
                    );
                }
                self.set_enabled(scope, name, Some(fresh), running).await?;
                Ok(PowerControl::Enabled)
            }
            Err(error) => Err(error),
        }
    }

    /// `PUT /sandboxes/{name}/start|stop`; "already in that state" (409) counts as success.
    async fn start_stop(&self, scope: &Scope, name: &str, running: bool) -> Result<(), ApiError> {
        let (action, route) = if running {
            ("start", "/sandboxes/{name}/start")
        } else {
            ("stop", "/sandboxes/{name}/stop")
        };
        let segments = ["sandboxes", name, action];
        match self
            .execute(scope, &Call::new(Method::PUT, route, &segments))
            .await
        {
            Ok(_) | Err(ApiError::Conflict { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// `GET /sandboxes/{name}` as raw JSON, every field kept.
    async fn get_raw_sandbox(&self, scope: &Scope, name: &str) -> Result<Value, ApiError> {
        let segments = ["sandboxes", name];
        let call = Call::new(Method::GET, "/sandboxes/{name}", &segments);
        self.fetch(scope, &call, "sandbox").await
    }

    /// Today's power switch: `PUT /sandboxes/{name}` with `spec.enabled` set, by read-modify-write of the
    /// sandbox as raw JSON (`fresh`, else a new GET). Raw rather than typed: the typed models keep unknown
    /// fields of most objects, but not of every nested one (env `secret` flags, port extras), and a PUT
    /// must not drop what it does not mean to change. One extra GET per power change is cheap.
    async fn set_enabled(
        &self,
        scope: &Scope,
        name: &str,
        fresh: Option<Value>,
        running: bool,
    ) -> Result<(), ApiError> {
        let mut sandbox = match fresh {
            Some(sandbox) => sandbox,
            None => self.get_raw_sandbox(scope, name).await?,
        };
        with_enabled(&mut sandbox, running)?;
        let segments = ["sandboxes", name];
        let call = Call::new(Method::PUT, "/sandboxes/{name}", &segments).json(&sandbox)?;
        self.execute(scope, &call).await.map(|_| ())
    }
}

/// Sets `spec.enabled` in a raw sandbox, leaving everything else as it is.
fn with_enabled(sandbox: &mut Value, running: bool) -> Result<(), ApiError> {
    let not_an_object = || ApiError::Decode {
        message: "sandbox: expected a JSON object with an object `spec`".to_owned(),
    };
    let spec = sandbox
        .as_object_mut()
        .ok_or_else(not_an_object)?
        .entry("spec")
        .or_insert_with(|| json!({}));
    spec.as_object_mut()
        .ok_or_else(not_an_object)?
        .insert("enabled".to_owned(), Value::Bool(running));
    Ok(())
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

/// A name for a new preview token: today's API requires one (`metadata.name`), the trait's caller does
/// not choose it. Like Blaxel's SDK, `token-<unix ms>`, plus a random suffix so two tokens minted in the
/// same millisecond do not collide (the POST is not retried, a collision would be a spurious 409).
fn token_name(now: jiff::Timestamp, salt: u16) -> String {
    format!("token-{}-{salt:04x}", now.as_millisecond())
}

/// `meta` of a paginated list.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageMeta {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// A `{data, meta}` page, its records still raw. `data` is required: an object without it (an error body
/// sent with 200, say) is not an empty list, which would make every object look absent.
#[derive(Debug, Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    #[serde(default)]
    meta: Option<PageMeta>,
}

/// Reads a list answer's envelope: a bare array (2025, `/users`) or a `{data, meta}` page (today's
/// `/sandboxes`). The records stay raw JSON text borrowed from `body`; an envelope of any other shape fails.
fn decode_listing<'a>(
    body: &'a [u8],
    what: &str,
) -> Result<(Vec<&'a RawValue>, Option<PageMeta>), ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let result = if first == Some(&b'{') {
        serde_json::from_slice::<Page<'a>>(body).map(|page| (page.data, page.meta))
    } else {
        serde_json::from_slice::<Vec<&'a RawValue>>(body).map(|records| (records, None))
    };
    result.map_err(|e| error_map::decode_error(what, &e))
}

/// A kind of record read from a list, one record at a time.
trait Record: DeserializeOwned {
    /// Whether an unreadable record is skipped and reported ([`Listing::unreadable`]) rather than failing
    /// the whole list.
    const SKIP_UNREADABLE: bool;

    /// The identity of a record that could not be used, where it can still be read from the raw JSON.
    fn identity(_raw: &RawValue) -> Option<String> {
        None
    }

    /// Why a record that decoded still cannot be used, if it cannot.
    fn unusable(&self) -> Option<&'static str> {
        None
    }
}

impl Record for WorkspaceUser {
    const SKIP_UNREADABLE: bool = true;

    fn identity(raw: &RawValue) -> Option<String> {
        string_at(raw, "/email")
    }

    fn unusable(&self) -> Option<&'static str> {
        // Users are matched by e-mail: a record without one cannot be told apart from any other.
        self.email.trim().is_empty().then_some("no e-mail")
    }
}

impl Record for Sandbox {
    const SKIP_UNREADABLE: bool = true;

    fn identity(raw: &RawValue) -> Option<String> {
        string_at(raw, "/metadata/name")
    }
}

impl Record for Preview {
    const SKIP_UNREADABLE: bool = false;
}

impl Record for PreviewToken {
    const SKIP_UNREADABLE: bool = false;
}

/// The non-blank string at `pointer` in a raw record, if there is one.
fn string_at(raw: &RawValue, pointer: &str) -> Option<String> {
    let value: Value = serde_json::from_str(raw.get()).ok()?;
    value
        .pointer(pointer)?
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// Decodes the `index`-th (0-based) record of a list into `T`; the error names the record by position and
/// never quotes it.
fn decode_record<T: Record>(raw: &RawValue, index: usize, what: &str) -> Result<T, Unreadable> {
    let which = format!("record {} of the {what}", index + 1);
    let error = match serde_json::from_str::<T>(raw.get()) {
        Ok(item) => match item.unusable() {
            None => return Ok(item),
            Some(why) => format!("{which}: {why}"),
        },
        Err(e) => error_map::decode_message(&which, &e),
    };
    Err(Unreadable {
        identity: T::identity(raw),
        error,
    })
}

/// Every error leaving the client through [`BlaxelApi`]: scrubbed of the key, then cut
/// ([`error_map::outgoing`]). Errors are built with the remote text whole inside the client; this is the one
/// place they are made fit to be shown (status, Events, logs).
fn seal<T>(scope: &Scope, result: Result<T, ApiError>) -> Result<T, ApiError> {
    result.map_err(|error| error_map::outgoing(error, &scope.api_key))
}

#[async_trait]
impl BlaxelApi for HttpClient {
    async fn list_users(&self, scope: &Scope) -> Result<Listing<WorkspaceUser>, ApiError> {
        let listing = self
            .list_all(scope, "/users", &["users"], false, "list of users")
            .await;
        seal(scope, listing)
    }

    async fn invite_user(&self, scope: &Scope, email: &str) -> Result<PendingInvitation, ApiError> {
        let invite = async {
            let call =
                Call::new(Method::POST, "/users", &["users"]).json(&json!({ "email": email }))?;
            self.fetch(scope, &call, "invitation").await
        };
        seal(scope, invite.await)
    }

    async fn set_user_role(
        &self,
        scope: &Scope,
        sub_or_email: &str,
        role: &str,
    ) -> Result<WorkspaceUser, ApiError> {
        let set = async {
            let segments = ["users", sub_or_email];
            let call = Call::new(Method::PUT, "/users/{subOrEmail}", &segments)
                .json(&json!({ "role": role }))?;
            self.fetch(scope, &call, "workspace user").await
        };
        seal(scope, set.await)
    }

    async fn remove_user(&self, scope: &Scope, sub_or_email: &str) -> Result<(), ApiError> {
        let segments = ["users", sub_or_email];
        let call = Call::new(Method::DELETE, "/users/{subOrEmail}", &segments);
        seal(scope, self.execute(scope, &call).await.map(|_| ()))
    }

    async fn list_sandboxes(&self, scope: &Scope) -> Result<Listing<Sandbox>, ApiError> {
        let listing = self
            .list_all(
                scope,
                "/sandboxes",
                &["sandboxes"],
                true,
                "list of sandboxes",
            )
            .await;
        seal(scope, listing)
    }

    async fn get_sandbox(&self, scope: &Scope, name: &str) -> Result<Sandbox, ApiError> {
        let segments = ["sandboxes", name];
        let call = Call::new(Method::GET, "/sandboxes/{name}", &segments);
        seal(scope, self.fetch(scope, &call, "sandbox").await)
    }

    async fn create_sandbox(&self, scope: &Scope, sandbox: &Sandbox) -> Result<Sandbox, ApiError> {
        let create = async {
            let call = Call::new(Method::POST, "/sandboxes", &["sandboxes"]).json(sandbox)?;
            self.fetch(scope, &call, "sandbox").await
        };
        seal(scope, create.await)
    }

    async fn update_sandbox(&self, scope: &Scope, sandbox: &Sandbox) -> Result<Sandbox, ApiError> {
        let update = async {
            let segments = ["sandboxes", sandbox.metadata.name.as_str()];
            let call = Call::new(Method::PUT, "/sandboxes/{name}", &segments).json(sandbox)?;
            self.fetch(scope, &call, "sandbox").await
        };
        seal(scope, update.await)
    }

    async fn delete_sandbox(&self, scope: &Scope, name: &str) -> Result<(), ApiError> {
        let segments = ["sandboxes", name];
        let call = Call::new(Method::DELETE, "/sandboxes/{name}", &segments);
        seal(scope, self.execute(scope, &call).await.map(|_| ()))
    }

    async fn set_sandbox_power(
        &self,
        scope: &Scope,
        current: &Sandbox,
        running: bool,
    ) -> Result<PowerControl, ApiError> {
        seal(scope, self.power(scope, current, running).await)
    }

    fn power_control(&self, workspace: &str) -> Option<PowerControl> {
        self.inner.power.get(workspace)
    }

    async fn list_previews(&self, scope: &Scope, sandbox: &str) -> Result<Vec<Preview>, ApiError> {
        let segments = ["sandboxes", sandbox, "previews"];
        let previews = self
            .list_all(
                scope,
                "/sandboxes/{name}/previews",
                &segments,
                false,
                "list of previews",
            )
            .await
            .map(|listing| listing.items);
        seal(scope, previews)
    }

    async fn create_preview(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &Preview,
    ) -> Result<Preview, ApiError> {
        let create = async {
            let segments = ["sandboxes", sandbox, "previews"];
            let call =
                Call::new(Method::POST, "/sandboxes/{name}/previews", &segments).json(preview)?;
            self.fetch(scope, &call, "preview").await
        };
        seal(scope, create.await)
    }

    async fn delete_preview(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
    ) -> Result<(), ApiError> {
        let segments = ["sandboxes", sandbox, "previews", preview];
        let call = Call::new(
            Method::DELETE,
            "/sandboxes/{name}/previews/{preview}",
            &segments,
        );
        seal(scope, self.execute(scope, &call).await.map(|_| ()))
    }

    async fn list_preview_tokens(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
    ) -> Result<Vec<PreviewToken>, ApiError> {
        let segments = ["sandboxes", sandbox, "previews", preview, "tokens"];
        let tokens = self
            .list_all(
                scope,
                "/sandboxes/{name}/previews/{preview}/tokens",
                &segments,
                false,
                "list of preview tokens",
            )
            .await
            .map(|listing| listing.items);
        seal(scope, tokens)
    }

    async fn create_preview_token(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
        expires_at: &str,
    ) -> Result<PreviewToken, ApiError> {
        let create = async {
            let segments = ["sandboxes", sandbox, "previews", preview, "tokens"];
            let call = Call::new(
                Method::POST,
                "/sandboxes/{name}/previews/{preview}/tokens",
                &segments,
            )
            .json(&json!({
                "metadata": { "name": token_name(jiff::Timestamp::now(), rand::random::<u16>()) },
                "spec": { "expiresAt": expires_at },
            }))?;
            self.fetch(scope, &call, "preview token").await
        };
        seal(scope, create.await)
    }

    async fn delete_preview_token(
        &self,
        scope: &Scope,
        sandbox: &str,
        preview: &str,
        token: &str,
    ) -> Result<(), ApiError> {
        let segments = ["sandboxes", sandbox, "previews", preview, "tokens", token];
        let call = Call::new(
            Method::DELETE,
            "/sandboxes/{name}/previews/{preview}/tokens/{token}",
            &segments,
        );
        seal(scope, self.execute(scope, &call).await.map(|_| ()))
    }
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

    impl Record for u32 {
        const SKIP_UNREADABLE: bool = false;
    }

    fn numbers(records: &[&RawValue]) -> Vec<u32> {
        records
            .iter()
            .enumerate()
            .map(|(i, r)| decode_record::<u32>(r, i, "numbers").unwrap())
            .collect()
    }

    /// Both list shapes decode; a page reports whether more follow; any other envelope is an error.
    #[test]
    fn listings_in_both_shapes() {
        let (records, meta) = decode_listing(b" [1,2]", "numbers").unwrap();
        assert_eq!(numbers(&records), [1, 2]);
        assert!(meta.is_none());
        let page = br#"{"data":[3],"meta":{"hasMore":true,"nextCursor":"c1","total":9}}"#;
        let (records, meta) = decode_listing(page, "numbers").unwrap();
        assert_eq!(numbers(&records), [3]);
        let meta = meta.unwrap();
        assert!(meta.has_more);
        assert_eq!(meta.next_cursor.as_deref(), Some("c1"));
        let not_lists = [
            &b"null"[..],
            b"7",
            br#"{"data":{"a":1}}"#,
            br#"{"error":"oops"}"#,
            b"[1,",
        ];
        for envelope in not_lists {
            let err = decode_listing(envelope, "numbers").unwrap_err();
            assert_eq!(err.category(), "Decode");
        }
    }

    /// A record that does not decode is reported by position and identity, never by its content.
    #[test]
    fn unreadable_records_keep_identity_not_content() {
        let (records, _) = decode_listing(
            br#"[{"metadata":{"name":"big"},"spec":{"runtime":{"memory":99999999999999999999,"image":"secret-img"}}},
                {"metadata":{"name":""},"spec":7}]"#,
            "list of sandboxes",
        )
        .unwrap();
        let big = decode_record::<Sandbox>(records[0], 0, "list of sandboxes").unwrap_err();
        assert_eq!(big.identity.as_deref(), Some("big"));
        assert!(
            big.error.contains("record 1 of the list of sandboxes"),
            "{}",
            big.error
        );
        assert!(
            !big.error.contains("99999") && !big.error.contains("secret-img"),
            "{}",
            big.error
        );
        let nameless = decode_record::<Sandbox>(records[1], 1, "list of sandboxes").unwrap_err();
        assert_eq!(nameless.identity, None);

        let (records, _) = decode_listing(
            br#"[{"email":null,"role":"admin"},{"email":"a@b.c","role":5},{"role":"member"},{"email":" "}]"#,
            "list of users",
        )
        .unwrap();
        let failed: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, r)| decode_record::<WorkspaceUser>(r, i, "list of users").unwrap_err())
            .collect();
        let identities: Vec<_> = failed.iter().map(|u| u.identity.as_deref()).collect();
        assert_eq!(identities, [None, Some("a@b.c"), None, None]);
        assert!(
            failed[2].error.ends_with("no e-mail"),
            "{}",
            failed[2].error
        );
    }

    /// Setting `spec.enabled` keeps every other field, including ones the typed models do not name.
    #[test]
    fn with_enabled_keeps_everything_else() {
        let mut raw = json!({
            "metadata": {"name": "a", "x": 1},
            "spec": {"enabled": true, "runtime": {"envs": [{"name": "K", "value": "v", "secret": true}]}},
            "state": "RUNNING"
        });
        with_enabled(&mut raw, false).unwrap();
        assert_eq!(raw["spec"]["enabled"], false);
        assert_eq!(raw["spec"]["runtime"]["envs"][0]["secret"], true);
        assert_eq!(raw["metadata"]["x"], 1);
        let mut bare = json!({"metadata": {"name": "a"}});
        with_enabled(&mut bare, true).unwrap();
        assert_eq!(bare["spec"], json!({"enabled": true}));
        assert_eq!(
            with_enabled(&mut json!([]), true).unwrap_err().category(),
            "Decode"
        );
        assert_eq!(
            with_enabled(&mut json!({"spec": 1}), true)
                .unwrap_err()
                .category(),
            "Decode"
        );
    }

    /// Generated token names are valid API names (lowercase, digits, hyphens) and differ by salt.
    #[test]
    fn token_names_are_valid_and_salted() {
        let now: jiff::Timestamp = "2026-11-28T03:00:00Z".parse().unwrap();
        assert_eq!(token_name(now, 0xbeef), "token-1795834800000-beef");
        assert_ne!(token_name(now, 1), token_name(now, 2));
        let name = token_name(now, 7);
        assert!(name.len() <= 63);
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
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
}
