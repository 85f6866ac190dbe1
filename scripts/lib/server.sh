# shellcheck shell=bash
# Sourced by scripts that run a throw-away `visage serve` (test-console.sh, bench-enrol.sh):
#   start_server BINARY WORK_DIR [SERVE ARGS...]
# starts it on a free loopback port with WORK_DIR/data and the models of
# ${VISAGE_MODELS_DIR:-models}, logging to WORK_DIR/server.log; sets `server` (its pid)
# and `url` once it listens, or prints the log and exits 1. stop_server ends it.

start_server() {
    local bin="$1" work="$2"
    shift 2
    env -u VISAGE_JWT_SECRET -u VISAGE_DATABASE_URL RUST_LOG=info \
        "$bin" serve --port 0 --data-dir "$work/data" --models-dir "${VISAGE_MODELS_DIR:-models}" \
        "$@" 2>"$work/server.log" &
    server=$!
    url=""
    for _ in $(seq 1 1200); do
        url="$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/server.log" | head -n 1)"
        [[ -n "$url" ]] && return 0
        if ! kill -0 "$server" 2>/dev/null; then
            echo "the server exited before listening:" >&2
            cat "$work/server.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "the server did not listen within 120 s" >&2
    exit 1
}

stop_server() {
    if [[ -n "${server:-}" ]] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server"
        wait "$server" || true
    fi
}
