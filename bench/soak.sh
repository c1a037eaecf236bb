#!/usr/bin/env bash
# Soak: 200 concurrent calls (answer, a 2 s prompt, hangup) with API writes mixed in
# (create / replace / patch / delete callflows, ~20/s over a bounded set), for N minutes.
# The server's RSS is sampled every 10 s after a warm-up (WARMUP seconds, default 180: caches,
# allocator arenas and the accept backlog fill during the first minutes). Fails (exit 1) if the
# RSS moved more than 10% between the first and the last minute of samples (medians of six), if
# any call failed, or if any API write got a non-2xx reply. Prints the mean RSS per 5 minutes.
# Usage: bench/soak.sh [minutes]        (default 30; CALLS=200 WRITES_PER_SEC=20 WARMUP=180)
source "$(dirname "$0")/lib.sh"
MINUTES="${1:-30}"
CALLS="${CALLS:-200}"
WRITES_PER_SEC="${WRITES_PER_SEC:-20}"
WARMUP="${WARMUP:-180}"
DURATION=$((MINUTES * 60))
build
start_server
machine
create_callflow '{"name":"soak","numbers":["1000"],"flow":{"module":"answer","data":{},"children":{"_":{"module":"play","data":{"id":"tone_stream://%(400,200,440)"},"children":{"_":{"module":"hangup","data":{}}}}}}}' >/dev/null
echo "soak: ${MINUTES} min, $CALLS concurrent calls, ~$WRITES_PER_SEC API writes/s, server pid $SERVER_PID, RSS $(rss_kb "$SERVER_PID") KB"

"$BIN" loadgen --target "127.0.0.1:$ESL_PORT" --concurrency "$CALLS" --duration "${DURATION}s" \
  --number 1000 --account "$ACCOUNT_ID" --media-time 2s --max-in-flight $((CALLS * 2)) \
  --log-level warn >"$BENCH_TMP/loadgen.out" 2>&1 &
LOADGEN=$!

# API writer: keeps 20..100 callflows; counts replies that are not 2xx.
writer() {
  local seq=0 errors=0 writes=0 ids=() pause
  pause=$(awk "BEGIN {print 1 / $WRITES_PER_SEC}")
  local cf="$API/v2/accounts/$ACCOUNT_ID/callflows"
  local flow='{"module":"answer","data":{},"children":{"_":{"module":"hangup","data":{}}}}'
  while [ ! -e "$BENCH_TMP/stop" ]; do
    seq=$((seq + 1))
    local roll=$((RANDOM % 100)) n=${#ids[@]} code
    local doc="{\"name\":\"soak $seq\",\"numbers\":[\"55$(printf %08d $seq)\"],\"flow\":$flow}"
    if [ "$n" -lt 20 ] || { [ "$roll" -lt 10 ] && [ "$n" -lt 100 ]; }; then
      local out
      out=$(curl -s -w '\n%{http_code}' -X PUT "$cf" -H "X-Auth-Token: $TOKEN" -d "{\"data\":$doc}") || true
      code=${out##*$'\n'}
      ids+=("$(sed -nE 's/.*"id":"([0-9a-f]{32})".*/\1/p' <<<"${out%$'\n'*}" | head -1)")
    else
      local i=$((RANDOM % n)) id
      id=${ids[$i]}
      if [ "$roll" -lt 20 ]; then
        code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$cf/$id" -H "X-Auth-Token: $TOKEN") || true
        ids=("${ids[@]:0:$i}" "${ids[@]:$((i + 1))}")
      elif [ "$roll" -lt 55 ]; then
        code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$cf/$id" -H "X-Auth-Token: $TOKEN" -d "{\"data\":$doc}") || true
      else
        code=$(curl -s -o /dev/null -w '%{http_code}' -X PATCH "$cf/$id" -H "X-Auth-Token: $TOKEN" -d "{\"data\":{\"name\":\"patched $seq\"}}") || true
      fi
    fi
    writes=$((writes + 1))
    case "$code" in 2??) ;; *) errors=$((errors + 1)); echo "soak: write $seq -> HTTP $code" >&2 ;; esac
    sleep "$pause"
  done
  echo "$writes $errors" >"$BENCH_TMP/writer.out"
}
writer &
WRITER=$!

sleep "$WARMUP"
SAMPLES=()
SAMPLED_AT=()
while kill -0 "$LOADGEN" 2>/dev/null; do
  R=$(rss_kb "$SERVER_PID")
  SAMPLES+=("$R")
  SAMPLED_AT+=("$SECONDS")
  echo "t=$((SECONDS))s rss=$R KB active=$(curl -s "$API/metrics" | awk '/^callflowd_active_calls/ {print $2}')"
  sleep 10
done
touch "$BENCH_TMP/stop"
wait "$WRITER" || true
wait "$LOADGEN" || true
cat "$BENCH_TMP/loadgen.out"
read -r WRITES API_ERRORS <"$BENCH_TMP/writer.out"
FAILED=$(awk '/^calls failed/ {print $3}' "$BENCH_TMP/loadgen.out")
COMPLETED=$(awk '/^calls completed/ {print $3}' "$BENCH_TMP/loadgen.out")
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
N=${#SAMPLES[@]}
if [ "$N" -lt 12 ]; then echo "soak: too few samples ($N; run longer than WARMUP + 2 min)"; exit 1; fi
START=$(median "${SAMPLES[@]:0:6}")
END=$(median "${SAMPLES[@]:$((N - 6)):6}")
for i in "${!SAMPLES[@]}"; do echo "${SAMPLED_AT[$i]} ${SAMPLES[$i]}"; done |
  awk -v t0="${SAMPLED_AT[0]}" '{w = int(($1 - t0) / 300); s[w] += $2; n[w]++; if (w > last) last = w}
    END {for (w = 0; w <= last; w++) if (n[w]) printf "rss mean, minutes %d-%d of sampling: %.0f KB (%d samples)\n", 5 * w, 5 * w + 5, s[w] / n[w], n[w]}'
MAX=$(printf '%s\n' "${SAMPLES[@]}" | sort -n | tail -1)
CHANGE=$(awk "BEGIN {printf \"%+.1f\", ($END - $START) * 100 / $START}")
echo "soak figures: ${MINUTES} min | calls completed ${COMPLETED:-0} failed ${FAILED:-?} | API writes $WRITES errors $API_ERRORS | RSS start $START KB end $END KB ($CHANGE%) max $MAX KB ($N samples)"
STATUS=0
awk "BEGIN {exit !(($END - $START) * 100 / $START > 10 || ($START - $END) * 100 / $START > 10)}" && { echo "soak: FAIL: RSS moved $CHANGE%"; STATUS=1; }
[ "${FAILED:-1}" = "0" ] || { echo "soak: FAIL: ${FAILED:-?} calls failed"; STATUS=1; }
[ "$API_ERRORS" = "0" ] || { echo "soak: FAIL: $API_ERRORS API writes failed"; STATUS=1; }
[ "$STATUS" = 0 ] && echo "soak: PASS"
exit $STATUS
