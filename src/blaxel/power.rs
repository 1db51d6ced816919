//! What the client has learnt about power control, per workspace.
//!
//! The 2025 API starts and stops sandboxes with `PUT /sandboxes/{name}/start|stop`; today's API has no such
//! routes (they answer 404) and uses `spec.enabled` instead. The first power call in a workspace finds out
//! which one applies and records it here; while a workspace's mode is still unknown, its power calls take
//! a per-workspace async lock, so concurrent reconcilers probe the old routes once, not once each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::api::PowerControl;

/// The power-control mode known per workspace, and the locks that serialise its detection.
#[derive(Debug, Default)]
pub struct PowerModes {
    known: Mutex<HashMap<String, PowerControl>>,
    detecting: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl PowerModes {
    /// The mode recorded for `workspace`, if any call has told.
    #[must_use]
    pub fn get(&self, workspace: &str) -> Option<PowerControl> {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(workspace)
            .copied()
    }

    /// Records the mode of `workspace`; returns true when this changes what was known.
    pub fn set(&self, workspace: &str, mode: PowerControl) -> bool {
        let previous = self
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(workspace.to_owned(), mode);
        previous != Some(mode)
    }

    /// Holds the detection lock of `workspace` until the guard is dropped.
    pub async fn detection_guard(&self, workspace: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = Arc::clone(
            self.detecting
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(workspace.to_owned())
                .or_default(),
        );
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Modes are per workspace and `set` reports only real changes.
    #[test]
    fn modes_are_per_workspace() {
        let modes = PowerModes::default();
        assert_eq!(modes.get("a"), None);
        assert!(modes.set("a", PowerControl::Enabled));
        assert!(!modes.set("a", PowerControl::Enabled));
        assert_eq!(modes.get("a"), Some(PowerControl::Enabled));
        assert_eq!(modes.get("b"), None);
    }

    /// The detection lock of one workspace excludes a second holder but not another workspace.
    #[tokio::test]
    async fn detection_lock_is_per_workspace() {
        let modes = PowerModes::default();
        let _held = modes.detection_guard("a").await;
        let _other = modes.detection_guard("b").await;
        assert!(
            futures::FutureExt::now_or_never(modes.detection_guard("a")).is_none(),
            "a second holder must wait"
        );
    }
}
