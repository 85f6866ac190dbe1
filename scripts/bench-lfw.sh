#!/usr/bin/env bash
# visage and OpenCV's own pipeline (scripts/opencv_lfw.py: FaceDetectorYN at image size +
# FaceRecognizerSF, one process per core) on the same LFW View-2 pairs, in one run, each as
# a whole process on all cores: wall time, images/s, accuracy, and the ratio of wall times
# (<= 1.0: visage is no slower).
#   scripts/bench-lfw.sh [FOLDS] [VISAGE ARGS...]   (default: the first 2 folds of pairs-dev.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
folds="${1:-2}"
shift || true
lfw="${VISAGE_LFW_DIR:-../shared/datasets/lfw}"
models="${VISAGE_MODELS_DIR:-$PWD/models}"
bin="${VISAGE_BIN:-${CARGO_TARGET_DIR:-target}/release/visage}"
py="$(scripts/python-env.sh | tail -n 1)"

work="$(mktemp -d "${TMPDIR:-/tmp}/visage-bench-lfw.XXXXXX")"
trap 'rm -rf "$work"' EXIT
read -r total per_fold < "$lfw/pairs-dev.txt"
if ((folds < 1 || folds > total)); then
    echo "bench-lfw: FOLDS must be 1-$total" >&2
    exit 2
fi
{ printf '%s\t%s\n' "$folds" "$per_fold"; tail -n +2 "$lfw/pairs-dev.txt" | head -n $((folds * per_fold * 2)); } > "$work/pairs.txt"

now() { date +%s.%N; }
echo "== visage ($folds folds of pairs-dev.txt)"
t0="$(now)"
"$bin" eval lfw --dataset "$lfw" --pairs "$work/pairs.txt" --models-dir "$models" "$@" 2>"$work/visage.err" > "$work/visage.out"
t1="$(now)"
grep -E '^(engine|lfw|fold|accuracy |no_face|images_per_s)' "$work/visage.out" "$work/visage.err" | sed 's/^[^:]*://'
echo "== opencv"
t2="$(now)"
"$py" scripts/opencv_lfw.py --models "$models" --dataset "$lfw" --pairs "$work/pairs.txt" > "$work/opencv.out"
t3="$(now)"
cat "$work/opencv.out"
acc_v="$(awk '/^accuracy / {print $2}' "$work/visage.out")"
acc_o="$(awk '/^accuracy / {print $2}' "$work/opencv.out")"
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v av="$acc_v" -v ao="$acc_o" 'BEGIN {
    printf "visage_seconds %.1f\nopencv_seconds %.1f\nratio_vs_opencv %.3f\naccuracy_visage %s\naccuracy_opencv %s\n",
        b - a, d - c, (b - a) / (d - c), av, ao }'
