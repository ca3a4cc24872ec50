{{/* Names and labels shared by every template. */}}

{{- define "ecr-creds-refresher.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ecr-creds-refresher.fullname" -}}
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

{{- define "ecr-creds-refresher.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ecr-creds-refresher.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecr-creds-refresher.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ecr-creds-refresher.labels" -}}
helm.sh/chart: {{ include "ecr-creds-refresher.chart" . }}
{{ include "ecr-creds-refresher.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ecr-creds-refresher
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ecr-creds-refresher.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ecr-creds-refresher.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the operator's default AWS credentials; empty for the default chain. */}}
{{- define "ecr-creds-refresher.credentialsSecretName" -}}
{{- if eq .Values.credentials.source "existingSecret" }}
{{- required "credentials.existingSecret is required when credentials.source is existingSecret" .Values.credentials.existingSecret }}
{{- else if eq .Values.credentials.source "secret" }}
{{- printf "%s-aws-credentials" (include "ecr-creds-refresher.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "ecr-creds-refresher.trustedNamespaces" -}}
{{- prepend .Values.credentials.trustedNamespaces .Release.Namespace | uniq | join "," }}
{{- end }}

{{- define "ecr-creds-refresher.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "ecr-creds-refresher.leaderElection" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "leaderElection.enabled must be true when replicaCount > 1: only the Lease holder may write" }}
{{- end }}
{{- .Values.leaderElection.enabled }}
{{- end }}

{{- define "ecr-creds-refresher.leaseName" -}}
{{- default (include "ecr-creds-refresher.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The webhook's Service, and the Secret with its serving certificate (the operator's own, or cert-manager's). */}}
{{- define "ecr-creds-refresher.webhookService" -}}
{{- printf "%s-webhook" (include "ecr-creds-refresher.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ecr-creds-refresher.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "ecr-creds-refresher.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "true" when the operator issues its own webhook certificate and sets the caBundle itself. */}}
{{- define "ecr-creds-refresher.webhookSelfManaged" -}}
{{- and .Values.webhook.enabled (not .Values.webhook.certManager.enabled) }}
{{- end }}
