//! The third adversarial probe, of the Workspace and IntegrationConnection kinds (a helper acting as an
//! attacker and as a careless user): each test failed on the code before its fix, against the real
//! operator binary, the local Kubernetes API server and the simulator.
//!
//! Every test waits with a bounded poll (never a sleep to synchronise) and fails with a message saying
//! what went wrong.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blaxel_operator::crd::MemberPhase;
use blaxel_operator::sim::{ApiGeneration, SimConfig};
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use support::operator::{
    DEADLINE, World, annotate, condition_is, eventually, nudged_until, second_after,
};

/// The account key the simulators of these tests also accept (it may create and delete workspaces).
const ACCOUNT_KEY: &str = "acct-key-7d2b41";

/// How long a probe waits for the behaviour it expects before it reports the defect.
const PROBE: Duration = Duration::from_secs(20);

fn with_account_key() -> SimConfig {
    SimConfig {
        account_keys: vec![ACCOUNT_KEY.to_owned()],
        ..SimConfig::default()
    }
}

/// Today's API (users carry `source`), invitees accepting at once.
fn accepting() -> SimConfig {
    SimConfig {
        generation: ApiGeneration::V2026,
        auto_accept_after: Some(Duration::ZERO),
        ..SimConfig::default()
    }
}

/// A person adds `email` to the world's workspace outside the operator.
async fn out_of_band(world: &World, email: &str) {
    world
        .sim_control(
            &format!("workspaces/{}/users", world.workspace),
            json!({"email": email, "role": "member", "source": "invitation", "accepted": true}),
        )
        .await;
}

/// The e-mails in the world's workspace now (the simulator's state, not what the API lists).
async fn present(world: &World) -> Vec<String> {
    let mut emails: Vec<String> = world
        .remote_users()
        .await
        .iter()
        .filter_map(|u| u["email"].as_str().map(str::to_owned))
        .collect();
    emails.sort();
    emails
}

/// The Workspace object `name`'s status as JSON (`Null` when it has none or is gone).
async fn status(world: &World, name: &str) -> Value {
    match world.workspaces().get_opt(name).await.ok().flatten() {
        Some(ws) => serde_json::to_value(ws)
            .unwrap()
            .get("status")
            .cloned()
            .unwrap_or(Value::Null),
        None => Value::Null,
    }
}

/// Condition `kind` of a status as (status, reason).
fn cond(status: &Value, kind: &str) -> Option<(String, String)> {
    let c = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?;
    Some((
        c["status"].as_str()?.to_owned(),
        c["reason"].as_str()?.to_owned(),
    ))
}

fn deletes(world: &World) -> u64 {
    world.calls("DELETE /v0/users/{subOrEmail}")
}

/// Asks object `name` for a forced resync (a fresh remote read), with a new value each time.
async fn nudge<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let value = format!("{}", rand::random::<u64>());
    let patch = json!({"metadata": {"annotations": {"blaxel.ai/reconcile-requested-at": value}}});
    let _ = api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await;
}

/// Polls `check` every 100 ms for at most `deadline`: its first `Some`, or `None` at the deadline
/// (the caller then asserts with a message of its own).
async fn within<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Warning and Normal Events about object `name` with `reason`, by their notes.
async fn events(world: &World, name: &str, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(world.client.clone(), &world.ns);
    let list = events.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.message)
        .collect()
}

/// A Secret `name` in the world's namespace holding `key` under `apiKey`.
async fn secret(world: &World, name: &str, key: &str) {
    world.key_secret(name, key).await;
}

/// The spec of a Workspace named `name` remotely, with the account key of Secret `secret`.
fn account_spec(name: &str, secret: &str, policy: &str) -> Value {
    json!({"spec": {
        "workspaceName": name, "deletionPolicy": policy, "credentialsRef": {"name": secret}
    }})
}

/// A short suffix that makes workspace names unique per test namespace.
fn suffix(world: &World) -> String {
    world.ns[world.ns.len().saturating_sub(6)..].to_owned()
}

// ---------------------------------------------------------------------------------------------------
// Deleting a workspace
// ---------------------------------------------------------------------------------------------------

