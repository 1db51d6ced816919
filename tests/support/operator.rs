//! End-to-end harness: a Blaxel simulator over real HTTP, a fresh namespace in the shared Kubernetes API
//! server with the project's CRDs installed, and the real `blaxel-operator` binary watching that namespace.
//!
//! Everything is waited for with [`eventually`] (a condition polled until a deadline), never slept for.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use blaxel_operator::crd::{
    IntegrationConnection, MemberPhase, Sandbox, SandboxPreview, Workspace, WorkspaceMember,
};
use blaxel_operator::sim::{self, SimConfig, SimHandle};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::kube as cluster;

/// How long a test waits for the operator to converge before failing.
pub const DEADLINE: Duration = Duration::from_secs(60);

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Polls `check` every 50 ms until it returns `Some`, failing the test with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The running operator process.
pub struct Operator {
    child: Child,
    log: PathBuf,
    /// Where its `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_addr: std::net::SocketAddr,
}

impl Operator {
    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit, at most [`DEADLINE`] (a hang fails the test instead of
    /// hanging the suite); returns the exit status. Blocking: call it through `block_in_place` on a
    /// multi-threaded runtime, or a reconcile in flight at the signal waits on a simulator that
    /// cannot answer (it runs on the blocked thread) until its request times out.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let until = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the operator") {
                return status;
            }
            if std::time::Instant::now() >= until {
                self.kill();
                panic!(
                    "the operator did not exit within {DEADLINE:?} of SIGTERM; output:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the process printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the process, as a long GC pause or a partition would.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args([signal, &pid]).status();
    }

    /// `GET` one of the operator's own endpoints: the status and body, or `None` when it does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let resp = reqwest::Client::new()
            .get(format!("http://{}{path}", self.metrics_addr))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    }

    /// The `/metrics` text, or `None` when the endpoint does not answer.
    pub async fn scrape(&self) -> Option<String> {
        self.get("/metrics").await.map(|(_, body)| body)
    }
}

/// The value of the sample `series` (name and labels exactly as exposed) in a `/metrics` text.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A free local port for an operator's metrics server.
fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One end-to-end test's world.
pub struct World {
    /// Kubernetes client.
    pub client: Client,
    /// The test's own namespace.
    pub ns: String,
    /// The simulator.
    pub sim: SimHandle,
    /// The simulator's API key (the operator's default key).
    pub key: String,
    /// The workspace the key is bound to.
    pub workspace: String,
    kubeconfig: PathBuf,
    http: reqwest::Client,
    logs: tempfile::TempDir,
    operators: usize,
}

impl World {
    /// A namespace, CRDs, and a simulator with `config`. The operator is started separately.
    pub async fn new(config: SimConfig) -> Self {
        let shared = cluster::cluster().await;
        let kubeconfig = shared
            .kubeconfig_path()
            .expect("a kubeconfig file for the operator process")
            .to_path_buf();
        let client = shared.client().await;
        CRDS.get_or_init(|| async {
            cluster::install_crds(&client, &Path::new(env!("CARGO_MANIFEST_DIR")).join("crds"))
                .await;
        })
        .await;
        let ns = cluster::fresh_namespace(&client).await;
        let sim = sim::spawn(config).await.expect("simulator");
        let api_key = sim.api_key();
        Self {
            client,
            ns,
            key: api_key.key,
            workspace: api_key.workspace,
            sim,
            kubeconfig,
            http: reqwest::Client::new(),
            logs: tempfile::tempdir().expect("temp dir"),
            operators: 0,
        }
    }

    /// Moves this world to a private API server (the CRDs installed, a namespace of its own), for a
    /// test that changes what every test shares (deletes a CRD, say).
    pub async fn on_cluster(
        mut self,
        server: &blaxel_operator::kube_local::LocalApiServer,
    ) -> Self {
        self.client = server
            .client()
            .await
            .expect("a client of the private API server");
        cluster::install_crds(
            &self.client,
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("crds"),
        )
        .await;
        self.ns = cluster::fresh_namespace(&self.client).await;
        server.kubeconfig_path().clone_into(&mut self.kubeconfig);
        self
    }

