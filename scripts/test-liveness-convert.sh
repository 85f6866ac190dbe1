#!/usr/bin/env bash
# Check scripts/liveness_convert.py (MiniFASNet .pth -> ONNX, no torch) against the reference
# conversions: scripts/test_liveness_convert.py, run with the venv from scripts/python-env.sh.
#   scripts/test-liveness-convert.sh [MODELS_DIR]
# MODELS_DIR (default ../shared/models/liveness from the repo root) holds each *.pth beside its
# reference *.onnx; the fixture images are read from MODELS_DIR/../../fixtures/liveness.
# Exits non-zero on any failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/../shared/models/liveness}"
py="$("$root/scripts/python-env.sh" | tail -n 1)"
exec "$py" "$root/scripts/test_liveness_convert.py" "$dir" "${@:2}"
