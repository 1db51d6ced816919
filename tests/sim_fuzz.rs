//! Fuzz-style robustness: malformed JSON, wrong types, huge and deeply nested bodies, bad e-mail addresses
//! and odd paths (dot segments, percent-encoding, invalid UTF-8, very long names, unicode) always get a 4xx
//! with a JSON error body, never a 5xx or a hang, and the server keeps answering afterwards. The inputs
//! come from a seeded generator, so a failure reproduces.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use common::Harness;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Write routes and a valid body for each, to be mangled.
fn write_routes() -> Vec<(Method, &'static str, Value)> {
    vec![
        (
            Method::POST,
            "/users",
            json!({ "email": "fuzz@example.com" }),
        ),
        (
            Method::PUT,
            "/users/target@example.com",
            json!({ "role": "admin" }),
        ),
        (Method::POST, "/sandboxes", common::sandbox_body("fz-new")),
        (Method::PUT, "/sandboxes/fz", common::sandbox_body("fz")),
        (
            Method::POST,
            "/sandboxes/fz/previews",
            json!({ "metadata": { "name": "p2" }, "spec": { "port": 80, "public": true } }),
        ),
        (
            Method::PUT,
            "/sandboxes/fz/previews/p",
            json!({ "spec": { "port": 81 } }),
        ),
        (
            Method::POST,
            "/sandboxes/fz/previews/p/tokens",
            json!({ "metadata": { "name": "t2" }, "spec": { "expiresAt": "2099-01-01T00:00:00Z" } }),
        ),
    ]
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e6 - 5e5),
        4 => json!(""),
        5 => json!("\u{0}\u{ffff}é💥 \"quoted\" \\ ../.."),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut m = serde_json::Map::new();
            for i in 0..rng.random_range(0..4) {
                m.insert(format!("k{i}"), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// Every (path to a) leaf or inner value of a JSON document.
fn paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(k.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(i.to_string());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn set_at(v: &mut Value, path: &[String], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        *v = new;
        return;
    };
    let mut cur = v;
    for p in parents {
        cur = match cur {
            Value::Object(m) => m.get_mut(p).unwrap(),
            Value::Array(a) => a.get_mut(p.parse::<usize>().unwrap()).unwrap(),
            _ => return,
        };
    }
    match cur {
        Value::Object(m) => {
            m.insert(last.clone(), new);
        }
        Value::Array(a) => a[last.parse::<usize>().unwrap()] = new,
        _ => {}
    }
}

/// Mangled bodies on every write route: syntax errors and wrong top-level types are 400; type mutations
/// of valid bodies are 200 or 4xx; nothing is ever 5xx.
#[tokio::test]
async fn mangled_bodies_never_cause_server_errors() {
    let h = Harness::default().await;
    h.create_sandbox("fz").await;
    h.post(
        "/sandboxes/fz/previews",
        json!({ "metadata": { "name": "p" } }),
    )
    .await;
    h.post("/users", json!({ "email": "target@example.com" }))
        .await;
    let mut rng = StdRng::seed_from_u64(0xf022);
    let routes = write_routes();
    let mut sent = 0;
    for round in 0..60 {
        for (method, path, valid) in &routes {
            // 1. Raw garbage and truncated JSON: always 400.
            let text = valid.to_string();
            let cut = rng.random_range(0..text.len());
            let garbage: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
            let not_objects = [json!([]), json!(1), json!("s"), json!(null), json!(true)];
            let bodies: Vec<Vec<u8>> = vec![
                text.as_bytes()[..cut].to_vec(),
                garbage,
                Vec::new(),
                not_objects[round % not_objects.len()]
                    .to_string()
                    .into_bytes(),
            ];
            for body in bodies {
                let a = h
                    .send(
                        h.req(method.clone(), path)
                            .header("content-type", "application/json")
                            .body(body),
                    )
                    .await;
                sent += 1;
                assert_eq!(
                    a.status,
                    StatusCode::BAD_REQUEST,
                    "{method} {path}: {}",
                    a.raw
                );
                assert!(a.body["message"].is_string(), "JSON error body: {}", a.raw);
            }
            // 2. A valid body with one value replaced by a random one: accepted or refused, never a crash.
            let mut all = Vec::new();
            paths(valid, &mut Vec::new(), &mut all);
            let target = all[rng.random_range(0..all.len())].clone();
            let mut mutated = valid.clone();
            set_at(&mut mutated, &target, random_value(&mut rng, 0));
            let a = h.call(method.clone(), path, Some(mutated.clone())).await;
            sent += 1;
            assert!(
                a.status == StatusCode::OK || a.status.is_client_error(),
                "{method} {path} with {mutated}: {} {}",
                a.status,
                a.raw
            );
            if a.status.is_client_error() {
                assert!(a.body["message"].is_string(), "JSON error body: {}", a.raw);
            }
        }
    }
    let stats = h.sim_get("/stats").await;
    assert!(stats["total"].as_u64().unwrap() >= sent);
    for (status, _) in stats["byStatus"].as_object().unwrap() {
        assert!(!status.starts_with('5'), "a 5xx slipped through: {stats}");
    }
    assert_eq!(
        h.sandbox_status("fz").await,
        "DEPLOYING",
        "the server still answers"
    );
}

/// Bodies over the limit get 413, deeply nested JSON gets 400, in the route's error shape.
#[tokio::test]
async fn huge_and_deep_bodies_are_refused() {
    let h = Harness::default().await;
    let huge = format!(
        "{{\"email\": \"{}@example.com\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let a = h
        .send(h.req(Method::POST, "/users").body(huge.clone()))
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    common::schema::assert_shape(&common::schema::ERROR, &a.body);
    let a = h.send(h.req(Method::POST, "/sandboxes").body(huge)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    common::schema::assert_shape(&common::schema::SANDBOX_ERROR, &a.body);

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let a = h
        .send(
            h.req(Method::POST, "/users")
                .body(format!("{{\"email\": {deep}}}")),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.raw);
    assert_eq!(
        h.get("/users").await.status,
        StatusCode::OK,
        "the server still answers"
    );
}

/// Invalid e-mail addresses are refused with 400 and a message that says so; nothing is stored.
#[tokio::test]
async fn bad_emails_are_refused() {
    let h = Harness::default().await;
    let long_local = format!("{}@example.com", "a".repeat(65));
    let long_total = format!("a@{}.com", "b".repeat(250));
    let bad = [
        "",
        " ",
        "plain",
        "@example.com",
        "a@",
        "a@b",
        "a@@b.co",
        "a b@c.de",
        "a@b..co",
        "a@-b.co",
        "a@b-.co",
        ".a@b.co",
        "a.@b.co",
        "a..b@c.de",
        "é@b.co",
        "a@bü.de",
        "a@b.co\n",
        "a@b.co ",
        "<a@b.co>",
        "a\"b@c.de",
        &long_local,
        &long_total,
    ];
    for email in bad {
        let a = h.post("/users", json!({ "email": email })).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{email:?}: {}", a.raw);
        assert!(
            a.body["message"].as_str().unwrap().contains("email"),
            "{}",
            a.raw
        );
    }
    for wrong in [
        json!({ "email": 1 }),
        json!({ "email": ["a@b.co"] }),
        json!({ "mail": "a@b.co" }),
    ] {
        assert_eq!(
            h.post("/users", wrong).await.status,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(h.get("/users").await.body, json!([]));
}

/// Odd paths (dot segments, encoded slashes, NUL, invalid UTF-8, unicode, very long names, extra segments)
/// answer 4xx with a JSON error on every route family, and never reach another object.
#[tokio::test]
async fn odd_paths_are_client_errors() {
    let h = Harness::default().await;
    h.create_sandbox("real").await;
    let long = "a".repeat(10_000);
    let odd = [
        "..",
        "%2e%2e",
        "%2E%2E%2Freal",
        "real%2F..",
        "%00",
        "%FF",
        "%C3%28",
        "a%20b",
        "ü",
        "%F0%9F%98%80",
        "REAL",
        "real%00",
        "-real",
        "real-",
        &long,
        "%25",
        "%ZZ",
    ];
    for seg in odd {
        for (method, path) in [
            (Method::GET, format!("/sandboxes/{seg}")),
            (Method::DELETE, format!("/sandboxes/{seg}")),
            (Method::PUT, format!("/sandboxes/{seg}/start")),
            (Method::GET, format!("/sandboxes/real/previews/{seg}")),
            (Method::DELETE, format!("/users/{seg}")),
            (
                Method::GET,
                format!("/sandboxes/{seg}/previews/{seg}/tokens"),
            ),
        ] {
            let a = h.call(method.clone(), &path, None).await;
            assert!(
                a.status.is_client_error(),
                "{method} {}: {} {}",
                &path[..path.len().min(80)],
                a.status,
                a.raw
            );
            assert!(
                a.body["message"].is_string() || a.body["error"].is_string(),
                "JSON error: {}",
                a.raw
            );
        }
        let mut body = common::sandbox_body("x");
        body["metadata"]["name"] = json!(seg);
        let a = h.post("/sandboxes", body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "name {seg:?}");
    }
    for path in [
        "/sandboxes/real/extra/segments/here",
        "/sandboxes//previews",
        "/users/",
        "/",
    ] {
        assert!(h.get(path).await.status.is_client_error(), "{path}");
    }
    assert_eq!(
        h.sandbox_status("real").await,
        "DEPLOYING",
        "untouched and still served"
    );
    assert_eq!(h.get("/sandboxes").await.body.as_array().unwrap().len(), 1);
}
