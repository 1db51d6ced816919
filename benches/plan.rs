//! `blaxel-operator plan` at scale: wall time, peak memory and Blaxel requests for manifests of N
//! WorkspaceMembers and N Sandboxes in one workspace, half of each already as declared, against the
//! simulator over HTTP.
//!
//! Run: `cargo bench --bench plan` (release build). `BENCH_SCALES=100,1000,5000` picks N (default
//! `100,1000,5000`). Peak memory is read with `/usr/bin/time -f %M` where it exists. Without `--bench`
//! on the command line (as under `cargo test --all-targets`) it does nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_precision_loss,
    reason = "benchmark harness: it fails loudly and prints figures"
)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use blaxel_operator::sim::{self, SimConfig};
use serde_json::json;

/// Runs of each scale; the median is reported.
const RUNS: usize = 3;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("plan: skipped (run it with `cargo bench --bench plan`)");
        return;
    }
    let scales: Vec<usize> = std::env::var("BENCH_SCALES")
        .unwrap_or_else(|_| "100,1000,5000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!("| objects | wall (median of {RUNS}) | peak RSS | Blaxel requests | changes |");
    println!("|---|---|---|---|---|");
    for n in scales {
        runtime.block_on(scale(n));
    }
}

async fn scale(n: usize) {
    let handle = sim::spawn(SimConfig::default()).await.unwrap();
    let key = handle.api_key();
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::new();
    for i in 0..n {
        let email = format!("person{i}@example.com");
        if i % 2 == 0 {
            http.post(format!(
                "{}/_sim/workspaces/{}/members",
                handle.root_url(),
                key.workspace
            ))
            .json(&json!({"email": email, "role": "member", "accepted": true}))
            .send()
            .await
            .unwrap();
        }
        let _ = write!(
            yaml,
            "apiVersion: blaxel.ai/v1alpha1\nkind: WorkspaceMember\nmetadata: {{name: m{i}, namespace: bench}}\n\
             spec: {{workspace: {ws}, email: {email}, role: member}}\n---\n\
             apiVersion: blaxel.ai/v1alpha1\nkind: Sandbox\nmetadata: {{name: s{i}, namespace: bench}}\n\
             spec: {{workspace: {ws}, image: blaxel/base-image:latest, memory: 2048}}\n---\n",
            ws = key.workspace
        );
    }
    std::fs::write(dir.path().join("all.yaml"), &yaml).unwrap();
    let before = requests(&handle);
    let mut walls = Vec::new();
    let mut peak = None;
    let mut changes = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let (out, rss) = run_plan(dir.path(), &handle.base_url(), &key.key);
        walls.push(started.elapsed());
        peak = rss.or(peak);
        let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
        changes = plan["workspaces"][0]["changes"]
            .as_array()
            .map_or(0, Vec::len);
    }
    walls.sort();
    let per_run = (requests(&handle) - before) / RUNS as u64;
    println!(
        "| {} | {:.2?} | {} | {per_run} | {changes} |",
        2 * n,
        walls[RUNS / 2],
        peak.map_or_else(
            || "-".to_owned(),
            |kb| format!("{:.1} MiB", kb as f64 / 1024.0)
        )
    );
}

/// Requests the simulator has answered.
fn requests(handle: &sim::SimHandle) -> u64 {
    handle.stats()["total"].as_u64().unwrap_or(0)
}

/// One `plan` run: its JSON, and its peak RSS in KiB when `/usr/bin/time` can tell.
fn run_plan(dir: &Path, url: &str, key: &str) -> (Vec<u8>, Option<u64>) {
    let bin = env!("CARGO_BIN_EXE_blaxel-operator");
    let timed = Path::new("/usr/bin/time").exists();
    let mut command = if timed {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "%M", bin]);
        c
    } else {
        Command::new(bin)
    };
    let out = command
        .args(["plan", "-f"])
        .arg(dir)
        .args(["--format", "json"])
        .env_clear()
        .env("BL_API_URL", url)
        .env("BL_API_KEY", key)
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(2),
        "plan: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rss = timed
        .then(|| {
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()?
                .trim()
                .parse()
                .ok()
        })
        .flatten();
    (out.stdout, rss)
}
