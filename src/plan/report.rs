//! What `plan` found: per workspace, the remote writes the operator would make, and what stops it.
//! This is the JSON output's shape (version 1), documented in the README; fields are only ever added.

use serde::Serialize;

/// A remote write the operator would make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A member removed (`DELETE /users/{email}`).
    Remove,
    /// An invitation revoked (`DELETE /users/{email}` of a pending one).
    Revoke,
    /// A remote object deleted.
    Delete,
    /// An invitation sent.
    Invite,
    /// A member's or invitation's role changed.
    SetRole,
    /// A remote object created.
    Create,
    /// A remote object taken over: written with the operator's ownership (and the spec).
    Adopt,
    /// A remote object updated.
    Update,
    /// A sandbox started.
    Start,
    /// A sandbox stopped.
    Stop,
    /// A remote object released: the operator's ownership taken off, the object kept.
    Release,
}

impl Action {
    /// Whether it takes access or an object away (shown first).
    #[must_use]
    pub fn is_removal(self) -> bool {
        matches!(self, Self::Remove | Self::Revoke | Self::Delete)
    }

    /// Its name in the output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Remove => "remove",
            Self::Revoke => "revoke",
            Self::Delete => "delete",
            Self::Invite => "invite",
            Self::SetRole => "set-role",
            Self::Create => "create",
            Self::Adopt => "adopt",
            Self::Update => "update",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Release => "release",
        }
    }
}

/// One remote write, and the object it is made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What is done.
    pub action: Action,
    /// The object's kind.
    pub kind: String,
    /// The object, `namespace/name`.
    pub object: String,
    /// The remote thing written: an e-mail, a sandbox name.
    pub target: String,
    /// What changes, one line each (`role: member -> admin`); secret values never, only "changed".
    pub details: Vec<String>,
}

/// Why the operator would not act for an object (it would report it in the object's conditions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The object's kind.
    pub kind: String,
    /// The object, `namespace/name`.
    pub object: String,
    /// The condition reason the operator would report.
    pub reason: String,
    /// Its message.
    pub message: String,
}

/// The plan of one workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkspacePlan {
    /// The workspace.
    pub workspace: String,
    /// Where its key came from (`BL_API_KEY_<WORKSPACE>`, `BL_API_KEY`, `--api-key-file`), never the key.
    pub credentials: Option<String>,
    /// Why it could not be planned (no key, a remote error); its changes are then unknown.
    pub error: Option<String>,
    /// The writes, removals first.
    pub changes: Vec<Change>,
    /// Objects the operator would not act for.
    pub notes: Vec<Note>,
    /// Objects already as declared.
    pub unchanged: usize,
}

/// A manifest refused before anything was planned, with the API server's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalid {
    /// The file (`-`: stdin).
    pub file: String,
    /// The document in the file, from 1.
    pub document: usize,
    /// `Kind namespace/name`, when it could be read.
    pub object: Option<String>,
    /// What is wrong.
    pub errors: Vec<String>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The JSON shape's version: 1.
    pub version: u32,
    /// Refused manifests: nothing is planned while there is one.
    pub invalid: Vec<Invalid>,
    /// Per workspace, in name order.
    pub workspaces: Vec<WorkspacePlan>,
}

impl Plan {
    /// Every change, in every workspace.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.workspaces.iter().flat_map(|w| w.changes.iter())
    }

    /// The exit code: 1 when a manifest is refused or a workspace could not be planned, else 2 when
    /// something would change, else 0 (as `terraform plan -detailed-exitcode`).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        if !self.invalid.is_empty() || self.workspaces.iter().any(|w| w.error.is_some()) {
            1
        } else if self.changes().next().is_some() {
            2
        } else {
            0
        }
    }
}
