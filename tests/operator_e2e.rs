//! End to end: admission, crash-restart, faults, pause, shutdown and secrecy of the operator as a whole.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use std::time::Duration;

use blaxel_operator::crd::{MemberPhase, PowerState};
use blaxel_operator::sim::{RateLimit, SimConfig};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use support::operator::{DEADLINE, World, condition, eventually};

async fn all_ready(world: &World, members: usize, sandboxes: usize) -> Option<()> {
    let lp = ListParams::default();
    let ms = world.members().list(&lp).await.ok()?;
    let ss = world.sandboxes().list(&lp).await.ok()?;
    let ready = |cs: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>| {
        cs.and_then(|cs| condition(cs, "Ready"))
            .is_some_and(|(s, _)| s == "True")
    };
    let m = ms
        .items
        .iter()
        .filter(|m| ready(m.status.as_ref().map(|s| &s.conditions)))
        .count();
    let s = ss
        .items
        .iter()
        .filter(|s| ready(s.status.as_ref().map(|s| &s.conditions)))
        .count();
    (m == members && s == sandboxes).then_some(())
}

async fn apply_many(world: &World, members: usize, sandboxes: usize) {
    for i in 0..members {
        world
            .apply_member(&format!("m{i}"), json!({"workspace": world.workspace, "email": format!("user{i}@example.com"), "role": if i % 2 == 0 { "admin" } else { "member" }}))
            .await;
    }
    for i in 0..sandboxes {
        world
            .apply_sandbox(&format!("s{i}"), json!({"workspace": world.workspace, "image": "blaxel/base-image:latest", "memory": 2048}))
            .await;
    }
}

fn fast_accepting() -> SimConfig {
    SimConfig {
        auto_accept_after: Some(Duration::ZERO),
        deploy_time: Duration::from_millis(200),
        ..SimConfig::default()
    }
}

/// How many remote users and sandboxes exist. The simulator keeps one record per e-mail and per name,
/// so a duplicate never shows here: duplicates are counted on the POSTs the simulator handled.
async fn remote_counts(world: &World) -> (usize, usize) {
    (
        world.remote_users().await.len(),
        world.remote_sandboxes().await.len(),
    )
}

/// POSTs to `route` the simulator handled: answered 200, or handled and the answer lost.
fn handled(world: &World, route: &str) -> u64 {
    let stats = world.sim.stats();
    let by_status = &stats["byRoute"][route]["byStatus"];
    by_status["200"].as_u64().unwrap_or(0) + by_status["lost"].as_u64().unwrap_or(0)
}

