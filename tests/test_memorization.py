"""Memorization metrics against hand-worked cases, greedy decoding against HF generate, and the
sampled sequences against the data order."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from seethrough.model import greedy_continuations  # noqa: E402
from seethrough.audit.memorization import (Sequence, add_duplicates, duplication_bucket, measure,  # noqa: E402
                                           sample_run_sequences, summarize, wilson_interval)


class NextIsPlusOne(torch.nn.Module):
    """A 'model' whose greedy next token is (last token + 1) mod V, with a cache like HF's."""

    def __init__(self, vocab=50):
        super().__init__()
        self.vocab = vocab
        self.calls = 0

    def forward(self, input_ids, use_cache=True, cache=None):
        self.calls += 1
        logits = torch.zeros(*input_ids.shape, self.vocab)
        logits.scatter_(2, ((input_ids + 1) % self.vocab).unsqueeze(-1), 1.0)
        return SimpleNamespace(logits=logits, cache=(cache or 0) + input_ids.shape[1])


def test_scores_by_hand():
    model = NextIsPlusOne()
    seqs = [Sequence([3, 4, 5, 6, 9, 8]), Sequence([10, 11, 12, 13, 14, 15]), Sequence([48, 49, 7, 7, 7, 7])]
    results = measure(model, seqs, prompt_len=2, cont_len=4)
    assert [r.generated_ids for r in results] == [[5, 6, 7, 8], [12, 13, 14, 15], [0, 1, 2, 3]]
    assert [r.score for r in results] == [0.75, 1.0, 0.0]
    assert [r.extracted for r in results] == [False, True, False]
    assert model.calls == 4  # one batched call per generated token, the cache carries the prompt


def test_wilson_interval_and_buckets_by_hand():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0 and hi == pytest.approx(0.2775, abs=1e-4)
    for n in (3, 16, 64, 1000):  # the point estimate lies inside its interval, at both ends too
        for k in (0, 1, n - 1, n):
            lo, hi = wilson_interval(k, n)
            assert 0 <= lo <= k / n <= hi <= 1
    assert [duplication_bucket(c) for c in (0, 1, 2, 3, 4, 7, 8, 100)] == [0, 1, 2, 2, 4, 4, 8, 64]


def test_summary_groups_by_duplication():
    from seethrough.audit.memorization import MemorizationResult

    results = [MemorizationResult(i, [], [], [], s, s == 1.0, d) for i, (s, d) in
               enumerate([(1.0, 64), (0.5, 64), (1.0, 70), (0.0, 1), (0.0, 0)])]
    rows = {r["duplicates"]: r for r in summarize(results)}
    assert rows[64]["n"] == 3 and rows[64]["extracted"] == pytest.approx(2 / 3)
    assert rows[64]["score"] == pytest.approx(2.5 / 3) and rows[1]["extracted"] == 0 and rows[0]["n"] == 1


def test_batched_greedy_equals_hf_generate_one_at_a_time():
    from seethrough.train.model import build_model

    model = build_model("tiny", 97, 64, 0, seed=3).eval()
    rng = np.random.default_rng(0)
    prompts = [rng.integers(1, 97, size=n).tolist() for n in (5, 5, 5, 8, 8, 3)]
    ours = greedy_continuations(model, prompts, 10, batch_size=4)
    for prompt, got in zip(prompts, ours):
        ids = torch.tensor([prompt])
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, min_new_tokens=10,
                             do_sample=False, pad_token_id=0)
        assert got == ref[0, len(prompt):].tolist()


def test_duplicates_and_run_samples(world_corpus, tmp_path):
    from seethrough import open_corpus
    from seethrough.train import train
    from seethrough.train.run import open_run

    root, corpus, _, _ = world_corpus
    train(root / "corpus", tmp_path / "run", {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "steps": 4,
                                              "threads": 1})
    run = open_run(tmp_path / "run")
    seqs = sample_run_sequences(run, 12, 12, before_step=4, seed=1)
    assert len(seqs) == 12
    for s in seqs:
        batch = run.batch(s.source["step"])
        assert s.ids == batch.token_ids[batch.rows.index(s.source["row"])][:12].tolist()
    index = open_corpus(root / "corpus")
    results = measure(NextIsPlusOne(corpus.vocab_size), seqs, 6, 6)
    add_duplicates(results, index, run.order.spec.eod_id)
    docs = [corpus.document_tokens(i).tolist() for i in range(corpus.num_documents)]
    for r in results:
        ids = r.prompt_ids + r.true_ids
        while ids[0] == 0:
            ids = ids[1:]
        expected = 0 if 0 in ids else sum(d[i:i + len(ids)] == ids for d in docs for i in range(len(d)))
        assert r.duplicates == expected