/// Was a defect: after a restart, a Workspace with `deletionPolicy: Delete` that is being deleted checks for
/// WorkspaceMembers still naming the workspace in the WorkspaceMember cache before that cache has
/// synced (only the membership step waits for a complete view). The workspace, and everything in it, is
/// deleted while WorkspaceMembers still name it, their own cleanup stranded; the contract says nothing
/// is deleted until they are gone (`WorkspaceInUse`).
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_never_deletes_a_workspace_in_use_on_an_unsynced_cache() {
    const MEMBERS: usize = 30;
    let mut world = World::new(with_account_key()).await;
    secret(&world, "account", ACCOUNT_KEY).await;
    let name = format!("inuse-{}", suffix(&world));
    let mut op = world.start_operator(&[]);
    world
        .apply(
            &world.workspaces(),
            "fresh",
            account_spec(&name, "account", "Delete"),
        )
        .await;
    condition_is(&world.workspaces(), "fresh", "Ready", "True", "Ready").await;
    op.kill();
    // WorkspaceMembers naming the workspace, each carrying a large annotation (as `kubectl apply`'s
    // last-applied copy of a big manifest would): their list takes a moment to arrive.
    let filler = "x".repeat(240_000);
    futures::future::join_all((0..MEMBERS).map(|i| {
        let world = &world;
        let name = &name;
        let filler = &filler;
        async move {
            world
                .apply(
                    &world.members(),
                    &format!("m{i:02}"),
                    json!({
                        "metadata": {"annotations": {"example.com/manifest": filler}},
                        "spec": {"workspace": name, "email": format!("m{i:02}@example.com"),
                                 "deletionPolicy": "Orphan", "credentialsRef": {"name": "account"}}
                    }),
                )
                .await;
        }
    }))
    .await;
    world
        .workspaces()
        .delete("fresh", &DeleteParams::default())
        .await
        .unwrap();
    let _op = world.start_operator(&[]);
    let verdict = eventually("the deleted Workspace handled", DEADLINE, || async {
        let s = status(&world, "fresh").await;
        if s.is_null() {
            return Some("gone".to_owned());
        }
        match cond(&s, "Stalled") {
            Some((t, reason)) if t == "True" => Some(reason),
            _ => None,
        }
    })
    .await;
    let deleted = world.calls("DELETE /v0/workspaces/{name}");
    // The large objects are not left behind in the shared cluster.
    let _ = world
        .members()
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    assert_eq!(
        deleted, 0,
        "the workspace was deleted right after the restart while {MEMBERS} WorkspaceMembers still named \
         it (the Workspace ended {verdict:?}, not Stalled WorkspaceInUse): the in-use check read an \
         unsynced cache"
    );
}

/// Was a defect: a Workspace object that was only ever a Stalled `DuplicateWorkspace` deletes the workspace
/// when it is deleted with `deletionPolicy: Delete` at a moment when the holder cannot act (its Secret
/// is being rotated). Cleanup decides who holds the claim at that instant and does not count the other
/// Workspace objects naming the workspace as users, so an object that never acted destroys a workspace
/// another object manages.
#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_that_never_acted_never_deletes_the_workspace() {
    let mut world = World::new(with_account_key()).await;
    secret(&world, "holder-key", ACCOUNT_KEY).await;
    secret(&world, "other-key", ACCOUNT_KEY).await;
    let _op = world.start_operator(&[]);
    let name = format!("held-{}", suffix(&world));
    world
        .apply(
            &world.workspaces(),
            "holder",
            account_spec(&name, "holder-key", "Orphan"),
        )
        .await;
    condition_is(&world.workspaces(), "holder", "Ready", "True", "Ready").await;
    second_after(&world.workspaces(), "holder").await;
    world
        .apply(
            &world.workspaces(),
            "dup",
            account_spec(&name, "other-key", "Delete"),
        )
        .await;
    condition_is(
        &world.workspaces(),
        "dup",
        "Stalled",
        "True",
        "DuplicateWorkspace",
    )
    .await;
    // The holder's Secret is replaced (deleted, then written again by a secrets tool).
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), &world.ns);
    secrets
        .delete("holder-key", &DeleteParams::default())
        .await
        .unwrap();
    support::operator::nudged_until(
        &world.workspaces(),
        "holder",
        "the holder without its Secret",
        || async {
            let s = status(&world, "holder").await;
            (cond(&s, "Stalled")? == ("True".to_owned(), "CredentialsNotFound".to_owned()))
                .then_some(())
        },
    )
    .await;
    world
        .workspaces()
        .delete("dup", &DeleteParams::default())
        .await
        .unwrap();
    let verdict = eventually("the duplicate's deletion handled", DEADLINE, || async {
        if status(&world, "dup").await.is_null() {
            return Some("gone".to_owned());
        }
        let s = status(&world, "dup").await;
        match cond(&s, "Stalled") {
            Some((t, reason)) if t == "True" && reason != "DuplicateWorkspace" => Some(reason),
            _ => None,
        }
    })
    .await;
    world.key_secret("holder-key", ACCOUNT_KEY).await;
    assert!(
        world.sim_state().await["workspaces"].get(&name).is_some(),
        "workspace {name}, managed by Workspace 'holder', was deleted by Workspace 'dup', a duplicate \
         that never acted ({} DELETE /workspaces; dup ended {verdict:?})",
        world.calls("DELETE /v0/workspaces/{name}")
    );
}

// ---------------------------------------------------------------------------------------------------
// Completeness of the WorkspaceMember view
// ---------------------------------------------------------------------------------------------------

