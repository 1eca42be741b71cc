"""The cluster path against the local one, on this machine: builds with 1 and 2 Ray worker processes
against the local build, batched queries through Ray actors against in-process calls, and (with
--sort) one shard's sort time and peak memory at large shard sizes, for docs/scale.md.

    .venv/bin/python benchmarks/ray_scaling.py [--tokens 4000000] [--queries 20000] [--out bench-out]
    .venv/bin/python benchmarks/ray_scaling.py --sort 256M,512M,1G   # one shard per size, in a subprocess
    .venv/bin/python benchmarks/ray_scaling.py --shard-latency 1,4,16,64   # local query latency vs shards

Builds: a corpus of --tokens tokens (Zipf over 8192 words) in 4 input files and 4 shards; the local
``build_corpus`` + ``build_index(threads=1)`` in this process against ``build_corpus_on_ray`` +
``build_index_on_ray(threads=1)`` on a ``ray.cluster_utils.Cluster`` of a head with 0 CPUs and 1 or
2 worker nodes of 1 CPU (each a separate raylet and worker processes), loopback only. Every result is
compared byte for byte. Queries: ``count_many`` of --queries n-grams and single counts, in-process vs
``open_corpus(ray=...)`` with one query server per worker node; answers compared. numba runs one
thread everywhere (NUMBA_NUM_THREADS=1) so the servers and the in-process engine do the same work.
Times are one run each (a cluster start costs more than repeating would tell); the machine is
shared, so read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only, read at `import ray`
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402

VOCAB = 8192


def make_inputs(folder: Path, tokens: int, files: int = 4, seed: int = 0) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    folder.mkdir(parents=True, exist_ok=True)
    words = np.array([f"w{i}" for i in range(VOCAB)])
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()
    tok.save(str(folder / "tokenizer.json"))
    rng = np.random.default_rng(seed)
    (folder / "in").mkdir(exist_ok=True)
    per_file = tokens // files
    for f in range(files):
        ids = rng.zipf(1.2, size=per_file) % VOCAB
        with open(folder / "in" / f"part{f}.jsonl", "w") as handle:
            for start in range(0, per_file, 1000):
                handle.write(json.dumps({"text": " ".join(words[ids[start:start + 1000]])}) + "\n")
    return folder


def sample_queries(corpus, n: int, seed: int = 1) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    shard = corpus.corpus.shards[0].tokens
    starts = rng.integers(1, len(shard) - 8, size=n)
    lengths = rng.integers(1, 5, size=n)
    queries = []
    for s, k in zip(starts.tolist(), lengths.tolist()):
        q = shard[s:s + k].astype(np.int64)
        queries.append(q[q != 0xFFFF].tolist() or [1])
    return queries


def start_cluster(workers: int, tmp: Path):
    import ray
    from ray.cluster_utils import Cluster

    os.environ.update({"RAY_AUTH_TOKEN_PATH": str(tmp / "auth_token"), "RAY_TMPDIR": str(tmp)})
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(workers):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="warning")
    cluster.wait_for_nodes()
    return cluster


def timed(function):
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()
            if p.name.split(".")[0] in ("tokenized", "offset", "metadata", "metaoff", "table")}


def run_builds_and_queries(args) -> None:
    import ray

    from seethrough import build_corpus, build_index, open_corpus
    from seethrough.corpus import CorpusBuildConfig
    from seethrough.distributed import build_corpus_on_ray, build_index_on_ray

    out = Path(args.out)
    data = make_inputs(out / "data", args.tokens)
    config = CorpusBuildConfig(shard_tokens=args.tokens // 4 + 1)
    shutil.rmtree(out / "local", ignore_errors=True)
    _, local_corpus_s = timed(lambda: build_corpus([data / "in"], data / "tokenizer.json", out / "local", config))
    _, local_index_s = timed(lambda: build_index(out / "local", threads=1))
    reference = files_of(out / "local")
    rows = [("local (this process)", local_corpus_s, local_index_s)]
    query_rows = []
    for workers in (1, 2):
        tmp = Path(tempfile.mkdtemp(prefix="st-bench-", dir="/tmp"))
        cluster, start_s = timed(lambda: start_cluster(workers, tmp))
        try:
            target = out / f"ray{workers}"
            shutil.rmtree(target, ignore_errors=True)
            _, corpus_s = timed(lambda: build_corpus_on_ray([data / "in"], data / "tokenizer.json", target, config,
                                                            ray=cluster.address))
            _, index_s = timed(lambda: build_index_on_ray(target, cluster.address, threads=1))
            assert files_of(target) == reference, "the cluster build differs from the local build"
            rows.append((f"Ray, {workers} worker node(s) (cluster start {start_s:.1f} s, not counted)", corpus_s,
                         index_s))
            if workers == 2:
                local = open_corpus(target)
                queries = sample_queries(local, args.queries)
                local.count_many(queries[:10])  # compile / load the kernels before timing
                expected, local_batch_s = timed(lambda: local.count_many(queries))
                _, local_single_s = timed(lambda: [local.count(q) for q in queries[:200]])
                spread, open_s = timed(lambda: open_corpus(target, ray=cluster.address))
                spread.count_many(queries[:10])
                got, ray_batch_s = timed(lambda: spread.count_many(queries))
                assert got == expected, "the servers' counts differ from the local engine's"
                singles, ray_single_s = timed(lambda: [spread.count(q) for q in queries[:200]])
                assert singles == expected[:200]
                spread.close()
                query_rows = [("count_many", len(queries), local_batch_s, ray_batch_s),
                              ("count, one at a time", 200, local_single_s, ray_single_s)]
                print(f"query servers started in {open_s:.1f} s (2 actors: worker process, corpus open, numba load)")
        finally:
            ray.shutdown()
            cluster.shutdown()
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nbuilds of {args.tokens:,} tokens in 4 inputs and 4 shards (1 sorting thread per shard):")
    print(f"{'':58} {'corpus build':>13} {'index build':>12} {'corpus x':>9} {'index x':>8}")
    for name, corpus_s, index_s in rows:
        print(f"{name:58} {corpus_s:12.2f}s {index_s:11.2f}s {local_corpus_s / corpus_s:8.2f}x "
              f"{local_index_s / index_s:7.2f}x")
    print("(x = local time / this time; above 1 is faster than the local build)")
    print("\nqueries (numba 1 thread in the servers and here; counts compared):")
    for name, n, local_s, ray_s in query_rows:
        print(f"{name:24} {n:>6} queries: in-process {local_s * 1e6 / n:9.1f} us/query, through Ray "
              f"{ray_s * 1e6 / n:9.1f} us/query, {ray_s / local_s:7.1f}x the in-process time")


def measure_sort(size: int, threads: int, folder: Path) -> dict:
    """One shard of ``size`` bytes of Zipf uint16 tokens (documents of 1,000 tokens), sorted by the index
    build's own function; run in a child process so its peak RSS is the sort's."""
    code = f"""
