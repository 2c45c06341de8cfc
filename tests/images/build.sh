#!/usr/bin/env bash
# Build a local Debian 12 image from Debian's archive (debootstrap + docker import).
# No container registry is needed. The image is rebuilt only when its recipe changes:
# the recipe's hash is stored as a label and compared before building.
#
# Usage: tests/images/build.sh NAME        (NAME is a folder beside this script)
# Env:   DEBIAN_MIRROR  Debian mirror URL (default: the first Debian URL in the apt sources)
#        IMAGE_FORCE=1  rebuild even when the recipe is unchanged
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: $0 NAME (one of: $(cd "$here" && ls -d -- */ | tr -d / | tr '\n' ' '))}
recipe="$here/$name"
[[ -f $recipe/image.env ]] || { echo "build.sh: no recipe $recipe/image.env" >&2; exit 2; }

# shellcheck source=/dev/null
source "$recipe/image.env"   # IMAGE, PACKAGES, CMD
: "${IMAGE:?image.env must set IMAGE}" "${PACKAGES:?image.env must set PACKAGES}"

ca_bundle=/etc/ssl/certs/ca-certificates.crt
recipe_hash=$( { cat "$0"; find "$recipe" -type f -print0 | sort -z | xargs -0 cat;
                 [[ -f $ca_bundle ]] && cat "$ca_bundle"; } | sha256sum | cut -c1-16)

# One build per image at a time: parallel `make` runs wait here, then find the image current.
exec 9>"/tmp/promptops-image-${name}.lock"
flock 9

current=$(docker image inspect -f '{{ index .Config.Labels "org.promptops.recipe" }}' "$IMAGE" 2>/dev/null || true)
if [[ $current == "$recipe_hash" && ${IMAGE_FORCE:-0} != 1 ]]; then
  echo "build.sh: $IMAGE is up to date (recipe $recipe_hash)"
  exit 0
fi

mirror=${DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
  mirror=$(grep -rhoE 'https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
           | head -n1 | tr -d ' ' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

rootfs=$(mktemp -d /var/tmp/promptops-rootfs.XXXXXX)
cleanup() { rm -rf --one-file-system "$rootfs"; }
trap cleanup EXIT

echo "build.sh: building $IMAGE from $mirror (recipe $recipe_hash); this takes about a minute"
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  echo "build.sh: debootstrap failed; last lines of its log:" >&2; tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

# Trust the build machine's CA bundle: TLS may be intercepted by a proxy here.
if [[ -f $ca_bundle ]]; then
  install -D -m 0644 "$ca_bundle" "$rootfs/usr/local/share/ca-certificates/build-host-bundle.crt"
  cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
fi
# Keep apt lists out of the image but leave apt usable: tests run apt-get update themselves.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
if [[ -x $recipe/customize.sh ]]; then
  "$recipe/customize.sh" "$rootfs"
fi

change=(-c "LABEL org.promptops.recipe=$recipe_hash")
[[ -n ${CMD:-} ]] && change+=(-c "CMD $CMD")
tar -C "$rootfs" -c . | docker import "${change[@]}" - "$IMAGE" >/dev/null
echo "build.sh: built $IMAGE"
