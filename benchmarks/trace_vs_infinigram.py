"""Tracing a 512-token text over the benchmark corpus: seethrough ``trace`` against infini-gram's
``attribute`` (the primitive behind OLMoTrace), in one process, same spans asserted.

Needs the corpus of ``index_vs_infinigram.py`` (run that first with the same ``--tokens``). The
infini-gram folder is the same shard files with the same table (the index benchmark proves the tables
byte-identical), so both engines search the same bytes.

Settings on both sides: every maximal span (min length 1), spans found more than ``--max-count``
times dropped, at most ``--max-count`` documents per span. seethrough additionally decodes each
document's snippet and ranks them by BM25 (infini-gram returns bare pointers): that work is timed too.

    python benchmarks/trace_vs_infinigram.py [--tokens 50000000] [--repeats 20]

numba threads: NUMBA_NUM_THREADS=2 (set below); infini-gram's engine is single-query C++.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import numpy as np  # noqa: E402


def text_to_trace(corpus, length: int = 512, seed: int = 0) -> list[int]:
    """Pieces copied from documents (8-30 tokens) between random tokens: a partly copied text."""
    rng = np.random.default_rng(seed)
    ids: list[int] = []
    while len(ids) < length:
        doc = corpus.document(int(rng.integers(0, corpus.num_documents))).token_ids
        if len(doc) > 40:
            start = int(rng.integers(0, len(doc) - 30))
            ids += doc[start:start + int(rng.integers(8, 30))]
        ids += rng.integers(0, corpus.corpus.vocab_size - 1, 5).tolist()
    return ids[:length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=50_000_000)
    parser.add_argument("--root", type=Path, default=Path("bench-out"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--max-count", type=int, default=10)
    args = parser.parse_args()

    from infini_gram.engine import InfiniGramEngine

    import seethrough
    from seethrough.audit.trace import TraceSettings, trace

    folder = args.root / f"tokens-{args.tokens}"
    if not (folder / "corpus" / "index.json").exists() or not (folder / "infinigram" / "table.0").exists():
        raise SystemExit(f"{folder} is missing: run benchmarks/index_vs_infinigram.py --tokens {args.tokens} first")
    corpus = seethrough.open_corpus(folder / "corpus")
    engine = InfiniGramEngine(index_dir=str(folder / "infinigram"), eos_token_id=0, version=4, token_dtype="u16")
    ids = text_to_trace(corpus)
    settings = TraceSettings(min_length=1, span_density=1.0, docs_per_span=args.max_count, max_count=args.max_count)

    def theirs():
        return engine.attribute(input_ids=ids, delim_ids=[], min_len=1, max_cnt=args.max_count, enforce_bow=False)

    def ours():
        return trace(corpus, ids, settings)

    first = {}
    for name, fn in (("infinigram", theirs), ("seethrough", ours)):
        began = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - began
    times: dict[str, list[float]] = {"infinigram": [], "seethrough": []}
    for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits both
        for name, fn in (("infinigram", theirs), ("seethrough", ours)):
            began = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - began)
            if name == "infinigram":
                their_spans = sorted((s["l"], s["r"], s["count"]) for s in result["spans"])
            else:
                our_spans = sorted((s["start"], s["end"], s["count"]) for s in result["spans"])
    if their_spans != our_spans:
        raise SystemExit(f"spans differ: infini-gram {len(their_spans)}, seethrough {len(our_spans)}")
    a, b = statistics.median(times["infinigram"]), statistics.median(times["seethrough"])
    print(f"corpus {corpus.num_tokens:,} tokens; text 512 tokens; {len(our_spans)} spans (identical)")
    print(f"first call (cold): infini-gram {first['infinigram'] * 1000:.0f} ms, seethrough {first['seethrough'] * 1000:.0f} ms"
          " (numba kernels load on first use)")
    print(f"median of {args.repeats}: infini-gram attribute {a * 1000:.1f} ms, seethrough trace {b * 1000:.1f} ms "
          f"-> seethrough {a / b:.1f}x faster (target: at most infini-gram's latency)")


if __name__ == "__main__":
    main()
