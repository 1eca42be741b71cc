"""``seethrough eval``: lm-eval tasks through seethrough's backend, with full provenance, every item
checked against the training index, and a record that can be verified by running it again.

Running is apart from writing, as lm-eval's ``simple_evaluate`` returns and its tracker writes:
``evaluate_model`` returns an ``EvalResult``; ``write_results`` writes it; ``read_results`` reads a
written one back; ``verify_results`` runs the recorded evaluation again and compares every number.

RESULTS (a folder): ``results.json`` (lm-eval's aggregate output, plus a ``seethrough`` block) and
``samples_<task>.jsonl`` (lm-eval's ``--log_samples`` lines, plus ``request_sha256``, ``flags`` and,
with a corpus, ``contamination``). With several checkpoints: ``step-N/`` per checkpoint and
``by_checkpoint.json`` / ``by_checkpoint.png`` (each metric against the step).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from .._files import atomic_write_bytes, atomic_write_json, sha256_file, sha256_json
from .._version import code_version
from ..errors import QueryError

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples_{task}.jsonl"

# ---- lm-eval's metric keys ------------------------------------------------------------------------


def split_metric_key(key: Any) -> tuple[str, str] | None:
    """lm-eval's result key ``METRIC,FILTER`` as ``(METRIC, FILTER)``: ``"acc,none"`` -> ``("acc", "none")``,
    ``"acc_stderr,none"`` -> ``("acc_stderr", "none")``; None for a key that is not a metric's
    (``alias``, ``samples``, ...). The one place these keys are parsed."""
    if not isinstance(key, str):
        return None
    metric, comma, filter_name = key.partition(",")
    if not comma or not metric or not filter_name:
        return None
    return metric, filter_name


STDERR_SUFFIX = "_stderr"


def metric_label(metric: str, filter_name: str) -> str:
    """How a metric is named in seethrough's tables: ``acc`` under lm-eval's default filter ``none``,
    else lm-eval's own key (``exact_match,strict-match``), so that two filters never share a name."""
    return metric if filter_name == "none" else f"{metric},{filter_name}"


@dataclass(frozen=True)
class Score:
    """One aggregate metric of one task, as lm-eval reports it (and its stderr: None where lm-eval has N/A)."""
    task: str
    metric: str
    filter: str
    value: float
    stderr: float | None

    @property
    def label(self) -> str:
        return metric_label(self.metric, self.filter)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "metric": self.metric, "filter": self.filter, "value": self.value,
                "stderr": self.stderr}


def task_scores(task: str, metrics: Mapping[str, Any]) -> list[Score]:
    """The numeric metrics of one task's entry in lm-eval's ``results`` (stderr keys folded into their
    metric's ``Score``), in lm-eval's order."""
    scores = []
    for key, value in metrics.items():
        parts = split_metric_key(key)
        if parts is None or parts[0].endswith(STDERR_SUFFIX) or not _is_number(value):
            continue
        metric, filter_name = parts
        stderr = metrics.get(f"{metric}{STDERR_SUFFIX},{filter_name}")
        scores.append(Score(task, metric, filter_name, float(value), float(stderr) if _is_number(stderr) else None))
    return scores


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---- seeds ----------------------------------------------------------------------------------------

SEED_NAMES = ("random", "numpy", "torch", "fewshot")
"""What lm-eval's four seeds seed: python's ``random``, numpy, torch, and the few-shot sampler."""
DEFAULT_SEEDS = (0, 1234, 1234, 1234)
"""lm-eval's defaults (``lm_eval --seed`` unset, and ``simple_evaluate``'s own)."""


