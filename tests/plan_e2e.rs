//! `blaxel-operator plan`, end to end: the real binary against the simulator over HTTP, with a seeded
//! workspace; and the same manifests applied to the real API server with the operator running, whose
//! remote writes must be the plan's actions, one for one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use kube::api::DeleteParams;
use serde_json::{Value, json};
use support::operator::{DEADLINE, World, eventually, fast_sandboxes, wait_gone};
use support::plan::{member, plan, plan_with};
use tokio::io::AsyncWriteExt;

/// A request to the simulated Blaxel API with the world's key; panics unless it succeeds.
async fn blaxel(world: &World, method: reqwest::Method, path: &str, body: Value) {
    let status = world.blaxel(method.clone(), path, Some(body)).await;
    assert!(status.is_success(), "{method} {path}: {status}");
}

/// A sandbox made remotely, `labels` on it, waited for until DEPLOYED.
async fn remote_sandbox(world: &World, name: &str, labels: Value) {
    let body = json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"runtime": {"image": "blaxel/base-image:latest", "memory": 2048}},
    });
    blaxel(world, reqwest::Method::POST, "/sandboxes", body).await;
    eventually(&format!("sandbox {name} DEPLOYED"), DEADLINE, || async {
        let s = world.remote_sandbox(name).await?;
        (s["status"] == "DEPLOYED").then_some(())
    })
    .await;
}

/// The ownership labels the operator writes for object `name` of the world's namespace.
fn owned_by(world: &World, name: &str) -> Value {
    json!({"managed-by": "blaxel-operator", "blaxel-operator-owner": format!("{}.{name}", world.ns)})
}

fn yaml_member(ns: &str, ws: &str, name: &str, email: &str, role: &str, policy: &str) -> String {
    format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: WorkspaceMember\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec: {{workspace: {ws}, email: {email}, role: {role}, deletionPolicy: {policy}}}\n---\n"
    )
}

fn yaml_sandbox(ns: &str, ws: &str, name: &str, extra: &str) -> String {
    format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: Sandbox\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec: {{workspace: {ws}, image: blaxel/base-image:latest, memory: 2048{extra}}}\n---\n"
    )
}

/// The seeded workspace and the manifests before (`base`) and after (`head`) the change, so that
/// every action appears once: remove, revoke, delete and release for objects only in `base`; invite,
/// set-role, create, stop, update, adopt and start for objects in `head`.
async fn seeded(world: &World, dir: &Path) -> (String, String) {
    let (ns, ws) = (world.ns.as_str(), world.workspace.as_str());
    member(world, "carol@example.com", "member", true).await;
    member(world, "dave@example.com", "member", false).await;
    member(world, "erin@example.com", "member", true).await;
    remote_sandbox(world, "old", owned_by(world, "old")).await;
    remote_sandbox(world, "kept", owned_by(world, "kept")).await;
    remote_sandbox(world, "grow", owned_by(world, "grow")).await;
    remote_sandbox(world, "handmade", json!({})).await;
    remote_sandbox(world, "halt", owned_by(world, "halt")).await;
    let common = [
        yaml_member(ns, ws, "erin", "erin@example.com", "admin", "Delete"),
        yaml_sandbox(ns, ws, "grow", ", memory: 4096"),
        yaml_sandbox(ns, ws, "handmade", ""),
        yaml_sandbox(ns, ws, "halt", ", state: Stopped"),
    ]
    .concat();
    let base = [
        common.clone(),
        yaml_member(ns, ws, "carol", "carol@example.com", "member", "Delete"),
        yaml_member(ns, ws, "dave", "dave@example.com", "member", "Delete"),
        yaml_sandbox(ns, ws, "old", ", deletionPolicy: Delete"),
        yaml_sandbox(ns, ws, "kept", ", deletionPolicy: Orphan"),
    ]
    .concat();
    let head = [
        common,
        yaml_member(ns, ws, "alice", "alice@example.com", "admin", "Delete"),
        yaml_sandbox(ns, ws, "fresh", ", state: Stopped"),
    ]
    .concat();
    std::fs::write(dir.join("base.yaml"), &base).unwrap();
    std::fs::create_dir(dir.join("head")).unwrap();
    std::fs::write(dir.join("head/all.yaml"), &head).unwrap();
    (base, head)
}

