//! `blaxel-operator demo`: the README's first command.
//!
//! Starts a Kubernetes API server of its own (or uses the cluster named by `--kubeconfig` on its command
//! line, never the shell's `KUBECONFIG`), the Blaxel simulator and the operator in this process,
//! installs the CRDs, applies the `examples/`, and shows the objects converging in a live table with the
//! columns `kubectl get` prints. Everything it started is stopped on exit or Ctrl-C; on a given cluster
//! everything it created there is deleted first, while its operator still runs to clear the finalizers.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use crate::blaxel::client::{ClientConfig, HttpClient};
use crate::controller::{self, ControllerConfig};
use crate::crd::{
    self, IntegrationConnection, Sandbox, SandboxPreview, Workspace, WorkspaceMember,
};
use crate::kube_local::{self, LocalApiServer, StartOptions};
use crate::reconcile::Settings;
use crate::reconcile::conditions;
use crate::sim::{self, SimConfig};

/// The examples the demo applies (the files under `examples/`, built in so the demo runs from anywhere).
const EXAMPLES: [(&str, &str); 7] = [
    (
        "00-namespace.yaml",
        include_str!("../examples/00-namespace.yaml"),
    ),
    (
        "01-credentials.yaml",
        include_str!("../examples/01-credentials.yaml"),
    ),
    (
        "05-workspace.yaml",
        include_str!("../examples/05-workspace.yaml"),
    ),
    (
        "10-members.yaml",
        include_str!("../examples/10-members.yaml"),
    ),
    (
        "20-sandboxes.yaml",
        include_str!("../examples/20-sandboxes.yaml"),
    ),
    (
        "30-integration.yaml",
        include_str!("../examples/30-integration.yaml"),
    ),
    (
        "40-preview.yaml",
        include_str!("../examples/40-preview.yaml"),
    ),
];
/// The namespace the examples live in.
pub const NAMESPACE: &str = "blaxel-demo";
/// The simulator key the example Secret holds, bound to the example workspace.
const DEMO_KEY: &str = "demo-acme-key=acme";
const FIELD_MANAGER: &str = "blaxel-operator-demo";
/// How long the clean-up of a given cluster may take before the demo gives up and names what is left.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(90);

/// Options of `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Use this cluster instead of starting the local API server. Only this flag selects a cluster: the
    /// shell's `KUBECONFIG` is ignored, so the demo never writes into a cluster by accident. The demo
    /// installs the CRDs there if they are missing, applies the examples into the `blaxel-demo`
    /// namespace, and deletes everything it created on exit (finalizers included).
    #[arg(long)]
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

/// Which Kubernetes API server the demo talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterChoice {
    /// Start the project's local API server, and stop it on exit.
    Local {
        /// The shell had `KUBECONFIG` set: it is ignored, and the demo says so.
        shell_kubeconfig_ignored: bool,
    },
    /// The cluster of this kubeconfig, given with `--kubeconfig`: what the demo creates there is deleted
    /// on exit.
    Given(PathBuf),
}

