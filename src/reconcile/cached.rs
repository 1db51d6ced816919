//! The copy of each object the operator keeps between reconciles.
//!
//! The reflector stores hold every object for as long as the operator runs, so what they keep is what
//! its memory grows with. A reconcile reads the metadata and the spec in full, but of the status only the
//! fields it carries forward and, of each condition, whether it is True and since when: reasons and
//! messages are rebuilt on every pass. A [`Cached`] object keeps just that, and a digest of the whole
//! status, so that a pass that would write the status it read writes nothing. The four conditions were
//! about half of each cached object.

use std::borrow::Cow;
use std::fmt;
use std::hash::{DefaultHasher, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::Resource;
use kube::core::object::{HasSpec, HasStatus};
use serde::de::DeserializeOwned;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::conditions::Transitions;
use crate::crd::{SandboxStatus, WorkspaceMemberStatus};

/// A status type with conditions.
pub trait WithConditions: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync {
    /// The conditions, to be taken out of the cached copy.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// The conditions.
    fn conditions(&self) -> &[Condition];
}

impl WithConditions for WorkspaceMemberStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl WithConditions for SandboxStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

/// A custom resource as the operator keeps it: metadata and spec whole, the status [`Seen`].
///
/// It deserializes from the resource's JSON, so the watch builds it directly. It serializes only its
/// `apiVersion`, `kind`, `metadata` and `spec` (kube's finalizer helper asks for `Serialize`; the
/// operator never sends a cached object: statuses are written from the full status type).
pub struct Cached<K: HasSpec + HasStatus> {
    /// The object's metadata.
    pub metadata: ObjectMeta,
    /// The spec, whole.
    pub spec: K::Spec,
    /// The status as last seen, when it has one.
    pub status: Option<Seen<K::Status>>,
}

impl<K> Cached<K>
where
    K: HasSpec + HasStatus,
    K::Status: Clone + Default,
{
    /// The status's fields as last seen, conditions left out; the default before the first status.
    #[must_use]
    pub fn status_fields(&self) -> K::Status {
        self.status
            .as_ref()
            .map(|s| s.fields.clone())
            .unwrap_or_default()
    }
}

/// A status as the watch last showed it, without the reasons and messages of its conditions.
#[derive(Debug, Clone)]
pub struct Seen<S> {
    /// Every field but the conditions (left empty).
    pub fields: S,
    /// Of each condition: whether it is True, and since when.
    pub transitions: Transitions,
    digest: u64,
}

impl<S: WithConditions> Seen<S> {
    /// Summarises a whole status.
    #[must_use]
    pub fn new(mut status: S) -> Self {
        let digest = digest(&status);
        let conditions = std::mem::take(status.conditions_mut());
        Self {
            fields: status,
            transitions: Transitions::of(&conditions),
            digest,
        }
    }

    /// True when `status` is the status this was made from.
    #[must_use]
    pub fn is(&self, status: &S) -> bool {
        self.digest == digest(status)
    }
}

/// The digest of the status a cached object was last seen with, for the operator to tell whether its
/// own last status write has reached the cache yet (see [`super::WrittenStatuses`]).
pub trait SeenStatus {
    /// The digest of the whole status last seen; `None` before the first status.
    fn seen_status(&self) -> Option<u64>;
}

impl<K: HasSpec + HasStatus> SeenStatus for Cached<K> {
    fn seen_status(&self) -> Option<u64> {
        self.status.as_ref().map(|s| s.digest)
    }
}

/// A hash of `value`'s JSON: equal values of one type give equal JSON, so equal digests.
pub fn digest<S: Serialize>(value: &S) -> u64 {
    struct Hashing(DefaultHasher);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Hashing(DefaultHasher::new());
    // Writing into a hasher cannot fail, and the status types serialize infallibly: a failure would
    // only give a digest no status matches, hence one more status write.
    let _ = serde_json::to_writer(&mut out, value);
    out.0.finish()
}

impl<K> Resource for Cached<K>
where
    K: Resource<DynamicType = ()> + HasSpec + HasStatus,
{
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &()) -> Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl<'de, K> Deserialize<'de> for Cached<K>
where
    K: HasSpec + HasStatus,
    K::Spec: DeserializeOwned,
    K::Status: WithConditions,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(bound = "P: DeserializeOwned, S: DeserializeOwned")]
        struct Wire<P, S> {
            metadata: ObjectMeta,
            spec: P,
            status: Option<S>,
        }
        let wire = Wire::<K::Spec, K::Status>::deserialize(deserializer)?;
        Ok(Self {
            metadata: wire.metadata,
            spec: wire.spec,
            status: wire.status.map(Seen::new),
        })
    }
}

