{{/*
Names. fullname is the release name when it already contains the chart name ("bazaar"), else
"<release>-bazaar"; every object is "<fullname>-<component>[-<role>]", e.g. bazaar-catalog-worker.
*/}}
{{- define "bazaar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bazaar.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The components, in a fixed order; the gateway has no worker or beat. */}}
{{- define "bazaar.components" -}}
auth catalog orders profiles gateway
{{- end -}}

{{/* The Kubernetes Service (and DNS) name of a component: (dict "root" $ "name" "catalog") */}}
{{- define "bazaar.serviceHost" -}}
{{- printf "%s-%s" (include "bazaar.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bazaar.chartLabel" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels: (dict "root" $ "name" "catalog" "role" "web") */}}
{{- define "bazaar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bazaar.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}-{{ .role }}
{{- end -}}

{{- define "bazaar.labels" -}}
helm.sh/chart: {{ include "bazaar.chartLabel" .root }}
{{ include "bazaar.selectorLabels" . }}
app.kubernetes.io/part-of: bazaar
app.kubernetes.io/version: {{ include "bazaar.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
bazaar.io/service: {{ .name }}
bazaar.io/role: {{ .role }}
{{- end -}}

{{/* Image: (dict "root" $ "name" "catalog") → registry/repository:tag */}}
{{- define "bazaar.imageTag" -}}
{{- $c := index .root.Values .name -}}
{{- $c.image.tag | default .root.Values.imageDefaults.tag | default .root.Chart.AppVersion -}}
{{- end -}}

{{- define "bazaar.image" -}}
{{- $c := index .root.Values .name -}}
{{- $registry := $c.image.registry | default .root.Values.imageDefaults.registry -}}
{{- $repository := $c.image.repository -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry $repository (include "bazaar.imageTag" .) -}}
{{- else -}}
{{- printf "%s:%s" $repository (include "bazaar.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{- define "bazaar.imagePullPolicy" -}}
{{- $c := index .root.Values .name -}}
{{- $c.image.pullPolicy | default .root.Values.imageDefaults.pullPolicy | default "IfNotPresent" -}}
{{- end -}}

{{/*
ALLOWED_HOSTS computed for a component: the pod IP (probes and Prometheus scrapes arrive with it
as Host), the Service's DNS names (the gateway and the other services call it by them), loopback,
the Ingress hosts and anything in <component>.extraAllowedHosts. $(POD_IP) is expanded by the
kubelet from the POD_IP variable defined before it.
*/}}
{{- define "bazaar.allowedHosts" -}}
{{- $c := index .root.Values .name -}}
{{- $host := include "bazaar.serviceHost" . -}}
{{- $ns := .root.Release.Namespace -}}
{{- $hosts := list "$(POD_IP)" "[$(POD_IP)]" $host (printf "%s.%s" $host $ns) (printf "%s.%s.svc" $host $ns) (printf "%s.%s.svc.%s" $host $ns .root.Values.clusterDomain) "localhost" "127.0.0.1" -}}
{{- if and $c.ingress $c.ingress.enabled -}}
{{- range $c.ingress.hosts -}}
{{- $hosts = append $hosts .host -}}
{{- end -}}
{{- end -}}
{{- range $c.extraAllowedHosts -}}
{{- $hosts = append $hosts . -}}
{{- end -}}
{{- join "," (uniq $hosts) -}}
{{- end -}}

{{/* DISCOVERY_STATIC computed from the Services of the enabled services (the gateway calls them). */}}
{{- define "bazaar.discoveryStatic" -}}
{{- $root := .root -}}
{{- $entries := list -}}
{{- range (list "auth" "catalog" "orders" "profiles") -}}
{{- $c := index $root.Values . -}}
{{- if $c.enabled -}}
{{- $entries = append $entries (printf "%s=http://%s:%d" $c.serviceName (include "bazaar.serviceHost" (dict "root" $root "name" .)) (int $root.Values.service.port)) -}}
{{- end -}}
{{- end -}}
{{- join "," $entries -}}
{{- end -}}

{{/*
The plain (non-secret) environment of a component, as a YAML map NAME: "value":
(dict "root" $ "name" "catalog"). shared.env merged with <component>.env (the component wins) plus
the computed values the chart fills in when left empty; a variable whose value is empty is not
set at all, so the service's own default applies; names also under a secretEnv are left out.
*/}}
{{- define "bazaar.plainEnv" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .name -}}
{{- $secretEnv := mustMergeOverwrite (deepCopy ($root.Values.shared.secretEnv | default dict)) ($c.secretEnv | default dict) -}}
{{- $env := mustMergeOverwrite (deepCopy ($root.Values.shared.env | default dict)) ($c.env | default dict) -}}
{{- if not (get $env "ALLOWED_HOSTS") -}}
{{- $_ := set $env "ALLOWED_HOSTS" (include "bazaar.allowedHosts" .) -}}
{{- end -}}
{{- if and (eq (toString (get $env "DISCOVERY_BACKEND")) "static") (not (get $env "DISCOVERY_STATIC")) -}}
{{- $_ := set $env "DISCOVERY_STATIC" (include "bazaar.discoveryStatic" .) -}}
{{- end -}}
{{- if and (ne .name "auth") (not (get $env "JWT_JWKS_URL")) (not (get $env "JWT_JWKS_FILE")) -}}
{{- $_ := set $env "JWT_JWKS_URL" (printf "http://%s:%d/api/v1/auth/.well-known/jwks.json" (include "bazaar.serviceHost" (dict "root" $root "name" "auth")) (int $root.Values.service.port)) -}}
{{- end -}}
{{- if and (eq .name "auth") $c.signingKeys.existingSecret (not (get $env "JWT_SIGNING_KEYS_DIR")) -}}
{{- $_ := set $env "JWT_SIGNING_KEYS_DIR" $c.signingKeys.mountPath -}}
{{- end -}}
{{- if not (get $env "SERVICE_VERSION") -}}
{{- $_ := set $env "SERVICE_VERSION" (include "bazaar.imageTag" .) -}}
{{- end -}}
{{- if not (get $env "METRICS_PORT") -}}
{{- $_ := set $env "METRICS_PORT" (toString $root.Values.metrics.port) -}}
{{- end -}}
{{- $pgbouncer := $root.Values.pgbouncer -}}
{{- if and $pgbouncer.enabled (ne (toString .role) "migrate") -}}
{{- /* Through the chart's PgBouncer; migrations (role migrate) connect directly. */ -}}
{{- if not (get $env "DB_POOLER_HOST") -}}
{{- $_ := set $env "DB_POOLER_HOST" (include "bazaar.serviceHost" (dict "root" $root "name" "pgbouncer")) -}}
{{- end -}}
{{- if not (get $env "DB_POOLER_PORT") -}}
{{- $_ := set $env "DB_POOLER_PORT" (toString $pgbouncer.port) -}}
{{- end -}}
{{- if eq $pgbouncer.poolMode "transaction" -}}
{{- $_ := set $env "DB_TRANSACTION_POOLING" "1" -}}
{{- end -}}
{{- end -}}
{{- $plain := dict -}}
{{- range $key, $value := $env -}}
{{- if and (not (hasKey $secretEnv $key)) (ne (toString $value) "") (ne (toString $value) "<nil>") -}}
{{- $_ := set $plain $key (tpl (toString $value) $root) -}}
{{- end -}}
{{- end -}}
{{- toYaml $plain -}}
{{- end -}}

{{/* The secret-backed variables of a component (secretKeyRef EnvVars). */}}
{{- define "bazaar.secretEnv" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .name -}}
{{- $secretEnv := mustMergeOverwrite (deepCopy ($root.Values.shared.secretEnv | default dict)) ($c.secretEnv | default dict) -}}
{{- range $key, $ref := $secretEnv }}
{{- if and $ref (kindIs "map" $ref) }}
{{- $secretName := $ref.secret | default (ternary $c.existingSecret $root.Values.shared.existingSecret (hasKey ($c.secretEnv | default dict) $key)) }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ tpl $secretName $root | quote }}
      key: {{ $ref.key | default $key | quote }}
      optional: {{ $ref.optional | default false }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The names of every Secret a component's pods read (for the checksum annotation). */}}
{{- define "bazaar.secretNames" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .name -}}
{{- $names := list (tpl $root.Values.shared.existingSecret $root) (tpl $c.existingSecret $root) -}}
{{- range $key, $ref := (mustMergeOverwrite (deepCopy ($root.Values.shared.secretEnv | default dict)) ($c.secretEnv | default dict)) -}}
{{- if and $ref (kindIs "map" $ref) $ref.secret -}}
{{- $names = append $names (tpl $ref.secret $root) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .name "auth") $c.signingKeys.existingSecret -}}
{{- $names = append $names (tpl $c.signingKeys.existingSecret $root) -}}
{{- end -}}
{{- join "," (uniq $names) -}}
{{- end -}}

{{/*
Pod annotations that change whenever the component's configuration or one of its Secrets does, so
`helm upgrade` rolls the pods: the rendered ConfigMap, and the data of every Secret the pods read
(looked up in the cluster at install/upgrade time; `helm template` has no cluster and hashes
nothing). Rotating a secret = update the Secret, then `helm upgrade` (docs/runbooks/secrets.md).
*/}}
{{- define "bazaar.checksumAnnotations" -}}
{{- $root := .root -}}
{{- $secrets := dict -}}
{{- range $name := (include "bazaar.secretNames" . | splitList ",") -}}
{{- $found := lookup "v1" "Secret" $root.Release.Namespace $name -}}
{{- $_ := set $secrets $name (($found | default dict).data | default dict) -}}
{{- end -}}
checksum/env: {{ include "bazaar.plainEnv" . | sha256sum }}
checksum/secrets: {{ toJson $secrets | sha256sum }}
{{- end -}}

{{/*
The environment of a container INLINE (the migration hook Job and the helm test Pod, which run
before/without the release's ConfigMap): (dict "root" $ "name" "catalog" "role" "migrate").
*/}}
{{- define "bazaar.env" -}}
{{- $c := index .root.Values .name -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: BAZAAR_ROLE
  value: {{ .role | quote }}
{{- range $key, $value := (include "bazaar.plainEnv" . | fromYaml) }}
- name: {{ $key }}
  value: {{ $value | quote }}
{{- end }}
{{- include "bazaar.secretEnv" . }}
{{- with $c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The environment of a Deployment's container: the plain variables come from the component's
ConfigMap (envFrom); only what the kubelet must expand ($(POD_IP) in ALLOWED_HOSTS), the role and
the secrets are inline.
*/}}
{{- define "bazaar.podEnv" -}}
{{- $c := index .root.Values .name -}}
{{- $plain := include "bazaar.plainEnv" . | fromYaml -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: BAZAAR_ROLE
  value: {{ .role | quote }}
- name: ALLOWED_HOSTS
  value: {{ get $plain "ALLOWED_HOSTS" | quote }}
{{- include "bazaar.secretEnv" . }}
{{- with $c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "bazaar.envFrom" -}}
- configMapRef:
    name: {{ include "bazaar.serviceHost" . }}-env
{{- end -}}

{{/* The ServiceAccount of a component's pods ("" = the namespace's default). */}}
{{- define "bazaar.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{- include "bazaar.serviceHost" . -}}
{{- else -}}
{{- .root.Values.serviceAccountName -}}
{{- end -}}
{{- end -}}

{{/* Pod-level settings shared by every pod of the chart. */}}
{{- define "bazaar.podSpecCommon" -}}
{{- $root := .root -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- /* Hook and test pods run before (or without) the release's own ServiceAccounts. */}}
{{- $account := ternary $root.Values.serviceAccountName (include "bazaar.serviceAccountName" .) (has .role (list "migrate" "test")) }}
{{- if $account }}
serviceAccountName: {{ $account }}
{{- end }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
{{ toYaml $root.Values.podSecurityContext | indent 2 }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
{{ toYaml . }}
{{- end }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* Volumes of a component's pods: scratch space (read-only root file system) and auth's keys. */}}
{{- define "bazaar.volumes" -}}
{{- $c := index .root.Values .name -}}
- name: var
  emptyDir:
    sizeLimit: {{ .root.Values.scratch.varSizeLimit }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.scratch.tmpSizeLimit }}
{{- if and (eq .name "auth") $c.signingKeys.existingSecret }}
- name: jwt-signing-keys
  secret:
    secretName: {{ tpl $c.signingKeys.existingSecret .root }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "bazaar.volumeMounts" -}}
{{- $c := index .root.Values .name -}}
- name: var
  mountPath: /app/var
- name: tmp
  mountPath: /tmp
{{- if and (eq .name "auth") $c.signingKeys.existingSecret }}
- name: jwt-signing-keys
  mountPath: {{ $c.signingKeys.mountPath }}
  readOnly: true
{{- end }}
{{- end -}}

{{/*
Web pods copy the image's /app/var (the collected static files of the admin, served by WhiteNoise)
into the emptyDir that replaces it, so the root file system can stay read-only.
*/}}
{{- define "bazaar.seedVarInitContainer" -}}
- name: seed-var
  image: {{ include "bazaar.image" . }}
  imagePullPolicy: {{ include "bazaar.imagePullPolicy" . }}
  # Plain -R: as uid 10001 the root-owned files cannot keep their owner, and need not.
  command: ["cp", "-R", "/app/var/.", "/seed-var/"]
  securityContext:
{{ toYaml .root.Values.containerSecurityContext | indent 4 }}
  resources:
{{ toYaml .root.Values.initContainerResources | indent 4 }}
  volumeMounts:
    - name: var
      mountPath: /seed-var
{{- end -}}

{{/* The probes of a web container; Host is set so Django's ALLOWED_HOSTS accepts them. */}}
{{- define "bazaar.webProbes" -}}
{{- $p := .root.Values.probes -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
    httpHeaders:
      - name: Host
        value: localhost
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
    httpHeaders:
      - name: Host
        value: localhost
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: http
    httpHeaders:
      - name: Host
        value: localhost
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
  successThreshold: 1
{{- end -}}

{{/* Spread a Deployment's pods over nodes and zones (best effort). */}}
{{- define "bazaar.topologySpread" -}}
{{- if .root.Values.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
{{ include "bazaar.selectorLabels" . | indent 8 }}
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
{{ include "bazaar.selectorLabels" . | indent 8 }}
{{- end }}
{{- end -}}

{{/* The worker liveness command: exactly bazaar_common.celery.HEARTBEAT_PROBE (checked by tests/charts/check_chart.py). */}}
{{- define "bazaar.workerProbeCommand" -}}
f="$CELERY_HEARTBEAT_FILE"; test -f "$f" && test $(( $(date +%s) - $(stat -c %Y "$f") )) -lt "$CELERY_HEARTBEAT_MAX_AGE_SECONDS"
{{- end -}}


{{/* An image reference from {registry, repository, tag, digest}: the digest wins over the tag. */}}
{{- define "bazaar.imageRef" -}}
{{- $prefix := ternary (printf "%s/%s" .registry .repository) .repository (ne (toString .registry) "") -}}
{{- if .digest -}}
{{- printf "%s@%s" $prefix .digest -}}
{{- else -}}
{{- printf "%s:%s" $prefix (toString .tag) -}}
{{- end -}}
{{- end -}}

{{/* How many databases the services use: one per enabled component. */}}
{{- define "bazaar.databaseCount" -}}
{{- $root := . -}}
{{- $count := 0 -}}
{{- range $name := (include "bazaar.components" $root | splitList " ") -}}
{{- if (index $root.Values $name).enabled }}{{ $count = add1 $count }}{{ end -}}
{{- end -}}
{{- $count -}}
{{- end -}}

{{/* PgBouncer's pgbouncer.ini (values: pgbouncer); its checksum rolls the pods. */}}
{{- define "bazaar.pgbouncerIni" -}}
{{- $p := .Values.pgbouncer -}}
{{- $databases := include "bazaar.databaseCount" . | int -}}
{{- $perDatabase := add $p.pool.defaultPoolSize $p.pool.reservePoolSize -}}
; Rendered by the Bazaar chart (values: pgbouncer). Server connections to PostgreSQL: at most
; {{ $databases }} databases × {{ $perDatabase }} = {{ mul $databases $perDatabase }} per replica, {{ mul $p.replicas $databases $perDatabase }} for {{ $p.replicas }} replicas.
[databases]
* = host={{ $p.upstream.host }} port={{ $p.upstream.port }}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = {{ $p.port }}
; no unix socket: the root file system is read-only and nothing local needs one
unix_socket_dir =
pool_mode = {{ $p.poolMode }}
{{- if $p.metrics.enabled }}
; the exporter sidecar logs in from 127.0.0.1 without a password (the admin console only)
auth_type = hba
auth_hba_file = /etc/pgbouncer/pg_hba.conf
stats_users = {{ $p.metrics.statsUser }}
{{- else }}
auth_type = {{ $p.auth.type }}
{{- end }}
auth_file = /etc/pgbouncer/auth/{{ $p.auth.key }}
max_client_conn = {{ $p.pool.maxClientConn }}
default_pool_size = {{ $p.pool.defaultPoolSize }}
min_pool_size = {{ $p.pool.minPoolSize }}
reserve_pool_size = {{ $p.pool.reservePoolSize }}
reserve_pool_timeout = {{ $p.pool.reservePoolTimeoutSeconds }}
max_db_connections = {{ $perDatabase }}
server_idle_timeout = {{ $p.pool.serverIdleTimeoutSeconds }}
query_wait_timeout = {{ $p.pool.queryWaitTimeoutSeconds }}
server_tls_sslmode = {{ $p.serverTlsSslmode }}
; psycopg2 sends none of these; other drivers (JDBC) do
ignore_startup_parameters = extra_float_digits
{{- range $key, $value := $p.extraSettings }}
{{ $key }} = {{ $value }}
{{- end }}
{{- end -}}

{{/* PgBouncer's pg_hba.conf: the exporter from the pod itself to the admin console, the rest with passwords. */}}
{{- define "bazaar.pgbouncerHba" -}}
{{- $p := .Values.pgbouncer -}}
{{- if $p.metrics.enabled -}}
host pgbouncer {{ $p.metrics.statsUser }} 127.0.0.1/32 trust
host all all 0.0.0.0/0 {{ $p.auth.type }}
host all all ::/0 {{ $p.auth.type }}
{{- end -}}
{{- end -}}
