#!/usr/bin/env bash
# Stops the S3 test server scripts/s3/up.sh started (found by the PID file under its state directory, never by
# name) and removes the state directory (its data and keys with it). The built `weed` stays in its cache.
# Safe to run when nothing is up.
#
#   bash scripts/s3/down.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
mkdir -p "$(dirname "$S3_LOCK")"
exec 9>"$S3_LOCK"
flock 9

if [ -e "$S3_STATE_DIR" ] && [ ! -e "$S3_STATE_DIR/$S3_STATE_MARKER" ]; then
  echo "s3-down: $S3_STATE_DIR was not made by scripts/s3/up.sh (no $S3_STATE_MARKER): left alone" >&2
  exit 2
fi
stop_weed
rm -rf "$S3_STATE_DIR"
echo "s3-down: removed the server ($S3_STATE_DIR)" >&2
