#!/usr/bin/env bash
# Install the Debian/Ubuntu packages that `make test` and `make demo` need, when missing.
# Runs apt-get update only when something has to be installed.
set -euo pipefail

packages=(python3-venv docker.io debootstrap redis-server postgresql etcd-server etcd-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query --show --showformat '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "ensure-packages: run as root to install: ${missing[*]}" >&2
  exit 1
fi
echo "ensure-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages' own services from starting: tests start what they need.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
