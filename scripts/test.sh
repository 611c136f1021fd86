#!/usr/bin/env bash
# The one command that runs every test: installs missing test dependencies, then runs the workspace tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/test-deps.sh
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
