//! One passing and one failing case for each kind of check, against the operator's own CRDs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use super::*;
use serde_json::json;

fn validator() -> Validator {
    Validator::new(&crate::crd::all()).expect("our CRDs are supported")
}

fn preview(spec: &Value) -> Value {
    json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": "SandboxPreview",
           "metadata": {"name": "web"}, "spec": spec})
}

fn sandbox(spec: &Value) -> Value {
    json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": "Sandbox",
           "metadata": {"name": "box"}, "spec": spec})
}

/// The `path: message` of each error of a refused object.
fn errors(v: &Validator, obj: &Value, old: Option<&Value>) -> Vec<String> {
    match v.validate(obj, old) {
        Ok(()) => Vec::new(),
        Err(r) => r.errors.iter().map(ToString::to_string).collect(),
    }
}

const BLOCKED: &str = "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

#[test]
fn a_failure_reads_like_the_api_server() {
    let v = validator();
    let err = v
        .validate(
            &preview(&json!({"port": 70000, "sandboxRef": {"name": "s"}})),
            None,
        )
        .unwrap_err();
    assert_eq!(err.reason, Reason::Invalid);
    assert_eq!(
        err.to_string(),
        "SandboxPreview.blaxel.ai \"web\" is invalid: spec.port: Invalid value: 70000: spec.port in body should be less than or equal to 65535"
    );
    assert!(
        v.validate(
            &preview(&json!({"port": 8080, "sandboxRef": {"name": "s"}})),
            None
        )
        .is_ok()
    );
}

#[test]
fn unknown_fields_are_refused_before_validation() {
    let v = validator();
    let mut obj = preview(&json!({"port": 70000, "foo": 1, "sandboxRef": {"name": "s", "bar": 2}}));
    obj["metadata"]["nmae"] = json!("x");
    obj["status"] = json!({"zzz": 1});
    let err = v.validate(&obj, None).unwrap_err();
    assert_eq!(err.reason, Reason::BadRequest);
    assert_eq!(
        err.to_string(),
        "SandboxPreview in version \"v1alpha1\" cannot be handled as a SandboxPreview: strict decoding error: unknown field \"metadata.nmae\", unknown field \"spec.foo\", unknown field \"spec.sandboxRef.bar\", unknown field \"status.zzz\""
    );
    // A map under a field of another type is pruned too.
    let err = v.validate(
        &sandbox(&json!({"image": "i", "workspace": "w", "state": {"a": 1}})),
        None,
    );
    assert_eq!(err.unwrap_err().errors[0].path, "spec.state.a");
}

#[test]
fn metadata_must_decode_and_the_name_be_a_subdomain() {
    let v = validator();
    let mut obj = sandbox(&json!({"image": "i", "workspace": "w"}));
    obj["metadata"]["name"] = json!(5);
    assert_eq!(
        v.validate(&obj, None).unwrap_err().to_string(),
        "Sandbox in version \"v1alpha1\" cannot be handled as a Sandbox: json: cannot unmarshal number into Go struct field ObjectMeta.name of type string"
    );
    obj["metadata"]["name"] = json!("Box_1");
    assert_eq!(errors(&v, &obj, None).len(), 1);
    assert!(
        errors(&v, &obj, None)[0]
            .starts_with("metadata.name: Invalid value: \"Box_1\": a lowercase RFC 1123 subdomain")
    );
    obj["metadata"] = json!({"generateName": "box-"});
    assert_eq!(errors(&v, &obj, None), Vec::<String>::new());
}

#[test]
fn apiversion_and_kind_route_the_object() {
    let v = validator();
    assert!(v.handles("blaxel.ai/v1alpha1", "Sandbox"));
    assert!(!v.handles("blaxel.ai/v1", "Sandbox"));
    let err = v.validate(&json!({"kind": "Sandbox"}), None).unwrap_err();
    assert_eq!(
        (err.reason, err.to_string()),
        (
            Reason::UnknownKind,
            "error validating data: [apiVersion not set]".to_owned()
        )
    );
    let err = v.validate(&json!([1]), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "error validating data: [apiVersion not set, kind not set]"
    );
    let err = v
        .validate(&json!({"apiVersion": "v1", "kind": "Pod"}), None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no matches for kind \"Pod\" in version \"v1\""
    );
}

