-- The manual-control requests, as Argo CD resource actions.  Each one writes an annotation the operator
-- consumes (and removes); spec is never edited, so the Application shows no drift.
local actions = {}
local status = obj.status or {}
local phase = status.phase or ""
local rolling = phase == "Progressing" or phase == "Paused" or phase == "AwaitingApproval"
local with_candidate = rolling or phase == "Failed"

-- approve: the current stage asks for an approval that was not given yet.
local asks = false
if rolling and status.stage ~= nil and not status.stage.approved then
  if phase == "AwaitingApproval" then
    asks = true
  elseif obj.spec ~= nil and obj.spec.stages ~= nil then
    local declared = obj.spec.stages[(status.stage.index or 0) + 1]
    asks = declared ~= nil and declared.approval == true
  end
end
actions["approve"] = {["disabled"] = not asks}
actions["promote"] = {["disabled"] = not with_candidate}
actions["abort"] = {["disabled"] = not with_candidate}
actions["retry"] = {["disabled"] = phase ~= "RolledBack" and phase ~= "Failed"}
return actions
