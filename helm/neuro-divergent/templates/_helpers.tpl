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
{{- if .Values.apiProfile.toml -}}
{{- $shadow := $cfg.shadow | default dict -}}
{{- if not (hasKey $shadow "answer") -}}
{{- $_ := set $shadow "answer" (include "nd.shadowAnswer" . | fromJson) -}}
{{- $_ := set $cfg "shadow" $shadow -}}
{{- end -}}
{{- end -}}
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

{{/*
values.apiProfile.toml parsed (JSON); a text that is not TOML fails the
render. The services check the rest at start (docs/profiles.md).
*/}}
{{- define "nd.apiProfile" -}}
{{- $p := fromToml .Values.apiProfile.toml -}}
{{- if hasKey $p "Error" -}}
{{- fail (printf "apiProfile.toml is not TOML: %s" (get $p "Error")) -}}
{{- end -}}
{{- toJson $p -}}
{{- end -}}

{{/*
The filter's shadow.answer for the API profile (wasm-filter/README.md,
"Answer shapes"), as python/reference_service/profile.py's
Profile.shadow_answer() derives it: the answer's frame pointer and orient,
the client's names of unique_id and ds ([columns] maps client -> bundle),
where the model name is ("" for nowhere).
*/}}
{{- define "nd.shadowAnswer" -}}
{{- $p := include "nd.apiProfile" . | fromJson -}}
{{- $resp := $p.response | default dict -}}
{{- $id := "unique_id" -}}
{{- $time := "ds" -}}
{{- range $client, $bundle := ($p.columns | default dict) -}}
{{- if eq $bundle "unique_id" }}{{ $id = $client }}{{ end -}}
{{- if eq $bundle "ds" }}{{ $time = $client }}{{ end -}}
{{- end -}}
{{- $orient := ternary $resp.orient "records" (hasKey $resp "orient") -}}
{{- if eq $orient "list" }}{{ $orient = "columns" }}{{ end -}}
{{- $answer := dict "at" (ternary $resp.at "/predictions" (hasKey $resp "at")) "orient" $orient
      "id" $id "time" $time "model_at" (ternary $resp.model_at "/model" (hasKey $resp "model_at")) -}}
{{- if $resp.columns -}}
{{- $_ := set $answer "columns" $resp.columns -}}
{{- end -}}
{{- toJson $answer -}}
{{- end -}}

{{/* The ConfigMap holding the filter's stats_tags as a bootstrap override. */}}
{{- define "nd.proxyStatsConfigMap" -}}
{{ .Values.istio.filter.name }}-stats-bootstrap
{{- end }}

{{/* The pod annotations a proxy running the filter needs (NOTES.txt, helm/README.md). */}}
{{- define "nd.proxyStatsAnnotations" -}}
{{- $m := dict "proxyStatsMatcher" (dict "inclusionRegexps" .Values.istio.filter.proxyStats.inclusionRegexps) -}}
proxy.istio.io/config: {{ $m | toJson | squote }}
sidecar.istio.io/bootstrapOverride: {{ include "nd.proxyStatsConfigMap" . }}
{{- end }}
