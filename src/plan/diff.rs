//! The fields an update changes, one line each: `spec.memory: 2048 -> 4096`. Values at paths the
//! caller calls secret are shown as "changed", never printed.

use serde_json::Value;

/// The leaves that differ between `before` and `after` (objects compared key by key, an absent one
/// as empty, anything else as a whole), as `path: old -> new`; `secret(path)` hides both values.
#[must_use]
pub fn changed(before: &Value, after: &Value, secret: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    walk("", before, after, secret, &mut out);
    out
}

fn walk(
    path: &str,
    before: &Value,
    after: &Value,
    secret: &dyn Fn(&str) -> bool,
    out: &mut Vec<String>,
) {
    if before == after {
        return;
    }
    let empty = serde_json::Map::new();
    let object = |v: &'_ Value, other: &Value| match v {
        Value::Object(m) => Some(m.clone()),
        Value::Null if other.is_object() => Some(empty.clone()),
        _ => None,
    };
    if let (Some(b), Some(a)) = (object(before, after), object(after, before)) {
        let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let here = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            walk(
                &here,
                b.get(k).unwrap_or(&Value::Null),
                a.get(k).unwrap_or(&Value::Null),
                secret,
                out,
            );
        }
        return;
    }
    if secret(path) {
        out.push(format!("{path}: changed"));
    } else {
        out.push(format!("{path}: {} -> {}", shown(before), shown(after)));
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "(none)".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn leaves_that_differ_and_secrets_hidden() {
        let before =
            json!({"spec": {"memory": 2048, "envs": [{"name": "A", "value": "old"}], "same": 1}});
        let after = json!({"spec": {"memory": 4096, "envs": [{"name": "A", "value": "new"}], "same": 1, "region": "eu"}});
        let lines = changed(&before, &after, &|p| p.ends_with("envs"));
        assert_eq!(
            lines,
            [
                "spec.envs: changed",
                "spec.memory: 2048 -> 4096",
                "spec.region: (none) -> \"eu\""
            ]
        );
        assert!(changed(&before, &before, &|_| false).is_empty());
        assert_eq!(
            changed(&Value::Null, &json!({"a": {"b": 1}}), &|_| false),
            ["a.b: (none) -> 1"]
        );
    }
}
