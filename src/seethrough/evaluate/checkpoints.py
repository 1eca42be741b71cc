"""``seethrough eval`` over a run's checkpoints: each checkpoint evaluated and written to its own results
folder, here one after another or as one task each on a Ray cluster.

Both ways run the same code per checkpoint (:class:`CheckpointEval`): evaluate, write RESULTS (atomically,
so a task that is run again after its worker died overwrites nothing half-written) and the bias summary
beside it. On a cluster each task reopens the corpus and the run at the same paths and writes its own
folder; the driver reads the folders back, so what it returns and prints is what the files hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .run import EvalResult, evaluate_model, read_results, run_provenance, write_checkpoint_table, write_results


@dataclass(frozen=True)
class CheckpointEval:
    """The evaluation of one checkpoint into ``out`` (or ``out/<label>`` when ``per_label``), with
    ``options`` the keyword arguments of :func:`evaluate_model` other than the model, tasks, corpus and
    provenance."""
    tasks: list[str]
    out: Path
    per_label: bool
    options: dict[str, Any] = field(default_factory=dict)
    corpus: Any = None
    """A ``distributed.CorpusAt`` when the task runs on a cluster and a corpus is checked."""
    run_path: Path | None = None

    def folder(self, checkpoint: Any) -> Path:
        return self.out / checkpoint.label if self.per_label else self.out

    def __call__(self, checkpoint: Any) -> dict[str, Any]:
        """As a cluster task: reopen the corpus and the run here, evaluate, write; the bias summary."""
        from ..train import open_run

        index = self.corpus.open() if self.corpus is not None else None
        return self.evaluate(checkpoint, index, open_run(self.run_path) if self.run_path else None)[1]

    def evaluate(self, checkpoint: Any, index: Any, run: Any) -> tuple[EvalResult, dict[str, Any]]:
        """Evaluate, write RESULTS and its bias summary; (the result, the summary: {} without a bias task)."""
        from .._files import atomic_write_json
        from ..audit.bias.benchmarks import SUMMARY_FILE, summarize_bias_benchmarks

        extra = run_provenance(run, checkpoint) if run is not None else {}
        result = evaluate_model(checkpoint, self.tasks, corpus=index, extra_provenance=extra, **self.options)
        folder = self.folder(checkpoint)
        write_results(result, folder)
        bias = summarize_bias_benchmarks(result)  # {} unless a CrowS-Pairs or BBQ task ran
        (folder / SUMMARY_FILE).unlink(missing_ok=True)  # never an old summary beside new results
        if bias:
            atomic_write_json(folder / SUMMARY_FILE, bias)
        return result, bias


def evaluate_checkpoints(target: Any, tasks: list[str], out: str | Path, corpus: Any = None, ray: str | None = None,
                         **options: Any) -> dict[int | None, tuple[EvalResult, dict[str, Any]]]:
    """Evaluate every checkpoint of ``target`` (a resolved ``model.ModelTarget``; its corpus check done by
    the caller) on ``tasks``: RESULTS in ``out``, or ``out/step-N`` each and the metric-by-step table
    (``write_checkpoint_table``) when there are several. Returns step -> (result, bias summary).

    ``ray``: a Ray cluster's address: one task per checkpoint (one GPU each unless ``device`` is cpu),
    each writing its own folder, which must be on storage every node sees; ``threads`` defaults to 1 per
    task. ``options``: :func:`evaluate_model`'s other keyword arguments."""
    out = Path(out)
    task = CheckpointEval(list(tasks), out, len(target.checkpoints) > 1, options)
    if ray is None:
        found = [task.evaluate(c, corpus, target.run) for c in target.checkpoints]
    else:
        from ..distributed import CorpusAt, map_checkpoints

        absolute = {k: (Path(v).resolve() if k in ("include_path", "cache_dir") and v is not None else v)
                    for k, v in options.items()}
        absolute["threads"] = options.get("threads") or 1
        task = replace(task, out=out.resolve(), options=absolute,
                       corpus=None if corpus is None else CorpusAt.of(corpus),
                       run_path=None if target.run is None else target.run.path.resolve())
        device = options.get("device") or "cpu"
        biases = map_checkpoints(task, target.checkpoints, ray, gpus=0 if device == "cpu" else None)
        found = [(read_results(task.folder(c)), bias) for c, bias in zip(target.checkpoints, biases)]
    per_step = {c.step: pair for c, pair in zip(target.checkpoints, found)}
    if len(target.checkpoints) > 1:
        write_checkpoint_table({step: result for step, (result, _) in per_step.items()}, out)
    return per_step
