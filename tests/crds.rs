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

// --- Offline validation (src/validation) against the API server ---------------------------------

/// One object of the corpus: created on the server (dry run), or, with `old`, an update of `old`
/// (created for real first).
struct Case {
    what: &'static str,
    obj: serde_json::Value,
    old: Option<serde_json::Value>,
}

/// A manifest of `kind` named `name`: `spec` merged (JSON merge patch) over a valid spec of the kind.
fn manifest(kind: &str, name: &str, spec: &serde_json::Value) -> serde_json::Value {
    let mut base = match kind {
        "WorkspaceMember" => serde_json::json!({"email": "alice@example.com", "workspace": "ws"}),
        "Sandbox" => serde_json::json!({"image": "blaxel/base-image:latest", "workspace": "ws"}),
        "IntegrationConnection" => {
            serde_json::json!({"integration": "openai", "workspace": "ws", "secretRef": {"name": "s"}})
        }
        "SandboxPreview" => serde_json::json!({"port": 8080, "sandboxRef": {"name": "box"}}),
        _ => serde_json::json!({}),
    };
    json_patch::merge(&mut base, spec);
    serde_json::json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": kind, "metadata": {"name": name},
                       "spec": base})
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "the case lists read better without a & before each json!"
)]
fn create(what: &'static str, kind: &str, spec: serde_json::Value) -> Case {
    Case {
        what,
        obj: manifest(kind, "obj", &spec),
        old: None,
    }
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "the case lists read better without a & before each json!"
)]
fn update(what: &'static str, kind: &str, old: serde_json::Value, new: serde_json::Value) -> Case {
    Case {
        what,
        obj: manifest(kind, "obj", &new),
        old: Some(manifest(kind, "obj", &old)),
    }
}

/// `case` with these fields of its spec explicitly null (a merge patch would remove them).
fn with_nulls(mut case: Case, fields: &[&str]) -> Case {
    for field in fields {
        case.obj["spec"][*field] = serde_json::Value::Null;
    }
    case
}

/// Environment variables: names once each, a value or a Secret key, not both.
fn env_cases() -> Vec<Case> {
    use serde_json::json;
    vec![
        create(
            "an env name given twice",
            "Sandbox",
            json!({"envs": [
                {"name": "K", "valueFrom": {"secretKeyRef": {"name": "db", "key": "a"}}},
                {"name": "K", "value": "b"},
            ]}),
        ),
        create(
            "an env with value and valueFrom",
            "Sandbox",
            json!({"envs": [{"name": "K", "value": "v", "valueFrom": {"secretKeyRef": {"name": "db", "key": "a"}}}]}),
        ),
    ]
}

/// Schema checks: types, bounds, lengths, patterns, enums, lists, required, nulls, defaults.
fn schema_cases() -> Vec<Case> {
    use serde_json::json;
    vec![
        create(
            "a valid sandbox",
            "Sandbox",
            json!({"ports": [{"target": 80, "protocol": "HTTP"}], "memory": 2048}),
        ),
        create(
            "port above its maximum",
            "SandboxPreview",
            json!({"port": 70000}),
        ),
        create(
            "port below its minimum",
            "SandboxPreview",
            json!({"port": 0}),
        ),
        create(
            "port past int32",
            "SandboxPreview",
            json!({"port": 3_000_000_000_i64}),
        ),
        create("port as a string", "SandboxPreview", json!({"port": "80"})),
        create(
            "port as a fraction",
            "SandboxPreview",
            json!({"port": 80.5}),
        ),
        create(
            "port as a whole float",
            "SandboxPreview",
            json!({"port": 80.0}),
        ),
        create("memory as a huge float", "Sandbox", json!({"memory": 1e20})),
        create("an empty image", "Sandbox", json!({"image": ""})),
        create(
            "a name too long and not matching",
            "Sandbox",
            json!({"sandboxName": "A".repeat(70)}),
        ),
        create(
            "a sandbox name not matching",
            "Sandbox",
            json!({"sandboxName": "Box"}),
        ),
        create(
            "a ttl not matching",
            "Sandbox",
            json!({"ttl": "5x", "region": ""}),
        ),
        create(
            "a state not in the enum",
            "Sandbox",
            json!({"state": "Paused", "deletionPolicy": "Keep"}),
        ),
        create(
            "a protocol that is null",
            "Sandbox",
            json!({"ports": [{"target": 1}, {"target": 2, "protocol": null}]}),
        ),
        create("a null list element", "Sandbox", json!({"envs": [null]})),
        create(
            "too many ports",
            "Sandbox",
            json!({"ports": (1..=33).map(|p| json!({"target": p})).collect::<Vec<_>>()}),
        ),
        create(
            "an env value of the wrong type",
            "Sandbox",
            json!({"envs": [{"name": "", "value": 1}], "labels": {"x": 5}}),
        ),
        create(
            "a required field missing",
            "SandboxPreview",
            json!({"sandboxRef": {"name": null}}),
        ),
        with_nulls(
            create("nullable fields null", "Sandbox", json!({})),
            &["region", "ttl", "envs"],
        ),
        create(
            "no namespaces",
            "Workspace",
            json!({"members": {"namespaces": [], "maxRemovals": 1001}}),
        ),
        create(
            "a role not in the enum",
            "WorkspaceMember",
            json!({"role": "owner"}),
        ),
        create(
            "an integration name too long",
            "IntegrationConnection",
            json!({"integration": "x".repeat(64)}),
        ),
    ]
}

