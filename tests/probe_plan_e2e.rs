//! Adversarial tests of `blaxel-operator plan`: each test names the defect an adversarial probe found
//! in its doc comment, and failed before its fix. The real binary runs against the simulator over HTTP,
//! as in `tests/plan_e2e.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::operator::{DEADLINE, World, eventually, fast_sandboxes};
use support::plan::{member, plan, plan_run};

/// A call to the simulated API with the world's key; panics unless it succeeds.
async fn blaxel(world: &World, method: reqwest::Method, path: &str, body: Value) {
    let status = world.blaxel(method.clone(), path, Some(body)).await;
    assert!(status.is_success(), "{method} {path}: {status}");
}

/// A sandbox made remotely, owned by object `name` of the world's namespace, waited for until DEPLOYED.
async fn owned_sandbox(world: &World, name: &str) {
    let labels = json!({"managed-by": "blaxel-operator", "blaxel-operator-owner": format!("{}.{name}", world.ns)});
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

/// A WorkspaceMember manifest; `metadata` is extra flow-mapping text after the name and namespace.
fn yaml_member(world: &World, name: &str, email: &str, metadata: &str) -> String {
    format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: WorkspaceMember\n\
         metadata: {{name: {name}, namespace: {}{metadata}}}\n\
         spec: {{workspace: {}, email: {email:?}, deletionPolicy: Delete}}\n---\n",
        world.ns, world.workspace
    )
}

/// The world's workspace, Authoritative, `mallory` (the simulator's own admin) protected.
fn yaml_authoritative(world: &World) -> String {
    format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: Workspace\nmetadata: {{name: {ws}, namespace: {ns}}}\n\
         spec: {{members: {{policy: Authoritative, protected: [mallory@example.com]}}}}\n---\n",
        ws = world.workspace,
        ns = world.ns
    )
}

