//! Turning an HTTP answer (status, `Retry-After` headers, error body) into a typed [`ApiError`].
//!
//! Pure functions, so every mapping is unit-tested without a server. Error bodies come in two shapes
//! (`{error, code, message}` and, from sandbox create, `{code, message, details, status_code, ...}`); both
//! are read tolerantly, and anything else falls back to the status text.
//!
//! Every error leaving the HTTP client passes through [`outgoing`] (and every other message, such as an
//! unreadable record's, through [`outgoing_text`]): the caller's API key is scrubbed first, in case a server
//! ever echoes it back, and only then is the message cut to a bounded length. Cutting first could split the
//! key and leave its first characters, which scrubbing no longer recognises, in status and Events.

use std::time::Duration;

use serde_json::Value;

use super::error::ApiError;
use super::secret::ApiKey;

/// Longest remote message kept in an error (in characters).
const MAX_MESSAGE_CHARS: usize = 300;

/// The error for a non-success `status` with `body`; `retry_after` comes from [`retry_after`].
#[must_use]
pub fn from_status(status: u16, body: &[u8], retry_after: Option<Duration>) -> ApiError {
    let message = || remote_message(status, body);
    match status {
        401 => ApiError::Unauthorized { message: message() },
        403 => ApiError::Forbidden { message: message() },
        404 => ApiError::NotFound { message: message() },
        409 => ApiError::Conflict { message: message() },
        429 => ApiError::RateLimited { retry_after },
        // 408 is the server giving up waiting for us: as transient as a 5xx, and Blaxel's SDKs retry it.
        408 | 500..=599 => ApiError::Unavailable {
            message: message(),
            retry_after,
        },
        _ => ApiError::Invalid { message: message() },
    }
}

/// A readable message from an error body: `code: message`, else `error`, else the status text.
#[must_use]
pub fn remote_message(status: u16, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    // `code` is a string like SANDBOX_ALREADY_EXISTS in some bodies and the numeric status in others.
    let code = field("code");
    let text = match (code, field("message"), field("error")) {
        (Some(code), Some(message), _) => format!("{code}: {message}"),
        (None, Some(message), _) => message.to_owned(),
        (_, None, Some(error)) => error.to_owned(),
        (Some(code), None, None) => code.to_owned(),
        (None, None, None) => status_text(status),
    };
    // Not cut here: the key must be scrubbed from the whole text first (see [`outgoing`]).
    text
}

/// `404 Not Found`, or just the number for unregistered codes.
fn status_text(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map_or_else(|| status.to_string(), |reason| format!("{status} {reason}"))
}

/// `text` cut to [`MAX_MESSAGE_CHARS`] characters, with `…` when something was cut.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The least wait the server asked for: `Retry-After-Ms` (milliseconds) wins over `Retry-After`
/// (delay-seconds or an HTTP date, relative to `now`). Unparseable values are ignored.
#[must_use]
pub fn retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: jiff::Timestamp,
) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(|v| parse_seconds(v.trim(), 1e-3)) {
        return Some(ms);
    }
    let value = retry_after?.trim();
    parse_seconds(value, 1.0).or_else(|| {
        let date = jiff::fmt::rfc2822::DateTimeParser::new()
            .parse_timestamp(value)
            .ok()?;
        // A date already past means "now".
        Some(
            now.duration_until(date)
                .try_into()
                .unwrap_or(Duration::ZERO),
        )
    })
}

/// A non-negative decimal number of `unit` seconds (fractions tolerated).
fn parse_seconds(value: &str, unit: f64) -> Option<Duration> {
    let number: f64 = value.parse().ok()?;
    Duration::try_from_secs_f64(number * unit).ok()
}

/// Removes the API key's text from a message (defence in depth: no known server echoes it).
#[must_use]
pub fn scrub(message: &str, key: &ApiKey) -> String {
    scrub_all(message, &[key.expose()])
}

