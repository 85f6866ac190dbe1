#!/usr/bin/env python3
"""Hostile-client measurements of a visage binary (numbers for docs and closing notes, not
a test): the server's memory high-water mark under stalled uploads, and how many of a quiet
client's requests succeed while another client floods the face pipeline.

usage: scripts/bench-hostile.py BINARY MODELS_DIR [--stalled 20] [--flood 100] [--quiet 15]
Python standard library only; the server runs on a throw-away data directory on loopback."""

import argparse
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "/v2/face-recognition"


def start(binary, models, data_dir, extra=()):
    proc = subprocess.Popen(
        [binary, "serve", "--port", "0", "--data-dir", data_dir, "--models-dir", models, *extra],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "RUST_LOG": "info"},
    )
    for line in proc.stderr:
        m = re.search(r"listening on http://(\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, m.group(1)
    raise SystemExit("server did not start")


def token(binary, data_dir, client):
    out = subprocess.run([binary, "token", "create", "--data-dir", data_dir, "--client", client],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def call(addr, path, tok, body, timeout=120):
    req = urllib.request.Request(f"http://{addr}{BASE}{path}", data=json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {tok}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return 0, None


def hwm_mb(pid):
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024


def stalled_uploads(binary, models, n):
    with tempfile.TemporaryDirectory() as d:
        proc, addr = start(binary, models, d)
        tok = token(binary, d, "stall")
        host, port = addr.rsplit(":", 1)
        before = hwm_mb(proc.pid)
        size, sent = 30 << 20, 20 << 20
        socks = []
        for _ in range(n):
            s = socket.create_connection((host, int(port)))
            s.sendall((f"POST {BASE}/collections HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode())
            try:
                s.settimeout(5)
                s.sendall(b"{\"name\": \"" + b"x" * (sent - 10))
            except OSError:
                pass  # refused (503) and closed: that upload holds nothing
            socks.append(s)
        time.sleep(3)
        after = hwm_mb(proc.pid)
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(timeout=30)
        return before, after


def flood(binary, models, flood_n, quiet_n):
    with tempfile.TemporaryDirectory() as d:
        proc, addr = start(binary, models, d)
        flood_tok, quiet_tok = token(binary, d, "flood"), token(binary, d, "quiet")
        image = base64.b64encode((ROOT / "fixtures/faces/obama.jpg").read_bytes()).decode()
        status, enrolled = call(addr, "/persons", quiet_tok, {"name": "Barack Obama", "images": [image]})
        assert status == 200, status
        pid_ = enrolled["data"]["_id"]
        stop = threading.Event()
        counts = {}
        lock = threading.Lock()

        def flooder():
            while not stop.is_set():
                st, _ = call(addr, "/search", flood_tok,
                             {"images": [image], "min_score": 0.8, "search_mode": "FAST"})
                with lock:
                    counts[st] = counts.get(st, 0) + 1

        threads = [threading.Thread(target=flooder) for _ in range(flood_n)]
        for t in threads:
            t.start()
        time.sleep(2)
        quiet = [call(addr, "/verify", quiet_tok,
                      {"id": pid_, "images": [image], "min_score": 0.8, "search_mode": "FAST"})[0]
                 for _ in range(quiet_n)]
        stop.set()
        for t in threads:
            t.join()
        proc.terminate()
        proc.wait(timeout=60)
        return sum(1 for s in quiet if s == 200), quiet, counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("models")
    ap.add_argument("--stalled", type=int, default=20)
    ap.add_argument("--flood", type=int, default=100)
    ap.add_argument("--quiet", type=int, default=15)
    a = ap.parse_args()
    before, after = stalled_uploads(a.binary, a.models, a.stalled)
    print(f"stalled uploads: {a.stalled} x 20 MiB sent of 30 MiB declared: "
          f"VmHWM {before:.0f} MB at rest -> {after:.0f} MB (+{after - before:.0f} MB)")
    ok, quiet, counts = flood(a.binary, a.models, a.flood, a.quiet)
    print(f"flood: {a.flood} concurrent /search from one client ({counts}); "
          f"quiet client's /verify: {ok} of {a.quiet} succeeded ({quiet})")


if __name__ == "__main__":
    sys.exit(main())
