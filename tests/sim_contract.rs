//! Contract tests: every route of the 2025-11-28 definition the operator uses answers with the status codes
//! and body shapes the definition gives, checked field by field against the table in `common/schema.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use common::Harness;
use common::schema::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Users routes: list, invite, set role, remove, with their 200/400/404 answers and 2025 shapes.
#[tokio::test]
async fn users_routes_match_the_2025_definition() {
    let h = Harness::default().await;

    let a = h.get("/users").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, json!([]), "a new workspace has no users");

    let a = h
        .post("/users", json!({ "email": "Alice.Smith@Example.com" }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&PENDING_INVITATION_2025, &a.body);
    assert_eq!(
        a.body["email"], "alice.smith@example.com",
        "addresses are normalized to lower case"
    );
    assert_eq!(a.body["role"], "member", "an invitation starts as member");
    assert_eq!(a.body["workspace"], "ws-a");

    let a = h.get("/users").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_array_of(&WORKSPACE_USER_2025, &a.body);
    assert_eq!(a.body.as_array().unwrap().len(), 1);
    let u = &a.body[0];
    assert_eq!(u["accepted"], false);
    assert_eq!(u["expired"], false);
    assert!(
        u.get("sub").is_none(),
        "a pending invitation has no sub yet"
    );

    // Set the role of the pending invitation (invite, then set role).
    let a = h
        .put("/users/alice.smith@example.com", json!({ "role": "admin" }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&WORKSPACE_USER_2025, &a.body);
    assert_eq!(a.body["role"], "admin");

    for bad in [json!({ "role": "owner" }), json!({}), json!({ "role": 3 })] {
        let a = h.put("/users/alice.smith@example.com", bad.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.raw);
        assert_shape(&ERROR, &a.body);
    }
    let a = h
        .put("/users/nobody@example.com", json!({ "role": "member" }))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_shape(&ERROR, &a.body);
    assert_eq!(a.body["code"], 404);

    let a = h.post("/users", json!({ "email": "not-an-email" })).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_shape(&ERROR, &a.body);
    assert!(
        a.body["message"].as_str().unwrap().contains("email"),
        "{}",
        a.raw
    );

    // DELETE revokes the invitation: 200 with an empty body; then 404.
    let a = h.delete("/users/ALICE.SMITH@example.com").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.raw.is_empty(),
        "DELETE /users answers an empty body, got {:?}",
        a.raw
    );
    assert_eq!(h.get("/users").await.body, json!([]));
    let a = h.delete("/users/alice.smith@example.com").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_shape(&ERROR, &a.body);
}

