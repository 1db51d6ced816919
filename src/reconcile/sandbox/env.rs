//! Environment variables taken from Secrets (`spec.envs[].valueFrom.secretKeyRef`): read at each pass
//! from the Sandbox's namespace, sent to Blaxel, and recorded only as a keyed digest
//! (`status.envDigest`), so a changed Secret is sent again and the values appear nowhere else.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use crate::blaxel::SecretValue;
use crate::crd::Sandbox;
use crate::reconcile::cached::Cached;
use crate::reconcile::conditions::Why;
use crate::reconcile::integration::{SECRET_NOT_FOUND, usable_value};
use crate::reconcile::{Context, Error};

/// The Secret-sourced values of a pass, by variable name, and their digest (`None` when there are
/// none).
#[derive(Debug, Default)]
pub struct EnvSecrets {
    /// The values, by variable name.
    pub values: BTreeMap<String, SecretValue>,
    /// Their keyed digest.
    pub digest: Option<String>,
}

/// Reads every Secret-sourced variable: `Ok(Err(why))` when a Secret or key is missing, not text, or
/// empty (nothing is sent then: a sandbox would start without its secret).
///
/// # Errors
/// The Kubernetes API failed, or the digest key could not be had.
pub async fn read(obj: &Cached<Sandbox>, ctx: &Context) -> Result<Result<EnvSecrets, Why>, Error> {
    let refs: Vec<_> = obj
        .spec
        .envs
        .iter()
        .flatten()
        .filter_map(|e| e.value_from.as_ref().map(|f| (&e.name, &f.secret_key_ref)))
        .collect();
    if refs.is_empty() {
        return Ok(Ok(EnvSecrets::default()));
    }
    let api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let mut secrets: BTreeMap<&str, Option<Secret>> = BTreeMap::new();
    let mut values = BTreeMap::new();
    for (variable, r) in refs {
        if !secrets.contains_key(r.name.as_str()) {
            secrets.insert(&r.name, api.get_opt(&r.name).await?);
        }
        let missing = |what: String| {
            Ok(Err(Why::new(
                SECRET_NOT_FOUND,
                format!(
                    "env {variable}: {what}; the sandbox is not created or changed until it is there"
                ),
            )))
        };
        let Some(secret) = secrets.get(r.name.as_str()).and_then(Option::as_ref) else {
            return missing(format!("Secret {} does not exist", r.name));
        };
        let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(&r.key)) else {
            return missing(format!("Secret {} has no key {}", r.name, r.key));
        };
        match usable_value(&bytes.0) {
            Ok(value) => values.insert(variable.clone(), value),
            Err(why) => return missing(format!("key {} of Secret {} {why}", r.key, r.name)),
        };
    }
    let digest = ctx.digests.digest(&values).await?;
    Ok(Ok(EnvSecrets {
        values,
        digest: Some(digest),
    }))
}
