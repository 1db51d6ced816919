//! Simulator configuration: the `simulate` command-line flags ([`SimArgs`]) and the validated settings the
//! server runs with ([`SimConfig`]).
//!
//! Every flag also reads an environment variable (`BLAXEL_SIM_*`), so the simulator can be configured in a
//! container without a command line. Durations use `humantime` syntax (`500ms`, `2s`, `5m`, `7d`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which generation of the Blaxel control-plane API the simulator speaks.
///
/// The operator is specified against the 2025-11-28 definition and must keep working against today's
/// (2026-08-21) one, so the simulator can play either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
pub enum ApiGeneration {
    /// The 2025-11-28 API: `PUT /sandboxes/{name}/start|stop`, `POST /workspaces/{ws}/join|decline`,
    /// `GET /sandboxes` always a bare array, no `state` on sandboxes.
    #[default]
    #[value(name = "2025")]
    #[serde(rename = "2025")]
    V2025,
    /// Today's API (2026-08-21): no start/stop or join/decline routes (they answer 404), power is controlled by
    /// `spec.enabled`, sandboxes carry `state: RUNNING|STANDBY`, and `GET /sandboxes` is paginated when the
    /// request carries `Blaxel-Version: 2026-04-28` or later.
    #[value(name = "2026")]
    #[serde(rename = "2026")]
    V2026,
}

impl ApiGeneration {
    /// Whether this generation serves the 2025-only routes (start/stop, join/decline).
    #[must_use]
    pub fn has_legacy_routes(self) -> bool {
        self == Self::V2025
    }
}

/// An API key and the one workspace it is valid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// The bearer token clients send.
    #[serde(skip_serializing)]
    pub key: String,
    /// The workspace the key belongs to; using it for another workspace answers 403.
    pub workspace: String,
}

impl std::str::FromStr for ApiKey {
    type Err = String;

    /// Parses `KEY=WORKSPACE`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, workspace) = s
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=WORKSPACE, got {s:?}"))?;
        let (key, workspace) = (key.trim(), workspace.trim());
        if key.is_empty() || workspace.is_empty() {
            return Err(format!(
                "expected KEY=WORKSPACE with both parts non-empty, got {s:?}"
            ));
        }
        if key.starts_with(crate::sim::auth::USER_TOKEN_PREFIX) {
            return Err(format!(
                "API keys must not start with {:?}: that prefix names simulated user tokens",
                crate::sim::auth::USER_TOKEN_PREFIX
            ));
        }
        Ok(Self {
            key: key.to_owned(),
            workspace: workspace.to_owned(),
        })
    }
}

/// A per-key token-bucket rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Sustained requests per second allowed for one API key.
    pub per_second: f64,
    /// Bucket size: how many requests may arrive at once after a quiet period.
    pub burst: u32,
}

/// Injected faults. They apply to `/v0` routes only, never to `/_sim/`, and can be changed at run time
/// through `PUT /_sim/faults`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    /// Added to every request before it is handled.
    #[serde(rename = "latencyMs", with = "duration_ms")]
    pub latency: Duration,
    /// Uniform random extra latency in `[0, jitter]`.
    #[serde(rename = "latencyJitterMs", with = "duration_ms")]
    pub latency_jitter: Duration,
    /// Per-key rate limit; excess requests get 429 with `Retry-After` and `Retry-After-Ms`.
    pub rate_limit: Option<RateLimit>,
    /// Fraction (0..=1) of requests answered with an injected 5xx.
    pub error_rate: f64,
    /// Fraction (0..=1) of requests whose connection is closed without any response.
    pub drop_rate: f64,
    /// Fraction (0..=1) of requests handled (their change made) whose answer is then lost: the connection
    /// closes without it, and the client cannot tell whether its write happened.
    #[serde(default)]
    pub lost_answer_rate: f64,
}

