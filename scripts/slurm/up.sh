#!/usr/bin/env bash
# Starts (or repairs) a real Slurm test cluster on this machine and prints the environment that points at it:
#
#   eval "$(bash scripts/slurm/up.sh)"     # then sbatch, srun, sinfo ... talk to it
#
# The cluster: munged, slurmctld on the login node (this machine's root network namespace, reachable from the
# nodes at $TROUPE_SLURM_NET.1 on the bridge), and one slurmd per node n1..nN, each in its own network namespace
# (address $TROUPE_SLURM_NET.1i) and UTS namespace (hostname ni). All share this machine's mount namespace:
# the state directory's `shared/` is the cluster's shared file system. Needs root.
#
# Idempotent: whatever is already up stays (a second call takes well under a second); a dead daemon is
# restarted, a node left DOWN or drained is resumed. Refused (exit 2): settings other than the running
# cluster's, a TROUPE_SLURM_DIR other than its (one cluster per machine: the link names are fixed), a /24
# already on another interface. `bash scripts/slurm/down.sh` removes everything.
# Settings (environment): TROUPE_SLURM_DIR (state, default /var/tmp/troupe-slurm), TROUPE_SLURM_NET (default
# 10.250.0), TROUPE_SLURM_NODES (3), TROUPE_SLURM_CPUS (4 per node), TROUPE_SLURM_MEMORY_MB (4000 per node),
# TROUPE_SLURM_GPUS (fake gres/gpu per node, 2; 0 for none), TROUPE_SLURM_CTLD_PORT (16817).
# Progress goes to stderr; stdout carries only the `export` lines (also kept in the state directory's `env`;
# sourcing that file and running up.sh again reproduces the same cluster).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
# shellcheck source=config.sh
source "$here/config.sh"
started=$(date +%s%N)
say() { echo "slurm-up: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo "slurm-up: needs root (network namespaces, a bridge, daemons running as root)" >&2
  exit 2
fi

# Packages, installed only when missing (as scripts/test.sh does). Their postinst cannot start the daemons here.
# The daemons and clients without Recommends: slurm-wlm's meta package would bring 43 packages (every plugin
# and its libraries, HDF5, ROCm, IPMI ...); slurm-wlm-basic-plugins (a dependency) has all this cluster uses,
# squeue/sinfo --json included.
need_apt=()
for pkg in slurmctld slurmd slurm-client munge iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]}"
  install_packages() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null; }
  # The package lists first as they are (scripts/test.sh has just updated them on CI), updated when that fails.
  install_packages 2>/dev/null || { apt-get update -qq && install_packages; }
fi

mkdir -p "$(dirname "$SLURM_LOCK")"
exec 9>"$SLURM_LOCK"
flock 9

# --- state directory and configuration ----------------------------------------------------------------------
conf_text=$(slurm_conf_text)
gres_text=$(gres_conf_text)
refuse_other_cluster
other_links=$(ip -o -4 addr show | awk -v net="$SLURM_NET." -v bridge="$SLURM_BRIDGE" \
  'index($4, net) == 1 && $2 != bridge {print $2 " " $4}')
if [ -n "$other_links" ]; then
  echo "slurm-up: $SLURM_NET.0/24 is in use on this machine ($other_links): choose another TROUPE_SLURM_NET" >&2
  exit 2
fi
if [ -f "$SLURM_CONF_FILE" ] && { [ "$(cat "$SLURM_CONF_FILE")" != "$conf_text" ] ||
  [ "$(cat "$SLURM_STATE_DIR/etc/gres.conf" 2>/dev/null)" != "$gres_text" ]; }; then
  if any_daemon_alive; then
    echo "slurm-up: the cluster in $SLURM_STATE_DIR runs with other settings than these; its configuration differs:" >&2
    diff <(echo "$conf_text") "$SLURM_CONF_FILE" | sed 's/^/  /' >&2 || true
    echo "slurm-up: use its settings (source $SLURM_STATE_DIR/env), or remove it first (scripts/slurm/down.sh)" >&2
    exit 2
  fi
  say "removing a stopped cluster that had other settings"
  teardown_cluster
