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
# shellcheck source=scripts/lib/server.sh
source scripts/lib/server.sh
trap 'stop_server; rm -rf "$work"' EXIT
VISAGE_MODELS_DIR="$models" start_server "$bin" "$work" \
    --rate-limit 100000 --rate-burst 100000 --cpu-queue 256 "$@"
sed -n 's/.*inference engine: \(.*\)/engine \1/p' "$work/server.log" | head -n 1
token="$(env -u VISAGE_JWT_SECRET "$bin" token create --data-dir "$work/data" --client bench --ttl 1h)"
python3 scripts/bench_enrol.py --url "$url" --token "$token" --pid "$server" --lfw "$lfw"
