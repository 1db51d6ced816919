//! The documentation says what the code does: the README's Configuration table against the `run`
//! flags, the install paths against the manifests and the chart, and every relative link.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::path::Path;

use blaxel_operator::cli::Cli;
use clap::CommandFactory;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text of the README section under `heading` (up to the next heading of the same or a higher level).
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading:?}"));
    let level = heading.chars().take_while(|c| *c == '#').count();
    let body = &text[start + heading.len() + 2..];
    // The first heading of the same or a higher level outside a code block (shell comments in a
    // ```sh block start with '#' too).
    let mut offset = 0;
    let mut in_code = false;
    let mut end = body.len();
    for line in body.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !in_code && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            end = offset;
            break;
        }
        offset += line.len() + 1;
    }
    &body[..end]
}

/// Rows of a Markdown table, as trimmed cells (header and separator included).
fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The problems of the Configuration table against `run`'s flags: flags missing (with their env
/// variable), and single-flag rows whose default is not clap's.
fn configuration_problems(readme: &str) -> Vec<String> {
    let rows = table_rows(section(readme, "## Configuration"));
    let cli = Cli::command();
    let run = cli.find_subcommand("run").unwrap();
    let mut problems = Vec::new();
    for arg in run.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let flag = format!("`--{long}`");
        let Some(row) = rows.iter().find(|r| r[0].split(", ").any(|f| f == flag)) else {
            problems.push(format!("{flag} is not in the Configuration table"));
            continue;
        };
        if let Some(env) = arg.get_env() {
            let env = format!("`{}`", env.to_string_lossy());
            if !row[1].split(", ").any(|e| e == env) {
                problems.push(format!("{flag}: env {env} not in its row {row:?}"));
            }
        }
        let defaults = arg.get_default_values();
        let single = !row[0].contains(", ");
        if single && let [default] = defaults {
            let default = default.to_string_lossy();
            if !default.is_empty() && !row[2].starts_with(&format!("`{default}`")) {
                problems.push(format!(
                    "{flag}: the table says default {}, the code `{default}`",
                    row[2]
                ));
            }
        }
    }
    problems
}

/// Every `run` flag is in the README's Configuration table with its variable and its default.
#[test]
fn configuration_table_matches_the_flags() {
    let problems = configuration_problems(&read("README.md"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The Configuration check can fail: a row dropped or a default changed is reported.
#[test]
fn configuration_check_catches_missing_flags_and_wrong_defaults() {
    let readme = read("README.md")
        .replace("| `--instance` |", "| `--not-a-flag` |")
        .replace(
            "| `--resync-interval` | `BLAXEL_RESYNC_INTERVAL` | `10m`",
            "| `--resync-interval` | `BLAXEL_RESYNC_INTERVAL` | `5m`",
        );
    let problems = configuration_problems(&readme);
    assert!(
        problems.iter().any(|p| p.contains("--instance")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("--resync-interval")),
        "{problems:?}"
    );
}

/// RUST_LOG, which the operator reads directly, is documented in the table and the logs section.
#[test]
fn rust_log_is_documented() {
    let readme = read("README.md");
    assert!(section(&readme, "## Configuration").contains("`RUST_LOG`"));
    assert!(section(&readme, "## Metrics, health, logs and traces").contains("`RUST_LOG`"));
}

/// The kubectl install path sets the namespaces allowed to use the default key: without them the key
/// is used nowhere (the flag's default is none).
#[test]
fn kubectl_install_sets_default_credentials_namespaces() {
    let readme = read("README.md");
    let kubectl = section(
        &readme,
        "### With kubectl (plain manifests, kustomize-ready)",
    );
    assert!(
        kubectl.contains("BLAXEL_DEFAULT_CREDENTIALS_NAMESPACES="),
        "{kubectl}"
    );
    let deployment = read("deploy/deployment.yaml");
    assert!(deployment.contains("BLAXEL_DEFAULT_CREDENTIALS_NAMESPACES"));
}

/// The README's Helm table gives the chart's own defaults for logFormat and the image.
#[test]
fn helm_table_matches_chart_defaults() {
    let values: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/helm/blaxel-operator/values.yaml")).unwrap();
    let readme = read("README.md");
    let rows = table_rows(section(&readme, "### With Helm"));
    let row = |value: &str| {
        rows.iter()
            .find(|r| r[0].starts_with(&format!("`{value}`")))
            .unwrap_or_else(|| panic!("no row for {value}"))
            .clone()
    };
    let log_format = values["logFormat"].as_str().unwrap();
    assert!(
        row("logFormat")[1].starts_with(&format!("`{log_format}`")),
        "{:?}",
        row("logFormat")
    );
    let repository = values["image"]["repository"].as_str().unwrap();
    assert!(
        row("image.repository")[1].starts_with(&format!("`{repository}`")),
        "{:?}",
        row("image.repository")
    );
}

/// Every relative link in the Markdown documentation points at a file that exists.
#[test]
fn relative_links_resolve() {
    let docs = [
        "README.md",
        "CHANGELOG.md",
        "docs/simulator.md",
        "docs/kube-local.md",
        "docs/benchmarks.md",
        "deploy/helm/blaxel-operator/README.md",
        "tests/kube-local/README.md",
    ];
    let mut broken = Vec::new();
    for doc in docs {
        let text = read(doc);
        let dir = Path::new(ROOT).join(doc).parent().unwrap().to_path_buf();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let target = &rest[..rest.find(')').unwrap_or(rest.len())];
            let path = target.split('#').next().unwrap_or_default();
            if path.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            if !dir.join(path).exists() {
                broken.push(format!("{doc}: {target}"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:?}");
}
