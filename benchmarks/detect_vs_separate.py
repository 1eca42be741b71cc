"""The eight one-pass detectors scored together against one forward pass per detector.

Baseline: the way separate detector scripts do it (Fast-DetectGPT's ``baselines.py``,
``detect_llm.py`` and ``fast_detect_gpt.py``, RAID's GLTR): each detector its own script, each
script one forward pass per text (batch of one) and its own statistic from the logits, ranks from a
full argsort of the vocabulary at each position. Eight detectors, eight passes (LRR takes its
likelihood and log-rank from one pass, as ``detect_llm.py`` does). The same baseline is also run
with texts batched as seethrough batches them (equal lengths, no padding), which isolates what
sharing one pass saves from what batching saves.

seethrough: ``DetectorSet(ONE_PASS, ...)``: one batched forward pass, every statistic from the same
logits. Both compute in float64 from the model's float32 logits; every score must agree to 1e-6
(relative) with the baseline's. The model is a GPT-NeoX of Pythia-14M's shape (6 layers, width 128)
with Pythia's padded vocabulary of 50,304 (random weights: speed does not depend on them) over texts
of random ids; torch threads as given (default 2). Medians of ``--repeats`` timed runs each.

    python benchmarks/detect_vs_separate.py [--texts 24] [--tokens 96] [--threads 2] [--batch-size 16]
                                            [--size pythia-14m] [--vocab 50304] [--repeats 1]

Measured with the defaults on the 2-core development machine (2 threads, other agents' jobs running,
load average 3 to 5): together 11.3 s, separate scripts 195.9 s (17.4x), separate passes batched 40.9 s
(3.6x: with a 50,304-token vocabulary the per-position statistics cost about as much as this small
model's pass); 2 forward passes against 192; worst relative difference 4.4e-7 (a batch of 16 and a
batch of 1 round the model's float32 products differently).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import zlib

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _log_softmax_rows(model, ids):
    import torch

    with torch.inference_mode():
        logits = model(input_ids=ids).logits[:, :-1]
    return torch.log_softmax(logits.double(), dim=-1), ids[:, 1:]


def _ranks(logp, labels):
    """1-based rank of each label, by a full argsort of the vocabulary (as the scripts compute it)."""
    order = logp.argsort(dim=-1, descending=True)
    return (order == labels[..., None]).nonzero()[:, -1].reshape(labels.shape) + 1


def _likelihood(logp, labels, text):
    return logp.gather(-1, labels[..., None])[..., 0].mean(-1)


def _logrank(logp, labels, text):
    return -_ranks(logp, labels).double().log().mean(-1)


def _rank(logp, labels, text):
    return -_ranks(logp, labels).double().mean(-1)


def _entropy(logp, labels, text):
    return (logp.exp() * logp).sum(-1).mean(-1)


def _gltr(logp, labels, text):
    return (_ranks(logp, labels) <= 10).double().mean(-1)


def _lrr(logp, labels, text):
    return -_likelihood(logp, labels, text) / _ranks(logp, labels).double().log().mean(-1)


def _zlib(logp, labels, text):
    return _likelihood(logp, labels, text) / len(zlib.compress(text.encode("utf-8")))


def _fast_detect_gpt(logp, labels, text):
    lp = logp.gather(-1, labels[..., None])[..., 0]
    probs = logp.exp()
    mean = (probs * logp).sum(-1)
    var = (probs * (logp - mean[..., None]).square()).sum(-1)
    return (lp.sum(-1) - mean.sum(-1)) / var.sum(-1).sqrt()


SEPARATE = {"likelihood": _likelihood, "logrank": _logrank, "rank": _rank, "entropy": _entropy, "gltr": _gltr,
            "lrr": _lrr, "zlib": _zlib, "fast_detect_gpt": _fast_detect_gpt}


def separate_scripts(model, rows, texts, batch_size):
    """Each detector its own pass over every text (``batch_size`` equal-length texts at a time)."""
    import torch

    out = {}
    for name, score in SEPARATE.items():
        values = []
        for start in range(0, len(rows), batch_size):
            logp, labels = _log_softmax_rows(model, torch.tensor(rows[start:start + batch_size]))
            chunk = texts[start:start + batch_size]
            if name == "zlib":
                values += [float(score(logp[i:i + 1], labels[i:i + 1], chunk[i])[0]) for i in range(len(chunk))]
            else:
                values += score(logp, labels, None).tolist()
        out[name] = values
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=24)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", default="pythia-14m")
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    from seethrough.audit.detect.detectors import ONE_PASS, DetectorSet
    from seethrough.train.model import build_model

    torch.set_num_threads(args.threads)
    model = build_model(args.size, args.vocab, 2048, 0, seed=0).eval()
    rng = np.random.default_rng(0)
    rows = rng.integers(1, args.vocab - 100, (args.texts, args.tokens)).tolist()
    texts = [" ".join(f"w{i}" for i in r) for r in rows]  # zlib's input; the ids are scored as given

    class Ids:  # the rows are the texts' token ids
        def encode_batch(self, batch):
            return [rows[texts.index(t)] for t in batch]

    together = DetectorSet(ONE_PASS, model, Ids(), batch_size=args.batch_size)

    def timed(fn):
        times, result = [], None
        for _ in range(args.repeats):
            began = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - began)
        return statistics.median(times), result

    ours_time, ours = timed(lambda: together.score(texts))
    one_time, one = timed(lambda: separate_scripts(model, rows, texts, 1))
    batched_time, batched = timed(lambda: separate_scripts(model, rows, texts, args.batch_size))
    worst = 0.0
    for name in ONE_PASS:
        for reference in (one, batched):
            a, b = np.asarray(ours[name]), np.asarray(reference[name])
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(1e-12, np.abs(b)))))
    assert worst < 1e-6, f"scores differ: worst relative difference {worst:.2e}"
    print(json.dumps({
        "texts": args.texts, "tokens": args.tokens, "model": args.size, "vocabulary": args.vocab,
        "threads": args.threads, "batch_size": args.batch_size, "repeats": args.repeats,
        "seconds": {"one_pass_together": round(ours_time, 3), "separate_scripts_batch_1": round(one_time, 3),
                    "separate_scripts_batched": round(batched_time, 3)},
        "speedup_vs_separate_scripts": round(one_time / ours_time, 2),
        "speedup_vs_separate_batched": round(batched_time / ours_time, 2),
        "worst_relative_difference": float(f"{worst:.3g}"),
        "forward_passes": {"together": math.ceil(args.texts / args.batch_size), "separate_scripts": 8 * args.texts},
    }, indent=2))


if __name__ == "__main__":
    main()