/// The (action, target) pairs of a JSON plan, sorted.
fn actions(plan: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = plan["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["changes"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_owned(),
                c["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<_> = list
        .iter()
        .map(|(a, t)| ((*a).to_owned(), (*t).to_owned()))
        .collect();
    out.sort();
    out
}

/// Requests the simulator answered that write (any method but GET), by route.
fn writes(world: &World) -> BTreeMap<String, u64> {
    let stats = world.sim.stats();
    stats["byRoute"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(route, _)| !route.starts_with("GET "))
        .map(|(route, v)| (route.clone(), v["total"].as_u64().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// What the seeded change does: every action once, or twice with different targets.
fn every_action() -> Vec<(String, String)> {
    pairs(&[
        ("remove", "carol@example.com"),
        ("revoke", "dave@example.com"),
        ("delete", "old"),
        ("release", "kept"),
        ("invite", "alice@example.com"),
        ("set-role", "alice@example.com"),
        ("set-role", "erin@example.com"),
        ("create", "fresh"),
        ("stop", "fresh"),
        ("update", "grow"),
        ("adopt", "handmade"),
        ("stop", "halt"),
    ])
}

/// What the text and Markdown forms of the seeded plan must show: each action, and the summary.
fn format_marks() -> [(&'static str, Vec<String>); 2] {
    let actions = [
        ("-", "remove"),
        ("-", "revoke"),
        ("-", "delete"),
        ("+", "invite"),
        ("~", "set-role"),
        ("+", "create"),
        ("~", "update"),
        ("~", "adopt"),
        ("~", "stop"),
        ("~", "release"),
    ];
    let text = actions
        .iter()
        .map(|(s, a)| format!("{s} {a} "))
        .chain(["Plan: 2 to add, 7 to change, 3 to remove.".to_owned()])
        .collect();
    let markdown = actions
        .iter()
        .map(|(_, a)| format!("| `{a}` |"))
        .chain(["#### Workspace".to_owned()])
        .collect();
    [("text", text), ("markdown", markdown)]
}

#[tokio::test]
async fn every_action_in_every_format_and_nothing_written() {
    let world = World::new(fast_sandboxes()).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, head) = seeded(&world, dir.path()).await;
    let before = writes(&world);
    let head_dir = dir.path().join("head");
    let base = dir.path().join("base.yaml");
    let args = |format: &'static str| {
        vec![
            "-f".to_owned(),
            head_dir.display().to_string(),
            "--base".to_owned(),
            base.display().to_string(),
            "--format".to_owned(),
            format.to_owned(),
        ]
    };
    let run = async |format| {
        let a = args(format);
        plan(
            &world,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            "",
        )
        .await
    };
    let json_run = run("json").await;
    assert_eq!(json_run.code, 2, "changes: exit 2\n{}", json_run.stderr);
    let expected = every_action();
    let plan_json = json_run.json();
    assert_eq!(actions(&plan_json), expected, "{}", json_run.stdout);
    let first = &plan_json["workspaces"][0]["changes"];
    let order: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert!(
        order[..3]
            .iter()
            .all(|a| ["remove", "revoke", "delete"].contains(a)),
        "removals first: {order:?}"
    );
    assert!(
        json_run
            .stdout
            .contains("spec.runtime.memory: 2048 -> 4096")
    );
    for (format, marks) in format_marks() {
        let r = run(format).await;
        assert_eq!(r.code, 2, "{format}: {}", r.stderr);
        for m in marks {
            assert!(r.stdout.contains(&m), "{format} lacks {m:?}:\n{}", r.stdout);
        }
        assert!(!r.stdout.contains(&world.key), "{format} shows the key");
    }
    // The same head from stdin, without base: no deletions.
    let r = plan(&world, &["-f", "-", "--format", "json"], &head).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        !actions(&r.json())
            .iter()
            .any(|(a, _)| ["remove", "revoke", "delete", "release"].contains(&a.as_str())),
        "{}",
        r.stdout
    );
    assert_eq!(writes(&world), before, "plan wrote to Blaxel");
    for r in [&json_run, &r] {
        assert!(!r.stdout.contains(&world.key) && !r.stderr.contains(&world.key));
    }
}

#[tokio::test]
async fn exit_codes_no_change_invalid_and_errors() {
    let world = World::new(fast_sandboxes()).await;
    let (ns, ws) = (world.ns.as_str(), world.workspace.as_str());
    member(&world, "carol@example.com", "member", true).await;
    let same = yaml_member(ns, ws, "carol", "carol@example.com", "member", "Delete");
    let r = plan(&world, &["-f", "-"], &same).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("No changes"), "{}", r.stdout);
    // Two objects claiming one e-mail: refused, nothing planned.
    let twice = format!(
        "{same}{}",
        yaml_member(ns, ws, "carol2", "carol@example.com", "admin", "Delete")
    );
    let r = plan(&world, &["-f", "-", "--format", "json"], &twice).await;
    assert_eq!(r.code, 1);
    let invalid = &r.json()["invalid"][0];
    assert_eq!(invalid["document"], 2);
    assert!(
        invalid["errors"][0]
            .as_str()
            .unwrap()
            .contains("is also declared by WorkspaceMember"),
        "{invalid}"
    );
    // A workspace without a key is reported, not guessed.
    let other = yaml_member(ns, "elsewhere", "x", "x@example.com", "member", "Delete");
    let own = format!("BL_API_KEY_{}", ws.to_ascii_uppercase());
    let r = plan_with(
        &world,
        &["-f", "-"],
        &format!("{same}{other}"),
        &[(&own, &world.key)],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("no key for workspace elsewhere: set BL_API_KEY_ELSEWHERE"),
        "{}",
        r.stdout
    );
    // A key Blaxel refuses: the workspace is not planned.
    let r = plan_with(&world, &["-f", "-"], &same, &[(&own, "made-up-key")]).await;
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("not planned"), "{}", r.stdout);
    assert!(!r.stdout.contains("made-up-key") && !r.stderr.contains("made-up-key"));
    // Not YAML at all.
    let r = plan(&world, &["-f", "-"], "kind: [").await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("- (document 1)"), "{}", r.stderr);
}

