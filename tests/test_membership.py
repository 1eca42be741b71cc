"""Membership signals and their evaluation against hand-worked and brute-force computations."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from seethrough.audit.membership import (TokenScores, evaluate_signal, index_signal, model_signals,  # noqa: E402
                                         roc_auc, token_scores, tpr_at_fpr)


def brute_auc(members, nonmembers):
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a in members for b in nonmembers]
    return sum(pairs) / len(pairs)


def test_auc_by_hand_and_against_pairwise_counting():
    assert roc_auc(np.array([1.0, 2.0]), np.array([2.0, 0.0])) == pytest.approx(0.625)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)  # many ties
    assert roc_auc(a, b) == pytest.approx(brute_auc(a, b))
    assert roc_auc(np.arange(10.0) + 100, np.arange(10.0)) == 1.0  # perfectly separating
    assert roc_auc(np.arange(10.0), np.arange(10.0) + 100) == 0.0
    random_scores = rng.random(4000)
    assert abs(roc_auc(random_scores[:2000], random_scores[2000:]) - 0.5) < 0.03  # a random score


def test_tpr_at_low_fpr_by_hand():
    nonmembers = np.arange(100.0)  # threshold at 1% FPR: the 2nd highest non-member (98)
    members = np.array([98.0, 98.5, 99.5, 50.0])
    assert tpr_at_fpr(members, nonmembers, 0.01) == 0.5   # 98.5 and 99.5 are above 98
    assert tpr_at_fpr(members, nonmembers, 0.001) == 0.25  # only 99.5 is above 99
    row = evaluate_signal(np.arange(50.0) + 60, np.arange(50.0), rounds=200)
    assert row["auc"] == 1.0 and row["auc_ci"] == [1.0, 1.0] and row["tpr_at_1pct_fpr"] == 1.0


def test_signals_by_hand():
    lp = np.array([-1.0, -2.0, -3.0, -4.0, -5.0])
    scores = TokenScores(lp, mu=np.full(5, -2.0), sigma=np.full(5, 2.0))
    got = model_signals(scores, "some text", k=0.2)
    assert got["loss"] == -3.0
    assert got["zlib"] == pytest.approx(-3.0 / len(zlib.compress(b"some text")))
    assert got["min_k"] == -5.0  # the lowest 20% of 5 tokens: one token
    assert got["min_k_plus_plus"] == pytest.approx((-5.0 + 2.0) / 2.0)
    assert model_signals(scores, "x", k=0.4)["min_k"] == -4.5


def test_token_scores_against_one_prefix_at_a_time():
    from seethrough.train.model import build_model

    model = build_model("tiny", 61, 64, 0, seed=5).eval()
    texts = [[5, 9, 13, 2, 40], [7, 7, 7, 7, 7], [3, 4]]
    got = token_scores(model, texts, bos=0, batch_size=2)
    with torch.no_grad():
        for ids, scores in zip(texts, got):
            row = [0] + ids
            for t in range(len(ids)):
                logp = torch.log_softmax(model(input_ids=torch.tensor([row[:t + 1]])).logits[0, -1], -1)
                assert scores.logprobs[t] == pytest.approx(float(logp[ids[t]]), abs=1e-5)
                p = logp.exp()
                mu = float((p * logp).sum())
                assert scores.mu[t] == pytest.approx(mu, abs=1e-5)
                assert scores.sigma[t] == pytest.approx(float((p * (logp - mu) ** 2).sum().sqrt()), abs=1e-4)


def test_reference_signal_is_the_difference_of_mean_logprobs():
    from seethrough.audit.membership import score_texts
    from seethrough.train.model import build_model

    class Ids:  # a tokenizer whose "text" is space-separated ids
        def encode_batch(self, texts):
            return [[int(x) for x in t.split()] for t in texts]

    model = build_model("tiny", 61, 64, 0, seed=5).eval()
    other = build_model("tiny", 61, 64, 0, seed=6).eval()
    texts = ["5 9 13 2", "7 7 7 7 7 7"]
    same = score_texts(texts, Ids(), model, 0, reference=model)
    assert all(r.signals["reference"] == 0.0 for r in same)
    diff = score_texts(texts, Ids(), model, 0, reference=other)
    theirs = score_texts(texts, Ids(), other, 0)
    for d, t in zip(diff, theirs):
        assert d.signals["reference"] == pytest.approx(d.signals["loss"] - t.signals["loss"])


def test_index_signal_is_exact(word_corpus):
    corpus, token_docs, docs = word_corpus
    inside = token_docs[4][:6]
    got = index_signal(corpus, inside)
    assert got["index"] == 1.0 and got["covered"] == 1.0
    assert got["whole_text_count"] == corpus.count(inside)
    made_up = corpus.tokenizer.encode("ß ß ß ß 日本 日本 日本 日本")
    other = index_signal(corpus, made_up)
    assert other["index"] < 1.0 and other["whole_text_count"] == 0


def test_cli_evaluate_json(world_corpus, tmp_path):
    from seethrough.train import train

    root, _, world, docs = world_corpus
    train(root / "corpus", tmp_path / "run", {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "steps": 3,
                                              "threads": 1})
    members = sorted({d["text"] for d in docs if d["kind"] == "canary"})[:8]
    held = [c["text"] for c in world.truth["heldout_canaries"]][:12]
    for name, texts in (("m.jsonl", members), ("n.jsonl", held)):
        (tmp_path / name).write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    done = subprocess.run([sys.executable, "-m", "seethrough", "membership", str(tmp_path / "run"), "--corpus",
                           str(root / "corpus"), "--evaluate", str(tmp_path / "m.jsonl"), str(tmp_path / "n.jsonl"),
                           "--json", "--out", str(tmp_path / "mia")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["signals"]) == {"loss", "zlib", "min_k", "min_k_plus_plus", "index"}
    assert result["signals"]["index"]["auc"] == 1.0  # the data's answer is exact
    for row in result["signals"].values():
        assert set(row) >= {"auc", "auc_ci", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr"}
        assert row["auc_ci"][0] <= row["auc"] <= row["auc_ci"][1]
    assert (tmp_path / "mia" / "roc.png").exists() and (tmp_path / "mia" / "scores.jsonl").exists()
