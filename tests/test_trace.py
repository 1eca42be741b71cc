"""Tracing finds exactly the planted spans; novelty and BM25 against brute force and by hand."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from seethrough.audit.trace import TraceSettings, bm25_scores, trace


def test_bm25_by_hand():
    got = bm25_scores([1], [[1], [2]])
    assert got[0] == pytest.approx(math.log(2)) and got[1] == 0.0
    # a longer document with the same term frequency scores lower (length normalisation)
    short, long = bm25_scores([1], [[1, 2], [1, 3, 4, 5, 6, 7], [8]])[:2]
    assert short > long > 0


def test_trace_finds_exactly_the_planted_spans(world_corpus):
    from seethrough import open_corpus

    root, corpus, world, docs = world_corpus
    index = open_corpus(root / "corpus")
    canaries = [c for c in world.truth["canaries"] if any(d.get("canary") == c["id"] for d in docs)][:2]
    text = "<unk> <unk> " + canaries[0]["text"] + " <unk> <unk> " + canaries[1]["text"] + " <unk>"
    ids = index.encode(text).tolist()
    result = trace(index, ids, TraceSettings(min_length=4, span_density=1.0, docs_per_span=100))
    assert [(s["start"], s["end"]) for s in result.to_dict()["spans"]] == [(2, 22), (24, 44)]
    for span, canary in zip(result.to_dict()["spans"], canaries):
        holders = sorted(i for i, d in enumerate(docs) if d["text"] == canary["text"])
        assert span["count"] == len(holders)
        assert sorted(d["doc"] for d in span["documents"]) == holders
        assert all(d["position"] == 0 for d in span["documents"])
    assert result.novelty["longest_copied_span"] == 20
    assert [m["spans"] for m in result.merged] == [[0], [1]]
    rarest = trace(index, ids, TraceSettings(min_length=4, span_density=0.0001)).to_dict()["spans"]
    assert len(rarest) == 1 and rarest[0]["unigram_logprob"] == min(s["unigram_logprob"] for s in result.to_dict()["spans"])


def test_novelty_against_brute_force(word_corpus):
    corpus, token_docs, _ = word_corpus
    ids = token_docs[7][:10] + corpus.tokenizer.encode("ß 日本 ß ß café naïve") + token_docs[9][:8]
    result = trace(corpus, ids, TraceSettings(novelty_max_n=6))

    def present(gram):
        return any(d[i:i + len(gram)] == gram for d in token_docs for i in range(len(d) - len(gram) + 1))

    for n in range(1, 7):
        grams = [ids[i:i + n] for i in range(len(ids) - n + 1)]
        assert result.novelty["found_share_by_n"][str(n)] == pytest.approx(sum(map(present, grams)) / len(grams))


def test_cli_trace_json(world_corpus, tiny_run):
    """With --text the model writes nothing, but TARGET names whose training data is searched (checked)."""
    root, _, world, docs = world_corpus
    canary = next(d["text"] for d in docs if d["kind"] == "canary")
    done = subprocess.run([sys.executable, "-m", "seethrough", "trace", str(tiny_run), "--corpus", str(root / "corpus"),
                           "--text", "<unk> " + canary, "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["spans"][0]["start"] == 1 and result["spans"][0]["end"] == 21
    assert {"doc", "position", "snippet", "bm25"} <= set(result["spans"][0]["documents"][0])
    assert "found_share_by_n" in result["novelty"]
