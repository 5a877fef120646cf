#!/usr/bin/env bash
# GET throughput of HTTPServer (Swift) against a minimal C libmicrohttpd server with the same daemon settings,
# measured by wrk on loopback in one run. Not a test: numbers depend on the machine and its load.
#   Benchmarks/http/run.sh [DURATION_SECONDS=10] [CONNECTIONS=64] [WRK_THREADS=2] [ROUNDS=2]
# Each round runs both servers one after the other (never at once; the order alternates). Reported: the best
# round of each, the median of the per-round ratios (neighbouring runs see similar machine load), and the server's
# CPU time per request (user+sys from /proc, less sensitive to other load than requests/s).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
CONNECTIONS=${2:-64}
WRK_THREADS=${3:-2}
ROUNDS=${4:-2}
SERVER_THREADS=$(nproc)
C_PORT=${C_PORT:-18082}
SWIFT_PORT=${SWIFT_PORT:-18081}
TICKS=$(getconf CLK_TCK)
# As root, run servers and wrk at a higher priority than other work on the machine (both servers alike), which
# cuts the noise from background jobs; NICE=0 turns it off.
NICE=${NICE:-$([ "$(id -u)" = 0 ] && echo -10 || echo 0)}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
echo "building (release)..."
swift build -c release --product HTTPBenchServer >/dev/null 2>&1 || swift build -c release --product HTTPBenchServer
BIN_DIR=$(swift build -c release --show-bin-path)
SWIFT_BIN=$BIN_DIR/HTTPBenchServer
C_BIN=$BIN_DIR/http_c_server
cc -O2 -Wall -Wextra -o "$C_BIN" Benchmarks/http/c_server.c $(pkg-config --cflags --libs libmicrohttpd) -lpthread

SERVER_PID=""
cleanup() { if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }

# measure NAME PORT BINARY -> prints "requests_per_second cpu_microseconds_per_request"
measure() {
    local port=$2 binary=$3
    nice -n "$NICE" "$binary" "$port" "$SERVER_THREADS" >/dev/null 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.05
    done
    curl -sf -o /dev/null "http://127.0.0.1:$port/" || { echo "$1 server did not start" >&2; exit 1; }
    local before after user_before user_after out
    before=$(cpu_ticks "$SERVER_PID"); user_before=$(user_ticks "$SERVER_PID")
    out=$(nice -n "$NICE" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "http://127.0.0.1:$port/")
    after=$(cpu_ticks "$SERVER_PID"); user_after=$(user_ticks "$SERVER_PID")
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
    local errors
    errors=$(echo "$out" | grep -E "Non-2xx|Socket errors" || true)
    [ -z "$errors" ] || echo "  $1: $errors" >&2
    local rps requests
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "$rps $(echo "($after - $before) * 1000000 / $TICKS / $requests" | bc -l) $(echo "($user_after - $user_before) * 1000000 / $TICKS / $requests" | bc -l)"
}

best_c=0; best_swift=0; ratios=()
for round in $(seq 1 "$ROUNDS"); do
    # Alternate which server goes first, so a load trend does not favour one of them.
    if (( round % 2 )); then
        read -r c c_cpu c_user < <(measure C "$C_PORT" "$C_BIN")
        read -r s s_cpu s_user < <(measure Swift "$SWIFT_PORT" "$SWIFT_BIN")
    else
        read -r s s_cpu s_user < <(measure Swift "$SWIFT_PORT" "$SWIFT_BIN")
        read -r c c_cpu c_user < <(measure C "$C_PORT" "$C_BIN")
    fi
    ratio=$(echo "100*$s/$c" | bc -l)
    ratios+=("$ratio")
    printf 'round %d: C %7.0f req/s (CPU/req %5.2f us, user %4.2f)   Swift %7.0f req/s (CPU/req %5.2f us, user %4.2f)   Swift/C %5.1f%%\n' \
        "$round" "$c" "$c_cpu" "$c_user" "$s" "$s_cpu" "$s_user" "$ratio"
    best_c=$(echo "if ($c > $best_c) $c else $best_c" | bc -l)
    best_swift=$(echo "if ($s > $best_swift) $s else $best_swift" | bc -l)
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
echo "wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s on 127.0.0.1, servers with $SERVER_THREADS threads, nice $NICE, $ROUNDS rounds:"
printf 'C (libmicrohttpd)   best %10.0f req/s\n' "$best_c"
printf 'Swift (HTTPServer)  best %10.0f req/s\n' "$best_swift"
printf 'Swift/C             best-of ratio %5.1f%%, median per-round ratio %5.1f%%  (target >= 85%%)\n' \
    "$(echo "100*$best_swift/$best_c" | bc -l)" "$median"