fi

mkdir -p "$SLURM_STATE_DIR"/{etc,munge,ctld/state,shared,dev}
touch "$SLURM_STATE_DIR/$STATE_MARKER"
chmod 755 "$SLURM_STATE_DIR"
chmod 700 "$SLURM_STATE_DIR/munge"
chmod 1777 "$SLURM_SHARED_DIR"
if [ ! -s "$SLURM_STATE_DIR/munge/munge.key" ]; then
  (umask 077 && head -c 1024 /dev/urandom >"$SLURM_STATE_DIR/munge/munge.key")
fi
for ((g = 0; g < SLURM_NODE_GPUS; g++)); do
  [ -c "$SLURM_STATE_DIR/dev/gpu$g" ] || mknod "$SLURM_STATE_DIR/dev/gpu$g" c 1 3
done
[ "$(cat "$SLURM_CONF_FILE" 2>/dev/null)" = "$conf_text" ] || echo "$conf_text" >"$SLURM_CONF_FILE"
[ "$(cat "$SLURM_STATE_DIR/etc/gres.conf" 2>/dev/null)" = "$gres_text" ] || echo "$gres_text" >"$SLURM_STATE_DIR/etc/gres.conf"

# --- network: a bridge in the root namespace, one netns + veth per node ---------------------------------------
if ! ip link show "$SLURM_BRIDGE" >/dev/null 2>&1; then
  say "creating bridge $SLURM_BRIDGE ($SLURM_NET.1/24)"
  ip link add "$SLURM_BRIDGE" type bridge
fi
# Whose network this is: down.sh and up.sh with another TROUPE_SLURM_DIR leave it alone.
ip link set "$SLURM_BRIDGE" alias "troupe-slurm:$SLURM_STATE_DIR"
[[ "$(ip addr show dev "$SLURM_BRIDGE")" == *"inet $SLURM_NET.1/24 "* ]] || ip addr add "$SLURM_NET.1/24" dev "$SLURM_BRIDGE"
ip link set "$SLURM_BRIDGE" up
# Bridged traffic passes FORWARD when br_netfilter is loaded; accept it even where the policy is DROP (Docker).
if command -v iptables >/dev/null 2>&1; then
  rule=(FORWARD -i "$SLURM_BRIDGE" -o "$SLURM_BRIDGE" -m comment --comment "$SLURM_PREFIX" -j ACCEPT)
  iptables -C "${rule[@]}" 2>/dev/null || iptables -I "${rule[@]}" 2>/dev/null || say "warning: could not add the FORWARD rule"
fi

for node in $(node_names); do
  ns=$(node_netns "$node") address=$(node_address "$node")
  # (No `| grep -q` under pipefail: grep's early exit would fail the pipe.)
  if [ -e "/run/netns/$ns" ] && [[ "$(ip -n "$ns" addr show dev eth0 2>/dev/null)" == *"inet $address/24 "* ]] &&
    [[ "$(ip -o link show "$ns" 2>/dev/null)" == *" master $SLURM_BRIDGE "* ]]; then
    continue
  fi
  say "creating network namespace $ns ($address)"
  live_pid "$(node_pid_file "$node")" slurmd >/dev/null && stop_pid "$(node_pid_file "$node")" slurmd
  ip link del "$ns" 2>/dev/null || true
  [ -e "/run/netns/$ns" ] && ip netns del "$ns"
  ip netns add "$ns"
  ip link add "$ns" type veth peer name eth0 netns "$ns"
  ip link set "$ns" master "$SLURM_BRIDGE" up
  ip -n "$ns" addr add "$address/24" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$SLURM_NET.1"
done

# --- daemons ----------------------------------------------------------------------------------------------
if ! live_pid "$MUNGE_PID_FILE" munged >/dev/null; then
  say "starting munged ($MUNGE_SOCKET)"
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  # --force: munged as root, with its files under a directory other than /run/munge.
  munged --force --socket="$MUNGE_SOCKET" --key-file="$SLURM_STATE_DIR/munge/munge.key" \
    --pid-file="$MUNGE_PID_FILE" --log-file="$SLURM_STATE_DIR/munge/munged.log" \
    --seed-file="$SLURM_STATE_DIR/munge/munged.seed" </dev/null >/dev/null 2>>"$SLURM_STATE_DIR/daemons.log" 9>&-
