#!/usr/bin/env bash
# Run every check of `make test` in order, keep going after a failure so one run reports
# everything, print the wall time of each, and end with a "N passed, N failed" line.
# Usage: scripts/run-checks.sh TARGET...   (make targets)
set -uo pipefail

passed=0 failed=0 failures=() timings=()
start_all=$SECONDS
for target in "$@"; do
  echo
  echo "==> make $target"
  start=$SECONDS
  if make --no-print-directory "$target"; then
    passed=$((passed + 1)); status=ok
  else
    failed=$((failed + 1)); failures+=("$target"); status=FAILED
  fi
  timings+=("$(printf '%-28s %-7s %5ss' "$target" "$status" $((SECONDS - start)))")
done

echo
echo "==> summary (wall time $((SECONDS - start_all))s)"
printf '  %s\n' "${timings[@]}"
((failed)) && echo "failed: ${failures[*]}"
echo "checks: $passed passed, $failed failed"
((failed == 0))
