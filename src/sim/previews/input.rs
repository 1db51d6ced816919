//! Validation of preview and token bodies. Every field the definitions give is checked for its type and,
//! where the value has a grammar (ports, DNS names, HTTP headers, durations, timestamps), for its form; a
//! failure is a 400 naming the field. Read-only fields (`spec.url`, `spec.region`, a token's `spec.token`
//! and `spec.expired`, every server-set `metadata` field) are ignored, as are fields the definitions do not
//! have: the simulator keeps what Blaxel's typed server would keep.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::MAX_NAME_LEN;
use crate::sim::body::field;
use crate::sim::error::ApiError;
use crate::sim::util::validate_name;

/// The `PreviewSpec` fields a client may write.
const WRITABLE_SPEC: [&str; 8] = [
    "port",
    "public",
    "prefixUrl",
    "customDomain",
    "ttl",
    "expires",
    "requestHeaders",
    "responseHeaders",
];

/// A validated `PreviewSpec`.
#[derive(Debug, Clone, Default)]
pub struct SpecInput {
    /// The writable fields, as sent (nulls and unknown fields dropped).
    pub fields: Map<String, Value>,
    /// `ttl`, parsed.
    pub ttl: Option<Duration>,
    /// `expires`, parsed.
    pub expires: Option<jiff::Timestamp>,
}

impl SpecInput {
    /// `prefixUrl`, unless absent or empty.
    #[must_use]
    pub fn prefix(&self) -> Option<&str> {
        non_empty(&self.fields, "prefixUrl")
    }

    /// `customDomain` (lower-cased), unless absent or empty.
    #[must_use]
    pub fn custom_domain(&self) -> Option<String> {
        non_empty(&self.fields, "customDomain").map(str::to_ascii_lowercase)
    }
}

/// A string field of a spec, unless absent or empty.
pub(super) fn non_empty<'a>(spec: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    spec.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A validated `Preview` body.
#[derive(Debug, Clone, Default)]
pub struct PreviewInput {
    /// `metadata.name`.
    pub name: Option<String>,
    /// `metadata.displayName`.
    pub display_name: Option<String>,
    /// `spec`, when present.
    pub spec: Option<SpecInput>,
}

/// Validates a `Preview` body (for create and update alike).
///
/// # Errors
/// 400 naming the first field that is wrong.
pub fn parse_preview(body: &Map<String, Value>) -> Result<PreviewInput, ApiError> {
    let mut input = PreviewInput::default();
    if let Some(meta) = field::opt_obj(body, "metadata", "metadata")? {
        input.name = field::opt_str(meta, "name", "metadata.name")?.map(str::to_owned);
        input.display_name =
            field::opt_str(meta, "displayName", "metadata.displayName")?.map(str::to_owned);
    }
    if let Some(spec) = field::opt_obj(body, "spec", "spec")? {
        input.spec = Some(parse_spec(spec)?);
    }
    Ok(input)
}

fn parse_spec(spec: &Map<String, Value>) -> Result<SpecInput, ApiError> {
    if let Some(port) = field::opt_uint(spec, "port", "spec.port")?
        && !(1..=65_535).contains(&port)
    {
        return Err(ApiError::bad_request(
            "spec.port must be a port number (1-65535)",
        ));
    }
    field::opt_bool(spec, "public", "spec.public")?;
    if let Some(prefix) = field::opt_str(spec, "prefixUrl", "spec.prefixUrl")?
        && !prefix.is_empty()
    {
        check_label(prefix).map_err(|why| {
            ApiError::bad_request(format!("spec.prefixUrl {prefix:?} is invalid: {why}"))
        })?;
    }
    if let Some(domain) = field::opt_str(spec, "customDomain", "spec.customDomain")?
        && !domain.is_empty()
    {
        check_domain(domain)?;
    }
    let ttl = match field::opt_str(spec, "ttl", "spec.ttl")? {
        Some(s) => Some(parse_ttl(s)?),
        None => None,
    };
    let expires = match field::opt_str(spec, "expires", "spec.expires")? {
        Some(s) => Some(parse_timestamp(s, "spec.expires")?),
        None => None,
    };
    for key in ["requestHeaders", "responseHeaders"] {
        let path = format!("spec.{key}");
        if let Some(headers) = field::opt_string_map(spec, key, &path)? {
            check_headers(&headers, &path)?;
        }
    }
    let fields = WRITABLE_SPEC
        .iter()
        .filter_map(|k| match spec.get(*k) {
            None | Some(Value::Null) => None,
            Some(v) => Some(((*k).to_owned(), v.clone())),
        })
        .collect();
    Ok(SpecInput {
        fields,
        ttl,
        expires,
    })
}

