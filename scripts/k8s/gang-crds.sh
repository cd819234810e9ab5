#!/usr/bin/env bash
# The PodGroup CRD of scheduler-plugins' coscheduling (scheduling.x-k8s.io/v1alpha1), for the Kubernetes
# runtime's gang tests: fetched once from the Go module proxy at a pinned release into the cache (next to the
# test cluster's binaries, keyed by the release), and its path printed on stdout. The test
# (test/k8s/pod-groups.test.ts) runs this and creates the CRD in the test cluster itself (idempotent).
# scheduler-plugins v0.33.5 is the newest release the module proxy serves here (built against Kubernetes
# 1.33.5; its PodGroup API is the same in every release since v0.24).
set -euo pipefail
SCHEDULER_PLUGINS_VERSION=${TROUPE_SCHEDULER_PLUGINS_VERSION:-v0.33.5}
cache=${TROUPE_K8S_CACHE:-/var/cache/troupe}/scheduler-plugins-$SCHEDULER_PLUGINS_VERSION
crd=$cache/crds/scheduling.x-k8s.io_podgroups.yaml
if [ ! -s "$crd" ]; then
  command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
  if ! command -v go >/dev/null 2>&1; then
    echo "gang-crds: fetching scheduler-plugins' CRD needs Go (its module proxy), which is not installed" >&2
    exit 1
  fi
  echo "gang-crds: fetching sigs.k8s.io/scheduler-plugins@$SCHEDULER_PLUGINS_VERSION" >&2
  dir=$(cd / && go mod download -json "sigs.k8s.io/scheduler-plugins@$SCHEDULER_PLUGINS_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ] || [ ! -f "$dir/config/crd/bases/scheduling.x-k8s.io_podgroups.yaml" ]; then
    echo "gang-crds: the module sigs.k8s.io/scheduler-plugins@$SCHEDULER_PLUGINS_VERSION could not be had, or lacks its PodGroup CRD" >&2
    exit 1
  fi
  mkdir -p "$cache/crds"
  cp "$dir/config/crd/bases/scheduling.x-k8s.io_podgroups.yaml" "$crd.partial"
  chmod 644 "$crd.partial"
  mv "$crd.partial" "$crd"
fi
echo "$crd"
