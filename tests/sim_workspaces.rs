//! Workspaces and account keys: `GET/POST /workspaces`, `GET/PUT/DELETE /workspaces/{name}`,
//! `POST /workspaces/availability` in both generations; what account keys and workspace keys may do; names held
//! by another account; the control route that puts users straight into a workspace with a `source`; faults,
//! stats and `/_sim/state` for the new routes.
//!
//! Every body is checked against the definitions' `Workspace` (2025: the project's `common::schema::WORKSPACE`;
//! 2026: [`WORKSPACE_2026`] below, which adds `groupMappings`, `hipaaInfo` and `resourceCounts`).
#![allow(
    clippy::too_many_lines,
    reason = "end-to-end scenarios read best as one story"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use std::time::Duration;

use blaxel_operator::sim::{ApiGeneration, SimConfig};
use common::schema::{
    ERROR, F, PENDING_INVITATION_2025, PENDING_INVITATION_2026, SANDBOX_2025, SANDBOX_2026, Schema,
    Ty, WORKSPACE, WORKSPACE_USER_2025, WORKSPACE_USER_2026, assert_array_of, assert_shape,
};
use common::{Answer, Harness, config, sandbox_body};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// ---- the 2026 definition's Workspace, written down as common/schema.rs does ----

const WORKSPACE_STATUSES: &[&str] = &[
    "created",
    "account_binded",
    "account_configured",
    "workspace_configured",
    "ready",
    "error",
];

const fn req(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        req: true,
    }
}

const fn opt(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        req: false,
    }
}

static GROUP_MAPPING: Schema = Schema {
    name: "GroupWorkspaceMapping",
    fields: &[
        opt("groupName", Ty::Str),
        opt("role", Ty::Enum(&["admin", "member"])),
    ],
    open: false,
};

static HIPAA_UNSAFE: Schema = Schema {
    name: "WorkspaceHipaaUnsafe",
    fields: &[
        opt("enabled", Ty::Bool),
        opt("updatedAt", Ty::Time),
        opt("updatedBy", Ty::Str),
    ],
    open: false,
};

static HIPAA_INFO: Schema = Schema {
    name: "WorkspaceHipaaInfo",
    fields: &[
        opt("accountEnabled", Ty::Bool),
        opt("unsafe", Ty::Obj(&HIPAA_UNSAFE)),
    ],
    open: false,
};

static RUNTIME_2026: Schema = Schema {
    name: "WorkspaceRuntime(2026)",
    fields: &[opt("generation", Ty::Str), opt("sandbox", Ty::AnyObj)],
    open: false,
};

/// `Workspace`, 2026; `req` marks what the simulator always sends.
static WORKSPACE_2026: Schema = Schema {
    name: "Workspace(2026)",
    fields: &[
        req("createdAt", Ty::Time),
        req("updatedAt", Ty::Time),
        req("createdBy", Ty::Str),
        req("updatedBy", Ty::Str),
        req("accountId", Ty::Str),
        req("displayName", Ty::Str),
        opt("groupMappings", Ty::Arr(&GROUP_MAPPING)),
        opt("hipaaInfo", Ty::Obj(&HIPAA_INFO)),
        req("id", Ty::Str),
        req("labels", Ty::StrMap),
        req("name", Ty::Str),
        req("region", Ty::Str),
        opt("resourceCounts", Ty::AnyObj),
        req("runtime", Ty::Obj(&RUNTIME_2026)),
        req("status", Ty::Enum(WORKSPACE_STATUSES)),
        opt("statusReason", Ty::Str),
    ],
    open: false,
};

/// `WorkspaceAvailability` (2026, `?withReason=true`).
static WORKSPACE_AVAILABILITY: Schema = Schema {
    name: "WorkspaceAvailability",
    fields: &[
        req("available", Ty::Bool),
        opt("message", Ty::Str),
        opt(
            "reason",
            Ty::Enum(&[
                "taken",
                "forbidden_reserved",
                "forbidden_blaxel",
                "forbidden_v_prefix",
            ]),
        ),
    ],
    open: false,
};

/// Checks a `Workspace` body against its generation's schema, leaving out the unknown fields a test sent.
#[track_caller]
fn assert_workspace(generation: ApiGeneration, body: &Value, unknown: &[&str]) {
    let mut known = body.clone();
    if let Some(m) = known.as_object_mut() {
        for k in unknown {
            assert!(
                m.remove(*k).is_some(),
                "unknown field {k} was not kept: {body}"
            );
        }
    }
    match generation {
        ApiGeneration::V2025 => {
            assert_shape(&WORKSPACE, &known);
            // The simulator always sends these, in both generations.
            for f in [
                "id",
                "status",
                "accountId",
                "createdAt",
                "updatedAt",
                "region",
            ] {
                assert!(known.get(f).is_some(), "{f} missing: {body}");
            }
            assert!(
                WORKSPACE_STATUSES.contains(&known["status"].as_str().unwrap()),
                "{body}"
            );
        }
        ApiGeneration::V2026 => assert_shape(&WORKSPACE_2026, &known),
    }
}

// ---- set-up ----

const ACCOUNT: &str = "acct-key";

/// The common test configuration (workspace keys `key-a`→`ws-a`, `key-b`→`ws-b`, manual clock) plus an
/// account key and a 4-second walk to `ready` (a second per status).
fn cfg(generation: ApiGeneration) -> SimConfig {
    SimConfig {
        generation,
        account_keys: vec![ACCOUNT.into()],
        workspace_ready_time: Duration::from_secs(4),
        ..config()
    }
}

const BOTH: [ApiGeneration; 2] = [ApiGeneration::V2025, ApiGeneration::V2026];

