-- Approve the current stage: the operator reads modelrelease.io/approve=<stage>, lets that stage go on,
-- removes the annotation and records the approval in status.history.
if obj.status == nil or obj.status.stage == nil then
  error("no stage to approve: the release is not rolling out", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["modelrelease.io/approve"] = obj.status.stage.name
return obj
