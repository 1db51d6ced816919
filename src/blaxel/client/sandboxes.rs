//! Sandboxes: `/sandboxes`, and their power (start/stop routes or `spec.enabled`, detected once per
//! workspace, see [`crate::blaxel::power`]).

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Call, HttpClient, seal, seal_with};
use crate::blaxel::api::{PowerControl, SandboxesApi, Scope};
use crate::blaxel::error::ApiError;
use crate::blaxel::model::{Listing, Sandbox};

impl HttpClient {
    /// Starts or stops a sandbox (see [`BlaxelApi::set_sandbox_power`]), errors not yet sealed.
    async fn power(
        &self,
        scope: &Scope,
        current: &Sandbox,
        running: bool,
    ) -> Result<PowerControl, ApiError> {
        let power = &self.inner.power;
        let workspace = scope.workspace.as_str();
        let name = current.metadata.name.as_str();
        if power.get(workspace) == Some(PowerControl::Enabled) {
            self.set_enabled(scope, name, None, running).await?;
            return Ok(PowerControl::Enabled);
        }
        // While the mode is unknown, one caller per workspace probes; the others wait for its verdict.
        let _detecting = match power.get(workspace) {
            None => Some(power.detection_guard(workspace).await),
            Some(_) => None,
        };
        if power.get(workspace) == Some(PowerControl::Enabled) {
            self.set_enabled(scope, name, None, running).await?;
            return Ok(PowerControl::Enabled);
        }
        match self.start_stop(scope, name, running).await {
            Ok(()) => {
                power.set(workspace, PowerControl::StartStop);
                Ok(PowerControl::StartStop)
            }
            Err(ApiError::NotFound { message }) => {
                // 404 means "no such sandbox" or "no such route" (today's API). The caller just observed
                // the sandbox, but it may have been deleted since: one GET tells the two apart, so a race
                // with a deletion can never switch a 2025 workspace to `spec.enabled` for good. The GET
                // is not wasted: it is the read of the read-modify-write below.
                let fresh = match self.get_raw_sandbox(scope, name).await {
                    Ok(fresh) => fresh,
                    Err(ApiError::NotFound { .. }) => return Err(ApiError::NotFound { message }),
                    Err(error) => return Err(error),
                };
                if power.set(workspace, PowerControl::Enabled) {
                    tracing::info!(
                        workspace,
                        "sandbox start/stop routes are gone; using spec.enabled for power control"
                    );
                }
                self.set_enabled(scope, name, Some(fresh), running).await?;
                Ok(PowerControl::Enabled)
            }
            Err(error) => Err(error),
        }
    }

