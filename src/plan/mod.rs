//! `blaxel-operator plan`: what a change of manifests will do to Blaxel, before it is merged.
//!
//! Reads manifests ([`manifests`]), refuses invalid ones, reads each workspace once with the operator's
//! own client, read only ([`remote`]), and asks each kind's dry run (in the kind's own folder, listed
//! in [`kinds`]) what the operator would write, with the same pure planners the reconcilers use. The
//! result ([`report`]) is printed as text, Markdown or JSON ([`render`]).

pub mod diff;
pub mod kinds;
pub mod manifests;
pub mod remote;
pub mod render;
pub mod report;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use async_trait::async_trait;

use crate::blaxel::ApiKey;
use crate::blaxel::api::Scope;
use crate::blaxel::client::{ClientConfig, HttpClient};
use crate::blaxel::error::ApiError;
use crate::crd::PAUSED_ANNOTATION;
use crate::reconcile::conditions::Why;
use crate::reconcile::credentials::{DefaultKey, key_from_env};
use manifests::Manifest;
use remote::{Remote, Settings};
use report::{Action, Change, Invalid, Note, Plan, WorkspacePlan};

/// `plan`'s command line.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Manifests after the change: files, folders (every .yaml, .yml and .json under them), or `-` for
    /// stdin. Together they are the whole declared set: a WorkspaceMember left out of them counts as
    /// not declared (an Authoritative workspace would remove its person), and two objects in them that
    /// claim one remote identity are an error.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Manifests before the change (e.g. the target branch): objects only there are shown deleted,
    /// as their `deletionPolicy` says.
    #[arg(long)]
    pub base: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = render::Format::Text)]
    pub format: render::Format,
    /// The namespace of objects that name none.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Blaxel API base URL.
    #[arg(long, env = "BL_API_URL", default_value = "https://api.blaxel.ai/v0")]
    pub api_url: String,
    /// File holding the key for workspaces without a `BL_API_KEY_<WORKSPACE>` variable (the workspace
    /// name upper-cased, `-` as `_`); else `BL_API_KEY`.
    #[arg(long, env = "BL_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// PEM file of CA certificates trusted for the Blaxel API besides the built-in roots.
    #[arg(long, env = "BL_API_CA_FILE")]
    pub api_ca_file: Option<PathBuf>,
    /// The operator's `--instance`.
    #[arg(long, env = "BLAXEL_INSTANCE", default_value = "")]
    pub instance: String,
    /// The operator's `--max-reinvites`.
    #[arg(long, env = "BLAXEL_MAX_REINVITES", default_value_t = 3)]
    pub max_reinvites: u32,
}

/// What one object's dry run found: the writes for it, or why the operator would not act.
pub struct Outcome {
    kind: &'static str,
    object: String,
    changes: Vec<Change>,
    notes: Vec<Note>,
}

impl Outcome {
    fn new(kind: &'static str, m: &Manifest) -> Self {
        Self {
            kind,
            object: format!("{}/{}", m.namespace, m.name),
            changes: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A write the operator would make.
    pub fn change(&mut self, action: Action, target: &str, details: Vec<String>) {
        self.changes.push(Change {
            action,
            kind: self.kind.to_owned(),
            object: self.object.clone(),
            target: target.to_owned(),
            details,
        });
    }

    /// A lookup's answer, or `None` after noting why it is unknown.
    pub fn known<T>(&mut self, answer: Result<T, Why>) -> Option<T> {
        answer.map_err(|why| self.note(&why)).ok()
    }

    /// Why the operator would not act: the condition it would report.
    pub fn note(&mut self, why: &Why) {
        self.notes.push(Note {
            kind: self.kind.to_owned(),
            object: self.object.clone(),
            reason: why.reason.clone(),
            message: why.message.clone(),
        });
    }
}

/// What every dry run may look at besides its own object.
pub struct Scene<'a> {
    /// Every object declared after the change, in every workspace, and the deleted ones that stay
    /// (paused: their finalizer waits).
    pub declared: &'a [Manifest],
    /// The identities (kind, identity) that deleted objects remove remotely first.
    pub removed: &'a HashSet<(&'static str, String)>,
}