/// Every CEL rule of the CRDs, failing (and some passing).
fn rule_cases() -> Vec<Case> {
    use serde_json::json;
    vec![
        create(
            "a member e-mail in upper case",
            "WorkspaceMember",
            json!({"email": "Alice@Example.com"}),
        ),
        create(
            "a member workspace name",
            "WorkspaceMember",
            json!({"workspace": "My_WS"}),
        ),
        create(
            "a sandbox workspace name",
            "Sandbox",
            json!({"workspace": "-ws"}),
        ),
        create(
            "protected e-mails",
            "Workspace",
            json!({"members": {"protected": ["bob@example.com", "Bob @x.y"]}}),
        ),
        create(
            "a workspace name",
            "Workspace",
            json!({"workspaceName": "WS"}),
        ),
        create(
            "an integration workspace name",
            "IntegrationConnection",
            json!({"workspace": "ws_1"}),
        ),
        create(
            "a public preview with a token",
            "SandboxPreview",
            json!({"public": true, "token": {}}),
        ),
        with_nulls(
            create(
                "a public preview, token null",
                "SandboxPreview",
                json!({"public": true}),
            ),
            &["token"],
        ),
        with_nulls(
            create("a port that is null", "SandboxPreview", json!({})),
            &["port"],
        ),
        create(
            "a token lifetime not a duration",
            "SandboxPreview",
            json!({"token": {"lifetime": "1d"}}),
        ),
        create(
            "a token lifetime too short",
            "SandboxPreview",
            json!({"token": {"lifetime": "30s"}}),
        ),
        create(
            "a token lifetime with a plus",
            "SandboxPreview",
            json!({"token": {"lifetime": "+90m", "renewBefore": "1h"}}),
        ),
        create(
            "renewBefore not a duration",
            "SandboxPreview",
            json!({"token": {"renewBefore": "8 h"}}),
        ),
        create(
            "renewBefore past the default lifetime",
            "SandboxPreview",
            json!({"token": {"renewBefore": "25h"}}),
        ),
        create(
            "renewBefore zero",
            "SandboxPreview",
            json!({"token": {"lifetime": "2h", "renewBefore": "0s"}}),
        ),
        create(
            "a valid token",
            "SandboxPreview",
            json!({"token": {"lifetime": "90m", "renewBefore": "30m", "secretName": "t"}}),
        ),
        create(
            "a token secret name not matching",
            "SandboxPreview",
            json!({"token": {"secretName": "T"}}),
        ),
    ]
}

