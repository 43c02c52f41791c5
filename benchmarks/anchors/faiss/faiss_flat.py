#!/usr/bin/python3
"""FAISS IndexFlatIP anchor: single-query top-10 search over the same raw float32 vectors the .NET side reads.

Prints one JSON object: queries/s, p50 latency, resident memory added by the index, recall@10 against the
.NET exact search's top 10 when that file exists (a cross-check that both search the same thing).
"""
import argparse, json, os, sys, time

import numpy as np
import faiss


def rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", default="-", help="raw float32 rows; - reads them from stdin (a pipe)")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--dims", type=int, default=1280)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--truth")
    parser.add_argument("--json")
    args = parser.parse_args()

    faiss.omp_set_num_threads(args.threads)
    dims = args.dims
    rows = args.count
    before = rss_bytes()
    index = faiss.IndexFlatIP(dims)
    chunk = 4096
    source = sys.stdin.buffer if args.vectors == "-" else open(args.vectors, "rb")
    with source:
        for first in range(0, rows, chunk):
            count = min(chunk, rows - first)
            data = bytearray()
            while len(data) < count * dims * 4:
                piece = source.read(count * dims * 4 - len(data))
                if not piece:
                    sys.exit(f"the vectors ended after {first} rows; expected {rows}")
                data.extend(piece)
            block = np.frombuffer(bytes(data), dtype=np.float32).reshape(count, dims)
            index.add(block)
            del block
    after = rss_bytes()
    # The generator writes the queries once every row has gone through the pipe.
    queries = np.fromfile(args.queries, dtype=np.float32).reshape(-1, dims)

    for q in range(min(5, len(queries))):
        index.search(queries[q:q + 1], 10)

    latencies = []
    results = [None] * len(queries)
    start = time.perf_counter()
    i = 0
    while (time.perf_counter() - start < args.seconds or i < 20) and i < 100000:
        q = i % len(queries)
        t = time.perf_counter()
        _, ids = index.search(queries[q:q + 1], 10)
        latencies.append((time.perf_counter() - t) * 1000)
        results[q] = ids[0]
        i += 1
    elapsed = time.perf_counter() - start

    # Batched search (all queries in one call: FAISS then uses BLAS matrix products), for the record.
    t = time.perf_counter()
    _, batch_ids = index.search(queries, 10)
    batch_seconds = time.perf_counter() - t

    recall = None
    truth_path = args.truth
    if truth_path and os.path.exists(truth_path):
        truth = np.fromfile(truth_path, dtype=np.int32).reshape(-1, 10)
        hits = sum(len(set(truth[q]).intersection(set(batch_ids[q]))) for q in range(len(queries)))
        recall = hits / (10 * len(queries))

    latencies.sort()
    result = {
        "engine": "faiss-IndexFlatIP",
        "faissVersion": faiss.__version__,
        "count": rows,
        "dimensions": dims,
        "threads": args.threads,
        "queries": i,
        "qps": round(i / elapsed, 1),
        "p50Ms": round(latencies[len(latencies) // 2], 3),
        "batchQps": round(len(queries) / batch_seconds, 1),
        "rssDeltaMiB": round((after - before) / 1048576, 1),
        "rssMiB": round(after / 1048576, 1),
        "rawFloat32MiB": round(rows * dims * 4 / 1048576, 1),
        "agreementWithDotnetExactAt10": recall,
    }
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text)
    print(text)


if __name__ == "__main__":
    main()
