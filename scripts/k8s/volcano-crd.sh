#!/usr/bin/env bash
# Volcano's PodGroup CRD (scheduling.volcano.sh/v1beta1), for the Kubernetes runtime's gang tests. The module
# proxy serves volcano.sh/apis (the API types) but not volcano.sh/volcano (whose repository holds the generated
# CRDs), so the CRD is generated here from the pinned types with controller-gen, as Volcano's own build makes
# it (`make manifests`: controller-gen crd over pkg/apis/scheduling/v1beta1). Made once into the cache, keyed by
# both versions; its path printed on stdout. test/k8s/volcano-pod-groups.test.ts runs this and installs it.
set -euo pipefail
VOLCANO_APIS_VERSION=${TROUPE_VOLCANO_APIS_VERSION:-v1.12.1}
CONTROLLER_TOOLS_VERSION=${TROUPE_CONTROLLER_TOOLS_VERSION:-v0.17.3}
cache=${TROUPE_K8S_CACHE:-/var/cache/troupe}/volcano-apis-$VOLCANO_APIS_VERSION-controller-gen-$CONTROLLER_TOOLS_VERSION
crd=$cache/crds/scheduling.volcano.sh_podgroups.yaml
if [ ! -s "$crd" ]; then
  command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
  if ! command -v go >/dev/null 2>&1; then
    echo "volcano-crd: generating Volcano's CRD needs Go (its module proxy), which is not installed" >&2
    exit 1
  fi
  echo "volcano-crd: generating from volcano.sh/apis@$VOLCANO_APIS_VERSION with controller-gen $CONTROLLER_TOOLS_VERSION" >&2
  dir=$(cd / && go mod download -json "volcano.sh/apis@$VOLCANO_APIS_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir/pkg/apis/scheduling/v1beta1" ]; then
    echo "volcano-crd: the module volcano.sh/apis@$VOLCANO_APIS_VERSION could not be had" >&2
    exit 1
  fi
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
  cp -r "$dir" "$work/apis"
  chmod -R u+w "$work/apis"
  (cd "$work/apis" && go run "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION" \
    crd paths=./pkg/apis/scheduling/v1beta1/... "output:crd:dir=$work/out") >&2
  mkdir -p "$cache/crds"
  cp "$work/out/scheduling.volcano.sh_podgroups.yaml" "$crd.partial"
  chmod 644 "$crd.partial"
  mv "$crd.partial" "$crd"
fi
echo "$crd"
