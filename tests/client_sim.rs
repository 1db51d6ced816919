//! The HTTP client against the embedded simulator, in both API generations: the full member and sandbox
//! life cycle, pagination, power control, and how the client behaves under the simulator's faults
//! (measured with its exact request counters, `/_sim/stats`).

// Tests fail loudly on broken fixtures; `unwrap`/`expect` are the clearest way to say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use blaxel_operator::blaxel::model::{Preview, Sandbox};
use blaxel_operator::blaxel::{
    ApiKey, ClientConfig, HttpClient, PowerControl, PreviewsApi, RetryPolicy, SandboxesApi, Scope,
    UsersApi,
};
use blaxel_operator::sim::{self, ApiGeneration, Faults, RateLimit, SimConfig, SimHandle};
use serde_json::{Value, json};

async fn start(generation: ApiGeneration, faults: Faults) -> SimHandle {
    sim::spawn(SimConfig {
        generation,
        faults,
        seed: Some(7),
        deploy_time: Duration::ZERO,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn scope_for(sim: &SimHandle) -> Scope {
    let key = sim.api_key();
    Scope {
        workspace: key.workspace,
        api_key: ApiKey::new(&key.key),
    }
}

/// Fast retries and a limiter that never gets in the way, unless a test says otherwise.
fn client_for(sim: &SimHandle) -> HttpClient {
    HttpClient::new(config(sim)).unwrap()
}

fn config(sim: &SimHandle) -> ClientConfig {
    ClientConfig {
        base_url: sim.base_url(),
        rate_limit: 10_000.0,
        burst: 10_000,
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(10),
            cap: Duration::from_secs(5),
        },
        ..ClientConfig::default()
    }
}

fn sandbox(name: &str) -> Sandbox {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"team": "a"}},
        "spec": {"region": "us-pdx-1", "runtime": {"image": "blaxel/base:latest", "memory": 2048}}
    }))
    .unwrap()
}

/// Requests the simulator counted for `route` (`"GET /v0/users"`), all outcomes.
fn count(stats: &Value, route: &str) -> u64 {
    stats["byRoute"][route]["total"].as_u64().unwrap_or(0)
}

/// Members: invite, list as pending, set the role, remove; e-mails with `+` survive the path.
#[tokio::test]
async fn member_life_cycle() {
    for generation in [ApiGeneration::V2025, ApiGeneration::V2026] {
        let sim = start(generation, Faults::default()).await;
        let (client, scope) = (client_for(&sim), scope_for(&sim));
        let email = "dev+ops@example.com";
        let invitation = client.invite_user(&scope, email).await.unwrap();
        assert_eq!(invitation.email, email);
        let users = client.list_users(&scope).await.unwrap();
        let pending = users.items.iter().find(|u| u.email == email).unwrap();
        assert!(pending.is_pending());
        let updated = client.set_user_role(&scope, email, "admin").await.unwrap();
        assert_eq!(updated.role.as_deref(), Some("admin"));
        client.remove_user(&scope, email).await.unwrap();
        let error = client.remove_user(&scope, email).await.unwrap_err();
        assert_eq!(error.category(), "NotFound");
        assert!(
            !client
                .list_users(&scope)
                .await
                .unwrap()
                .items
                .iter()
                .any(|u| u.email == email)
        );
    }
}

