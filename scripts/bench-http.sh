#!/usr/bin/env bash
# Load benchmark over loopback with wrk: GET /persons/{id} and DELETE /persons/{id} on a
# store seeded with N persons (default 10,000) through the store layer.
#   Usage: scripts/bench-http.sh [N]     (CONNECTIONS=32 THREADS=2 DURATION=10s)
# VISAGE_BIN names another binary (e.g. an older build, for before/after); the per-client
# rate limit is lifted so that wrk's one client measures the server, not the limiter.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
n="${1:-10000}"
conns="${CONNECTIONS:-32}"; threads="${THREADS:-2}"; duration="${DURATION:-10s}"
bin="${VISAGE_BIN:-${CARGO_TARGET_DIR:-target}/release/visage}"
work="$(mktemp -d)"; trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" seed --data-dir "$work/data" --client bench --count "$n" --ids-out "$work/ids"
token="$("$bin" token create --data-dir "$work/data" --client bench --ttl 1h)"
port=$((20000 + RANDOM % 20000))
touch "$work/log"
"$bin" serve --data-dir "$work/data" --port "$port" --models-dir "${VISAGE_MODELS_DIR:-models}" \
    --rate-limit 1000000000 --rate-burst 1000000000 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/log" && break; sleep 0.1; done
cat > "$work/ids.lua" <<LUA
local ids = {}
local n = 0
-- tid is a global set per thread by setup (a local here would shadow it).
function setup(thread) thread:set("tid", n); n = n + 1 end
function init(args) for line in io.lines("$work/ids") do ids[#ids + 1] = line end; k = 0 end
function request()
  local i = (k * $threads + tid) % #ids + 1
  k = k + 1
  return wrk.format(os.getenv("METHOD"), "/v2/face-recognition/persons/" .. ids[i],
                    { ["Authorization"] = "Bearer $token" })
end
LUA
echo "== GET /persons/{id}, $n persons, $conns connections, $duration"
METHOD=GET wrk -t"$threads" -c"$conns" -d"$duration" --latency -s "$work/ids.lua" "http://127.0.0.1:$port"
# Deletes: each id once; stop well before the ids run out so every request is a real erasure.
echo "== DELETE /persons/{id}, $n persons, $conns connections, ${DELETE_DURATION:-2s}"
METHOD=DELETE wrk -t"$threads" -c"$conns" -d"${DELETE_DURATION:-2s}" --latency -s "$work/ids.lua" "http://127.0.0.1:$port"
left="$(curl -s "http://127.0.0.1:$port/v2/face-recognition/persons?limit=1" -H "Authorization: Bearer $token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pagination"]["total"])')"
echo "persons_left $left (of $n)"
