#!/usr/bin/env bash
# bench/ab.sh — two or more statuslab binaries, pipelined, rounds interleaved: which is faster on
# this machine now. Each binary serves /status/404 on CPU 0 (one worker, no access log); wrk
# (16 requests per write, bench/pipeline.lua) loads them in turn from CPU 1, the order rotating
# by round. Prints each binary's median req/s and server CPU (user+sys) per request, with ranges.
#
#   bench/ab.sh ROUNDS BIN_A BIN_B [BIN...]
#   e.g.  cp target/release/statuslab /tmp/before; (change, build); bench/ab.sh 10 /tmp/before target/release/statuslab
#
# Knobs: AB_SECONDS=3 (each wrk run), AB_CONNECTIONS=64, BENCH_PIPELINE=16.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 3 ]] || { echo "usage: bench/ab.sh ROUNDS BIN_A BIN_B [BIN...]" >&2; exit 2; }
rounds=$1; shift
bins=("$@")
secs=${AB_SECONDS:-3}
conns=${AB_CONNECTIONS:-64}
export BENCH_PIPELINE=${BENCH_PIPELINE:-16}
command -v wrk >/dev/null || { echo "bench/ab.sh: wrk is missing (apt-get install -y wrk)" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source bench/lib.sh
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
ports=()
for i in "${!bins[@]}"; do
    port=$(free_port "${ports[@]}")
    ports+=("$port")
    taskset -c 0 "${bins[$i]}" serve --listen "127.0.0.1:$port" --no-access-log --workers 1 \
        --data-dir "$work/data-$i" 2>/dev/null &
    pids+=($!)
done
for i in "${!bins[@]}"; do
    wait_http "http://127.0.0.1:${ports[$i]}/status/200" "${pids[$i]}" ||
        { echo "bench/ab.sh: ${bins[$i]} did not start" >&2; exit 1; }
done
load() { # index seconds -> wrk output
    taskset -c 1 wrk -t1 -c"$conns" -d"$2"s -s bench/pipeline.lua "http://127.0.0.1:${ports[$1]}/status/404"
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for i in "${!bins[@]}"; do load "$i" 1 >/dev/null; done # warm-up
n=${#bins[@]}
for r in $(seq "$rounds"); do
    for k in $(seq 0 $((n - 1))); do
        i=$(((k + r) % n))
        c0=$(cpu "${pids[$i]}")
        out=$(load "$i" "$secs")
        c1=$(cpu "${pids[$i]}")
        reqs=$(awk '/requests in/{print $1}' <<<"$out")
        rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
        # clock ticks (1/100 s) per request, in microseconds
        echo "$i $rps $(awk -v c=$((c1 - c0)) -v n="$reqs" 'BEGIN{printf "%.3f", c * 10000 / n}')" >>"$work/rounds"
    done
done
median() { sort -n | awk '{a[NR]=$1} END{printf "%s (%s-%s)", a[int((NR+1)/2)], a[1], a[NR]}'; }
for i in "${!bins[@]}"; do
    echo "${bins[$i]}: req/s $(awk -v i="$i" '$1==i{print $2}' "$work/rounds" | median);" \
        "CPU us/request $(awk -v i="$i" '$1==i{print $3}' "$work/rounds" | median)"
done