/// Sandboxes: create, duplicate create is Conflict, get, update, delete; typed errors throughout.
#[tokio::test]
async fn sandbox_life_cycle() {
    for generation in [ApiGeneration::V2025, ApiGeneration::V2026] {
        let sim = start(generation, Faults::default()).await;
        let (client, scope) = (client_for(&sim), scope_for(&sim));
        let created = client
            .create_sandbox(&scope, &sandbox("box"))
            .await
            .unwrap();
        assert_eq!(created.metadata.name, "box");
        let error = client
            .create_sandbox(&scope, &sandbox("box"))
            .await
            .unwrap_err();
        assert_eq!(error.category(), "Conflict", "{error}");
        let mut current = client.get_sandbox(&scope, "box").await.unwrap();
        current.metadata.labels.insert("env".into(), "dev".into());
        let updated = client.update_sandbox(&scope, &current).await.unwrap();
        assert_eq!(updated.metadata.labels["env"], "dev");
        client.delete_sandbox(&scope, "box").await.unwrap();
        let error = client
            .get_sandbox(&scope, "nothing-here")
            .await
            .unwrap_err();
        assert_eq!(error.category(), "NotFound");
    }
}

/// Today's API pages `GET /sandboxes` 200 at a time; the client follows every cursor, and the 2025 API
/// answers the same list in one bare array.
#[tokio::test]
async fn listing_is_complete_in_both_generations() {
    for (generation, pages) in [(ApiGeneration::V2026, 3), (ApiGeneration::V2025, 1)] {
        let sim = start(generation, Faults::default()).await;
        let (client, scope) = (client_for(&sim), scope_for(&sim));
        for n in 0..450 {
            client
                .create_sandbox(&scope, &sandbox(&format!("s-{n:03}")))
                .await
                .unwrap();
        }
        let listed = client.list_sandboxes(&scope).await.unwrap();
        let mut names: Vec<_> = listed
            .items
            .iter()
            .map(|s| s.metadata.name.clone())
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 450, "{generation:?}");
        assert_eq!(
            count(&sim.stats(), "GET /v0/sandboxes"),
            pages,
            "{generation:?}"
        );
    }
}