def parse_seed(seed: int | str | Sequence[int | None] | None = None) -> tuple[int | None, ...]:
    """The four seeds, with lm-eval's ``--seed`` semantics: None gives its defaults 0,1234,1234,1234; one
    integer seeds all four; a comma list (or a sequence) gives four, each an integer or None (None:
    leave that generator unseeded); three values take the few-shot seed from the defaults."""
    if seed is None:
        return DEFAULT_SEEDS
    if isinstance(seed, bool):
        raise _seed_error(seed, "not an integer")
    if isinstance(seed, int):
        return (seed,) * len(DEFAULT_SEEDS)
    items = seed.split(",") if isinstance(seed, str) else list(seed)
    values: list[int | None] = []
    for item in items:
        if item is None or (isinstance(item, str) and item.strip().lower() == "none"):
            values.append(None)
        elif isinstance(item, int) and not isinstance(item, bool):
            values.append(item)
        elif isinstance(item, str) and _int_text(item) is not None:
            values.append(_int_text(item))
        else:
            raise _seed_error(seed, f"{str(item).strip()!r} is not an integer or None")
    if len(values) == 1:
        return tuple(values * len(DEFAULT_SEEDS))
    if len(values) == len(DEFAULT_SEEDS) - 1:
        return (*values, *DEFAULT_SEEDS[len(values):])
    if len(values) != len(DEFAULT_SEEDS):
        raise _seed_error(seed, f"{len(values)} values")
    return tuple(values)


def _int_text(text: str) -> int | None:
    """``int(text)`` as lm-eval reads a seed (surrounding spaces allowed), or None."""
    try:
        return int(text.strip())
    except ValueError:
        return None


def _seed_error(seed: Any, what: str) -> QueryError:
    text = ",".join("None" if s is None else str(s) for s in seed) if isinstance(seed, (list, tuple)) else seed
    return QueryError(f"--seed {text}: {what}; give one integer for all four seeds, or four comma-separated integers "
                      "(or None) for python's random, numpy, torch and the few-shot sampler, as lm-eval's --seed")


def _recorded_seed(seeds: tuple[int | None, ...]) -> int | None | list[int | None]:
    """The ``seed`` field of results.json: one value when the four are equal (how records before the four
    seeds were recorded read: ``0`` meant 0 for all four), else the four."""
    return seeds[0] if len(set(seeds)) == 1 else list(seeds)


# ---- the result -----------------------------------------------------------------------------------


@dataclass
class EvalResult:
    """One model evaluated: what ``simple_evaluate`` returned, seethrough's provenance, the samples.

    ``to_dict()`` is results.json's content; ``write_results`` writes it and the samples files."""
    output: dict[str, Any]
    """lm-eval's ``simple_evaluate`` output without its samples: ``results``, ``configs``, ``versions``,
    ``n-shot``, ``n-samples``, ``config``, the environment, ... in lm-eval's order."""
    provenance: dict[str, Any]
    """results.json's ``seethrough`` block: code and library versions, model and corpus hashes, request
    hashes, seeds, settings, flags, contamination, hardware, timing."""
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per task, lm-eval's logged samples plus ``request_sha256``, ``flags`` and (with a corpus)
    ``contamination``: the lines of ``samples_<task>.jsonl``."""

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        """lm-eval's ``results``: task -> ``{"acc,none": ..., "acc_stderr,none": ..., "alias": ...}``."""
        return self.output["results"]

    @property
    def tasks(self) -> list[str]:
        """The tasks that have samples (a group's leaf tasks, not the group)."""
        return list(self.samples)

    @property
    def seeds(self) -> dict[str, int | None]:
        return dict(self.provenance["seeds"])

    @property
    def timing(self) -> dict[str, float]:
        """Wall-clock seconds of ``evaluate_model``'s stages: ``imports_s`` (lm-eval's evaluator and task
        modules, the backend, torch), ``task_resolution_s`` (lm-eval's ``TaskManager`` for the named
        tasks: its task index, from the cache or built), ``model_load_s`` (model and tokenizer, with the
        model's transformers code imported on first use, and the garbage collector's one pass after the
        start-up: ``harness.collection_paused``), ``evaluation_s`` (lm-eval's ``simple_evaluate``:
        the tasks' documents and requests, scoring, metrics). A record from before the first two has only
        the last two."""
        return dict(self.provenance["timing"])

    @property
    def contamination(self) -> dict[str, Any] | None:
        """Per task with a corpus: ``items``, ``flagged``, ``ngram``, ``all`` and ``clean`` metrics, ``clean_items``."""
        return self.provenance.get("contamination")

    def scores(self, task: str | None = None) -> list[Score]:
        """Every numeric aggregate metric (of one task, or of every entry of ``results``)."""
        names = [task] if task is not None else list(self.results)
        return [s for name in names for s in task_scores(name, self.results.get(name, {}))]

    def to_dict(self, samples: bool = False) -> dict[str, Any]:
        """results.json's content, as JSON values (``samples``: with the samples, as ``simple_evaluate``
        returns them)."""
        out = {**self.output, "seethrough": self.provenance}
        if samples:
            out["samples"] = self.samples
        return json.loads(json.dumps(out, default=_json_default))


