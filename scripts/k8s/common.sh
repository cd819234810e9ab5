# Shared by build.sh, up.sh and down.sh (sourced, not run): which Kubernetes, etcd and kwok the test cluster
# runs, where they are cached, where the cluster's state lives, and how its daemons are found (by the PID files
# under the state directory only, never by name, so no other etcd or kube-apiserver on the machine is touched).

# One Kubernetes release; every k8s.io staging module is pinned to its matching v0.Y.Z (see build.sh).
K8S_VERSION=v1.36.3
# The etcd release this Kubernetes release is built and tested with (its build/dependencies.yaml).
ETCD_VERSION=v3.6.8
# kwok simulates nodes and drives pod phases through Stages; this release is built against k8s.io v0.36.
KWOK_VERSION=v0.8.0

# Built once per machine, outside any checkout, keyed by every pinned version: a second CI run finds it.
K8S_CACHE_ROOT=${TROUPE_K8S_CACHE:-/var/cache/troupe}
K8S_CACHE_DIR=$K8S_CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION
K8S_BIN_DIR=$K8S_CACHE_DIR/bin
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

# Not under /tmp: troupe's host sandbox gives each task a private /tmp.
K8S_STATE_DIR=${TROUPE_K8S_DIR:-/var/tmp/troupe-k8s}
# The API server's port; etcd listens on the next two (client, peer), the scheduler, controller manager and
# kwok serve their health endpoints on the three after those.
K8S_PORT=${TROUPE_K8S_PORT:-16443}
K8S_NODE_COUNT=${TROUPE_K8S_NODES:-3}
# Each fake node's capacity (what the scheduler places pods against).
K8S_NODE_CPUS=${TROUPE_K8S_NODE_CPUS:-8}
K8S_NODE_MEMORY=${TROUPE_K8S_NODE_MEMORY:-32Gi}
K8S_NODE_GPUS=${TROUPE_K8S_NODE_GPUS:-4}
K8S_NODE_PODS=${TROUPE_K8S_NODE_PODS:-110}

K8S_ENV_FILE=$K8S_STATE_DIR/env
# up.sh puts this file in the state directories it makes; down.sh removes only a directory that has it.
K8S_STATE_MARKER=.troupe-k8s-cluster
K8S_LOCK=/run/lock/troupe-k8s.lock

if ! [[ "$K8S_PORT" =~ ^[0-9]+$ ]] || [ "$K8S_PORT" -lt 1024 ] || [ "$K8S_PORT" -gt 65000 ]; then
  echo "TROUPE_K8S_PORT must be a number from 1024 to 65000 (the daemons take the next five), not '$K8S_PORT'" >&2
  exit 2
fi
case "$K8S_NODE_COUNT" in [1-9]) ;; *) echo "TROUPE_K8S_NODES must be 1 to 9, not '$K8S_NODE_COUNT'" >&2; exit 2 ;; esac
for setting in "TROUPE_K8S_NODE_CPUS=$K8S_NODE_CPUS" "TROUPE_K8S_NODE_GPUS=$K8S_NODE_GPUS" "TROUPE_K8S_NODE_PODS=$K8S_NODE_PODS"; do
  if ! [[ "${setting#*=}" =~ ^[0-9]{1,5}$ ]]; then
    echo "${setting%%=*} must be a whole number, not '${setting#*=}'" >&2
    exit 2
  fi
done
if ! [[ "$K8S_NODE_MEMORY" =~ ^[0-9]{1,6}(Mi|Gi|Ti)$ ]]; then
  echo "TROUPE_K8S_NODE_MEMORY must be a quantity such as 32Gi or 4000Mi, not '$K8S_NODE_MEMORY'" >&2
  exit 2
fi

# Prints the PID in the state directory's NAME.pid if that process is alive and runs the cached binary NAME;
# nothing (status 1) otherwise.
live_daemon() {
  local name=$1 pid
  pid=$(cat "$K8S_STATE_DIR/run/$name.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$K8S_BIN_DIR/$name")" ] || return 1
  echo "$pid"
}

# Stops the daemon NAME that up.sh started (TERM, then KILL after 5 s) and removes its PID file.
stop_daemon() {
  local name=$1 pid
  if pid=$(live_daemon "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    # Alive means running the binary: an exited one may stay a zombie for a while (PID 1 here reaps slowly).
    for _ in $(seq 50); do
      live_daemon "$name" >/dev/null || break
      sleep 0.1
    done
    if live_daemon "$name" >/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$K8S_STATE_DIR/run/$name.pid"
}
