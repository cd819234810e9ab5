#!/usr/bin/env bash
# Stops the Kubernetes test cluster scripts/k8s/up.sh started (its daemons, found by the PID files under the state
# directory, never by name) and removes the state directory (etcd's data, keys and kubeconfigs with it). The
# built binaries stay in their cache. Safe to run when nothing is up.
#
#   bash scripts/k8s/down.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
mkdir -p "$(dirname "$K8S_LOCK")"
exec 9>"$K8S_LOCK"
flock 9

if [ -e "$K8S_STATE_DIR" ] && [ ! -e "$K8S_STATE_DIR/$K8S_STATE_MARKER" ]; then
  echo "k8s-down: $K8S_STATE_DIR was not made by scripts/k8s/up.sh (no $K8S_STATE_MARKER): left alone" >&2
  exit 2
fi
# Clients of the API server first, etcd last.
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_daemon "$name"; done
rm -rf "$K8S_STATE_DIR"
echo "k8s-down: removed the cluster ($K8S_STATE_DIR)" >&2
