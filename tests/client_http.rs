//! The HTTP client over real HTTP, against tiny axum stubs: retries and their waits, POST never retried,
//! the rate limiter's bound, headers, secrecy of the key, pagination, percent-encoding, the power-control
//! fallback between the 2025 and today's API, and how many idle connections stay after a burst.

// Tests fail loudly on broken fixtures; `unwrap`/`expect` are the clearest way to say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, body::Bytes};
use blaxel_operator::blaxel::model::{Sandbox, SandboxMetadata};
use blaxel_operator::blaxel::{
    ApiError, ApiKey, Attempt, AttemptObserver, ClientConfig, HttpClient, PowerControl,
    PreviewsApi, RetryPolicy, SandboxesApi, Scope, UsersApi,
};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const KEY: &str = "bl_test_key_5f3a9c1e";

fn scope() -> Scope {
    Scope {
        workspace: "team-a".into(),
        api_key: ApiKey::new(KEY),
    }
}

/// Fast retries and a limiter that never gets in the way, unless a test says otherwise.
fn config(base_url: &str) -> ClientConfig {
    ClientConfig {
        base_url: base_url.to_owned(),
        rate_limit: 1000.0,
        burst: 1000,
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(10),
            cap: Duration::from_secs(5),
        },
        ..ClientConfig::default()
    }
}

fn client(base_url: &str) -> HttpClient {
    HttpClient::new(config(base_url)).unwrap()
}

/// One request as the stub saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
}

/// Every request a stub received, in order.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.all()
            .iter()
            .filter(|s| s.method == method && s.path.ends_with(path_suffix))
            .count()
    }
}

async fn record(State(log): State<Log>, request: Request, next: Next) -> Response {
    log.0.lock().unwrap().push(Seen {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().unwrap_or_default().to_owned(),
        headers: request.headers().clone(),
    });
    next.run(request).await
}

/// Serves `router` (routes under `/v0`) on a free local port; returns the base URL and the request log.
async fn serve(router: Router) -> (String, Log) {
    let log = Log::default();
    let app = Router::new()
        .nest("/v0", router)
        .layer(middleware::from_fn_with_state(log.clone(), record));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v0"), log)
}

/// A server that accepts connections, reads a little, and hangs up without answering.
async fn hang_up_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let _ = socket.read(&mut buf).await;
        }
    });
    (format!("http://{addr}/v0"), accepted)
}

fn error_body(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": status.canonical_reason(), "code": status.as_u16(), "message": message})),
    )
        .into_response()
}

fn sandbox(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"runtime": {"image": "img"}}, "status": "DEPLOYED"})
}

/// Tracing output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The capture installed as this binary's global subscriber (at TRACE, every crate). A thread-local
/// subscriber misses events whose callsite interest another test thread cached first; a global one sees
/// every line any test of this binary logs, which only widens what the secrecy test checks.
fn global_capture() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("the only global subscriber");
            captured
        })
        .clone()
}

/// Every request carries the bearer key, the workspace and the API version headers.
#[tokio::test]
async fn requests_carry_auth_workspace_and_version_headers() {
    let (base, log) = serve(Router::new().route("/users", get(|| async { Json(json!([])) }))).await;
    client(&base).list_users(&scope()).await.unwrap();
    let seen = log.all();
    assert_eq!(seen.len(), 1);
    let headers = &seen[0].headers;
    assert_eq!(headers["authorization"], format!("Bearer {KEY}").as_str());
    assert_eq!(headers["x-blaxel-workspace"], "team-a");
    assert_eq!(headers["blaxel-version"], "2026-04-28");
}

/// The API key and preview tokens never appear in errors (Display/Debug) or in any tracing output.
#[tokio::test]
async fn key_and_tokens_never_reach_errors_or_logs() {
    let captured = global_capture();

    // A hostile server that echoes the credential back in every error body.
    let echo = |headers: HeaderMap| async move {
        let auth = headers["authorization"].to_str().unwrap().to_owned();
        error_body(StatusCode::UNAUTHORIZED, &format!("bad credential {auth}"))
    };
    let router = Router::new()
        .route("/users", get(echo).post(echo))
        .route("/sandboxes/{name}", get(|headers: HeaderMap| async move {
            let auth = headers["authorization"].to_str().unwrap().to_owned();
            (StatusCode::INTERNAL_SERVER_ERROR, auth)
        }))
        .route(
            "/sandboxes/{name}/previews/{preview}/tokens",
            get(|| async {
                Json(json!([{"metadata": {"name": "t"}, "spec": {"token": "tok_preview_secret_77"}}]))
            }),
        );
    let (base, _log) = serve(router).await;
    let client = client(&base);
    let scope = scope();

    let mut errors = vec![
        client.list_users(&scope).await.unwrap_err(),
        client.invite_user(&scope, "a@b.c").await.unwrap_err(),
        client.get_sandbox(&scope, "s").await.unwrap_err(),
    ];
    let (dead, _) = hang_up_server().await;
    errors.push(
        HttpClient::new(config(&dead))
            .unwrap()
            .list_users(&scope)
            .await
            .unwrap_err(),
    );
    let tokens = client.list_preview_tokens(&scope, "s", "p").await.unwrap();
    assert_eq!(tokens.len(), 1);

    assert_eq!(errors[0].category(), "Unauthorized");
    for error in &errors {
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains(KEY), "key leaked in {shown}");
        }
    }
    let logs = captured.text();
    if std::env::var_os("SHOW_LOGS").is_some() {
        eprintln!("{logs}");
    }
    assert!(
        logs.contains("Blaxel request"),
        "tracing was not captured: {logs}"
    );
    assert!(!logs.contains(KEY), "key leaked in logs");
    assert!(
        !logs.contains("tok_preview_secret_77"),
        "token leaked in logs"
    );
    assert!(!format!("{tokens:?}").contains("tok_preview_secret_77"));
}

