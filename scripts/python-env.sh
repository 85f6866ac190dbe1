#!/usr/bin/env bash
# Create (or reuse) the Python virtualenv for scripts/opencv_baseline.py.
# Idempotent. The venv lives at ${VISAGE_PYENV:-$HOME/.cache/visage/pyenv}.
# All progress goes to stderr; the last line of stdout is the venv's python.
set -euo pipefail

OPENCV_VERSION=4.14.0.94   # latest 4.x on PyPI; 5.0.0.93 also works but warns about its new DNN engine
NUMPY_VERSION=2.3.5

venv="${VISAGE_PYENV:-$HOME/.cache/visage/pyenv}"
py="$venv/bin/python"

if [[ ! -x "$py" ]]; then
    echo "python-env: creating venv at $venv" >&2
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >&2
fi

want="opencv-python-headless==$OPENCV_VERSION numpy==$NUMPY_VERSION"
have="$("$py" -m pip freeze 2>/dev/null | grep -iE '^(opencv-python-headless|numpy)==' | sort -f | tr '\n' ' ' || true)"
if [[ "$have" != "numpy==$NUMPY_VERSION opencv-python-headless==$OPENCV_VERSION " ]]; then
    echo "python-env: installing $want" >&2
    "$py" -m pip install --quiet --disable-pip-version-check $want >&2
else
    echo "python-env: $want already installed" >&2
fi

"$py" -c 'import cv2; cv2.FaceDetectorYN; cv2.FaceRecognizerSF' >&2
echo "$py"
