#!/usr/bin/env bash
# Build the service image from a locally built base image (no registry is needed).
#
#   scripts/build_image.sh        # IMAGE=promptops/prompt-service:dev from BASE_IMAGE
#
# pip inside the build must trust this machine's CA bundle (TLS to PyPI may be
# intercepted, as behind many corporate proxies): the bundle is copied into the build
# context for the builder stage only (the final stage copies nothing but the venv) and
# removed again afterwards. Docker's layer cache keeps rebuilds to the changed layers.
#
# Env: BASE_IMAGE (default promptops/python-base:bookworm, built by tests/images/build.sh
# python-base at the repository root), IMAGE, PIP_INDEX_URL (optional package mirror).
set -euo pipefail

service_dir=$(cd "$(dirname "$0")/.." && pwd)
base_image=${BASE_IMAGE:-promptops/python-base:bookworm}
image=${IMAGE:-promptops/prompt-service:dev}
ca_bundle=/etc/ssl/certs/ca-certificates.crt
ca_copied=0

cleanup() { if [[ $ca_copied -eq 1 ]]; then rm -f "$service_dir/ca-certificates.crt"; fi; }
trap cleanup EXIT

docker info >/dev/null 2>&1 || { echo "build_image: no Docker engine answers" >&2; exit 1; }
docker image inspect "$base_image" >/dev/null 2>&1 \
  || { echo "build_image: base image $base_image missing (make images)" >&2; exit 1; }

if [[ ! -f $service_dir/ca-certificates.crt && -f $ca_bundle ]]; then
  cp "$ca_bundle" "$service_dir/ca-certificates.crt"
  ca_copied=1
fi
echo "build_image: building $image from $base_image" >&2
docker build --quiet --build-arg BASE_IMAGE="$base_image" \
  ${PIP_INDEX_URL:+--build-arg PIP_INDEX_URL="$PIP_INDEX_URL"} \
  --tag "$image" "$service_dir" >/dev/null
echo "build_image: built $image" >&2