/// A key echoed right at the message length cut is scrubbed before the cut: no prefix of it survives.
#[tokio::test]
async fn key_at_the_length_cut_leaves_no_prefix() {
    // 295 characters of message, then the credential: a cut at 300 before scrubbing would keep 5 of its.
    let echo = |status: StatusCode| {
        move |headers: HeaderMap| async move {
            let auth = headers["authorization"].to_str().unwrap();
            let key = auth.trim_start_matches("Bearer ");
            error_body(status, &format!("{}{key} was refused", "x".repeat(295)))
        }
    };
    let router = Router::new()
        .route("/users", get(echo(StatusCode::UNAUTHORIZED)))
        .route("/users/{id}", put(echo(StatusCode::BAD_REQUEST)))
        .route(
            "/sandboxes/{name}",
            get(echo(StatusCode::NOT_FOUND)).delete(echo(StatusCode::CONFLICT)),
        );
    let (base, _log) = serve(router).await;
    let client = client(&base);
    let scope = scope();
    let errors = [
        client.list_users(&scope).await.unwrap_err(),
        client
            .set_user_role(&scope, "a@b.c", "admin")
            .await
            .unwrap_err(),
        client.get_sandbox(&scope, "s").await.unwrap_err(),
        client.delete_sandbox(&scope, "s").await.unwrap_err(),
    ];
    for error in errors {
        let shown = error.to_string();
        assert!(shown.contains("xxxxx"), "the message is kept: {shown}");
        for len in 5..=KEY.len() {
            assert!(
                !shown.contains(&KEY[..len]),
                "{len} characters of the key leaked: {shown}"
            );
        }
    }
}

/// A 429 is retried after at least its Retry-After, and the request then succeeds.
#[tokio::test]
async fn rate_limited_get_waits_retry_after_then_succeeds() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let router = Router::new().route(
        "/users",
        get(move || {
            let counter = Arc::clone(&counter);
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1")],
                        "slow down",
                    )
                        .into_response()
                } else {
                    Json(json!([{"email": "a@b.c", "role": "admin"}])).into_response()
                }
            }
        }),
    );
    let (base, _log) = serve(router).await;
    let started = Instant::now();
    let users = client(&base).list_users(&scope()).await.unwrap();
    assert_eq!(users.items.len(), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A Retry-After beyond the retry cap is not waited out in-process: one attempt, the wait handed back.
#[tokio::test]
async fn long_retry_after_is_returned_to_the_caller() {
    let router = Router::new().route(
        "/users",
        get(|| async {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "120")], "").into_response()
        }),
    );
    let (base, log) = serve(router).await;
    let error = client(&base).list_users(&scope()).await.unwrap_err();
    assert_eq!(
        error,
        ApiError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert_eq!(log.count("GET", "/users"), 1);
}

/// 5xx answers to idempotent requests are retried a bounded number of times, then reported Unavailable.
#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let fail = || async { error_body(StatusCode::INTERNAL_SERVER_ERROR, "boom") };
    let router = Router::new()
        .route("/users", get(fail))
        .route("/users/{id}", put(fail).delete(fail));
    let (base, log) = serve(router).await;
    let client = client(&base);
    let error = client.list_users(&scope()).await.unwrap_err();
    assert_eq!(error.category(), "Unavailable");
    assert!(error.to_string().contains("boom"), "{error}");
    client
        .set_user_role(&scope(), "a@b.c", "admin")
        .await
        .unwrap_err();
    client.remove_user(&scope(), "a@b.c").await.unwrap_err();
    assert_eq!(log.count("GET", "/users"), 3);
    assert_eq!(log.count("PUT", "/users/a%40b.c"), 3);
    assert_eq!(log.count("DELETE", "/users/a%40b.c"), 3);
}

