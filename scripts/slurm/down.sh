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

refuse_other_cluster
teardown_cluster
echo "slurm-down: removed the cluster ($SLURM_STATE_DIR)" >&2
