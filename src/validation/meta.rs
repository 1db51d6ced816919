//! `metadata`: how the API server decodes it into an `ObjectMeta` (unknown fields, wrong types) and the
//! checks it then makes (`k8s.io/apimachinery/pkg/api/validation/objectmeta.go`).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::Cause;
use super::go;

/// Every field of `ObjectMeta` (its JSON names).
const FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// What Go's JSON decoder calls the type of a JSON value.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The decoding error of a `metadata` the server cannot read into an `ObjectMeta`, as Go's JSON decoder
/// words it (the first one, in key order).
pub(super) fn type_error(metadata: &Value) -> Option<String> {
    let Value::Object(map) = metadata else {
        if metadata.is_null() {
            return None;
        }
        return Some(format!(
            "json: cannot unmarshal {} into Go value of type v1.ObjectMeta",
            json_kind(metadata)
        ));
    };
    let field_error = |field: &str, found: &Value, go_type: &str| {
        Some(format!(
            "json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type {go_type}",
            json_kind(found)
        ))
    };
    for (field, v) in map {
        match (field.as_str(), v) {
            (_, Value::Null) => {}
            ("name" | "generateName" | "namespace", v) if !v.is_string() => {
                return field_error(field, v, "string");
            }
            ("labels" | "annotations", Value::Object(entries)) => {
                if let Some(bad) = entries.values().find(|e| !e.is_string() && !e.is_null()) {
                    return field_error(field, bad, "string");
                }
            }
            ("labels" | "annotations", v) => return field_error(field, v, "map[string]string"),
            ("finalizers", Value::Array(items)) => {
                if let Some(bad) = items.iter().find(|e| !e.is_string() && !e.is_null()) {
                    return field_error(field, bad, "string");
                }
            }
            ("finalizers", v) => return field_error(field, v, "[]string"),
            _ => {}
        }
    }
    None
}

/// The fields of `metadata` that `ObjectMeta` does not have, as strict decoding names them.
pub(super) fn unknown_fields(metadata: &Value) -> Vec<String> {
    let Value::Object(map) = metadata else {
        return Vec::new();
    };
    map.keys()
        .filter(|k| !FIELDS.contains(&k.as_str()))
        .map(|k| format!("metadata.{k}"))
        .collect()
}

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// A pattern anchored at both ends (the constants above all compile).
type Anchored = LazyLock<Option<Regex>>;

static DNS1123_LABEL: Anchored =
    LazyLock::new(|| Regex::new(&format!("^{DNS1123_LABEL_FMT}$")).ok());
static DNS1123_SUBDOMAIN: Anchored =
    LazyLock::new(|| Regex::new(&format!("^{DNS1123_SUBDOMAIN_FMT}$")).ok());
static LABEL_KEY: Anchored = LazyLock::new(|| Regex::new(&format!("^{LABEL_KEY_FMT}$")).ok());
static LABEL_VALUE: Anchored = LazyLock::new(|| Regex::new(&format!("^{LABEL_VALUE_FMT}$")).ok());

fn matches(pattern: &Anchored, value: &str) -> bool {
    pattern.as_ref().is_some_and(|re| re.is_match(value))
}

/// `RegexError` of `k8s.io/apimachinery/pkg/util/validation`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        examples.join(" or ")
    )
}

