//! Offline validation of custom resources against the CRDs: the verdict, and the messages, of the
//! Kubernetes API server (v1.36) for a create, or an update from an old object, of one of our kinds
//! with strict field validation (what `kubectl apply` asks for).
//!
//! The server's steps, in its order:
//! 1. Decoding: `metadata` must read as an `ObjectMeta`; fields the schema does not declare are
//!    pruned, and under strict field validation refused (400 BadRequest, before any check).
//! 2. Nulls of fields neither nullable nor defaulted are dropped, then defaults are applied.
//! 3. `status` is dropped (a write of the resource never sets it: the status subresource does).
//! 4. `metadata` checks (name, namespace, labels, annotations, finalizers), then the OpenAPI schema
//!    ([`schema`]), then, unless an error so far is of a blocking kind (unsupported, required, too
//!    long, too many, wrong type), the `x-kubernetes-validations` CEL rules ([`cel`]). On an update,
//!    transition rules (`oldSelf`) run where the old object has the field, and errors in values the
//!    update leaves as they were are not reported (the server's validation ratcheting).
//!
//! Known differences from the server: a name generated from `generateName` is not checked (the
//! server's is random; it is valid whenever `generateName` is); only the `metadata` fields manifests
//! set (name, generateName, namespace, labels, annotations, finalizers) are type-checked; objects
//! nested deeper than 512 levels are refused; the wording of CEL evaluation errors other than an
//! unreadable `duration()` is cel-rust's; and schema features the CRDs do not use make
//! [`Validator::new`] fail rather than be skipped.

mod cel;
mod go;
mod meta;
mod schema;

use std::fmt;
use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use self::schema::Node;

/// A duration as CEL's `duration()` reads it (Go's `time.ParseDuration`: `90m`, `1h30m`, `1.5h`), so
/// what the CRD rules admitted is read the same way everywhere; `None` where Go refuses it or it is
/// negative.
#[must_use]
pub fn cel_duration(text: &str) -> Option<std::time::Duration> {
    let nanos = go::parse_duration(text)?;
    u64::try_from(nanos)
        .ok()
        .map(std::time::Duration::from_nanos)
}

/// The CRDs compiled for validation.
pub struct Validator {
    kinds: Vec<Served>,
    env: Arc<::cel::Env>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.kinds
                    .iter()
                    .map(|k| format!("{}/{} {}", k.group, k.version, k.kind)),
            )
            .finish()
    }
}

/// One served version of one CRD.
struct Served {
    group: String,
    version: String,
    kind: String,
    root: Node,
    checker: jsonschema::Validator,
}

/// A CRD that uses what this validator does not check (it would not give the server's verdict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CRD {crd}: {problem}")]
pub struct ValidationSetupError {
    pub crd: String,
    pub problem: String,
}

/// One error about one field, as the server lists it (`details.causes` of a 422: `field`, `message`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldError {
    /// The field, e.g. `spec.port` (`<nil>` for the few errors the server attaches to no field).
    pub path: String,
    /// What is wrong, e.g. `Invalid value: 70000: spec.port in body should be less than or equal to 65535`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// How the server refuses an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// 400 BadRequest: the object does not decode (unknown fields under strict field validation, or
    /// `metadata` of the wrong type). `errors` has one entry per unknown field, or the decoding error.
    BadRequest,
    /// 422 Invalid: `errors` are the server's `details.causes`.
    Invalid,
    /// Not one of the validator's kinds (or no `apiVersion`/`kind`): there is nothing to check it against.
    UnknownKind,
}

/// Why an object would be refused, worded as the server words it (its `Display`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub reason: Reason,
    /// The whole message, e.g. `SandboxPreview.blaxel.ai "web" is invalid: spec.port: Invalid value: ...`.
    pub message: String,
    pub errors: Vec<FieldError>,
}

/// A step of a path into an object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// One error found, before it is reported.
#[derive(Debug)]
struct Cause {
    field: String,
    body: String,
    /// Whether the server skips the CEL rules after it (`hasBlockingErr`).
    blocking: bool,
    /// The value the error is about, for ratcheting; `None` for `metadata` errors.
    node: Option<Vec<Seg>>,
}

