//! `x-kubernetes-validations`: the CEL rules of a schema, evaluated with `cel` (cel-rust) where the API
//! server evaluates them (`k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/validation.go`).
//!
//! One adapter: `duration()` is Go's `time.ParseDuration` (as in cel-go), not cel-rust's own parser
//! (which takes `1e3s`, no `+`, no `µs`, and rounds through floats). A parse-time macro sends each
//! `duration(x)` call to it.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::{CallExpr, Expr};
use cel::common::value::Val;
use cel::extractors::Arguments;
use cel::parser::Macro;
use cel::{Context, Env, ExecutionError, Program};
use serde_json::Value;

use super::schema::Node;
use super::{Cause, Seg, go};

/// The function `duration(x)` is rewritten to call.
const GO_DURATION: &str = "goDuration";

/// What cel-go says of a string `duration()` cannot read.
const DURATION_ERROR: &str = "type conversion error from 'string' to 'google.protobuf.Duration'";

/// The CEL environment rules are compiled and run in: the standard library, `duration()` as Go reads
/// it.
pub(super) fn env() -> Result<Arc<Env>, String> {
    let mut env = Env::stdlib();
    env.add_macro(Macro::global("duration", 1, |helper, _target, args| {
        let call = CallExpr {
            func_name: GO_DURATION.to_owned(),
            target: None,
            args: std::mem::take(args),
        };
        Ok(Some(helper.next_expr(Expr::Call(call))))
    }))
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(env))
}

/// `duration(x)` with cel-go's semantics: a string read by Go's `time.ParseDuration`, a duration as
/// it is.
fn go_duration(Arguments(args): Arguments) -> Result<cel::Value, ExecutionError> {
    match args.as_slice() {
        [cel::Value::String(s)] => go::parse_duration(s)
            .map(|ns| cel::Value::Duration(chrono::Duration::nanoseconds(ns)))
            .ok_or_else(|| ExecutionError::function_error("duration", DURATION_ERROR)),
        [d @ cel::Value::Duration(_)] => Ok(d.clone()),
        _ => Err(ExecutionError::function_error(
            "duration",
            "no such overload",
        )),
    }
}

/// One rule of a schema node.
#[derive(Debug)]
pub(super) struct Rule {
    source: String,
    message: String,
    program: Program,
    /// A transition rule: evaluated only on an update, where the old object has the field.
    uses_old_self: bool,
}

impl Rule {
    /// The rules of an `x-kubernetes-validations` list, compiled.
    pub(super) fn parse_all(rules: &Value, path: &str, env: &Env) -> Result<Vec<Rule>, String> {
        let Value::Array(rules) = rules else {
            return Err(format!("{path}: x-kubernetes-validations must be a list"));
        };
        rules
            .iter()
            .map(|r| {
                let Value::Object(map) = r else {
                    return Err(format!("{path}: a validation rule must be an object"));
                };
                if let Some(k) = map
                    .keys()
                    .find(|k| !matches!(k.as_str(), "rule" | "message"))
                {
                    return Err(format!(
                        "{path}: validation rule field {k} is not supported"
                    ));
                }
                let rule = map.get("rule").and_then(Value::as_str).unwrap_or_default();
                let program = env
                    .compile(rule)
                    .map_err(|e| format!("{path}: rule {rule:?} does not compile: {e}"))?;
                Ok(Rule {
                    source: rule.trim().to_owned(),
                    message: map
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                    uses_old_self: program.references().has_variable("oldSelf"),
                    program,
                })
            })
            .collect()
    }

    /// `ruleErrorString`: the message, or else the rule.
    fn error_string(&self) -> &str {
        if self.message.is_empty() {
            &self.source
        } else {
            &self.message
        }
    }

    /// `ruleMessageOrDefault`.
    fn failure_message(&self) -> String {
        if self.message.is_empty() {
            format!("failed rule: {}", self.source)
        } else {
            self.message.clone()
        }
    }
}

