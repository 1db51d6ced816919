//! Command line: `run`, `simulate`, `crds`, `demo`. Every operator flag is also an environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::controller::ControllerConfig;
use crate::reconcile::Settings;
use crate::reconcile::credentials::{DefaultCredentials, DefaultKey};
use crate::telemetry::LogFormat;

/// Keeps Blaxel workspace members and sandboxes in the state declared in Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "blaxel-operator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator against the cluster in the current kubeconfig (or in-cluster config).
    Run(OperatorArgs),
    /// Start a local Kubernetes API server, the simulator and the operator; apply `examples/` and watch
    /// them converge.
    Demo(crate::demo::DemoArgs),
    /// Serve the embedded Blaxel API simulator.
    Simulate(crate::sim::SimArgs),
    /// Print the CRD YAML (what `crds/` holds).
    Crds,
    /// Show what a change of manifests will do to Blaxel, before it is merged: reads Blaxel, writes
    /// nothing. Exit code 0: no change; 2: changes; 1: invalid manifests or an error.
    Plan(crate::plan::PlanArgs),
}

/// The operator's configuration.
#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// Blaxel API base URL.
    #[arg(long, env = "BL_API_URL", default_value = "https://api.blaxel.ai/v0")]
    pub api_url: String,
    /// File holding the default Blaxel API key, read again whenever it changes (a rotated key in a
    /// mounted Secret is used without a restart); else the `BL_API_KEY` environment variable is used.
    #[arg(long, env = "BL_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// PEM file of CA certificates trusted for the Blaxel API besides the built-in roots (a proxy or a
    /// private endpoint with a CA of its own).
    #[arg(long, env = "BL_API_CA_FILE")]
    pub api_ca_file: Option<PathBuf>,
    /// Namespaces allowed to use the default key (comma-separated; `*` for all; empty for none).
    #[arg(
        long,
        env = "BLAXEL_DEFAULT_CREDENTIALS_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub default_credentials_namespaces: Vec<String>,
    /// Resync period of settled objects (jittered ±10%; at least 1s).
    #[arg(long, env = "BLAXEL_RESYNC_INTERVAL", default_value = "10m", value_parser = resync_period)]
    pub resync_interval: Duration,
    /// How often a pending invitation is looked at again.
    #[arg(long, env = "BLAXEL_INVITATION_POLL_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub invitation_poll_interval: Duration,
    /// How often a sandbox in a transitional status is looked at again.
    #[arg(long, env = "BLAXEL_TRANSITION_POLL_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub transition_poll_interval: Duration,
    /// Reconciles running at once, per kind.
    #[arg(long, env = "BLAXEL_MAX_CONCURRENT_RECONCILES", default_value_t = 16)]
    pub max_concurrent_reconciles: u16,
    /// Requests per second to the Blaxel API, per credential.
    #[arg(long, env = "BLAXEL_API_RATE_LIMIT", default_value_t = 10.0)]
    pub api_rate_limit: f64,
    /// Requests allowed in a burst above the rate, per credential.
    #[arg(long, env = "BLAXEL_API_BURST", default_value_t = 20)]
    pub api_burst: u32,
    /// How many times an invitation is sent again after it expired or disappeared unaccepted (declined,
    /// or revoked by hand).
    #[arg(long, env = "BLAXEL_MAX_REINVITES", default_value_t = 3)]
    pub max_reinvites: u32,
    /// This operator instance's name, part of the ownership it writes on remote sandboxes. Give each
    /// cluster that manages the same workspace its own; the default (empty) keeps the labels written
    /// before instances existed.
    #[arg(long, env = "BLAXEL_INSTANCE", default_value = "", value_parser = instance_name)]
    pub instance: String,
    /// Remote removals (members removed, invitations revoked, sandboxes deleted) allowed per workspace
    /// within --removal-window; past it removals wait for a person (0: no limit).
    #[arg(long, env = "BLAXEL_REMOVAL_LIMIT", default_value_t = 10)]
    pub removal_limit: u32,
    /// The window of --removal-limit.
    #[arg(long, env = "BLAXEL_REMOVAL_WINDOW", default_value = "10m", value_parser = humantime::parse_duration)]
    pub removal_window: Duration,
    /// Keep private previews' tokens in Secrets (the operator then creates, updates and deletes the
    /// Secrets it makes); with false it writes no Secret and private previews get no token.
    #[arg(long, env = "BLAXEL_PREVIEW_TOKENS", default_value_t = true, action = clap::ArgAction::Set)]
    pub preview_tokens: bool,
    /// First retry delay after a transient failure (doubles per failure, jittered).
    #[arg(long, env = "BLAXEL_BACKOFF_BASE", default_value = "1s", value_parser = humantime::parse_duration)]
    pub backoff_base: Duration,
    /// Longest retry delay.
    #[arg(long, env = "BLAXEL_BACKOFF_MAX", default_value = "5m", value_parser = humantime::parse_duration)]
    pub backoff_max: Duration,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "BLAXEL_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Log format.
    #[arg(long, env = "BLAXEL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Metrics, health endpoints, leader election and trace export.
    #[command(flatten)]
    pub ops: crate::ops::OpsArgs,
}

