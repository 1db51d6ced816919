//! The deployment artefacts (deploy/ manifests, the Helm chart) are valid and in step with the code.
//!
//! `scripts/check-deploy` does the heavy lifting (Helm lint and install with several value sets,
//! Kubernetes schema validation, security and RBAC invariants); it needs `python3` with `venv` and
//! reaches PyPI once to set up its cached venv. The tests here add what only the Rust side knows:
//! that every environment variable the manifests set is a flag of `blaxel-operator run` and parses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use blaxel_operator::cli::Cli;
use clap::{ArgAction, CommandFactory, Parser};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Variables the operator reads itself rather than through a flag.
const READ_DIRECTLY: &[&str] = &["BL_API_KEY", "POD_NAME", "POD_NAMESPACE", "RUST_LOG"];

/// The problems with `env` (name, literal value if any) as the operator's `run` configuration:
/// unknown variables, and values its flags refuse.
fn env_problems(source: &str, env: &[(String, Option<String>)]) -> Vec<String> {
    let cli = Cli::command();
    let run = cli.find_subcommand("run").expect("a `run` subcommand");
    let flags: HashMap<String, &clap::Arg> = run
        .get_arguments()
        .filter_map(|a| Some((a.get_env()?.to_str()?.to_owned(), a)))
        .collect();
    let mut problems = Vec::new();
    let mut argv = vec!["blaxel-operator".to_owned(), "run".to_owned()];
    for (name, value) in env {
        if READ_DIRECTLY.contains(&name.as_str()) {
            continue;
        }
        let Some(arg) = flags.get(name) else {
            problems.push(format!(
                "{source}: {name} is not a flag of `blaxel-operator run`"
            ));
            continue;
        };
        let (Some(long), Some(value)) = (arg.get_long(), value) else {
            continue; // from a Secret or the downward API: nothing literal to parse
        };
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            if value == "true" {
                argv.push(format!("--{long}"));
            }
        } else {
            argv.push(format!("--{long}={value}"));
        }
    }
    if let Err(e) = Cli::try_parse_from(&argv) {
        problems.push(format!("{source}: `{}` is refused: {e}", argv.join(" ")));
    }
    problems
}

/// deploy/ and the chart lint, render, match Kubernetes schemas, stay least-privilege and non-root.
#[test]
fn deploy_artefacts_validate() {
    let env_file = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new(Path::new(ROOT).join("scripts/check-deploy"))
        .current_dir(ROOT)
        .env("CHECK_DEPLOY_ENV_OUT", env_file.path())
        .output()
        .expect("run scripts/check-deploy");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/check-deploy failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );

    // The chart's environment, per value set, as the operator's flags see it.
    let rendered: HashMap<String, Vec<(String, Option<String>)>> =
        serde_json::from_str(&std::fs::read_to_string(env_file.path()).unwrap()).unwrap();
    assert!(
        !rendered.is_empty(),
        "check-deploy reported no rendered environment"
    );
    let problems: Vec<String> = rendered
        .iter()
        .flat_map(|(set, env)| env_problems(&format!("chart values '{set}'"), env))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every variable deploy/deployment.yaml sets is a flag of `blaxel-operator run` with a valid value.
#[test]
fn plain_manifest_env_is_operator_configuration() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("deploy/deployment.yaml")).unwrap();
    let deployment: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let env: Vec<(String, Option<String>)> = deployment["spec"]["template"]["spec"]["containers"]
        [0]["env"]
        .as_sequence()
        .expect("the container has env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert!(env.len() > 3);
    let problems = env_problems("deploy/deployment.yaml", &env);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A variable the operator does not know, or a value it refuses, is reported (the check can fail).
#[test]
fn env_check_catches_typos_and_bad_values() {
    let env = [
        ("BLAXEL_RESYNC_INTERVL".to_owned(), Some("10m".to_owned())),
        ("BLAXEL_LOG_FORMAT".to_owned(), Some("yaml".to_owned())),
    ];
    let problems = env_problems("test", &env);
    assert_eq!(problems.len(), 2, "{problems:?}");
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
