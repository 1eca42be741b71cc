"""Evaluation with lm-evaluation-harness: seethrough's backend, records with provenance, contamination.

    from seethrough.evaluate import evaluate_model, write_results, verify_results
    result = evaluate_model(checkpoint, ["tiny_mc"], num_fewshot=3, corpus=index)  # runs, writes nothing
    result.scores()                      # [Score(task, metric, filter, value, stderr), ...]
    write_results(result, "results/")    # results.json + samples_<task>.jsonl, each written atomically
    report = verify_results("results/")  # run it again, compare every recorded value
    report.ok, report.differences

- ``evaluate_model``: lm-eval's ``simple_evaluate`` through ``backend.SeethroughLM`` with lm-eval's own
  seeds (``parse_seed``: its ``--seed`` semantics); returns an ``EvalResult`` (``to_dict()`` is
  results.json's content).
- ``write_results`` / ``read_results``: a RESULTS folder, and back.
- ``verify_results``: a ``VerifyReport`` of ``Difference``\\ s (``ok`` is False on any).
- ``split_metric_key`` / ``task_scores``: lm-eval's ``"acc,none"`` keys, parsed in one place.
- ``write_checkpoint_table``: one metric-by-step table over a run's checkpoints.
- ``resolve_tasks``: lm-eval's ``TaskManager`` for named tasks, its task index read from a cache kept
  while the task files are unchanged (``cached_task_index()``: the same for every ``TaskManager``
  built in the block; ``build_task_index``: the index itself; ``tasks`` has the details).

Importing this package is cheap; running an evaluation needs ``lm_eval`` (the ``eval`` extra).
"""

from .run import (DEFAULT_SEEDS, SEED_NAMES, Difference, EvalResult, Score, VerifyReport, evaluate_model,
                  metric_label, parse_seed, read_results, run_provenance, split_metric_key, task_scores,
                  verify_results, write_checkpoint_table, write_results)
from .tasks import build_task_index, cached_task_index, resolve_tasks

__all__ = ["DEFAULT_SEEDS", "SEED_NAMES", "Difference", "EvalResult", "Score", "VerifyReport", "evaluate_model",
           "metric_label", "parse_seed", "read_results", "run_provenance", "split_metric_key", "task_scores",
           "verify_results", "write_checkpoint_table", "write_results", "build_task_index", "cached_task_index",
           "resolve_tasks"]
