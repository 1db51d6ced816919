//! Adversarial probe of `spec.envs[].valueFrom.secretKeyRef`: values taken from Secrets must reach the
//! sandbox (and keep reaching it after a change) and appear in no status, Event or log. Each test names
//! the defect it shows; the ones marked "guard" pass and keep something important true.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use blaxel_operator::sim::{ApiGeneration, SimConfig};
use serde_json::{Value, json};
use support::operator::{DEADLINE, World, condition_is, eventually, fast_sandboxes, nudged_until};

/// The remote sandbox `name`'s variables named `env`, as the simulator stores them.
async fn remote_envs(world: &World, name: &str, env: &str) -> Vec<Value> {
    let Some(sandbox) = world.remote_sandbox(name).await else {
        return Vec::new();
    };
    sandbox["spec"]["runtime"]["envs"]
        .as_array()
        .map(|envs| envs.iter().filter(|e| e["name"] == env).cloned().collect())
        .unwrap_or_default()
}

/// The value of the first remote variable `env` of sandbox `name`.
async fn remote_value(world: &World, name: &str, env: &str) -> Option<String> {
    remote_envs(world, name, env)
        .await
        .first()
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

/// A sandbox spec whose variables are `envs`.
fn spec_with(world: &World, envs: Value) -> Value {
    let mut spec = world.sandbox_spec();
    spec["envs"] = envs;
    spec
}

/// `{"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}`.
fn from_secret(var: &str, secret: &str, key: &str) -> Value {
    json!({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
}

/// The object's status as JSON text.
async fn status_text(world: &World, name: &str) -> String {
    serde_json::to_value(world.sandboxes().get(name).await.unwrap())
        .unwrap()
        .get("status")
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Every Event of the test namespace, as JSON text.
async fn events_text(world: &World) -> String {
    let events: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(world.client.clone(), &world.ns);
    let list = events
        .list(&kube::api::ListParams::default())
        .await
        .unwrap();
    serde_json::to_string(&list.items).unwrap()
}

/// The `envDigest` the object reports.
async fn env_digest(world: &World, name: &str) -> Option<String> {
    let obj = serde_json::to_value(world.sandboxes().get(name).await.ok()?).ok()?;
    obj["status"]["envDigest"].as_str().map(str::to_owned)
}

/// Makes Blaxel report sandbox `name` FAILED with `message` (as a sandbox whose process printed it).
async fn fail_with(world: &World, name: &str, message: &str) {
    world
        .sim_control(
            &format!("workspaces/{}/sandboxes/{name}/fail", world.workspace),
            json!({"message": message}),
        )
        .await;
}

/// Writes Secret `db` with `password` and creates sandbox `box` whose `DB_PASSWORD` comes from it.
async fn box_with_db_password(world: &World, password: impl Into<Value>) {
    world
        .write_secret("db", json!({"password": password.into()}))
        .await;
    created(
        world,
        "box",
        json!([from_secret("DB_PASSWORD", "db", "password")]),
    )
    .await;
}

/// Creates sandbox `name` from `envs` and waits until it is deployed with its digest recorded.
async fn created(world: &World, name: &str, envs: Value) {
    world.apply_sandbox(name, spec_with(world, envs)).await;
    condition_is(&world.sandboxes(), name, "Ready", "True", "Running").await;
    eventually("the digest recorded", DEADLINE, || async {
        env_digest(world, name).await.map(|_| ())
    })
    .await;
}

/// Fails `name` with `message` and returns status and Events once the verdict is reported.
async fn failed_report(world: &World, name: &str, message: &str) -> (String, String) {
    fail_with(world, name, message).await;
    nudged_until(
        &world.sandboxes(),
        name,
        "RemoteFailed reported",
        || async {
            let status = status_text(world, name).await;
            status.contains("RemoteFailed").then_some(())
        },
    )
    .await;
    (status_text(world, name).await, events_text(world).await)
}

/// Was a defect (leak): a Secret value read from a file keeps its trailing newline (`kubectl create secret
/// --from-file`, the usual way); a FAILED message that quotes the value without it (as any log line
/// does) is not scrubbed when the value is under 16 characters: the scrubber only looks for the whole
/// value, its JSON escape, and lines of at least `SHORTEST_LINE` (16) characters
/// (`src/blaxel/error_map.rs`, `forms`). The password lands in `status.conditions` and in an Event.
#[tokio::test(flavor = "multi_thread")]
async fn a_value_with_a_trailing_newline_is_scrubbed_from_a_failure_message() {
    const PASSWORD: &str = "hunter2-pw-7c1";
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    box_with_db_password(&world, format!("{PASSWORD}\n")).await;
    assert_eq!(
        remote_value(&world, "box", "DB_PASSWORD").await.as_deref(),
        Some(format!("{PASSWORD}\n").as_str())
    );
    let message = format!("postgres: password authentication failed (password {PASSWORD})");
    let (status, events) = failed_report(&world, "box", &message).await;
    assert!(
        !status.contains(PASSWORD),
        "the password is in the status: {status}"
    );
    assert!(!events.contains(PASSWORD), "the password is in an Event");
}

/// Was a defect (leak, undocumented exception): values shorter than 4 characters are never scrubbed
/// (`src/blaxel/error_map.rs`, `forms`: `SHORTEST`, justified by "Blaxel refuses such keys", which is
/// true of API keys, not of env values). A PIN `731` quoted by a FAILED message reaches status and
/// Events, though the README's Semantics row says the value is in no status or Event.
#[tokio::test(flavor = "multi_thread")]
async fn a_short_value_is_scrubbed_from_a_failure_message() {
    const PIN: &str = "731";
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    world.write_secret("card", json!({"pin": PIN})).await;
    created(&world, "box", json!([from_secret("PIN", "card", "pin")])).await;
    let (status, events) = failed_report(&world, "box", &format!("wrong PIN={PIN}, locked")).await;
    assert!(!status.contains(PIN), "the PIN is in the status: {status}");
    assert!(!events.contains(PIN), "the PIN is in an Event");
}

/// Was a defect (leak): the end-of-pass scrub (`src/reconcile/sandbox/mod.rs`, `apply`: `secret_values` from
/// `secrets.values`) knows only the values read this pass. After a rotation, a FAILED message quoting
/// the value the sandbox still ran with (the previous one) is reported unscrubbed: an env-only `PUT` does
/// not clear Blaxel's failure, and the planner reports its message as it is. The rotated-out password
/// (which may well still be valid elsewhere) lands in status and Events.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_out_value_is_scrubbed_from_a_failure_message() {
    const FIRST: &str = "pw-first-4f9a2c7e1b";
    const SECOND: &str = "pw-second-8d3b6e0a5c";
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    box_with_db_password(&world, FIRST).await;
    let (status, _) = failed_report(&world, "box", &format!("auth failed: password {FIRST}")).await;
    assert!(!status.contains(FIRST), "scrubbed while current: {status}");
    let before = env_digest(&world, "box").await;
    world.write_secret("db", json!({"password": SECOND})).await;
    nudged_until(&world.sandboxes(), "box", "the new value sent", || async {
        let sent = remote_value(&world, "box", "DB_PASSWORD").await? == SECOND;
        (sent && env_digest(&world, "box").await != before).then_some(())
    })
    .await;
    nudged_until(
        &world.sandboxes(),
        "box",
        "the verdict after the update",
        || async {
            let status = status_text(&world, "box").await;
            status.contains("RemoteFailed").then_some(())
        },
    )
    .await;
    let status = status_text(&world, "box").await;
    assert!(
        !status.contains(FIRST),
        "the rotated-out password is in the status: {status}"
    );
    assert!(
        !events_text(&world).await.contains(FIRST),
        "the rotated-out password is in an Event"
    );
}

/// Was a defect (value never sent, status says it was): a create refused with 409 because the name is taken
/// (a list a resync old did not show the sandbox) is taken as a write of the envs:
/// `src/reconcile/sandbox/mod.rs`, `apply`, `writes_envs` is true for every `Create` and
/// `report.env_digest` is set when `act` answers `Ok(Some(_))`, which the 409 branch of `act` also does
/// (it returns the sandbox as read, nothing written). A sandbox already labelled ours holding another
/// value is then "settled": `secrets_sent` is true, the value from the Secret never reaches Blaxel.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_that_meets_its_name_taken_does_not_count_as_sending_the_secret() {
    const OLD: &str = "old-token-0a1b2c3d4e";
    const NEW: &str = "new-token-9f8e7d6c5b";
    let mut world = World::new(fast_sandboxes()).await;
    // A long transition poll: a new object trusts the list read for `warm` (made before `x` was).
    let _op = world.start_operator(&["--transition-poll-interval", "60s"]);
    world.apply_sandbox("warm", world.sandbox_spec()).await;
    eventually("warm created", DEADLINE, || async {
        world.remote_sandbox("warm").await.map(|_| ())
    })
    .await;
    // `x` exists already, labelled as this object's (a create whose answer was lost long ago, a
    // backup restored elsewhere), running with an old token.
    let body = json!({
        "metadata": {"name": "x", "labels": {
            "managed-by": "blaxel-operator", "blaxel-operator-owner": format!("{}.x", world.ns)}},
        "spec": {"runtime": {"image": "blaxel/base-image:latest", "memory": 2048,
            "envs": [{"name": "TOKEN", "value": OLD, "secret": true}]}}
    });
    let made = world
        .blaxel(reqwest::Method::POST, "/sandboxes", Some(body))
        .await;
    assert!(made.is_success(), "{made}");
    world.write_secret("api", json!({"token": NEW})).await;
    world
        .apply_sandbox(
            "x",
            spec_with(&world, json!([from_secret("TOKEN", "api", "token")])),
        )
        .await;
    eventually("x took its digest", DEADLINE, || async {
        env_digest(&world, "x").await.map(|_| ())
    })
    .await;
    assert_eq!(
        world.calls("POST /v0/sandboxes"),
        3,
        "warm, x by hand, x refused (409)"
    );
    // The digest is recorded only with the write that sent the value.
    assert_eq!(
        remote_value(&world, "x", "TOKEN").await.as_deref(),
        Some(NEW),
        "the digest says sent, the sandbox holds the old value"
    );
}

/// The base64 form of `value`, as a Secret's `data` holds it.
fn base64_of(value: &str) -> String {
    serde_json::to_value(k8s_openapi::ByteString(value.as_bytes().to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// GUARD (passes): at trace, through a create, a rotation, a stop and a start, the value shows in no
/// form in the log (as is, JSON-escaped, or base64 as the Secret's `data` carries it), nor in status,
/// Events or metrics.
#[tokio::test(flavor = "multi_thread")]
async fn no_form_of_a_value_reaches_log_status_events_or_metrics() {
    const FIRST: &str = "quote\"d-first-3b9e1c";
    const SECOND: &str = "line\nbroken-second-77d";
    let mut world = World::new(fast_sandboxes()).await;
    let mut op = world.start_operator_logging(&[], "trace");
    box_with_db_password(&world, FIRST).await;
    world.write_secret("db", json!({"password": SECOND})).await;
    nudged_until(&world.sandboxes(), "box", "the new value sent", || async {
        (remote_value(&world, "box", "DB_PASSWORD").await? == SECOND).then_some(())
    })
    .await;
    let mut spec = spec_with(
        &world,
        json!([from_secret("DB_PASSWORD", "db", "password")]),
    );
    spec["state"] = "Stopped".into();
    world.apply_sandbox("box", spec.clone()).await;
    condition_is(&world.sandboxes(), "box", "Ready", "True", "Stopped").await;
    spec["state"] = "Running".into();
    world.apply_sandbox("box", spec).await;
    condition_is(&world.sandboxes(), "box", "Ready", "True", "Running").await;
    let metrics = op.scrape().await.unwrap_or_default();
    let seen = format!(
        "{}\n{}\n{}\n{metrics}",
        op.output(),
        status_text(&world, "box").await,
        events_text(&world).await
    );
    for value in [FIRST, SECOND] {
        let escaped = serde_json::to_string(value).unwrap();
        for form in [value, &escaped[1..escaped.len() - 1], &base64_of(value)] {
            assert!(
                !seen.contains(form),
                "{form:?} is in log, status, Events or metrics"
            );
        }
    }
    tokio::task::block_in_place(|| op.terminate());
}

/// GUARD (passes): in a 2026 workspace (power by `spec.enabled`), a Stopped sandbox with a Secret-sourced
/// variable settles: the power change (the client's read-modify-write `PUT` of the sandbox as read)
/// keeps the value and its `secret` mark, and later passes write nothing.
#[tokio::test(flavor = "multi_thread")]
async fn power_by_enabled_keeps_the_value_and_settles() {
    const VALUE: &str = "enabled-path-5e6f7a8b";
    let mut world = World::new(SimConfig {
        generation: ApiGeneration::V2026,
        ..fast_sandboxes()
    })
    .await;
    let _op = world.start_operator(&[]);
    world.write_secret("db", json!({"password": VALUE})).await;
    let mut spec = spec_with(
        &world,
        json!([from_secret("DB_PASSWORD", "db", "password")]),
    );
    spec["state"] = "Stopped".into();
    world.apply_sandbox("box", spec).await;
    condition_is(&world.sandboxes(), "box", "Ready", "True", "Stopped").await;
    let puts = world.calls("PUT /v0/sandboxes/{name}");
    for n in 0..3 {
        support::operator::annotate(
            &world.sandboxes(),
            "box",
            "blaxel.ai/reconcile-requested-at",
            Some(&format!("settle-{n}")),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    }
    assert_eq!(
        world.calls("PUT /v0/sandboxes/{name}"),
        puts,
        "no write once settled"
    );
    let env = remote_envs(&world, "box", "DB_PASSWORD").await;
    assert_eq!(
        (env[0]["value"].as_str(), &env[0]["secret"]),
        (Some(VALUE), &json!(true))
    );
}

/// Was a defect (wrong value sent): two variables of the same name from different keys are both sent with
/// the last one's value, the first key silently dropped: `src/reconcile/sandbox/env.rs` keys the values
/// by variable name and `plan.rs`'s `desired` looks each one up by name. The CRD does not refuse duplicate
/// names (no `x-kubernetes-list-type: map` on `envs`) and nothing reports it.
#[tokio::test(flavor = "multi_thread")]
async fn duplicate_names_are_refused_or_sent_as_declared() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    world
        .write_secret(
            "db",
            json!({"a": "value-of-a-1111", "b": "value-of-b-2222"}),
        )
        .await;
    let envs = json!([from_secret("K", "db", "a"), from_secret("K", "db", "b")]);
    let api = world.sandboxes();
    let body = json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": "Sandbox",
        "metadata": {"name": "dup"}, "spec": spec_with(&world, envs)});
    let applied = api
        .patch(
            "dup",
            &kube::api::PatchParams::apply("probe-env"),
            &kube::api::Patch::Apply(&body),
        )
        .await;
    if applied.is_err() {
        return; // refused at admission: fine
    }
    let sent = eventually("dup created", DEADLINE, || async {
        let envs = remote_envs(&world, "dup", "K").await;
        (envs.len() == 2).then_some(envs)
    })
    .await;
    let values: Vec<_> = sent.iter().map(|e| e["value"].clone()).collect();
    assert_eq!(values, [json!("value-of-a-1111"), json!("value-of-b-2222")]);
}

/// GUARD (passes): a Secret deleted once the sandbox exists stalls it (`SecretNotFound`) without any
/// write (no variable removed, no empty value sent); deleting the object then still deletes the sandbox.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_deleted_later_stalls_without_writing_and_cleanup_still_works() {
    const VALUE: &str = "kept-value-1c2d3e4f";
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    box_with_db_password(&world, VALUE).await;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(world.client.clone(), &world.ns);
    secrets
        .delete("db", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let puts = world.calls("PUT /v0/sandboxes/{name}");
    let mut spec = spec_with(
        &world,
        json!([from_secret("DB_PASSWORD", "db", "password")]),
    );
    spec["memory"] = 4096.into();
    world.apply_sandbox("box", spec).await;
    condition_is(
        &world.sandboxes(),
        "box",
        "Stalled",
        "True",
        "SecretNotFound",
    )
    .await;
    assert_eq!(
        world.calls("PUT /v0/sandboxes/{name}"),
        puts,
        "nothing written"
    );
    assert_eq!(
        remote_value(&world, "box", "DB_PASSWORD").await.as_deref(),
        Some(VALUE)
    );
    world
        .sandboxes()
        .delete("box", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    support::operator::wait_gone(&world.sandboxes(), "box").await;
    eventually("the sandbox deleted", DEADLINE, || async {
        world.remote_sandbox("box").await.is_none().then_some(())
    })
    .await;
}

/// Blaxel masks the values of variables marked secret on reads. A secret variable a person set by hand
/// (the spec leaves `envs` out, so the sandbox's variables are kept as they are) therefore survives a
/// spec change: the update, which would carry the mask back as its value, is refused (Stalled
/// `SecretVariablesUnknown`, naming it) and the value stays. Declaring the variable from a Secret lets
/// the update through, with the Secret's value.
#[tokio::test(flavor = "multi_thread")]
async fn a_hand_set_secret_is_never_overwritten_with_its_mask() {
    const HAND: &str = "hand-set-9c8d7e6f";
    let mut world = World::new(SimConfig {
        generation: ApiGeneration::V2026,
        ..fast_sandboxes()
    })
    .await;
    let _op = world.start_operator(&[]);
    world.apply_sandbox("box", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "box", "Ready", "True", "Running").await;
    let mut shown = world.blaxel_get("/sandboxes/box?show_secrets=true").await;
    shown["spec"]["runtime"]["envs"] =
        json!([{"name": "HAND_TOKEN", "value": HAND, "secret": true}]);
    let status = world
        .blaxel(reqwest::Method::PUT, "/sandboxes/box", Some(shown))
        .await;
    assert!(status.is_success(), "hand edit: {status}");

    let mut spec = world.sandbox_spec();
    spec["memory"] = 4096.into();
    world.apply_sandbox("box", spec.clone()).await;
    condition_is(
        &world.sandboxes(),
        "box",
        "Stalled",
        "True",
        "SecretVariablesUnknown",
    )
    .await;
    assert_eq!(
        remote_value(&world, "box", "HAND_TOKEN").await.as_deref(),
        Some(HAND)
    );

    world
        .write_secret("hand", json!({"token": "declared-1a2b3c4d"}))
        .await;
    spec["envs"] = json!([from_secret("HAND_TOKEN", "hand", "token")]);
    world.apply_sandbox("box", spec).await;
    condition_is(&world.sandboxes(), "box", "Ready", "True", "Running").await;
    assert_eq!(
        remote_value(&world, "box", "HAND_TOKEN").await.as_deref(),
        Some("declared-1a2b3c4d")
    );
    let remote = world.remote_sandbox("box").await.unwrap();
    assert_eq!(remote["spec"]["runtime"]["memory"], 4096);
}
