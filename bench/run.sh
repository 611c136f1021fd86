#!/usr/bin/env bash
# bench/run.sh — statuslab's benchmark (issue 3), in one command, on loopback only.
#
#   bench/run.sh                   # N=1 worker each: servers pinned to CPU 0, load tools to CPU 1
#   BENCH_WORKERS=2 bench/run.sh   # N=2 workers each, nothing pinned (both share the 2 cores)
#
# 1. Throughput, statuslab against nginx (`return 404`, same body and headers as statuslab),
#    all with N workers, in one run, rounds interleaved (which server goes first alternates by
#    comparison and by round); five comparisons on /status/404:
#      no logs     wrk; statuslab --no-access-log, nginx `access_log off` (and /status/200,
#                  and httpbin under gunicorn for scale)
#      defaults    wrk; statuslab's default access log (stderr, to a file), nginx's default
#                  access log (combined format, to a file)
#      h2c         h2load -c CONNECTIONS -m 10 over cleartext HTTP/2 (prior knowledge);
#                  nginx `listen ... http2`
#      pipelined   wrk, 16 requests per write (bench/pipeline.lua)
#      user CPU    the server's user CPU time per request (/proc/PID/stat around the no-logs
#                  run), statuslab's over nginx's: the work each does itself, the kernel's
#                  loopback aside
#    and all server CPU per request (user + system), which stays a comparison of the servers
#    when wrk's own core is what limits the no-logs rate (the summary says when it was).
#    With BENCH_INSTRUCTIONS=1, also each server's user-space instructions per /status/404
#    request, HTTP/1.1 and h2c, under valgrind's callgrind: counts the machine's speed does
#    not move.
# 2. Held requests: statuslab-loadgen holds 10,000 concurrent /status/200?sleep=5000 requests
#    (ramped at BENCH_RATE/s; twice on one fresh server, cold then warm; then all at once in a
#    burst on another) and reports how late each response came and the server's peak RSS.
#
# Everything it starts is stopped on exit, failure or Ctrl-C. Raw outputs go to
# target/bench/run-<time>/. Knobs (environment):
#   BENCH_WORKERS=1     workers of every server (statuslab --workers, nginx worker_processes,
#                       gunicorn -w)
#   BENCH_DURATION=10s  each wrk measurement (after a 2 s warm-up)
#   BENCH_ROUNDS=3      rounds of every wrk measurement, servers interleaved; ratios use medians
#   BENCH_CONNECTIONS=64  wrk connections;   BENCH_WRK_THREADS=1  wrk threads
#   BENCH_PIPELINE=16   requests per write in the pipelined rows
#   BENCH_DELAYED=10000 held requests;  BENCH_RATE=5000  new held requests per second
#   BENCH_PIN=auto      auto: pin when BENCH_WORKERS=1 (server CPU 0, load CPU 1); 0: never
#   BENCH_SKIP_HTTPBIN=1, BENCH_SKIP_WRK=1, BENCH_SKIP_DELAYED=1  leave a part out
#   BENCH_INSTRUCTIONS=1  also count each server's instructions per request (valgrind callgrind)
#   BENCH_NO_INSTALL=1  do not apt-get/pip-install anything (fail or skip instead)
#   BENCH_QUIET_WAIT=0  wait up to this many seconds for other work on the machine to stop
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

N=${BENCH_WORKERS:-1}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
PIPELINE=${BENCH_PIPELINE:-16}
DELAYED=${BENCH_DELAYED:-10000}
RATE=${BENCH_RATE:-5000}
PIN=${BENCH_PIN:-auto}
ROUNDS=${BENCH_ROUNDS:-3}
BENCH=$ROOT/target/bench
RUN=$BENCH/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
export BENCH_PIPELINE=$PIPELINE