fi

if ! live_pid "$CTLD_PID_FILE" slurmctld >/dev/null; then
  clean=()
  [ -n "$(ls -A "$SLURM_STATE_DIR/ctld/state")" ] || clean=(-c)
  say "starting slurmctld (port $SLURM_CTLD_PORT)"
  # Its own UTS namespace, so that its host name is the SlurmctldHost of the configuration whatever this
  # machine is called; its network is the root namespace's.
  unshare --uts sh -c "hostname ${SLURM_PREFIX}ctl && exec slurmctld -f '$SLURM_CONF_FILE' ${clean[*]}" </dev/null >/dev/null 2>>"$SLURM_STATE_DIR/daemons.log" 9>&-
fi

for node in $(node_names); do
  pid_file=$(node_pid_file "$node")
  live_pid "$pid_file" slurmd >/dev/null && continue
  say "starting slurmd $node in $(node_netns "$node")"
  mkdir -p "$SLURM_STATE_DIR/nodes/$node/spool"
  # nsenter, not `ip netns exec`: that remounts /sys and slurmd then finds no cgroup file system.
  nsenter --net="/run/netns/$(node_netns "$node")" unshare --uts \
    sh -c "hostname $node && exec slurmd -f '$SLURM_CONF_FILE' -N $node" </dev/null >/dev/null 2>>"$SLURM_STATE_DIR/daemons.log" 9>&-
done

# --- wait until every node is usable ----------------------------------------------------------------------
deadline=$(($(date +%s) + 60))
resumed=" "
while :; do
  states=$(sinfo -h -N -o '%N %t' 2>/dev/null || true)
  waiting=$(echo "$states" | awk '$2 !~ /^(idle|mix|alloc|comp)$/ {print $1 "=" $2}')
  if [ -n "$states" ] && [ -z "$waiting" ]; then break; fi
  for entry in $waiting; do
    node=${entry%%=*} state=${entry#*=}
    # A node whose slurmd answers but that was left DOWN or drained (by a test, an admin): resume it, once.
    # One not answering (`*`) waits: a restarted slurmd registers and ReturnToService=2 brings it back.
    case "$state" in *\*) continue ;; esac
    case "$state" in down | drain | drng | drained | fail | failg | maint)
      [[ "$resumed" == *" $node "* ]] || { scontrol update nodename="$node" state=resume 2>/dev/null || true; resumed+="$node "; } ;;
    esac
  done
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "slurm-up: the nodes did not become usable within 60 s:" >&2
    echo "$states" >&2
    echo "logs: $SLURM_STATE_DIR/daemons.log, $SLURM_STATE_DIR/ctld/slurmctld.log, $SLURM_STATE_DIR/nodes/*/slurmd.log" >&2
    exit 1
  fi
  sleep 0.1
done

cat >"$SLURM_STATE_DIR/env" <<EOF
export SLURM_CONF=$SLURM_CONF_FILE
export TROUPE_SLURM_DIR=$SLURM_STATE_DIR
export TROUPE_SLURM_SHARED=$SLURM_SHARED_DIR
export TROUPE_SLURM_LOGIN_ADDRESS=$SLURM_NET.1
export TROUPE_SLURM_NET=$SLURM_NET
export TROUPE_SLURM_NODES=$SLURM_NODE_COUNT
export TROUPE_SLURM_CPUS=$SLURM_NODE_CPUS
export TROUPE_SLURM_MEMORY_MB=$SLURM_NODE_MEMORY_MB
export TROUPE_SLURM_GPUS=$SLURM_NODE_GPUS
export TROUPE_SLURM_CTLD_PORT=$SLURM_CTLD_PORT
EOF
say "up: $SLURM_NODE_COUNT nodes ($(echo "$states" | tr '\n' ' ')) in $((($(date +%s%N) - started) / 1000000)) ms"
cat "$SLURM_STATE_DIR/env"