/// A TCP relay between the operator and the API server whose connections can be cut at once, as a
/// load balancer restart or a network blip would.
struct Relay {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let tracked = Arc::clone(&conns);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().unwrap().push(task);
            }
        });
        Self {
            addr,
            conns,
            accept,
        }
    }

    /// Closes every connection open now; new ones are relayed as before.
    fn cut(&self) -> usize {
        let open: Vec<_> = self.conns.lock().unwrap().drain(..).collect();
        let n = open.len();
        for task in open {
            task.abort();
        }
        n
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A copy of the shared cluster's kubeconfig whose server is `relay` (same TLS name: 127.0.0.1), and
/// the upstream address it replaced.
fn relayed_kubeconfig(dir: &Path, relay: Option<SocketAddr>) -> (PathBuf, String) {
    let original = std::fs::read_to_string(test_kubeconfig_path()).unwrap();
    let server_line = original
        .lines()
        .find(|l| l.trim_start().starts_with("server:"))
        .expect("a server line in the kubeconfig");
    let url = server_line
        .trim_start()
        .trim_start_matches("server:")
        .trim();
    let upstream = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let path = dir.join("relayed-kubeconfig");
    if let Some(relay) = relay {
        let text = original.replace(url, &format!("https://{relay}"));
        std::fs::write(&path, text).unwrap();
    }
    (path, upstream)
}

fn test_kubeconfig_path() -> PathBuf {
    support::kube::test_kubeconfig().expect(
        "these probes need BLAXEL_TEST_KUBECONFIG (a kubeconfig file the operator process can use)",
    )
}

/// The operator binary on the world's namespace with the harness's test timings, talking to the API
/// server through `kubeconfig`.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The operator binary with the harness's test timings against the simulator at `api_url` (default key
/// `key`), talking to the API server of `kubeconfig`, plus `scope` (which namespaces it watches, where
/// the default key may be used, its own namespace).
fn spawn(api_url: &str, key: &str, kubeconfig: &Path, dir: &Path, scope: &[&str]) -> Process {
    let log = dir.join("operator.log");
    let file = std::fs::File::create(&log).unwrap();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .to_string();
    let mut args: Vec<&str> = vec![
        "run",
        "--api-url",
        api_url,
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
        "--metrics-bind",
        &metrics,
    ];
    args.extend_from_slice(scope);
    let child = Command::new(env!("CARGO_BIN_EXE_blaxel-operator"))
        .args(&args)
        .env("KUBECONFIG", kubeconfig)
        .env("BL_API_KEY", key)
        .env("RUST_LOG", "info,blaxel_operator=debug")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    Process { child, log }
}

/// [`spawn`] on the world's namespace, as the harness starts it.
fn spawn_operator(world: &World, kubeconfig: &Path, dir: &Path) -> Process {
    spawn(
        &world.sim.base_url(),
        &world.key,
        kubeconfig,
        dir,
        &[
            "--watch-namespace",
            &world.ns,
            "--default-credentials-namespaces",
            &world.ns,
            "--lease-namespace",
            &world.ns,
        ],
    )
}

/// Was a defect: after a watch error that the watch resumes from (a dropped connection, anything but 410
/// Gone), the WorkspaceMember view is marked incomplete and never complete again: kube's watcher
/// resumes from its resourceVersion without a new list, and only a list's end marks the view
/// complete. From then on every Authoritative and Report Workspace stays `MemberViewIncomplete`: a
/// member added by hand is never removed nor reported, until the operator restarts.
#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_watch_lists_again_and_completes_the_view() {
    let world = World::new(accepting()).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, upstream) = relayed_kubeconfig(dir.path(), None);
    let relay = Relay::start(upstream).await;
    let (kubeconfig, _) = relayed_kubeconfig(dir.path(), Some(relay.addr));
    let op = spawn_operator(&world, &kubeconfig, dir.path());
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace, "members": {"policy": "Authoritative"}}}),
        )
        .await;
    condition_is(&world.workspaces(), "home", "Ready", "True", "Ready").await;
    // The connection to the API server drops once; the operator reconnects through the relay.
    let cut = relay.cut();
    assert!(cut > 0, "the operator had no connection to cut");
    eventually("the operator saw its watches fail", DEADLINE, || async {
        op.output().contains("watch failed; retrying").then_some(())
    })
    .await;
    // The watches resumed: a WorkspaceMember applied now is seen and acted on.
    world
        .apply_member(
            "bob",
            json!({"workspace": world.workspace, "email": "bob@example.com"}),
        )
        .await;
    eventually("bob Active after the reconnection", DEADLINE, || async {
        (world.member_phase("bob").await? == MemberPhase::Active).then_some(())
    })
    .await;
    out_of_band(&world, "carol@example.com").await;
    let removed = within(PROBE, || async {
        nudge(&world.workspaces(), "home").await;
        (!present(&world)
            .await
            .contains(&"carol@example.com".to_owned()))
        .then_some(())
    })
    .await;
    let s = status(&world, "home").await;
    assert!(
        removed.is_some(),
        "{}s after one dropped connection to the API server, the Authoritative Workspace still has not \
         removed carol@example.com (added by hand): the WorkspaceMember view stays incomplete after a \
         resumed watch; Reconciling: {:?}",
        PROBE.as_secs(),
        cond(&s, "Reconciling")
    );
}

// ---------------------------------------------------------------------------------------------------
// Remote data
// ---------------------------------------------------------------------------------------------------