/// Accepted members carry sub and names, can be addressed by sub, and removed by sub.
#[tokio::test]
async fn accepted_member_is_addressable_by_sub() {
    let h = Harness::default().await;
    h.post("/users", json!({ "email": "bob@example.com" }))
        .await;
    let a = h
        .sim_post("/invitations/bob@example.com/accept", json!({}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);

    let users = h.get("/users").await.body;
    assert_array_of(&WORKSPACE_USER_2025, &users);
    let bob = &users[0];
    assert_eq!(bob["accepted"], true);
    assert_eq!(bob["email_verified"], true);
    assert_eq!(bob["given_name"], "Bob");
    let sub = bob["sub"].as_str().expect("members have a sub").to_owned();

    let a = h
        .put(&format!("/users/{sub}"), json!({ "role": "admin" }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(a.body["role"], "admin");
    assert_eq!(a.body["sub"], sub.as_str());
    assert_eq!(
        h.delete(&format!("/users/{sub}")).await.status,
        StatusCode::OK
    );
    assert_eq!(h.get("/users").await.body, json!([]));
}

/// Sandbox CRUD and start/stop: statuses and shapes of every answer, including both error bodies.
#[tokio::test]
async fn sandbox_routes_match_the_2025_definition() {
    let h = Harness::default().await;

    let created = h.create_sandbox("dev-box").await;
    assert_shape(&SANDBOX_2025, &created);
    assert_eq!(created["metadata"]["name"], "dev-box");
    assert_eq!(created["metadata"]["workspace"], "ws-a");
    assert_eq!(created["metadata"]["labels"]["team"], "a");
    assert_eq!(
        created["spec"]["runtime"]["image"],
        "blaxel/base-image:latest"
    );
    assert_eq!(created["status"], "DEPLOYING");
    assert!(
        created["metadata"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );

    let a = h.get("/sandboxes/dev-box").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_shape(&SANDBOX_2025, &a.body);

    let a = h.get("/sandboxes").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_array_of(&SANDBOX_2025, &a.body);
    assert_eq!(a.body.as_array().unwrap().len(), 1);

    // Duplicate: 409 in the create-sandbox error body.
    let a = h.post("/sandboxes", common::sandbox_body("dev-box")).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_shape(&SANDBOX_ERROR, &a.body);
    assert_eq!(a.body["code"], "SANDBOX_ALREADY_EXISTS");
    assert_eq!(a.body["status_code"], 409);
    assert_eq!(a.body["sandbox_name"], "dev-box");
    assert_eq!(a.body["workspace"], "ws-a");

    // Missing name, invalid name, wrong types: 400 in the create-sandbox error body.
    for bad in [
        json!({ "spec": {} }),
        json!({ "metadata": {} }),
        json!({ "metadata": { "name": "Not_Valid" } }),
        json!({ "metadata": { "name": "ok" }, "spec": { "runtime": { "memory": "lots" } } }),
    ] {
        let a = h.post("/sandboxes", bad.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.raw);
        assert_shape(&SANDBOX_ERROR, &a.body);
    }

    // An unusable image: 400 INVALID_IMAGE with the image in the details.
    let mut body = common::sandbox_body("img");
    body["spec"]["runtime"]["image"] = json!("not an image");
    let a = h.post("/sandboxes", body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_shape(&SANDBOX_ERROR, &a.body);
    assert_eq!(a.body["code"], "INVALID_IMAGE");
    assert_eq!(a.body["details"]["requested_image"], "not an image");

    // PUT replaces spec and labels.
    let mut body = common::sandbox_body("dev-box");
    body["metadata"]["labels"] = json!({ "team": "b" });
    body["spec"]["runtime"]["memory"] = json!(8192);
    let a = h.put("/sandboxes/dev-box", body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&SANDBOX_2025, &a.body);
    assert_eq!(a.body["metadata"]["labels"], json!({ "team": "b" }));
    assert_eq!(a.body["spec"]["runtime"]["memory"], 8192);
    let a = h
        .put("/sandboxes/ghost", common::sandbox_body("ghost"))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_shape(&ERROR, &a.body);

    // Start while running: 409. Stop: StopSandbox. Stop again: 409. Start: StartSandbox.
    let a = h.put("/sandboxes/dev-box/start", json!({})).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.raw);
    assert_shape(&ERROR, &a.body);
    let a = h.call(Method::PUT, "/sandboxes/dev-box/stop", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&START_STOP, &a.body);
    assert_eq!(a.body["status"], "DEACTIVATING");
    assert_eq!(a.body["metadata"]["name"], "dev-box");
    let a = h.call(Method::PUT, "/sandboxes/dev-box/stop", None).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_shape(&ERROR, &a.body);
    let a = h.call(Method::PUT, "/sandboxes/dev-box/start", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&START_STOP, &a.body);
    assert_eq!(a.body["status"], "DEPLOYING");
    let a = h.call(Method::PUT, "/sandboxes/ghost/start", None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // DELETE answers the sandbox, now DELETING.
    let a = h.delete("/sandboxes/dev-box").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&SANDBOX_2025, &a.body);
    assert_eq!(a.body["status"], "DELETING");
    let a = h.delete("/sandboxes/ghost").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_shape(&ERROR, &a.body);
    let a = h.get("/sandboxes/ghost").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_shape(&ERROR, &a.body);
}

/// Previews and preview tokens: CRUD answers, 409 on duplicates, 404 on unknown names, token shape.
#[tokio::test]
async fn preview_routes_match_the_2025_definition() {
    let h = Harness::default().await;
    h.create_sandbox("web").await;

    let preview = json!({
        "metadata": { "name": "site" },
        "spec": { "port": 3000, "public": false, "responseHeaders": { "Access-Control-Allow-Origin": "*" } }
    });
    let a = h.post("/sandboxes/web/previews", preview.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&PREVIEW_2025, &a.body);
    assert_eq!(a.body["metadata"]["resourceName"], "web");
    assert_eq!(a.body["spec"]["port"], 3000);
    let a = h.post("/sandboxes/web/previews", preview).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_shape(&ERROR, &a.body);
    let a = h
        .post("/sandboxes/web/previews", json!({ "spec": { "port": 1 } }))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = h
        .post(
            "/sandboxes/nope/previews",
            json!({ "metadata": { "name": "x" } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let a = h.get("/sandboxes/web/previews").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_array_of(&PREVIEW_2025, &a.body);
    let a = h.get("/sandboxes/web/previews/site").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_shape(&PREVIEW_2025, &a.body);
    let a = h
        .put(
            "/sandboxes/web/previews/site",
            json!({ "spec": { "port": 8080, "public": true } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&PREVIEW_2025, &a.body);
    assert_eq!(a.body["spec"]["port"], 8080);
    assert_eq!(
        h.get("/sandboxes/web/previews/other").await.status,
        StatusCode::NOT_FOUND
    );

    // Tokens.
    let a = h
        .post(
            "/sandboxes/web/previews/site/tokens",
            json!({ "metadata": { "name": "ci" }, "spec": { "expiresAt": "2099-01-01T00:00:00Z" } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&PREVIEW_TOKEN, &a.body);
    assert_eq!(a.body["spec"]["expired"], false);
    assert!(!a.body["spec"]["token"].as_str().unwrap().is_empty());
    let a = h
        .post(
            "/sandboxes/web/previews/site/tokens",
            json!({ "metadata": { "name": "ci" } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    let a = h
        .post("/sandboxes/web/previews/site/tokens", json!({ "metadata": { "name": "old" }, "spec": { "expiresAt": "2001-01-01T00:00:00Z" } }))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body["spec"]["expired"], true,
        "a token past its expiry is expired"
    );
    let a = h
        .post(
            "/sandboxes/web/previews/site/tokens",
            json!({ "metadata": { "name": "x" }, "spec": { "expiresAt": "tomorrow" } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = h.get("/sandboxes/web/previews/site/tokens").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_array_of(&PREVIEW_TOKEN, &a.body);
    assert_eq!(a.body.as_array().unwrap().len(), 2);
    let a = h.delete("/sandboxes/web/previews/site/tokens/ci").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_shape(&MESSAGE, &a.body);
    assert_eq!(
        h.delete("/sandboxes/web/previews/site/tokens/ci")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let a = h.delete("/sandboxes/web/previews/site").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_shape(&PREVIEW_2025, &a.body);
    assert_eq!(
        h.get("/sandboxes/web/previews/site").await.status,
        StatusCode::NOT_FOUND
    );
}

/// 2025 join/decline: the invitee (Bearer user:<email>) accepts or declines; workspace keys cannot.
#[tokio::test]
async fn join_and_decline_match_the_2025_definition() {
    let h = Harness::default().await;
    h.post("/users", json!({ "email": "carol@example.com" }))
        .await;
    h.post("/users", json!({ "email": "dan@example.com" }))
        .await;
    let url = |ws: &str, what: &str| format!("{}/workspaces/{ws}/{what}", h.sim.base_url());

    // A workspace key is not the invitee.
    let a = h
        .send(h.http.post(url("ws-a", "join")).bearer_auth("key-a"))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_shape(&ERROR, &a.body);
    let a = h.send(h.http.post(url("ws-a", "join"))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    let a = h
        .send(
            h.http
                .post(url("ws-a", "join"))
                .bearer_auth("user:carol@example.com"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&PENDING_INVITATION_ACCEPT, &a.body);
    assert_eq!(a.body["workspace"]["name"], "ws-a");
    let a = h
        .send(
            h.http
                .post(url("ws-b", "join"))
                .bearer_auth("user:carol@example.com"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "no invitation in ws-b");
    let a = h
        .send(
            h.http
                .post(url("nowhere", "join"))
                .bearer_auth("user:carol@example.com"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let a = h
        .send(
            h.http
                .post(url("ws-a", "decline"))
                .bearer_auth("user:dan@example.com"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&PENDING_INVITATION_2025, &a.body);
    let a = h
        .send(
            h.http
                .post(url("ws-a", "decline"))
                .bearer_auth("user:dan@example.com"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let users = h.get("/users").await.body;
    assert_eq!(
        users.as_array().unwrap().len(),
        1,
        "declined invitation is gone: {users}"
    );
    assert_eq!(users[0]["email"], "carol@example.com");
    assert_eq!(users[0]["accepted"], true);
}

/// Unknown routes and methods answer JSON errors, not plain text.
#[tokio::test]
async fn unknown_routes_answer_json_errors() {
    let h = Harness::default().await;
    let a = h.get("/nothing-here").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_shape(&ERROR, &a.body);
    let a = h.call(Method::PATCH, "/sandboxes", None).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_shape(&ERROR, &a.body);
}
