//! Reading manifests: files, folders (every `.yaml`, `.yml` and `.json` under them, in name order),
//! multi-document YAML, `List` objects, and `-` for stdin (`kustomize build . | ... -f -`). Only the
//! objects of the operator's group are kept; the rest (Deployments, Secrets, ...) are not plan's.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::crd::GROUP;

/// Where an object was read: the file (or `-`) and the document's position in it, from 1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    /// The file, or `-` for stdin.
    pub file: String,
    /// The document in the file, from 1.
    pub document: usize,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (document {})", self.file, self.document)
    }
}

/// One object of the operator's group, as written.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`, else the `--namespace` given.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The whole object.
    pub value: Value,
    /// Where it was read.
    pub source: Source,
}

impl Manifest {
    /// `Kind namespace/name`, as the plan names objects.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Why manifests could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A document is not YAML, or not an object.
    #[error("{at}: {message}")]
    Syntax {
        /// Where.
        at: Source,
        /// What is wrong.
        message: String,
    },
}

/// Reads every path (`-`: stdin, read once) and returns the objects of the operator's group, in the
/// order read, their namespace defaulted to `namespace`.
///
/// # Errors
/// A path that cannot be read, or a document that is not YAML or lacks `kind` or `metadata.name`.
pub fn read(paths: &[PathBuf], namespace: &str) -> Result<Vec<Manifest>, ReadError> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| ReadError::Io {
                    path: "-".to_owned(),
                    source,
                })?;
            parse("-", &text, namespace, &mut out)?;
        } else {
            for file in files(path, &mut HashSet::new())? {
                let text = std::fs::read_to_string(&file).map_err(|source| ReadError::Io {
                    path: file.display().to_string(),
                    source,
                })?;
                parse(&file.display().to_string(), &text, namespace, &mut out)?;
            }
        }
    }
    Ok(out)
}

/// A file, or every manifest file under a folder, in name order; a folder reached twice (a symbolic
/// link back up the tree) is read once.
fn files(path: &Path, seen: &mut HashSet<PathBuf>) -> Result<Vec<PathBuf>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.display().to_string(),
        source,
    };
    if !std::fs::metadata(path).map_err(io)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !seen.insert(std::fs::canonicalize(path).map_err(io)?) {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            found.extend(files(&entry, seen)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            found.push(entry);
        }
    }
    Ok(found)
}

/// The deepest nesting of flow collections (`[`, `{`) a file may have: the YAML parser takes time
/// quadratic in it, so a hostile file of a few megabytes would stall a CI job for hours. Manifests
/// nest a few levels.
const MAX_FLOW_DEPTH: usize = 64;

/// The deepest nesting of `[` and `{` outside quoted scalars and comments, and the line it is on.
fn flow_depth(text: &str) -> (usize, usize) {
    let (mut depth, mut deepest, mut at, mut line) = (0usize, 0usize, 1, 1);
    let (mut single, mut double, mut comment, mut escaped) = (false, false, false, false);
    let mut previous = ' ';
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            comment = false;
        }
        if comment {
            previous = c;
            continue;
        }
        match c {
            _ if double && escaped => escaped = false,
            '\\' if double => escaped = true,
            '"' if !single => double = !double,
            '\'' if !double => single = !single,
            _ if single || double => {}
            '#' if previous.is_whitespace() => comment = true,
            '[' | '{' => {
                depth += 1;
                if depth > deepest {
                    (deepest, at) = (depth, line);
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = c;
    }
    (deepest, at)
}

/// Parses the documents of one file into `out`.
fn parse(
    file: &str,
    text: &str,
    namespace: &str,
    out: &mut Vec<Manifest>,
) -> Result<(), ReadError> {
    let (depth, line) = flow_depth(text);
    if depth > MAX_FLOW_DEPTH {
        return Err(ReadError::Syntax {
            at: Source {
                file: file.to_owned(),
                document: 1,
            },
            message: format!(
                "collections nested {depth} deep (line {line}); at most {MAX_FLOW_DEPTH} are read"
            ),
        });
    }
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let at = Source {
            file: file.to_owned(),
            document: index + 1,
        };
        let syntax = |message: String| ReadError::Syntax {
            at: at.clone(),
            message,
        };
        let value = Value::deserialize(document).map_err(|e| syntax(e.to_string()))?;
        match value {
            Value::Null => {}
            Value::Object(_) => keep(value, &at, namespace, out).map_err(syntax)?,
            _ => return Err(syntax("a manifest must be an object".to_owned())),
        }
    }
    Ok(())
}

