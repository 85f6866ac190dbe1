#!/usr/bin/env python3
"""FAISS baseline for `visage bench index`: exact and HNSW search on the same data.

Reads the base vectors and the queries that the Rust benchmark wrote (raw
little-endian float32, row-major, N x D and Q x D, rows already unit length),
and measures faiss-cpu on them with inner product as the metric (IP = cosine
for unit vectors):

* exact   -- faiss.IndexFlatIP. Its top-k ids are the ground truth for recall.
* approx  -- faiss.IndexHNSWFlat(D, M, METRIC_INNER_PRODUCT) with efConstruction
             set, then one run per --ef-search value.

For each index / efSearch it reports:

* build_s     -- seconds for index.add(base) on --threads OpenMP threads;
* p50_ms/p99_ms -- single-threaded latency: omp threads = 1, the first
                 --max-latency-queries queries searched ONE at a time (k results),
                 each call timed with time.perf_counter;
* qps         -- all queries as one batch on --threads threads, Q / seconds;
* recall_at_1 -- share of queries whose top-1 id equals the exact top-1 (HNSW);
* recall_at_10 -- mean over queries of |approx top-10 & exact top-10| / 10 (HNSW);
* recall_at_1_above_threshold -- recall@1 over only the queries whose exact best
                 inner product reaches --threshold (the searches a user would see
                 answered); above_threshold counts those queries;
* bytes       -- len(faiss.serialize_index(index)): everything the index holds
                 (vectors, and for HNSW the graph: neighbour lists, offsets, levels),
                 plus bytes_per_vector = bytes / N.

Progress goes to stderr; the last stdout line is one JSON object:

  {"n":N,"q":Q,"dim":D,"k":K,"threads":T,"threshold":..,"above_threshold":..,"bytes_method":"faiss.serialize_index",
   "flat":{"build_s":..,"p50_ms":..,"p99_ms":..,"qps":..,"bytes":..,"bytes_per_vector":..},
   "hnsw":{"m":..,"ef_construction":..,"build_s":..,"bytes":..,"bytes_per_vector":..,
           "runs":[{"ef_search":..,"p50_ms":..,"p99_ms":..,"qps":..,"recall_at_1_above_threshold":..,
                    "recall_at_1":..,"recall_at_10":..}, ...]}}

Usage (the interpreter comes from scripts/python-env.sh; scripts/faiss-bench.sh does this):
    scripts/faiss-bench.sh --base base.f32 --queries queries.f32 --dim 128
"""

import argparse
import json
import os
import sys
from time import perf_counter

import faiss
import numpy as np


def log(msg):
    print(f"faiss_bench: {msg}", file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--base", required=True, help="raw little-endian float32, N x D, row-major")
    p.add_argument("--queries", required=True, help="raw little-endian float32, Q x D, row-major")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=128)
    p.add_argument("--ef-search", default="16,32,64,128,256",
                   help="comma-separated efSearch values")
    p.add_argument("--threshold", type=float, default=0.53,
                   help="cosine a query's exact best match must reach to count in recall_at_1_above_threshold")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="OpenMP threads for build and batch search (default: all cores)")
    p.add_argument("--max-latency-queries", type=int, default=1000,
                   help="how many queries to time one by one, single-threaded")
    a = p.parse_args()
    try:
        a.ef_search = [int(x) for x in a.ef_search.split(",") if x.strip()]
    except ValueError:
        p.error(f"--ef-search: expected comma-separated integers, got {a.ef_search!r}")
    if not a.ef_search or min(a.ef_search) < 1:
        p.error("--ef-search: need at least one value >= 1")
    if a.dim < 1 or a.hnsw_m < 2 or a.ef_construction < 1 or a.threads < 1:
        p.error("--dim, --ef-construction, --threads must be >= 1 and --hnsw-m >= 2")
    if a.k < 10:
        p.error("--k must be >= 10 (recall@10 is reported)")
    if a.max_latency_queries < 1:
        p.error("--max-latency-queries must be >= 1")
    return a


def load(path, dim, what):
    """Raw little-endian float32 file -> C-contiguous (rows, dim) float32 array."""
    data = np.fromfile(path, dtype="<f4")
    if data.size == 0 or data.size % dim:
        sys.exit(f"faiss_bench: {what} {path}: {data.size} floats is not a positive multiple of dim {dim}")
    x = np.ascontiguousarray(data.reshape(-1, dim), dtype=np.float32)
    norms = np.linalg.norm(x, axis=1)
    worst = float(np.max(np.abs(norms - 1.0)))
    if worst > 1e-3:
        log(f"warning: {what} rows are not unit length (max |norm - 1| = {worst:.3g}); "
            "inner product is then not cosine")
    log(f"{what}: {x.shape[0]} x {dim} from {path}")
    return x


def index_bytes(index):
    """Size of the serialized index: vectors plus, for HNSW, the whole graph."""
    return int(faiss.serialize_index(index).nbytes)


