//! `blaxel-operator demo`: the README's first command.
//!
//! Starts (or reuses) a Kubernetes API server, the Blaxel simulator and the operator in this process,
//! installs the CRDs, applies the `examples/`, and shows the objects converging in a live table with the
//! columns `kubectl get` prints. Everything it started is stopped on exit or Ctrl-C.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::Value;
use tokio::sync::watch;

use crate::blaxel::client::{ClientConfig, HttpClient};
use crate::controller::{self, ControllerConfig};
use crate::crd::{self, Sandbox, WorkspaceMember};
use crate::kube_local::{self, LocalApiServer, StartOptions};
use crate::reconcile::Settings;
use crate::reconcile::conditions;
use crate::sim::{self, SimConfig};

/// The examples the demo applies (the files under `examples/`, built in so the demo runs from anywhere).
const EXAMPLES: [(&str, &str); 4] = [
    (
        "00-namespace.yaml",
        include_str!("../examples/00-namespace.yaml"),
    ),
    (
        "01-credentials.yaml",
        include_str!("../examples/01-credentials.yaml"),
    ),
    (
        "10-members.yaml",
        include_str!("../examples/10-members.yaml"),
    ),
    (
        "20-sandboxes.yaml",
        include_str!("../examples/20-sandboxes.yaml"),
    ),
];
/// The namespace the examples live in.
const NAMESPACE: &str = "blaxel-demo";
/// The simulator key the example Secret holds, bound to the example workspace.
const DEMO_KEY: &str = "demo-acme-key=acme";
const FIELD_MANAGER: &str = "blaxel-operator-demo";