/// The plan's actions are what the operator then does: base applied and settled, then head applied
/// (and base's other objects deleted); the simulator's writes equal the plan's, route by route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_makes_exactly_the_planned_writes() {
    let mut world = World::new(fast_sandboxes()).await;
    let dir = tempfile::tempdir().unwrap();
    let (base, head) = seeded(&world, dir.path()).await;
    let _op = world.start_operator(&["--removal-limit", "0"]);
    kubectl_apply(&world, &base).await;
    settled(
        &world,
        &["erin", "carol", "dave"],
        &["grow", "handmade", "halt", "old", "kept"],
    )
    .await;
    let planned = plan(
        &world,
        &[
            "-f",
            &dir.path().join("head").display().to_string(),
            "--base",
            &dir.path().join("base.yaml").display().to_string(),
            "--format",
            "json",
        ],
        "",
    )
    .await;
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (action, _) in actions(&planned.json()) {
        let route = match action.as_str() {
            "invite" => "POST /v0/users",
            "set-role" => "PUT /v0/users/{subOrEmail}",
            "remove" | "revoke" => "DELETE /v0/users/{subOrEmail}",
            "create" => "POST /v0/sandboxes",
            "update" | "adopt" | "release" => "PUT /v0/sandboxes/{name}",
            "stop" => "PUT /v0/sandboxes/{name}/stop",
            "start" => "PUT /v0/sandboxes/{name}/start",
            "delete" => "DELETE /v0/sandboxes/{name}",
            other => panic!("unmapped action {other}"),
        };
        *expected.entry(route.to_owned()).or_default() += 1;
    }
    let before = writes(&world);
    for name in ["carol", "dave"] {
        world
            .members()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["old", "kept"] {
        world
            .sandboxes()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    kubectl_apply(&world, &head).await;
    for name in ["carol", "dave"] {
        wait_gone(&world.members(), name).await;
    }
    for name in ["old", "kept"] {
        wait_gone(&world.sandboxes(), name).await;
    }
    settled(
        &world,
        &["erin", "alice"],
        &["grow", "handmade", "halt", "fresh"],
    )
    .await;
    let mut made = writes(&world);
    for (route, n) in before {
        if let Some(m) = made.get_mut(&route) {
            *m -= n;
        }
    }
    made.retain(|_, n| *n > 0);
    assert_eq!(
        made, expected,
        "the writes made, against the plan:\n{}",
        planned.stdout
    );
}

/// `kubectl apply --server-side -f -` of `yaml` with the world's kubeconfig.
async fn kubectl_apply(world: &World, yaml: &str) {
    let mut child = tokio::process::Command::new("kubectl")
        .args(["apply", "--server-side", "-f", "-"])
        .env("KUBECONFIG", world.kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every named object has a status for its generation that is done with remote writes: members Ready
/// or waiting for their invitation, sandboxes Ready.
async fn settled(world: &World, members: &[&str], sandboxes: &[&str]) {
    let done = |v: Value, waiting: &[&str]| {
        let s = &v["status"];
        s["observedGeneration"] == v["metadata"]["generation"]
            && s["conditions"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["type"] == "Ready"
                        && (c["status"] == "True"
                            || waiting.contains(&c["reason"].as_str().unwrap_or_default()))
                })
            })
    };
    eventually("every object settled", DEADLINE, || async {
        for name in members {
            let m = serde_json::to_value(world.members().get(name).await.ok()?).ok()?;
            done(m, &["InvitationPending"]).then_some(())?;
        }
        for name in sandboxes {
            let s = serde_json::to_value(world.sandboxes().get(name).await.ok()?).ok()?;
            done(s, &[]).then_some(())?;
        }
        Some(())
    })
    .await;
}

