//! Reading lists: a bare array (2025, `/users`) or a `{data, meta}` page (today's `/sandboxes`), record by
//! record, following cursors to the end within bounds of pages and time.

use std::collections::HashSet;

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::{Call, HttpClient};
use crate::blaxel::api::Scope;
use crate::blaxel::error::ApiError;
use crate::blaxel::error_map;
use crate::blaxel::model::{
    IntegrationConnection, Listing, Preview, PreviewToken, Sandbox, Unreadable, WorkspaceUser,
};
use crate::crd::is_canonical_email;

/// Page size asked for when listing sandboxes (the API's maximum).
const PAGE_LIMIT: &str = "200";
/// Safety stop for a server that keeps announcing more pages: 1,000 pages of 200 are 200,000 sandboxes in
/// one workspace, far beyond what one operator keeps in its shared list cache (~0.4 KB each, BENCHMARKS.md).
/// At the default 10 requests/s the walk's time bound ([`ClientConfig::list_deadline`]) ends a walk first
/// (~600 pages); this stop still holds when the rate limit is raised. It was 10,000: hours of requests.
const MAX_PAGES: usize = 1_000;

impl HttpClient {
    /// GETs a list, accepting a bare array or a `{data, meta}` page and following cursors to the end.
    ///
    /// Records are decoded one by one ([`Record`]); where `T` skips unreadable records they are reported in
    /// the listing (and logged once each), otherwise the first one fails the whole list.
    ///
    /// The walk is bounded in pages ([`MAX_PAGES`]) and in time (`list_deadline`). It runs entirely in the
    /// caller's future (nothing is spawned), so dropping that future stops it, in-flight request included.
    pub(super) async fn list_all<T: Record>(
        &self,
        scope: &Scope,
        route: &'static str,
        segments: &[&str],
        paginate: bool,
        what: &str,
    ) -> Result<Listing<T>, ApiError> {
        let mut listing = Listing::complete(Vec::new());
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        let bound = self.inner.list_deadline;
        let deadline = Instant::now() + bound;
        for pages in 0..MAX_PAGES {
            let mut query = Vec::new();
            if paginate {
                query.push(("limit", PAGE_LIMIT));
            }
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.as_str()));
            }
            let call = Call {
                query: &query,
                ..Call::new(Method::GET, route, segments)
            };
            let Ok(answer) = tokio::time::timeout_at(deadline, self.execute(scope, &call)).await
            else {
                return Err(ApiError::Unavailable {
                    message: format!(
                        "{what}: not read to the end within {} ({pages} pages read); a partial list is not used",
                        humantime::format_duration(bound)
                    ),
                    retry_after: None,
                });
            };
            let body = answer?;
            let (records, meta) = decode_listing(&body, what)?;
            for record in records {
                let index = listing.items.len() + listing.unreadable.len();
                match decode_record::<T>(record, index, what) {
                    Ok(item) => listing.items.push(item),
                    Err(unreadable) if T::SKIP_UNREADABLE => {
                        let error = error_map::outgoing_text(&unreadable.error, &scope.api_key);
                        tracing::warn!(
                            route,
                            workspace = %scope.workspace,
                            identity = unreadable.identity.as_deref().unwrap_or("<unknown>"),
                            error = %error,
                            "skipping a listed record that cannot be read"
                        );
                        listing.unreadable.push(Unreadable {
                            error,
                            ..unreadable
                        });
                    }
                    Err(unreadable) => {
                        return Err(ApiError::Decode {
                            message: unreadable.error,
                        });
                    }
                }
            }
            let Some(meta) = meta.filter(|m| m.has_more) else {
                return Ok(listing);
            };
            // A partial list would make present objects look missing: refuse rather than truncate.
            let next =
                meta.next_cursor
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| ApiError::Decode {
                        message: format!("{what}: more pages announced without a cursor"),
                    })?;
            if !seen.insert(next.clone()) {
                return Err(ApiError::Decode {
                    message: format!("{what}: pagination cursor repeated"),
                });
            }
            cursor = Some(next);
        }
        Err(ApiError::Decode {
            message: format!("{what}: more than {MAX_PAGES} pages"),
        })
    }
}

/// `meta` of a paginated list.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageMeta {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// A `{data, meta}` page, its records still raw. `data` is required: an object without it (an error body
/// sent with 200, say) is not an empty list, which would make every object look absent.
#[derive(Debug, Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    #[serde(default)]
    meta: Option<PageMeta>,
}

/// Reads a list answer's envelope: a bare array (2025, `/users`) or a `{data, meta}` page (today's
/// `/sandboxes`). The records stay raw JSON text borrowed from `body`; an envelope of any other shape fails.
fn decode_listing<'a>(
    body: &'a [u8],
    what: &str,
) -> Result<(Vec<&'a RawValue>, Option<PageMeta>), ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let result = if first == Some(&b'{') {
        serde_json::from_slice::<Page<'a>>(body).map(|page| (page.data, page.meta))
    } else {
        serde_json::from_slice::<Vec<&'a RawValue>>(body).map(|records| (records, None))
    };
    result.map_err(|e| error_map::decode_error(what, &e))
}

/// A kind of record read from a list, one record at a time.
pub(super) trait Record: DeserializeOwned {
    /// Whether an unreadable record is skipped and reported ([`Listing::unreadable`]) rather than failing
    /// the whole list.
    const SKIP_UNREADABLE: bool;

    /// The identity of a record that could not be used, where it can still be read from the raw JSON.
    fn identity(_raw: &RawValue) -> Option<String> {
        None
    }

