#!/usr/bin/env python3
"""Real retry clients against the same scenarios, judged by statuslab's retry report.

Usage: scripts/clients-matrix.py [--out docs/CLIENTS.md] [--only CLIENT,...]

Builds statuslab and the Rust retry clients (crates/retry/examples/retry_client.rs), installs
undici from the npm registry into target/clients-matrix (once), starts `statuslab serve` on a
loopback port with the memory store, runs every client against every scenario (each on a
sequence key of its own), reads `GET /sequences/{key}/report` after each run, and writes the
matrix as Markdown. docs/CLIENTS.md is this script's output: regenerate it, do not edit it.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "clients-matrix"
CLIENTS_DIR = ROOT / "scripts" / "clients"

# (id, title, method, steps, query, body, the table row or rule the scenario tests, what a client
# following the table does)
SCENARIOS = [
    (
        "429-retry-after",
        "429 with `Retry-After: 1`",
        "GET",
        "429,200",
        "?retry_after=1",
        None,
        "429",
        "waits at least 1 s, repeats, gets 200",
    ),
    (
        "503-table",
        "503 (the table: do not repeat unchanged)",
        "GET",
        "503,200",
        "",
        None,
        "503",
        "does not repeat the request unchanged: ends with the 503",
    ),
    (
        "reset",
        "connection reset before any byte",
        "GET",
        "reset,200",
        "",
        None,
        "idempotent",
        "repeats the GET (idempotent), gets 200",
    ),
    (
        "truncate",
        "body cut short (`Content-Length` promised more)",
        "GET",
        "truncate,200",
        "",
        None,
        "idempotent",
        "repeats the GET (idempotent), gets 200",
    ),
    (
        "500-backoff",
        "500, 500, then 200",
        "GET",
        "500,500,200",
        "",
        None,
        "500",
        "repeats with a growing wait, not at once, gets 200",
    ),
    (
        "post-after-500",
        "POST without `Idempotency-Key`, answered 500",
        "POST",
        "500,200",
        "",
        "order=1",
        "non-idempotent",
        "does not repeat the POST: ends with the 500",
    ),
]

RULES = {
    "idempotent": "RFC 9110 §9.2.2: a request with an idempotent method (GET, HEAD, OPTIONS, PUT, "
    "DELETE) can be repeated automatically if a communication failure occurs before the client "
    "reads the server's response.",
    "non-idempotent": "RFC 9110 §9.2.2: a client should not automatically retry a request with a "
    "non-idempotent method (POST, PATCH) unless it knows the request is in fact idempotent (an "
    "`Idempotency-Key`).",
}


def client_commands(binary_dir: Path):
    retry_client = binary_dir / "examples" / "retry_client"
    node_dir = WORK / "node"
    return {
        "curl --retry 3": lambda m, url, body: (
            ["curl", "-s", "-o", str(WORK / "curl-body"), "-w", '{"status": %{http_code}}', "--max-time", "30", "--retry", "3", "-X", m]
            + (["--data", body] if body else [])
            + [url]
        ),
        "urllib3 Retry": lambda m, url, body: (
            [sys.executable, str(CLIENTS_DIR / "urllib3_retry.py"), m, url] + ([body] if body else [])
        ),
        "undici RetryAgent": lambda m, url, body: (
            ["node", str(node_dir / "undici_retry.mjs"), m, url] + ([body] if body else [])
        ),
        "reqwest-retry": lambda m, url, body: (
            [str(retry_client), "reqwest-retry", m, url] + ([body] if body else [])
        ),
        "statuslab-retry": lambda m, url, body: (
            [str(retry_client), "statuslab-retry", m, url] + ([body] if body else [])
        ),
    }


def versions():
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            return "missing"

    curl = out(["curl", "--version"]).splitlines()[0].split()[1]
    urllib3 = out([sys.executable, "-c", "import urllib3; print(urllib3.__version__)"])
    undici = json.loads((WORK / "node" / "node_modules" / "undici" / "package.json").read_text())["version"]
    lock = (ROOT / "Cargo.lock").read_text()

    def locked(name):
        m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), lock)
        return m.group(1) if m else "?"

    return {
        "curl --retry 3": f"curl {curl}",
        "urllib3 Retry": f"urllib3 {urllib3}",
        "undici RetryAgent": f"undici {undici} (node {out(['node', '--version'])})",
        "reqwest-retry": f"reqwest-retry {locked('reqwest-retry')}",
        "statuslab-retry": f"statuslab-retry {locked('statuslab-retry')}",
    }


CONFIG = {
    "curl --retry 3": "`--retry 3` (curl retries 408, 429, 500, 502, 503, 504 and timeouts, honouring `Retry-After`)",
    "urllib3 Retry": "`Retry(total=3, backoff_factor=0.2, status_forcelist=[429, 500, 502, 503, 504])`, otherwise defaults",
    "undici RetryAgent": "`new RetryAgent(new Agent(), {maxRetries: 3, minTimeout: 200, timeoutFactor: 2})`, otherwise defaults",
    "reqwest-retry": "`RetryTransientMiddleware` with `ExponentialBackoff::builder().build_with_max_retries(3)`",
    "statuslab-retry": "`RetryMiddleware::new(Rules::new(), Backoff::default().max_attempts(4)).read_content(true)`: table mode, up to 3 retries, 100 ms base with equal jitter",
}


def build(clients):
    subprocess.run(["cargo", "build", "-q", "-p", "statuslab"], cwd=ROOT, check=True)
    if {"reqwest-retry", "statuslab-retry"} & set(clients):
        subprocess.run(
            ["cargo", "build", "-q", "-p", "statuslab-retry", "--example", "retry_client"],
            cwd=ROOT,
            check=True,
        )
    node = WORK / "node"
    node.mkdir(parents=True, exist_ok=True)
    shutil.copy(CLIENTS_DIR / "undici_retry.mjs", node / "undici_retry.mjs")
    if not (node / "node_modules" / "undici").exists():
        (node / "package.json").write_text('{"private": true, "type": "module"}\n')
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "undici@7"], cwd=node, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def run_client(cmd):
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        line = (p.stdout.strip().splitlines() or [""])[-1]
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            result = {"error": (p.stderr.strip() or line or f"exit {p.returncode}")[:200], "status": None}
        if cmd[0] == "curl":
            result["curl_exit"] = p.returncode
            if p.returncode != 0:
                result["status"] = None
    except subprocess.TimeoutExpired:
        result = {"error": "did not finish in 90 s", "status": None}
    result["seconds"] = round(time.monotonic() - t0, 2)
    return result


def judge(scenario, report):
    """✓ as the table (or RFC) asks, ✗ a finding, – allowed but not what a careful client does."""
    sid = scenario[0]
    attempts = report["attempts"]
    if report["verdict"] != "clean":
        return "✗"
    if sid == "429-retry-after":
        return "✓" if report["succeeded"] and report["honoured_retry_after"] else "–"
    if sid in ("503-table", "post-after-500"):
        return "✓" if attempts == 1 else "✗"
    if sid in ("reset", "truncate"):
        return "✓" if report["succeeded"] else "–"
    if sid == "500-backoff":
        return "✓" if report["succeeded"] and report["backoff"] not in (None, "none") else "–"
    return "?"


def what_it_did(report, result):
    steps = [str(t["code"]) for t in report["timeline"]]
    gaps = [t["since_previous_ms"] for t in report["timeline"][1:]]
    did = " → ".join(steps) if steps else "no request"
    if gaps:
        did += " (waits: " + ", ".join(f"{g / 1000:.1f} s" for g in gaps) + ")"
    end = result.get("status")
    if end is None:
        err = result.get("error") or ""
        if "curl_exit" in result:
            err = f"curl exit {result['curl_exit']}"
        end = "error: " + err.split(":")[0][:40]
    return did, end


# Where RFC 9110 and the table part ways, said under the scenario.
RFC_DIFFERS = {
    "503": "RFC 9110 §15.6.4 differs: a 503 with `Retry-After` may be retried after it; clients built "
    "on the RFC do, and statuslab-retry's `Mode::Rfc` does too. This matrix judges by the table.",
}


def table_words(code_or_rule, catalog):
    if code_or_rule in RULES:
        return RULES[code_or_rule]
    words = f"The table's {code_or_rule} row: \"{catalog[code_or_rule]}\""
    if code_or_rule in RFC_DIFFERS:
        words += "\n\n" + RFC_DIFFERS[code_or_rule]
    return words


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "CLIENTS.md"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    clients = client_commands(ROOT / "target" / "debug")
    if args.only:
        clients = {k: v for k, v in clients.items() if k in args.only.split(",")}
    build(clients)
    port = free_port()
    server = subprocess.Popen(
        [str(ROOT / "target" / "debug" / "statuslab"), "serve", "--store", "memory", "--listen", f"127.0.0.1:{port}", "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                get_json(base + "/health")
                break
            except OSError:
                time.sleep(0.1)
        catalog = {str(c["code"]): c["description"] for c in get_json(base + "/codes")}
        nonce = str(int(time.time()))
        results = {}
        for scenario in SCENARIOS:
            sid, _, method, steps, query, body, _, _ = scenario
            for name, make in clients.items():
                key = re.sub(r"[^A-Za-z0-9]+", "-", f"{name}-{sid}-{nonce}").strip("-")
                url = f"{base}/sequence/{key}/{steps}{query}"
                result = run_client(make(method, url, body))
                try:
                    report = get_json(f"{base}/sequences/{key}/report")
                except urllib.error.HTTPError as e:
                    if e.code != 404:
                        raise
                    report = {"attempts": 0, "timeline": [], "verdict": "clean", "findings": [], "succeeded": False, "honoured_retry_after": None, "backoff": None}
                results[(sid, name)] = (result, report)
                print(f"{sid:16} {name:18} {judge(scenario, report)} {what_it_did(report, result)}", file=sys.stderr)
        vers = versions()
    finally:
        server.terminate()
        server.wait(timeout=10)
    Path(args.out).write_text(render(clients, results, catalog, vers))
    print(f"wrote {args.out}", file=sys.stderr)


def render(clients, results, catalog, vers):
    out = [
        "# Retry clients, judged by the table",
        "",
        "<!-- Generated by scripts/clients-matrix.py: run it to regenerate; do not edit by hand. -->",
        "",
        "Each client below ran against the same statuslab scenarios, each on a sequence of its own",
        "(`/sequence/{key}/{steps}`), and statuslab's retry report (`GET /sequences/{key}/report`) judged",
        "what it did. ✓ did what the table (or, for connection faults, RFC 9110) asks; ✗ the report has a",
        "finding (the client broke the row quoted under the scenario); – allowed, but not what a careful",
        "client does (gave up on a transient fault, or retried without backoff).",
        "",
        "| Client | Version | Configuration |",
        "|---|---|---|",
    ]
    for name in clients:
        out.append(f"| {name} | {vers.get(name, '?')} | {CONFIG[name]} |")
    out += ["", "## Summary", "", "| Scenario | " + " | ".join(clients) + " |", "|---|" + "---|" * len(clients)]
    for scenario in SCENARIOS:
        sid, title = scenario[0], scenario[1]
        marks = [judge(scenario, results[(sid, n)][1]) for n in clients]
        out.append(f"| [{title}](#{sid}) | " + " | ".join(marks) + " |")
    for scenario in SCENARIOS:
        sid, title, method, steps, query, body, rule, expected = scenario
        out += [
            "",
            f"## {sid}",
            "",
            f"**{title}.** `{method} /sequence/{{key}}/{steps}{query}`" + (f" with body `{body}`" if body else "") + ".",
            "",
            table_words(rule, catalog),
            "",
            f"A client that follows it {expected}.",
            "",
            "| Client | | What it did | Ended with | Findings |",
            "|---|---|---|---|---|",
        ]
        for name in clients:
            result, report = results[(sid, name)]
            did, end = what_it_did(report, result)
            findings = " ".join(report.get("findings", [])).replace("|", "\\|") or "none"
            out.append(f"| {name} | {judge(scenario, report)} | {did} | {end} | {findings} |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    main()
