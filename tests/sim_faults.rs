//! Fault injection and statistics: rate limiting with Retry-After, seeded 5xx, latency, dropped
//! connections, run-time fault changes, and request counters that match what a client sent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use std::time::{Duration, Instant};

use blaxel_operator::sim::{Faults, RateLimit, SimConfig};
use common::schema::*;
use common::{Harness, config};
use reqwest::StatusCode;
use serde_json::json;

fn with_faults(faults: Faults) -> SimConfig {
    SimConfig { faults, ..config() }
}

/// Past the burst, a key gets 429 with integer Retry-After seconds and Retry-After-Ms; other keys are not
/// affected; the bucket refills with the simulator clock.
#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let h = Harness::start(with_faults(Faults {
        rate_limit: Some(RateLimit {
            per_second: 2.0,
            burst: 3,
        }),
        ..Faults::default()
    }))
    .await;
    for _ in 0..3 {
        assert_eq!(h.get("/users").await.status, StatusCode::OK);
    }
    let a = h.get("/users").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_shape(&ERROR, &a.body);
    assert_eq!(
        a.headers["retry-after"], "1",
        "0.5 s rounds up to 1 whole second"
    );
    assert_eq!(a.headers["retry-after-ms"], "500");
    let a = h.post("/sandboxes", common::sandbox_body("x")).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_shape(&SANDBOX_ERROR, &a.body);

    let other = h
        .send(
            h.http
                .get(format!("{}/users", h.sim.base_url()))
                .bearer_auth("key-b"),
        )
        .await;
    assert_eq!(other.status, StatusCode::OK, "buckets are per key");

    h.advance(0.5).await;
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    assert_eq!(h.get("/users").await.status, StatusCode::TOO_MANY_REQUESTS);
    let stats = h.sim_get("/stats").await;
    assert_eq!(stats["faults"]["rateLimited"], 3);
    assert_eq!(stats["byRoute"]["GET /v0/users"]["byStatus"]["429"], 2);
}

async fn statuses(seed: u64, n: usize) -> (Vec<u16>, serde_json::Value) {
    let h = Harness::start(SimConfig {
        seed: Some(seed),
        ..with_faults(Faults {
            error_rate: 0.3,
            ..Faults::default()
        })
    })
    .await;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(h.get("/users").await.status.as_u16());
    }
    (out, h.sim_get("/stats").await)
}

/// With a seed, the injected 5xx fall on the same requests every run, at about the configured fraction,
/// and the stats count exactly those.
#[tokio::test]
async fn seeded_error_rate_is_reproducible() {
    let (a, stats) = statuses(99, 200).await;
    let (b, _) = statuses(99, 200).await;
    let (c, _) = statuses(100, 200).await;
    assert_eq!(a, b, "same seed, same faults");
    assert_ne!(a, c, "another seed, other faults");
    let errors = a.iter().filter(|s| **s >= 500).count();
    assert!(
        (35..=85).contains(&errors),
        "about 30% of 200, got {errors}"
    );
    assert!(a.iter().all(|s| [200, 500, 503].contains(s)), "{a:?}");
    assert_eq!(stats["faults"]["injectedErrors"], errors);
    assert_eq!(stats["total"], 200);
}

/// Injected latency delays API requests by at least the configured time, but never the control routes:
/// a control request sent while a delayed API request is held answers before it (an order, not a
/// wall-clock bound a loaded machine could break).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_api_requests_only() {
    let h = std::sync::Arc::new(
        Harness::start(with_faults(Faults {
            latency: Duration::from_secs(2),
            latency_jitter: Duration::from_millis(50),
            ..Faults::default()
        }))
        .await,
    );
    let t = Instant::now();
    let api = tokio::spawn({
        let h = h.clone();
        async move {
            let status = h.get("/users").await.status;
            (status, t.elapsed())
        }
    });
    h.sim_get("/health").await;
    assert!(
        !api.is_finished(),
        "the control request answered only after the delayed API request"
    );
    let (status, elapsed) = api.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(h.sim_get("/stats").await["faults"]["delayed"], 1);
}