/// What an error may say once it leaves the client: `message` scrubbed of the key, then cut to a bounded
/// length (in that order, so a key straddling the cut cannot leave a prefix behind).
#[must_use]
pub fn outgoing_text(message: &str, key: &ApiKey) -> String {
    outgoing_text_with(message, key, &[])
}

/// [`outgoing_text`], scrubbing `also` as well (secret values the object carries).
#[must_use]
pub fn outgoing_text_with(message: &str, key: &ApiKey, also: &[&str]) -> String {
    truncate(&scrub_values(&scrub(message, key), also))
}

/// [`scrub_all`] for secret values other than keys (a Secret's, which may be a short PIN): when one
/// is too short to be searched for without mangling ordinary words, the whole message is withheld.
fn scrub_values(message: &str, secrets: &[&str]) -> String {
    if secrets
        .iter()
        .map(|s| s.trim())
        .any(|s| !s.is_empty() && s.len() < SHORTEST)
    {
        return WITHHELD.to_owned();
    }
    scrub_all(message, secrets)
}

/// What stands for a message that may quote a secret too short to be found in it.
pub const WITHHELD: &str = "(message withheld: it may quote a secret value)";

/// Secrets shorter than this are not searched for (they would mangle ordinary words): a message that
/// may quote one is withheld whole instead.
const SHORTEST: usize = 4;

/// Removes each of `secrets` from a message, in every form a server quoting it may show: as it is,
/// trimmed (a value read from a file ends with a newline), JSON-escaped (a body quoted back: `\"`,
/// `\n`), and each long line of a multi-line value alone (a PEM key's body quoted in part, its lines
/// split by newlines or by `\n` escapes). Values too short to be searched for are left (Blaxel
/// refuses such keys; for other secrets, see [`scrub_values`]).
fn scrub_all(message: &str, secrets: &[&str]) -> String {
    let mut out = message.to_owned();
    for secret in secrets {
        for form in forms(secret) {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), "<redacted>");
            }
        }
    }
    out
}

/// The forms of `secret` [`scrub_all`] removes, longest first (so a part never leaves the rest of a
/// whole behind).
fn forms(secret: &str) -> Vec<String> {
    const SHORTEST_LINE: usize = 16;
    if secret.trim().len() < SHORTEST {
        return Vec::new();
    }
    let escaped = |s: &str| {
        let quoted = serde_json::Value::String(s.to_owned()).to_string();
        quoted[1..quoted.len() - 1].to_owned()
    };
    let trimmed = secret.trim();
    let mut forms = vec![
        secret.to_owned(),
        escaped(secret),
        trimmed.to_owned(),
        escaped(trimmed),
    ];
    // Lines split on newlines, and on `\n` escapes too: a JSON credential holds its PEM key so.
    let unescaped = secret.replace("\\n", "\n");
    if unescaped.contains('\n') {
        for line in unescaped
            .lines()
            .map(str::trim)
            .filter(|l| l.len() >= SHORTEST_LINE)
        {
            forms.push(line.to_owned());
            forms.push(escaped(line));
        }
    }
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    forms
}

/// Every error leaving the client: each message it carries goes through [`outgoing_text`].
#[must_use]
pub fn outgoing(error: ApiError, key: &ApiKey) -> ApiError {
    outgoing_with(error, key, &[])
}

/// [`outgoing`], scrubbing `also` as well (secret values the request carried), before the cut.
#[must_use]
pub fn outgoing_with(error: ApiError, key: &ApiKey, also: &[&str]) -> ApiError {
    let text = |message: String| truncate(&scrub_values(&scrub(&message, key), also));
    match error {
        ApiError::NotFound { message } => ApiError::NotFound {
            message: text(message),
        },
        ApiError::Conflict { message } => ApiError::Conflict {
            message: text(message),
        },
        ApiError::Unauthorized { message } => ApiError::Unauthorized {
            message: text(message),
        },
        ApiError::Forbidden { message } => ApiError::Forbidden {
            message: text(message),
        },
        ApiError::Invalid { message } => ApiError::Invalid {
            message: text(message),
        },
        ApiError::Unavailable {
            message,
            retry_after,
        } => ApiError::Unavailable {
            message: text(message),
            retry_after,
        },
        ApiError::Decode { message } => ApiError::Decode {
            message: text(message),
        },
        limited @ ApiError::RateLimited { .. } => limited,
    }
}

