//! End to end: `/metrics`, `/healthz`, `/readyz` and leader election, with real operator processes against
//! the local Kubernetes API server and the simulator over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use blaxel_operator::crd::MemberPhase;
use blaxel_operator::sim::{Faults, SimConfig};
use serde_json::json;
use support::operator::{DEADLINE, Operator, World, eventually, sample};

/// The lease duration the leader-election tests run with.
const LEASE: Duration = Duration::from_secs(3);

async fn phase(world: &World, name: &str) -> Option<MemberPhase> {
    world.members().get_opt(name).await.ok()??.status?.phase
}

async fn wait_phase(world: &World, name: &str, want: MemberPhase) {
    eventually(&format!("{name} {want:?}"), DEADLINE, || async {
        (phase(world, name).await == Some(want)).then_some(())
    })
    .await;
}

async fn member(world: &World, name: &str, role: &str) {
    world
        .apply_member(
            name,
            json!({"workspace": world.workspace, "email": format!("{name}@example.com"), "role": role}),
        )
        .await;
}

/// `(operation, status) -> attempts` from the operator's `blaxel_operator_api_requests_total` samples.
fn metric_requests(text: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("blaxel_operator_api_requests_total{"))
    {
        let label = |name: &str| {
            let start = line.find(&format!("{name}=\""))? + name.len() + 2;
            let len = line[start..].find('"')?;
            Some(line[start..start + len].to_owned())
        };
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let key = (label("operation").unwrap(), label("status").unwrap());
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "counter values are small whole numbers"
        )]
        let value = value as u64;
        *out.entry(key).or_default() += value;
    }
    out
}

/// `(operation, status) -> requests` as the simulator counted them (`/v0` stripped, `dropped` as `none`).
fn sim_requests(world: &World) -> BTreeMap<(String, String), u64> {
    let stats = world.sim.stats();
    let mut out = BTreeMap::new();
    for (route, entry) in stats["byRoute"].as_object().unwrap() {
        let operation = route.replacen(" /v0", " ", 1).replacen("  ", " ", 1);
        for (status, n) in entry["byStatus"].as_object().unwrap() {
            let outcome = if status == "dropped" {
                "none".to_owned()
            } else {
                status.clone()
            };
            out.insert((operation.clone(), outcome), n.as_u64().unwrap());
        }
    }
    out
}

