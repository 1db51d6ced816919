//! Duplicate claims: two objects naming the same remote identity must not fight over it.
//!
//! The oldest object (by creation time, then namespace and name) holds the claim; the others are Stalled and
//! make no remote call. Deciding from the controller's own cache costs no API call.

use kube::ResourceExt;

/// The object holding the claim on `key`, when it is not `me`: `Some("namespace/name")`.
///
/// `key_of` gives each object's remote identity (for example `workspace` + lower-cased e-mail).
pub fn holder<'a, K, I>(me: &K, others: I, key_of: impl Fn(&K) -> String) -> Option<String>
where
    K: kube::Resource + 'a,
    I: IntoIterator<Item = &'a K>,
{
    let key = key_of(me);
    let rank = |k: &K| (k.creation_timestamp(), k.namespace(), k.name_any());
    let my_rank = rank(me);
    others
        .into_iter()
        .filter(|other| other.uid() != me.uid() && key_of(other) == key)
        .map(|other| (rank(other), other))
        .filter(|(r, _)| *r < my_rank)
        .min_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, other)| format!("{}/{}", other.namespace().unwrap_or_default(), other.name_any()))
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

    /// The older object holds the claim; the newer one is told who holds it.
    #[test]
    fn older_wins() {
        let old = obj("a", "alice", 10, "k");
        let new = obj("b", "alice2", 20, "k");
        let all = [old.clone(), new.clone()];
        assert_eq!(holder(&old, &all, key), None);
        assert_eq!(holder(&new, &all, key).as_deref(), Some("a/alice"));
    }

    /// Same creation second: namespace then name decide, so exactly one object wins.
    #[test]
    fn ties_break_by_name() {
        let x = obj("a", "x", 10, "k");
        let y = obj("a", "y", 10, "k");
        let all = [x.clone(), y.clone()];
        assert_eq!(holder(&x, &all, key), None);
        assert_eq!(holder(&y, &all, key).as_deref(), Some("a/x"));
    }

    /// Objects with other keys never conflict.
    #[test]
    fn other_keys_do_not_conflict() {
        let x = obj("a", "x", 10, "k1");
        let y = obj("a", "y", 5, "k2");
        assert_eq!(holder(&x, &[x.clone(), y], key), None);
    }
}
