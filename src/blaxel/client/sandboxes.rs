//! Sandboxes: `/sandboxes`, and their power (start/stop routes or `spec.enabled`, detected once per
//! workspace, see [`crate::blaxel::power`]).

use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value;

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
            return Ok(PowerControl::Enabled);
        }
        // While the mode is unknown, one caller per workspace probes; the others wait for its verdict.
        let _detecting = match power.get(workspace) {
            None => Some(power.detection_guard(workspace).await),
            Some(_) => None,
        };
        if power.get(workspace) == Some(PowerControl::Enabled) {
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
                // with a deletion can never switch a 2025 workspace to `spec.enabled` for good.
                match self.get_raw_sandbox(scope, name).await {
                    Ok(_) => {}
                    Err(ApiError::NotFound { .. }) => return Err(ApiError::NotFound { message }),
                    Err(error) => return Err(error),
                }
                if power.set(workspace, PowerControl::Enabled) {
                    tracing::info!(
                        workspace,
                        "sandbox start/stop routes are gone; using spec.enabled for power control"
                    );
                }
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

    /// `GET /sandboxes/{name}` as raw JSON (whether it exists, whatever its shape).
    async fn get_raw_sandbox(&self, scope: &Scope, name: &str) -> Result<Value, ApiError> {
        let segments = ["sandboxes", name];
        let call = Call::new(Method::GET, "/sandboxes/{name}", &segments);
        self.fetch(scope, &call, "sandbox").await
    }
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
