//! A Kubernetes API server for integration tests, shared by every test of one test binary.
//!
//! - With `BLAXEL_TEST_KUBECONFIG` set (a kubeconfig path), tests run against that cluster (kind, k3d, a
//!   real cluster). The shell's `KUBECONFIG` is never read: most Kubernetes users have it set, and the
//!   tests create and delete objects.
//! - Otherwise the first test to ask starts the project's local API server
//!   ([`blaxel_operator::kube_local`]) with `--owner-pid` = this process, so it stops when the test binary
//!   exits, however it exits.
//!
//! Tests isolate themselves with [`fresh_namespace`]. Nothing here sleeps to synchronise: waits poll a
//! condition against a deadline.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use blaxel_operator::kube_local::{self, LocalApiServer, StartOptions};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use tokio::sync::OnceCell;

/// Field manager the helpers apply with.
pub const FIELD_MANAGER: &str = "blaxel-operator-tests";

/// Label put on every namespace [`fresh_namespace`] creates, so a real cluster can be cleaned up with
/// `kubectl delete ns -l blaxel-operator-test=true`.
pub const TEST_NAMESPACE_LABEL: &str = "blaxel-operator-test";

/// How long CRD establishment may take.
pub const CRD_ESTABLISHED_DEADLINE: Duration = Duration::from_secs(30);

/// The cluster the tests of this binary run against.
#[derive(Debug)]
pub struct TestCluster {
    kubeconfig: Option<PathBuf>,
    /// Kept for the life of the process; its watchdog stops it when the process exits (statics never drop).
    local: Option<LocalApiServer>,
}

impl TestCluster {
    /// The kubeconfig file, when there is one (the local server's, or [`TEST_KUBECONFIG_VAR`]'s).
    pub fn kubeconfig_path(&self) -> Option<&Path> {
        self.kubeconfig.as_deref()
    }

    /// Whether this is the project's local API server (as opposed to [`TEST_KUBECONFIG_VAR`]'s cluster).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// A new client. Each test builds its own: a `kube::Client` is bound to the Tokio runtime it was
    /// created on, and every `#[tokio::test]` has its own runtime.
    pub async fn client(&self) -> Client {
        match (&self.local, &self.kubeconfig) {
            (Some(server), _) => server
                .client()
                .await
                .expect("client for the local API server"),
            (None, Some(path)) => kube_local::client_from_kubeconfig(path)
                .await
                .expect("client from BLAXEL_TEST_KUBECONFIG"),
            (None, None) => unreachable!("the test cluster has a kubeconfig or a local server"),
        }
    }
}

static CLUSTER: OnceCell<TestCluster> = OnceCell::const_new();

/// The variable naming an existing cluster's kubeconfig for the tests (one path).
pub const TEST_KUBECONFIG_VAR: &str = "BLAXEL_TEST_KUBECONFIG";

/// The kubeconfig of an existing cluster the tests are told to use, from [`TEST_KUBECONFIG_VAR`] only.
pub fn test_kubeconfig() -> Option<PathBuf> {
    std::env::var_os(TEST_KUBECONFIG_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The shared cluster, started on first use.
pub async fn cluster() -> &'static TestCluster {
    CLUSTER
        .get_or_init(|| async {
            if let Some(path) = test_kubeconfig() {
                return TestCluster {
                    kubeconfig: Some(path),
                    local: None,
                };
            }
            let server = LocalApiServer::start(StartOptions::default())
                .await
                .unwrap_or_else(|e| panic!("starting the local API server failed: {e}"));
            TestCluster {
                kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
                local: Some(server),
            }
        })
        .await
}

/// A client for the shared cluster.
pub async fn client() -> Client {
    cluster().await.client().await
}

/// Creates a namespace with a unique name for one test and returns the name.
pub async fn fresh_namespace(client: &Client) -> String {
    let name = format!("t-{:016x}", rand::random::<u64>());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some([(TEST_NAMESPACE_LABEL.to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    name
}

/// Applies (server-side) every CustomResourceDefinition in the `.yaml`/`.yml` files of `dir`, in file
/// name order, and waits until each is Established. Returns their names.
pub async fn install_crds(client: &Client, dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let mut crds = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("parsing {}: {e}", file.display()));
            if value.is_null() {
                continue;
            }
            let crd: CustomResourceDefinition = serde_yaml::from_value(value).unwrap_or_else(|e| {
                panic!("{} holds something that is not a CRD: {e}", file.display())
            });
            crds.push(crd);
        }
    }
    let mut names = Vec::new();
    for crd in &crds {
        names.push(apply_crd(client, crd).await);
    }
    names
}

/// Applies one CRD (server-side, forced) and waits until it is Established. Returns its name.
pub async fn apply_crd(client: &Client, crd: &CustomResourceDefinition) -> String {
    let name = crd
        .metadata
        .name
        .clone()
        .expect("a CustomResourceDefinition has a name");
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(crd),
    )
    .await
    .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
    wait_crd_established(client, &name).await;
    name
}

/// Waits until the named CRD has condition Established=True, failing after [`CRD_ESTABLISHED_DEADLINE`].
pub async fn wait_crd_established(client: &Client, name: &str) {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    tokio::time::timeout(
        CRD_ESTABLISHED_DEADLINE,
        await_condition(api, name, conditions::is_crd_established()),
    )
    .await
    .unwrap_or_else(|_| panic!("CRD {name} not Established within {CRD_ESTABLISHED_DEADLINE:?}"))
    .unwrap_or_else(|e| panic!("watching CRD {name}: {e}"));
}