impl<K> Serialize for Cached<K>
where
    K: Resource<DynamicType = ()> + HasSpec + HasStatus,
    K::Spec: Serialize,
{
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut out = serializer.serialize_struct("Cached", 4)?;
        out.serialize_field("apiVersion", &K::api_version(&()))?;
        out.serialize_field("kind", &K::kind(&()))?;
        out.serialize_field("metadata", &self.metadata)?;
        out.serialize_field("spec", &self.spec)?;
        out.end()
    }
}

impl<K> Clone for Cached<K>
where
    K: HasSpec + HasStatus,
    K::Spec: Clone,
    K::Status: Clone,
{
    fn clone(&self) -> Self {
        Self {
            metadata: self.metadata.clone(),
            spec: self.spec.clone(),
            status: self.status.clone(),
        }
    }
}

impl<K> fmt::Debug for Cached<K>
where
    K: HasSpec + HasStatus,
    K::Spec: fmt::Debug,
    K::Status: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("metadata", &self.metadata)
            .field("spec", &self.spec)
            .field("status", &self.status)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::crd::{MemberPhase, WorkspaceMember};

    fn member() -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "blaxel.ai/v1alpha1",
            "kind": "WorkspaceMember",
            "metadata": {"name": "alice", "namespace": "team", "uid": "u1", "generation": 2},
            "spec": {"workspace": "ws", "email": "alice@example.com", "role": "admin"},
            "status": {
                "observedGeneration": 2,
                "phase": "Active",
                "sub": "user-1",
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Active", "message": "Member",
                     "lastTransitionTime": "2026-11-30T10:00:00Z", "observedGeneration": 2},
                    {"type": "Stalled", "status": "False", "reason": "Idle", "message": "Nothing to do",
                     "lastTransitionTime": "2026-11-30T09:00:00Z", "observedGeneration": 2},
                ],
            },
        })
    }

    /// The cached copy keeps metadata, spec and status fields, and of the conditions only their
    /// transitions; it still recognises the whole status it was made from, and no other.
    #[test]
    fn keeps_transitions_and_recognises_its_status() {
        let cached: Cached<WorkspaceMember> = serde_json::from_value(member()).unwrap();
        let full: WorkspaceMember = serde_json::from_value(member()).unwrap();
        assert_eq!(cached.metadata, full.metadata);
        assert_eq!(cached.spec, full.spec);
        let seen = cached.status.as_ref().unwrap();
        assert_eq!(seen.fields.phase, Some(MemberPhase::Active));
        assert_eq!(seen.fields.sub.as_deref(), Some("user-1"));
        assert!(
            seen.fields.conditions.is_empty(),
            "no condition text is kept"
        );
        assert!(seen.transitions.is_true("Ready"));
        let nine: jiff::Timestamp = "2026-11-30T09:00:00Z".parse().unwrap();
        assert_eq!(
            seen.transitions.since("Stalled", false),
            Some(&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(nine))
        );

        let status = full.status.unwrap();
        assert!(seen.is(&status));
        let mut reworded = status.clone();
        reworded.conditions[0].message = "Member since today".into();
        assert!(!seen.is(&reworded), "a new message is a new status");
        let mut moved = status;
        moved.reinvites = 1;
        assert!(!seen.is(&moved));
    }

    /// Without a status there is nothing seen, and the fields default.
    #[test]
    fn no_status_is_none() {
        let mut json = member();
        json.as_object_mut().unwrap().remove("status");
        let cached: Cached<WorkspaceMember> = serde_json::from_value(json).unwrap();
        assert!(cached.status.is_none());
        assert_eq!(cached.status_fields(), WorkspaceMemberStatus::default());
    }

    /// It serializes as the resource without a status, and carries the resource's identity.
    #[test]
    fn serializes_without_status_and_names_the_kind() {
        let cached: Cached<WorkspaceMember> = serde_json::from_value(member()).unwrap();
        let json = serde_json::to_value(&cached).unwrap();
        assert_eq!(json["apiVersion"], "blaxel.ai/v1alpha1");
        assert_eq!(json["kind"], "WorkspaceMember");
        assert_eq!(json["spec"]["email"], "alice@example.com");
        assert!(json.get("status").is_none());
        assert_eq!(Cached::<WorkspaceMember>::plural(&()), "workspacemembers");
        assert_eq!(Cached::<WorkspaceMember>::kind(&()), "WorkspaceMember");
    }
}
