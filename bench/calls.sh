#!/usr/bin/env bash
# Call set-up rate for a 3-step flow (answer, play a 0-length file, hangup): callflowd and the
# load generator on the same machine. Usage: bench/calls.sh [concurrency] [seconds]
#   bench/calls.sh 200 60        # saturate: completed calls/s
#   RATE=500 bench/calls.sh      # fixed rate instead of fixed concurrency
#   PLAY=silence_stream://5000 bench/calls.sh 1000 60   # calls held ~5 s: turnaround at 1,000 calls
source "$(dirname "$0")/lib.sh"
CONCURRENCY="${1:-200}"
SECONDS_RUN="${2:-60}"
build
start_server
machine
create_callflow '{"name":"bench","numbers":["1000"],"flow":{"module":"answer","data":{},"children":{"_":{"module":"play","data":{"id":"'"${PLAY:-silence_stream://0}"'","answer":false},"children":{"_":{"module":"hangup","data":{},"children":{}}}}}}}' >/dev/null
PACE=(--concurrency "$CONCURRENCY")
[ -n "${RATE:-}" ] && PACE=(--rate "$RATE")
CPU0=$(cpu_seconds "$SERVER_PID")
START=$(date +%s.%N)
"$BIN" loadgen --target "127.0.0.1:$ESL_PORT" "${PACE[@]}" --duration "${SECONDS_RUN}s" \
  --number 1000 --account "$ACCOUNT_ID" --media-time "${MEDIA_TIME:-0s}" ${SCRIPT:+--script "$SCRIPT"} --log-level warn
CPU1=$(cpu_seconds "$SERVER_PID")
echo "server RSS: $(rss_kb "$SERVER_PID") KB"
END=$(date +%s.%N)
awk -v c0="$CPU0" -v c1="$CPU1" -v s="$START" -v e="$END" \
  'BEGIN {printf "server CPU: %.1f s over %.1f s wall (%.0f%% of one core)\n", c1 - c0, e - s, 100 * (c1 - c0) / (e - s)}'
