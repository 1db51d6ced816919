//! OpenTelemetry trace export over OTLP/HTTP (protobuf), built with the `otel` feature.
//!
//! Every `tracing` span — one per reconcile, carrying the object's kind, namespace and name — becomes an
//! OpenTelemetry span sent in batches to `--otlp-endpoint` (a collector's OTLP/HTTP base URL such as
//! `http://otel-collector:4318`; `/v1/traces` is appended unless given). Logs keep going to stderr as
//! without the feature. The exporter runs on its own thread, so a slow or absent collector never blocks a
//! reconcile; spans that cannot be sent are dropped.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::telemetry::LogFormat;

/// Flushes and stops the exporter when dropped (keep it alive until the process ends).
#[derive(Debug)]
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("OpenTelemetry: flushing spans failed: {e}");
        }
    }
}

/// The traces URL for an OTLP/HTTP base `endpoint`.
#[must_use]
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Installs the global subscriber: logs in `format` to stderr and spans exported to `endpoint`.
///
/// # Errors
/// When the exporter cannot be built (e.g. an invalid URL).
pub fn init(format: LogFormat, endpoint: &str) -> Result<OtelGuard, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("blaxel-operator")
                .build(),
        )
        .build();
    let tracer = provider.tracer("blaxel-operator");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(crate::telemetry::ansi())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => registry.with(fmt).try_init(),
        LogFormat::Json => registry
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
    };
    Ok(OtelGuard { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The traces path is appended once.
    #[test]
    fn traces_url_appends_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
