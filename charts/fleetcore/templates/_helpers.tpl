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

{{- define "fleetcore.serviceLoginsSecret" -}}
{{ printf "%s-service-logins" (include "fleetcore.fullname" .) }}
{{- end -}}

{{/* The settings every service reads: database (as the service's own role,
fleetcore_<name>, with its password from the service-logins Secret), admin token, ARNs,
logs. Called with (dict "root" $ "name" "<service>"). */}}
{{- define "fleetcore.commonEnv" -}}
{{- $url := required "postgres.url is required (postgresql://USER@HOST:5432/DB)" .root.Values.postgres.url -}}
- name: FLEETCORE_DB_URL
  value: {{ regexReplaceAll "^(postgres(?:ql)?://)(?:[^@/]*@)?" $url (printf "${1}fleetcore_%s@" .name) | quote }}
- name: FLEETCORE_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "fleetcore.serviceLoginsSecret" .root }}
      key: pg_password_{{ .name }}
{{- with .root }}
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
{{- end }}
{{- end -}}

{{/* "true" when gateway replicas need the chart's own NATS (no nats.url given). */}}
{{- define "fleetcore.natsInChart" -}}
{{- $gw := .Values.services.gateway -}}
{{- if and (not .Values.nats.url) (not .Values.nats.existingSecret) (or (gt (int $gw.replicas) 1) $gw.autoscaling.enabled) -}}
true
{{- end -}}
{{- end -}}
