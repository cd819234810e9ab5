#!/usr/bin/env bash
# Starts (or keeps) a real S3 server for the tests, SeaweedFS's `weed server -s3` on 127.0.0.1, and prints the
# environment that points at it:
#
#   eval "$(bash scripts/s3/up.sh)"     # then TROUPE_S3_ENDPOINT, TROUPE_S3_ADMIN_ACCESS_KEY_ID ... are set
#
# The first call on a machine builds `weed` from its Go module (SeaweedFS, pinned in common.sh) into a cache
# outside the repository ($TROUPE_S3_CACHE, default /var/cache/troupe/seaweedfs-VERSION/weed); later calls and
# later checkouts reuse it. Needs Go (the machine's /usr/local/go is used when `go` is not on PATH) and the Go
# module proxy, only for that first build.
#
# Two identities (keys made at the first start, kept in the state directory): an admin with every right, and a
# user allowed only the bucket $TROUPE_S3_USER_BUCKET (created here), for credential tests.
# Idempotent: a running server stays (a second call takes well under a second); a dead one is restarted on its
# data. Refused (exit 2): a server in the same state directory running on another port.
# Settings (environment): TROUPE_S3_DIR (state, default /var/tmp/troupe-s3), TROUPE_S3_PORT (S3's port, default
# 18333; the master, volume and filer take the next three), TROUPE_S3_CACHE (default /var/cache/troupe).
# Progress goes to stderr; stdout carries only the `export` lines (also kept in the state directory's `env`).
# `bash scripts/s3/down.sh` stops it and removes the state.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
started=$(date +%s%N)
say() { echo "s3-up: $*" >&2; }
elapsed_ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

mkdir -p "$(dirname "$S3_LOCK")" "$S3_CACHE_DIR"
exec 9>"$S3_LOCK"
flock 9

