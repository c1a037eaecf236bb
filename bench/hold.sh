#!/usr/bin/env bash
# Memory per held call: N calls parked at once (answer, then park: valet_park holds the channel
# until the caller hangs up). Reports the server's RSS idle and at the plateau.
# Usage: bench/hold.sh [calls] [hold seconds]
# Each process needs a file descriptor per call: raise `ulimit -n` above the call count first
# (lib.sh tries 65536; where the hard limit is lower, e.g. 20000, hold fewer calls).
source "$(dirname "$0")/lib.sh"
CALLS="${1:-20000}"
HOLD="${2:-60}"
build
start_server
machine
create_callflow '{"name":"hold","numbers":["2000"],"flow":{"module":"answer","data":{},"children":{"_":{"module":"park","data":{"action":"park"},"children":{}}}}}' >/dev/null
# One request first so lazy state (schemas, pools) is counted in the idle figure.
"$BIN" loadgen --target "127.0.0.1:$ESL_PORT" --concurrency 1 --duration 1s --number 2000 \
  --account "$ACCOUNT_ID" --script '{"hangup_after":"200ms"}' --log-level warn >/dev/null 2>&1 || true
sleep 2
IDLE=$(rss_kb "$SERVER_PID")
echo "idle RSS: $IDLE KB"
"$BIN" loadgen --target "127.0.0.1:$ESL_PORT" --concurrency "$CALLS" --duration "${HOLD}s" \
  --number 2000 --account "$ACCOUNT_ID" --script "{\"hangup_after\":\"${HOLD}s\"}" \
  --max-in-flight "$CALLS" --ramp "${RAMP:-1000}" --log-level warn >"$BENCH_TMP/loadgen.out" 2>&1 &
LOADGEN=$!
PEAK=0
HELD=0
for _ in $(seq 1 "$HOLD"); do
  sleep 1
  ACTIVE=$(curl -s "$API/metrics" | awk '/^callflowd_active_calls/ {printf "%d", $2}')
  ACTIVE=${ACTIVE:-0}
  R=$(rss_kb "$SERVER_PID")
  echo "t=$SECONDS active=$ACTIVE rss=${R} KB"
  # The plateau: the most calls held at once, and the RSS at that moment.
  if [ "$ACTIVE" -gt "$HELD" ]; then HELD=$ACTIVE; PEAK=$R; fi
  [ "$ACTIVE" -ge "$CALLS" ] && { sleep 3; PEAK=$(rss_kb "$SERVER_PID"); break; }
done
[ "$HELD" -gt 0 ] || { echo "no call was held"; exit 1; }
echo "calls held: $HELD (of $CALLS)  idle RSS: $IDLE KB  plateau RSS: $PEAK KB  per call: $(( (PEAK - IDLE) / HELD )) KB"
kill "$LOADGEN" 2>/dev/null || true
wait "$LOADGEN" 2>/dev/null || true
