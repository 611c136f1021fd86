#!/usr/bin/env python3
"""Two Python clients against the same retry scenario, for the report to judge.

Usage: retry_report.py BASE_URL KEY_URLLIB3 KEY_LOOP

Both GET BASE/sequence/KEY/429,429,200?retry_after=1 (two 429s asking to wait 1 s, then 200):
- KEY_URLLIB3 through urllib3's Retry (total=3, status_forcelist=[429], honouring Retry-After),
- KEY_LOOP through a plain loop that repeats at once, up to 3 times, until it is not 429.
Prints a JSON object with each client's final status. Exit status 3 means a module is missing
(run scripts/test-deps.sh).
"""

import json
import sys

try:
    import urllib3
    from urllib3.util.retry import Retry
except ImportError as e:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(
        f"missing Python module ({e}); install the test dependencies with scripts/test-deps.sh\n"
    )
    sys.exit(3)

base, key_urllib3, key_loop = sys.argv[1:4]
scenario = "/sequence/{}/429,429,200?retry_after=1"
http = urllib3.PoolManager()

retry = Retry(
    total=3,
    status_forcelist=[429],
    respect_retry_after_header=True,
    backoff_factor=0,
    raise_on_status=False,
)
polite = http.request("GET", base + scenario.format(key_urllib3), retries=retry)

for _ in range(3):
    eager = http.request("GET", base + scenario.format(key_loop), retries=False)
    if eager.status != 429:
        break

print(json.dumps({"urllib3": polite.status, "loop": eager.status}))
