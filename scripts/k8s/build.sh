#!/usr/bin/env bash
# Builds the test cluster's binaries once per machine from their Go modules, into a cache outside the repository
# ($TROUPE_K8S_CACHE, default /var/cache/troupe/k8s-<kubernetes>-etcd-<etcd>-kwok-<kwok>/bin):
#
#   bash scripts/k8s/build.sh          # prints the bin directory; a second call returns at once
#
# - kube-apiserver, kube-controller-manager, kube-scheduler from k8s.io/kubernetes. That module is not meant to
#   be required: its go.mod replaces every k8s.io staging module with a directory of its own repository. A small
#   wrapper module (made here, in the cache) requires it and replaces each staging module with its published
#   v0.Y.Z release instead.
# - etcd from go.etcd.io/etcd/server/v3 (a wrapper main package calling etcdmain.Main: the server module's own
#   go.mod has replace lines too, and its main package lives in another module).
# - kwok's controller from sigs.k8s.io/kwok (no replace lines: go install works).
# Needs Go (/usr/local/go/bin when `go` is not on PATH) and the Go module proxy, only for that first build,
# which takes minutes (docs/k8s-notes.md has the measured times). Low priority (nice 19), as many packages at
# once as there are cores unless TROUPE_K8S_BUILD_P says otherwise. Progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
say() { echo "k8s-build: $*" >&2; }

built() {
  local name
  for name in "${K8S_BINARIES[@]}"; do [ -x "$K8S_BIN_DIR/$name" ] || return 1; done
  [ -f "$K8S_CACHE_DIR/kwok-crds/kwok.x-k8s.io_logs.yaml" ]
}
if built; then
  echo "$K8S_BIN_DIR"
  exit 0
fi

mkdir -p "$K8S_CACHE_DIR"
# One build at a time per cache (two CI runs or two state directories may start at once).
exec 7>"$K8S_CACHE_DIR/.build.lock"
flock 7
if built; then
  echo "$K8S_BIN_DIR"
  exit 0
fi
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null 2>&1; then
  echo "k8s-build: building the Kubernetes test cluster needs Go (1.26 or newer), which is not installed" >&2
  exit 1
fi
parallel=${TROUPE_K8S_BUILD_P:-$(nproc)}
started=$(date +%s)
mkdir -p "$K8S_BIN_DIR"
# GOFLAGS as the machine has them, plus the package parallelism; -mod=mod lets the wrappers' go.sum be written.
export GOFLAGS="${GOFLAGS:-} -p=$parallel -buildvcs=false"

