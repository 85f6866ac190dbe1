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
server=""
stop() {
    if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server"
        wait "$server" || true
    fi
    rm -rf "$work"
}
trap stop EXIT

env -u VISAGE_JWT_SECRET -u VISAGE_DATABASE_URL RUST_LOG=info \
    "$bin" serve --port 0 --data-dir "$work/data" --models-dir "$models" 2>"$work/server.log" &
server=$!
url=""
for _ in $(seq 1 1200); do
    url="$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/server.log" | head -n 1)"
    [[ -n "$url" ]] && break
    if ! kill -0 "$server" 2>/dev/null; then
        echo "test-console: the server exited before listening:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$url" ]]; then
    echo "test-console: the server did not listen within 120 s" >&2
    exit 1
fi

VISAGE_CONSOLE_TOKEN="$(env -u VISAGE_JWT_SECRET "$bin" token create --data-dir "$work/data" --client console-test --ttl 1h)"
export VISAGE_CONSOLE_TOKEN
if ! "$py" "$root/scripts/test-console.py" --url "$url" --fixtures "$root/fixtures/faces" --screenshots "$screenshots"; then
    echo "test-console: the server's log:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
