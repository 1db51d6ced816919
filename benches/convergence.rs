//! Convergence, API economy, latency and memory of the real operator at scale, against the physical limit
//! that the Blaxel API's rate limit and latency impose.
//!
//! Run: `cargo bench --bench convergence` (release build). `BENCH_QUICK=1` runs a small smoke scenario in
//! seconds; `BENCH_SCALES=100,1200` picks the scales (total objects); `BENCH_FAULTS=0` skips the fault run.
//! `BENCH_OPERATOR_BIN` runs another operator binary (before/after comparisons), `BENCH_CONCURRENCY` sets
//! `--max-concurrent-reconciles` (default 64), `BENCH_OPERATOR_LOG` its `RUST_LOG` (default `info`),
//! `BENCH_LATENCY_SAMPLES` the apply → first write samples taken on the first scale (default 40),
//! `BENCH_STEADY_PERIODS` the resync periods of steady state measured (default 3).
//! Results are printed as Markdown and written to `target/bench/convergence.json`; each run's operator
//! log goes to `target/bench/logs/` (emptied when the bench starts).
//!
//! What runs where: the local Kubernetes API server (etcd-backed, `scripts/kube-local`) and the operator
//! binary are separate processes; the Blaxel simulator runs inside this process (it is small next to them).
//! Without `--bench` on the command line (as under `cargo test --all-targets`) it does nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::too_many_lines,
    reason = "benchmark harness: it fails loudly and prints figures"
)]

#[path = "../tests/support/kube.rs"]
mod cluster;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blaxel_operator::crd::{
    IntegrationConnection, Sandbox, SandboxPreview, Workspace, WorkspaceMember,
};
use blaxel_operator::reconcile::cached::{Cached, WithConditions};
use blaxel_operator::sim::{self, ApiGeneration, ApiKey, Faults, RateLimit, SimConfig, SimHandle};
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::object::{HasSpec, HasStatus};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Server-side applies in flight while creating objects.
const CREATE_CONCURRENCY: usize = 32;
/// Sandboxes per `GET /sandboxes` page (the client asks for the API's maximum).
const PAGE: usize = 200;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("convergence: skipped (run it with `cargo bench --bench convergence`)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

/// Objects of one run.
#[derive(Debug, Clone, Copy)]
struct Scale {
    members: usize,
    sandboxes: usize,
    workspaces: usize,
}

impl Scale {
    /// `total` objects in the default scenario's proportions (5 members per sandbox) over 10 workspaces.
    fn of_total(total: usize, workspaces: usize) -> Self {
        let sandboxes = (total + 3) / 6;
        Self {
            members: total - sandboxes,
            sandboxes,
            workspaces,
        }
    }

    fn total(self) -> usize {
        self.members + self.sandboxes
    }

    /// Members and sandboxes of workspace `w` (objects are dealt round-robin).
    fn of_workspace(self, w: usize) -> (usize, usize) {
        let share = |n: usize| n / self.workspaces + usize::from(w < n % self.workspaces);
        (share(self.members), share(self.sandboxes))
    }
}

/// Timings and limits, shared by the simulator and the operator.
#[derive(Debug, Clone)]
struct Params {
    rate: f64,
    burst: u32,
    latency: Duration,
    auto_accept: Duration,
    deploy_time: Duration,
    resync: Duration,
    poll: Duration,
    concurrency: u16,
    steady_periods: u32,
    latency_samples: usize,
}

impl Params {
    /// The lower bound on convergence: the busiest key's minimum requests beyond its burst at the rate
    /// limit, plus one latency chain (first list, last write, final list) and the remote transition
    /// (acceptance or deploy) that follows the last write.
    fn bound(&self, scale: Scale) -> Duration {
        let busiest = (0..scale.workspaces)
            .map(|w| {
                let (m, s) = scale.of_workspace(w);
                // writes + user lists (before, after acceptance) + sandbox lists (before, after deploy).
                let requests = m + s + 2 + 1 + s.div_ceil(PAGE).max(1);
                requests.saturating_sub(self.burst as usize)
            })
            .max()
            .unwrap_or(0);
        Duration::from_secs_f64(busiest as f64 / self.rate)
            + self.latency * 3
            + self.auto_accept.max(self.deploy_time)
    }
}

/// Simulator request counters, by route.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Counts {
    by_route: BTreeMap<String, u64>,
    by_status: BTreeMap<String, u64>,
    route_status: BTreeMap<String, u64>,
    rate_limited: u64,
    injected: u64,
    lost: u64,
}

impl Counts {
    fn of(stats: &Value) -> Self {
        let mut c = Self::default();
        if let Some(routes) = stats["byRoute"].as_object() {
            for (route, v) in routes {
                c.by_route
                    .insert(route.clone(), v["total"].as_u64().unwrap_or(0));
                if let Some(st) = v["byStatus"].as_object() {
                    for (s, n) in st {
                        c.route_status
                            .insert(format!("{route} {s}"), n.as_u64().unwrap_or(0));
                    }
                }
            }
        }
        if let Some(st) = stats["byStatus"].as_object() {
            for (s, n) in st {
                c.by_status.insert(s.clone(), n.as_u64().unwrap_or(0));
            }
        }
        c.rate_limited = stats["faults"]["rateLimited"].as_u64().unwrap_or(0);
        c.injected = stats["faults"]["injectedErrors"].as_u64().unwrap_or(0);
        c.lost = stats["faults"]["lostAnswers"].as_u64().unwrap_or(0);
        c
    }

