//! The embedded Blaxel API simulator (`blaxel-operator simulate`): a stateful, in-memory HTTP server that
//! speaks the Blaxel control-plane API under `/v0` (workspaces, workspace members and invitations, sandboxes,
//! previews and preview tokens) in either API generation, with time-based lifecycles driven by a clock tests can
//! advance, injectable faults, and introspection under `/_sim/`.
//!
//! It is a product feature: users point the operator (or anything that speaks the Blaxel API, via
//! `BL_API_URL`) at it to try things out without a Blaxel account. It shares no code with the operator's
//! HTTP client: the wire contract is the only interface between them.
//!
//! Module map:
//! - [`config`]: flags ([`SimArgs`]) and settings ([`SimConfig`]).
//! - [`state`]: the shared [`state::Sim`] (world, clock, stats, faults) behind one lock.
//! - [`clock`]: the advanceable simulator clock; all transitions are computed lazily from it.
//! - [`auth`]: workspace keys and account keys (401/403), workspace selection, simulated invitee tokens.
//! - [`workspaces`], [`users`], [`sandboxes`], [`previews`]: the API routes and their models.
//! - [`faults`]: latency, drops, rate limits, injected 5xx. [`stats`]: request counters.
//! - [`control`]: the `/_sim/` routes. [`error`]: both error bodies. [`body`]: tolerant extractors.
//! - [`conn`]: connections that fault injection can drop. [`util`]: validation and hashing helpers.

pub mod auth;
pub mod body;
pub mod clock;
pub mod config;
pub mod conn;
pub mod control;
pub mod error;
pub mod faults;
pub mod integrations;
pub mod previews;
pub mod sandboxes;
pub mod state;
pub mod stats;
pub mod users;
pub mod util;
pub mod workspaces;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{ApiGeneration, ApiKey, Faults, RateLimit, SimArgs, SimConfig};
pub use error::SimError;

use conn::{ConnHandle, SimListener};
use error::{ApiError, ErrorShape};
use state::Sim;

/// The whole application: `/v0` API routes (with statistics and fault injection) and `/_sim/` control routes.
///
/// Prefer [`serve`] or [`spawn`]: they serve it on connections that the drop fault can close; served any
/// other way, a "dropped" request gets a 503 instead of a closed connection.
pub fn router(sim: Arc<Sim>) -> Router {
    let mut api = Router::new()
        .route(
            "/v0/workspaces",
            get(workspaces::list).post(workspaces::create),
        )
        .route(
            "/v0/workspaces/availability",
            post(workspaces::availability),
        )
        .route(
            "/v0/workspaces/{name}",
            get(workspaces::get)
                .put(workspaces::update)
                .delete(workspaces::delete),
        )
        .route(
            "/v0/integrations/connections",
            get(integrations::list).post(integrations::create),
        )
        .route(
            "/v0/integrations/connections/{connectionName}",
            get(integrations::get)
                .put(integrations::update)
                .delete(integrations::delete),
        )
        .route(
            "/v0/integrations/connections/{connectionName}/models",
            get(integrations::list_models),
        )
        .route(
            "/v0/integrations/connections/{connectionName}/models/{modelId}",
            get(integrations::get_model),
        )
        .route(
            "/v0/integrations/connections/{connectionName}/endpointConfigurations",
            get(integrations::endpoint_configurations),
        )
        .route(
            "/v0/integrations/{integrationName}",
            get(integrations::get_integration),
        )
        .route("/v0/users", get(users::list).post(users::invite))
        .route(
            "/v0/users/{subOrEmail}",
            put(users::update_role).delete(users::remove),
        )
        .route(
            "/v0/sandboxes",
            get(sandboxes::list).post(sandboxes::create),
        )
        .route(
            "/v0/sandboxes/{name}",
            get(sandboxes::get)
                .put(sandboxes::update)
                .delete(sandboxes::delete),
        )
        .route(
            "/v0/sandboxes/{name}/previews",
            get(previews::list).post(previews::create),
        )
        .route(
            "/v0/sandboxes/{name}/previews/{preview}",
            get(previews::get)
                .put(previews::update)
                .delete(previews::delete),
        )
        .route(
            "/v0/sandboxes/{name}/previews/{preview}/tokens",
            get(previews::list_tokens).post(previews::create_token),
        )
        .route(
            "/v0/sandboxes/{name}/previews/{preview}/tokens/{token}",
            delete(previews::delete_token),
        );
    if sim.config.generation.has_legacy_routes() {
        // Gone from today's API: there they fall through to the 404 fallback, like any unknown route.
        api = api
            .route("/v0/sandboxes/{name}/start", put(sandboxes::start))
            .route("/v0/sandboxes/{name}/stop", put(sandboxes::stop))
            .route("/v0/workspaces/{workspace}/join", post(users::join))
            .route(
                "/v0/workspaces/{workspace}/decline",
                post(users::decline_route),
            );
    }
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(sim.clone(), faults::middleware))
        .layer(from_fn_with_state(sim.clone(), stats::middleware));
    Router::new()
        .nest("/_sim", control::router())
        .merge(api)
        .with_state(sim)
}

