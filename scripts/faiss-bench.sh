#!/usr/bin/env bash
# Run scripts/faiss_bench.py (the FAISS baseline for `visage bench index`) in the venv
# from scripts/python-env.sh. Arguments pass through; the last stdout line is the JSON.
#   Usage: scripts/faiss-bench.sh --base base.f32 --queries queries.f32 [--dim 128] [...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="$("$here/python-env.sh" | tail -n 1)"
exec "$py" "$here/faiss_bench.py" "$@"
