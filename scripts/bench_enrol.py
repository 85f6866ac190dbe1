#!/usr/bin/env python3
"""Enrolment over HTTP against a running visage: N persons (one LFW image each) sent by
CONCURRENCY clients, then a burst of BURST enrolments all at once; prints persons/s, the
latency p50/p95, and the server's resident memory (VmRSS of --pid) at start, after the
steady run and after the burst.

    python3 scripts/bench_enrol.py --url URL --token TOKEN --pid PID --lfw DIR
"""

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def images(lfw, count):
    """The first image of each of the first `count` people, in name order."""
    out = []
    for name in sorted(os.listdir(lfw)):
        folder = os.path.join(lfw, name)
        if not os.path.isdir(folder):
            continue
        first = sorted(f for f in os.listdir(folder) if f.endswith(".jpg"))[:1]
        if first:
            with open(os.path.join(folder, first[0]), "rb") as f:
                out.append((name.replace("_", " "), base64.b64encode(f.read()).decode()))
        if len(out) == count:
            break
    return out


def enrol(url, token, person):
    name, image = person
    body = json.dumps({"name": name, "images": [image]}).encode()
    request = urllib.request.Request(
        f"{url}/v2/face-recognition/persons",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                r.read()
                return time.perf_counter() - started, r.status
        except urllib.error.HTTPError as e:
            if e.code in (429, 503):
                time.sleep(float(e.headers.get("Retry-After", "1")))
                continue
            return time.perf_counter() - started, e.code


def run(url, token, people, concurrency):
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda p: enrol(url, token, p), people))
    elapsed = time.perf_counter() - started
    latencies = sorted(r[0] for r in results)
    failed = sum(1 for r in results if r[1] != 200)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return elapsed, pick(0.5), pick(0.95), failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--lfw", required=True)
    ap.add_argument("--persons", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--burst", type=int, default=100)
    args = ap.parse_args()

    people = images(args.lfw, args.persons + args.burst)
    steady, burst = people[: args.persons], people[args.persons :]
    print(f"rss_start_mib {rss_mib(args.pid):.0f}")
    elapsed, p50, p95, failed = run(args.url, args.token, steady, args.concurrency)
    print(f"enrol persons {len(steady)} concurrency {args.concurrency} failed {failed}")
    print(f"persons_per_s {len(steady) / elapsed:.1f}")
    print(f"p50_ms {p50:.0f}")
    print(f"p95_ms {p95:.0f}")
    print(f"rss_after_steady_mib {rss_mib(args.pid):.0f}")
    elapsed, p50, p95, failed = run(args.url, args.token, burst, len(burst))
    print(f"burst {len(burst)} at once: {elapsed:.1f} s, failed {failed}")
    time.sleep(2)
    print(f"rss_after_burst_mib {rss_mib(args.pid):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
