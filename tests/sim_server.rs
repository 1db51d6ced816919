//! The simulator as a server: `spawn`/`serve`/`run` start and stop cleanly, defaults work without any
//! flag, the real-time clock moves on its own, and many concurrent clients are served correctly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use std::time::{Duration, Instant};

use blaxel_operator::sim::{self, Faults, SimArgs, SimConfig, SimError};
use clap::Parser;
use common::{Harness, config};
use reqwest::StatusCode;
use serde_json::json;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

/// With no key configured, the documented default key `sim-key` works for workspace `sim`.
#[tokio::test]
async fn default_config_accepts_the_default_key() {
    let handle = sim::spawn(SimConfig::default()).await.unwrap();
    assert_eq!(handle.api_key().key, "sim-key");
    assert!(handle.base_url().ends_with("/v0"));
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/users", handle.base_url()))
        .bearer_auth("sim-key")
        .header("X-Blaxel-Workspace", "sim")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// `SimHandle::shutdown` stops the server: afterwards connections are refused.
#[tokio::test]
async fn shutdown_stops_serving() {
    let h = Harness::default().await;
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    let url = format!("{}/users", h.sim.base_url());
    let Harness { sim, .. } = h;
    sim.shutdown().await.unwrap();
    let err = reqwest::Client::new().get(url).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

/// `serve` runs on a caller's listener until the caller's shutdown future completes.
#[tokio::test]
async fn serve_honours_the_shutdown_future() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sim::serve(config(), listener, async move {
        let _ = rx.await;
    }));
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/_sim/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Invalid settings are refused before serving; `run` reports an address it cannot bind.
#[tokio::test]
async fn bad_settings_and_busy_addresses_are_reported() {
    let bad = SimConfig {
        faults: Faults {
            error_rate: 2.0,
            ..Faults::default()
        },
        ..config()
    };
    let err = sim::spawn(bad).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let cli = Cli::try_parse_from(["simulate", "--listen", &addr]).unwrap();
    let err = sim::run(cli.sim).await.unwrap_err();
    assert!(matches!(err, SimError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&addr));
}

/// Without --manual-clock, statuses move with real time (observed by polling with a deadline).
#[tokio::test]
async fn real_time_moves_the_lifecycle() {
    let h = Harness::start(SimConfig {
        manual_clock: false,
        deploy_time: Duration::from_millis(200),
        ..config()
    })
    .await;
    h.create_sandbox("live").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if h.sandbox_status("live").await == "DEPLOYED" {
            break;
        }
        assert!(Instant::now() < deadline, "never became DEPLOYED");
        tokio::task::yield_now().await;
    }
}

/// Thousands of objects written by concurrent clients are all stored once, listed, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_at_scale() {
    let h = Harness::default().await;
    let workers = 16;
    let per_worker = 125;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let http = h.http.clone();
        let base = h.sim.base_url();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_worker {
                let name = format!("w{w:02}-s{i:03}");
                let r = http
                    .post(format!("{base}/sandboxes"))
                    .bearer_auth("key-a")
                    .json(&common::sandbox_body(&name))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                if i % 10 == 0 {
                    let r = http
                        .post(format!("{base}/users"))
                        .bearer_auth("key-a")
                        .json(&json!({ "email": format!("user{w}-{i}@example.com") }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::OK);
                }
                let r = http
                    .get(format!("{base}/sandboxes/{name}"))
                    .bearer_auth("key-a")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let total = workers * per_worker;
    let listed = h.get("/sandboxes").await.body;
    assert_eq!(listed.as_array().unwrap().len(), total);
    assert_eq!(
        h.get("/users").await.body.as_array().unwrap().len(),
        workers * 13
    );
    let stats = h.sim_get("/stats").await;
    assert_eq!(
        stats["byRoute"]["POST /v0/sandboxes"]["byStatus"]["200"],
        total
    );
    assert_eq!(stats["byRoute"]["GET /v0/sandboxes/{name}"]["total"], total);
    eprintln!("{} requests in {elapsed:?}", stats["total"]);
}