/// A dropped request closes the connection without any response (the client sees a transport error), is
/// counted as dropped, and the server keeps answering afterwards.
#[tokio::test]
async fn dropped_connections_look_like_network_failures() {
    let h = Harness::start(with_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    }))
    .await;
    for _ in 0..3 {
        let r = h.req(reqwest::Method::GET, "/users").send().await;
        let err = r.expect_err("no response may arrive");
        // hyper reports "connection closed before message completed".
        assert!(
            err.is_request() && !err.is_status() && !err.is_timeout(),
            "a transport error: {err:?}"
        );
    }
    assert_eq!(h.sim_get("/health").await["ok"], true);
    let stats = h.sim_get("/stats").await;
    assert_eq!(stats["faults"]["dropped"], 3);
    assert_eq!(stats["byRoute"]["GET /v0/users"]["byStatus"]["dropped"], 3);

    let a = h.sim_put("/faults", json!({ "dropRate": 0.0 })).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
}

/// A lost answer: the request is handled (the sandbox exists, the invitation is sent), then the connection
/// closes without the answer. The client sees a transport error; the stats count it as `lost`.
#[tokio::test]
async fn lost_answers_are_handled_then_dropped() {
    let h = Harness::default().await;
    let a = h
        .sim_post(
            "/faults/script",
            json!({ "route": "POST /v0/sandboxes", "loseAnswer": true }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let sent = h
        .req(reqwest::Method::POST, "/sandboxes")
        .json(&common::sandbox_body("a"))
        .send()
        .await;
    let err = sent.expect_err("no answer may arrive");
    assert!(err.is_request() && !err.is_status(), "{err:?}");
    assert_eq!(
        h.get("/sandboxes/a").await.status,
        StatusCode::OK,
        "the create was made"
    );
    assert_eq!(
        h.post("/sandboxes", common::sandbox_body("a")).await.status,
        StatusCode::CONFLICT
    );

    // The random kind: every answer lost while it is set.
    h.sim_put("/faults", json!({ "lostAnswerRate": 1.0 })).await;
    let sent = h
        .req(reqwest::Method::POST, "/users")
        .json(&json!({ "email": "lost@example.com" }))
        .send()
        .await;
    assert!(sent.is_err(), "no answer may arrive");
    h.sim_put("/faults", json!({ "lostAnswerRate": 0.0 })).await;
    let users = h.get("/users").await;
    assert!(
        users
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["email"] == "lost@example.com"),
        "the invitation was sent: {}",
        users.raw
    );

    let stats = h.sim_get("/stats").await;
    assert_eq!(stats["faults"]["lostAnswers"], 2);
    assert_eq!(
        stats["byRoute"]["POST /v0/sandboxes"]["byStatus"],
        json!({ "lost": 1, "409": 1 })
    );
    assert_eq!(
        stats["byRoute"]["POST /v0/users"]["byStatus"],
        json!({ "lost": 1 })
    );
}

/// GET/PUT /_sim/faults read and change faults at run time, partially, with validation.
#[tokio::test]
async fn faults_change_at_run_time() {
    let h = Harness::default().await;
    let f = h.sim_get("/faults").await;
    assert_eq!(
        f,
        json!({ "latencyMs": 0, "latencyJitterMs": 0, "rateLimit": null, "errorRate": 0.0, "dropRate": 0.0, "lostAnswerRate": 0.0 })
    );
    let a = h
        .sim_put("/faults", json!({ "errorRate": 1.0, "seed": 5 }))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["errorRate"], 1.0);
    assert!(h.get("/users").await.status.is_server_error());
    for bad in [
        json!({ "errorRate": 2 }),
        json!({ "dropRate": "x" }),
        json!({ "lostAnswerRate": -0.1 }),
        json!({ "nope": 1 }),
        json!({ "rateLimit": { "perSecond": 0 } }),
        json!({ "rateLimit": 3 }),
    ] {
        let a = h.sim_put("/faults", bad.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        h.sim_get("/faults").await["errorRate"],
        1.0,
        "rejected updates change nothing"
    );
    h.sim_put(
        "/faults",
        json!({ "errorRate": 0, "rateLimit": { "perSecond": 1, "burst": 1 } }),
    )
    .await;
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    assert_eq!(h.get("/users").await.status, StatusCode::TOO_MANY_REQUESTS);
    h.sim_put("/faults", json!({ "rateLimit": null })).await;
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
}

/// The stats count exactly the API requests sent, by method, route template and status; control routes
/// are not counted; reset zeroes them.
#[tokio::test]
async fn stats_match_what_was_sent() {
    let h = Harness::default().await;
    for _ in 0..3 {
        h.get("/users").await;
    }
    h.post("/sandboxes", common::sandbox_body("a")).await;
    h.post("/sandboxes", common::sandbox_body("a")).await;
    h.get("/sandboxes/missing").await;
    h.put("/sandboxes/a", common::sandbox_body("a")).await;
    h.get("/not/a/route").await;
    h.send(h.http.get(format!("{}/users", h.sim.base_url())))
        .await;
    h.sim_get("/state").await;

    let stats = h.sim_get("/stats").await;
    assert_eq!(
        stats,
        json!({
            "total": 9,
            "byStatus": { "200": 5, "401": 1, "404": 2, "409": 1 },
            "byMethod": { "GET": 6, "POST": 2, "PUT": 1 },
            "byRoute": {
                "GET /v0/users": { "total": 4, "byStatus": { "200": 3, "401": 1 } },
                "POST /v0/sandboxes": { "total": 2, "byStatus": { "200": 1, "409": 1 } },
                "GET /v0/sandboxes/{name}": { "total": 1, "byStatus": { "404": 1 } },
                "PUT /v0/sandboxes/{name}": { "total": 1, "byStatus": { "200": 1 } },
                "GET <unmatched>": { "total": 1, "byStatus": { "404": 1 } },
            },
            "faults": { "delayed": 0, "rateLimited": 0, "injectedErrors": 0, "dropped": 0, "lostAnswers": 0 },
        })
    );
    let a = h.sim_post("/stats/reset", json!({})).await;
    assert_eq!(a.body["total"], 0);
}

/// Scripted faults hit exactly the next matching requests (by route template), then stop; they carry the
/// requested status and Retry-After, and can be listed and cleared.
#[tokio::test]
async fn scripted_faults_hit_exactly_what_they_name() {
    let h = Harness::default().await;
    h.create_sandbox("box").await;
    let a = h
        .sim_post("/faults/script", json!({ "route": "PUT /v0/sandboxes/{name}", "status": 503, "times": 2, "retryAfterMs": 1500 }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    h.sim_post(
        "/faults/script",
        json!({ "route": "DELETE /v0/sandboxes/{name}", "status": 429 }),
    )
    .await;
    h.sim_post(
        "/faults/script",
        json!({ "route": "GET /v0/users", "drop": true }),
    )
    .await;
    assert_eq!(
        h.sim_get("/faults/script").await.as_array().unwrap().len(),
        3
    );

    assert_eq!(
        h.get("/sandboxes/box").await.status,
        StatusCode::OK,
        "other routes are untouched"
    );
    for _ in 0..2 {
        let a = h.put("/sandboxes/box", common::sandbox_body("box")).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_shape(&ERROR, &a.body);
        assert_eq!(a.headers["retry-after"], "2");
        assert_eq!(a.headers["retry-after-ms"], "1500");
    }
    assert_eq!(
        h.put("/sandboxes/box", common::sandbox_body("box"))
            .await
            .status,
        StatusCode::OK,
        "only twice"
    );
    let a = h.delete("/sandboxes/box").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers["retry-after-ms"], "1000");
    assert!(
        h.req(reqwest::Method::GET, "/users").send().await.is_err(),
        "dropped"
    );
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    assert_eq!(h.sim_get("/faults/script").await, json!([]));

    for bad in [
        json!({}),
        json!({ "status": 200 }),
        json!({ "status": 500, "drop": true }),
        json!({ "drop": true, "loseAnswer": true }),
        json!({ "status": 504, "loseAnswer": true }),
        json!({ "status": 500, "times": 0 }),
        json!({ "status": 500, "colour": "red" }),
    ] {
        assert_eq!(
            h.sim_post("/faults/script", bad.clone()).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    h.sim_post("/faults/script", json!({ "status": 500, "times": 100 }))
        .await;
    let a = h
        .send(
            h.http
                .delete(format!("{}/_sim/faults/script", h.sim.root_url())),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    let stats = h.sim_get("/stats").await;
    assert_eq!(
        stats["faults"],
        json!({ "delayed": 0, "rateLimited": 1, "injectedErrors": 2, "dropped": 1, "lostAnswers": 0 })
    );
}