/// A request to `/v0{path}` as `key`, in `workspace` when given.
async fn call(
    h: &Harness,
    key: Option<&str>,
    method: Method,
    path: &str,
    workspace: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut rb = h
        .http
        .request(method, format!("{}{path}", h.sim.base_url()));
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    if let Some(ws) = workspace {
        rb = rb.header("X-Blaxel-Workspace", ws);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    h.send(rb).await
}

async fn acct(h: &Harness, method: Method, path: &str, body: Option<Value>) -> Answer {
    call(h, Some(ACCOUNT), method, path, None, body).await
}

async fn acct_in(h: &Harness, ws: &str, method: Method, path: &str, body: Option<Value>) -> Answer {
    call(h, Some(ACCOUNT), method, path, Some(ws), body).await
}

#[track_caller]
fn assert_error(a: &Answer, status: StatusCode, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.raw);
    assert_shape(&ERROR, &a.body);
    assert_eq!(a.body["code"], status.as_u16(), "{what}");
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect()
}

// ---- the routes, generation by generation ----

/// Every workspace route's success and error answers, with the definition's shapes, in both generations.
#[tokio::test]
async fn routes_answer_as_the_definitions_say() {
    for generation in BOTH {
        let h = Harness::start(cfg(generation)).await;
        let what = format!("{generation:?}");

        // GET /workspaces: the seeded workspaces, ready.
        let a = acct(&h, Method::GET, "/workspaces", None).await;
        assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.raw);
        assert_eq!(names(&a.body), ["ws-a", "ws-b"], "{what}");
        for w in a.body.as_array().unwrap() {
            assert_workspace(generation, w, &[]);
            assert_eq!(w["status"], "ready", "{what}");
        }

        // GET one.
        let a = acct(&h, Method::GET, "/workspaces/ws-a", None).await;
        assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.raw);
        assert_workspace(generation, &a.body, &[]);
        assert_eq!(a.body["name"], "ws-a");
        assert_eq!(
            a.body["displayName"], "ws-a",
            "displayName defaults to the name"
        );
        assert!(a.body.get("statusReason").is_none(), "only set for error");
        assert_eq!(
            a.body.get("resourceCounts"),
            None,
            "only with ?countResources=true"
        );
        let a = acct(&h, Method::GET, "/workspaces/nowhere", None).await;
        assert_error(&a, StatusCode::NOT_FOUND, &what);

        // POST.
        let a = acct(
            &h,
            Method::POST,
            "/workspaces",
            Some(json!({ "name": "team-x", "displayName": "Team X", "labels": { "env": "dev" }, "region": "eu-lon-1" })),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.raw);
        assert_workspace(generation, &a.body, &[]);
        assert_eq!(a.body["status"], "created", "{what}");
        assert_eq!(a.body["displayName"], "Team X");
        assert_eq!(a.body["labels"], json!({ "env": "dev" }));
        assert_eq!(a.body["region"], "eu-lon-1");
        assert_eq!(a.body["createdAt"], a.body["updatedAt"]);
        let a = acct(
            &h,
            Method::POST,
            "/workspaces",
            Some(json!({ "name": "team-x" })),
        )
        .await;
        assert_error(&a, StatusCode::CONFLICT, "duplicate name");
        let a = acct(
            &h,
            Method::POST,
            "/workspaces",
            Some(json!({ "name": "ws-a" })),
        )
        .await;
        assert_error(&a, StatusCode::CONFLICT, "a seeded name");
        for bad in [
            json!({}),
            json!({ "name": 7 }),
            json!({ "name": "Not_Valid" }),
            json!({ "name": "api" }),
            json!({ "name": "my-blaxel" }),
            json!({ "name": "v2-prod" }),
            json!({ "name": "ok-name", "displayName": ["x"] }),
            json!({ "name": "ok-name", "runtime": "mk3" }),
        ] {
            let a = acct(&h, Method::POST, "/workspaces", Some(bad.clone())).await;
            assert_error(&a, StatusCode::BAD_REQUEST, &format!("{what} {bad}"));
        }
        let a = h
            .send(
                h.http
                    .post(format!("{}/workspaces", h.sim.base_url()))
                    .bearer_auth(ACCOUNT)
                    .header("content-type", "application/json")
                    .body("{not json"),
            )
            .await;
        assert_error(&a, StatusCode::BAD_REQUEST, "malformed JSON");
        assert_eq!(
            acct(&h, Method::GET, "/workspaces/ok-name", None)
                .await
                .status,
            StatusCode::NOT_FOUND,
            "no failed create left anything behind"
        );

        // PUT.
        let a = acct(
            &h,
            Method::PUT,
            "/workspaces/team-x",
            Some(json!({ "displayName": "Team Ex" })),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.raw);
        assert_workspace(generation, &a.body, &[]);
        assert_eq!(a.body["displayName"], "Team Ex");
        assert_eq!(
            a.body["labels"],
            json!({ "env": "dev" }),
            "absent fields are kept"
        );
        let a = acct(
            &h,
            Method::PUT,
            "/workspaces/team-x",
            Some(json!({ "name": "team-y" })),
        )
        .await;
        assert_error(&a, StatusCode::BAD_REQUEST, "rename");
        let a = acct(&h, Method::PUT, "/workspaces/nowhere", Some(json!({}))).await;
        assert_error(&a, StatusCode::NOT_FOUND, "PUT unknown");

        // Availability.
        for (name, free) in [
            ("team-x", false),
            ("ws-a", false),
            ("fresh-name", true),
            ("www", false),
        ] {
            let a = acct(
                &h,
                Method::POST,
                "/workspaces/availability",
                Some(json!({ "name": name })),
            )
            .await;
            assert_eq!(a.status, StatusCode::OK, "{what} {name}: {}", a.raw);
            assert_eq!(
                a.body,
                json!(free),
                "{what} {name}: a bare boolean by default"
            );
        }
        for bad in [
            json!({}),
            json!({ "name": 1 }),
            json!({ "name": "Bad Name" }),
        ] {
            let a = acct(
                &h,
                Method::POST,
                "/workspaces/availability",
                Some(bad.clone()),
            )
            .await;
            assert_error(&a, StatusCode::BAD_REQUEST, &format!("availability {bad}"));
        }

        // DELETE: 200 with the workspace, then 404 everywhere.
        let a = acct(&h, Method::DELETE, "/workspaces/team-x", None).await;
        assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.raw);
        assert_workspace(generation, &a.body, &[]);
        assert_eq!(a.body["name"], "team-x");
        for (m, body) in [
            (Method::GET, None),
            (Method::PUT, Some(json!({}))),
            (Method::DELETE, None),
        ] {
            let a = acct(&h, m.clone(), "/workspaces/team-x", body).await;
            assert_error(&a, StatusCode::NOT_FOUND, &format!("{m} after delete"));
        }
        let a = acct(
            &h,
            Method::POST,
            "/workspaces/availability",
            Some(json!({ "name": "team-x" })),
        )
        .await;
        assert_eq!(a.body, json!(true), "a deleted name is free again");

        // No key, an unknown key, a user token.
        for (key, status) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some("nope"), StatusCode::UNAUTHORIZED),
            (Some("user:a@example.com"), StatusCode::FORBIDDEN),
        ] {
            for (m, path, body) in [
                (Method::GET, "/workspaces", None),
                (Method::POST, "/workspaces", Some(json!({ "name": "zz" }))),
                (Method::GET, "/workspaces/ws-a", None),
                (Method::PUT, "/workspaces/ws-a", Some(json!({}))),
                (Method::DELETE, "/workspaces/ws-a", None),
                (
                    Method::POST,
                    "/workspaces/availability",
                    Some(json!({ "name": "zz" })),
                ),
            ] {
                let a = call(&h, key, m.clone(), path, None, body).await;
                assert_error(&a, status, &format!("{what} {key:?} {m} {path}"));
            }
        }
        assert_eq!(
            acct(&h, Method::GET, "/workspaces/ws-a", None).await.status,
            StatusCode::OK,
            "nothing was deleted by the refused calls"
        );
    }
}

