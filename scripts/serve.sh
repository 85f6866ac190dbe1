#!/usr/bin/env bash
# The run command: installs what is missing, builds, fetches and verifies the models, and
# starts the server on the embedded store. Extra arguments go to `visage serve`
# (e.g. --port 9000). Data lives in ${VISAGE_DATA_DIR:-./data}.
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/install-deps.sh"
cargo build --release --locked -p visage
bin="${CARGO_TARGET_DIR:-target}/release/visage"
"$bin" models fetch
# Liveness is optional: without its models the server runs and live endpoints answer 501.
scripts/fetch-liveness.sh || echo "serve: continuing without liveness" >&2
exec "$bin" serve "$@"
