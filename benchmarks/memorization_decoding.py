"""Batched greedy decoding for memorization against Hugging Face ``generate``, in one process.

Three ways to get the 32 greedy tokens after each of N 32-token prompts, same model, same outputs
(asserted): HF ``generate`` one sequence at a time (how the Pythia memorization script is often
adapted), HF ``generate`` on batches, and seethrough's ``greedy_continuations`` (equal-length
batches, KV cache, argmax, no generation machinery). Prompts are rows of random token ids (the
throughput does not depend on what the weights memorized).

    python benchmarks/memorization_decoding.py [--model-size pythia-14m] [--sequences 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-size", default="pythia-14m")
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--sequences", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--cont-len", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from seethrough.model import greedy_continuations
    from seethrough.train.model import build_model

    torch.set_num_threads(args.threads)
    model = build_model(args.model_size, args.vocab, 2048, 0, seed=0).eval()
    prompts = torch.randint(1, args.vocab, (args.sequences, args.prompt_len), generator=torch.Generator().manual_seed(0))
    n = args.cont_len

    def hf(batch):
        with torch.inference_mode():
            out = model.generate(batch, attention_mask=torch.ones_like(batch), max_new_tokens=n, min_new_tokens=n,
                                 do_sample=False, pad_token_id=0)
        return out[:, args.prompt_len:].tolist()

    timings, outputs = {}, {}
    began = time.perf_counter()
    outputs["hf_one_at_a_time"] = [hf(prompts[i:i + 1])[0] for i in range(args.sequences)]
    timings["hf_one_at_a_time"] = time.perf_counter() - began
    began = time.perf_counter()
    outputs["hf_batched"] = [row for i in range(0, args.sequences, args.batch_size)
                             for row in hf(prompts[i:i + args.batch_size])]
    timings["hf_batched"] = time.perf_counter() - began
    began = time.perf_counter()
    outputs["seethrough"] = greedy_continuations(model, prompts.tolist(), n, batch_size=args.batch_size)
    timings["seethrough"] = time.perf_counter() - began
    if not (outputs["seethrough"] == outputs["hf_batched"] == outputs["hf_one_at_a_time"]):
        raise SystemExit("outputs differ between the decoders")
    params = sum(p.numel() for p in model.parameters())
    print(f"model {args.model_size} ({params / 1e6:.1f}M parameters), {args.sequences} prompts of {args.prompt_len} "
          f"tokens -> {n} greedy tokens, batch {args.batch_size}, torch threads {args.threads}; outputs identical")
    for name, seconds in timings.items():
        print(f"  {name:>17}: {seconds:7.2f} s  {args.sequences / seconds:8.1f} sequences/s")
    print(f"seethrough vs HF one at a time: {timings['hf_one_at_a_time'] / timings['seethrough']:.1f}x (target >= 5)")
    print(f"seethrough vs HF batched:       {timings['hf_batched'] / timings['seethrough']:.2f}x (target >= 1.5)")


if __name__ == "__main__":
    main()
