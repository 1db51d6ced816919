{{/* The chart name. */}}
{{- define "blaxel-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name used as resource name prefix (63 characters at most, DNS label rules). */}}
{{- define "blaxel-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "blaxel-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "blaxel-operator.labels" -}}
helm.sh/chart: {{ include "blaxel-operator.chart" . }}
{{ include "blaxel-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: blaxel-operator
{{- end }}

{{/* Labels selecting the operator's pods (immutable in a Deployment: keep them stable). */}}
{{- define "blaxel-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "blaxel-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "blaxel-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "blaxel-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the default API key (existing, created, or the optional default name). */}}
{{- define "blaxel-operator.credentialsSecretName" -}}
{{- default (printf "%s-credentials" (include "blaxel-operator.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{- define "blaxel-operator.leaseName" -}}
{{- default (include "blaxel-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The image: repository:tag, plus @digest when image.digest is set (the digest then decides). */}}
{{- define "blaxel-operator.image" -}}
{{- $image := printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- if .Values.image.digest }}
{{- $image = printf "%s@%s" $image .Values.image.digest }}
{{- end }}
{{- $image }}
{{- end }}

{{/* Refuse value combinations that would deploy a broken or unsafe operator. */}}
{{- define "blaxel-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 requires leaderElection.enabled=true: without a leader, every replica would reconcile the same objects and fight over them" }}
{{- end }}
{{- if and .Values.credentials.create .Values.credentials.existingSecret }}
{{- fail "credentials.create and credentials.existingSecret are mutually exclusive" }}
{{- end }}
{{- if and .Values.credentials.create (not .Values.credentials.apiKey) }}
{{- fail "credentials.create=true needs credentials.apiKey (or use credentials.existingSecret)" }}
{{- end }}
{{- if not (has .Values.logFormat (list "text" "json")) }}
{{- fail "logFormat must be text or json" }}
{{- end }}
{{- if and (not (hasPrefix "https://" .Values.apiUrl)) (not .Values.allowInsecureApiUrl) }}
{{- fail "apiUrl must be https:// (the API key travels with every request); set allowInsecureApiUrl=true to allow http://" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled" }}
{{- end }}
{{- end }}