/// One declared object, decoded by its kind's dry run.
#[async_trait]
pub trait Declared: Send + Sync {
    /// The workspace it acts in.
    fn workspace(&self) -> &str;
    /// The remote identity it claims there (an e-mail, a sandbox name): one object per identity.
    fn identity(&self) -> String;
    /// The writes for it as declared.
    async fn plan(
        &self,
        remote: &Remote,
        scene: &Scene<'_>,
        out: &mut Outcome,
    ) -> Result<(), ApiError>;
    /// The writes once it is deleted (`declared`: every object declared after the change); true when
    /// they remove the identity remotely.
    async fn plan_deleted(
        &self,
        remote: &Remote,
        declared: &[Manifest],
        out: &mut Outcome,
    ) -> Result<bool, ApiError>;
}

/// A kind `plan` covers: its name and how a manifest of it is decoded.
pub struct Kind {
    /// `kind`.
    pub kind: &'static str,
    /// The typed object, or why it does not decode; the declared set is there to resolve references
    /// (a SandboxPreview's Sandbox).
    pub decode: Decode,
}

/// A kind's decoder: the manifest, and every manifest declared beside it.
pub type Decode = fn(&Manifest, &[Manifest]) -> Result<Box<dyn Declared>, String>;

/// The decoder of a kind whose object alone is all its dry run needs.
///
/// # Errors
/// Why the manifest does not decode as `T`.
pub fn decode_alone<T>(m: &Manifest, _: &[Manifest]) -> Result<Box<dyn Declared>, String>
where
    T: Declared + serde::de::DeserializeOwned + 'static,
{
    serde_json::from_value::<T>(m.value.clone())
        .map(|obj| Box::new(obj) as Box<dyn Declared>)
        .map_err(|_| undecodable(m))
}

/// Why a manifest does not decode, without serde's words (they quote the value, which may be a
/// secret). The offline validation refuses such objects first; this is the fallback.
#[must_use]
pub fn undecodable(m: &Manifest) -> String {
    format!(
        "does not decode as a {} (a field of the wrong type)",
        m.kind
    )
}

