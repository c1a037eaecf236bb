#!/usr/bin/env bash
# Shared helpers for the benchmark scripts: build once, start a throw-away server, get a token.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/callflowd}"  # BIN=... measures another build
BENCH_TMP="${BENCH_TMP:-$(mktemp -d /tmp/callflowd-bench.XXXXXX)}"
API_PORT="${API_PORT:-18000}"
ESL_PORT="${ESL_PORT:-18084}"
API="http://127.0.0.1:$API_PORT"

build() {
  (cd "$ROOT" && cargo build --release --quiet)
}

# Starts the server on an empty data dir; sets SERVER_PID, ACCOUNT_ID, API_KEY, TOKEN.
start_server() {
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  "$BIN" serve --data-dir "$BENCH_TMP/data" --listen "127.0.0.1:$API_PORT" \
    --esl-listen "127.0.0.1:$ESL_PORT" --log-level warn "$@" >"$BENCH_TMP/serve.out" 2>"$BENCH_TMP/serve.err" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    grep -q "API key" "$BENCH_TMP/serve.out" 2>/dev/null && curl -s "$API/metrics" >/dev/null && break
    sleep 0.1
  done
  ACCOUNT_ID=$(sed -nE 's/.*account id: *([0-9a-f]{32}).*/\1/p' "$BENCH_TMP/serve.out")
  API_KEY=$(sed -nE 's/.*API key: *([0-9a-f]{64}).*/\1/p' "$BENCH_TMP/serve.out")
  TOKEN=$(curl -s -X PUT "$API/v2/api_auth" -d "{\"data\":{\"api_key\":\"$API_KEY\"}}" \
          | sed -E 's/.*"auth_token":"([^"]+)".*/\1/')
  trap stop_server EXIT
}

stop_server() {
  if [ -n "${SERVER_PID:-}" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$BENCH_TMP"
}

# create_callflow '<json document>' -> prints the id
create_callflow() {
  curl -s -X PUT "$API/v2/accounts/$ACCOUNT_ID/callflows" -H "X-Auth-Token: $TOKEN" \
    -d "{\"data\": $1}" | sed -E 's/.*"id":"([0-9a-f]{32})".*/\1/'
}

rss_kb() {
  awk '/VmRSS/ {print $2}' "/proc/$1/status"
}

machine() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
}

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"
}
