#!/usr/bin/env bash
# API throughput with wrk (Debian package): GET one callflow, and durable PUT (create, each a
# fresh number; a 2xx means flushed) at 32 concurrent clients. Usage: bench/api.sh [seconds]
source "$(dirname "$0")/lib.sh"
DURATION="${1:-10}"
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y wrk >/dev/null 2>&1 || sudo apt-get install -y wrk; }
build
start_server
machine
ID=$(create_callflow '{"name":"get","numbers":["1000"],"flow":{"module":"answer","data":{},"children":{}}}')
echo "== GET /v2/accounts/{id}/callflows/{id}, 32 connections, ${DURATION}s"
wrk -t2 -c32 -d"${DURATION}s" -H "X-Auth-Token: $TOKEN" "$API/v2/accounts/$ACCOUNT_ID/callflows/$ID" | grep -E "Requests/sec|Latency|Non-2xx"
cat >"$BENCH_TMP/put.lua" <<LUA
local counter = 0
local thread_id = 0
setup = function(thread) thread:set("id", thread_id); thread_id = thread_id + 1 end
request = function()
  counter = counter + 1
  local body = string.format('{"data":{"name":"w%d","numbers":["5%02d%08d"],"flow":{"module":"answer","data":{},"children":{}}}}', id, id, counter)
  return wrk.format("PUT", nil, {["X-Auth-Token"]="$TOKEN", ["Content-Type"]="application/json"}, body)
end
LUA
echo "== PUT /v2/accounts/{id}/callflows (durable create), 32 connections, ${DURATION}s"
wrk -t2 -c32 -d"${DURATION}s" -s "$BENCH_TMP/put.lua" "$API/v2/accounts/$ACCOUNT_ID/callflows" | grep -E "Requests/sec|Latency|Non-2xx"
