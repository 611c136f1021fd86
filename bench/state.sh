#!/usr/bin/env bash
# bench/state.sh — what state costs (issues 4, 6 and 14): the embedded store (redb, fsync per
# commit) against Redis and a Redis Cluster, in one run on one machine, loopback only.
#
#   bench/state.sh
#
# For each store — embedded (redb in a fresh --data-dir), Redis without persistence
# (`--save '' --appendonly no`) and Redis with `--appendonly yes --appendfsync always` (the
# durability the embedded store gives: a 2xx means the write is on disk) — one fresh
# `statuslab serve --workers 1 --no-access-log` (pinned to CPU 0; wrk on CPU 1) and four wrk runs:
#
#   create   PUT /resources/c-<tag>-<thread>-<n>, unique names, small text/plain body; counts 201s
#            (with STATE_CREATE_CONNECTIONS concurrent writers: 64 by default)
#   304      GET /resources/<one> with If-None-Match: <its ETag>; counts 304s
#   status   GET /status/200 (touches no state: the control row)
#   rate     GET /rate-limit/1000000/1s?key=k (one shared key; every request is a store write)
#
# Only responses with the wanted status count in "good/s"; others are listed. Each redis-server
# is started here (by default on CPU 0 with statuslab: the server side gets one core) with its own
# port and folder. Everything it starts is stopped on exit, failure or Ctrl-C. Raw outputs go to
# target/bench/state-<time>/. Rounds interleave the stores, so that a slow spell of the machine
# hits all of them. Knobs:
#   STATE_DURATION=10s      each wrk measurement (after a 2 s warm-up)
#   STATE_CONNECTIONS=32    wrk connections;  STATE_WRK_THREADS=1  wrk threads
#   STATE_CREATE_CONNECTIONS=64  wrk connections of the create test (concurrent writers)
#   STATE_ROUNDS=3          rounds of everything (a fresh server and data each round)
#   STATE_REDIS_CPU=0       CPU for redis-server ("" = not pinned)
#   STATE_SKIP_REDIS=1      embedded only;   STATE_SKIP_AOF=1  leave out the appendfsync-always run
#   STATE_SKIP_CLUSTER=1    leave out the Redis Cluster run (three masters on loopback, started
#                           here, with redis-cli --cluster create; all on STATE_REDIS_CPU)
#
# The summary at the end gives, per store and test, good/s and p99 as median (min-max) over the
# rounds, and each test's ratio to `status` (GET /status/200) of the same statuslab instance in
# the same round: the figure to compare across machines (issue 14: Redis rate >= 0.25x status;
# Redis creates with 32 writers >= 5,000/s with p99 < 20 ms). Use STATE_ROUNDS=3 or more.
#   STATE_BUILD=1           cargo build --release first (otherwise only if the binary is missing)
#   STATE_BIN=path          the statuslab binary to measure (default target/release/statuslab)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${STATE_DURATION:-10s}
CONNS=${STATE_CONNECTIONS:-32}
WRK_THREADS=${STATE_WRK_THREADS:-1}
CREATE_CONNS=${STATE_CREATE_CONNECTIONS:-64}
ROUNDS=${STATE_ROUNDS:-3}
REDIS_CPU=${STATE_REDIS_CPU-0}
RUN=$ROOT/target/bench/state-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
LUA=$ROOT/bench/state.lua