/// Transition rules: updates from an old object.
fn update_cases() -> Vec<Case> {
    use serde_json::json;
    vec![
        update(
            "email changed",
            "WorkspaceMember",
            json!({}),
            json!({"email": "bob@example.com"}),
        ),
        update(
            "member workspace changed",
            "WorkspaceMember",
            json!({}),
            json!({"workspace": "other"}),
        ),
        update(
            "sandbox name changed",
            "Sandbox",
            json!({"sandboxName": "a"}),
            json!({"sandboxName": "b"}),
        ),
        update(
            "sandbox name removed",
            "Sandbox",
            json!({"sandboxName": "a"}),
            json!({"sandboxName": null}),
        ),
        update(
            "sandbox workspace changed, image too",
            "Sandbox",
            json!({}),
            json!({"workspace": "w2", "image": "x"}),
        ),
        update(
            "workspace name added",
            "Workspace",
            json!({}),
            json!({"workspaceName": "ws"}),
        ),
        update(
            "workspace name changed",
            "Workspace",
            json!({"workspaceName": "a"}),
            json!({"workspaceName": "b"}),
        ),
        update(
            "connection name added",
            "IntegrationConnection",
            json!({}),
            json!({"connectionName": "c"}),
        ),
        update(
            "connection renamed",
            "IntegrationConnection",
            json!({"connectionName": "c"}),
            json!({"connectionName": "d"}),
        ),
        update(
            "integration changed",
            "IntegrationConnection",
            json!({}),
            json!({"integration": "x", "workspace": "w2"}),
        ),
        update(
            "preview name added",
            "SandboxPreview",
            json!({}),
            json!({"previewName": "p"}),
        ),
        update(
            "preview renamed",
            "SandboxPreview",
            json!({"previewName": "p"}),
            json!({"previewName": "q"}),
        ),
        update(
            "sandbox ref changed",
            "SandboxPreview",
            json!({}),
            json!({"sandboxRef": {"name": "other"}}),
        ),
        update(
            "an unchanged update",
            "Sandbox",
            json!({"sandboxName": "a"}),
            json!({"sandboxName": "a", "memory": 512}),
        ),
    ]
}

/// What the decoder refuses (unknown fields, a name of the wrong type), and metadata checks.
fn decoding_cases() -> Vec<Case> {
    use serde_json::json;
    let mut bad_name = manifest("Sandbox", "Box_1", &json!({}));
    bad_name["metadata"]["labels"] = json!({"app": "a b", "a/b/c": "x"});
    let mut generated = manifest("Sandbox", "obj", &json!({}));
    generated["metadata"] = json!({"generateName": "box-"});
    let mut name_not_string = manifest("Sandbox", "obj", &json!({}));
    name_not_string["metadata"]["name"] = json!(5);
    let mut unknown = manifest(
        "SandboxPreview",
        "obj",
        &json!({"foo": 1, "sandboxRef": {"bar": 2}, "port": 70000}),
    );
    unknown["metadata"]["nmae"] = json!("x");
    unknown["status"] = json!({"zzz": 1});
    vec![
        Case {
            what: "a bad name and labels",
            obj: bad_name,
            old: None,
        },
        Case {
            what: "a generated name",
            obj: generated,
            old: None,
        },
        Case {
            what: "a name that is no string",
            obj: name_not_string,
            old: None,
        },
        Case {
            what: "unknown fields",
            obj: unknown,
            old: None,
        },
    ]
}

