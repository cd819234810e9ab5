#!/usr/bin/env bash
# Installs the AWS command line (awscli, from PyPI, at one pinned version) into a virtual environment kept
# outside any checkout, and prints the path of its `aws` binary:
#
#   aws=$(bash scripts/awscli.sh)      # then "$aws" s3 cp ...
#
# Used by bench/s3-transfer.mjs (issue 15's baseline: troupe's transfers against `aws s3 cp` on the same
# server). Idempotent: a second call finds the environment and only prints the path (a few milliseconds); the
# first installs it (about 20 s: awscli, botocore, s3transfer and their few dependencies from PyPI).
# Settings (environment): TROUPE_AWSCLI_CACHE (default /var/cache/troupe), PYTHON (default python3, >= 3.9).
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail
# awscli 1.x is the line PyPI serves (v2 ships only as AWS's own installers); the version fixes botocore's and
# s3transfer's through awscli's own pins.
AWSCLI_VERSION=1.46.2
cache_dir=${TROUPE_AWSCLI_CACHE:-/var/cache/troupe}
venv=$cache_dir/awscli-$AWSCLI_VERSION
aws=$venv/bin/aws
python=${PYTHON:-python3}

# A finished install leaves this marker last: a venv half made by an interrupted call is made again.
if [ -x "$aws" ] && [ -f "$venv/.troupe-installed" ]; then
  echo "$aws"
  exit 0
fi

mkdir -p "$cache_dir"
# One install at a time per cache (two checkouts' benchmarks may start at once).
exec 9>"$cache_dir/.awscli-$AWSCLI_VERSION.lock"
flock 9
if ! { [ -x "$aws" ] && [ -f "$venv/.troupe-installed" ]; }; then
  if ! command -v "$python" >/dev/null 2>&1; then
    echo "awscli: installing awscli needs Python 3 ($python is not on PATH; set PYTHON)" >&2
    exit 1
  fi
  echo "awscli: installing awscli $AWSCLI_VERSION into $venv (once; kept afterwards)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "awscli==$AWSCLI_VERSION" >&2
  installed=$("$aws" --version 2>&1)
  case "$installed" in
    "aws-cli/$AWSCLI_VERSION "*) ;;
    *)
      echo "awscli: $aws reports '$installed', not aws-cli/$AWSCLI_VERSION" >&2
      exit 1
      ;;
  esac
  touch "$venv/.troupe-installed"
fi
echo "$aws"