/// A bad e-mail, an unknown role or state and a changed identity are refused at admission with readable
/// messages from the API server itself (raw JSON, so no client-side type gets in the way).
#[tokio::test]
async fn admission_rejects_bad_input_with_readable_messages() {
    let world = World::new(SimConfig::default()).await;
    let apply = |kind: &str, name: &str, spec: serde_json::Value| {
        let raw = json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec});
        let (members, sandboxes) = (world.members(), world.sandboxes());
        let name = name.to_owned();
        let is_member = kind == "WorkspaceMember";
        async move {
            let params = PatchParams::apply("e2e-test");
            if is_member {
                members
                    .patch(&name, &params, &Patch::Apply(&raw))
                    .await
                    .map(drop)
            } else {
                sandboxes
                    .patch(&name, &params, &Patch::Apply(&raw))
                    .await
                    .map(drop)
            }
        }
    };
    let member = "WorkspaceMember";
    let err = apply(
        member,
        "bad-email",
        json!({"workspace": "w", "email": "not-an-email"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("email must be a lower-case ASCII e-mail address"),
        "{err}"
    );
    let err = apply(
        member,
        "bad-role",
        json!({"workspace": "w", "email": "a@example.com", "role": "owner"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("Unsupported value: \"owner\""),
        "{err}"
    );
    apply(
        member,
        "ok",
        json!({"workspace": "w", "email": "a@example.com"}),
    )
    .await
    .unwrap();
    let err = apply(
        member,
        "ok",
        json!({"workspace": "w", "email": "b@example.com"}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("email is immutable"), "{err}");
    let err = apply(
        "Sandbox",
        "s",
        json!({"workspace": "w", "image": "i", "state": "Paused"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("Unsupported value: \"Paused\""),
        "{err}"
    );
    apply("Sandbox", "s", json!({"workspace": "w", "image": "i"}))
        .await
        .unwrap();
    let err = apply(
        "Sandbox",
        "s",
        json!({"workspace": "w", "image": "i", "sandboxName": "other"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("sandboxName is immutable"),
        "{err}"
    );
}

/// The operator killed mid-convergence and restarted converges with zero duplicate invitations or sandboxes.
#[tokio::test]
async fn crash_mid_convergence_makes_no_duplicates() {
    let mut world = World::new(SimConfig {
        faults: blaxel_operator::sim::Faults {
            latency: Duration::from_millis(20),
            ..Default::default()
        },
        ..fast_accepting()
    })
    .await;
    apply_many(&world, 20, 5).await;
    let mut first = world.start_operator(&[]);
    eventually("some remote writes under way", DEADLINE, || async {
        (world.calls("POST /v0/users") >= 3).then_some(())
    })
    .await;
    first.kill();
    let _second = world.start_operator(&[]);
    eventually("all Ready after the restart", DEADLINE, || async {
        all_ready(&world, 20, 5).await
    })
    .await;
    assert_eq!(remote_counts(&world).await, (20, 5));
    assert_eq!(
        handled(&world, "POST /v0/users"),
        20,
        "each e-mail invited exactly once across the crash"
    );
    assert_eq!(
        handled(&world, "POST /v0/sandboxes"),
        5,
        "each sandbox created exactly once across the crash"
    );
}

/// Invitations and creates whose answers are lost (handled by Blaxel, the connection then closed) are not
/// sent again: the operator looks before it writes again, so each e-mail is invited once and each sandbox
/// created once, and every object still turns Ready.
#[tokio::test]
async fn lost_answers_make_no_duplicates() {
    let mut world = World::new(fast_accepting()).await;
    for (route, times) in [("POST /v0/users", 3), ("POST /v0/sandboxes", 2)] {
        world
            .sim_control(
                "faults/script",
                json!({ "route": route, "loseAnswer": true, "times": times }),
            )
            .await;
    }
    apply_many(&world, 6, 3).await;
    let _op = world.start_operator(&[]);
    eventually("all Ready despite lost answers", DEADLINE, || async {
        all_ready(&world, 6, 3).await
    })
    .await;
    let stats = world.sim.stats();
    assert_eq!(stats["faults"]["lostAnswers"], 5, "the script ran out");
    // Handled POSTs: answered 200 or answered nothing. A second invitation of the same e-mail is answered
    // 200 with the existing one, so any resend shows up here.
    assert_eq!(handled(&world, "POST /v0/users"), 6, "{stats}");
    assert_eq!(handled(&world, "POST /v0/sandboxes"), 3, "{stats}");
    assert_eq!(remote_counts(&world).await, (6, 3));
}

/// Under a 429 storm and 10% 5xx the operator still converges, honours Retry-After, and never duplicates.
#[tokio::test]
async fn faults_are_answered_with_backoff() {
    let mut world = World::new(SimConfig {
        faults: blaxel_operator::sim::Faults {
            rate_limit: Some(RateLimit {
                per_second: 20.0,
                burst: 5,
            }),
            error_rate: 0.1,
            ..Default::default()
        },
        seed: Some(7),
        ..fast_accepting()
    })
    .await;
    apply_many(&world, 15, 5).await;
    let _op = world.start_operator(&[]);
    eventually(
        "all Ready despite faults",
        Duration::from_secs(180),
        || async { all_ready(&world, 15, 5).await },
    )
    .await;
    let stats = world.sim.stats();
    let limited = stats["faults"]["rateLimited"].as_u64().unwrap_or(0);
    let total = stats["total"].as_u64().unwrap_or(0);
    // The server allows 20 req/s while the operator's own limiter allows 500: every 429 makes the client
    // hold the key for Retry-After. A client that ignored Retry-After would be refused hundreds of times
    // more often than served; one that honours it stays within a small multiple of the useful work.
    let served = total - limited;
    assert!(limited > 0, "the storm happened");
    assert!(
        limited <= 2 * served,
        "429s ({limited}) vs served requests ({served})"
    );
    assert_eq!(remote_counts(&world).await, (15, 5));
    assert_eq!(handled(&world, "POST /v0/sandboxes"), 5);
    assert_eq!(handled(&world, "POST /v0/users"), 15);
}

/// Paused objects are observed but never written remotely; unpausing resumes.
#[tokio::test]
async fn paused_objects_are_not_written() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    world
        .apply(&world.members(), "hank", json!({"metadata": {"annotations": {"blaxel.ai/paused": "true"}}, "spec": {"workspace": world.workspace, "email": "hank@example.com"}}))
        .await;
    eventually("Synced False Paused", DEADLINE, || async {
        let s = world.members().get("hank").await.ok()?.status?;
        (condition(&s.conditions, "Synced")? == ("False".into(), "Paused".into())).then_some(())
    })
    .await;
    assert_eq!(
        world.calls("POST /v0/users"),
        0,
        "no remote write while paused"
    );
    assert!(
        world.calls("GET /v0/users") >= 1,
        "paused objects are still observed"
    );
    world
        .members()
        .patch(
            "hank",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"blaxel.ai/paused": "false"}}})),
        )
        .await
        .unwrap();
    eventually("invited after unpause", DEADLINE, || async {
        let s = world.members().get("hank").await.ok()?.status?;
        (s.phase == Some(MemberPhase::Invited)).then_some(())
    })
    .await;
    assert_eq!(world.calls("POST /v0/users"), 1);
}

/// SIGTERM ends the operator cleanly (exit status 0).
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_cleanly() {
    let mut world = World::new(fast_accepting()).await;
    let mut op = world.start_operator(&[]);
    world
        .apply_sandbox(
            "s",
            json!({"workspace": world.workspace, "image": "blaxel/base-image:latest"}),
        )
        .await;
    eventually("sandbox Ready", DEADLINE, || async {
        let s = world.sandboxes().get("s").await.ok()?.status?;
        (s.state == Some(PowerState::Running) && condition(&s.conditions, "Ready")?.0 == "True")
            .then_some(())
    })
    .await;
    // Off the runtime's thread: the in-process simulator must answer a pass still in flight.
    let status = tokio::task::block_in_place(|| op.terminate());
    assert!(
        status.success(),
        "exit status {status}; output:\n{}",
        op.output()
    );
}

/// SIGTERM while a reconcile is under way (every Blaxel answer delayed 1.5 s): the reconcile finishes
/// its remote write before the process exits cleanly, so no invitation is left half-done.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_an_in_flight_write() {
    let mut world = World::new(SimConfig {
        faults: blaxel_operator::sim::Faults {
            latency: Duration::from_millis(1500),
            ..Default::default()
        },
        ..SimConfig::default()
    })
    .await;
    let mut op = world.start_operator(&[]);
    world
        .apply_member(
            "sam",
            json!({"workspace": world.workspace, "email": "sam@example.com"}),
        )
        .await;
    // The user list has answered: the reconcile is on its way to the (delayed) invitation.
    eventually("the user list answered", DEADLINE, || async {
        (world.calls("GET /v0/users") >= 1).then_some(())
    })
    .await;
    let status = tokio::task::block_in_place(|| op.terminate());
    assert!(
        status.success(),
        "exit status {status}; output:\n{}",
        op.output()
    );
    assert_eq!(world.calls("POST /v0/users"), 1, "the invitation went out");
    assert!(
        world.remote_user("sam@example.com").await.is_some(),
        "the in-flight reconcile finished before the exit"
    );
}

/// The API key never appears in the operator's text output (debug level), in status or in Events.
#[tokio::test(flavor = "multi_thread")]
async fn api_key_never_leaks_text_logs() {
    api_key_never_leaks("text").await;
}

/// The API key never appears in the operator's JSON output (debug level), in status or in Events.
#[tokio::test(flavor = "multi_thread")]
async fn api_key_never_leaks_json_logs() {
    api_key_never_leaks("json").await;
}

async fn api_key_never_leaks(log_format: &str) {
    let mut world = World::new(SimConfig {
        api_keys: vec!["bl_Sup3rSecretKey_for_leak_test=leakws".parse().unwrap()],
        ..fast_accepting()
    })
    .await;
    let mut op = world.start_operator(&["--log-format", log_format]);
    world
        .apply_member(
            "ivy",
            json!({"workspace": world.workspace, "email": "ivy@example.com"}),
        )
        .await;
    // A member of a workspace the key may not use: the 403 answer and its Event must not show the key.
    world
        .apply_member(
            "jack",
            json!({"workspace": "other-ws", "email": "jack@example.com"}),
        )
        .await;
    world
        .apply_sandbox(
            "s",
            json!({"workspace": world.workspace, "image": "blaxel/base-image:latest"}),
        )
        .await;
    eventually("ivy Ready and jack Stalled", DEADLINE, || async {
        let ivy = world.members().get("ivy").await.ok()?.status?;
        let jack = world.members().get("jack").await.ok()?.status?;
        (condition(&ivy.conditions, "Ready")?.0 == "True"
            && condition(&jack.conditions, "Stalled")?.0 == "True")
            .then_some(())
    })
    .await;
    // Off the runtime's thread: the in-process simulator must answer a pass still in flight.
    let status = tokio::task::block_in_place(|| op.terminate());
    assert!(status.success());
    let secret = "Sup3rSecretKey";
    let output = op.output();
    assert!(
        output.contains("blaxel_operator"),
        "debug output was captured"
    );
    assert!(
        !output.contains(secret),
        "the key leaked into the operator's output"
    );
    let events: Api<Event> = Api::namespaced(world.client.clone(), &world.ns);
    let events = events.list(&ListParams::default()).await.unwrap();
    assert!(!events.items.is_empty(), "Events were published");
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Forbidden")),
        "the 403 became an Event"
    );
    for e in &events.items {
        assert!(
            !serde_json::to_string(e).unwrap().contains(secret),
            "key in Event {e:?}"
        );
    }
    let core_events: Api<CoreEvent> = Api::namespaced(world.client.clone(), &world.ns);
    for e in core_events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        assert!(!serde_json::to_string(&e).unwrap().contains(secret));
    }
    for m in world
        .members()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        assert!(!serde_json::to_string(&m.status).unwrap().contains(secret));
    }
    for s in world
        .sandboxes()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        assert!(!serde_json::to_string(&s.status).unwrap().contains(secret));
    }
}
