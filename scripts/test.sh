#!/usr/bin/env bash
# The test command: installs what the tests need, fetches and verifies the models, then
# runs formatting, lint and the whole test suite. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

"$(dirname "$0")/install-deps.sh"

export VISAGE_MODELS_DIR="${VISAGE_MODELS_DIR:-$PWD/models}"
cargo build --release --locked -p visage
"${CARGO_TARGET_DIR:-target}/release/visage" models fetch
# Liveness models: upstream .pth at the pinned commit, converted by our own converter; where
# the network is closed (as in CI here) from a mirror of the .pth files.
mirror=""
for dir in "${VISAGE_LIVENESS_MIRROR:-}" ../shared/models/liveness; do
    if [[ -n "$dir" && -d "$dir" ]]; then mirror="$dir"; break; fi
done
scripts/fetch-liveness.sh ${mirror:+"$mirror"}
if [[ -n "$mirror" ]]; then
    # The converter against the reference conversions mirrored beside the .pth files.
    scripts/test-liveness-convert.sh "$mirror" --fixtures fixtures/liveness
fi

# A throw-away PostgreSQL 16 + pgvector 0.8 (scripts/postgres.sh) on loopback for the PostgreSQL
# back-end's tests, unless VISAGE_TEST_DATABASE_URL names one. Without a database those
# tests fail, never skip.
if [[ -z "${VISAGE_TEST_DATABASE_URL:-}" ]]; then
    pg_dir="${VISAGE_TEST_PG_DIR:-${TMPDIR:-/tmp}/visage-test-pg}"
    scripts/postgres.sh stop "$pg_dir" 2>/dev/null || true
    rm -rf "$pg_dir"
    VISAGE_TEST_DATABASE_URL="$(scripts/postgres.sh start "$pg_dir" "${VISAGE_TEST_PG_PORT:-55439}" | tail -n 1)"
    trap 'scripts/postgres.sh stop "$pg_dir" || true; rm -rf "$pg_dir"' EXIT
fi
export VISAGE_TEST_DATABASE_URL

cargo fmt --all --check
# The OpenAPI document validates as 3.1 (its paths are checked against the router by
# crates/visage/tests/operations.rs).
scripts/check-openapi.sh "${CARGO_TARGET_DIR:-target}/release/visage"
# The layering: no crate's modules form a cycle (python3 is on every machine this runs on).
python3 scripts/check-module-cycles.py
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo clippy --release --locked -p store --all-targets --features postgres-tests -- -D warnings
# Everything on the embedded SQLite store (tests/nodes.rs runs two servers on PostgreSQL).
cargo nextest run --release --locked --workspace --no-fail-fast
# The web console in headless Chromium against a real server (screenshots to a scratch
# directory, so the committed ones in docs/console stay as they are).
console_shots="$(mktemp -d "${TMPDIR:-/tmp}/visage-console-shots.XXXXXX")"
VISAGE_CONSOLE_SCREENSHOTS="$console_shots" scripts/test-console.sh "${CARGO_TARGET_DIR:-target}/release/visage"
rm -rf "$console_shots"
scripts/test-console.sh "${CARGO_TARGET_DIR:-target}/release/visage"
# The store suite, then the whole HTTP suite, on PostgreSQL.
cargo nextest run --release --locked -p store --features postgres-tests --test postgres --no-fail-fast
VISAGE_TEST_BACKEND=postgres cargo nextest run --release --locked -p visage --no-fail-fast

# Everything above ran the models on ONNX Runtime (`auto`, with the library `visage models
# fetch` installed); the vision suite again on tract, the built-in fallback.
VISAGE_ENGINE=tract cargo nextest run --release --locked --workspace -E "package(vision)" --no-fail-fast

# The container image and the Debian package, built offline (no image registry) and
# smoke-tested: enrol + search through a container, the .deb in a fresh base container
# (scripts/container-image.sh; its bookworm base image stays cached in podman's storage).
scripts/container-image.sh --smoke "${CARGO_TARGET_DIR:-target}/release/visage"