module_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# --- Kubernetes ---------------------------------------------------------------------------------------------
k8s_built() { [ -x "$K8S_BIN_DIR/kube-apiserver" ] && [ -x "$K8S_BIN_DIR/kube-controller-manager" ] && [ -x "$K8S_BIN_DIR/kube-scheduler" ]; }
if ! k8s_built; then
  say "building Kubernetes $K8S_VERSION (kube-apiserver, kube-controller-manager, kube-scheduler)"
  k8s_dir=$(module_dir "k8s.io/kubernetes@$K8S_VERSION")
  if [ -z "$k8s_dir" ] || [ ! -f "$k8s_dir/go.mod" ]; then
    echo "k8s-build: could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy" >&2
    exit 1
  fi
  staging_version=v0.${K8S_VERSION#v1.}
  wrapper=$K8S_CACHE_DIR/src/kubernetes
  rm -rf "$wrapper"
  mkdir -p "$wrapper"
  {
    echo "// Made by scripts/k8s/build.sh: builds k8s.io/kubernetes $K8S_VERSION's commands from published modules."
    echo "module troupe.test/k8s-build"
    echo
    sed -n 's/^go \([0-9.]*\)$/go \1/p; s/^godebug .*/&/p' "$k8s_dir/go.mod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # Every staging module the release's go.mod points at a directory becomes its release of the same minor.
    sed -n 's|^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/k8s\.io/[a-z0-9-]*$|\t\1 => \1 '"$staging_version"'|p' \
      "$k8s_dir/go.mod"
    echo ")"
    echo
    echo "tool ("
    echo "	k8s.io/kubernetes/cmd/kube-apiserver"
    echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
    echo "	k8s.io/kubernetes/cmd/kube-scheduler"
    echo ")"
  } >"$wrapper/go.mod"
  if ! grep -q "k8s.io/client-go => k8s.io/client-go $staging_version" "$wrapper/go.mod"; then
    echo "k8s-build: found no staging modules in k8s.io/kubernetes@$K8S_VERSION's go.mod ($wrapper/go.mod)" >&2
    exit 1
  fi
  (cd "$wrapper" && go mod tidy) >&2
  # The version the binaries report (and that clients see in /version); otherwise v0.0.0.
  major=${K8S_VERSION#v}
  major=${major%%.*}
  minor=${K8S_VERSION#v*.}
  minor=${minor%%.*}
  ldflags="-s -w"
  for package in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $package.gitVersion=$K8S_VERSION -X $package.gitMajor=$major -X $package.gitMinor=$minor"
    ldflags+=" -X $package.gitTreeState=clean"
  done
  for command in kube-apiserver kube-controller-manager kube-scheduler; do
    [ -x "$K8S_BIN_DIR/$command" ] && continue
    command_started=$(date +%s)
    (cd "$wrapper" && nice -n 19 go build -trimpath -ldflags "$ldflags" -o "$K8S_BIN_DIR/$command.partial" \
      "k8s.io/kubernetes/cmd/$command") >&2
    mv "$K8S_BIN_DIR/$command.partial" "$K8S_BIN_DIR/$command"
    say "built $command in $(($(date +%s) - command_started)) s"
  done
fi

# --- etcd ---------------------------------------------------------------------------------------------------
if [ ! -x "$K8S_BIN_DIR/etcd" ]; then
  say "building etcd $ETCD_VERSION"
  command_started=$(date +%s)
  wrapper=$K8S_CACHE_DIR/src/etcd
  rm -rf "$wrapper"
  mkdir -p "$wrapper"
  cat >"$wrapper/go.mod" <<MOD
// Made by scripts/k8s/build.sh: etcd $ETCD_VERSION's server from its published modules.
module troupe.test/etcd-build

go 1.24.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat >"$wrapper/main.go" <<'GO'
// etcd's own main package, go.etcd.io/etcd/v3, is the repository's root module, which replaces its sibling
// modules with directories; this is the same call it makes.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
GO
  # Every sibling module at the same release (the server's go.mod would otherwise let MVS pick older ones).
  (cd "$wrapper" && go get "go.etcd.io/etcd/api/v3@$ETCD_VERSION" "go.etcd.io/etcd/client/pkg/v3@$ETCD_VERSION" \
    "go.etcd.io/etcd/client/v3@$ETCD_VERSION" "go.etcd.io/etcd/pkg/v3@$ETCD_VERSION" && go mod tidy) >&2
  (cd "$wrapper" && nice -n 19 go build -trimpath -ldflags "-s -w" -o "$K8S_BIN_DIR/etcd.partial" .) >&2
  mv "$K8S_BIN_DIR/etcd.partial" "$K8S_BIN_DIR/etcd"
  say "built etcd in $(($(date +%s) - command_started)) s"
fi

# --- kwok ---------------------------------------------------------------------------------------------------
if [ ! -x "$K8S_BIN_DIR/kwok" ]; then
  say "building kwok $KWOK_VERSION"
  command_started=$(date +%s)
  rm -rf "$K8S_CACHE_DIR/gobin"
  mkdir -p "$K8S_CACHE_DIR/gobin"
  nice -n 19 env GOBIN="$K8S_CACHE_DIR/gobin" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  mv "$K8S_CACHE_DIR/gobin/kwok" "$K8S_BIN_DIR/kwok"
  rmdir "$K8S_CACHE_DIR/gobin"
  say "built kwok in $(($(date +%s) - command_started)) s"
fi

# kwok's custom resources for pod logs (up.sh creates them in the API server), from the same module.
if [ ! -f "$K8S_CACHE_DIR/kwok-crds/kwok.x-k8s.io_logs.yaml" ]; then
  kwok_dir=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")
  mkdir -p "$K8S_CACHE_DIR/kwok-crds.partial"
  cp "$kwok_dir"/kustomize/crd/bases/kwok.x-k8s.io_{logs,clusterlogs}.yaml "$K8S_CACHE_DIR/kwok-crds.partial/"
  chmod 644 "$K8S_CACHE_DIR"/kwok-crds.partial/*
  rm -rf "$K8S_CACHE_DIR/kwok-crds"
  mv "$K8S_CACHE_DIR/kwok-crds.partial" "$K8S_CACHE_DIR/kwok-crds"
fi

say "all built in $(($(date +%s) - started)) s into $K8S_BIN_DIR"
echo "$K8S_BIN_DIR"
