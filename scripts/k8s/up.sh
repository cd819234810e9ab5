#!/usr/bin/env bash
# Starts (or keeps) a real Kubernetes API server for the tests and prints the environment that points at it:
#
#   eval "$(bash scripts/k8s/up.sh)"     # then TROUPE_K8S_KUBECONFIG, TROUPE_K8S_LIMITED_KUBECONFIG ... are set
#
# On 127.0.0.1 only: etcd, kube-apiserver (TLS, certificates made by openssl; RBAC; service-account keys),
# kube-controller-manager (namespaces, service accounts, endpoints, garbage collection, node lifecycle),
# kube-scheduler, and kwok, which plays the kubelet of $TROUPE_K8S_NODES fake nodes (cpu, memory and
# nvidia.com/gpu capacity) and drives each pod's lifecycle from its annotations (scripts/k8s/kwok-stages.yaml;
# docs/k8s-notes.md). No container runs: pods are API objects whose status kwok writes.
#
# The binaries come from scripts/k8s/build.sh (built once per machine into a cache; the first call builds them,
# which takes many minutes). Two identities: an administrator (client certificate, group system:masters:
# TROUPE_K8S_KUBECONFIG) and a limited user (a static token: TROUPE_K8S_LIMITED_KUBECONFIG, TROUPE_K8S_LIMITED_TOKEN)
# who may only get, list and watch pods in the namespace $TROUPE_K8S_LIMITED_NAMESPACE: for 401/403 tests.
# Idempotent: a running cluster stays (a second call takes well under a second); dead daemons are restarted
# on the same data. Refused (exit 2): a cluster in the same state directory running on another port.
# Settings (environment): TROUPE_K8S_DIR (state, default /var/tmp/troupe-k8s), TROUPE_K8S_PORT (the API server's
# port, default 16443; the others take the next five), TROUPE_K8S_NODES (default 3), each node's capacity
# TROUPE_K8S_NODE_CPUS (8), TROUPE_K8S_NODE_MEMORY (32Gi), TROUPE_K8S_NODE_GPUS (4), TROUPE_K8S_NODE_PODS (110),
# TROUPE_K8S_CACHE. kwok keeps only the nodes labelled type=kwok alive: taking the label away loses the node.
# Progress goes to stderr; stdout carries only the `export` lines (also kept in the state directory's `env`).
# `bash scripts/k8s/down.sh` stops it and removes the state.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
# shellcheck source=pki.sh
source "$here/pki.sh"
started=$(date +%s%N)
say() { echo "k8s-up: $*" >&2; }
elapsed_ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

for tool in openssl curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "k8s-up: needs $tool (apt-get install $tool)" >&2
    exit 1
  fi
done
bash "$here/build.sh" >/dev/null

mkdir -p "$(dirname "$K8S_LOCK")"
exec 9>"$K8S_LOCK"
flock 9

if [ -e "$K8S_STATE_DIR" ] && [ ! -e "$K8S_STATE_DIR/$K8S_STATE_MARKER" ] && [ -n "$(ls -A "$K8S_STATE_DIR")" ]; then
  echo "k8s-up: $K8S_STATE_DIR exists and was not made by scripts/k8s/up.sh (no $K8S_STATE_MARKER)" >&2
  exit 2
fi
if [ -f "$K8S_ENV_FILE" ] && live_daemon kube-apiserver >/dev/null; then
  running_port=$(sed -n 's|^export TROUPE_K8S_PORT=\([0-9]*\)$|\1|p' "$K8S_ENV_FILE")
  if [ "$running_port" != "$K8S_PORT" ]; then
    echo "k8s-up: the cluster in $K8S_STATE_DIR runs on port $running_port, not $K8S_PORT: use its settings" \
      "(source $K8S_ENV_FILE) or remove it first (scripts/k8s/down.sh)" >&2
    exit 2
  fi