async fn not_found(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
        .with_shape(ErrorShape::for_route(&method, uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

async fn serve_sim(
    sim: Arc<Sim>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(sim).into_make_service_with_connect_info::<ConnHandle>();
    axum::serve(SimListener::new(listener), app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the simulator on `listener` until `shutdown` completes, then finishes in-flight requests.
///
/// # Errors
/// An invalid configuration (`InvalidInput`) or a server failure.
pub async fn serve(
    config: SimConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    serve_sim(Arc::new(Sim::new(config)), listener, shutdown).await
}

/// Starts a simulator on `127.0.0.1` with an OS-chosen port, in the background.
///
/// # Errors
/// An invalid configuration or a failure to bind.
pub async fn spawn(config: SimConfig) -> io::Result<SimHandle> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Sim::new(config));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_sim(sim.clone(), listener, async move {
        let _ = rx.await;
    }));
    Ok(SimHandle {
        addr,
        sim,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// A simulator running in the background ([`spawn`]). Dropping it stops the server.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    sim: Arc<Sim>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl SimHandle {
    /// The address the simulator listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, e.g. `http://127.0.0.1:41234/v0` (what `BL_API_URL` should be).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}/v0", self.addr)
    }

    /// The server root, e.g. `http://127.0.0.1:41234` (the control routes are under `/_sim/`).
    #[must_use]
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The first configured API key and its workspace (the default `sim-key`/`sim` when none is configured).
    #[must_use]
    pub fn api_key(&self) -> ApiKey {
        self.sim
            .config
            .effective_api_keys()
            .into_iter()
            .next()
            .unwrap_or(ApiKey {
                key: SimConfig::DEFAULT_API_KEY.to_owned(),
                workspace: SimConfig::DEFAULT_WORKSPACE.to_owned(),
            })
    }

    /// The first configured account key, if any.
    #[must_use]
    pub fn account_key(&self) -> Option<String> {
        self.sim.config.account_keys.first().cloned()
    }

    /// The configuration it runs with.
    #[must_use]
    pub fn config(&self) -> &SimConfig {
        &self.sim.config
    }

    /// Moves the simulator clock forward (same as `POST /_sim/clock/advance`).
    pub fn advance_clock(&self, d: Duration) {
        self.sim.clock.advance(d);
    }

    /// The request counters (same JSON as `GET /_sim/stats`).
    #[must_use]
    pub fn stats(&self) -> serde_json::Value {
        state::lock(&self.sim.stats).snapshot()
    }

    /// Forgets all objects and counters (same as `POST /_sim/reset`).
    pub fn reset(&self) {
        self.sim.reset();
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for the server to end.
    ///
    /// # Errors
    /// The server's own failure, if it failed.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Waits for Ctrl-C or SIGTERM.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the simulator in the foreground until Ctrl-C or SIGTERM: what `blaxel-operator simulate` does.
///
/// # Errors
/// An invalid configuration, an address that cannot be bound, or a server failure.
pub async fn run(args: SimArgs) -> Result<(), SimError> {
    let config = SimConfig::from(&args);
    config.validate().map_err(SimError::Config)?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: args.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr()?;
    let workspaces: Vec<String> = config
        .effective_api_keys()
        .iter()
        .map(|k| k.workspace.clone())
        .collect();
    if config.api_keys.is_empty() {
        crate::say!(
            "Blaxel API simulator ({} API) on http://{addr}/v0 — api key {:?}, workspace {:?}; control under http://{addr}/_sim/",
            generation_name(config.generation),
            SimConfig::DEFAULT_API_KEY,
            SimConfig::DEFAULT_WORKSPACE
        );
    } else {
        crate::say!(
            "Blaxel API simulator ({} API) on http://{addr}/v0 — workspaces {workspaces:?}; control under http://{addr}/_sim/",
            generation_name(config.generation)
        );
    }
    if !config.account_keys.is_empty() {
        crate::say!(
            "  {} account key(s): they manage workspaces under http://{addr}/v0/workspaces",
            config.account_keys.len()
        );
    }
    tracing::info!(%addr, generation = generation_name(config.generation), ?workspaces, account_keys = config.account_keys.len(), "simulator listening");
    serve_sim(Arc::new(Sim::new(config)), listener, termination()).await?;
    tracing::info!("simulator stopped");
    Ok(())
}

fn generation_name(g: ApiGeneration) -> &'static str {
    match g {
        ApiGeneration::V2025 => "2025-11-28",
        ApiGeneration::V2026 => "2026-08-21",
    }
}