/// The attempt observer sees every HTTP attempt with bounded labels: route template, status, outcome.
#[tokio::test]
async fn attempt_observer_sees_every_attempt() {
    let router = Router::new()
        .route(
            "/users/{id}",
            put(|| async { error_body(StatusCode::BAD_GATEWAY, "gw") }),
        )
        .route("/users", get(|| async { Json(json!([])) }));
    let (base, _log) = serve(router).await;
    let client = client(&base);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let observer: AttemptObserver = Arc::new(move |a: &Attempt| {
        sink.lock()
            .unwrap()
            .push((a.method, a.route, a.status, a.outcome, a.attempt));
    });
    assert!(client.set_attempt_observer(observer.clone()));
    assert!(
        !client.set_attempt_observer(observer),
        "only the first observer is kept"
    );

    client.list_users(&scope()).await.unwrap();
    client
        .set_user_role(&scope(), "a@b.c", "admin")
        .await
        .unwrap_err();
    let (dead, _) = hang_up_server().await;
    let other = HttpClient::new(config(&dead)).unwrap();
    let unanswered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&unanswered);
    other.set_attempt_observer(Arc::new(move |a: &Attempt| {
        if (a.status, a.outcome) == (None, "Unavailable") {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }));
    other.invite_user(&scope(), "a@b.c").await.unwrap_err();
    assert_eq!(
        unanswered.load(Ordering::SeqCst),
        1,
        "a dropped POST: one attempt, no status"
    );

    let route = "/users/{subOrEmail}";
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("GET", "/users", Some(200), "Ok", 1),
            ("PUT", route, Some(502), "Unavailable", 1),
            ("PUT", route, Some(502), "Unavailable", 2),
            ("PUT", route, Some(502), "Unavailable", 3),
        ]
    );
}