# ---- running --------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import lm_eval
    import numpy
    import torch

    # transformers' version from its metadata: importing it only for this costs 0.25 s of start-up
    return {"lm_eval": getattr(lm_eval, "__version__", "unknown"), "torch": torch.__version__,
            "transformers": version("transformers"), "numpy": numpy.__version__, "python": platform.python_version()}


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


def _subset_metrics(task: Any, rows: list[dict[str, Any]], keep: Any) -> dict[str, float]:
    """Each metric of ``rows`` (those that ``keep``), aggregated as lm-eval aggregates it for the task (a mean
    for acc, exp(-mean) for perplexity, ...), per filter; metrics no kept row has are left out."""
    values: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        if keep(row):
            for metric in row.get("metrics", []):
                if metric in row:
                    values.setdefault((metric, row.get("filter", "none")), []).append(row[metric])
    aggregations = task.aggregation() if task is not None else {}
    out: dict[str, float] = {}
    for (metric, filter_name), items in values.items():
        if metric in aggregations:
            value = aggregations[metric](items)
        else:  # lm-eval's own fallback: the mean (of numbers; anything else has no clean-subset figure)
            value = sum(items) / len(items) if all(_is_number(v) for v in items) else None
        if _is_number(value):
            out[metric_label(metric, filter_name)] = float(value)
    return out


def _positive(value: Any, flag: str, what: str, allow_none: bool = True, minimum: int = 1) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise QueryError(f"{flag} {value!r}: {what}")


def _check_settings(tasks: Sequence[str], include_path: Any, num_fewshot: Any, limit: Any, ngram: Any, threads: Any,
                    batch_size: Any) -> None:
    """Every setting is checked before anything is loaded or run; each error names its flag."""
    if isinstance(tasks, str) or not tasks or not all(isinstance(t, str) and t.strip() for t in tasks):
        raise QueryError("--tasks is empty; name at least one lm-eval task")
    _positive(limit, "--limit", "give a positive whole number of items per task, or leave it out to evaluate all")
    _positive(num_fewshot, "--num-fewshot", "give 0 or more few-shot examples, or leave it out for each task's own",
              minimum=0)
    _positive(ngram, "--ngram", "give a positive n-gram length (GPT-3 uses 13)", allow_none=False)
    _positive(threads, "--threads", "give a positive number of CPU threads, or leave it out for the default")
    text = str(batch_size)
    if text != "auto" and not (isinstance(batch_size, (int, str)) and not isinstance(batch_size, bool)
                               and text.isascii() and text.isdigit() and int(text) > 0):
        raise QueryError(f"--batch-size {batch_size!r}: give a positive number or auto")
    if include_path is not None and not Path(include_path).is_dir():
        raise QueryError(f"--include-path {include_path} is not a folder; pass the folder holding the task YAMLs")