note() { printf '%s\n' "$*" >&2; }
die() { note "bench: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Stops one process that this script started and forgets it.
stop() {
    local pid=$1 p keep=()
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# ---------------------------------------------------------------- tools
need_apt() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    [[ -z ${BENCH_NO_INSTALL:-} ]] || die "$1 is missing (BENCH_NO_INSTALL is set)"
    if [[ -z ${APT_UPDATED:-} ]]; then
        note "bench: apt-get update"
        apt-get update -qq >"$RUN/apt.log" 2>&1 || die "apt-get update failed (see $RUN/apt.log)"
        APT_UPDATED=1
    fi
    note "bench: apt-get install $2"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >>"$RUN/apt.log" 2>&1 ||
        die "apt-get install $2 failed (see $RUN/apt.log)"
}
need_apt wrk wrk
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt nginx nginx-light
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
need_apt curl curl
need_apt taskset util-linux
need_apt python3 python3

HTTPBIN=1
VENV=$BENCH/venv
if [[ -n ${BENCH_SKIP_HTTPBIN:-} ]]; then
    HTTPBIN=0
elif [[ ! -x $VENV/bin/gunicorn ]] || ! "$VENV/bin/python" -c 'import httpbin' 2>/dev/null; then
    if [[ -n ${BENCH_NO_INSTALL:-} ]]; then
        HTTPBIN=0
    else
        note "bench: pip install httpbin gunicorn into $VENV"
        if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q httpbin gunicorn; } >"$RUN/pip.log" 2>&1; then
            HTTPBIN=0
        fi
    fi
fi
[[ $HTTPBIN == 1 ]] || note "bench: NOTE httpbin under gunicorn is skipped (not installable here or BENCH_SKIP_HTTPBIN; see $RUN/pip.log)"

note "bench: cargo build --release -p statuslab -p statuslab-loadgen"
cargo build --release -q -p statuslab -p statuslab-loadgen
# A build leaves hundreds of MB of dirty pages; their writeback, on any core, would land in the
# measurements (held replies' lateness above all). Written out now, before any is taken.
sync
STATUSLAB=$ROOT/target/release/statuslab
LOADGEN=$ROOT/target/release/statuslab-loadgen

# Room for 10,000 connections on each side (the hard limit may be below what we ask).
HARD=$(ulimit -Hn)
WANT=$((DELAYED * 2 + 1024))
if [[ $HARD != unlimited && $HARD -lt $WANT ]]; then WANT=$HARD; fi
ulimit -n "$WANT" || true
[[ $(ulimit -n) -gt $((DELAYED + 100)) ]] || die "ulimit -n $(ulimit -n) is too low for $DELAYED connections"

# ---------------------------------------------------------------- pinning
CORES=$(nproc)
SRV_PIN=()
LOAD_PIN=()
if [[ $PIN == auto && $N == 1 && $CORES -ge 2 ]]; then
    SRV_PIN=(taskset -c 0)
    LOAD_PIN=(taskset -c 1)
    PIN_NOTE="servers pinned to CPU 0, wrk and statuslab-loadgen to CPU 1 (taskset)"
else
    PIN_NOTE="nothing pinned: servers and load tools share all $CORES CPUs"
fi

