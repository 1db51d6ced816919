//! The pure sandbox planner: desired spec + observed remote sandbox → next remote action and verdict.
//!
//! Writes happen only on a real difference: the planner compares the fields the spec sets and nothing
//! else, so a remote default (a protocol, a memory size the user left out) never causes a write loop.

use std::collections::BTreeMap;

use crate::blaxel::model::{EnvVar, Port, Runtime, Sandbox as RemoteSandbox, SandboxPhase};
use crate::blaxel::{PowerControl, SecretValue};
use crate::crd::{DeletionPolicy, PowerState, SandboxSpec};
use crate::reconcile::conditions::{Health, Why};

/// Remote label naming the operator as manager.
pub const MANAGED_BY_LABEL: &str = "managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "blaxel-operator";
/// Remote label naming the owning object as `<namespace>.<name>`.
pub const OWNER_LABEL: &str = "blaxel-operator-owner";
/// Remote label naming the operator instance (`--instance`) that owns the sandbox. Absent for the
/// default instance, so that every sandbox labelled before instances existed is still recognised.
pub const INSTANCE_LABEL: &str = "blaxel-operator-instance";
/// The phase a Sandbox reports once Blaxel removed its sandbox at the end of `spec.ttl`.
pub const EXPIRED_PHASE: &str = "EXPIRED";
/// The reason it is Stalled with then.
pub const TTL_EXPIRED: &str = "TtlExpired";

/// Who this object is, as ownership labels say it: the object and the operator instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    /// `<namespace>.<name>`.
    pub object: &'a str,
    /// The operator instance, `None` for the default one.
    pub instance: Option<&'a str>,
}

/// One remote write.
#[derive(Debug, Clone, PartialEq)]
pub enum SandboxAction {
    /// `POST /sandboxes` with this body.
    Create(RemoteSandbox),
    /// `PUT /sandboxes/{name}` with this body (the observed object with the spec laid over it).
    Update(RemoteSandbox),
    /// Power on (`/start`, or `enabled: true`).
    Start,
    /// Power off (`/stop`, or `enabled: false`).
    Stop,
}

/// What the planner knows.
#[derive(Debug, Clone, Copy)]
pub struct SandboxInput<'a> {
    /// The desired spec.
    pub spec: &'a SandboxSpec,
    /// The remote name.
    pub name: &'a str,
    /// This object's ownership.
    pub owner: Owner<'a>,
    /// The remote sandbox with that name, if any.
    pub observed: Option<&'a RemoteSandbox>,
    /// How power is controlled in the workspace, when known.
    pub power_control: Option<PowerControl>,
    /// The remote phase this object last reported for its current generation, if any: a sandbox seen
    /// at this generation and gone since, with `spec.ttl` set, reached the end of its life.
    pub reported_phase: Option<&'a str>,
    /// The values of the Secret-sourced variables, by name, read this pass.
    pub secret_envs: &'a BTreeMap<String, SecretValue>,
    /// Whether those values are the ones last sent (their digest is `status.envDigest`): they are
    /// compared so, since Blaxel need not show a secret value back.
    pub secrets_sent: bool,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxPlan {
    /// The next remote write, if any.
    pub action: Option<SandboxAction>,
    /// True when the remote sandbox existed without an owner and `action` takes it over: the driver
    /// records the adoption only once that write succeeded.
    pub adopts: bool,
    /// The verdict to report.
    pub health: Health,
}

/// Who owns an observed sandbox, as its labels say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Labelled with this object.
    Ours,
    /// No owner label: free to adopt.
    Unowned,
    /// Labelled with another object.
    Theirs,
}

/// Reads the ownership labels: ours only when both the object and the instance match.
#[must_use]
pub fn ownership(sandbox: &RemoteSandbox, owner: Owner<'_>) -> Ownership {
    let labels = &sandbox.metadata.labels;
    match labels.get(OWNER_LABEL) {
        None => Ownership::Unowned,
        Some(o)
            if o == owner.object
                && labels.get(INSTANCE_LABEL).map(String::as_str) == owner.instance =>
        {
            Ownership::Ours
        }
        Some(_) => Ownership::Theirs,
    }
}

/// The observed power state.
#[must_use]
pub fn observed_power(sandbox: &RemoteSandbox) -> PowerState {
    if sandbox.spec.enabled == Some(false)
        || matches!(
            sandbox.phase(),
            SandboxPhase::Deactivating | SandboxPhase::Deactivated
        )
    {
        PowerState::Stopped
    } else {
        PowerState::Running
    }
}

