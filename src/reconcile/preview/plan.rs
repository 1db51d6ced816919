//! Pure planning for a SandboxPreview: the preview record (create, or one update on a real difference)
//! and the token of a private preview (keep, renew, delete the operator's others). No IO.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::secret::SecretToken;
use crate::blaxel::model::{Preview, PreviewMetadata, PreviewSpec, PreviewToken};
use crate::crd::SandboxPreviewSpec;

/// The next write to the preview record.
#[derive(Debug, Clone, PartialEq)]
pub enum PreviewAction {
    /// `POST` this preview.
    Create(Preview),
    /// `PUT` this preview (the one read, the declared fields set).
    Update(Preview),
}

/// Plans the record: created when absent, one update when a declared field differs, else nothing.
#[must_use]
pub fn plan(
    spec: &SandboxPreviewSpec,
    name: &str,
    observed: Option<&Preview>,
) -> Option<PreviewAction> {
    let Some(observed) = observed else {
        let mut body = Preview {
            metadata: PreviewMetadata {
                name: name.to_owned(),
                ..PreviewMetadata::default()
            },
            ..Preview::default()
        };
        declare(spec, &mut body.spec);
        return Some(PreviewAction::Create(body));
    };
    let mut next = observed.clone();
    declare(spec, &mut next.spec);
    (next != *observed).then_some(PreviewAction::Update(next))
}

/// Sets the declared fields of `spec` on a preview's spec: port and visibility always, the others when
/// declared (a field the spec leaves out is left as it is remotely).
fn declare(spec: &SandboxPreviewSpec, remote: &mut PreviewSpec) {
    remote.port = Some(i64::from(spec.port));
    remote.public = Some(spec.public);
    let mut set = |key: &str, value: Value| remote.extra.insert(key.to_owned(), value);
    if let Some(prefix) = &spec.prefix_url {
        set("prefixUrl", Value::String(prefix.clone()));
    }
    if let Some(domain) = &spec.custom_domain {
        set("customDomain", Value::String(domain.clone()));
    }
    if let Some(ttl) = &spec.ttl {
        set("ttl", Value::String(ttl.clone()));
    }
    for (key, headers) in [
        ("requestHeaders", &spec.request_headers),
        ("responseHeaders", &spec.response_headers),
    ] {
        if !headers.is_empty() {
            set(key, as_object(headers));
        }
    }
}

fn as_object(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// A token's lifetime and when it is renewed, from the spec's durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTimes {
    /// Each token's lifetime.
    pub lifetime: Duration,
    /// A new token is made this long before the current one expires.
    pub renew_before: Duration,
}

/// The default lifetime of a token.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

impl TokenTimes {
    /// From the spec's `lifetime` and `renewBefore` (defaults: 24h, a third of the lifetime).
    ///
    /// # Errors
    /// A duration that does not parse, or a `renewBefore` not shorter than `lifetime` (admission
    /// refuses both; an object stored before the rule is told why).
    pub fn from_spec(lifetime: Option<&str>, renew_before: Option<&str>) -> Result<Self, String> {
        let lifetime = lifetime.map_or(Ok(DEFAULT_LIFETIME), parse_duration)?;
        let renew_before = renew_before.map_or(Ok(lifetime / 3), parse_duration)?;
        if lifetime < Duration::from_secs(60) || renew_before.is_zero() || renew_before >= lifetime
        {
            return Err(
                "token.lifetime must be at least 1m, and token.renewBefore positive and shorter"
                    .to_owned(),
            );
        }
        Ok(Self {
            lifetime,
            renew_before,
        })
    }
}

/// Parses a duration in the form CEL's `duration()` reads (the form the CRD admitted): one or more
/// `<number><unit>`, the number a decimal, the unit `h`, `m`, `s`, `ms`, `us` or `ns` (`90m`, `1h30m`,
/// `1.5h`), read by [`crate::validation::cel_duration`].
///
/// # Errors
/// Any other text.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::validation::cel_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration such as 90m or 24h"))
}

/// The Secret's token as Blaxel knows it: its name and expiry when Blaxel lists it under that name,
/// with the value the Secret holds (where the list shows values) and the same expiry. A Secret edited by
/// hand (value or `expiresAt`) holds no current token, so a new one replaces it; the expiry is Blaxel's.
#[must_use]
pub fn current_token<'a>(
    in_secret: Option<&SecretToken<'_>>,
    remote: &'a [PreviewToken],
) -> Option<(&'a str, jiff::Timestamp)> {
    let held = in_secret?;
    let record = remote.iter().find(|t| t.metadata.name == held.name)?;
    let expires: jiff::Timestamp = record.spec.expires_at.as_deref()?.parse().ok()?;
    let same_value = record.spec.token.as_ref().is_none_or(|t| held.holds(t));
    let same_expiry = held.expires_at.parse::<jiff::Timestamp>().ok() == Some(expires);
    (same_value && same_expiry).then_some((record.metadata.name.as_str(), expires))
}