/// Was a defect: a workspace whose labels hold a non-string value (the 2025 API accepts any object there,
/// e.g. `{"tier": 1}` set from another tool) cannot be adopted at all, even by a Workspace whose spec
/// leaves labels out: the remote record does not decode, so the Workspace never gets Ready (Synced
/// False `Decode`, retried for ever) and its membership policy never runs. The contract keeps fields
/// the spec leaves out, unknown or odd ones included.
#[tokio::test(flavor = "multi_thread")]
async fn a_2025_workspace_with_a_numeric_label_is_adopted() {
    let mut world = World::new(SimConfig::default()).await;
    let answer = world
        .blaxel(
            reqwest::Method::PUT,
            &format!("/workspaces/{}", world.workspace),
            Some(json!({"name": world.workspace, "labels": {"tier": 1, "team": "a"}})),
        )
        .await;
    assert!(answer.is_success(), "the 2025 API took the label: {answer}");
    let _op = world.start_operator(&[]);
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace, "members": {"policy": "Report"}}}),
        )
        .await;
    let ready = within(PROBE, || async {
        (cond(&status(&world, "home").await, "Ready")? == ("True".to_owned(), "Ready".to_owned()))
            .then_some(())
    })
    .await;
    let s = status(&world, "home").await;
    assert!(
        ready.is_some(),
        "an existing 2025 workspace with a numeric label value (which the spec does not even declare) \
         is never adopted: Ready {:?}, Synced {:?}",
        cond(&s, "Ready"),
        cond(&s, "Synced")
    );
    let record = &world.sim_state().await["workspaces"][&world.workspace]["workspace"];
    assert_eq!(
        record["labels"]["tier"],
        json!(1),
        "the undeclared label was changed"
    );
}

/// A listed member whose e-mail is in no canonical form (a trailing space: the API lists it but
/// cannot address it by that e-mail) is an unreadable record: an Authoritative Workspace concludes
/// nothing (`RemoteListIncomplete`, naming why) and sends no `DELETE`, which would answer 404 and be
/// taken for a removal while the record stays (it was, with a `RemovedUnmanaged` Event, at every pass).
#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_cannot_be_addressed_is_never_reported_removed() {
    let mut world = World::new(accepting()).await;
    world
        .sim_control(
            &format!("workspaces/{}/malformed", world.workspace),
            json!({"collection": "users", "record": {
                "email": "mallory@example.com ", "role": "admin", "accepted": true,
                "sub": "c0ffee00-0000-4000-8000-00000000m411", "source": "invitation"
            }}),
        )
        .await;
    let _op = world.start_operator(&[]);
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace, "members": {"policy": "Authoritative"}}}),
        )
        .await;
    condition_is(
        &world.workspaces(),
        "home",
        "Reconciling",
        "True",
        "RemoteListIncomplete",
    )
    .await;
    for _ in 0..3 {
        nudge(&world.workspaces(), "home").await;
        condition_is(
            &world.workspaces(),
            "home",
            "Reconciling",
            "True",
            "RemoteListIncomplete",
        )
        .await;
    }
    assert_eq!(
        deletes(&world),
        0,
        "a DELETE was sent for a member it cannot address"
    );
    assert!(
        events(&world, "home", "RemovedUnmanaged").await.is_empty(),
        "an Event says a member was removed"
    );
}

// ---------------------------------------------------------------------------------------------------
// The mass-removal guard
// ---------------------------------------------------------------------------------------------------

/// Was a defect: `blaxel.ai/confirm-removal: "true"` on a Workspace, the documented way to let one held
/// removal through, lifts `--removal-limit` for that workspace's membership removals for good: the
/// annotation stays on the object, and every later pass removes as many as `maxRemovals` allows without
/// any new confirmation. On a WorkspaceMember the same annotation confirms one removal (its own).
#[tokio::test(flavor = "multi_thread")]
async fn one_confirmation_lets_one_pass_through() {
    let mut world = World::new(accepting()).await;
    let _op = world.start_operator(&["--removal-limit", "1"]);
    out_of_band(&world, "carol@example.com").await;
    out_of_band(&world, "dave@example.com").await;
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace, "members": {
                "policy": "Authoritative", "maxRemovals": 5
            }}}),
        )
        .await;
    eventually("one removed, one held", DEADLINE, || async {
        nudge(&world.workspaces(), "home").await;
        let s = status(&world, "home").await;
        (cond(&s, "Stalled")? == ("True".to_owned(), "RemovalLimitReached".to_owned()))
            .then_some(())
    })
    .await;
    assert_eq!(present(&world).await.len(), 1, "the limit of 1 held one");
    // A person confirms the held removal, as the Semantics table says.
    annotate(
        &world.workspaces(),
        "home",
        "blaxel.ai/confirm-removal",
        Some("true"),
    )
    .await;
    eventually("the confirmed removal done", DEADLINE, || async {
        nudge(&world.workspaces(), "home").await;
        present(&world).await.is_empty().then_some(())
    })
    .await;
    // Later, within the same window: three more people added by hand.
    for who in ["erin", "frank", "gina"] {
        out_of_band(&world, &format!("{who}@example.com")).await;
    }
    let outcome = eventually("the next pass decided", DEADLINE, || async {
        nudge(&world.workspaces(), "home").await;
        let left = present(&world).await.len();
        if left == 0 {
            return Some("all three removed at once".to_owned());
        }
        let s = status(&world, "home").await;
        (cond(&s, "Stalled")? == ("True".to_owned(), "RemovalLimitReached".to_owned()) && left > 0)
            .then(|| format!("held with {left} left"))
    })
    .await;
    assert_ne!(
        outcome, "all three removed at once",
        "with --removal-limit 1 and the window's slot long used, three later removals went through with \
         no new confirmation: the confirm-removal annotation left on the Workspace disabled the guard \
         for good"
    );
}