fi
mkdir -p "$K8S_STATE_DIR"/{run,log,etcd,kubeconfig}
touch "$K8S_STATE_DIR/$K8S_STATE_MARKER"
chmod 700 "$K8S_STATE_DIR"

etcd_port=$((K8S_PORT + 1)) etcd_peer_port=$((K8S_PORT + 2)) scheduler_port=$((K8S_PORT + 3))
controller_manager_port=$((K8S_PORT + 4)) kwok_port=$((K8S_PORT + 5))
pki=$K8S_STATE_DIR/pki
kubeconfigs=$K8S_STATE_DIR/kubeconfig
make_pki

# --- identities ----------------------------------------------------------------------------------------------
limited_namespace=troupe-limited
if [ ! -s "$K8S_STATE_DIR/tokens.csv" ]; then
  (
    umask 077
    # token,user,uid,"groups" (kube-apiserver's --token-auth-file)
    echo "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'),troupe-limited,troupe-limited-uid,\"troupe-testers\"" \
      >"$K8S_STATE_DIR/tokens.csv"
  )
fi
limited_token=$(cut -d, -f1 "$K8S_STATE_DIR/tokens.csv")
write_kubeconfig "$kubeconfigs/admin.yaml" troupe-admin cert admin
write_kubeconfig "$kubeconfigs/limited.yaml" troupe-limited token "$limited_token"
for component in kube-scheduler kube-controller-manager kwok; do
  write_kubeconfig "$kubeconfigs/$component.yaml" "$component" cert "$component"
done

