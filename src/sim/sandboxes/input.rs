//! Create and update bodies: what they may say ([`SandboxInput`]), how they are checked, and what the server
//! fills in (region, and `enabled` in the 2026 generation).

use serde_json::{Map, Value, json};

use super::DEFAULT_REGION;
use crate::sim::body::field;
use crate::sim::config::{ApiGeneration, SimConfig};
use crate::sim::error::ApiError;

/// What a create or update body says, validated.
#[derive(Debug, Default)]
pub(super) struct SandboxInput {
    pub(super) name: Option<String>,
    pub(super) display_name: Option<String>,
    pub(super) labels: Option<Map<String, Value>>,
    pub(super) external_id: Option<String>,
    pub(super) spec: Option<Map<String, Value>>,
}

/// Reads and checks a create or update body.
pub(super) fn parse_input(body: &Map<String, Value>) -> Result<SandboxInput, ApiError> {
    let mut input = SandboxInput::default();
    if let Some(meta) = field::opt_obj(body, "metadata", "metadata")? {
        input.name = field::opt_str(meta, "name", "metadata.name")?.map(str::to_owned);
        input.display_name =
            field::opt_str(meta, "displayName", "metadata.displayName")?.map(str::to_owned);
        if let Some(d) = &input.display_name
            && d.chars().count() > 63
        {
            return Err(ApiError::bad_request(
                "metadata.displayName must be at most 63 characters",
            ));
        }
        input.labels = field::opt_string_map(meta, "labels", "metadata.labels")?;
        input.external_id =
            field::opt_str(meta, "externalId", "metadata.externalId")?.map(str::to_owned);
    }
    if let Some(spec) = field::opt_obj(body, "spec", "spec")? {
        validate_spec(spec)?;
        input.spec = Some(spec.clone());
    }
    Ok(input)
}

/// Type-checks the spec fields the simulator (and the operator) rely on; other fields pass through.
fn validate_spec(spec: &Map<String, Value>) -> Result<(), ApiError> {
    field::opt_bool(spec, "enabled", "spec.enabled")?;
    field::opt_str(spec, "region", "spec.region")?;
    field::opt_array(spec, "volumes", "spec.volumes")?;
    if let Some(lc) = field::opt_obj(spec, "lifecycle", "spec.lifecycle")? {
        field::opt_array(
            lc,
            "expirationPolicies",
            "spec.lifecycle.expirationPolicies",
        )?;
    }
    let Some(rt) = field::opt_obj(spec, "runtime", "spec.runtime")? else {
        return Ok(());
    };
    field::opt_str(rt, "image", "spec.runtime.image")?;
    field::opt_uint(rt, "memory", "spec.runtime.memory")?;
    field::opt_str(rt, "ttl", "spec.runtime.ttl")?;
    field::opt_str(rt, "expires", "spec.runtime.expires")?;
    if let Some(ports) = field::opt_array(rt, "ports", "spec.runtime.ports")? {
        for (i, p) in ports.iter().enumerate() {
            let path = format!("spec.runtime.ports[{i}]");
            let Value::Object(p) = p else {
                return Err(ApiError::bad_request(format!("{path} must be an object")));
            };
            let target = field::opt_uint(p, "target", &format!("{path}.target"))?
                .ok_or_else(|| ApiError::bad_request(format!("{path}.target is required")))?;
            if !(1..=65_535).contains(&target) {
                return Err(ApiError::bad_request(format!(
                    "{path}.target must be a port number (1-65535)"
                )));
            }
            field::opt_str(p, "name", &format!("{path}.name"))?;
            field::opt_str(p, "protocol", &format!("{path}.protocol"))?;
        }
    }
    if let Some(envs) = field::opt_array(rt, "envs", "spec.runtime.envs")? {
        for (i, e) in envs.iter().enumerate() {
            let path = format!("spec.runtime.envs[{i}]");
            let Value::Object(e) = e else {
                return Err(ApiError::bad_request(format!("{path} must be an object")));
            };
            field::opt_str(e, "name", &format!("{path}.name"))?
                .ok_or_else(|| ApiError::bad_request(format!("{path}.name is required")))?;
            field::opt_str(e, "value", &format!("{path}.value"))?;
        }
    }
    Ok(())
}

/// An image reference must be non-empty, without whitespace or control characters, at most 255 bytes.
pub(super) fn check_image(image: &str) -> Result<(), ApiError> {
    let ok = !image.is_empty()
        && image.len() <= 255
        && !image.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "INVALID_IMAGE",
            format!("Sandbox image {image:?} is not a valid image reference"),
        ))
    }
}

/// `spec.runtime.image`, when it is a string.
pub(super) fn image_of(spec: &Map<String, Value>) -> Option<&str> {
    spec.get("runtime")?.get("image")?.as_str()
}

/// `spec.runtime.memory`, when it is an integer.
pub(super) fn memory_of(spec: &Map<String, Value>) -> Option<u64> {
    spec.get("runtime")?.get("memory")?.as_u64()
}

/// Fills in what the server decides: the region and (2026) `enabled`.
pub(super) fn normalize_spec(mut spec: Map<String, Value>, cfg: &SimConfig) -> Map<String, Value> {
    if !spec.get("region").is_some_and(Value::is_string) {
        spec.insert("region".into(), json!(DEFAULT_REGION));
    }
    if cfg.generation == ApiGeneration::V2026 && !spec.get("enabled").is_some_and(Value::is_boolean)
    {
        spec.insert("enabled".into(), json!(true));
    }
    spec
}