/// `x` as the CEL value the API server binds to `self`: the fields of an object with properties that
/// are null count as absent.
fn to_cel(x: &Value, node: &Node) -> cel::Value {
    match x {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => {
            let empty = Node::default();
            let sub = node.items.as_deref().unwrap_or(&empty);
            cel::Value::List(Arc::new(items.iter().map(|i| to_cel(i, sub)).collect()))
        }
        Value::Object(map) => {
            let object = !node.properties.is_empty();
            let entries: HashMap<String, cel::Value> = map
                .iter()
                .filter(|(_, v)| !(object && v.is_null()))
                .filter_map(|(k, v)| node.child(k).map(|sub| (k.clone(), to_cel(v, sub))))
                .collect();
            cel::Value::Map(entries.into())
        }
    }
}

/// The message of an evaluation error, as cel-go would word it where the adapter can.
fn error_text(e: &ExecutionError) -> String {
    match e {
        ExecutionError::FunctionError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Where the rules run: the environment and, on an update, whether an error at a node is ratcheted.
pub(super) struct Run<'a> {
    pub env: &'a Arc<Env>,
    pub ratchets: &'a dyn Fn(&[Seg]) -> bool,
}

impl Run<'_> {
    /// Evaluates every rule of `node` and below on `x` (and `old`, its correlated old value), as the
    /// API server's CEL validator walks an object.
    pub(super) fn validate(
        &self,
        node: &Node,
        x: &Value,
        old: Option<&Value>,
        segs: &mut Vec<Seg>,
        field: &str,
        out: &mut Vec<Cause>,
    ) {
        if x.is_null() {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        self.rules(node, x, old, segs, field, out);
        match x {
            Value::Object(map) => {
                for (k, v) in map {
                    let Some(sub) = node.child(k) else { continue };
                    let sub_field = if node.properties.contains_key(k) {
                        if field.is_empty() {
                            k.clone()
                        } else {
                            format!("{field}.{k}")
                        }
                    } else {
                        format!("{field}[{k}]")
                    };
                    segs.push(Seg::Key(k.clone()));
                    self.validate(sub, v, old.and_then(|o| o.get(k)), segs, &sub_field, out);
                    segs.pop();
                }
            }
            Value::Array(items) => {
                if let Some(sub) = node.items.as_deref() {
                    for (i, v) in items.iter().enumerate() {
                        // Elements of a list that is not a map list have no old value.
                        segs.push(Seg::Index(i));
                        self.validate(sub, v, None, segs, &format!("{field}[{i}]"), out);
                        segs.pop();
                    }
                }
            }
            _ => {}
        }
    }

    fn rules(
        &self,
        node: &Node,
        x: &Value,
        old: Option<&Value>,
        segs: &[Seg],
        field: &str,
        out: &mut Vec<Cause>,
    ) {
        if node.rules.is_empty() {
            return;
        }
        let mut root = Context::with_env(Arc::clone(self.env));
        if root.add_function(GO_DURATION, go_duration).is_err() {
            return;
        }
        let this = to_cel(x, node);
        let before = old.map(|o| to_cel(o, node));
        for rule in &node.rules {
            if rule.uses_old_self && before.is_none() {
                continue;
            }
            let mut scope = root.new_inner_scope();
            // Bound as `Val`s, converted here: every value `to_cel` makes converts.
            let bindings = [("self", Some(&this)), ("oldSelf", before.as_ref())];
            for (name, value) in bindings {
                if let Some(Ok(val)) = value.map(|v| Box::<dyn Val>::try_from(v.clone())) {
                    scope.add_variable_as_val(name, val);
                }
            }
            let body = match rule.program.execute(&scope) {
                Ok(cel::Value::Bool(true)) => continue,
                Ok(_) => {
                    let detail = rule.failure_message();
                    if matches!(x, Value::Object(_) | Value::Array(_)) {
                        format!("Invalid value: {detail}")
                    } else {
                        format!("Invalid value: {}: {detail}", go::value(x))
                    }
                }
                Err(e) => format!(
                    "Invalid value: {}: {} evaluating rule: {}",
                    go::quote(&node.type_),
                    error_text(&e),
                    rule.error_string()
                ),
            };
            if !rule.uses_old_self && (self.ratchets)(segs) {
                continue;
            }
            out.push(Cause::schema(field, body, false, segs));
        }
    }
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

    fn node(schema: &Value) -> Node {
        Node::parse(schema, "spec", true, &env().unwrap()).unwrap()
    }

    fn run(node: &Node, x: &Value, old: Option<&Value>) -> Vec<String> {
        let env = env().unwrap();
        let never = |_: &[Seg]| false;
        let run = Run {
            env: &env,
            ratchets: &never,
        };
        let mut out = Vec::new();
        run.validate(
            node,
            x,
            old,
            &mut vec![Seg::Key("spec".into())],
            "spec",
            &mut out,
        );
        out.into_iter()
            .map(|c| format!("{}: {}", c.field, c.body))
            .collect()
    }

    #[test]
    fn a_rule_reports_its_message_at_its_field() {
        let n = node(
            &json!({"type": "object", "properties": {"w": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self.matches('^[a-z]+$')", "message": "lower case"}]}}}),
        );
        assert!(run(&n, &json!({"w": "abc"}), None).is_empty());
        assert_eq!(
            run(&n, &json!({"w": "A"}), None),
            vec!["spec.w: Invalid value: \"A\": lower case"]
        );
    }

    #[test]
    fn a_rule_without_message_says_failed_rule_and_objects_omit_their_value() {
        let n = node(
            &json!({"type": "object", "properties": {"a": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "has(self.a) && size(self) > 0"}]}),
        );
        assert!(run(&n, &json!({"a": 1}), None).is_empty());
        assert_eq!(
            run(&n, &json!({}), None),
            vec!["spec: Invalid value: failed rule: has(self.a) && size(self) > 0"]
        );
    }

    #[test]
    fn transition_rules_run_only_with_an_old_value() {
        let n = node(
            &json!({"type": "object", "properties": {"w": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}]}}}),
        );
        assert!(run(&n, &json!({"w": "a"}), None).is_empty());
        assert!(run(&n, &json!({"w": "a"}), Some(&json!({"w": "a"}))).is_empty());
        assert!(run(&n, &json!({"w": "a"}), Some(&json!({}))).is_empty());
        assert_eq!(
            run(&n, &json!({"w": "b"}), Some(&json!({"w": "a"}))),
            vec!["spec.w: Invalid value: \"b\": immutable"]
        );
    }

    #[test]
    fn durations_compare_as_go_reads_them() {
        let n = node(
            &json!({"type": "object", "properties": {"d": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "duration(self.d) >= duration('1m')", "message": "at least 1m"}]}),
        );
        assert!(run(&n, &json!({"d": "90s"}), None).is_empty());
        assert!(run(&n, &json!({"d": "+1h"}), None).is_empty());
        assert_eq!(
            run(&n, &json!({"d": "59.999999999s"}), None),
            vec!["spec: Invalid value: at least 1m"]
        );
        assert_eq!(
            run(&n, &json!({"d": "1e3s"}), None),
            vec![
                "spec: Invalid value: \"object\": type conversion error from 'string' to 'google.protobuf.Duration' evaluating rule: at least 1m"
            ]
        );
    }

    #[test]
    fn null_fields_count_as_absent_and_all_iterates() {
        let n = node(&json!({"type": "object", "properties": {
            "t": {"type": "object", "nullable": true, "properties": {}},
            "l": {"type": "array", "items": {"type": "string"},
                  "x-kubernetes-validations": [{"rule": "self.all(e, e.size() > 1)", "message": "short"}]}},
            "x-kubernetes-validations": [{"rule": "!has(self.t)", "message": "has t"}]}));
        assert!(run(&n, &json!({"t": null, "l": ["ab"]}), None).is_empty());
        assert_eq!(
            run(&n, &json!({"t": {}, "l": ["a"]}), None),
            vec!["spec: Invalid value: has t", "spec.l: Invalid value: short"]
        );
    }
}