def evaluate_model(target: Any, tasks: Sequence[str], *, include_path: str | Path | None = None,
                   num_fewshot: int | None = None, limit: int | None = None, corpus: Any = None, ngram: int = 13,
                   threads: int | None = None, extra_provenance: dict[str, Any] | None = None,
                   seed: int | str | Sequence[int | None] | None = None, batch_size: int | str = "auto",
                   cache_dir: str | Path | None = None, device: str = "cpu", dtype: str = "float32") -> EvalResult:
    """Evaluate one model on lm-eval ``tasks`` through seethrough's backend; writes nothing.

    ``target``: a ``seethrough.model.Checkpoint`` (a run's checkpoint is checked against the weights hash
    its run recorded) or a model folder. ``corpus``: an ``IndexedCorpus`` to check every item against
    (``ngram``: the n-gram length that flags an item). ``seed``: lm-eval's ``--seed`` (see ``parse_seed``;
    None: its defaults 0,1234,1234,1234, so the few-shot prompts are ``lm_eval``'s). ``extra_provenance``
    is added to the model's provenance (``run_provenance`` for a run's checkpoint)."""
    from ..model import Checkpoint

    tasks = [t.strip() for t in tasks] if not isinstance(tasks, str) else tasks
    _check_settings(tasks, include_path, num_fewshot, limit, ngram, threads, batch_size)
    # absolute: lm-eval records each task's config_source as the path it was given, and the config hash
    # covers it, so a relative path would not verify from another working folder
    include_path = Path(include_path).resolve() if include_path else None
    seeds = parse_seed(seed)
    checkpoint = target if isinstance(target, Checkpoint) else Checkpoint(Path(target))
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    began = time.perf_counter()
    from .harness import collection_paused

    with collection_paused():  # start-up: ~800,000 new objects the collector need not scan as they come
        import lm_eval
        import lm_eval.evaluator

        from ..corpus.tokenizer import load_tokenizer
        from .backend import SeethroughLM
        from .harness import faster_lm_eval
        from .tasks import resolve_tasks

        imported = time.perf_counter()
        manager = resolve_tasks(tasks, include_path)  # lm-eval's TaskManager; its index from the cache
        resolved = time.perf_counter()
        lm = SeethroughLM(pretrained=checkpoint, threads=threads, batch_size=batch_size, device=device, dtype=dtype,
                          cache_dir=str(cache_dir) if cache_dir else None)
    loaded = time.perf_counter()
    with _quiet("lm_eval"), faster_lm_eval():  # quiet: its notices about default aggregations drown the output
        try:
            output = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), num_fewshot=num_fewshot, limit=limit,
                                             log_samples=True, task_manager=manager, random_seed=seeds[0],
                                             numpy_random_seed=seeds[1], torch_random_seed=seeds[2],
                                             fewshot_random_seed=seeds[3])
        except FileNotFoundError as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise QueryError(f"a task's data could not be found ({first}); check the data_files of its YAML, or "
                             "that the dataset is downloaded (nothing is fetched at run time)") from None
        except ValueError as error:
            if "Sample larger than population" not in str(error):  # random.sample, drawing the shots
                raise
            raise QueryError(f"--num-fewshot {num_fewshot}: a task's few-shot split holds fewer documents than "
                             "that; give a smaller number") from None
    evaluated = time.perf_counter()
    samples = output.pop("samples")
    task_objects = _task_objects(manager, list(tasks)) if corpus is not None else {}
    requests_digest: dict[str, str] = {}
    contamination_report: dict[str, Any] = {}
    flagged_items: dict[str, int] = {}
    for task, rows in samples.items():
        digest = hashlib.sha256()
        for row in rows:
            row["request_sha256"] = request_sha256(row["arguments"])
            digest.update(row["request_sha256"].encode())
            row["flags"] = sorted({f for pair in _argument_pairs(row["arguments"]) for f in lm.flags.get(pair, [])})
            flagged_items[task] = flagged_items.get(task, 0) + bool(row["flags"])
            if corpus is not None and task in task_objects:
                row["contamination"] = contamination(corpus, item_text(task_objects[task], row["doc"]), ngram)
        requests_digest[task] = digest.hexdigest()
        if corpus is not None:
            items = {row["doc_id"] for row in rows}
            flagged = len({row["doc_id"] for row in rows if row.get("contamination", {}).get("flagged")})
            task_object = task_objects.get(task)
            contamination_report[task] = {
                "items": len(items), "flagged": flagged, "ngram": ngram,
                "all": _subset_metrics(task_object, rows, lambda row: "contamination" in row),
                "clean": _subset_metrics(task_object, rows, lambda row: not row.get("contamination", {"flagged": True})
                                         ["flagged"]),
                "clean_items": len(items) - flagged}
    folder = checkpoint.path
    model_info = {"path": str(folder.resolve()), "weights_sha256": checkpoint.weights_sha256,
                  "tokenizer_sha256": (load_tokenizer(folder).sha256 if (folder / "tokenizer.json").exists() else None),
                  "implementation": lm.implementation}
    if checkpoint.step is not None:
        model_info["checkpoint_step"] = checkpoint.step
    if checkpoint.intervention is not None:  # the eraser (or vector) that was on, by content hash
        model_info["intervention"] = checkpoint.intervention.to_dict()
    provenance = {
        "code_version": code_version(), "versions": _versions(),
        "model": {**model_info, **(extra_provenance or {})},
        "corpus": {"path": str(corpus.path), "corpus_hash": corpus.corpus.corpus_hash} if corpus is not None else None,
        "tasks": {t: {"config_sha256": sha256_json(json.loads(json.dumps(c, default=str)))}
                  for t, c in output.get("configs", {}).items()},
        "requests_sha256": requests_digest, "seed": _recorded_seed(seeds),
        "seeds": dict(zip(SEED_NAMES, seeds)), "task_names": list(tasks), "num_fewshot": num_fewshot, "limit": limit,
        "include_path": str(Path(include_path).resolve()) if include_path else None, "ngram": ngram,
        "batch_size": batch_size, "device": device, "dtype": dtype,
        "cache": ({"dir": str(cache_dir), "hits": lm.cache.hits, "misses": lm.cache.misses} if lm.cache else None),
        "flagged_items": flagged_items, "contamination": contamination_report or None,
        "hardware": {"machine": platform.machine(), "processor": platform.processor() or None,
                     "cpus": os.cpu_count(), "threads": _threads()},
        "backend": "seethrough (lm-eval TemplateLM; batch-invariant)",
        # wall-clock seconds of each stage (the process's own start-up before evaluate_model is not in them)
        "timing": {"imports_s": round(imported - began, 3), "task_resolution_s": round(resolved - imported, 3),
                   "model_load_s": round(loaded - resolved, 3), "evaluation_s": round(evaluated - loaded, 3)},
    }
    return EvalResult(output, provenance, samples)