/// Adds a raw record to a workspace's `users` or `sandboxes` list answers (`/_sim/.../malformed`).
async fn add_malformed(sim: &SimHandle, collection: &str, record: Value) {
    let url = format!(
        "{}/_sim/workspaces/{}/malformed",
        sim.root_url(),
        sim.api_key().workspace
    );
    let answer = reqwest::Client::new()
        .post(url)
        .json(&json!({ "collection": collection, "record": record }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
}

/// Malformed records in the simulator's lists (a null e-mail, a memory beyond i64, on the last of two
/// pages today) are reported by identity while every real record is still listed, in both generations;
/// reading the malformed sandbox alone is a Decode error that does not quote it.
#[tokio::test]
async fn malformed_records_are_reported_not_fatal() {
    for generation in [ApiGeneration::V2026, ApiGeneration::V2025] {
        let sim = start(generation, Faults::default()).await;
        let (client, scope) = (client_for(&sim), scope_for(&sim));
        // 201 sandboxes: two pages of 200 today, the raw records on the second.
        for n in 0..201 {
            client
                .create_sandbox(&scope, &sandbox(&format!("s-{n:03}")))
                .await
                .unwrap();
        }
        client
            .invite_user(&scope, "real@example.com")
            .await
            .unwrap();
        let huge = json!({"metadata": {"name": "huge"}, "spec": {"runtime": {"memory": 9_223_372_036_854_775_808_u64}}});
        add_malformed(&sim, "sandboxes", huge).await;
        add_malformed(&sim, "sandboxes", json!({"spec": 1})).await;
        add_malformed(&sim, "users", json!({"email": null, "role": "admin"})).await;
        add_malformed(
            &sim,
            "users",
            json!({"email": "odd@example.com", "role": 5}),
        )
        .await;
        add_malformed(&sim, "users", json!({"role": "member"})).await;

        let users = client.list_users(&scope).await.unwrap();
        let emails: Vec<_> = users.items.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(emails, ["real@example.com"], "{generation:?}");
        let identities: Vec<_> = users
            .unreadable
            .iter()
            .map(|u| u.identity.as_deref())
            .collect();
        assert_eq!(
            identities,
            [None, Some("odd@example.com"), None],
            "{generation:?}"
        );

        let sandboxes = client.list_sandboxes(&scope).await.unwrap();
        assert_eq!(sandboxes.items.len(), 201, "{generation:?}");
        let identities: Vec<_> = sandboxes
            .unreadable
            .iter()
            .map(|u| u.identity.as_deref())
            .collect();
        assert_eq!(identities, [Some("huge"), None], "{generation:?}");

        let error = client.get_sandbox(&scope, "huge").await.unwrap_err();
        assert_eq!(error.category(), "Decode", "{generation:?}: {error}");
        assert!(
            !error.to_string().contains("9223372036854775808"),
            "{error}"
        );
    }
}

/// 2025: start/stop routes, "already in that state" is success; 2026: one probe tells power is
/// `spec.enabled`, and the power call writes nothing (the caller's own update sets it).
#[tokio::test]
async fn power_control_in_both_generations() {
    let sim = start(ApiGeneration::V2025, Faults::default()).await;
    let (client, scope) = (client_for(&sim), scope_for(&sim));
    let current = client
        .create_sandbox(&scope, &sandbox("box"))
        .await
        .unwrap();
    for running in [false, false, true, true] {
        let mode = client
            .set_sandbox_power(&scope, &current, running)
            .await
            .unwrap();
        assert_eq!(mode, PowerControl::StartStop);
    }
    let stats = sim.stats();
    assert_eq!(count(&stats, "PUT /v0/sandboxes/{name}/stop"), 2);
    assert_eq!(count(&stats, "PUT /v0/sandboxes/{name}/start"), 2);
    assert_eq!(count(&stats, "PUT /v0/sandboxes/{name}"), 0);

    let sim = start(ApiGeneration::V2026, Faults::default()).await;
    let (client, scope) = (client_for(&sim), scope_for(&sim));
    let current = client
        .create_sandbox(&scope, &sandbox("box"))
        .await
        .unwrap();
    for running in [false, true, false] {
        let mode = client
            .set_sandbox_power(&scope, &current, running)
            .await
            .unwrap();
        assert_eq!(mode, PowerControl::Enabled);
    }
    assert_eq!(
        client.power_control(&scope.workspace),
        Some(PowerControl::Enabled)
    );
    let mut stopped = client.get_sandbox(&scope, "box").await.unwrap();
    assert_ne!(
        stopped.spec.enabled,
        Some(false),
        "the power call wrote nothing"
    );
    stopped.spec.enabled = Some(false);
    client.update_sandbox(&scope, &stopped).await.unwrap();
    let now = client.get_sandbox(&scope, "box").await.unwrap();
    assert_eq!(now.spec.enabled, Some(false));
    assert_eq!(now.metadata.labels["team"], "a");
    let stats = sim.stats();
    assert_eq!(
        count(&stats, "PUT <unmatched>"),
        1,
        "start/stop probed once: {stats}"
    );
    assert_eq!(
        count(&stats, "PUT /v0/sandboxes/{name}"),
        1,
        "the caller's update only"
    );
}

/// Previews and private-preview tokens: create, list, delete.
#[tokio::test]
async fn previews_and_tokens() {
    let sim = start(ApiGeneration::V2026, Faults::default()).await;
    let (client, scope) = (client_for(&sim), scope_for(&sim));
    client
        .create_sandbox(&scope, &sandbox("box"))
        .await
        .unwrap();
    let preview: Preview = serde_json::from_value(json!({
        "metadata": {"name": "web"}, "spec": {"port": 3000, "public": false}
    }))
    .unwrap();
    client
        .create_preview(&scope, "box", &preview)
        .await
        .unwrap();
    assert_eq!(client.list_previews(&scope, "box").await.unwrap().len(), 1);
    let token = client
        .create_preview_token(&scope, "box", "web", "t-", "2099-01-01T00:00:00Z")
        .await
        .unwrap();
    assert!(token.spec.token.is_some());
    let tokens = client
        .list_preview_tokens(&scope, "box", "web")
        .await
        .unwrap();
    assert_eq!(tokens.len(), 1);
    client
        .delete_preview_token(&scope, "box", "web", &token.metadata.name)
        .await
        .unwrap();
    client.delete_preview(&scope, "box", "web").await.unwrap();
    assert!(
        client
            .list_previews(&scope, "box")
            .await
            .unwrap()
            .is_empty()
    );
}

/// A client limiter at or below the server's limit never meets a 429, and the limiter's wait is reported.
#[tokio::test]
async fn client_limiter_below_the_server_limit_avoids_429() {
    let limit = RateLimit {
        per_second: 20.0,
        burst: 5,
    };
    let sim = start(
        ApiGeneration::V2025,
        Faults {
            rate_limit: Some(limit),
            ..Faults::default()
        },
    )
    .await;
    let client = HttpClient::new(ClientConfig {
        rate_limit: 15.0,
        burst: 5,
        ..config(&sim)
    })
    .unwrap();
    let scope = scope_for(&sim);
    let started = Instant::now();
    for _ in 0..20 {
        client.list_users(&scope).await.unwrap();
    }
    assert!(started.elapsed() >= Duration::from_secs(1), "(20-5)/15 s");
    let stats = sim.stats();
    assert_eq!(stats["faults"]["rateLimited"], 0, "{stats}");
    assert_eq!(stats["total"], 20);
    // How much of the (20-5)/15 s was spent in the limiter depends on request latency: only "some".
    assert!(client.rate_limit_stats().waits > 0);
}

/// Against a server limit it exceeds, the client honours Retry-After and still gets every answer.
#[tokio::test]
async fn server_429s_are_waited_out() {
    let limit = RateLimit {
        per_second: 5.0,
        burst: 2,
    };
    let sim = start(
        ApiGeneration::V2025,
        Faults {
            rate_limit: Some(limit),
            ..Faults::default()
        },
    )
    .await;
    let (client, scope) = (client_for(&sim), scope_for(&sim));
    for _ in 0..6 {
        client.list_users(&scope).await.unwrap();
    }
    let stats = sim.stats();
    assert_eq!(
        stats["byRoute"]["GET /v0/users"]["byStatus"]["200"], 6,
        "{stats}"
    );
}

/// Injected 5xx and dropped connections: GETs are tried 3 times, POSTs once.
#[tokio::test]
async fn faults_retry_gets_never_posts() {
    for faults in [
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        Faults {
            drop_rate: 1.0,
            ..Faults::default()
        },
    ] {
        let sim = start(ApiGeneration::V2025, faults).await;
        let (client, scope) = (client_for(&sim), scope_for(&sim));
        assert_eq!(
            client.list_users(&scope).await.unwrap_err().category(),
            "Unavailable"
        );
        assert_eq!(
            client
                .invite_user(&scope, "a@b.c")
                .await
                .unwrap_err()
                .category(),
            "Unavailable"
        );
        let stats = sim.stats();
        assert_eq!(count(&stats, "GET /v0/users"), 3, "{stats}");
        assert_eq!(count(&stats, "POST /v0/users"), 1, "{stats}");
    }
}

/// A key used in another workspace is Forbidden; an unknown key is Unauthorized; neither is retried.
#[tokio::test]
async fn credentials_errors_are_typed() {
    let sim = start(ApiGeneration::V2025, Faults::default()).await;
    let client = client_for(&sim);
    let mut scope = scope_for(&sim);
    scope.workspace = "someone-else".into();
    assert_eq!(
        client.list_users(&scope).await.unwrap_err().category(),
        "Forbidden"
    );
    scope.api_key = ApiKey::new("not-a-key");
    let error = client.list_users(&scope).await.unwrap_err();
    assert_eq!(error.category(), "Unauthorized");
    assert!(!error.to_string().contains("not-a-key"));
    assert_eq!(sim.stats()["total"], 2);
}
