#!/usr/bin/env bash
# The one command that runs every test: installs missing test dependencies, then runs the workspace tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Redis store tests must run, never be skipped: they start the redis-server that
# test-deps.sh installs, and fail when it is missing.
export STATUSLAB_REQUIRE_REDIS=1
./scripts/test-deps.sh
# The 1,000-stalled-connections test holds ~2,000 descriptors: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