def test_cli_memorization_sequences_json(world_corpus, tmp_path):
    from seethrough.train import train

    root, corpus, world, docs = world_corpus
    train(root / "corpus", tmp_path / "run", {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "steps": 2,
                                              "threads": 1})
    canaries = [d["text"] for d in docs if d["kind"] == "canary"][:5]
    (tmp_path / "seqs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in canaries))
    done = subprocess.run([sys.executable, "-m", "seethrough", "memorization", str(tmp_path / "run"), "--corpus",
                           str(root / "corpus"), "--sequences", str(tmp_path / "seqs.jsonl"), "--prompt-len", "8",
                           "--cont-len", "12", "--json", "--out", str(tmp_path / "mem")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    assert [x["line"] for x in lines] == list(range(5))
    for x, text in zip(lines, canaries):
        assert len(x["generated_ids"]) == 12 and 0 <= x["score"] <= 1
        assert x["extracted"] == (x["score"] == 1.0)
        assert x["duplicates"] == sum(d["text"].count(text) for d in docs)
    for name in ("memorization.parquet", "memorization.csv", "summary.json", "extraction_by_duplication.png"):
        assert (tmp_path / "mem" / name).exists()


def test_a_plain_model_folder_samples_the_corpus(world_corpus, tmp_path):
    """MODEL instead of RUN: sequences come from random corpus positions, recorded in the results."""
    from seethrough import open_corpus
    from seethrough.audit.memorization import evaluate_memorization
    from seethrough.train import train

    root, corpus, _, _ = world_corpus
    train(root / "corpus", tmp_path / "run", {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "steps": 1,
                                              "threads": 1})
    index = open_corpus(root / "corpus")
    results = evaluate_memorization(tmp_path / "run/checkpoints/step-1", index, sample=6, prompt_len=4, cont_len=4)
    (label, items), = results.results.items()
    assert label == "step-1" and len(items) == 6
    for r in items:
        doc, at = r.source["doc"], r.source["doc_position"]
        assert r.prompt_ids + r.true_ids == corpus.document_tokens(doc)[at:at + 8].tolist()
        assert r.duplicates >= 1  # drawn from the corpus, so found in it


def test_checkpoints_are_compared_on_the_same_sequences(world_corpus, tmp_path):
    from seethrough import open_corpus
    from seethrough.audit.memorization import evaluate_memorization
    from seethrough.audit.seen import seen_before
    from seethrough.train import open_run, train

    root, _, _, _ = world_corpus
    train(root / "corpus", tmp_path / "run", {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "steps": 4,
                                              "threads": 1})
    results = evaluate_memorization(tmp_path / "run", open_corpus(root / "corpus"), sample=10, prompt_len=4,
                                    cont_len=4, checkpoints="all")
    assert list(results.results) == ["step-0", "step-1", "step-2", "step-4"]
    assert [c.step for c in results.checkpoints.values()] == [0, 1, 2, 4]
    ids = [[r.prompt_ids + r.true_ids for r in items] for items in results.results.values()]
    assert all(x == ids[0] for x in ids)
    run = open_run(tmp_path / "run")
    for label, items in results.results.items():
        step = results.checkpoints[label].step
        for r in items:
            if "times_seen" in r.source:
                assert r.source["times_seen"] == seen_before(run, r.prompt_ids + r.true_ids, step).count
                assert step > 0 or r.source["times_seen"] == 0


def test_prompt_lengths_share_the_continuation(world_corpus, tmp_path):
    from seethrough import open_corpus
    from seethrough.audit.memorization import evaluate_memorization
    from seethrough.train import train

    root, corpus, _, _ = world_corpus
    train(root / "corpus", tmp_path / "run", {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "steps": 2,
                                              "threads": 1})
    results = evaluate_memorization(tmp_path / "run", open_corpus(root / "corpus"), sample=8, prompt_len=[2, 6],
                                    cont_len=4)
    assert list(results.results) == ["step-2 prompt-2", "step-2 prompt-6"]
    short, long = results.results["step-2 prompt-2"], results.results["step-2 prompt-6"]
    for a, b in zip(short, long):
        assert a.true_ids == b.true_ids and a.prompt_ids == b.prompt_ids[-2:]
        assert a.source["prompt_len"] == 2 and b.source["prompt_len"] == 6
