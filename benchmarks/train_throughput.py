"""Tokens/s of ``seethrough train`` against a minimal reference loop, in one process.

The reference is the same HF ``GPTNeoXForCausalLM`` (same shape, same seed) fed the same batches
through a plain ``for`` loop: ``loss = model(input_ids=x, labels=x).loss; backward; AdamW step``,
with nothing else (no hashing, logging, checkpoints or data-order lookups). The seethrough run pays
for all of those, including its log-spaced checkpoints. Both are timed per step (median after
warm-up) and over the whole loop; the reference runs before and after seethrough and its two
timings are averaged, so drift on a shared machine shows in the spread.

    python benchmarks/train_throughput.py [--steps 60] [--model-size small] [--threads 2]

Threads are set explicitly (``torch.set_num_threads``) for both loops; the figure is what was set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def reference_loop(order, model_size: str, vocab: int, eod: int, seed: int, steps: int, lr: float) -> list[float]:
    import torch

    from seethrough.train.model import build_model

    model = build_model(model_size, vocab, order.spec.seq_len, eod, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    batches = [torch.from_numpy(order.batch(s).token_ids) for s in range(steps)]  # data prepared up front
    times = []
    for batch in batches:
        began = time.perf_counter()
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--model-size", default="small")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from seethrough import build_corpus, open_token_corpus
    from seethrough.corpus import CorpusBuildConfig
    from seethrough.demo.world import generate_world, write_world
    from seethrough.train import train
    from seethrough.train.order import DataOrder, OrderSpec, find_eod_id

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_world(generate_world(0, "default"), root / "world")
        build_corpus([root / "world/docs.jsonl"], root / "world/tokenizer.json", root / "corpus",
                     CorpusBuildConfig(shard_tokens=200_000))
        corpus = open_token_corpus(root / "corpus")
        eod = find_eod_id(corpus)
        order = DataOrder(corpus, OrderSpec(corpus.corpus_hash, 1234, args.seq_len, args.batch_size, eod))
        tokens_per_step = args.batch_size * args.seq_len
        warm = min(5, args.steps // 4)

        def rate(times: list[float]) -> float:
            return tokens_per_step / statistics.median(times[warm:])

        ref_a = reference_loop(order, args.model_size, corpus.vocab_size, eod, 1234, args.steps, 2e-3)
        steps_seen: list[float] = []
        began = time.perf_counter()
        train(root / "corpus", root / "run", {"model_size": args.model_size, "steps": args.steps, "seed": 1234,
                                              "batch_size": args.batch_size, "seq_len": args.seq_len,
                                              "threads": args.threads},
              progress=lambda r: steps_seen.append(r["seconds"]))
        ours_wall = time.perf_counter() - began
        ref_b = reference_loop(order, args.model_size, corpus.vocab_size, eod, 1234, args.steps, 2e-3)

    ref_rates = [rate(ref_a), rate(ref_b)]
    ours = rate(steps_seen)
    ref = statistics.mean(ref_rates)
    print(f"model {args.model_size}, batch {args.batch_size} x {args.seq_len}, {args.steps} steps, "
          f"torch threads {args.threads}, torch {torch.__version__}")
    print(f"reference loop   : {ref:,.0f} tokens/s per step (median; runs {ref_rates[0]:,.0f} and {ref_rates[1]:,.0f}), "
          f"loop wall {sum(ref_a):.1f} s / {sum(ref_b):.1f} s")
    print(f"seethrough train : {ours:,.0f} tokens/s per step (median), whole call {ours_wall:.1f} s "
          f"(start-up, step-0..last checkpoints and logging included)")
    print(f"ratio seethrough / reference (per step): {ours / ref:.2f}x   (target >= 1.0)")
    print(f"ratio by loop wall time: {statistics.mean([sum(ref_a), sum(ref_b)]) / ours_wall:.2f}x")


if __name__ == "__main__":
    main()
