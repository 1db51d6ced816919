//! The deployment artefacts (deploy/ manifests, the Helm chart) are valid and in step with the code.
//!
//! `scripts/check-deploy` does the heavy lifting (Helm lint and install with several value sets,
//! Kubernetes schema validation, security and RBAC invariants); it needs `python3` with `venv` and
//! reaches PyPI once to set up its cached venv.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// deploy/ and the chart lint, render, match Kubernetes schemas, stay least-privilege and non-root.
#[test]
fn deploy_artefacts_validate() {
    let output = Command::new(Path::new(ROOT).join("scripts/check-deploy"))
        .current_dir(ROOT)
        .output()
        .expect("run scripts/check-deploy");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/check-deploy failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
}

/// The chart's crds/ copy (Helm installs it on first install) equals the generated crds/blaxel.ai.yaml.
#[test]
fn chart_crds_match_generated_crds() {
    let generated = std::fs::read_to_string(Path::new(ROOT).join("crds/blaxel.ai.yaml")).unwrap();
    let chart = std::fs::read_to_string(
        Path::new(ROOT).join("deploy/helm/blaxel-operator/crds/blaxel.ai.yaml"),
    )
    .unwrap();
    assert!(
        generated == chart,
        "deploy/helm/blaxel-operator/crds/blaxel.ai.yaml is stale: \
         cp crds/blaxel.ai.yaml deploy/helm/blaxel-operator/crds/blaxel.ai.yaml"
    );
}
