#!/usr/bin/env bash
# Builds scheduler-plugins' kube-scheduler (the coscheduling plugin among others) at a pinned release into the
# cache, for the Kubernetes runtime's gang test (test/k8s/gang-enforced.test.ts, which starts it as a second
# scheduler of its own and skips, saying so, when the binary is not there). Prints the binary's path.
# scheduler-plugins v0.33.5 (the newest release the module proxy serves here) is built against Kubernetes
# 1.33.5: three minor releases behind the test cluster's API server, more skew than Kubernetes supports for a
# scheduler, but what it uses of the API (pods, nodes, bindings, PodGroups, leases off) works (the test shows it).
# The module is its own main module (its go.mod's replace lines pin every k8s.io staging module), so it is
# built from a copy. About 17 minutes on a loaded 2-core machine with warm Go caches (4.6 min of CPU, -p 1).
set -euo pipefail
SCHEDULER_PLUGINS_VERSION=${TROUPE_SCHEDULER_PLUGINS_VERSION:-v0.33.5}
cache=${TROUPE_K8S_CACHE:-/var/cache/troupe}/scheduler-plugins-$SCHEDULER_PLUGINS_VERSION
bin=$cache/bin/kube-scheduler
if [ ! -x "$bin" ]; then
  command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
  if ! command -v go >/dev/null 2>&1; then
    echo "coscheduling-build: building scheduler-plugins needs Go, which is not installed" >&2
    exit 1
  fi
  echo "coscheduling-build: building sigs.k8s.io/scheduler-plugins@$SCHEDULER_PLUGINS_VERSION's kube-scheduler" >&2
  dir=$(cd / && go mod download -json "sigs.k8s.io/scheduler-plugins@$SCHEDULER_PLUGINS_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "coscheduling-build: the module could not be had" >&2; exit 1; }
  rm -rf "$cache/src.partial"
  mkdir -p "$cache/bin"
  cp -r "$dir" "$cache/src.partial"
  chmod -R u+w "$cache/src.partial"
  started=$(date +%s)
  (cd "$cache/src.partial" && nice -n 19 go build -p "${TROUPE_K8S_BUILD_P:-1}" -buildvcs=false -trimpath -ldflags "-s -w" -o "$bin.partial" ./cmd/scheduler)
  mv "$bin.partial" "$bin"
  rm -rf "$cache/src.partial"
  echo "coscheduling-build: built in $(($(date +%s) - started)) s" >&2
fi
echo "$bin"
