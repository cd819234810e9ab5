#!/usr/bin/env bash
# Removes the Slurm test cluster scripts/slurm/up.sh made: its daemons (found by their PID files under the
# state directory, never by name), the network namespaces trslurm-n*, the bridge trslurm0 and its FORWARD rule,
# and the state directory (its shared/ directory with it). Safe to run when nothing is up.
#
#   bash scripts/slurm/down.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
if [ "$(id -u)" != 0 ]; then
  echo "slurm-down: needs root" >&2
  exit 2
fi
mkdir -p "$(dirname "$SLURM_LOCK")"
exec 9>"$SLURM_LOCK"
flock 9

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
  [ -e "$pid_file" ] && stop_pid "$pid_file" slurmd
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
rm -rf "$SLURM_STATE_DIR"
echo "slurm-down: removed the cluster ($SLURM_STATE_DIR)" >&2