// ---------------------------------------------------------------------------------------------------
// Tenants: an operator watching every namespace, on a private API server
// ---------------------------------------------------------------------------------------------------

/// A private API server with the CRDs, for a test whose operator watches every namespace (on the shared
/// one it would reconcile, and put finalizers on, other tests' objects).
async fn private_cluster() -> (blaxel_operator::kube_local::LocalApiServer, kube::Client) {
    use blaxel_operator::kube_local::{LocalApiServer, StartOptions};
    let server = LocalApiServer::start(StartOptions::default())
        .await
        .expect("a private local API server");
    let client = server.client().await.unwrap();
    support::kube::install_crds(&client, &Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")).await;
    (server, client)
}

/// Server-side applies object `name` of kind `K` with `body` (metadata.name, apiVersion, kind added).
async fn ssa<K>(api: &Api<K>, name: &str, mut body: Value) -> K
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    body["metadata"]["name"] = name.into();
    api.patch(
        name,
        &PatchParams::apply("attack-test").force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {name}: {e}"))
}

/// A Secret `name` in `namespace` holding `key` under `apiKey`.
async fn key_secret_in(client: &kube::Client, namespace: &str, name: &str, key: &str) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..kube::api::ObjectMeta::default()
        },
        string_data: Some([("apiKey".to_owned(), key.to_owned())].into()),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&kube::api::PostParams::default(), &secret)
        .await
        .unwrap();
}

