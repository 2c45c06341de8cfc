#!/usr/bin/env bash
# Make sure a Docker engine answers. Starts one when none does: through systemd where it
# runs, else as a background dockerd (CI machines and containers have no systemd).
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
command -v dockerd >/dev/null || { echo "ensure-engine: dockerd is not installed (make setup installs docker.io)" >&2; exit 1; }

if [[ -d /run/systemd/system ]]; then
  echo "ensure-engine: starting docker.service"
  systemctl start docker
else
  log=/var/log/dockerd.log
  echo "ensure-engine: starting dockerd in the background (log: $log)"
  nohup dockerd >"$log" 2>&1 &
fi

for ((i = 1; i <= 60; i++)); do
  if docker info >/dev/null 2>&1; then
    echo "ensure-engine: engine answers after ${i}s"
    exit 0
  fi
  ((i % 10 == 0)) && echo "ensure-engine: still waiting for the engine (${i}s)"
  sleep 1
done
echo "ensure-engine: the engine did not answer within 60s; last lines of its log:" >&2
tail -n 20 /var/log/dockerd.log >&2 2>/dev/null || true
exit 1