/// A DNS label: lowercase letters, digits and hyphens, not starting or ending with a hyphen, 1-63 bytes.
fn check_label(label: &str) -> Result<(), &'static str> {
    if label.is_empty() || label.len() > 63 {
        return Err("a DNS label has 1 to 63 characters");
    }
    let chars_ok = label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !chars_ok || label.starts_with('-') || label.ends_with('-') {
        return Err(
            "use lowercase letters, digits and hyphens, starting and ending with a letter or digit",
        );
    }
    Ok(())
}

/// A host name of at least two labels (case-insensitive), short enough to take a preview label in front.
fn check_domain(domain: &str) -> Result<(), ApiError> {
    let lower = domain.to_ascii_lowercase();
    let labels: Vec<&str> = lower.split('.').collect();
    let ok = labels.len() >= 2
        && lower.len() <= 253 - (63 + ".preview.".len())
        && labels.iter().all(|l| check_label(l).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "spec.customDomain {domain:?} is not a domain name (like example.com)"
        )))
    }
}

/// A `ttl` such as `1h`, `24h`, `7d`: a positive duration.
fn parse_ttl(s: &str) -> Result<Duration, ApiError> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(ApiError::bad_request(
            "spec.ttl must be a positive duration",
        )),
        Err(_) => Err(ApiError::bad_request(format!(
            "spec.ttl {s:?} is not a duration (examples: 30m, 1h, 24h, 7d)"
        ))),
    }
}

/// An ISO 8601 / RFC 3339 instant with an offset, e.g. `2024-12-31T23:59:59Z`.
pub(super) fn parse_timestamp(s: &str, path: &str) -> Result<jiff::Timestamp, ApiError> {
    s.parse::<jiff::Timestamp>().map_err(|_| {
        ApiError::bad_request(format!(
            "{path} {s:?} is not an ISO 8601 timestamp with a time zone (like 2024-12-31T23:59:59Z)"
        ))
    })
}

/// Header names must be HTTP tokens and values printable (no line breaks): the preview sets them verbatim.
fn check_headers(headers: &Map<String, Value>, path: &str) -> Result<(), ApiError> {
    for (name, value) in headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ApiError::bad_request(format!(
                "{path}: {name:?} is not a valid HTTP header name"
            )));
        }
        if value
            .as_str()
            .is_none_or(|v| HeaderValue::from_str(v).is_err())
        {
            return Err(ApiError::bad_request(format!(
                "{path}.{name} is not a valid HTTP header value"
            )));
        }
    }
    Ok(())
}

/// A validated `PreviewToken` body.
#[derive(Debug, Clone, Default)]
pub struct TokenInput {
    /// `metadata.name`; `None` when it was empty (the server names the token).
    pub name: Option<String>,
    /// `spec.expiresAt`, parsed.
    pub expires_at: Option<jiff::Timestamp>,
}

