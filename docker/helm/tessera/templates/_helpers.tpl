{{/* Names and labels shared by the chart's objects. */}}
{{- define "tessera.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tessera.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tessera.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The models volume: an existing claim, or a host path. */}}
{{- define "tessera.modelsVolume" -}}
- name: models
{{- if .Values.model.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.model.existingClaim }}
    readOnly: true
{{- else }}
  hostPath:
    path: {{ .Values.model.hostPath }}
    type: Directory
{{- end }}
{{- end -}}

{{/* The images run as the non-root user 10001 with a read-only root: /tmp (LWJGL extracts its natives there) and ~/.cache are emptyDirs. */}}
{{- define "tessera.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
{{- end -}}

{{- define "tessera.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* --tp-workers: the StatefulSet's pods by their stable names, in rank order. */}}
{{- define "tessera.tpWorkers" -}}
{{- $name := include "tessera.fullname" . -}}
{{- $workers := list -}}
{{- range $i := until (int .Values.tensorParallel.workers) -}}
{{- $workers = append $workers (printf "%s-worker-%d.%s-worker:%d" $name $i $name (int $.Values.tensorParallel.port)) -}}
{{- end -}}
{{- join "," $workers -}}
{{- end -}}

{{- define "tessera.memoryNodes" -}}
{{- $name := include "tessera.fullname" . -}}
{{- $nodes := list -}}
{{- range $i := until (int .Values.attentionOffload.nodes) -}}
{{- $nodes = append $nodes (printf "%s-memory-%d.%s-memory:%d" $name $i $name (int $.Values.attentionOffload.port)) -}}
{{- end -}}
{{- join "," $nodes -}}
{{- end -}}

{{- define "tessera.expertWorkers" -}}
{{- $name := include "tessera.fullname" . -}}
{{- $devices := list -}}
{{- range $i := until (int .Values.expertParallel.workers) -}}
{{- $devices = append $devices (printf "%s-expert-%d.%s-expert:%d" $name $i $name (int $.Values.expertParallel.port)) -}}
{{- end -}}
{{- join "," $devices -}}
{{- end -}}
