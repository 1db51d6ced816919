//! A real Kubernetes API server on loopback for tests, benchmarks and the demo.
//!
//! This module drives `scripts/kube-local` (see that script for what is built and how): `install` builds or
//! reuses a cached apiextensions-apiserver + core types + etcd, `up` starts them on random loopback ports and
//! writes a kubeconfig, `down` stops them. [`LocalApiServer::start`] runs `install` then
//! `up --owner-pid <this process>`, so the servers die with the process that started them even if it is
//! killed; [`LocalApiServer::stop`] (or dropping it) runs `down`.
//!
//! It sits beside the operator, not inside it: nothing in the reconcile pipeline depends on it.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Environment variable that overrides where `scripts/kube-local` is found.
pub const SCRIPT_ENV: &str = "BLAXEL_KUBE_LOCAL_SCRIPT";

/// How many trailing stderr lines of a failed script run are kept in [`Error::ScriptFailed`].
const STDERR_TAIL_LINES: usize = 30;

/// Errors from starting, using or stopping the local API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The script does not exist or is not a file.
    #[error("kube-local script not found at {path} (set {SCRIPT_ENV} to override)")]
    ScriptNotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The script could not be started at all.
    #[error("could not run {command}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The underlying IO error.
        #[source]
        source: std::io::Error,
    },
    /// The script ran and failed.
    #[error("{command} failed ({status}):\n{stderr_tail}")]
    ScriptFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The last lines it wrote to stderr.
        stderr_tail: String,
    },
    /// `up` succeeded but did not print `KUBECONFIG=<path>`.
    #[error("{command} printed no KUBECONFIG=<path> line; stdout was: {stdout:?}")]
    NoKubeconfig {
        /// The command line.
        command: String,
        /// What it printed on stdout.
        stdout: String,
    },
    /// The kubeconfig could not be read or turned into a client configuration.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: KubeconfigError,
    },
    /// The client could not be built from the configuration.
    #[error("building a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// Where `install` and `up` progress lines go.
#[derive(Clone, Default)]
pub enum Progress {
    /// Copy each line to this process's stderr (not captured by the test harness).
    #[default]
    Stderr,
    /// Discard progress (errors still carry the last lines).
    Quiet,
    /// Hand each line to a callback.
    Callback(Arc<dyn Fn(&str) + Send + Sync>),
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stderr => f.write_str("Stderr"),
            Self::Quiet => f.write_str("Quiet"),
            Self::Callback(_) => f.write_str("Callback(..)"),
        }
    }
}

impl Progress {
    fn emit(&self, line: &str) {
        match self {
            // Written to the stderr handle rather than with eprintln!, which the test harness captures:
            // a cold build takes minutes and whoever runs `cargo test` should see that it is working.
            Self::Stderr => {
                let mut err = std::io::stderr().lock();
                // Progress is best effort; a closed stderr must not fail the start.
                let _ = writeln!(err, "{line}");
            }
            Self::Quiet => {}
            Self::Callback(cb) => cb(line),
        }
    }
}

/// Options for [`LocalApiServer::start`].
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// State directory for `up` (kubeconfig, certificates, etcd data, logs). Default: a fresh temp dir.
    pub dir: Option<PathBuf>,
    /// Process whose exit stops the servers. Default: this process.
    pub owner_pid: Option<u32>,
    /// The script to run. Default: [`script_path`].
    pub script: Option<PathBuf>,
    /// Where progress lines go.
    pub progress: Progress,
}

/// A running local API server started by [`LocalApiServer::start`]; stopped by [`LocalApiServer::stop`] or
/// on drop.
#[derive(Debug)]
pub struct LocalApiServer {
    kubeconfig: PathBuf,
    dir: PathBuf,
    script: PathBuf,
    running: bool,
}

/// The `scripts/kube-local` of this source tree, or the path in `BLAXEL_KUBE_LOCAL_SCRIPT`.
pub fn script_path() -> PathBuf {
    script_path_from(std::env::var_os(SCRIPT_ENV))
}

/// [`script_path`] for a given value of the override variable.
fn script_path_from(value: Option<std::ffi::OsString>) -> PathBuf {
    match value {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join("kube-local"),
    }
}

