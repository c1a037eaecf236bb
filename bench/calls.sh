#!/usr/bin/env bash
# Call set-up rate for a 3-step flow (answer, play a 0-length file, hangup): callflowd and the
# load generator on the same machine. Usage: bench/calls.sh [concurrency] [seconds]
#   bench/calls.sh 200 60        # saturate: completed calls/s
#   RATE=500 bench/calls.sh      # fixed rate instead of fixed concurrency
source "$(dirname "$0")/lib.sh"
CONCURRENCY="${1:-200}"
SECONDS_RUN="${2:-60}"
build
start_server
machine
create_callflow '{"name":"bench","numbers":["1000"],"flow":{"module":"answer","data":{},"children":{"_":{"module":"play","data":{"id":"silence_stream://0","answer":false},"children":{"_":{"module":"hangup","data":{},"children":{}}}}}}}' >/dev/null
PACE=(--concurrency "$CONCURRENCY")
[ -n "${RATE:-}" ] && PACE=(--rate "$RATE")
"$BIN" loadgen --target "127.0.0.1:$ESL_PORT" "${PACE[@]}" --duration "${SECONDS_RUN}s" \
  --number 1000 --account "$ACCOUNT_ID" --media-time "${MEDIA_TIME:-0s}" ${SCRIPT:+--script "$SCRIPT"} --log-level warn
echo "server RSS: $(rss_kb "$SERVER_PID") KB"
