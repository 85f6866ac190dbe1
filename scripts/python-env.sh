#!/usr/bin/env bash
# Create (or reuse) the Python virtualenv for scripts/opencv_baseline.py, the
# liveness converter (scripts/liveness_convert.py, scripts/test_liveness_convert.py)
# the FAISS index baseline (scripts/faiss_bench.py) and the console's browser test
# (scripts/test-console.py, selenium).
# Idempotent. The venv lives at ${VISAGE_PYENV:-$HOME/.cache/visage/pyenv}.
# All progress goes to stderr; the last line of stdout is the venv's python.
set -euo pipefail

OPENCV_VERSION=5.0.0.93   # the current wheel (issue 17 measures against OpenCV 5.0); prints notices about its new DNN engine
NUMPY_VERSION=2.3.5
ONNX_VERSION=1.23.2        # latest onnx on PyPI that installs here (builds the converted liveness graphs)
ONNXRUNTIME_VERSION=1.31.1 # oracle runtime for scripts/test_liveness_convert.py
FAISS_VERSION=1.15.1       # faiss-cpu, baseline for `visage bench index` (scripts/faiss_bench.py)
SELENIUM_VERSION=4.51.0    # drives chromium in scripts/test-console.py (4.52 needs a newer certifi than PyPI has)

venv="${VISAGE_PYENV:-$HOME/.cache/visage/pyenv}"
py="$venv/bin/python"

if [[ ! -x "$py" ]]; then
    echo "python-env: creating venv at $venv" >&2
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >&2
fi

want="opencv-python-headless==$OPENCV_VERSION numpy==$NUMPY_VERSION onnx==$ONNX_VERSION onnxruntime==$ONNXRUNTIME_VERSION faiss-cpu==$FAISS_VERSION selenium==$SELENIUM_VERSION"
have="$("$py" -m pip freeze 2>/dev/null | grep -iE '^(opencv-python-headless|numpy|onnx|onnxruntime|faiss-cpu|selenium)==' | LC_ALL=C sort -f | tr '\n' ' ' || true)"
expect="faiss-cpu==$FAISS_VERSION numpy==$NUMPY_VERSION onnx==$ONNX_VERSION onnxruntime==$ONNXRUNTIME_VERSION opencv-python-headless==$OPENCV_VERSION selenium==$SELENIUM_VERSION "
if [[ "$have" != "$expect" ]]; then
    echo "python-env: installing $want" >&2
    "$py" -m pip install --quiet --disable-pip-version-check $want >&2
else
    echo "python-env: $want already installed" >&2
fi

"$py" -c 'import cv2; cv2.FaceDetectorYN; cv2.FaceRecognizerSF; import onnx, onnxruntime; import faiss; import selenium' >&2
echo "$py"