/// Why `plan` could not run at all (a refused manifest or a remote error is part of the plan instead).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A path could not be read.
    #[error(transparent)]
    Read(#[from] manifests::ReadError),
    /// The HTTP client could not be built (a bad `--api-url`).
    #[error(transparent)]
    Client(#[from] crate::blaxel::client::ConfigError),
    /// `-` given more than once: stdin is read once.
    #[error("`-` (stdin) may be given once, to -f or to --base")]
    StdinTwice,
    /// The CA file could not be read.
    #[error("{0}")]
    CaFile(std::io::Error),
    /// The key file could not be read.
    #[error("--api-key-file: {0}")]
    KeyFile(std::io::Error),
    /// The CRDs use what the offline validator does not check (a build defect, not an input one).
    #[error(transparent)]
    Validator(#[from] crate::validation::ValidationSetupError),
}

/// A decoded object and its manifest.
struct Object {
    manifest: Manifest,
    kind: &'static str,
    declared: Box<dyn Declared>,
}

/// The manifests read, checked as the API server would, and decoded.
struct Loaded {
    /// The objects after the change.
    head: Vec<Object>,
    /// The objects only before it: deleted by it.
    gone: Vec<Object>,
    /// Every manifest after it, and the deleted ones that stay (paused).
    declared: Vec<Manifest>,
    /// What was refused.
    invalid: Vec<Invalid>,
}

fn load(args: &PlanArgs) -> Result<Loaded, PlanError> {
    let stdin = args
        .files
        .iter()
        .chain(&args.base)
        .filter(|p| p.as_os_str() == "-");
    if stdin.count() > 1 {
        return Err(PlanError::StdinTwice);
    }
    let head = manifests::read(&args.files, &args.namespace)?;
    let mut base = manifests::read(&args.base, &args.namespace)?;
    let mut invalid = Vec::new();
    once_each(&head, &mut base, &mut invalid);
    validate(&head, &mut base, &mut invalid)?;
    // What the API server refuses is not decoded too (one report per manifest).
    let refused: HashSet<(&str, usize)> = invalid
        .iter()
        .map(|i| (i.file.as_str(), i.document))
        .collect();
    let kept = |list: &[Manifest]| -> Vec<Manifest> {
        list.iter()
            .filter(|m| !refused.contains(&(m.source.file.as_str(), m.source.document)))
            .cloned()
            .collect()
    };
    let head = kept(&head);
    let present: HashSet<_> = head.iter().map(key).collect();
    let gone: Vec<Manifest> = kept(&base)
        .into_iter()
        .filter(|m| !present.contains(&key(m)))
        .collect();
    // A deleted object that is paused stays (its finalizer waits): it still counts as declared.
    let declared: Vec<Manifest> = head
        .iter()
        .chain(gone.iter().filter(|m| paused(m)))
        .cloned()
        .collect();
    let head = decode_all(head, &declared, &mut invalid);
    let gone = decode_all(gone, &base, &mut invalid);
    duplicates(&head, &mut invalid);
    Ok(Loaded {
        head,
        gone,
        declared,
        invalid,
    })
}

/// Runs `plan`: the plan, to be rendered.
///
/// # Errors
/// When the manifests cannot be read or the client cannot be built.
pub async fn run(args: &PlanArgs) -> Result<Plan, PlanError> {
    let Loaded {
        head,
        gone,
        declared,
        invalid,
    } = load(args)?;
    if !invalid.is_empty() {
        return Ok(Plan {
            version: 1,
            invalid,
            workspaces: Vec::new(),
        });
    }
    let by_workspace = by_workspace(head, gone);
    let api = HttpClient::new(ClientConfig {
        base_url: args.api_url.clone(),
        ca_bundle: crate::operator::read_ca_file(args.api_ca_file.as_deref())
            .map_err(PlanError::CaFile)?,
        ..ClientConfig::default()
    })?;
    let default_key = (
        DefaultKey::configured(args.api_key_file.as_deref()).map_err(PlanError::KeyFile)?,
        if args.api_key_file.is_some() {
            "--api-key-file"
        } else {
            "BL_API_KEY"
        },
    );
    let settings = Settings {
        instance: Some(args.instance.clone()).filter(|i| !i.is_empty()),
        max_reinvites: args.max_reinvites,
    };
    let mut workspaces = Vec::new();
    for (workspace, (declared_here, deleted)) in by_workspace {
        let mut plan = WorkspacePlan {
            workspace: workspace.clone(),
            ..WorkspacePlan::default()
        };
        let Some((key, from)) = workspace_key(&workspace, &default_key) else {
            plan.error = Some(format!(
                "no key for workspace {workspace}: set {} or BL_API_KEY (or --api-key-file)",
                key_variable(&workspace)
            ));
            workspaces.push(plan);
            continue;
        };
        plan.credentials = Some(from);
        let remote = Remote::new(
            api.clone(),
            Scope {
                workspace,
                api_key: key,
            },
            settings.clone(),
        );
        let objects = Objects {
            declared: &declared_here,
            deleted: &deleted,
            all: &declared,
        };
        if let Err(e) = plan_workspace(&remote, &objects, &mut plan).await {
            plan.error = Some(e.to_string());
            plan.changes.clear();
            plan.notes.clear();
            plan.unchanged = 0;
        }
        plan.changes.sort_by(|a, b| {
            (!a.action.is_removal(), &a.kind, &a.object).cmp(&(
                !b.action.is_removal(),
                &b.kind,
                &b.object,
            ))
        });
        workspaces.push(plan);
    }
    Ok(Plan {
        version: 1,
        invalid,
        workspaces,
    })
}

/// Per workspace, the objects declared after the change, and those it deletes.
fn by_workspace(
    head: Vec<Object>,
    gone: Vec<Object>,
) -> BTreeMap<String, (Vec<Object>, Vec<Object>)> {
    let mut out: BTreeMap<String, (Vec<Object>, Vec<Object>)> = BTreeMap::new();
    for o in head {
        out.entry(o.declared.workspace().to_owned())
            .or_default()
            .0
            .push(o);
    }
    for o in gone {
        out.entry(o.declared.workspace().to_owned())
            .or_default()
            .1
            .push(o);
    }
    out
}

/// A workspace's objects: declared after the change, and deleted by it; and every declared one.
struct Objects<'a> {
    declared: &'a [Object],
    deleted: &'a [Object],
    all: &'a [Manifest],
}

/// Deletions first (an identity they remove is then absent for the object that declares it now),
/// then every declared object.
async fn plan_workspace(
    remote: &Remote,
    objects: &Objects<'_>,
    plan: &mut WorkspacePlan,
) -> Result<(), ApiError> {
    let mut removed = HashSet::new();
    for o in objects.deleted {
        let mut out = Outcome::new(o.kind, &o.manifest);
        if removed.contains(&(o.kind, o.declared.identity())) {
            // Another deleted object of the same identity removes it already.
        } else if paused(&o.manifest) {
            out.note(&paused_why());
        } else if o
            .declared
            .plan_deleted(remote, objects.all, &mut out)
            .await?
        {
            removed.insert((o.kind, o.declared.identity()));
        }
        collect(remote, out, plan);
    }
    let scene = Scene {
        declared: objects.all,
        removed: &removed,
    };
    for o in objects.declared {
        let mut out = Outcome::new(o.kind, &o.manifest);
        if paused(&o.manifest) {
            out.note(&paused_why());
        } else {
            o.declared.plan(remote, &scene, &mut out).await?;
        }
        collect(remote, out, plan);
    }
    Ok(())
}

/// Adds one object's outcome to its workspace's plan. Notes may quote Blaxel (a sandbox's failure
/// message): they are scrubbed of the workspace's key and cut to length, as the operator's are.
fn collect(remote: &Remote, out: Outcome, plan: &mut WorkspacePlan) {
    if out.changes.is_empty() && out.notes.is_empty() {
        plan.unchanged += 1;
    }
    plan.changes.extend(out.changes);
    plan.notes.extend(out.notes.into_iter().map(|mut n| {
        n.message = remote.scrub(&n.message);
        n
    }));
}

fn paused(m: &Manifest) -> bool {
    crate::reconcile::paused_by(
        m.value
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(PAUSED_ANNOTATION))
            .and_then(serde_json::Value::as_str),
    )
}