/// Plans the next step for a sandbox that should exist.
#[must_use]
pub fn plan(input: SandboxInput<'_>) -> SandboxPlan {
    let progressing = |action, reason: &str, message: String| SandboxPlan {
        action,
        adopts: false,
        health: Health::Progressing(Why::new(reason, message)),
    };
    let gone = input
        .observed
        .is_none_or(|remote| remote.phase() == SandboxPhase::Terminated);
    if gone && input.spec.ttl.is_some() && input.reported_phase.is_some() {
        return SandboxPlan {
            action: None,
            adopts: false,
            health: Health::Stalled(Why::new(
                TTL_EXPIRED,
                format!(
                    "Sandbox {} is gone after it existed with spec.ttl set: taken as expired, and not \
                     created again until the spec changes",
                    input.name
                ),
            )),
        };
    }
    let Some(remote) = input.observed else {
        return progressing(
            Some(SandboxAction::Create(desired(input, None))),
            "Creating",
            format!("Creating sandbox {}", input.name),
        );
    };
    let owner = ownership(remote, input.owner);
    if owner == Ownership::Theirs {
        return SandboxPlan {
            action: None,
            adopts: false,
            health: Health::Stalled(Why::new(
                "OwnedByAnother",
                // The owner is not named: it may be an object of another namespace.
                format!(
                    "Sandbox {} already exists and belongs to another object or operator instance \
                     (its {OWNER_LABEL} label)",
                    input.name
                ),
            )),
        };
    }
    plan_existing(input, remote, owner == Ownership::Unowned)
}

/// Plans the next step for a sandbox that exists remotely and is ours (or free to adopt).
fn plan_existing(input: SandboxInput<'_>, remote: &RemoteSandbox, adopts: bool) -> SandboxPlan {
    let progressing = |action, reason: &str, message: String| SandboxPlan {
        action,
        adopts: false,
        health: Health::Progressing(Why::new(reason, message)),
    };
    let phase = remote.phase();
    match phase {
        SandboxPhase::Terminated => {
            return progressing(
                Some(SandboxAction::Create(desired(input, None))),
                "Recreating",
                format!("Sandbox {} was terminated; creating it again", input.name),
            );
        }
        SandboxPhase::Deleting => {
            return progressing(
                None,
                "RemoteDeleting",
                format!("Sandbox {} is being deleted remotely", input.name),
            );
        }
        _ => {}
    }
    if needs_update(input, remote) {
        return update(input, remote, adopts);
    }
    if phase == SandboxPhase::Failed {
        // Blaxel's message may quote a variable's value, one from a Secret included (even one
        // rotated out since, which no scrub of today's values would find): with such variables it is
        // withheld.
        let from_secrets = input
            .spec
            .envs
            .iter()
            .flatten()
            .any(|e| e.value_from.is_some());
        let message = if from_secrets {
            "Blaxel reports the sandbox FAILED; its message is withheld, since it may quote a value \
             taken from a Secret (see it in Blaxel's console)"
                .to_owned()
        } else {
            remote
                .failure_message()
                .unwrap_or_else(|| "Blaxel reports the sandbox FAILED".to_owned())
        };
        return SandboxPlan {
            action: None,
            adopts,
            health: Health::Stalled(Why::new("RemoteFailed", message)),
        };
    }
    if phase.is_transitional() {
        let status = remote.status.clone().unwrap_or_default();
        return SandboxPlan {
            action: None,
            adopts,
            health: Health::Progressing(Why::new("Transitioning", format!("Sandbox is {status}"))),
        };
    }
    let actual = observed_power(remote);
    if actual != input.spec.state && input.power_control != Some(PowerControl::Enabled) {
        let (action, verb) = match input.spec.state {
            PowerState::Running => (SandboxAction::Start, "Starting"),
            PowerState::Stopped => (SandboxAction::Stop, "Stopping"),
        };
        return SandboxPlan {
            action: Some(action),
            adopts,
            health: Health::Progressing(Why::new(verb, format!("{verb} sandbox {}", input.name))),
        };
    }
    let state = match actual {
        PowerState::Running => "Running",
        PowerState::Stopped => "Stopped",
    };
    SandboxPlan {
        action: None,
        adopts,
        health: Health::Ready(Why::new(state, format!("Sandbox is {state}"))),
    }
}

/// The reason a write is refused because it would send back secret values Blaxel masked.
pub const SECRET_VARIABLES_UNKNOWN: &str = "SecretVariablesUnknown";

/// The remote variables marked secret that an update built from `spec` would send back as read (masked):
/// all of them when the spec leaves `envs` out (kept as they are remotely), none when it declares them
/// (the update then carries the spec's variables only, Secret-sourced values read from their Secrets).
fn unknown_secrets(spec: &SandboxSpec, remote: &RemoteSandbox) -> Vec<String> {
    if spec.envs.is_some() {
        return Vec::new();
    }
    secret_names(remote)
}

/// The names of `remote`'s variables marked secret.
fn secret_names(remote: &RemoteSandbox) -> Vec<String> {
    remote
        .spec
        .runtime
        .iter()
        .flat_map(|r| &r.envs)
        .filter(|e| e.secret == Some(true))
        .map(|e| e.name.clone())
        .collect()
}

