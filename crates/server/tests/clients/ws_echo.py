#!/usr/bin/env python3
"""A Python `websockets` client against statuslab's WebSocket echo.

Usage: ws_echo.py URL COUNT

Sends COUNT messages (text and binary mixed, sizes varying, an empty one of each kind) while
reading the echoes concurrently, checks every echo arrives in order with the same type and
content, then closes with 1000 and checks the server's close frame. Prints a JSON summary.
Exit status 3 means a module is missing (run scripts/test-deps.sh); 1 means a check failed.
"""

import asyncio
import json
import sys

try:
    import websockets

    try:
        from websockets.asyncio.client import connect
    except ImportError:  # websockets < 13: the legacy client has the same surface here
        from websockets.client import connect  # type: ignore
except ImportError as e:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(
        f"missing Python module ({e}); install the test dependencies with scripts/test-deps.sh\n"
    )
    sys.exit(3)

TIMEOUT = 10


def messages(count: int):
    out = []
    for i in range(count):
        if i % 3 == 0:
            n = (i * 37) % 3000 if i != 3 else 0
            out.append(bytes((i + j) % 256 for j in range(n)))
        else:
            out.append("" if i == 1 else f"message {i}: " + "é✓ " * (i % 50))
    if count > 500:
        out[500] = b"\x00\xff" * 40_000  # one frame with a 64-bit length
    return out


async def echo(url: str, count: int) -> dict:
    want = messages(count)
    async with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=2**20) as ws:

        async def sender():
            for m in want:
                await ws.send(m)

        task = asyncio.create_task(sender())
        for i, w in enumerate(want):
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if type(got) is not type(w) or got != w:
                task.cancel()
                raise AssertionError(
                    f"message {i}: sent {type(w).__name__} of {len(w)}, "
                    f"got {type(got).__name__} of {len(got)}: {got[:60]!r}"
                )
        await asyncio.wait_for(task, TIMEOUT)
        await ws.close(code=1000, reason="done")
        return {
            "url": url,
            "echoed": len(want),
            "text": sum(isinstance(m, str) for m in want),
            "binary": sum(isinstance(m, bytes) for m in want),
            "close_code": ws.close_code,
            "close_reason": ws.close_reason,
            "websockets": websockets.__version__ if hasattr(websockets, "__version__") else "?",
        }


def main() -> int:
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    url, count = sys.argv[1], int(sys.argv[2])
    try:
        summary = asyncio.run(echo(url, count))
    except Exception as e:
        sys.stderr.write(f"websocket echo against {url} failed: {e!r}\n")
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
