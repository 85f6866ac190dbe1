#!/usr/bin/env bash
# What a large gallery adds to a whole `POST /search`: one server on the embedded store, with
# two clients: `large` holding N synthetic faces (default 10^6, `visage bench index --export`
# + `visage import`) and `small` holding the first 10 of them. Both are searched with the same
# probe photo in pairs (one request each, in random order, one at a time), so that the two
# see the same process and machine and differ only in the gallery searched. The face
# pipeline's own spread (several ms a request) is larger than what the gallery adds, so the
# table gives, per mode and min_score, each client's p50 and the median and mean of the
# pairs' differences (large minus small) with the mean's 95 % interval; the `added_ms_*` lines
# are the means (the pipeline's times have more than one mode, which can throw the median of
# the differences several ms either way).
#   Usage: scripts/bench-search-http.sh [N]     (REQUESTS=300 pairs per setting,
#                                                 EF_SEARCH=N to fix FAST's width; by
#                                                 default the server's own, 640 at 10^6)
# The server starts without a snapshot, so it first builds its search graph in the background
# (as after a crash); the requests start once the log says the graph is up to date, and the
# script prints how long that took. VISAGE_BIN names another binary; the probe is
# fixtures/faces/obama.jpg.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
requests="${REQUESTS:-300}"
ef_search=()
if [ -n "${EF_SEARCH:-}" ]; then ef_search=(--ef-search "$EF_SEARCH"); fi
bin="${VISAGE_BIN:-${CARGO_TARGET_DIR:-target}/release/visage}"
models="${VISAGE_MODELS_DIR:-models}"
work="$(mktemp -d)"
pid=""
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$work"' EXIT

"$bin" bench index --n "$n" --queries 10 --export "$work/gallery.f32" >/dev/null
head -c $((10 * 128 * 4)) "$work/gallery.f32" > "$work/small.f32"
"$bin" import --data-dir "$work/data" --client large --embeddings "$work/gallery.f32"
"$bin" import --data-dir "$work/data" --client small --embeddings "$work/small.f32"
rm -f "$work/gallery.f32"
large_token="$("$bin" token create --data-dir "$work/data" --client large --ttl 1h)"
small_token="$("$bin" token create --data-dir "$work/data" --client small --ttl 1h)"

port=$((20000 + RANDOM % 20000))
"$bin" serve --data-dir "$work/data" --port "$port" --models-dir "$models" \
    "${ef_search[@]}" --rate-limit 1000000000 --rate-burst 1000000000 \
    >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 3000); do grep -q "search graph up to date" "$work/log" && break; sleep 1; done
grep "search graph up to date" "$work/log" | sed 's/\x1b\[[0-9;]*m//g' | tail -1 \
    || { echo "the server's graph was not built within 50 minutes" >&2; exit 1; }

python3 - "$port" "$large_token" "$small_token" "$requests" "$n" <<'PY'
import base64, http.client, json, random, statistics, sys, time

port, large_token, small_token, requests, n = sys.argv[1:6]
requests = int(requests)
probe = base64.b64encode(open("fixtures/faces/obama.jpg", "rb").read()).decode()
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
tokens = {"large": large_token, "small": small_token}

def search(client, mode, min_score):
    body = json.dumps({"images": [probe], "min_score": min_score, "search_mode": mode})
    t = time.perf_counter()
    conn.request("POST", "/v2/face-recognition/search", body,
                 {"Authorization": f"Bearer {tokens[client]}",
                  "Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    ms = (time.perf_counter() - t) * 1000
    if resp.status != 200:
        sys.exit(f"{client} {mode} {min_score}: HTTP {resp.status} {data[:200]!r}")
    return ms

print(f"POST /search, one probe photo, {requests} pairs of requests per setting")
print("mode\tmin_score\tlarge_p50_ms\tsmall_p50_ms\tadded_median_ms\tadded_mean_ms\tadded_mean_95pct")
rng = random.Random(7)
for mode in ("FAST", "ACCURATE"):
    for min_score in (0.2, 0.81):
        for client in tokens:  # warm-up
            for _ in range(5):
                search(client, mode, min_score)
        times = {"large": [], "small": []}
        for _ in range(requests):
            for client in rng.sample(list(tokens), 2):
                times[client].append(search(client, mode, min_score))
        added = [a - b for a, b in zip(times["large"], times["small"])]
        mean = statistics.fmean(added)
        half = 1.96 * statistics.stdev(added) / len(added) ** 0.5
        print(f"{mode}\t{min_score}\t{statistics.median(times['large']):.1f}\t"
              f"{statistics.median(times['small']):.1f}\t{statistics.median(added):+.2f}\t"
              f"{mean:+.2f}\t{mean - half:+.2f}..{mean + half:+.2f}")
        print(f"added_ms_{mode.lower()}_{str(min_score).replace('.', '_')} {mean:.2f}")
print(f"large_gallery_faces {n}")
PY