/// Serde helper: a [`Duration`] as an integer number of milliseconds.
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Everything the simulator needs to run. Build it from [`SimArgs`] or start from [`SimConfig::default`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// API keys and their workspaces. When empty, the simulator accepts the single key
    /// [`SimConfig::DEFAULT_API_KEY`] for workspace [`SimConfig::DEFAULT_WORKSPACE`].
    pub api_keys: Vec<ApiKey>,
    /// Which API generation to speak.
    pub generation: ApiGeneration,
    /// How long a sandbox stays `DEPLOYING` before it is `DEPLOYED` (after create or start).
    pub deploy_time: Duration,
    /// How long a stopped sandbox stays `DEACTIVATING` before it is `DEACTIVATED`.
    pub stop_time: Duration,
    /// How long a deleted sandbox stays `DELETING` before it is `TERMINATED`.
    pub delete_time: Duration,
    /// How long a `TERMINATED` sandbox stays visible before it answers 404.
    pub termination_retention: Duration,
    /// Pending invitations are accepted automatically this long after they were sent; `None`: never.
    pub auto_accept_after: Option<Duration>,
    /// Pending invitations expire (`expired: true`) this long after they were sent; `None`: never.
    pub invite_ttl: Option<Duration>,
    /// Images whose sandboxes end in `FAILED` instead of `DEPLOYED` (exact match on `spec.runtime.image`).
    pub failing_images: Vec<String>,
    /// Faults in force at start (changeable at run time).
    pub faults: Faults,
    /// Seed for every random choice (faults, tokens); `None`: seeded from the OS.
    pub seed: Option<u64>,
    /// When true the simulator clock moves only through `POST /_sim/clock/advance`, not with real time.
    pub manual_clock: bool,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Keys of the simulator's one account: they list, create, update and delete the account's workspaces
    /// and act in any of them (the workspace chosen per request by `X-Blaxel-Workspace`).
    pub account_keys: Vec<String>,
    /// How long a new workspace takes to pass from `created` through `account_binded`, `account_configured`
    /// and `workspace_configured` to `ready` (each step a quarter of it). Workspaces named by
    /// [`SimConfig::api_keys`] are `ready` from the start.
    pub workspace_ready_time: Duration,
    /// Workspace names taken by another account: never available, and this account's keys get 403 on them.
    pub foreign_workspaces: Vec<String>,
}

impl SimConfig {
    /// The API key accepted when no key is configured.
    pub const DEFAULT_API_KEY: &'static str = "sim-key";
    /// The workspace of [`SimConfig::DEFAULT_API_KEY`].
    pub const DEFAULT_WORKSPACE: &'static str = "sim";

    /// The configured keys, or the default key when none is configured.
    #[must_use]
    pub fn effective_api_keys(&self) -> Vec<ApiKey> {
        if self.api_keys.is_empty() {
            vec![ApiKey {
                key: Self::DEFAULT_API_KEY.to_owned(),
                workspace: Self::DEFAULT_WORKSPACE.to_owned(),
            }]
        } else {
            self.api_keys.clone()
        }
    }

    /// Checks the values clap cannot check on its own (fractions, rates), and that keys and workspace names
    /// do not contradict each other.
    ///
    /// # Errors
    /// A human-readable description of the first invalid value.
    pub fn validate(&self) -> Result<(), String> {
        validate_faults(&self.faults)?;
        if self.max_body_bytes == 0 {
            return Err("max body size must be positive".to_owned());
        }
        let workspace_keys = self.effective_api_keys();
        for key in &self.account_keys {
            if &parse_account_key(key)? != key {
                return Err("an account key must not have surrounding spaces".to_owned());
            }
            if workspace_keys.iter().any(|k| &k.key == key) {
                return Err(format!(
                    "key {:?} is given both as an account key and as a workspace key",
                    redact(key)
                ));
            }
        }
        for name in &self.foreign_workspaces {
            crate::sim::util::validate_name(
                "workspace",
                name,
                crate::sim::workspaces::MAX_NAME_LEN,
            )?;
            if workspace_keys.iter().any(|k| &k.workspace == name) {
                return Err(format!(
                    "workspace {name:?} is bound to an API key, so it cannot also belong to another account"
                ));
            }
        }
        Ok(())
    }
}

/// Checks fault settings: fractions within `0..=1`, a positive finite rate and a non-zero burst.
pub(crate) fn validate_faults(f: &Faults) -> Result<(), String> {
    for (name, v) in [
        ("error rate", f.error_rate),
        ("drop rate", f.drop_rate),
        ("lost answer rate", f.lost_answer_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(format!(
                "{name} must be a fraction between 0 and 1, got {v}"
            ));
        }
    }
    if let Some(rl) = f.rate_limit {
        if !(rl.per_second.is_finite() && rl.per_second > 0.0) {
            return Err(format!(
                "rate limit must be a positive number of requests per second, got {}",
                rl.per_second
            ));
        }
        if rl.burst == 0 {
            return Err("rate limit burst must be at least 1".to_owned());
        }
    }
    Ok(())
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            api_keys: Vec::new(),
            generation: ApiGeneration::V2025,
            deploy_time: Duration::from_secs(2),
            stop_time: Duration::from_secs(1),
            delete_time: Duration::from_secs(1),
            termination_retention: Duration::from_secs(5 * 60),
            auto_accept_after: None,
            invite_ttl: Some(Duration::from_secs(7 * 24 * 3600)),
            failing_images: Vec::new(),
            faults: Faults::default(),
            seed: None,
            manual_clock: false,
            max_body_bytes: 1024 * 1024,
            account_keys: Vec::new(),
            workspace_ready_time: Duration::from_secs(1),
            foreign_workspaces: Vec::new(),
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?}: {e} (examples: 500ms, 2s, 5m, 7d)"))
}