/// POSTs (invite, create) are never retried, whatever the failure: the server sees exactly one.
#[tokio::test]
async fn posts_are_never_retried() {
    let router = Router::new()
        .route(
            "/users",
            post(|| async { error_body(StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/sandboxes",
            post(|| async {
                (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response()
            }),
        )
        .route(
            "/sandboxes/{name}/previews/{preview}/tokens",
            post(|| async { error_body(StatusCode::BAD_GATEWAY, "gateway") }),
        );
    let (base, log) = serve(router).await;
    let client = client(&base);
    let scope = scope();
    let sandbox: Sandbox = serde_json::from_value(sandbox("s1")).unwrap();

    assert_eq!(
        client
            .invite_user(&scope, "a@b.c")
            .await
            .unwrap_err()
            .category(),
        "Unavailable"
    );
    assert_eq!(
        client
            .create_sandbox(&scope, &sandbox)
            .await
            .unwrap_err()
            .category(),
        "RateLimited"
    );
    assert_eq!(
        client
            .create_preview_token(&scope, "s1", "p", "t-", "2030-01-01T00:00:00Z")
            .await
            .unwrap_err()
            .category(),
        "Unavailable"
    );
    assert_eq!(log.count("POST", "/users"), 1);
    assert_eq!(log.count("POST", "/sandboxes"), 1);
    assert_eq!(log.count("POST", "/tokens"), 1);
}

/// A dropped connection is retried for GET but a POST sees exactly one connection.
#[tokio::test]
async fn dropped_connections_retry_gets_not_posts() {
    let (base, accepted) = hang_up_server().await;
    let client = client(&base);
    let error = client.list_sandboxes(&scope()).await.unwrap_err();
    assert_eq!(error.category(), "Unavailable");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);

    let (base, accepted) = hang_up_server().await;
    let error = HttpClient::new(config(&base))
        .unwrap()
        .invite_user(&scope(), "a@b.c")
        .await
        .unwrap_err();
    assert_eq!(error.category(), "Unavailable");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// N requests with rate r and burst b take at least (N-b)/r, even across clones of the client.
#[tokio::test]
async fn rate_limiter_bounds_throughput() {
    let (base, log) = serve(Router::new().route("/users", get(|| async { Json(json!([])) }))).await;
    let client = HttpClient::new(ClientConfig {
        rate_limit: 20.0,
        burst: 2,
        ..config(&base)
    })
    .unwrap();
    let started = Instant::now();
    let calls = (0..12).map(|_| {
        let client = client.clone();
        async move { client.list_users(&scope()).await.unwrap() }
    });
    futures::future::join_all(calls).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert_eq!(log.count("GET", "/users"), 12);
    let stats = client.rate_limit_stats();
    // 12 reservations at once, 2 from the burst: 10 wait, together (0.05 + ... + 0.5 s). A stalled test
    // thread can only lower that, so the bounds are loose; the elapsed bound above is the exact one.
    assert!((1..=10).contains(&stats.waits), "{stats:?}");
    assert!(stats.total_wait >= Duration::from_millis(250), "{stats:?}");
}

/// Today's paginated sandbox list is followed across cursors, asking 200 per page.
#[tokio::test]
async fn paginated_sandbox_list_is_followed_to_the_end() {
    let router = Router::new().route(
        "/sandboxes",
        get(|axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>| async move {
            let (names, next): (&[&str], Option<&str>) = match query.get("cursor").map(String::as_str) {
                None => (&["a", "b"], Some("c1")),
                Some("c1") => (&["c"], Some("c2")),
                Some("c2") => (&["d"], None),
                Some(_) => return error_body(StatusCode::BAD_REQUEST, "bad cursor"),
            };
            let data: Vec<Value> = names.iter().map(|n| sandbox(n)).collect();
            Json(json!({
                "data": data,
                "meta": {"hasMore": next.is_some(), "nextCursor": next.unwrap_or_default(), "total": 4}
            }))
            .into_response()
        }),
    );
    let (base, log) = serve(router).await;
    let sandboxes = client(&base).list_sandboxes(&scope()).await.unwrap();
    let names: Vec<_> = sandboxes
        .items
        .iter()
        .map(|s| s.metadata.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    let queries: Vec<_> = log.all().into_iter().map(|s| s.query).collect();
    assert_eq!(
        queries,
        ["limit=200", "limit=200&cursor=c1", "limit=200&cursor=c2"]
    );
}

/// The 2025 bare-array sandbox list is accepted as one complete page.
#[tokio::test]
async fn bare_array_sandbox_list_is_accepted() {
    let router = Router::new().route(
        "/sandboxes",
        get(|| async { Json(json!([sandbox("a"), sandbox("b")])) }),
    );
    let (base, log) = serve(router).await;
    let sandboxes = client(&base).list_sandboxes(&scope()).await.unwrap();
    assert_eq!(sandboxes.items.len(), 2);
    assert_eq!(log.all().len(), 1);
}

/// A server announcing more pages without a usable cursor yields an error, never a silently partial list.
#[tokio::test]
async fn broken_pagination_is_an_error_not_a_partial_list() {
    let router = Router::new().route(
        "/sandboxes",
        get(|| async {
            Json(json!({"data": [sandbox("a")], "meta": {"hasMore": true, "nextCursor": "same"}}))
        }),
    );
    let (base, log) = serve(router).await;
    let error = client(&base).list_sandboxes(&scope()).await.unwrap_err();
    assert_eq!(error.category(), "Decode");
    assert_eq!(log.all().len(), 2);
}

/// Malformed records are skipped and reported by identity; every other record of the list is kept, and
/// neither the errors nor the logs quote the records' content.
#[tokio::test]
async fn malformed_records_do_not_hide_the_rest_of_a_list() {
    let captured = global_capture();
    let router = Router::new()
        .route(
            "/users",
            get(|| async {
                Json(json!([
                    {"email": "ok@example.com", "role": "admin"},
                    {"email": null, "role": "member", "note": "secret-note-1"},
                    {"email": "odd@example.com", "role": 5, "note": "secret-note-2"},
                    {"role": "member"},
                    {"email": "", "role": "member"},
                    {"email": "last@example.com"}
                ]))
            }),
        )
        .route(
            "/sandboxes",
            get(|axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                let huge = json!({"metadata": {"name": "huge-box"}, "spec": {"runtime": {"memory": 9_223_372_036_854_775_808_u64, "image": "secret-image-3"}}});
                match query.get("cursor").map(String::as_str) {
                    None => Json(json!({"data": [sandbox("a"), huge], "meta": {"hasMore": true, "nextCursor": "c1"}})),
                    _ => Json(json!({"data": [{"metadata": {"name": 7}}, sandbox("b")], "meta": {"hasMore": false}})),
                }
            }),
        );
    let (base, _log) = serve(router).await;
    let client = client(&base);

    let users = client.list_users(&scope()).await.unwrap();
    let emails: Vec<_> = users.items.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["ok@example.com", "last@example.com"]);
    let identities: Vec<_> = users
        .unreadable
        .iter()
        .map(|u| u.identity.as_deref())
        .collect();
    assert_eq!(identities, [None, Some("odd@example.com"), None, None]);

    let sandboxes = client.list_sandboxes(&scope()).await.unwrap();
    let names: Vec<_> = sandboxes
        .items
        .iter()
        .map(|s| s.metadata.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let identities: Vec<_> = sandboxes
        .unreadable
        .iter()
        .map(|u| u.identity.as_deref())
        .collect();
    assert_eq!(identities, [Some("huge-box"), None]);

    let errors: Vec<_> = users
        .unreadable
        .iter()
        .chain(&sandboxes.unreadable)
        .map(|u| u.error.as_str())
        .collect();
    for error in &errors {
        assert!(error.contains("record "), "{error}");
        for content in ["secret-note", "secret-image", "9223372036854775808"] {
            assert!(!error.contains(content), "{error}");
        }
    }
    let logs = captured.text();
    let skipped: Vec<_> = logs
        .lines()
        .filter(|l| l.contains("skipping a listed record"))
        .collect();
    assert_eq!(
        skipped.iter().filter(|l| l.contains("huge-box")).count(),
        1,
        "{logs}"
    );
    assert_eq!(
        skipped
            .iter()
            .filter(|l| l.contains("odd@example.com"))
            .count(),
        1,
        "{logs}"
    );
    for content in ["secret-note", "secret-image", "9223372036854775808"] {
        assert!(!logs.contains(content), "record content logged: {logs}");
    }
}

/// An answer that is neither a list nor a `{data, meta}` page fails the whole list (never an empty list).
#[tokio::test]
async fn a_list_answer_of_another_shape_is_an_error() {
    let router = Router::new()
        .route(
            "/users",
            get(|| async { Json(json!({"error": "maintenance"})) }),
        )
        .route(
            "/sandboxes",
            get(|| async { Json(json!({"data": {"a": 1}})) }),
        );
    let (base, _log) = serve(router).await;
    let client = client(&base);
    assert_eq!(
        client.list_users(&scope()).await.unwrap_err().category(),
        "Decode"
    );
    assert_eq!(
        client
            .list_sandboxes(&scope())
            .await
            .unwrap_err()
            .category(),
        "Decode"
    );
}

/// Answers longer than the configured cap are refused (Decode, not retried) without reading them whole,
/// whether their length is announced or they stream without end; an oversized error body keeps its status.
#[tokio::test]
async fn answers_over_the_size_cap_are_refused_once() {
    let big: Vec<Value> = (0..200)
        .map(|i| json!({"email": format!("user{i}@example.com")}))
        .collect();
    let router = Router::new()
        .route("/users", get(move || async move { Json(json!(big)) }))
        .route(
            "/sandboxes",
            get(|| async {
                // Chunked, never ending: only a reader that stops at the cap ever returns.
                let chunk = Bytes::from_static(b"[{\"metadata\":{\"name\":\"a\"}},");
                let endless =
                    futures::stream::repeat_with(move || Ok::<_, io::Error>(chunk.clone()));
                axum::body::Body::from_stream(endless)
            }),
        )
        .route(
            "/sandboxes/{name}",
            get(|| async { error_body(StatusCode::NOT_FOUND, &"n".repeat(4096)) }),
        )
        .route(
            "/sandboxes/{name}/previews",
            get(|| async { Json(json!([])) }),
        );
    let (base, log) = serve(router).await;
    let client = HttpClient::new(ClientConfig {
        max_body_bytes: 2048,
        ..config(&base)
    })
    .unwrap();
    let scope = scope();

    let error = client.list_users(&scope).await.unwrap_err();
    assert_eq!(error.category(), "Decode", "{error}");
    assert!(
        error.to_string().contains("larger than 2048 bytes"),
        "{error}"
    );
    let error = tokio::time::timeout(Duration::from_secs(10), client.list_sandboxes(&scope))
        .await
        .expect("the endless answer is cut at the cap")
        .unwrap_err();
    assert_eq!(error.category(), "Decode", "{error}");
    assert_eq!(
        client.get_sandbox(&scope, "x").await.unwrap_err(),
        ApiError::NotFound {
            message: "404 Not Found".into()
        }
    );
    assert!(
        client.list_previews(&scope, "x").await.unwrap().is_empty(),
        "small answers pass"
    );
    assert_eq!(log.count("GET", "/users"), 1, "not retried");
    assert_eq!(log.count("GET", "/sandboxes"), 1, "not retried");
}

/// A server that never stops announcing more pages (always a fresh cursor) fails the walk at its time bound,
/// after a bounded number of requests, instead of being walked for thousands of pages.
#[tokio::test]
async fn endless_pagination_fails_at_the_time_bound() {
    let pages = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pages);
    let router = Router::new().route(
        "/sandboxes",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                Json(json!({"data": [sandbox(&format!("s{n}"))], "meta": {"hasMore": true, "nextCursor": format!("c{n}")}}))
            }
        }),
    );
    let (base, _log) = serve(router).await;
    let (bound, rate, burst) = (Duration::from_millis(300), 100.0, 5);
    let client = HttpClient::new(ClientConfig {
        rate_limit: rate,
        burst,
        list_deadline: bound,
        ..config(&base)
    })
    .unwrap();
    let started = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(5), client.list_sandboxes(&scope()))
        .await
        .expect("the walk ends at its time bound")
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.category(), "Unavailable", "{error}");
    assert!(
        error
            .to_string()
            .contains("not read to the end within 300ms"),
        "{error}"
    );
    assert!(
        elapsed >= bound && elapsed < bound + Duration::from_secs(2),
        "{elapsed:?}"
    );
    // The rate limiter allows `burst` at once, then `rate` per second: that bounds the requests sent.
    let most = f64::from(burst) + rate * elapsed.as_secs_f64() + 1.0;
    let sent = u32::try_from(pages.load(Ordering::SeqCst)).unwrap();
    assert!(
        sent >= 2 && f64::from(sent) <= most,
        "{sent} requests, at most {most}"
    );
}

