//! `blaxel-operator run`: builds the clients from the configuration and runs the controllers until
//! SIGTERM or Ctrl-C.

use crate::blaxel::client::{ClientConfig, HttpClient};
use crate::cli::OperatorArgs;
use crate::controller;

/// Why `run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// No usable kubeconfig or in-cluster configuration.
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// The controllers could not start.
    #[error(transparent)]
    Start(#[from] controller::StartError),
    /// Metrics server, leader election.
    #[error(transparent)]
    Ops(#[from] crate::ops::OpsError),
}

/// The Blaxel HTTP client the arguments describe.
///
/// # Errors
/// An invalid URL or rate limit.
pub fn blaxel_client(args: &OperatorArgs) -> Result<HttpClient, RunError> {
    HttpClient::new(ClientConfig {
        base_url: args.api_url.clone(),
        rate_limit: args.api_rate_limit,
        burst: args.api_burst,
        ca_bundle: read_ca_file(args.api_ca_file.as_deref())
            .map_err(|e| RunError::Config(e.to_string()))?,
        ..ClientConfig::default()
    })
    .map_err(|e| RunError::Config(e.to_string()))
}

/// The content of `--api-ca-file`, if given.
///
/// # Errors
/// When the file cannot be read (the message names it).
pub fn read_ca_file(path: Option<&std::path::Path>) -> Result<Option<Vec<u8>>, std::io::Error> {
    path.map(|p| {
        std::fs::read(p).map_err(|e| {
            std::io::Error::new(e.kind(), format!("--api-ca-file {}: {e}", p.display()))
        })
    })
    .transpose()
}

/// Runs the operator until `shutdown` resolves.
///
/// # Errors
/// Configuration, cluster access, or missing CRDs.
pub async fn run(
    args: OperatorArgs,
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), RunError> {
    let default_key = args
        .default_key()
        .map_err(|e| RunError::Config(e.to_string()))?;
    let http = blaxel_client(&args)?;
    let config = args.controller_config(default_key);
    tracing::info!(
        api_url = %args.api_url,
        default_key = config.credentials.key.current().is_some(),
        namespace = config.namespace.as_deref().unwrap_or("*"),
        "starting"
    );
    crate::ops::run(client, http, config, &args.ops, shutdown).await?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