/// The update of a sandbox that differs from the spec, unless it would send a masked secret back.
fn update(input: SandboxInput<'_>, remote: &RemoteSandbox, adopts: bool) -> SandboxPlan {
    let unknown = unknown_secrets(input.spec, remote);
    if !unknown.is_empty() {
        return SandboxPlan {
            action: None,
            adopts: false,
            health: Health::Stalled(Why::new(
                SECRET_VARIABLES_UNKNOWN,
                format!(
                    "Sandbox {} differs from the spec, but an update would overwrite its secret \
                     variables {}: Blaxel shows their values masked, and the spec does not declare \
                     them. Declare every variable in spec.envs (secret ones with \
                     valueFrom.secretKeyRef) to let the operator update this sandbox",
                    input.name,
                    unknown.join(", ")
                ),
            )),
        };
    }
    SandboxPlan {
        action: Some(SandboxAction::Update(desired(input, Some(remote)))),
        adopts,
        health: Health::Progressing(Why::new(
            "Updating",
            format!("Updating sandbox {}", input.name),
        )),
    }
}

/// What cleanup does next.
#[derive(Debug, Clone, PartialEq)]
pub enum CleanupStep {
    /// `DELETE /sandboxes/{name}`.
    Delete,
    /// `PUT /sandboxes/{name}` with this body: the sandbox without the operator's ownership labels.
    Release(Box<RemoteSandbox>),
    /// The remote deletion is under way: look again soon.
    Wait,
    /// Leave the sandbox as it is, ownership labels included: the `PUT` taking them off would overwrite
    /// these secret variables, whose values Blaxel masks and no Secret of the object gives.
    LeaveOwned(Vec<String>),
    /// Nothing (left) to do: the finalizer may go.
    Done,
}

/// Plans cleanup when the object is deleted. Deletes only a sandbox that carries this object's
/// ownership (created by it, or taken over by a write that succeeded); an orphaned sandbox of ours is
/// released (its ownership labels removed) so that a later object may take it over.
#[must_use]
pub fn plan_cleanup(
    policy: DeletionPolicy,
    observed: Option<&RemoteSandbox>,
    owner: Owner<'_>,
    secret_envs: &BTreeMap<String, SecretValue>,
) -> CleanupStep {
    let Some(remote) = observed else {
        return CleanupStep::Done;
    };
    if ownership(remote, owner) != Ownership::Ours {
        return CleanupStep::Done;
    }
    if policy == DeletionPolicy::Orphan {
        if matches!(
            remote.phase(),
            SandboxPhase::Deleting | SandboxPhase::Terminated
        ) {
            return CleanupStep::Done;
        }
        return match release(remote, secret_envs) {
            Ok(body) => CleanupStep::Release(Box::new(body)),
            Err(unknown) => CleanupStep::LeaveOwned(unknown),
        };
    }
    match remote.phase() {
        SandboxPhase::Terminated => CleanupStep::Done,
        SandboxPhase::Deleting => CleanupStep::Wait,
        _ => CleanupStep::Delete,
    }
}

/// `remote` as it is, less the labels that make it the operator's, its secret variables' values taken
/// from `secret_envs`; the names of those no value is known of, if any.
fn release(
    remote: &RemoteSandbox,
    secret_envs: &BTreeMap<String, SecretValue>,
) -> Result<RemoteSandbox, Vec<String>> {
    let mut body = remote.clone();
    body.status = None;
    body.state = None;
    for label in [OWNER_LABEL, INSTANCE_LABEL, MANAGED_BY_LABEL] {
        body.metadata.labels.remove(label);
    }
    let mut unknown = Vec::new();
    let envs = body.spec.runtime.iter_mut().flat_map(|r| &mut r.envs);
    for env in envs.filter(|e| e.secret == Some(true)) {
        match secret_envs.get(&env.name) {
            Some(value) => env.value = Some(value.expose().to_owned()),
            None => unknown.push(env.name.clone()),
        }
    }
    if unknown.is_empty() {
        Ok(body)
    } else {
        Err(unknown)
    }
}

