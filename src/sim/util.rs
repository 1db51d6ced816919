//! Small pure helpers: hashing, validation of names and e-mail addresses, hex cursors.

/// 64-bit FNV-1a: a stable, dependency-free hash for derived identifiers (never for security).
#[must_use]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Checks a resource name: lowercase letters, digits and hyphens, starting and ending with a letter or digit,
/// at most `max` characters (the definition allows 49 for sandboxes).
///
/// # Errors
/// A sentence saying what is wrong with the name.
pub fn validate_name(kind: &str, name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{kind} name must not be empty"));
    }
    if name.len() > max {
        return Err(format!(
            "{kind} name must be at most {max} characters, got {}",
            name.len()
        ));
    }
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = !name.starts_with('-') && !name.ends_with('-');
    if ok_chars && ok_ends {
        Ok(())
    } else {
        Err(format!(
            "{kind} name {name:?} is invalid: use lowercase letters, digits and hyphens, starting and ending with a letter or digit"
        ))
    }
}

/// Checks an e-mail address the way an invitation form would: one `@`, a non-empty local part of printable
/// ASCII without spaces, a domain of dot-separated labels (letters, digits, hyphens) with at least one dot.
///
/// # Errors
/// A sentence saying what is wrong with the address.
pub fn validate_email(email: &str) -> Result<(), String> {
    let invalid = |why: &str| Err(format!("invalid email format {email:?}: {why}"));
    if email.is_empty() {
        return invalid("empty");
    }
    if email.len() > 254 {
        return invalid("longer than 254 characters");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return invalid("missing @");
    };
    if domain.contains('@') {
        return invalid("more than one @");
    }
    if local.is_empty() || local.len() > 64 {
        return invalid("the part before @ must be 1 to 64 characters");
    }
    let local_ok = local.bytes().all(|b| {
        b.is_ascii_graphic()
            && !matches!(
                b,
                b'(' | b')' | b'<' | b'>' | b',' | b';' | b':' | b'\\' | b'"' | b'[' | b']'
            )
    });
    if !local_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return invalid("the part before @ has characters that are not allowed");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return invalid("the domain needs at least one dot");
    }
    for l in &labels {
        let ok = !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-');
        if !ok {
            return invalid("the domain is not a valid host name");
        }
    }
    Ok(())
}

/// Lower-case hex of some bytes.
#[must_use]
pub fn hex_encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Decodes lower- or upper-case hex; `None` when malformed.
#[must_use]
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// E-mail validation accepts ordinary addresses and rejects the malformed ones a user might type.
    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@sub.example.com", "x_y@x-y.io"] {
            assert!(validate_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a b@c.de", "a@@b.co", "a@b..co", "a@-b.co", "é@b.co",
            "a@b.co ",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }

    /// Name validation follows the definition's rule (lowercase alphanumerics and hyphens, bounded length).
    #[test]
    fn names() {
        assert!(validate_name("sandbox", "dev-box-1", 49).is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "..", "ü"] {
            assert!(validate_name("sandbox", bad, 49).is_err(), "{bad}");
        }
        assert!(validate_name("sandbox", &"a".repeat(50), 49).is_err());
    }

    /// Hex round-trips and rejects garbage, so cursors decode safely.
    #[test]
    fn hex_round_trip() {
        let b = b"createdAt:desc|x";
        assert_eq!(hex_decode(&hex_encode(b)).as_deref(), Some(&b[..]));
        assert!(hex_decode("zz").is_none());
        assert!(hex_decode("abc").is_none());
    }
}