/// The e-mails in simulator `sim`'s workspace `ws`.
async fn sim_users(sim: &blaxel_operator::sim::SimHandle, ws: &str) -> Vec<String> {
    let state: Value = reqwest::get(format!("{}/_sim/state", sim.root_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["workspaces"][ws]["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .filter_map(|u| u["email"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The status of `obj` as JSON.
fn status_of<K: serde::Serialize>(obj: &K) -> Value {
    serde_json::to_value(obj)
        .unwrap()
        .get("status")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Was a defect: a WorkspaceMember in a namespace that holds no key for the workspace (it may not use the
/// default key, and has no Secret: Stalled `CredentialsNotPermitted`, it never calls Blaxel) keeps
/// anyone it names in an Authoritative workspace: the Workspace treats every WorkspaceMember of any
/// other namespace as "declared elsewhere", whether or not it may act. Any tenant who can create a
/// WorkspaceMember anywhere can so keep a person (an ex-employee, themselves) in a workspace the platform
/// team manages authoritatively; the threat model says an object that cannot act blocks nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_cannot_act_keeps_no_one_in_an_authoritative_workspace() {
    let (server, client) = private_cluster().await;
    let platform = support::kube::fresh_namespace(&client).await;
    let tenant = support::kube::fresh_namespace(&client).await;
    let sim = blaxel_operator::sim::spawn(accepting()).await.unwrap();
    let key = sim.api_key();
    let answer = reqwest::Client::new()
        .post(format!(
            "{}/_sim/workspaces/{}/users",
            sim.root_url(),
            key.workspace
        ))
        .json(&json!({"email": "mallory@example.com", "role": "admin", "accepted": true}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    let dir = tempfile::tempdir().unwrap();
    let _op = spawn(
        &sim.base_url(),
        &key.key,
        server.kubeconfig_path(),
        dir.path(),
        &[
            "--default-credentials-namespaces",
            &platform,
            "--lease-namespace",
            &platform,
        ],
    );
    let tenant_members: Api<blaxel_operator::crd::WorkspaceMember> =
        Api::namespaced(client.clone(), &tenant);
    ssa(
        &tenant_members,
        "keep-me",
        json!({"spec": {"workspace": key.workspace, "email": "mallory@example.com"}}),
    )
    .await;
    condition_is(
        &tenant_members,
        "keep-me",
        "Stalled",
        "True",
        "CredentialsNotPermitted",
    )
    .await;
    let workspaces: Api<blaxel_operator::crd::Workspace> =
        Api::namespaced(client.clone(), &platform);
    ssa(
        &workspaces,
        "home",
        json!({"spec": {"workspaceName": key.workspace, "members": {"policy": "Authoritative"}}}),
    )
    .await;
    condition_is(&workspaces, "home", "Ready", "True", "Ready").await;
    let removed = within(PROBE, || async {
        nudge(&workspaces, "home").await;
        (!sim_users(&sim, &key.workspace)
            .await
            .contains(&"mallory@example.com".to_owned()))
        .then_some(())
    })
    .await;
    let s = status_of(&workspaces.get("home").await.unwrap());
    assert!(
        removed.is_some(),
        "mallory@example.com (admin, added by hand) stays in the Authoritative workspace because a \
         WorkspaceMember in namespace {tenant}, which may use no key and never called Blaxel, names \
         them; the Workspace does not even list them as unmanaged: {}",
        s["members"]
    );
}

/// Was a defect: a WorkspaceMember in a namespace that holds no key for the workspace blocks the deletion of
/// a Workspace with `deletionPolicy: Delete` for as long as it exists (Stalled `WorkspaceInUse`), and
/// it cannot itself go away (its cleanup waits for credentials it will never have). It never acted, so
/// no cleanup of its needs the workspace: a tenant without a key blocks the platform team.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_cannot_act_blocks_no_workspace_deletion() {
    let (server, client) = private_cluster().await;
    let platform = support::kube::fresh_namespace(&client).await;
    let tenant = support::kube::fresh_namespace(&client).await;
    let sim = blaxel_operator::sim::spawn(with_account_key())
        .await
        .unwrap();
    let key = sim.api_key();
    key_secret_in(&client, &platform, "account", ACCOUNT_KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let _op = spawn(
        &sim.base_url(),
        &key.key,
        server.kubeconfig_path(),
        dir.path(),
        &[
            "--default-credentials-namespaces",
            &platform,
            "--lease-namespace",
            &platform,
        ],
    );
    let name = format!("doomed-{}", &platform[platform.len() - 6..]);
    let workspaces: Api<blaxel_operator::crd::Workspace> =
        Api::namespaced(client.clone(), &platform);
    ssa(
        &workspaces,
        "doomed",
        account_spec(&name, "account", "Delete"),
    )
    .await;
    condition_is(&workspaces, "doomed", "Ready", "True", "Ready").await;
    let tenant_members: Api<blaxel_operator::crd::WorkspaceMember> =
        Api::namespaced(client.clone(), &tenant);
    ssa(
        &tenant_members,
        "squat",
        json!({"spec": {"workspace": name, "email": "squatter@example.com"}}),
    )
    .await;
    condition_is(
        &tenant_members,
        "squat",
        "Stalled",
        "True",
        "CredentialsNotPermitted",
    )
    .await;
    workspaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let gone = within(PROBE, || async {
        workspaces
            .get_opt("doomed")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let s = workspaces
        .get_opt("doomed")
        .await
        .ok()
        .flatten()
        .map(|w| status_of(&w));
    assert!(
        gone.is_some(),
        "deleting Workspace 'doomed' (deletionPolicy Delete) waits for ever on a WorkspaceMember of \
         namespace {tenant} that may use no key and never acted: Stalled {:?}",
        s.as_ref().and_then(|s| cond(s, "Stalled"))
    );
}

// ---------------------------------------------------------------------------------------------------
// Status and Events
// ---------------------------------------------------------------------------------------------------

/// Was a defect: a workspace this very object created is reported `adopted: true` ("the workspace existed
/// before this object") when the answer to its `POST /workspaces` was lost: the next pass finds the
/// workspace and, the status holding no id yet, takes it for one made by someone else. Whoever reads the
/// status (before setting `deletionPolicy: Delete`, say) is told a workspace of the operator's making
/// was there before.
#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_created_with_a_lost_answer_is_not_adopted() {
    let mut world = World::new(with_account_key()).await;
    let _op = world.start_operator(&[]);
    secret(&world, "account", ACCOUNT_KEY).await;
    world
        .sim_control(
            "faults/script",
            json!({"route": "POST /v0/workspaces", "loseAnswer": true}),
        )
        .await;
    let name = format!("lost-{}", suffix(&world));
    world
        .apply(
            &world.workspaces(),
            "fresh",
            account_spec(&name, "account", "Orphan"),
        )
        .await;
    condition_is(&world.workspaces(), "fresh", "Ready", "True", "Ready").await;
    assert_eq!(world.calls("POST /v0/workspaces"), 1, "one create was sent");
    let s = status(&world, "fresh").await;
    assert_eq!(
        s["adopted"],
        json!(false),
        "workspace {name} was created by this object's own POST (whose answer was lost), yet the status \
         says it existed before the object"
    );
}

/// Was a defect: Report announces the unmanaged set "each time it changes" by comparing only the first 50
/// (what the status lists) and the count: when someone past the 50th is replaced by another person,
/// the set changed, the count did not, and no Event is published, so a newcomer goes unannounced.
#[tokio::test(flavor = "multi_thread")]
async fn report_announces_a_change_past_the_fiftieth() {
    let mut world = World::new(accepting()).await;
    let _op = world.start_operator(&[]);
    for i in 0..50 {
        out_of_band(&world, &format!("a{i:02}@example.com")).await;
    }
    out_of_band(&world, "zoe@example.com").await;
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace, "members": {"policy": "Report"}}}),
        )
        .await;
    eventually("51 unmanaged reported", DEADLINE, || async {
        nudge(&world.workspaces(), "home").await;
        (status(&world, "home").await["members"]["unmanaged"] == 51).then_some(())
    })
    .await;
    let announced = events(&world, "home", "UnmanagedMembers").await.len();
    // zoe leaves and zack arrives: same count, a different set.
    let answer = world
        .blaxel(reqwest::Method::DELETE, "/users/zoe@example.com", None)
        .await;
    assert!(answer.is_success(), "{answer}");
    out_of_band(&world, "zack@example.com").await;
    let told = within(PROBE, || async {
        nudge(&world.workspaces(), "home").await;
        (events(&world, "home", "UnmanagedMembers").await.len() > announced).then_some(())
    })
    .await;
    assert!(
        told.is_some(),
        "zack@example.com joined the workspace unmanaged (replacing zoe@example.com, the 51st) and no \
         UnmanagedMembers Event was published in {}s: the change was not announced",
        PROBE.as_secs()
    );
}

// ---------------------------------------------------------------------------------------------------
// IntegrationConnection
// ---------------------------------------------------------------------------------------------------

/// Every Event message of the test namespace.
async fn event_messages(world: &World) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(world.client.clone(), &world.ns);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect()
}

/// The connection `name` as the simulator stores it (secret values included).
async fn stored(world: &World, name: &str) -> Option<Value> {
    let state = world.sim_state().await;
    state["workspaces"][&world.workspace]["integrationConnections"]
        .as_array()?
        .iter()
        .find(|c| c["metadata"]["name"] == name)
        .cloned()
}

fn connection_spec(world: &World) -> Value {
    json!({"spec": {
        "workspace": world.workspace, "integration": "openai",
        "config": {"organization": "acme"}, "secretRef": {"name": "openai-credentials"}
    }})
}

/// **Was a defect: a Secret key with an empty value is pushed to Blaxel as the connection's secret.**
///
/// The README's first IntegrationConnection row says a Secret that is "missing, empty, or a key that is
/// not text" sends nothing (Stalled `SecretNotFound`). A Secret whose value is empty (a careless
/// `kubectl create secret --from-literal=apiKey=$UNSET_VAR`, or an External Secrets object not yet
/// filled in) is accepted instead: the operator `POST`s (or, on an existing connection, `PUT`s, which
/// replaces the secret) an empty API key, breaking a working connection with no warning.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_secret_value_is_not_sent() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    world
        .write_secret("openai-credentials", json!({"apiKey": ""}))
        .await;
    world
        .apply(&world.connections(), "openai", connection_spec(&world))
        .await;
    // Whatever the operator decides, it decides it within the deadline: wait for a verdict.
    eventually("a verdict on the connection", DEADLINE, || async {
        let obj = world.connections().get("openai").await.ok()?;
        let status = status_of(&obj);
        status["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter().any(|c| {
                    (c["type"] == "Ready" || c["type"] == "Stalled") && c["status"] == "True"
                })
            })
            .then_some(())
    })
    .await;
    let remote = stored(&world, "openai").await;
    assert!(
        remote.is_none(),
        "a Secret whose only value is empty was sent to Blaxel as the connection's secret: {remote:?}"
    );
    condition_is(
        &world.connections(),
        "openai",
        "Stalled",
        "True",
        "SecretNotFound",
    )
    .await;
}