/// The (action, target) pairs of a JSON plan.
fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["workspaces"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["changes"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["action"].as_str().unwrap_or_default().to_owned(),
                c["target"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn has(plan: &Value, action: &str, target: &str) -> bool {
    actions(plan)
        .iter()
        .any(|(a, t)| a == action && t == target)
}

/// Writes `text` to `name` in `dir` and returns the path as a string.
fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Was a defect (hidden removal): plan takes manifests the API server refuses (the CRD's CEL rules, an
/// object name Kubernetes does not accept, a version the CRD does not serve) as declared. In an
/// Authoritative workspace such a WorkspaceMember keeps its person in the plan, but it is never
/// stored, so the operator removes that person: `kubectl apply` stores the other documents. Plan
/// must refuse them (exit 1) as the API server would, or at least show the removal.
#[tokio::test]
async fn manifests_the_api_server_refuses_hide_a_removal() {
    let world = World::new(fast_sandboxes()).await;
    member(&world, "alice@example.com", "member", true).await;
    let refused = [
        (
            "upper-case e-mail (CEL)",
            yaml_member(&world, "alice", "Alice@Example.com", ""),
        ),
        (
            "invalid metadata.name",
            yaml_member(&world, "Alice_1", "alice@example.com", ""),
        ),
        (
            "a version the CRD does not serve",
            yaml_member(&world, "alice", "alice@example.com", "").replace("v1alpha1", "v9"),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, alice) in refused {
        let head = format!("{}{alice}", yaml_authoritative(&world));
        let r = plan(&world, &["-f", "-", "--format", "json"], &head).await;
        let refused_here = r.code == 1
            && r.json()["invalid"]
                .as_array()
                .is_some_and(|i| !i.is_empty());
        if !refused_here && !has(&r.json(), "remove", "alice@example.com") {
            wrong.push(format!("{what}: exit {}\n{}", r.code, r.stdout));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Was a defect (hidden removal): two documents for one object (same kind, namespace and name) are both
/// planned, although the API server keeps one (the last applied). Here `alice` is re-pointed at
/// carol's address in a second document: plan counts alice@ as declared and shows only carol's
/// invitation, while the operator, seeing one object declaring carol@, removes alice@ from the
/// Authoritative workspace. Plan must refuse a repeated object (src/plan/mod.rs `duplicates` checks
/// identities only).
#[tokio::test]
async fn one_object_twice_hides_a_removal() {
    let world = World::new(fast_sandboxes()).await;
    member(&world, "alice@example.com", "member", true).await;
    let head = [
        yaml_authoritative(&world),
        yaml_member(&world, "alice", "alice@example.com", ""),
        yaml_member(&world, "alice", "carol@example.com", ""),
    ]
    .concat();
    let r = plan(&world, &["-f", "-", "--format", "json"], &head).await;
    assert!(
        r.code == 1 || has(&r.json(), "remove", "alice@example.com"),
        "exit {}: {}",
        r.code,
        r.stdout
    );
}

/// Was a defect: a change of an immutable field (`spec.email`, also `spec.workspace`, `sandboxName`) of an
/// object in base and head is planned as the new identity alone (`invite carol`). The API server
/// refuses the update ("email is immutable"), so nothing happens; and if the change is forced
/// (delete and re-create, e.g. Argo CD `Replace=true`), alice@ is removed, which the plan does not
/// show. Plan must refuse it as the API server would (or show the removal).
#[tokio::test]
async fn immutable_email_change_is_planned_as_an_invitation_only() {
    let world = World::new(fast_sandboxes()).await;
    member(&world, "alice@example.com", "member", true).await;
    let dir = tempfile::tempdir().unwrap();
    let base = file(
        &dir,
        "base.yaml",
        &yaml_member(&world, "alice", "alice@example.com", ""),
    );
    let head = yaml_member(&world, "alice", "carol@example.com", "");
    let r = plan(
        &world,
        &["-f", "-", "--base", &base, "--format", "json"],
        &head,
    )
    .await;
    let plan = r.json();
    let refused = r.code == 1 && plan["invalid"].as_array().is_some_and(|i| !i.is_empty());
    assert!(
        refused || has(&plan, "remove", "alice@example.com"),
        "exit {}: {}",
        r.code,
        r.stdout
    );
}

/// Was a defect (secret shown): an update of a SandboxPreview prints header values, old and new
/// (`requestHeaders.X-Api-Key: "old" -> "new"`): `src/reconcile/preview/dry_run.rs` passes
/// `&|_| false` to `changed` for `Update` (only `Create` uses `secret`). Headers carry credentials;
/// the README says header values are shown as changed only.
#[tokio::test]
async fn preview_update_prints_header_values() {
    let world = World::new(fast_sandboxes()).await;
    owned_sandbox(&world, "box").await;
    let preview = json!({
        "metadata": {"name": "web"},
        "spec": {"port": 3000, "public": true, "requestHeaders": {"X-Api-Key": "hdr-old-0f9e8d7c6b5a"}},
    });
    blaxel(
        &world,
        reqwest::Method::POST,
        "/sandboxes/box/previews",
        preview,
    )
    .await;
    let (ns, ws) = (world.ns.as_str(), world.workspace.as_str());
    let head = format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: Sandbox\nmetadata: {{name: box, namespace: {ns}}}\n\
         spec: {{workspace: {ws}, image: blaxel/base-image:latest, memory: 2048}}\n---\n\
         apiVersion: blaxel.ai/v1alpha1\nkind: SandboxPreview\nmetadata: {{name: web, namespace: {ns}}}\n\
         spec: {{sandboxRef: {{name: box}}, port: 3000, public: true, \
         requestHeaders: {{X-Api-Key: hdr-new-1a2b3c4d5e6f}}}}\n"
    );
    for format in ["text", "markdown", "json"] {
        let r = plan(&world, &["-f", "-", "--format", format], &head).await;
        assert_eq!(r.code, 2, "{format}: an update\n{}", r.all());
        for value in ["hdr-old-0f9e8d7c6b5a", "hdr-new-1a2b3c4d5e6f"] {
            assert!(
                !r.all().contains(value),
                "{format} shows {value}:\n{}",
                r.stdout
            );
        }
    }
}

/// Was a defect (secret shown): a manifest that does not decode is quoted in the plan: serde's message
/// "invalid type: integer `48151623420815`, expected a string" prints an environment value (a PIN or
/// numeric token left unquoted in YAML) into the pull-request comment. The API server names only
/// the field and type. `src/plan/mod.rs` `decode_alone`/`decode_all` pass `e.to_string()` through.
#[tokio::test]
async fn an_undecodable_env_value_is_quoted() {
    let world = World::new(fast_sandboxes()).await;
    let head = format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: Sandbox\nmetadata: {{name: box, namespace: {}}}\n\
         spec: {{workspace: {}, image: blaxel/base-image:latest, envs: [{{name: DB_PIN, value: 48151623420815}}]}}\n",
        world.ns, world.workspace
    );
    for format in ["text", "markdown", "json"] {
        let r = plan(&world, &["-f", "-", "--format", format], &head).await;
        assert_eq!(r.code, 1, "{format}: refused\n{}", r.all());
        assert!(
            !r.all().contains("48151623420815"),
            "{format}:\n{}",
            r.all()
        );
    }
}

/// Was a defect (secret shown): a FAILED sandbox's own message is printed as the `RemoteFailed` note
/// as Blaxel wrote it; the operator scrubs the key from it and cuts it
/// (`src/reconcile/sandbox/mod.rs`: `error_map::outgoing_text`), `plan` does neither
/// (`src/reconcile/sandbox/dry_run.rs`, `None` arm).
#[tokio::test]
async fn a_failed_sandbox_message_is_not_scrubbed() {
    let world = World::new(fast_sandboxes()).await;
    owned_sandbox(&world, "box").await;
    let message = format!(
        "image pull failed: registry refused token {} {}",
        world.key,
        "x".repeat(20_000)
    );
    world
        .sim_control(
            &format!("workspaces/{}/sandboxes/box/fail", world.workspace),
            json!({ "message": message }),
        )
        .await;
    let head = format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: Sandbox\nmetadata: {{name: box, namespace: {}}}\n\
         spec: {{workspace: {}, image: blaxel/base-image:latest, memory: 2048}}\n",
        world.ns, world.workspace
    );
    let r = plan(&world, &["-f", "-", "--format", "markdown"], &head).await;
    assert!(r.stdout.contains("RemoteFailed"), "{}", r.all());
    assert!(
        !r.all().contains(&world.key),
        "the key is shown:\n{}",
        &r.stdout[..2000.min(r.stdout.len())]
    );
    assert!(
        r.stdout.len() < 10_000,
        "the message is not cut: {} bytes",
        r.stdout.len()
    );
}

/// Was a defect (missed write): an IntegrationConnection renamed (same `connectionName`, new object),
/// deletionPolicy Delete: the old object's cleanup deletes the connection and the new object
/// creates it again, but plan shows the delete and calls the new object unchanged: the create (and
/// the secret it sends) is missing. `src/reconcile/integration/dry_run.rs` `plan` ignores
/// `scene.removed` (the member and sandbox dry runs honour it; the preview's ignores its own identity too).
#[tokio::test]
async fn a_renamed_connection_misses_its_create() {
    let world = World::new(fast_sandboxes()).await;
    let remote = json!({"metadata": {"name": "openai"}, "spec": {"integration": "openai", "config": {}, "sandbox": false, "secret": {"apiKey": "sk-abc"}}});
    blaxel(
        &world,
        reqwest::Method::POST,
        "/integrations/connections",
        remote,
    )
    .await;
    let connection = |name: &str| {
        format!(
            "apiVersion: blaxel.ai/v1alpha1\nkind: IntegrationConnection\nmetadata: {{name: {name}, namespace: {}}}\n\
             spec: {{workspace: {}, integration: openai, connectionName: openai, secretRef: {{name: s}}, deletionPolicy: Delete}}\n",
            world.ns, world.workspace
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let base = file(&dir, "base.yaml", &connection("openai"));
    let r = plan(
        &world,
        &["-f", "-", "--base", &base, "--format", "json"],
        &connection("openai-v2"),
    )
    .await;
    let plan = r.json();
    assert!(has(&plan, "delete", "openai"), "{}", r.stdout);
    assert!(
        has(&plan, "create", "openai"),
        "deleted, then not created again:\n{}",
        r.stdout
    );
}

/// Was a defect (a deletion the operator would not make): a Workspace object renamed, the new one naming
/// the same workspace with `spec.workspaceName`, deletionPolicy Delete. The operator never deletes a
/// workspace another Workspace object names (`not_taken_over` in src/reconcile/workspace/mod.rs),
/// yet plan shows "delete Workspace ... the workspace and everything in it" and, in the same breath,
/// the new object unchanged. `plan_deleted` in src/reconcile/workspace/dry_run.rs skips
/// `m.kind == "Workspace"` when looking for objects that still name it.
#[tokio::test]
async fn a_renamed_workspace_object_plans_deleting_the_workspace() {
    let world = World::new(fast_sandboxes()).await;
    let (ns, ws) = (world.ns.as_str(), world.workspace.as_str());
    let dir = tempfile::tempdir().unwrap();
    let base = file(
        &dir,
        "base.yaml",
        &format!(
            "apiVersion: blaxel.ai/v1alpha1\nkind: Workspace\nmetadata: {{name: {ws}, namespace: {ns}}}\n\
             spec: {{deletionPolicy: Delete}}\n"
        ),
    );
    let head = format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: Workspace\nmetadata: {{name: main, namespace: {ns}}}\n\
         spec: {{workspaceName: {ws}, deletionPolicy: Delete}}\n"
    );
    let r = plan(
        &world,
        &["-f", "-", "--base", &base, "--format", "json"],
        &head,
    )
    .await;
    assert!(!has(&r.json(), "delete", ws), "{}", r.stdout);
}

/// Was a defect (a removal the operator would not make): `blaxel.ai/paused` counts only when it is exactly
/// "true" in plan (`paused` in src/plan/mod.rs), but the operator pauses for every value other than
/// "false" (`is_paused` in src/reconcile/mod.rs: "True", "yes", "1"...). A member deleted while
/// paused "True" is planned as removed; the operator keeps it (its cleanup waits for the pause).
#[tokio::test]
async fn paused_in_another_spelling_is_not_paused() {
    let world = World::new(fast_sandboxes()).await;
    member(&world, "alice@example.com", "member", true).await;
    let dir = tempfile::tempdir().unwrap();
    let paused = ", annotations: {blaxel.ai/paused: \"True\"}";
    let base = file(
        &dir,
        "base.yaml",
        &yaml_member(&world, "alice", "alice@example.com", paused),
    );
    let r = plan(
        &world,
        &["-f", "-", "--base", &base, "--format", "json"],
        "",
    )
    .await;
    let plan = r.json();
    assert!(!has(&plan, "remove", "alice@example.com"), "{}", r.stdout);
    assert_eq!(
        plan["workspaces"][0]["notes"][0]["reason"], "Paused",
        "{}",
        r.stdout
    );
}

/// Whether `cell` is one code span: opened and closed by a run of N backticks, with no run of
/// exactly N backticks inside (which would close it early and let the rest through as Markdown).
fn one_code_span(cell: &str) -> bool {
    let cell = cell.trim();
    let n = cell.chars().take_while(|c| *c == '`').count();
    let close = cell.chars().rev().take_while(|c| *c == '`').count();
    if n == 0 || close != n || cell.len() < 2 * n {
        return false;
    }
    let inner = &cell[n..cell.len() - n];
    let runs = inner.split(|c| c != '`').filter(|r| !r.is_empty());
    runs.into_iter().all(|r| r.len() != n)
}

/// Was a defect (Markdown injection): the Markdown form puts targets and objects between single backticks
/// and escapes only `|` and line breaks (`cell`/`row` in src/plan/render.rs). An e-mail the CRD
/// admits (every printable ASCII but upper case and space) such as
/// ``x`<details><summary>ok</summary>`@example.com`` closes the code span and puts raw HTML in the
/// pull-request comment (here a collapsed block that can hide what follows, e.g. another
/// workspace's removals). The fence must be longer than any backtick run inside (or backticks
/// refused).
#[tokio::test]
async fn markdown_target_escapes_its_code_span() {
    let world = World::new(fast_sandboxes()).await;
    let email = "x`<details><summary>ok</summary>`@example.com";
    let head = yaml_member(&world, "alice", email, "");
    let r = plan(&world, &["-f", "-", "--format", "markdown"], &head).await;
    assert_eq!(r.code, 2, "{}", r.all());
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("`invite`"))
        .unwrap_or_else(|| panic!("no invite row:\n{}", r.stdout));
    // | sign | action | kind | object | target | details |
    let cells: Vec<&str> = row.split(" | ").collect();
    assert!(
        one_code_span(cells[4]),
        "the target breaks out of its code span: {row}"
    );
}

/// Was a defect (hang): a 200 KB manifest of nested flow sequences (`[[[...]]]`) takes plan tens of
/// seconds (quadratic in the depth, inside the YAML parser, before serde_yaml's recursion limit
/// refuses it): 80 KB took 4.7 s, 200 KB over 20 s, a few MB hours. A pull request can stall the CI
/// job. Plan should refuse nesting past a bound before parsing (or bound the work).
#[tokio::test]
async fn deeply_nested_yaml_is_refused_quickly() {
    let world = World::new(fast_sandboxes()).await;
    let depth = 100_000;
    let head = format!(
        "apiVersion: blaxel.ai/v1alpha1\nkind: Sandbox\nmetadata: {{name: s}}\nspec: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let r = plan_run(&world, &["-f", "-"], &head, &[], Duration::from_secs(10)).await;
    let r = r.expect("plan still parsing after 10 s");
    assert_eq!(r.code, 1, "{}", r.all());
}

/// Guard (passes on main): a list that fails part way never stands for the whole one. The member
/// list answering 500 for an Authoritative workspace leaves the workspace not planned (exit 1), and
/// plan writes nothing.
#[tokio::test]
async fn a_failing_member_list_plans_nothing() {
    let world = World::new(fast_sandboxes()).await;
    member(&world, "alice@example.com", "member", true).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/_sim/faults/script", world.sim.root_url()))
        .json(&json!({"route": "GET /v0/users", "status": 500, "times": 50}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "script: {}", resp.status());
    let r = plan(
        &world,
        &["-f", "-", "--format", "json"],
        &yaml_authoritative(&world),
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(actions(&r.json()).is_empty(), "{}", r.stdout);
    let writes = world.sim.stats()["byRoute"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(route, v)| {
            !route.starts_with("GET ")
                && route.as_str() != "POST /v0/workspaces/availability"
                && v["total"].as_u64().unwrap_or(0) > 0
        })
        .map(|(route, _)| route.clone())
        .collect::<Vec<_>>();
    assert!(writes.is_empty(), "plan wrote: {writes:?}");
}

/// Was a defect (a removal the operator would not make): a WorkspaceMember deleted while paused stays
/// (its finalizer waits) and still counts as declared for an Authoritative workspace, so the operator
/// does not remove its person; plan showed the workspace removing them.
#[tokio::test]
async fn a_paused_deleted_member_still_counts_as_declared() {
    let world = World::new(fast_sandboxes()).await;
    member(&world, "alice@example.com", "member", true).await;
    let dir = tempfile::tempdir().unwrap();
    let paused = ", annotations: {blaxel.ai/paused: \"true\"}";
    let head = yaml_authoritative(&world);
    let base = file(
        &dir,
        "base.yaml",
        &format!(
            "{head}{}",
            yaml_member(&world, "alice", "alice@example.com", paused)
        ),
    );
    let r = plan(
        &world,
        &["-f", "-", "--base", &base, "--format", "json"],
        &head,
    )
    .await;
    let plan = r.json();
    assert!(!has(&plan, "remove", "alice@example.com"), "{}", r.stdout);
}