    /// Starts the operator binary on this namespace with fast test timings, plus `extra` flags.
    pub fn start_operator(&mut self, extra: &[&str]) -> Operator {
        self.start_operator_logging(extra, "info,blaxel_operator=debug")
    }

    /// [`World::start_operator`] with `RUST_LOG` set to `filter` (`trace` for secrecy tests).
    pub fn start_operator_logging(&mut self, extra: &[&str], filter: &str) -> Operator {
        self.operators += 1;
        let log = self
            .logs
            .path()
            .join(format!("operator-{}.log", self.operators));
        let file = std::fs::File::create(&log).expect("log file");
        let mut args: Vec<String> = [
            "run",
            "--api-url",
            &self.sim.base_url(),
            "--watch-namespace",
            &self.ns,
            "--resync-interval",
            "30s",
            "--invitation-poll-interval",
            "200ms",
            "--transition-poll-interval",
            "200ms",
            "--backoff-base",
            "100ms",
            "--backoff-max",
            "2s",
            "--api-rate-limit",
            "500",
            "--api-burst",
            "100",
            // The operator's own namespace (its Lease, its record of removals): the test's.
            "--lease-namespace",
            &self.ns,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        // A flag given in `extra` replaces its default here (clap refuses a flag given twice).
        let defaults = args.split_off(1);
        for pair in defaults.chunks(2) {
            if !extra.contains(&pair[0].as_str()) {
                args.extend_from_slice(pair);
            }
        }
        if !extra.contains(&"--default-credentials-namespaces") {
            args.extend([
                "--default-credentials-namespaces".to_owned(),
                self.ns.clone(),
            ]);
        }
        let metrics_addr = if let Some(i) = extra.iter().position(|a| *a == "--metrics-bind") {
            extra[i + 1].parse().expect("--metrics-bind address")
        } else {
            let addr = free_addr();
            args.extend(["--metrics-bind".to_owned(), addr.to_string()]);
            addr
        };
        args.extend(extra.iter().map(ToString::to_string));
        let child = Command::new(env!("CARGO_BIN_EXE_blaxel-operator"))
            .args(&args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("BL_API_KEY", &self.key)
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("starting the operator");
        Operator {
            child,
            log,
            metrics_addr,
        }
    }

    /// WorkspaceMembers in the test namespace.
    pub fn members(&self) -> Api<WorkspaceMember> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Sandboxes in the test namespace.
    pub fn sandboxes(&self) -> Api<Sandbox> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Workspaces in the test namespace.
    pub fn workspaces(&self) -> Api<Workspace> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// IntegrationConnections in the test namespace.
    pub fn connections(&self) -> Api<IntegrationConnection> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// SandboxPreviews in the test namespace.
    pub fn previews(&self) -> Api<SandboxPreview> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Writes Secret `name` of the test namespace with `data` (string values; server-side apply, so a
    /// second call changes it).
    pub async fn write_secret(&self, name: &str, data: Value) {
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), &self.ns);
        let body = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data});
        api.patch(
            name,
            &kube::api::PatchParams::apply("e2e-test").force(),
            &kube::api::Patch::Apply(&body),
        )
        .await
        .unwrap_or_else(|e| panic!("writing Secret {name}: {e}"));
    }

    /// The kubeconfig file of the API server this world uses.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A GET of the simulated Blaxel API with the test's key: the answer's JSON (`Null` when none).
    pub async fn blaxel_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sim.base_url()))
            .bearer_auth(&self.key)
            .header("X-Blaxel-Workspace", &self.workspace)
            .send()
            .await
            .expect("Blaxel API call")
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// Applies an object of this namespace from JSON (server-side apply, as `kubectl apply --server-side`).
    pub async fn apply<K>(&self, api: &Api<K>, name: &str, body: Value) -> K
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let mut body = body;
        body["apiVersion"] = K::api_version(&()).into();
        body["kind"] = K::kind(&()).into();
        body["metadata"]["name"] = name.into();
        api.patch(
            name,
            &PatchParams::apply("e2e-test").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"))
    }

    /// A member object named `name` with `spec`.
    pub async fn apply_member(&self, name: &str, spec: Value) -> WorkspaceMember {
        self.apply(&self.members(), name, serde_json::json!({ "spec": spec }))
            .await
    }

    /// A sandbox object named `name` with `spec`.
    pub async fn apply_sandbox(&self, name: &str, spec: Value) -> Sandbox {
        self.apply(&self.sandboxes(), name, serde_json::json!({ "spec": spec }))
            .await
    }

    /// A Secret `name` in the test namespace holding `key` under `apiKey` (for a `credentialsRef`).
    pub async fn key_secret(&self, name: &str, key: &str) {
        let secret = k8s_openapi::api::core::v1::Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..kube::api::ObjectMeta::default()
            },
            string_data: Some([("apiKey".to_owned(), key.to_owned())].into()),
            ..k8s_openapi::api::core::v1::Secret::default()
        };
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(self.client.clone(), &self.ns)
            .create(&kube::api::PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("creating Secret {name}: {e}"));
    }

    /// The phase of member object `name`, once it has one.
    pub async fn member_phase(&self, name: &str) -> Option<MemberPhase> {
        self.members().get(name).await.ok()?.status?.phase
    }

    /// Members `names` (`<name>@example.com`, in this workspace) applied and waited for until Active.
    pub async fn active_members(&self, names: &[&str]) {
        for name in names {
            self.apply_member(
                name,
                serde_json::json!({"workspace": self.workspace, "email": format!("{name}@example.com")}),
            )
            .await;
        }
        for name in names {
            eventually(&format!("{name} Active"), DEADLINE, || async {
                (self.member_phase(name).await? == MemberPhase::Active).then_some(())
            })
            .await;
        }
    }

    /// The spec of a small sandbox in this workspace.
    pub fn sandbox_spec(&self) -> Value {
        serde_json::json!({"workspace": self.workspace, "image": "blaxel/base-image:latest", "memory": 2048})
    }

    /// `GET /_sim/state`.
    pub async fn sim_state(&self) -> Value {
        self.http
            .get(format!("{}/_sim/state", self.sim.root_url()))
            .send()
            .await
            .expect("sim state")
            .json()
            .await
            .expect("sim state JSON")
    }

    /// `POST /_sim/{path}` with a JSON body.
    pub async fn sim_control(&self, path: &str, body: Value) {
        let resp = self
            .http
            .post(format!("{}/_sim/{path}", self.sim.root_url()))
            .json(&body)
            .send()
            .await
            .expect("sim control");
        assert!(
            resp.status().is_success(),
            "POST /_sim/{path}: {}",
            resp.status()
        );
    }

    /// `PUT /_sim/faults` with a JSON body.
    pub async fn sim_faults(&self, body: Value) {
        let resp = self
            .http
            .put(format!("{}/_sim/faults", self.sim.root_url()))
            .json(&body)
            .send()
            .await
            .expect("sim faults");
        assert!(
            resp.status().is_success(),
            "PUT /_sim/faults: {}",
            resp.status()
        );
    }

    /// A call to the simulated Blaxel API with the test's key (an out-of-band change by "someone else").
    pub async fn blaxel(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::StatusCode {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .bearer_auth(&self.key)
            .header("X-Blaxel-Workspace", &self.workspace);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("Blaxel API call").status()
    }

    /// The simulated workspace's users (from `/_sim/state`).
    pub async fn remote_users(&self) -> Vec<Value> {
        let state = self.sim_state().await;
        state["workspaces"][&self.workspace]["users"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The remote user with `email`, if any.
    pub async fn remote_user(&self, email: &str) -> Option<Value> {
        self.remote_users()
            .await
            .into_iter()
            .find(|u| u["email"] == email)
    }

    /// The simulated workspace's sandboxes (from `/_sim/state`).
    pub async fn remote_sandboxes(&self) -> Vec<Value> {
        let state = self.sim_state().await;
        state["workspaces"][&self.workspace]["sandboxes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The remote sandbox named `name`, if any.
    pub async fn remote_sandbox(&self, name: &str) -> Option<Value> {
        self.remote_sandboxes()
            .await
            .into_iter()
            .find(|s| s["metadata"]["name"] == name)
    }

    /// Requests the simulator answered on `route` (e.g. `"POST /v0/users"`), all statuses.
    pub fn calls(&self, route: &str) -> u64 {
        self.sim.stats()["byRoute"][route]["total"]
            .as_u64()
            .unwrap_or(0)
    }
}

/// A simulator whose sandboxes deploy, stop and delete in 300 ms and whose terminated sandboxes go after
/// 1 s, so sandbox tests run in seconds.
pub fn fast_sandboxes() -> SimConfig {
    SimConfig {
        deploy_time: Duration::from_millis(300),
        stop_time: Duration::from_millis(300),
        delete_time: Duration::from_millis(300),
        termination_retention: Duration::from_secs(1),
        ..SimConfig::default()
    }
}

/// Sets annotation `key` on object `name` (removes it with `None`), with a merge patch.
pub async fn annotate<K>(api: &Api<K>, name: &str, key: &str, value: Option<&str>)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(patch),
    )
    .await
    .unwrap_or_else(|e| panic!("annotating {name}: {e}"));
}

/// Waits until object `name` is gone (its finalizer removed and the object deleted).
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{name} gone"), DEADLINE, || async {
        api.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await;
}

/// Waits until `name`'s condition `kind` has `status` and `reason`.
pub async fn condition_is<K>(api: &Api<K>, name: &str, kind: &str, status: &str, reason: &str)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + serde::Serialize,
{
    eventually(
        &format!("{name} {kind}={status} {reason}"),
        DEADLINE,
        || async {
            let obj = serde_json::to_value(api.get(name).await.ok()?).ok()?;
            let conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> =
                serde_json::from_value(obj["status"]["conditions"].clone()).ok()?;
            (condition(&conditions, kind)? == (status.to_owned(), reason.to_owned())).then_some(())
        },
    )
    .await;
}

/// Polls `check`, asking object `name` for a forced resync (fresh remote reads) before each look.
pub async fn nudged_until<K, T, F, Fut>(api: &Api<K>, name: &str, what: &str, mut check: F) -> T
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let mut n = 0u32;
    eventually(what, DEADLINE, || {
        n += 1;
        let annotation = serde_json::json!({"metadata": {"annotations": {"blaxel.ai/reconcile-requested-at": n.to_string()}}});
        let look = check();
        async move {
            let _ = api
                .patch(name, &PatchParams::default(), &Patch::Merge(annotation))
                .await;
            look.await
        }
    })
    .await
}

/// Waits until a deleted object of `kind` ran its cleanup and chose to wait (a cleanup keeps the
/// finalizer, counted in `cleanup_waits_total`).
pub async fn wait_cleanup_pending(op: &Operator, kind: &str) {
    let series = format!("blaxel_operator_cleanup_waits_total{{kind=\"{kind}\"}}");
    eventually("a cleanup that waits", DEADLINE, || async {
        (sample(&op.scrape().await?, &series)? >= 1.0).then_some(())
    })
    .await;
}

/// The status of condition `kind` on an object's conditions, with its reason.
pub fn condition(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    kind: &str,
) -> Option<(String, String)> {
    conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Waits until a second has passed since object `name` was created (claims rank by creation time,
/// which has a one-second resolution).
pub async fn second_after<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let created = api
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("reading {name}: {e}"))
        .meta()
        .creation_timestamp
        .clone()
        .unwrap_or_else(|| panic!("{name} has no creation time"))
        .0;
    eventually("a second after its creation", DEADLINE, || async {
        (jiff::Timestamp::now() >= created + jiff::SignedDuration::from_secs(1)).then_some(())
    })
    .await;
}