/// The shortest resync period: a zero one would reconcile every settled object without pause.
const MIN_RESYNC: Duration = Duration::from_secs(1);

/// Parses a resync period: a duration of at least [`MIN_RESYNC`].
fn resync_period(value: &str) -> Result<Duration, String> {
    let period = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if period < MIN_RESYNC {
        return Err(format!(
            "must be at least {}",
            humantime::format_duration(MIN_RESYNC)
        ));
    }
    Ok(period)
}

/// Parses an instance name: empty, or a label value (at most 63 of `[A-Za-z0-9._-]`, alphanumeric at
/// both ends).
fn instance_name(value: &str) -> Result<String, String> {
    let ok = value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(value.to_owned())
    } else {
        Err("must be at most 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit".to_owned())
    }
}

impl OperatorArgs {
    /// The controllers' configuration (the default key is read separately, see [`Self::default_key`]).
    #[must_use]
    pub fn controller_config(&self, default_key: DefaultKey) -> ControllerConfig {
        ControllerConfig {
            settings: Settings {
                resync: self.resync_interval,
                invitation_poll: self.invitation_poll_interval,
                transition_poll: self.transition_poll_interval,
                max_reinvites: self.max_reinvites,
                instance: Some(self.instance.clone()).filter(|i| !i.is_empty()),
                preview_tokens: self.preview_tokens,
                ..Settings::default()
            },
            credentials: DefaultCredentials {
                key: default_key,
                namespaces: self
                    .default_credentials_namespaces
                    .iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            },
            max_concurrent_reconciles: self.max_concurrent_reconciles.max(1),
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
            reporter: "blaxel-operator".to_owned(),
            namespace: self.watch_namespace.clone(),
            metrics: std::sync::Arc::default(),
            removal_limit: self.removal_limit,
            removal_window: self.removal_window,
            // Beside the leader Lease: the operator's own namespace.
            removal_store_namespace: Some(self.ops.leader_config().lease_namespace),
            liveness: std::sync::Arc::default(),
        }
    }

    /// The default key: the file's content when `--api-key-file` is given (read again whenever it
    /// changes), else `BL_API_KEY`.
    ///
    /// # Errors
    /// When the file cannot be read (the message names the file, never its content).
    pub fn default_key(&self) -> Result<DefaultKey, std::io::Error> {
        DefaultKey::configured(self.api_key_file.as_deref())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use clap::Parser;

    use super::*;

    fn resync(value: &str) -> Result<Duration, String> {
        Cli::try_parse_from(["blaxel-operator", "run", "--resync-interval", value])
            .map(|cli| match cli.command {
                Command::Run(args) => args.resync_interval,
                other => unreachable!("{other:?}"),
            })
            .map_err(|e| e.to_string())
    }

    /// A resync period shorter than a second is refused with the reason; longer ones are taken.
    #[test]
    fn resync_period_is_at_least_a_second() {
        assert_eq!(resync("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(resync("1s").unwrap(), Duration::from_secs(1));
        for short in ["0s", "500ms"] {
            let error = resync(short).unwrap_err();
            assert!(error.contains("must be at least 1s"), "{error}");
        }
        assert!(resync("soon").is_err());
    }
}
