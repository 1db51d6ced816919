//! The lifecycle guarantees of `blaxel_operator::kube_local`: a started server answers, `stop` removes
//! it, and a server whose owner process dies goes away by itself (test binaries that crash leak nothing).
//! These start their own servers, whatever `BLAXEL_TEST_KUBECONFIG` says.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use blaxel_operator::kube_local::{LocalApiServer, Progress, StartOptions};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

const DEADLINE: Duration = Duration::from_secs(30);

/// Polls until `path` no longer exists, failing after [`DEADLINE`].
async fn wait_gone(path: &Path) {
    let start = Instant::now();
    while path.exists() {
        assert!(
            start.elapsed() < DEADLINE,
            "{} still exists after {DEADLINE:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A started server serves the default namespaces; `stop` removes its state and it stops answering.
#[tokio::test]
async fn start_serves_and_stop_removes() {
    let mut server = LocalApiServer::start(StartOptions {
        progress: Progress::Quiet,
        ..StartOptions::default()
    })
    .await
    .unwrap();
    let client = server.client().await.unwrap();
    let default = Api::<Namespace>::all(client.clone())
        .get("default")
        .await
        .unwrap();
    assert_eq!(
        default.status.and_then(|s| s.phase).as_deref(),
        Some("Active")
    );
    let dir = server.dir().to_path_buf();
    assert!(server.kubeconfig_path().starts_with(&dir));

    server.stop().unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    let err = Api::<Namespace>::all(client).get("default").await;
    assert!(err.is_err(), "the server still answers after stop");
}

/// When the owner process dies, the watchdog stops the servers and removes their state.
#[tokio::test]
async fn owner_death_stops_the_server() {
    let mut owner = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let server = LocalApiServer::start(StartOptions {
        owner_pid: Some(owner.id()),
        progress: Progress::Quiet,
        ..StartOptions::default()
    })
    .await
    .unwrap();
    let dir = server.dir().to_path_buf();
    let client = server.client().await.unwrap();
    Api::<Namespace>::all(client.clone())
        .get("default")
        .await
        .unwrap();
    // Dropping would run `down`; the point is that the server goes without it.
    std::mem::forget(server);

    owner.kill().unwrap();
    owner.wait().unwrap();
    wait_gone(&dir).await;
    let err = Api::<Namespace>::all(client).get("default").await;
    assert!(
        err.is_err(),
        "the server still answers after its owner died"
    );
}
