//! `blaxel-operator demo --kubeconfig`: the demo on a cluster it was given leaves nothing it created
//! behind, and never touches what was there before. Each test starts its own local API server (the
//! demo writes a fixed namespace and may install the CRDs, so it must not share a cluster with other
//! tests), whatever `BLAXEL_TEST_KUBECONFIG` says.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use blaxel_operator::crd::{Sandbox, WorkspaceMember};
use blaxel_operator::demo::NAMESPACE;
use blaxel_operator::kube_local::{LocalApiServer, Progress, StartOptions};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};

/// The demo converges in about 10 s on a quiet machine; this bounds a loaded one.
const DEMO_DEADLINE: Duration = Duration::from_secs(150);
const CRDS: [&str; 2] = ["workspacemembers.blaxel.ai", "sandboxes.blaxel.ai"];

/// Runs `blaxel-operator demo --kubeconfig <path>` to its end, with `KUBECONFIG` in its environment
/// pointing nowhere (only the flag may choose the cluster), and returns its stdout.
async fn run_demo(kubeconfig: &Path) -> String {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_blaxel-operator"))
        .args([
            "demo",
            "--accept-after",
            "1s",
            "--timeout",
            "120s",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(DEMO_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the demo did not end within {DEMO_DEADLINE:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(stdout.contains("All objects Ready"), "{stdout}");
    assert!(stdout.contains("Removed"), "{stdout}");
    stdout
}

/// The demo's namespace is gone, or deleted and waiting for a namespace controller (the local API
/// server has none).
async fn assert_namespace_deleted(client: &kube::Client) {
    let ns = Api::<Namespace>::all(client.clone())
        .get_opt(NAMESPACE)
        .await
        .unwrap();
    assert!(
        ns.as_ref()
            .is_none_or(|ns| ns.metadata.deletion_timestamp.is_some()),
        "namespace {NAMESPACE} was not deleted: {ns:?}"
    );
    let secrets = Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        secrets.items.is_empty(),
        "secrets left: {:?}",
        secrets.items
    );
}

async fn start_server() -> LocalApiServer {
    LocalApiServer::start(StartOptions {
        progress: Progress::Quiet,
        ..StartOptions::default()
    })
    .await
    .unwrap()
}

/// On a cluster that already has the CRDs, the demo's objects are all gone after it exits (the
/// finalizers cleared by its operator) and the CRDs it found are still there.
#[tokio::test]
async fn demo_on_a_given_cluster_removes_its_objects_and_keeps_existing_crds() {
    let mut server = start_server().await;
    let client = server.client().await.unwrap();
    support::kube::install_crds(&client, &Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")).await;

    let stdout = run_demo(server.kubeconfig_path()).await;
    assert!(stdout.contains("already installed"), "{stdout}");

    let members = Api::<WorkspaceMember>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let sandboxes = Api::<Sandbox>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        members.items.is_empty(),
        "members left: {:?}",
        members.items
    );
    assert!(
        sandboxes.items.is_empty(),
        "sandboxes left: {:?}",
        sandboxes.items
    );
    assert_namespace_deleted(&client).await;
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for name in CRDS {
        assert!(
            crds.get_opt(name).await.unwrap().is_some(),
            "the demo deleted CRD {name}, which it had not created"
        );
    }
    server.stop().unwrap();
}

/// On a cluster without the CRDs, the demo installs them and removes them again on exit.
#[tokio::test]
async fn demo_on_a_given_cluster_removes_the_crds_it_installed() {
    let mut server = start_server().await;
    let client = server.client().await.unwrap();

    let stdout = run_demo(server.kubeconfig_path()).await;
    assert!(!stdout.contains("already installed"), "{stdout}");

    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for name in CRDS {
        assert!(
            crds.get_opt(name).await.unwrap().is_none(),
            "CRD {name}, installed by the demo, is still there"
        );
    }
    assert_namespace_deleted(&client).await;
    server.stop().unwrap();
}
