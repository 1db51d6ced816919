//! The project's own record of the response shapes in Blaxel's API definitions (2025-11-28, the contract,
//! and 2026-08-21, today's), written down field by field so the tests can check every body without reading
//! the definitions at test time.
//!
//! Each schema lists the fields it may carry with their JSON type and whether the simulator always sends
//! them. A field a body carries that its schema does not list is an error too: it catches one generation's
//! fields leaking into the other. Fields the simulator adds beyond a definition are marked `// extension`.

use serde_json::Value;

/// A JSON type (with the detail the definitions give).
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    /// A string that must be an RFC 3339 timestamp.
    Time,
    /// A string from a fixed set.
    Enum(&'static [&'static str]),
    Bool,
    Int,
    /// An object with a known schema.
    Obj(&'static Schema),
    /// An object of any content.
    AnyObj,
    /// An object whose values are strings (labels, headers).
    StrMap,
    /// An array of objects with a known schema.
    Arr(&'static Schema),
    /// An array of anything.
    AnyArr,
}

/// One field.
#[derive(Debug)]
pub struct F {
    pub name: &'static str,
    pub ty: Ty,
    /// Always present in the simulator's answers.
    pub req: bool,
}

const fn opt(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        req: false,
    }
}

const fn req(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        req: true,
    }
}

/// An object schema.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    pub fields: &'static [F],
    /// Whether fields beyond `fields` are allowed (pass-through objects such as a sandbox's spec).
    pub open: bool,
}

pub const STATUSES: &[&str] = &[
    "DELETING",
    "TERMINATED",
    "FAILED",
    "DEACTIVATED",
    "DEACTIVATING",
    "UPLOADING",
    "BUILDING",
    "DEPLOYING",
    "DEPLOYED",
    "BUILT",
];
pub const ROLES: &[&str] = &["admin", "member"];

// ---- errors ----

/// `Error` (2026 definition; the 2025 one has no error schema): `error` required.
pub static ERROR: Schema = Schema {
    name: "Error",
    fields: &[
        req("error", Ty::Str),
        req("code", Ty::Int),
        req("message", Ty::Str),
    ],
    open: false,
};

/// `SandboxError`: the create-sandbox error body; `code` and `message` required.
pub static SANDBOX_ERROR: Schema = Schema {
    name: "SandboxError",
    fields: &[
        req("code", Ty::Str),
        req("message", Ty::Str),
        opt("details", Ty::AnyObj),
        opt("sandbox_name", Ty::Str),
        req("status_code", Ty::Int),
        opt("step", Ty::Str),
        opt("timestamp", Ty::Time),
        opt("workspace", Ty::Str),
    ],
    open: false,
};

// ---- workspace members ----

/// `WorkspaceUser`, 2025. The 2025 definition has no `expired`; the simulator sends it in both generations
/// (the operator needs it and today's API has it).
pub static WORKSPACE_USER_2025: Schema = Schema {
    name: "WorkspaceUser(2025)",
    fields: &[
        req("accepted", Ty::Bool),
        req("email", Ty::Str),
        req("email_verified", Ty::Bool),
        opt("family_name", Ty::Str),
        opt("given_name", Ty::Str),
        req("role", Ty::Enum(ROLES)),
        opt("sub", Ty::Str),
        req("expired", Ty::Bool), // extension in 2025
    ],
    open: false,
};

/// `WorkspaceUser`, 2026: adds `expired` and `source`.
pub static WORKSPACE_USER_2026: Schema = Schema {
    name: "WorkspaceUser(2026)",
    fields: &[
        req("accepted", Ty::Bool),
        req("email", Ty::Str),
        req("email_verified", Ty::Bool),
        req("expired", Ty::Bool),
        opt("family_name", Ty::Str),
        opt("given_name", Ty::Str),
        req("role", Ty::Enum(ROLES)),
        req(
            "source",
            Ty::Enum(&["directory_sync", "invitation", "domain_capture"]),
        ),
        opt("sub", Ty::Str),
    ],
    open: false,
};

/// `PendingInvitation`, 2025: time and owner fields plus email, invitedBy, role, workspace.
pub static PENDING_INVITATION_2025: Schema = Schema {
    name: "PendingInvitation(2025)",
    fields: &[
        req("createdAt", Ty::Time),
        req("updatedAt", Ty::Time),
        req("createdBy", Ty::Str),
        req("updatedBy", Ty::Str),
        req("email", Ty::Str),
        req("invitedBy", Ty::Str),
        req("role", Ty::Enum(ROLES)),
        req("workspace", Ty::Str),
    ],
    open: false,
};

