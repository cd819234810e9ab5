# Shared by up.sh and down.sh (sourced, not run): where the S3 test server lives, which SeaweedFS it runs, and
# how its daemon is found (by the PID file under the state directory only, never by name, so no other weed on
# the machine is touched). One server per state directory; its ports are fixed by TROUPE_S3_PORT.

# Not under /tmp: troupe's host sandbox gives each task a private /tmp.
S3_STATE_DIR=${TROUPE_S3_DIR:-/var/tmp/troupe-s3}
# The S3 port; the master, volume and filer listen on the next three (and, for gRPC, each of those + 10000).
S3_PORT=${TROUPE_S3_PORT:-18333}
# SeaweedFS (Apache-2.0) from its Go module, at the one version this project has checked. MinIO is AGPL: not used.
SEAWEEDFS_MODULE=github.com/seaweedfs/seaweedfs
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
# Built once per machine, outside any checkout, keyed by the version: a second CI run finds it.
S3_CACHE_DIR=${TROUPE_S3_CACHE:-/var/cache/troupe}
WEED=$S3_CACHE_DIR/seaweedfs-$SEAWEEDFS_VERSION/weed
S3_REGION=us-east-1
# The bucket the restricted identity may use (and no other).
S3_USER_BUCKET=troupe-user

S3_PID_FILE=$S3_STATE_DIR/weed.pid
S3_CONFIG_FILE=$S3_STATE_DIR/s3.json
S3_ENV_FILE=$S3_STATE_DIR/env
S3_LOG_FILE=$S3_STATE_DIR/weed.log
# up.sh puts this file in the state directories it makes; down.sh removes only a directory that has it.
S3_STATE_MARKER=.troupe-s3-server
# One lock for every state directory (up.sh and down.sh are quick but for the first build and a restart).
S3_LOCK=/run/lock/troupe-s3.lock

if ! [[ "$S3_PORT" =~ ^[0-9]+$ ]] || [ "$S3_PORT" -lt 1024 ] || [ "$S3_PORT" -gt 55000 ]; then
  echo "TROUPE_S3_PORT must be a number from 1024 to 55000 (its gRPC ports are 10000 above), not '$S3_PORT'" >&2
  exit 2
fi

# Prints the PID in $1 if that process is alive and runs the cached weed binary; nothing (status 1) otherwise.
live_weed() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$WEED")" ] || return 1
  echo "$pid"
}

# Stops the server whose PID file is $S3_PID_FILE (TERM, then KILL after 2 s: weed takes about 10 s to stop on
# TERM, and down.sh removes its data anyway) and removes the PID file.
stop_weed() {
  local pid
  if pid=$(live_weed "$S3_PID_FILE"); then
    kill -TERM "$pid" 2>/dev/null || true
    # Alive means running weed: an exited one may stay a zombie for a while (PID 1 here reaps slowly).
    for _ in $(seq 20); do
      live_weed "$S3_PID_FILE" >/dev/null || break
      sleep 0.1
    done
    if live_weed "$S3_PID_FILE" >/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$S3_PID_FILE"
}

# The HTTP status line's code of `GET /` on 127.0.0.1:$1 (an anonymous request: S3 answers 403), or nothing.
http_status() {
  local line
  { exec 8<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&8
  IFS=' ' read -r -t 5 _ line _ <&8 || true
  exec 8<&-
  echo "$line"
}

# Sends METHOD PATH (with BODY, if given) to 127.0.0.1:$1 and prints the status code of the answer.
http_request() {
  local port=$1 method=$2 path=$3 body=${4-} code
  { exec 8<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s' "$method" "$path" "${#body}" "$body" >&8
  IFS=' ' read -r -t 60 _ code _ <&8 || true
  exec 8<&-
  echo "$code"
}
