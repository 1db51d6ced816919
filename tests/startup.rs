//! The binary itself: start-up against a cluster without the CRDs (a clear message, a non-zero exit), and
//! commands whose stdout is closed early (`crds | head`), which must not panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::process::Command;

use blaxel_operator::kube_local::{LocalApiServer, Progress, StartOptions};

/// `run` on a cluster that does not serve the CRDs exits with an error that says how to install them.
#[tokio::test]
async fn run_without_crds_says_how_to_install_them() {
    // A server of its own: the shared one has the CRDs installed by other tests.
    let server = LocalApiServer::start(StartOptions {
        progress: Progress::Quiet,
        ..StartOptions::default()
    })
    .await
    .expect("local API server");
    let output = Command::new(env!("CARGO_BIN_EXE_blaxel-operator"))
        .args(["run", "--api-url", "http://127.0.0.1:9/v0"])
        .env("KUBECONFIG", server.kubeconfig_path())
        .env_remove("BL_API_KEY")
        .output()
        .expect("running the operator");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must fail without CRDs: {stderr}");
    assert!(stderr.contains("CRD is not served"), "{stderr}");
    assert!(stderr.contains("kubectl apply -f crds/"), "{stderr}");
}

/// `crds | head`: the reader closes the pipe early; the command ends quietly, without a panic.
#[test]
fn crds_into_a_closed_pipe_ends_quietly() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_blaxel-operator"))
        .arg("crds")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the operator");
    // Closed before the child writes: it takes milliseconds to start and render the YAML.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("waiting for the operator");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{stderr}");
}

/// `simulate` with its stdout closed still serves: the banner is dropped, the simulator keeps running.
/// Its log lines, going into a pipe, carry no colour codes.
#[test]
fn simulate_with_stdout_closed_keeps_serving() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let mut child = Command::new(env!("CARGO_BIN_EXE_blaxel-operator"))
        .args(["simulate", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the simulator");
    drop(child.stdout.take());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let listening = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains("simulator listening") => {
                assert!(
                    !line.contains('\x1b'),
                    "no colour codes into a pipe: {line:?}"
                );
                break true;
            }
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(listening && running, "{seen:#?}");
}
