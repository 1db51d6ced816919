//! Sandbox previews and preview tokens in the simulator, over real HTTP, in both API generations: the
//! definitions' bodies and codes, validation, URLs and their conflicts (`force` in 2026), `ttl`/`expires`
//! and token expiry driven by the simulator clock, previews going with their sandbox, token values never
//! logged. Time moves only through `POST /_sim/clock/advance`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use blaxel_operator::sim::{ApiGeneration, SimConfig};
use common::schema::{
    ERROR, MESSAGE, PREVIEW_2025, PREVIEW_2026, PREVIEW_TOKEN, assert_array_of, assert_shape,
};
use common::{Answer, Harness, config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const GENERATIONS: [ApiGeneration; 2] = [ApiGeneration::V2025, ApiGeneration::V2026];

async fn start(generation: ApiGeneration) -> Harness {
    Harness::start(SimConfig {
        generation,
        ..config()
    })
    .await
}

fn preview_schema(generation: ApiGeneration) -> &'static common::schema::Schema {
    match generation {
        ApiGeneration::V2025 => &PREVIEW_2025,
        ApiGeneration::V2026 => &PREVIEW_2026,
    }
}

fn preview(name: &str, spec: Value) -> Value {
    let mut body = json!({ "metadata": { "name": name } });
    body["spec"] = spec;
    body
}

/// Asserts an error answer: its status and the `{error, code, message}` body with `code` the status.
fn assert_error(a: &Answer, status: StatusCode, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.raw);
    assert_shape(&ERROR, &a.body);
    assert_eq!(a.body["code"], status.as_u16(), "{what}: {}", a.raw);
}

/// The simulator's current wall-clock time.
async fn sim_now(h: &Harness) -> jiff::Timestamp {
    let c = h.sim_get("/clock").await;
    c["now"].as_str().unwrap().parse().unwrap()
}

/// Creates a preview; panics unless 200.
async fn create(h: &Harness, sandbox: &str, body: Value) -> Value {
    let a = h
        .post(&format!("/sandboxes/{sandbox}/previews"), body)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    a.body
}

/// Creates a token; panics unless 200.
async fn create_token(h: &Harness, path: &str, body: Value) -> Value {
    let a = h.post(&format!("{path}/tokens"), body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&PREVIEW_TOKEN, &a.body);
    a.body
}

/// Create, read, list, replace and delete, with each answer in the generation's `Preview` shape; only the
/// definition's writable fields are kept; the URL is `https://<32 hex>.preview.bl.run`, stable by name.
#[tokio::test]
async fn preview_crud_follows_both_definitions() {
    for generation in GENERATIONS {
        let h = start(generation).await;
        let schema = preview_schema(generation);
        h.create_sandbox("web").await;
        let body = json!({
            "metadata": { "name": "site", "displayName": "Site", "createdBy": "forged" },
            "spec": {
                "port": 3000, "public": false, "url": "https://forged.example", "region": "forged",
                "requestHeaders": { "Authorization": "Bearer x" },
                "responseHeaders": { "Access-Control-Allow-Origin": "*" }, "colour": "red"
            }
        });
        let created = create(&h, "web", body).await;
        assert_shape(schema, &created);
        let (meta, spec) = (&created["metadata"], &created["spec"]);
        assert_eq!(meta["displayName"], "Site");
        assert_eq!(meta["resourceName"], "web");
        assert_eq!(meta["resourceType"], "sandbox");
        assert_eq!(meta["workspace"], "ws-a");
        assert_ne!(
            meta["createdBy"], "forged",
            "server fields are the server's"
        );
        assert_eq!(spec["region"], "us-pdx-1", "the sandbox's region");
        assert!(spec.get("colour").is_none(), "unknown fields are dropped");
        assert_eq!(spec["requestHeaders"]["Authorization"], "Bearer x");
        let url = spec["url"].as_str().unwrap().to_owned();
        let id = url
            .strip_prefix("https://")
            .and_then(|u| u.strip_suffix(".preview.bl.run"))
            .unwrap_or_default();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{url}"
        );

        let one = h.get("/sandboxes/web/previews/site").await;
        assert_eq!(one.body, created, "GET answers what POST answered");
        let all = h.get("/sandboxes/web/previews").await;
        assert_array_of(schema, &all.body);
        assert_eq!(all.body.as_array().map(Vec::len), Some(1));

        // PUT replaces the spec as a whole: the headers not sent are gone.
        h.advance(1.0).await;
        let a = h
            .put(
                "/sandboxes/web/previews/site",
                json!({ "spec": { "port": 8080, "public": true } }),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_shape(schema, &a.body);
        assert_eq!(a.body["spec"]["port"], 8080);
        assert!(a.body["spec"].get("responseHeaders").is_none());
        assert_eq!(a.body["metadata"]["displayName"], "Site", "kept");
        assert_ne!(a.body["metadata"]["updatedAt"], meta["updatedAt"]);
        assert_eq!(a.body["metadata"]["createdAt"], meta["createdAt"]);

        let gone = h.delete("/sandboxes/web/previews/site").await;
        assert_eq!(gone.status, StatusCode::OK);
        assert_shape(schema, &gone.body);
        let again = h.get("/sandboxes/web/previews/site").await;
        assert_error(&again, StatusCode::NOT_FOUND, "deleted preview");
        let recreated = create(&h, "web", preview("site", json!({ "port": 3000 }))).await;
        assert_eq!(
            recreated["spec"]["url"],
            url.as_str(),
            "same name, same URL"
        );
        let other = create(&h, "web", preview("api", json!({ "port": 3001 }))).await;
        assert_ne!(other["spec"]["url"], url.as_str());
    }
}

