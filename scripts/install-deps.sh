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
# The container image and the Debian package (scripts/container-image.sh, build-deb.sh):
# podman with the runc runtime and slirp4netns, mmdebstrap for the base file system,
# dpkg-shlibdeps and objcopy, docker-compose (v1) to validate packaging/compose.yaml.
# Without recommends: docker-compose would bring a Docker engine.
pack=()
command -v podman >/dev/null || pack+=(podman)
command -v runc >/dev/null || pack+=(runc)
command -v slirp4netns >/dev/null || pack+=(slirp4netns)
command -v mmdebstrap >/dev/null || pack+=(mmdebstrap)
command -v dpkg-shlibdeps >/dev/null || pack+=(dpkg-dev)
command -v objcopy >/dev/null || pack+=(binutils)
command -v docker-compose >/dev/null || pack+=(docker-compose)
if ((${#pack[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: please install: ${pack[*]}" >&2
        exit 1
    fi
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pack[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "install-deps: a Rust toolchain (cargo) is required: https://rustup.rs" >&2
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
