#!/usr/bin/env python3
"""urllib3's Retry as commonly configured, against one URL.

Usage: urllib3_retry.py METHOD URL [BODY]; prints {"status": N} or {"error": "..."}.
Retry(total=3, backoff_factor=0.2, status_forcelist=[429, 500, 502, 503, 504]) with urllib3's
defaults otherwise: Retry-After honoured, only idempotent methods retried.
"""

import json
import sys

import urllib3
from urllib3.util.retry import Retry

method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
retry = Retry(
    total=3,
    backoff_factor=0.2,
    status_forcelist=[429, 500, 502, 503, 504],
    raise_on_status=False,
)
try:
    r = urllib3.PoolManager().request(method, url, body=body, retries=retry, timeout=20)
    print(json.dumps({"status": r.status}))
except Exception as e:  # noqa: BLE001 - what the client ends with is the result
    print(json.dumps({"error": f"{type(e).__name__}: {e}"[:300], "status": None}))