impl Cause {
    fn meta(field: &str, body: String, blocking: bool) -> Cause {
        Cause {
            field: field.to_owned(),
            body,
            blocking,
            node: None,
        }
    }

    fn schema(field: &str, body: String, blocking: bool, node: &[Seg]) -> Cause {
        Cause {
            field: field.to_owned(),
            body,
            blocking,
            node: Some(node.to_vec()),
        }
    }

    /// The path of the value the error is about.
    fn node_path(&self) -> String {
        self.node
            .as_deref()
            .map(schema::display)
            .unwrap_or_default()
    }
}

/// Whether an error at `segs` is ratcheted on an update: the nearest value reached through object
/// keys only (an atomic list's elements have no old value) is the same in `old`.
fn ratchets(new: &Value, old: Option<&Value>, segs: &[Seg]) -> bool {
    let Some(old) = old else { return false };
    let keys: Vec<&str> = segs
        .iter()
        .map_while(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    let at = |v| keys.iter().try_fold(v, |v: &Value, k| v.get(*k));
    !keys.is_empty() && matches!((at(new), at(old)), (Some(a), Some(b)) if a == b)
}

fn str_at<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

impl Validator {
    /// Compiles the served versions of `crds` (such as [`crate::crd::all`]).
    pub fn new(crds: &[CustomResourceDefinition]) -> Result<Self, ValidationSetupError> {
        let env = cel::env().map_err(|problem| ValidationSetupError {
            crd: String::new(),
            problem,
        })?;
        let mut kinds = Vec::new();
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let fail = |problem: String| ValidationSetupError {
                crd: name.clone(),
                problem,
            };
            if crd.spec.scope != "Namespaced" {
                return Err(fail(format!("scope {} is not supported", crd.spec.scope)));
            }
            for version in crd.spec.versions.iter().filter(|v| v.served) {
                let status = version
                    .subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref());
                if status.is_none()
                    || version
                        .subresources
                        .as_ref()
                        .is_some_and(|s| s.scale.is_some())
                {
                    return Err(fail(
                        "only a status subresource (and no scale) is supported".to_owned(),
                    ));
                }
                let schema = version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(|e| fail(e.to_string()))?
                    .ok_or_else(|| fail(format!("version {} has no schema", version.name)))?;
                if schema.get("x-kubernetes-validations").is_some() {
                    return Err(fail(
                        "rules at the root of a schema are not supported".to_owned(),
                    ));
                }
                kinds.push(Served {
                    group: crd.spec.group.clone(),
                    version: version.name.clone(),
                    kind: crd.spec.names.kind.clone(),
                    root: Node::parse(&schema, "", true, &env).map_err(fail)?,
                    checker: schema::compile(&schema::json_schema(&schema, true)).map_err(fail)?,
                });
            }
        }
        Ok(Validator { kinds, env })
    }

    /// Whether `api_version` (`group/version`) and `kind` name one of the validator's kinds.
    pub fn handles(&self, api_version: &str, kind: &str) -> bool {
        self.find(api_version, kind).is_some()
    }

    fn find(&self, api_version: &str, kind: &str) -> Option<&Served> {
        self.kinds
            .iter()
            .find(|k| k.kind == kind && api_version.split_once('/') == Some((&k.group, &k.version)))
    }

    /// Checks `obj` (a whole manifest object) as a create (`old` is `None`) or as an update of `old`
    /// (the live object), and returns what the API server would refuse it with.
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Result<(), Rejection> {
        let (api_version, kind_name) = match (str_at(obj, "apiVersion"), str_at(obj, "kind")) {
            (Some(a), Some(k)) => (a, k),
            (a, k) => {
                let mut errors = Vec::new();
                for (field, found) in [("apiVersion", a.is_some()), ("kind", k.is_some())] {
                    if !found {
                        errors.push(FieldError {
                            path: field.to_owned(),
                            message: format!("{field} not set"),
                        });
                    }
                }
                let list: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
                return Err(Rejection {
                    reason: Reason::UnknownKind,
                    message: format!("error validating data: [{}]", list.join(", ")),
                    errors,
                });
            }
        };
        let Some(kind) = self.find(api_version, kind_name) else {
            let message = format!("no matches for kind {kind_name:?} in version {api_version:?}");
            return Err(Rejection {
                reason: Reason::UnknownKind,
                errors: vec![FieldError {
                    path: "kind".to_owned(),
                    message: message.clone(),
                }],
                message,
            });
        };
        kind.validate(obj, old, &self.env)
    }
}