/// `/metrics` counts exactly the remote requests the simulator answered (by operation and status, failures
/// included), reconciles move, and neither the API key nor e-mails ever appear in it.
#[tokio::test]
async fn metrics_match_the_simulator() {
    let mut world = World::new(SimConfig {
        faults: Faults {
            error_rate: 0.25,
            ..Faults::default()
        },
        seed: Some(11),
        ..SimConfig::default()
    })
    .await;
    // One certain failure (an invitation is never retried by the client), beside the random ones.
    world
        .sim_control(
            "faults/script",
            json!({"route": "POST /v0/users", "status": 503, "times": 1}),
        )
        .await;
    let op = world.start_operator(&[]);
    eventually("/healthz answers", DEADLINE, || async {
        (op.get("/healthz").await? == (200, "ok".to_owned())).then_some(())
    })
    .await;
    eventually(
        "/readyz ready after the caches synced",
        DEADLINE,
        || async { (op.get("/readyz").await?.0 == 200).then_some(()) },
    )
    .await;
    for name in ["alice", "bob", "carol"] {
        member(&world, name, "admin").await;
    }
    for name in ["alice", "bob", "carol"] {
        wait_phase(&world, name, MemberPhase::Invited).await;
        world
            .sim_control(&format!("invitations/{name}@example.com/accept"), json!({}))
            .await;
    }
    world
        .sim_faults(json!({"latencyMs": 0, "latencyJitterMs": 0, "rateLimit": null, "errorRate": 0.0, "dropRate": 0.0}))
        .await;
    for name in ["alice", "bob", "carol"] {
        wait_phase(&world, name, MemberPhase::Active).await;
    }
    let text = eventually("metrics equal the simulator's counts", DEADLINE, || async {
        let text = op.scrape().await?;
        (metric_requests(&text) == sim_requests(&world)).then_some(text)
    })
    .await;
    let posts = metric_requests(&text)
        .into_iter()
        .filter(|((op, _), _)| op == "POST /users")
        .map(|(_, n)| n)
        .sum::<u64>();
    assert_eq!(posts, world.calls("POST /v0/users"), "{text}");
    assert!(posts >= 3, "one invitation per member at least: {text}");
    let reconciles = sample(
        &text,
        "blaxel_operator_reconciles_total{kind=\"WorkspaceMember\"}",
    )
    .unwrap();
    assert!(reconciles >= 3.0, "{text}");
    assert_eq!(
        sample(
            &text,
            "blaxel_operator_reconcile_duration_seconds_count{kind=\"WorkspaceMember\"}"
        ),
        Some(reconciles),
        "one duration sample per reconcile"
    );
    assert!(
        sample(
            &text,
            "blaxel_operator_reconcile_failures_total{kind=\"WorkspaceMember\",category=\"Unavailable\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "the scripted 503 on an invitation failed a reconcile: {text}"
    );
    assert_eq!(sample(&text, "blaxel_operator_leader"), Some(1.0));
    assert!(sample(&text, "blaxel_operator_objects_in_backoff").is_some());
    assert!(sample(&text, "blaxel_operator_rate_limit_waits_total").is_some());
    assert!(
        !text.contains(&world.key),
        "the API key leaked into /metrics"
    );
    assert!(!text.contains("Bearer"), "{text}");
    assert!(!text.contains("example.com"), "e-mails are not labels");
}

fn leader_flags(world: &World) -> Vec<String> {
    [
        "--leader-election",
        "--lease-namespace",
        &world.ns,
        "--lease-duration",
        "3s",
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

async fn is_leader(op: &Operator) -> Option<bool> {
    Some(sample(&op.scrape().await?, "blaxel_operator_leader")? >= 1.0)
}

/// Waits until exactly one of `ops` leads; returns its index.
async fn one_leader(ops: &[&Operator]) -> usize {
    eventually("exactly one leader", DEADLINE, || async {
        let mut leaders = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match is_leader(op).await {
                Some(true) => leaders.push(i),
                Some(false) => {}
                None => return None,
            }
        }
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await
}

/// The leader Lease's holder, acquire time and renew time, as the operators wrote them: the handover
/// is measured on these (the processes' own clocks, one machine) rather than on when a test, polling
/// on a loaded machine, noticed it.
async fn lease_times(world: &World) -> (Option<String>, jiff::Timestamp, jiff::Timestamp) {
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(world.client.clone(), &world.ns);
    let spec = api.get("blaxel-operator").await.unwrap().spec.unwrap();
    let at = |t: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime>| {
        t.map(|t| t.0).unwrap()
    };
    (
        spec.holder_identity,
        at(spec.acquire_time),
        at(spec.renew_time),
    )
}

/// `b - a`.
fn between(a: jiff::Timestamp, b: jiff::Timestamp) -> Duration {
    Duration::try_from(b.duration_since(a)).unwrap_or_default()
}

/// Sum of a metric family's samples (0 when absent).
fn total(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(family))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Two replicas: exactly one reconciles and talks to Blaxel, the standby is ready but idle; killing the
/// leader hands over within a lease duration plus one renew period, without a duplicate invitation.
#[tokio::test]
async fn leader_election_one_reconciles_and_hands_over() {
    let mut world = World::new(SimConfig::default()).await;
    let flags = leader_flags(&world);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let a = world.start_operator(&flags);
    let b = world.start_operator(&flags);
    let mut ops = [a, b];
    let leader = one_leader(&[&ops[0], &ops[1]]).await;
    let standby = 1 - leader;
    eventually("the leader is ready", DEADLINE, || async {
        (ops[leader].get("/readyz").await? == (200, "ok".to_owned())).then_some(())
    })
    .await;
    assert_eq!(
        ops[standby].get("/readyz").await,
        Some((200, "standby".to_owned())),
        "a standby is ready (rolling updates must not stall on it)"
    );

    member(&world, "alice", "admin").await;
    wait_phase(&world, "alice", MemberPhase::Invited).await;
    let standby_text = ops[standby].scrape().await.unwrap();
    assert!(
        total(&standby_text, "blaxel_operator_reconciles_total") < 0.5,
        "the standby never reconciles: {standby_text}"
    );
    assert!(
        total(&standby_text, "blaxel_operator_api_requests_total") < 0.5,
        "the standby never calls Blaxel: {standby_text}"
    );
    let leader_text = ops[leader].scrape().await.unwrap();
    assert!(total(&leader_text, "blaxel_operator_reconciles_total") >= 1.0);

    ops[leader].kill();
    // Read at once: the dead leader's last renewal (no one else writes the Lease before it expires).
    let (old, _, last_renewal) = lease_times(&world).await;
    eventually("the standby takes over", DEADLINE, || async {
        is_leader(&ops[standby]).await?.then_some(())
    })
    .await;
    let (new, acquired, _) = lease_times(&world).await;
    assert_ne!(old, new, "the holder changed");
    let handover = between(last_renewal, acquired);
    eprintln!("handover after SIGKILL: {handover:?} after the last renewal (lease {LEASE:?})");
    // Never before the lease expired; then within one renew period (the standby's retry), and a
    // second for the standby's own scheduling on a loaded machine.
    assert!(handover >= LEASE, "taken before expiry: {handover:?}");
    assert!(
        handover <= LEASE + LEASE / 3 + Duration::from_secs(1),
        "handover took {handover:?}"
    );
    member(&world, "bob", "admin").await;
    wait_phase(&world, "bob", MemberPhase::Invited).await;
    assert_eq!(
        world.calls("POST /v0/users"),
        2,
        "one invitation per member across the handover"
    );
}

/// A leader frozen past its lease (a long pause) makes no remote write when it wakes, even with a stale
/// cache that tells it to invite; it exits, and the new leader's writes are the only ones.
#[tokio::test]
async fn old_leader_is_fenced_after_its_lease_expired() {
    let mut world = World::new(SimConfig::default()).await;
    let mut flags = leader_flags(&world);
    // A long list freshness: once woken, the old leader still believes carol does not exist remotely.
    flags.extend(
        [
            "--invitation-poll-interval",
            "60s",
            "--resync-interval",
            "60s",
        ]
        .map(String::from),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let old = world.start_operator(&flags);
    eventually("the first replica leads", DEADLINE, || async {
        is_leader(&old).await?.then_some(())
    })
    .await;
    let new = world.start_operator(&flags);
    eventually("the second replica stands by", DEADLINE, || async {
        (new.get("/readyz").await? == (200, "standby".to_owned())).then_some(())
    })
    .await;
    member(&world, "alice", "admin").await;
    wait_phase(&world, "alice", MemberPhase::Invited).await;
    assert_eq!(world.calls("POST /v0/users"), 1);

    old.signal("-STOP");
    let frozen = Instant::now();
    eventually("the second replica takes over", DEADLINE, || async {
        is_leader(&new).await?.then_some(())
    })
    .await;
    eprintln!("takeover from a frozen leader: {:?}", frozen.elapsed());
    member(&world, "carol", "admin").await;
    wait_phase(&world, "carol", MemberPhase::Invited).await;
    // A change the old leader will see on waking, and would act on without the fence.
    member(&world, "alice", "member").await;
    eventually("the new leader sets alice's role", DEADLINE, || async {
        (world.remote_user("alice@example.com").await?["role"] == "member").then_some(())
    })
    .await;
    let writes = |w: &World| {
        (
            w.calls("POST /v0/users"),
            w.calls("PUT /v0/users/{subOrEmail}"),
            w.calls("DELETE /v0/users/{subOrEmail}"),
        )
    };
    let before = writes(&world);
    assert_eq!(before.0, 2, "one invitation each for alice and carol");

    old.signal("-CONT");
    let old = std::cell::RefCell::new(old);
    let status = eventually("the old leader exits", DEADLINE, || async {
        old.borrow_mut().try_wait()
    })
    .await;
    let old = old.into_inner();
    assert!(!status.success(), "losing the lease is an error exit");
    let log = old.output();
    assert!(log.contains("lost the leader lease"), "{log}");
    eprintln!(
        "old leader attempted fenced writes: {}",
        log.contains("remote writes are fenced")
    );
    assert_eq!(
        writes(&world),
        before,
        "no remote write from the old leader after its lease expired"
    );
    assert!(is_leader(&new).await.unwrap());
}

/// Two electors racing on one Lease: exactly one wins, the other stays standby while the lease is live,
/// and a released lease is taken at once.
#[tokio::test]
async fn electors_race_on_one_lease() {
    use blaxel_operator::leader::{Elector, LeaderConfig};
    let client = support::kube::cluster().await.client().await;
    let ns = support::kube::fresh_namespace(&client).await;
    let config = |identity: &str| LeaderConfig {
        lease_name: "race".to_owned(),
        lease_namespace: ns.clone(),
        identity: identity.to_owned(),
        lease_duration: LEASE,
    };
    let mut a = Elector::new(client.clone(), config("a"));
    let mut b = Elector::new(client.clone(), config("b"));
    let (won_a, won_b) = tokio::join!(a.round(), b.round());
    assert!(
        won_a.unwrap() ^ won_b.unwrap(),
        "exactly one elector wins a race"
    );
    let (mut leader, mut standby) = if a.fence().may_write() {
        (a, b)
    } else {
        (b, a)
    };
    assert!(!standby.round().await.unwrap(), "a live lease is not taken");
    assert!(leader.round().await.unwrap(), "the holder renews");
    assert!(!standby.fence().may_write());
    leader.release().await;
    assert!(
        !leader.fence().may_write(),
        "releasing closes the fence first"
    );
    assert!(
        standby.round().await.unwrap(),
        "a released lease is taken at once"
    );
    assert!(
        !leader.round().await.unwrap(),
        "and the old holder stands by"
    );
}

/// JSON logs: every line a reconcile logs names the object (kind, namespace and name, under `span`).
#[tokio::test]
async fn json_logs_name_the_object() {
    let mut world = World::new(SimConfig::default()).await;
    let op = world.start_operator(&["--log-format", "json"]);
    member(&world, "alice", "admin").await;
    wait_phase(&world, "alice", MemberPhase::Invited).await;
    let log = op.output();
    let mut reconcile_lines = 0;
    for line in log.lines().filter(|l| l.starts_with('{')) {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let target = entry["target"].as_str().unwrap_or_default();
        if !target.starts_with("blaxel_operator::reconcile") {
            continue;
        }
        reconcile_lines += 1;
        let span = &entry["span"];
        assert_eq!(span["kind"], "WorkspaceMember", "{line}");
        assert_eq!(span["namespace"], world.ns.as_str(), "{line}");
        assert_eq!(span["object"], "alice", "{line}");
    }
    assert!(reconcile_lines > 0, "no reconcile log line: {log}");
}

/// With the `otel` feature, reconcile spans (naming the object) reach an OTLP/HTTP collector.
#[cfg(feature = "otel")]
#[tokio::test]
async fn traces_reach_the_otlp_endpoint() {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = Arc::clone(&received);
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().unwrap().push(body.to_vec());
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await });
    let mut world = World::new(SimConfig::default()).await;
    let endpoint = format!("http://{addr}");
    let _op = world.start_operator(&["--otlp-endpoint", &endpoint]);
    member(&world, "alice", "admin").await;
    wait_phase(&world, "alice", MemberPhase::Invited).await;
    let has = |body: &[u8], needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    eventually(
        "a span batch with the reconcile of alice",
        DEADLINE,
        || async {
            received
                .lock()
                .unwrap()
                .iter()
                .any(|b| has(b, b"reconcile") && has(b, b"alice") && has(b, b"WorkspaceMember"))
                .then_some(())
        },
    )
    .await;
}

/// SIGTERM: the leader exits cleanly and releases the Lease, so the standby takes over in less than a lease
/// duration (no waiting for expiry).
#[tokio::test]
async fn graceful_shutdown_releases_the_lease() {
    let mut world = World::new(SimConfig::default()).await;
    let flags = leader_flags(&world);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let a = world.start_operator(&flags);
    let b = world.start_operator(&flags);
    let mut ops = [a, b];
    let leader = one_leader(&[&ops[0], &ops[1]]).await;
    let standby = 1 - leader;
    eventually("the standby is ready", DEADLINE, || async {
        (ops[standby].get("/readyz").await? == (200, "standby".to_owned())).then_some(())
    })
    .await;
    let (_, _, last_renewal) = lease_times(&world).await;
    ops[leader].signal("-TERM");
    let exiting = std::cell::RefCell::new(&mut ops[leader]);
    let status = eventually("the leader exits after SIGTERM", DEADLINE, || async {
        exiting.borrow_mut().try_wait()
    })
    .await;
    assert!(status.success(), "SIGTERM is a clean exit");
    assert!(
        ops[leader].output().contains("released the leader lease"),
        "{}",
        ops[leader].output()
    );
    eventually("the standby takes over", DEADLINE, || async {
        is_leader(&ops[standby]).await?.then_some(())
    })
    .await;
    // A renewal may come between the read above and the signal: the last one is at most a renew
    // period later, so the expiry the standby would otherwise wait for is at least `last_renewal + LEASE`.
    let (_, acquired, _) = lease_times(&world).await;
    let handover = between(last_renewal, acquired);
    eprintln!("handover after SIGTERM: {handover:?} after the last renewal read (lease {LEASE:?})");
    assert!(
        handover < LEASE,
        "a released lease is taken without waiting for expiry: {handover:?}"
    );
    member(&world, "alice", "admin").await;
    wait_phase(&world, "alice", MemberPhase::Invited).await;
}

/// `blaxel_operator_objects` counts objects by kind, state and the reason their status gives: one
/// Active member and one Stalled duplicate show as such (a Stalled pass ends without error, so the
/// failure counters never see it); `build_info` carries the version.
#[tokio::test]
async fn objects_are_counted_by_state_and_reason() {
    let mut world = World::new(SimConfig {
        auto_accept_after: Some(Duration::ZERO),
        ..SimConfig::default()
    })
    .await;
    let op = world.start_operator(&[]);
    world.active_members(&["ann"]).await;
    support::operator::second_after(&world.members(), "ann").await;
    world
        .apply_member(
            "ann-again",
            json!({"workspace": world.workspace, "email": "ann@example.com"}),
        )
        .await;
    support::operator::condition_is(
        &world.members(),
        "ann-again",
        "Stalled",
        "True",
        "DuplicateMember",
    )
    .await;
    let ready = r#"blaxel_operator_objects{kind="WorkspaceMember",state="Ready",reason="Active"}"#;
    let stalled = r#"blaxel_operator_objects{kind="WorkspaceMember",state="Stalled",reason="DuplicateMember"}"#;
    let text = eventually("both objects counted", DEADLINE, || async {
        let text = op.scrape().await?;
        (sample(&text, ready) == Some(1.0) && sample(&text, stalled) == Some(1.0)).then_some(text)
    })
    .await;
    let build = format!(
        "blaxel_operator_build_info{{version=\"{}\",features=\"\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &build), Some(1.0), "{text}");
    // Deleted, the duplicate is no longer counted.
    world
        .members()
        .delete("ann-again", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    support::operator::wait_gone(&world.members(), "ann-again").await;
    eventually("the deleted duplicate uncounted", DEADLINE, || async {
        sample(&op.scrape().await?, stalled).is_none().then_some(())
    })
    .await;
}

/// A key rotated in the `--api-key-file` (as the kubelet updates a mounted Secret) is used without a
/// restart: an object Stalled Unauthorized on the old key is invited once the file holds a key Blaxel
/// accepts.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_file_is_used_without_a_restart() {
    let mut world = World::new(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("apiKey");
    std::fs::write(&file, "bl_revoked_key_0000\n").unwrap();
    let _op = world.start_operator(&["--api-key-file", file.to_str().unwrap()]);
    world
        .apply_member(
            "kim",
            json!({"workspace": world.workspace, "email": "kim@example.com"}),
        )
        .await;
    support::operator::condition_is(&world.members(), "kim", "Stalled", "True", "Unauthorized")
        .await;
    assert_eq!(world.calls("POST /v0/users"), 0);
    std::fs::write(&file, format!("{}\n", world.key)).unwrap();
    support::operator::nudged_until(
        &world.members(),
        "kim",
        "kim invited with the new key",
        || async { (world.member_phase("kim").await? == MemberPhase::Invited).then_some(()) },
    )
    .await;
    assert_eq!(world.calls("POST /v0/users"), 1);
}

/// `/healthz` fails once a kind's watch has failed for longer than `--watch-failure-tolerance`, naming
/// the kind (so the kubelet restarts a replica that reconciles nothing), and not before.
#[tokio::test(flavor = "multi_thread")]
async fn healthz_fails_when_a_watch_keeps_failing() {
    use blaxel_operator::kube_local::{LocalApiServer, StartOptions};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

    let server = LocalApiServer::start(StartOptions::default())
        .await
        .expect("a private local API server");
    let mut world = World::new(SimConfig::default())
        .await
        .on_cluster(&server)
        .await;
    let op = world.start_operator(&["--watch-failure-tolerance", "2s"]);
    eventually("healthy once running", DEADLINE, || async {
        (op.get("/readyz").await?.0 == 200 && op.get("/healthz").await?.0 == 200).then_some(())
    })
    .await;
    // The SandboxPreview CRD goes: that kind's watch fails from then on.
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(world.client.clone());
    crds.delete(
        "sandboxpreviews.blaxel.ai",
        &kube::api::DeleteParams::default(),
    )
    .await
    .unwrap();
    let body = eventually("healthz failing", DEADLINE, || async {
        let (code, body) = op.get("/healthz").await?;
        (code == 503).then_some(body)
    })
    .await;
    assert!(
        body.contains("SandboxPreview watch has been failing"),
        "{body}"
    );
}
