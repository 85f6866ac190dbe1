#!/usr/bin/env bash
# Side by side, in one run, on the same files and the same models: visage's pipeline
# (`visage bench vision`) and OpenCV's own (FaceDetectorYN + FaceRecognizerSF, the wheel
# pinned in scripts/python-env.sh), both on one thread, on two sets: the fixtures (or the
# FILEs given) and the first 200 images of LFW's pairs-dev.txt (250x250 photos). Prints both
# summaries and, per set, the ratio of mean total time per image (<= 1.0 means visage is no
# slower).   Usage: scripts/bench-vision.sh [FILE...]   (VISAGE_LFW_DIR, REPEAT)
set -euo pipefail
cd "$(dirname "$0")/.."
models="${VISAGE_MODELS_DIR:-$PWD/models}"
bin="${VISAGE_BIN:-${CARGO_TARGET_DIR:-target}/release/visage}"
lfw="${VISAGE_LFW_DIR:-../shared/datasets/lfw}"
if (($#)); then files=("$@"); else files=(fixtures/faces/*.jpg fixtures/faces/*.png); fi
repeat="${REPEAT:-3}"
py="$(scripts/python-env.sh | tail -n 1)"
# The same 200 LFW images `visage bench vision --lfw` takes: the pairs' images, once each,
# in path order (component by component, as Rust orders paths).
mapfile -t lfw_files < <("$py" - "$lfw" <<'PY'
import os, sys
sys.path.insert(0, "scripts")
from opencv_lfw import read_pairs
root = sys.argv[1]
_, pairs = read_pairs(os.path.join(root, "pairs-dev.txt"), root)
paths = {p for a, b, _ in pairs for p in (a, b)}
for path in sorted(paths, key=lambda s: s.split("/"))[:200]:
    print(path)
PY
)

echo "== visage"
ours="$("$bin" bench vision --models-dir "$models" --repeat "$repeat" --lfw "$lfw" --lfw-images "${#lfw_files[@]}" "${files[@]}")"
echo "$ours"
opencv() { "$py" scripts/opencv_baseline.py --models "$models" --threads 1 --repeat "$repeat" "$@" 2>/dev/null; }
echo "== opencv (files)"
theirs="$(opencv "${files[@]}")"
echo "$theirs"
echo "== opencv (lfw)"
theirs_lfw="$(opencv "${lfw_files[@]}")"
echo "$theirs_lfw"
ratio() {
    awk -v set="$1" -v a="$2" -v b="$3" 'BEGIN {
        printf "%s_ratio_vs_opencv %.3f (visage %.1f ms / opencv %.1f ms per image, one thread)\n", set, a / b, a, b }'
}
ratio files "$(awk '/^mean_total_ms/ {print $2}' <<<"$ours")" "$(awk '/^mean_total_ms/ {print $2}' <<<"$theirs")"
ratio lfw "$(awk '/^lfw_mean_total_ms/ {print $2}' <<<"$ours")" "$(awk '/^mean_total_ms/ {print $2}' <<<"$theirs_lfw")"
