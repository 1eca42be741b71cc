"""``seethrough eval``: lm-eval tasks through seethrough's backend, written with full provenance,
and every item checked against the training index.

RESULTS (a folder): ``results.json`` (lm-eval's aggregate output, plus a ``seethrough`` block) and
``samples_<task>.jsonl`` (lm-eval's ``--log_samples`` lines, plus ``request_sha256``, ``flags`` and,
with a corpus, ``contamination``). With several checkpoints: ``step-N/`` per checkpoint and
``by_checkpoint.json`` / ``by_checkpoint.png`` (each metric against the step).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

from .._files import atomic_write_bytes, atomic_write_json, sha256_file, sha256_json
from .._version import code_version
from ..errors import QueryError


def _versions() -> dict[str, str]:
    import lm_eval
    import numpy
    import torch
    import transformers

    return {"lm_eval": getattr(lm_eval, "__version__", "unknown"), "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": numpy.__version__, "python": platform.python_version()}


def request_sha256(arguments: Any) -> str:
    """Hash of a rendered request: its arguments as canonical JSON (tuples become lists)."""
    return sha256_json(json.loads(json.dumps(arguments, default=str)))


def item_text(task: Any, doc: dict[str, Any]) -> str:
    """The item as it would appear in data: its prompt and its gold answer."""
    prompt = task.doc_to_text(doc)
    target = task.doc_to_target(doc)
    if task.OUTPUT_TYPE == "multiple_choice":
        choices = task.doc_to_choice(doc)
        target = choices[target] if isinstance(target, int) else target
    if isinstance(target, list):
        target = target[0] if target else ""
    prompt = prompt if isinstance(prompt, str) else ""
    return f"{prompt}{task.config.target_delimiter}{target}".strip()


def contamination(index: Any, text: str, ngram: int) -> dict[str, Any]:
    """Longest span of the item found in the corpus, the share of its tokens covered by found spans,
    and whether any ``ngram``-gram of it (the whole item, if shorter) occurs."""
    ids = index.tokenizer.encode(text) if index.tokenizer else []
    if not ids:
        return {"tokens": 0, "longest_span": 0, "covered": 0.0, "flagged": False}
    from ..index.engine import covered_share

    spans = index.maximal_spans(ids)  # every match lies inside one, so the longest span is the longest match
    n = min(ngram, len(ids))
    return {"tokens": len(ids), "longest_span": max((s.end - s.start for s in spans), default=0),
            "covered": covered_share(spans, len(ids)),
            "flagged": any(s.end - s.start >= n for s in spans), "ngram": n}


def _task_objects(manager: Any, tasks: list[str]) -> dict[str, Any]:
    """Task name -> Task object (``TaskManager.load`` from lm-eval 0.4.10, ``get_task_dict`` before)."""
    if hasattr(manager, "load"):
        return dict(manager.load(tasks)["tasks"])
    from lm_eval.tasks import get_task_dict

    return get_task_dict(tasks, manager)


def _argument_pairs(arguments: Any) -> list[tuple[Any, Any]]:
    """(context, continuation) of each request of a logged sample (lm-eval logs them as
    ``{"gen_args_0": {"arg_0": ..., "arg_1": ...}}``, older versions as lists)."""
    items = arguments.values() if isinstance(arguments, dict) else arguments
    pairs = []
    for args in items:
        if isinstance(args, dict):
            pairs.append((args.get("arg_0"), args.get("arg_1")))
        elif isinstance(args, (list, tuple)) and len(args) >= 2:
            pairs.append((args[0], args[1]))
    return [p for p in pairs if isinstance(p[0], str) and isinstance(p[1], str)]


def _numeric_metrics(sample: dict[str, Any], names: list[str]) -> dict[str, float]:
    return {m: float(sample[m]) for m in names if isinstance(sample.get(m), (int, float, bool))}


def evaluate_model(model_folder: str | Path, tasks: list[str], out: str | Path, include_path: str | Path | None = None,
                   num_fewshot: int | None = None, limit: int | None = None, corpus: Any = None, ngram: int = 13,
                   threads: int | None = None, extra_provenance: dict[str, Any] | None = None,
                   seed: int = 0, batch_size: int | str = "auto", cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluate one model folder; writes RESULTS and returns results.json's content."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    from ..corpus.tokenizer import load_tokenizer
    from .backend import SeethroughLM, weights_sha256
    from .harness import faster_lm_eval

    if not tasks:
        raise QueryError("--tasks is empty; name at least one lm-eval task")
    if include_path is not None and not Path(include_path).is_dir():
        raise QueryError(f"--include-path {include_path} is not a folder; pass the folder holding the task YAMLs")
    manager = TaskManager(include_path=str(include_path) if include_path else None)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise QueryError(f"unknown task(s) {', '.join(unknown)}; check the names, or pass --include-path with "
                         "the folder of their YAML files")
    began = time.perf_counter()
    lm = SeethroughLM(pretrained=str(model_folder), threads=threads, batch_size=batch_size,
                      cache_dir=str(cache_dir) if cache_dir else None)
    loaded = time.perf_counter()
    with _quiet("lm_eval"), faster_lm_eval():  # quiet: its notices about default aggregations drown the output
        try:
            output = lm_eval.simple_evaluate(model=lm, tasks=tasks, num_fewshot=num_fewshot, limit=limit,
                                             log_samples=True, task_manager=manager, random_seed=seed,
                                             numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)
        except FileNotFoundError as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise QueryError(f"a task's data could not be found ({first}); check the data_files of its YAML, or "
                             "that the dataset is downloaded (nothing is fetched at run time)") from None
    evaluated = time.perf_counter()
    samples = output.pop("samples")
    task_objects = _task_objects(manager, tasks) if corpus is not None else {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    requests_digest: dict[str, str] = {}
    contamination_report: dict[str, Any] = {}
    flagged_items: dict[str, int] = {}
    for task, rows in samples.items():
        digest = hashlib.sha256()
        metric_names = [k.split(",")[0] for k in output["results"].get(task, {}) if "," in k and "stderr" not in k]
        clean_values: dict[str, list[float]] = {}
        all_values: dict[str, list[float]] = {}
        flagged = 0
        for row in rows:
            row["request_sha256"] = request_sha256(row["arguments"])
            digest.update(row["request_sha256"].encode())
            row["flags"] = sorted({f for pair in _argument_pairs(row["arguments"]) for f in lm.flags.get(pair, [])})
            flagged_items[task] = flagged_items.get(task, 0) + bool(row["flags"])
            if corpus is not None and task in task_objects:
                row["contamination"] = contamination(corpus, item_text(task_objects[task], row["doc"]), ngram)
                values = _numeric_metrics(row, metric_names)
                for m, v in values.items():
                    all_values.setdefault(m, []).append(v)
                    if not row["contamination"]["flagged"]:
                        clean_values.setdefault(m, []).append(v)
                flagged += row["contamination"]["flagged"]
        requests_digest[task] = digest.hexdigest()
        if corpus is not None:
            contamination_report[task] = {
                "items": len(rows), "flagged": flagged, "ngram": ngram,
                "all": {m: sum(v) / len(v) for m, v in all_values.items()},
                "clean": {m: sum(v) / len(v) for m, v in clean_values.items()},
                "clean_items": len(rows) - flagged}
        text = "".join(json.dumps(r, default=handle_non_serializable, ensure_ascii=False) + "\n" for r in rows)
        atomic_write_bytes(out / f"samples_{task}.jsonl", text.encode("utf-8"))
    folder = Path(model_folder)
    tokenizer = load_tokenizer(folder) if (folder / "tokenizer.json").exists() else None
    output["seethrough"] = {
        "code_version": code_version(), "versions": _versions(),
        "model": {"path": str(folder.resolve()), "weights_sha256": weights_sha256(folder),
                  "tokenizer_sha256": tokenizer.sha256 if tokenizer else None, **(extra_provenance or {})},
        "corpus": ({"path": str(corpus.path), "corpus_hash": corpus.corpus.corpus_hash} if corpus is not None else None),
        "tasks": {t: {"config_sha256": sha256_json(json.loads(json.dumps(c, default=str)))}
                  for t, c in output.get("configs", {}).items()},
        "requests_sha256": requests_digest, "seed": seed, "num_fewshot": num_fewshot, "limit": limit,
        "include_path": str(Path(include_path).resolve()) if include_path else None, "ngram": ngram,
        "batch_size": batch_size,
        "cache": ({"dir": str(cache_dir), "hits": lm.cache.hits, "misses": lm.cache.misses} if lm.cache else None),
        "flagged_items": flagged_items, "contamination": contamination_report or None,
        "hardware": {"machine": platform.machine(), "processor": platform.processor() or None,
                     "cpus": os.cpu_count(), "threads": _threads()},
        "backend": "seethrough (lm-eval TemplateLM; batch-invariant)",
        # wall-clock seconds: loading the model and tokenizer, and lm-eval's whole evaluation call
        "timing": {"model_load_s": round(loaded - began, 3), "evaluation_s": round(evaluated - loaded, 3)},
    }
    atomic_write_bytes(out / "results.json",
                       (json.dumps(output, default=handle_non_serializable, indent=2, ensure_ascii=False) + "\n").encode())
    return output


@contextlib.contextmanager
def _quiet(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def run_provenance(run: Any, step: int) -> dict[str, Any]:
    manifest = run.path / "run.json"
    return {"run": str(run.path.resolve()), "run_manifest_sha256": sha256_file(manifest), "checkpoint_step": step,
            "corpus_hash": run.manifest["corpus"]["corpus_hash"]}


def verify_results(results_folder: str | Path, threads: int | None = None, tolerance: float = 1e-6) -> dict[str, Any]:
    """Re-run the recorded evaluation and list every item whose result differs."""
    folder = Path(results_folder)
    path = folder / "results.json"
    if not path.exists():
        raise QueryError(f"{folder} has no results.json; pass the folder `seethrough eval --out` wrote")
    recorded = json.loads(path.read_text(encoding="utf-8"))
    info = recorded["seethrough"]
    model = Path(info["model"]["path"])
    from .backend import weights_sha256

    if not model.exists() or weights_sha256(model) != info["model"]["weights_sha256"]:
        raise QueryError(f"the model {model} is missing or its weights changed since the evaluation; nothing to verify")
    tasks = list(info["requests_sha256"])
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        evaluate_model(model, tasks, tmp, include_path=info.get("include_path"),
                       num_fewshot=info["num_fewshot"], limit=info["limit"], threads=threads, seed=info["seed"])
        differences = []
        for task in tasks:
            old = [json.loads(x) for x in (folder / f"samples_{task}.jsonl").read_text().splitlines()]
            new = [json.loads(x) for x in (Path(tmp) / f"samples_{task}.jsonl").read_text().splitlines()]
            for a, b in zip(old, new):
                if a["request_sha256"] != b["request_sha256"] or not _same(a["resps"], b["resps"], tolerance):
                    differences.append({"task": task, "doc_id": a["doc_id"], "recorded": a["resps"], "now": b["resps"]})
            if len(old) != len(new):
                differences.append({"task": task, "items_recorded": len(old), "items_now": len(new)})
    return {"items_checked": sum(len((folder / f"samples_{t}.jsonl").read_text().splitlines()) for t in tasks),
            "differences": differences}


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, tolerance) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= tolerance
    return a == b


def write_checkpoint_table(per_step: dict[int, dict[str, Any]], out: Path) -> dict[str, Any]:
    """``by_checkpoint.json`` (metric -> step -> value) and ``by_checkpoint.png``."""
    table: dict[str, dict[str, float]] = {}
    for step, output in sorted(per_step.items()):
        for task, metrics in output["results"].items():
            for key, value in metrics.items():
                if "," in key and "stderr" not in key and isinstance(value, (int, float)):
                    table.setdefault(f"{task}/{key.split(',')[0]}", {})[str(step)] = float(value)
    atomic_write_json(out / "by_checkpoint.json", table)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, series in table.items():
        steps = [int(s) for s in series]
        ax.plot([max(s, 0.5) for s in steps], list(series.values()), marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("checkpoint step (0 drawn at 0.5)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = out / ".by_checkpoint.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out / "by_checkpoint.png")
    return table