/// Every field with a grammar is checked: 400 with the error body, naming the field; nothing is created.
#[tokio::test]
async fn preview_bodies_are_validated() {
    let h = start(ApiGeneration::V2026).await;
    h.create_sandbox("web").await;
    let cases = [
        (json!({ "spec": { "port": 80 } }), "metadata.name"),
        (preview("Bad_Name", json!({})), "preview name"),
        (preview("p", json!({ "port": 0 })), "spec.port"),
        (preview("p", json!({ "port": 70_000 })), "spec.port"),
        (preview("p", json!({ "port": "80" })), "spec.port"),
        (preview("p", json!({ "public": "yes" })), "spec.public"),
        (
            preview("p", json!({ "prefixUrl": "My App" })),
            "spec.prefixUrl",
        ),
        (
            preview("p", json!({ "prefixUrl": "a".repeat(60) })),
            "spec.prefixUrl",
        ),
        (
            preview("p", json!({ "customDomain": "not a domain" })),
            "spec.customDomain",
        ),
        (preview("p", json!({ "ttl": "for a while" })), "spec.ttl"),
        (preview("p", json!({ "ttl": "0s" })), "spec.ttl"),
        (
            preview("p", json!({ "expires": "next year" })),
            "spec.expires",
        ),
        (
            preview("p", json!({ "expires": "2001-01-01T00:00:00Z" })),
            "expired",
        ),
        (
            preview("p", json!({ "requestHeaders": { "X-A": 1 } })),
            "spec.requestHeaders",
        ),
        (
            preview("p", json!({ "responseHeaders": { "X A": "b" } })),
            "spec.responseHeaders",
        ),
        (json!({ "metadata": "p" }), "metadata"),
        (json!({ "metadata": { "name": "p" }, "spec": [] }), "spec"),
    ];
    for (body, field) in cases {
        let a = h.post("/sandboxes/web/previews", body.clone()).await;
        assert_error(&a, StatusCode::BAD_REQUEST, &body.to_string());
        let msg = a.body["message"].as_str().unwrap();
        assert!(msg.contains(field), "{body}: {msg}");
    }
    let list = h.get("/sandboxes/web/previews").await;
    assert_eq!(list.body, json!([]), "nothing was created");

    create(&h, "web", preview("p", json!({ "port": 80 }))).await;
    let a = h
        .put("/sandboxes/web/previews/p", preview("q", json!({})))
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "rename");
    let a = h
        .put("/sandboxes/web/previews/p", json!({ "spec": { "ttl": 5 } }))
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "ttl type");
    let a = h
        .post(
            "/sandboxes/web/previews?force=maybe",
            preview("r", json!({})),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "force=maybe");
}

