"""Torch's one-thread-per-core default against seethrough's thread policy, on a machine where another
process is busy (the shared-CI case), in one command.

Scores the 4-choice demo-world items (Pythia-70M shape, random weights) with the seethrough backend,
first with the machine otherwise idle, then with one busy competing process (a Python spin loop):
each time with threads = all cores (torch's default) and with ``default_threads()`` (one per core
the others leave free). The competitor starts before the policy samples the load.

    python benchmarks/threads_under_load.py [--items 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=300)
    args = parser.parse_args()

    import torch
    from lm_eval.api.instance import Instance

    from seethrough._threads import busy_cores, default_threads
    from seethrough.demo.world import generate_world, word_tokenizer_json
    from seethrough.evaluate.backend import SeethroughLM
    from seethrough.train.model import build_model

    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        world = generate_world(0, "default")
        build_model("pythia-70m", 50304, 2048, 0, seed=0).save_pretrained(root)
        (root / "tokenizer.json").write_text(word_tokenizer_json(world.vocabulary))
        (root / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast",
                                                                "eos_token": "<|endoftext|>"}))
        lm = SeethroughLM(pretrained=str(root), threads=cores)
        items = [i for i in world.eval_items if i["task"] == "birth_city"][:args.items]
        fewshot = "\n\n".join(f"{i['prompt']} {i['answer']}" for i in items[-3:]) + "\n\n"
        requests = [Instance("loglikelihood", {}, (fewshot + i["prompt"], " " + c), k)
                    for k, i in enumerate(items) for c in i["choices"]]

        def timed(threads: int) -> float:
            torch.set_num_threads(threads)
            began = time.perf_counter()
            lm.loglikelihood(requests, disable_tqdm=True)
            return time.perf_counter() - began

        timed(1)  # warm-up
        idle = {"all cores": timed(cores), "policy": timed(default_threads())}
        idle_busy = busy_cores()
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(2)  # let the competitor get going
            # the live check of the measure the policy rests on: one spinning competitor is about one core
            competitor_busy = busy_cores()
            policy_threads = default_threads()
            busy = {"all cores": timed(cores), "policy": timed(policy_threads)}
        finally:
            spinner.kill()
    print(f"{cores} cores, {len(requests)} 3-shot 4-choice requests, Pythia-70M shape, torch {torch.__version__}")
    print(f"idle machine:       {cores} threads {idle['all cores']:.2f} s, policy ({default_threads()} now) "
          f"{idle['policy']:.2f} s")
    print(f"busy cores measured: {idle_busy:.2f} idle, {competitor_busy:.2f} with the competitor (about 1 more)")
    print(f"one busy competitor: {cores} threads {busy['all cores']:.2f} s, policy ({policy_threads} thread(s)) "
          f"{busy['policy']:.2f} s -> policy {busy['all cores'] / busy['policy']:.2f}x faster")


if __name__ == "__main__":
    main()