/// `IsDNS1123Subdomain`; `unit` is "characters" (util/validation) or "bytes" (validate/content).
fn dns1123_subdomain(value: &str, unit: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(format!("must be no more than 253 {unit}"));
    }
    if !matches(&DNS1123_SUBDOMAIN, value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1123Label` (for namespaces).
fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !matches(&DNS1123_LABEL, value) {
        if matches(&DNS1123_SUBDOMAIN, value) {
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsQualifiedName` (label, annotation and finalizer keys).
fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix, "bytes")
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    LABEL_KEY_ERR,
                    LABEL_KEY_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 bytes".to_owned());
    }
    if !matches(&LABEL_KEY, name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_ERR,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`.
fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 bytes".to_owned());
    }
    if !matches(&LABEL_VALUE, value) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

fn string<'a>(meta: &'a Map<String, Value>, field: &str) -> &'a str {
    meta.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn invalid(field: &str, value: &str, detail: &str) -> Cause {
    Cause::meta(
        field,
        format!("Invalid value: {}: {detail}", go::quote(value)),
        false,
    )
}

/// Labels, annotations: checked on create and on update alike.
fn labels_and_annotations(meta: &Map<String, Value>, out: &mut Vec<Cause>) {
    let entries = |field: &str| -> Vec<(String, String)> {
        meta.get(field)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (k, v) in entries("labels") {
        for msg in qualified_name(&k) {
            out.push(invalid("metadata.labels", &k, &msg));
        }
        for msg in label_value(&v) {
            out.push(invalid("metadata.labels", &v, &msg));
        }
    }
    let annotations = entries("annotations");
    for (k, _) in &annotations {
        for msg in qualified_name(&k.to_lowercase()) {
            out.push(invalid("metadata.annotations", k, &msg));
        }
    }
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > 256 * 1024 {
        out.push(Cause::meta(
            "metadata.annotations",
            "Too long: may not be more than 262144 bytes".to_owned(),
            true,
        ));
    }
}

/// The checks of a create (`ValidateObjectMetaAccessor` with DNS-subdomain names, for a namespaced
/// kind). A namespace may be left out: the request's own fills it in.
pub(super) fn validate_create(meta: &Map<String, Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    let generate_name = string(meta, "generateName");
    if !generate_name.is_empty() {
        // As a prefix: a trailing dash is allowed (Go's maskTrailingDash).
        let masked = if generate_name.len() > 1 && generate_name.ends_with('-') {
            // Go slices bytes: a cut inside a character leaves bytes no pattern matches.
            let mut bytes = generate_name.as_bytes()[..generate_name.len() - 2].to_vec();
            bytes.push(b'a');
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            generate_name.to_owned()
        };
        for msg in dns1123_subdomain(&masked, "characters") {
            out.push(invalid("metadata.generateName", generate_name, &msg));
        }
    }
    let name = string(meta, "name");
    if name.is_empty() {
        if generate_name.is_empty() {
            out.push(Cause::meta(
                "metadata.name",
                "Required value: name or generateName is required".to_owned(),
                true,
            ));
        }
    } else {
        for msg in dns1123_subdomain(name, "characters") {
            out.push(invalid("metadata.name", name, &msg));
        }
    }
    let namespace = string(meta, "namespace");
    if !namespace.is_empty() {
        for msg in dns1123_label(namespace) {
            out.push(invalid("metadata.namespace", namespace, &msg));
        }
    }
    labels_and_annotations(meta, &mut out);
    let finalizers: Vec<&str> = meta
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for f in &finalizers {
        for msg in qualified_name(f) {
            out.push(invalid("metadata.finalizers", f, &msg));
        }
    }
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        out.push(Cause::meta(
            "metadata.finalizers",
            format!(
                "Invalid value: {}: finalizer orphan and foregroundDeletion cannot be both set",
                go::json(&Value::from(finalizers.clone()))
            ),
            false,
        ));
    }
    out
}

/// The checks of an update (`ValidateObjectMetaAccessorUpdate`): name and namespace kept, labels and
/// annotations. The fields the server keeps itself (uid, resourceVersion, creationTimestamp) are not
/// compared: an update from a manifest is applied over the live object, which carries them.
pub(super) fn validate_update(meta: &Map<String, Value>, old: &Map<String, Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    for field in ["name", "namespace"] {
        let (new, before) = (string(meta, field), string(old, field));
        if !new.is_empty() && new != before {
            out.push(invalid(
                &format!("metadata.{field}"),
                new,
                "field is immutable",
            ));
        }
    }
    labels_and_annotations(meta, &mut out);
    out
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bodies(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.body))
            .collect()
    }

    #[test]
    fn a_bad_name_is_reported_a_good_one_is_not() {
        let ok = json!({"name": "web-1.a", "labels": {"app.kubernetes.io/name": "x"}});
        assert!(validate_create(ok.as_object().unwrap()).is_empty());
        let bad = json!({"name": "Web_1"});
        assert_eq!(
            bodies(&validate_create(bad.as_object().unwrap())),
            vec![
                "metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        let none = json!({});
        assert_eq!(
            bodies(&validate_create(none.as_object().unwrap())),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
    }

    #[test]
    fn generate_name_is_checked_as_a_prefix() {
        assert!(validate_create(json!({"generateName": "web-"}).as_object().unwrap()).is_empty());
        let bad = validate_create(json!({"generateName": "é-"}).as_object().unwrap());
        assert_eq!(bad.len(), 1);
        assert!(bodies(&bad)[0].starts_with(
            "metadata.generateName: Invalid value: \"é-\": a lowercase RFC 1123 subdomain"
        ));
    }

    #[test]
    fn labels_keys_and_values_are_checked() {
        let bad = json!({"name": "a", "labels": {"a b": "ok", "k": "c d"}});
        let got = bodies(&validate_create(bad.as_object().unwrap()));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("metadata.labels: Invalid value: \"a b\": name part must consist")
        );
        assert!(
            got[1].starts_with("metadata.labels: Invalid value: \"c d\": a valid label must be")
        );
    }

    #[test]
    fn decoding_errors_read_like_go() {
        assert_eq!(type_error(&json!({"name": "a"})), None);
        assert_eq!(
            type_error(&json!({"name": 5})).as_deref(),
            Some(
                "json: cannot unmarshal number into Go struct field ObjectMeta.name of type string"
            )
        );
        assert_eq!(
            type_error(&json!("x")).as_deref(),
            Some("json: cannot unmarshal string into Go value of type v1.ObjectMeta")
        );
        assert_eq!(
            unknown_fields(&json!({"name": "a", "nmae": "b"})),
            vec!["metadata.nmae"]
        );
    }

    #[test]
    fn an_update_keeps_the_name() {
        let old = json!({"name": "a"});
        let new = json!({"name": "b"});
        assert_eq!(
            bodies(&validate_update(
                new.as_object().unwrap(),
                old.as_object().unwrap()
            )),
            vec!["metadata.name: Invalid value: \"b\": field is immutable"]
        );
        assert!(validate_update(old.as_object().unwrap(), old.as_object().unwrap()).is_empty());
    }
}