/// A missing sandbox, preview or token is 404 on every route that names it.
#[tokio::test]
async fn missing_objects_answer_404() {
    let h = start(ApiGeneration::V2025).await;
    h.create_sandbox("web").await;
    create(&h, "web", preview("site", json!({ "port": 80 }))).await;
    let body = || Some(json!({ "metadata": { "name": "x" } }));
    let calls = [
        (Method::GET, "/sandboxes/nope/previews", None),
        (Method::POST, "/sandboxes/nope/previews", body()),
        (Method::GET, "/sandboxes/nope/previews/site", None),
        (Method::GET, "/sandboxes/web/previews/nope", None),
        (
            Method::PUT,
            "/sandboxes/web/previews/nope",
            Some(json!({ "spec": {} })),
        ),
        (Method::DELETE, "/sandboxes/web/previews/nope", None),
        (Method::GET, "/sandboxes/web/previews/nope/tokens", None),
        (Method::POST, "/sandboxes/web/previews/nope/tokens", body()),
        (Method::GET, "/sandboxes/nope/previews/site/tokens", None),
        (
            Method::DELETE,
            "/sandboxes/web/previews/nope/tokens/x",
            None,
        ),
        (
            Method::DELETE,
            "/sandboxes/web/previews/site/tokens/x",
            None,
        ),
    ];
    for (method, path, body) in calls {
        let a = h.call(method.clone(), path, body).await;
        assert_error(&a, StatusCode::NOT_FOUND, &format!("{method} {path}"));
    }
}