/// **Was a defect: a connection whose secret was wiped remotely is never repaired.**
///
/// A `PUT` replaces the whole connection: one made by hand (the console, a script) that keeps the config
/// but carries no secret leaves the connection with no secret values (the simulator, like a careful API,
/// then shows `spec.secretKeys: []`). The operator compares only `config`, `sandbox` and its own digest
/// of what it last sent, so it reports the connection Ready and never pushes the secret again: the
/// connection stays broken until someone changes the Secret. The key names Blaxel shows
/// (`secretKeys`) differ from the Secret's keys, a difference the operator could see.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_wiped_remotely_is_pushed_again() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    world
        .write_secret("openai-credentials", json!({"apiKey": "sk-live-5e2d"}))
        .await;
    world
        .apply(&world.connections(), "openai", connection_spec(&world))
        .await;
    condition_is(&world.connections(), "openai", "Ready", "True", "Ready").await;
    // Someone replaces the connection by hand with the same config and no secret.
    let code = world
        .blaxel(
            reqwest::Method::PUT,
            "/integrations/connections/openai",
            Some(json!({"metadata": {"name": "openai"},
                        "spec": {"integration": "openai", "config": {"organization": "acme"}, "sandbox": false}})),
        )
        .await;
    assert!(code.is_success(), "{code}");
    assert!(
        stored(&world, "openai").await.unwrap()["spec"]["secret"]
            .as_object()
            .is_none_or(serde_json::Map::is_empty),
        "the hand edit wiped the secret"
    );
    // The key names Blaxel shows are not the Secret's: the operator pushes the secret again.
    nudged_until(
        &world.connections(),
        "openai",
        "the secret pushed again to a connection left without it",
        || async {
            (stored(&world, "openai").await?["spec"]["secret"]["apiKey"] == "sk-live-5e2d")
                .then_some(())
        },
    )
    .await;
}

/// A connection created by a `POST` whose answer was lost (the values reached Blaxel) is not passed
/// off as adopted on the next pass, nor written again: the values count as sent once the create went
/// out. (The same class as a Workspace created with a lost answer.)
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_created_with_a_lost_answer_is_not_adopted() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    world
        .write_secret("openai-credentials", json!({"apiKey": "sk-live-0a1b"}))
        .await;
    world
        .sim_control(
            "faults/script",
            json!({"route": "POST /v0/integrations/connections", "loseAnswer": true}),
        )
        .await;
    world
        .apply(&world.connections(), "openai", connection_spec(&world))
        .await;
    condition_is(&world.connections(), "openai", "Ready", "True", "Ready").await;
    let obj = world.connections().get("openai").await.unwrap();
    assert_eq!(
        status_of(&obj)["adopted"],
        json!(false),
        "{}",
        status_of(&obj)
    );
    assert_eq!(world.calls("POST /v0/integrations/connections"), 1);
    assert_eq!(
        world.calls("PUT /v0/integrations/connections/{connectionName}"),
        0,
        "the values were sent by the lost create; nothing to write again"
    );
}

