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

Then the whole process, each command a fresh python as a user runs it (``--whole-repeats`` runs each,
interleaved; medians): what ``seethrough eval --limit 1`` takes (target: at most 5 s here), with its
results.json timing block and the import floors: what ``lm_eval --model hf`` imports (torch,
transformers' GPT-NeoX code, lm-eval's evaluator and tasks) and what ``seethrough eval`` imports for
a GPT-NeoX folder, whose model runs on ``model/neox.py`` (torch, tokenizers, lm-eval), and lm-eval's ``TaskManager()`` against
the cached task index; and the whole ``lm_eval --model hf`` command against ``seethrough eval`` and
``seethrough-lm-eval`` on the same task, 0-shot and 3-shot (target: at least 3x), scores compared. Each
whole-process figure comes with its CPU seconds (user + system), which other processes on a shared
machine disturb less than the wall time, and its best run. A summary at the end puts the in-process
speed-up beside the whole command's.

    python benchmarks/eval_vs_lmeval.py [--items 300] [--hf-batch-size 32] [--threads 2] [--repeats 3] [--phrases]
                                        [--whole-repeats 2] [--whole-only]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
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
    parser.add_argument("--whole-repeats", type=int, default=2,
                        help="runs of each whole-process command (fresh python each); medians are reported")
    parser.add_argument("--whole-only", action="store_true", help="only the whole-process figures")
    args = parser.parse_args()

    import torch

    from seethrough.demo.world import generate_world, word_tokenizer_json
    from seethrough.train.model import build_model

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
        tasks = root / "tasks"
        tasks.mkdir()
        (tasks / "city.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
        (tasks / "city.yaml").write_text(
            f"task: bench_city\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tasks / 'city.jsonl'}\n"
            "test_split: test\nfewshot_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{prompt}}\"\n"
            "doc_to_choice: \"{{choices}}\"\ndoc_to_target: \"{{choices.index(answer)}}\"\n"
            "metric_list:\n  - metric: acc\n")
        # a group of it: naming a group makes lm-eval resolve it over its whole task index
        (tasks / "group.yaml").write_text("group: bench_group\ntask:\n  - bench_city\n")
        inside = in_process(args, model_dir, tasks, items) if not args.whole_only else {}
        whole = whole_process(args, root, model_dir, tasks, len(items))
        shutil.rmtree(root, ignore_errors=True)
    summary(inside, whole)


def summary(inside: dict, whole: dict) -> None:
    """The in-process ratio (only ``simple_evaluate`` timed, both backends loaded) beside the whole
    command's (each a fresh python: imports, task index, model load, evaluation, exit)."""
    print("\nsummary (medians; speed-ups are lm-eval's time over seethrough's, target >= 3):")
    if "limit_one" in whole:
        print(f"  seethrough eval --limit 1, whole process: {whole['limit_one']:.2f} s, best {whole['limit_one_best']:.2f} "
              f"(target <= 5 s; importing torch, transformers' GPT-NeoX code and lm-eval's evaluator alone takes "
              f"{whole['floor']:.2f} s, which seethrough's plain GPT-NeoX avoids: torch, tokenizers and lm-eval "
              f"{whole['plain_floor']:.2f} s)")
    for shots in (0, 3):
        parts = []
        if shots in inside:
            parts.append(f"in process (simple_evaluate) {inside[shots]:.2f}x")
        if shots in whole.get("ratio", {}):
            parts.append(f"whole command (seethrough eval vs lm_eval) {whole['ratio'][shots]:.2f}x, "
                         f"in CPU seconds {whole['cpu_ratio'][shots]:.2f}x")
        if parts:
            print(f"  {shots}-shot: " + "; ".join(parts))


def in_process(args: argparse.Namespace, model_dir: Path, tasks: Path, items: list) -> dict[int, float]:
    """One process: both backends loaded once, only ``simple_evaluate`` timed; returns seethrough's
    speed-up over lm-eval's hf per shot count."""
    began = time.perf_counter()
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from seethrough.evaluate.backend import SeethroughLM
    from seethrough.evaluate.harness import faster_lm_eval
    imports = time.perf_counter() - began

    manager = TaskManager(include_path=str(tasks))

    loads = {}
    began = time.perf_counter()
    hf = HFLM(pretrained=str(model_dir), device="cpu", batch_size=args.hf_batch_size, dtype="float32")
    loads["hf"] = time.perf_counter() - began
    began = time.perf_counter()
    ours = SeethroughLM(pretrained=str(model_dir), threads=args.threads)  # torch threads are per process: both use these
    loads["seethrough"] = time.perf_counter() - began

    print(f"Pythia-70M shape ({sum(p.numel() for p in ours.model.parameters()) / 1e6:.1f}M parameters), "
          f"{len(items)} 4-choice items ({'choices of 2-9 tokens' if args.phrases else 'one-token choices'}), torch threads {torch.get_num_threads()}, lm-eval hf batch size {args.hf_batch_size}")
    print(f"start-up: imports {imports:.1f} s; model load: hf {loads['hf']:.2f} s, seethrough {loads['seethrough']:.2f} s; "
          f"load average {_load()} on {os.cpu_count()} CPUs")
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
    ratios = {}
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
        ratios[shots] = whole["hf"] / whole["seethrough"]
    return ratios


def whole_process(args: argparse.Namespace, root: Path, model_dir: Path, tasks: Path, n_items: int) -> dict:
    """Each command a fresh python, as a user runs it; every figure the wall time of the whole command
    (and, where said, its CPU seconds: user + system of the process and its children, which other
    processes on the machine disturb less than the wall time). Returns the figures the summary needs."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(root / "hf_home"), "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false",
           "SEETHROUGH_CACHE": str(root / "cache")}  # a cache of this run's own: its first use is a cold start
    # as a user's python runs: it keeps the bytecode of what it compiles (a session that set
    # PYTHONDONTWRITEBYTECODE would recompile every module edited since its cache was written, every run)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = root / "whole"

    cpu: list[float] = []  # CPU seconds of each command run, in order

    def run(command: list[str]) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command[:3])} ... failed:\n{done.stderr[-3000:]}")
        seconds = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        return seconds

    def python(code: str) -> float:
        """A fresh python running ``code`` and ending as ``seethrough eval`` ends (``os._exit``, no
        interpreter teardown), so the figure is what the imports cost."""
        return run([sys.executable, "-c", code + "; import os; os._exit(0)"])

    def seconds_printed(code: str) -> float:
        done = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        return float(done.stdout.split()[-1])

    seethrough = [str(bin_dir / "seethrough"), "eval", str(model_dir), "--include-path", str(tasks),
                  "--threads", str(args.threads)]
    print(f"\nwhole process (each command a fresh python; OMP_NUM_THREADS={args.threads}; medians of "
          f"{args.whole_repeats}, interleaved; load average {_load()} on {os.cpu_count()} CPUs):")
    floor = {name: [] for name in ("torch", "gpt_neox", "lm_eval", "all", "plain")}
    for _ in range(args.whole_repeats):
        floor["torch"].append(python("import torch"))
        floor["gpt_neox"].append(python("from transformers import GPTNeoXForCausalLM"))
        floor["lm_eval"].append(python("import lm_eval.evaluator, lm_eval.tasks"))
        floor["all"].append(python("from transformers import GPTNeoXForCausalLM; import lm_eval.evaluator, lm_eval.tasks"))
        # what seethrough eval imports for a GPT-NeoX folder: model.neox and tokenizers, no transformers models
        floor["plain"].append(python("import torch, tokenizers, safetensors, lm_eval.evaluator, lm_eval.tasks"))
    floor = {k: statistics.median(v) for k, v in floor.items()}
    print(f"  import floor (no exit teardown): python + torch {floor['torch']:.2f} s; + transformers' GPT-NeoX code {floor['gpt_neox']:.2f} s; "
          f"lm-eval's evaluator and tasks alone {floor['lm_eval']:.2f} s; all of them (what lm_eval --model hf imports) "
          f"{floor['all']:.2f} s; torch, tokenizers and lm-eval (what seethrough eval imports for a GPT-NeoX folder: "
          f"model/neox.py) {floor['plain']:.2f} s")

    def limit_one(kind: str, name: str) -> float:
        folder = out / f"limit_{kind}"
        seconds = run(seethrough + ["--tasks", name, "--limit", "1", "--out", str(folder)])
        timing[kind] = json.loads((folder / "results.json").read_text())["seethrough"]["timing"]
        return seconds

    timing: dict[str, dict] = {}
    run(seethrough + ["--tasks", "bench_city", "--limit", "1", "--out", str(out / "warm_up")])  # the dataset's cache
    cold = limit_one("group", "bench_group")  # the first to need lm-eval's shipped tasks: their index is built
    cold_timing = timing["group"]
    limit = {"task": [], "group": []}
    limit_cpu = {"task": [], "group": []}
    for _ in range(args.whole_repeats):
        for kind, name in (("task", "bench_city"), ("group", "bench_group")):
            limit[kind].append(limit_one(kind, name))
            limit_cpu[kind].append(cpu[-1])

    def stages(block: dict) -> str:
        return ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.2f}" for k, v in block.items())

    print(f"  seethrough eval --limit 1, a task of --include-path: {statistics.median(limit['task']):.2f} s (best "
          f"{min(limit['task']):.2f}; runs {' '.join(f'{t:.2f}' for t in limit['task'])}; target <= 5 s; CPU "
          f"{statistics.median(limit_cpu['task']):.2f} s); results.json timing: {stages(timing['task'])}")
    print(f"  seethrough eval --limit 1, a group (resolved over lm-eval's whole task index): "
          f"{statistics.median(limit['group']):.2f} s (runs {' '.join(f'{t:.2f}' for t in limit['group'])}); "
          f"timing: {stages(timing['group'])}; its first run, the index built and cached: {cold:.2f} s "
          f"(timing: {stages(cold_timing)})")
    index_code = ("import time; from lm_eval.tasks import TaskManager{imp}\nt = time.perf_counter()\n{body}\n"
                  "print(time.perf_counter() - t)")
    plain = statistics.median(seconds_printed(index_code.format(imp="", body="TaskManager()"))
                              for _ in range(args.whole_repeats))
    cached = statistics.median(seconds_printed(index_code.format(
        imp="; from seethrough.evaluate.tasks import cached_task_index", body="with cached_task_index(): TaskManager()"))
        for _ in range(args.whole_repeats))
    print(f"  lm-eval's TaskManager() in process (all {_task_count(env, root)} tasks it ships): {plain:.2f} s; its index "
          f"from seethrough's cache: {cached:.2f} s ({plain / cached:.0f}x)")

    figures = {"limit_one": statistics.median(limit["task"]), "limit_one_best": min(limit["task"]),
               "floor": floor["all"], "plain_floor": floor["plain"], "ratio": {}, "cpu_ratio": {}}
    lm_eval = bin_dir / "lm_eval"
    if not lm_eval.exists():
        print("  (no lm_eval command beside this python: the whole-command comparison is skipped)")
        return figures
    for shots in (0, 3):
        commands = {
            "lm_eval --model hf": [str(lm_eval), "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
                                   "--device", "cpu", "--batch_size", str(args.hf_batch_size), "--tasks", "bench_city",
                                   "--include_path", str(tasks), "--num_fewshot", str(shots), "--log_samples",
                                   "--output_path", str(out / f"lm_eval_{shots}")],
            "seethrough eval": seethrough + ["--tasks", "bench_city", "--num-fewshot", str(shots),
                                             "--out", str(out / f"seethrough_{shots}")],
            "seethrough-lm-eval": [str(bin_dir / "seethrough-lm-eval"), "--model", "seethrough", "--model_args",
                                   f"pretrained={model_dir},threads={args.threads}", "--batch_size", "auto",
                                   "--device", "cpu", "--tasks",
                                   "bench_city", "--include_path", str(tasks), "--num_fewshot", str(shots),
                                   "--log_samples", "--output_path", str(out / f"seethrough_lm_eval_{shots}")],
        }
        seconds = {name: [] for name in commands}
        cpu_seconds = {name: [] for name in commands}
        accs = {name: set() for name in commands}
        for repeat in range(args.whole_repeats):
            for name, command in commands.items():
                folder = Path(command[-1]) / str(repeat)  # each run its own output folder
                seconds[name].append(run(command[:-1] + [str(folder)]))
                cpu_seconds[name].append(cpu[-1])
                accs[name].add(_acc(folder))
        if len({a for found in accs.values() for a in found}) != 1:
            raise SystemExit(f"{shots}-shot: the commands' accuracies differ: {accs}")
        accs = {name: found.pop() for name, found in accs.items()}
        medians = {name: statistics.median(v) for name, v in seconds.items()}
        cpu_medians = {name: statistics.median(v) for name, v in cpu_seconds.items()}
        base = medians["lm_eval --model hf"]
        print(f"  {shots}-shot, {n_items} items, the whole command (acc {accs['seethrough eval']:.4f} from all three):")
        for name, value in medians.items():
            print(f"    {name:<20} {value:6.2f} s ({base / value:.2f}x lm_eval; best {min(seconds[name]):.2f}; runs "
                  f"{' '.join(f'{t:.2f}' for t in seconds[name])}; CPU {cpu_medians[name]:.2f} s)")
        figures["ratio"][shots] = base / medians["seethrough eval"]
        figures["cpu_ratio"][shots] = cpu_medians["lm_eval --model hf"] / cpu_medians["seethrough eval"]
        print(f"    -> seethrough eval vs lm_eval: {figures['ratio'][shots]:.2f}x (target >= 3; best against best "
              f"{min(seconds['lm_eval --model hf']) / min(seconds['seethrough eval']):.2f}x; in CPU seconds "
              f"{figures['cpu_ratio'][shots]:.2f}x); load average now {_load()}")
    return figures


def _load() -> str:
    """The 1-minute load average: other processes on the machine slow every row alike, and the absolute
    figures with them."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"


def _acc(folder: Path) -> float:
    """bench_city's acc in an output folder of ``seethrough eval`` (results.json) or of lm-eval's tracker."""
    (results,) = [folder / "results.json"] if (folder / "results.json").is_file() else folder.glob("*/results_*.json")
    return json.loads(results.read_text())["results"]["bench_city"]["acc,none"]


def _task_count(env: dict, root: Path) -> str:
    done = subprocess.run([sys.executable, "-c", "from seethrough.evaluate.tasks import cached_task_index\n"
                           "from lm_eval.tasks import TaskManager\nwith cached_task_index(): print(len(TaskManager().all_tasks))"],
                          env=env, cwd=root, capture_output=True, text=True)
    return f"{int(done.stdout.split()[-1]):,}" if done.returncode == 0 else "the"


def _package_lines(output: dict) -> str:
    """The package versions in lm-eval's environment report (the part ``faster_lm_eval`` computes)."""
    return output.get("pretty_env_info", "").partition("Versions of relevant libraries:")[2]


if __name__ == "__main__":
    main()
