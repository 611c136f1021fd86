#!/usr/bin/env bash
# bench/slow.sh — slow clients (issue 5): does a slowloris attack keep normal clients out?
#
#   bench/slow.sh
#
# Starts `statuslab serve --workers 1 --header-timeout 10s --log-level info` (access log on,
# pinned to CPU 0) on a free loopback port, then runs, both on CPU 1:
#   - slowhttptest -c 1000 -H -i 10 -r 200 -t GET -u http://127.0.0.1:PORT/status/200 -x 24 -p 3 -l 60
#     (1,000 slowloris connections opened at 200/s, each sending one more header line every 10 s);
#   - a normal client: one `curl /status/200` per second (5 s timeout), recording each status
#     and time.
# Reports how many normal requests got 200 (per second, and their worst time), slowhttptest's
# own view (connections connected/closed, "service available"), and how many slow connections
# statuslab closed with 408 (access-log lines with status=408).
#
# Installs slowhttptest with apt-get if missing. Stops everything it started on exit.
# Raw outputs go to target/bench/slow-<time>/. Knobs: SLOW_CONNECTIONS=1000, SLOW_LENGTH=60,
# SLOW_HEADER_TIMEOUT=10s, SLOW_NO_INSTALL=1 (fail instead of installing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CONNS=${SLOW_CONNECTIONS:-1000}
LENGTH=${SLOW_LENGTH:-60}
HEADER_TIMEOUT=${SLOW_HEADER_TIMEOUT:-10s}
RUN=$ROOT/target/bench/slow-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"

note() { printf '%s\n' "$*" >&2; }
die() { note "slow: $*"; exit 1; }

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! command -v slowhttptest >/dev/null 2>&1; then
    [[ -z ${SLOW_NO_INSTALL:-} ]] || die "slowhttptest is missing (SLOW_NO_INSTALL is set)"
    note "slow: apt-get install slowhttptest"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slowhttptest; } >"$RUN/apt.log" 2>&1 ||
        die "apt-get install slowhttptest failed (see $RUN/apt.log)"
fi
for tool in curl taskset python3; do command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"; done
STATUSLAB=$ROOT/target/release/statuslab
[[ -x $STATUSLAB ]] || cargo build --release -q -p statuslab

ulimit -n "$(( $(ulimit -Hn) < 8192 ? $(ulimit -Hn) : 8192 ))" 2>/dev/null || true
SRV_PIN=(); LOAD_PIN=()
[[ $(nproc) -ge 2 ]] && { SRV_PIN=(taskset -c 0); LOAD_PIN=(taskset -c 1); }

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${SRV_PIN[@]}" "$STATUSLAB" serve --listen "127.0.0.1:$PORT" --workers 1 --header-timeout "$HEADER_TIMEOUT" \
    --log-level info --data-dir "$RUN/data" >"$RUN/statuslab.log" 2>&1 &
SL_PID=$!
PIDS+=("$SL_PID")
for _ in $(seq 1 100); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/status/200" && break; sleep 0.1; done
kill -0 "$SL_PID" 2>/dev/null || die "statuslab did not start (see $RUN/statuslab.log)"
URL=http://127.0.0.1:$PORT/status/200

{
    echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "statuslab: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + local changes'), --workers 1 --header-timeout $HEADER_TIMEOUT on CPU 0"
    echo "attack:    $(slowhttptest -h 2>&1 | grep -m1 -o 'version [0-9.]*' || echo slowhttptest), on CPU 1: slowhttptest -c $CONNS -H -i 10 -r 200 -t GET -u $URL -x 24 -p 3 -l $LENGTH"
    echo "ulimit -n: $(ulimit -n)"
} | tee "$RUN/machine.txt"

# The normal client: one request a second, from just before the attack until after it.
normal() {
    local t0=$SECONDS line
    while ((SECONDS - t0 < LENGTH + 8)); do
        line=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}' "$URL" || true)
        echo "$((SECONDS - t0)) $(date -u +%H:%M:%S) ${line:-000 5}"
        sleep 1
    done
}
normal >"$RUN/normal.txt" &
NORMAL_PID=$!
PIDS+=("$NORMAL_PID")
sleep 2
"${LOAD_PIN[@]}" slowhttptest -c "$CONNS" -H -i 10 -r 200 -t GET -u "$URL" -x 24 -p 3 -l "$LENGTH" \
    -g -o "$RUN/slowhttptest" >"$RUN/slowhttptest.out" 2>&1 || note "slow: slowhttptest exited $?"
wait "$NORMAL_PID" || true

{
    echo
    echo "== normal client (one curl /status/200 a second, 5 s timeout) during the attack"
    awk '{ n++; if ($3 == "200") ok++; if ($4 > max) max = $4; if ($3 != "200") bad = bad " " $1 "s:" $3 }
         END { printf "   %d of %d requests answered 200 (%.0f%%); slowest %.1f ms%s\n", ok, n, 100 * ok / n, 1000 * max, (bad ? "; failures at" bad : "") }' "$RUN/normal.txt"
    echo "   per second (elapsed s: status/time ms):"
    awk '{ printf "%s %s:%s/%.1f", (NR % 8 == 1 ? "\n   " : ""), $1, $3, 1000 * $4 }' "$RUN/normal.txt"
    echo
    echo
    echo "== slowhttptest's view (its CSV: seconds, closed, pending, connected, service available)"
    csv=$(ls "$RUN"/slowhttptest*.csv 2>/dev/null | head -1 || true)
    if [[ -n $csv ]]; then
        awk -F, 'NR > 1 { if ($4 > maxc) maxc = $4; last = $0; n++; if ($5 ~ /YES|[1-9]/) up++ }
                 END { printf "   peak connected %d; service available in %d of %d samples; last sample: %s\n", maxc, up, n, last }' "$csv"
    fi
    sed 's/\x1b\[[0-9;]*m//g' "$RUN/slowhttptest.out" | grep -E 'closed|connected|service available|Exit status|pending' | tail -5 | sed 's/^ */   /'
    echo
    echo "== statuslab"
    echo "   slow connections answered 408 and closed: $(grep -c 'status=408' "$RUN/statuslab.log" || true)"
    echo "   requests logged with status=200 (normal client, start-up check, slowhttptest's probe): $(grep -c 'status=200' "$RUN/statuslab.log" || true)"
    echo "   (slowhttptest stops once no slow connection is left open: see its \"Exit status\" above)"
} | tee "$RUN/slow.txt"
note "slow: raw outputs in $RUN"