/// Validates a `PreviewToken` body: `metadata.name` is required (an empty one asks the server to choose,
/// as Blaxel's Python SDK sends); `spec.expiresAt` is optional.
///
/// # Errors
/// 400 naming the first field that is wrong.
pub fn parse_token(body: &Map<String, Value>) -> Result<TokenInput, ApiError> {
    let name = field::opt_obj(body, "metadata", "metadata")?
        .map(|m| field::opt_str(m, "name", "metadata.name"))
        .transpose()?
        .flatten()
        .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?;
    let name = if name.is_empty() {
        None
    } else {
        validate_name("token", name, MAX_NAME_LEN).map_err(ApiError::bad_request)?;
        Some(name.to_owned())
    };
    let expires_at = match field::opt_obj(body, "spec", "spec")? {
        Some(spec) => match field::opt_str(spec, "expiresAt", "spec.expiresAt")? {
            Some(s) => Some(parse_timestamp(s, "spec.expiresAt")?),
            None => None,
        },
        None => None,
    };
    Ok(TokenInput { name, expires_at })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use serde_json::json;

    use super::*;

    fn spec(v: &Value) -> Result<SpecInput, ApiError> {
        let body = json!({ "spec": v });
        parse_preview(body.as_object().unwrap()).map(|p| p.spec.unwrap_or_default())
    }

    /// Only writable fields are kept; read-only and unknown ones are dropped; ttl and expires are parsed.
    #[test]
    fn spec_keeps_writable_fields_only() {
        let s = spec(&json!({
            "port": 3000, "public": false, "url": "https://forged", "region": "x", "color": "red",
            "ttl": "1h", "expires": "2030-01-01T00:00:00+02:00", "prefixUrl": null
        }))
        .unwrap();
        let keys: Vec<&str> = s.fields.keys().map(String::as_str).collect();
        assert_eq!(keys, ["expires", "port", "public", "ttl"]);
        assert_eq!(s.ttl, Some(Duration::from_secs(3600)));
        assert_eq!(
            s.expires.unwrap().to_string(),
            "2029-12-31T22:00:00Z",
            "offsets are honoured"
        );
    }

    /// Each grammar is enforced with a 400 naming the field.
    #[test]
    fn spec_grammars_are_enforced() {
        for (bad, field) in [
            (json!({ "port": 0 }), "spec.port"),
            (json!({ "port": 65_536 }), "spec.port"),
            (json!({ "prefixUrl": "My_App" }), "spec.prefixUrl"),
            (json!({ "prefixUrl": "-app" }), "spec.prefixUrl"),
            (json!({ "prefixUrl": "a".repeat(64) }), "spec.prefixUrl"),
            (json!({ "customDomain": "localhost" }), "spec.customDomain"),
            (json!({ "customDomain": "a..b" }), "spec.customDomain"),
            (json!({ "ttl": "soon" }), "spec.ttl"),
            (json!({ "ttl": "0s" }), "spec.ttl"),
            (json!({ "expires": "2030-01-01" }), "spec.expires"),
            (
                json!({ "requestHeaders": { "Bad Name": "x" } }),
                "spec.requestHeaders",
            ),
            (
                json!({ "responseHeaders": { "X-A": "line\nbreak" } }),
                "spec.responseHeaders",
            ),
        ] {
            let e = spec(&bad).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.message.contains(field), "{bad}: {}", e.message);
        }
        assert!(spec(&json!({ "customDomain": "Preview.Example.com", "prefixUrl": "" })).is_ok());
    }

    /// A token needs `metadata.name`; an empty one is the server's to choose.
    #[test]
    fn token_names() {
        let parse = |v: Value| parse_token(v.as_object().unwrap());
        assert!(parse(json!({ "spec": {} })).is_err());
        assert!(parse(json!({ "metadata": { "name": "Bad Name" } })).is_err());
        assert_eq!(
            parse(json!({ "metadata": { "name": "" } })).unwrap().name,
            None
        );
        let t = parse(json!({ "metadata": { "name": "ci" }, "spec": { "expiresAt": "2099-01-01T00:00:00Z" } }))
            .unwrap();
        assert_eq!(t.name.as_deref(), Some("ci"));
        assert_eq!(t.expires_at.unwrap().to_string(), "2099-01-01T00:00:00Z");
    }
}
