//! What the operator relies on from a Kubernetes API server, checked against the server the tests run on
//! (the project's local API server, or the cluster in `BLAXEL_TEST_KUBECONFIG`). If one of these fails on the local
//! server, tests built on it would prove nothing about a real cluster.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, ObjectReference, Secret};
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::events::{Event as RecorderEvent, EventType, Recorder, Reporter};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Client, CustomResource, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::kube as k;

/// Deadline for anything the tests wait on.
const DEADLINE: Duration = Duration::from_secs(30);

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.conformance.blaxel.test
spec:
  group: conformance.blaxel.test
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [email, role]
            x-kubernetes-validations:
            - rule: "self.role in ['admin', 'member']"
              message: "role must be one of admin, member"
            properties:
              email:
                type: string
                x-kubernetes-validations:
                - rule: "self == oldSelf"
                  message: "email is immutable"
              role: {type: string}
              size: {type: integer}
          status:
            type: object
            properties:
              phase: {type: string}
              observedGeneration: {type: integer, format: int64}
"#;

/// The test resource, matching `WIDGET_CRD` (which is hand-written to carry the CEL rules).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "conformance.blaxel.test",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
#[serde(rename_all = "camelCase")]
struct WidgetSpec {
    email: String,
    role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    observed_generation: Option<i64>,
}

/// Installs the Widget CRD through `install_crds` (from a directory, as the operator's CRDs will be).
async fn widget_api(client: &Client, ns: &str) -> Api<Widget> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("widget.yaml"), WIDGET_CRD).unwrap();
    let names = k::install_crds(client, dir.path()).await;
    assert_eq!(names, ["widgets.conformance.blaxel.test"]);
    Api::namespaced(client.clone(), ns)
}

fn widget(name: &str, role: &str) -> Widget {
    Widget::new(
        name,
        WidgetSpec {
            email: format!("{name}@example.com"),
            role: role.to_owned(),
            size: None,
        },
    )
}

fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn status_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The operator's client (`blaxel_operator::kube_client`, which the test clients share) multiplexes its
/// requests over HTTP/2, as client-go does; kube's own stack would open a connection per request in flight.
#[tokio::test]
async fn client_speaks_http2() {
    let client = k::client().await;
    let request = http::Request::get("/version")
        .body(kube::client::Body::empty())
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
}

/// A CRD from a YAML directory becomes Established and its group is discoverable.
#[tokio::test]
async fn crd_installs_established_and_discoverable() {
    let client = k::client().await;
    let ns = k::fresh_namespace(&client).await;
    let _ = widget_api(&client, &ns).await;
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get("widgets.conformance.blaxel.test")
        .await
        .unwrap();
    let established = crd
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established);
    let discovery = kube::Discovery::new(client)
        .filter(&["conformance.blaxel.test"])
        .run()
        .await
        .unwrap();
    let kinds: Vec<String> = discovery
        .groups()
        .flat_map(kube::discovery::ApiGroup::recommended_resources)
        .map(|(ar, _)| ar.kind)
        .collect();
    assert_eq!(kinds, ["Widget"]);
}

/// kube-rs discovery of the whole server finds the core kinds the operator uses, in their groups.
#[tokio::test]
async fn discovery_lists_core_kinds() {
    let client = k::client().await;
    let discovery = kube::Discovery::new(client).run().await.unwrap();
    let mut found: Vec<String> = discovery
        .groups()
        .flat_map(kube::discovery::ApiGroup::recommended_resources)
        .map(|(ar, _)| format!("{}/{}", ar.api_version, ar.kind))
        .collect();
    found.sort();
    for expected in [
        "v1/Secret",
        "v1/Namespace",
        "v1/ConfigMap",
        "coordination.k8s.io/v1/Lease",
        "events.k8s.io/v1/Event",
        "apiextensions.k8s.io/v1/CustomResourceDefinition",
    ] {
        assert!(
            found.iter().any(|f| f == expected),
            "{expected} not in {found:?}"
        );
    }
}