def build(index, base, threads):
    faiss.omp_set_num_threads(threads)
    t0 = perf_counter()
    index.add(base)
    return perf_counter() - t0


def latency_ms(index, queries, k, count):
    """p50 and p99 (ms) of single-threaded searches, one query per call."""
    faiss.omp_set_num_threads(1)
    n = min(count, queries.shape[0])
    for i in range(min(10, n)):  # warm up caches and lazy allocations
        index.search(queries[i:i + 1], k)
    times = np.empty(n)
    for i in range(n):
        q = queries[i:i + 1]
        t0 = perf_counter()
        index.search(q, k)
        times[i] = perf_counter() - t0
    p50, p99 = np.percentile(times * 1e3, [50, 99])
    return float(p50), float(p99)


def batch_search(index, queries, k, threads):
    """All queries as one batch on `threads` threads -> (queries/s, ids)."""
    faiss.omp_set_num_threads(threads)
    index.search(queries[:4 * threads], k)  # warm up: start the OpenMP thread pool
    t0 = perf_counter()
    _, ids = index.search(queries, k)
    secs = perf_counter() - t0
    return queries.shape[0] / secs, ids


def recalls(approx, exact, above):
    """(recall@1, recall@10, recall@1 over the `above` queries) of approximate top-k ids
    against exact top-k ids."""
    same = approx[:, 0] == exact[:, 0]
    r1 = float(np.mean(same))
    hits = 0
    for a, e in zip(approx[:, :10], exact[:, :10]):
        hits += len(set(a[a >= 0].tolist()) & set(e.tolist()))  # -1 = no result
    r1_above = float(np.mean(same[above])) if above.any() else 1.0
    return r1, hits / (10 * exact.shape[0]), r1_above


def main():
    a = parse_args()
    base = load(a.base, a.dim, "base")
    queries = load(a.queries, a.dim, "queries")
    n, q = base.shape[0], queries.shape[0]
    if a.k > n:
        sys.exit(f"faiss_bench: --k {a.k} is larger than the base ({n} vectors)")
    log(f"faiss {faiss.__version__}, threads {a.threads}, k {a.k}, "
        f"latency over {min(a.max_latency_queries, q)} queries")

    # Exact search: ground truth.
    flat = faiss.IndexFlatIP(a.dim)
    flat_build = build(flat, base, a.threads)
    log(f"flat: built in {flat_build:.3f} s")
    flat_p50, flat_p99 = latency_ms(flat, queries, a.k, a.max_latency_queries)
    flat_qps, truth = batch_search(flat, queries, a.k, a.threads)
    best, _ = flat.search(queries, 1)
    above = best[:, 0] >= a.threshold
    flat_bytes = index_bytes(flat)
    log(f"flat: p50 {flat_p50:.3f} ms, p99 {flat_p99:.3f} ms, {flat_qps:.0f} q/s, {flat_bytes} bytes")
    del flat

    # HNSW.
    hnsw = faiss.IndexHNSWFlat(a.dim, a.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = a.ef_construction
    log(f"hnsw: building M={a.hnsw_m} efConstruction={a.ef_construction} ...")
    hnsw_build = build(hnsw, base, a.threads)
    hnsw_bytes = index_bytes(hnsw)
    log(f"hnsw: built in {hnsw_build:.3f} s, {hnsw_bytes} bytes")
    runs = []
    for ef in a.ef_search:
        hnsw.hnsw.efSearch = ef
        p50, p99 = latency_ms(hnsw, queries, a.k, a.max_latency_queries)
        qps, ids = batch_search(hnsw, queries, a.k, a.threads)
        r1, r10, r1_above = recalls(ids, truth, above)
        log(f"hnsw ef={ef}: p50 {p50:.3f} ms, p99 {p99:.3f} ms, {qps:.0f} q/s, "
            f"recall@1 {r1:.4f}, recall@10 {r10:.4f}, recall@1 above threshold {r1_above:.4f}")
        runs.append({"ef_search": ef, "p50_ms": round(p50, 4), "p99_ms": round(p99, 4),
                     "qps": round(qps, 1), "recall_at_1": r1, "recall_at_10": r10,
                     "recall_at_1_above_threshold": r1_above})

    print(json.dumps({
        "n": n, "q": q, "dim": a.dim, "k": a.k, "threads": a.threads,
        "threshold": a.threshold, "above_threshold": int(above.sum()),
        "faiss_version": faiss.__version__, "bytes_method": "faiss.serialize_index",
        "flat": {"build_s": round(flat_build, 4), "p50_ms": round(flat_p50, 4),
                 "p99_ms": round(flat_p99, 4), "qps": round(flat_qps, 1),
                 "bytes": flat_bytes, "bytes_per_vector": round(flat_bytes / n, 2)},
        "hnsw": {"m": a.hnsw_m, "ef_construction": a.ef_construction,
                 "build_s": round(hnsw_build, 4), "bytes": hnsw_bytes,
                 "bytes_per_vector": round(hnsw_bytes / n, 2), "runs": runs},
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
