#!/usr/bin/env bash
# The test command: installs what the tests need, fetches and verifies the models, then
# runs formatting, lint and the whole test suite. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

"$(dirname "$0")/install-deps.sh"

export VISAGE_MODELS_DIR="${VISAGE_MODELS_DIR:-$PWD/models}"
cargo build --release --locked -p visage
"${CARGO_TARGET_DIR:-target}/release/visage" models fetch

cargo fmt --all --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo nextest run --release --locked --workspace --no-fail-fast
