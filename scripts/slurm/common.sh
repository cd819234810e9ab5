# Shared by up.sh and down.sh (sourced, not run): where the test cluster lives and what it is called.
#
# Everything this cluster makes on the machine carries the prefix `trslurm`: the bridge trslurm0, the network
# namespaces trslurm-n1.., their host-side veths trslurm-n1.., the lock /run/lock/trslurm.lock. The cluster's
# daemons are found by the PID files under the state directory only, never by name, so no other Slurm or
# munge on the machine is touched. One cluster per machine (the link names are fixed).

# Not under /tmp: troupe's host sandbox gives each task a private /tmp, which would hide the shared directory.
SLURM_STATE_DIR=${TROUPE_SLURM_DIR:-/var/tmp/troupe-slurm}
# The cluster's /24: the bridge (the login node, where troupe runs, and slurmctld) is .1, node i is .1i.
SLURM_NET=${TROUPE_SLURM_NET:-10.250.0}
SLURM_NODE_COUNT=${TROUPE_SLURM_NODES:-3}
SLURM_NODE_CPUS=${TROUPE_SLURM_CPUS:-4}
SLURM_NODE_MEMORY_MB=${TROUPE_SLURM_MEMORY_MB:-4000}
SLURM_NODE_GPUS=${TROUPE_SLURM_GPUS:-2}
# slurmctld listens in the root namespace: a port away from a real Slurm's 6817 on the same machine.
SLURM_CTLD_PORT=${TROUPE_SLURM_CTLD_PORT:-16817}

SLURM_PREFIX=trslurm
SLURM_BRIDGE=${SLURM_PREFIX}0
SLURM_LOCK=/run/lock/${SLURM_PREFIX}.lock
SLURM_CONF_FILE=$SLURM_STATE_DIR/etc/slurm.conf
MUNGE_SOCKET=$SLURM_STATE_DIR/munge/munge.socket
MUNGE_PID_FILE=$SLURM_STATE_DIR/munge/munged.pid
CTLD_PID_FILE=$SLURM_STATE_DIR/ctld/slurmctld.pid
# The cluster's shared file system: every node's netns shares the host's mount namespace, so any path under
# the state directory is the same file on every node and on the login node, as an NFS mount is on a real site.
SLURM_SHARED_DIR=$SLURM_STATE_DIR/shared
# up.sh puts this file in the state directories it makes; down.sh removes only a directory that has it.
STATE_MARKER=.troupe-slurm-cluster

case "$SLURM_NODE_COUNT" in [1-9]) ;; *) echo "TROUPE_SLURM_NODES must be 1 to 9, not '$SLURM_NODE_COUNT'" >&2; exit 2 ;; esac
if ! [[ "$SLURM_NET" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]]; then
  echo "TROUPE_SLURM_NET must be the first three octets of a /24 (e.g. 10.250.0), not '$SLURM_NET'" >&2
  exit 2
fi
for setting in "TROUPE_SLURM_CPUS=$SLURM_NODE_CPUS" "TROUPE_SLURM_MEMORY_MB=$SLURM_NODE_MEMORY_MB" \
  "TROUPE_SLURM_GPUS=$SLURM_NODE_GPUS" "TROUPE_SLURM_CTLD_PORT=$SLURM_CTLD_PORT"; do
  if ! [[ "${setting#*=}" =~ ^[0-9]{1,6}$ ]]; then
    echo "${setting%%=*} must be a whole number, not '${setting#*=}'" >&2
    exit 2
  fi
done
case "$SLURM_STATE_DIR" in /?*) ;; *) echo "TROUPE_SLURM_DIR must be an absolute path, not '$SLURM_STATE_DIR'" >&2; exit 2 ;; esac

# The state directory of the cluster whose network is up on this machine (the bridge's alias says), if any.
network_owner() {
  local alias
  alias=$(cat "/sys/class/net/$SLURM_BRIDGE/ifalias" 2>/dev/null) || return 0
  echo "${alias#troupe-slurm:}"
}

# Exits (2) when the network of a cluster with another state directory is up: the link names are one per machine.
refuse_other_cluster() {
  local owner
  owner=$(network_owner)
  if [ -n "$owner" ] && [ "$owner" != "$SLURM_STATE_DIR" ]; then
    echo "scripts/slurm: a test cluster with its state in $owner is up on this machine (one per machine):" \
      "use TROUPE_SLURM_DIR=$owner, or remove that one first (TROUPE_SLURM_DIR=$owner bash scripts/slurm/down.sh)" >&2
    exit 2
  fi
  if [ -e "$SLURM_STATE_DIR" ] && [ ! -e "$SLURM_STATE_DIR/$STATE_MARKER" ] && [ -n "$(ls -A "$SLURM_STATE_DIR")" ]; then
    echo "scripts/slurm: $SLURM_STATE_DIR is not empty and not a test cluster's state directory" \
      "(no $STATE_MARKER): give TROUPE_SLURM_DIR a new or empty directory" >&2
    exit 2
  fi
}

