#!/usr/bin/env bash
# Enrolment over HTTP on one node (scripts/bench_enrol.py): a fresh data directory, a
# server on a free loopback port with the rate limit lifted, 200 LFW persons from 8 clients,
# then a burst of 100 at once; persons/s, p50/p95 and the server's RSS.
#   scripts/bench-enrol.sh [SERVE ARGS...]   (VISAGE_BIN, VISAGE_LFW_DIR, VISAGE_MODELS_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${VISAGE_BIN:-${CARGO_TARGET_DIR:-target}/release/visage}"
lfw="${VISAGE_LFW_DIR:-../shared/datasets/lfw}"
models="${VISAGE_MODELS_DIR:-$PWD/models}"
work="$(mktemp -d "${TMPDIR:-/tmp}/visage-bench-enrol.XXXXXX")"
server=""
stop() {
    if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server"
        wait "$server" || true
    fi
    rm -rf "$work"
}
trap stop EXIT

env -u VISAGE_JWT_SECRET -u VISAGE_DATABASE_URL \
    "$bin" serve --port 0 --data-dir "$work/data" --models-dir "$models" \
    --rate-limit 100000 --rate-burst 100000 --cpu-queue 256 "$@" 2>"$work/server.log" &
server=$!
url=""
for _ in $(seq 1 600); do
    url="$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/server.log" | head -n 1)"
    [[ -n "$url" ]] && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$url" ]] || { echo "bench-enrol: the server did not listen" >&2; exit 1; }
sed -n 's/.*inference engine: \(.*\)/engine \1/p' "$work/server.log" | head -n 1
token="$(env -u VISAGE_JWT_SECRET "$bin" token create --data-dir "$work/data" --client bench --ttl 1h)"
python3 scripts/bench_enrol.py --url "$url" --token "$token" --pid "$server" --lfw "$lfw"
