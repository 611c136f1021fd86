#!/usr/bin/env bash
# Installs what the test suite drives besides cargo: curl, redis-server (the Redis store's tests
# start their own), nginx (the probe's test starts its own) and Python clients
# (requests/urllib3, websockets), chromium (the retry report's page is rendered headless) and
# schemathesis 4 (scripts/schemathesis.sh holds /openapi.json to the server).
# Safe to run again; installs only what is missing.
set -euo pipefail
need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "missing: ${need_apt[*]} (install them, or run as root)" >&2; exit 1
  fi
fi
python3 - <<'PY' 2>/dev/null || python3 -m pip install -q requests urllib3 websockets 'schemathesis>=4.32,<5'
import requests, urllib3, websockets, schemathesis
assert schemathesis.__version__.startswith("4."), schemathesis.__version__
PY