import json, resource, sys, time
from pathlib import Path
import numpy as np
from seethrough.index.build import build_table, choose_sort, shard_memory_needed
folder = Path({str(folder)!r})
rng = np.random.default_rng(0)
tokens = {size} // 2
with open(folder / "tokenized.0", "wb") as handle:
    for start in range(0, tokens, 1 << 24):
        chunk = (rng.zipf(1.2, size=min(1 << 24, tokens - start)) % 50000).astype("<u2")
        chunk[(np.arange(start, start + len(chunk)) % 1001) == 0] = 0xFFFF
        handle.write(chunk.tobytes())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
entry = build_table(folder, 0, tokens * 2, 2, {threads}, True)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"bytes": tokens * 2, "threads": {threads}, "seconds": seconds, "peak_rss": peak,
                  "rss_before": before * 1024, "bound": shard_memory_needed(tokens * 2, 2, {threads}),
                  "table_bytes": entry["bytes"]}}))
"""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "NUMBA_NUM_THREADS": str(threads)})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_sorts(args) -> None:
    from seethrough.index.build import parse_memory

    print("one shard's sort (build_table: token code + divsufsort, then the table written and hashed):")
    print(f"{'file':>9} {'threads':>7} {'seconds':>8} {'MB/s':>6} {'peak RSS':>9} {'B/B':>5} {'bound':>8} {'B/B':>5}")
    for text in args.sort.split(","):
        size = parse_memory(text)
        for threads in [int(t) for t in args.sort_threads.split(",")]:
            row = measure_sort(size, threads, Path(args.out) / "sort")
            print(f"{row['bytes'] / 2**20:8.0f}M {threads:>7} {row['seconds']:8.1f} {row['bytes'] / 2**20 / row['seconds']:6.1f} "
                  f"{row['peak_rss'] / 2**30:8.2f}G {row['peak_rss'] / row['bytes']:5.1f} "
                  f"{row['bound'] / 2**30:7.2f}G {row['bound'] / row['bytes']:5.1f}", flush=True)


def run_shard_latency(args) -> None:
    """Query latency of the local engine against the number of shards, same corpus cut 1..N ways."""
    import statistics

    from seethrough import build_corpus, build_index, open_corpus
    from seethrough.corpus import CorpusBuildConfig

    out = Path(args.out)
    data = make_inputs(out / "data", args.tokens)
    print(f"query latency against shards, {args.tokens:,} tokens, local engine, numba 1 thread:")
    print(f"{'shards':>6} {'single count (median)':>22} {'count_many per query':>21} {'find limit 10':>14}")
    base, queries = None, None
    for shards in [int(s) for s in args.shard_latency.split(",")]:
        folder = out / f"shards{shards}"
        if not (folder / "index.json").exists():
            shutil.rmtree(folder, ignore_errors=True)
            build_corpus([data / "in"], data / "tokenizer.json", folder,
                         CorpusBuildConfig(shard_tokens=args.tokens // shards + 1))
            build_index(folder, threads=1)
        corpus = open_corpus(folder)
        queries = queries or sample_queries(corpus, args.queries)  # the same queries for every sharding
        counts = corpus.count_many(queries)
        base = base or counts
        assert counts == base, "the counts depend on the sharding"
        singles = []
        for q in queries[:300]:
            started = time.perf_counter()
            corpus.count(q)
            singles.append(time.perf_counter() - started)
        _, batch_s = timed(lambda: corpus.count_many(queries))
        finds = []
        for q in queries[:100]:
            started = time.perf_counter()
            corpus.find(q, limit=10)
            finds.append(time.perf_counter() - started)
        print(f"{len(corpus.corpus.shards):>6} {statistics.median(singles) * 1e6:19.1f} us {batch_s * 1e6 / len(queries):18.2f} us "
              f"{statistics.median(finds) * 1e6:11.0f} us", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=4_000_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--sort", help="shard sizes to sort, e.g. 256M,1G (instead of the build/query run)")
    parser.add_argument("--sort-threads", default="1", help="sorting threads for --sort, e.g. 1,2")
    parser.add_argument("--shard-latency", help="shard counts to time queries over, e.g. 1,4,16,64 (instead of the "
                                                "build/query run)")
    parser.add_argument("--out", default="bench-out/ray_scaling")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}")
    if args.sort:
        run_sorts(args)
    elif args.shard_latency:
        run_shard_latency(args)
    else:
        run_builds_and_queries(args)
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
