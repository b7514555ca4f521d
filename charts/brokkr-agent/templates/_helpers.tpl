{{/* The release's object names: the release name when it already holds the chart name. */}}
{{- define "brokkr-agent.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "brokkr-agent.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "brokkr-agent.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "brokkr-agent.serviceAccount" -}}
{{- default (include "brokkr-agent.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The Secret holding the PAK or the enrollment token. */}}
{{- define "brokkr-agent.secret" -}}
{{- default (include "brokkr-agent.fullname" .) .Values.broker.existingSecret -}}
{{- end -}}

{{/* The Secret the agent keeps its enrolled identity (agent id and PAK) in. */}}
{{- define "brokkr-agent.identitySecret" -}}
{{- printf "%s-identity" (include "brokkr-agent.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fails early, with the value to set, when the chart cannot work. */}}
{{- define "brokkr-agent.check" -}}
{{- if not .Values.broker.url -}}
{{- fail "set broker.url: the broker's address as this cluster reaches it, such as https://brokkr.example.com" -}}
{{- end -}}
{{- if and (hasPrefix "http://" .Values.broker.url) (not .Values.broker.allowInsecureHttp) -}}
{{- fail "broker.url is plain HTTP: the PAK would cross the network unencrypted. Use https:// (tls.caSecret for a private CA) or set broker.allowInsecureHttp=true" -}}
{{- end -}}
{{- if not (or .Values.broker.existingSecret .Values.broker.pak .Values.enrollment.token) -}}
{{- fail "give the agent an identity: enrollment.token (with agent.name and agent.clusterName), broker.pak, or broker.existingSecret" -}}
{{- end -}}
{{- if and .Values.enrollment.token (not (and .Values.agent.name .Values.agent.clusterName)) -}}
{{- fail "enrolling needs agent.name and agent.clusterName" -}}
{{- end -}}
{{- end -}}
