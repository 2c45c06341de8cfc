#!/usr/bin/env bash
# Run the service image the way a cluster does: read-only root filesystem, uid 10001, no
# capabilities. Then call /health and one /v1/generate against the test upstream, and
# check the image holds no build tools and the logs no keys.
#
# Needs: a running Docker engine, the image (built by scripts/build_image.sh, or
# `make service-image` at the repository root), curl and python3.
# The test upstream (tests/fake_upstream.py, a fixture) runs from the image under test on
# the host network: it needs only uvicorn, so nothing is installed on the host.
#
# Env: IMAGE (default promptops/prompt-service:dev).
set -euo pipefail

service_dir=$(cd "$(dirname "$0")/.." && pwd)
image=${IMAGE:-promptops/prompt-service:dev}
name=prompt-service-smoke-$$
upstream_key=sk-test-smoke-upstream-key

log() { printf 'smoke_image: %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

cleanup() {
  local status=$?
  if [[ $status -ne 0 ]]; then
    log "service logs:"; docker logs "$name" 2>&1 | tail -n 30 >&2 || true
  fi
  docker rm -f "$name" "$name-upstream" >/dev/null 2>&1 || true
  exit "$status"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

docker info >/dev/null 2>&1 || fail "no Docker engine answers (start dockerd first)"
docker image inspect "$image" >/dev/null 2>&1 || fail "image $image missing (scripts/build_image.sh)"
log "running $image"

# The final stage: uid 10001, no pip, no compiler, no CA bundle copied in for the build.
[[ $(docker image inspect -f '{{.Config.User}}' "$image") == 10001:10001 ]] || fail "image user is not 10001"
docker run --rm --read-only --user 10001 "$image" python -c '
import os, shutil, sys
found = [t for t in ("pip", "pip3", "gcc", "cc", "make") if shutil.which(t)]
sys.exit(f"build tools in the final image: {found}" if found or os.path.exists("/src") else 0)
' || fail "final image holds build leftovers"

upstream_port=$(free_port)
service_port=$(free_port)
docker run -d --name "$name-upstream" --network host --read-only --user 10001 \
  -v "$service_dir/tests/fake_upstream.py:/fixture/fake_upstream.py:ro" "$image" \
  python /fixture/fake_upstream.py --host 127.0.0.1 --port "$upstream_port" --api-key "$upstream_key" >/dev/null

# Redis and PostgreSQL are deliberately absent: the service must still answer (the suite
# tests them for real). Their URLs point at a closed port.
docker run -d --name "$name" --network host --read-only --tmpfs /tmp --user 10001 \
  --cap-drop ALL --security-opt no-new-privileges \
  -e PROMPT_HOST=127.0.0.1 -e PROMPT_PORT="$service_port" \
  -e PROMPT_UPSTREAM_BASE_URL="http://127.0.0.1:$upstream_port/v1" \
  -e PROMPT_UPSTREAM_API_KEY="$upstream_key" \
  -e PROMPT_REDIS_URL=redis://127.0.0.1:1/0 \
  -e PROMPT_DATABASE_URL=postgresql://smoke:smoke@127.0.0.1:1/smoke \
  -e PROMPT_DEFAULT_MODEL=smoke-model \
  "$image" >/dev/null

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$service_port/health" >/dev/null 2>&1 && break
  sleep 0.5
done
health=$(curl -fsS "http://127.0.0.1:$service_port/health") || fail "/health does not answer"
[[ $health == '{"status":"ok"}' ]] || fail "/health said: $health"
log "/health: $health"

answer=$(curl -fsS -H 'Content-Type: application/json' -d '{"prompt": "smoke test"}' \
  "http://127.0.0.1:$service_port/v1/generate") || fail "/v1/generate failed"
python3 -c '
import json, sys
answer = json.loads(sys.argv[1])
assert answer["text"] == "echo: smoke test", answer
assert answer["model"] == "smoke-model", answer
assert answer["usage"]["total_tokens"] > 0, answer
assert answer["cached"] is False, answer
' "$answer" || fail "unexpected /v1/generate answer: $answer"
log "/v1/generate: $answer"

[[ $(docker exec "$name" id -u) == 10001 ]] || fail "service does not run as uid 10001"
logs=$(docker logs "$name" 2>&1)
grep -q '"message": "prompt service started"' <<<"$logs" || fail "no JSON start-up log line"
if grep -q 'sk-' <<<"$logs"; then fail "a key appears in the service logs"; fi
log "OK: $image runs read-only as uid 10001 and answers"