# ---------------------------------------------------------------- helpers
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
# CPU ticks used so far by a process and its children (nginx and gunicorn workers).
cpu_ticks() {
    local pid total=0 f
    for pid in "$1" $(pgrep -P "$1" || true); do
        f=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        f=${f##*) }
        read -r -a a <<<"$f"
        total=$((total + a[11] + a[12]))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)
# CPU ticks all CPUs spent busy so far (to see what else ran during a measurement).
kib() { awk -v k="$1" '/^'"$1"':/ {print $2}' "/proc/$2/status" 2>/dev/null || echo 0; }

# ---------------------------------------------------------------- machine
# Other work on the machine skews every figure: optionally wait for it to go quiet.
if [[ ${BENCH_QUIET_WAIT:-0} -gt 0 ]]; then
    note "bench: waiting up to ${BENCH_QUIET_WAIT}s for the CPUs to be < 10% busy"
    deadline=$((SECONDS + BENCH_QUIET_WAIT))
    while ((SECONDS < deadline)); do
        b0=$(busy_ticks); sleep 2; b1=$(busy_ticks)
        (((b1 - b0) * 100 < 10 * 2 * CLK_TCK * CORES)) && break
    done
fi
{
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpus:    $CORES x $(awk -F': *' '/^model name/ {n = $2} /^cpu family/ {f = $2} /^model\t/ {m = $2} /^cpu MHz/ {z = $2} END {printf "%s (family %s, model %s, %.0f MHz)", n, f, m, z}' /proc/cpuinfo)"
    echo "memory:  $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel:  $(uname -sr)"
    echo "nginx:   $("$NGINX" -v 2>&1 | sed 's/.*version: //')"
    echo "wrk:     $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    echo "rustc:   $(rustc --version)"
    if [[ $HTTPBIN == 1 ]]; then
        echo "httpbin: $("$VENV/bin/python" -c 'import importlib.metadata as m; print("httpbin", m.version("httpbin"), "/ gunicorn", m.version("gunicorn"), "(sync workers)")')"
    fi
    echo "statuslab: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + local changes')"
    echo "workers: $N per server; $PIN_NOTE"
    echo "wrk:     -t$WRK_THREADS -c$CONNS -d$DURATION --latency (after a 2 s warm-up), $ROUNDS round(s); pipelined: $PIPELINE requests per write"
    echo "ulimit -n: $(ulimit -n)"
    b0=$(busy_ticks); sleep 2; b1=$(busy_ticks)
    echo "load:    $(awk -v a="$b0" -v b="$b1" -v h="$CLK_TCK" -v n="$CORES" 'BEGIN { printf "%.0f%% of %d CPUs busy in the 2 s before the run", 100 * (b - a) / h / 2 / n, n }'); loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RUN/machine.txt"
echo

# ---------------------------------------------------------------- servers
start_statuslab() { # port [extra args...]; SL_LOGGED=1: its default access log, to a file
    local port=$1 log=(--no-access-log) err=$RUN/statuslab.log
    shift
    if [[ -n ${SL_LOGGED:-} ]]; then
        log=()
        err=$RUN/statuslab-access.log
    fi
    # Each instance has its own embedded store (the default), in this run's folder.
    "${SRV_PIN[@]}" "$STATUSLAB" serve --listen "127.0.0.1:$port" "${log[@]}" --workers "$N" \
        --data-dir "$RUN/data-$port" "$@" 2>>"$err" &
    SL_PID=$!
    PIDS+=("$SL_PID")
    wait_http "http://127.0.0.1:$port/status/200" "$SL_PID" || die "statuslab did not start (see $RUN/statuslab.log)"
}

nginx_quote() { # file -> a single-quoted nginx string
    python3 - "$1" <<'EOF'
import sys
body = open(sys.argv[1], encoding="utf-8").read()
if "$" in body:
    sys.exit("body contains '$', which nginx would expand")
print("'" + body.replace("\\", "\\\\").replace("'", "\\'") + "'")
EOF
}

start_nginx() { # port, logged port, h2c port, statuslab port (whose bodies and headers nginx copies)
    local port=$1 logged=$2 h2c=$3 sl=$4 dir=$RUN/nginx
    mkdir -p "$dir/tmp"
    curl -s "http://127.0.0.1:$sl/status/404" >"$dir/404.body"
    curl -s "http://127.0.0.1:$sl/status/200" >"$dir/200.body"
    local ctype expose
    ctype=$(curl -s -D - -o /dev/null "http://127.0.0.1:$sl/status/404" | awk -F': ' 'tolower($1)=="content-type" {sub(/\r$/, "", $2); print $2}')
    expose=$(curl -s -D - -o /dev/null "http://127.0.0.1:$sl/status/404" | awk -F': ' 'tolower($1)=="access-control-expose-headers" {sub(/\r$/, "", $2); print $2}')
    cat >"$dir/nginx.conf" <<EOF
# Generated by bench/run.sh: the nginx reference, same bodies and headers as statuslab's.
daemon off;
master_process on;
user root;
worker_processes $N;
worker_rlimit_nofile $(ulimit -n);
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 100000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    default_type "$ctype";
    server {
        listen 127.0.0.1:$logged;
        access_log $dir/access.log;
        location = /status/404 {
            add_header Access-Control-Allow-Origin "*" always;
            add_header Access-Control-Expose-Headers "$expose" always;
            return 404 $(nginx_quote "$dir/404.body");
        }
    }
    server {
        listen 127.0.0.1:$h2c http2;
        location = /status/404 {
            add_header Access-Control-Allow-Origin "*" always;
            add_header Access-Control-Expose-Headers "$expose" always;
            return 404 $(nginx_quote "$dir/404.body");
        }
    }
    server {
        listen 127.0.0.1:$port;
        location = /status/404 {
            add_header Access-Control-Allow-Origin "*" always;
            add_header Access-Control-Expose-Headers "$expose" always;
            return 404 $(nginx_quote "$dir/404.body");
        }
        location = /status/200 {
            add_header Access-Control-Allow-Origin "*" always;
            add_header Access-Control-Expose-Headers "$expose" always;
            return 200 $(nginx_quote "$dir/200.body");
        }
    }
}
EOF
    "${SRV_PIN[@]}" "$NGINX" -e "$dir/error.log" -c "$dir/nginx.conf" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_http "http://127.0.0.1:$port/status/200" "$NGINX_PID" || die "nginx did not start (see $dir/error.log)"
}

start_httpbin() { # port
    "${SRV_PIN[@]}" "$VENV/bin/gunicorn" --workers "$N" --bind "127.0.0.1:$1" --log-level warning \
        --backlog 2048 httpbin:app 2>>"$RUN/gunicorn.log" &
    HB_PID=$!
    PIDS+=("$HB_PID")
    wait_http "http://127.0.0.1:$1/status/200" "$HB_PID" || { note "bench: NOTE httpbin did not start (see $RUN/gunicorn.log); skipped"; HTTPBIN=0; }
}

# ---------------------------------------------------------------- throughput
# Converts wrk's latency ("850.00us", "1.23ms", "2.00s") to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }

declare -A RPS USER_US CPU_US LOAD_CPU
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
# User CPU ticks of a process and its children so far.
user_ticks() {
    local pid total=0 f
    for pid in "$1" $(pgrep -P "$1" || true); do
        f=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        f=${f##*) }
        read -r -a a <<<"$f"
        total=$((total + a[11]))
    done
    echo "$total"
}
ROWS=()
measure() { # name pid url mode(plain|logged|pipelined|h2c)
    local name=$1 pid=$2 url=$3 mode=$4 out tool=() t0 t1 u0 u1 times code
    case $mode in
        pipelined) tool=(wrk -t"$WRK_THREADS" -c"$CONNS" -s "$ROOT/bench/pipeline.lua") ;;
        h2c) tool=(h2load -c"$CONNS" -m10 -t"$WRK_THREADS") ;;
        *) tool=(wrk -t"$WRK_THREADS" -c"$CONNS") ;;
    esac
    out=$RUN/load-$name-$(basename "$url")-$mode-r$ROUND.txt
    code=$(curl -s $([[ $mode == h2c ]] && echo --http2-prior-knowledge) -o /dev/null -w '%{http_code}' "$url")
    [[ $code == "$(basename "$url")" ]] || die "$name answered $code to $url"
    if [[ $mode == h2c ]]; then
        "${LOAD_PIN[@]}" "${tool[@]}" -D 2 "$url" >/dev/null 2>&1 || true
    else
        "${LOAD_PIN[@]}" "${tool[@]}" -d2s "$url" >/dev/null 2>&1 || true
    fi
    t0=$(cpu_ticks "$pid"); u0=$(user_ticks "$pid")
    local b0 b1 TIMEFORMAT='%R %U %S'
    b0=$(busy_ticks)
    if [[ $mode == h2c ]]; then
        times=$( { time "${LOAD_PIN[@]}" "${tool[@]}" -D "${DURATION%s}" "$url" >"$out" 2>&1; } 2>&1 )
    else
        times=$( { time "${LOAD_PIN[@]}" "${tool[@]}" -d"$DURATION" --latency "$url" >"$out" 2>&1; } 2>&1 )
    fi
    b1=$(busy_ticks)
    t1=$(cpu_ticks "$pid"); u1=$(user_ticks "$pid")
    local rps p50 p99 errs srv_cpu wrk_cpu other_cpu user_us cpu_us
    if [[ $mode == h2c ]]; then
        rps=$(awk '/^finished in/ { print $4 }' "$out")
        # h2load reports no percentiles: the p50 column holds the mean.
        p50=$(to_ms "$(awk '/^time for request:/ { print $6 }' "$out")")
        p99=-
        errs=$(awk '/^requests:/ { print $12 + $14 }' "$out")
        [[ $(awk '/^status codes:/ { print $3 + $5 + $9 }' "$out") == 0 ]] || die "$name: h2load got answers other than 4xx (see $out)"
    else
        rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
        p50=$(to_ms "$(awk '$1=="50%" {print $2}' "$out")")
        p99=$(to_ms "$(awk '$1=="99%" {print $2}' "$out")")
        errs=$(awk '/Socket errors:/ {gsub(",", ""); print $4+$6+$8+$10}' "$out")
    fi
    [[ -n $rps ]] || die "$name $mode: no rate in $out"
    errs=${errs:-0}
    read -r real user sys <<<"$times"
    srv_cpu=$(awk -v a="$t0" -v b="$t1" -v r="$real" -v h="$CLK_TCK" 'BEGIN { printf "%.0f", 100 * (b - a) / h / r }')
    wrk_cpu=$(awk -v u="$user" -v s="$sys" -v r="$real" 'BEGIN { printf "%.0f", 100 * (u + s) / r }')
    # Everything else that ran meanwhile (other processes; interrupts not charged to either).
    other_cpu=$(awk -v a="$b0" -v b="$b1" -v h="$CLK_TCK" -v r="$real" -v s="$srv_cpu" -v w="$wrk_cpu" \
        'BEGIN { o = 100 * (b - a) / h / r - s - w; printf "%.0f", (o < 0 ? 0 : o) }')
    # The server's own work per request: user CPU over the requests answered meanwhile.
    user_us=$(awk -v a="$u0" -v b="$u1" -v h="$CLK_TCK" -v n="$rps" -v r="$real" 'BEGIN { printf "%.2f", 1e6 * (b - a) / h / (n * r) }')
    # All of the server's CPU per request (user and system): the inverse of what one core of
    # it can answer, whether or not the load generator kept it busy.
    cpu_us=$(awk -v a="$t0" -v b="$t1" -v h="$CLK_TCK" -v n="$rps" -v r="$real" 'BEGIN { printf "%.2f", 1e6 * (b - a) / h / (n * r) }')
    RPS[$name/$(basename "$url")/$mode]+="$rps "
    USER_US[$name/$(basename "$url")/$mode]+="$user_us "
    CPU_US[$name/$(basename "$url")/$mode]+="$cpu_us "
    LOAD_CPU[$name/$(basename "$url")/$mode]+="$wrk_cpu "
    ROWS+=("$(printf '%-10s %-12s %-10s %5s %12s %9s %9s %8s %8s %8s %7s %8s %8s' "$name" "${url#http://127.0.0.1:*/}" "$mode" "$ROUND" "$rps" "$p50" "$p99" "$srv_cpu%" "$wrk_cpu%" "$other_cpu%" "$errs" "$user_us" "$cpu_us")")
    note "  $name $url $mode: $rps req/s, $user_us us user CPU per request"
}

# One comparison row: the median ratio statuslab / nginx, the per-round ratios' range, the target.
ratio_row() { # label key target(>= or <=) bound [value: rps|user|cpu]
    local label=$1 key=$2 op=$3 bound=$4 what=${5:-rps} a b rs=() i
    local -a sa na
    case $what in
        user) local -n values=USER_US ;;
        cpu) local -n values=CPU_US ;;
        *) local -n values=RPS ;;
    esac
    read -r -a sa <<<"${values[statuslab/$key]}"; read -r -a na <<<"${values[nginx/$key]}"
    for i in "${!sa[@]}"; do
        rs+=("$(awk -v a="${sa[$i]}" -v b="${na[$i]:-0}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print 0 }')")
    done
    a=$(median "${sa[@]}"); b=$(median "${na[@]}")
    awk -v l="$label" -v r="$(median "${rs[@]}")" -v lo="$(range "${rs[@]}")" -v a="$a" -v b="$b" -v op="$op" -v t="$bound" -v u="$([[ $what == rps ]] && echo "req/s" || echo "us/req")" \
        'BEGIN { met = (op == ">=" ? r >= t : r <= t); printf "%-34s %6.2fx  (rounds %s; %s / %s %s)  target %s %s: %s\n", l, r, lo, a, b, u, op, t, (met ? "MET" : "NOT MET") }'
}