/// An HTTP/1.1 server whose list pages always announce more, and which leaves the `stall_at`-th request
/// unanswered. Events: `"stalled"` when that request arrives, `"closed"` when the client then closes its
/// connection. Returns the base URL, the request count and the events.
async fn stalling_page_server(
    stall_at: usize,
) -> (
    String,
    Arc<AtomicUsize>,
    tokio::sync::mpsc::UnboundedReceiver<&'static str>,
) {
    use tokio::io::AsyncWriteExt;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let (events, received) = tokio::sync::mpsc::unbounded_channel();
    let counter = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (counter, events) = (Arc::clone(&counter), events.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                        if n == stall_at {
                            events.send("stalled").unwrap();
                            // Never answer; only the client closing the connection ends this.
                            while !matches!(socket.read(&mut buf).await, Ok(0) | Err(_)) {}
                            events.send("closed").unwrap();
                            return;
                        }
                        let body = format!(
                            r#"{{"data":[],"meta":{{"hasMore":true,"nextCursor":"c{n}"}}}}"#
                        );
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}/v0"), requests, received)
}

/// Dropping a list walk's future stops the walk at once, its in-flight request included: nothing of it
/// runs on detached.
#[tokio::test]
async fn dropping_a_list_walk_cancels_it() {
    let (base, requests, mut events) = stalling_page_server(3).await;
    let (client, scope) = (client(&base), scope());
    tokio::select! {
        result = client.list_sandboxes(&scope) => panic!("the endless walk ended: {result:?}"),
        event = events.recv() => assert_eq!(event, Some("stalled")),
    }
    // The walk's future is gone: its request must be cancelled, which closes the connection.
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("the in-flight request of the dropped walk was cancelled");
    assert_eq!(event, Some("closed"));
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

/// E-mails travel percent-encoded as one path segment and decode back exactly on the server.
#[tokio::test]
async fn path_segments_are_percent_encoded() {
    let router = Router::new().route(
        "/users/{id}",
        axum::routing::delete(|Path(id): Path<String>| async move {
            if id == "a.b+tag@example.com" {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            }
        }),
    );
    let (base, log) = serve(router).await;
    client(&base)
        .remove_user(&scope(), "a.b+tag@example.com")
        .await
        .unwrap();
    assert_eq!(log.all()[0].path, "/v0/users/a.b%2Btag%40example.com");
}

/// Typed errors come from status and body: 404, 409 (sandbox error shape), 403, 400.
#[tokio::test]
async fn statuses_and_bodies_become_typed_errors() {
    let router = Router::new()
        .route("/sandboxes/{name}", get(|| async { error_body(StatusCode::NOT_FOUND, "sandbox x not found") }))
        .route(
            "/sandboxes",
            post(|| async {
                (StatusCode::CONFLICT, Json(json!({"code": "SANDBOX_ALREADY_EXISTS", "message": "exists", "details": {}, "status_code": 409})))
            })
            .get(|| async { error_body(StatusCode::FORBIDDEN, "wrong workspace") }),
        )
        .route("/users/{id}", put(|| async { error_body(StatusCode::BAD_REQUEST, "bad role") }));
    let (base, log) = serve(router).await;
    let client = client(&base);
    let scope = scope();
    let sandbox: Sandbox = serde_json::from_value(sandbox("x")).unwrap();
    assert_eq!(
        client.get_sandbox(&scope, "x").await.unwrap_err(),
        ApiError::NotFound {
            message: "sandbox x not found".into()
        }
    );
    assert_eq!(
        client.create_sandbox(&scope, &sandbox).await.unwrap_err(),
        ApiError::Conflict {
            message: "SANDBOX_ALREADY_EXISTS: exists".into()
        }
    );
    assert_eq!(
        client.list_sandboxes(&scope).await.unwrap_err().category(),
        "Forbidden"
    );
    assert_eq!(
        client.set_user_role(&scope, "u", "boss").await.unwrap_err(),
        ApiError::Invalid {
            message: "bad role".into()
        }
    );
    // None of these is transient, so none was retried.
    assert_eq!(log.all().len(), 4);
}

/// The one sandbox of the 2026 stub, as the server stores it.
type Stored = Arc<Mutex<Value>>;

/// A stub of today's API: no start/stop routes; PUT /sandboxes/{name} stores and echoes the body.
fn api_2026() -> (Router, Stored) {
    let stored = Arc::new(Mutex::new(json!({
        "metadata": {"name": "box", "displayName": "Box"},
        "spec": {
            "enabled": true,
            "runtime": {
                "image": "img",
                "envs": [{"name": "TOKEN", "value": "v", "secret": true}],
                "ports": [{"name": "web", "target": 3000, "protocol": "HTTP", "public": true}]
            },
            "lifecycle": {"x": 1}
        },
        "status": "DEPLOYED",
        "state": "RUNNING"
    })));
    let read = Arc::clone(&stored);
    let write = Arc::clone(&stored);
    let router = Router::new()
        .route(
            "/sandboxes/{name}",
            get(move || {
                let read = Arc::clone(&read);
                async move { Json(read.lock().unwrap().clone()) }
            })
            .put(move |body: Bytes| {
                let stored = Arc::clone(&write);
                async move {
                    let value: Value = serde_json::from_slice(&body).unwrap();
                    *stored.lock().unwrap() = value.clone();
                    Json(value)
                }
            }),
        )
        .fallback(|| async { error_body(StatusCode::NOT_FOUND, "route not found") });
    (router, stored)
}

fn observed_box() -> Sandbox {
    Sandbox {
        metadata: SandboxMetadata {
            name: "box".into(),
            ..SandboxMetadata::default()
        },
        ..serde_json::from_value(json!({"spec": {"enabled": true, "lifecycle": {"x": 1}}})).unwrap()
    }
}

/// On today's API a 404 from start/stop switches the workspace to spec.enabled, detected only once,
/// and nothing is written: the caller sets `spec.enabled` in an update it builds (a read-modify-write
/// of the sandbox as shown would send masked secret values back).
#[tokio::test]
async fn power_falls_back_to_enabled_once_per_workspace() {
    let (router, stored) = api_2026();
    let (base, log) = serve(router).await;
    let client = client(&base);
    let scope = scope();
    assert_eq!(client.power_control("team-a"), None);
    let before = stored.lock().unwrap().clone();

    let mode = client
        .set_sandbox_power(&scope, &observed_box(), false)
        .await
        .unwrap();
    assert_eq!(mode, PowerControl::Enabled);
    assert_eq!(client.power_control("team-a"), Some(PowerControl::Enabled));
    assert_eq!(log.count("PUT", "/box/stop"), 1);
    assert_eq!(
        log.count("GET", "/sandboxes/box"),
        1,
        "one confirmation read"
    );
    assert_eq!(log.count("PUT", "/sandboxes/box"), 0, "nothing written");
    assert_eq!(*stored.lock().unwrap(), before);

    let mode = client
        .set_sandbox_power(&scope, &observed_box(), true)
        .await
        .unwrap();
    assert_eq!(mode, PowerControl::Enabled);
    assert_eq!(
        log.count("PUT", "/start") + log.count("PUT", "/stop"),
        1,
        "no second probe"
    );
    assert_eq!(log.all().len(), 2, "and no other request: {:?}", log.all());
}

/// Concurrent first power calls in one workspace probe the start/stop routes once, not once each.
#[tokio::test]
async fn concurrent_first_power_calls_probe_once() {
    let (base, log) = serve(api_2026().0).await;
    let client = client(&base);
    let calls = (0..4).map(|_| {
        let client = client.clone();
        async move {
            client
                .set_sandbox_power(&scope(), &observed_box(), true)
                .await
                .unwrap()
        }
    });
    let modes = futures::future::join_all(calls).await;
    assert!(modes.iter().all(|m| *m == PowerControl::Enabled));
    assert_eq!(log.count("PUT", "/box/start"), 1);
}

/// On the 2025 API start/stop are used; "already running" (409) is success, spec.enabled never touched.
#[tokio::test]
async fn power_uses_start_stop_on_the_2025_api() {
    let router = Router::new()
        .route(
            "/sandboxes/{name}/start",
            put(|| async { error_body(StatusCode::CONFLICT, "already running") }),
        )
        .route(
            "/sandboxes/{name}/stop",
            put(|| async { Json(json!({"message": "stopping", "status": "DEACTIVATING"})) }),
        );
    let (base, log) = serve(router).await;
    let client = client(&base);
    let scope = scope();
    assert_eq!(
        client
            .set_sandbox_power(&scope, &observed_box(), true)
            .await
            .unwrap(),
        PowerControl::StartStop
    );
    assert_eq!(
        client
            .set_sandbox_power(&scope, &observed_box(), false)
            .await
            .unwrap(),
        PowerControl::StartStop
    );
    assert_eq!(
        client.power_control("team-a"),
        Some(PowerControl::StartStop)
    );
    assert_eq!(log.count("PUT", "/sandboxes/box"), 0);
    assert_eq!(log.all().len(), 2);
}

/// A sandbox deleted between observation and the power call is reported NotFound and does not flip the mode.
#[tokio::test]
async fn vanished_sandbox_does_not_switch_power_mode() {
    let router = Router::new()
        .fallback(|| async { error_body(StatusCode::NOT_FOUND, "sandbox box not found") });
    let (base, log) = serve(router).await;
    let client = client(&base);
    let error = client
        .set_sandbox_power(&scope(), &observed_box(), true)
        .await
        .unwrap_err();
    assert_eq!(error.category(), "NotFound");
    assert_eq!(client.power_control("team-a"), None);
    assert_eq!(log.count("GET", "/sandboxes/box"), 1);
    assert_eq!(log.count("PUT", "/sandboxes/box"), 0);
}

/// A keep-alive HTTP/1.1 server answering every request with `[]` after `delay`; it counts the
/// connections still open.
async fn counting_server(delay: Duration) -> (String, Arc<AtomicUsize>) {
    use tokio::io::AsyncWriteExt;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&open);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let open = Arc::clone(&counter);
            open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                    // Requests without a body: one ends at its blank line.
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        tokio::time::sleep(delay).await;
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]";
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (format!("http://{addr}/v0"), open)
}