    /// `PUT /sandboxes/{name}/start|stop`; "already in that state" (409) counts as success.
    async fn start_stop(&self, scope: &Scope, name: &str, running: bool) -> Result<(), ApiError> {
        let (action, route) = if running {
            ("start", "/sandboxes/{name}/start")
        } else {
            ("stop", "/sandboxes/{name}/stop")
        };
        let segments = ["sandboxes", name, action];
        match self
            .execute(scope, &Call::new(Method::PUT, route, &segments))
            .await
        {
            Ok(_) | Err(ApiError::Conflict { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// `GET /sandboxes/{name}` as raw JSON, every field kept.
    async fn get_raw_sandbox(&self, scope: &Scope, name: &str) -> Result<Value, ApiError> {
        let segments = ["sandboxes", name];
        let call = Call::new(Method::GET, "/sandboxes/{name}", &segments);
        self.fetch(scope, &call, "sandbox").await
    }

    /// Today's power switch: `PUT /sandboxes/{name}` with `spec.enabled` set, by read-modify-write of the
    /// sandbox as raw JSON (`fresh`, else a new GET). Raw rather than typed: the typed models keep unknown
    /// fields of most objects, but not of every nested one (env `secret` flags, port extras), and a PUT
    /// must not drop what it does not mean to change. One extra GET per power change is cheap.
    async fn set_enabled(
        &self,
        scope: &Scope,
        name: &str,
        fresh: Option<Value>,
        running: bool,
    ) -> Result<(), ApiError> {
        let mut sandbox = match fresh {
            Some(sandbox) => sandbox,
            None => self.get_raw_sandbox(scope, name).await?,
        };
        with_enabled(&mut sandbox, running)?;
        let segments = ["sandboxes", name];
        let call = Call::new(Method::PUT, "/sandboxes/{name}", &segments).json(&sandbox)?;
        self.execute(scope, &call).await.map(|_| ())
    }
}

/// Sets `spec.enabled` in a raw sandbox, leaving everything else as it is.
fn with_enabled(sandbox: &mut Value, running: bool) -> Result<(), ApiError> {
    let not_an_object = || ApiError::Decode {
        message: "sandbox: expected a JSON object with an object `spec`".to_owned(),
    };
    let spec = sandbox
        .as_object_mut()
        .ok_or_else(not_an_object)?
        .entry("spec")
        .or_insert_with(|| json!({}));
    spec.as_object_mut()
        .ok_or_else(not_an_object)?
        .insert("enabled".to_owned(), Value::Bool(running));
    Ok(())
}

#[async_trait]
impl SandboxesApi for HttpClient {
    async fn list_sandboxes(&self, scope: &Scope) -> Result<Listing<Sandbox>, ApiError> {
        let listing = self
            .list_all(
                scope,
                "/sandboxes",
                &["sandboxes"],
                true,
                "list of sandboxes",
            )
            .await;
        seal(scope, listing)
    }

    async fn get_sandbox(&self, scope: &Scope, name: &str) -> Result<Sandbox, ApiError> {
        let segments = ["sandboxes", name];
        let call = Call::new(Method::GET, "/sandboxes/{name}", &segments);
        seal(scope, self.fetch(scope, &call, "sandbox").await)
    }

    async fn create_sandbox(&self, scope: &Scope, sandbox: &Sandbox) -> Result<Sandbox, ApiError> {
        let create = async {
            let call = Call::new(Method::POST, "/sandboxes", &["sandboxes"]).json(sandbox)?;
            self.fetch(scope, &call, "sandbox").await
        };
        seal_with(scope, &sandbox.secret_values(), create.await)
    }

    async fn update_sandbox(&self, scope: &Scope, sandbox: &Sandbox) -> Result<Sandbox, ApiError> {
        let update = async {
            let segments = ["sandboxes", sandbox.metadata.name.as_str()];
            let call = Call::new(Method::PUT, "/sandboxes/{name}", &segments).json(sandbox)?;
            self.fetch(scope, &call, "sandbox").await
        };
        seal_with(scope, &sandbox.secret_values(), update.await)
    }

    async fn delete_sandbox(&self, scope: &Scope, name: &str) -> Result<(), ApiError> {
        let segments = ["sandboxes", name];
        let call = Call::new(Method::DELETE, "/sandboxes/{name}", &segments);
        seal(scope, self.execute(scope, &call).await.map(|_| ()))
    }

    async fn set_sandbox_power(
        &self,
        scope: &Scope,
        current: &Sandbox,
        running: bool,
    ) -> Result<PowerControl, ApiError> {
        seal_with(
            scope,
            &current.secret_values(),
            self.power(scope, current, running).await,
        )
    }

    fn power_control(&self, workspace: &str) -> Option<PowerControl> {
        self.inner.power.get(workspace)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// Setting `spec.enabled` keeps every other field, including ones the typed models do not name.
    #[test]
    fn with_enabled_keeps_everything_else() {
        let mut raw = json!({
            "metadata": {"name": "a", "x": 1},
            "spec": {"enabled": true, "runtime": {"envs": [{"name": "K", "value": "v", "secret": true}]}},
            "state": "RUNNING"
        });
        with_enabled(&mut raw, false).unwrap();
        assert_eq!(raw["spec"]["enabled"], false);
        assert_eq!(raw["spec"]["runtime"]["envs"][0]["secret"], true);
        assert_eq!(raw["metadata"]["x"], 1);
        let mut bare = json!({"metadata": {"name": "a"}});
        with_enabled(&mut bare, true).unwrap();
        assert_eq!(bare["spec"], json!({"enabled": true}));
        assert_eq!(
            with_enabled(&mut json!([]), true).unwrap_err().category(),
            "Decode"
        );
        assert_eq!(
            with_enabled(&mut json!({"spec": 1}), true)
                .unwrap_err()
                .category(),
            "Decode"
        );
    }
}