if [[ -z ${BENCH_SKIP_WRK:-} ]]; then
    need_apt h2load nghttp2-client
    SL_PORT=$(free_port)
    start_statuslab "$SL_PORT"
    SL_THR_PID=$SL_PID
    SLL_PORT=$(free_port "$SL_PORT")
    SL_LOGGED=1 start_statuslab "$SLL_PORT"
    SL_LOG_PID=$SL_PID
    NG_PORT=$(free_port "$SL_PORT" "$SLL_PORT")
    NGL_PORT=$(free_port "$SL_PORT" "$SLL_PORT" "$NG_PORT")
    NGH_PORT=$(free_port "$SL_PORT" "$SLL_PORT" "$NG_PORT" "$NGL_PORT")
    start_nginx "$NG_PORT" "$NGL_PORT" "$NGH_PORT" "$SL_PORT"
    HB_PORT=$(free_port "$SL_PORT" "$SLL_PORT" "$NG_PORT" "$NGL_PORT" "$NGH_PORT")
    [[ $HTTPBIN == 1 ]] && start_httpbin "$HB_PORT"
    note "bench: statuslab :$SL_PORT (logged :$SLL_PORT), nginx :$NG_PORT (logged :$NGL_PORT, h2c :$NGH_PORT)$([[ $HTTPBIN == 1 ]] && echo ", httpbin :$HB_PORT")"
    # One comparison's two measurements, back to back. Which server goes first alternates from
    # one comparison to the next and from one round to the next, so neither server always takes
    # the slot after the other's run (or after the previous round's last one).
    pair() { # mode statuslab-pid statuslab-url nginx-url
        if (((PAIR + ROUND) % 2)); then
            measure statuslab "$2" "$3" "$1"
            measure nginx "$NGINX_PID" "$4" "$1"
        else
            measure nginx "$NGINX_PID" "$4" "$1"
            measure statuslab "$2" "$3" "$1"
        fi
        PAIR=$((PAIR + 1))
    }
    for ROUND in $(seq 1 "$ROUNDS"); do
        PAIR=0
        for code in 404 200; do
            pair plain "$SL_THR_PID" "http://127.0.0.1:$SL_PORT/status/$code" "http://127.0.0.1:$NG_PORT/status/$code"
            # gunicorn's sync workers close every connection, so pipelining means nothing there.
            if [[ $HTTPBIN == 1 ]]; then
                measure httpbin "$HB_PID" "http://127.0.0.1:$HB_PORT/status/$code" plain
            fi
        done
        pair logged "$SL_LOG_PID" "http://127.0.0.1:$SLL_PORT/status/404" "http://127.0.0.1:$NGL_PORT/status/404"
        pair h2c "$SL_THR_PID" "http://127.0.0.1:$SL_PORT/status/404" "http://127.0.0.1:$NGH_PORT/status/404"
        pair pipelined "$SL_THR_PID" "http://127.0.0.1:$SL_PORT/status/404" "http://127.0.0.1:$NG_PORT/status/404"
    done
    stop "$SL_THR_PID"
    stop "$SL_LOG_PID"
    stop "$NGINX_PID"
    [[ $HTTPBIN == 1 ]] && stop "$HB_PID"
    logged_lines=$(wc -l <"$RUN/statuslab-access.log" 2>/dev/null || echo 0)

    {
        echo "== throughput (wrk / h2load -t$WRK_THREADS -c$CONNS, $DURATION each after a 2 s warm-up; $N worker(s) each; $PIN_NOTE)"
        printf '%-10s %-12s %-10s %5s %12s %9s %9s %8s %8s %8s %7s %8s %8s\n' server path mode round "req/s" "p50 ms" "p99 ms" "srv CPU" "load CPU" "other" errors "user us" "cpu us"
        printf '%s\n' "${ROWS[@]}" | sort -s -b -k3,3 -k2,2r -k1,1r
        echo
        echo "statuslab's access log wrote $logged_lines lines (the logged rows' requests, warm-ups included)"
        echo
        echo "== statuslab / nginx on /status/404: median of the $ROUNDS rounds' ratios (range), same run, $N worker(s) each"
        ratio_row "no logs (wrk)" 404/plain ">=" 1.0
        ratio_row "defaults, access logs on (wrk)" 404/logged ">=" 0.95
        ratio_row "h2c (h2load -m10)" 404/h2c ">=" 0.95
        ratio_row "pipelined x$PIPELINE (wrk)" 404/pipelined ">=" 5
        ratio_row "user CPU per request, no logs" 404/plain "<=" 1.0 user
        ratio_row "/status/200, no logs (wrk)" 200/plain ">=" 1.0
        ratio_row "server CPU (user+sys) per request" 404/plain "<=" 1.0 cpu
        # When wrk's core is saturated with both servers, the no-logs rows measure the load
        # generator as much as the servers (both have idle time left); the CPU rows do not.
        awk -v s="$(median ${LOAD_CPU[statuslab/404/plain]})" -v n="$(median ${LOAD_CPU[nginx/404/plain]})" \
            'BEGIN { if (s >= 97 && n >= 97) printf "note: wrk used %s%% / %s%% of its core (median, statuslab / nginx) in the no-logs rounds: the load generator, not the servers, set their pace; compare the CPU-per-request rows\n", s, n }'
        if [[ $HTTPBIN == 1 ]]; then
            for code in 404 200; do
                awk -v a="$(median ${RPS[statuslab/$code/plain]})" -v b="$(median ${RPS[httpbin/$code/plain]:-0})" -v c="$code" \
                    'BEGIN { if (b > 0) printf "/status/%s no logs: %.1fx httpbin/gunicorn (%s req/s)\n", c, a / b, b }'
            done
        fi
        echo
    } | tee "$RUN/throughput.txt"
