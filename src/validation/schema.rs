//! The structural schema of one CRD version and what the API server does with it: pruning unknown
//! fields (reported under strict field validation), dropping and defaulting nulls, applying defaults,
//! then the OpenAPI checks, run by `jsonschema` and worded as `k8s.io/kube-openapi` words them.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use cel::Env;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{PatternOptions, ValidationError};
use serde_json::{Map, Value};

use super::cel::Rule;
use super::{Cause, Seg, go};

/// One schema node, with what validation needs of it.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub type_: String,
    pub format: String,
    pub nullable: bool,
    pub default: Option<Value>,
    pub properties: BTreeMap<String, Node>,
    pub additional: Option<Box<Node>>,
    pub items: Option<Box<Node>>,
    pub rules: Vec<Rule>,
}

/// The schema keywords supported: what the CRDs use. Any other makes [`Node::parse`] fail, so that no
/// check the API server makes is silently skipped.
const KEYWORDS: &[&str] = &[
    "description",
    "title",
    "example",
    "type",
    "format",
    "nullable",
    "default",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "maxProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-validations",
];

/// The keywords `jsonschema` checks (the rest is structure, annotation, or done here).
const CHECKED: &[&str] = &[
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "maxProperties",
    "required",
];

impl Node {
    /// The node of `schema` at `path` (for messages). `checked` is false under `status`, which a write
    /// of the main resource never validates: there only the structure (for pruning) is read.
    pub(super) fn parse(
        schema: &Value,
        path: &str,
        checked: bool,
        env: &Env,
    ) -> Result<Node, String> {
        let Value::Object(map) = schema else {
            return Err(format!("{path}: a schema must be an object"));
        };
        let mut node = Node {
            type_: str_of(map, "type").to_owned(),
            format: str_of(map, "format").to_owned(),
            nullable: map.get("nullable").and_then(Value::as_bool) == Some(true),
            default: map.get("default").cloned(),
            ..Node::default()
        };
        if checked {
            if let Some(k) = map.keys().find(|k| !KEYWORDS.contains(&k.as_str())) {
                return Err(format!("{path}: schema keyword {k} is not supported"));
            }
            let known_format = matches!(
                (node.type_.as_str(), node.format.as_str()),
                (_, "") | ("integer", "int32" | "int64") | ("number", "float" | "double")
            );
            if !known_format {
                return Err(format!(
                    "{path}: format {} on type {} is not supported",
                    node.format, node.type_
                ));
            }
            if node.type_.is_empty() {
                return Err(format!("{path}: a schema without a type is not supported"));
            }
            if let Some(rules) = map.get("x-kubernetes-validations") {
                node.rules = Rule::parse_all(rules, path, env)?;
            }
        }
        if let Some(Value::Object(props)) = map.get("properties") {
            for (name, sub) in props {
                let sub_checked = checked && !(path.is_empty() && name == "status");
                let here = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                node.properties
                    .insert(name.clone(), Node::parse(sub, &here, sub_checked, env)?);
            }
        }
        match map.get("additionalProperties") {
            Some(sub @ Value::Object(_)) => {
                node.additional = Some(Box::new(Node::parse(
                    sub,
                    &format!("{path}.*"),
                    checked,
                    env,
                )?));
            }
            Some(_) if checked => {
                return Err(format!(
                    "{path}: a boolean additionalProperties is not supported"
                ));
            }
            _ => {}
        }
        if let Some(sub) = map.get("items") {
            node.items = Some(Box::new(Node::parse(
                sub,
                &format!("{path}[*]"),
                checked,
                env,
            )?));
        }
        Ok(node)
    }

    /// The schema of a key of an object of this schema.
    pub(super) fn child(&self, key: &str) -> Option<&Node> {
        self.properties.get(key).or(self.additional.as_deref())
    }
}