@contextlib.contextmanager
def _quiet(name: str):
    """lm-eval without its notices (logger ``name`` at ERROR), its per-task progress bar of building
    requests, git's "fatal: not a git repository" from its hash of the working folder, or datasets'
    "Generating split" bars: a command's console shows seethrough's own output."""
    import datasets
    import lm_eval.api.task
    import lm_eval.evaluator
    from tqdm import tqdm

    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        with mock.patch.object(lm_eval.api.task, "tqdm", functools.partial(tqdm, disable=True)), \
                mock.patch.object(lm_eval.evaluator, "get_git_commit_hash", _git_hash_quietly):
            yield
    finally:
        logger.setLevel(level)
        if bars_were_on:
            datasets.enable_progress_bars()


def _git_hash_quietly() -> str | None:
    """lm-eval's ``get_git_commit_hash`` (the working folder's commit, which it records), git's stderr
    kept off the console."""
    from lm_eval.loggers.utils import get_commit_from_path

    try:
        return subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL).strip().decode()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return get_commit_from_path(os.getcwd())


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def run_provenance(run: Any, step: Any) -> dict[str, Any]:
    """What a run adds to a checkpoint's provenance: the run folder, its manifest's hash, the step (an int
    or a ``Checkpoint``) and the hash of the corpus it was trained on."""
    step = getattr(step, "step", step)
    manifest = run.path / "run.json"
    return {"run": str(run.path.resolve()), "run_manifest_sha256": sha256_file(manifest), "checkpoint_step": step,
            "corpus_hash": run.manifest["corpus"]["corpus_hash"]}


# ---- writing and reading --------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    from lm_eval.utils import handle_non_serializable

    return handle_non_serializable(value)


def _sample_lines(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, default=_json_default, ensure_ascii=False) + "\n" for r in rows)


def _results_text(result: EvalResult) -> str:
    return json.dumps(result.to_dict(), default=_json_default, indent=2, ensure_ascii=False) + "\n"