fn paused_why() -> Why {
    Why::new(
        "Paused",
        format!(
            "{PAUSED_ANNOTATION} is set (and not \"false\"): the operator makes no remote write for it"
        ),
    )
}

/// `(kind, namespace, name)`.
fn key(m: &Manifest) -> (String, String, String) {
    (m.kind.clone(), m.namespace.clone(), m.name.clone())
}

/// Checks every manifest as the API server would: a create, or an update of the object of the same
/// kind, namespace and name in `base` (immutable fields, transition rules). Base objects the server
/// would refuse never existed: they are dropped, not reported.
fn validate(
    head: &[Manifest],
    base: &mut Vec<Manifest>,
    invalid: &mut Vec<Invalid>,
) -> Result<(), PlanError> {
    let validator = crate::validation::Validator::new(&crate::crd::all())?;
    base.retain(|m| validator.validate(&m.value, None).is_ok());
    let before: BTreeMap<_, &Manifest> = base.iter().map(|m| (key(m), m)).collect();
    for m in head {
        let old = before.get(&key(m)).map(|old| &old.value);
        if let Err(rejection) = validator.validate(&m.value, old) {
            let errors = if rejection.errors.is_empty() {
                vec![rejection.message]
            } else {
                rejection.errors.iter().map(ToString::to_string).collect()
            };
            invalid.push(Invalid {
                file: m.source.file.clone(),
                document: m.source.document,
                object: Some(m.label()),
                errors,
            });
        }
    }
    Ok(())
}