/// What a pass knows about the token of a private preview.
pub struct TokenInput<'a> {
    /// The token the Secret holds (name and expiry), when the Secret is the operator's and whole: the
    /// one source of truth (read fresh each pass; a status may lag a pass behind).
    pub current: Option<(&'a str, jiff::Timestamp)>,
    /// The preview's tokens as listed.
    pub remote: &'a [PreviewToken],
    /// Whether a token name is the operator's.
    pub ours: fn(&str) -> bool,
    /// Lifetime and renewal.
    pub times: TokenTimes,
    /// Now.
    pub now: jiff::Timestamp,
}

/// What to do about the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPlan {
    /// Make a new token (and write it to the Secret).
    pub create: bool,
    /// The operator's remote tokens to delete: expired, or not the one in the Secret.
    pub delete: Vec<String>,
}

/// Plans the token: the Secret's is kept while it is listed remotely unexpired and further from its
/// expiry than `renewBefore`; else a new one is made. The operator's other tokens go
/// (a person's never do).
#[must_use]
pub fn plan_token(input: &TokenInput<'_>) -> TokenPlan {
    let renew_at = |expires: jiff::Timestamp| {
        expires
            .checked_sub(
                jiff::SignedDuration::try_from(input.times.renew_before).unwrap_or_default(),
            )
            .unwrap_or(expires)
    };
    let keep = input.current.and_then(|(name, expires)| {
        let live = input
            .remote
            .iter()
            .any(|t| t.metadata.name == name && !t.spec.expired);
        (live && input.now < renew_at(expires)).then_some(name)
    });
    let delete = input
        .remote
        .iter()
        .map(|t| t.metadata.name.as_str())
        .filter(|name| (input.ours)(name) && Some(*name) != keep)
        .map(str::to_owned)
        .collect();
    TokenPlan {
        create: keep.is_none(),
        delete,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::*;
    use crate::crd::{DeletionPolicy, SandboxRef};

    fn spec() -> SandboxPreviewSpec {
        SandboxPreviewSpec {
            sandbox_ref: SandboxRef { name: "box".into() },
            preview_name: None,
            port: 3000,
            public: false,
            prefix_url: None,
            custom_domain: None,
            ttl: None,
            request_headers: [("X-Env".to_owned(), "dev".to_owned())].into(),
            response_headers: BTreeMap::new(),
            token: None,
            deletion_policy: DeletionPolicy::Delete,
        }
    }

    fn remote(port: i64, extra: &serde_json::Value) -> Preview {
        let mut spec =
            serde_json::json!({"port": port, "public": false, "url": "https://p.example"});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        serde_json::from_value(serde_json::json!({"metadata": {"name": "web"}, "spec": spec}))
            .unwrap()
    }

    /// Absent: created with every declared field. Present and equal (undeclared remote fields kept):
    /// nothing. A declared field that differs: one update, the rest kept.
    #[test]
    fn create_settle_update() {
        let s = spec();
        let Some(PreviewAction::Create(body)) = plan(&s, "web", None) else {
            panic!("create")
        };
        let sent = serde_json::to_value(&body).unwrap();
        assert_eq!(sent["metadata"]["name"], "web");
        assert_eq!(sent["spec"]["port"], 3000);
        assert_eq!(
            sent["spec"]["requestHeaders"],
            serde_json::json!({"X-Env": "dev"})
        );
        let same = remote(
            3000,
            &serde_json::json!({"requestHeaders": {"X-Env": "dev"}, "region": "eu"}),
        );
        assert_eq!(plan(&s, "web", Some(&same)), None);
        let moved = remote(
            8080,
            &serde_json::json!({"requestHeaders": {"X-Env": "dev"}, "region": "eu"}),
        );
        let Some(PreviewAction::Update(next)) = plan(&s, "web", Some(&moved)) else {
            panic!("update")
        };
        let sent = serde_json::to_value(&next).unwrap();
        assert_eq!(sent["spec"]["port"], 3000);
        assert_eq!(sent["spec"]["region"], "eu", "unknown fields kept");
        let mut public = s.clone();
        public.public = true;
        assert!(matches!(
            plan(&public, "web", Some(&same)),
            Some(PreviewAction::Update(_))
        ));
    }

    #[test]
    fn durations_in_cel_form() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        for bad in ["", "1d", "h", "10", "1h 30m", "-1h", "1.2.3h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let t = TokenTimes::from_spec(None, None).unwrap();
        assert_eq!(
            (t.lifetime, t.renew_before),
            (DEFAULT_LIFETIME, DEFAULT_LIFETIME / 3)
        );
        assert_eq!(DEFAULT_LIFETIME, Duration::from_secs(86_400), "a day");
        assert!(TokenTimes::from_spec(Some("1h"), Some("1h")).is_err());
        assert!(TokenTimes::from_spec(Some("30s"), None).is_err());
        let shortest = TokenTimes::from_spec(Some("1m"), None).unwrap();
        assert_eq!(shortest.lifetime, Duration::from_secs(60), "1m is allowed");
    }

    fn listed(name: &str, expires_at: &str, value: Option<&str>) -> PreviewToken {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"expiresAt": expires_at, "token": value}
        }))
        .unwrap()
    }

    /// The Secret's token is current only when Blaxel lists it under its name with the same expiry and
    /// (where the list shows values) the same value; a Secret edited by hand, or naming a token Blaxel
    /// does not list, holds none.
    #[test]
    fn the_secrets_token_is_current_only_as_blaxel_lists_it() {
        const AT: &str = "2026-12-05T00:00:00Z";
        let held = SecretToken::new("op-1", b"v1", AT);
        let remote = [
            listed("op-0", "2026-12-06T00:00:00Z", None),
            listed("op-1", AT, Some("v1")),
        ];
        assert_eq!(
            current_token(Some(&held), &remote),
            Some(("op-1", AT.parse().unwrap()))
        );
        let unshown = [listed("op-1", AT, None)];
        assert_eq!(
            current_token(Some(&held), &unshown).map(|(n, _)| n),
            Some("op-1"),
            "a list without values decides by name and expiry"
        );
        let other_value = [listed("op-1", AT, Some("v2"))];
        assert_eq!(current_token(Some(&held), &other_value), None);
        let hand_edited = SecretToken::new("op-1", b"v1", "2027-01-01T00:00:00Z");
        assert_eq!(current_token(Some(&hand_edited), &remote), None);
        let unlisted = SecretToken::new("op-9", b"v1", AT);
        assert_eq!(current_token(Some(&unlisted), &remote), None);
        assert_eq!(current_token(None, &remote), None);
    }

    fn token(name: &str, expired: bool) -> PreviewToken {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name}, "spec": {"expiresAt": "2026-12-05T00:00:00Z", "expired": expired}
        }))
        .unwrap()
    }

    fn ours(name: &str) -> bool {
        name.starts_with("op-")
    }

    /// Kept while in the Secret, live remotely and far from expiry; renewed otherwise; the operator's
    /// other tokens deleted, a person's never.
    #[test]
    fn tokens_kept_renewed_and_cleaned() {
        let now: jiff::Timestamp = "2026-12-04T12:00:00Z".parse().unwrap();
        let expires: jiff::Timestamp = "2026-12-05T00:00:00Z".parse().unwrap();
        let times = TokenTimes::from_spec(Some("24h"), Some("8h")).unwrap();
        let remote = [
            token("op-1", false),
            token("op-0", true),
            token("hand", false),
        ];
        let input = |current, now| TokenInput {
            current,
            remote: &remote,
            ours,
            times,
            now,
        };
        let kept = plan_token(&input(Some(("op-1", expires)), now));
        assert_eq!(
            kept,
            TokenPlan {
                create: false,
                delete: vec!["op-0".into()]
            }
        );
        let late: jiff::Timestamp = "2026-12-04T17:00:00Z".parse().unwrap();
        let renew = plan_token(&input(Some(("op-1", expires)), late));
        assert_eq!(
            renew,
            TokenPlan {
                create: true,
                delete: vec!["op-1".into(), "op-0".into()]
            }
        );
        let at_renewal: jiff::Timestamp = "2026-12-04T16:00:00Z".parse().unwrap();
        assert!(
            plan_token(&input(Some(("op-1", expires)), at_renewal)).create,
            "renewed at renewBefore before expiry, not after"
        );
        let gone_remotely = plan_token(&input(Some(("op-9", expires)), now));
        assert!(gone_remotely.create && gone_remotely.delete.contains(&"op-1".to_owned()));
        let first = plan_token(&input(None, now));
        assert!(first.create && !first.delete.contains(&"hand".to_owned()));
    }
}