def write_results(result: EvalResult, out: str | Path) -> Path:
    """Write RESULTS into ``out``: ``samples_<task>.jsonl`` per task, then ``results.json``, each to a
    temporary name and renamed. A results.json already there is removed first, so that an interrupted
    write never leaves an old results.json beside new samples. Returns ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise QueryError(f"--out {out} is a file; pass a folder for the results (it is created if missing)")
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_FILE).unlink(missing_ok=True)
    for task, rows in result.samples.items():
        atomic_write_bytes(out / SAMPLES_FILE.format(task=task), _sample_lines(rows).encode("utf-8"))
    atomic_write_bytes(out / RESULTS_FILE, _results_text(result).encode("utf-8"))
    return out


def _lines(text: str) -> list[str]:
    """The lines of a jsonl text: split at newlines only (``str.splitlines`` also splits at U+2028 and
    other separators, which JSON strings may hold)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_results(folder: str | Path) -> EvalResult:
    """A RESULTS folder written by ``write_results`` (or ``seethrough eval --out``), as an ``EvalResult``
    (values as JSON has them: lists for tuples). A folder that is not one, or a samples file that is
    missing or damaged, is a one-line ``QueryError`` naming the file."""
    folder = Path(folder)
    fix = "pass a folder that `seethrough eval --out` wrote"
    if not folder.is_dir():
        raise QueryError(f"{folder} is not a folder; {fix}")
    path = folder / RESULTS_FILE
    if not path.is_file():
        raise QueryError(f"{folder} is not a results folder (it has no {RESULTS_FILE}); {fix}")
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise QueryError(f"{path} is not valid JSON ({str(error).splitlines()[0]}); restore it, or re-run "
                         "`seethrough eval` into a new folder") from None
    info = recorded.get("seethrough") if isinstance(recorded, dict) else None
    needed = ("model", "requests_sha256", "num_fewshot", "limit")
    if (not isinstance(info, dict) or not isinstance(recorded.get("results"), dict)
            or any(k not in info for k in needed)):
        raise QueryError(f"{path} is not a seethrough eval record (no seethrough block with the model, the requests "
                         f"and the settings); {fix}")
    samples: dict[str, list[dict[str, Any]]] = {}
    for task in info["requests_sha256"]:
        file = folder / SAMPLES_FILE.format(task=task)
        if not file.is_file():
            raise QueryError(f"{file} is missing: results.json records task {task} but its samples are not there; "
                             "restore the file, or re-run `seethrough eval` into a new folder")
        rows = []
        for number, line in enumerate(_lines(file.read_text(encoding="utf-8")), 1):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                raise QueryError(f"{file} line {number} is not a JSON object; restore the file, or re-run "
                                 "`seethrough eval` into a new folder")
            rows.append(row)
        samples[task] = rows
    output = {k: v for k, v in recorded.items() if k != "seethrough"}
    return EvalResult(output, info, samples)


# ---- verifying ------------------------------------------------------------------------------------

ABSENT = "(absent)"
"""What a ``Difference`` shows for a value that one side does not have."""


@dataclass(frozen=True)
class Difference:
    """One recorded value that the new run does not reproduce."""
    file: str
    """``results.json`` or ``samples_<task>.jsonl``."""
    field: str
    """Where in the file: ``results.st_mc.acc,none``, ``seethrough.contamination.st_mc.clean.acc``, or for a
    sample ``acc``, ``filtered_resps[0][0]``, ``resps[2][0][0]`` (``line`` for a missing or extra line)."""
    recorded: Any
    now: Any
    task: str | None = None
    doc_id: Any = None
    """The sample's ``doc_id`` (None for an aggregate)."""
    filter: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "task": self.task, "doc_id": self.doc_id, "filter": self.filter,
                "field": self.field, "recorded": self.recorded, "now": self.now}

    def __str__(self) -> str:
        where = f"{self.file} doc {self.doc_id}" if self.doc_id is not None else self.file
        return f"{where}: {self.field} recorded {_short(self.recorded)}, now {_short(self.now)}"


def _short(value: Any, width: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if value is not ABSENT else ABSENT
    return text if len(text) <= width else text[:width - 3] + "..."


@dataclass
class VerifyReport:
    """What ``verify_results`` found: every recorded value compared with the value the new run gave."""
    folder: Path
    items_checked: int
    """Sample lines compared."""
    values_checked: int
    """Values compared, leaf by leaf (every metric, log-likelihood, flag, hash and text of every line and of
    results.json's compared parts)."""
    differences: list[Difference]
    tolerance: float

    @property
    def ok(self) -> bool:
        """True when every recorded value was reproduced (within ``tolerance`` for floats)."""
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "ok": self.ok, "items_checked": self.items_checked,
                "values_checked": self.values_checked, "tolerance": self.tolerance,
                "differences": [d.to_dict() for d in self.differences]}


