//! The operator's HTTP endpoints: `/metrics` (Prometheus text), `/healthz` (the process is serving and no
//! watch has been failing for longer than `--watch-failure-tolerance`) and
//! `/readyz` (the replica is doing its job: the leader's caches have synced, or it is a standby).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::leader::Fence;
use crate::metrics::Metrics;

/// What the endpoints read.
#[derive(Debug, Clone)]
pub struct Health {
    /// The metrics served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// True once the controllers' caches have synced.
    pub synced: watch::Receiver<bool>,
    /// With leader election: the fence, open while this replica leads (a standby is ready).
    pub fence: Option<Fence>,
    /// The kinds' watches: `/healthz` fails when one has failed for too long.
    pub liveness: Arc<crate::reconcile::kinds::Liveness>,
}

impl Health {
    /// Whether `/readyz` answers 200, and what it says.
    #[must_use]
    pub fn readiness(&self) -> (bool, &'static str) {
        if *self.synced.borrow() {
            return (true, "ok");
        }
        match &self.fence {
            Some(fence) if !fence.may_write() => (true, "standby"),
            _ => (false, "caches not synced yet"),
        }
    }
}

/// The `Content-Type` of the Prometheus text format served at `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        health.metrics.encode(),
    )
}

async fn healthz(State(health): State<Health>) -> (StatusCode, String) {
    match health.liveness.check() {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn readyz(State(health): State<Health>) -> (StatusCode, &'static str) {
    match health.readiness() {
        (true, why) => (StatusCode::OK, why),
        (false, why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// The router serving the three endpoints.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

/// Binds `addr` (an error here is a start-up error, e.g. the port is taken) and serves until `shutdown`
/// resolves. Returns the bound address (useful with port 0) and the serving task.
///
/// # Errors
/// When `addr` cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "serving /metrics, /healthz and /readyz");
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(health))
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(synced: bool, fence: Option<Fence>) -> Health {
        let (_tx, rx) = watch::channel(synced);
        Health {
            metrics: Arc::new(Metrics::new()),
            synced: rx,
            fence,
            liveness: Arc::default(),
        }
    }

    /// Ready once synced; a standby is ready; a leader (or single replica) before sync is not.
    #[test]
    fn readiness() {
        assert!(health(true, None).readiness().0);
        assert!(!health(false, None).readiness().0);
        assert_eq!(
            health(false, Some(Fence::closed())).readiness(),
            (true, "standby")
        );
        assert!(!health(false, Some(Fence::open())).readiness().0);
    }

    /// The three endpoints answer over HTTP with the expected statuses and bodies.
    #[tokio::test]
    async fn endpoints() {
        let (tx, rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::new());
        metrics.set_leader(true);
        let (addr, task) = serve(
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            Health {
                metrics,
                synced: rx,
                fence: None,
                liveness: Arc::default(),
            },
            std::future::pending(),
        )
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
        let http = reqwest::Client::new();
        let get = |path: &str| {
            let req = http.get(format!("http://{addr}{path}"));
            async move {
                let resp = req.send().await.unwrap_or_else(|e| unreachable!("{e}"));
                (
                    resp.status().as_u16(),
                    resp.text().await.unwrap_or_default(),
                )
            }
        };
        assert_eq!(get("/healthz").await, (200, "ok".to_owned()));
        assert_eq!(get("/readyz").await.0, 503);
        tx.send_replace(true);
        assert_eq!(get("/readyz").await, (200, "ok".to_owned()));
        let (status, body) = get("/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("blaxel_operator_leader 1"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
        task.abort();
    }
}
