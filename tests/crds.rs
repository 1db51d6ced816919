//! The committed CRD YAML is what the Rust types generate.

use blaxel_operator::crd;

/// `crds/blaxel.ai.yaml` is current: regenerate it with `cargo run -- crds > crds/blaxel.ai.yaml`.
#[test]
fn committed_crds_are_current() {
    let generated = crd::to_yaml(&crd::all()).unwrap_or_default();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/blaxel.ai.yaml")).unwrap_or_default();
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
                if sub.get("description").is_none() && name != "apiVersion" && name != "kind" && name != "metadata" {
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
    assert!(missing.is_empty(), "fields without a description: {missing:?}");
}