# Whether any of the cluster's daemons runs (by its PID file).
any_daemon_alive() {
  local node
  live_pid "$MUNGE_PID_FILE" munged >/dev/null && return 0
  live_pid "$CTLD_PID_FILE" slurmctld >/dev/null && return 0
  for node in "$SLURM_STATE_DIR"/nodes/*; do
    [ -e "$node/slurmd.pid" ] && live_pid "$node/slurmd.pid" slurmd >/dev/null && return 0
  done
  return 1
}

node_names() { local i; for ((i = 1; i <= SLURM_NODE_COUNT; i++)); do echo "n$i"; done; }
node_address() { echo "$SLURM_NET.1${1#n}"; }
node_netns() { echo "$SLURM_PREFIX-$1"; }
node_pid_file() { echo "$SLURM_STATE_DIR/nodes/$1/slurmd.pid"; }

# Whether process PID is alive (a zombie, which PID 1 here reaps late, is not) and runs COMMAND (a PID reused
# by another program does not count).
pid_runs() {
  local pid=$1 command=$2 stat
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$command" ] || return 1
  # The state is the first field after the command in parentheses.
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# The PID in FILE when that process is alive and runs COMMAND.
live_pid() {
  local file=$1 command=$2 pid
  pid=$(tr -dc 0-9 2>/dev/null <"$file") || return 1
  [ -n "$pid" ] && pid_runs "$pid" "$command" || return 1
  echo "$pid"
}

# Stops the process in FILE if it is COMMAND: SIGTERM, then SIGKILL after WAIT seconds (default 10). Waits
# for the process itself, not its PID file (a daemon removes that when its shutdown begins).
stop_pid() {
  local file=$1 command=$2 wait_tenths=$((${3:-10} * 10)) pid
  pid=$(live_pid "$file" "$command") || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while pid_runs "$pid" "$command"; do
    if ((wait_tenths-- <= 0)); then
      kill -KILL "$pid" 2>/dev/null || true
      wait_tenths=50
    fi
    sleep 0.1
  done
}

# Removes the cluster: its jobs, its daemons (by PID file), the processes left in its namespaces, the
# namespaces, the bridge and its FORWARD rule, the state directory. Called with the lock held.
teardown_cluster() {
  local jobs node name pid pid_file
  # Jobs first, while slurmctld can still end them: their steps are processes on this machine.
  if live_pid "$CTLD_PID_FILE" slurmctld >/dev/null; then
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    [ -z "$jobs" ] || timeout 10 scancel $jobs >/dev/null 2>&1 || true
  fi

  # slurmd before slurmctld, so none of them logs a lost controller; the job steps' slurmstepd processes,
  # which outlive a killed slurmd, are ended through the namespaces they run in (only this cluster's).
  for node in /run/netns/"$SLURM_PREFIX"-n*; do
    [ -e "$node" ] || continue
    name=${node##*/"$SLURM_PREFIX"-}
    stop_pid "$(node_pid_file "$name")" slurmd
    for pid in $(ip netns pids "${node##*/}" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  for pid_file in "$SLURM_STATE_DIR"/nodes/*/slurmd.pid; do
    if [ -e "$pid_file" ]; then stop_pid "$pid_file" slurmd; fi
  done
  stop_pid "$CTLD_PID_FILE" slurmctld
  stop_pid "$MUNGE_PID_FILE" munged

  for node in /run/netns/"$SLURM_PREFIX"-n*; do
    [ -e "$node" ] || continue
    ip link del "${node##*/}" 2>/dev/null || true
    ip netns del "${node##*/}"
  done
  ip link del "$SLURM_BRIDGE" 2>/dev/null || true
  if command -v iptables >/dev/null 2>&1; then
    while iptables -D FORWARD -i "$SLURM_BRIDGE" -o "$SLURM_BRIDGE" -m comment --comment "$SLURM_PREFIX" -j ACCEPT 2>/dev/null; do :; done
  fi
  # Only a directory up.sh made (its marker inside): TROUPE_SLURM_DIR=/var by mistake removes nothing.
  if [ -e "$SLURM_STATE_DIR/$STATE_MARKER" ]; then rm -rf "$SLURM_STATE_DIR"; fi
}

export SLURM_CONF=$SLURM_CONF_FILE
