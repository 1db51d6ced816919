//! Logging: human-readable or JSON lines, filtered by `RUST_LOG` (default `info`).
//!
//! Every reconcile runs in a span carrying the object's kind, namespace and name, so each line it logs
//! names the object. The fields are `kind`, `namespace` and `object`: not `name`, which the JSON format
//! already uses for the span's own name (`"span":{"name":"reconcile",...}`), so a `name` field would be a
//! duplicate key that JSON readers drop.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Colours only for a person at a terminal: in `kubectl logs` or a log file, escape codes are noise.
#[must_use]
pub fn ansi() -> bool {
    std::io::stderr().is_terminal()
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Installs a subscriber that shows only warnings and errors (unless `RUST_LOG` says otherwise), for
/// commands whose own output is the point (`demo`).
pub fn init_quiet() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi())
        .with_writer(std::io::stderr)
        .try_init();
}
