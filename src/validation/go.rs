//! What the API server's Go code prints and parses, where Rust's own formatting differs: `%q`, `%v` of
//! a float, `encoding/json` output, and `time.ParseDuration` (which CEL's `duration()` uses).

use std::fmt::Write as _;

use serde_json::Value;

/// Go's `strconv.Quote` (`%q`): printable characters as they are, the rest escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The shortest decimal digits of `f` (without sign or point) and its decimal exponent, as in
/// `d.ddd × 10^exp`.
fn shortest_digits(f: f64) -> (String, i32) {
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    (mantissa.replace('.', ""), exp.parse().unwrap_or(0))
}

/// `digits × 10^exp` in Go's exponent form: `1.5e+07`, `1e-07`.
fn exponent_form(digits: &str, exp: i32) -> String {
    let (first, rest) = digits.split_at(1.min(digits.len()));
    let sign = if exp < 0 { '-' } else { '+' };
    let point = if rest.is_empty() { "" } else { "." };
    format!("{first}{point}{rest}e{sign}{:02}", exp.abs())
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest digits, in exponent
/// form from 1e+06 up and below 1e-04.
pub(crate) fn float_v(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return json_float(f);
    }
    let (digits, exp) = shortest_digits(f);
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..6).contains(&exp) {
        format!("{sign}{}", plain(f.abs()))
    } else {
        format!("{sign}{}", exponent_form(&digits, exp))
    }
}

/// The shortest plain decimal form of a finite float: `3`, `0.001`, `1e20` as `100000000000000000000`.
fn plain(f: f64) -> String {
    format!("{f}")
}

/// A float as Go's `encoding/json` writes it: plain from 1e-6 to 1e21, exponent form outside.
fn json_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return "0".to_owned();
    }
    let abs = f.abs();
    if (1e-6..1e21).contains(&abs) {
        return plain(f);
    }
    let (digits, exp) = shortest_digits(f);
    let sign = if f < 0.0 { "-" } else { "" };
    let form = exponent_form(&digits, exp);
    // encoding/json shortens a two-digit negative exponent: 1e-07 becomes 1e-7.
    let form = match form.split_once("e-0") {
        Some((m, e)) => format!("{m}e-{e}"),
        None => form,
    };
    format!("{sign}{form}")
}

/// A JSON number as the API server holds it: an int64 when it is one, a float64 otherwise.
fn number(n: &serde_json::Number, float: fn(f64) -> String) -> String {
    match n.as_i64() {
        Some(i) => i.to_string(),
        None => float(n.as_f64().unwrap_or(0.0)),
    }
}

/// A string as Go's `encoding/json` writes it (HTML characters escaped as `\u003c`).
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `v` as Go's `json.Marshal` writes it (object keys sorted).
pub(crate) fn json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&number(n, json_float)),
            Value::String(s) => json_string(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(key, out);
                    out.push(':');
                    if let Some(item) = map.get(key) {
                        write(item, out);
                    }
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// A bad value as `field.Error` prints it: numbers and booleans with `%v`, strings with `%q`, anything
/// else as JSON.
pub(crate) fn value(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n, float_v),
        Value::String(s) => quote(s),
        other => json(other),
    }
}

/// 1<<63: the bound of Go's duration arithmetic.
const LIMIT: u64 = 1 << 63;

/// One `number unit` of a Go duration (`1.5h`): its nanoseconds and the rest of the string.
fn duration_component(s: &str) -> Option<(u64, &str)> {
    let bytes = s.as_bytes();
    if !(bytes.first() == Some(&b'.') || bytes.first().is_some_and(u8::is_ascii_digit)) {
        return None;
    }
    // [0-9]*
    let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut whole: u64 = 0;
    for &b in &bytes[..int_len] {
        if whole > LIMIT / 10 {
            return None;
        }
        whole = whole * 10 + u64::from(b - b'0');
        if whole > LIMIT {
            return None;
        }
    }
    let mut rest = &s[int_len..];
    // (\.[0-9]*)?: digits past what a u64 holds only stop adding precision.
    let (mut fraction, mut scale, mut frac_len) = (0u64, 1f64, 0usize);
    if let Some(after) = rest.strip_prefix('.') {
        let mut overflow = false;
        for &b in after.as_bytes().iter().take_while(|b| b.is_ascii_digit()) {
            frac_len += 1;
            if overflow || fraction > (LIMIT - 1) / 10 {
                overflow = true;
                continue;
            }
            let next = fraction * 10 + u64::from(b - b'0');
            if next > LIMIT {
                overflow = true;
                continue;
            }
            fraction = next;
            scale *= 10.0;
        }
        rest = &after[frac_len..];
    }
    if int_len == 0 && frac_len == 0 {
        return None;
    }
    // The unit: up to the next digit or period.
    let unit_len = rest
        .char_indices()
        .find(|(_, c)| *c == '.' || c.is_ascii_digit())
        .map_or(rest.len(), |(i, _)| i);
    let unit: u64 = match &rest[..unit_len] {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    if whole > LIMIT / unit {
        return None;
    }
    let mut v = whole * unit;
    if fraction > 0 {
        // As Go does: float64 is accurate to the nanosecond for fractions of hours.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "Go's own arithmetic, reproduced"
        )]
        let part = (fraction as f64 * (unit as f64 / scale)) as u64;
        v += part;
        if v > LIMIT {
            return None;
        }
    }
    Some((v, &rest[unit_len..]))
}

