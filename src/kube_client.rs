//! The Kubernetes client the operator talks through: kube's own stack, but over HTTP/2 when the API
//! server offers it (as client-go does).
//!
//! kube-client speaks HTTP/1.1 only, so every request in flight holds a TLS connection of its own: with
//! 64 reconciles per kind that was ~140 connections to the API server, each with its TLS and HTTP
//! buffers (~6 MiB in the operator, and a goroutine pair per connection in the API server). Over HTTP/2
//! they share one connection. The stack is kube's (base URI, auth with token refresh, extra headers,
//! the retry of 429/503/504 answers), built from `kube::client::ConfigExt`; only the connector differs,
//! and it still offers HTTP/1.1 in ALPN. A proxied configuration keeps kube's stack unchanged.

use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt};
use kube::{Client, Config};
use tower::ServiceBuilder;
use tower::retry::RetryLayer;

/// A client for `config`, over HTTP/2 where the server offers it.
///
/// # Errors
/// When the TLS or auth configuration cannot be built from `config`.
pub fn client(config: Config) -> Result<Client, kube::Error> {
    if config.proxy_url.is_some() {
        return Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    let tls = config.rustls_client_config()?;
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let builder = match &config.tls_server_name {
        Some(name) => builder.with_server_name_resolver(
            hyper_rustls::FixedServerNameResolver::new(name.clone().try_into().map_err(|_| {
                kube::Error::Service(format!("invalid tls-server-name {name:?}").into())
            })?),
        ),
        None => builder,
    };
    let https = builder.enable_http1().enable_http2().wrap_connector(http);
    let hyper: HyperClient<_, Body> = HyperClient::builder(TokioExecutor::new()).build(https);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(hyper);
    Ok(ClientBuilder::new(service, config.default_namespace).build())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::*;

    /// A configuration with a proxy is left to kube's own stack (which knows proxies).
    #[tokio::test]
    async fn proxied_configs_use_kubes_stack() {
        let mut config = Config::new("https://127.0.0.1:6443".parse().unwrap());
        config.proxy_url = Some("socks5://127.0.0.1:1080".parse().unwrap());
        // kube is built without the socks5 feature: its stack refuses, which shows it was asked.
        assert!(client(config).is_err());
    }
}