# --- the weed binary, built once per machine -----------------------------------------------------------------
if [ ! -x "$WEED" ]; then
  # One build at a time per cache (two state directories may come up at once).
  exec 7>"$S3_CACHE_DIR/.seaweedfs-build.lock"
  flock 7
  if [ ! -x "$WEED" ]; then
    command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
    if ! command -v go >/dev/null 2>&1; then
      echo "s3-up: building SeaweedFS needs Go (1.26), which is not installed" >&2
      exit 1
    fi
    build_started=$(date +%s%N)
    say "building SeaweedFS $SEAWEEDFS_VERSION once into $WEED (about 6 minutes on 2 cores with an empty Go cache; kept afterwards)"
    # Built in the module's own directory: its go.mod has a `replace` line, which `go install MODULE@VERSION`
    # refuses. The module cache is read-only; go build writes only the binary and its build cache.
    module_dir=$(go mod download -json "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    if [ -z "$module_dir" ] || [ ! -d "$module_dir/weed" ]; then
      echo "s3-up: could not download $SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION from the Go module proxy" >&2
      exit 1
    fi
    mkdir -p "$(dirname "$WEED")"
    # Low priority and one package at a time: the machine has 2 cores and other tests may be running.
    (cd "$module_dir" && nice -n 19 env GOFLAGS="-p=1 -buildvcs=false -mod=readonly" \
      go build -trimpath -o "$WEED.partial" ./weed) >&2
    mv "$WEED.partial" "$WEED"
    say "built in $(($(elapsed_ms "$build_started") / 1000)) s"
  fi
  exec 7>&-
fi

# --- state directory: identities and the S3 configuration -------------------------------------------------------
if [ -f "$S3_ENV_FILE" ] && live_weed "$S3_PID_FILE" >/dev/null; then
  running_port=$(sed -n 's|^export TROUPE_S3_ENDPOINT=http://127.0.0.1:\([0-9]*\)$|\1|p' "$S3_ENV_FILE")
  if [ "$running_port" != "$S3_PORT" ]; then
    echo "s3-up: the server in $S3_STATE_DIR runs on port $running_port, not $S3_PORT: use its settings" \
      "(source $S3_ENV_FILE) or remove it first (scripts/s3/down.sh)" >&2
    exit 2
  fi
fi
mkdir -p "$S3_STATE_DIR/data"
touch "$S3_STATE_DIR/$S3_STATE_MARKER"
chmod 700 "$S3_STATE_DIR"
random_key() { head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-"$1"; }
if [ ! -s "$S3_STATE_DIR/keys" ]; then
  (
    umask 077
    cat >"$S3_STATE_DIR/keys" <<KEYS
admin_key=TRADMIN$(random_key 13 | tr a-f A-F)
admin_secret=$(random_key 40)
user_key=TRUSER$(random_key 14 | tr a-f A-F)
user_secret=$(random_key 40)
KEYS
  )
fi
# shellcheck disable=SC1091
source "$S3_STATE_DIR/keys"
config_text=$(
  cat <<JSON
{
  "identities": [
    {
      "name": "troupe-admin",
      "credentials": [{ "accessKey": "$admin_key", "secretKey": "$admin_secret" }],
      "actions": ["Admin", "Read", "Write", "List", "Tagging"]
    },
    {
      "name": "troupe-user",
      "credentials": [{ "accessKey": "$user_key", "secretKey": "$user_secret" }],
      "actions": ["Read:$S3_USER_BUCKET", "Write:$S3_USER_BUCKET", "List:$S3_USER_BUCKET", "Tagging:$S3_USER_BUCKET"]
    }
  ]
}
JSON
)
[ "$(cat "$S3_CONFIG_FILE" 2>/dev/null)" = "$config_text" ] || (umask 077 && echo "$config_text" >"$S3_CONFIG_FILE")

# --- the server ---------------------------------------------------------------------------------------------
master_port=$((S3_PORT + 1)) volume_port=$((S3_PORT + 2)) filer_port=$((S3_PORT + 3))
if ! live_weed "$S3_PID_FILE" >/dev/null; then
  for port in "$S3_PORT" "$master_port" "$volume_port" "$filer_port"; do
    if (exec 6<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "s3-up: port $port on 127.0.0.1 is taken by another program: choose another TROUPE_S3_PORT" >&2
      exit 2
    fi
  done
  say "starting SeaweedFS (S3 on 127.0.0.1:$S3_PORT, state in $S3_STATE_DIR)"
  # Only what S3 needs: master, volume, filer, S3 gateway, all on 127.0.0.1; no telemetry (no internet here),
  # no Iceberg catalog, no metrics. Volumes of 64 MB so that an empty server holds little disk. No buckets made
  # by a PUT into one that does not exist (SeaweedFS's default, not AWS's: a misspelt bucket must fail).
  setsid "$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$S3_STATE_DIR/data" \
    -master.port="$master_port" -master.telemetry=false -master.volumeSizeLimitMB=64 \
    -volume.port="$volume_port" -volume.max=0 \
    -filer -filer.port="$filer_port" \
    -s3 -s3.port="$S3_PORT" -s3.port.iceberg=0 -s3.config="$S3_CONFIG_FILE" -s3.autoCreateBucket=false \
    </dev/null >>"$S3_LOG_FILE" 2>&1 9>&- &
  echo $! >"$S3_PID_FILE"
  started_weed=yes
fi

# --- wait until S3 answers and the user's bucket exists --------------------------------------------------------
deadline=$(($(date +%s) + 60))
until [ "$(http_status "$S3_PORT")" = 403 ]; do
  if ! live_weed "$S3_PID_FILE" >/dev/null; then
    echo "s3-up: weed exited; the end of its log ($S3_LOG_FILE):" >&2
    tail -20 "$S3_LOG_FILE" >&2
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "s3-up: S3 did not answer on 127.0.0.1:$S3_PORT within 60 s; log: $S3_LOG_FILE" >&2
    exit 1
  fi
  sleep 0.1
done
weed_shell() { echo "$1" | "$WEED" shell -master="127.0.0.1:$master_port" -filer="127.0.0.1:$filer_port" 2>&1; }
until [[ "$(weed_shell s3.bucket.list)" == *"$S3_USER_BUCKET"* ]]; do
  weed_shell "s3.bucket.create -name $S3_USER_BUCKET" >>"$S3_LOG_FILE" || true
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "s3-up: could not create the bucket $S3_USER_BUCKET within 60 s; log: $S3_LOG_FILE" >&2
    exit 1
  fi
  sleep 0.2
done

# The first write after a start waits seconds for volumes to be allocated (4-7 s here): done now, through the
# filer (unauthenticated, 127.0.0.1 only), so that a test's first upload does not pay for it.
if [ -n "${started_weed-}" ]; then
  code=$(http_request "$filer_port" PUT "/buckets/$S3_USER_BUCKET/.troupe-warm-up" ok)
  [ "$code" = 201 ] || say "warning: the warm-up write answered ${code:-nothing} (uploads may be slow at first)"
  http_request "$filer_port" DELETE "/buckets/$S3_USER_BUCKET/.troupe-warm-up" >/dev/null || true
fi

cat >"$S3_ENV_FILE" <<ENV
export TROUPE_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export TROUPE_S3_REGION=$S3_REGION
export TROUPE_S3_ADMIN_ACCESS_KEY_ID=$admin_key
export TROUPE_S3_ADMIN_SECRET_ACCESS_KEY=$admin_secret
export TROUPE_S3_USER_ACCESS_KEY_ID=$user_key
export TROUPE_S3_USER_SECRET_ACCESS_KEY=$user_secret
export TROUPE_S3_USER_BUCKET=$S3_USER_BUCKET
export TROUPE_S3_DIR=$S3_STATE_DIR
export TROUPE_S3_PORT=$S3_PORT
ENV
chmod 600 "$S3_ENV_FILE"
say "up: $("$WEED" version 2>/dev/null | head -1) on 127.0.0.1:$S3_PORT in $(elapsed_ms "$started") ms"
cat "$S3_ENV_FILE"