fi

# ---------------------------------------------------------------- instructions per request
# BENCH_INSTRUCTIONS=1: each server's own (user-space) instructions per /status/404 request, no
# logs, one worker, counted by valgrind's callgrind (counters zeroed after a warm-up, dumped after
# the run): over HTTP/1.1 (wrk -c8), then over h2c (h2load -c8 -m10). Unlike the CPU rows this
# does not move with the machine's speed; nor does it weigh what an instruction costs (an atomic,
# a clock read), which the CPU rows do.
if [[ -n ${BENCH_INSTRUCTIONS:-} && -z ${BENCH_SKIP_WRK:-} ]]; then
    need_apt valgrind valgrind
    CG=$RUN/callgrind
    mkdir -p "$CG"
    # Starts a server under callgrind, prints its instructions per request at the HTTP/1.1 URL
    # and at the h2c URL, stops it.
    instructions() { # name h1-url h2c-url command...
        local name=$1 h1=$2 h2c=$3 pid out n ir dump=0 counts=()
        shift 3
        valgrind --tool=callgrind --callgrind-out-file="$CG/$name.out" "$@" 2>"$CG/$name.log" &
        pid=$!
        PIDS+=("$pid")
        wait_http "$h1" "$pid" || die "$name did not start under callgrind (see $CG/$name.log)"
        for proto in h1 h2c; do
            if [[ $proto == h1 ]]; then
                wrk -t1 -c8 -d2s "$h1" >/dev/null
                callgrind_control -z "$pid" >/dev/null 2>&1
                out=$(wrk -t1 -c8 -d"$DURATION" "$h1")
                n=$(awk '/requests in/ { print $1 }' <<<"$out")
            else
                h2load -c8 -m10 -D 2 "$h2c" >/dev/null 2>&1
                callgrind_control -z "$pid" >/dev/null 2>&1
                out=$(h2load -c8 -m10 -D "${DURATION%s}" "$h2c" 2>&1)
                n=$(awk '/^requests:/ { print $2 }' <<<"$out")
            fi
            callgrind_control -d "$pid" >/dev/null 2>&1
            dump=$((dump + 1))
            ir=$(awk '/^summary:/ { print $2; exit }' "$CG/$name.out.$dump")
            counts+=("$(awk -v ir="$ir" -v n="$n" 'BEGIN { printf "%.0f", ir / n }')")
        done
        stop "$pid"
        echo "${counts[@]}"
    }
    sed 's/^master_process on;/master_process off;/' "$RUN/nginx/nginx.conf" >"$CG/nginx.conf"
    read -r sl_h1 sl_h2c < <(instructions statuslab "http://127.0.0.1:$SL_PORT/status/404" \
        "http://127.0.0.1:$SL_PORT/status/404" "$STATUSLAB" serve --listen "127.0.0.1:$SL_PORT" \
        --no-access-log --workers 1 --data-dir "$RUN/data-callgrind")
    read -r ng_h1 ng_h2c < <(instructions nginx "http://127.0.0.1:$NG_PORT/status/404" \
        "http://127.0.0.1:$NGH_PORT/status/404" "$NGINX" -e "$CG/nginx-error.log" -c "$CG/nginx.conf")
    {
        echo "== instructions per /status/404 request, user space (callgrind, no logs, 1 worker)"
        awk -v s="$sl_h1" -v n="$ng_h1" 'BEGIN { printf "HTTP/1.1 (wrk -c8)        statuslab %6d, nginx %6d: %.2fx\n", s, n, s / n }'
        awk -v s="$sl_h2c" -v n="$ng_h2c" 'BEGIN { printf "h2c (h2load -c8 -m10)     statuslab %6d, nginx %6d: %.2fx\n", s, n, s / n }'
        echo
    } | tee "$RUN/instructions.txt"