/// `never`/`off`/`none` mean "no duration"; anything else is a humantime duration.
fn parse_optional_duration(s: &str) -> Result<OptionalDuration, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "never" | "off" | "none" => Ok(OptionalDuration(None)),
        _ => parse_duration(s).map(|d| OptionalDuration(Some(d))),
    }
}

/// The first characters of a key, for error messages that must not print a whole secret.
fn redact(key: &str) -> String {
    let head: String = key.chars().take(4).collect();
    format!("{head}…")
}

/// Checks an account key (trimmed): non-empty, not a simulated user token.
fn parse_account_key(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("an account key must not be empty".to_owned());
    }
    if s.starts_with(crate::sim::auth::USER_TOKEN_PREFIX) {
        return Err(format!(
            "account keys must not start with {:?}: that prefix names simulated user tokens",
            crate::sim::auth::USER_TOKEN_PREFIX
        ));
    }
    Ok(s.to_owned())
}

/// Checks a workspace name given on the command line.
fn parse_workspace_name(s: &str) -> Result<String, String> {
    let s = s.trim();
    crate::sim::util::validate_name("workspace", s, crate::sim::workspaces::MAX_NAME_LEN)?;
    Ok(s.to_owned())
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|e| format!("invalid fraction {s:?}: {e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("expected a fraction between 0 and 1, got {v}"))
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let v: f64 = t.parse().map_err(|e| format!("invalid rate {s:?}: {e}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!(
            "rate must be a positive number of requests per second, got {v}"
        ))
    }
}

/// A duration flag that may also be switched off (`never`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDuration(pub Option<Duration>);

