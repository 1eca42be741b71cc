"""`seethrough serve` under a bounded concurrent load on a ~50M-token index: latency, errors, memory;
and `count` over HTTP against the same count in-process.

    .venv/bin/python benchmarks/serve_load.py [--tokens 50000000] [--requests 5000] [--concurrency 32]
                                               [--root bench-out/serve_load] [--deadline 1.0]

The corpus (built once into ``--root`` and reused): a word-level tokenizer over 8,192 Zipf(1.2)
filler words, documents of 50-2,000 tokens. The server is the real command (`python -m seethrough
serve CORPUS --port 0 --json`, one uvicorn worker, its default limits: 4 queries at once, 64 queued,
each waiting at most 10 s for a slot; the deadline ``--deadline``) in its own process; the client is
one asyncio loop with httpx, at most ``--concurrency`` requests in flight, ``--requests`` in all,
mixed as below (queries drawn from the corpus, so most occur):

    count 40%  find 20% (limit 10, offset 0-100)  ntd 14%  search 10% (bigram AND bigram, window 20)
    document 10%  trace 4% (POST, 40 tokens of a document)  oversized POST 1% (413 planned)
    heavy search 1% (the two commonest words, window 1000: past the deadline, 503 planned)

Reported: p50 / p99 latency per endpoint and overall, status codes (an error: any status but 200, the
oversized bodies' 413, and a 503 past the deadline, which is counted per endpoint apart; a "busy"
503 from a full queue is an error), the server's resident memory and thread count before and after, and
whether it still answers at once after the load. Then ``count`` one request at a time (keep-alive)
against ``IndexedCorpus.count`` and ``Explorer.count`` in this process, on the same 1,000 queries:
medians and the overhead of HTTP (FastAPI, JSON, the deadline and the queue) per request.

Threads: the server's numba kernels run one query per thread (the workqueue layer: no parallel
kernel here), at most 4 at once; this process's client and in-process calls use one thread. Both
share the machine's cores with whatever else runs: the script prints the load average before and
after, and the numbers are comparable only within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _synthetic import write_word_tokenizer  # noqa: E402  (this folder: benchmarks run as scripts)

FILLER = 8192
transport_errors: list[str] = []
reasons: list[tuple[str, str]] = []
REPO = Path(__file__).resolve().parent.parent


def make_corpus(folder: Path, tokens: int, seed: int = 0) -> Path:
    import seethrough

    corpus = folder / "corpus"
    if (corpus / "index.json").exists():
        return corpus
    folder.mkdir(parents=True, exist_ok=True)
    words = [f"w{i}" for i in range(FILLER)]
    write_word_tokenizer(folder / "tokenizer.json", words)
    rng = np.random.default_rng(seed)
    ids = (rng.zipf(1.2, size=tokens) % FILLER).astype(np.int64)
    vocab = np.array(words)
    started = time.perf_counter()
    with open(folder / "docs.jsonl", "w") as handle:
        position, n = 0, 0
        while position < tokens:
            length = int(rng.integers(50, 2000))
            handle.write(json.dumps({"text": " ".join(vocab[ids[position:position + length]].tolist()),
                                     "metadata": {"n": n}}) + "\n")
            position += length
            n += 1
    seethrough.build_corpus([folder / "docs.jsonl"], folder / "tokenizer.json", corpus)
    (folder / "docs.jsonl").unlink()
    seethrough.build_index(corpus)
    print(f"built {corpus}: {tokens:,} tokens in {time.perf_counter() - started:.0f} s", flush=True)
    return corpus


def proc_status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            fields[key] = int(value.split()[0])
    return fields


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def sample_queries(index, rng: random.Random, n: int, lengths=(1, 2, 3)) -> list[str]:
    """``n`` n-grams that occur: token windows at random positions of random documents."""
    out = []
    while len(out) < n:
        doc = index.document(rng.randrange(index.num_documents)).token_ids
        length = rng.choice(lengths)
        if len(doc) > length:
            start = rng.randrange(len(doc) - length)
            out.append(index.tokenizer.decode(doc[start:start + length]))
    return out


def plan(index, rng: random.Random, requests: int, max_body: int) -> list[tuple[str, str, dict]]:
    """(endpoint label, method, request arguments) for every request, shuffled."""
    counts = {"count": 0.40, "find": 0.20, "ntd": 0.14, "search": 0.10, "document": 0.10, "trace": 0.04,
              "oversized": 0.01, "heavy": 0.01}
    jobs: list[tuple[str, str, dict]] = []
    for label, share in counts.items():
        for _ in range(round(share * requests)):
            if label == "count":
                jobs.append((label, "GET", {"url": "/api/count", "params": {"q": sample_queries(index, rng, 1)[0]}}))
            elif label == "find":
                jobs.append((label, "GET", {"url": "/api/find", "params": {"q": sample_queries(index, rng, 1, (1, 2))[0],
                                                                          "limit": 10, "offset": rng.randrange(100)}}))
            elif label == "ntd":
                jobs.append((label, "GET", {"url": "/api/ntd", "params": {"q": sample_queries(index, rng, 1, (1, 2, 3))[0]}}))
            elif label == "search":
                a, b = sample_queries(index, rng, 2, (2,))  # bigrams: single words are mostly the commonest
                jobs.append((label, "GET", {"url": "/api/search", "params": {"q": f"{a} AND {b}", "window": 20}}))
            elif label == "document":
                jobs.append((label, "GET", {"url": f"/api/document/{rng.randrange(index.num_documents)}"}))
            elif label == "trace":
                jobs.append((label, "POST", {"url": "/api/trace", "json": {"text": sample_queries(index, rng, 1, (40,))[0]}}))
            elif label == "oversized":
                jobs.append((label, "POST", {"url": "/api/trace", "json": {"text": "w1 " * (max_body // 3 + 1)}}))
            else:
                jobs.append((label, "GET", {"url": "/api/search", "params": {"q": "w1 AND w2", "window": 1000}}))
    rng.shuffle(jobs)
    return jobs[:requests]


async def load(base: str, jobs: list[tuple[str, str, dict]], concurrency: int) -> list[tuple[str, int, float]]:
    import httpx

    gate = asyncio.Semaphore(concurrency)
    transport_errors.clear()
    reasons.clear()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        async def one(label: str, method: str, args: dict) -> tuple[str, int, float]:
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.request(method, **args)
                    await response.aread()
                    status = response.status_code
                    if status == 503:  # why: the deadline (the work stopped) or a full queue (never started)
                        reasons.append((label, "deadline" if "deadline" in response.json()["error"] else "busy"))
                except httpx.TransportError as error:  # counted as an error (status 0), not fatal to the run
                    status = 0
                    transport_errors.append(type(error).__name__)
                return label, status, (time.perf_counter() - started) * 1000

        return await asyncio.wait_for(asyncio.gather(*(one(*job) for job in jobs)), timeout=1800)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=50_000_000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--deadline", type=float, default=1.0)
    parser.add_argument("--root", type=Path, default=REPO / "bench-out" / "serve_load")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import httpx

    from seethrough.index import open_corpus
    from seethrough.serve import Explorer, ServeLimits

    corpus = make_corpus(args.root / f"{args.tokens}", args.tokens)
    index = open_corpus(corpus)
    rng = random.Random(args.seed)
    print(f"corpus {corpus}: {index.num_tokens:,} tokens, {index.num_documents:,} documents, "
          f"{len(index.corpus.shards)} shard(s); load average {os.getloadavg()[0]:.2f}", flush=True)

    server = subprocess.Popen([sys.executable, "-m", "seethrough", "serve", str(corpus), "--port", "0", "--json",
                               "--deadline-seconds", str(args.deadline)], stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(server.stdout.readline())
        base = ready["url"].rstrip("/")
        http = httpx.Client(base_url=base, timeout=60)
        http.get("/api/count", params={"q": "w1"}).raise_for_status()
        before = proc_status(server.pid)
        jobs = plan(index, rng, args.requests, ServeLimits().max_body_bytes)
        started = time.perf_counter()
        results = asyncio.run(load(base, jobs, args.concurrency))
        wall = time.perf_counter() - started
        after = proc_status(server.pid)
        probe = time.perf_counter()
        http.get("/api/count", params={"q": "w3 w4"}).raise_for_status()
        probe_ms = (time.perf_counter() - probe) * 1000

        by_label: dict[str, list[tuple[int, float]]] = {}
        for label, status, ms in results:
            by_label.setdefault(label, []).append((status, ms))
        # planned: the oversized bodies' 413, and 503 where a query ran past its deadline (the heavy ones
        # by design; any other query too slow for the deadline is counted apart); a busy 503 is an error
        planned = {"oversized": {413}}
        errors = [(label, status) for label, status, _ in results
                  if status not in (200, 503) and status not in planned.get(label, set())]
        errors += [(label, "503 busy") for label, why in reasons if why == "busy"]
        past_deadline = {label: sum(1 for l, why in reasons if l == label and why == "deadline")
                         for label in sorted({l for l, _ in reasons})}
        report = {"tokens": index.num_tokens, "documents": index.num_documents, "requests": len(results),
                  "concurrency": args.concurrency, "wall_s": round(wall, 2), "requests_per_s": round(len(results) / wall, 1),
                  "p50_ms": round(percentile([ms for _, _, ms in results], 50), 2),
                  "p99_ms": round(percentile([ms for _, _, ms in results], 99), 2),
                  "errors": len(errors), "error_examples": errors[:5], "transport_errors": transport_errors,
                  "past_deadline": past_deadline,
                  "server_before": before, "server_after": after, "probe_after_ms": round(probe_ms, 2),
                  "endpoints": {label: {"n": len(rows), "p50_ms": round(percentile([ms for _, ms in rows], 50), 2),
                                        "p99_ms": round(percentile([ms for _, ms in rows], 99), 2),
                                        "statuses": dict(sorted(
                                            {str(s): sum(1 for st, _ in rows if st == s) for s, _ in rows}.items()))}
                                for label, rows in sorted(by_label.items())}}

        # count over HTTP, one at a time, against the same count in this process
        queries = sample_queries(index, random.Random(args.seed + 1), 1000)
        explorer = Explorer(index)
        for q in queries[:50]:
            index.count(q), explorer.count(q), http.get("/api/count", params={"q": q})
        timings: dict[str, list[float]] = {"http": [], "explorer": [], "library": []}
        for q in queries:  # interleaved, so that load from elsewhere falls on all three alike
            t = time.perf_counter()
            answer = http.get("/api/count", params={"q": q}).json()
            timings["http"].append(time.perf_counter() - t)
            t = time.perf_counter()
            mine = explorer.count(q)
            timings["explorer"].append(time.perf_counter() - t)
            t = time.perf_counter()
            n = index.count(q)
            timings["library"].append(time.perf_counter() - t)
            assert answer == mine and answer["count"] == n
        medians = {k: statistics.median(v) * 1e6 for k, v in timings.items()}
        report["count_us"] = {k: round(v, 1) for k, v in medians.items()}
        report["count_http_overhead_us"] = round(medians["http"] - medians["library"], 1)
        report["load_average_after"] = round(os.getloadavg()[0], 2)
        http.close()
    finally:
        server.terminate()
        server.wait(30)
    out = args.root / "results.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    print(f"{report['requests']:,} requests at {args.concurrency} in flight: {report['requests_per_s']} req/s, p50 "
          f"{report['p50_ms']} ms, p99 {report['p99_ms']} ms, {report['errors']} error(s) besides the planned 413/503; "
          f"past the deadline (503): {past_deadline}; "
          f"server RSS {before['VmRSS'] / 1024:.0f} -> {after['VmRSS'] / 1024:.0f} MiB, threads {before['Threads']} -> "
          f"{after['Threads']}; count: HTTP {medians['http']:.0f} us vs in-process {medians['library']:.0f} us "
          f"(Explorer {medians['explorer']:.0f} us): HTTP adds {report['count_http_overhead_us']:.0f} us per request")


if __name__ == "__main__":
    main()