/// What the server answered: `None` when it accepted the object, else its `Status` (code, message,
/// details.causes).
async fn answer(
    client: &kube::Client,
    method: &str,
    url: &str,
    body: &serde_json::Value,
) -> Option<serde_json::Value> {
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", "application/json")
        .body(kube::client::Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    let response = client.send(request).await.unwrap();
    let ok = response.status().is_success();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    let status: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    (!ok).then_some(status)
}

/// Runs one case on the server and offline, and returns what differs (empty when they agree).
///
/// What is compared: the verdict (accepted or refused); for a 422, the set of (`field`, `message`)
/// of the server's `details.causes` against the set of (`path`, `message`) of the offline errors,
/// compared as sets since the server lists them in Go's random map order (nothing else is
/// normalised), and its message's leading `Kind.group "name" is invalid`; for a 400 (decoding), the
/// whole message, word for word.
async fn compare(
    client: &kube::Client,
    validator: &blaxel_operator::validation::Validator,
    ns: &str,
    plural: &str,
    case: &Case,
) -> Vec<String> {
    use blaxel_operator::validation::Reason;
    let base = format!("/apis/blaxel.ai/v1alpha1/namespaces/{ns}/{plural}");
    let strict = "dryRun=All&fieldValidation=Strict";
    let (server, offline) = match &case.old {
        None => {
            let server = answer(client, "POST", &format!("{base}?{strict}"), &case.obj).await;
            (server, validator.validate(&case.obj, None))
        }
        Some(old) => {
            let mut old = old.clone();
            let name = format!("u{:08x}", rand::random::<u32>());
            old["metadata"]["name"] = name.clone().into();
            let created = answer(client, "POST", &base, &old).await;
            assert!(
                created.is_none(),
                "{}: creating the old object: {created:?}",
                case.what
            );
            let live = answer_get(client, &format!("{base}/{name}")).await;
            let mut obj = case.obj.clone();
            obj["metadata"]["name"] = name.clone().into();
            let offline = validator.validate(&obj, Some(&live));
            obj["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
            (
                answer(client, "PUT", &format!("{base}/{name}?{strict}"), &obj).await,
                offline,
            )
        }
    };
    let mut diffs = Vec::new();
    match (server, offline) {
        (None, Ok(())) => {}
        (None, Err(r)) => diffs.push(format!("server accepted, offline refused: {r}")),
        (Some(s), Ok(())) => diffs.push(format!(
            "server refused, offline accepted: {}",
            s["message"]
        )),
        (Some(s), Err(r)) => {
            let message = s["message"].as_str().unwrap_or_default();
            if s["code"] == 422 && r.reason == Reason::Invalid {
                let ours: std::collections::BTreeSet<(String, String)> = r
                    .errors
                    .iter()
                    .map(|e| (e.path.clone(), e.message.clone()))
                    .collect();
                let theirs: std::collections::BTreeSet<(String, String)> = s["details"]["causes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        (
                            c["field"].as_str().unwrap_or_default().to_owned(),
                            c["message"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                if ours != theirs {
                    diffs.push(format!(
                        "causes differ:\n  server:  {theirs:?}\n  offline: {ours:?}"
                    ));
                }
                let head = r.message.split(" is invalid").next().unwrap_or_default();
                if !message.starts_with(head) {
                    diffs.push(format!(
                        "message differs: server {message:?}, offline {:?}",
                        r.message
                    ));
                }
            } else if !(s["code"] == 400 && r.reason == Reason::BadRequest && r.message == message)
            {
                diffs.push(format!(
                    "server {} {message:?}, offline {:?} {:?}",
                    s["code"], r.reason, r.message
                ));
            }
        }
    }
    diffs
}

async fn answer_get(client: &kube::Client, url: &str) -> serde_json::Value {
    let request = http::Request::get(url)
        .body(kube::client::Body::empty())
        .unwrap();
    let bytes = client
        .send(request)
        .await
        .unwrap()
        .into_body()
        .collect_bytes()
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The offline validator gives the API server's verdict and messages on a corpus of good and bad
/// objects of every kind: every CEL rule, schema bounds, enums, patterns, nulls, unknown fields, a
/// bad name, and transition rules on updates.
#[tokio::test]
async fn offline_validation_agrees_with_the_api_server() {
    let client = support::kube::client().await;
    support::kube::install_crds(
        &client,
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/crds")),
    )
    .await;
    let ns = support::kube::fresh_namespace(&client).await;
    let crds = crd::all();
    let validator = blaxel_operator::validation::Validator::new(&crds).unwrap();
    let cases: Vec<Case> = schema_cases()
        .into_iter()
        .chain(env_cases())
        .chain(rule_cases())
        .chain(update_cases())
        .chain(decoding_cases())
        .collect();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let (mut failures, mut refused) = (Vec::new(), 0);
    for case in &cases {
        let kind = case.obj["kind"].as_str().unwrap();
        let plural = &crds
            .iter()
            .find(|c| c.spec.names.kind == kind)
            .unwrap()
            .spec
            .names
            .plural;
        refused += usize::from(validator.validate(&case.obj, case.old.as_ref()).is_err());
        for diff in compare(&client, &validator, &ns, plural, case).await {
            failures.push(format!("{} ({kind}): {diff}", case.what));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        refused > cases.len() / 2 && refused < cases.len(),
        "{refused} of {} refused",
        cases.len()
    );
}
