#!/usr/bin/env bash
# Builds the container images the tests use, locally (no registry is reachable
# from CI): a busybox image and a Debian one, each also tagged with the names
# the tutorial uses (alpine:3.18, ubuntu:24.04) so its files run verbatim.
# Slow steps are cached on the machine: the Debian root file system (debootstrap,
# about 70 s) in $TROUPE_IMAGE_CACHE, and the images in podman's own storage.
set -euo pipefail
CACHE=${TROUPE_IMAGE_CACHE:-/var/cache/troupe-test-images}
mkdir -p "$CACHE"

has_image() { podman image exists "$1" 2>/dev/null; }

if ! has_image localhost/troupe-test/busybox:latest; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/root"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  chmod 1777 "$root/tmp"
  printf 'NAME="BusyBox"\nID=busybox\nPRETTY_NAME="BusyBox (troupe test image)"\n' > "$root/etc/os-release"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  tar -C "$root" -c . | podman import --change 'ENV PATH=/bin' - troupe-test/busybox:latest >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

if ! has_image localhost/troupe-test/debian:latest; then
  tarball="$CACHE/debian-bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    tar -C "$root" -c . > "$tarball.partial"
    mv "$tarball.partial" "$tarball"
    rm -rf "$root"
    trap - EXIT
  fi
  podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$tarball" troupe-test/debian:latest >/dev/null
fi

podman tag troupe-test/busybox:latest docker.io/library/alpine:3.18
podman tag troupe-test/debian:latest docker.io/library/ubuntu:24.04
echo "test images: troupe-test/busybox (alpine:3.18), troupe-test/debian (ubuntu:24.04)"