COMPARED_OUTPUT = ("results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better",
                   "n-samples")
"""The parts of lm-eval's output that a run reproduces (its date, environment and timing are not compared)."""
COMPARED_PROVENANCE = ("tasks", "requests_sha256", "flagged_items", "contamination")


def verify_results(results_folder: str | Path, threads: int | None = None, tolerance: float = 1e-6,
                   device: str | None = None) -> VerifyReport:
    """Run the evaluation recorded in ``results_folder`` again (same model, checked by weights hash; same
    tasks, settings and seeds; the recorded corpus, checked by hash; no response cache) and compare every
    recorded value with the new one: per sample every field (metrics, ``resps``, ``filtered_resps``,
    log-likelihoods, hashes, flags, contamination), and in results.json every metric and stderr, the
    counts, the task configs, and the contamination block with its clean-subset metrics. Floats agree
    within ``tolerance`` relative to their size (at least 1); everything else exactly. Writes nothing.
    ``device``: where to run (the recorded device by default)."""
    from ..errors import ModelError
    from ..model import Checkpoint

    folder = Path(results_folder)
    recorded = read_results(folder)
    info = recorded.provenance
    model = Checkpoint(Path(info["model"]["path"]))  # hashed once, here
    try:
        same = (model.path / "config.json").exists() and model.weights_sha256 == info["model"]["weights_sha256"]
    except (ModelError, OSError):
        same = False
    if not same:
        raise QueryError(f"the model {model.path} is missing or its weights changed since the evaluation, so the "
                         "record cannot be re-run; restore the model folder the record names")
    if info["model"].get("intervention"):
        model = model.with_intervention(_recorded_intervention(info["model"]["intervention"]))
    index = None
    if info.get("corpus"):
        index = _recorded_corpus(info["corpus"])
    seeds = tuple(info["seeds"][name] for name in SEED_NAMES) if isinstance(info.get("seeds"), dict) \
        else parse_seed(info.get("seed", 0))  # a record from before the four seeds: one seed for all
    fresh = evaluate_model(model, info.get("task_names") or list(info["requests_sha256"]),
                           include_path=info.get("include_path"), num_fewshot=info["num_fewshot"], limit=info["limit"],
                           corpus=index, ngram=info.get("ngram", 13), threads=threads, seed=seeds,
                           batch_size=info.get("batch_size", "auto"), device=device or info.get("device", "cpu"),
                           dtype=info.get("dtype", "float32"))  # in memory: nothing is written
    now = fresh.to_dict()  # as it would be written
    old = recorded.to_dict()
    differences: list[Difference] = []
    counter = [0]
    for part in COMPARED_OUTPUT:
        if part in old or part in now:
            for path, a, b in _compare(old.get(part, ABSENT), now.get(part, ABSENT), [part], tolerance, counter):
                differences.append(Difference(RESULTS_FILE, _path_text(path), a, b, task=_task_of(path)))
    for part in COMPARED_PROVENANCE:
        for path, a, b in _compare(old["seethrough"].get(part, ABSENT), now["seethrough"].get(part, ABSENT),
                                   ["seethrough", part], tolerance, counter):
            differences.append(Difference(RESULTS_FILE, _path_text(path), a, b, task=_task_of(path)))
    for path, a, b in _compare(old["seethrough"]["model"].get("tokenizer_sha256", ABSENT),
                               now["seethrough"]["model"].get("tokenizer_sha256", ABSENT),
                               ["seethrough", "model", "tokenizer_sha256"], tolerance, counter):
        differences.append(Difference(RESULTS_FILE, _path_text(path), a, b))
    fresh_samples = {task: [json.loads(line) for line in _lines(_sample_lines(rows))]
                     for task, rows in fresh.samples.items()}
    items = 0
    for task in list(recorded.samples) + [t for t in fresh_samples if t not in recorded.samples]:
        file = SAMPLES_FILE.format(task=task)
        rows_then, rows_now = recorded.samples.get(task, []), fresh_samples.get(task, [])
        for k in range(max(len(rows_then), len(rows_now))):
            a = rows_then[k] if k < len(rows_then) else ABSENT
            b = rows_now[k] if k < len(rows_now) else ABSENT
            row = a if isinstance(a, dict) else b
            doc_id, filter_name = row.get("doc_id"), row.get("filter")
            if a is ABSENT or b is ABSENT:
                differences.append(Difference(file, f"line {k + 1}", a if a is ABSENT else "(a sample)",
                                              b if b is ABSENT else "(a sample)", task, doc_id, filter_name))
                continue
            items += 1
            for path, x, y in _compare(a, b, [], tolerance, counter):
                differences.append(Difference(file, _path_text(path), x, y, task, doc_id, filter_name))
    return VerifyReport(folder, items, counter[0], differences, tolerance)