/// Workspace membership, integration connections and previews: an Authoritative workspace removes
/// the person no WorkspaceMember declares (not the protected one), a connection is created with its
/// secret never shown and another deleted, and a private preview is created with its token.
#[tokio::test]
async fn workspace_connection_and_preview_kinds() {
    let world = World::new(fast_sandboxes()).await;
    let (ns, ws) = (world.ns.as_str(), world.workspace.as_str());
    member(&world, "carol@example.com", "member", true).await;
    member(&world, "zed@example.com", "member", true).await;
    member(&world, "boss@example.com", "admin", true).await;
    remote_sandbox(&world, "box", owned_by(&world, "box")).await;
    let connection = |name: &str| json!({"metadata": {"name": name}, "spec": {"integration": "openai", "config": {}, "sandbox": false, "secret": {"apiKey": "sk-old-value"}}});
    blaxel(
        &world,
        reqwest::Method::POST,
        "/integrations/connections",
        connection("old-conn"),
    )
    .await;
    let old_conn = format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: IntegrationConnection\nmetadata: {{name: old-conn, namespace: {ns}}}\n\
         spec: {{workspace: {ws}, integration: openai, secretRef: {{name: openai}}, deletionPolicy: Delete}}\n---\n"
    );
    let head = [
        format!(
            "apiVersion: blaxel.ai/v1alpha1\nkind: Workspace\nmetadata: {{name: {ws}, namespace: {ns}}}\n\
             spec: {{members: {{policy: Authoritative, protected: [boss@example.com]}}}}\n---\n"
        ),
        yaml_member(ns, ws, "carol", "carol@example.com", "member", "Delete"),
        format!(
            "apiVersion: blaxel.ai/v1alpha1\nkind: IntegrationConnection\nmetadata: {{name: openai, namespace: {ns}}}\n\
             spec: {{workspace: {ws}, integration: openai, config: {{org: acme}}, secretRef: {{name: openai}}}}\n---\n"
        ),
        yaml_sandbox(ns, ws, "box", ""),
        format!(
            "apiVersion: blaxel.ai/v1alpha1\nkind: SandboxPreview\nmetadata: {{name: web, namespace: {ns}}}\n\
             spec: {{sandboxRef: {{name: box}}, port: 3000}}\n---\n"
        ),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.yaml");
    std::fs::write(&base, format!("{head}{old_conn}")).unwrap();
    let before = writes(&world);
    let r = plan(
        &world,
        &[
            "-f",
            "-",
            "--base",
            &base.display().to_string(),
            "--format",
            "json",
        ],
        &head,
    )
    .await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let plan_json = r.json();
    let kinds: Vec<(String, String, String)> = plan_json["workspaces"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
                c["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("delete", "IntegrationConnection", "old-conn"),
        ("remove", "Workspace", "zed@example.com"),
        ("create", "IntegrationConnection", "openai"),
        ("create", "SandboxPreview", "box/web"),
    ]
    .map(|(a, k, t)| (a.to_owned(), k.to_owned(), t.to_owned()));
    assert_eq!(kinds, expected, "{}", r.stdout);
    assert!(
        r.stdout.contains("a token, kept in Secret web-token"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("sk-old-value"));
    assert_eq!(writes(&world), before, "plan wrote to Blaxel");
    // A preview whose Sandbox is not among the manifests is refused.
    let lone = format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: SandboxPreview\nmetadata: {{name: web, namespace: {ns}}}\n\
         spec: {{sandboxRef: {{name: nothing}}, port: 3000}}\n"
    );
    let r = plan(&world, &["-f", "-"], &lone).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("names Sandbox nothing, which the manifests do not declare"),
        "{}",
        r.stdout
    );
}