    fn minus(&self, before: &Self) -> Self {
        let sub = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>| {
            a.iter()
                .map(|(k, v)| (k.clone(), v - b.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect()
        };
        Self {
            by_route: sub(&self.by_route, &before.by_route),
            by_status: sub(&self.by_status, &before.by_status),
            route_status: sub(&self.route_status, &before.route_status),
            rate_limited: self.rate_limited - before.rate_limited,
            injected: self.injected - before.injected,
            lost: self.lost - before.lost,
        }
    }

    fn route(&self, route: &str) -> u64 {
        self.by_route.get(route).copied().unwrap_or(0)
    }

    fn reads(&self) -> u64 {
        self.by_route
            .iter()
            .filter(|(k, _)| k.starts_with("GET "))
            .map(|(_, v)| v)
            .sum()
    }

    fn writes(&self) -> u64 {
        self.by_route
            .iter()
            .filter(|(k, _)| !k.starts_with("GET "))
            .map(|(_, v)| v)
            .sum()
    }

    /// Requests on `route` the simulator handled successfully: answered 200, or handled and the answer
    /// lost (all that the bench sends succeeds when handled).
    fn handled(&self, route: &str) -> u64 {
        ["200", "lost"]
            .iter()
            .filter_map(|s| self.route_status.get(&format!("{route} {s}")))
            .sum()
    }

    fn summary(&self) -> String {
        let routes: Vec<String> = self
            .by_route
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!(
            "reads {} / writes {} (429: {}, injected 5xx: {}) [{}]",
            self.reads(),
            self.writes(),
            self.rate_limited,
            self.injected,
            routes.join(", ")
        )
    }
}

/// What the bench's own watches saw: Ready objects and object changes after the initial list.
#[derive(Debug, Default)]
struct Seen {
    ready: HashMap<String, bool>,
    changes: u64,
}

#[derive(Debug, Clone, Default)]
struct Watches {
    members: Arc<Mutex<Seen>>,
    sandboxes: Arc<Mutex<Seen>>,
    workspaces: Arc<Mutex<Seen>>,
    connections: Arc<Mutex<Seen>>,
    previews: Arc<Mutex<Seen>>,
}

impl Watches {
    fn ready(&self) -> (usize, usize) {
        let count = |s: &Arc<Mutex<Seen>>| s.lock().unwrap().ready.values().filter(|r| **r).count();
        (count(&self.members), count(&self.sandboxes))
    }

    /// Workspaces and integration connections settled (one of each per workspace), and private
    /// previews (one per sandbox) with their tokens.
    fn others_ready(&self) -> (usize, usize, usize) {
        let count = |s: &Arc<Mutex<Seen>>| s.lock().unwrap().ready.values().filter(|r| **r).count();
        (
            count(&self.workspaces),
            count(&self.connections),
            count(&self.previews),
        )
    }

    fn changes(&self) -> u64 {
        self.members.lock().unwrap().changes
            + self.sandboxes.lock().unwrap().changes
            + self.workspaces.lock().unwrap().changes
            + self.connections.lock().unwrap().changes
            + self.previews.lock().unwrap().changes
    }
}

fn is_ready(conditions: &[Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn spawn_watch<K>(api: Api<K>, seen: Arc<Mutex<Seen>>, ready: fn(&K) -> bool)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        let mut synced = false;
        while let Some(event) = stream.next().await {
            let Ok(event) = event else { continue };
            let mut seen = seen.lock().unwrap();
            match event {
                watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                    if synced {
                        seen.changes += 1;
                    }
                    seen.ready.insert(obj.name_any(), ready(&obj));
                }
                watcher::Event::Delete(obj) => {
                    seen.ready.remove(&obj.name_any());
                }
                watcher::Event::InitDone => synced = true,
                watcher::Event::Init => {}
            }
        }
    });
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the state field.
    (ticks(11) + ticks(12)) / 100.0
}

/// The local API server's and etcd's process ids, from the state file `scripts/kube-local up` writes
/// beside the kubeconfig (empty when the cluster comes from `BLAXEL_TEST_KUBECONFIG`).
fn cluster_pids(kubeconfig: &Path) -> Vec<(&'static str, u32)> {
    let state = kubeconfig
        .parent()
        .map(|d| std::fs::read_to_string(d.join("state.env")).unwrap_or_default())
        .unwrap_or_default();
    [("apiserver", "APISERVER_PID="), ("etcd", "ETCD_PID=")]
        .into_iter()
        .filter_map(|(name, prefix)| {
            state
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|v| v.trim().parse().ok())
                .map(|pid| (name, pid))
        })
        .collect()
}

