//! Duplicate claims: two objects naming the same remote identity must not fight over it.
//!
//! The oldest object (by creation time, then namespace and name) holds the claim; the others are Stalled and
//! make no remote call. Deciding from the controller's own cache costs no API call.
//!
//! This runs on every reconcile against every cached object of the kind, so it must not allocate per
//! object: `same_claim` compares two objects by reference, and only the (rare) objects sharing a claim
//! are ranked.

use kube::ResourceExt;
use kube::runtime::reflector::Store;

/// The object holding the claim that `me` makes, when it is not `me`: `Some("namespace/name")`.
///
/// `same_claim` tells whether two objects name the same remote identity (for example the same workspace
/// and the same case-folded e-mail); it is called with `me` as its first argument.
pub fn holder<'a, K, I>(me: &K, others: I, same_claim: impl Fn(&K, &K) -> bool) -> Option<String>
where
    K: kube::Resource + 'a,
    I: IntoIterator<Item = &'a K>,
{
    let mut rivals = others
        .into_iter()
        .filter(|other| other.meta().uid != me.meta().uid && same_claim(me, other))
        .peekable();
    rivals.peek()?;
    let rank = |k: &K| (k.creation_timestamp(), k.namespace(), k.name_any());
    let my_rank = rank(me);
    rivals
        .map(|other| (rank(other), other))
        .filter(|(r, _)| *r < my_rank)
        .min_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, other)| {
            format!(
                "{}/{}",
                other.namespace().unwrap_or_default(),
                other.name_any()
            )
        })
}

/// [`holder`] over a reflector store: a first pass under the store's read lock finds whether any other
/// object shares the claim at all (almost never), so the common case neither clones the store's list nor
/// allocates.
pub fn holder_in<K>(me: &K, store: &Store<K>, same_claim: impl Fn(&K, &K) -> bool) -> Option<String>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store.find(|other| other.meta().uid != me.meta().uid && same_claim(me, other))?;
    holder(me, store.state().iter().map(AsRef::as_ref), same_claim)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn obj(ns: &str, name: &str, created: i64, key: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                uid: Some(format!("{ns}-{name}")),
                creation_timestamp: jiff::Timestamp::from_second(created).ok().map(Time),
                labels: Some([("key".to_owned(), key.to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn key(c: &ConfigMap) -> String {
        c.labels().get("key").cloned().unwrap_or_default()
    }

    fn same(a: &ConfigMap, b: &ConfigMap) -> bool {
        key(a) == key(b)
    }

    /// The older object holds the claim; the newer one is told who holds it.
    #[test]
    fn older_wins() {
        let old = obj("a", "alice", 10, "k");
        let new = obj("b", "alice2", 20, "k");
        let all = [old.clone(), new.clone()];
        assert_eq!(holder(&old, &all, same), None);
        assert_eq!(holder(&new, &all, same).as_deref(), Some("a/alice"));
    }

    /// Same creation second: namespace then name decide, so exactly one object wins.
    #[test]
    fn ties_break_by_name() {
        let x = obj("a", "x", 10, "k");
        let y = obj("a", "y", 10, "k");
        let all = [x.clone(), y.clone()];
        assert_eq!(holder(&x, &all, same), None);
        assert_eq!(holder(&y, &all, same).as_deref(), Some("a/x"));
    }

    /// Objects with other keys never conflict.
    #[test]
    fn other_keys_do_not_conflict() {
        let x = obj("a", "x", 10, "k1");
        let y = obj("a", "y", 5, "k2");
        assert_eq!(holder(&x, &[x.clone(), y], same), None);
    }
}