/// Create, get and list by label return server-populated metadata (uid, resourceVersion, generation).
#[tokio::test]
async fn create_get_list_carry_server_metadata() {
    let client = k::client().await;
    let ns = k::fresh_namespace(&client).await;
    let api = widget_api(&client, &ns).await;
    let mut w = widget("alpha", "admin");
    w.metadata.labels = Some(BTreeMap::from([(
        "app".to_owned(),
        "conformance".to_owned(),
    )]));
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.resource_version.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    api.create(&PostParams::default(), &widget("beta", "member"))
        .await
        .unwrap();

    let got = api.get("alpha").await.unwrap();
    assert_eq!(got.spec, w.spec);
    let listed = api
        .list(&ListParams::default().labels("app=conformance"))
        .await
        .unwrap();
    let names: Vec<String> = listed.items.iter().map(ResourceExt::name_any).collect();
    assert_eq!(names, ["alpha"]);
    let err = api.get("missing").await.unwrap_err();
    assert_eq!(status_code(&err), Some(404));
    let err = api
        .create(&PostParams::default(), &widget("alpha", "admin"))
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(409));
}

/// A streaming-list watch ends its initial events with a bookmark, and the watcher then sees new objects.
#[tokio::test]
async fn watch_streams_with_bookmarks() {
    let client = k::client().await;
    let ns = k::fresh_namespace(&client).await;
    let api = widget_api(&client, &ns).await;
    api.create(&PostParams::default(), &widget("existing", "admin"))
        .await
        .unwrap();

    // Raw watch: the initial object, then the "initial-events-end" bookmark.
    let stream = api
        .watch(&WatchParams::streaming_lists().timeout(20), "")
        .await
        .unwrap();
    let mut stream = std::pin::pin!(stream);
    let mut saw_existing = false;
    let bookmark = tokio::time::timeout(DEADLINE, async {
        while let Some(ev) = stream.try_next().await.unwrap() {
            match ev {
                WatchEvent::Added(w) => saw_existing |= w.name_any() == "existing",
                WatchEvent::Bookmark(b) => return b,
                other => panic!("unexpected event before the bookmark: {other:?}"),
            }
        }
        panic!("watch ended without a bookmark");
    })
    .await
    .expect("bookmark within the deadline");
    assert!(saw_existing);
    assert_eq!(
        bookmark
            .metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str),
        Some("true")
    );

    // kube-runtime's watcher with streaming lists (which relies on that bookmark), then a live event.
    let events = watcher(
        api.clone(),
        watcher::Config::default().streaming_lists().timeout(20),
    );
    let mut events = std::pin::pin!(events);
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let watcher::Event::InitDone = events.try_next().await.unwrap().unwrap() {
                break;
            }
        }
    })
    .await
    .expect("watcher init within the deadline");
    api.create(&PostParams::default(), &widget("fresh", "member"))
        .await
        .unwrap();
    let seen = tokio::time::timeout(DEADLINE, async {
        loop {
            if let watcher::Event::Apply(w) = events.try_next().await.unwrap().unwrap() {
                return w;
            }
        }
    })
    .await
    .expect("live event within the deadline");
    assert_eq!(seen.name_any(), "fresh");
}

/// Server-side apply works on spec and on the status subresource; status writes do not bump generation,
/// and a second manager's conflicting apply is refused with 409.
#[tokio::test]
async fn server_side_apply_on_spec_and_status() {
    let client = k::client().await;
    let ns = k::fresh_namespace(&client).await;
    let api = widget_api(&client, &ns).await;
    let pp = PatchParams::apply("conformance-owner");
    let applied = api
        .patch(
            "gamma",
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "conformance.blaxel.test/v1", "kind": "Widget", "metadata": {"name": "gamma"},
                "spec": {"email": "g@example.com", "role": "admin", "size": 1}
            })),
        )
        .await
        .unwrap();
    assert_eq!(applied.metadata.generation, Some(1));
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"conformance-owner".to_owned()),
        "{managers:?}"
    );

    let with_status = api
        .patch_status(
            "gamma",
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "conformance.blaxel.test/v1", "kind": "Widget", "metadata": {"name": "gamma"},
                "status": {"phase": "Ready", "observedGeneration": 1}
            })),
        )
        .await
        .unwrap();
    assert_eq!(with_status.status.unwrap().phase.as_deref(), Some("Ready"));
    assert_eq!(with_status.metadata.generation, Some(1));

    // Status through the main resource is ignored when the status subresource is enabled.
    let ignored = api
        .patch(
            "gamma",
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "conformance.blaxel.test/v1", "kind": "Widget", "metadata": {"name": "gamma"},
                "spec": {"email": "g@example.com", "role": "admin", "size": 2},
                "status": {"phase": "Hacked"}
            })),
        )
        .await
        .unwrap();
    assert_eq!(ignored.metadata.generation, Some(2));
    assert_eq!(ignored.status.unwrap().phase.as_deref(), Some("Ready"));

    let err = api
        .patch(
            "gamma",
            &PatchParams::apply("conformance-intruder"),
            &Patch::Apply(json!({
                "apiVersion": "conformance.blaxel.test/v1", "kind": "Widget", "metadata": {"name": "gamma"},
                "spec": {"email": "g@example.com", "role": "member"}
            })),
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(409), "{err}");
}

