#!/usr/bin/env bash
# 1:N identification on LFW through the HTTP API: starts a server on a fresh data directory,
# issues a token, runs `visage eval lfw-search`, stops the server.
#   Usage: scripts/eval-lfw-search.sh [LFW_DIR] [extra eval args...]
#   (default LFW_DIR: ../shared/datasets/lfw; the release binary must be built)
set -euo pipefail
cd "$(dirname "$0")/.."
lfw="${1:-../shared/datasets/lfw}"; shift || true
bin="${CARGO_TARGET_DIR:-target}/release/visage"
work="$(mktemp -d)"; trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
touch "$work/log"
"$bin" serve --data-dir "$work/data" --port "$port" --models-dir "${VISAGE_MODELS_DIR:-models}" 2>"$work/log" &
pid=$!
for _ in $(seq 300); do grep -q "listening on" "$work/log" && break; sleep 0.1; done
grep -q "listening on" "$work/log" || { cat "$work/log"; exit 1; }
token="$("$bin" token create --data-dir "$work/data" --client lfw-search --ttl 1d)"
"$bin" eval lfw-search --dataset "$lfw" --url "http://127.0.0.1:$port" --token "$token" "$@"