/// After a burst, the client keeps only a few idle connections (each would keep its read buffer), and
/// reuses them.
#[tokio::test]
async fn idle_connections_after_a_burst_are_few() {
    let (base, open) = counting_server(Duration::from_millis(200)).await;
    let client = client(&base);
    let scope = scope();
    let burst = futures::future::join_all((0..12).map(|_| client.list_users(&scope))).await;
    assert!(burst.iter().all(Result::is_ok), "{burst:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while open.load(Ordering::SeqCst) > 4 {
        assert!(
            Instant::now() < deadline,
            "{} connections still open after the burst",
            open.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        open.load(Ordering::SeqCst),
        4,
        "the idle ones stay for reuse"
    );
    client.list_users(&scope).await.unwrap();
    assert_eq!(open.load(Ordering::SeqCst), 4, "a later request reuses one");
}

/// `--api-ca-file`: an endpoint whose certificate a CA of one's own signed is reached with that CA
/// added, and refused without it (the built-in roots do not know it).
#[tokio::test]
async fn a_private_ca_is_trusted_only_when_given() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::rustls;

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]";
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let base = format!("https://{addr}/v0");
    let trusting = HttpClient::new(ClientConfig {
        ca_bundle: Some(ca.pem().into_bytes()),
        ..config(&base)
    })
    .unwrap();
    assert_eq!(
        trusting.list_sandboxes(&scope()).await.unwrap().items.len(),
        0
    );
    let error = client(&base).list_sandboxes(&scope()).await.unwrap_err();
    assert_eq!(error.category(), "Unavailable", "{error}");
    assert!(matches!(
        HttpClient::new(ClientConfig {
            ca_bundle: Some(b"not a certificate".to_vec()),
            ..config(&base)
        }),
        Err(blaxel_operator::blaxel::client::ConfigError::CaBundle(_))
    ));
}