/// An object with a finalizer survives delete with a deletionTimestamp, and goes once the finalizer is removed.
#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let client = k::client().await;
    let ns = k::fresh_namespace(&client).await;
    let api = widget_api(&client, &ns).await;
    let mut w = widget("held", "admin");
    w.metadata.finalizers = Some(vec!["conformance.blaxel.test/cleanup".to_owned()]);
    api.create(&PostParams::default(), &w).await.unwrap();

    api.delete("held", &DeleteParams::default()).await.unwrap();
    let still = api.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    assert_eq!(
        still.metadata.finalizers.as_deref(),
        Some(&["conformance.blaxel.test/cleanup".to_owned()][..])
    );

    // The same JSON patch kube-runtime's finalizer() helper sends: test the list, then remove the entry.
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": ["conformance.blaxel.test/cleanup"]},
        {"op": "remove", "path": "/metadata/finalizers/0"}
    ]))
    .unwrap();
    api.patch("held", &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .unwrap();
    let uid = still.metadata.uid.unwrap();
    tokio::time::timeout(
        DEADLINE,
        await_condition(api.clone(), "held", conditions::is_deleted(&uid)),
    )
    .await
    .expect("deleted within the deadline")
    .unwrap();
    assert_eq!(status_code(&api.get("held").await.unwrap_err()), Some(404));
}

/// CEL rules reject bad objects with 422 and the rule's message, including transition (immutability) rules.
#[tokio::test]
async fn cel_validation_rejects_with_message() {
    let client = k::client().await;
    let ns = k::fresh_namespace(&client).await;
    let api = widget_api(&client, &ns).await;
    let err = api
        .create(&PostParams::default(), &widget("bad", "owner"))
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(422), "{err}");
    assert!(
        status_message(&err).contains("role must be one of admin, member"),
        "{err}"
    );

    api.create(&PostParams::default(), &widget("good", "member"))
        .await
        .unwrap();
    let err = api
        .patch(
            "good",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"email": "other@example.com"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(422), "{err}");
    assert!(status_message(&err).contains("email is immutable"), "{err}");
}

/// Secrets round-trip: stringData becomes data, type defaults to Opaque.
#[tokio::test]
async fn secret_create_and_read() {
    let client = k::client().await;
    let ns = k::fresh_namespace(&client).await;
    let api = Api::<Secret>::namespaced(client, &ns);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("credentials".to_owned()),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([("apiKey".to_owned(), "s3cr3t".to_owned())])),
        ..Secret::default()
    };
    api.create(&PostParams::default(), &secret).await.unwrap();
    let read = api.get("credentials").await.unwrap();
    assert_eq!(read.type_.as_deref(), Some("Opaque"));
    let data = read.data.unwrap();
    assert_eq!(
        data.get("apiKey").map(|b| b.0.as_slice()),
        Some(&b"s3cr3t"[..])
    );
    assert!(read.string_data.is_none());
}

/// A watcher on Secrets (how the operator notices credential changes) sees a server-side applied change.
#[tokio::test]
async fn secret_watch_sees_server_side_apply() {
    let client = k::client().await;
    let ns = k::fresh_namespace(&client).await;
    let api = Api::<Secret>::namespaced(client, &ns);
    let events = watcher(api.clone(), watcher::Config::default());
    let mut events = std::pin::pin!(events);
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let watcher::Event::InitDone = events.try_next().await.unwrap().unwrap() {
                break;
            }
        }
    })
    .await
    .expect("watcher init within the deadline");

    let apply = |value: &str| {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "rotating"},
            "stringData": {"apiKey": value}
        })
    };
    let pp = PatchParams::apply("conformance-owner");
    api.patch("rotating", &pp, &Patch::Apply(apply("one")))
        .await
        .unwrap();
    api.patch("rotating", &pp, &Patch::Apply(apply("two")))
        .await
        .unwrap();
    let rotated = tokio::time::timeout(DEADLINE, async {
        loop {
            if let watcher::Event::Apply(s) = events.try_next().await.unwrap().unwrap() {
                let key = s
                    .data
                    .as_ref()
                    .and_then(|d| d.get("apiKey"))
                    .map(|b| b.0.clone());
                if key.as_deref() == Some(&b"two"[..]) {
                    return s;
                }
            }
        }
    })
    .await
    .expect("the rotated secret within the deadline");
    assert_eq!(rotated.name_any(), "rotating");
}

