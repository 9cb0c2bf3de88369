-- Ask the operator to abort: it reads modelrelease.io/abort, acts, removes it and records the act in status.history.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["modelrelease.io/abort"] = "now"
return obj