/// `PendingInvitation`, 2026: adds `expiresAt`.
pub static PENDING_INVITATION_2026: Schema = Schema {
    name: "PendingInvitation(2026)",
    fields: &[
        req("createdAt", Ty::Time),
        req("updatedAt", Ty::Time),
        req("createdBy", Ty::Str),
        req("updatedBy", Ty::Str),
        req("email", Ty::Str),
        opt("expiresAt", Ty::Time),
        req("invitedBy", Ty::Str),
        req("role", Ty::Enum(ROLES)),
        req("workspace", Ty::Str),
    ],
    open: false,
};

/// `Workspace` (inside `PendingInvitationAccept`).
pub static WORKSPACE: Schema = Schema {
    name: "Workspace",
    fields: &[
        opt("createdAt", Ty::Time),
        opt("updatedAt", Ty::Time),
        opt("createdBy", Ty::Str),
        opt("updatedBy", Ty::Str),
        opt("accountId", Ty::Str),
        opt("displayName", Ty::Str),
        opt("id", Ty::Str),
        opt("labels", Ty::AnyObj),
        req("name", Ty::Str),
        opt("region", Ty::Str),
        opt("runtime", Ty::AnyObj),
        opt("status", Ty::Str),
        opt("statusReason", Ty::Str),
    ],
    open: false,
};

/// `PendingInvitationAccept` (2025 join).
pub static PENDING_INVITATION_ACCEPT: Schema = Schema {
    name: "PendingInvitationAccept",
    fields: &[req("email", Ty::Str), req("workspace", Ty::Obj(&WORKSPACE))],
    open: false,
};

// ---- sandboxes ----

/// `Metadata`: time and owner fields, displayName, labels, name, plan, url, workspace (+ externalId, 2026).
pub static METADATA: Schema = Schema {
    name: "Metadata",
    fields: &[
        req("createdAt", Ty::Time),
        req("updatedAt", Ty::Time),
        req("createdBy", Ty::Str),
        req("updatedBy", Ty::Str),
        req("displayName", Ty::Str),
        req("labels", Ty::StrMap),
        req("name", Ty::Str),
        opt("plan", Ty::Str),
        req("url", Ty::Str),
        req("workspace", Ty::Str),
        opt("externalId", Ty::Str),
    ],
    open: false,
};

pub static PORT: Schema = Schema {
    name: "Port",
    fields: &[
        opt("name", Ty::Str),
        opt("protocol", Ty::Str),
        req("target", Ty::Int),
    ],
    open: false,
};

pub static ENV: Schema = Schema {
    name: "Env",
    fields: &[
        req("name", Ty::Str),
        opt("value", Ty::Str),
        opt("secret", Ty::Bool),
    ],
    open: true,
};

/// `Runtime` / `SandboxRuntime` (the fields the operator uses; others pass through).
pub static RUNTIME: Schema = Schema {
    name: "SandboxRuntime",
    fields: &[
        opt("image", Ty::Str),
        opt("memory", Ty::Int),
        opt("ports", Ty::Arr(&PORT)),
        opt("envs", Ty::Arr(&ENV)),
        opt("ttl", Ty::Str),
        opt("expires", Ty::Str),
    ],
    open: true,
};

/// `SandboxSpec`, 2025 (`CoreSpec` + lifecycle, region, volumes): `enabled` optional.
pub static SANDBOX_SPEC_2025: Schema = Schema {
    name: "SandboxSpec(2025)",
    fields: &[
        opt("enabled", Ty::Bool),
        req("region", Ty::Str),
        opt("runtime", Ty::Obj(&RUNTIME)),
        opt("lifecycle", Ty::AnyObj),
        opt("volumes", Ty::AnyArr),
    ],
    open: true,
};

/// `SandboxSpec`, 2026: `enabled` defaults to true, so it is always there.
pub static SANDBOX_SPEC_2026: Schema = Schema {
    name: "SandboxSpec(2026)",
    fields: &[
        req("enabled", Ty::Bool),
        req("region", Ty::Str),
        opt("runtime", Ty::Obj(&RUNTIME)),
        opt("lifecycle", Ty::AnyObj),
        opt("volumes", Ty::AnyArr),
        opt("network", Ty::AnyObj),
        opt("vpc", Ty::Str),
    ],
    open: true,
};

/// `CoreEvent`: one entry of a sandbox's `events`.
pub static CORE_EVENT: Schema = Schema {
    name: "CoreEvent",
    fields: &[
        opt("canaryRevision", Ty::Str),
        req("message", Ty::Str),
        opt("revision", Ty::Str),
        req("status", Ty::Enum(STATUSES)),
        req("time", Ty::Time),
        req("type", Ty::Str),
    ],
    open: false,
};

