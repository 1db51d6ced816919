//! The Kubernetes client the operator talks through: kube's own stack, but over HTTP/2 when the API
//! server offers it (as client-go does).
//!
//! kube-client speaks HTTP/1.1 only, so every request in flight holds a TLS connection of its own: with
//! 64 reconciles per kind that was ~140 connections to the API server, each with its TLS and HTTP
//! buffers (~6 MiB in the operator, and a goroutine pair per connection in the API server). Over HTTP/2
//! they share one connection.
//!
//! The service stack is kube's, from `kube::client::ConfigExt`: base URI, auth with token refresh, extra
//! headers, the retry of 429/503/504 answers, kube's connect/read/write timeouts, and a trace layer that
//! logs failed requests (without headers). What differs is the connector, which offers h2 and
//! http/1.1 in ALPN, and, since every watch and write now shares one connection, HTTP/2 keep-alive
//! pings (as client-go's health checks): a connection that silently stops answering (a dropped NAT
//! entry, a vanished load balancer) is closed within ~45 s and requests move to a new one.
//! A configuration with a proxy keeps kube's stack unchanged (it knows proxies).

use std::time::Duration;

use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt};
use kube::{Client, Config};
use tower::ServiceBuilder;
use tower::retry::RetryLayer;
use tower_http::trace::TraceLayer;

/// How often an idle HTTP/2 connection is pinged, and how long an answer may take before it is closed.
const PING_INTERVAL: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(15);

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
    http.set_keepalive(Some(PING_INTERVAL));
    // HTTP/2 writes a request as several small frames; with Nagle's algorithm the later ones wait for
    // the server's delayed ACK (~40 ms each), which put ~85 ms on every apply → first write.
    http.set_nodelay(true);
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
    // As kube does: the connect timeout covers the TLS handshake too.
    let mut connector = TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let hyper: HyperClient<_, Body> = HyperClient::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .http2_keep_alive_interval(PING_INTERVAL)
        .http2_keep_alive_timeout(PING_TIMEOUT)
        .http2_keep_alive_while_idle(true)
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(TraceLayer::new_for_http())
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