fn str_of<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `schema` as a JSON Schema for `jsonschema`: the checked keywords, `type` (with `null` where
/// nullable), and the structure; `status` left out (never validated on a write of the resource).
pub(super) fn json_schema(schema: &Value, root: bool) -> Value {
    let Value::Object(map) = schema else {
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    for key in CHECKED {
        if let Some(v) = map.get(*key) {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    if let Some(t) = map.get("type").and_then(Value::as_str) {
        let nullable = map.get("nullable").and_then(Value::as_bool) == Some(true);
        out.insert(
            "type".to_owned(),
            if nullable {
                Value::from(vec![t, "null"])
            } else {
                Value::from(t)
            },
        );
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        let props: Map<String, Value> = props
            .iter()
            .filter(|(name, _)| !(root && *name == "status"))
            .map(|(name, sub)| (name.clone(), json_schema(sub, false)))
            .collect();
        out.insert("properties".to_owned(), Value::Object(props));
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub @ Value::Object(_)) = map.get(key) {
            out.insert(key.to_owned(), json_schema(sub, false));
        }
    }
    Value::Object(out)
}

/// Builds the `jsonschema` validator of a converted schema. Patterns use the `regex` crate: RE2
/// syntax and semantics, as Go's `regexp`.
pub(super) fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .should_validate_formats(false)
        .with_pattern_options(PatternOptions::regex())
        .build(schema)
        .map_err(|e| e.to_string())
}

/// How deep an object may nest: deeper ones are refused before anything walks them (the API server's
/// JSON decoder allows 10,000 levels; no manifest comes near either).
pub(super) const MAX_DEPTH: usize = 512;

/// Whether `v` nests deeper than [`MAX_DEPTH`] (walked without recursion).
pub(super) fn too_deep(v: &Value) -> bool {
    let mut stack = vec![(v, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return true;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    false
}

/// `x` pruned to what `node` declares, as the API server's decoder does (`pruning.PruneWithOptions`):
/// the paths of the fields dropped go to `unknown`. At the root, `apiVersion`, `kind` and `metadata`
/// are kept as they are.
pub(super) fn prune(
    x: &Value,
    node: Option<&Node>,
    path: &str,
    root: bool,
    unknown: &mut Vec<String>,
) -> Value {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match x {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    out.insert(k.clone(), v.clone());
                } else if let Some(sub) = node.and_then(|n| n.child(k)) {
                    out.insert(k.clone(), prune(v, Some(sub), &join(k), false, unknown));
                } else {
                    unknown.push(join(k));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let sub = node.and_then(|n| n.items.as_deref());
                    prune(v, sub, &format!("{path}[{i}]"), false, unknown)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Drops the nulls of fields neither nullable nor defaulted (`PruneNonNullableNullsWithoutDefaults`),
/// then applies the defaults (`defaulting.Default`), in place.
pub(super) fn drop_nulls_and_default(x: &mut Value, node: &Node) {
    drop_nulls(x, node);
    default(x, node);
}

fn drop_nulls(x: &mut Value, node: &Node) {
    match x {
        Value::Object(map) => {
            map.retain(|k, v| {
                !(v.is_null()
                    && node
                        .child(k)
                        .is_some_and(|s| !s.nullable && s.default.is_none()))
            });
            for (k, v) in map.iter_mut() {
                if let Some(sub) = node.child(k) {
                    drop_nulls(v, sub);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = node.items.as_deref() {
                for v in items.iter_mut() {
                    drop_nulls(v, sub);
                }
            }
        }
        _ => {}
    }
}

fn default(x: &mut Value, node: &Node) {
    let non_nullable_null = |v: &Value, s: &Node| v.is_null() && !s.nullable;
    match x {
        Value::Object(map) => {
            for (k, prop) in &node.properties {
                if let Some(d) = &prop.default
                    && map.get(k).is_none_or(|v| non_nullable_null(v, prop))
                {
                    map.insert(k.clone(), d.clone());
                }
            }
            for (k, v) in map.iter_mut() {
                if let Some(prop) = node.properties.get(k) {
                    default(v, prop);
                } else if let Some(add) = node.additional.as_deref() {
                    if non_nullable_null(v, add) {
                        *v = add.default.clone().unwrap_or(Value::Null);
                    }
                    default(v, add);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = node.items.as_deref() {
                for v in items.iter_mut() {
                    if non_nullable_null(v, sub) {
                        *v = sub.default.clone().unwrap_or(Value::Null);
                    }
                    default(v, sub);
                }
            }
        }
        _ => {}
    }
}

/// kube-openapi's path of a value: `spec.ports[0].target`.
pub(super) fn display(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// The segments of a JSON pointer into `body`, keys and indices told apart by what they point into.
fn segments(pointer: &str, body: &Value) -> Vec<Seg> {
    let mut here = Some(body);
    let mut segs = Vec::new();
    for raw in pointer.split('/').skip(1) {
        let key = raw.replace("~1", "/").replace("~0", "~");
        match here {
            Some(Value::Array(items)) => {
                let i = key.parse::<usize>().unwrap_or(usize::MAX);
                here = items.get(i);
                segs.push(Seg::Index(i));
            }
            Some(Value::Object(map)) => {
                here = map.get(&key);
                segs.push(Seg::Key(key));
            }
            _ => {
                here = None;
                segs.push(Seg::Key(key));
            }
        }
    }
    segs
}

/// The node of `root` at `segs`.
fn node_at<'a>(root: &'a Node, segs: &[Seg]) -> Option<&'a Node> {
    segs.iter().try_fold(root, |node, seg| match seg {
        Seg::Key(k) => node.child(k),
        Seg::Index(_) => node.items.as_deref(),
    })
}

/// Go's name for the type of a decoded JSON value, with its format (`schemaInfoForType`).
fn go_type(v: &Value) -> (&'static str, &'static str) {
    match v {
        Value::Null => ("null", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Number(n) if n.is_i64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
    }
}

/// Whether Go takes this float as a JSON integer (`swag.IsFloat64AJSONInteger`): whole, within ±2^53.
fn float_is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_992.0;
    f.is_finite() && f.fract() == 0.0 && f.abs() <= MAX
}

/// The type error kube-openapi's `typeValidator` reports for `v` against `node`, if any:
/// `(bad value, detail)`.
fn type_error(node: &Node, v: &Value, path: &str) -> Option<(String, String)> {
    let fail = |expected: &str, found: &str| {
        Some((
            found.to_owned(),
            format!(
                "{path} in body must be of type {expected}: {}",
                go::quote(found)
            ),
        ))
    };
    let (found, found_format) = go_type(v);
    if v.is_null() {
        return if node.nullable {
            None
        } else {
            fail(&node.type_, "null")
        };
    }
    let float_int = found == "number"
        && node.type_ == "integer"
        && v.as_f64().is_some_and(float_is_json_integer);
    let int_float = found == "integer" && node.type_ == "number";
    let contains = node.type_ == found;
    let string_or_array = matches!(v, Value::String(_) | Value::Array(_));
    if !(string_or_array
        || node.format.is_empty()
        || contains
        || found_format == node.format
        || float_int
        || int_float)
    {
        return fail(&node.format, found_format);
    }
    if contains || float_int || int_float {
        return None;
    }
    fail(&node.type_, found)
}

/// The checks `jsonschema` leaves to kube-openapi's own number handling, for each integer in `x`: a
/// whole float past 2^53 is no integer to Go, and a value is checked against its format's range
/// (`IsValueValidAgainstRange`).
pub(super) fn integer_checks(node: &Node, x: &Value, segs: &mut Vec<Seg>, out: &mut Vec<Cause>) {
    match x {
        Value::Object(map) => {
            for (k, v) in map {
                if let Some(sub) = node.child(k) {
                    segs.push(Seg::Key(k.clone()));
                    integer_checks(sub, v, segs, out);
                    segs.pop();
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = node.items.as_deref() {
                for (i, v) in items.iter().enumerate() {
                    segs.push(Seg::Index(i));
                    integer_checks(sub, v, segs, out);
                    segs.pop();
                }
            }
        }
        Value::Number(n) if node.type_ == "integer" => {
            let path = display(segs);
            if let Some(f) = n
                .as_f64()
                .filter(|f| !n.is_i64() && f.fract() == 0.0 && !float_is_json_integer(*f))
            {
                // jsonschema takes any whole float for an integer; Go does not past 2^53.
                if let Some((bad, detail)) = type_error(node, &Value::from(f), &path) {
                    out.push(Cause::schema(
                        &path,
                        format!("Invalid value: {}: {detail}", go::quote(&bad)),
                        true,
                        segs,
                    ));
                }
            }
            // Go prints the number and parses it back as an integer of the format's width.
            let whole = n.as_i64().or_else(|| {
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "checked to be whole and in range"
                )]
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && (-(2f64.powi(63))..2f64.powi(63)).contains(f))
                    .map(|f| f as i64)
            });
            let in_range =
                whole.is_some_and(|i| node.format != "int32" || i32::try_from(i).is_ok());
            if !in_range {
                let format = if node.format.is_empty() {
                    " (default format)".to_owned()
                } else {
                    format!(" with format {}", node.format)
                };
                out.push(Cause::schema(
                    "<nil>",
                    format!("Invalid value: \"\": Checked value must be of type integer{format} in {path}"),
                    false,
                    segs,
                ));
            }
        }
        _ => {}
    }
}

/// A bound as kube-openapi prints it: as an int64 when the value checked is one, else as a float64.
fn bound(limit: &Value, checked: &Value) -> String {
    match (limit.as_f64(), checked.is_i64()) {
        #[allow(clippy::cast_possible_truncation, reason = "Go's int64(max)")]
        (Some(f), true) => (f as i64).to_string(),
        (Some(f), false) => go::float_v(f),
        (None, _) => limit.to_string(),
    }
}

/// What kube-openapi says of a failed keyword (other than `type` and `required`) on value `v` at
/// `path`: the message, whether it blocks the rules, and the keyword.
fn wording(kind: &ValidationErrorKind, v: &Value, path: &str) -> (String, bool, &'static str) {
    let bad = go::value(v);
    let count = |n: usize, limit: u64| {
        let noun = if limit == 1 { "item" } else { "items" };
        format!("Too many: {n}: must have at most {limit} {noun}")
    };
    match kind {
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| go::quote(&a.as_str().map_or_else(|| go::json(a), str::to_owned)))
                .collect();
            let allowed = allowed.join(", ");
            (
                format!("Unsupported value: {bad}: supported values: {allowed}"),
                true,
                "enum",
            )
        }
        ValidationErrorKind::Maximum { limit } => (
            format!(
                "Invalid value: {bad}: {path} in body should be less than or equal to {}",
                bound(limit, v)
            ),
            false,
            "maximum",
        ),
        ValidationErrorKind::Minimum { limit } => (
            format!(
                "Invalid value: {bad}: {path} in body should be greater than or equal to {}",
                bound(limit, v)
            ),
            false,
            "minimum",
        ),
        ValidationErrorKind::MaxLength { limit } => {
            let unit = if *limit == 1 { "byte" } else { "bytes" };
            (
                format!("Too long: may not be more than {limit} {unit}"),
                true,
                "maxLength",
            )
        }
        ValidationErrorKind::MinLength { limit } => (
            format!("Invalid value: {bad}: {path} in body should be at least {limit} chars long"),
            false,
            "minLength",
        ),
        ValidationErrorKind::Pattern { pattern } => (
            format!("Invalid value: {bad}: {path} in body should match '{pattern}'"),
            false,
            "pattern",
        ),
        ValidationErrorKind::MinItems { limit } => {
            let n = v.as_array().map_or(0, Vec::len);
            (
                format!("Invalid value: {n}: {path} in body should have at least {limit} items"),
                false,
                "minItems",
            )
        }
        ValidationErrorKind::MaxItems { limit } => (
            count(v.as_array().map_or(0, Vec::len), *limit),
            true,
            "maxItems",
        ),
        ValidationErrorKind::MaxProperties { limit } => (
            count(v.as_object().map_or(0, Map::len), *limit),
            true,
            "maxProperties",
        ),
        other => (format!("Invalid value: {bad}: {other:?}"), false, "other"),
    }
}

/// One `jsonschema` error as the API server's field error, or `None` where kube-openapi would not
/// report it.
fn cause(error: &ValidationError<'_>, body: &Value, root: &Node) -> Option<(Cause, &'static str)> {
    let mut segs = segments(error.instance_path().as_str(), body);
    let v = error.instance();
    let path = display(&segs);
    let node = node_at(root, &segs)?;
    match error.kind() {
        ValidationErrorKind::Type { .. } => {
            let (bad, detail) = type_error(node, v, &path)?;
            let body = format!("Invalid value: {}: {detail}", go::quote(&bad));
            Some((Cause::schema(&path, body, true, &segs), "type"))
        }
        ValidationErrorKind::Required { property } => {
            // Reported at the property, found at the object.
            let object = segs.clone();
            segs.push(Seg::Key(property.as_str().unwrap_or_default().to_owned()));
            let field = display(&segs);
            Some((
                Cause::schema(&field, "Required value".to_owned(), true, &object),
                "required",
            ))
        }
        kind => {
            let (body, blocking, keyword) = wording(kind, v, &path);
            Some((Cause::schema(&path, body, blocking, &segs), keyword))
        }
    }
}

/// The schema errors of `body` (the object pruned and defaulted, without `status`).
pub(super) fn check(validator: &jsonschema::Validator, root: &Node, body: &Value) -> Vec<Cause> {
    let found: Vec<(Cause, &'static str)> = validator
        .iter_errors(body)
        .filter_map(|e| cause(&e, body, root))
        .collect();
    // kube-openapi checks a string's maxLength, then minLength, then pattern, stopping at the first
    // failure.
    let failed: HashSet<(String, &'static str)> = found
        .iter()
        .map(|(c, kind)| (c.node_path(), *kind))
        .collect();
    let mut out: Vec<Cause> = found
        .into_iter()
        .filter(|(c, kind)| {
            let at = |k: &'static str| failed.contains(&(c.node_path(), k));
            match *kind {
                "minLength" => !at("maxLength"),
                "pattern" => !at("maxLength") && !at("minLength"),
                _ => true,
            }
        })
        .map(|(c, _)| c)
        .collect();
    integer_checks(root, body, &mut Vec::new(), &mut out);
    out
}