impl LocalApiServer {
    /// Builds or reuses the server (`install`; minutes the first time, seconds after), starts it (`up`) and
    /// returns once it is ready and its kubeconfig is written.
    pub async fn start(options: StartOptions) -> Result<Self, Error> {
        let script = options.script.clone().unwrap_or_else(script_path);
        if !script.is_file() {
            return Err(Error::ScriptNotFound { path: script });
        }
        run_script(&script, &["install".to_owned()], &options.progress).await?;

        let owner = options.owner_pid.unwrap_or_else(std::process::id);
        let mut args = vec!["up".to_owned(), "--owner-pid".to_owned(), owner.to_string()];
        if let Some(dir) = &options.dir {
            args.push("--dir".to_owned());
            args.push(dir.display().to_string());
        }
        let stdout = run_script(&script, &args, &options.progress).await?;
        let kubeconfig = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("KUBECONFIG="))
            .map(PathBuf::from)
            .ok_or_else(|| Error::NoKubeconfig {
                command: command_line(&script, &args),
                stdout: stdout.clone(),
            })?;
        let dir = kubeconfig
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Ok(Self {
            kubeconfig,
            dir,
            script,
            running: true,
        })
    }

    /// The kubeconfig that trusts this server's CA.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The state directory of this instance.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new client for this server. Each call builds its own (clients are bound to the Tokio runtime they
    /// were created on).
    pub async fn client(&self) -> Result<kube::Client, Error> {
        client_from_kubeconfig(&self.kubeconfig).await
    }

    /// Stops the servers and removes their state (`down`). Blocks for up to a few seconds; idempotent.
    pub fn stop(&mut self) -> Result<(), Error> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let args = [
            "down".to_owned(),
            "--dir".to_owned(),
            self.dir.display().to_string(),
        ];
        let command = command_line(&self.script, &args);
        let out = std::process::Command::new(&self.script)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                command: command.clone(),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::ScriptFailed {
                command,
                status: out.status.to_string(),
                stderr_tail: tail(&String::from_utf8_lossy(&out.stderr)),
            })
        }
    }
}

impl Drop for LocalApiServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "stopping the local API server failed");
        }
    }
}

/// A client for the cluster a kubeconfig file describes (its current context).
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, Error> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
    crate::kube_client::client(config).map_err(Error::Client)
}

fn command_line(script: &Path, args: &[String]) -> String {
    format!("{} {}", script.display(), args.join(" "))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n")
}

/// Runs the script, streaming its stderr (progress) line by line; returns its stdout.
async fn run_script(script: &Path, args: &[String], progress: &Progress) -> Result<String, Error> {
    let command = command_line(script, args);
    let mut child = Command::new(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let read_stdout = async {
        let mut buf = String::new();
        if let Some(mut out) = stdout {
            // A read error leaves what was read; the exit status decides success.
            let _ = out.read_to_string(&mut buf).await;
        }
        buf
    };
    let read_stderr = async {
        let mut kept: Vec<String> = Vec::new();
        if let Some(err) = stderr {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                progress.emit(&line);
                if kept.len() == STDERR_TAIL_LINES {
                    kept.remove(0);
                }
                kept.push(line);
            }
        }
        kept.join("\n")
    };
    let (out, err) = tokio::join!(read_stdout, read_stderr);
    let status = child.wait().await.map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    if status.success() {
        for line in out.lines() {
            progress.emit(&format!("kube-local: {line}"));
        }
        Ok(out)
    } else {
        Err(Error::ScriptFailed {
            command,
            status: status.to_string(),
            stderr_tail: err,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script is found relative to the crate, and the override variable wins.
    #[test]
    fn script_path_defaults_to_the_crate_script() {
        for unset in [None, Some(std::ffi::OsString::new())] {
            let p = script_path_from(unset);
            assert!(p.ends_with("scripts/kube-local"), "{}", p.display());
            assert!(p.is_file());
        }
        let custom = script_path_from(Some("/opt/kube-local".into()));
        assert_eq!(custom, PathBuf::from("/opt/kube-local"));
    }

    /// Error output keeps only the last lines, so a failing cold build stays readable.
    #[test]
    fn tail_keeps_the_last_lines() {
        use std::fmt::Write as _;
        let text: String = (0..100).fold(String::new(), |mut text, i| {
            let _ = writeln!(text, "line {i}");
            text
        });
        let t = tail(&text);
        assert_eq!(t.lines().count(), STDERR_TAIL_LINES);
        assert!(t.ends_with("line 99"));
    }

    /// A missing script is a typed error, not a panic or a spawn failure.
    #[tokio::test]
    async fn missing_script_is_reported() {
        let err = LocalApiServer::start(StartOptions {
            script: Some(PathBuf::from("/nonexistent/kube-local")),
            ..StartOptions::default()
        })
        .await;
        assert!(matches!(err, Err(Error::ScriptNotFound { .. })), "{err:?}");
    }
}