    /// Why a record that decoded still cannot be used, if it cannot.
    fn unusable(&self) -> Option<&'static str> {
        None
    }
}

impl Record for WorkspaceUser {
    const SKIP_UNREADABLE: bool = true;

    fn identity(raw: &RawValue) -> Option<String> {
        string_at(raw, "/email")
    }

    fn unusable(&self) -> Option<&'static str> {
        // Users are matched by e-mail: a record without one cannot be told apart from any other, and
        // one in another form than the canonical (ASCII case aside) cannot be addressed by it (a
        // DELETE of ` alice@example.com` is no removal of it).
        if self.email.trim().is_empty() {
            Some("no e-mail")
        } else if !is_canonical_email(&self.email.to_ascii_lowercase()) {
            Some(
                "an e-mail in no canonical form (whitespace, or characters outside printable ASCII)",
            )
        } else {
            None
        }
    }
}

impl Record for Sandbox {
    const SKIP_UNREADABLE: bool = true;

    fn identity(raw: &RawValue) -> Option<String> {
        string_at(raw, "/metadata/name")
    }
}

impl Record for IntegrationConnection {
    const SKIP_UNREADABLE: bool = true;

    fn identity(raw: &RawValue) -> Option<String> {
        string_at(raw, "/metadata/name")
    }

    fn unusable(&self) -> Option<&'static str> {
        self.metadata.name.trim().is_empty().then_some("no name")
    }
}

impl Record for Preview {
    const SKIP_UNREADABLE: bool = false;
}

impl Record for PreviewToken {
    const SKIP_UNREADABLE: bool = false;
}

/// The non-blank string at `pointer` in a raw record, if there is one.
fn string_at(raw: &RawValue, pointer: &str) -> Option<String> {
    let value: Value = serde_json::from_str(raw.get()).ok()?;
    value
        .pointer(pointer)?
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// Decodes the `index`-th (0-based) record of a list into `T`; the error names the record by position and
/// never quotes it.
fn decode_record<T: Record>(raw: &RawValue, index: usize, what: &str) -> Result<T, Unreadable> {
    let which = format!("record {} of the {what}", index + 1);
    let error = match serde_json::from_str::<T>(raw.get()) {
        Ok(item) => match item.unusable() {
            None => return Ok(item),
            Some(why) => format!("{which}: {why}"),
        },
        Err(e) => error_map::decode_message(&which, &e),
    };
    Err(Unreadable {
        identity: T::identity(raw),
        error,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::blaxel::model::{Sandbox, WorkspaceUser};

    impl Record for u32 {
        const SKIP_UNREADABLE: bool = false;
    }

    fn numbers(records: &[&RawValue]) -> Vec<u32> {
        records
            .iter()
            .enumerate()
            .map(|(i, r)| decode_record::<u32>(r, i, "numbers").unwrap())
            .collect()
    }

    /// Both list shapes decode; a page reports whether more follow; any other envelope is an error.
    #[test]
    fn listings_in_both_shapes() {
        let (records, meta) = decode_listing(b" [1,2]", "numbers").unwrap();
        assert_eq!(numbers(&records), [1, 2]);
        assert!(meta.is_none());
        let page = br#"{"data":[3],"meta":{"hasMore":true,"nextCursor":"c1","total":9}}"#;
        let (records, meta) = decode_listing(page, "numbers").unwrap();
        assert_eq!(numbers(&records), [3]);
        let meta = meta.unwrap();
        assert!(meta.has_more);
        assert_eq!(meta.next_cursor.as_deref(), Some("c1"));
        let not_lists = [
            &b"null"[..],
            b"7",
            br#"{"data":{"a":1}}"#,
            br#"{"error":"oops"}"#,
            b"[1,",
        ];
        for envelope in not_lists {
            let err = decode_listing(envelope, "numbers").unwrap_err();
            assert_eq!(err.category(), "Decode");
        }
    }

    /// A record that does not decode is reported by position and identity, never by its content.
    #[test]
    fn unreadable_records_keep_identity_not_content() {
        let (records, _) = decode_listing(
            br#"[{"metadata":{"name":"big"},"spec":{"runtime":{"memory":99999999999999999999,"image":"secret-img"}}},
                {"metadata":{"name":""},"spec":7}]"#,
            "list of sandboxes",
        )
        .unwrap();
        let big = decode_record::<Sandbox>(records[0], 0, "list of sandboxes").unwrap_err();
        assert_eq!(big.identity.as_deref(), Some("big"));
        assert!(
            big.error.contains("record 1 of the list of sandboxes"),
            "{}",
            big.error
        );
        assert!(
            !big.error.contains("99999") && !big.error.contains("secret-img"),
            "{}",
            big.error
        );
        let nameless = decode_record::<Sandbox>(records[1], 1, "list of sandboxes").unwrap_err();
        assert_eq!(nameless.identity, None);

        let (records, _) = decode_listing(
            br#"[{"email":null,"role":"admin"},{"email":"a@b.c","role":5},{"role":"member"},{"email":" "}]"#,
            "list of users",
        )
        .unwrap();
        let failed: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, r)| decode_record::<WorkspaceUser>(r, i, "list of users").unwrap_err())
            .collect();
        let identities: Vec<_> = failed.iter().map(|u| u.identity.as_deref()).collect();
        assert_eq!(identities, [None, Some("a@b.c"), None, None]);
        assert!(
            failed[2].error.ends_with("no e-mail"),
            "{}",
            failed[2].error
        );
    }
}
