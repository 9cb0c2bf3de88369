-- Ask the operator to promote: it reads modelrelease.io/promote, acts, removes it and records the act in status.history.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["modelrelease.io/promote"] = "now"
return obj