/// A secret environment value a create or update carries is scrubbed from an error that quotes the
/// request back, as the key is.
#[tokio::test]
async fn secret_env_values_never_reach_errors() {
    const VALUE: &str = "env-secret-value-31c4a9";
    let quote = |body: Bytes| async move {
        error_body(
            StatusCode::BAD_REQUEST,
            &format!("refused: {}", String::from_utf8_lossy(&body)),
        )
    };
    let router = Router::new()
        .route("/sandboxes", post(quote))
        .route("/sandboxes/{name}", put(quote));
    let (base, _log) = serve(router).await;
    let client = client(&base);
    let sandbox: Sandbox = serde_json::from_value(json!({
        "metadata": {"name": "s"},
        "spec": {"runtime": {"image": "i", "envs": [
            {"name": "A", "value": VALUE, "secret": true},
            {"name": "B", "value": "plain-visible-value"}
        ]}}
    }))
    .unwrap();
    for error in [
        client.create_sandbox(&scope(), &sandbox).await.unwrap_err(),
        client.update_sandbox(&scope(), &sandbox).await.unwrap_err(),
    ] {
        let shown = error.to_string();
        assert!(shown.contains("plain-visible-value"), "{shown}");
        assert!(!shown.contains(VALUE), "a secret value in {shown}");
    }
}
