-- Ask the operator to retry: it reads modelrelease.io/retry, acts, removes it and records the act in status.history.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["modelrelease.io/retry"] = "now"
return obj