/// Decodes every manifest with its kind's dry run; the others are refused.
fn decode_all(
    manifests: Vec<Manifest>,
    all: &[Manifest],
    invalid: &mut Vec<Invalid>,
) -> Vec<Object> {
    let mut out = Vec::new();
    for m in manifests {
        let refuse = |m: &Manifest, error: String| Invalid {
            file: m.source.file.clone(),
            document: m.source.document,
            object: Some(m.label()),
            errors: vec![error],
        };
        let Some(kind) = kinds::KINDS.iter().find(|k| k.kind == m.kind) else {
            invalid.push(refuse(
                &m,
                format!("no kind {} in {}", m.kind, crate::crd::GROUP),
            ));
            continue;
        };
        match (kind.decode)(&m, all) {
            Ok(declared) => out.push(Object {
                manifest: m,
                kind: kind.kind,
                declared,
            }),
            Err(e) => invalid.push(refuse(&m, e)),
        }
    }
    out
}

/// One object written twice: the API server would keep the last, silently dropping the first, so it
/// is an error after the change; before it, the last is what was applied.
fn once_each(head: &[Manifest], base: &mut Vec<Manifest>, invalid: &mut Vec<Invalid>) {
    let mut seen: BTreeMap<_, &Manifest> = BTreeMap::new();
    for m in head {
        if let Some(first) = seen.insert(key(m), m) {
            invalid.push(Invalid {
                file: m.source.file.clone(),
                document: m.source.document,
                object: Some(m.label()),
                errors: vec![format!(
                    "{} is also written at {}: the API server would keep only one",
                    m.label(),
                    first.source
                )],
            });
        }
    }
    let mut last: BTreeMap<_, usize> = BTreeMap::new();
    for (i, m) in base.iter().enumerate() {
        last.insert(key(m), i);
    }
    let mut index = 0;
    base.retain(|m| {
        index += 1;
        last.get(&key(m)) == Some(&(index - 1))
    });
}

/// Two declared objects claiming one remote identity: the API server would rank them by creation
/// time, which manifests do not have, so it is an error.
fn duplicates(objects: &[Object], invalid: &mut Vec<Invalid>) {
    let mut seen: BTreeMap<(&str, &str, String), &Manifest> = BTreeMap::new();
    for o in objects {
        let claim = (o.kind, o.declared.workspace(), o.declared.identity());
        if let Some(first) = seen.get(&claim) {
            invalid.push(Invalid {
                file: o.manifest.source.file.clone(),
                document: o.manifest.source.document,
                object: Some(o.manifest.label()),
                errors: vec![format!(
                    "{} in workspace {} is also declared by {} ({}): one object per identity",
                    claim.2,
                    claim.1,
                    first.label(),
                    first.source
                )],
            });
        } else {
            seen.insert(claim, &o.manifest);
        }
    }
}

/// The environment variable holding a workspace's own key: `BL_API_KEY_` and the name upper-cased,
/// `-` as `_`.
#[must_use]
pub fn key_variable(workspace: &str) -> String {
    format!(
        "BL_API_KEY_{}",
        workspace.to_ascii_uppercase().replace('-', "_")
    )
}

/// The workspace's key and where it came from: its own variable, else the default key.
fn workspace_key(workspace: &str, default: &(DefaultKey, &str)) -> Option<(ApiKey, String)> {
    let own = key_variable(workspace);
    key_from_env(&own)
        .map(|k| (k, own))
        .or_else(|| default.0.current().map(|k| (k, default.1.to_owned())))
}
