//! The fields an update changes, one line each: `spec.memory: 2048 -> 4096`. Values at paths that
//! may hold a secret ([`may_be_secret`]: environment variables, headers, anything named like a
//! secret, a token, a password, a key or credentials) are shown as "changed", never printed: one rule
//! for every kind, so no caller can forget it.

use serde_json::Value;

/// The leaves that differ between `before` and `after` (objects compared key by key, an absent one
/// as empty, anything else as a whole), as `path: old -> new`, or `path: changed` where the path
/// [`may_be_secret`].
#[must_use]
pub fn changed(before: &Value, after: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

/// Words in a path (any case) whose values may be secrets.
const SECRET_WORDS: &[&str] = &[
    "env",
    "header",
    "secret",
    "token",
    "password",
    "passwd",
    "credential",
    "key",
    "auth",
];

/// Whether the value at `path` may be a secret (over-cautious: a label named `team-key` is hidden
/// too).
#[must_use]
pub fn may_be_secret(path: &str) -> bool {
    let path = path.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| path.contains(w))
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<String>) {
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
                out,
            );
        }
        return;
    }
    if may_be_secret(path) {
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
    fn secret_looking_paths_are_hidden_in_any_case() {
        for path in [
            "spec.runtime.envs",
            "requestHeaders.X-Api-Key",
            "spec.config.clientSecret",
            "labels.API_TOKEN",
            "spec.password",
            "config.Authorization",
        ] {
            assert!(may_be_secret(path), "{path}");
        }
        assert!(!may_be_secret("spec.runtime.memory"));
        assert!(!may_be_secret("displayName"));
    }

    #[test]
    fn leaves_that_differ_and_secrets_hidden() {
        let before =
            json!({"spec": {"memory": 2048, "envs": [{"name": "A", "value": "old"}], "same": 1}});
        let after = json!({"spec": {"memory": 4096, "envs": [{"name": "A", "value": "new"}], "same": 1, "region": "eu"}});
        let lines = changed(&before, &after);
        assert_eq!(
            lines,
            [
                "spec.envs: changed",
                "spec.memory: 2048 -> 4096",
                "spec.region: (none) -> \"eu\""
            ]
        );
        assert!(changed(&before, &before).is_empty());
        assert_eq!(
            changed(&Value::Null, &json!({"a": {"b": 1}})),
            ["a.b: (none) -> 1"]
        );
    }
}
