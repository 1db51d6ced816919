//! The committed CRD YAML is what the Rust types generate, documents every field, and installs on a
//! real API server without a warning.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod support;

use blaxel_operator::crd;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// `crds/blaxel.ai.yaml` is current: regenerate it with `cargo run -- crds > crds/blaxel.ai.yaml`.
#[test]
fn committed_crds_are_current() {
    let generated = crd::to_yaml(&crd::all()).unwrap_or_default();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/blaxel.ai.yaml"))
            .unwrap_or_default();
    assert!(!generated.is_empty());
    assert!(
        generated == committed,
        "crds/blaxel.ai.yaml is stale: run `cargo run -- crds > crds/blaxel.ai.yaml` and commit it"
    );
}

/// Every field of both kinds carries a description, so `kubectl explain` documents it.
#[test]
fn every_field_is_documented() {
    fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
            for (name, sub) in props {
                let here = format!("{path}.{name}");
                if sub.get("description").is_none()
                    && name != "apiVersion"
                    && name != "kind"
                    && name != "metadata"
                {
                    missing.push(here.clone());
                }
                walk(&here, sub, missing);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(&format!("{path}[]"), items, missing);
        }
    }
    let mut missing = Vec::new();
    for c in crd::all() {
        let v = serde_json::to_value(&c).unwrap_or_default();
        let schema = &v["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        walk(&c.spec.names.kind, schema, &mut missing);
    }
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:?}"
    );
}

/// The CRDs as users install them: the committed file, parsed.
fn committed_crds() -> Vec<CustomResourceDefinition> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/blaxel.ai.yaml"))
        .unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| <CustomResourceDefinition as serde::Deserialize>::deserialize(doc).unwrap())
        .collect()
}

/// The `Warning` headers the API server answers when `crd` is created (dry run, in a group of its own
/// so the CRD is new whatever the cluster holds: warnings about formats are given for new ones only).
async fn create_warnings(client: &kube::Client, crd: &CustomResourceDefinition) -> Vec<String> {
    let mut crd = crd.clone();
    let group = format!("w{:08x}.{}", rand::random::<u32>(), crd.spec.group);
    crd.metadata.name = Some(format!("{}.{group}", crd.spec.names.plural));
    crd.spec.group = group;
    let request = http::Request::post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?dryRun=All&fieldValidation=Strict",
    )
    .header("Content-Type", "application/json")
    .body(kube::client::Body::from(serde_json::to_vec(&crd).unwrap()))
    .unwrap();
    let response = client.send(request).await.unwrap();
    let status = response.status();
    let warnings: Vec<String> = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let body = response.into_body().collect_bytes().await.unwrap();
    assert!(
        status.is_success(),
        "creating {} (dry run) answered {status}: {}",
        crd.spec.names.kind,
        String::from_utf8_lossy(&body)
    );
    warnings
}

/// `kubectl apply -f crds/` prints no warning: the API server recognises every format and field.
#[tokio::test]
async fn committed_crds_install_without_warnings() {
    let client = support::kube::client().await;
    let crds = committed_crds();
    assert_eq!(crds.len(), blaxel_operator::crd::all().len());
    for crd in &crds {
        assert_eq!(crd::unrecognized_formats(crd), Vec::<String>::new());
        let warnings = create_warnings(&client, crd).await;
        assert!(
            warnings.is_empty(),
            "{}: the API server warned: {warnings:?}",
            crd.spec.names.kind
        );
    }
}

/// The warning check can fail: a format the API server does not know (what schemars writes for a
/// `u32`) comes back as a warning.
#[tokio::test]
async fn an_unknown_format_is_reported_as_a_warning() {
    let client = support::kube::client().await;
    let mut value = serde_json::to_value(&committed_crds()[0]).unwrap();
    value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["workspace"]["format"] = "uint32".into();
    let crd: CustomResourceDefinition = serde_json::from_value(value).unwrap();
    assert_eq!(crd::unrecognized_formats(&crd), vec!["uint32".to_owned()]);
    let warnings = create_warnings(&client, &crd).await;
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unrecognized format") && w.contains("uint32")),
        "{warnings:?}"
    );
}