#[test]
fn types_enums_and_required_block_the_rules() {
    let v = validator();
    assert_eq!(
        errors(
            &v,
            &preview(
                &json!({"port": "80", "sandboxRef": {"name": "s"}, "public": true, "token": {}})
            ),
            None
        ),
        vec![
            "spec.port: Invalid value: \"string\": spec.port in body must be of type integer: \"string\"",
            BLOCKED
        ]
    );
    assert_eq!(
        errors(
            &v,
            &sandbox(
                &json!({"image": "i", "workspace": "w", "ports": [{"target": 1, "protocol": null}]})
            ),
            None
        ),
        vec![
            "spec.ports[0].protocol: Unsupported value: null: supported values: \"HTTP\", \"TCP\", \"UDP\", \"TLS\"",
            BLOCKED
        ]
    );
    // A null where the field is not nullable is dropped: then it is missing.
    assert_eq!(
        errors(
            &v,
            &sandbox(&json!({"image": null, "workspace": "w"})),
            None
        ),
        vec!["spec.image: Required value", BLOCKED]
    );
    assert_eq!(
        errors(
            &v,
            &sandbox(&json!({"image": "i", "workspace": "w", "region": null})),
            None
        ),
        Vec::<String>::new()
    );
}

#[test]
fn integers_are_checked_as_go_reads_them() {
    let v = validator();
    let port = |p: Value| {
        errors(
            &v,
            &preview(&json!({"port": p, "sandboxRef": {"name": "s"}})),
            None,
        )
    };
    assert_eq!(port(json!(80.0)), Vec::<String>::new());
    assert_eq!(
        port(json!(80.5)),
        vec![
            "spec.port: Invalid value: \"float64\": spec.port in body must be of type int32: \"float64\"",
            "<nil>: Invalid value: \"\": Checked value must be of type integer with format int32 in spec.port",
            BLOCKED
        ]
    );
    assert_eq!(
        port(json!(3_000_000_000_i64)),
        vec![
            "spec.port: Invalid value: 3000000000: spec.port in body should be less than or equal to 65535",
            "<nil>: Invalid value: \"\": Checked value must be of type integer with format int32 in spec.port"
        ]
    );
    let memory = errors(
        &v,
        &sandbox(&json!({"image": "i", "workspace": "w", "memory": 1e20})),
        None,
    );
    assert!(memory.contains(&"spec.memory: Invalid value: \"float64\": spec.memory in body must be of type int64: \"float64\"".to_owned()), "{memory:?}");
    assert!(memory.contains(&"spec.memory: Invalid value: 1e+20: spec.memory in body should be less than or equal to 65536".to_owned()), "{memory:?}");
}

#[test]
fn strings_stop_at_the_first_failed_bound() {
    let v = validator();
    let long = "A".repeat(64);
    assert_eq!(
        errors(
            &v,
            &sandbox(&json!({"image": "i", "workspace": "w", "sandboxName": long})),
            None
        ),
        vec![
            "spec.sandboxName: Too long: may not be more than 63 bytes",
            BLOCKED
        ]
    );
    assert_eq!(
        errors(
            &v,
            &sandbox(&json!({"image": "i", "workspace": "w", "sandboxName": "A", "ttl": "5x"})),
            None
        ),
        vec![
            "spec.sandboxName: Invalid value: \"A\": spec.sandboxName in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
            "spec.ttl: Invalid value: \"5x\": spec.ttl in body should match '^[0-9]+[smhdw]$'"
        ]
    );
    assert_eq!(
        errors(&v, &sandbox(&json!({"image": "", "workspace": "w"})), None),
        vec!["spec.image: Invalid value: \"\": spec.image in body should be at least 1 chars long"]
    );
}

#[test]
fn lists_are_counted() {
    let v = validator();
    let ws = |members: Value| {
        errors(
            &v,
            &json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": "Workspace",
            "metadata": {"name": "w"}, "spec": {"members": members}}),
            None,
        )
    };
    assert_eq!(ws(json!({"namespaces": ["a"]})), Vec::<String>::new());
    assert_eq!(
        ws(json!({"namespaces": []})),
        vec![
            "spec.members.namespaces: Invalid value: 0: spec.members.namespaces in body should have at least 1 items"
        ]
    );
    let ports: Vec<Value> = (1..=33).map(|p| json!({"target": p})).collect();
    assert_eq!(
        errors(
            &v,
            &sandbox(&json!({"image": "i", "workspace": "w", "ports": ports})),
            None
        ),
        vec![
            "spec.ports: Too many: 33: must have at most 32 items",
            BLOCKED
        ]
    );
}