/// Options of `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Use this cluster instead of starting the local API server (also read from `KUBECONFIG`). The demo
    /// installs the CRDs there and applies the examples into the `blaxel-demo` namespace.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Give up waiting for convergence after this long.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Keep everything running after convergence, until Ctrl-C (to explore with kubectl).
    #[arg(long)]
    pub keep_running: bool,
    /// How long the simulated invitees take to accept.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    pub accept_after: Duration,
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The local API server could not start.
    #[error("local Kubernetes API server: {0}")]
    KubeLocal(#[from] kube_local::Error),
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An example could not be read.
    #[error("example {file}: {message}")]
    Example {
        /// The example file.
        file: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Something else (simulator, client, CRDs).
    #[error("{0}")]
    Other(String),
}

/// Runs the demo to the end.
///
/// # Errors
/// When a part cannot start or an example cannot be applied.
pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    let started = Instant::now();
    let (client, server) = cluster(args.kubeconfig.as_deref()).await?;
    install_crds(&client).await?;
    let simulator = sim::spawn(SimConfig {
        api_keys: vec![DEMO_KEY.parse().map_err(DemoError::Other)?],
        auto_accept_after: Some(args.accept_after),
        deploy_time: Duration::from_secs(3),
        stop_time: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await
    .map_err(|e| DemoError::Other(format!("simulator: {e}")))?;
    crate::say!(
        "Blaxel simulator serving {} (workspace acme)",
        simulator.base_url()
    );

    let api = HttpClient::new(ClientConfig {
        base_url: simulator.base_url(),
        ..ClientConfig::default()
    })
    .map_err(|e| DemoError::Other(e.to_string()))?;
    let config = ControllerConfig {
        settings: Settings {
            invitation_poll: Duration::from_secs(1),
            transition_poll: Duration::from_millis(500),
            ..Settings::default()
        },
        namespace: Some(NAMESPACE.to_owned()),
        ..ControllerConfig::default()
    };
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let (ready_tx, _) = watch::channel(false);
    let stopped = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };
    let operator = tokio::spawn(controller::run(
        client.clone(),
        Arc::new(api),
        config,
        stopped,
        ready_tx,
    ));
    apply_examples(&client).await?;
    crate::say!("Applied examples/ into namespace {NAMESPACE}; the operator is converging them:\n");

    let outcome = tokio::select! {
        converged = watch_table(&client, args.timeout) => converged,
        _ = tokio::signal::ctrl_c() => Ok(false),
    };
    print_summary(&outcome, started, &simulator.stats());
    if args.keep_running && matches!(outcome, Ok(true)) {
        if let Some(server) = &server {
            crate::say!(
                "\nStill running. Try: kubectl --kubeconfig {} get wsm,sbx -n {NAMESPACE}\nPress Ctrl-C to stop.",
                server.kubeconfig_path().display()
            );
        }
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop_tx.send(true);
    let _ = operator.await;
    let _ = simulator.shutdown().await;
    if let Some(mut server) = server {
        server.stop()?;
        crate::say!("Stopped the operator, the simulator and the local API server.");
    }
    outcome.map(|_| ())
}

fn print_summary(outcome: &Result<bool, DemoError>, started: Instant, stats: &Value) {
    let summary = match outcome {
        Ok(true) => format!(
            "All objects Ready {:.1}s after start.",
            started.elapsed().as_secs_f64()
        ),
        Ok(false) => "Stopped before every object was Ready.".to_owned(),
        Err(e) => format!("Stopped: {e}"),
    };
    let total = stats["total"].as_u64().unwrap_or(0);
    let reads = stats["byMethod"]["GET"].as_u64().unwrap_or(0);
    crate::say!("\n{summary}");
    crate::say!(
        "Blaxel API requests: {total} in all ({reads} reads, {} writes).",
        total.saturating_sub(reads)
    );
}

/// A client for the given cluster, or for a local API server started (and returned) for the demo.
async fn cluster(
    kubeconfig: Option<&std::path::Path>,
) -> Result<(kube::Client, Option<LocalApiServer>), DemoError> {
    if let Some(path) = kubeconfig {
        crate::say!("Using the cluster in {}", path.display());
        return Ok((kube_local::client_from_kubeconfig(path).await?, None));
    }
    crate::say!(
        "Starting the local Kubernetes API server (the first run builds it: a few minutes)..."
    );
    let server = LocalApiServer::start(StartOptions::default()).await?;
    crate::say!(
        "Kubernetes API server ready; kubeconfig: {}",
        server.kubeconfig_path().display()
    );
    Ok((server.client().await?, Some(server)))
}

async fn install_crds(client: &kube::Client) -> Result<(), DemoError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crd::all() {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for crd in crd::all() {
        loop {
            let current = api.get(&crd.name_any()).await?;
            let established = current.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            if Instant::now() > deadline {
                return Err(DemoError::Other(format!(
                    "CRD {} not Established after 30s",
                    crd.name_any()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

async fn apply_examples(client: &kube::Client) -> Result<(), DemoError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for (file, text) in EXAMPLES {
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value = Value::deserialize_from(doc)
                .map_err(|message| DemoError::Example { file, message })?;
            if value.is_null() {
                continue;
            }
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let patch = Patch::Apply(&value);
            match value["kind"].as_str() {
                Some("Namespace") => drop(
                    Api::<Namespace>::all(client.clone())
                        .patch(&name, &params, &patch)
                        .await?,
                ),
                Some("Secret") => {
                    drop(
                        Api::<Secret>::namespaced(client.clone(), NAMESPACE)
                            .patch(&name, &params, &patch)
                            .await?,
                    );
                }
                Some("WorkspaceMember") => drop(
                    Api::<WorkspaceMember>::namespaced(client.clone(), NAMESPACE)
                        .patch(&name, &params, &patch)
                        .await?,
                ),
                Some("Sandbox") => {
                    drop(
                        Api::<Sandbox>::namespaced(client.clone(), NAMESPACE)
                            .patch(&name, &params, &patch)
                            .await?,
                    );
                }
                other => {
                    return Err(DemoError::Example {
                        file,
                        message: format!("unexpected kind {other:?}"),
                    });
                }
            }
        }
    }
    Ok(())
}

trait DeserializeFrom: Sized {
    fn deserialize_from(doc: serde_yaml::Deserializer<'_>) -> Result<Self, String>;
}

impl DeserializeFrom for Value {
    fn deserialize_from(doc: serde_yaml::Deserializer<'_>) -> Result<Self, String> {
        serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())
    }
}

/// Redraws the table until every object is Ready (true) or the timeout passes (false).
async fn watch_table(client: &kube::Client, timeout: Duration) -> Result<bool, DemoError> {
    let members: Api<WorkspaceMember> = Api::namespaced(client.clone(), NAMESPACE);
    let sandboxes: Api<Sandbox> = Api::namespaced(client.clone(), NAMESPACE);
    let tty = std::io::stdout().is_terminal();
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    let mut drawn_lines = 0;
    loop {
        let ms = members.list(&ListParams::default()).await?.items;
        let ss = sandboxes.list(&ListParams::default()).await?.items;
        let (table, all_ready) = render(&ms, &ss);
        if table != last {
            let mut out = std::io::stdout().lock();
            if tty && drawn_lines > 0 {
                // Move back up over the previous table and clear it.
                let _ = write!(out, "\x1b[{drawn_lines}A\x1b[J");
            }
            let _ = write!(out, "{table}");
            let _ = out.flush();
            drawn_lines = table.lines().count();
            last = table;
        }
        if all_ready {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The table `kubectl get wsm,sbx` would print, and whether every object is Ready.
fn render(members: &[WorkspaceMember], sandboxes: &[Sandbox]) -> (String, bool) {
    let mut rows = vec![[
        "NAME".to_owned(),
        "READY".into(),
        "PHASE".into(),
        "WORKSPACE".into(),
        "DETAIL".into(),
        "REASON".into(),
    ]];
    let mut all_ready = !members.is_empty() || !sandboxes.is_empty();
    for m in members {
        let status = m.status.as_ref();
        let ready = ready_of(status.map(|s| &s.conditions));
        all_ready &= ready == "True";
        rows.push([
            format!("workspacemember/{}", m.name_any()),
            ready.to_owned(),
            status
                .and_then(|s| s.phase)
                .map_or_else(|| "-".to_owned(), |p| format!("{p:?}")),
            m.spec.workspace.clone(),
            format!("{} ({})", m.spec.email, m.spec.role.as_str()),
            reason(status.map(|s| &s.conditions)),
        ]);
    }
    for s in sandboxes {
        let status = s.status.as_ref();
        let ready = ready_of(status.map(|s| &s.conditions));
        all_ready &= ready == "True";
        rows.push([
            format!("sandbox/{}", s.name_any()),
            ready.to_owned(),
            status
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "-".to_owned()),
            s.spec.workspace.clone(),
            format!(
                "{} (want {:?})",
                status
                    .and_then(|s| s.state)
                    .map_or_else(|| "-".to_owned(), |p| format!("{p:?}")),
                s.spec.state
            ),
            reason(status.map(|s| &s.conditions)),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(out, "{cell:<width$}   ");
        }
        out = out.trim_end().to_owned();
        out.push('\n');
    }
    (out, all_ready)
}

fn ready_of(cs: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>) -> &str {
    cs.and_then(|cs| cs.iter().find(|c| c.type_ == conditions::READY))
        .map_or("-", |c| c.status.as_str())
}

fn reason(cs: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>) -> String {
    cs.and_then(|cs| cs.iter().find(|c| c.type_ == conditions::READY))
        .map_or_else(|| "-".to_owned(), |c| c.reason.clone())
}