/// CPU seconds of the operator, the API server, etcd and this process (simulator + watches).
fn cpu_snapshot(op: &Operator, cluster: &[(&'static str, u32)]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    m.insert("operator".to_owned(), cpu_seconds(op.child.id()));
    for (name, pid) in cluster {
        m.insert((*name).to_owned(), cpu_seconds(*pid));
    }
    m.insert(
        "bench+simulator".to_owned(),
        cpu_seconds(std::process::id()),
    );
    m
}

fn cpu_minus(
    after: &BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .collect()
}

fn cpu_summary(cpu: &BTreeMap<String, f64>) -> String {
    cpu.iter()
        .map(|(k, v)| format!("{k} {v:.1}s"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The operator process and its memory readings.
struct Operator {
    child: Child,
    log: PathBuf,
}

impl Operator {
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn hwm_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One world: a namespace with one Secret per workspace key, a simulator, the bench's watches.
struct World {
    client: Client,
    kubeconfig: PathBuf,
    ns: String,
    sim: SimHandle,
    http: reqwest::Client,
    watches: Watches,
    params: Params,
    scale: Scale,
    logs: PathBuf,
}

impl World {
    async fn new(scale: Scale, params: &Params, faults: Faults) -> Self {
        let shared = cluster::cluster().await;
        let kubeconfig = shared.kubeconfig_path().unwrap().to_path_buf();
        let client = shared.client().await;
        cluster::install_crds(&client, &Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")).await;
        let ns = cluster::fresh_namespace(&client).await;
        let api_keys = (0..scale.workspaces)
            .map(|w| ApiKey {
                key: format!("bench-key-{w}"),
                workspace: format!("ws-{w}"),
            })
            .collect::<Vec<_>>();
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        for k in &api_keys {
            for (name, value) in [
                (format!("blaxel-{}", k.workspace), k.key.clone()),
                (
                    format!("openai-{}", k.workspace),
                    format!("sk-bench-{}", k.workspace),
                ),
            ] {
                let secret: Secret = serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "stringData": {"apiKey": value},
                }))
                .unwrap();
                secrets
                    .create(&PostParams::default(), &secret)
                    .await
                    .unwrap();
            }
        }
        let sim = sim::spawn(SimConfig {
            api_keys,
            generation: ApiGeneration::V2026,
            deploy_time: params.deploy_time,
            auto_accept_after: Some(params.auto_accept),
            faults,
            seed: Some(6),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let watches = Watches::default();
        spawn_watch(
            Api::<WorkspaceMember>::namespaced(client.clone(), &ns),
            Arc::clone(&watches.members),
            |m| is_ready(m.status.as_ref().map_or(&[][..], |s| &s.conditions)),
        );
        spawn_watch(
            Api::<Sandbox>::namespaced(client.clone(), &ns),
            Arc::clone(&watches.sandboxes),
            |s| is_ready(s.status.as_ref().map_or(&[][..], |s| &s.conditions)),
        );
        // A Workspace has converged when it is Ready and its counts describe the converged world:
        // every declared member present, none unmanaged.
        spawn_watch(
            Api::<Workspace>::namespaced(client.clone(), &ns),
            Arc::clone(&watches.workspaces),
            |w| {
                w.status.as_ref().is_some_and(|s| {
                    is_ready(&s.conditions)
                        && s.members.as_ref().is_some_and(|m| {
                            m.unmanaged == 0 && m.present == m.declared && m.declared > 0
                        })
                })
            },
        );
        spawn_watch(
            Api::<IntegrationConnection>::namespaced(client.clone(), &ns),
            Arc::clone(&watches.connections),
            |c| {
                c.status.as_ref().is_some_and(|s| {
                    is_ready(&s.conditions) && s.models.is_some() && s.secret_digest.is_some()
                })
            },
        );
        spawn_watch(
            Api::<SandboxPreview>::namespaced(client.clone(), &ns),
            Arc::clone(&watches.previews),
            |p| {
                p.status
                    .as_ref()
                    .is_some_and(|s| is_ready(&s.conditions) && s.token.is_some())
            },
        );
        let logs = bench_dir().join("logs").join(&ns);
        std::fs::create_dir_all(&logs).unwrap();
        Self {
            client,
            kubeconfig,
            ns,
            sim,
            http: reqwest::Client::new(),
            watches,
            params: params.clone(),
            scale,
            logs,
        }
    }

    fn member_body(name: &str, email: &str, w: usize) -> Value {
        json!({
            "apiVersion": "blaxel.ai/v1alpha1",
            "kind": "WorkspaceMember",
            "metadata": {"name": name},
            "spec": {
                "workspace": format!("ws-{w}"),
                "email": email,
                "role": "member",
                "credentialsRef": {"name": format!("blaxel-ws-{w}"), "key": "apiKey"},
            },
        })
    }

    /// An Authoritative Workspace for workspace `w`, with the workspace's own key: every member of the
    /// workspace is declared, so its steady state removes no one and reads the members' shared list.
    fn workspace_body(w: usize) -> Value {
        json!({
            "apiVersion": "blaxel.ai/v1alpha1",
            "kind": "Workspace",
            "metadata": {"name": format!("ws-{w}")},
            "spec": {
                "members": {"policy": "Authoritative", "maxRemovals": 0},
                "credentialsRef": {"name": format!("blaxel-ws-{w}"), "key": "apiKey"},
            },
        })
    }

    /// An integration connection for workspace `w`, its secret in Secret `openai-ws-{w}`.
    fn connection_body(w: usize) -> Value {
        json!({
            "apiVersion": "blaxel.ai/v1alpha1",
            "kind": "IntegrationConnection",
            "metadata": {"name": format!("openai-{w}")},
            "spec": {
                "workspace": format!("ws-{w}"),
                "integration": "openai",
                "config": {"organization": "bench"},
                "secretRef": {"name": format!("openai-ws-{w}")},
                "credentialsRef": {"name": format!("blaxel-ws-{w}"), "key": "apiKey"},
            },
        })
    }

    /// A private preview of sandbox object `sandbox`'s port 3000 (its token in Secret `{name}-token`).
    fn preview_body(name: &str, sandbox: &str) -> Value {
        json!({
            "apiVersion": "blaxel.ai/v1alpha1",
            "kind": "SandboxPreview",
            "metadata": {"name": name},
            "spec": {"sandboxRef": {"name": sandbox}, "port": 3000},
        })
    }

    fn sandbox_body(name: &str, w: usize) -> Value {
        json!({
            "apiVersion": "blaxel.ai/v1alpha1",
            "kind": "Sandbox",
            "metadata": {"name": name},
            "spec": {
                "workspace": format!("ws-{w}"),
                "image": "blaxel/base-image:latest",
                "memory": 2048,
                "credentialsRef": {"name": format!("blaxel-ws-{w}"), "key": "apiKey"},
            },
        })
    }

    /// Applies every object (server-side apply, `CREATE_CONCURRENCY` at a time); returns the time taken.
    /// Names (and e-mails) start with `prefix`: `m-0`, `sbx-0`, ... for the run itself.
    async fn create_all(&self, prefix: &str) -> Duration {
        let started = Instant::now();
        let members: Api<WorkspaceMember> = Api::namespaced(self.client.clone(), &self.ns);
        let sandboxes: Api<Sandbox> = Api::namespaced(self.client.clone(), &self.ns);
        let pp = PatchParams::apply("bench").force();
        let w = self.scale.workspaces;
        let member_jobs = (0..self.scale.members).map(|i| {
            let (api, pp) = (members.clone(), pp.clone());
            let name = format!("{prefix}m-{i}");
            let body = Self::member_body(&name, &format!("{prefix}user{i}@example.com"), i % w);
            async move {
                api.patch(&name, &pp, &Patch::Apply(&body))
                    .await
                    .map(|_| ())
            }
            .boxed()
        });
        let sandbox_jobs = (0..self.scale.sandboxes).map(|i| {
            let (api, pp) = (sandboxes.clone(), pp.clone());
            let name = format!("{prefix}sbx-{i}");
            let body = Self::sandbox_body(&name, i % w);
            async move {
                api.patch(&name, &pp, &Patch::Apply(&body))
                    .await
                    .map(|_| ())
            }
            .boxed()
        });
        let workspaces: Api<Workspace> = Api::namespaced(self.client.clone(), &self.ns);
        // One Workspace per workspace, for the run itself only (the floor and latency runs add objects).
        let workspace_jobs = (0..if prefix.is_empty() { w } else { 0 }).map(|w| {
            let (api, pp) = (workspaces.clone(), pp.clone());
            let body = Self::workspace_body(w);
            async move {
                api.patch(&format!("ws-{w}"), &pp, &Patch::Apply(&body))
                    .await
                    .map(|_| ())
            }
            .boxed()
        });
        let connections: Api<IntegrationConnection> =
            Api::namespaced(self.client.clone(), &self.ns);
        let connection_jobs = (0..if prefix.is_empty() { w } else { 0 }).map(|w| {
            let (api, pp) = (connections.clone(), pp.clone());
            let body = Self::connection_body(w);
            async move {
                api.patch(&format!("openai-{w}"), &pp, &Patch::Apply(&body))
                    .await
                    .map(|_| ())
            }
            .boxed()
        });
        let previews: Api<SandboxPreview> = Api::namespaced(self.client.clone(), &self.ns);
        // One private preview per sandbox, for the run itself only.
        let preview_jobs = (0..if prefix.is_empty() {
            self.scale.sandboxes
        } else {
            0
        })
            .map(|i| {
                let (api, pp) = (previews.clone(), pp.clone());
                let name = format!("sbxp-{i}");
                let body = Self::preview_body(&name, &format!("sbx-{i}"));
                async move {
                    api.patch(&name, &pp, &Patch::Apply(&body))
                        .await
                        .map(|_| ())
                }
                .boxed()
            });
        futures::stream::iter(
            member_jobs
                .chain(sandbox_jobs)
                .chain(workspace_jobs)
                .chain(connection_jobs)
                .chain(preview_jobs),
        )
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
        started.elapsed()
    }

    fn start_operator(&self, tag: &str) -> Operator {
        let log = self.logs.join(format!("operator-{tag}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let p = &self.params;
        let human = |d: Duration| format!("{}ms", d.as_millis());
        let args = [
            "run".to_owned(),
            "--api-url".to_owned(),
            self.sim.base_url(),
            "--watch-namespace".to_owned(),
            self.ns.clone(),
            "--resync-interval".to_owned(),
            human(p.resync),
            "--invitation-poll-interval".to_owned(),
            human(p.poll),
            "--transition-poll-interval".to_owned(),
            human(p.poll),
            "--backoff-base".to_owned(),
            "200ms".to_owned(),
            "--backoff-max".to_owned(),
            "5s".to_owned(),
            "--api-rate-limit".to_owned(),
            p.rate.to_string(),
            "--api-burst".to_owned(),
            p.burst.to_string(),
            "--max-concurrent-reconciles".to_owned(),
            p.concurrency.to_string(),
        ];
        // BENCH_OPERATOR_BIN runs another build (for before/after comparisons).
        let bin = std::env::var_os("BENCH_OPERATOR_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_blaxel-operator")),
            PathBuf::from,
        );
        let child = Command::new(bin)
            .args(&args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("BL_API_KEY")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_OPERATOR_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("starting the operator");
        Operator { child, log }
    }

    fn counts(&self) -> Counts {
        Counts::of(&self.sim.stats())
    }

    /// Waits until every object is Ready, sampling the operator's RSS; `None` on timeout.
    async fn wait_ready(
        &self,
        op: &Operator,
        deadline: Duration,
        rss_max: &mut u64,
    ) -> Option<Duration> {
        let started = Instant::now();
        let (want_m, want_s) = (self.scale.members, self.scale.sandboxes);
        let mut last_print = Instant::now();
        loop {
            let (m, s) = self.watches.ready();
            *rss_max = (*rss_max).max(op.rss_kib());
            if m >= want_m && s >= want_s {
                return Some(started.elapsed());
            }
            if started.elapsed() > deadline {
                eprintln!(
                    "  timed out: {m}/{want_m} members and {s}/{want_s} sandboxes Ready; operator log tail:\n{}",
                    op.log_tail(20)
                );
                return None;
            }
            if last_print.elapsed() > Duration::from_secs(10) {
                eprintln!(
                    "  … {:.0}s: {m}/{want_m} members, {s}/{want_s} sandboxes Ready, {}",
                    started.elapsed().as_secs_f64(),
                    self.counts().summary()
                );
                last_print = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every Workspace counts the converged world (it recounts at its resync, after the
    /// members it counts converged), every integration connection is Ready and every preview holds its
    /// token: the steady state starts from there. Not part of the convergence time, which is the
    /// members' and sandboxes'.
    async fn wait_others_settled(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        let want = (
            self.scale.workspaces,
            self.scale.workspaces,
            self.scale.sandboxes,
        );
        loop {
            let (w, c, p) = self.watches.others_ready();
            if w >= want.0 && c >= want.1 && p >= want.2 {
                break;
            }
            if Instant::now() > until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Waits until the bench's watches have seen every object (so Ready counts start from a known list).
    async fn wait_seen(&self) {
        let until = Instant::now() + Duration::from_secs(300);
        loop {
            let m = self.watches.members.lock().unwrap().ready.len();
            let s = self.watches.sandboxes.lock().unwrap().ready.len();
            if m >= self.scale.members && s >= self.scale.sandboxes {
                return;
            }
            assert!(
                Instant::now() < until,
                "the bench's watches never saw every object"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Figures of one convergence run.
#[derive(Debug, Default, serde::Serialize)]
struct RunReport {
    label: String,
    members: usize,
    sandboxes: usize,
    workspaces: usize,
    create_s: f64,
    converge_s: Option<f64>,
    bound_s: f64,
    ratio: Option<f64>,
    /// The Kubernetes floor: the same Kubernetes writes per object, by a bare client (see [`k8s_floor`]).
    k8s_floor_s: Option<f64>,
    /// Convergence over the larger of the two lower bounds (remote and Kubernetes).
    ratio_physical: Option<f64>,
    convergence: Counts,
    steady: Option<Counts>,
    steady_seconds: f64,
    steady_k8s_object_changes: u64,
    rss_converged_kib: u64,
    rss_peak_kib: u64,
    rss_idle_kib: u64,
    /// CPU seconds used during convergence, per process.
    cpu_convergence: BTreeMap<String, f64>,
    /// CPU seconds used during the steady-state window, per process.
    cpu_steady: BTreeMap<String, f64>,
    duplicate_invitations: Option<i64>,
    duplicate_sandboxes: Option<i64>,
    latency: Option<LatencyReport>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
struct LatencyReport {
    samples: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Measured minus the simulator's latency of each remote request on the path (the list, when the
    /// shared list had to be refreshed, and the invitation itself).
    overhead_p50_ms: f64,
    overhead_p99_ms: f64,
    lists_on_path: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Clean,
    Faults,
}

async fn converge(label: &str, scale: Scale, params: &Params, mode: Mode) -> RunReport {
    let faults = Faults {
        latency: params.latency,
        rate_limit: Some(RateLimit {
            per_second: params.rate,
            burst: params.burst,
        }),
        error_rate: if mode == Mode::Faults { 0.1 } else { 0.0 },
        // Answers lost after the write was made: what a blind retry of a create would duplicate.
        lost_answer_rate: if mode == Mode::Faults { 0.02 } else { 0.0 },
        ..Faults::default()
    };
    let world = World::new(scale, params, faults).await;
    eprintln!(
        "{label}: {} members + {} sandboxes over {} workspaces in namespace {}",
        scale.members, scale.sandboxes, scale.workspaces, world.ns
    );
    let create = world.create_all("").await;
    world.wait_seen().await;
    eprintln!("  created in {:.1}s", create.as_secs_f64());
    let bound = params.bound(scale);
    let cluster = cluster_pids(&world.kubeconfig);
    let op = world.start_operator(label);
    let cpu_start = cpu_snapshot(&op, &cluster);
    let mut rss_max = 0;
    let storm = if mode == Mode::Faults {
        // A 429 storm: one second in, the server allows 5 requests/s per key (burst 1) for 3 s.
        let root = world.sim.root_url();
        let http = world.http.clone();
        let (rate, burst) = (params.rate, params.burst);
        Some(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let put = |body: Value| http.put(format!("{root}/_sim/faults")).json(&body).send();
            put(json!({"rateLimit": {"perSecond": 5, "burst": 1}}))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            put(json!({"rateLimit": {"perSecond": rate, "burst": burst}}))
                .await
                .unwrap();
        }))
    } else {
        None
    };
    let deadline = Duration::from_secs(120) + Duration::from_millis(60 * scale.total() as u64);
    let converged = world.wait_ready(&op, deadline, &mut rss_max).await;
    if let Some(storm) = storm {
        let _ = storm.await;
    }
    let at_convergence = world.counts();
    let rss_converged = op.rss_kib();
    let cpu_converged = cpu_snapshot(&op, &cluster);
    let mut report = RunReport {
        label: label.to_owned(),
        members: scale.members,
        sandboxes: scale.sandboxes,
        workspaces: scale.workspaces,
        create_s: create.as_secs_f64(),
        converge_s: converged.map(|d| d.as_secs_f64()),
        bound_s: bound.as_secs_f64(),
        ratio: converged.map(|d| d.as_secs_f64() / bound.as_secs_f64()),
        convergence: at_convergence.clone(),
        rss_converged_kib: rss_converged,
        cpu_convergence: cpu_minus(&cpu_converged, &cpu_start),
        ..RunReport::default()
    };
    eprintln!(
        "  converged in {} (bound {:.2}s): {}",
        converged.map_or("—".to_owned(), |d| format!("{:.2}s", d.as_secs_f64())),
        bound.as_secs_f64(),
        at_convergence.summary()
    );
    eprintln!(
        "  CPU during convergence: {}",
        cpu_summary(&report.cpu_convergence)
    );
    if mode == Mode::Faults {
        report.duplicate_invitations =
            Some(at_convergence.handled("POST /v0/users") as i64 - scale.members as i64);
        report.duplicate_sandboxes =
            Some(at_convergence.handled("POST /v0/sandboxes") as i64 - scale.sandboxes as i64);
    } else if converged.is_some() {
        assert!(
            world.wait_others_settled(params.resync * 3).await,
            "the Workspaces never counted the converged members"
        );
        let at_convergence = world.counts();
        // Steady state: three resync periods with nothing to do.
        let changes_before = world.watches.changes();
        let steady = params
            .resync
            .mul_f64(f64::from(params.steady_periods) * 1.1);
        let t = Instant::now();
        while t.elapsed() < steady {
            rss_max = rss_max.max(op.rss_kib());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let after = world.counts().minus(&at_convergence);
        report.cpu_steady = cpu_minus(&cpu_snapshot(&op, &cluster), &cpu_converged);
        eprintln!(
            "  CPU during steady state: {}",
            cpu_summary(&report.cpu_steady)
        );
        eprintln!(
            "  steady state ({:.0}s): {}",
            steady.as_secs_f64(),
            after.summary()
        );
        report.steady_seconds = steady.as_secs_f64();
        report.steady = Some(after);
        report.steady_k8s_object_changes = world.watches.changes() - changes_before;
        report.rss_idle_kib = op.rss_kib();
        if params.latency_samples > 0 {
            report.latency = Some(latency(&world, params).await);
        }
    }
    report.rss_peak_kib = op.hwm_kib().max(rss_max);
    eprintln!(
        "  RSS: converged {} KiB, idle {} KiB, peak (VmHWM) {} KiB",
        report.rss_converged_kib, report.rss_idle_kib, report.rss_peak_kib
    );
    op.stop();
    if mode == Mode::Clean && converged.is_some() {
        let floor = k8s_floor(&world, params).await;
        eprintln!(
            "  Kubernetes floor (4 writes per object, {} in flight, no operator): {:.2}s",
            2 * params.concurrency,
            floor.as_secs_f64()
        );
        report.k8s_floor_s = Some(floor.as_secs_f64());
        report.ratio_physical = report
            .converge_s
            .map(|c| c / floor.as_secs_f64().max(report.bound_s));
    }
    report
}

/// The Kubernetes floor of a convergence: how long the API server takes for the writes the operator must
/// make per object, sent by a bare client with the operator's concurrency (per kind) and nothing else
/// running. Per object, as the operator does: the finalizer, one Event, then two status writes
/// (Invited/Deploying, then the settled status, copied from a converged object). The objects are fresh
/// copies (`f-` names) created untimed first; the operator is stopped, so nothing reacts to them, and two
/// bare watches stand in for its own. It leaves out what the operator's run also pays: its start and
/// cache sync, its reads (Secrets), and its reconciles' own latency chain.
async fn k8s_floor(world: &World, params: &Params) -> Duration {
    use blaxel_operator::reconcile::events::EventPublisher;
    use kube::runtime::events::Reporter;

    let members: Api<WorkspaceMember> = Api::namespaced(world.client.clone(), &world.ns);
    let sandboxes: Api<Sandbox> = Api::namespaced(world.client.clone(), &world.ns);
    let settled_member = members.get_status("m-0").await.unwrap().status.unwrap();
    let settled_sandbox = sandboxes.get_status("sbx-0").await.unwrap().status.unwrap();
    let mut invited = settled_member.clone();
    invited.phase = Some(blaxel_operator::crd::MemberPhase::Invited);
    invited
        .conditions
        .iter_mut()
        .for_each(|c| c.reason = "InvitationPending".into());
    let mut deploying = settled_sandbox.clone();
    deploying
        .conditions
        .iter_mut()
        .for_each(|c| c.reason = "Deploying".into());
    world.create_all("f-").await;
    let events = EventPublisher::new(
        world.client.clone(),
        Reporter {
            controller: "bench-floor".into(),
            instance: None,
        },
    );
    // Two watches in place of the operator's, so that every write fans out to as many watchers.
    let stand_ins = [
        tokio::spawn(watcher(members.clone(), watcher::Config::default()).for_each(|_| async {})),
        tokio::spawn(watcher(sandboxes.clone(), watcher::Config::default()).for_each(|_| async {})),
    ];
    let started = Instant::now();
    // The operator's concurrency: that many per kind.
    let per_kind = usize::from(params.concurrency);
    let member_names = (0..world.scale.members).map(|i| format!("f-m-{i}"));
    let sandbox_names = (0..world.scale.sandboxes).map(|i| format!("f-sbx-{i}"));
    let (cached_members, cached_sandboxes) = (
        Api::namespaced(world.client.clone(), &world.ns),
        Api::namespaced(world.client.clone(), &world.ns),
    );
    let (m, s) = tokio::join!(
        floor_writes::<WorkspaceMember>(
            &cached_members,
            member_names,
            [&invited, &settled_member],
            &events,
            per_kind
        ),
        floor_writes::<Sandbox>(
            &cached_sandboxes,
            sandbox_names,
            [&deploying, &settled_sandbox],
            &events,
            per_kind
        ),
    );
    m.unwrap();
    s.unwrap();
    let floor = started.elapsed();
    stand_ins.iter().for_each(tokio::task::JoinHandle::abort);
    floor
}

/// The floor's writes for each named object, `concurrency` objects at a time: the finalizer, one Event,
/// then the two statuses in turn.
async fn floor_writes<K>(
    api: &Api<Cached<K>>,
    names: impl Iterator<Item = String>,
    statuses: [&K::Status; 2],
    events: &blaxel_operator::reconcile::events::EventPublisher,
    concurrency: usize,
) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + HasSpec
        + HasStatus
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::Spec: serde::de::DeserializeOwned + Clone + std::fmt::Debug,
    K::Status: WithConditions,
{
    use kube::runtime::events::{Event, EventType};

    let finalizer =
        Patch::Merge(json!({"metadata": {"finalizers": [blaxel_operator::crd::FINALIZER]}}));
    let event = Event {
        type_: EventType::Normal,
        reason: "Invited".into(),
        note: Some("floor".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let client = api.clone().into_client();
    futures::stream::iter(names)
        .map(|name| {
            let (finalizer, event, client) = (&finalizer, &event, &client);
            async move {
                let obj = api.patch(&name, &PatchParams::default(), finalizer).await?;
                events
                    .publish(event, &kube::Resource::object_ref(&obj, &()))
                    .await?;
                for status in statuses {
                    // Both written, as a creating pass and its next one write them.
                    blaxel_operator::reconcile::patch_status(client, &obj, status)
                        .await
                        .unwrap();
                }
                Ok::<(), kube::Error>(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

/// Apply → first remote write with the API otherwise idle: one new member at a time.
async fn latency(world: &World, params: &Params) -> LatencyReport {
    let members: Api<WorkspaceMember> = Api::namespaced(world.client.clone(), &world.ns);
    let pp = PatchParams::apply("bench").force();
    let mut samples = Vec::new();
    let mut overheads = Vec::new();
    let mut lists_on_path = 0;
    for i in 0..params.latency_samples {
        let name = format!("lat-{i}");
        let body = World::member_body(&name, &format!("latency{i}@example.com"), 0);
        let before = world.counts();
        let started = Instant::now();
        members
            .patch(&name, &pp, &Patch::Apply(&body))
            .await
            .unwrap();
        let until = started + Duration::from_secs(30);
        let now = loop {
            let c = world.counts();
            if c.route("POST /v0/users") > before.route("POST /v0/users") {
                break c;
            }
            assert!(Instant::now() < until, "no invitation within 30 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let lists = (now.route("GET /v0/users") - before.route("GET /v0/users")) as usize;
        lists_on_path += lists.min(1);
        let remote = params.latency.as_secs_f64() * 1000.0 * (1 + lists.min(1)) as f64;
        samples.push(elapsed);
        overheads.push(elapsed - remote);
        // Let the invitation be accepted and observed, so the next sample starts from an idle API.
        tokio::time::sleep(params.poll + params.auto_accept + Duration::from_millis(100)).await;
    }
    samples.sort_by(f64::total_cmp);
    overheads.sort_by(f64::total_cmp);
    LatencyReport {
        samples: samples.len(),
        p50_ms: percentile(&samples, 0.5),
        p99_ms: percentile(&samples, 0.99),
        max_ms: samples.last().copied().unwrap_or(0.0),
        overhead_p50_ms: percentile(&overheads, 0.5),
        overhead_p99_ms: percentile(&overheads, 0.99),
        lists_on_path,
    }
}

fn env_flag(name: &str) -> Option<bool> {
    std::env::var(name)
        .ok()
        .map(|v| !matches!(v.as_str(), "" | "0" | "false" | "no"))
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn print_tables(params: &Params, reports: &[RunReport]) {
    println!();
    println!(
        "Scenario: rate limit {}/s per key (burst {}), latency {} ms, auto-accept {} ms, deploy {} ms, resync {} s, polls {} ms, {} concurrent reconciles per kind",
        params.rate,
        params.burst,
        params.latency.as_millis(),
        params.auto_accept.as_millis(),
        params.deploy_time.as_millis(),
        params.resync.as_secs(),
        params.poll.as_millis(),
        params.concurrency
    );
    println!();
    println!(
        "| run | members | sandboxes | workspaces | create (s) | converge (s) | bound (s) | ratio | k8s floor (s) | ratio to max(bound, floor) | reads | writes | 429 | steady reads | steady writes | steady k8s changes | RSS converged (MiB) | RSS idle (MiB) | RSS peak (MiB) |"
    );
    println!(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in reports {
        println!(
            "| {} | {} | {} | {} | {:.1} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.members,
            r.sandboxes,
            r.workspaces,
            r.create_s,
            r.converge_s.map_or("—".into(), |s| format!("{s:.2}")),
            r.bound_s,
            r.ratio.map_or("—".into(), |s| format!("{s:.2}")),
            r.k8s_floor_s.map_or("—".into(), |s| format!("{s:.2}")),
            r.ratio_physical.map_or("—".into(), |s| format!("{s:.2}")),
            r.convergence.reads(),
            r.convergence.writes(),
            r.convergence.rate_limited,
            r.steady
                .as_ref()
                .map_or("—".into(), |s| s.reads().to_string()),
            r.steady
                .as_ref()
                .map_or("—".into(), |s| s.writes().to_string()),
            if r.steady.is_some() {
                r.steady_k8s_object_changes.to_string()
            } else {
                "—".into()
            },
            mib(r.rss_converged_kib),
            if r.rss_idle_kib > 0 {
                mib(r.rss_idle_kib)
            } else {
                "—".into()
            },
            mib(r.rss_peak_kib),
        );
    }
    println!();
    println!("Requests by route:");
    for r in reports {
        println!("- {} convergence: {}", r.label, r.convergence.summary());
        println!(
            "- {} CPU during convergence: {}",
            r.label,
            cpu_summary(&r.cpu_convergence)
        );
        if !r.cpu_steady.is_empty() {
            println!(
                "- {} CPU during steady state: {}",
                r.label,
                cpu_summary(&r.cpu_steady)
            );
        }
        if let Some(s) = &r.steady {
            println!(
                "- {} steady state ({:.0} s): {}",
                r.label,
                r.steady_seconds,
                s.summary()
            );
        }
        if let (Some(i), Some(s)) = (r.duplicate_invitations, r.duplicate_sandboxes) {
            println!(
                "- {}: duplicate invitations {i}, duplicate sandboxes {s}, injected 5xx {}, lost answers {}, 429 {}",
                r.label, r.convergence.injected, r.convergence.lost, r.convergence.rate_limited
            );
        }
        if let Some(l) = &r.latency {
            println!(
                "- {} apply → first remote write ({} samples, {} with a list on the path): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; over API latency: p50 {:.1} ms, p99 {:.1} ms",
                r.label,
                l.samples,
                l.lists_on_path,
                l.p50_ms,
                l.p99_ms,
                l.max_ms,
                l.overhead_p50_ms,
                l.overhead_p99_ms
            );
        }
    }
}

/// Where the bench writes its results and logs.
fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench")
}

async fn run() {
    // The previous bench's operator logs go: a 10,000-object run writes ~5 MB of them.
    let _ = std::fs::remove_dir_all(bench_dir().join("logs"));
    let quick = env_flag("BENCH_QUICK").unwrap_or(false);
    let params = Params {
        rate: 50.0,
        burst: 10,
        latency: Duration::from_millis(20),
        auto_accept: Duration::from_millis(100),
        deploy_time: Duration::from_millis(100),
        resync: Duration::from_secs(if quick { 2 } else { 10 }),
        poll: Duration::from_millis(500),
        concurrency: std::env::var("BENCH_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64),
        steady_periods: std::env::var("BENCH_STEADY_PERIODS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3),
        latency_samples: std::env::var("BENCH_LATENCY_SAMPLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 5 } else { 40 }),
    };
    let totals: Vec<usize> = match std::env::var("BENCH_SCALES") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) if quick => vec![24],
        Err(_) => vec![100, 1200, 10_000],
    };
    let workspaces = if quick { 2 } else { 10 };
    let mut reports = Vec::new();
    for (i, total) in totals.iter().enumerate() {
        let scale = Scale::of_total(*total, workspaces);
        let mut p = params.clone();
        // Latency is measured once, on the smallest world, where nothing else is going on.
        if i > 0 {
            p.latency_samples = 0;
        }
        reports.push(converge(&format!("{total} objects"), scale, &p, Mode::Clean).await);
    }
    if env_flag("BENCH_FAULTS").unwrap_or(true) {
        let scale = if quick {
            Scale::of_total(24, workspaces)
        } else {
            Scale::of_total(1200, workspaces)
        };
        reports.push(
            converge(
                &format!(
                    "{} objects, 10% 5xx + 2% lost answers + 429 storm",
                    scale.total()
                ),
                scale,
                &params,
                Mode::Faults,
            )
            .await,
        );
    }
    print_tables(&params, &reports);
    let out = bench_dir();
    if std::fs::create_dir_all(&out).is_ok() {
        let _ = std::fs::write(
            out.join("convergence.json"),
            serde_json::to_vec_pretty(&json!({"reports": reports})).unwrap_or_default(),
        );
    }
}