# Starts BINARY (from the cache) with ARGS in the background unless it runs already; its log in log/NAME.log.
start_daemon() {
  local name=$1
  shift
  live_daemon "$name" >/dev/null && return 0
  say "starting $name"
  setsid "$K8S_BIN_DIR/$name" "$@" </dev/null >>"$K8S_STATE_DIR/log/$name.log" 2>&1 9>&- &
  echo $! >"$K8S_STATE_DIR/run/$name.pid"
}
# Waits (up to $3 s) until the command $2 succeeds while the daemon $1 lives.
wait_for() {
  local name=$1 check=$2 limit=$3 deadline
  deadline=$(($(date +%s) + limit))
  until eval "$check" >/dev/null 2>&1; do
    if ! live_daemon "$name" >/dev/null; then
      echo "k8s-up: $name exited; the end of its log ($K8S_STATE_DIR/log/$name.log):" >&2
      tail -20 "$K8S_STATE_DIR/log/$name.log" >&2
      exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "k8s-up: $name was not ready within $limit s; log: $K8S_STATE_DIR/log/$name.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}
port_free() { ! (exec 6<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The administrator's request to the API server: api METHOD PATH [YAML-FILE]; prints the HTTP status code.
api() {
  local args=(-s -o "$K8S_STATE_DIR/log/last-response.json" -w '%{http_code}' --cacert "$pki/ca.crt"
    --cert "$pki/admin.crt" --key "$pki/admin.key" -X "$1")
  [ $# -ge 3 ] && args+=(-H "Content-Type: application/yaml" --data-binary "@$3")
  curl "${args[@]}" "https://127.0.0.1:$K8S_PORT$2"
}
# Creates the object in YAML-FILE at PATH unless it exists (201 or 409 are both fine).
ensure() {
  local code
  code=$(api POST "$1" "$2")
  if [ "$code" != 201 ] && [ "$code" != 409 ]; then
    echo "k8s-up: creating $2 at $1 answered $code: $(cat "$K8S_STATE_DIR/log/last-response.json")" >&2
    exit 1
  fi
}

if ! live_daemon etcd >/dev/null; then
  for port in "$K8S_PORT" "$etcd_port" "$etcd_peer_port" "$scheduler_port" "$controller_manager_port" "$kwok_port"; do
    if ! port_free "$port"; then
      echo "k8s-up: port $port on 127.0.0.1 is taken by another program: choose another TROUPE_K8S_PORT" >&2
      exit 2
    fi
  done
fi

# --- etcd: plain HTTP on loopback; no fsync (a test cluster's data is thrown away) -----------------------------
start_daemon etcd --name troupe-test --data-dir "$K8S_STATE_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "troupe-test=http://127.0.0.1:$etcd_peer_port" --unsafe-no-fsync --log-level warn
wait_for etcd "curl -sf http://127.0.0.1:$etcd_port/health" 60

# --- kube-apiserver ------------------------------------------------------------------------------------------
# The Service "kubernetes" would advertise 127.0.0.1, which an Endpoints object may not hold: no reconciler.
# The kubelet's address is each node's InternalIP (127.0.0.1: kwok's server), its certificate from our CA.
start_daemon kube-apiserver --bind-address 127.0.0.1 --secure-port "$K8S_PORT" --advertise-address 127.0.0.1 \
  --endpoint-reconciler-type none --etcd-servers "http://127.0.0.1:$etcd_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --token-auth-file "$K8S_STATE_DIR/tokens.csv" --anonymous-auth=false \
  --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true --profiling=false \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP
wait_for kube-apiserver '[ "$(api GET /readyz)" = 200 ]' 120

# --- objects the cluster starts with ---------------------------------------------------------------------------
bootstrap=$K8S_STATE_DIR/bootstrap
mkdir -p "$bootstrap"
# kwok's Logs and ClusterLogs resources (which file holds a pod's log), from kwok's module (build.sh copies them).
for crd in logs clusterlogs; do
  ensure /apis/apiextensions.k8s.io/v1/customresourcedefinitions "$K8S_CACHE_DIR/kwok-crds/kwok.x-k8s.io_$crd.yaml"
done
# Every pod has a log, as with a kubelet: an empty one unless a Logs object (per pod) names another file.
mkdir -p "$K8S_STATE_DIR/logs"
: >"$K8S_STATE_DIR/logs/empty.log"
cat >"$bootstrap/empty-logs.yaml" <<YAML
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: troupe-empty-logs
spec:
  logs:
  - logsFile: $K8S_STATE_DIR/logs/empty.log
    follow: true
YAML
# A new CRD's resource is served a moment after it is created.
wait_for kube-apiserver '[[ "$(api POST /apis/kwok.x-k8s.io/v1alpha1/clusterlogs "$bootstrap/empty-logs.yaml")" =~ ^(201|409)$ ]]' 30
cat >"$bootstrap/limited.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $limited_namespace
YAML
ensure /api/v1/namespaces "$bootstrap/limited.yaml"
cat >"$bootstrap/limited-role.yaml" <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: pod-reader
  namespace: $limited_namespace
rules:
- apiGroups: [""]
  resources: [pods, pods/log]
  verbs: [get, list, watch]
YAML
ensure "/apis/rbac.authorization.k8s.io/v1/namespaces/$limited_namespace/roles" "$bootstrap/limited-role.yaml"
cat >"$bootstrap/limited-binding.yaml" <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: troupe-limited-pod-reader
  namespace: $limited_namespace
subjects:
- kind: User
  name: troupe-limited
  apiGroup: rbac.authorization.k8s.io
roleRef:
  kind: Role
  name: pod-reader
  apiGroup: rbac.authorization.k8s.io
YAML
ensure "/apis/rbac.authorization.k8s.io/v1/namespaces/$limited_namespace/rolebindings" "$bootstrap/limited-binding.yaml"
node_names=()
for i in $(seq "$K8S_NODE_COUNT"); do
  node=kwok-node-$i
  node_names+=("$node")
  cat >"$bootstrap/$node.yaml" <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $node
  labels:
    kubernetes.io/hostname: $node
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
status:
  capacity: &capacity
    cpu: "$K8S_NODE_CPUS"
    memory: $K8S_NODE_MEMORY
    nvidia.com/gpu: "$K8S_NODE_GPUS"
    pods: "$K8S_NODE_PODS"
  allocatable: *capacity
  addresses:
  - type: InternalIP
    address: 127.0.0.1
  - type: Hostname
    address: $node
YAML
  ensure /api/v1/nodes "$bootstrap/$node.yaml"
done

# --- the controllers, the scheduler and kwok -------------------------------------------------------------------
# Each controller acts as its own service account (kube-system/*-controller, bound by the bootstrap RBAC
# policy), as on a kubeadm cluster: the controller manager's own identity may do little by itself.
start_daemon kube-controller-manager --kubeconfig "$kubeconfigs/kube-controller-manager.yaml" \
  --bind-address 127.0.0.1 --secure-port "$controller_manager_port" --cert-dir "$K8S_STATE_DIR/run/kube-controller-manager" \
  --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" --profiling=false \
  --node-monitor-period 2s --node-monitor-grace-period 20s
start_daemon kube-scheduler --kubeconfig "$kubeconfigs/kube-scheduler.yaml" \
  --bind-address 127.0.0.1 --secure-port "$scheduler_port" --cert-dir "$K8S_STATE_DIR/run/kube-scheduler" \
  --leader-elect=false --profiling=false
# kwok manages the nodes labelled type=kwok: a test "loses" a node by taking the label away (kwok then stops
# renewing its lease, and the node lifecycle controller, which looks every 2 s and gives a node 20 s instead of
# a real cluster's 50, marks it NotReady and taints it).
# kwok's server is every node's "kubelet" (the API server proxies pod logs to it); pod addresses come from a
# /16 that nothing routes (they are strings in pod status).
start_daemon kwok --kubeconfig "$kubeconfigs/kwok.yaml" --config "$here/kwok-stages.yaml" --manage-nodes-with-label-selector type=kwok \
  --server-address "127.0.0.1:$kwok_port" --node-ip 127.0.0.1 --node-port "$kwok_port" --cidr 10.244.0.0/16 \
  --tls-cert-file "$pki/kwok-serving.crt" --tls-private-key-file "$pki/kwok-serving.key" \
  --node-lease-duration-seconds 40 --enable-crds Logs,ClusterLogs
wait_for kube-controller-manager "curl -skf https://127.0.0.1:$controller_manager_port/healthz" 60
wait_for kube-scheduler "curl -skf https://127.0.0.1:$scheduler_port/healthz" 60
wait_for kwok "curl -skf https://127.0.0.1:$kwok_port/healthz" 60
node_ready() {
  # The answer is indented JSON (curl is no kubectl): compared without white space.
  [ "$(api GET "/api/v1/nodes/$1")" = 200 ] &&
    tr -d ' \n' <"$K8S_STATE_DIR/log/last-response.json" | grep -q '"type":"Ready","status":"True"'
}
for node in "${node_names[@]}"; do wait_for kwok "node_ready $node" 60; done
# Pods need their namespace's default service account, which the controller manager makes.
wait_for kube-controller-manager '[ "$(api GET /api/v1/namespaces/default/serviceaccounts/default)" = 200 ]' 60

cat >"$K8S_ENV_FILE" <<ENV
export TROUPE_K8S_KUBECONFIG=$kubeconfigs/admin.yaml
export TROUPE_K8S_LIMITED_KUBECONFIG=$kubeconfigs/limited.yaml
export TROUPE_K8S_LIMITED_TOKEN=$limited_token
export TROUPE_K8S_LIMITED_NAMESPACE=$limited_namespace
export TROUPE_K8S_SERVER=https://127.0.0.1:$K8S_PORT
export TROUPE_K8S_NODES=$K8S_NODE_COUNT
export TROUPE_K8S_DIR=$K8S_STATE_DIR
export TROUPE_K8S_PORT=$K8S_PORT
export TROUPE_K8S_BIN=$K8S_BIN_DIR
ENV
chmod 600 "$K8S_ENV_FILE"
say "up: Kubernetes $K8S_VERSION on https://127.0.0.1:$K8S_PORT, $K8S_NODE_COUNT kwok nodes, in $(elapsed_ms "$started") ms"
cat "$K8S_ENV_FILE"
