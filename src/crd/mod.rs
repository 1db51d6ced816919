//! The custom resources users write: `WorkspaceMember`, `Sandbox`, `Workspace`, `IntegrationConnection`
//! and `SandboxPreview` (group `blaxel.ai`, `v1alpha1`).
//!
//! Types only, no IO. The CRD YAML in `crds/` is generated from these types by `blaxel-operator crds`,
//! with the schema's `format`s narrowed to those the Kubernetes API server recognises
//! ([`kubernetes_formats`]).

mod common;
mod integration;
mod member;
mod preview;
mod sandbox;
mod workspace;

pub use common::{CredentialsRef, DeletionPolicy, is_canonical_email, is_canonical_workspace};
pub use integration::{
    IntegrationConnection, IntegrationConnectionSpec, IntegrationConnectionStatus, SecretRef,
};
pub use member::{MemberPhase, Role, WorkspaceMember, WorkspaceMemberSpec, WorkspaceMemberStatus};
pub use preview::{
    PreviewLocation, PreviewTokenSpec, PreviewTokenStatus, SandboxPreview, SandboxPreviewSpec,
    SandboxPreviewStatus, SandboxRef,
};
pub use sandbox::{
    EnvSource, PortProtocol, PowerState, Sandbox, SandboxEnv, SandboxPort, SandboxSpec,
    SandboxStatus, SecretKeyRef,
};
pub use workspace::{
    MemberCounts, MembersSpec, MembershipPolicy, Workspace, WorkspaceSpec, WorkspaceStatus,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every kind.
pub const GROUP: &str = "blaxel.ai";
/// The finalizer every kind carries while remote cleanup is pending.
pub const FINALIZER: &str = "blaxel.ai/cleanup";
/// Every annotation the operator reads starts with this.
pub const ANNOTATION_PREFIX: &str = "blaxel.ai/";
/// Annotation: `"true"` pauses remote writes for the object.
pub const PAUSED_ANNOTATION: &str = "blaxel.ai/paused";
/// Annotation: changing its value forces an immediate resync.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "blaxel.ai/reconcile-requested-at";

/// Every CRD the operator serves, in a stable order.
#[must_use]
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        WorkspaceMember::crd(),
        Sandbox::crd(),
        Workspace::crd(),
        IntegrationConnection::crd(),
        SandboxPreview::crd(),
    ]
    .into_iter()
    .map(kubernetes_formats)
    .collect()
}

/// String formats the API server validates (`k8s.io/apiextensions-apiserver`, `validation/formats.go`,
/// as of Kubernetes 1.36; `date-time` is spelled both ways there). Anything else in a CRD makes
/// `kubectl apply` print `Warning: unrecognized format` and is ignored by the server.
pub const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "date-time",
];

/// The format Kubernetes accepts for a schema of `type_` with `format`, or `None` to drop the format.
///
/// schemars names Rust's integer widths (`uint32`, `uint8`, ...) and `number` widths; the API server
/// knows only `int32`/`int64` and `float`/`double`. A narrow width becomes the Kubernetes width that
/// holds it (the bounds schemars also writes, such as `minimum: 0`, stay). An unknown string format, or
/// a format on another type, is dropped: the server would ignore it anyway.
#[must_use]
pub fn kubernetes_format(type_: Option<&str>, format: &str) -> Option<&'static str> {
    match type_ {
        Some("integer") => Some(match format {
            "int32" | "int8" | "int16" | "uint8" | "uint16" => "int32",
            _ => "int64",
        }),
        Some("number") => Some(if format == "float" { "float" } else { "double" }),
        None | Some("string") => STRING_FORMATS.iter().copied().find(|f| *f == format),
        Some(_) => None,
    }
}

/// `crd` with every `format` in its schemas replaced as [`kubernetes_format`] says.
#[must_use]
pub fn kubernetes_formats(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(schema: &mut serde_json::Value) {
        match schema {
            serde_json::Value::Object(map) => {
                if let Some(format) = map.get("format").and_then(serde_json::Value::as_str) {
                    let type_ = map.get("type").and_then(serde_json::Value::as_str);
                    match kubernetes_format(type_, format) {
                        Some(known) => {
                            map.insert("format".to_owned(), known.into());
                        }
                        None => {
                            map.remove("format");
                        }
                    }
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::to_value(&crd) else {
        return crd;
    };
    // Only the schemas: the rest of the CRD holds no `format`. A property *named* `format` is a key
    // of `properties` whose value is a schema (not a string), so the walk leaves it alone.
    if let Some(versions) = value
        .pointer_mut("/spec/versions")
        .and_then(serde_json::Value::as_array_mut)
    {
        for version in versions {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                walk(schema);
            }
        }
    }
    serde_json::from_value(value).unwrap_or(crd)
}

/// Every `format` in the CRD's schemas that the API server does not recognise (empty when all are
/// known): what `kubectl apply` would warn about.
#[must_use]
pub fn unrecognized_formats(crd: &CustomResourceDefinition) -> Vec<String> {
    fn walk(schema: &serde_json::Value, out: &mut Vec<String>) {
        match schema {
            serde_json::Value::Object(map) => {
                if let Some(format) = map.get("format").and_then(serde_json::Value::as_str) {
                    let type_ = map.get("type").and_then(serde_json::Value::as_str);
                    if kubernetes_format(type_, format) != Some(format) {
                        out.push(format.to_owned());
                    }
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::to_value(crd) {
        for version in value["spec"]["versions"].as_array().into_iter().flatten() {
            walk(&version["schema"]["openAPIV3Schema"], &mut out);
        }
    }
    out
}

/// The CRDs as one multi-document YAML stream, as committed under `crds/`.
///
/// # Errors
/// Fails only if serialization fails, which would be a bug in the types.
pub fn to_yaml(crds: &[CustomResourceDefinition]) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated CRDs carry no format the API server would warn about (schemars writes `uint32`).
    #[test]
    fn generated_crds_have_only_kubernetes_formats() {
        for crd in all() {
            assert_eq!(unrecognized_formats(&crd), Vec::<String>::new());
        }
        let raw = [WorkspaceMember::crd(), Sandbox::crd()];
        assert!(
            raw.iter().any(|c| !unrecognized_formats(c).is_empty()),
            "schemars no longer writes unknown formats: the check above proves nothing"
        );
    }

    /// Integer and number widths map to the Kubernetes width that holds them; unknown string formats
    /// and formats on other types are dropped; known ones stay.
    #[test]
    fn formats_map_to_kubernetes_ones() {
        assert_eq!(kubernetes_format(Some("integer"), "uint32"), Some("int64"));
        assert_eq!(kubernetes_format(Some("integer"), "uint16"), Some("int32"));
        assert_eq!(kubernetes_format(Some("integer"), "int32"), Some("int32"));
        assert_eq!(kubernetes_format(Some("integer"), "int64"), Some("int64"));
        assert_eq!(kubernetes_format(Some("number"), "float"), Some("float"));
        assert_eq!(kubernetes_format(Some("number"), "f32"), Some("double"));
        assert_eq!(
            kubernetes_format(Some("string"), "date-time"),
            Some("date-time")
        );
        assert_eq!(kubernetes_format(Some("string"), "uint"), None);
        assert_eq!(kubernetes_format(Some("boolean"), "int32"), None);
    }
}
