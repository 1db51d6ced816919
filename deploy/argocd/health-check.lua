-- Argo CD health of blaxel.ai objects (WorkspaceMember, Sandbox, Workspace, IntegrationConnection, SandboxPreview), from their standard conditions
-- (Ready, Reconciling, Stalled, observedGeneration). Argo CD ships health checks only for the groups in
-- its own resource_customizations/ and has none for blaxel.ai, so install this one through argocd-cm
-- (argocd-cm-patch.yaml beside this file). Lua 5.1, as Argo CD (gopher-lua) runs it; tested by
-- scripts/check-deploy.
--
--   Suspended    the object carries blaxel.ai/paused with any value but "false" (observe only)
--   Progressing  no status yet, or status is for an older generation, or Reconciling=True
--   Degraded     Stalled=True (needs a person; reasons: CredentialsNotPermitted, DefaultCredentialsMissing,
--                CredentialsNotFound, Unauthorized, Forbidden, Invalid, DuplicateMember, DuplicateSandbox,
--                OwnedByAnother, InvitationExpired, InvitationDeclined, EmailNotCanonical,
--                WorkspaceNotCanonical,
--                TtlExpired (phase EXPIRED), RemoteFailed, RemovalLimitReached, DuplicateWorkspace,
--                NameUnavailable, WorkspaceError, TooManyRemovals, IncompleteView, WorkspaceInUse,
--                SecretNotFound, IntegrationMismatch, DuplicateConnection, DuplicatePreview,
--                SecretNotOwned, PreviewTokensDisabled, SecretVariablesUnknown;
--                RemovalUnrecorded is transient: Progressing), or
--                Ready=False with nothing in progress (e.g. a FAILED sandbox)
--   Healthy      Ready=True for the current generation
local hs = {}

local function find(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.reason or fallback
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

-- Any value but "false" (any case) pauses, as the operator reads it: a safety switch fails closed.
local annotations = obj.metadata.annotations
local paused = annotations ~= nil and annotations["blaxel.ai/paused"] or nil
if paused ~= nil and string.lower((string.gsub(paused, "^%s*(.-)%s*$", "%1"))) ~= "false" then
  hs.status = "Suspended"
  hs.message = "Paused by the blaxel.ai/paused annotation"
  return hs
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local conditions = obj.status.conditions
local ready = find(conditions, "Ready")
local stalled = find(conditions, "Stalled")
local reconciling = find(conditions, "Reconciling")

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
elseif reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(ready ~= nil and ready or reconciling, "Reconciling")
elseif ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready, "NotReady")
else
  hs.status = "Progressing"
  hs.message = describe(ready, "Waiting for the Ready condition")
end
return hs
