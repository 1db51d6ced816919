//! Create and update bodies (`Workspace` objects): which fields the simulator models in each generation, which
//! it ignores because the server owns them, and how they are written into a [`WorkspaceRecord`].
//!
//! Every field the generation's definition does not know is kept verbatim ([`WorkspaceRecord::extra`]) and
//! answered back, so a client that round-trips a record loses nothing. In the 2025 generation that includes
//! 2026 fields such as `groupMappings` and `hipaaInfo`.

use serde_json::{Map, Value};

use super::record::{HipaaInfo, WorkspaceRecord};
use crate::sim::body::{field, json_type};
use crate::sim::clock::SimTime;
use crate::sim::config::ApiGeneration;
use crate::sim::error::ApiError;

/// Fields the server sets: ignored in request bodies (a client may send back what it read).
const READ_ONLY: [&str; 8] = [
    "id",
    "accountId",
    "status",
    "statusReason",
    "createdAt",
    "updatedAt",
    "createdBy",
    "updatedBy",
];

/// A `Workspace` body, checked.
#[derive(Debug, Default)]
pub struct WorkspaceInput {
    /// `name`.
    pub name: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `labels`.
    pub labels: Option<Map<String, Value>>,
    /// `region`.
    pub region: Option<String>,
    /// `runtime`.
    pub runtime: Option<Map<String, Value>>,
    /// `groupMappings` (2026).
    pub group_mappings: Option<Vec<Value>>,
    /// `hipaaInfo` without its server fields (2026).
    pub hipaa: Option<Map<String, Value>>,
    /// Every field the generation does not know, verbatim.
    pub extra: Map<String, Value>,
}

/// Reads a `Workspace` body as the generation's definition describes it.
///
/// # Errors
/// 400 naming the first field of the wrong type or value.
pub fn parse(
    body: &Map<String, Value>,
    generation: ApiGeneration,
) -> Result<WorkspaceInput, ApiError> {
    let today = generation == ApiGeneration::V2026;
    let mut input = WorkspaceInput {
        name: field::opt_str(body, "name", "name")?.map(str::to_owned),
        display_name: field::opt_str(body, "displayName", "displayName")?.map(str::to_owned),
        region: field::opt_str(body, "region", "region")?.map(str::to_owned),
        ..WorkspaceInput::default()
    };
    if input.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
        return Err(ApiError::bad_request("field region must not be empty"));
    }
    // 2025: `labels` is any object; 2026: `MetadataLabels`, string values.
    input.labels = if today {
        field::opt_string_map(body, "labels", "labels")?
    } else {
        field::opt_obj(body, "labels", "labels")?.cloned()
    };
    input.runtime = parse_runtime(body, today)?;
    for (key, value) in body {
        let modelled = matches!(
            key.as_str(),
            "name" | "displayName" | "region" | "labels" | "runtime"
        );
        let modelled_today = today && matches!(key.as_str(), "groupMappings" | "hipaaInfo");
        let ignored = READ_ONLY.contains(&key.as_str()) || (today && key == "resourceCounts");
        if !(modelled || modelled_today || ignored) {
            input.extra.insert(key.clone(), value.clone());
        }
    }
    if today {
        input.group_mappings = parse_group_mappings(body)?;
        input.hipaa = parse_hipaa(body)?;
    }
    Ok(input)
}

fn parse_runtime(
    body: &Map<String, Value>,
    today: bool,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let Some(rt) = field::opt_obj(body, "runtime", "runtime")? else {
        return Ok(None);
    };
    field::opt_str(rt, "generation", "runtime.generation")?;
    if today && let Some(sandbox) = field::opt_obj(rt, "sandbox", "runtime.sandbox")? {
        field::opt_bool(
            sandbox,
            "disableProcessLogging",
            "runtime.sandbox.disableProcessLogging",
        )?;
    }
    Ok(Some(rt.clone()))
}

fn parse_group_mappings(body: &Map<String, Value>) -> Result<Option<Vec<Value>>, ApiError> {
    let Some(list) = field::opt_array(body, "groupMappings", "groupMappings")? else {
        return Ok(None);
    };
    for (i, m) in list.iter().enumerate() {
        let path = format!("groupMappings[{i}]");
        let Value::Object(m) = m else {
            return Err(ApiError::bad_request(format!(
                "field {path} must be an object, got {}",
                json_type(m)
            )));
        };
        field::opt_str(m, "groupName", &format!("{path}.groupName"))?;
        if let Some(role) = field::opt_str(m, "role", &format!("{path}.role"))?
            && !matches!(role, "admin" | "member")
        {
            return Err(ApiError::bad_request(format!(
                "field {path}.role must be \"admin\" or \"member\", got {role:?}"
            )));
        }
    }
    Ok(Some(list.clone()))
}

fn parse_hipaa(body: &Map<String, Value>) -> Result<Option<Map<String, Value>>, ApiError> {
    let Some(info) = field::opt_obj(body, "hipaaInfo", "hipaaInfo")? else {
        return Ok(None);
    };
    let mut info = info.clone();
    // The account's addon, set server-side.
    info.remove("accountEnabled");
    match info.get_mut("unsafe") {
        None | Some(Value::Null) => {}
        Some(Value::Object(opt_out)) => {
            field::opt_bool(opt_out, "enabled", "hipaaInfo.unsafe.enabled")?;
            // Stamped server-side.
            opt_out.remove("updatedAt");
            opt_out.remove("updatedBy");
        }
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "field hipaaInfo.unsafe must be an object, got {}",
                json_type(v)
            )));
        }
    }
    Ok(Some(info))
}