/// `Sandbox`, 2025: events, lastUsedAt, metadata, spec, status, ttl. No `state`.
pub static SANDBOX_2025: Schema = Schema {
    name: "Sandbox(2025)",
    fields: &[
        opt("events", Ty::Arr(&CORE_EVENT)),
        req("lastUsedAt", Ty::Time),
        req("metadata", Ty::Obj(&METADATA)),
        req("spec", Ty::Obj(&SANDBOX_SPEC_2025)),
        req("status", Ty::Enum(STATUSES)),
        opt("ttl", Ty::Int),
    ],
    open: false,
};

/// `SandboxInfrastructureError` (2026 `errors`).
pub static SANDBOX_INFRA_ERROR: Schema = Schema {
    name: "SandboxInfrastructureError",
    fields: &[
        req("code", Ty::Str),
        req("fatal", Ty::Bool),
        opt("instance", Ty::Str),
        req("message", Ty::Str),
        req("time", Ty::Time),
    ],
    open: false,
};

/// `Sandbox`, 2026: adds `state` (RUNNING|STANDBY), `errors`, `expiresIn`, `nodeGeneration`; metadata and
/// spec required.
pub static SANDBOX_2026: Schema = Schema {
    name: "Sandbox(2026)",
    fields: &[
        opt("errors", Ty::Arr(&SANDBOX_INFRA_ERROR)),
        opt("events", Ty::Arr(&CORE_EVENT)),
        opt("expiresIn", Ty::Int),
        req("lastUsedAt", Ty::Time),
        req("metadata", Ty::Obj(&METADATA)),
        opt("nodeGeneration", Ty::Str),
        req("spec", Ty::Obj(&SANDBOX_SPEC_2026)),
        req("state", Ty::Enum(&["RUNNING", "STANDBY"])),
        req("status", Ty::Enum(STATUSES)),
    ],
    open: false,
};

/// `StartSandbox` and `StopSandbox`: message, metadata, status.
pub static START_STOP: Schema = Schema {
    name: "StartSandbox/StopSandbox",
    fields: &[
        req("message", Ty::Str),
        req("metadata", Ty::Obj(&METADATA)),
        req("status", Ty::Str),
    ],
    open: false,
};

pub static PAGINATION_META: Schema = Schema {
    name: "PaginationMeta",
    fields: &[
        req("hasMore", Ty::Bool),
        req("nextCursor", Ty::Str),
        req("total", Ty::Int),
    ],
    open: false,
};

/// `SandboxList` (2026, `Blaxel-Version >= 2026-04-28`).
pub static SANDBOX_LIST: Schema = Schema {
    name: "SandboxList",
    fields: &[
        req("data", Ty::Arr(&SANDBOX_2026)),
        req("meta", Ty::Obj(&PAGINATION_META)),
    ],
    open: false,
};

// ---- previews ----

pub static PREVIEW_METADATA: Schema = Schema {
    name: "PreviewMetadata",
    fields: &[
        req("createdAt", Ty::Time),
        req("updatedAt", Ty::Time),
        req("createdBy", Ty::Str),
        req("updatedBy", Ty::Str),
        req("displayName", Ty::Str),
        req("name", Ty::Str),
        req("resourceName", Ty::Str),
        req("resourceType", Ty::Str),
        req("workspace", Ty::Str),
    ],
    open: false,
};

pub static PREVIEW_SPEC: Schema = Schema {
    name: "PreviewSpec",
    fields: &[
        opt("customDomain", Ty::Str),
        opt("expires", Ty::Str),
        opt("port", Ty::Int),
        opt("prefixUrl", Ty::Str),
        opt("public", Ty::Bool),
        req("region", Ty::Str),
        opt("requestHeaders", Ty::StrMap),
        opt("responseHeaders", Ty::StrMap),
        opt("ttl", Ty::Str),
        req("url", Ty::Str),
    ],
    open: false,
};

/// `Preview`, 2025: metadata and spec.
pub static PREVIEW_2025: Schema = Schema {
    name: "Preview(2025)",
    fields: &[
        req("metadata", Ty::Obj(&PREVIEW_METADATA)),
        req("spec", Ty::Obj(&PREVIEW_SPEC)),
    ],
    open: false,
};

/// `Preview`, 2026: adds `status` and `events`.
pub static PREVIEW_2026: Schema = Schema {
    name: "Preview(2026)",
    fields: &[
        req("metadata", Ty::Obj(&PREVIEW_METADATA)),
        req("spec", Ty::Obj(&PREVIEW_SPEC)),
        req("status", Ty::Enum(STATUSES)),
        opt("events", Ty::AnyArr),
    ],
    open: false,
};

