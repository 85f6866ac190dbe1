#!/usr/bin/env bash
# Install (or reuse) ONNX Runtime's shared library for visage's optional `ort` back-end
# (`cargo build --features ort`). The library comes from the PyPI `onnxruntime` wheel,
# pip-installed into the venv made by scripts/python-env.sh; nothing is downloaded at build
# time. Idempotent. All progress goes to stderr; the last line of stdout is the absolute
# path of libonnxruntime.so*, to be exported as ORT_DYLIB_PATH:
#   export ORT_DYLIB_PATH="$(scripts/onnxruntime.sh | tail -n 1)"
set -euo pipefail
cd "$(dirname "$0")/.."

# ort 2.0.0-rc.15 (crates/vision/Cargo.toml) targets ONNX Runtime API 1.31 and refuses
# older libraries; keep these two in step.
ONNXRUNTIME_VERSION=1.31.1

py="$(scripts/python-env.sh | tail -n 1)"

have="$("$py" -m pip freeze 2>/dev/null | grep -iE '^onnxruntime==' || true)"
if [[ "$have" != "onnxruntime==$ONNXRUNTIME_VERSION" ]]; then
    echo "onnxruntime: installing onnxruntime==$ONNXRUNTIME_VERSION" >&2
    "$py" -m pip install --quiet --disable-pip-version-check "onnxruntime==$ONNXRUNTIME_VERSION" >&2
else
    echo "onnxruntime: onnxruntime==$ONNXRUNTIME_VERSION already installed" >&2
fi

capi="$("$py" -c 'import os, onnxruntime; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')"
lib="$(find "$capi" -maxdepth 1 -name 'libonnxruntime.so*' -type f | sort | tail -n 1)"
if [[ -z "$lib" ]]; then
    echo "onnxruntime: no libonnxruntime.so* under $capi" >&2
    exit 1
fi
echo "onnxruntime: $lib" >&2
realpath "$lib"
