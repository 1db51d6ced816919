//! Building request URLs: the base URL plus percent-encoded path segments and query parameters.
//!
//! Every byte outside RFC 3986's unreserved set is percent-encoded in a segment, so e-mails (`a+b@x.io`),
//! slashes and spaces in names reach the server as one segment and cannot change the route. The segments
//! `.` and `..` (which URL parsers collapse) and empty ones are refused.

use reqwest::Url;

use super::error::ApiError;

/// The base URL of Blaxel's control-plane API.
pub const DEFAULT_BASE_URL: &str = "https://api.blaxel.ai/v0";

/// Percent-encodes one path segment (everything but `A-Z a-z 0-9 - . _ ~`).
#[must_use]
pub fn encode_segment(segment: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// `base` + `/segment/...` + `?query`, each segment percent-encoded.
///
/// # Errors
/// [`ApiError::Invalid`] for an empty, `.` or `..` segment.
pub fn url(base: &Url, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, ApiError> {
    let mut path = base.path().trim_end_matches('/').to_owned();
    for segment in segments {
        if segment.is_empty() || *segment == "." || *segment == ".." {
            return Err(ApiError::Invalid {
                message: format!("invalid name in request path: {segment:?}"),
            });
        }
        path.push('/');
        path.push_str(&encode_segment(segment));
    }
    let mut url = base.clone();
    url.set_path(&path);
    url.set_query(None);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn base() -> Url {
        Url::parse("https://api.blaxel.ai/v0").unwrap()
    }

    /// E-mails and odd names stay a single, exactly-decodable path segment.
    #[test]
    fn segments_are_percent_encoded() {
        let url = url(&base(), &["users", "a.b+tag@example.com"], &[]).unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.blaxel.ai/v0/users/a.b%2Btag%40example.com"
        );
        let url = super::url(&base(), &["sandboxes", "x/../y z?#%"], &[]).unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.blaxel.ai/v0/sandboxes/x%2F..%2Fy%20z%3F%23%25"
        );
    }

    /// Trailing slashes on the base and query parameters are handled.
    #[test]
    fn base_slash_and_query() {
        let base = Url::parse("http://127.0.0.1:8080/v0/").unwrap();
        let url = url(
            &base,
            &["sandboxes"],
            &[("limit", "200"), ("cursor", "a b&c")],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/v0/sandboxes?limit=200&cursor=a+b%26c"
        );
        let root = Url::parse("http://localhost:1").unwrap();
        assert_eq!(
            super::url(&root, &["users"], &[]).unwrap().as_str(),
            "http://localhost:1/users"
        );
    }

    /// Segments a URL parser would collapse are refused rather than sent.
    #[test]
    fn dot_segments_are_refused() {
        for bad in ["", ".", ".."] {
            let error = url(&base(), &["sandboxes", bad], &[]).unwrap_err();
            assert_eq!(error.category(), "Invalid");
        }
    }
}
