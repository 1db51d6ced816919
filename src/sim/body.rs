//! Request extractors that never let axum's plain-text rejections through: a JSON-object body read with a
//! size limit ([`JsonObject`]) and path parameters ([`SimPath`]), both answering malformed input with the
//! simulator's JSON 400 (or 413 for oversized bodies).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{ApiError, ErrorShape};
use super::state::Sim;

/// How much of an oversized body is read and thrown away before answering 413, so that the client (still
/// sending) reads the 413 instead of a reset connection. Beyond this the connection is simply closed.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// How long draining may take.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// A request body that must be a JSON object.
#[derive(Debug, Clone)]
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<Arc<Sim>> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, sim: &Arc<Sim>) -> Result<Self, Self::Rejection> {
        let shape = ErrorShape::for_route(req.method(), req.uri().path());
        let limit = sim.config.max_body_bytes;
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > DRAIN_LIMIT) {
            return Err(ApiError::too_large(limit).with_shape(shape));
        }
        let mut stream = req.into_body().into_data_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut seen: usize = 0;
        let mut too_large = false;
        let read = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))?;
                seen = seen.saturating_add(chunk.len());
                if seen > limit {
                    // Keep reading (and discarding) so the client gets to read the 413.
                    too_large = true;
                    buf = Vec::new();
                    if seen > DRAIN_LIMIT {
                        break;
                    }
                    continue;
                }
                buf.extend_from_slice(&chunk);
            }
            Ok::<(), ApiError>(())
        };
        match tokio::time::timeout(DRAIN_TIME, read).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.with_shape(shape)),
            Err(_) if too_large => {}
            Err(_) => {
                return Err(
                    ApiError::bad_request("timed out reading the request body").with_shape(shape)
                );
            }
        }
        if too_large {
            return Err(ApiError::too_large(limit).with_shape(shape));
        }
        parse_object(&buf)
            .map(JsonObject)
            .map_err(|e| e.with_shape(shape))
    }
}

/// Parses bytes as a JSON object with a precise 400 on anything else.
///
/// # Errors
/// 400 for an empty body, malformed JSON or JSON that is not an object.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is required (a JSON object)",
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::bad_request(format!(
            "request body must be a JSON object, got {}",
            json_type(&other)
        ))),
        Err(e) => Err(ApiError::bad_request(format!(
            "malformed JSON in request body: {e}"
        ))),
    }
}

/// The JSON type name of a value, for error messages.
#[must_use]
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Path parameters, with decoding failures answered as JSON 400.
#[derive(Debug, Clone)]
pub struct SimPath<T>(pub T);

impl<T> FromRequestParts<Arc<Sim>> for SimPath<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        sim: &Arc<Sim>,
    ) -> Result<Self, Self::Rejection> {
        let shape = ErrorShape::for_route(&parts.method, parts.uri.path());
        match Path::<T>::from_request_parts(parts, sim).await {
            Ok(Path(t)) => Ok(Self(t)),
            Err(e) => Err(
                ApiError::bad_request(format!("invalid path: {}", e.body_text())).with_shape(shape),
            ),
        }
    }
}

/// Typed access to fields of a JSON object, each failing with a 400 naming the field and expected type.
pub mod field {
    use serde_json::{Map, Value};

    use super::json_type;
    use crate::sim::error::ApiError;

    fn wrong(path: &str, want: &str, got: &Value) -> ApiError {
        ApiError::bad_request(format!(
            "field {path} must be {want}, got {}",
            json_type(got)
        ))
    }

    /// An optional string (`null` counts as absent).
    pub fn opt_str<'a>(
        m: &'a Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<&'a str>, ApiError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(wrong(path, "a string", v)),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(
        m: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<bool>, ApiError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(wrong(path, "a boolean", v)),
        }
    }

    /// An optional non-negative integer.
    pub fn opt_uint(
        m: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<u64>, ApiError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| wrong(path, "a non-negative integer", v)),
        }
    }

    /// An optional object.
    pub fn opt_obj<'a>(
        m: &'a Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(v) => Err(wrong(path, "an object", v)),
        }
    }

    /// An optional array.
    pub fn opt_array<'a>(
        m: &'a Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<&'a Vec<Value>>, ApiError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(wrong(path, "an array", v)),
        }
    }

    /// An optional map of string to string (labels, headers).
    pub fn opt_string_map(
        m: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<Map<String, Value>>, ApiError> {
        let Some(o) = opt_obj(m, key, path)? else {
            return Ok(None);
        };
        for (k, v) in o {
            if !v.is_string() {
                return Err(wrong(&format!("{path}.{k}"), "a string", v));
            }
        }
        Ok(Some(o.clone()))
    }
}

/// Query parameters, with decoding failures answered as JSON 400 (an absent query is an empty one).
#[derive(Debug, Clone)]
pub struct SimQuery<T>(pub T);

impl<T> FromRequestParts<Arc<Sim>> for SimQuery<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _sim: &Arc<Sim>,
    ) -> Result<Self, Self::Rejection> {
        let shape = ErrorShape::for_route(&parts.method, parts.uri.path());
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(t)) => Ok(Self(t)),
            Err(e) => Err(ApiError::bad_request(format!(
                "invalid query string: {}",
                e.body_text()
            ))
            .with_shape(shape)),
        }
    }
}
