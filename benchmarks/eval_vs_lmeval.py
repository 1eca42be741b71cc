"""seethrough's lm-eval backend against lm-eval's own ``hf`` backend: same model, same tasks, one process.

A Pythia-70M-shaped GPT-NeoX (6 layers, width 512, vocabulary padded to 50,304 as Pythia's;
random weights: speed does not depend on them) with the demo world's word-level tokenizer, and a
4-choice task from the demo world (the birth city of a person), 0-shot and 3-shot; with
``--phrases`` each choice is a phrase of 2-9 tokens instead of one city name, as in most
multiple-choice benchmarks. Per-item log-likelihoods are compared (1e-4) and per-item predictions
must be identical; only the ``simple_evaluate`` call is timed (model loading and imports are
reported apart).

seethrough's side runs as ``seethrough eval`` runs it: inside ``faster_lm_eval()``, which
compiles each lm-eval prompt template once instead of at every use (the same prompts) and reads
the package list of lm-eval's environment report in process instead of from a ``pip list``
subprocess (the same report). Because that helps any backend, the table also shows lm-eval's
``hf`` inside the same block, so the backend's own share of the gain is visible.

    python benchmarks/eval_vs_lmeval.py [--items 300] [--hf-batch-size 32] [--threads 2] [--repeats 3] [--phrases]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--hf-batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per configuration; medians are reported")
    parser.add_argument("--phrases", action="store_true",
                        help="choices of 2-9 tokens (a city and more words) instead of one city name")
    args = parser.parse_args()

    began = time.perf_counter()
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from seethrough.demo.world import generate_world, word_tokenizer_json
    from seethrough.evaluate.backend import SeethroughLM
    from seethrough.evaluate.harness import faster_lm_eval
    from seethrough.train.model import build_model
    imports = time.perf_counter() - began

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        world = generate_world(0, "default")
        model_dir = root / "model"
        build_model("pythia-70m", 50304, 2048, 0, seed=0).save_pretrained(model_dir)
        (model_dir / "tokenizer.json").write_text(word_tokenizer_json(world.vocabulary))
        (model_dir / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"}))
        items = [i for i in world.eval_items if i["task"] == "birth_city"][:args.items]
        if args.phrases:  # each choice becomes the city and 1-8 more words: continuations of 2-9 tokens
            rng = random.Random(0)
            words = [w for w in world.vocabulary if w.isalpha()]
            for item in items:
                phrases = [" ".join([c] + rng.choices(words, k=rng.randint(1, 8))) for c in item["choices"]]
                item["answer"] = phrases[item["choices"].index(item["answer"])]
                item["choices"] = phrases
        (root / "city.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
        (root / "city.yaml").write_text(
            f"task: bench_city\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {root / 'city.jsonl'}\n"
            "test_split: test\nfewshot_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{prompt}}\"\n"
            "doc_to_choice: \"{{choices}}\"\ndoc_to_target: \"{{choices.index(answer)}}\"\n"
            "metric_list:\n  - metric: acc\n")
        manager = TaskManager(include_path=str(root))

        loads = {}
        began = time.perf_counter()
        hf = HFLM(pretrained=str(model_dir), device="cpu", batch_size=args.hf_batch_size, dtype="float32")
        loads["hf"] = time.perf_counter() - began
        began = time.perf_counter()
        ours = SeethroughLM(pretrained=str(model_dir), threads=args.threads)  # torch threads are per process: both use these
        loads["seethrough"] = time.perf_counter() - began

        print(f"Pythia-70M shape ({sum(p.numel() for p in ours.model.parameters()) / 1e6:.1f}M parameters), "
              f"{len(items)} 4-choice items ({'choices of 2-9 tokens' if args.phrases else 'one-token choices'}), torch threads {torch.get_num_threads()}, lm-eval hf batch size {args.hf_batch_size}")
        print(f"start-up: imports {imports:.1f} s; model load: hf {loads['hf']:.2f} s, seethrough {loads['seethrough']:.2f} s")
        runs = (("hf", hf, False), ("hf + faster_lm_eval", hf, True), ("seethrough", ours, True))
        lm_seconds = {name: 0.0 for name, _, _ in runs}
        current = ["hf"]
        for lm in (hf, ours):  # time the backends' own calls too
            original = lm.loglikelihood

            def timed(requests, *rest, _original=original, **kwargs):
                began = time.perf_counter()
                try:
                    return _original(requests, *rest, **kwargs)
                finally:
                    lm_seconds[current[0]] += time.perf_counter() - began

            lm.loglikelihood = timed
        # warm-up: the process's first evaluation pays for building the dataset cache and loading
        # lm-eval's task machinery; without this the first backend timed would carry it alone
        for _, lm, compiled in runs:
            with faster_lm_eval() if compiled else contextlib.nullcontext():
                lm_eval.simple_evaluate(model=lm, tasks=["bench_city"], num_fewshot=3, limit=8, task_manager=manager)
        for shots in (0, 3):
            timings = {name: [] for name, _, _ in runs}
            inside = {name: [] for name, _, _ in runs}
            outputs = {}
            for _ in range(args.repeats):  # interleaved, so a slow minute of the machine hits every row
                for name, lm, compiled in runs:
                    current[0] = name
                    lm_seconds[name] = 0.0
                    began = time.perf_counter()
                    with faster_lm_eval() if compiled else contextlib.nullcontext():
                        outputs[name] = lm_eval.simple_evaluate(model=lm, tasks=["bench_city"], num_fewshot=shots,
                                                                log_samples=True, task_manager=manager,
                                                                fewshot_random_seed=0)
                    timings[name].append(time.perf_counter() - began)
                    inside[name].append(lm_seconds[name])
            a = outputs["hf"]["samples"]["bench_city"]
            for name in ("hf + faster_lm_eval", "seethrough"):
                b = outputs[name]["samples"]["bench_city"]
                worst = max(abs(ra[0][0] - rb[0][0]) for x, y in zip(a, b) for ra, rb in zip(x["resps"], y["resps"]))
                same = all(x["acc"] == y["acc"] and x["arguments"] == y["arguments"] for x, y in zip(a, b))
                if not same or worst > 1e-4:
                    raise SystemExit(f"results differ ({shots}-shot, {name}): predictions and prompts identical {same}, "
                                     f"max |dll| {worst:.2e}")
                if _package_lines(outputs[name]) != _package_lines(outputs["hf"]):
                    raise SystemExit(f"lm-eval's environment report differs ({name}): {_package_lines(outputs[name])}")
            print(f"{shots}-shot (acc {outputs['seethrough']['results']['bench_city']['acc,none']:.4f} in all runs, "
                  f"max |d loglik| vs hf {worst:.1e}, same package list in the environment report), "
                  f"median of {args.repeats}:")
            whole = {name: statistics.median(v) for name, v in timings.items()}
            lm_only = {name: statistics.median(v) for name, v in inside.items()}
            for name, _, _ in runs:
                print(f"  {name:<22} whole call {whole[name]:6.2f} s ({whole['hf'] / whole[name]:.2f}x hf; runs "
                      f"{' '.join(f'{t:.2f}' for t in timings[name])})   inside loglikelihood {lm_only[name]:6.2f} s "
                      f"({lm_only['hf'] / lm_only[name]:.2f}x hf)")
            print(f"  -> seethrough vs lm-eval hf: {whole['hf'] / whole['seethrough']:.2f}x (target >= 3); vs hf with "
                  f"the same faster_lm_eval: {whole['hf + faster_lm_eval'] / whole['seethrough']:.2f}x")
        shutil.rmtree(root, ignore_errors=True)


def _package_lines(output: dict) -> str:
    """The package versions in lm-eval's environment report (the part ``faster_lm_eval`` computes)."""
    return output.get("pretty_env_info", "").partition("Versions of relevant libraries:")[2]


if __name__ == "__main__":
    main()
