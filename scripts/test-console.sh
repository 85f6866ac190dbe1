#!/usr/bin/env bash
# The web console in headless Chromium (scripts/test-console.py) against a real server on a
# free loopback port with a fresh data directory. Builds nothing:
#
#   scripts/test-console.sh target/release/visage
#
# Needs chromium and chromium-driver (scripts/install-deps.sh installs them) and selenium
# (scripts/python-env.sh). Screenshots go to $VISAGE_CONSOLE_SCREENSHOTS (docs/console).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ $# -ne 1 || ! -x "$1" ]]; then
    echo "usage: $0 path/to/visage (a built binary)" >&2
    exit 2
fi
bin="$(realpath "$1")"
models="${VISAGE_MODELS_DIR:-$root/models}"
screenshots="${VISAGE_CONSOLE_SCREENSHOTS:-$root/docs/console}"
py="$("$root/scripts/python-env.sh" | tail -n 1)"

work="$(mktemp -d "${TMPDIR:-/tmp}/visage-console.XXXXXX")"
# shellcheck source=scripts/lib/server.sh
source "$root/scripts/lib/server.sh"
trap 'stop_server; rm -rf "$work"' EXIT
VISAGE_MODELS_DIR="$models" start_server "$bin" "$work"

VISAGE_CONSOLE_TOKEN="$(env -u VISAGE_JWT_SECRET "$bin" token create --data-dir "$work/data" --client console-test --ttl 1h)"
export VISAGE_CONSOLE_TOKEN
if ! "$py" "$root/scripts/test-console.py" --url "$url" --fixtures "$root/fixtures/faces" --screenshots "$screenshots"; then
    echo "test-console: the server's log:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
