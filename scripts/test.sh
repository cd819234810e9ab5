#!/usr/bin/env bash
# The whole test suite, with its own set-up, on a fresh clone of a fresh machine:
# installs what is missing, builds, then typecheck, lint, import cycles, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need, installed only when missing (root on CI machines).
# bubblewrap: task sandboxes; iptables: NAT for task networks (egress); netcat-openbsd: the tutorial's `nc`;
# podman and its network stack: the container runtime; busybox-static and debootstrap: the test images;
# graphviz: `troupe plan --output dot` is read back by the real `dot`; openssl and curl: the Kubernetes test cluster;
# chromium and fonts-dejavu-core: the web UI's tests in a real browser (playwright-core drives it; no browser download).
# libjansson-dev: troupe-slurm-helper (the Slurm member helper in C) links its static libjansson.a; strace: a
# test counts troupe-spawner's writes.
APT_PACKAGES=(bubblewrap libjansson-dev strace iptables netcat-openbsd podman runc netavark aardvark-dns containernetworking-plugins uidmap
  fuse-overlayfs slirp4netns busybox-static debootstrap graphviz openssl curl chromium fonts-dejavu-core)
need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build

# podman as these machines need it, and the images the container tests use (built locally, cached).
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/scripts/ci-containers.conf}
bash scripts/test-images.sh
# One real Slurm cluster for every Slurm test (scripts/slurm/up.sh: munged, slurmctld, three slurmd in network
# namespaces); taken down at the end unless it was up before (a developer's).
echo "== slurm test cluster"
slurm_was_up=$([ -f "${TROUPE_SLURM_DIR:-/var/tmp/troupe-slurm}/env" ] && echo yes || echo no)
TROUPE_SLURM_CONF=$(bash scripts/slurm/up.sh | sed -n 's/^export SLURM_CONF=//p')
export TROUPE_SLURM_CONF
# One real S3 server (SeaweedFS, scripts/s3/up.sh: built once per machine into /var/cache/troupe, about 5.5
# minutes the first time) for every S3 test; its `export` lines name it.
echo "== s3 test server"
s3_was_up=$([ -f "${TROUPE_S3_DIR:-/var/tmp/troupe-s3}/env" ] && echo yes || echo no)
s3_env=$(bash scripts/s3/up.sh) # an assignment, so that a failure stops the script
eval "$s3_env"
# What this run started is taken down at its end; what was up before (a developer's) stays.
# One real Kubernetes control plane (scripts/k8s/up.sh: etcd, kube-apiserver, controller manager, scheduler and
# kwok's simulated nodes, built from Go modules once per machine into /var/cache/troupe, about 10-20 minutes the
# first time; docs/k8s-notes.md) for every Kubernetes test; its `export` lines name it.
echo "== kubernetes test cluster"
k8s_was_up=$([ -f "${TROUPE_K8S_DIR:-/var/tmp/troupe-k8s}/env" ] && echo yes || echo no)
k8s_env=$(bash scripts/k8s/up.sh) # an assignment, so that a failure stops the script
eval "$k8s_env"
# scheduler-plugins' kube-scheduler (coscheduling) for the gang test, built once per machine into the cache (a few
# minutes on an idle machine); test/k8s/gang-enforced.test.ts starts it under a scheduler name of its own.
TROUPE_K8S_BUILD_P=${TROUPE_K8S_BUILD_P:-2} bash scripts/k8s/coscheduling-build.sh >/dev/null ||
  echo "coscheduling scheduler not built: test/k8s/gang-enforced.test.ts skips, saying so"
# The gang tests' CRDs, made once per machine into the cache before the tests (they would otherwise be made
# while a test file is collected): scheduler-plugins' from its module, Volcano's generated from its API types.
bash scripts/k8s/gang-crds.sh >/dev/null || echo "scheduler-plugins' CRD not fetched: test/k8s/pod-groups.test.ts skips, saying so"
bash scripts/k8s/volcano-crd.sh >/dev/null || echo "Volcano's CRD not made: test/k8s/volcano-pod-groups.test.ts skips, saying so"

on_exit=()
[ "$slurm_was_up" = no ] && on_exit+=("bash scripts/slurm/down.sh")
[ "$s3_was_up" = no ] && on_exit+=("bash scripts/s3/down.sh")
[ "$k8s_was_up" = no ] && on_exit+=("bash scripts/k8s/down.sh")
trap 'for c in "${on_exit[@]}"; do $c >/dev/null 2>&1 || true; done' EXIT
echo "== typecheck"; npm run --silent typecheck
echo "== lint"; npm run --silent lint
echo "== import cycles"; npm run --silent cycles
# Built above: the test files' ensureBuilt (test/run/helpers.ts) need not build again.
echo "== tests"; TROUPE_TEST_BUILT=1 npx vitest run