/// `hipaaInfo.unsafe.enabled` of an object as written.
fn opt_out_enabled(fields: &Map<String, Value>) -> Option<bool> {
    fields.get("unsafe")?.get("enabled")?.as_bool()
}

impl WorkspaceInput {
    /// Writes what the body carries into `r`: each modelled field it carries replaces the stored one, absent
    /// ones are kept; unknown fields are added to (or replace) the stored ones. Stamps `updatedAt|By`.
    pub fn apply(self, r: &mut WorkspaceRecord, now: SimTime, by: &str) {
        if let Some(d) = self.display_name {
            r.display_name = Some(d);
        }
        if let Some(l) = self.labels {
            r.labels = l;
        }
        if let Some(region) = self.region {
            r.region = region;
        }
        if let Some(rt) = self.runtime {
            r.runtime = rt;
        }
        if let Some(g) = self.group_mappings {
            r.group_mappings = Some(g);
        }
        if let Some(fields) = self.hipaa {
            let before = r.hipaa.as_ref().and_then(|h| opt_out_enabled(&h.fields));
            let after = opt_out_enabled(&fields);
            let unsafe_changed = if after.is_some() && after != before {
                Some((now, by.to_owned()))
            } else {
                r.hipaa.as_ref().and_then(|h| h.unsafe_changed.clone())
            };
            r.hipaa = Some(HipaaInfo {
                fields,
                unsafe_changed,
            });
        }
        r.extra.extend(self.extra);
        r.updated_at = now;
        by.clone_into(&mut r.updated_by);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// Server fields are ignored, unknown ones kept; 2026 fields are unknown (kept verbatim) in 2025.
    #[test]
    fn fields_by_generation() {
        let body = obj(json!({
            "name": "w", "id": "forged", "status": "ready", "resourceCounts": {"sandboxes": 9},
            "groupMappings": [{"groupName": "eng", "role": "admin"}], "x-custom": {"a": 1}
        }));
        let old = parse(&body, ApiGeneration::V2025).unwrap();
        assert_eq!(old.name.as_deref(), Some("w"));
        assert!(old.group_mappings.is_none());
        let mut keys: Vec<&String> = old.extra.keys().collect();
        keys.sort();
        assert_eq!(keys, ["groupMappings", "resourceCounts", "x-custom"]);
        let today = parse(&body, ApiGeneration::V2026).unwrap();
        assert_eq!(today.group_mappings.map(|g| g.len()), Some(1));
        assert_eq!(today.extra.keys().collect::<Vec<_>>(), ["x-custom"]);
    }

    /// Wrong types are 400s naming the field; 2026 labels must be strings, 2025 ones need not be.
    #[test]
    fn wrong_types_rejected() {
        for (bad, gen_) in [
            (json!({"displayName": 3}), ApiGeneration::V2025),
            (json!({"labels": []}), ApiGeneration::V2025),
            (json!({"labels": {"a": 1}}), ApiGeneration::V2026),
            (json!({"region": ""}), ApiGeneration::V2025),
            (json!({"runtime": {"generation": 3}}), ApiGeneration::V2025),
            (
                json!({"groupMappings": [{"role": "owner"}]}),
                ApiGeneration::V2026,
            ),
            (json!({"groupMappings": [1]}), ApiGeneration::V2026),
            (json!({"hipaaInfo": {"unsafe": true}}), ApiGeneration::V2026),
            (
                json!({"hipaaInfo": {"unsafe": {"enabled": "yes"}}}),
                ApiGeneration::V2026,
            ),
        ] {
            assert!(parse(&obj(bad.clone()), gen_).is_err(), "{bad}");
        }
        assert!(parse(&obj(json!({"labels": {"a": 1}})), ApiGeneration::V2025).is_ok());
    }

    /// Applying replaces what is carried and keeps the rest; the opt-out stamp moves only when
    /// `unsafe.enabled` changes.
    #[test]
    fn apply_merges() {
        let mut r = WorkspaceRecord::new("w", "id".into(), SimTime(0), "a");
        let first =
            obj(json!({"displayName": "W", "x": 1, "hipaaInfo": {"unsafe": {"enabled": true}}}));
        parse(&first, ApiGeneration::V2026)
            .unwrap()
            .apply(&mut r, SimTime(5), "b");
        let second = obj(
            json!({"labels": {"k": "v"}, "y": 2, "hipaaInfo": {"unsafe": {"enabled": true}, "note": "n"}}),
        );
        parse(&second, ApiGeneration::V2026)
            .unwrap()
            .apply(&mut r, SimTime(9), "c");
        assert_eq!(r.display_name.as_deref(), Some("W"));
        assert_eq!(r.labels.get("k"), Some(&json!("v")));
        assert_eq!(r.extra.get("x"), Some(&json!(1)));
        assert_eq!(r.extra.get("y"), Some(&json!(2)));
        assert_eq!(r.updated_at, SimTime(9));
        let h = r.hipaa.unwrap();
        assert_eq!(h.unsafe_changed, Some((SimTime(5), "b".to_owned())));
        assert_eq!(h.fields.get("note"), Some(&json!("n")));
    }
}
