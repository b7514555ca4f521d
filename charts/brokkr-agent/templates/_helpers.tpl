{{- define "brokkr-agent.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
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

{{- define "brokkr-agent.secret" -}}
{{- default (include "brokkr-agent.fullname" .) .Values.broker.existingSecret -}}
{{- end -}}
