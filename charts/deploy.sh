#!/usr/bin/env bash
# Deploy one release of the chart (CI's staging and production jobs, .github/workflows/deploy.yml;
# by hand the same way). Environment: KUBECONFIG_CONTENT (a kubeconfig), HELM_VALUES (YAML values
# of that environment, optional), NAMESPACE, RELEASE, GITHUB_REF_NAME (the image tag),
# GITHUB_REPOSITORY_OWNER (the registry path).
#
# `helm upgrade --atomic`: a rollout that does not become ready within the timeout (or a failed
# migration hook) is rolled back by Helm to the previous revision. Then `helm test` — every
# service's /readyz and one API call through the gateway (templates/tests.yaml); if that fails the
# release is rolled back too and the job fails. docs/runbooks/rollback.md covers the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=charts/tools.sh
source charts/tools.sh

export KUBECONFIG="$(mktemp)"
values="$(mktemp)"
trap 'rm -f "$KUBECONFIG" "$values"' EXIT
printf '%s' "$KUBECONFIG_CONTENT" >"$KUBECONFIG"
chmod 600 "$KUBECONFIG"
printf '%s\n' "${HELM_VALUES:-{\}}" >"$values"

previous="$("$HELM" history "$RELEASE" --namespace "$NAMESPACE" --max 1 --output json 2>/dev/null \
  | python3 -c 'import json, sys; rows = json.load(sys.stdin); print(rows[-1]["revision"] if rows else "")' || true)"

"$HELM" upgrade --install "$RELEASE" charts/bazaar \
  --namespace "$NAMESPACE" --create-namespace \
  --values "$values" \
  --set imageDefaults.registry="ghcr.io/${GITHUB_REPOSITORY_OWNER,,}" \
  --set-string imageDefaults.tag="${GITHUB_REF_NAME}" \
  --atomic --wait --timeout 15m

if ! "$HELM" test "$RELEASE" --namespace "$NAMESPACE" --logs --timeout 5m; then
  echo "helm test failed: rolling back" >&2
  if [ -n "$previous" ]; then
    "$HELM" rollback "$RELEASE" "$previous" --namespace "$NAMESPACE" --wait --timeout 15m
  fi
  exit 1
fi
"$KUBECTL" --namespace "$NAMESPACE" get deploy,hpa,pods -l app.kubernetes.io/instance="$RELEASE"
