//! Whether a workspace name is free to create: the four reasons of the 2026 `WorkspaceAvailability` schema.
//!
//! Workspace names are global in Blaxel. A name is `taken` when this account has a workspace of that name (in
//! any status) or another account has it (`--foreign-workspace`, `POST /_sim/workspaces/{ws}/foreign`). The
//! three `forbidden_*` reasons are the definition's; the rules behind them are not published, so the simulator
//! uses these (see docs/simulator.md):
//! - `forbidden_blaxel`: the name contains `blaxel`;
//! - `forbidden_v_prefix`: the name is `v` followed by a digit (`v0`, `v2-prod`), which reads as an API version;
//! - `forbidden_reserved`: the name is one of [`RESERVED`].

use crate::sim::state::World;

/// Names no account may take.
pub const RESERVED: [&str; 16] = [
    "admin",
    "api",
    "app",
    "auth",
    "availability",
    "console",
    "dashboard",
    "docs",
    "login",
    "oauth",
    "root",
    "run",
    "status",
    "support",
    "workspace",
    "www",
];

/// Why a name cannot be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// A workspace of this account or another one has it.
    Taken,
    /// A reserved word.
    Reserved,
    /// Contains `blaxel`.
    Blaxel,
    /// Starts like an API version (`v` and a digit).
    VPrefix,
}

impl Unavailable {
    /// The definition's `reason` value.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::Taken => "taken",
            Self::Reserved => "forbidden_reserved",
            Self::Blaxel => "forbidden_blaxel",
            Self::VPrefix => "forbidden_v_prefix",
        }
    }

    /// A sentence for a person (`message`).
    #[must_use]
    pub fn message(self, name: &str) -> String {
        match self {
            Self::Taken => format!("The workspace name {name:?} is already taken"),
            Self::Reserved => format!("The workspace name {name:?} is reserved"),
            Self::Blaxel => format!("Workspace names must not contain \"blaxel\" ({name:?})"),
            Self::VPrefix => {
                format!("Workspace names must not start with \"v\" followed by a digit ({name:?})")
            }
        }
    }
}

/// The reason a name is forbidden to every account, if it is.
#[must_use]
pub fn forbidden(name: &str) -> Option<Unavailable> {
    if name.contains("blaxel") {
        return Some(Unavailable::Blaxel);
    }
    let mut chars = name.chars();
    if chars.next() == Some('v') && chars.next().is_some_and(|c| c.is_ascii_digit()) {
        return Some(Unavailable::VPrefix);
    }
    RESERVED.contains(&name).then_some(Unavailable::Reserved)
}

/// Why `name` cannot be created now, if it cannot (taken first: a taken reserved name reads as taken).
#[must_use]
pub fn unavailable(world: &World, name: &str) -> Option<Unavailable> {
    if world.workspaces.contains_key(name) || world.foreign.contains(name) {
        return Some(Unavailable::Taken);
    }
    forbidden(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each rule, and the names it must not catch.
    #[test]
    fn forbidden_names() {
        assert_eq!(forbidden("my-blaxel-ws"), Some(Unavailable::Blaxel));
        assert_eq!(forbidden("v2-prod"), Some(Unavailable::VPrefix));
        assert_eq!(forbidden("v0"), Some(Unavailable::VPrefix));
        assert_eq!(forbidden("www"), Some(Unavailable::Reserved));
        for ok in ["vault", "v", "prod-v2", "acme", "wwwx"] {
            assert_eq!(forbidden(ok), None, "{ok}");
        }
    }
}
