#!/usr/bin/env bash
# The one command that runs every test: installs missing test dependencies, then runs the workspace
# tests, prints how many ran, and fails if fewer ran than scripts/test-floor.txt records; a whole
# run (no filter) ends with scripts/schemathesis.sh, the OpenAPI document against the server.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Redis store tests must run, never be skipped: they start the redis-server that
# test-deps.sh installs, and fail when it is missing (their message names this variable).
export STATUSLAB_REQUIRE_REDIS=1
./scripts/test-deps.sh
if [ -n "${STATUSLAB_REQUIRE_REDIS:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  echo "test.sh: STATUSLAB_REQUIRE_REDIS is set and redis-server is missing: the Redis tests cannot run" >&2
  exit 1
fi
# The 1,000-stalled-connections test holds ~2,000 descriptors: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Both runs' output is kept, to count the tests that ran from cargo's `test result:` lines.
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
cargo test --workspace --all-targets "$@" | tee "$out"
cargo test --workspace --doc | tee -a "$out"

# One "test result: ok. 41 passed; 0 failed; 2 ignored; ..." line per test binary.
results="$(grep '^test result:' "$out" || true)"
ran="$(printf '%s\n' "$results" | awk '$5 == "passed;" { n += $4 } END { print n + 0 }')"
binaries="$(printf '%s\n' "$results" | grep -c '^test result:' || true)"
echo "test.sh: ${ran} tests passed in ${binaries} test binaries"
# The floor applies to the whole suite only: arguments (a filter) run fewer on purpose.
if [ $# -eq 0 ]; then
  floor="$(grep -v '^#' scripts/test-floor.txt | tr -d '[:space:]')"
  if [ "$ran" -lt "$floor" ]; then
    echo "test.sh: only ${ran} tests ran, fewer than the floor of ${floor} (scripts/test-floor.txt): were tests skipped or lost?" >&2
    exit 1
  fi
  echo "test.sh: at least the floor of ${floor} (scripts/test-floor.txt)"
  # The whole suite also holds /openapi.json to the server (about 2 minutes).
  ./scripts/schemathesis.sh
fi
