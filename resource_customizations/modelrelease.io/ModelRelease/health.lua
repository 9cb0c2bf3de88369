-- Argo CD health of a modelrelease.io ModelRelease, from the phase the operator writes to its status.
-- Healthy: Succeeded.  Progressing: a rollout runs (or the operator has not seen the latest spec yet).
-- Suspended: Paused or AwaitingApproval (a person or Git moves it on).  Degraded: RolledBack or Failed.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a phase"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local function stage_text()
  local stage = status.stage
  if stage == nil then
    return ""
  end
  local text = "stage " .. tostring(stage.name)
  if stage.actualWeight ~= nil then
    text = text .. " at " .. tostring(stage.actualWeight) .. "%"
  end
  return text
end

local function version(v)
  if v == nil then
    return "none"
  end
  return "v" .. tostring(v)
end

local phase = status.phase
local default
if phase == "Succeeded" then
  hs.status = "Healthy"
  default = version(status.stableVersion) .. " is stable"
elseif phase == "Baking" then
  hs.status = "Progressing"
  default = version(status.stableVersion) .. " baking; " .. version(status.bake and status.bake.previousVersion)
    .. " kept warm"
elseif phase == "Initializing" or phase == "Progressing" then
  hs.status = "Progressing"
  default = version(status.candidateVersion) .. " rolling out: " .. stage_text()
elseif phase == "Paused" then
  hs.status = "Suspended"
  default = version(status.candidateVersion) .. " paused at " .. stage_text()
elseif phase == "AwaitingApproval" then
  hs.status = "Suspended"
  local name = status.stage and status.stage.name or "?"
  default = version(status.candidateVersion) .. " awaits approval of stage " .. tostring(name)
    .. " (annotate modelrelease.io/approve=" .. tostring(name) .. ")"
elseif phase == "RolledBack" then
  hs.status = "Degraded"
  default = version(status.rejectedVersion or status.candidateVersion) .. " rolled back; "
    .. version(status.stableVersion) .. " serves"
elseif phase == "Failed" then
  hs.status = "Degraded"
  default = "rollout of " .. version(status.candidateVersion) .. " failed"
else
  hs.status = "Unknown"
  default = "unknown phase " .. tostring(phase)
end
if status.message ~= nil and status.message ~= "" then
  hs.message = phase .. ": " .. status.message
else
  hs.message = phase .. ": " .. default
end
return hs
