//! The Secret a private preview's token is kept in: written only when absent or this object's own (an
//! owner reference to it), never another's; deleted by the operator on cleanup or when the preview turns
//! public. The token value goes from the create answer into the Secret's data and nowhere else.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};

use super::SECRET_NOT_OWNED;
use crate::blaxel::ApiKey;
use crate::crd::SandboxPreview;
use crate::reconcile::cached::Cached;
use crate::reconcile::conditions::Why;
use crate::reconcile::{Context, Error, FIELD_MANAGER};

/// The header a client sends a private preview's token in (the Secret's `header` key says so too).
pub const TOKEN_HEADER: &str = "X-Blaxel-Preview-Token";
/// Annotation on the Secret: the name of the token it holds.
const TOKEN_NAME_ANNOTATION: &str = "blaxel.ai/preview-token";

/// The Secret of one SandboxPreview.
pub struct TokenSecret<'a> {
    obj: &'a Cached<SandboxPreview>,
    api: Api<Secret>,
    name: String,
}

/// The Secret as read: absent, this object's, or another's.
pub enum Held {
    Absent,
    Ours(Box<Secret>),
    NotOurs,
}

impl Held {
    /// The token an own, whole Secret holds (the `token` key present): its name and what the Secret
    /// says of it, to be checked against Blaxel's record.
    pub fn token(&self) -> Option<SecretToken<'_>> {
        let Self::Ours(secret) = self else {
            return None;
        };
        let data = secret.data.as_ref()?;
        let value = data.get("token").filter(|t| !t.0.is_empty())?;
        Some(SecretToken {
            name: secret.annotations().get(TOKEN_NAME_ANNOTATION)?,
            value: &value.0,
            expires_at: std::str::from_utf8(&data.get("expiresAt")?.0).ok()?,
        })
    }
}

/// What an own Secret says of the token it holds. The value is compared, never shown.
pub struct SecretToken<'a> {
    /// The token's remote name (the Secret's annotation).
    pub name: &'a str,
    value: &'a [u8],
    /// The Secret's `expiresAt`.
    pub expires_at: &'a str,
}

impl<'a> SecretToken<'a> {
    /// What a Secret says of its token: its name, value and `expiresAt`.
    #[must_use]
    pub fn new(name: &'a str, value: &'a [u8], expires_at: &'a str) -> Self {
        Self {
            name,
            value,
            expires_at,
        }
    }

    /// Whether the Secret's value is `token`.
    pub fn holds(&self, token: &ApiKey) -> bool {
        self.value == token.expose().as_bytes()
    }
}

/// The name of the Secret a private preview's token is kept in: `spec.token.secretName`, else
/// `<metadata.name>-token`.
pub fn secret_name(obj: &Cached<SandboxPreview>) -> String {
    obj.spec
        .token
        .as_ref()
        .and_then(|t| t.secret_name.clone())
        .unwrap_or_else(|| format!("{}-token", obj.name_any()))
}

impl<'a> TokenSecret<'a> {
    /// The Secret the spec names now ([`secret_name`]).
    pub fn new(obj: &'a Cached<SandboxPreview>, ctx: &Context) -> Self {
        Self::named(obj, ctx, secret_name(obj))
    }

    /// The Secret `name` of this object (one its status recorded under a former name, say).
    pub fn named(obj: &'a Cached<SandboxPreview>, ctx: &Context, name: String) -> Self {
        Self {
            obj,
            api: Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default()),
            name,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn owned(&self, secret: &Secret) -> bool {
        let uid = self.obj.meta().uid.as_deref();
        uid.is_some()
            && secret
                .owner_references()
                .iter()
                .any(|r| Some(r.uid.as_str()) == uid && r.kind == "SandboxPreview")
    }

    /// Reads the Secret.
    ///
    /// # Errors
    /// The Kubernetes API error.
    pub async fn read(&self) -> Result<Held, Error> {
        Ok(match self.api.get_opt(&self.name).await? {
            None => Held::Absent,
            Some(secret) if self.owned(&secret) => Held::Ours(Box::new(secret)),
            Some(_) => Held::NotOurs,
        })
    }

    /// Why the Secret may not be written, when it is another's.
    pub fn refused(&self, held: &Held) -> Option<Why> {
        matches!(held, Held::NotOurs).then(|| {
            Why::new(
                SECRET_NOT_OWNED,
                format!(
                    "Secret {} exists and was not made for this SandboxPreview; it is never \
                     overwritten. Name another in spec.token.secretName, or delete that Secret",
                    self.name
                ),
            )
        })
    }

    /// Writes the token (created when absent, replaced when ours).
    ///
    /// # Errors
    /// The Kubernetes API error (a Secret created meanwhile by another: a conflict).
    pub async fn write(
        &self,
        held: &Held,
        token_name: &str,
        token: &ApiKey,
        expires_at: &str,
        url: &str,
    ) -> Result<(), Error> {
        let data: BTreeMap<String, ByteString> = [
            ("url", url),
            ("token", token.expose()),
            ("expiresAt", expires_at),
            ("header", TOKEN_HEADER),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_owned(),
                        "blaxel-operator".to_owned(),
                    )]
                    .into(),
                ),
                annotations: Some(
                    [(TOKEN_NAME_ANNOTATION.to_owned(), token_name.to_owned())].into(),
                ),
                owner_references: Some(vec![self.owner()]),
                ..ObjectMeta::default()
            },
            data: Some(data),
            type_: Some("Opaque".to_owned()),
            ..Secret::default()
        };
        match held {
            Held::Absent => {
                self.api.create(&PostParams::default(), &secret).await?;
            }
            Held::Ours(_) => {
                let mut body = serde_json::to_value(&secret)
                    .map_err(|e| Error::Kube(kube::Error::SerdeError(e)))?;
                body["apiVersion"] = "v1".into();
                body["kind"] = "Secret".into();
                self.api
                    .patch(
                        &self.name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&body),
                    )
                    .await?;
            }
            Held::NotOurs => {}
        }
        Ok(())
    }

    /// Sets the `url` key of an own Secret when it differs (the token kept).
    ///
    /// # Errors
    /// The Kubernetes API error.
    pub async fn keep_url(&self, held: &Held, url: &str) -> Result<(), Error> {
        let Held::Ours(secret) = held else {
            return Ok(());
        };
        let current = secret.data.as_ref().and_then(|d| d.get("url"));
        if current.is_some_and(|u| u.0 == url.as_bytes()) {
            return Ok(());
        }
        let patch = serde_json::json!({"data": {"url": ByteString(url.as_bytes().to_vec())}});
        self.api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Deletes the Secret when it is ours (gone already is done).
    ///
    /// # Errors
    /// The Kubernetes API error.
    pub async fn delete_if_ours(&self, held: &Held) -> Result<(), Error> {
        if !matches!(held, Held::Ours(_)) {
            return Ok(());
        }
        match self.api.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn owner(&self) -> OwnerReference {
        OwnerReference {
            api_version: "blaxel.ai/v1alpha1".to_owned(),
            kind: "SandboxPreview".to_owned(),
            name: self.obj.name_any(),
            uid: self.obj.meta().uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(false),
        }
    }
}
