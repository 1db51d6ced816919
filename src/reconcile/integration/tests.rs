//! The IntegrationConnection driver's branches against a fake Blaxel and a fake Kubernetes API
//! ([`crate::reconcile::testing`]): the Secret's values go out only in the write that carries them,
//! once per change, and are recorded only as a digest.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::{apply, cleanup};
use crate::blaxel::ApiError;
use crate::blaxel::model::{ConnectionMetadata, IntegrationConnection as RemoteConnection};
use crate::crd::IntegrationConnection;
use crate::reconcile::Error;
use crate::reconcile::testing::{self, Harness, cached, deleting, scope};

type Run = Harness<IntegrationConnection>;

const VALUE: &str = "sk-the-secret-value";

/// The `llm` connection object, `extra` laid over its spec (workspace acme, Secret `llm-secret`).
fn object(extra: &Value, status: Option<Value>) -> Value {
    let mut spec = json!({"workspace": "acme", "integration": "openai",
                          "secretRef": {"name": "llm-secret"}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    testing::object("IntegrationConnection", "llm", &spec, status, 1)
}

fn secret(value: &str) -> Value {
    let encoded = serde_json::to_value(k8s_openapi::ByteString(value.as_bytes().to_vec())).unwrap();
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "llm-secret", "namespace": "team-a"},
           "data": {"apiKey": encoded}})
}

/// A world with the Secret holding `VALUE`.
fn run(obj: &Value) -> Run {
    let r: Run = Harness::new(obj, 10);
    r.kube.put_secret(secret(VALUE));
    r
}

async fn pass(r: &Run) -> Result<Action, Error> {
    apply(&r.obj, &r.ctx, &scope()).await
}

/// The next pass of `r`'s object, starting from the status its last pass wrote (same digest key).
fn settle(r: &mut Run) {
    r.obj = cached(&object(&json!({}), Some(r.kube.status())));
}

fn sent_value(r: &Run) -> Option<String> {
    let connection = r.api.connection("llm")?;
    let secret = connection.spec.secret?;
    Some(secret.get("apiKey")?.expose().to_owned())
}

/// A new connection is created carrying the Secret's values, its models counted; the status records a
/// digest, never the value, and says it was not adopted.
#[tokio::test]
async fn a_connection_is_created_with_the_secrets_values() {
    let r = run(&object(&json!({}), None));
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.calls(),
        [
            "list_connections",
            "create_connection llm",
            "count_models llm"
        ]
    );
    assert_eq!(sent_value(&r).as_deref(), Some(VALUE));
    let status = r.kube.status();
    assert!(
        status["secretDigest"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_eq!(status["models"], 3);
    assert_eq!(status["adopted"], false);
    assert!(!status.to_string().contains(VALUE));
    assert_eq!(r.kube.events(), ["Normal:Created"]);
}

/// The values are sent again only when the Secret changes: a pass on the same values writes nothing
/// (Blaxel never shows them back), a rotated value is one update.
#[tokio::test]
async fn values_are_sent_once_per_change() {
    let mut r = run(&object(&json!({}), None));
    pass(&r).await.unwrap();
    settle(&mut r);
    pass(&r).await.unwrap();
    assert_eq!(r.api.writes(), ["create_connection llm"]);
    assert_eq!(r.api.count("count_models"), 2);

    r.kube.put_secret(secret("sk-rotated"));
    pass(&r).await.unwrap();
    assert_eq!(r.api.count("update_connection"), 1);
    assert_eq!(sent_value(&r).as_deref(), Some("sk-rotated"));
}

/// A missing Secret stalls before any call to Blaxel, with a Warning Event.
#[tokio::test]
async fn a_missing_secret_sends_nothing() {
    let r: Run = Harness::new(&object(&json!({}), None), 10);
    pass(&r).await.unwrap();
    assert!(r.api.calls().is_empty());
    assert_eq!(
        r.kube.condition("Stalled"),
        ("True".into(), "SecretNotFound".into())
    );
    assert_eq!(r.kube.events(), ["Warning:SecretNotFound"]);
}

/// A connection already in Blaxel before this object wrote anything is adopted, with one update that
/// carries the values.
#[tokio::test]
async fn an_existing_connection_is_adopted_with_the_values() {
    let r = run(&object(&json!({}), None));
    r.api.connections.lock().unwrap().insert(
        "llm".into(),
        RemoteConnection {
            metadata: ConnectionMetadata {
                name: "llm".into(),
                ..ConnectionMetadata::default()
            },
            ..RemoteConnection::default()
        },
    );
    pass(&r).await.unwrap();
    assert_eq!(r.api.writes(), ["update_connection llm"]);
    assert_eq!(sent_value(&r).as_deref(), Some(VALUE));
    assert_eq!(r.kube.status()["adopted"], true);
}

/// A create whose answer was lost (the connection was made) counts the values as sent: the next pass
/// lists again, finds it, and neither writes it again nor calls it adopted.
#[tokio::test]
async fn a_lost_create_is_not_written_again_nor_adopted() {
    let mut r = run(&object(&json!({}), None));
    r.api.meanwhile("create_connection", |api| {
        let mut made = RemoteConnection::default();
        made.metadata.name = "llm".into();
        api.connections.lock().unwrap().insert("llm".into(), made);
    });
    r.api.fail_next(
        "create_connection",
        ApiError::Unavailable {
            message: "connection reset".into(),
            retry_after: None,
        },
    );
    let err = pass(&r).await.unwrap_err();
    assert!(matches!(err, Error::Remote(_)), "{err}");
    settle(&mut r);
    pass(&r).await.unwrap();
    assert_eq!(r.api.count("list_connections"), 2, "{:?}", r.api.calls());
    assert_eq!(r.api.writes(), ["create_connection llm"]);
    assert_eq!(r.kube.status()["adopted"], false);
}

/// Deletion with `Delete` deletes the connection (already gone counts as deleted); `Orphan` makes no
/// call.
#[tokio::test]
async fn deletion_deletes_per_policy() {
    let status = json!({"observedGeneration": 1, "secretDigest": "hmac-sha256:00"});
    for (policy, present, writes) in [
        ("Delete", true, vec!["delete_connection llm"]),
        ("Delete", false, vec!["delete_connection llm"]),
        ("Orphan", true, vec![]),
    ] {
        let obj = deleting(object(
            &json!({"deletionPolicy": policy}),
            Some(status.clone()),
        ));
        let r = run(&obj);
        if present {
            let mut there = RemoteConnection::default();
            there.metadata.name = "llm".into();
            r.api
                .connections
                .lock()
                .unwrap()
                .insert("llm".into(), there);
        }
        assert_eq!(
            cleanup(&r.obj, &r.ctx).await.unwrap(),
            Action::await_change()
        );
        assert_eq!(r.api.writes(), writes, "{policy}, present: {present}");
        assert!(r.api.connection("llm").is_none() || policy == "Orphan");
    }
}
