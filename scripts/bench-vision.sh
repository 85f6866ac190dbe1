#!/usr/bin/env bash
# Side by side, in one run, on the same files and the same models: visage's pipeline
# (`visage bench vision`) and OpenCV's own (FaceDetectorYN + FaceRecognizerSF), both on one
# thread. Prints both summaries and the ratio of mean total time per image (<= 1.0 means
# visage is no slower).   Usage: scripts/bench-vision.sh [FILE...]  (default: fixtures/faces)
set -euo pipefail
cd "$(dirname "$0")/.."
models="${VISAGE_MODELS_DIR:-$PWD/models}"
bin="${CARGO_TARGET_DIR:-target}/release/visage"
if (($#)); then files=("$@"); else files=(fixtures/faces/*.jpg fixtures/faces/*.png); fi
repeat="${REPEAT:-3}"
py="$(scripts/python-env.sh | tail -n 1)"

echo "== visage"
ours="$("$bin" bench vision --models-dir "$models" --repeat "$repeat" "${files[@]}")"
echo "$ours"
echo "== opencv"
theirs="$("$py" scripts/opencv_baseline.py --models "$models" --threads 1 --repeat "$repeat" "${files[@]}")"
echo "$theirs"
a=$(awk '/^mean_total_ms/ {print $2}' <<<"$ours")
b=$(awk '/^mean_total_ms/ {print $2}' <<<"$theirs")
awk -v a="$a" -v b="$b" 'BEGIN { printf "ratio_vs_opencv %.3f (visage %.1f ms / opencv %.1f ms per image)\n", a / b, a, b }'