/// What only today's API has: `?withReason=true` answers a `WorkspaceAvailability` with the reason;
/// `?countResources=true` adds `resourceCounts`; `groupMappings` and `hipaaInfo` are modelled.
#[tokio::test]
async fn today_adds_reasons_counts_and_fields() {
    let generation = ApiGeneration::V2026;
    let h = Harness::start(cfg(generation)).await;
    h.sim_post("/workspaces/elsewhere/foreign", json!({})).await;
    for (name, reason) in [
        ("ws-a", Some("taken")),
        ("elsewhere", Some("taken")),
        ("console", Some("forbidden_reserved")),
        ("blaxel-fans", Some("forbidden_blaxel")),
        ("v1", Some("forbidden_v_prefix")),
        ("brand-new", None),
    ] {
        let a = acct(
            &h,
            Method::POST,
            "/workspaces/availability?withReason=true",
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.raw);
        assert_shape(&WORKSPACE_AVAILABILITY, &a.body);
        assert_eq!(a.body["available"], reason.is_none(), "{name}");
        assert_eq!(
            a.body.get("reason").and_then(Value::as_str),
            reason,
            "{name}"
        );
        assert_eq!(
            a.body.get("message").is_some(),
            reason.is_some(),
            "{name}: a message only when unavailable"
        );
    }
    let a = acct(
        &h,
        Method::POST,
        "/workspaces/availability?withReason=false",
        Some(json!({ "name": "brand-new" })),
    )
    .await;
    assert_eq!(a.body, json!(true));
    let a = acct(
        &h,
        Method::POST,
        "/workspaces/availability?withReason=maybe",
        Some(json!({ "name": "brand-new" })),
    )
    .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "withReason=maybe");

    // resourceCounts: the sandboxes, previews and API keys of the workspace.
    h.create_sandbox("s1").await;
    h.create_sandbox("s2").await;
    h.post(
        "/sandboxes/s1/previews",
        json!({ "metadata": { "name": "p" } }),
    )
    .await;
    h.delete("/sandboxes/s2").await;
    h.advance(2.0).await; // s2 TERMINATED
    let a = acct(
        &h,
        Method::GET,
        "/workspaces/ws-a?countResources=true",
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_workspace(generation, &a.body, &[]);
    let counts = &a.body["resourceCounts"];
    assert_eq!(counts["sandboxes"], 1, "{counts}");
    assert_eq!(counts["previews"], 1, "{counts}");
    assert_eq!(counts["serviceaccounts"], 1, "{counts}");
    assert_eq!(counts["agents"], 0, "{counts}");
    assert!(
        counts.as_object().unwrap().values().all(Value::is_u64),
        "{counts}"
    );
    let a = acct(&h, Method::GET, "/workspaces/ws-a?countResources=yes", None).await;
    assert_error(&a, StatusCode::BAD_REQUEST, "countResources=yes");

    // groupMappings and hipaaInfo: kept as written, server fields stamped or refused.
    let a = acct(
        &h,
        Method::POST,
        "/workspaces",
        Some(json!({
            "name": "hipaa-ws",
            "groupMappings": [{ "groupName": "Engineering", "role": "admin" }],
            "hipaaInfo": { "accountEnabled": true, "unsafe": { "enabled": true, "updatedBy": "forged" } },
            "resourceCounts": { "agents": 99 }
        })),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_workspace(generation, &a.body, &[]);
    assert_eq!(a.body["groupMappings"][0]["groupName"], "Engineering");
    assert_eq!(
        a.body["hipaaInfo"]["accountEnabled"], false,
        "the account's addon is the server's to say"
    );
    assert_eq!(a.body["hipaaInfo"]["unsafe"]["enabled"], true);
    assert_ne!(a.body["hipaaInfo"]["unsafe"]["updatedBy"], "forged");
    assert!(a.body["hipaaInfo"]["unsafe"]["updatedAt"].is_string());
    assert!(a.body.get("resourceCounts").is_none(), "read-only: ignored");
    for bad in [
        json!({ "labels": { "n": 1 } }),
        json!({ "groupMappings": [{ "role": "owner" }] }),
        json!({ "hipaaInfo": { "unsafe": { "enabled": "yes" } } }),
    ] {
        let a = acct(&h, Method::PUT, "/workspaces/hipaa-ws", Some(bad.clone())).await;
        assert_error(&a, StatusCode::BAD_REQUEST, &format!("{bad}"));
    }
}

/// An account key creates a workspace, watches it walk to ready on the simulator clock, works in it (users,
/// sandboxes, previews), updates it keeping unknown fields, and deletes it with everything in it.
#[tokio::test]
async fn account_key_creates_uses_updates_and_deletes_a_workspace() {
    for generation in BOTH {
        let h = Harness::start(cfg(generation)).await;
        let what = format!("{generation:?}");
        let created = acct(
            &h,
            Method::POST,
            "/workspaces",
            Some(json!({ "name": "lab", "labels": { "team": "ml" }, "costCenter": "cc-42", "x-notes": { "a": [1, 2] } })),
        )
        .await;
        assert_eq!(created.status, StatusCode::OK, "{what}: {}", created.raw);
        assert_workspace(generation, &created.body, &["costCenter", "x-notes"]);
        assert_eq!(
            created.body["costCenter"], "cc-42",
            "unknown fields are kept"
        );
        let id = created.body["id"].as_str().unwrap().to_owned();

        // Not ready yet: its users and sandboxes cannot be reached.
        let a = acct_in(&h, "lab", Method::GET, "/users", None).await;
        assert_error(&a, StatusCode::CONFLICT, "users before ready");
        let a = acct_in(
            &h,
            "lab",
            Method::POST,
            "/sandboxes",
            Some(sandbox_body("b")),
        )
        .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.raw);

        // One status per second of the simulator clock, then ready.
        let mut seen = Vec::new();
        for _ in 0..5 {
            let a = acct(&h, Method::GET, "/workspaces/lab", None).await;
            assert_workspace(generation, &a.body, &["costCenter", "x-notes"]);
            seen.push(a.body["status"].as_str().unwrap().to_owned());
            h.advance(1.0).await;
        }
        assert_eq!(
            seen,
            [
                "created",
                "account_binded",
                "account_configured",
                "workspace_configured",
                "ready"
            ],
            "{what}"
        );

        // Ready: its own, empty state.
        let a = acct_in(&h, "lab", Method::GET, "/users", None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_eq!(a.body, json!([]));
        let a = acct_in(&h, "lab", Method::GET, "/sandboxes", None).await;
        assert_eq!(a.body, json!([]), "{what}");
        let a = acct_in(
            &h,
            "lab",
            Method::POST,
            "/users",
            Some(json!({ "email": "ann@example.com" })),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        let invitation = if generation == ApiGeneration::V2026 {
            &PENDING_INVITATION_2026
        } else {
            &PENDING_INVITATION_2025
        };
        assert_shape(invitation, &a.body);
        assert_eq!(a.body["workspace"], "lab");
        let a = acct_in(
            &h,
            "lab",
            Method::POST,
            "/sandboxes",
            Some(sandbox_body("box")),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        let sandbox = if generation == ApiGeneration::V2026 {
            &SANDBOX_2026
        } else {
            &SANDBOX_2025
        };
        assert_shape(sandbox, &a.body);
        assert_eq!(a.body["metadata"]["workspace"], "lab");
        let a = acct_in(
            &h,
            "lab",
            Method::POST,
            "/sandboxes/box/previews",
            Some(json!({ "metadata": { "name": "web" }, "spec": { "port": 3000 } })),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        // ?workspace= works as well as the header.
        let a = call(
            &h,
            Some(ACCOUNT),
            Method::GET,
            "/sandboxes/box/previews?workspace=lab",
            None,
            None,
        )
        .await;
        assert_eq!(a.body.as_array().map(Vec::len), Some(1), "{}", a.raw);
        // The seeded workspace did not see any of it.
        assert_eq!(h.get("/sandboxes").await.body, json!([]));
        assert_eq!(h.get("/users").await.body, json!([]));
        let a = acct(&h, Method::GET, "/workspaces", None).await;
        assert_eq!(names(&a.body), ["lab", "ws-a", "ws-b"]);

        // Update: send back what was read, changed, plus a new unknown field.
        h.advance(1.0).await;
        let mut body = acct(&h, Method::GET, "/workspaces/lab", None).await.body;
        body["displayName"] = json!("The Lab");
        body["labels"] = json!({ "team": "ml", "tier": "gold" });
        body["region"] = json!("us-was-1");
        body["status"] = json!("error"); // read-only: ignored
        body["id"] = json!("forged"); // read-only: ignored
        body["budget"] = json!(1000);
        let a = acct(&h, Method::PUT, "/workspaces/lab", Some(body)).await;
        assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.raw);
        let unknown = ["costCenter", "x-notes", "budget"];
        assert_workspace(generation, &a.body, &unknown);
        assert_eq!(a.body["displayName"], "The Lab");
        assert_eq!(a.body["labels"]["tier"], "gold");
        assert_eq!(a.body["region"], "us-was-1");
        assert_eq!(a.body["status"], "ready");
        assert_eq!(a.body["id"], id.as_str());
        assert_ne!(
            a.body["updatedAt"], created.body["updatedAt"],
            "updatedAt moves"
        );
        assert_eq!(a.body["createdAt"], created.body["createdAt"]);
        let read = acct(&h, Method::GET, "/workspaces/lab", None).await.body;
        assert_eq!(read, a.body, "the next read shows the update");
        assert_eq!(read["x-notes"], json!({ "a": [1, 2] }), "kept verbatim");
        assert_eq!(read["budget"], 1000);

        // Delete: 200 with the workspace, then 404, and its state is gone.
        let a = acct(&h, Method::DELETE, "/workspaces/lab", None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_eq!(a.body["id"], id.as_str());
        let a = acct(&h, Method::GET, "/workspaces/lab", None).await;
        assert_error(&a, StatusCode::NOT_FOUND, "GET after delete");
        let a = acct_in(&h, "lab", Method::GET, "/sandboxes/box", None).await;
        assert_error(
            &a,
            StatusCode::FORBIDDEN,
            "a workspace the account no longer has",
        );
        let st = h.sim_get("/state").await;
        assert!(st["workspaces"].get("lab").is_none(), "{st}");

        // The same name again: a new workspace, new id, nothing inherited.
        let a = acct(
            &h,
            Method::POST,
            "/workspaces",
            Some(json!({ "name": "lab" })),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_ne!(a.body["id"], id.as_str());
        assert!(a.body.get("costCenter").is_none());
        h.advance(4.0).await;
        let a = acct_in(&h, "lab", Method::GET, "/sandboxes", None).await;
        assert_eq!(a.body, json!([]), "{what}: {}", a.raw);
    }
}

/// A workspace key reads its own workspace and updates it; everything else about workspaces is 403.
#[tokio::test]
async fn workspace_key_is_limited_to_its_own_workspace() {
    for generation in BOTH {
        let h = Harness::start(cfg(generation)).await;
        acct(
            &h,
            Method::POST,
            "/workspaces",
            Some(json!({ "name": "other" })),
        )
        .await;

        let a = h.get("/workspaces").await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_eq!(names(&a.body), ["ws-a"], "only its own");
        assert_workspace(generation, &a.body[0], &[]);
        let a = h.get("/workspaces/ws-a").await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        let a = h
            .put("/workspaces/ws-a", json!({ "displayName": "A" }))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_eq!(a.body["displayName"], "A");
        assert_ne!(a.body["updatedBy"], "sim", "the key's principal updated it");

        for (m, path, body) in [
            (Method::GET, "/workspaces/ws-b", None),
            (Method::GET, "/workspaces/other", None),
            (Method::GET, "/workspaces/nowhere", None),
            (
                Method::PUT,
                "/workspaces/ws-b",
                Some(json!({ "displayName": "B" })),
            ),
            (Method::PUT, "/workspaces/other", Some(json!({}))),
            (
                Method::POST,
                "/workspaces",
                Some(json!({ "name": "mine-now" })),
            ),
            // 403 before the body is even looked at.
            (Method::POST, "/workspaces", Some(json!({ "name": 3 }))),
            (
                Method::PUT,
                "/workspaces/ws-b",
                Some(json!({ "labels": 3 })),
            ),
            (Method::DELETE, "/workspaces/ws-a", None),
            (Method::DELETE, "/workspaces/ws-b", None),
        ] {
            let a = h.call(m.clone(), path, body).await;
            assert_error(&a, StatusCode::FORBIDDEN, &format!("{m} {path}"));
        }
        // Nothing changed.
        let st = acct(&h, Method::GET, "/workspaces", None).await;
        assert_eq!(names(&st.body), ["other", "ws-a", "ws-b"]);
        assert_eq!(st.body[2]["displayName"], "ws-b");
        assert_eq!(
            acct(&h, Method::GET, "/workspaces/mine-now", None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // Availability is open to workspace keys.
        let a = h
            .post("/workspaces/availability", json!({ "name": "other" }))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_eq!(a.body, json!(false));
        // Its users and sandboxes routes in another workspace stay 403, as before.
        let a = call(
            &h,
            Some("key-a"),
            Method::GET,
            "/users",
            Some("other"),
            None,
        )
        .await;
        assert_error(&a, StatusCode::FORBIDDEN, "key-a in other");
    }
}

/// An account key must name the workspace it acts in, and can only act in the account's own; the keys of a
/// deleted workspace die with it.
#[tokio::test]
async fn account_key_workspace_selection_and_dead_keys() {
    let h = Harness::start(cfg(ApiGeneration::V2026)).await;
    let a = acct(&h, Method::GET, "/users", None).await;
    assert_error(&a, StatusCode::BAD_REQUEST, "no workspace named");
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("X-Blaxel-Workspace")
    );
    let a = acct_in(&h, "nowhere", Method::GET, "/users", None).await;
    assert_error(&a, StatusCode::FORBIDDEN, "unknown workspace");
    let a = acct_in(
        &h,
        "ws-b",
        Method::POST,
        "/sandboxes",
        Some(sandbox_body("sb")),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let a = call(&h, Some("key-b"), Method::GET, "/sandboxes/sb", None, None).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "the account key acted in ws-b: {}",
        a.raw
    );

    let a = acct(&h, Method::DELETE, "/workspaces/ws-b", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    for (m, path) in [(Method::GET, "/sandboxes"), (Method::GET, "/workspaces")] {
        let a = call(&h, Some("key-b"), m, path, None, None).await;
        assert_error(&a, StatusCode::UNAUTHORIZED, "key of a deleted workspace");
    }
    // Re-creating the name does not revive the old workspace's key.
    acct(
        &h,
        Method::POST,
        "/workspaces",
        Some(json!({ "name": "ws-b" })),
    )
    .await;
    h.advance(4.0).await;
    let a = call(&h, Some("key-b"), Method::GET, "/users", None, None).await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "key after re-creation");
    // ws-a and its key are untouched; a reset brings ws-b and its key back.
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    h.sim_post("/reset", json!({})).await;
    let a = call(&h, Some("key-b"), Method::GET, "/sandboxes", None, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(a.body, json!([]));
}

/// A name held by another account: never available, 409 on create, 403 on every other route, for both kinds
/// of key; set by the control route or by configuration, and released by the control route.
#[tokio::test]
async fn a_name_taken_elsewhere() {
    for generation in BOTH {
        let h = Harness::start(SimConfig {
            foreign_workspaces: vec!["from-config".into()],
            ..cfg(generation)
        })
        .await;
        let a = h.sim_post("/workspaces/rival/foreign", json!({})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_eq!(a.body["foreign"], json!(["from-config", "rival"]));
        for name in ["rival", "from-config"] {
            let a = acct(
                &h,
                Method::POST,
                "/workspaces/availability",
                Some(json!({ "name": name })),
            )
            .await;
            assert_eq!(a.body, json!(false), "{name}");
            let a = acct(
                &h,
                Method::POST,
                "/workspaces",
                Some(json!({ "name": name })),
            )
            .await;
            assert_error(&a, StatusCode::CONFLICT, name);
            for key in [ACCOUNT, "key-a"] {
                for (m, body) in [
                    (Method::GET, None),
                    (Method::PUT, Some(json!({ "displayName": "mine" }))),
                    (Method::DELETE, None),
                ] {
                    let a = call(
                        &h,
                        Some(key),
                        m.clone(),
                        &format!("/workspaces/{name}"),
                        None,
                        body,
                    )
                    .await;
                    assert_error(&a, StatusCode::FORBIDDEN, &format!("{key} {m} {name}"));
                }
            }
            let a = acct_in(&h, name, Method::GET, "/users", None).await;
            assert_error(&a, StatusCode::FORBIDDEN, "acting in a foreign workspace");
        }
        let names_listed = names(&acct(&h, Method::GET, "/workspaces", None).await.body)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        assert_eq!(names_listed, ["ws-a", "ws-b"], "not listed: not ours");

        // A name this account has cannot be another's; bad names are refused.
        let a = h.sim_post("/workspaces/ws-a/foreign", json!({})).await;
        assert_error(&a, StatusCode::CONFLICT, "our own name");
        let a = h.sim_post("/workspaces/Bad_Name/foreign", json!({})).await;
        assert_error(&a, StatusCode::BAD_REQUEST, "bad name");

        // Released: free to create.
        let a = h
            .send(h.http.delete(format!(
                "{}/_sim/workspaces/rival/foreign",
                h.sim.root_url()
            )))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_eq!(a.body["foreign"], json!(["from-config"]));
        let a = h
            .send(h.http.delete(format!(
                "{}/_sim/workspaces/rival/foreign",
                h.sim.root_url()
            )))
            .await;
        assert_error(&a, StatusCode::NOT_FOUND, "released twice");
        let a = acct(
            &h,
            Method::POST,
            "/workspaces",
            Some(json!({ "name": "rival" })),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);

        // State shows the foreign names; a reset restores the configured ones only.
        let st = h.sim_get("/state").await;
        assert_eq!(st["foreignWorkspaces"], json!(["from-config"]));
        h.sim_post("/workspaces/another/foreign", json!({})).await;
        h.sim_post("/reset", json!({})).await;
        let st = h.sim_get("/state").await;
        assert_eq!(st["foreignWorkspaces"], json!(["from-config"]));
        assert!(
            st["workspaces"].get("rival").is_none(),
            "created workspaces go with a reset"
        );
    }
}

/// The control route puts users straight into a workspace with a source, accepted or not; `GET /users`
/// shows the source in today's API (and invited users as `invitation`), and not in the 2025 one.
#[tokio::test]
async fn users_put_in_out_of_band_carry_their_source() {
    for generation in BOTH {
        let h = Harness::start(cfg(generation)).await;
        h.post("/users", json!({ "email": "invited@example.com" }))
            .await;
        for (email, source, accepted, role) in [
            ("scim@example.com", "directory_sync", true, "admin"),
            ("domain@example.com", "domain_capture", false, "member"),
            ("plain@example.com", "invitation", true, "member"),
        ] {
            let a = h
                .sim_post(
                    "/workspaces/ws-a/users",
                    json!({ "email": email, "role": role, "source": source, "accepted": accepted }),
                )
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        }
        // The older name of the route, with its defaults (member, invitation, accepted).
        let a = h
            .sim_post(
                "/workspaces/ws-a/members",
                json!({ "email": "old@example.com" }),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);

        let users = h.get("/users").await.body;
        let by = |email: &str| {
            users
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["email"] == email)
                .expect("the user is listed")
                .clone()
        };
        match generation {
            ApiGeneration::V2026 => {
                assert_array_of(&WORKSPACE_USER_2026, &users);
                assert_eq!(by("scim@example.com")["source"], "directory_sync");
                assert_eq!(by("domain@example.com")["source"], "domain_capture");
                assert_eq!(by("plain@example.com")["source"], "invitation");
                assert_eq!(by("invited@example.com")["source"], "invitation");
                assert_eq!(by("old@example.com")["source"], "invitation");
            }
            ApiGeneration::V2025 => {
                assert_array_of(&WORKSPACE_USER_2025, &users);
                assert!(
                    users
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|u| u.get("source").is_none())
                );
            }
        }
        let scim = by("scim@example.com");
        assert_eq!(scim["accepted"], true);
        assert_eq!(scim["role"], "admin");
        assert!(scim["sub"].is_string(), "a member has a sub");
        let domain = by("domain@example.com");
        assert_eq!(domain["accepted"], false);
        assert!(domain.get("sub").is_none(), "pending: no sub yet");
        assert_eq!(by("old@example.com")["accepted"], true);
        assert_eq!(by("old@example.com")["role"], "member");

        // A pending one the control route added is accepted like any invitation.
        let a = h
            .sim_post(
                "/invitations/domain@example.com/accept?workspace=ws-a",
                json!({}),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        let users = h.get("/users").await.body;
        let domain = users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == "domain@example.com")
            .unwrap();
        assert_eq!(domain["accepted"], true);
        if generation == ApiGeneration::V2026 {
            assert_eq!(
                domain["source"], "domain_capture",
                "acceptance keeps the source"
            );
        }

        for bad in [
            json!({ "email": "x@example.com", "source": "magic" }),
            json!({ "email": "x@example.com", "accepted": "yes" }),
            json!({ "email": "x@example.com", "role": "owner" }),
            json!({ "email": "not-an-email" }),
            json!({ "email": "x@example.com", "sauce": "typo" }),
            json!({}),
        ] {
            let a = h.sim_post("/workspaces/ws-a/users", bad.clone()).await;
            assert_error(&a, StatusCode::BAD_REQUEST, &format!("{bad}"));
        }
        let a = h
            .sim_post(
                "/workspaces/nowhere/users",
                json!({ "email": "x@example.com" }),
            )
            .await;
        assert_error(&a, StatusCode::NOT_FOUND, "unknown workspace");
    }
}

/// The workspace routes take part in fault injection and are counted under their route templates.
#[tokio::test]
async fn faults_and_stats_cover_the_workspace_routes() {
    let h = Harness::start(cfg(ApiGeneration::V2026)).await;
    let a = h
        .sim_post(
            "/faults/script",
            json!({ "route": "POST /v0/workspaces", "status": 503, "times": 1 }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let a = acct(
        &h,
        Method::POST,
        "/workspaces",
        Some(json!({ "name": "flaky" })),
    )
    .await;
    assert_error(&a, StatusCode::SERVICE_UNAVAILABLE, "scripted 503");
    assert_eq!(
        acct(&h, Method::GET, "/workspaces/flaky", None)
            .await
            .status,
        StatusCode::NOT_FOUND,
        "an injected error changes nothing"
    );

    // A lost answer: the workspace is created, the client hears nothing; a retry sees 409.
    h.sim_post(
        "/faults/script",
        json!({ "route": "POST /v0/workspaces", "loseAnswer": true }),
    )
    .await;
    let sent = h
        .http
        .post(format!("{}/workspaces", h.sim.base_url()))
        .bearer_auth(ACCOUNT)
        .json(&json!({ "name": "flaky" }))
        .send()
        .await;
    assert!(sent.is_err(), "no answer may arrive");
    assert_eq!(
        acct(&h, Method::GET, "/workspaces/flaky", None)
            .await
            .status,
        StatusCode::OK
    );
    let a = acct(
        &h,
        Method::POST,
        "/workspaces",
        Some(json!({ "name": "flaky" })),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);

    // A dropped request and a 429 on the other routes.
    h.sim_post(
        "/faults/script",
        json!({ "route": "DELETE /v0/workspaces/{name}", "drop": true }),
    )
    .await;
    let sent = h
        .http
        .delete(format!("{}/workspaces/flaky", h.sim.base_url()))
        .bearer_auth(ACCOUNT)
        .send()
        .await;
    assert!(sent.is_err(), "dropped");
    assert_eq!(
        acct(&h, Method::GET, "/workspaces/flaky", None)
            .await
            .status,
        StatusCode::OK,
        "a dropped delete did not happen"
    );
    h.sim_post(
        "/faults/script",
        json!({ "route": "POST /v0/workspaces/availability", "status": 429, "retryAfterMs": 1500 }),
    )
    .await;
    let a = acct(
        &h,
        Method::POST,
        "/workspaces/availability",
        Some(json!({ "name": "q" })),
    )
    .await;
    assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "scripted 429");
    assert_eq!(a.headers["retry-after"], "2");
    assert_eq!(a.headers["retry-after-ms"], "1500");

    acct(&h, Method::GET, "/workspaces", None).await;
    acct(&h, Method::PUT, "/workspaces/flaky", Some(json!({}))).await;
    acct(&h, Method::DELETE, "/workspaces/flaky", None).await;

    let stats = h.sim_get("/stats").await;
    let route = |r: &str| stats["byRoute"][r]["byStatus"].clone();
    assert_eq!(
        route("POST /v0/workspaces"),
        json!({ "503": 1, "lost": 1, "409": 1 })
    );
    assert_eq!(
        route("GET /v0/workspaces/{name}"),
        json!({ "404": 1, "200": 2 })
    );
    assert_eq!(
        route("DELETE /v0/workspaces/{name}"),
        json!({ "dropped": 1, "200": 1 })
    );
    assert_eq!(
        route("POST /v0/workspaces/availability"),
        json!({ "429": 1 })
    );
    assert_eq!(route("GET /v0/workspaces"), json!({ "200": 1 }));
    assert_eq!(route("PUT /v0/workspaces/{name}"), json!({ "200": 1 }));
    assert_eq!(stats["faults"]["injectedErrors"], 1);
    assert_eq!(stats["faults"]["rateLimited"], 1);
    assert_eq!(stats["faults"]["dropped"], 1);
    assert_eq!(stats["faults"]["lostAnswers"], 1);
}

/// `/_sim/state` shows each workspace's record next to its contents, and the settings; a workspace failed
/// through the control route is `error` with a reason, and its contents cannot be reached.
#[tokio::test]
async fn state_shows_workspaces_and_failures() {
    let h = Harness::start(cfg(ApiGeneration::V2025)).await;
    acct(
        &h,
        Method::POST,
        "/workspaces",
        Some(json!({ "name": "young" })),
    )
    .await;
    h.advance(1.0).await;
    let st = h.sim_get("/state").await;
    assert_eq!(
        st["workspaces"]["young"]["workspace"]["status"],
        "account_binded"
    );
    assert_eq!(st["workspaces"]["young"]["users"], json!([]));
    assert_eq!(st["workspaces"]["ws-a"]["workspace"]["status"], "ready");
    assert_eq!(st["config"]["workspaceReadyTime"], "4s");
    assert_eq!(st["config"]["accountKeys"], 1);
    assert!(!st.to_string().contains(ACCOUNT), "keys are never shown");
    assert_workspace(
        ApiGeneration::V2025,
        &st["workspaces"]["young"]["workspace"],
        &[],
    );

    let a = h
        .sim_post(
            "/workspaces/ws-a/fail",
            json!({ "message": "billing suspended" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(a.body["status"], "error");
    assert_eq!(a.body["statusReason"], "billing suspended");
    let a = h.get("/workspaces/ws-a").await;
    assert_eq!(a.body["status"], "error");
    assert_workspace(ApiGeneration::V2025, &a.body, &[]);
    let a = h.get("/sandboxes").await;
    assert_error(&a, StatusCode::CONFLICT, "sandboxes of a failed workspace");
    let a = h
        .send(
            h.http
                .post(format!("{}/_sim/workspaces/nowhere/fail", h.sim.root_url())),
        )
        .await;
    assert_error(&a, StatusCode::NOT_FOUND, "fail unknown");
}

// ---- robustness ----

/// A random JSON value (seeded), to put where a valid one was.
fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e6),
        4 => json!(""),
        5 => json!("\u{0}é💥 \"q\" \\ ../.."),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..4))
                .map(|i| (format!("k{i}"), random_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

/// Mangled bodies on the workspace routes and the users control route: garbage and non-objects are 400,
/// a valid body with one field replaced is accepted or refused with a 4xx, never a 5xx; the server keeps
/// answering.
#[tokio::test]
async fn mangled_workspace_bodies_never_cause_server_errors() {
    let h = Harness::start(cfg(ApiGeneration::V2026)).await;
    let api = |path: &str| format!("{}{path}", h.sim.base_url());
    let routes: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            api("/workspaces"),
            json!({ "name": "fz", "displayName": "F", "labels": { "a": "b" }, "region": "r",
                    "runtime": { "generation": "mk3", "sandbox": { "disableProcessLogging": true } },
                    "groupMappings": [{ "groupName": "g", "role": "member" }],
                    "hipaaInfo": { "unsafe": { "enabled": false } } }),
        ),
        (
            Method::PUT,
            api("/workspaces/ws-a"),
            json!({ "displayName": "A", "labels": { "a": "b" }, "runtime": { "generation": "x" },
                    "hipaaInfo": { "unsafe": { "enabled": true } } }),
        ),
        (
            Method::POST,
            api("/workspaces/availability?withReason=true"),
            json!({ "name": "fz-free" }),
        ),
        (
            Method::POST,
            format!("{}/_sim/workspaces/ws-a/users", h.sim.root_url()),
            json!({ "email": "f@example.com", "role": "admin", "source": "directory_sync", "accepted": false }),
        ),
    ];
    let mut rng = StdRng::seed_from_u64(0x5eed_0ff1);
    for round in 0..40 {
        for (method, url, valid) in &routes {
            let text = valid.to_string();
            let cut = rng.random_range(0..text.len());
            let garbage: Vec<u8> = (0..rng.random_range(1..48)).map(|_| rng.random()).collect();
            let not_objects = [json!([]), json!(1), json!("s"), json!(null), json!(true)];
            let bodies = [
                text.as_bytes()[..cut].to_vec(),
                garbage,
                not_objects[round % not_objects.len()]
                    .to_string()
                    .into_bytes(),
            ];
            for body in bodies {
                let a = h
                    .send(
                        h.http
                            .request(method.clone(), url)
                            .bearer_auth(ACCOUNT)
                            .header("content-type", "application/json")
                            .body(body),
                    )
                    .await;
                assert_error(&a, StatusCode::BAD_REQUEST, &format!("{method} {url}"));
            }
            // One top-level or nested value replaced by a random one.
            let mut mutated = valid.clone();
            let keys: Vec<String> = valid.as_object().unwrap().keys().cloned().collect();
            let key = &keys[rng.random_range(0..keys.len())];
            let new = random_value(&mut rng, 0);
            match (&mut mutated[key.as_str()], rng.random::<bool>()) {
                (Value::Object(inner), true) if !inner.is_empty() => {
                    let k = inner.keys().next().unwrap().clone();
                    inner.insert(k, new);
                }
                (slot, _) => *slot = new,
            }
            let a = h
                .send(
                    h.http
                        .request(method.clone(), url)
                        .bearer_auth(ACCOUNT)
                        .json(&mutated),
                )
                .await;
            assert!(
                a.status == StatusCode::OK || a.status.is_client_error(),
                "{method} {url} with {mutated}: {} {}",
                a.status,
                a.raw
            );
            if a.status.is_client_error() {
                assert_shape(&ERROR, &a.body);
            }
            // Start over for the next round: the create must be able to succeed again.
            acct(&h, Method::DELETE, "/workspaces/fz", None).await;
        }
    }
    let stats = h.sim_get("/stats").await;
    for (status, _) in stats["byStatus"].as_object().unwrap() {
        assert!(!status.starts_with('5'), "a 5xx slipped through: {stats}");
    }
    // ws-b was never written to, so its record still matches the definition exactly.
    let a = acct(&h, Method::GET, "/workspaces/ws-b", None).await;
    assert_eq!(a.status, StatusCode::OK, "the server still answers");
    assert_workspace(ApiGeneration::V2026, &a.body, &[]);
}
