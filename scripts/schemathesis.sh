#!/usr/bin/env bash
# Holds /openapi.json to the server: builds statuslab, starts it on a free loopback port with a
# memory store, runs schemathesis (every check, a fixed seed, a bounded number of examples)
# against the document the server itself serves, stops the server and fails on any failure.
#
# What is left out or adjusted, and why (each with its reason in scripts/schemathesis/config.toml
# and statuslab_hooks.py); every method, every operation and every other check runs:
# - the one exclusion: "not a server error", and any code counting as an answer to valid data,
#   on the routes whose job is to answer any code on demand (/status, /{code}, /random,
#   /sequence, /fault, /unstable, /rate-limit, /drip, /gateway): a 5xx there is the product
#   working;
# - answers by state, not by data: 410, 412, 416 and 422 on /resources (after a delete, a
#   precondition on the stored version, a range past the stored length, a merge patch on a
#   document that is not JSON), 410 on /jobs/{id}/result (a cancelled job);
# - the WebSocket handshake: 101 is its success, and 426 (RFC 6455 §4.4) its refusal of a
#   handshake without Upgrade, Connection or the version statuslab speaks;
# - "use after free" on routes with path parameters whose DELETE removes nothing (a code on
#   demand, a relay, an echo);
# - faults that break the connection by design (reset, empty, truncate, garbage, …) are swapped
#   for `latency` in path parameters the document accepts, so schemathesis records no network
#   error (tests/it covers them); a value the document refuses is sent as generated and must
#   get 400.
#
# The hooks also make `ast.parse` run one call at a time (a CPython 3.11 race between the workers;
# see statuslab_hooks.py).
#
# Outside CI a missing schemathesis skips the run with a note; with CI set it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
here=scripts/schemathesis
if ! command -v schemathesis >/dev/null 2>&1; then
  if [ -n "${CI:-}" ]; then
    echo "schemathesis.sh: schemathesis is missing and CI is set (pip install schemathesis; scripts/test-deps.sh installs it)" >&2
    exit 1
  fi
  echo "schemathesis.sh: schemathesis is not installed (pip install schemathesis): the OpenAPI check is skipped" >&2
  exit 0
fi

cargo build -q -p statuslab
work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Port 0: the OS picks a free port; the first line of output names it. A short --max-delay keeps
# every sleep, delay, drip and stall an example asks for short (the document's bounds follow it).
target/debug/statuslab serve --store memory --listen 127.0.0.1:0 --max-delay 1s \
  --no-access-log >"$work/server.log" 2>&1 &
server=$!
base=""
for _ in $(seq 1 100); do
  base="$(sed -n 's/^statuslab listening on \(http:[^ ]*\).*/\1/p' "$work/server.log" | head -n1)"
  [ -n "$base" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "schemathesis.sh: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
echo "schemathesis.sh: statuslab at $base; schemathesis $(schemathesis --version | awk '{print $NF}')"

status=0
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=statuslab_hooks \
  schemathesis --config-file "$here/config.toml" run "$base/openapi.json" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-10}" --seed "${SCHEMATHESIS_SEED:-20261130}" \
  --workers 2 --request-timeout 10 --generation-database none --no-color "$@" || status=$?
if ! kill -0 "$server" 2>/dev/null; then
  echo "schemathesis.sh: the server exited during the run" >&2
  cat "$work/server.log" >&2
  status=1
fi
exit "$status"
