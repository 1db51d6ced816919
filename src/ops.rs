//! Operational wiring around the controllers: the metrics/health server, request metrics on the Blaxel
//! client, and leader election with its write fence.
//!
//! Without `--leader-election` the controllers run at once and the fence is always open. With it, the
//! replica stands by (serving `/healthz`, `/readyz` = ready as standby, and `/metrics`) until it holds the
//! Lease, then runs the controllers while renewing. **When leadership is lost the process exits with an
//! error** (dropping in-flight reconciles at once; every remote write is fenced anyway): the Deployment
//! restarts it and it comes back as a standby with fresh caches. On SIGTERM the leader finishes in-flight
//! reconciles, then releases the Lease so a standby takes over immediately.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;

use crate::blaxel::{BlaxelApi, HttpClient};
use crate::controller::{self, ControllerConfig};
use crate::leader::{self, Elector, Fence, LeaderConfig};
use crate::metrics::Metrics;
use crate::server::{self, Health};

/// Flags for metrics, health, leader election and trace export.
#[derive(Debug, Clone, Args)]
pub struct OpsArgs {
    /// Address of the `/metrics`, `/healthz` and `/readyz` server.
    #[arg(long, env = "BLAXEL_METRICS_BIND", default_value = "0.0.0.0:8080")]
    pub metrics_bind: SocketAddr,
    /// Run only while holding a `coordination.k8s.io` Lease (for more than one replica).
    #[arg(long, env = "BLAXEL_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "BLAXEL_LEASE_NAME", default_value = "blaxel-operator")]
    pub lease_name: String,
    /// Namespace of the leader Lease (default: `POD_NAMESPACE`, else `default`).
    #[arg(long, env = "BLAXEL_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long the Lease is valid after a renew; renews happen every third of it, and the leader stops
    /// writing a fifth of it before expiry.
    #[arg(long, env = "BLAXEL_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,
    /// How long a kind's watch may fail without a success before `/healthz` fails (so the kubelet
    /// restarts a replica that reconciles nothing).
    #[arg(long, env = "BLAXEL_WATCH_FAILURE_TOLERANCE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub watch_failure_tolerance: Duration,
    /// OTLP/HTTP endpoint to export traces to, e.g. `http://otel-collector:4318` (needs the `otel` build
    /// feature; ignored with a warning otherwise).
    #[arg(long, env = "BLAXEL_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

impl Default for OpsArgs {
    fn default() -> Self {
        Self {
            metrics_bind: SocketAddr::from(([0, 0, 0, 0], 8080)),
            leader_election: false,
            lease_name: "blaxel-operator".to_owned(),
            lease_namespace: None,
            lease_duration: Duration::from_secs(15),
            watch_failure_tolerance: Duration::from_secs(300),
            otlp_endpoint: None,
        }
    }
}

impl OpsArgs {
    /// The election settings these flags describe, with a fresh identity.
    #[must_use]
    pub fn leader_config(&self) -> LeaderConfig {
        LeaderConfig {
            lease_name: self.lease_name.clone(),
            lease_namespace: self
                .lease_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            identity: leader::default_identity(),
            lease_duration: self.lease_duration.max(Duration::from_secs(1)),
        }
    }
}

/// Keeps trace export running; flushes it when dropped (hold it until the process ends).
#[derive(Debug)]
pub struct TelemetryGuard {
    #[cfg(feature = "otel")]
    _otel: Option<crate::otel::OtelGuard>,
}

/// Installs logging in `format`, plus OTLP trace export when `--otlp-endpoint` is set and the `otel`
/// feature is built (without it, the flag is reported and ignored).
pub fn init_telemetry(format: crate::telemetry::LogFormat, ops: &OpsArgs) -> TelemetryGuard {
    #[cfg(feature = "otel")]
    if let Some(endpoint) = ops.otlp_endpoint.as_deref() {
        match crate::otel::init(format, endpoint) {
            Ok(guard) => {
                tracing::info!(endpoint, "exporting traces over OTLP/HTTP");
                return TelemetryGuard { _otel: Some(guard) };
            }
            Err(e) => {
                crate::telemetry::init(format);
                tracing::error!(error = %e, "trace export disabled");
                return TelemetryGuard { _otel: None };
            }
        }
    }
    crate::telemetry::init(format);
    #[cfg(not(feature = "otel"))]
    if ops.otlp_endpoint.is_some() {
        tracing::warn!(
            "--otlp-endpoint is ignored: this build lacks the `otel` feature (cargo build --features otel)"
        );
    }
    TelemetryGuard {
        #[cfg(feature = "otel")]
        _otel: None,
    }
}

/// Why the operator stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The metrics server could not bind its address.
    #[error("--metrics-bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The controllers could not start.
    #[error(transparent)]
    Start(#[from] controller::StartError),
    /// Another replica may hold the lease now; this one stopped at once (it restarts as a standby).
    #[error("lost the leader lease; exiting so this replica restarts as a standby")]
    LeadershipLost,
}

/// A future that resolves once `rx` turns true (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Runs the controllers with metrics, health endpoints and (when asked) leader election, until `shutdown`
/// resolves or leadership is lost.
///
/// # Errors
/// See [`OpsError`].
pub async fn run(
    client: kube::Client,
    http: HttpClient,
    mut config: ControllerConfig,
    ops: &OpsArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), OpsError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stop_tx.send_replace(true);
    });

    let metrics = Arc::new(Metrics::new());
    config.metrics = Arc::clone(&metrics);
    let liveness = Arc::new(crate::reconcile::kinds::Liveness::new(
        ops.watch_failure_tolerance,
    ));
    config.liveness = Arc::clone(&liveness);
    http.set_attempt_observer(metrics.attempt_observer());
    let limiter = http.clone();
    metrics.on_scrape(move |m| m.set_rate_limit(limiter.rate_limit_stats()));

    let mut elector = ops
        .leader_election
        .then(|| Elector::new(client.clone(), ops.leader_config()));
    let fence = elector.as_ref().map_or_else(Fence::open, Elector::fence);
    let gauge_fence = fence.clone();
    metrics.on_scrape(move |m| m.set_leader(gauge_fence.may_write()));

    let (ready_tx, ready_rx) = watch::channel(false);
    let (_addr, _server) = server::serve(
        ops.metrics_bind,
        Health {
            metrics,
            synced: ready_rx,
            fence: elector.as_ref().map(|_| fence.clone()),
            liveness,
        },
        stopped(stop_rx.clone()),
    )
    .await
    .map_err(|source| OpsError::Bind {
        addr: ops.metrics_bind,
        source,
    })?;

    http.set_write_fence(fence);
    let api: Arc<dyn BlaxelApi> = Arc::new(http);
    let Some(elector) = elector.as_mut() else {
        controller::run(client, api, config, stopped(stop_rx), ready_tx).await?;
        return Ok(());
    };
    tracing::info!(
        lease = %elector.config().lease_name,
        namespace = %elector.config().lease_namespace,
        identity = %elector.config().identity,
        duration = ?elector.config().lease_duration,
        "leader election: waiting for the lease"
    );
    tokio::select! {
        () = elector.acquire() => {}
        () = stopped(stop_rx.clone()) => return Ok(()),
    }
    let finished = {
        let controllers = controller::run(client, api, config, stopped(stop_rx), ready_tx);
        // Biased: after a pause (a frozen process, a starved runtime) the lost lease is noticed before the
        // controllers get to run again, so they are dropped without another step.
        tokio::select! {
            biased;
            () = elector.hold() => None,
            result = controllers => Some(result),
        }
    };
    match finished {
        Some(result) => {
            // The controllers have stopped: nothing writes any more, so the lease can go.
            elector.release().await;
            result.map_err(Into::into)
        }
        None => Err(OpsError::LeadershipLost),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn run_args(args: &[&str]) -> super::OpsArgs {
        let cli = Cli::try_parse_from(["blaxel-operator", "run"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Run(args) => args.ops,
            other => unreachable!("{other:?}"),
        }
    }

    /// Defaults: metrics on 0.0.0.0:8080, no leader election, lease `blaxel-operator` for 15 s.
    #[test]
    fn defaults() {
        let ops = run_args(&[]);
        assert_eq!(ops.metrics_bind.to_string(), "0.0.0.0:8080");
        assert!(!ops.leader_election);
        assert_eq!(ops.lease_name, "blaxel-operator");
        assert_eq!(ops.lease_duration, std::time::Duration::from_secs(15));
        assert!(ops.otlp_endpoint.is_none());
    }

    /// The flags parse, and a lease namespace given on the command line wins.
    #[test]
    fn flags() {
        let ops = run_args(&[
            "--leader-election",
            "--lease-name",
            "x",
            "--lease-namespace",
            "ops",
            "--lease-duration",
            "3s",
            "--metrics-bind",
            "127.0.0.1:9000",
        ]);
        assert!(ops.leader_election);
        let config = ops.leader_config();
        assert_eq!(config.lease_name, "x");
        assert_eq!(config.lease_namespace, "ops");
        assert_eq!(config.lease_duration, std::time::Duration::from_secs(3));
        assert_eq!(ops.metrics_bind.port(), 9000);
    }
}
