#!/usr/bin/env bash
# Builds the visage container image with Debian packages alone, no image registry:
#   scripts/container-image.sh [--smoke] [BINARY]
# 1. the Debian package from BINARY (scripts/build-deb.sh; default
#    ${CARGO_TARGET_DIR:-target}/release/visage);
# 2. the models of ${VISAGE_MODELS_DIR:-models}, checked against models.lock (the face models
#    are required, the liveness pair is taken when present and verified);
# 3. a minimal Debian bookworm root file system made by mmdebstrap from the Debian mirror apt
#    uses, turned by `podman build` into the local base image localhost/debian:bookworm-slim
#    (FROM scratch). It stays in podman's storage as a cache, labelled with the recipe it was
#    made by; VISAGE_REBUILD_BASE=1 makes it again;
# 4. the image from packaging/Containerfile, offline (--network none), tagged
#    localhost/visage:VERSION and localhost/visage:latest (with --smoke: a temporary tag).
# SOURCE_DATE_EPOCH (default: the last commit's time) dates the file system, the package and
# the image, so the same inputs give the same .deb and the same image layers (the image id
# still differs: the docker-format config names the build container). The image id, digest,
# layers and sizes are printed at the end.
# --smoke then starts the image on a fresh volume (slirp4netns, 127.0.0.1 only), waits for
# /readyz, enrols a fixture face and searches it through the published port, runs the image's
# HEALTHCHECK, stops the container (exit code 0 expected) and removes the container, the
# volume and the visage image it built (the base image stays cached); it also installs the
# .deb into a fresh container of the base image and checks `visage --version`, the unit file,
# the user and the state directory, and the unit's systemd exposure score; and validates
# packaging/compose.yaml with docker-compose where it is installed. Unless
# VISAGE_SMOKE_SYSTEMD=0, the package also runs under systemd in a container booting
# /sbin/init (a second cached base image, localhost/visage-test-systemd:bookworm, with systemd
# and curl): models installed as documented, the hardened unit serves an enrol + search, stops
# with status 0, and `dpkg --purge` removes the user and /var/lib/visage.
# Podman runs with a containers.conf of this script's own (CONTAINERS_CONF): the runc runtime,
# cgroupfs without systemd, and ulimits within the current hard limits (no CAP_SYS_RESOURCE).
set -euo pipefail
caller="$PWD"
cd "$(dirname "$0")/.."
# A path given relative to the caller's directory, made absolute.
from_caller() { if [[ "$1" == /* ]]; then echo "$1"; else echo "$caller/$1"; fi; }

smoke=0
bin=""
for arg in "$@"; do
    case "$arg" in
    --smoke) smoke=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "container-image: unknown option $arg" >&2; exit 2 ;;
    *) bin="$(from_caller "$arg")" ;;
    esac
done
bin="${bin:-${CARGO_TARGET_DIR:-target}/release/visage}"
models="models"
if [[ -n "${VISAGE_MODELS_DIR:-}" ]]; then models="$(from_caller "$VISAGE_MODELS_DIR")"; fi
base_image=localhost/debian:bookworm-slim
for tool in podman mmdebstrap dpkg-deb dpkg-shlibdeps objcopy curl python3; do
    command -v "$tool" >/dev/null || {
        echo "container-image: $tool is missing (scripts/install-deps.sh installs it)" >&2
        exit 1
    }
done
[[ -x "$bin" ]] || { echo "container-image: no executable at $bin" >&2; exit 1; }
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
start=$SECONDS
step() { echo "container-image: [$((SECONDS - start)) s] $*" >&2; }

work="$(mktemp -d)"
ctr=""
vol=""
image=""
cleanup() {
    local status=$?
    if [[ -n "$ctr" ]]; then
        if ((status != 0)); then podman logs --tail 40 "$ctr" >&2 2>&1 || true; fi
        podman rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
    fi
    if [[ -n "$vol" ]]; then podman volume rm -f "$vol" >/dev/null 2>&1 || true; fi
    if ((smoke)) && [[ -n "$image" ]]; then podman rmi -f "$image" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

# Podman's configuration for this run only.
nofile="$(ulimit -Hn)"
nproc="$(ulimit -Hu)"
[[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
[[ "$nofile" == unlimited ]] && nofile=1048576
{
    echo '[containers]'
    echo "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
    echo '[engine]'
    if command -v runc >/dev/null; then echo 'runtime = "runc"'; fi
    if [[ ! -d /run/systemd/system ]]; then echo 'cgroup_manager = "cgroupfs"'; fi
    echo 'events_logger = "file"'
} > "$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"

# 1. The Debian package.
step "building the .deb from $bin"
deb="$(scripts/build-deb.sh "$bin" "$work/deb" | tail -n 1)"
version="$("$bin" --version | awk '{print $2}')"

# 2. The models, verified.
step "verifying the models in $models against models.lock"
ctx="$work/context"
mkdir -p "$ctx/models"
sha() { sha256sum "$1" | cut -d' ' -f1; }
while read -r kind file expected _; do
    if [[ -f "$models/$file" && "$(sha "$models/$file")" == "$expected" ]]; then
        install -m 0644 "$models/$file" "$ctx/models/$file"
    elif [[ "$kind" == model ]]; then
        echo "container-image: $models/$file is missing or does not match models.lock (visage models fetch)" >&2
        exit 1
    else
        echo "container-image: no verified $file: the image has no liveness (scripts/fetch-liveness.sh)" >&2
    fi
done < <(grep -E '^(model|liveness) ' models.lock)
# ONNX Runtime's library (`runtime <req> <tag> <platform> <wheel sha> <path> <sha>`): the
# default engine where present; without it the image runs tract.
read -r _ _ _ _ _ ort_path ort_sha < <(grep '^runtime ' models.lock)
ort_file="${ort_path##*/}"
if [[ -f "$models/$ort_file" && "$(sha "$models/$ort_file")" == "$ort_sha" ]]; then
    install -m 0644 "$models/$ort_file" "$ctx/models/$ort_file"
else
    echo "container-image: no verified $ort_file: the image runs the models on tract (visage models fetch)" >&2
fi
liveness=0
if [[ -z "$(grep '^liveness ' models.lock | awk '{print $2}' | while read -r f; do [[ -f "$ctx/models/$f" ]] || echo "$f"; done)" ]]; then
    liveness=1
fi
cp "$deb" "$ctx/visage.deb"
install -m 0755 packaging/container-entrypoint.sh "$ctx/container-entrypoint.sh"

# 3. The base image: a minimal bookworm like debian:bookworm-slim (no docs, man pages or
# locales), merged /usr without the usrmerge package.
if [[ -n "${VISAGE_DEBIAN_MIRROR:-}" ]]; then
    mirror="$VISAGE_DEBIAN_MIRROR"
elif grep -qs '^Suites:.*bookworm' /etc/apt/sources.list.d/debian.sources; then
    mirror=/etc/apt/sources.list.d/debian.sources
else
    mirror=http://deb.debian.org/debian
fi
mmdebstrap_args=(--variant=minbase --mode=root --format=tar
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --aptopt='Acquire::Languages "none"'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright')
# base_image NAME [MMDEBSTRAP_ARGS...]: makes the image NAME from a bookworm root file system,
# unless one made by the same recipe is cached.
base_image() {
    local name="$1" recipe have old
    shift
    recipe="$(printf '%s\n' "${mmdebstrap_args[@]}" "$@" bookworm | sha256sum | cut -c1-16)"
    have="$(podman image inspect --format '{{index .Labels "org.visage.base.recipe"}}' "$name" 2>/dev/null || true)"
    if [[ "$have" == "$recipe" && "${VISAGE_REBUILD_BASE:-0}" != 1 ]]; then
        step "reusing the cached base image $name (VISAGE_REBUILD_BASE=1 makes it again)"
        return
    fi
    step "making the bookworm root file system of $name with mmdebstrap (mirror: $mirror)"
    rm -rf "$work/base" && mkdir -p "$work/base"
    mmdebstrap "${mmdebstrap_args[@]}" "$@" bookworm "$work/base/rootfs.tar" "$mirror" 2> "$work/mmdebstrap.log" \
        || { tail -n 30 "$work/mmdebstrap.log" >&2; exit 1; }
    step "root file system: $(du -h "$work/base/rootfs.tar" | cut -f1), sha256 $(sha "$work/base/rootfs.tar")"
    printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' > "$work/base/Containerfile"
    old="$(podman image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)"
    podman build --quiet --network none --pull=never --layers=false --timestamp "$SOURCE_DATE_EPOCH" \
        --label "org.visage.base.recipe=$recipe" -t "$name" "$work/base" > /dev/null
    rm -rf "$work/base"
    # The image it replaces, now untagged (kept if a container or image still uses it).
    if [[ -n "$old" && "$old" != "$(podman image inspect --format '{{.Id}}' "$name")" ]]; then
        podman rmi "$old" > /dev/null 2>&1 || true
    fi
}
base_image "$base_image"

# 4. The image.
if ((smoke)); then
    image="localhost/visage:smoke-$$"
    tags=(-t "$image")
else
    image="localhost/visage:$version"
    tags=(-t "$image" -t localhost/visage:latest)
fi
step "building $image (offline)"
podman build --quiet --network none --pull=never --format docker --layers=false \
    --timestamp "$SOURCE_DATE_EPOCH" --build-arg "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH" \
    --build-arg "BASE=$base_image" \
    -f packaging/Containerfile "${tags[@]}" "$ctx" > /dev/null
id="$(podman image inspect --format '{{.Id}}' "$image")"
digest="$(podman image inspect --format '{{.Digest}}' "$image")"
size="$(podman image inspect --format '{{.Size}}' "$image")"
base_size="$(podman image inspect --format '{{.Size}}' "$base_image")"
podman save --quiet --compress --format docker-dir -o "$work/layers" "$image"
compressed="$(du -sb "$work/layers" | cut -f1)"
rm -rf "$work/layers"
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
echo "image: $image"
echo "image id: sha256:$id"
echo "image digest: $digest"
# The layers are the reproducible part: the docker-format config (needed for HEALTHCHECK)
# also records the build container's id and host name, so the image id differs per build.
echo "image layers: $(podman image inspect --format '{{range .RootFS.Layers}}{{.}} {{end}}' "$image")"
echo "image size: $(mb "$size") unpacked, $(mb "$compressed") compressed (gzip layers); base $(mb "$base_size")"
echo "liveness models in the image: $([[ $liveness == 1 ]] && echo yes || echo no)"
echo "deb: $(basename "$deb") $(mb "$(stat -c %s "$deb")"), sha256 $(sha "$deb")"
step "built"

if ((smoke == 0)); then
    exit 0
fi

# The smoke test: a container on a fresh volume, enrol + search through the published port.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ctr="visage-smoke-$$"
vol="visage-smoke-$$"
podman volume create "$vol" > /dev/null
# The JWT secret from a file, as compose.yaml gives it (a secret mounted read-only): the
# server and `visage token create` through `podman exec` must both read it (the image's
# /usr/local/bin/visage wrapper), or the token is refused.
head -c 48 /dev/urandom | base64 -w0 > "$work/jwt-secret"
chmod 0644 "$work/jwt-secret"
# No health-check timer (it needs systemd): the HEALTHCHECK is run once by hand below.
podman run -d --name "$ctr" --health-interval disable --network slirp4netns \
    -p "127.0.0.1:$port:8080" -v "$vol:/data" -v "$work/jwt-secret:/run/secrets/jwt-secret:ro" \
    -e VISAGE_JWT_SECRET_FILE=/run/secrets/jwt-secret "$image" > /dev/null 2> "$work/podman.log" \
    || { cat "$work/podman.log" >&2; exit 1; }
base="http://127.0.0.1:$port"
step "container $ctr started; waiting for $base/readyz"
for _ in $(seq 1 120); do
    if curl -fsS -m 2 "$base/readyz" > /dev/null 2>&1; then break; fi
    if [[ "$(podman inspect --format '{{.State.Running}}' "$ctr")" != true ]]; then
        echo "container-image: the container stopped before it was ready" >&2
        exit 1
    fi
    sleep 0.5
done
curl -fsS -m 2 "$base/readyz" > /dev/null || { echo "container-image: /readyz never answered 200" >&2; exit 1; }
step "ready"
# The engine the server chose: ONNX Runtime when its library went into the image.
engine="$(podman logs "$ctr" 2>&1 | sed -n 's/.*inference engine: \(.*\)/\1/p' | head -n 1)"
step "engine: ${engine:-not logged}"
if [[ -f "$ctx/models/$ort_file" && "$engine" != *"ONNX Runtime from"* ]]; then
    echo "container-image: ONNX Runtime is in the image but the server did not run it" >&2
    exit 1
fi

token="$(podman exec "$ctr" visage token create --client smoke --ttl 1h)"
api="$base/v2/face-recognition"
post() { # post PATH JSON_FILE -> body on stdout; a status other than 200 fails
    local out status
    out="$work/response.json"
    status="$(curl -sS -m 60 -o "$out" -w '%{http_code}' -X POST "$api$1" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' --data-binary "@$2")"
    if [[ "$status" != 200 ]]; then
        echo "container-image: POST $1 answered $status: $(head -c 500 "$out")" >&2
        return 1
    fi
    cat "$out"
}
field() { python3 -c 'import json, sys; v = json.load(sys.stdin); exec("print(" + sys.argv[1] + ")")' "$1"; }

echo '{"name": "smoke", "description": "container smoke test"}' > "$work/collection.json"
collection="$(post /collections "$work/collection.json" | field 'v["data"]["_id"]')"
printf '{"name":"Barack Obama","collections":["%s"],"images":["%s"]}' \
    "$collection" "$(base64 -w0 fixtures/faces/obama.jpg)" > "$work/person.json"
person="$(post /persons "$work/person.json" | field 'v["data"]["_id"]')"
printf '{"images":["%s"],"min_score":0.81,"search_mode":"ACCURATE"}' \
    "$(base64 -w0 fixtures/faces/obama2.jpg)" > "$work/probe.json"
found="$(post /search "$work/probe.json" | field '" ".join([v["data"][0]["_id"], v["data"][0]["name"].replace(" ", "_"), "%.3f" % v["data"][0]["score"]]) if v["data"] else "none"')"
read -r found_id found_name found_score <<< "$found"
if [[ "$found_id" != "$person" || "$found_name" != Barack_Obama ]]; then
    echo "container-image: the search found '$found', not the enrolled person $person" >&2
    exit 1
fi
step "enrolled fixtures/faces/obama.jpg as $person; obama2.jpg found it (score $found_score)"
if ((liveness)); then
    printf '{"os":"IOS","image":"%s"}' "$(base64 -w0 fixtures/liveness/image_F2.jpg)" > "$work/live.json"
    step "liveness answered: score $(post /liveness "$work/live.json" | field '"%.4f" % v["data"]["liveness_score"]')"
fi
podman healthcheck run "$ctr" > /dev/null || { echo "container-image: the image's HEALTHCHECK failed" >&2; exit 1; }
step "HEALTHCHECK healthy"
podman stop -t 30 "$ctr" > /dev/null 2> "$work/podman.log" || { cat "$work/podman.log" >&2; exit 1; }
code="$(podman inspect --format '{{.State.ExitCode}}' "$ctr")"
[[ "$code" == 0 ]] || { echo "container-image: the server exited with $code on SIGTERM" >&2; exit 1; }
podman rm "$ctr" > /dev/null 2> "$work/podman.log" && ctr=""
podman volume rm "$vol" > /dev/null && vol=""
step "container stopped (exit 0) and removed with its volume"

# The package alone in a fresh container of the base image.
step "installing the .deb into a fresh $base_image container"
podman run --rm --network none -v "$deb:/tmp/visage.deb:ro" "$base_image" bash -euo pipefail -c '
    dpkg -i /tmp/visage.deb > /tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
    grep -q "visage models fetch" /tmp/dpkg.log   # postinst told how to get the models
    visage --version
    test -f /lib/systemd/system/visage.service
    test -f /etc/default/visage
    getent passwd visage > /dev/null
    test "$(stat -c "%U %a" /var/lib/visage)" = "visage 700"
    dpkg -s visage | grep -q "^Status: install ok installed"
' | sed 's/^/container-image: (deb) /' >&2
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$work/debroot"
    dpkg-deb -x "$deb" "$work/debroot"
    # --threshold is in tenths: 30 = an exposure level of 3.0 ("OK" ends at 3.9).
    exposure="$(systemd-analyze security --offline=yes --threshold=30 \
        "$work/debroot/lib/systemd/system/visage.service" 2>&1 | tail -n 1)" \
        || { echo "container-image: the unit's exposure is above 3: $exposure" >&2; exit 1; }
    step "unit: ${exposure#→ }"
fi
# The package under a real systemd (a container booting /sbin/init): the documented steps,
# the hardened unit serving an enrol + search, a clean stop, and a purge.
# VISAGE_SMOKE_SYSTEMD=0 skips it.
if [[ "${VISAGE_SMOKE_SYSTEMD:-1}" != 0 ]]; then
    systemd_image=localhost/visage-test-systemd:bookworm
    base_image "$systemd_image" --include=systemd,systemd-sysv,curl
    cp fixtures/faces/obama.jpg fixtures/faces/obama2.jpg "$work/"
    ctr="visage-systemd-$$"
    podman run -d --name "$ctr" --systemd=always --network none -v "$deb:/tmp/visage.deb:ro" \
        -v "$ctx/models:/tmp/models:ro" -v "$work/obama.jpg:/tmp/a.jpg:ro" \
        -v "$work/obama2.jpg:/tmp/b.jpg:ro" "$systemd_image" /sbin/init > /dev/null 2> "$work/podman.log" \
        || { cat "$work/podman.log" >&2; exit 1; }
    podman exec "$ctr" bash -euo pipefail -c '
        for _ in $(seq 1 60); do
            state="$(systemctl is-system-running 2>/dev/null || true)"
            [[ "$state" == running || "$state" == degraded ]] && break
            sleep 0.5
        done
        dpkg -i /tmp/visage.deb > /tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
        runuser -u visage -- visage models fetch --models-dir /var/lib/visage/models --from /tmp/models > /dev/null
        cp /tmp/models/*MiniFASNet*.onnx /var/lib/visage/models/ 2> /dev/null || true
        systemctl enable --now visage 2> /dev/null
        for _ in $(seq 1 120); do
            curl -fsS -m 2 http://127.0.0.1:8080/readyz > /dev/null 2>&1 && break
            systemctl is-failed --quiet visage && { journalctl -u visage --no-pager | tail -n 20; exit 1; }
            sleep 0.5
        done
        token="$(runuser -u visage -- visage token create --data-dir /var/lib/visage/data --client smoke --ttl 1h)"
        api=http://127.0.0.1:8080/v2/face-recognition
        call() { curl -fsS -m 60 -X POST "$api$1" -H "Authorization: Bearer $token" -H "Content-Type: application/json" --data-binary "@$2"; }
        echo "{\"name\": \"smoke\"}" > /tmp/c.json
        collection="$(call /collections /tmp/c.json | grep -o "\"_id\":\"[0-9a-f]*\"" | head -n 1 | cut -d\" -f4)"
        printf "{\"name\":\"Barack Obama\",\"collections\":[\"%s\"],\"images\":[\"%s\"]}" "$collection" "$(base64 -w0 /tmp/a.jpg)" > /tmp/p.json
        call /persons /tmp/p.json > /dev/null
        printf "{\"images\":[\"%s\"],\"min_score\":0.81,\"search_mode\":\"ACCURATE\"}" "$(base64 -w0 /tmp/b.jpg)" > /tmp/q.json
        call /search /tmp/q.json > /tmp/found.json
        grep -q "\"name\":\"Barack Obama\"" /tmp/found.json || { echo "search found: $(head -c 300 /tmp/found.json)"; exit 1; }
        pid="$(systemctl show -p MainPID --value visage)"
        echo "served by the unit as user $(stat -c %U "/proc/$pid"), $(grep -E "^(NoNewPrivs|Seccomp):" "/proc/$pid/status" | tr -s "\t\n" "  ")"
        systemctl stop visage
        [[ "$(systemctl show -p Result --value visage)" == success ]]
        [[ "$(systemctl show -p ExecMainStatus --value visage)" == 0 ]]
        dpkg --purge visage > /dev/null 2>&1
        if getent passwd visage > /dev/null || [[ -e /var/lib/visage ]]; then echo "purge left the user or /var/lib/visage"; exit 1; fi
        echo "enrol + search through the unit, stopped cleanly, purged"
    ' | sed 's/^/container-image: (systemd) /' >&2
    podman rm -f -t 0 "$ctr" > /dev/null 2>&1 && ctr=""
fi
if command -v docker-compose >/dev/null; then
    docker-compose -f packaging/compose.yaml --profile postgres config -q
    step "packaging/compose.yaml is valid (docker-compose config; not run: its images come from a registry)"
fi
step "smoke test passed"