/// 409 for a taken name and for a URL another preview of the workspace answers at (any sandbox), on
/// create and on update; `?force=true` means nothing to the 2025 generation.
#[tokio::test]
async fn duplicates_and_taken_urls_conflict() {
    let h = start(ApiGeneration::V2025).await;
    h.create_sandbox("web").await;
    h.create_sandbox("api").await;
    let site = create(&h, "web", preview("site", json!({ "prefixUrl": "shop" }))).await;
    assert_eq!(site["spec"]["url"], "https://shop-ws-a.preview.bl.run");
    let a = h
        .post("/sandboxes/web/previews", preview("site", json!({})))
        .await;
    assert_error(&a, StatusCode::CONFLICT, "same name");
    for (sandbox, path) in [
        ("web", "/sandboxes/web/previews"),
        ("api", "/sandboxes/api/previews?force=true"),
    ] {
        let a = h
            .post(path, preview("other", json!({ "prefixUrl": "shop" })))
            .await;
        assert_error(&a, StatusCode::CONFLICT, sandbox);
        assert!(a.raw.contains("shop-ws-a"), "{}", a.raw);
    }
    // The same name on another sandbox, and the same prefix with a custom domain, are other URLs.
    create(&h, "api", preview("site", json!({}))).await;
    let custom = create(
        &h,
        "api",
        preview(
            "brand",
            json!({ "prefixUrl": "shop", "customDomain": "Example.com" }),
        ),
    )
    .await;
    assert_eq!(custom["spec"]["url"], "https://shop.preview.example.com");
    let a = h
        .put(
            "/sandboxes/api/previews/site",
            json!({ "spec": { "prefixUrl": "shop" } }),
        )
        .await;
    assert_error(&a, StatusCode::CONFLICT, "update onto a taken URL");
    // Re-sending a preview's own spec is no conflict with itself.
    let a = h
        .put(
            "/sandboxes/web/previews/site",
            json!({ "spec": { "prefixUrl": "shop", "port": 81 } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    // Once the holder is deleted the URL is free.
    h.delete("/sandboxes/web/previews/site").await;
    create(&h, "api", preview("other", json!({ "prefixUrl": "shop" }))).await;
}

/// 2026: `?force=true` replaces the preview whose URL the new one takes (its tokens go with it).
#[tokio::test]
async fn force_replaces_the_url_holder_in_2026() {
    let h = start(ApiGeneration::V2026).await;
    h.create_sandbox("web").await;
    h.create_sandbox("api").await;
    create(&h, "web", preview("old", json!({ "prefixUrl": "shop" }))).await;
    create_token(
        &h,
        "/sandboxes/web/previews/old",
        json!({ "metadata": { "name": "t" } }),
    )
    .await;
    let a = h
        .post(
            "/sandboxes/api/previews?force=false",
            preview("new", json!({ "prefixUrl": "shop" })),
        )
        .await;
    assert_error(&a, StatusCode::CONFLICT, "force=false");
    let a = h
        .post(
            "/sandboxes/api/previews?force=true",
            preview("new", json!({ "prefixUrl": "shop" })),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&PREVIEW_2026, &a.body);
    assert_eq!(a.body["spec"]["url"], "https://shop-ws-a.preview.bl.run");
    let old = h.get("/sandboxes/web/previews/old").await;
    assert_error(&old, StatusCode::NOT_FOUND, "replaced preview");
    let tokens = h.get("/sandboxes/web/previews/old/tokens").await;
    assert_error(&tokens, StatusCode::NOT_FOUND, "replaced preview's tokens");
    // force does not override a taken name.
    let a = h
        .post(
            "/sandboxes/api/previews?force=true",
            preview("new", json!({})),
        )
        .await;
    assert_error(&a, StatusCode::CONFLICT, "same name with force");
}

/// `spec.ttl` (from creation) and `spec.expires` delete the preview when the simulator clock reaches them.
#[tokio::test]
async fn ttl_and_expires_delete_previews() {
    let h = start(ApiGeneration::V2025).await;
    h.create_sandbox("web").await;
    create(&h, "web", preview("brief", json!({ "ttl": "1h" }))).await;
    let at = sim_now(&h).await + jiff::SignedDuration::from_mins(10);
    create(
        &h,
        "web",
        preview("dated", json!({ "expires": at.to_string() })),
    )
    .await;
    create(&h, "web", preview("stays", json!({ "port": 80 }))).await;
    create_token(
        &h,
        "/sandboxes/web/previews/brief",
        json!({ "metadata": { "name": "t" } }),
    )
    .await;
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };

    h.advance(599.0).await;
    let list = h.get("/sandboxes/web/previews").await.body;
    assert_eq!(names(&list), ["brief", "dated", "stays"]);
    h.advance(1.0).await;
    let list = h.get("/sandboxes/web/previews").await.body;
    assert_eq!(names(&list), ["brief", "stays"], "expires reached");
    let a = h.get("/sandboxes/web/previews/dated").await;
    assert_error(&a, StatusCode::NOT_FOUND, "expired preview");

    // A PUT keeps counting the ttl from creation (50 min ago): 30m is already over, 2h is not.
    h.advance(2400.0).await;
    let a = h
        .put(
            "/sandboxes/web/previews/brief",
            json!({ "spec": { "ttl": "30m" } }),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "ttl already over");
    h.advance(599.0).await;
    assert_eq!(
        h.get("/sandboxes/web/previews/brief").await.status,
        StatusCode::OK,
        "59m59s into a 1h ttl"
    );
    h.advance(1.0).await;
    for path in [
        "/sandboxes/web/previews/brief",
        "/sandboxes/web/previews/brief/tokens",
    ] {
        assert_error(&h.get(path).await, StatusCode::NOT_FOUND, path);
    }
    let state = h.sim_get("/state").await;
    let kept = &state["workspaces"]["ws-a"]["sandboxes"][0]["previews"];
    assert_eq!(names(kept), ["stays"], "/_sim/state agrees");
}

/// A PUT that lengthens the ttl keeps the preview past its first deadline.
#[tokio::test]
async fn a_longer_ttl_extends_a_preview() {
    let h = start(ApiGeneration::V2026).await;
    h.create_sandbox("web").await;
    create(&h, "web", preview("p", json!({ "ttl": "1h" }))).await;
    h.advance(1800.0).await;
    let a = h
        .put(
            "/sandboxes/web/previews/p",
            json!({ "spec": { "ttl": "2h" } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    h.advance(5399.0).await;
    assert_eq!(
        h.get("/sandboxes/web/previews/p").await.status,
        StatusCode::OK,
        "1h59m59s after creation"
    );
    h.advance(1.0).await;
    assert_eq!(
        h.get("/sandboxes/web/previews/p").await.status,
        StatusCode::NOT_FOUND,
        "2h after creation"
    );
}

/// `expiresAt` is kept as sent (the instant; offsets become UTC) and `expired` follows the simulator clock;
/// without one a token lasts an hour; one already past is created and listed as expired.
#[tokio::test]
async fn tokens_honour_expires_at_and_the_clock() {
    for generation in GENERATIONS {
        let h = start(generation).await;
        h.create_sandbox("web").await;
        let path = "/sandboxes/web/previews/site";
        create(&h, "web", preview("site", json!({ "public": false }))).await;
        let now = sim_now(&h).await;
        let soon = now + jiff::SignedDuration::from_mins(10);
        let t = create_token(
            &h,
            path,
            json!({ "metadata": { "name": "soon" }, "spec": { "expiresAt": soon.to_string() } }),
        )
        .await;
        assert_eq!(t["spec"]["expiresAt"], soon.to_string());
        assert_eq!(t["spec"]["expired"], false);
        assert_eq!(t["metadata"]["previewName"], "site");
        assert_eq!(t["metadata"]["resourceName"], "web");
        let t = create_token(
            &h,
            path,
            json!({ "metadata": { "name": "far" }, "spec": { "expiresAt": "2099-01-01T02:00:00+02:00" } }),
        )
        .await;
        assert_eq!(t["spec"]["expiresAt"], "2099-01-01T00:00:00Z");
        let t = create_token(&h, path, json!({ "metadata": { "name": "default" } })).await;
        let default_at: jiff::Timestamp = t["spec"]["expiresAt"].as_str().unwrap().parse().unwrap();
        assert_eq!(default_at, now + jiff::SignedDuration::from_hours(1));
        let t = create_token(
            &h,
            path,
            json!({ "metadata": { "name": "past" }, "spec": { "expiresAt": "2001-01-01T00:00:00Z" } }),
        )
        .await;
        assert_eq!(t["spec"]["expired"], true);
        assert_eq!(
            t["spec"]["expiresAt"], "2001-01-01T00:00:00Z",
            "not clamped"
        );

        let expired = |list: &Value| -> Vec<(String, bool)> {
            list.as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let name = t["metadata"]["name"].as_str().unwrap().to_owned();
                    (name, t["spec"]["expired"].as_bool().unwrap())
                })
                .collect()
        };
        let list = h.get(&format!("{path}/tokens")).await;
        assert_array_of(&PREVIEW_TOKEN, &list.body);
        let want = |soon: bool, default: bool| {
            vec![
                ("default".to_owned(), default),
                ("far".to_owned(), false),
                ("past".to_owned(), true),
                ("soon".to_owned(), soon),
            ]
        };
        assert_eq!(expired(&list.body), want(false, false));
        h.advance(599.0).await;
        let list = h.get(&format!("{path}/tokens")).await.body;
        assert_eq!(expired(&list), want(false, false), "9m59s");
        h.advance(1.0).await;
        let list = h.get(&format!("{path}/tokens")).await.body;
        assert_eq!(expired(&list), want(true, false), "at expiresAt");
        h.advance(3000.0).await;
        let list = h.get(&format!("{path}/tokens")).await.body;
        assert_eq!(expired(&list), want(true, true), "an hour later");
    }
}

/// Token names: required (400 without), unique (409), chosen by the server when empty (as Blaxel's Python
/// SDK sends); a token is deleted by name or by value (as Blaxel's TypeScript SDK does), then 404.
#[tokio::test]
async fn token_names_and_deletion() {
    let h = start(ApiGeneration::V2026).await;
    h.create_sandbox("web").await;
    let path = "/sandboxes/web/previews/site";
    create(&h, "web", preview("site", json!({ "public": false }))).await;
    for bad in [
        json!({}),
        json!({ "spec": { "expiresAt": "2099-01-01T00:00:00Z" } }),
        json!({ "metadata": { "name": "Not Valid" } }),
        json!({ "metadata": { "name": "x" }, "spec": { "expiresAt": "tomorrow" } }),
        json!({ "metadata": { "name": "x" }, "spec": { "expiresAt": 5 } }),
    ] {
        let a = h.post(&format!("{path}/tokens"), bad.clone()).await;
        assert_error(&a, StatusCode::BAD_REQUEST, &bad.to_string());
    }
    let named = create_token(&h, path, json!({ "metadata": { "name": "ci" } })).await;
    let a = h
        .post(
            &format!("{path}/tokens"),
            json!({ "metadata": { "name": "ci" } }),
        )
        .await;
    assert_error(&a, StatusCode::CONFLICT, "duplicate token name");
    let forged =
        json!({ "metadata": { "name": "" }, "spec": { "token": "chosen-by-me", "expired": true } });
    let anon = create_token(&h, path, forged.clone()).await;
    let anon2 = create_token(&h, path, forged).await;
    let anon_name = anon["metadata"]["name"].as_str().unwrap();
    assert!(anon_name.starts_with("token-"), "{anon}");
    assert_ne!(anon["metadata"]["name"], anon2["metadata"]["name"]);
    assert_ne!(anon["spec"]["token"], "chosen-by-me", "read-only");
    assert_eq!(anon["spec"]["expired"], false, "read-only");
    assert_ne!(anon["spec"]["token"], named["spec"]["token"]);

    // By value: the answer names the token, never its value.
    let value = anon["spec"]["token"].as_str().unwrap();
    let a = h.delete(&format!("{path}/tokens/{value}")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&MESSAGE, &a.body);
    assert!(
        a.raw.contains(anon_name) && !a.raw.contains(value),
        "{}",
        a.raw
    );
    let a = h.delete(&format!("{path}/tokens/ci")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    for gone in [value, "ci"] {
        let a = h.delete(&format!("{path}/tokens/{gone}")).await;
        assert_error(&a, StatusCode::NOT_FOUND, gone);
    }
    let list = h.get(&format!("{path}/tokens")).await.body;
    let left: Vec<&Value> = list.as_array().unwrap().iter().collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["metadata"]["name"], anon2["metadata"]["name"]);
}

/// From a sandbox's DELETE on, its previews and tokens are gone (list empty, 404), new ones are refused
/// (409); once the sandbox is gone its routes are 404; a sandbox created again under the name has none.
#[tokio::test]
async fn previews_go_with_their_sandbox() {
    for generation in GENERATIONS {
        let h = start(generation).await;
        h.create_sandbox("web").await;
        h.create_sandbox("other").await;
        create(&h, "web", preview("site", json!({ "prefixUrl": "shop" }))).await;
        create(&h, "other", preview("kept", json!({}))).await;
        create_token(
            &h,
            "/sandboxes/web/previews/site",
            json!({ "metadata": { "name": "t" } }),
        )
        .await;
        assert_eq!(h.delete("/sandboxes/web").await.status, StatusCode::OK);
        for status in ["DELETING", "TERMINATED"] {
            assert_eq!(h.sandbox_status("web").await, status);
            let list = h.get("/sandboxes/web/previews").await;
            assert_eq!(list.status, StatusCode::OK, "{status}: {}", list.raw);
            assert_eq!(list.body, json!([]), "{status}");
            for path in [
                "/sandboxes/web/previews/site",
                "/sandboxes/web/previews/site/tokens",
            ] {
                assert_error(&h.get(path).await, StatusCode::NOT_FOUND, path);
            }
            let a = h
                .post("/sandboxes/web/previews", preview("new", json!({})))
                .await;
            assert_error(&a, StatusCode::CONFLICT, status);
            let state = h.sim_get("/state").await;
            let web = state["workspaces"]["ws-a"]["sandboxes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["metadata"]["name"] == "web")
                .cloned()
                .unwrap();
            assert_eq!(web["previews"], json!([]), "{status}: /_sim/state");
            h.advance(1.0).await; // --delete-time 1s
        }
        // The deleted preview's URL is free again.
        create(&h, "other", preview("shop", json!({ "prefixUrl": "shop" }))).await;
        h.advance(300.0).await; // past --termination-retention
        let a = h.get("/sandboxes/web/previews").await;
        assert_error(&a, StatusCode::NOT_FOUND, "gone sandbox");
        h.create_sandbox("web").await;
        assert_eq!(h.get("/sandboxes/web/previews").await.body, json!([]));
        let kept = h.get("/sandboxes/other/previews").await.body;
        assert_eq!(
            kept.as_array().map(Vec::len),
            Some(2),
            "other sandbox untouched"
        );
    }
}

/// A writer into a shared buffer, for capturing the simulator's log.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Token values never reach the log (the simulator's, and the HTTP stack's under it), even at TRACE and
/// even when a token is deleted by value.
#[tokio::test]
async fn token_values_are_never_logged() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // Global (this test binary's only subscriber): a thread-local one misses callsites that tests on other
    // threads registered first. The other tests' logs land here too, which only widens the check.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let h = start(ApiGeneration::V2025).await;
    h.create_sandbox("web").await;
    let path = "/sandboxes/web/previews/site";
    create(&h, "web", preview("site", json!({ "public": false }))).await;
    let mut values = Vec::new();
    for name in ["a", "b"] {
        let t = create_token(&h, path, json!({ "metadata": { "name": name } })).await;
        values.push(t["spec"]["token"].as_str().unwrap().to_owned());
    }
    let list = h.get(&format!("{path}/tokens")).await;
    assert!(list.raw.contains(&values[0]), "the API answers the values");
    let a = h.delete(&format!("{path}/tokens/{}", values[1])).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let stats = h.sim_get("/stats").await;

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("simulator request"),
        "the capture sees the simulator's log"
    );
    for v in &values {
        assert!(!text.contains(v.as_str()), "a token value was logged");
        assert!(
            !stats.to_string().contains(v.as_str()),
            "a token value is in the stats"
        );
    }
}