/// The `simulate` subcommand's flags. Flatten it into the binary's command with `#[command(flatten)]` and
/// hand it to [`crate::sim::run`].
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on (host:port).
    #[arg(long, env = "BLAXEL_SIM_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: String,

    /// API key bound to a workspace, as KEY=WORKSPACE; repeatable (or comma-separated in the variable).
    /// Without any, the key `sim-key` is accepted for workspace `sim`.
    #[arg(
        long = "api-key",
        env = "BLAXEL_SIM_API_KEYS",
        hide_env_values = true,
        value_name = "KEY=WORKSPACE",
        value_delimiter = ','
    )]
    pub api_keys: Vec<ApiKey>,

    /// API generation to speak: 2025 (the contract: start/stop, join/decline) or 2026 (today's API).
    #[arg(
        long,
        env = "BLAXEL_SIM_API_GENERATION",
        value_enum,
        default_value = "2025"
    )]
    pub api_generation: ApiGeneration,

    /// How long a sandbox stays DEPLOYING before it is DEPLOYED.
    #[arg(long, env = "BLAXEL_SIM_DEPLOY_TIME", value_parser = parse_duration, default_value = "2s")]
    pub deploy_time: Duration,

    /// How long a stopped sandbox stays DEACTIVATING before it is DEACTIVATED.
    #[arg(long, env = "BLAXEL_SIM_STOP_TIME", value_parser = parse_duration, default_value = "1s")]
    pub stop_time: Duration,

    /// How long a deleted sandbox stays DELETING before it is TERMINATED.
    #[arg(long, env = "BLAXEL_SIM_DELETE_TIME", value_parser = parse_duration, default_value = "1s")]
    pub delete_time: Duration,

    /// How long a TERMINATED sandbox stays visible before it answers 404.
    #[arg(long, env = "BLAXEL_SIM_TERMINATION_RETENTION", value_parser = parse_duration, default_value = "5m")]
    pub termination_retention: Duration,

    /// Accept pending invitations automatically this long after they were sent ("never" to disable).
    #[arg(long, env = "BLAXEL_SIM_AUTO_ACCEPT_AFTER", value_parser = parse_optional_duration, default_value = "never")]
    pub auto_accept_after: OptionalDuration,

    /// Pending invitations expire this long after they were sent ("never" to disable).
    #[arg(long, env = "BLAXEL_SIM_INVITE_TTL", value_parser = parse_optional_duration, default_value = "7d")]
    pub invite_ttl: OptionalDuration,

    /// Sandboxes created with this image end in FAILED instead of DEPLOYED; repeatable.
    #[arg(
        long = "fail-image",
        env = "BLAXEL_SIM_FAIL_IMAGES",
        value_name = "IMAGE",
        value_delimiter = ','
    )]
    pub failing_images: Vec<String>,

    /// Latency added to every API request.
    #[arg(long, env = "BLAXEL_SIM_LATENCY", value_parser = parse_duration, default_value = "0ms")]
    pub latency: Duration,

    /// Uniform random extra latency, up to this much.
    #[arg(long, env = "BLAXEL_SIM_LATENCY_JITTER", value_parser = parse_duration, default_value = "0ms")]
    pub latency_jitter: Duration,

    /// Per-key rate limit in requests per second (e.g. 20 or 20/s); excess requests get 429.
    #[arg(long, env = "BLAXEL_SIM_RATE_LIMIT", value_parser = parse_rate)]
    pub rate_limit: Option<f64>,

    /// Burst allowed by the rate limit (default: the rate, rounded up).
    #[arg(long, env = "BLAXEL_SIM_RATE_LIMIT_BURST", requires = "rate_limit")]
    pub rate_limit_burst: Option<u32>,

    /// Fraction (0..1) of API requests answered with an injected 5xx.
    #[arg(long, env = "BLAXEL_SIM_ERROR_RATE", value_parser = parse_fraction, default_value = "0")]
    pub error_rate: f64,

    /// Fraction (0..1) of API requests whose connection is closed without a response.
    #[arg(long, env = "BLAXEL_SIM_DROP_RATE", value_parser = parse_fraction, default_value = "0")]
    pub drop_rate: f64,

    /// Fraction (0..1) of API requests handled, then closed without the answer (the write happened).
    #[arg(long, env = "BLAXEL_SIM_LOST_ANSWER_RATE", value_parser = parse_fraction, default_value = "0")]
    pub lost_answer_rate: f64,

    /// Seed for every random choice, making fault injection reproducible.
    #[arg(long, env = "BLAXEL_SIM_SEED")]
    pub seed: Option<u64>,

    /// Freeze the simulator clock: time moves only through POST /_sim/clock/advance.
    #[arg(long, env = "BLAXEL_SIM_MANUAL_CLOCK")]
    pub manual_clock: bool,

    /// Largest accepted request body in bytes (larger ones get 413).
    #[arg(long, env = "BLAXEL_SIM_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Key of the simulator's one account: it manages the account's workspaces (/workspaces) and acts in any
    /// of them (chosen by X-Blaxel-Workspace); repeatable (or comma-separated in the variable).
    #[arg(
        long = "account-key",
        env = "BLAXEL_SIM_ACCOUNT_KEYS",
        hide_env_values = true,
        value_name = "KEY",
        value_delimiter = ',',
        value_parser = parse_account_key
    )]
    pub account_keys: Vec<String>,

    /// How long a new workspace takes to become ready (created, account_binded, account_configured,
    /// workspace_configured, each a quarter of it, then ready).
    #[arg(long, env = "BLAXEL_SIM_WORKSPACE_READY_TIME", value_parser = parse_duration, default_value = "1s")]
    pub workspace_ready_time: Duration,

    /// Workspace name taken by another account (never available; 403 to this account); repeatable.
    #[arg(
        long = "foreign-workspace",
        env = "BLAXEL_SIM_FOREIGN_WORKSPACES",
        value_name = "NAME",
        value_delimiter = ',',
        value_parser = parse_workspace_name
    )]
    pub foreign_workspaces: Vec<String>,
}

impl From<&SimArgs> for SimConfig {
    fn from(a: &SimArgs) -> Self {
        let rate_limit = a.rate_limit.map(|per_second| RateLimit {
            per_second,
            burst: a
                .rate_limit_burst
                .unwrap_or_else(|| default_burst(per_second)),
        });
        Self {
            api_keys: a.api_keys.clone(),
            generation: a.api_generation,
            deploy_time: a.deploy_time,
            stop_time: a.stop_time,
            delete_time: a.delete_time,
            termination_retention: a.termination_retention,
            auto_accept_after: a.auto_accept_after.0,
            invite_ttl: a.invite_ttl.0,
            failing_images: a.failing_images.clone(),
            faults: Faults {
                latency: a.latency,
                latency_jitter: a.latency_jitter,
                rate_limit,
                error_rate: a.error_rate,
                drop_rate: a.drop_rate,
                lost_answer_rate: a.lost_answer_rate,
            },
            seed: a.seed,
            manual_clock: a.manual_clock,
            max_body_bytes: a.max_body_bytes,
            account_keys: a.account_keys.clone(),
            workspace_ready_time: a.workspace_ready_time,
            foreign_workspaces: a.foreign_workspaces.clone(),
        }
    }
}