/// The body to send: `base` (the observed object, so unknown remote fields are kept) with the spec laid over.
fn desired(input: SandboxInput<'_>, base: Option<&RemoteSandbox>) -> RemoteSandbox {
    let spec = input.spec;
    let mut body = base.cloned().unwrap_or_default();
    // Read-only fields stay out of what we send.
    body.status = None;
    body.state = None;
    input.name.clone_into(&mut body.metadata.name);
    body.metadata
        .labels
        .extend(desired_labels(spec, input.owner));
    let runtime = body.spec.runtime.get_or_insert_with(Runtime::default);
    runtime.image = Some(spec.image.clone());
    if spec.memory.is_some() {
        runtime.memory = spec.memory;
    }
    // Lists the spec leaves out stay as they are remotely (taking over never erases them).
    if let Some(ports) = &spec.ports {
        runtime.ports = ports.iter().map(to_remote_port).collect();
    }
    if let Some(envs) = &spec.envs {
        runtime.envs = envs
            .iter()
            .map(|e| match &e.value_from {
                Some(_) => EnvVar {
                    name: e.name.clone(),
                    value: input
                        .secret_envs
                        .get(&e.name)
                        .map(|v| v.expose().to_owned()),
                    secret: Some(true),
                },
                None => EnvVar {
                    name: e.name.clone(),
                    value: Some(e.value.clone().unwrap_or_default()),
                    secret: None,
                },
            })
            .collect();
    }
    if spec.ttl.is_some() {
        runtime.ttl.clone_from(&spec.ttl);
    }
    if spec.region.is_some() {
        body.spec.region.clone_from(&spec.region);
    }
    if input.power_control == Some(PowerControl::Enabled) {
        body.spec.enabled = Some(spec.state == PowerState::Running);
    }
    body
}

fn desired_labels(spec: &SandboxSpec, owner: Owner<'_>) -> BTreeMap<String, String> {
    let mut labels = spec.labels.clone();
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    labels.insert(OWNER_LABEL.to_owned(), owner.object.to_owned());
    if let Some(instance) = owner.instance {
        labels.insert(INSTANCE_LABEL.to_owned(), instance.to_owned());
    }
    labels
}

fn to_remote_port(p: &crate::crd::SandboxPort) -> Port {
    Port {
        name: p.name.clone(),
        target: p.target,
        protocol: p.protocol.map(|p| p.as_str().to_owned()),
    }
}

