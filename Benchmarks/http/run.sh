#!/usr/bin/env bash
# GET throughput of HTTPServer (Swift) against a minimal C libmicrohttpd server with the same daemon settings,
# measured by wrk on loopback in one run. Not a test: numbers depend on the machine and its load.
#   Benchmarks/http/run.sh [DURATION_SECONDS=10] [CONNECTIONS=64] [WRK_THREADS=2] [ROUNDS=2]
# Each round runs C then Swift (one server at a time, so they never compete for the cores); the best round of each counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
CONNECTIONS=${2:-64}
WRK_THREADS=${3:-2}
ROUNDS=${4:-2}
SERVER_THREADS=$(nproc)
C_PORT=${C_PORT:-18082}
SWIFT_PORT=${SWIFT_PORT:-18081}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
echo "building (release)..."
swift build -c release --product HTTPBenchServer >/dev/null
SWIFT_BIN=$(swift build -c release --show-bin-path)/HTTPBenchServer
C_BIN=$(swift build -c release --show-bin-path)/http_c_server
cc -O2 -Wall -Wextra -o "$C_BIN" Benchmarks/http/c_server.c $(pkg-config --cflags --libs libmicrohttpd) -lpthread

SERVER_PID=""
cleanup() { if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

# measure NAME PORT BINARY -> prints requests/s
measure() {
    local port=$2 binary=$3
    "$binary" "$port" "$SERVER_THREADS" >/dev/null 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.05
    done
    curl -sf -o /dev/null "http://127.0.0.1:$port/" || { echo "$1 server did not start" >&2; exit 1; }
    local out
    out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "http://127.0.0.1:$port/")
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
    local errors
    errors=$(echo "$out" | grep -E "Non-2xx|Socket errors" || true)
    [ -z "$errors" ] || echo "  $1: $errors" >&2
    echo "$out" | awk '/Requests\/sec/ {print $2}'
}

best_c=0; best_swift=0
for round in $(seq 1 "$ROUNDS"); do
    c=$(measure C "$C_PORT" "$C_BIN")
    s=$(measure Swift "$SWIFT_PORT" "$SWIFT_BIN")
    printf 'round %d: C %10.0f req/s   Swift %10.0f req/s   Swift/C %.1f%%\n' "$round" "$c" "$s" "$(echo "100*$s/$c" | bc -l)"
    best_c=$(echo "if ($c > $best_c) $c else $best_c" | bc -l)
    best_swift=$(echo "if ($s > $best_swift) $s else $best_swift" | bc -l)
done
echo "wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, servers with $SERVER_THREADS threads, best of $ROUNDS rounds:"
printf 'C (libmicrohttpd)   %10.0f req/s\n' "$best_c"
printf 'Swift (HTTPServer)  %10.0f req/s\n' "$best_swift"
printf 'ratio Swift/C       %10.1f%%  (target >= 85%%)\n' "$(echo "100*$best_swift/$best_c" | bc -l)"
