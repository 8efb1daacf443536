{{/* The release's name prefix of every object. */}}
{{- define "fleetcore.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fleetcore.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one service: (dict "root" $ "name" "gateway"). */}}
{{- define "fleetcore.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "fleetcore.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* gRPC and metrics ports of each service (the binaries' defaults). */}}
{{- define "fleetcore.ports" -}}
registry: {grpc: 6051, metrics: 9101}
policy: {grpc: 6052, metrics: 9102}
ca: {grpc: 6053, metrics: 9103}
gateway: {grpc: 6054, metrics: 9104}
shadow: {grpc: 6055, metrics: 9105}
rules: {grpc: 6056, metrics: 9106}
{{- end -}}

{{- define "fleetcore.postgresSecret" -}}
{{ .Values.postgres.existingSecret | default (printf "%s-postgres" (include "fleetcore.fullname" .)) }}
{{- end -}}

{{- define "fleetcore.adminTokenSecret" -}}
{{ .Values.adminToken.existingSecret | default (printf "%s-admin-token" (include "fleetcore.fullname" .)) }}
{{- end -}}

{{/* The address of a service's gRPC port inside the cluster. */}}
{{- define "fleetcore.endpoint" -}}
{{- $ports := include "fleetcore.ports" .root | fromYaml -}}
{{ include "fleetcore.fullname" .root }}-{{ .name }}:{{ (get $ports .name).grpc }}
{{- end -}}

{{/* The settings every service reads: database, admin token, ARNs, logs. */}}
{{- define "fleetcore.commonEnv" -}}
- name: FLEETCORE_DB_URL
  value: {{ required "postgres.url is required (postgresql://USER@HOST:5432/DB)" .Values.postgres.url | quote }}
- name: FLEETCORE_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "fleetcore.postgresSecret" . }}
      key: {{ .Values.postgres.passwordKey }}
- name: FLEETCORE_DB_POOL_SIZE
  value: {{ .Values.postgres.poolSize | quote }}
- name: FLEETCORE_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "fleetcore.adminTokenSecret" . }}
      key: {{ .Values.adminToken.key }}
- name: FLEETCORE_REGION
  value: {{ .Values.region | quote }}
- name: FLEETCORE_ACCOUNT_ID
  value: {{ .Values.accountId | quote }}
- name: FLEETCORE_LOG_FORMAT
  value: json
- name: FLEETCORE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/* "true" when gateway replicas need the chart's own NATS (no nats.url given). */}}
{{- define "fleetcore.natsInChart" -}}
{{- $gw := .Values.services.gateway -}}
{{- if and (not .Values.nats.url) (not .Values.nats.existingSecret) (or (gt (int $gw.replicas) 1) $gw.autoscaling.enabled) -}}
true
{{- end -}}
{{- end -}}