#[test]
fn rules_see_defaults_and_report_at_their_field() {
    let v = validator();
    let p = |spec: Value| errors(&v, &preview(&spec), None);
    assert_eq!(
        p(json!({"port": 1, "sandboxRef": {"name": "s"}, "token": {"lifetime": "2h"}})),
        Vec::<String>::new()
    );
    assert_eq!(
        p(json!({"port": 1, "sandboxRef": {"name": "s"}, "public": true, "token": {}})),
        vec![
            "spec: Invalid value: a public preview takes no token: remove token, or set public: false"
        ]
    );
    assert_eq!(
        p(json!({"port": 1, "sandboxRef": {"name": "s"}, "token": {"lifetime": "abc"}})),
        vec![
            "spec.token: Invalid value: \"object\": type conversion error from 'string' to 'google.protobuf.Duration' evaluating rule: token.lifetime must be at least 1m",
            "spec.token.lifetime: Invalid value: \"abc\": token.lifetime must be a duration such as 90m or 24h"
        ]
    );
    let ws = json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": "Workspace", "metadata": {"name": "w"},
        "spec": {"members": {"protected": ["Alice@example.com"]}}});
    assert_eq!(
        errors(&v, &ws, None),
        vec![
            "spec.members.protected: Invalid value: protected e-mails must be lower-case ASCII addresses without spaces, such as alice@example.com"
        ]
    );
}

#[test]
fn transition_rules_apply_to_updates_only() {
    let v = validator();
    let old = sandbox(&json!({"image": "i", "workspace": "w", "sandboxName": "a"}));
    let renamed = sandbox(&json!({"image": "i", "workspace": "w2", "sandboxName": "b"}));
    assert_eq!(errors(&v, &renamed, None), Vec::<String>::new());
    assert_eq!(
        errors(&v, &renamed, Some(&old)),
        vec![
            "spec.sandboxName: Invalid value: \"b\": sandboxName is immutable",
            "spec.workspace: Invalid value: \"w2\": workspace is immutable"
        ]
    );
    let unnamed = sandbox(&json!({"image": "i", "workspace": "w"}));
    assert_eq!(
        errors(&v, &unnamed, Some(&old)),
        vec!["spec: Invalid value: sandboxName is immutable"]
    );
    assert_eq!(errors(&v, &old, Some(&old)), Vec::<String>::new());
}

#[test]
fn an_update_reports_no_error_in_values_it_leaves_as_they_were() {
    let v = validator();
    // As if the old object had been accepted under a looser CRD.
    let old = sandbox(&json!({"image": "", "workspace": "W", "ttl": "5x"}));
    let new = sandbox(&json!({"image": "", "workspace": "W", "ttl": "6x"}));
    assert_eq!(
        errors(&v, &new, Some(&old)),
        vec!["spec.ttl: Invalid value: \"6x\": spec.ttl in body should match '^[0-9]+[smhdw]$'"]
    );
    assert!(errors(&v, &new, None).len() > 1);
}

#[test]
fn max_properties_and_unsupported_schemas() {
    let mut crd = crate::crd::all().swap_remove(1);
    let labels =
        json!({"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}});
    crd = with_spec_property(&crd, "labels", labels);
    let v = Validator::new(std::slice::from_ref(&crd)).unwrap();
    let obj = |labels: Value| sandbox(&json!({"image": "i", "workspace": "w", "labels": labels}));
    assert_eq!(
        errors(&v, &obj(json!({"a": "1"})), None),
        Vec::<String>::new()
    );
    assert_eq!(
        errors(&v, &obj(json!({"a": "1", "b": "2"})), None),
        vec![
            "spec.labels: Too many: 2: must have at most 1 item",
            BLOCKED
        ]
    );
    let crd = with_spec_property(
        &crd,
        "region",
        json!({"type": "string", "format": "hostname"}),
    );
    assert_eq!(
        Validator::new(&[crd]).unwrap_err().to_string(),
        "CRD sandboxes.blaxel.ai: spec.region: format hostname on type string is not supported"
    );
}

fn with_spec_property(
    crd: &CustomResourceDefinition,
    name: &str,
    schema: Value,
) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(crd).unwrap();
    value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        [name] = schema;
    serde_json::from_value(value).unwrap()
}

#[test]
fn deep_or_odd_input_does_not_panic() {
    let v = validator();
    let mut deep = json!("x");
    for _ in 0..600 {
        deep = json!([deep]);
    }
    let err = v
        .validate(&sandbox(&json!({"image": deep, "workspace": "w"})), None)
        .unwrap_err();
    assert_eq!(err.reason, Reason::BadRequest);
    for odd in [
        json!(null),
        json!("s"),
        sandbox(&json!(7)),
        sandbox(&json!([{"a": [1, {"b": null}]}])),
    ] {
        let _ = v.validate(&odd, Some(&odd));
    }
}