fi

# ---------------------------------------------------------------- held requests
# Polls the server's VmRSS every 100 ms (bash builtins only, to stay light, but for a rename
# when the peak grows) into a file holding the highest value seen. The file is replaced, not
# rewritten, so a reader never finds it empty. VmHWM, read after each pass, is the
# authoritative peak.
poll_rss() { # pid file
    local max=0 k v _
    while kill -0 "$1" 2>/dev/null; do
        while read -r k v _; do
            [[ $k == VmRSS: ]] && { [[ $v -gt $max ]] && { max=$v; echo "$max" >"$2.new"; mv -f "$2.new" "$2"; }; break; }
        done <"/proc/$1/status" 2>/dev/null || true
        sleep 0.1
    done
}

# One fresh statuslab; `passes` loadgen runs against it, one after the other (the first is a
# cold server, later ones find its file table, slabs and heap already grown).
held() { # label passes loadgen-args... [-- server-args...]
    local label=$1 passes=$2
    shift 2
    local lg=() srv=()
    while [[ $# -gt 0 && $1 != -- ]]; do lg+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    srv=("$@")
    local port base json hwm polled poller pass name
    port=$(free_port)
    start_statuslab "$port" "${srv[@]}"
    sleep 0.3
    base=$(kib VmRSS "$SL_PID")
    echo 0 >"$RUN/held-$label.rss"
    poll_rss "$SL_PID" "$RUN/held-$label.rss" &
    poller=$!
    PIDS+=("$poller")
    for pass in $(seq 1 "$passes"); do
        name=$label
        if [[ $passes -gt 1 ]]; then
            name="$label, pass $pass of $passes on one server"
            [[ $pass == 1 ]] && name+=" (cold)" || name+=" (warm)"
        fi
        json=$RUN/held-$label-$pass.json
        "${LOAD_PIN[@]}" "$LOADGEN" --addr "127.0.0.1:$port" --connections "$DELAYED" --json \
            --samples "$RUN/held-$label-$pass.csv" "${lg[@]}" >"$json" || die "statuslab-loadgen failed"
        hwm=$(kib VmHWM "$SL_PID")
        polled=$(cat "$RUN/held-$label.rss")
        python3 - "$json" "$name" "$base" "$hwm" "$polled" "$DELAYED" <<'EOF' | tee -a "$RUN/held.txt"
import json, sys
path, label, base, hwm, polled, n = sys.argv[1:]
r = json.load(open(path))
base, hwm, polled, n = int(base), int(hwm), int(polled), int(n)
lat = r["lateness_ms"]
print(f"-- {label}: {r['connections']} x {r['path']}  (rate {r['rate']}/s{', burst' if r['burst'] else ''})")
print(f"   completed {r['count']}, errors {r['errors']} {r['errors_by_kind'] or ''}; at most {r['peak_in_flight']} in flight at once;"
      f" requests written over {r['send_burst_ms']:.0f} ms")
print(f"   lateness (final byte - {r['expect_ms']} ms): p50 {lat['p50']:.3f} ms, p90 {lat['p90']:.3f} ms, p99 {lat['p99']:.3f} ms,"
      f" p99.9 {lat['p999']:.3f} ms, max {lat['max']:.3f} ms, min {lat['min']:.3f} ms")
wc = r["write_call_ms"]
print(f"   (lateness counts from the start of each request's write; the write call itself took p99 {wc['p99']:.3f} ms, max {wc['max']:.3f} ms)")
print(f"   statuslab RSS: idle {base/1024:.1f} MiB, peak so far {hwm/1024:.1f} MiB (VmHWM), {polled/1024:.1f} MiB (VmRSS polled every 100 ms);"
      f" {(hwm-base)/max(n,1):.2f} KiB per held request; loadgen peak {r['loadgen_peak_rss_kib']/1024:.1f} MiB")
ok_rss = hwm <= 64 * 1024
ok_lat = lat["p99"] <= 5.0 and r["errors"] == 0 and r["peak_in_flight"] >= n
print(f"   target peak RSS <= 64 MiB: {'MET' if ok_rss else 'NOT MET'};  target p99 lateness <= 5 ms (all {n} held, no errors): {'MET' if ok_lat else 'NOT MET'}")
EOF
    done
    stop "$poller"
    stop "$SL_PID"
}

if [[ -z ${BENCH_SKIP_DELAYED:-} ]]; then
    # The rows above leave ~1 GB of access logs in the page cache: written out now, or their
    # writeback steals the server's core for tens of milliseconds in the middle of a pass.
    sync
    echo "== $DELAYED concurrent held requests (statuslab --workers $N; $PIN_NOTE)" | tee "$RUN/held.txt"
    # Steady ramp: all requests in flight together, responses after the ramp is over. Twice on
    # one server: a cold server pays for growing its file table while the ramp runs.
    held paced 2 --rate "$RATE"
    # Worst case: every connection opened first, then all requests written at once. The idle
    # connections wait out the connect phase, so the header timeout is raised for this one.
    held burst 1 --rate 0 --burst -- --header-timeout 120s
    echo
fi

note "bench: raw outputs in $RUN"
