#!/usr/bin/env bash
# Enrolment and erasure throughput on PostgreSQL with 1 and 2 visage nodes, wrk over loopback.
#   Usage: scripts/bench-nodes.sh [DATABASE_URL]
# Without a URL it starts a throw-away cluster (scripts/postgres.sh). For each node count:
# N persons (default 20,000) are seeded for a client of that run, then
#   DELETE /persons/{id}: each node erases its own half of the ids (durable erasure),
#   POST /persons: enrolment of a fixture photo (the face pipeline runs on every request).
# CONNECTIONS (32) are split over the nodes; DURATION (10s) per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
n="${N:-20000}"; conns="${CONNECTIONS:-32}"; duration="${DURATION:-10s}"
bin="${CARGO_TARGET_DIR:-target}/release/visage"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n "${pg_dir:-}" ]] && scripts/postgres.sh stop "$pg_dir" >/dev/null 2>&1 && rm -rf "$pg_dir"
    rm -rf "$work"
}
trap cleanup EXIT
url="${1:-}"
if [[ -z "$url" ]]; then
    pg_dir="/tmp/visage-bench-pg-$$"
    url="$(scripts/postgres.sh start "$pg_dir" $((55000 + RANDOM % 900)) | tail -n 1)"
fi
export VISAGE_JWT_SECRET="bench-nodes-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
image="$(base64 -w0 fixtures/faces/obama.jpg)"
printf 'wrk.method = "POST"\nwrk.body = [[{"name":"Bench Enrolment","images":["%s"]}]]\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")\n' "$image" > "$work/enrol.lua"

rate() { grep -o 'Requests/sec: *[0-9.]*' | awk '{print $2}'; }
p50() { grep -E '^ +50%' | awk '{print $2}'; }

printf 'nodes\toperation\tconnections\treq/s\tp50 per node\n'
for nodes in 1 2; do
    client="bench$nodes$RANDOM"
    "$bin" seed --database "$url" --client "$client" --count "$n" --ids-out "$work/ids" >/dev/null 2>&1
    token="$("$bin" token create --data-dir "$work/data" --client "$client" --ttl 1h)"
    ports=()
    for i in $(seq "$nodes"); do
        port=$((20000 + RANDOM % 20000))
        "$bin" serve --data-dir "$work/data" --database "$url" --port "$port" \
            --models-dir "${VISAGE_MODELS_DIR:-models}" 2>"$work/log$i" &
        pids+=($!)
        for _ in $(seq 200); do grep -q "listening on" "$work/log$i" && break; sleep 0.1; done
        ports+=("$port")
        # Node i erases its own share of the ids.
        awk -v k="$nodes" -v i="$i" 'NR % k == i - 1' "$work/ids" > "$work/ids$i"
        cat > "$work/delete$i.lua" <<LUA
local ids = {}
local n = 0
function setup(thread) thread:set("tid", n); n = n + 1 end
function init(args) for line in io.lines("$work/ids$i") do ids[#ids + 1] = line end; k = 0 end
function request()
  local j = (k * 2 + tid) % #ids + 1
  k = k + 1
  return wrk.format("DELETE", "/v2/face-recognition/persons/" .. ids[j],
                    { ["Authorization"] = "Bearer $token" })
end
LUA
    done
    per=$((conns / nodes))
    for i in $(seq "$nodes"); do
        wrk -t2 -c"$per" -d"${DELETE_DURATION:-3s}" --latency -s "$work/delete$i.lua" "http://127.0.0.1:${ports[$((i - 1))]}" > "$work/del$i.out" &
    done
    while pgrep -x wrk >/dev/null; do sleep 0.2; done
    total=0; lat=""
    for i in $(seq "$nodes"); do
        total=$(echo "$total + $(rate < "$work/del$i.out")" | bc)
        lat="$lat $(p50 < "$work/del$i.out")"
    done
    printf '%s\tDELETE /persons/{id}\t%s\t%.0f\t%s\n' "$nodes" "$conns" "$total" "$lat"
    if grep -h 'Non-2xx' "$work"/del*.out; then echo "(some ids were erased twice: raise N)"; fi
    for i in $(seq "$nodes"); do
        TOKEN="$token" wrk -t1 -c"$((8 / nodes))" -d"$duration" --latency --timeout 30s -s "$work/enrol.lua" \
            "http://127.0.0.1:${ports[$((i - 1))]}/v2/face-recognition/persons" > "$work/enrol$i.out" &
    done
    while pgrep -x wrk >/dev/null; do sleep 0.2; done
    total=0; lat=""
    for i in $(seq "$nodes"); do
        total=$(echo "$total + $(rate < "$work/enrol$i.out")" | bc)
        lat="$lat $(p50 < "$work/enrol$i.out")"
    done
    printf '%s\tPOST /persons (enrol)\t8\t%.1f\t%s\n' "$nodes" "$total" "$lat"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
done
