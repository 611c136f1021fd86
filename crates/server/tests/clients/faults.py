#!/usr/bin/env python3
"""Python requests (urllib3 underneath) against statuslab's connection faults.

Usage: faults.py BASE_URL KIND [KIND ...]

GETs BASE/fault/KIND for each kind (no retries, a 3 s read timeout) and prints a JSON object
mapping each kind to what the client saw: "ok <status> <bytes>" or the exception's class name.
Exit status 3 means a module is missing (run scripts/test-deps.sh).
"""

import json
import sys

try:
    import requests
except ImportError as e:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(f"missing Python module ({e}); run scripts/test-deps.sh\n")
    sys.exit(3)


def main() -> None:
    base, kinds = sys.argv[1], sys.argv[2:]
    seen = {}
    for kind in kinds:
        try:
            # A drip takes half a second; a stall holds until the client's 3 s read timeout.
            query = "?duration=500ms" if kind == "drip" else ""
            r = requests.get(f"{base}/fault/{kind}{query}", timeout=(3, 3))
            seen[kind] = f"ok {r.status_code} {len(r.content)}"
        except Exception as e:  # noqa: BLE001 - the class name is the result
            seen[kind] = type(e).__name__
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
