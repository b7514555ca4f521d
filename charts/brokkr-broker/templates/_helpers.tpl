{{/* The release's object names: the release name when it already holds the chart name. */}}
{{- define "brokkr-broker.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "brokkr-broker.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "brokkr-broker.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Secret holding the database URL. */}}
{{- define "brokkr-broker.secret" -}}
{{- default (include "brokkr-broker.fullname" .) .Values.database.existingSecret -}}
{{- end -}}

{{/* The Secret holding the first admin PAK, which the broker adopts on a new database. */}}
{{- define "brokkr-broker.adminSecret" -}}
{{- printf "%s-admin" (include "brokkr-broker.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "brokkr-broker.check" -}}
{{- if not (or .Values.database.url .Values.database.existingSecret) -}}
{{- fail "set database.url (postgres://user:password@host:5432/brokkr) or database.existingSecret (key `url`)" -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (hasPrefix "sqlite" .Values.database.url) -}}
{{- fail "several replicas need PostgreSQL: database.url is SQLite" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) -}}
{{- fail "tls.enabled needs tls.existingSecret (a kubernetes.io/tls Secret with the broker's certificate)" -}}
{{- end -}}
{{- if and (ne .Values.tls.clientAuth "none") (not .Values.tls.clientCaSecret) -}}
{{- fail "tls.clientAuth needs tls.clientCaSecret (a Secret with `ca.crt`)" -}}
{{- end -}}
{{- end -}}