impl From<SimArgs> for SimConfig {
    fn from(a: SimArgs) -> Self {
        Self::from(&a)
    }
}

/// The burst used when only a rate is given: one second's worth of requests, at least one.
pub(crate) fn default_burst(per_second: f64) -> u32 {
    let ceil = per_second.ceil();
    if ceil >= f64::from(u32::MAX) {
        u32::MAX
    } else if ceil < 1.0 {
        1
    } else {
        // In range by the checks above.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "range checked above"
        )]
        let b = ceil as u32;
        b
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    /// The defaults of the flags equal `SimConfig::default()`, so library and CLI users get the same simulator.
    #[test]
    fn flag_defaults_match_config_default() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(SimConfig::from(cli.sim), SimConfig::default());
    }

    /// Every documented flag parses into the matching config field.
    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "x",
            "--api-key",
            "k1=ws1",
            "--api-key",
            "k2=ws2",
            "--api-generation",
            "2026",
            "--deploy-time",
            "3s",
            "--auto-accept-after",
            "10m",
            "--invite-ttl",
            "never",
            "--rate-limit",
            "5/s",
            "--error-rate",
            "0.25",
            "--seed",
            "7",
            "--account-key",
            "acct-1",
            "--account-key",
            "acct-2",
            "--workspace-ready-time",
            "4s",
            "--foreign-workspace",
            "taken-elsewhere",
        ])
        .unwrap();
        let c = SimConfig::from(cli.sim);
        assert_eq!(c.api_keys.len(), 2);
        assert_eq!(c.api_keys[1].workspace, "ws2");
        assert_eq!(c.generation, ApiGeneration::V2026);
        assert_eq!(c.deploy_time, Duration::from_secs(3));
        assert_eq!(c.auto_accept_after, Some(Duration::from_secs(600)));
        assert_eq!(c.invite_ttl, None);
        assert_eq!(
            c.faults.rate_limit,
            Some(RateLimit {
                per_second: 5.0,
                burst: 5
            })
        );
        assert!((c.faults.error_rate - 0.25).abs() < f64::EPSILON);
        assert_eq!(c.seed, Some(7));
        assert_eq!(
            c.account_keys,
            vec!["acct-1".to_owned(), "acct-2".to_owned()]
        );
        assert_eq!(c.workspace_ready_time, Duration::from_secs(4));
        assert_eq!(c.foreign_workspaces, vec!["taken-elsewhere".to_owned()]);
        assert!(c.validate().is_ok());
    }

    /// Out-of-range fractions and malformed keys are rejected at parse time, not at the first request.
    #[test]
    fn bad_flags_rejected() {
        assert!(Cli::try_parse_from(["x", "--error-rate", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["x", "--api-key", "nokey"]).is_err());
        assert!(Cli::try_parse_from(["x", "--api-key", "user:a=ws"]).is_err());
        assert!(Cli::try_parse_from(["x", "--deploy-time", "soon"]).is_err());
        assert!(Cli::try_parse_from(["x", "--account-key", "user:a"]).is_err());
        assert!(Cli::try_parse_from(["x", "--account-key", ""]).is_err());
        assert!(Cli::try_parse_from(["x", "--foreign-workspace", "Not_A_Name"]).is_err());
    }

    /// A key cannot be both an account key and a workspace key, and a foreign name cannot be one of this
    /// account's workspaces: such configurations are refused before the server starts.
    #[test]
    fn contradictory_keys_and_names_rejected() {
        let both = SimConfig {
            account_keys: vec![SimConfig::DEFAULT_API_KEY.to_owned()],
            ..SimConfig::default()
        };
        assert!(both.validate().is_err());
        let ours = SimConfig {
            foreign_workspaces: vec![SimConfig::DEFAULT_WORKSPACE.to_owned()],
            ..SimConfig::default()
        };
        assert!(ours.validate().is_err());
        let fine = SimConfig {
            account_keys: vec!["acct".to_owned()],
            foreign_workspaces: vec!["elsewhere".to_owned()],
            ..SimConfig::default()
        };
        assert!(fine.validate().is_ok());
    }
}