/// Keeps `value` if it is of the operator's group; the items of a `List`.
fn keep(value: Value, at: &Source, namespace: &str, out: &mut Vec<Manifest>) -> Result<(), String> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if kind.ends_with("List") && value.get("items").is_some_and(Value::is_array) {
        if let Some(items) = value.get("items").and_then(Value::as_array) {
            for item in items {
                keep(item.clone(), at, namespace, out)?;
            }
        }
        return Ok(());
    }
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version.split('/').next() != Some(GROUP) {
        return Ok(());
    }
    if kind.is_empty() {
        return Err(format!("an object of {api_version} without a kind"));
    }
    let metadata = value.get("metadata");
    let Some(name) = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
    else {
        return Err(format!("a {kind} without metadata.name"));
    };
    let namespace = match metadata.and_then(|m| m.get("namespace")) {
        None | Some(Value::Null) => namespace,
        Some(Value::String(ns)) => ns,
        Some(_) => return Err(format!("a {kind} whose metadata.namespace is not a string")),
    }
    .to_owned();
    let mut value = value;
    if let Some(m) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("namespace".to_owned(), Value::String(namespace.clone()));
    }
    out.push(Manifest {
        kind,
        namespace,
        name,
        source: at.clone(),
        value,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use super::*;

    fn parsed(text: &str) -> Result<Vec<Manifest>, ReadError> {
        let mut out = Vec::new();
        parse("f.yaml", text, "default", &mut out).map(|()| out)
    }

    #[test]
    fn keeps_our_group_across_documents_and_lists() {
        let out = parsed(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n\
             apiVersion: blaxel.ai/v1alpha1\nkind: Sandbox\nmetadata: {name: s, namespace: team}\n---\n\
             ---\n\
             apiVersion: v1\nkind: List\nitems:\n- apiVersion: blaxel.ai/v1alpha1\n  kind: WorkspaceMember\n  metadata: {name: m}\n",
        )
        .unwrap();
        let names: Vec<_> = out.iter().map(Manifest::label).collect();
        assert_eq!(
            names,
            ["Sandbox team/s", "WorkspaceMember default/m"],
            "{out:?}"
        );
        assert_eq!(out[0].source.document, 2);
        assert_eq!(out[1].source.document, 4);
    }

    #[test]
    fn a_folder_linked_into_itself_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(
            sub.join("a.yaml"),
            "apiVersion: blaxel.ai/v1alpha1\nkind: Sandbox\nmetadata: {name: s}\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(dir.path(), sub.join("loop")).unwrap();
        let out = read(&[dir.path().to_path_buf()], "default").unwrap();
        assert_eq!(out.len(), 1, "{out:?}");
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_parsing() {
        let deep = format!("a: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let err = parsed(&deep).unwrap_err();
        assert!(err.to_string().contains("nested 100000 deep"), "{err}");
        assert_eq!(
            flow_depth("a: '[[[' # [[[\nb: \"{{\\\"\"\nc: [[1]]\n"),
            (2, 3)
        );
    }

    #[test]
    fn bad_documents_are_named() {
        let err =
            parsed("apiVersion: blaxel.ai/v1alpha1\nkind: Sandbox\nmetadata: {}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yaml (document 1): a Sandbox without metadata.name"
        );
        let err = parsed("a: 1\n---\n- 1\n").unwrap_err();
        assert!(err.to_string().starts_with("f.yaml (document 2)"), "{err}");
        let err = parsed("a: [\n").unwrap_err();
        assert!(err.to_string().starts_with("f.yaml (document 1)"), "{err}");
    }
}