/// A decoding error that names what was being read and where, but never quotes the body (which may hold
/// preview tokens).
#[must_use]
pub fn decode_error(what: &str, error: &serde_json::Error) -> ApiError {
    ApiError::Decode {
        message: decode_message(what, error),
    }
}

/// The text of [`decode_error`]: the kind of failure, what was read and where, never the input.
#[must_use]
pub fn decode_message(what: &str, error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    if error.line() == 0 {
        format!("{kind} in {what}")
    } else {
        format!(
            "{kind} in {what} at line {} column {}",
            error.line(),
            error.column()
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// A secret quoted back JSON-escaped, or one line of a multi-line secret quoted alone, is scrubbed
    /// like the raw value.
    /// A value read from a file (its newline kept) is found without it; a value too short to be
    /// searched for withholds the message whole.
    #[test]
    fn secret_values_trimmed_and_short_ones_withheld() {
        let key = ApiKey::new("the-api-key-1234");
        let quoted = outgoing_text_with("auth failed: hunter2-pw-7c1", &key, &["hunter2-pw-7c1\n"]);
        assert_eq!(quoted, "auth failed: <redacted>");
        assert_eq!(
            outgoing_text_with("pin 731 refused", &key, &["731"]),
            WITHHELD
        );
        assert_eq!(outgoing_text_with("all good", &key, &[]), "all good");
    }

    #[test]
    fn secrets_are_scrubbed_in_every_quoted_form() {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
        let secret = format!(
            "{{\"type\":\"sa\",\"key\":\"-----BEGIN KEY-----\\n{body}\\n-----END KEY-----\\n\"}}"
        );
        let raw = format!("refused: {secret}");
        let quoted = format!(
            "invalid secret {}",
            serde_json::json!({ "credentials": secret })
        );
        let partial = format!("bad key line {body}");
        for message in [raw, quoted, partial] {
            let out = scrub_all(&message, &[&secret]);
            assert!(!out.contains(body), "{out}");
            assert!(out.contains("<redacted>"), "{out}");
        }
        let multi = format!("-----BEGIN KEY-----\n{body}\n-----END KEY-----\n");
        let out = scrub_all(&format!("at line 2: {body}"), &[&multi]);
        assert!(!out.contains(body), "{out}");
        assert_eq!(
            scrub_all("a bcd word", &["bcd"]),
            "a bcd word",
            "too short to be a secret"
        );
    }

    fn now() -> jiff::Timestamp {
        "2026-11-28T03:00:00Z".parse().unwrap()
    }

    /// Each status class maps to its typed variant, with the remote message.
    #[test]
    fn status_classes_map_to_variants() {
        let body = br#"{"error":"Not Found","code":404,"message":"sandbox a not found"}"#;
        assert_eq!(
            from_status(404, body, None),
            ApiError::NotFound {
                message: "sandbox a not found".into()
            }
        );
        let cases: [(u16, &str); 9] = [
            (400, "Invalid"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (408, "Unavailable"),
            (409, "Conflict"),
            (422, "Invalid"),
            (429, "RateLimited"),
            (500, "Unavailable"),
            (503, "Unavailable"),
        ];
        for (status, category) in cases {
            assert_eq!(
                from_status(status, b"", None).category(),
                category,
                "{status}"
            );
        }
    }

    /// The sandbox-create error shape (`code` string + `message`) is understood.
    #[test]
    fn sandbox_error_shape() {
        let body = br#"{"code":"SANDBOX_ALREADY_EXISTS","message":"sandbox a exists","details":{},"status_code":409}"#;
        assert_eq!(
            from_status(409, body, None),
            ApiError::Conflict {
                message: "SANDBOX_ALREADY_EXISTS: sandbox a exists".into()
            }
        );
    }

    /// Bodies that are empty, not JSON, or JSON without a message fall back sensibly.
    #[test]
    fn tolerant_fallbacks() {
        assert_eq!(remote_message(502, b""), "502 Bad Gateway");
        assert_eq!(remote_message(502, b"<html>oops</html>"), "502 Bad Gateway");
        assert_eq!(remote_message(400, br#"{"error":"bad body"}"#), "bad body");
        assert_eq!(
            remote_message(400, br#"{"message":"  "}"#),
            "400 Bad Request"
        );
        assert_eq!(remote_message(499, b"[]"), "499");
    }

    /// Long remote messages are cut to a bounded length (on a character boundary) on the way out.
    #[test]
    fn long_messages_are_cut_on_the_way_out() {
        let long = format!(r#"{{"message":"{}"}}"#, "é".repeat(1000));
        let error = outgoing(
            from_status(400, long.as_bytes(), None),
            &ApiKey::new("bl_k3y"),
        );
        let ApiError::Invalid { message } = error else {
            unreachable!("400 is Invalid");
        };
        assert_eq!(message.chars().count(), 301);
        assert!(message.ends_with('…'));
    }

    /// A key straddling the length cut is scrubbed before the cut: no prefix of it survives.
    #[test]
    fn key_straddling_the_cut_leaves_no_prefix() {
        let secret = "bl_Zq8wX3vR7tY2uK9pL4mN";
        let key = ApiKey::new(secret);
        let body = format!(r#"{{"message":"{}{secret} trailing"}}"#, "x".repeat(295));
        for error in [
            from_status(401, body.as_bytes(), None),
            from_status(503, body.as_bytes(), None),
            ApiError::Decode {
                message: format!("{}{secret}", "y".repeat(295)),
            },
        ] {
            let shown = outgoing(error, &key).to_string();
            for len in 5..=secret.len() {
                assert!(
                    !shown.contains(&secret[..len]),
                    "prefix {len} leaked: {shown}"
                );
            }
        }
    }

    /// 429 and 503 carry the server's Retry-After.
    #[test]
    fn retry_after_is_carried() {
        let wait = Some(Duration::from_secs(1));
        assert_eq!(
            from_status(429, b"", wait),
            ApiError::RateLimited { retry_after: wait }
        );
        assert_eq!(from_status(503, b"", wait).retry_after(), wait);
    }

    /// Retry-After is read as seconds, HTTP date (past dates mean now) or Retry-After-Ms, which wins.
    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after(None, Some("2"), now()),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(None, Some(" 1.5 "), now()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(None, Some("Sat, 28 Nov 2026 03:00:07 GMT"), now()),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(None, Some("Sat, 28 Nov 2026 02:00:00 GMT"), now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(Some("250"), Some("9"), now()),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(Some("junk"), Some("3"), now()),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_after(None, Some("-1"), now()), None);
        assert_eq!(retry_after(None, Some("soon"), now()), None);
        assert_eq!(retry_after(None, None, now()), None);
    }

    /// An API key echoed by a server never survives into an error message.
    #[test]
    fn key_is_scrubbed() {
        let key = ApiKey::new("bl_secret_key_123");
        let body = br#"{"message":"bad token bl_secret_key_123"}"#;
        let error = outgoing(from_status(401, body, None), &key);
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains("bl_secret_key_123"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }

    /// Decode errors locate the problem without quoting the body.
    #[test]
    fn decode_error_does_not_quote_the_body() {
        let err = serde_json::from_slice::<Vec<u32>>(br#"["tok_very_secret"]"#).unwrap_err();
        let error = decode_error("a list of numbers", &err);
        assert_eq!(error.category(), "Decode");
        assert!(!error.to_string().contains("tok_very_secret"), "{error}");
        assert!(error.to_string().contains("line 1"), "{error}");
    }
}