/// The CI examples parse, run `plan` through `$PLAN_ARGS`, and the operator accepts that command line.
#[test]
fn ci_examples_run_a_valid_plan() {
    use blaxel_operator::cli::{Cli, Command as Sub};
    use clap::Parser;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci");
    for (file, pointer, script) in [
        (
            "github-actions.yaml",
            "/env/PLAN_ARGS",
            "/jobs/plan/steps/2/run",
        ),
        (
            "gitlab-ci.yaml",
            "/blaxel-plan/variables/PLAN_ARGS",
            "/blaxel-plan/script",
        ),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let doc: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let args = doc.pointer(pointer).and_then(Value::as_str).unwrap();
        let script = doc.pointer(script).unwrap().to_string();
        assert!(
            script.contains("$PLAN_ARGS"),
            "{file} runs PLAN_ARGS: {script}"
        );
        let line = std::iter::once("blaxel-operator").chain(args.split_whitespace());
        match Cli::try_parse_from(line).map(|cli| cli.command) {
            Ok(Sub::Plan(plan)) => {
                assert!(!plan.base.is_empty(), "{file}: plans against the base");
            }
            Ok(other) => panic!("{file}: {other:?}"),
            Err(e) => panic!("{file}: {e}"),
        }
    }
}

/// An invalid manifest is refused with the API server's own words (asked of the real server with a
/// dry-run create), file and document named; a change of an immutable field against `--base` is
/// refused as the server refuses the update; nothing is planned then.
#[tokio::test]
async fn invalid_manifests_get_the_api_servers_words() {
    let world = World::new(fast_sandboxes()).await;
    let (ns, ws) = (world.ns.as_str(), world.workspace.as_str());
    let preview = json!({
        "apiVersion": "blaxel.ai/v1alpha1", "kind": "SandboxPreview",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"sandboxRef": {"name": "box"}, "port": 70000, "public": true, "token": {"lifetime": "1h"}},
    });
    let resource = kube::discovery::ApiResource::erase::<blaxel_operator::crd::SandboxPreview>(&());
    let dynamic: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(world.client.clone(), ns, &resource);
    let server = dynamic
        .create(
            &kube::api::PostParams {
                dry_run: true,
                ..Default::default()
            },
            &serde_json::from_value(preview.clone()).unwrap(),
        )
        .await
        .unwrap_err()
        .to_string();
    let text = [
        yaml_sandbox(ns, ws, "box", ""),
        serde_yaml::to_string(&preview).unwrap(),
    ]
    .join("");
    let r = plan(&world, &["-f", "-", "--format", "json"], &text).await;
    assert_eq!(r.code, 1, "{}", r.stdout);
    let invalid = &r.json()["invalid"];
    assert_eq!(invalid.as_array().unwrap().len(), 1, "{invalid}");
    assert_eq!(invalid[0]["file"], "-");
    assert_eq!(invalid[0]["document"], 2);
    for error in invalid[0]["errors"].as_array().unwrap() {
        let error = error.as_str().unwrap();
        assert!(
            server.contains(error),
            "offline {error:?}, server {server:?}"
        );
    }
    assert!(
        server.contains("a public preview takes no token"),
        "{server}"
    );
    // An immutable field changed between base and head.
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.yaml");
    std::fs::write(
        &base,
        yaml_member(ns, ws, "carol", "carol@example.com", "member", "Delete"),
    )
    .unwrap();
    let head = yaml_member(ns, ws, "carol", "karol@example.com", "member", "Delete");
    let r = plan(
        &world,
        &["-f", "-", "--base", &base.display().to_string()],
        &head,
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("spec.email"), "{}", r.stdout);
    assert!(r.stdout.contains("immutable"), "{}", r.stdout);
}