/// True when a field the spec sets differs from the remote sandbox.
fn needs_update(input: SandboxInput<'_>, remote: &RemoteSandbox) -> bool {
    let spec = input.spec;
    let empty = Runtime::default();
    let runtime = remote.spec.runtime.as_ref().unwrap_or(&empty);
    let labels_differ = desired_labels(spec, input.owner)
        .iter()
        .any(|(k, v)| remote.metadata.labels.get(k) != Some(v));
    let ports_differ = spec.ports.as_ref().is_some_and(|ports| {
        ports.len() != runtime.ports.len()
            || ports.iter().zip(&runtime.ports).any(|(want, have)| {
                want.target != have.target
                    || (want.name.is_some() && want.name != have.name)
                    || want.protocol.is_some_and(|p| {
                        !have
                            .protocol
                            .as_deref()
                            .is_some_and(|h| h.eq_ignore_ascii_case(p.as_str()))
                    })
            })
    });
    // Plain values are compared as they are; a Secret-sourced one by the digest of what was sent.
    let envs_differ = spec.envs.as_ref().is_some_and(|envs| {
        let want: BTreeMap<&str, Option<&str>> = envs
            .iter()
            .map(|e| {
                let plain = e.value.as_deref().unwrap_or_default();
                (e.name.as_str(), e.value_from.is_none().then_some(plain))
            })
            .collect();
        let have: BTreeMap<&str, &str> = runtime
            .envs
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or_default()))
            .collect();
        !want.keys().eq(have.keys())
            || want.iter().any(|(name, value)| match value {
                Some(v) => have.get(name) != Some(v),
                None => !input.secrets_sent,
            })
    });
    let enabled_differs = input.power_control == Some(PowerControl::Enabled)
        && remote.spec.enabled.unwrap_or(true) != (spec.state == PowerState::Running);
    runtime.image.as_deref() != Some(spec.image.as_str())
        || (spec.memory.is_some() && spec.memory != runtime.memory)
        || (spec.region.is_some() && spec.region != remote.spec.region)
        || (spec.ttl.is_some() && spec.ttl != runtime.ttl)
        || labels_differ
        || ports_differ
        || envs_differ
        || enabled_differs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::*;
    use crate::crd::{PortProtocol, SandboxEnv, SandboxPort};

    /// Cleanup with no variable known from a Secret.
    fn cleanup(
        policy: DeletionPolicy,
        observed: Option<&RemoteSandbox>,
        owner: Owner<'_>,
    ) -> CleanupStep {
        plan_cleanup(policy, observed, owner, &BTreeMap::new())
    }

    const OWNER: Owner<'static> = Owner {
        object: "team-a.dev-box",
        instance: None,
    };
    const OTHER: Owner<'static> = Owner {
        object: "team-b.other",
        instance: None,
    };

    fn spec() -> SandboxSpec {
        serde_json::from_value(serde_json::json!({
            "workspace": "acme", "image": "blaxel/base-image:latest", "memory": 4096, "region": "us-pdx-1",
            "ports": [{"name": "web", "target": 3000, "protocol": "HTTP"}], "envs": [{"name": "MODE", "value": "dev"}],
            "labels": {"team": "a"}
        }))
        .unwrap()
    }

    static NO_SECRETS: BTreeMap<String, SecretValue> = BTreeMap::new();

    fn input<'a>(spec: &'a SandboxSpec, observed: Option<&'a RemoteSandbox>) -> SandboxInput<'a> {
        SandboxInput {
            spec,
            name: "dev-box",
            owner: OWNER,
            observed,
            power_control: None,
            reported_phase: None,
            secret_envs: &NO_SECRETS,
            secrets_sent: true,
        }
    }

    /// `TOKEN`, its value from a Secret.
    fn token_from_secret() -> SandboxEnv {
        SandboxEnv {
            name: "TOKEN".into(),
            value: None,
            value_from: serde_json::from_value(
                serde_json::json!({"secretKeyRef": {"name": "s", "key": "k"}}),
            )
            .unwrap(),
        }
    }

    /// The value `TOKEN`'s Secret gives.
    fn token_value(value: &str) -> BTreeMap<String, SecretValue> {
        [("TOKEN".to_owned(), SecretValue::new(value))].into()
    }

    /// A Secret-sourced variable is sent with its value and marked secret; once sent it is compared by
    /// digest, whatever Blaxel shows back (a masked value, none); a new digest is one update.
    #[test]
    fn secret_envs_are_sent_marked_and_compared_by_digest() {
        let mut s = spec();
        s.envs = Some(vec![token_from_secret()]);
        let values = token_value("v1");
        let fresh = SandboxInput {
            secret_envs: &values,
            secrets_sent: false,
            ..input(&s, None)
        };
        let Some(SandboxAction::Create(body)) = plan(fresh).action else {
            panic!("expected create")
        };
        let env = &body.spec.runtime.as_ref().unwrap().envs[0];
        assert_eq!((env.value.as_deref(), env.secret), (Some("v1"), Some(true)));
        let mut shown = remote_for(&s, "DEPLOYED");
        shown.spec.runtime.as_mut().unwrap().envs[0].value = Some("********".into());
        assert_eq!(plan(input(&s, Some(&shown))).action, None);
        let changed = SandboxInput {
            secret_envs: &values,
            secrets_sent: false,
            ..input(&s, Some(&shown))
        };
        assert!(matches!(
            plan(changed).action,
            Some(SandboxAction::Update(_))
        ));
    }

    /// `remote` with a variable `TOKEN` marked secret, its value masked as Blaxel shows it.
    fn with_masked_secret(mut remote: RemoteSandbox) -> RemoteSandbox {
        remote.spec.runtime.as_mut().unwrap().envs.push(EnvVar {
            name: "TOKEN".into(),
            value: Some("***".into()),
            secret: Some(true),
        });
        remote
    }

    /// An update would send the remote variables back as read when the spec leaves `envs` out: with a
    /// secret one among them (masked) it is refused, naming it, and nothing is written; with `envs`
    /// declared the update carries the spec's variables, values from Secrets, never a mask. Without a
    /// difference there is nothing to refuse.
    #[test]
    fn an_update_never_sends_a_masked_secret_back() {
        let mut s = spec();
        s.envs = None;
        let remote = with_masked_secret(remote_for(&s, "DEPLOYED"));
        assert!(matches!(
            plan(input(&s, Some(&remote))).health,
            Health::Ready(_)
        ));
        s.image = "blaxel/base-image:v2".into();
        let refused = plan(input(&s, Some(&remote)));
        assert_eq!(refused.action, None);
        let Health::Stalled(why) = refused.health else {
            panic!("stalled")
        };
        assert_eq!(why.reason, SECRET_VARIABLES_UNKNOWN);
        assert!(why.message.contains("TOKEN"), "{}", why.message);

        s.envs = Some(vec![token_from_secret()]);
        let values = token_value("real");
        let declared = SandboxInput {
            secret_envs: &values,
            ..input(&s, Some(&remote))
        };
        let Some(SandboxAction::Update(body)) = plan(declared).action else {
            panic!("an update")
        };
        let envs = &body.spec.runtime.as_ref().unwrap().envs;
        assert_eq!(envs.len(), 1);
        assert_eq!(
            (envs[0].value.as_deref(), envs[0].secret),
            (Some("real"), Some(true))
        );
    }

    /// Releasing an orphan sends the sandbox back whole: a secret variable's value comes from the
    /// object's Secrets, and one no Secret gives leaves the sandbox as it is (labels included).
    #[test]
    fn a_release_never_sends_a_masked_secret_back() {
        let s = spec();
        let ours = with_masked_secret(remote_for(&s, "DEPLOYED"));
        assert_eq!(
            cleanup(DeletionPolicy::Orphan, Some(&ours), OWNER),
            CleanupStep::LeaveOwned(vec!["TOKEN".into()])
        );
        let values = token_value("real");
        let CleanupStep::Release(body) =
            plan_cleanup(DeletionPolicy::Orphan, Some(&ours), OWNER, &values)
        else {
            panic!("a release")
        };
        let envs = &body.spec.runtime.as_ref().unwrap().envs;
        let token = envs.iter().find(|e| e.name == "TOKEN").unwrap();
        assert_eq!(token.value.as_deref(), Some("real"));
        assert_eq!(
            cleanup(DeletionPolicy::Delete, Some(&ours), OWNER),
            CleanupStep::Delete,
            "a deletion sends no body"
        );
    }

    /// The sandbox as Blaxel would hold it after creating it from `spec`, with a given status.
    fn remote_for(spec: &SandboxSpec, status: &str) -> RemoteSandbox {
        let Some(SandboxAction::Create(mut body)) = plan(input(spec, None)).action else {
            panic!("expected create")
        };
        body.status = Some(status.into());
        body.extra.insert("events".into(), serde_json::json!([]));
        body.spec
            .runtime
            .as_mut()
            .unwrap()
            .extra
            .insert("generation".into(), "mk3".into());
        body
    }

    /// Absent remotely: create with the spec, the ownership labels and the remote name.
    #[test]
    fn absent_is_created_with_labels() {
        let s = spec();
        let Some(SandboxAction::Create(body)) = plan(input(&s, None)).action else {
            panic!("expected create")
        };
        assert_eq!(body.metadata.name, "dev-box");
        assert_eq!(
            body.metadata.labels.get(OWNER_LABEL).map(String::as_str),
            Some(OWNER.object)
        );
        assert_eq!(
            body.metadata.labels.get("team").map(String::as_str),
            Some("a")
        );
        let rt = body.spec.runtime.unwrap();
        assert_eq!(
            (rt.image.as_deref(), rt.memory),
            (Some("blaxel/base-image:latest"), Some(4096))
        );
        assert_eq!(rt.ports[0].protocol.as_deref(), Some("HTTP"));
        assert_eq!(
            body.spec.enabled, None,
            "enabled is only sent where it controls power"
        );
    }

    /// Deployed and matching: Ready, no write (no blind writes), unknown remote fields ignored.
    #[test]
    fn matching_deployed_is_ready_without_write() {
        let s = spec();
        let remote = remote_for(&s, "DEPLOYED");
        let plan = plan(input(&s, Some(&remote)));
        assert_eq!(plan.action, None);
        assert!(matches!(plan.health, Health::Ready(ref w) if w.reason == "Running"));
        assert!(!plan.adopts);
    }

    /// Remote defaults for fields the spec leaves out never cause a write.
    #[test]
    fn remote_defaults_do_not_cause_updates() {
        let mut s = spec();
        s.memory = None;
        s.region = None;
        s.ports = Some(vec![SandboxPort {
            name: None,
            target: 3000,
            protocol: None,
        }]);
        let mut remote = remote_for(&spec(), "DEPLOYED");
        remote
            .metadata
            .labels
            .insert("blaxel-internal".into(), "x".into());
        remote.spec.runtime.as_mut().unwrap().ttl = Some("24h".into());
        assert_eq!(plan(input(&s, Some(&remote))).action, None);
        // A ttl the spec sets and the remote already has is no difference either.
        s.ttl = Some("24h".into());
        assert_eq!(plan(input(&s, Some(&remote))).action, None);
    }

    /// A changed image, memory, ttl, env, label or port (its name, target or protocol alone) is an update
    /// that keeps unknown remote fields.
    #[test]
    fn spec_change_is_an_update_preserving_unknown_fields() {
        let remote = remote_for(&spec(), "DEPLOYED");
        let changes: [fn(&mut SandboxSpec); 8] = [
            |s| s.image = "other:1".into(),
            |s| s.memory = Some(8192),
            |s| s.ttl = Some("2h".into()),
            |s| s.ports.as_mut().unwrap()[0].name = Some("api".into()),
            |s| s.ports.as_mut().unwrap()[0].target = 8080,
            |s| {
                s.envs.get_or_insert_default().push(SandboxEnv {
                    name: "X".into(),
                    value: Some("1".into()),
                    value_from: None,
                });
            },
            |s| s.ports.as_mut().unwrap()[0].protocol = Some(PortProtocol::Tcp),
            |s| {
                s.labels.insert("new".into(), "1".into());
            },
        ];
        for change in changes {
            let mut s = spec();
            change(&mut s);
            let Some(SandboxAction::Update(body)) = plan(input(&s, Some(&remote))).action else {
                panic!("expected update")
            };
            assert!(body.extra.contains_key("events"));
            assert!(
                body.spec
                    .runtime
                    .as_ref()
                    .unwrap()
                    .extra
                    .contains_key("generation")
            );
            assert_eq!(body.status, None, "read-only status is not sent");
        }
    }

    /// Desired Stopped on a deployed sandbox: stop; desired Running on a deactivated one: start.
    #[test]
    fn power_state_uses_start_stop() {
        let mut s = spec();
        s.state = PowerState::Stopped;
        let remote = remote_for(&s, "DEPLOYED");
        assert_eq!(
            plan(input(&s, Some(&remote))).action,
            Some(SandboxAction::Stop)
        );
        s.state = PowerState::Running;
        let stopped = remote_for(&s, "DEACTIVATED");
        assert_eq!(
            plan(input(&s, Some(&stopped))).action,
            Some(SandboxAction::Start)
        );
        s.state = PowerState::Stopped;
        let plan = plan(input(&s, Some(&stopped)));
        assert_eq!(plan.action, None);
        assert!(matches!(plan.health, Health::Ready(ref w) if w.reason == "Stopped"));
    }

    /// With today's API the power state rides on spec.enabled in one update.
    #[test]
    fn power_state_uses_enabled_on_todays_api() {
        let mut s = spec();
        let remote = remote_for(&s, "DEPLOYED");
        s.state = PowerState::Stopped;
        let mut i = input(&s, Some(&remote));
        i.power_control = Some(PowerControl::Enabled);
        let Some(SandboxAction::Update(body)) = plan(i).action else {
            panic!("expected update")
        };
        assert_eq!(body.spec.enabled, Some(false));
        let mut disabled = remote.clone();
        disabled.spec.enabled = Some(false);
        i.observed = Some(&disabled);
        assert_eq!(plan(i).action, None);
    }

    /// Transitional statuses wait without writing; unknown statuses count as transitional.
    #[test]
    fn transitional_waits() {
        let s = spec();
        for status in ["DEPLOYING", "DEACTIVATING", "BUILDING", "HIBERNATING"] {
            let remote = remote_for(&s, status);
            let plan = plan(input(&s, Some(&remote)));
            assert_eq!(plan.action, None, "{status}");
            assert!(matches!(plan.health, Health::Progressing(_)), "{status}");
        }
    }

    /// A sandbox being deleted remotely is never written, even when the spec differs: it waits.
    #[test]
    fn deleting_is_never_updated() {
        let mut s = spec();
        let remote = remote_for(&s, "DELETING");
        s.image = "other:2".into();
        let plan = plan(input(&s, Some(&remote)));
        assert_eq!(plan.action, None);
        assert!(matches!(plan.health, Health::Progressing(ref w) if w.reason == "RemoteDeleting"));
    }

    /// FAILED surfaces the remote message as Stalled.
    #[test]
    fn failed_surfaces_remote_message() {
        let s = spec();
        let mut remote = remote_for(&s, "FAILED");
        remote.extra.insert(
            "events".into(),
            serde_json::json!([{"message": "image not found"}]),
        );
        let plan = plan(input(&s, Some(&remote)));
        assert!(
            matches!(plan.health, Health::Stalled(ref w) if w.reason == "RemoteFailed" && w.message == "image not found")
        );
    }

    /// TERMINATED while the object still exists: create again.
    #[test]
    fn terminated_is_recreated() {
        let s = spec();
        let remote = remote_for(&s, "TERMINATED");
        assert!(matches!(
            plan(input(&s, Some(&remote))).action,
            Some(SandboxAction::Create(_))
        ));
    }

    /// A sandbox without an owner label is adopted (labels written); another owner's is left alone, Stalled.
    #[test]
    fn adoption_and_foreign_owner() {
        let s = spec();
        let mut unowned = remote_for(&s, "DEPLOYED");
        unowned.metadata.labels.clear();
        let plan_unowned = plan(input(&s, Some(&unowned)));
        assert!(plan_unowned.adopts);
        assert!(matches!(
            plan_unowned.action,
            Some(SandboxAction::Update(_))
        ));
        let mut theirs = unowned;
        theirs
            .metadata
            .labels
            .insert(OWNER_LABEL.into(), OTHER.object.into());
        let plan_theirs = plan(input(&s, Some(&theirs)));
        assert_eq!(plan_theirs.action, None);
        assert!(
            matches!(plan_theirs.health, Health::Stalled(ref w) if w.reason == "OwnedByAnother")
        );
    }

    /// Cleanup deletes ours, waits while DELETING, is done when gone or TERMINATED, never touches theirs.
    #[test]
    fn cleanup_steps() {
        let s = spec();
        let ours = remote_for(&s, "DEPLOYED");
        assert_eq!(
            cleanup(DeletionPolicy::Delete, Some(&ours), OWNER),
            CleanupStep::Delete
        );
        assert_eq!(
            cleanup(DeletionPolicy::Delete, None, OWNER),
            CleanupStep::Done
        );
        assert_eq!(
            cleanup(
                DeletionPolicy::Delete,
                Some(&remote_for(&s, "DELETING")),
                OWNER
            ),
            CleanupStep::Wait
        );
        assert_eq!(
            cleanup(
                DeletionPolicy::Delete,
                Some(&remote_for(&s, "TERMINATED")),
                OWNER
            ),
            CleanupStep::Done
        );
        assert_eq!(
            cleanup(DeletionPolicy::Delete, Some(&ours), OTHER),
            CleanupStep::Done
        );
    }

    /// Only a sandbox carrying this object's ownership is deleted: an unowned one (never taken over, or
    /// whose takeover failed) and another instance's are left alone.
    #[test]
    fn cleanup_deletes_only_what_is_ours() {
        let s = spec();
        let mut unowned = remote_for(&s, "DEPLOYED");
        unowned.metadata.labels.clear();
        for policy in [DeletionPolicy::Delete, DeletionPolicy::Orphan] {
            assert_eq!(cleanup(policy, Some(&unowned), OWNER), CleanupStep::Done);
        }
        let ours = remote_for(&s, "DEPLOYED");
        let east = Owner {
            instance: Some("east"),
            ..OWNER
        };
        assert_eq!(
            cleanup(DeletionPolicy::Delete, Some(&ours), east),
            CleanupStep::Done,
            "the default instance's sandbox is not instance east's"
        );
    }

    /// Orphaning releases our sandbox: the same body less the ownership labels, nothing else changed.
    #[test]
    fn orphan_releases_ownership() {
        let s = spec();
        let ours = remote_for(&s, "DEPLOYED");
        let CleanupStep::Release(body) = cleanup(DeletionPolicy::Orphan, Some(&ours), OWNER) else {
            panic!("expected a release")
        };
        for label in [OWNER_LABEL, MANAGED_BY_LABEL, INSTANCE_LABEL] {
            assert!(!body.metadata.labels.contains_key(label), "{label}");
        }
        assert_eq!(
            body.metadata.labels.get("team").map(String::as_str),
            Some("a")
        );
        assert_eq!(body.spec, ours.spec);
        assert_eq!(body.status, None);
    }

    /// With an instance, ownership takes both labels; without one, a sandbox labelled before instances
    /// existed is still ours.
    #[test]
    fn instance_is_part_of_ownership() {
        let s = spec();
        let legacy = remote_for(&s, "DEPLOYED");
        assert_eq!(ownership(&legacy, OWNER), Ownership::Ours);
        let east = Owner {
            instance: Some("east"),
            ..OWNER
        };
        assert_eq!(ownership(&legacy, east), Ownership::Theirs);
        let mut i = input(&s, None);
        i.owner = east;
        let Some(SandboxAction::Create(body)) = plan(i).action else {
            panic!("expected create")
        };
        assert_eq!(
            body.metadata.labels.get(INSTANCE_LABEL).map(String::as_str),
            Some("east")
        );
        assert_eq!(ownership(&body, east), Ownership::Ours);
        assert_eq!(ownership(&body, OWNER), Ownership::Theirs);
    }

    /// Taking over never erases what the spec leaves out: ports and envs absent from the spec are kept
    /// and never compared; `[]` does clear them.
    #[test]
    fn adoption_keeps_lists_the_spec_leaves_out() {
        let mut s = spec();
        let mut unowned = remote_for(&s, "DEPLOYED");
        unowned.metadata.labels.clear();
        s.ports = None;
        s.envs = None;
        let Some(SandboxAction::Update(body)) = plan(input(&s, Some(&unowned))).action else {
            panic!("expected the adopting update")
        };
        let runtime = body.spec.runtime.unwrap();
        assert_eq!(runtime.ports.len(), 1);
        assert_eq!(runtime.envs.len(), 1);
        let mut owned = unowned.clone();
        owned.metadata.labels = desired_labels(&s, OWNER);
        assert_eq!(
            plan(input(&s, Some(&owned))).action,
            None,
            "nothing to compare"
        );
        s.ports = Some(Vec::new());
        let Some(SandboxAction::Update(body)) = plan(input(&s, Some(&owned))).action else {
            panic!("an explicit empty list is a change")
        };
        assert!(body.spec.runtime.unwrap().ports.is_empty());
    }

    /// A sandbox with spec.ttl that was seen at this generation and is gone (absent or TERMINATED) is
    /// expired, not recreated; without ttl, or never seen, it is created.
    #[test]
    fn expired_ttl_is_not_recreated() {
        let mut s = spec();
        s.ttl = Some("1h".into());
        let terminated = remote_for(&s, "TERMINATED");
        for observed in [None, Some(&terminated)] {
            let mut i = input(&s, observed);
            i.reported_phase = Some("DEPLOYED");
            let plan = plan(i);
            assert_eq!(plan.action, None);
            assert!(matches!(plan.health, Health::Stalled(ref w) if w.reason == TTL_EXPIRED));
            i.reported_phase = None;
            assert!(matches!(
                super::plan(i).action,
                Some(SandboxAction::Create(_))
            ));
        }
        s.ttl = None;
        let mut i = input(&s, None);
        i.reported_phase = Some("DEPLOYED");
        assert!(matches!(plan(i).action, Some(SandboxAction::Create(_))));
    }
}