impl Served {
    fn bad_request(&self, detail: &str, errors: Vec<FieldError>) -> Rejection {
        Rejection {
            reason: Reason::BadRequest,
            message: format!(
                "{kind} in version {version:?} cannot be handled as a {kind}: {detail}",
                kind = self.kind,
                version = self.version
            ),
            errors,
        }
    }

    /// `x` decoded as the server decodes a request body: pruned, nulls dropped, defaulted, no status.
    fn decode(&self, x: &Value, unknown: &mut Vec<String>) -> Value {
        let mut out = schema::prune(x, Some(&self.root), "", true, unknown);
        schema::drop_nulls_and_default(&mut out, &self.root);
        if let Value::Object(map) = &mut out {
            map.remove("status");
        }
        out
    }

    fn validate(
        &self,
        obj: &Value,
        old: Option<&Value>,
        env: &Arc<::cel::Env>,
    ) -> Result<(), Rejection> {
        if schema::too_deep(obj) {
            let detail = format!("the object nests deeper than {} levels", schema::MAX_DEPTH);
            return Err(self.bad_request(&detail, Vec::new()));
        }
        let metadata = obj.get("metadata").cloned().unwrap_or(Value::Null);
        if let Some(e) = meta::type_error(&metadata) {
            let error = FieldError {
                path: "metadata".to_owned(),
                message: e.clone(),
            };
            return Err(self.bad_request(&e, vec![error]));
        }
        let mut unknown = Vec::new();
        let new = self.decode(obj, &mut unknown);
        unknown.sort();
        let mut unknown_fields = meta::unknown_fields(&metadata);
        unknown_fields.extend(unknown);
        if !unknown_fields.is_empty() {
            let errors: Vec<FieldError> = unknown_fields
                .iter()
                .map(|p| FieldError {
                    path: p.clone(),
                    message: format!("unknown field {p:?}"),
                })
                .collect();
            let list: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
            let detail = format!("strict decoding error: {}", list.join(", "));
            return Err(self.bad_request(&detail, errors));
        }
        let old = old.map(|o| self.decode(o, &mut Vec::new()));
        let old = old.as_ref();

        let empty = serde_json::Map::new();
        let meta_of = |v: &Value| {
            v.get("metadata")
                .and_then(Value::as_object)
                .unwrap_or(&empty)
                .clone()
        };
        let mut causes = match old {
            None => meta::validate_create(&meta_of(&new)),
            Some(o) => meta::validate_update(&meta_of(&new), &meta_of(o)),
        };
        causes.extend(
            schema::check(&self.checker, &self.root, &new)
                .into_iter()
                .filter(|c| !c.node.as_deref().is_some_and(|n| ratchets(&new, old, n))),
        );
        if causes.iter().any(|c| c.blocking) {
            causes.push(Cause::meta(
                "<nil>",
                "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".to_owned(),
                false,
            ));
        } else {
            let ratchet = |segs: &[Seg]| ratchets(&new, old, segs);
            let run = cel::Run {
                env,
                ratchets: &ratchet,
            };
            run.validate(&self.root, &new, old, &mut Vec::new(), "", &mut causes);
        }
        let mut errors: Vec<FieldError> = Vec::new();
        for c in causes {
            let e = FieldError {
                path: c.field,
                message: c.body,
            };
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        let name = str_at(&new["metadata"], "name")
            .filter(|n| !n.is_empty())
            .or_else(|| str_at(&new["metadata"], "generateName"))
            .unwrap_or_default();
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let listed = match listed.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        Err(Rejection {
            reason: Reason::Invalid,
            message: format!(
                "{}.{} {} is invalid: {listed}",
                self.kind,
                self.group,
                go::quote(name)
            ),
            errors,
        })
    }
}

#[cfg(test)]
mod tests;
