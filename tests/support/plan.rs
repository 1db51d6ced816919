//! Running `blaxel-operator plan` against a test world's simulator, and seeding its members.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::operator::World;

/// What a run of `plan` gave.
pub struct Run {
    /// The exit code (-1: killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON (`--format json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("plan's JSON: {e}\n{}\n{}", self.stdout, self.stderr))
    }

    /// Everything the run printed.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `blaxel-operator plan ARGS` against the world's simulator, `stdin` piped in, with `env` (the
/// world's key in `BL_API_KEY` unless `env` gives one); `None` when it has not finished after `limit`.
pub async fn plan_run(
    world: &World,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
    limit: Duration,
) -> Option<Run> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_blaxel-operator"));
    command
        .arg("plan")
        .args(args)
        .env_clear()
        .env("BL_API_URL", world.sim.base_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if env.is_empty() {
        command.env("BL_API_KEY", &world.key);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("plan started");
    let mut input = child.stdin.take().expect("stdin");
    // A plan that stops reading early must not block the test.
    let _ = input.write_all(stdin.as_bytes()).await;
    drop(input);
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .ok()?
        .expect("plan's output");
    Some(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// [`plan_run`] with `env`, within two minutes.
pub async fn plan_with(world: &World, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    plan_run(world, args, stdin, env, Duration::from_secs(120))
        .await
        .expect("plan finished within two minutes")
}

/// [`plan_run`] with the world's key, within two minutes.
pub async fn plan(world: &World, args: &[&str], stdin: &str) -> Run {
    plan_with(world, args, stdin, &[]).await
}

/// A person already in the world's workspace (or invited: `accepted` false).
pub async fn member(world: &World, email: &str, role: &str, accepted: bool) {
    world
        .sim_control(
            &format!("workspaces/{}/members", world.workspace),
            json!({"email": email, "role": role, "accepted": accepted}),
        )
        .await;
}
