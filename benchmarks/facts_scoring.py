"""The facts audit's ranking through seethrough's eval backend against lm-eval's own ``hf`` backend.

1,000 questions x 16 candidates (``--questions``, ``--candidates``), each candidate scored by the
log-likelihood of " " + candidate after the prompt, exactly as ``seethrough facts`` ranks them
(``audit.facts.rank_candidates``: one ``loglikelihood`` call over every request) with either backend
as the LM. A Pythia-70M-shaped GPT-NeoX (6 layers, width 512, vocabulary padded to 50,304 as
Pythia's; random weights: speed does not depend on them) over a word-level tokenizer of single-token
people and cities; ``--two-token`` makes each candidate two tokens ("c3 town"). Every candidate's
log-likelihood must agree within 1e-4 and every prediction and rank must be identical where no two
candidates are within 1e-4 of each other (the count of such near ties is printed); only the scoring
call is timed, interleaved over ``--repeats`` runs (medians), after one warm-up call each.

    python benchmarks/facts_scoring.py [--questions 1000] [--candidates 16] [--threads 2] [--hf-batch-size 32]
                                       [--repeats 3] [--two-token]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hf-batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per backend; medians are reported")
    parser.add_argument("--two-token", action="store_true", help="candidates of two tokens instead of one")
    args = parser.parse_args()

    began = time.perf_counter()
    import torch
    from lm_eval.models.huggingface import HFLM
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    from seethrough.audit.fact_questions import FactQuestion
    from seethrough.audit.facts import rank_candidates
    from seethrough.evaluate.backend import SeethroughLM
    from seethrough.train.model import build_model
    imports = time.perf_counter() - began

    torch.set_num_threads(args.threads)
    people = [f"p{i}" for i in range(args.questions)]
    cities = [f"c{i}" for i in range(args.candidates)]
    words = ["<|endoftext|>", "[UNK]", "was", "born", "in", "town", "."] + people + cities
    names = [f"{c} town" if args.two_token else c for c in cities]
    questions = [FactQuestion(f"q{i}", p, f"{p} was born in", names[i % len(names)], names)
                 for i, p in enumerate(people)]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        build_model("pythia-70m", 50304, 2048, 0, seed=0).save_pretrained(model_dir)
        tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tok.decoder = decoders.WordPiece(prefix="##")
        tok.save(str(model_dir / "tokenizer.json"))
        (model_dir / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"}))
        began = time.perf_counter()
        hf = HFLM(pretrained=str(model_dir), device="cpu", batch_size=args.hf_batch_size, dtype="float32")
        hf_load = time.perf_counter() - began
        began = time.perf_counter()
        ours = SeethroughLM(str(model_dir), threads=args.threads)  # torch threads are per process: both use these
        ours_load = time.perf_counter() - began
        backends = {"lm-eval hf": hf, "seethrough": ours}
        print(f"Pythia-70M shape ({sum(p.numel() for p in ours.model.parameters()) / 1e6:.1f}M parameters), "
              f"{len(questions)} questions x {len(names)} candidates of {2 if args.two_token else 1} token(s) "
              f"= {len(questions) * len(names)} requests; torch threads {torch.get_num_threads()}, lm-eval hf batch "
              f"size {args.hf_batch_size}, seethrough batch size auto")
        print(f"start-up: imports {imports:.1f} s; model load: hf {hf_load:.2f} s, seethrough {ours_load:.2f} s")
        for lm in backends.values():  # warm-up: first-call costs (allocator, kernels) are not the ranking's
            rank_candidates(lm, questions[:20])
        timings: dict[str, list[float]] = {name: [] for name in backends}
        answers = {}
        for _ in range(args.repeats):  # interleaved, so a slow minute of the machine hits both
            for name, lm in backends.items():
                began = time.perf_counter()
                answers[name] = rank_candidates(lm, questions)
                timings[name].append(time.perf_counter() - began)
        worst, ties = 0.0, 0
        for a, b in zip(answers["lm-eval hf"], answers["seethrough"]):
            worst = max(worst, max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)))
            top = sorted(a.logprobs, reverse=True)
            if len(top) > 1 and top[0] - top[1] <= 1e-4:
                ties += 1
                continue
            if (a.predicted, a.rank, a.correct) != (b.predicted, b.rank, b.correct):
                raise SystemExit(f"results differ on {a.predicted} vs {b.predicted} (rank {a.rank} vs {b.rank})")
        if worst > 1e-4:
            raise SystemExit(f"log-likelihoods differ by up to {worst:.2e} (more than 1e-4)")
        median = {name: statistics.median(v) for name, v in timings.items()}
        correct = sum(a.correct for a in answers["seethrough"])
        print(f"results identical: every prediction and rank ({ties} near ties skipped), {correct} correct; max |d "
              f"loglik| {worst:.1e}")
        for name in backends:
            print(f"  {name:<11} {median[name]:6.2f} s (runs {' '.join(f'{t:.2f}' for t in timings[name])})  "
                  f"{len(questions) * len(names) / median[name]:8.0f} requests/s")
        print(f"  -> seethrough vs lm-eval hf: {median['lm-eval hf'] / median['seethrough']:.2f}x (target >= 3)")


if __name__ == "__main__":
    main()