pub static PREVIEW_TOKEN_METADATA: Schema = Schema {
    name: "PreviewTokenMetadata",
    fields: &[
        req("name", Ty::Str),
        req("previewName", Ty::Str),
        req("resourceName", Ty::Str),
        req("resourceType", Ty::Str),
        req("workspace", Ty::Str),
    ],
    open: false,
};

pub static PREVIEW_TOKEN_SPEC: Schema = Schema {
    name: "PreviewTokenSpec",
    fields: &[
        req("expired", Ty::Bool),
        req("expiresAt", Ty::Time),
        req("token", Ty::Str),
    ],
    open: false,
};

/// `PreviewToken`: `{metadata: {name, ...}, spec: {expiresAt, token, expired}}`.
pub static PREVIEW_TOKEN: Schema = Schema {
    name: "PreviewToken",
    fields: &[
        req("metadata", Ty::Obj(&PREVIEW_TOKEN_METADATA)),
        req("spec", Ty::Obj(&PREVIEW_TOKEN_SPEC)),
    ],
    open: false,
};

/// The delete-token answer: `{message}`.
pub static MESSAGE: Schema = Schema {
    name: "DeleteTokenResponse",
    fields: &[req("message", Ty::Str)],
    open: false,
};

// ---- checking ----

fn check_ty(ty: Ty, v: &Value, path: &str, errs: &mut Vec<String>) {
    let bad =
        |want: &str, errs: &mut Vec<String>| errs.push(format!("{path}: expected {want}, got {v}"));
    match ty {
        Ty::Str => {
            if !v.is_string() {
                bad("string", errs);
            }
        }
        Ty::Time => match v.as_str() {
            Some(s) if s.parse::<jiff::Timestamp>().is_ok() => {}
            _ => bad("RFC 3339 timestamp", errs),
        },
        Ty::Enum(values) => match v.as_str() {
            Some(s) if values.contains(&s) => {}
            _ => bad(&format!("one of {values:?}"), errs),
        },
        Ty::Bool => {
            if !v.is_boolean() {
                bad("boolean", errs);
            }
        }
        Ty::Int => {
            if !(v.is_i64() || v.is_u64()) {
                bad("integer", errs);
            }
        }
        Ty::Obj(s) => check_into(s, v, path, errs),
        Ty::AnyObj => {
            if !v.is_object() {
                bad("object", errs);
            }
        }
        Ty::StrMap => match v.as_object() {
            Some(m) if m.values().all(Value::is_string) => {}
            _ => bad("object of strings", errs),
        },
        Ty::Arr(s) => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_into(s, item, &format!("{path}[{i}]"), errs);
                }
            }
            None => bad("array", errs),
        },
        Ty::AnyArr => {
            if !v.is_array() {
                bad("array", errs);
            }
        }
    }
}

fn check_into(s: &Schema, v: &Value, path: &str, errs: &mut Vec<String>) {
    let Some(obj) = v.as_object() else {
        errs.push(format!("{path}: expected {} object, got {v}", s.name));
        return;
    };
    for f in s.fields {
        let p = format!("{path}.{}", f.name);
        match obj.get(f.name) {
            Some(Value::Null) | None if f.req => {
                errs.push(format!("{p}: required by {} but missing", s.name));
            }
            Some(Value::Null) | None => {}
            Some(fv) => check_ty(f.ty, fv, &p, errs),
        }
    }
    if !s.open {
        for k in obj.keys() {
            if !s.fields.iter().any(|f| f.name == k) {
                errs.push(format!("{path}.{k}: not a field of {}", s.name));
            }
        }
    }
}

/// Every way `v` departs from `s` (empty when it conforms).
pub fn check(s: &Schema, v: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check_into(s, v, "$", &mut errs);
    errs
}

/// Panics with every departure of `v` from `s`.
#[track_caller]
pub fn assert_shape(s: &Schema, v: &Value) {
    let errs = check(s, v);
    assert!(
        errs.is_empty(),
        "body does not match {}:\n  {}\nbody: {v:#}",
        s.name,
        errs.join("\n  ")
    );
}

/// Panics unless `v` is an array whose every item matches `s`.
#[track_caller]
pub fn assert_array_of(s: &Schema, v: &Value) {
    assert!(v.is_array(), "expected a bare array of {}, got {v}", s.name);
    let items = v.as_array().expect("checked above");
    for item in items {
        assert_shape(s, item);
    }
}
