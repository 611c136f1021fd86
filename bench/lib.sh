# bench/lib.sh — helpers shared by the benchmark scripts (sourced, not run).

# A free loopback TCP port, different from the ports given as arguments.
free_port() {
    python3 - "$@" <<'EOF'
import socket, sys
taken = set(int(a) for a in sys.argv[1:])
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if port not in taken:
        print(port)
        break
EOF
}

# Waits up to 15 s for URL to answer; fails early if process PID has exited.
wait_http() { # url pid
    local i
    for i in $(seq 1 150); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# CPU ticks the whole machine has spent busy so far.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
