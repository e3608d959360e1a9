{{/* Names and labels shared by every template. */}}

{{- define "nd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The fullname: release name (or fullnameOverride). Flagger appends -primary/-canary, so keep it <= 55. */}}
{{- define "nd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" -}}
{{- else if contains (include "nd.name" .) .Release.Name -}}
{{- .Release.Name | trunc 55 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "nd.name" .) | trunc 55 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Labels that select this release's pods whatever Flagger does: Flagger rewrites
the `app` label of the pods it copies (<fullname>-primary) and keeps the rest.
PDB, NetworkPolicy and the ServiceMonitor select on these.
*/}}
{{- define "nd.stableSelector" -}}
app.kubernetes.io/name: {{ include "nd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Deployment selector: `app` is the label Flagger looks for first. */}}
{{- define "nd.selector" -}}
app: {{ include "nd.fullname" . }}
{{ include "nd.stableSelector" . }}
{{- end -}}

{{- define "nd.labels" -}}
{{ include "nd.stableSelector" . }}
app.kubernetes.io/component: {{ .Values.component }}
app.kubernetes.io/part-of: neuro-divergent
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "nd.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* The container's name: the one the PodCrashLooping alert looks for. */}}
{{- define "nd.container" -}}
{{- if eq .Values.component "python" -}}neuralforecast-python{{- else -}}neuro-divergent{{- end -}}
{{- end -}}

{{/* FQDN of this release's Service (Flagger's apex Service when canary.enabled). */}}
{{- define "nd.host" -}}
{{ include "nd.fullname" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}

{{- define "nd.pythonHost" -}}
{{- $p := .Values.istio.split.python -}}
{{ $p.service }}.{{ default .Release.Namespace $p.namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}

{{/*
The filter's plugin configuration as a dict: values.istio.filter.pluginConfig
with backends filled from the Services. Istio names the clusters a sidecar or
gateway can dispatch to outbound|PORT||FQDN; shadow calls use them (routing
uses the VirtualService). shadowTarget "canary" sends Rust shadows to
Flagger's <fullname>-canary Service, so the shadow gate measures the canary.
*/}}
{{- define "nd.pluginConfig" -}}
{{- $cfg := deepCopy .Values.istio.filter.pluginConfig -}}
{{- $rust := include "nd.host" . -}}
{{- if eq .Values.istio.filter.shadowTarget "canary" -}}
{{- $rust = printf "%s-canary.%s.svc.%s" (include "nd.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}
{{- $python := include "nd.pythonHost" . -}}
{{- $pport := int .Values.istio.split.python.port -}}
{{- $rport := int .Values.service.port -}}
{{- $defaults := dict "backends" (dict
      "python" (dict "cluster" (printf "outbound|%d||%s" $pport $python) "authority" (printf "%s:%d" $python $pport))
      "rust" (dict "cluster" (printf "outbound|%d||%s" $rport $rust) "authority" (printf "%s:%d" $rust $rport))) -}}
{{- toJson (mergeOverwrite $defaults $cfg) -}}
{{- end -}}

{{/* The Services the ServiceMonitor scrapes carry these labels (not Flagger's apex Service). */}}
{{- define "nd.scrapeLabels" -}}
neuro-divergent.io/metrics: "true"
{{- end -}}

{{/* Prometheus job of this release's targets (ServiceMonitor jobLabel = app.kubernetes.io/instance). */}}
{{- define "nd.job" -}}
{{ .Release.Name }}
{{- end -}}
