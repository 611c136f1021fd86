#!/usr/bin/env python3
"""Python requests + urllib3 Retry against statuslab's retry sequences.

Usage: retry_requests.py BASE_URL KEY_503 KEY_429 KEY_413

Sends GET  BASE/sequence/KEY_503/503,200
      PUT  BASE/sequence/KEY_429/429,200  (with a small body)
      POST BASE/sequence/KEY_413/413,200  (with a small body)
through a requests Session whose adapter retries 413/429/503 on any method, honouring
Retry-After and adding no backoff of its own. Prints one JSON object per request (as a JSON
list) with the final status and what urllib3 recorded; the Rust test checks the server's record
of the attempts. Exit status 3 means a module is missing (run scripts/test-deps.sh).
"""

import json
import sys
import threading

try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry
except ImportError as e:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(
        f"missing Python module ({e}); install the test dependencies with scripts/test-deps.sh\n"
    )
    sys.exit(3)


def session() -> requests.Session:
    retry = Retry(
        total=3,
        connect=0,
        read=0,
        status_forcelist=[413, 429, 503],
        respect_retry_after_header=True,
        # None: every method may be retried, PUT and POST included.
        allowed_methods=None,
        backoff_factor=0,
        raise_on_status=True,
    )
    s = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def run(base: str, method: str, key: str, codes: str, body, out: dict) -> None:
    url = f"{base}/sequence/{key}/{codes}"
    try:
        r = session().request(method, url, data=body, timeout=15)
        retries = getattr(r.raw, "retries", None)
        history = [] if retries is None else [h.status for h in retries.history]
        out[key] = {
            "method": method,
            "url": url,
            "status": r.status_code,
            "sequence_step": r.headers.get("Sequence-Step"),
            "retry_history": history,
        }
    except Exception as e:  # reported, so the Rust test shows what went wrong
        out[key] = {"method": method, "url": url, "error": repr(e)}


def main() -> int:
    if len(sys.argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    base, k503, k429, k413 = sys.argv[1:]
    base = base.rstrip("/")
    out: dict = {}
    jobs = [
        ("GET", k503, "503,200", None),
        ("PUT", k429, "429,200", b"retry me, please"),
        ("POST", k413, "413,200", b'{"small": "body"}'),
    ]
    threads = [
        threading.Thread(target=run, args=(base, m, k, c, b, out)) for (m, k, c, b) in jobs
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps([out[k] for (_, k, _, _) in jobs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