note() { printf '%s\n' "$*" >&2; }
die() { note "state: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
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
stop() { # pid: stops one process this script started and forgets it
    local pid=$1 p keep=()
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# ---------------------------------------------------------------- tools
for tool in wrk curl taskset python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (bench/run.sh installs wrk; apt-get install curl util-linux python3)"
done
if [[ -z ${STATE_SKIP_REDIS:-} ]]; then
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ||
        die "redis-server/redis-cli missing: apt-get install redis-server (or STATE_SKIP_REDIS=1)"
fi
STATUSLAB=${STATE_BIN:-$ROOT/target/release/statuslab}
if [[ -z ${STATE_BIN:-} && ( -n ${STATE_BUILD:-} || ! -x $STATUSLAB ) ]]; then
    note "state: cargo build --release -p statuslab"
    cargo build --release -q -p statuslab
fi

CORES=$(nproc)
SRV_PIN=()
LOAD_PIN=()
REDIS_PIN=()
if [[ $CORES -ge 2 ]]; then
    SRV_PIN=(taskset -c 0)
    LOAD_PIN=(taskset -c 1)
    [[ -n $REDIS_CPU ]] && REDIS_PIN=(taskset -c "$REDIS_CPU")
fi

# ---------------------------------------------------------------- helpers
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
cpu_ticks() { # pid: user+system ticks of the process (all its threads)
    local f
    f=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    f=${f##*) }
    read -r -a a <<<"$f"
    echo $((a[11] + a[12]))
}
CLK_TCK=$(getconf CLK_TCK)
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }
redis_stat() { # port: "EXEC-calls total-commands"
    [[ -n ${1:-} ]] || { echo "0 0"; return; }
    local exec total
    exec=$(redis-cli -p "$1" info commandstats | awk -F'[:=,]' '/^cmdstat_exec:/ {print $3}')
    total=$(redis-cli -p "$1" info stats | awk -F: '/^total_commands_processed:/ {sub(/\r$/, "", $2); print $2}')
    echo "${exec:-0} ${total:-0}"
}

# ---------------------------------------------------------------- machine
{
    echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpus:      $CORES x $(awk -F': *' '/^model name/ {n = $2} /^cpu family/ {f = $2} /^model\t/ {m = $2} /^cpu MHz/ {z = $2} END {printf "%s (family %s, model %s, %.0f MHz)", n, f, m, z}' /proc/cpuinfo)"
    echo "memory:    $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel:    $(uname -sr)"
    echo "disk:      $(df -P "$RUN" | awk 'NR==2 {print $1}') $(findmnt -no FSTYPE,OPTIONS -T "$RUN" 2>/dev/null || true)"
    echo "wrk:       $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    [[ -z ${STATE_SKIP_REDIS:-} ]] && echo "redis:     $(redis-server --version | awk '{print $3}')"
    echo "statuslab: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + local changes'); binary built $(date -u -r "$STATUSLAB" +%Y-%m-%dT%H:%M:%SZ)"
    echo "pinning:   statuslab (--workers 1) on CPU 0, wrk on CPU 1, redis-server on CPU ${REDIS_CPU:-any}"
    echo "wrk:       -t$WRK_THREADS -c$CONNS (create: -c$CREATE_CONNS) -d$DURATION --latency (after a 2 s warm-up), $ROUNDS round(s)"
    b0=$(busy_ticks); sleep 2; b1=$(busy_ticks)
    echo "load:      $(awk -v a="$b0" -v b="$b1" -v h="$CLK_TCK" -v n="$CORES" 'BEGIN { printf "%.0f%% of %d CPUs busy in the 2 s before the run", 100 * (b - a) / h / 2 / n, n }')"
} | tee "$RUN/machine.txt"

# What one fsync costs on this disk: the ceiling of one-commit-at-a-time durable writes.
python3 - "$RUN" <<'EOF' | tee -a "$RUN/machine.txt"
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
lat, end = [], time.monotonic() + 2
while time.monotonic() < end:
    os.pwrite(fd, b"x" * 4096, (len(lat) % 256) * 4096)
    t = time.perf_counter(); os.fsync(fd); lat.append(time.perf_counter() - t)
os.close(fd); os.unlink(path)
lat.sort()
print(f"fsync:     4 KiB pwrite + fsync in one thread: {len(lat) / 2:.0f}/s, "
      f"fsync p50 {lat[len(lat) // 2] * 1e3:.2f} ms, p99 {lat[int(len(lat) * 0.99)] * 1e3:.2f} ms")
EOF
echo

# ---------------------------------------------------------------- servers
REDIS_PORT=""
REDIS_PID=""
start_redis() { # label [redis-server args...]
    local label=$1
    shift
    REDIS_PORT=$(free_port)
    mkdir -p "$RUN/redis-$label"
    "${REDIS_PIN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN/redis-$label" \
        --logfile "$RUN/redis-$label.log" --daemonize no "$@" &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    local i
    for i in $(seq 1 100); do
        [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && return 0
        sleep 0.1
    done
    die "redis-server did not start (see $RUN/redis-$label.log)"
}
CLUSTER_URL=""
CLUSTER_PIDS=()
start_cluster() { # label: three cluster-enabled masters and `redis-cli --cluster create`
    local label=$1 port ports=() nodes=() i
    mkdir -p "$RUN/redis-$label"
    CLUSTER_PIDS=()
    while [[ ${#ports[@]} -lt 3 ]]; do
        port=$(free_port)
        # The cluster bus listens 10000 higher.
        [[ $port -lt 55000 ]] && ports+=("$port")
    done
    for port in "${ports[@]}"; do
        "${REDIS_PIN[@]}" redis-server --port "$port" --bind 127.0.0.1 --dir "$RUN/redis-$label" \
            --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
            --cluster-require-full-coverage no --save '' --appendonly no \
            --logfile "$RUN/redis-$label-$port.log" --daemonize no &
        CLUSTER_PIDS+=($!)
        PIDS+=($!)
        nodes+=("127.0.0.1:$port")
    done
    for port in "${ports[@]}"; do
        for i in $(seq 1 100); do
            [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && break
            sleep 0.1
        done
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-yes >"$RUN/redis-$label-create.txt" 2>&1 ||
        die "redis-cli --cluster create failed (see $RUN/redis-$label-create.txt)"
    for port in "${ports[@]}"; do
        for i in $(seq 1 200); do
            redis-cli -p "$port" cluster info 2>/dev/null | grep -q cluster_state:ok && break
            sleep 0.1
        done
    done
    CLUSTER_URL="redis+cluster://$(IFS=,; echo "${nodes[*]}")"
    # CPU of the first master only; no per-response Redis command counts.
    REDIS_PID=${CLUSTER_PIDS[0]}
    REDIS_PORT=""
}
SL_PORT=""
SL_PID=""
start_statuslab() { # label [extra args...]
    local label=$1
    shift
    SL_PORT=$(free_port ${REDIS_PORT:+"$REDIS_PORT"})
    "${SRV_PIN[@]}" "$STATUSLAB" serve --listen "127.0.0.1:$SL_PORT" --workers 1 --no-access-log \
        --log-level warn --data-dir "$RUN/data-$label" \
        --max-keys 100000000 --max-store-bytes 1GiB "$@" 2>>"$RUN/statuslab-$label.log" &
    SL_PID=$!
    PIDS+=("$SL_PID")
    wait_http "http://127.0.0.1:$SL_PORT/status/200" "$SL_PID" || die "statuslab did not start (see $RUN/statuslab-$label.log)"
}

# ---------------------------------------------------------------- measurements
ROWS=()
measure() { # store test path lua-args... [-- wrk-args...]
    local store=$1 test=$2 path=$3
    shift 3
    local lua=() extra=()
    while [[ $# -gt 0 && $1 != -- ]]; do lua+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    extra=("$@")
    local url="http://127.0.0.1:$SL_PORT$path" out=$RUN/wrk-$store-$test-r$ROUND.txt warm=("${lua[@]}")
    local conns=$CONNS
    [[ $test == create ]] && conns=$CREATE_CONNS
    [[ ${lua[0]} == create ]] && warm=(create "w$ROUND")
    "${LOAD_PIN[@]}" wrk -t"$WRK_THREADS" -c"$conns" -d2s "${extra[@]}" -s "$LUA" "$url" -- "${warm[@]}" >"$RUN/warm-$store-$test-r$ROUND.txt" 2>&1 || true
    local s0 s1 r0 r1 b0 b1 x0 x1 times TIMEFORMAT='%R %U %S'
    s0=$(cpu_ticks "$SL_PID"); r0=0; [[ -n $REDIS_PID ]] && r0=$(cpu_ticks "$REDIS_PID")
    read -r -a x0 <<<"$(redis_stat "$REDIS_PORT")"
    b0=$(busy_ticks)
    times=$( { time "${LOAD_PIN[@]}" wrk -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --latency "${extra[@]}" -s "$LUA" "$url" -- "${lua[@]}" >"$out" 2>&1; } 2>&1 )
    b1=$(busy_ticks)
    s1=$(cpu_ticks "$SL_PID"); r1=0; [[ -n $REDIS_PID ]] && r1=$(cpu_ticks "$REDIS_PID")
    read -r -a x1 <<<"$(redis_stat "$REDIS_PORT")"
    local line good other codes dur rps p50 p99 errs real user sys
    line=$(grep '^state:' "$out") || die "no summary from wrk (see $out)"
    good=$(sed -E 's/.* good=([0-9]+).*/\1/' <<<"$line")
    other=$(sed -E 's/.* other=([0-9]+).*/\1/' <<<"$line")
    codes=$(sed -E 's/.* codes=([^ ]+).*/\1/' <<<"$line")
    dur=$(sed -E 's/.* duration_us=([0-9]+).*/\1/' <<<"$line")
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    p50=$(to_ms "$(awk '$1=="50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1=="99%" {print $2}' "$out")")
    errs=$(awk '/Socket errors:/ {gsub(",", ""); print $4+$6+$8+$10}' "$out")
    read -r real user sys <<<"$times"
    local goodps srv red wrkc oth per_exec per_cmd
    goodps=$(awk -v g="$good" -v d="$dur" 'BEGIN { printf "%.0f", g / (d / 1e6) }')
    srv=$(awk -v a="$s0" -v b="$s1" -v r="$real" -v h="$CLK_TCK" 'BEGIN { printf "%.0f%%", 100 * (b - a) / h / r }')
    red=-
    [[ -n $REDIS_PID ]] && red=$(awk -v a="$r0" -v b="$r1" -v r="$real" -v h="$CLK_TCK" 'BEGIN { printf "%.0f%%", 100 * (b - a) / h / r }')
    wrkc=$(awk -v u="$user" -v s="$sys" -v r="$real" 'BEGIN { printf "%.0f%%", 100 * (u + s) / r }')
    oth=$(awk -v a="$b0" -v b="$b1" -v h="$CLK_TCK" -v r="$real" -v s="${srv%\%}" -v w="${wrkc%\%}" -v x="${red%\%}" \
        'BEGIN { o = 100 * (b - a) / h / r - s - w - (x == "-" ? 0 : x); printf "%.0f%%", (o < 0 ? 0 : o) }')
    per_exec=-; per_cmd=-
    if [[ -n $REDIS_PORT ]]; then
        per_exec=$(awk -v a="${x0[0]}" -v b="${x1[0]}" -v g="$good" -v o="$other" 'BEGIN { n = g + o; printf "%.2f", (n ? (b - a) / n : 0) }')
        per_cmd=$(awk -v a="${x0[1]}" -v b="${x1[1]}" -v g="$good" -v o="$other" 'BEGIN { n = g + o; printf "%.1f", (n ? (b - a) / n : 0) }')
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$store" "$test" "$ROUND" "$goodps" "$p99" >>"$RUN/rows.tsv"
    ROWS+=("$(printf '%-14s %-7s %5s %9s %9s %7s %8s %8s %8s %6s %6s %6s %6s %6s  %s' \
        "$store" "$test" "$ROUND" "$goodps" "$rps" "$other" "$p50" "$p99" "$srv" "$red" "$wrkc" "$oth" "$per_exec" "$per_cmd" \
        "$([[ $other != 0 ]] && echo "other: $codes")$([[ -n $errs && $errs != 0 ]] && echo " socket errors: $errs")")")
    note "  $store $test: $goodps good/s ($other other${errs:+, $errs socket errors})"
}

run_store() { # label [statuslab args...]
    local label=$1
    shift
    start_statuslab "$label-r$ROUND" "$@"
    local base="http://127.0.0.1:$SL_PORT" etag code
    # Preflight: every test answers what it should before it is timed.
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: text/plain' --data-binary 'probe' "$base/resources/probe-$ROUND")
    [[ $code == 201 ]] || die "$label: PUT /resources/probe-$ROUND answered $code (see $RUN/statuslab-$label-r$ROUND.log)"
    etag=$(curl -s -D - -o /dev/null "$base/resources/probe-$ROUND" | awk -F': ' 'tolower($1)=="etag" {sub(/\r$/, "", $2); print $2}')
    [[ -n $etag ]] || die "$label: no ETag on GET /resources/probe-$ROUND"
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base/resources/probe-$ROUND")
    [[ $code == 304 ]] || die "$label: conditional GET answered $code"
    code=$(curl -s -o /dev/null -w '%{http_code}' "$base/rate-limit/1000000/1s?key=k")
    [[ $code == 200 ]] || die "$label: /rate-limit answered $code"
    measure "$label" create / create "m$ROUND"
    measure "$label" 304 "/resources/probe-$ROUND" get 304 -- -H "If-None-Match: $etag"
    measure "$label" status /status/200 get 200
    measure "$label" rate "/rate-limit/1000000/1s?key=k" get 200
    stop "$SL_PID"
}

for ROUND in $(seq 1 "$ROUNDS"); do
    note "state: round $ROUND: embedded"
    REDIS_PORT=""; REDIS_PID=""
    run_store embedded --store embedded
    if [[ -z ${STATE_SKIP_REDIS:-} ]]; then
        note "state: round $ROUND: redis, no persistence"
        start_redis "nopersist-r$ROUND" --save '' --appendonly no
        run_store redis-nopersist --store "redis://127.0.0.1:$REDIS_PORT/0"
        stop "$REDIS_PID"
        if [[ -z ${STATE_SKIP_AOF:-} ]]; then
            note "state: round $ROUND: redis, appendfsync always"
            start_redis "aof-r$ROUND" --save '' --appendonly yes --appendfsync always
            run_store redis-aof-always --store "redis://127.0.0.1:$REDIS_PORT/0"
            stop "$REDIS_PID"
        fi
        REDIS_PORT=""; REDIS_PID=""
        if [[ -z ${STATE_SKIP_CLUSTER:-} ]]; then
            note "state: round $ROUND: redis cluster (3 masters), no persistence"
            start_cluster "cluster-r$ROUND"
            run_store redis-cluster --store "$CLUSTER_URL"
            for pid in "${CLUSTER_PIDS[@]}"; do stop "$pid"; done
            REDIS_PORT=""; REDIS_PID=""
        fi
    fi
done

{
    echo "== state: statuslab --workers 1 on CPU 0, wrk -t$WRK_THREADS -c$CONNS (create: -c$CREATE_CONNS) -d$DURATION on CPU 1, redis-server on CPU ${REDIS_CPU:-any}"
    echo "   good/s = responses with the wanted status (create 201, 304, status 200, rate 200) per second;"
    echo "   EXEC/resp and cmds/resp = Redis EXEC calls and all Redis commands per HTTP response"
    printf '%-14s %-7s %5s %9s %9s %7s %8s %8s %8s %6s %6s %6s %6s %6s\n' \
        store test round "good/s" "wrk r/s" other "p50 ms" "p99 ms" "srv CPU" redis wrk other "EXEC" cmds
    printf '%s\n' "${ROWS[@]}"
} | tee "$RUN/state.txt"
python3 - "$RUN/rows.tsv" <<'EOF' | tee -a "$RUN/state.txt"
import collections, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
good = collections.defaultdict(list)
p99 = collections.defaultdict(list)
per = {}
order = []
for store, test, rnd, g, p in rows:
    if (store, test) not in good:
        order.append((store, test))
    good[(store, test)].append(float(g))
    p99[(store, test)].append(float(p))
    per[(store, test, rnd)] = float(g)
def mmm(v, fmt):
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"
print()
print("== summary: median (min-max) over rounds; x status = good/s over the same instance's")
print("   GET /status/200 good/s in the same round")
print(f"{'store':<16} {'test':<7} {'rounds':>6} {'good/s':>24} {'x status':>20} {'p99 ms':>22}")
for store, test in order:
    ratios = [g / per[(s, "status", r)] for (s, t, r), g in per.items()
              if s == store and t == test and per.get((s, "status", r))]
    ratio = mmm(ratios, "{:.2f}") if ratios else "-"
    print(f"{store:<16} {test:<7} {len(good[(store, test)]):>6} {mmm(good[(store, test)], '{:.0f}'):>24} "
          f"{ratio:>20} {mmm(p99[(store, test)], '{:.1f}'):>22}")
EOF
note "state: raw outputs in $RUN"