/// Go's `time.ParseDuration`, in nanoseconds; `None` where Go returns an error.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (v, after) = duration_component(rest)?;
        // Go's uint64 addition, wrapping included.
        total = total.wrapping_add(v);
        if total > LIMIT {
            return None;
        }
        rest = after;
    }
    if neg {
        #[allow(
            clippy::cast_possible_wrap,
            reason = "Go's -Duration(d): 1<<63 wraps to the least int64"
        )]
        return Some((total as i64).wrapping_neg());
    }
    i64::try_from(total).ok()
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

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(float_v(1e20), "1e+20");
        assert_eq!(float_v(80.5), "80.5");
        assert_eq!(float_v(65535.0), "65535");
        assert_eq!(float_v(123_456.0), "123456");
        assert_eq!(float_v(1e6), "1e+06");
        assert_eq!(float_v(1_234_567.0), "1.234567e+06");
        assert_eq!(float_v(1e21), "1e+21");
        assert_eq!(float_v(0.000_01), "1e-05");
        assert_eq!(float_v(-1.25e-7), "-1.25e-07");
        assert_eq!(json(&json!(1e-7)), "1e-7");
        assert_eq!(json(&json!(1e21)), "1e+21");
    }

    #[test]
    fn json_is_go_json() {
        assert_eq!(
            json(&json!({"b": [1, 2.5, "<x>"], "a": null, "c": true})),
            r#"{"a":null,"b":[1,2.5,"\u003cx\u003e"],"c":true}"#
        );
        assert_eq!(value(&json!("x")), "\"x\"");
        assert_eq!(value(&json!(7)), "7");
        assert_eq!(value(&json!(null)), "null");
    }

    /// The cases of Go's own `time.ParseDuration` tests, valid and invalid.
    #[test]
    fn durations_parse_like_go() {
        let ns = |h: i64, m: i64, s: i64, n: i64| ((h * 60 + m) * 60 + s) * 1_000_000_000 + n;
        for (input, want) in [
            ("0", 0),
            ("5s", ns(0, 0, 5, 0)),
            ("30s", ns(0, 0, 30, 0)),
            ("1478s", ns(0, 0, 1478, 0)),
            ("-5s", -ns(0, 0, 5, 0)),
            ("+5s", ns(0, 0, 5, 0)),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", ns(0, 0, 5, 0)),
            ("5.6s", ns(0, 0, 5, 600_000_000)),
            ("5.s", ns(0, 0, 5, 0)),
            (".5s", ns(0, 0, 0, 500_000_000)),
            ("1.004s", ns(0, 0, 1, 4_000_000)),
            ("100.00100s", ns(0, 0, 100, 1_000_000)),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", ns(0, 0, 14, 0)),
            ("15m", ns(0, 15, 0, 0)),
            ("16h", ns(16, 0, 0, 0)),
            ("3h30m", ns(3, 30, 0, 0)),
            ("10.5s4m", ns(0, 4, 10, 500_000_000)),
            ("-2m3.4s", -ns(0, 2, 3, 400_000_000)),
            ("1h2m3s4ms5us6ns", ns(1, 2, 3, 4_005_006)),
            ("39h9m14.425s", ns(39, 9, 14, 425_000_000)),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", ns(0, 20, 0, 0)),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("0.100000000000000000000h", ns(0, 6, 0, 0)),
            ("0.830103483285477580700h", ns(0, 49, 48, 372_539_827)),
        ] {
            assert_eq!(parse_duration(input), Some(want), "{input}");
        }
        for input in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{85}\u{85}",
            "1e3s",
            "9223372036854775810ns",
            "9223372036854775808ns",
            "-9223372036854775809ns",
            "9223372036854775.808us",
            "3000000h",
        ] {
            assert_eq!(parse_duration(input), None, "{input}");
        }
    }
}