def _recorded_intervention(recorded: dict[str, Any]) -> Any:
    """The eraser (or steering vector) an evaluation ran with, from the folder it records, checked by hash."""
    from ..errors import SeethroughError
    from ..model import load_intervention

    try:
        found = load_intervention(recorded["path"], recorded.get("multiplier"))
    except SeethroughError:
        found = None
    if found is None or found.sha256 != recorded["sha256"]:
        raise QueryError(f"the evaluation ran with {recorded['kind']} {recorded['path']}, which is missing or changed "
                         f"since (its sha256 was {recorded['sha256'][:12]}), so the record cannot be re-run; restore "
                         "that folder")
    return found


def _recorded_corpus(recorded: dict[str, Any]) -> Any:
    """The corpus the record names, opened for queries; refused if it is gone or is not the same corpus."""
    from ..errors import SeethroughError
    from ..index import open_corpus

    path = recorded.get("path")
    try:
        index = open_corpus(path)
    except SeethroughError as error:
        raise QueryError(f"the evaluation checked its items against corpus {path}, which cannot be opened now "
                         f"({error}); restore it to verify the contamination columns") from None
    if index.corpus.corpus_hash != recorded.get("corpus_hash"):
        raise QueryError(f"corpus {path} is not the corpus the evaluation used (corpus hash "
                         f"{str(index.corpus.corpus_hash)[:12]}, recorded {str(recorded.get('corpus_hash'))[:12]}); "
                         "restore that corpus to verify the contamination columns")
    return index


def _compare(a: Any, b: Any, path: list[Any], tolerance: float, counter: list[int]):
    """Every (path, recorded, now) where two JSON values differ, leaf by leaf; counts the leaves compared."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            yield from _compare(a.get(key, ABSENT), b.get(key, ABSENT), path + [key], tolerance, counter)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for k, (x, y) in enumerate(zip(a, b)):
            yield from _compare(x, y, path + [k], tolerance, counter)
        return
    counter[0] += 1
    if not _same(a, b, tolerance):
        yield path, a, b


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        if a == b:
            return True
        if isinstance(a, int) and isinstance(b, int):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))
    return type(a) is type(b) and a == b


def _path_text(path: list[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _task_of(path: list[Any]) -> str | None:
    """The task a results.json path is about (``results.T...``, ``seethrough.contamination.T...``)."""
    if len(path) >= 2 and path[0] in ("results", "groups", "configs", "versions", "n-shot", "higher_is_better",
                                      "n-samples"):
        return str(path[1])
    if len(path) >= 3 and path[0] == "seethrough" and path[1] in ("tasks", "requests_sha256", "flagged_items",
                                                                  "contamination"):
        return str(path[2])
    return None


# ---- several checkpoints --------------------------------------------------------------------------


def write_checkpoint_table(per_step: Mapping[int, EvalResult | dict[str, Any]], out: str | Path) -> dict[str, Any]:
    """``by_checkpoint.json`` (``task/metric`` -> step -> value) and ``by_checkpoint.png``, from each step's
    ``EvalResult`` (or results.json content)."""
    out = Path(out)
    table: dict[str, dict[str, float]] = {}
    for step, result in sorted(per_step.items()):
        results = result.results if isinstance(result, EvalResult) else result["results"]
        for task, metrics in results.items():
            for score in task_scores(task, metrics):
                table.setdefault(f"{task}/{score.label}", {})[str(step)] = score.value
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