impl ClusterChoice {
    /// The choice for the `--kubeconfig` flag and the shell's `KUBECONFIG`: only the flag selects a
    /// cluster, so a shell set up for a real cluster never sends the demo there.
    #[must_use]
    pub fn decide(flag: Option<&Path>, shell_kubeconfig: Option<&OsString>) -> Self {
        match flag {
            Some(path) => Self::Given(path.to_path_buf()),
            None => Self::Local {
                shell_kubeconfig_ignored: shell_kubeconfig.is_some_and(|v| !v.is_empty()),
            },
        }
    }
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

/// One object the demo created in a given cluster (and so deletes on exit).
#[derive(Debug, Clone, PartialEq, Eq)]
enum CreatedObject {
    Crd(String),
    Namespace(String),
    Secret(String),
    Member(String),
    Sandbox(String),
    Workspace(String),
    Connection(String),
    Preview(String),
}

/// Runs the demo to the end.
///
/// # Errors
/// When a part cannot start, an example cannot be applied, or what the demo created in a given
/// cluster could not all be removed.
pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    let choice = ClusterChoice::decide(
        args.kubeconfig.as_deref(),
        std::env::var_os("KUBECONFIG").as_ref(),
    );
    let (client, server) = cluster(&choice).await?;
    let given = server.is_none();
    let mut created = Vec::new();
    install_crds(&client, given, &mut created).await?;
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
    let outcome = async {
        // Timed from the apply: the API server's first build (minutes on a fresh machine) is not
        // the operator's convergence.
        let applied = Instant::now();
        apply_examples(&client, given, &mut created).await?;
        crate::say!(
            "Applied examples/ into namespace {NAMESPACE}; the operator is converging them:\n"
        );
        let converged = tokio::select! {
            converged = watch_table(&client, args.timeout) => converged,
            _ = tokio::signal::ctrl_c() => Ok(false),
        };
        converged.map(|all| all.then(|| applied.elapsed()))
    }
    .await;
    print_summary(&outcome, &simulator.stats());
    if args.keep_running && matches!(outcome, Ok(Some(_))) {
        let kubeconfig = match (&server, &choice) {
            (Some(server), _) => server.kubeconfig_path().to_path_buf(),
            (None, ClusterChoice::Given(path)) => path.clone(),
            (None, ClusterChoice::Local { .. }) => PathBuf::new(),
        };
        crate::say!(
            "\nStill running. Try: kubectl --kubeconfig {} get bws,wsm,sbx,bic,sbxp -n {NAMESPACE}\nPress Ctrl-C to stop.",
            kubeconfig.display()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    // On a given cluster, delete what the demo created while its operator still runs: the operator
    // removes the remote objects from the simulator and then the finalizers.
    let cleaned = if given {
        remove_created(&client, &created).await
    } else {
        Ok(())
    };
    let _ = stop_tx.send(true);
    let _ = operator.await;
    let _ = simulator.shutdown().await;
    if let Some(mut server) = server {
        server.stop()?;
        crate::say!("Stopped the operator, the simulator and the local API server.");
    }
    outcome.and(cleaned)
}

/// The closing lines: how long the objects took from their apply (`None`: not all Ready), and the
/// simulator's request counts.
fn print_summary(outcome: &Result<Option<Duration>, DemoError>, stats: &Value) {
    let summary = match outcome {
        Ok(Some(took)) => format!(
            "All objects Ready {:.1}s after they were applied.",
            took.as_secs_f64()
        ),
        Ok(None) => "Stopped before every object was Ready.".to_owned(),
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

/// A client for the chosen cluster, and the local API server started (and returned) for the demo.
async fn cluster(
    choice: &ClusterChoice,
) -> Result<(kube::Client, Option<LocalApiServer>), DemoError> {
    match choice {
        ClusterChoice::Given(path) => {
            crate::say!(
                "Using the cluster in {} (--kubeconfig); what the demo creates there is deleted on exit",
                path.display()
            );
            return Ok((kube_local::client_from_kubeconfig(path).await?, None));
        }
        ClusterChoice::Local {
            shell_kubeconfig_ignored: true,
        } => crate::say!(
            "KUBECONFIG is set in this shell; the demo ignores it and starts its own API server \
             (pass --kubeconfig to use a cluster)"
        ),
        ClusterChoice::Local { .. } => {}
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

/// Installs the CRDs. On a given cluster, CRDs that are already there are left as they are (another
/// installation's objects may depend on them), and those the demo creates are recorded in `created`.
async fn install_crds(
    client: &kube::Client,
    given: bool,
    created: &mut Vec<CreatedObject>,
) -> Result<(), DemoError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crd::all() {
        let name = crd.name_any();
        if given {
            if api.get_opt(&name).await?.is_some() {
                crate::say!("CRD {name} is already installed: the demo uses it as it is");
                continue;
            }
            created.push(CreatedObject::Crd(name.clone()));
        }
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

/// Applies one object; with `look_first` (a given cluster), answers whether it is new (did not exist
/// before), so the demo deletes it on exit.
async fn apply_one<K>(
    api: &Api<K>,
    name: &str,
    value: &Value,
    look_first: bool,
) -> Result<bool, DemoError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let new = look_first && api.get_opt(name).await?.is_none();
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(value),
    )
    .await?;
    Ok(new)
}

async fn apply_examples(
    client: &kube::Client,
    given: bool,
    created: &mut Vec<CreatedObject>,
) -> Result<(), DemoError> {
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
            let (new, object): (bool, fn(String) -> CreatedObject) = match value["kind"].as_str() {
                Some("Namespace") => (
                    apply_one(&Api::<Namespace>::all(client.clone()), &name, &value, given).await?,
                    CreatedObject::Namespace,
                ),
                Some("Secret") => (
                    apply_one(
                        &Api::<Secret>::namespaced(client.clone(), NAMESPACE),
                        &name,
                        &value,
                        given,
                    )
                    .await?,
                    CreatedObject::Secret,
                ),
                Some("WorkspaceMember") => (
                    apply_one(
                        &Api::<WorkspaceMember>::namespaced(client.clone(), NAMESPACE),
                        &name,
                        &value,
                        given,
                    )
                    .await?,
                    CreatedObject::Member,
                ),
                Some("IntegrationConnection") => (
                    apply_one(
                        &Api::<IntegrationConnection>::namespaced(client.clone(), NAMESPACE),
                        &name,
                        &value,
                        given,
                    )
                    .await?,
                    CreatedObject::Connection,
                ),
                Some("Workspace") => (
                    apply_one(
                        &Api::<Workspace>::namespaced(client.clone(), NAMESPACE),
                        &name,
                        &value,
                        given,
                    )
                    .await?,
                    CreatedObject::Workspace,
                ),
                Some("Sandbox") => (
                    apply_one(
                        &Api::<Sandbox>::namespaced(client.clone(), NAMESPACE),
                        &name,
                        &value,
                        given,
                    )
                    .await?,
                    CreatedObject::Sandbox,
                ),
                Some("SandboxPreview") => (
                    apply_one(
                        &Api::<SandboxPreview>::namespaced(client.clone(), NAMESPACE),
                        &name,
                        &value,
                        given,
                    )
                    .await?,
                    CreatedObject::Preview,
                ),
                other => {
                    return Err(DemoError::Example {
                        file,
                        message: format!("unexpected kind {other:?}"),
                    });
                }
            };
            if new {
                created.push(object(name));
            }
        }
    }
    Ok(())
}

/// Deletes what the demo created in a given cluster, newest kinds first: the custom resources (waiting
/// until the operator has cleaned them up and removed their finalizers), then the Secret, the
/// namespace and the CRDs. Objects that existed before the demo are left alone.
async fn remove_created(client: &kube::Client, created: &[CreatedObject]) -> Result<(), DemoError> {
    if created.is_empty() {
        return Ok(());
    }
    crate::say!("\nRemoving what the demo created in the cluster...");
    let deadline = Instant::now() + CLEANUP_DEADLINE;
    let members = Api::<WorkspaceMember>::namespaced(client.clone(), NAMESPACE);
    let sandboxes = Api::<Sandbox>::namespaced(client.clone(), NAMESPACE);
    let workspaces = Api::<Workspace>::namespaced(client.clone(), NAMESPACE);
    let connections = Api::<IntegrationConnection>::namespaced(client.clone(), NAMESPACE);
    let previews = Api::<SandboxPreview>::namespaced(client.clone(), NAMESPACE);
    let secrets = Api::<Secret>::namespaced(client.clone(), NAMESPACE);
    let namespaces = Api::<Namespace>::all(client.clone());
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let mut left = Vec::new();
    // The custom resources first, all at once, then wait for each: their finalizers need the operator.
    for object in created {
        match object {
            CreatedObject::Member(name) => delete(&members, name).await?,
            CreatedObject::Sandbox(name) => delete(&sandboxes, name).await?,
            CreatedObject::Workspace(name) => delete(&workspaces, name).await?,
            CreatedObject::Connection(name) => delete(&connections, name).await?,
            CreatedObject::Preview(name) => delete(&previews, name).await?,
            _ => {}
        }
    }
    for object in created {
        let gone = match object {
            CreatedObject::Member(name) => wait_gone(&members, name, deadline).await?,
            CreatedObject::Sandbox(name) => wait_gone(&sandboxes, name, deadline).await?,
            CreatedObject::Workspace(name) => wait_gone(&workspaces, name, deadline).await?,
            CreatedObject::Connection(name) => wait_gone(&connections, name, deadline).await?,
            CreatedObject::Preview(name) => wait_gone(&previews, name, deadline).await?,
            _ => true,
        };
        if !gone {
            left.push(format!("{object:?}"));
        }
    }
    for object in created {
        let gone = match object {
            CreatedObject::Secret(name) => {
                delete(&secrets, name).await?;
                wait_gone(&secrets, name, deadline).await?
            }
            _ => true,
        };
        if !gone {
            left.push(format!("{object:?}"));
        }
    }
    // A namespace is finalised by the cluster's namespace controller (the local API server has none):
    // asking for its deletion is all the demo can do.
    for object in created {
        if let CreatedObject::Namespace(name) = object {
            delete(&namespaces, name).await?;
        }
    }
    for object in created {
        if let CreatedObject::Crd(name) = object {
            delete(&crds, name).await?;
            if !wait_gone(&crds, name, deadline).await? {
                left.push(format!("{object:?}"));
            }
        }
    }
    if left.is_empty() {
        crate::say!("Removed {} object(s) the demo had created.", created.len());
        Ok(())
    } else {
        Err(DemoError::Other(format!(
            "clean-up: still present after {}s: {}",
            CLEANUP_DEADLINE.as_secs(),
            left.join(", ")
        )))
    }
}

/// Asks for the deletion of `name`; already gone counts as done.
async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), DemoError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether `name` is gone before `deadline`.
async fn wait_gone<K>(api: &Api<K>, name: &str, deadline: Instant) -> Result<bool, DemoError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    loop {
        if api.get_opt(name).await?.is_none() {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    let workspaces: Api<Workspace> = Api::namespaced(client.clone(), NAMESPACE);
    let connections: Api<IntegrationConnection> = Api::namespaced(client.clone(), NAMESPACE);
    let previews: Api<SandboxPreview> = Api::namespaced(client.clone(), NAMESPACE);
    let tty = std::io::stdout().is_terminal();
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    let mut drawn_lines = 0;
    loop {
        let lp = ListParams::default();
        let rows: Vec<Row> = (workspaces.list(&lp).await?.items.iter().map(workspace_row))
            .chain(members.list(&lp).await?.items.iter().map(member_row))
            .chain(sandboxes.list(&lp).await?.items.iter().map(sandbox_row))
            .chain(
                connections
                    .list(&lp)
                    .await?
                    .items
                    .iter()
                    .map(connection_row),
            )
            .chain(previews.list(&lp).await?.items.iter().map(preview_row))
            .collect();
        let (table, all_ready) = render(&rows);
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

/// A row of the table: NAME, READY, PHASE, WORKSPACE, DETAIL, REASON.
type Row = [String; 6];

/// The table `kubectl get bws,wsm,sbx,bic,sbxp` would print, and whether every object is Ready.
fn render(rows: &[Row]) -> (String, bool) {
    let header: Row =
        ["NAME", "READY", "PHASE", "WORKSPACE", "DETAIL", "REASON"].map(str::to_owned);
    let all_ready = !rows.is_empty() && rows.iter().all(|r| r[1] == "True");
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            std::iter::once(&header)
                .chain(rows)
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(out, "{cell:<width$}   ");
        }
        out = out.trim_end().to_owned();
        out.push('\n');
    }
    (out, all_ready)
}

fn workspace_row(w: &Workspace) -> Row {
    let status = w.status.as_ref();
    let unmanaged = status
        .and_then(|s| s.members.as_ref())
        .map_or_else(|| "-".to_owned(), |m| m.unmanaged.to_string());
    [
        format!("workspace/{}", w.name_any()),
        ready_of(status.map(|s| &s.conditions)).to_owned(),
        status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "-".to_owned()),
        w.spec
            .workspace_name
            .clone()
            .unwrap_or_else(|| w.name_any()),
        format!("{}, {unmanaged} unmanaged", w.spec.members.policy.as_str()),
        reason(status.map(|s| &s.conditions)),
    ]
}

fn member_row(m: &WorkspaceMember) -> Row {
    let status = m.status.as_ref();
    [
        format!("workspacemember/{}", m.name_any()),
        ready_of(status.map(|s| &s.conditions)).to_owned(),
        status
            .and_then(|s| s.phase)
            .map_or_else(|| "-".to_owned(), |p| format!("{p:?}")),
        m.spec.workspace.clone(),
        format!("{} ({})", m.spec.email, m.spec.role.as_str()),
        reason(status.map(|s| &s.conditions)),
    ]
}

fn sandbox_row(s: &Sandbox) -> Row {
    let status = s.status.as_ref();
    [
        format!("sandbox/{}", s.name_any()),
        ready_of(status.map(|s| &s.conditions)).to_owned(),
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
    ]
}

fn connection_row(c: &IntegrationConnection) -> Row {
    let status = c.status.as_ref();
    [
        format!("integrationconnection/{}", c.name_any()),
        ready_of(status.map(|s| &s.conditions)).to_owned(),
        "-".to_owned(),
        c.spec.workspace.clone(),
        format!(
            "{}, {} models",
            c.spec.integration,
            status
                .and_then(|s| s.models)
                .map_or_else(|| "-".to_owned(), |n| n.to_string())
        ),
        reason(status.map(|s| &s.conditions)),
    ]
}

fn preview_row(p: &SandboxPreview) -> Row {
    let status = p.status.as_ref();
    let token = status.and_then(|s| s.token.as_ref()).map_or_else(
        || "no token".to_owned(),
        |t| format!("token until {}", t.expires_at),
    );
    [
        format!("sandboxpreview/{}", p.name_any()),
        ready_of(status.map(|s| &s.conditions)).to_owned(),
        "-".to_owned(),
        status
            .and_then(|s| s.remote.as_ref())
            .map_or_else(|| "-".to_owned(), |r| r.workspace.clone()),
        format!(
            "{} port {}, {token}",
            if p.spec.public { "public" } else { "private" },
            p.spec.port
        ),
        reason(status.map(|s| &s.conditions)),
    ]
}

fn ready_of(cs: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>) -> &str {
    cs.and_then(|cs| cs.iter().find(|c| c.type_ == conditions::READY))
        .map_or("-", |c| c.status.as_str())
}

fn reason(cs: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>) -> String {
    cs.and_then(|cs| cs.iter().find(|c| c.type_ == conditions::READY))
        .map_or_else(|| "-".to_owned(), |c| c.reason.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use clap::CommandFactory;

    use super::*;

    /// A shell with `KUBECONFIG` set and no `--kubeconfig` gets the local API server, never that cluster.
    #[test]
    fn shell_kubeconfig_alone_means_the_local_server() {
        let shell = Some(OsString::from("/home/me/.kube/config"));
        assert_eq!(
            ClusterChoice::decide(None, shell.as_ref()),
            ClusterChoice::Local {
                shell_kubeconfig_ignored: true
            }
        );
        assert_eq!(
            ClusterChoice::decide(None, None),
            ClusterChoice::Local {
                shell_kubeconfig_ignored: false
            }
        );
        assert_eq!(
            ClusterChoice::decide(Some(Path::new("/tmp/k")), shell.as_ref()),
            ClusterChoice::Given(PathBuf::from("/tmp/k"))
        );
    }

    /// `demo --kubeconfig` is read from the command line only: clap binds it to no environment
    /// variable, so `KUBECONFIG` cannot fill it in.
    #[test]
    fn kubeconfig_flag_reads_no_environment_variable() {
        let cli = crate::cli::Cli::command();
        let demo = cli.find_subcommand("demo").unwrap();
        let flag = demo
            .get_arguments()
            .find(|a| a.get_long() == Some("kubeconfig"))
            .unwrap();
        assert_eq!(flag.get_env(), None);
    }
}
