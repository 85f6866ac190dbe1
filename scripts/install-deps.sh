#!/usr/bin/env bash
# System packages the build and tests need, installed only when missing (Debian).
set -euo pipefail
need=()
command -v python3 >/dev/null || need+=(python3 python3-pip)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v cc >/dev/null || need+=(gcc)
command -v curl >/dev/null || need+=(curl ca-certificates)
# The console's browser test (scripts/test-console.sh).
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: please install: ${need[*]}" >&2
        exit 1
    fi
    apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "install-deps: a Rust toolchain (cargo) is required: https://rustup.rs" >&2
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