/// A fake Blaxel that lists no connection and refuses every create with a 400 quoting the secret it
/// was sent, as a server validating a JSON credential may ("invalid secret {...}"). Its base URL.
async fn quoting_blaxel() -> String {
    use axum::Router;
    use axum::body::Bytes;
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = Router::new().route(
        "/v0/integrations/connections",
        get(|| async { axum::Json(json!([])) }).post(|body: Bytes| async move {
            let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let quoted = sent["spec"]["secret"].to_string();
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "bad_request", "code": "INVALID_SECRET",
                                  "message": format!("invalid secret {quoted}")})),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v0")
}

/// **Was a defect: a secret that holds quotes or newlines leaks into status and Events when Blaxel's error
/// quotes it.**
///
/// The README promises the secret values appear nowhere but in the request ("a remote message quoting
/// one is scrubbed"). Scrubbing looks for the raw value only. A server quoting the request (JSON)
/// shows the value JSON-escaped (`\"`, `\n`), which the scrubber does not recognise; a JSON service
/// account credential (Vertex AI, Bedrock-style) is exactly such a value. Its private key then lands
/// in `status.conditions` and a Warning Event, readable by anyone who may read the object.
#[tokio::test(flavor = "multi_thread")]
async fn a_quoted_json_secret_is_scrubbed_from_errors() {
    let mut world = World::new(SimConfig::default()).await;
    let url = quoting_blaxel().await;
    let _op = world.start_operator(&["--api-url", &url]);
    let private = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
    let credential = format!(
        "{{\"type\":\"service_account\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\n{private}\\n-----END PRIVATE KEY-----\\n\"}}"
    );
    world
        .write_secret("openai-credentials", json!({"credentials": credential}))
        .await;
    world
        .apply(&world.connections(), "openai", connection_spec(&world))
        .await;
    eventually("the refusal reported", DEADLINE, || async {
        let obj = world.connections().get("openai").await.ok()?;
        status_of(&obj)["conditions"]
            .as_array()?
            .iter()
            .any(|c| {
                c["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("invalid secret"))
            })
            .then_some(())
    })
    .await;
    let status = status_of(&world.connections().get("openai").await.unwrap()).to_string();
    assert!(
        !status.contains(private),
        "the connection's private key is in its status: {status}"
    );
    let events = event_messages(&world).await;
    assert!(
        events.iter().all(|m| !m.contains(private)),
        "the connection's private key is in an Event: {events:?}"
    );
}

/// **A remote user record without an e-mail is not an unmanaged member named ""** (it held on the code
/// before this probe too: such a record is unreadable; the test keeps it so).
///
/// Blaxel lists users by `sub`; a record with no `email` (a service account, a user whose address the
/// API withholds) decodes with the e-mail `""`. The Workspace reconciler then reports `""` in
/// `status.unmanaged` and, under `Authoritative`, "removes" it with `DELETE /users/` (no identity),
/// spending a `--removal-limit` slot and publishing `Removed  from ...`, while the record stays. The
/// README says a record that cannot be identified concludes nothing (`RemoteListIncomplete`): it
/// must neither be listed as an e-mail nor sent a removal.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_without_email_is_not_an_unmanaged_member() {
    let mut world = World::new(accepting()).await;
    let _op = world.start_operator(&[]);
    world.active_members(&["alice"]).await;
    world
        .sim_control(
            &format!("workspaces/{}/malformed", world.workspace),
            json!({"collection": "users", "record":
                   {"sub": "svc-7f3a", "role": "admin", "accepted": true, "source": "invitation"}}),
        )
        .await;
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace,
                            "members": {"policy": "Authoritative", "maxRemovals": 5}}}),
        )
        .await;
    // Wait for a pass that read the list with the record in it.
    let status = eventually("a membership verdict", DEADLINE, || async {
        let status = status_of(&world.workspaces().get("home").await.ok()?);
        let decided = status["members"].is_object()
            || status["conditions"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["reason"] == "RemoteListIncomplete"
                        || (c["type"] == "Stalled" && c["status"] == "True")
                })
            });
        decided.then_some(status)
    })
    .await;
    let unmanaged = status["unmanaged"].clone();
    assert!(
        !unmanaged
            .as_array()
            .is_some_and(|l| l.iter().any(|e| e.as_str() == Some(""))),
        "a user record without an e-mail is reported as the unmanaged member \"\": {status}"
    );
    let removals: Vec<String> = event_messages(&world)
        .await
        .into_iter()
        .filter(|m| m.starts_with("Removed  from"))
        .collect();
    assert!(
        removals.is_empty(),
        "the operator 'removed' a member with no e-mail: {removals:?}"
    );
}
