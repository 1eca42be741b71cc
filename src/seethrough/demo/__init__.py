"""``seethrough demo``: the whole pipeline on a generated text collection, checked against what was planted.

Until the training layer exists, the demo shows the data-search layer: it generates text with
planted repeats, trains a small tokenizer, builds the corpus and its index, and answers the
questions an auditor asks (how often, where, what of this text is copied), each checked against
the planted truth and, for a sample of n-grams, against brute force.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write_bytes, atomic_write_json
from .text import generate

PRESETS = {
    "ci": {"documents": 600, "duplication": (1, 2, 4, 8), "per_count": 3, "vocab": 600, "shard_tokens": 20_000},
    "default": {"documents": 6000, "duplication": (1, 2, 4, 8, 16, 32, 64), "per_count": 4, "vocab": 2000,
                "shard_tokens": 150_000},
}


def _train_tokenizer(texts: list[str], vocab: int, path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=["<|endoftext|>"])
    tok.train_from_iterator(texts, trainer)
    atomic_write_bytes(path, tok.to_str().encode("utf-8"))


def _brute_count(stream: np.ndarray, query: np.ndarray) -> int:
    if len(query) > len(stream):
        return 0
    windows = np.lib.stride_tricks.sliding_window_view(stream, len(query))
    return int(np.all(windows == query, axis=1).sum())


def run_demo(out: str | Path, preset: str = "default", seed: int = 0,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    from ..corpus import CorpusBuildConfig, build_corpus
    from ..errors import SeethroughError
    from ..index import build_index, open_corpus

    if preset not in PRESETS:
        raise SeethroughError(f"unknown --preset {preset!r}; use one of {', '.join(PRESETS)}")
    settings = PRESETS[preset]
    say = progress or (lambda step: None)
    out = Path(out)
    world = out / "world"
    world.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    say("generating text")
    t = time.perf_counter()
    collection = generate(seed, settings["documents"], duplication=settings["duplication"],
                          per_count=settings["per_count"])
    lines = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in collection.documents)
    atomic_write_bytes(world / "docs.jsonl", lines.encode("utf-8"))
    atomic_write_json(world / "truth.json", {"seed": seed, "preset": preset, "planted": collection.planted})
    _train_tokenizer([d["text"] for d in collection.documents], settings["vocab"], world / "tokenizer.json")
    timings["generate"] = time.perf_counter() - t

    say("building corpus")
    t = time.perf_counter()
    manifest = build_corpus([world / "docs.jsonl"], world / "tokenizer.json", out / "corpus",
                            CorpusBuildConfig(shard_tokens=settings["shard_tokens"], overwrite=True))
    timings["corpus_build"] = time.perf_counter() - t
    say("building index")
    t = time.perf_counter()
    build_index(out / "corpus")
    timings["index_build"] = time.perf_counter() - t

    say("querying")
    corpus = open_corpus(out / "corpus")
    t = time.perf_counter()
    planted = collection.planted
    counts = corpus.count_many([" " + p["text"] for p in planted])
    doc_freqs = corpus.doc_freq_many([" " + p["text"] for p in planted])
    timings["count_many_planted"] = time.perf_counter() - t
    exact = sum(int(c == p["copies"] and d == p["copies"]) for c, d, p in zip(counts, doc_freqs, planted))
    located = corpus.find(" " + planted[-1]["text"], limit=len(planted[-1]["documents"]))
    found_docs = sorted({m.doc for m in located.matches})

    # brute force on a sample of n-grams cut from the token stream
    rng = random.Random(seed)
    stream = np.concatenate([s.tokens for s in corpus.corpus.shards]).astype(np.int64)
    stream[stream == corpus.corpus.separator] = -1
    sample = []
    while len(sample) < 50:
        n = rng.choice([1, 2, 3, 5, 8])
        start = rng.randrange(0, len(stream) - n)
        if (stream[start:start + n] >= 0).all():
            sample.append(stream[start:start + n])
    brute = [_brute_count(stream, q) for q in sample]
    agree = sum(int(a == b) for a, b in zip(corpus.count_many(sample), brute))

    copied = planted[len(planted) // 2]["text"]
    probe = f"Nobody in Zanzibar has heard of it. {copied} The end of a new story about nothing."
    spans = corpus.maximal_spans(probe, min_length=5)
    longest = max(spans, key=lambda s: s.end - s.start) if spans else None
    next_tokens = corpus.ntd(" people talk about")
    top = sorted(next_tokens.counts.items(), key=lambda kv: -kv[1])[:3]
    boolean = corpus.search([[" Zoë"], [" Vellmar", " Kesh"]], window=12, limit=3)

    summary = {
        "preset": preset, "seed": seed, "code_version": manifest["code_version"],
        "corpus": {"documents": manifest["counts"]["documents"], "tokens": manifest["counts"]["tokens"],
                   "shards": manifest["counts"]["shards"], "corpus_hash": manifest["corpus_hash"]},
        "planted": {"passages": len(planted), "exact_counts": exact,
                    "by_copies": {str(c): [n for n, p in zip(counts, planted) if p["copies"] == c]
                                  for c in settings["duplication"]}},
        "find": {"query": planted[-1]["text"], "count": located.count, "documents": found_docs,
                 "planted_documents": planted[-1]["documents"]},
        "brute_force": {"queries": len(sample), "agree": agree},
        "spans": {"probe": probe, "longest": longest.to_dict() if longest else None, "copied": copied,
                  "copied_recovered": bool(longest and longest.text and copied in longest.text)},
        "ntd": {"prompt": " people talk about", "prompt_count": next_tokens.prompt_count,
                "top": [{"token": corpus.tokenizer.decode([tok]), "count": c} for tok, c in top]},
        "search": {"query": " Zoë AND ( Vellmar OR Kesh) within 12 tokens", "count": boolean.count,
                   "documents": boolean.documents},
        "seconds": {k: round(v, 3) for k, v in timings.items()},
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_bytes(out / "summary.txt", _readable(summary).encode("utf-8"))
    return summary


def _readable(s: dict[str, Any]) -> str:
    c, p = s["corpus"], s["planted"]
    lines = [
        f"seethrough demo ({s['preset']} preset, seed {s['seed']})",
        f"corpus: {c['documents']:,} documents, {c['tokens']:,} tokens, {c['shards']} shards, hash {c['corpus_hash'][:12]}",
        f"planted passages counted exactly (occurrences and documents): {p['exact_counts']}/{p['passages']}",
    ]
    for copies, found in p["by_copies"].items():
        lines.append(f"  planted {copies:>3} times -> counted {found}")
    lines += [
        f"find: {s['find']['count']} occurrence(s) in {len(s['find']['documents'])} documents; the same documents "
        f"as planted: {s['find']['documents'] == s['find']['planted_documents']}",
        f"brute-force check of {s['brute_force']['queries']} random n-grams: {s['brute_force']['agree']} agree",
        f"maximal spans: copied passage recovered = {s['spans']['copied_recovered']}"
        + (f" (longest span {s['spans']['longest']['end'] - s['spans']['longest']['start']} tokens, "
           f"seen {s['spans']['longest']['count']}x)" if s["spans"]["longest"] else ""),
        f"next token after '{s['ntd']['prompt'].strip()}' ({s['ntd']['prompt_count']} times): "
        + ", ".join(f"{t['token']!r} x{t['count']}" for t in s["ntd"]["top"]),
        f"boolean search {s['search']['query']}: {s['search']['count']} match(es) in {s['search']['documents']} document(s)",
        "seconds: " + ", ".join(f"{k} {v}" for k, v in s["seconds"].items()),
    ]
    return "\n".join(lines) + "\n"