/// kube-runtime's Recorder publishes events.k8s.io/v1 Events (and repeats as a series); core/v1 Events
/// can be created and are the same objects seen through the other version.
#[tokio::test]
async fn events_via_recorder_and_core_v1() {
    let client = k::client().await;
    let ns = k::fresh_namespace(&client).await;
    let subject = Api::<Namespace>::all(client.clone())
        .get(&ns)
        .await
        .unwrap();
    let mut reference: ObjectReference = subject.object_ref(&());
    // Events about a cluster-scoped object go to the namespace the reference names.
    reference.namespace = Some(ns.clone());
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "blaxel-operator-tests".to_owned(),
            instance: None,
        },
    );
    let ev = RecorderEvent {
        type_: EventType::Warning,
        reason: "ConformanceCheck".to_owned(),
        note: Some("recorded by the conformance test".to_owned()),
        action: "Check".to_owned(),
        secondary: None,
    };
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &reference).await.unwrap();

    let events = Api::<EventsV1Event>::namespaced(client.clone(), &ns);
    let list = events.list(&ListParams::default()).await.unwrap();
    let published = list
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("ConformanceCheck"))
        .expect("the recorded event");
    assert_eq!(
        published.note.as_deref(),
        Some("recorded by the conformance test")
    );
    assert_eq!(published.series.as_ref().map(|s| s.count), Some(2));

    let core = Api::<CoreEvent>::namespaced(client.clone(), &ns);
    let same = core.get(&published.name_any()).await.unwrap();
    assert_eq!(
        same.message.as_deref(),
        Some("recorded by the conformance test")
    );
    assert_eq!(same.involved_object.name.as_deref(), Some(ns.as_str()));

    let direct = CoreEvent {
        metadata: ObjectMeta {
            name: Some("direct".to_owned()),
            ..ObjectMeta::default()
        },
        involved_object: reference,
        reason: Some("Direct".to_owned()),
        message: Some("core v1 event".to_owned()),
        type_: Some("Normal".to_owned()),
        ..CoreEvent::default()
    };
    core.create(&PostParams::default(), &direct).await.unwrap();
    let via_events = events.get("direct").await.unwrap();
    assert_eq!(via_events.note.as_deref(), Some("core v1 event"));
}

/// Leases support compare-and-swap: a replace with a stale resourceVersion is refused with 409.
#[tokio::test]
async fn lease_compare_and_swap() {
    let client = k::client().await;
    let ns = k::fresh_namespace(&client).await;
    let api = Api::<Lease>::namespaced(client, &ns);
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("leader".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("a".to_owned()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }),
    };
    let created = api.create(&PostParams::default(), &lease).await.unwrap();

    let mut take = created.clone();
    take.spec.as_mut().unwrap().holder_identity = Some("b".to_owned());
    let taken = api
        .replace("leader", &PostParams::default(), &take)
        .await
        .unwrap();
    assert_ne!(
        taken.metadata.resource_version,
        created.metadata.resource_version
    );

    let mut stale = created;
    stale.spec.as_mut().unwrap().holder_identity = Some("c".to_owned());
    let err = api
        .replace("leader", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(409), "{err}");
    let now = api.get("leader").await.unwrap();
    assert_eq!(now.spec.unwrap().holder_identity.as_deref(), Some("b"));
}

/// kubectl works against the written kubeconfig: namespaces, and secrets and leases in api-resources.
#[tokio::test]
async fn kubectl_round_trip() {
    let cluster = k::cluster().await;
    let Some(kubeconfig) = cluster.kubeconfig_path() else {
        panic!("no kubeconfig file to give kubectl");
    };
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let namespaces = kubectl(&["get", "namespaces", "-o", "name"]);
    assert!(
        namespaces.lines().any(|l| l == "namespace/default"),
        "{namespaces}"
    );
    let resources = kubectl(&["api-resources", "-o", "name"]);
    let names: Vec<&str> = resources.lines().collect();
    assert!(names.contains(&"secrets"), "{resources}");
    assert!(names.contains(&"leases.coordination.k8s.io"), "{resources}");
}
