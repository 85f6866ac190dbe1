#!/usr/bin/env bash
# Obtain the liveness models (see the `liveness` lines of models.lock): for each, the upstream
# .pth is taken from the models directory, else from a mirror directory ($1 or
# $VISAGE_MODELS_MIRROR), else downloaded at the pinned commit; its sha256 is checked; it is
# converted to ONNX with scripts/liveness_convert.py (numpy + onnx, no torch) and the ONNX
# sha256 is checked too. Installs into ${VISAGE_MODELS_DIR:-./models}.
# Liveness is optional: when a model cannot be obtained this says so and exits 1; the server
# still runs without it (its liveness endpoints answer 501).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${VISAGE_MODELS_DIR:-models}"
mirror="${1:-${VISAGE_MODELS_MIRROR:-}}"
mkdir -p "$dir"
sha() { sha256sum "$1" | cut -d' ' -f1; }
py=""
status=0
while read -r _ onnx onnx_sha pth pth_sha url; do
    if [[ -f "$dir/$onnx" && "$(sha "$dir/$onnx")" == "$onnx_sha" ]]; then
        echo "fetch-liveness: $onnx present and verified" >&2
        continue
    fi
    work="$(mktemp -d)"
    src=""
    for candidate in "$dir/$pth" ${mirror:+"$mirror/$pth"}; do
        if [[ -f "$candidate" && "$(sha "$candidate")" == "$pth_sha" ]]; then src="$candidate"; break; fi
    done
    if [[ -z "$src" ]]; then
        if curl -fsSL --retry 2 --max-time 120 -o "$work/$pth" "$url" 2>/dev/null \
            && [[ "$(sha "$work/$pth")" == "$pth_sha" ]]; then
            src="$work/$pth"
        else
            echo "fetch-liveness: cannot obtain $pth (no verified copy in $dir${mirror:+ or $mirror}, download failed or mismatched)" >&2
            status=1; rm -rf "$work"; continue
        fi
    fi
    [[ -n "$py" ]] || py="$(scripts/python-env.sh | tail -n 1)"
    "$py" scripts/liveness_convert.py "$src" "$work/$onnx" >&2
    if [[ "$(sha "$work/$onnx")" != "$onnx_sha" ]]; then
        echo "fetch-liveness: converted $onnx has sha256 $(sha "$work/$onnx"), models.lock expects $onnx_sha" >&2
        status=1; rm -rf "$work"; continue
    fi
    mv "$work/$onnx" "$dir/$onnx.partial" && sync "$dir/$onnx.partial" && mv "$dir/$onnx.partial" "$dir/$onnx"
    echo "fetch-liveness: installed $onnx (from $src)" >&2
    rm -rf "$work"
done < <(grep '^liveness ' models.lock)
exit "$status"
