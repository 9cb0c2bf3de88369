{{/* Names and labels shared by every object of the chart. */}}

{{- define "modelrelease.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelrelease.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "modelrelease.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelrelease.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "modelrelease.labels" -}}
{{ include "modelrelease.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "modelrelease.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelrelease.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modelrelease.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
What the operator does in a namespace it watches: every rule names the code that needs it
(tests/integration/test_chart_rbac.py attributes each API call in operator/ to one of these).
*/}}
{{- define "modelrelease.rules" -}}
# The releases: watched (kopf.on.event), read again before each pass, and patched to consume
# manual-control annotations (kube.client.remove_annotations).
- apiGroups: [modelrelease.io]
  resources: [modelreleases]
  verbs: [get, list, watch, patch]
# The status is the operator's whole state (kube.client.patch_status).
- apiGroups: [modelrelease.io]
  resources: [modelreleases/status]
  verbs: [patch]
# One Deployment per version: server-side applied (patch; create when new), watched to wake the release,
# read and listed to observe it, deleted past the history limit.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
# Scaling a retired version to zero, and a Deployment an HPA owns (kube.client.scale).
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [patch]
# Which ReplicaSet is current for a version's pods (observe.py); listed and watched by the cache (kube/cache.py).
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list, watch]
# Readiness and model status of each version's pods (observe.py; the pod IPs for gRPC); cached the same way.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# <name>, <name>-stable, <name>-canary: applied, watched, read by the replicas router.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch]
# Each version's model config file (applied, deleted with its version, cached) and the golden set (read).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch, delete]
# Events on the release (kube.client.event).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# Deployments an HPA targets keep their replicas (kube.client.autoscaled_deployments; cached by kube/cache.py).
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch]
# The gatewayApi and istio routers: read and patch the user's HTTPRoute / VirtualService.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, patch]
- apiGroups: [networking.istio.io]
  resources: [virtualservices]
  verbs: [get, list, watch, patch]
{{- end -}}
